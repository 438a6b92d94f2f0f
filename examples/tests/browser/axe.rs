//! axe-core, the accessibility rules engine, run in the page through WebDriver.
//!
//! The version is pinned and its file checked against a SHA-256, so a run never changes
//! rules behind our back. It comes from the npm registry (`npm install axe-core@<pinned>`)
//! into this test target's temporary directory at first use, and is kept there for the
//! next runs; `AXE_CORE_JS=<path to axe.min.js>` uses a copy already on disk instead
//! (the same checksum applies). The source is injected with WebDriver's "execute script",
//! which the page's Content-Security-Policy does not govern, so nothing is served from
//! anywhere but our own server and no third-party host is reached.

use super::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// The axe-core release whose rules the tests apply.
pub(crate) const VERSION: &str = "4.14.1";
/// SHA-256 of that release's `axe.min.js`.
const SHA256: &str = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c";
/// The rules of WCAG 2.0, 2.1 and 2.2 at levels A and AA.
const TAGS: [&str; 5] = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"];

/// `axe.min.js`, installed when missing, checked.
fn source() -> &'static str {
    static SOURCE: OnceLock<String> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let path = match std::env::var_os("AXE_CORE_JS") {
            Some(path) => PathBuf::from(path),
            None => install(),
        };
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let sum = hex::encode(Sha256::digest(text.as_bytes()));
        assert_eq!(
            sum,
            SHA256,
            "{} is not axe-core {VERSION}'s axe.min.js",
            path.display()
        );
        text
    })
}

/// `npm install axe-core@VERSION` into the target's temporary directory, unless there.
fn install() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("axe-core-{VERSION}"));
    let file = dir.join("node_modules/axe-core/axe.min.js");
    if file.exists() {
        return file;
    }
    // Installed beside, then moved into place: an interrupted install leaves no half.
    let partial = dir.with_extension(format!("partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial).expect("a directory for axe-core");
    let status = Command::new("npm")
        .arg("install")
        .arg("--prefix")
        .arg(&partial)
        .args([
            "--no-save",
            "--no-package-lock",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--loglevel=error",
        ])
        .arg(format!("axe-core@{VERSION}"))
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "npm to install axe-core {VERSION} (install Debian's npm, or set AXE_CORE_JS): {e}"
            )
        });
    assert!(status.success(), "npm install axe-core@{VERSION}: {status}");
    if std::fs::rename(&partial, &dir).is_err() {
        // Another run got there first.
        let _ = std::fs::remove_dir_all(&partial);
    }
    assert!(file.exists(), "{} after npm install", file.display());
    file
}

/// What axe found on one page or state.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) state: String,
    pub(crate) passed: usize,
    pub(crate) violations: Vec<Value>,
    pub(crate) incomplete: Vec<Value>,
}

impl Report {
    /// One line a person reads: the rules that failed, where, and why.
    pub(crate) fn describe(&self) -> String {
        let mut out = format!(
            "{}: {} rules passed, {} violated, {} to review by hand",
            self.state,
            self.passed,
            self.violations.len(),
            self.incomplete.len()
        );
        for v in &self.violations {
            out.push_str(&format!(
                "\n  VIOLATION {} ({}): {}",
                v["id"].as_str().unwrap_or_default(),
                v["impact"].as_str().unwrap_or_default(),
                v["help"].as_str().unwrap_or_default()
            ));
            for n in v["nodes"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "\n    at {}: {}",
                    n["target"],
                    n["summary"].as_str().unwrap_or_default().replace('\n', " ")
                ));
            }
        }
        for v in &self.incomplete {
            out.push_str(&format!(
                "\n  review {}: {} node(s)",
                v["id"].as_str().unwrap_or_default(),
                v["nodes"].as_array().map_or(0, Vec::len)
            ));
        }
        out
    }
}

/// Runs axe's WCAG 2.2 AA rules on the current document, named `state` in the report.
pub(crate) async fn run(c: &Client, state: &str) -> Report {
    let ready = c
        .execute(
            &format!("{}\n;return typeof window.axe === 'object';", source()),
            vec![],
        )
        .await
        .expect("axe-core injected");
    assert_eq!(ready, json!(true), "axe-core defines window.axe");
    let result = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             window.axe.run(document, { runOnly: { type: 'tag', values: arguments[0] } })
               .then((r) => done({
                 passed: r.passes.length,
                 violations: r.violations.map((v) => ({
                   id: v.id, impact: v.impact, help: v.help,
                   nodes: v.nodes.map((n) => ({ target: n.target, summary: n.failureSummary }))
                 })),
                 incomplete: r.incomplete.map((v) => ({
                   id: v.id, nodes: v.nodes.map((n) => ({ target: n.target }))
                 }))
               }))
               .catch((e) => done({ error: String(e) }));",
            vec![json!(TAGS)],
        )
        .await
        .expect("axe.run answers");
    assert!(result["error"].is_null(), "axe.run: {}", result["error"]);
    let list = |k: &str| result[k].as_array().cloned().unwrap_or_default();
    let report = Report {
        state: state.to_owned(),
        passed: result["passed"].as_u64().unwrap_or_default() as usize,
        violations: list("violations"),
        incomplete: list("incomplete"),
    };
    println!("axe-core {VERSION} {}", report.describe());
    report
}

/// Fails with every report's violations, after all states were checked.
pub(crate) fn assert_clean(reports: &[Report]) {
    let dirty: Vec<String> = reports
        .iter()
        .filter(|r| !r.violations.is_empty())
        .map(Report::describe)
        .collect();
    assert!(
        dirty.is_empty(),
        "WCAG 2.2 AA violations (axe-core {VERSION}):\n{}",
        dirty.join("\n")
    );
    assert!(reports.iter().all(|r| r.passed > 0), "axe checked nothing");
}
