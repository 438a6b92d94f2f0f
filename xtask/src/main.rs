//! The project's tasks, run as `cargo xtask <task>` (an alias in `.cargo/config.toml`).
//!
//! - `test`: checks and provides what the test suite needs (PostgreSQL, Chromium and
//!   chromedriver), then runs `cargo test --workspace --no-fail-fast` and prints a summary.
//! - `setup`: only the checks and provisioning of `test`.
//! - `fuzz`: builds and runs every `cargo fuzz` target of `fuzz/` for a bounded time.
//! - `bench`: the refresh benchmark (`--quick` as CI runs it), the scale benchmark
//!   (`--scale`) or the micro benches.
//! - `package`: the packaging check of the publishable crates.
//! - `mutants`: mutation testing of the state machine, `send`, the toolkit and the stores.
//!
//! Standard library only, so that it builds in seconds on a fresh machine.

mod bench;
mod fuzz;
mod mutants;
mod package;
mod prereq;
mod run;
mod test;

use std::path::PathBuf;
use std::process::ExitCode;

const HELP: &str = "\
usage: cargo xtask <task> [options]

tasks:
  test [ARGS...]     check PostgreSQL (INTEGRATIONS_TEST_POSTGRES_URL), Chromium and
                     chromedriver, providing them where this machine allows, then run
                     `cargo test --workspace --no-fail-fast [ARGS...]` and summarize.
                     INTEGRATIONS_SKIP_POSTGRES=1 / INTEGRATIONS_SKIP_BROWSER=1 skip
                     those tests explicitly.
  setup              only the prerequisite checks (and installs) of `test`.
  fuzz [--seconds N] [--target NAME]... [--report FILE] [--list]
                     build the fuzz targets of fuzz/ and run each for N seconds
                     (default 60) on its seed corpus; prints a table of executions per
                     second and coverage; fails on any crash.
  bench [--scale] [--quick | --micro] [-- ARGS...]
                     refresh-bench in release mode (--quick: its short CI mode, in debug;
                     --micro: the criterion micro benches); --scale: scale-bench, a
                     million accounts drained by 1-3 refresher processes (--quick: 2,000).
  mutants [GROUP|FILE...] [--jobs N] [--report FILE] [--list] [--table-only]
                     `cargo mutants` on each group of files (default: all) with the
                     tests that check it; prints caught / missed / timeout / unviable
                     per file (docs/testing.md, \"Mutation testing\");
                     --table-only prints the table of the last results.
  package [--allow-dirty]
                     `cargo package` of the six published crates (contents only) and a
                     verified `cargo publish --dry-run` of integrations-core.
  help               this text.
";

/// A task that cannot go on, with what to do about it.
#[derive(Debug)]
pub(crate) struct Stop(pub(crate) String);

impl<T: Into<String>> From<T> for Stop {
    fn from(message: T) -> Self {
        Self(message.into())
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_else(|| "help".to_owned());
    let rest: Vec<String> = args.collect();
    let result = match task.as_str() {
        "test" => test::run(&rest),
        "setup" => prereq::setup(&rest),
        "fuzz" => fuzz::run(&rest),
        "bench" => bench::run(&rest),
        "package" => package::run(&rest),
        "mutants" => mutants::run(&rest),
        "help" | "-h" | "--help" => {
            print!("{HELP}");
            Ok(())
        }
        other => Err(Stop(format!("unknown task `{other}`\n\n{HELP}"))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Stop(message)) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (the parent of this crate's folder).
pub(crate) fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// The `cargo` that runs this task (so `+toolchain` choices carry over).
pub(crate) fn cargo() -> std::process::Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.current_dir(workspace_root());
    cmd
}

/// Prints a line prefixed with `xtask:` to stderr, flushed before any child prints.
pub(crate) fn say(message: impl std::fmt::Display) {
    eprintln!("xtask: {message}");
}
