//! `cargo xtask test`: prerequisites, then the whole workspace suite with
//! `--no-fail-fast`, then a summary of every test binary that ran.

use crate::{Stop, cargo, prereq, run, say};
use std::io::{BufRead, BufReader, Write};
use std::time::Instant;

/// One test binary's result.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Binary {
    name: String,
    /// `None` when the binary printed no `test result:` line (it crashed).
    counts: Option<Counts>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    passed: u64,
    failed: u64,
    ignored: u64,
}

pub(crate) fn run(args: &[String]) -> Result<(), Stop> {
    let prerequisites = prereq::ensure()?;
    for note in &prerequisites.notes {
        say(note);
    }
    let mut cmd = cargo();
    cmd.args(["test", "--workspace", "--no-fail-fast"])
        .args(args);
    for (k, v) in &prerequisites.env {
        cmd.env(k, v);
    }
    let shown = run::shown(&cmd);
    say(format_args!("running {shown}"));
    let started = Instant::now();
    let (reader, writer) = std::io::pipe().map_err(|e| format!("cannot make a pipe: {e}"))?;
    let writer2 = writer
        .try_clone()
        .map_err(|e| format!("cannot clone a pipe: {e}"))?;
    cmd.stdout(writer).stderr(writer2);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    // The pipe's write ends live in `cmd` too: drop it so the read end sees the end.
    drop(cmd);
    let mut summary = Summary::default();
    let mut out = std::io::stdout().lock();
    for line in BufReader::new(reader).lines() {
        let line = line.map_err(|e| format!("reading the test output: {e}"))?;
        let _ = writeln!(out, "{line}");
        summary.read(&line);
    }
    drop(out);
    let status = child
        .wait()
        .map_err(|e| format!("waiting for cargo test: {e}"))?;
    summary.finish();
    let elapsed = started.elapsed().as_secs();
    println!();
    println!("xtask: summary of `{shown}` ({elapsed} s)");
    for note in &prerequisites.notes {
        println!("  {note}");
    }
    print!("{}", summary.report());
    let total = summary.total();
    println!(
        "summary: {} passed, {} failed, {} skipped",
        total.passed, total.failed, total.ignored
    );
    let crashed = summary.crashed();
    if status.success() && total.failed == 0 && crashed == 0 {
        Ok(())
    } else if total.failed == 0 && crashed == 0 {
        Err(Stop(format!(
            "cargo test failed ({status}) before or outside the tests (see above)"
        )))
    } else {
        Err(Stop(format!(
            "{} test(s) failed and {crashed} binary(ies) ended without a result",
            total.failed
        )))
    }
}

/// The results read from `cargo test`'s output.
#[derive(Debug, Default)]
struct Summary {
    binaries: Vec<Binary>,
    current: Option<String>,
    /// The crate whose binaries are running: cargo runs a package's unit tests first.
    krate: String,
}

impl Summary {
    fn read(&mut self, line: &str) {
        // cargo's own lines are indented to column 12; a test's captured output is not
        // read as one of them.
        if let Some(rest) = line.strip_prefix("     Running ") {
            self.finish();
            let (stem, what) = binary_name(rest);
            if what == "unittests src/lib.rs"
                || what == "unittests src/main.rs"
                || self.krate.is_empty()
            {
                self.krate = stem.clone();
            }
            self.current = Some(if what.starts_with("unittests") {
                format!("{stem} ({what})")
            } else {
                format!("{}: {stem} ({what})", self.krate)
            });
        } else if let Some(krate) = line.strip_prefix("   Doc-tests ") {
            self.finish();
            self.current = Some(format!("doc-tests {}", krate.trim()));
        } else if let Some(result) = line.strip_prefix("test result: ") {
            let name = self
                .current
                .take()
                .unwrap_or_else(|| "(unnamed)".to_owned());
            self.binaries.push(Binary {
                name,
                counts: Some(parse_counts(result)),
            });
        }
    }

