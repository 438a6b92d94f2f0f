//! `cargo xtask fuzz`: builds the `cargo fuzz` targets of `fuzz/` once, runs each for a
//! bounded time on a working copy of its checked-in seed corpus, and prints a table of
//! executions, executions per second and coverage. Any crash fails the task, naming the
//! input libFuzzer saved under `fuzz/artifacts/<target>/`.
//!
//! The targets are built without a sanitizer (`-s none`): the library forbids `unsafe`,
//! so AddressSanitizer would find little and cost a nightly toolchain and half the
//! speed. Built that way they need no nightly; `--sanitizer address` asks for one.

use crate::run::{self, first_line, shown};
use crate::{Stop, cargo, say, workspace_root};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The `cargo-fuzz` release this task installs when none is found.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

#[derive(Debug)]
struct Options {
    seconds: u64,
    targets: Vec<String>,
    report: Option<PathBuf>,
    list: bool,
    sanitizer: String,
}

fn options(args: &[String]) -> Result<Options, Stop> {
    let mut o = Options {
        seconds: 60,
        targets: Vec::new(),
        report: None,
        list: false,
        sanitizer: "none".into(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| Stop(format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--seconds" => {
                o.seconds = value("--seconds")?
                    .parse()
                    .map_err(|_| Stop::from("--seconds takes a whole number"))?;
            }
            "--target" => o.targets.push(value("--target")?),
            "--report" => o.report = Some(PathBuf::from(value("--report")?)),
            "--sanitizer" => o.sanitizer = value("--sanitizer")?,
            "--list" => o.list = true,
            other => return Err(Stop(format!("fuzz: unknown option `{other}`"))),
        }
    }
    Ok(o)
}

/// One target's run, as libFuzzer reported it.
#[derive(Debug, Default, Clone)]
struct Stats {
    target: String,
    seconds: u64,
    executions: Option<u64>,
    per_second: Option<u64>,
    coverage: Option<u64>,
    features: Option<u64>,
    corpus: Option<u64>,
    new_units: Option<u64>,
    crash: Option<String>,
}

/// The number after `key` in a libFuzzer status line (`cov: 123`, `corp: 22/3Kb`).
fn after(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(key)? + key.len()..];
    rest.split(|c: char| c.is_whitespace() || c == '/')
        .next()?
        .parse()
        .ok()
}

impl Stats {
    fn read(&mut self, line: &str) {
        if line.starts_with('#') && line.contains("cov: ") {
            self.coverage = after(line, "cov: ").or(self.coverage);
            self.features = after(line, "ft: ").or(self.features);
            self.corpus = after(line, "corp: ").or(self.corpus);
        }
        if let Some(v) = line.strip_prefix("stat::number_of_executed_units: ") {
            self.executions = v.trim().parse().ok();
        }
        if let Some(v) = line.strip_prefix("stat::average_exec_per_sec: ") {
            self.per_second = v.trim().parse().ok();
        }
        if let Some(v) = line.strip_prefix("stat::new_units_added: ") {
            self.new_units = v.trim().parse().ok();
        }
        if let Some(i) = line.find("Test unit written to ") {
            self.crash = Some(line[i + "Test unit written to ".len()..].trim().to_owned());
        }
    }
}

fn cell(v: Option<u64>) -> String {
    v.map_or_else(|| "?".to_owned(), |v| v.to_string())
}

fn table(stats: &[Stats]) -> String {
    let mut out = String::from(
        "| target | seconds | executions | exec/s | coverage (edges) | features | corpus | new inputs | result |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n",
    );
    for s in stats {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            s.target,
            s.seconds,
            cell(s.executions),
            cell(s.per_second),
            cell(s.coverage),
            cell(s.features),
            cell(s.corpus),
            cell(s.new_units),
            s.crash
                .as_deref()
                .map_or_else(|| "ok".to_owned(), |c| format!("CRASH: `{c}`"))
        ));
    }
    out
}

/// `cargo fuzz`, installed at the pinned version when missing.
fn ensure_cargo_fuzz() -> Result<(), Stop> {
    if let Some(v) = first_line(cargo().args(["fuzz", "--version"])) {
        say(format_args!("using {v}"));
        return Ok(());
    }
    say(format_args!(
        "cargo-fuzz not found: installing version {CARGO_FUZZ_VERSION}"
    ));
    run::status(cargo().args([
        "install",
        "cargo-fuzz",
        "--locked",
        "--version",
        CARGO_FUZZ_VERSION,
    ]))
}

fn fuzz_cmd(sanitizer: &str) -> Command {
    let mut cmd = cargo();
    if sanitizer != "none" {
        // Sanitizers need nightly's -Zsanitizer.
        cmd = Command::new("cargo");
        cmd.current_dir(workspace_root()).arg("+nightly");
    }
    cmd.arg("fuzz");
    cmd
}

fn build_args(cmd: &mut Command, sanitizer: &str) {
    // Release code with debug assertions and overflow checks on.
    cmd.args(["-O", "-a", "-s", sanitizer]);
}

fn list_targets() -> Result<Vec<String>, Stop> {
    let out = cargo()
        .args(["fuzz", "list"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo fuzz list: {e}"))?;
    if !out.status.success() {
        return Err(Stop("cargo fuzz list failed".into()));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect())
}

/// Where a target's working corpus lives: next to the build, never in the repository.
fn work_dir(target: &str) -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("fuzz/target"), PathBuf::from);
    base.join("fuzz-corpus").join(target)
}

