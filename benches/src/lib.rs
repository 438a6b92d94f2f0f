//! Shared parts of the refresh benchmark (`refresh-bench`) and the criterion micro
//! benches: the sandbox in a child process, minting real TikTok grants, filling stores,
//! the two bare baselines, latency percentiles and peak memory.
//!
//! See `docs/performance.md` for what each figure measures and the latest results.

pub mod baseline;
pub mod grants;
pub mod mem;
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
