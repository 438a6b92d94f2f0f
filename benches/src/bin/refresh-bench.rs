//! `refresh-bench`: refresh throughput of `Integrations::refresh_due` per store and
//! concurrency, against the two bare baselines on the same machine and servers.
//!
//! ```text
//! cargo run --release -p integrations-benches --bin refresh-bench [-- OPTIONS]
//!   --n N               accounts per configuration (default 10000; --quick: 200)
//!   --concurrency LIST  comma-separated (default 1,8,64; --quick: 1,8)
//!   --stores LIST       memory,sqlite,postgres (default all three)
//!   --rounds R          rounds per configuration, medians reported (default 3; --quick: 1)
//!   --pool P            connections of the store pool and of baseline (b) on PostgreSQL
//!                       and of the store on SQLite (default 16)
//!   --json PATH         where to write the JSON results (default
//!                       $CARGO_TARGET_DIR/refresh-bench.json, else target/refresh-bench.json)
//!   --quick             small and fast (CI)
//! ```
//!
//! PostgreSQL: `INTEGRATIONS_BENCH_POSTGRES_URL`, else `INTEGRATIONS_TEST_POSTGRES_URL`,
//! else `postgres://postgres@127.0.0.1:5432/test`; each round uses a fresh schema.
//!
//! Baseline (b) runs in two forms on the same rows: one autocommit `UPDATE` per row, and
//! batched as a hand-tuned program would write them (256 rows a statement with
//! `UPDATE ... FROM unnest` on PostgreSQL, 256 a transaction on SQLite). The ratio is the
//! pipeline against the slower of (a) and the faster form of (b).
//!
//! Exits non-zero on any error (a refresh that did not succeed counts as one), never on
//! a missed target.

use chrono::Utc;
use integrations_benches::baseline::{self, Timed};
use integrations_benches::sandbox_proc::{self, SandboxProcess};
use integrations_benches::stores::{self, Place, StoreKind};
use integrations_benches::{BoxError, Result, grants, mem, recorder, stats};
use integrations_core::{
    EncryptionKey, Integrations, RefreshLimits, ServiceConfig, TokenCipher, UserId,
};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Ratio target at concurrency 8 for the database stores.
const RATIO_TARGET: f64 = 0.8;

#[derive(Debug, Clone)]
struct Args {
    n: usize,
    concurrency: Vec<usize>,
    stores: Vec<StoreKind>,
    rounds: usize,
    pool: usize,
    json: PathBuf,
    quick: bool,
    /// Whether platform calls are recorded for the health view (`--health off` measures
    /// the pipeline without it).
    health: bool,
}

const USAGE: &str = "usage: refresh-bench [--quick] [--n N] [--concurrency 1,8,64] \
[--stores memory,sqlite,postgres] [--rounds R] [--pool P] [--json PATH] [--health on|off]";

fn parse_list<T>(s: &str, f: impl Fn(&str) -> Option<T>) -> std::result::Result<Vec<T>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| f(x).ok_or_else(|| format!("bad list item {x:?}")))
        .collect()
}

