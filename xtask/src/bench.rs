//! `cargo xtask bench`: the refresh benchmark, or the micro benches.

use crate::{Stop, cargo, run};

pub(crate) fn run(args: &[String]) -> Result<(), Stop> {
    let (ours, passed) = match args.iter().position(|a| a == "--") {
        Some(i) => (&args[..i], &args[i + 1..]),
        None => (args, &[][..]),
    };
    let mut cmd = cargo();
    match ours {
        [] => {
            cmd.args(["run", "--release", "-p", "integrations-benches", "--bin"])
                .args(["refresh-bench", "--"]);
        }
        [q] if q == "--quick" => {
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
        [m] if m == "--micro" => {
            cmd.args(["bench", "-p", "integrations-benches"]);
            if !passed.is_empty() {
                cmd.arg("--");
            }
        }
        other => {
            return Err(Stop(format!(
                "bench takes --quick or --micro, then `-- ARGS` for the benchmark; got {other:?}"
            )));
        }
    }
    cmd.args(passed);
    run::status(&mut cmd)
}
