//! `cargo xtask mutants`: mutation testing with `cargo mutants`, each file with the tests
//! that are its real check, and a table of what was caught.
//!
//! The files are grouped by what tests them ([`GROUPS`]): the refresh path and `send` by
//! core's state-machine tests, the callback path likewise, the crypto, secret and status
//! modules by core's unit and property tests, the provider toolkit by core's unit tests
//! and the generic provider's tests against a local server, and the Diesel store's group
//! commit and lease code by storage-diesel's PostgreSQL tests (they need the server that
//! `cargo xtask setup` checks). Running only those test binaries keeps each mutant's
//! rebuild and run short.
//!
//! Results go to `target/mutants/<group>/mutants.out/` (cargo-mutants' own files) and a
//! Markdown table per file is printed, and written to `--report FILE` when asked.

use crate::run::{self, first_line};
use crate::{Stop, cargo, say, workspace_root};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The `cargo-mutants` release this task installs when none is found.
const CARGO_MUTANTS_VERSION: &str = "27.1.0";

/// Files tested together, with the tests that check them.
#[derive(Debug)]
struct Group {
    name: &'static str,
    what: &'static str,
    /// The package the files and tests belong to.
    package: &'static str,
    files: &'static [&'static str],
    /// Only the functions whose names match (cargo-mutants `--re`), when not all.
    functions: Option<&'static str>,
    /// The test targets: `cargo test` arguments after `-p PACKAGE`.
    tests: &'static [&'static str],
}

const CORE: &str = "integrations-core";

const GROUPS: &[Group] = &[
    Group {
        name: "refresh",
        what: "the refresh path: one account's refresh, the refresher pass, eligibility",
        package: CORE,
        files: &[
            "integrations-core/src/service/refresh.rs",
            "integrations-core/src/service/refresher.rs",
            "integrations-core/src/service/eligibility.rs",
        ],
        functions: None,
        tests: &[
            "--lib",
            "--test",
            "service",
            "--test",
            "keep_alive",
            "--test",
            "orphaned_grants",
            "--test",
            "gauges",
        ],
    },
    Group {
        name: "send",
        what: "`send`: authorized platform calls with refresh on 401 and bounded retries",
        package: CORE,
        files: &["integrations-core/src/service/send.rs"],
        functions: None,
        tests: &["--lib", "--test", "keep_alive", "--test", "service"],
    },
    Group {
        name: "callback",
        what: "the connect and callback path",
        package: CORE,
        files: &["integrations-core/src/service/connect.rs"],
        functions: None,
        tests: &[
            "--lib",
            "--test",
            "service",
            "--test",
            "orphaned_grants",
            "--test",
            "keep_alive",
        ],
    },
    Group {
        name: "crypto",
        what: "token encryption, secret types, status and expiry",
        package: CORE,
        files: &[
            "integrations-core/src/crypto.rs",
            "integrations-core/src/secret.rs",
            "integrations-core/src/status.rs",
        ],
        functions: None,
        tests: &["--lib", "--test", "secrets_hygiene", "--test", "properties"],
    },
    Group {
        name: "toolkit",
        what: "the provider toolkit: capped reads, status and error classification",
        package: CORE,
        files: &["integrations-core/src/http.rs"],
        functions: None,
        tests: &["--lib", "--test", "generic_provider"],
    },
    Group {
        name: "store",
        what: "the Diesel store's group commit and leases (PostgreSQL)",
        package: "integrations-storage-diesel",
        files: &[
            "storage-diesel/src/group_commit.rs",
            "storage-diesel/src/store.rs",
        ],
        functions: Some(
            "group_commit|GroupCommit|claim_due|claim_for_refresh|release_lease|\
             update_account_and_release|write_released",
        ),
        tests: &["--test", "postgres", "--test", "conformance_postgres"],
    },
];

#[derive(Debug, Default)]
struct Options {
    groups: Vec<&'static Group>,
    jobs: usize,
    list: bool,
    /// Only print the table of the groups' last results.
    table_only: bool,
    report: Option<PathBuf>,
}

