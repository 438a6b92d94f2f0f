//! `cargo xtask bench`: the refresh benchmark, the scale benchmark, or the micro benches.

use crate::{Stop, cargo, run};

pub(crate) fn run(args: &[String]) -> Result<(), Stop> {
    let (ours, passed) = match args.iter().position(|a| a == "--") {
        Some(i) => (&args[..i], &args[i + 1..]),
        None => (args, &[][..]),
    };
    let scale = ours.iter().any(|a| a == "--scale");
    let ours: Vec<&str> = ours
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--scale")
        .collect();
    if scale {
        return scale_bench(&ours, passed);
    }
    let mut cmd = cargo();
    match ours.as_slice() {
        [] => {
            cmd.args(["run", "--release", "-p", "integrations-benches", "--bin"])
                .args(["refresh-bench", "--"]);
        }
        ["--quick"] => {
            // The short mode CI runs so that the benchmark cannot rot: a debug build, and
            // it fails on errors only, never on a missed performance target.
            cmd.args([
                "run",
                "-p",
                "integrations-benches",
                "--bin",
                "refresh-bench",
            ])
            .args(["--", "--quick"]);
        }
        ["--micro"] => {
            cmd.args(["bench", "-p", "integrations-benches"]);
            if !passed.is_empty() {
                cmd.arg("--");
            }
        }
        other => {
            return Err(Stop(format!(
                "bench takes --quick, --micro or --scale [--quick], then `-- ARGS` for the \
                 benchmark; got {other:?}"
            )));
        }
    }
    cmd.args(passed);
    run::status(&mut cmd)
}

/// `--scale [--quick]`: builds the examples' `refresher` (the processes the scale
/// benchmark starts) in the same profile, then runs `scale-bench` beside it. `--quick` is
/// the CI mode: a debug build, 2,000 accounts, one and two processes; it fails on
/// errors (a refresh missed or doubled, an account needing reconnection) only.
fn scale_bench(ours: &[&str], passed: &[String]) -> Result<(), Stop> {
    let quick = match ours {
        [] => false,
        ["--quick"] => true,
        other => {
            return Err(Stop(format!(
                "bench --scale takes --quick, then `-- ARGS` for scale-bench; got {other:?}"
            )));
        }
    };
    let release: &[&str] = if quick { &[] } else { &["--release"] };
    let mut build = cargo();
    build
        .arg("build")
        .args(release)
        .args(["-p", "integrations-examples", "--bin", "refresher"]);
    run::status(&mut build)?;
    let mut cmd = cargo();
    cmd.arg("run")
        .args(release)
        .args(["-p", "integrations-benches", "--bin", "scale-bench", "--"]);
    if quick {
        cmd.arg("--quick");
    }
    cmd.args(passed);
    run::status(&mut cmd)
}