fn run_target(target: &str, o: &Options) -> Result<Stats, Stop> {
    let root = workspace_root();
    let seeds = root.join("fuzz/corpus").join(target);
    let work = work_dir(target);
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let mut cmd = fuzz_cmd(&o.sanitizer);
    cmd.args(["run", target]);
    build_args(&mut cmd, &o.sanitizer);
    cmd.arg(&work);
    if seeds.is_dir() {
        cmd.arg(&seeds);
    }
    cmd.arg("--")
        .arg(format!("-max_total_time={}", o.seconds))
        .arg("-print_final_stats=1")
        .arg("-timeout=10");
    let dict = root.join("fuzz/dict").join(format!("{target}.dict"));
    if dict.is_file() {
        cmd.arg(format!("-dict={}", dict.display()));
    }
    say(format_args!("{target}: {} s", o.seconds));
    say(format_args!("running {}", shown(&cmd)));
    let mut child = cmd
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run cargo fuzz: {e}"))?;
    let mut stats = Stats {
        target: target.to_owned(),
        seconds: o.seconds,
        ..Stats::default()
    };
    let log = work.with_extension("log");
    let mut kept = String::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            stats.read(&line);
            // Status lines are many; crashes and final stats are what a reader needs. The
            // sanitizer hooks are absent on purpose (`-s none`).
            if !line.starts_with('#')
                && !line.starts_with("INFO:")
                && !line.starts_with("WARNING: Failed to find function \"__sanitizer")
            {
                eprintln!("{line}");
            }
            kept.push_str(&line);
            kept.push('\n');
        }
    }
    let _ = std::fs::write(&log, kept);
    let status = child
        .wait()
        .map_err(|e| format!("waiting for cargo fuzz: {e}"))?;
    if !status.success() && stats.crash.is_none() {
        stats.crash = Some(format!("exit {status}, see {}", log.display()));
    }
    Ok(stats)
}

pub(crate) fn run(args: &[String]) -> Result<(), Stop> {
    let o = options(args)?;
    ensure_cargo_fuzz()?;
    let all = list_targets()?;
    if o.list {
        for t in &all {
            println!("{t}");
        }
        return Ok(());
    }
    for t in &o.targets {
        if !all.contains(t) {
            return Err(Stop(format!(
                "no fuzz target `{t}` (targets: {})",
                all.join(", ")
            )));
        }
    }
    let targets = if o.targets.is_empty() {
        all
    } else {
        o.targets.clone()
    };
    let started = Instant::now();
    let mut build = fuzz_cmd(&o.sanitizer);
    build.arg("build");
    build_args(&mut build, &o.sanitizer);
    run::status(&mut build)?;
    let built = started.elapsed().as_secs();
    let mut stats = Vec::new();
    for t in &targets {
        stats.push(run_target(t, &o)?);
    }
    let report = table(&stats);
    println!();
    println!(
        "xtask: fuzzed {} targets for {} s each (build {built} s, total {} s)",
        stats.len(),
        o.seconds,
        started.elapsed().as_secs()
    );
    print!("{report}");
    if let Some(path) = &o.report {
        write_report(path, &report)?;
    }
    let crashed: Vec<&Stats> = stats.iter().filter(|s| s.crash.is_some()).collect();
    if crashed.is_empty() {
        Ok(())
    } else {
        Err(Stop(format!(
            "{} target(s) crashed: {}. Reproduce with `cargo fuzz run -O -a -s none <target> <input>`, \
             then make the input a regression test in the crate that had the bug.",
            crashed.len(),
            crashed
                .iter()
                .map(|s| format!("{} ({})", s.target, s.crash.as_deref().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

fn write_report(path: &Path, report: &str) -> Result<(), Stop> {
    std::fs::write(path, report).map_err(|e| Stop(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libfuzzer_output() {
        let mut s = Stats::default();
        for line in [
            "#2\tINITED cov: 1203 ft: 2301 corp: 7/1433b exec/s: 0 rss: 52Mb",
            "#4096\tpulse  cov: 1250 ft: 2500 corp: 20/3Kb lim: 4096 exec/s: 2048 rss: 60Mb",
            "#9000\tDONE   cov: 1260 ft: 2533 corp: 22/3Kb lim: 4096 exec/s: 900 rss: 61Mb",
            "stat::number_of_executed_units: 9000",
            "stat::average_exec_per_sec:     900",
            "stat::new_units_added:          15",
        ] {
            s.read(line);
        }
        assert_eq!(s.coverage, Some(1260));
        assert_eq!(s.features, Some(2533));
        assert_eq!(s.corpus, Some(22));
        assert_eq!(s.executions, Some(9000));
        assert_eq!(s.per_second, Some(900));
        assert_eq!(s.new_units, Some(15));
        s.read("==1== ERROR: libFuzzer: deadly signal");
        s.read("artifact_prefix='a/'; Test unit written to a/crash-0123");
        assert_eq!(s.crash.as_deref(), Some("a/crash-0123"));
        assert!(table(&[s]).contains("CRASH: `a/crash-0123`"));
    }
}