    /// Records a binary that started and printed no result.
    fn finish(&mut self) {
        if let Some(name) = self.current.take() {
            self.binaries.push(Binary { name, counts: None });
        }
    }

    fn total(&self) -> Counts {
        self.binaries
            .iter()
            .filter_map(|b| b.counts)
            .fold(Counts::default(), |a, c| Counts {
                passed: a.passed + c.passed,
                failed: a.failed + c.failed,
                ignored: a.ignored + c.ignored,
            })
    }

    fn crashed(&self) -> usize {
        self.binaries.iter().filter(|b| b.counts.is_none()).count()
    }

    fn report(&self) -> String {
        let width = self
            .binaries
            .iter()
            .map(|b| b.name.len())
            .max()
            .unwrap_or(0);
        let mut out = format!("  {} test binaries:\n", self.binaries.len());
        for b in &self.binaries {
            let what = match b.counts {
                Some(c) if c.failed > 0 => format!(
                    "{} passed, {} FAILED, {} skipped",
                    c.passed, c.failed, c.ignored
                ),
                Some(c) => format!("{} passed, {} skipped", c.passed, c.ignored),
                None => "NO RESULT (the binary crashed or could not start)".to_owned(),
            };
            out.push_str(&format!("    {:width$}  {what}\n", b.name));
        }
        out
    }
}

/// `unittests src/lib.rs (target/debug/deps/integrations_core-0123abcd)` →
/// `("integrations_core", "unittests src/lib.rs")`; `tests/flow.rs (…/flow-0123)` →
/// `("flow", "tests/flow.rs")`.
fn binary_name(running: &str) -> (String, String) {
    let running = running.trim();
    let Some((what, path)) = running.rsplit_once(" (") else {
        return (running.to_owned(), String::new());
    };
    let file = path.trim_end_matches(')');
    let file = file.rsplit('/').next().unwrap_or(file);
    let stem = match file.rsplit_once('-') {
        Some((stem, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => stem,
        _ => file,
    };
    (stem.to_owned(), what.to_owned())
}

/// `ok. 12 passed; 1 failed; 2 ignored; 0 measured; 0 filtered out; finished in 1s`.
fn parse_counts(result: &str) -> Counts {
    let mut c = Counts::default();
    for part in result.split(';') {
        let mut words = part.split_whitespace().rev();
        let (Some(label), Some(n)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(n) = n.parse::<u64>() else { continue };
        match label {
            "passed" => c.passed = n,
            "failed" => c.failed = n,
            "ignored" => c.ignored = n,
            _ => {}
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cargo_test_output() {
        let mut s = Summary::default();
        for line in [
            "     Running unittests src/lib.rs (/t/debug/deps/integrations_core-0a1b2c3d4e5f6789)",
            "running 2 tests",
            "test result: ok. 2 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s",
            "     Running tests/flow.rs (/t/debug/deps/flow-00ff00ff00ff00ff)",
            "     Running tests/browser.rs (/t/debug/deps/browser-1234567890abcdef)",
            "test result: FAILED. 0 passed; 3 failed; 0 ignored; 0 measured; 0 filtered out; finished in 2s",
            "   Doc-tests integrations_core",
            "test result: ok. 5 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 3s",
        ] {
            s.read(line);
        }
        s.finish();
        let names: Vec<&str> = s.binaries.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "integrations_core (unittests src/lib.rs)",
                "integrations_core: flow (tests/flow.rs)",
                "integrations_core: browser (tests/browser.rs)",
                "doc-tests integrations_core"
            ]
        );
        assert_eq!(s.binaries[1].counts, None);
        assert_eq!(
            s.total(),
            Counts {
                passed: 7,
                failed: 3,
                ignored: 1
            }
        );
        assert_eq!(s.crashed(), 1);
        assert!(s.report().contains("3 FAILED"));
    }
}