fn group_of(arg: &str) -> Result<&'static Group, Stop> {
    GROUPS
        .iter()
        .find(|g| g.name == arg || g.files.contains(&arg))
        .ok_or_else(|| {
            Stop(format!(
                "`{arg}` is neither a group ({}) nor one of their files",
                GROUPS.iter().map(|g| g.name).collect::<Vec<_>>().join(", ")
            ))
        })
}

fn options(args: &[String]) -> Result<Options, Stop> {
    let mut o = Options {
        jobs: 1,
        ..Options::default()
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--list" => o.list = true,
            "--table-only" => o.table_only = true,
            "--jobs" => {
                o.jobs = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|n| *n > 0)
                    .ok_or("--jobs needs a positive number")?;
            }
            "--report" => {
                o.report = Some(PathBuf::from(it.next().ok_or("--report needs a file")?));
            }
            other if other.starts_with('-') => {
                return Err(Stop(format!("unknown option `{other}`")));
            }
            other => {
                let g = group_of(other)?;
                if !o.groups.iter().any(|x| x.name == g.name) {
                    o.groups.push(g);
                }
            }
        }
    }
    if o.groups.is_empty() {
        o.groups = GROUPS.iter().collect();
    }
    Ok(o)
}

/// `cargo mutants`, installed at the pinned version when missing.
fn ensure_cargo_mutants() -> Result<(), Stop> {
    if let Some(v) = first_line(cargo().args(["mutants", "--version"])) {
        say(format_args!("using {v}"));
        return Ok(());
    }
    say(format_args!(
        "cargo-mutants not found: installing version {CARGO_MUTANTS_VERSION}"
    ));
    run::status(cargo().args([
        "install",
        "cargo-mutants",
        "--locked",
        "--version",
        CARGO_MUTANTS_VERSION,
    ]))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn out_dir(group: &Group) -> PathBuf {
    target_dir().join("mutants").join(group.name)
}

fn mutants_cmd(group: &Group, jobs: usize) -> std::process::Command {
    let mut cmd = cargo();
    cmd.args(["mutants", "--no-shuffle", "--package", group.package]);
    for f in group.files {
        cmd.args(["--file", f]);
    }
    if let Some(re) = group.functions {
        cmd.args(["--re", re]);
    }
    cmd.arg("--jobs").arg(jobs.to_string());
    cmd.arg("--output").arg(out_dir(group));
    cmd.arg("--").args(group.tests);
    // One build folder for every scratch copy cargo-mutants makes: the dependencies are
    // compiled once, not once per group (only the workspace's own crates, whose path
    // differs per copy, are rebuilt). Builds in it take turns, so extra jobs only overlap
    // test runs.
    cmd.env("CARGO_TARGET_DIR", target_dir().join("mutants-build"));
    cmd
}

/// Mutants per file and outcome, from cargo-mutants' `<outcome>.txt` files (one line per
/// mutant: `path:line:col: description`).
#[derive(Debug, Default)]
struct Tally {
    /// file -> [caught, missed, timeout, unviable]
    counts: BTreeMap<String, [usize; 4]>,
    missed: Vec<String>,
    timed_out: Vec<String>,
}

const OUTCOMES: [&str; 4] = ["caught", "missed", "timeout", "unviable"];

impl Tally {
    fn read(&mut self, dir: &Path, files: &[&str]) {
        for f in files {
            self.counts.entry((*f).to_owned()).or_default();
        }
        for (i, outcome) in OUTCOMES.iter().enumerate() {
            let path = dir.join("mutants.out").join(format!("{outcome}.txt"));
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            self.add(i, &text);
        }
    }

    fn add(&mut self, outcome: usize, text: &str) {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let file = line.split(':').next().unwrap_or(line).to_owned();
            self.counts.entry(file).or_default()[outcome] += 1;
            match OUTCOMES[outcome] {
                "missed" => self.missed.push(line.to_owned()),
                "timeout" => self.timed_out.push(line.to_owned()),
                _ => {}
            }
        }
    }

    fn table(&self) -> String {
        let mut out = String::from(
            "| file | caught | missed | timeout | unviable | detected of viable |\n\
             |---|---|---|---|---|---|\n",
        );
        for (file, [c, m, t, u]) in &self.counts {
            let viable = c + m + t;
            // A timeout is a test that no longer finishes: the mutation was noticed.
            let share = if viable == 0 {
                "-".to_owned()
            } else {
                format!("{:.0}%", 100.0 * (c + t) as f64 / viable as f64)
            };
            out.push_str(&format!("| `{file}` | {c} | {m} | {t} | {u} | {share} |\n"));
        }
        for (title, list) in [
            ("Missed (every test passed with the mutation)", &self.missed),
            (
                "Timed out (a test no longer finished: detected)",
                &self.timed_out,
            ),
        ] {
            if !list.is_empty() {
                out.push_str(&format!("\n{title}:\n\n"));
                for m in list {
                    out.push_str(&format!("- `{m}`\n"));
                }
            }
        }
        out
    }
}

