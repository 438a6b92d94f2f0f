//! Shared parts of the refresh benchmark (`refresh-bench`) and the criterion micro
//! benches: the sandbox in a child process, minting real TikTok grants, filling stores,
//! the two bare baselines, latency percentiles and peak memory; and the parts of the
//! scale benchmark (`scale-bench`): bulk seeding and filling, `/proc` figures, the chart.
//!
//! See `docs/performance.md` for what each figure measures and the latest results.

pub mod baseline;
pub mod bulk;
pub mod chart;
pub mod grants;
pub mod mem;
pub mod procstat;
pub mod recorder;
pub mod sandbox_proc;
pub mod stats;
pub mod stores;

/// A boxed error for the benchmark's plumbing.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `Result` with [`BoxError`].
pub type Result<T, E = BoxError> = std::result::Result<T, E>;

/// The User-Agent the benchmark's clients send.
pub const USER_AGENT: &str = "rust:integrations-benches:0.1.0 (by /u/integrations-demo)";

/// Environment variable naming the PostgreSQL server of the benchmark.
pub const POSTGRES_URL_ENV: &str = "INTEGRATIONS_BENCH_POSTGRES_URL";
/// The test suite's variable, used when [`POSTGRES_URL_ENV`] is unset.
pub const TEST_POSTGRES_URL_ENV: &str = "INTEGRATIONS_TEST_POSTGRES_URL";
/// The default server (the one `.ci/run` starts).
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The PostgreSQL URL: `INTEGRATIONS_BENCH_POSTGRES_URL`, else
/// `INTEGRATIONS_TEST_POSTGRES_URL`, else [`DEFAULT_POSTGRES_URL`].
pub fn postgres_url() -> String {
    std::env::var(POSTGRES_URL_ENV)
        .or_else(|_| std::env::var(TEST_POSTGRES_URL_ENV))
        .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// A random lowercase hex suffix for schema and file names.
pub fn random_suffix() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`), or an empty string.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The machine, for the JSON results: CPUs and their model, memory, the commit, the
/// build profile, and the load average when the run started.
pub fn machine() -> serde_json::Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let mem_total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_owned())
        })
        .unwrap_or_default();
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    serde_json::json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": cpu,
        "mem_total_kib": mem_total,
        "commit": commit,
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        "loadavg": load_average(),
    })
}