fn parse_args() -> std::result::Result<Args, String> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let quick = raw.iter().any(|a| a == "--quick");
    let default_json = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("refresh-bench.json");
    let mut args = Args {
        n: if quick { 200 } else { 10_000 },
        concurrency: if quick { vec![1, 8] } else { vec![1, 8, 64] },
        stores: vec![StoreKind::Memory, StoreKind::Sqlite, StoreKind::Postgres],
        rounds: if quick { 1 } else { 3 },
        pool: 16,
        json: default_json,
        quick,
        health: true,
    };
    let mut it = raw.into_iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        let number = |v: String| {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{v:?} is not a positive number"))
        };
        match a.as_str() {
            "--quick" => {}
            "--n" => args.n = number(value()?)?,
            "--rounds" => args.rounds = number(value()?)?,
            "--pool" => args.pool = number(value()?)?,
            "--concurrency" => {
                args.concurrency =
                    parse_list(&value()?, |x| x.parse().ok().filter(|n: &usize| *n > 0))?
            }
            "--stores" => args.stores = parse_list(&value()?, StoreKind::parse)?,
            "--json" => args.json = PathBuf::from(value()?),
            "--health" => {
                args.health = match value()?.as_str() {
                    "on" => true,
                    "off" => false,
                    other => return Err(format!("--health takes on or off, not {other:?}")),
                }
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.concurrency.is_empty() || args.stores.is_empty() {
        return Err("--concurrency and --stores need at least one item".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some(sandbox_proc::SERVE_FLAG) {
        let rt = match tokio::runtime::Runtime::new() {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("refresh-bench sandbox: {e}");
                return ExitCode::FAILURE;
            }
        };
        return match rt.block_on(sandbox_proc::serve()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("refresh-bench sandbox: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("refresh-bench: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("refresh-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("refresh-bench: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The measurements of one configuration (store × concurrency), over its rounds.
#[derive(Debug, Clone)]
struct ConfigResult {
    store: StoreKind,
    concurrency: usize,
    n: usize,
    rounds: usize,
    pipeline_rps: f64,
    pipeline_p50_ms: f64,
    pipeline_p99_ms: f64,
    peak_rss_mib: f64,
    rss_growth_mib: f64,
    a_rps: f64,
    a_p50_ms: f64,
    a_p99_ms: f64,
    b: Option<(f64, f64, f64)>,
    /// The batched form of (b), rows per second.
    b_batched: Option<f64>,
}

impl ConfigResult {
    /// The slower of the two bare parts, each in its best form: (a), and the faster of
    /// (b)'s one-row autocommit and batched forms.
    fn slower_baseline(&self) -> f64 {
        let best_b = match (self.b, self.b_batched) {
            (Some((b, _, _)), Some(batched)) => Some(b.max(batched)),
            (Some((b, _, _)), None) => Some(b),
            (None, batched) => batched,
        };
        match best_b {
            Some(b) => self.a_rps.min(b),
            None => self.a_rps,
        }
    }

    fn ratio(&self) -> f64 {
        self.pipeline_rps / self.slower_baseline().max(1e-9)
    }

    fn to_json(&self) -> serde_json::Value {
        json!({
            "store": self.store.name(),
            "concurrency": self.concurrency,
            "n": self.n,
            "rounds": self.rounds,
            "pipeline": {
                "refreshes_per_sec": self.pipeline_rps,
                "p50_ms": self.pipeline_p50_ms,
                "p99_ms": self.pipeline_p99_ms,
                "peak_rss_mib": self.peak_rss_mib,
                "rss_growth_mib": self.rss_growth_mib,
            },
            "baseline_a_http": {
                "per_sec": self.a_rps, "p50_ms": self.a_p50_ms, "p99_ms": self.a_p99_ms,
            },
            "baseline_b_db": self.b.map(|(r, p50, p99)| json!({
                "per_sec": r, "p50_ms": p50, "p99_ms": p99,
            })),
            "baseline_b_db_batched": self.b_batched.map(|r| json!({
                "rows_per_sec": r, "batch_rows": baseline::BATCH_ROWS,
            })),
            "ratio": self.ratio(),
        })
    }
}

fn ms(mut v: Vec<f64>, q: f64) -> f64 {
    stats::quantile(&mut v, q).unwrap_or(f64::NAN) * 1e3
}

struct Rounds {
    pipeline_rps: Vec<f64>,
    pipeline_lat: Vec<f64>,
    peak: f64,
    growth: f64,
    a: Vec<Timed>,
    b: Vec<Timed>,
    b_batched: Vec<Timed>,
}

async fn run_config(
    kind: StoreKind,
    concurrency: usize,
    args: &Args,
    env: &Env,
    grants: &mut [grants::Grant],
) -> Result<ConfigResult> {
    let n = grants.len();
    let mut r = Rounds {
        pipeline_rps: Vec::new(),
        pipeline_lat: Vec::new(),
        peak: 0.0,
        growth: 0.0,
        a: Vec::new(),
        b: Vec::new(),
        b_batched: Vec::new(),
    };
    for _ in 0..args.rounds {
        // (a) raw refresh calls, same grants, same sandbox, same concurrency.
        r.a.push(baseline::http_refresh(&env.sandbox.info, grants, concurrency).await?);

        // The pipeline on a fresh store: every account due, its token issued a day ago and
        // expiring within the window.
        let (store, place) = stores::open(kind, args.pool, &env.postgres_url).await?;
        let now = Utc::now();
        let ids = stores::fill(
            &store,
            |i| UserId(i as i64 + 1),
            &env.cipher,
            grants,
            now + chrono::Duration::seconds(60),
            now - chrono::Duration::days(1),
            16,
        )
        .await?;
        let integrations = Integrations::builder(store.clone(), env.cipher.clone())
            .provider(env.tiktok.clone())
            .config(ServiceConfig {
                health_recording: args.health,
                ..ServiceConfig::default()
            })
            .build();
        let _ = env.samples.take();
        mem::reset_peak();
        let rss0 = mem::rss_kb().unwrap_or(0);
        let started = Instant::now();
        let report = integrations
            .refresh_due(
                Duration::from_secs(600),
                RefreshLimits {
                    batch: 256.max(4 * concurrency),
                    concurrency,
                    per_provider: concurrency,
                    max_accounts: usize::MAX,
                },
            )
            .await?;
        let elapsed = started.elapsed();
        let peak = mem::peak_kb().unwrap_or(0);
        if report.refreshed != n || report.claimed != n {
            return Err(format!(
                "refresh_due refreshed {} of {n}: {report:?}",
                report.refreshed
            )
            .into());
        }
        r.pipeline_rps
            .push(n as f64 / elapsed.as_secs_f64().max(1e-9));
        r.pipeline_lat.extend(env.samples.take());
        r.peak = r.peak.max(peak as f64 / 1024.0);
        r.growth = r.growth.max(peak.saturating_sub(rss0) as f64 / 1024.0);
        let (unchanged, rows) = stores::read_back(&store, &env.cipher, &ids, grants, 16).await?;
        if unchanged > 0 {
            return Err(format!("{unchanged} refresh tokens were not rotated").into());
        }
        drop(integrations);
        drop(store);

        // (b) raw single-row updates of the token columns, same database.
        match &place {
            Place::Memory => {}
            Place::Sqlite(_) => {
                let path = place.sqlite_path().ok_or("no SQLite path")?;
                r.b.push(baseline::sqlite_updates(&path, rows.clone(), concurrency).await?);
                r.b_batched
                    .push(baseline::sqlite_updates_batched(&path, rows, concurrency).await?);
            }
            Place::Postgres { url, schema } => {
                r.b.push(
                    baseline::pg_updates(url, schema, rows.clone(), concurrency, args.pool).await?,
                );
                r.b_batched.push(
                    baseline::pg_updates_batched(url, schema, rows, concurrency, args.pool).await?,
                );
            }
        }
        drop(place);
    }
    let rates = |t: &[Timed]| stats::median(t.iter().map(Timed::rate).collect()).unwrap_or(0.0);
    let lats = |t: &[Timed]| {
        t.iter()
            .flat_map(|t| t.latencies.iter().copied())
            .collect::<Vec<_>>()
    };
    Ok(ConfigResult {
        store: kind,
        concurrency,
        n,
        rounds: args.rounds,
        pipeline_rps: stats::median(r.pipeline_rps).unwrap_or(0.0),
        pipeline_p50_ms: ms(r.pipeline_lat.clone(), 0.5),
        pipeline_p99_ms: ms(r.pipeline_lat, 0.99),
        peak_rss_mib: r.peak,
        rss_growth_mib: r.growth,
        a_rps: rates(&r.a),
        a_p50_ms: ms(lats(&r.a), 0.5),
        a_p99_ms: ms(lats(&r.a), 0.99),
        b: (!r.b.is_empty()).then(|| (rates(&r.b), ms(lats(&r.b), 0.5), ms(lats(&r.b), 0.99))),
        b_batched: (!r.b_batched.is_empty()).then(|| rates(&r.b_batched)),
    })
}

struct Env {
    sandbox: SandboxProcess,
    tiktok: std::sync::Arc<integrations_tiktok::TikTokProvider>,
    cipher: TokenCipher,
    samples: recorder::Samples,
    postgres_url: String,
}

fn header() -> String {
    format!(
        "{:<9} {:>4} {:>10} {:>8} {:>8} {:>8} {:>8} | {:>10} {:>7} | {:>10} {:>7} {:>10} | {:>6}",
        "store",
        "conc",
        "refresh/s",
        "p50 ms",
        "p99 ms",
        "peakMiB",
        "+MiB",
        "(a) http/s",
        "p50 ms",
        "(b) upd/s",
        "p50 ms",
        "(b) batch",
        "ratio"
    )
}

fn row(r: &ConfigResult) -> String {
    let (b, b50) = match r.b {
        Some((b, p50, _)) => (format!("{b:.0}"), format!("{p50:.2}")),
        None => ("n/a".to_owned(), "-".to_owned()),
    };
    let batched = r
        .b_batched
        .map_or_else(|| "n/a".to_owned(), |b| format!("{b:.0}"));
    format!(
        "{:<9} {:>4} {:>10.0} {:>8.2} {:>8.2} {:>8.1} {:>8.1} | {:>10.0} {:>7.2} | {:>10} {:>7} {:>10} | {:>6.2}",
        r.store.name(),
        r.concurrency,
        r.pipeline_rps,
        r.pipeline_p50_ms,
        r.pipeline_p99_ms,
        r.peak_rss_mib,
        r.rss_growth_mib,
        r.a_rps,
        r.a_p50_ms,
        b,
        b50,
        batched,
        r.ratio()
    )
}

/// Why this run's ratios cannot be held against the target, if they cannot.
fn not_judged(n: usize) -> Option<&'static str> {
    if cfg!(debug_assertions) {
        Some("unoptimized build")
    } else if n < 1000 {
        Some("n below 1000")
    } else {
        None
    }
}

fn summary(results: &[ConfigResult], n: usize) -> String {
    let not_judged = not_judged(n);
    let mut parts = Vec::new();
    for r in results
        .iter()
        .filter(|r| r.concurrency == 8 && r.store != StoreKind::Memory)
    {
        let verdict = match not_judged {
            Some(why) => format!("not judged: {why}"),
            None if r.ratio() >= RATIO_TARGET => "met".to_owned(),
            None => "MISSED".to_owned(),
        };
        parts.push(format!("{} {:.2} ({verdict})", r.store.name(), r.ratio()));
    }
    let worst = results
        .iter()
        .min_by(|a, b| a.ratio().total_cmp(&b.ratio()))
        .map(|r| {
            format!(
                "; lowest ratio {:.2} ({} c={})",
                r.ratio(),
                r.store.name(),
                r.concurrency
            )
        })
        .unwrap_or_default();
    if parts.is_empty() {
        format!("summary: n={n}; no database store at concurrency 8 was run{worst}")
    } else {
        format!(
            "summary: n={n}; pipeline/min(a,b) at concurrency 8 (target >= {RATIO_TARGET}): {}{worst}",
            parts.join(", ")
        )
    }
}

async fn run(args: Args) -> Result<()> {
    let samples = recorder::install().ok_or("a metrics recorder is already installed")?;
    let sandbox = SandboxProcess::spawn()?;
    println!(
        "refresh-bench: sandbox (child process {}) at {}; platform: TikTok (refresh-token rotation)",
        sandbox.id(),
        sandbox.info.base_url
    );
    let tiktok = grants::tiktok(&sandbox.info)?;
    let env = Env {
        tiktok: tiktok.clone(),
        sandbox,
        cipher: TokenCipher::new(EncryptionKey::generate()),
        samples,
        postgres_url: integrations_benches::postgres_url(),
    };
    if !mem::reset_peak() {
        println!("refresh-bench: cannot reset VmHWM here; peak memory covers the whole run");
    }
    let t = Instant::now();
    let mut grants = grants::mint(&tiktok, args.n, 32).await?;
    println!(
        "refresh-bench: minted {} TikTok grants (authorize + PKCE code exchange each) in {:.1}s",
        grants.len(),
        t.elapsed().as_secs_f64()
    );
    println!(
        "refresh-bench: n={} rounds={} pool={} profile={}",
        args.n,
        args.rounds,
        args.pool,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!("\n{}", header());
    let mut results = Vec::new();
    for &kind in &args.stores {
        for &c in &args.concurrency {
            let r = run_config(kind, c, &args, &env, &mut grants)
                .await
                .map_err(|e| -> BoxError { format!("{} c={c}: {e}", kind.name()).into() })?;
            println!("{}", row(&r));
            results.push(r);
        }
    }
    let line = summary(&results, args.n);
    println!("\n{line}");
    let doc = json!({
        "benchmark": "refresh-bench",
        "quick": args.quick,
        "health": args.health,
        "machine": integrations_benches::machine(),
        "platform": "tiktok",
        "latency": "per refreshed account: from its task holding the concurrency permits to its lease released (platform call, opening and sealing, the store write that also releases the lease, including the wait for its group commit), from integrations_refresh_duration_seconds",
        "results": results.iter().map(ConfigResult::to_json).collect::<Vec<_>>(),
        "summary": line,
    });
    if let Some(dir) = args.json.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.json, serde_json::to_string_pretty(&doc)?)?;
    println!("refresh-bench: JSON written to {}", args.json.display());
    Ok(())
}