pub(crate) fn run(args: &[String]) -> Result<(), Stop> {
    let o = options(args)?;
    if o.list {
        for g in GROUPS {
            println!("{:<9} {} ({})", g.name, g.what, g.files.join(", "));
        }
        return Ok(());
    }
    let mut tally = Tally::default();
    if o.table_only {
        for g in &o.groups {
            tally.read(&out_dir(g), g.files);
        }
        println!("{}", tally.table());
        return Ok(());
    }
    ensure_cargo_mutants()?;
    for g in &o.groups {
        say(format_args!("mutants of {}: {}", g.name, g.what));
        let dir = out_dir(g);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mut cmd = mutants_cmd(g, o.jobs);
        say(format_args!("running {}", run::shown(&cmd)));
        let status = cmd
            .status()
            .map_err(|e| format!("cannot run cargo mutants: {e}"))?;
        // cargo-mutants: 0 all caught, 2 some missed, 3 some timed out (the table says
        // which); anything else (a usage error, tests failing without a mutation) stops.
        if !matches!(status.code(), Some(0 | 2 | 3)) {
            return Err(Stop(format!(
                "cargo mutants failed for {} ({status}); its log is under {}",
                g.name,
                dir.join("mutants.out").display()
            )));
        }
        tally.read(&dir, g.files);
    }
    let table = tally.table();
    println!("{table}");
    if let Some(path) = &o.report {
        std::fs::write(path, &table)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        say(format_args!("report written to {}", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_files_name_their_group() {
        assert_eq!(group_of("send").unwrap().name, "send");
        assert_eq!(
            group_of("integrations-core/src/crypto.rs").unwrap().name,
            "crypto"
        );
        assert!(group_of("nope").is_err());
        let o = options(&["send".into(), "send".into(), "--jobs".into(), "2".into()]).unwrap();
        assert_eq!(o.groups.len(), 1);
        assert_eq!(o.jobs, 2);
        assert!(options(&["--jobs".into(), "0".into()]).is_err());
        assert_eq!(options(&[]).unwrap().groups.len(), GROUPS.len());
    }

    #[test]
    fn every_group_file_exists() {
        for g in GROUPS {
            for f in g.files {
                assert!(workspace_root().join(f).is_file(), "{f}");
            }
        }
    }

    #[test]
    fn the_table_counts_each_outcome_per_file() {
        let mut t = Tally::default();
        t.add(0, "a.rs:1:1: replace x\na.rs:2:1: replace y\nb.rs:3:1: z\n");
        t.add(1, "a.rs:9:1: replace + with -\n");
        t.add(3, "b.rs:4:1: unviable\n");
        let table = t.table();
        assert!(
            table.contains("| `a.rs` | 2 | 1 | 0 | 0 | 67% |"),
            "{table}"
        );
        assert!(
            table.contains("| `b.rs` | 1 | 0 | 0 | 1 | 100% |"),
            "{table}"
        );
        assert!(table.contains("- `a.rs:9:1: replace + with -`"), "{table}");
        t.add(2, "a.rs:5:1: replace loop\n");
        let table = t.table();
        assert!(
            table.contains("| `a.rs` | 2 | 1 | 1 | 0 | 75% |"),
            "{table}"
        );
        assert!(table.contains("Timed out"), "{table}");
    }
}
