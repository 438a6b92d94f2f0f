//! `scale-bench`: a million due TikTok accounts in PostgreSQL, drained by 1, 2 and 3 real
//! refresher processes (the examples' `refresher --once --sandbox-url`) against the
//! platform sandbox in a process of its own, then a concurrency sweep with one process.
//!
//! ```text
//! cargo build --release -p integrations-examples --bin refresher
//! cargo run --release -p integrations-benches --bin scale-bench [-- OPTIONS]
//!   --n N               accounts per run (default 1000000; --quick: 2000)
//!   --processes LIST    refresher processes per run (default 1,2,3; --quick: 1,2)
//!   --concurrency C     each refresher's --concurrency and --per-provider in those runs
//!                       (default 16)
//!   --sweep LIST        concurrencies of the one-process sweep (default 8,16,64; --quick:
//!                       8); the point at C reuses the one-process run
//!   --refresher PATH    the refresher binary (default: `refresher` beside this binary)
//!   --json PATH         the results (default $CARGO_TARGET_DIR/scale-bench.json, else
//!                       target/scale-bench.json)
//!   --chart PATH        also draw the PNG chart there (docs/scale-bench.png)
//!   --font PATH         its TrueType font (default DejaVuSans from fonts-dejavu-core)
//!   --quick             small and fast (CI): fails on errors only
//! ```
//!
//! PostgreSQL: `INTEGRATIONS_BENCH_POSTGRES_URL`, else `INTEGRATIONS_TEST_POSTGRES_URL`,
//! else `postgres://postgres@127.0.0.1:5432/test`. Every run starts a fresh sandbox,
//! seeds N grants there (`POST /_sandbox/tiktok/grants/seed`), fills a fresh schema with N
//! accounts holding the same tokens, sealed, all due, and drops the schema afterwards.
//!
//! Per run: the drain time (the refreshers' start to the last one's exit), refreshes per
//! second, each refresher's peak RSS (`VmHWM`) and RSS samples, the CPU of PostgreSQL
//! (the refreshers' backends, found by their `application_name`, and every server
//! process, since the server may be shared), the sandbox and the refreshers as a share of
//! the machine, how busy the machine was in all, and exactly-once:
//! the sandbox's per-grant counts (every grant refreshed once, none twice, none missed,
//! none revoked) and the table (no account `needs_reconnect`, none still due or leased,
//! every row rewritten). Exits non-zero on any error or exactly-once failure, never on
//! speed.

use chrono::Utc;
use integrations_benches::bulk::{self, TableState};
use integrations_benches::chart::{self, Panel};
use integrations_benches::procstat::{self, CpuMeter};
use integrations_benches::sandbox_proc::{self, SandboxProcess};
use integrations_benches::stores::{self, Place, StoreKind};
use integrations_benches::{BoxError, Result};
use integrations_core::{EncryptionKey, TokenCipher};
use integrations_sandbox::GrantSummary;
use serde_json::json;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const USAGE: &str = "usage: scale-bench [--quick] [--n N] [--processes 1,2,3] [--concurrency C] \
[--sweep 8,16,64] [--refresher PATH] [--json PATH] [--chart PATH] [--font PATH]";

/// The refreshers' due window (their default).
const WINDOW_SECS: u64 = 600;
/// How often the drain is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// Accounts whose stored metadata and tokens are checked against the real code per run.
const CHECK_SAMPLE: u64 = 40;

#[derive(Debug, Clone)]
struct Args {
    n: u64,
    processes: Vec<usize>,
    concurrency: usize,
    sweep: Vec<usize>,
    refresher: Option<PathBuf>,
    json: PathBuf,
    chart: Option<PathBuf>,
    font: PathBuf,
    quick: bool,
}

fn parse_list(s: &str) -> std::result::Result<Vec<usize>, String> {
    let list: Vec<usize> = s
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| {
            x.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("bad list item {x:?}: a positive number"))
        })
        .collect::<std::result::Result<_, _>>()?;
    if list.is_empty() {
        return Err(format!("{s:?} is an empty list"));
    }
    Ok(list)
}

fn parse_args(raw: Vec<String>) -> std::result::Result<Args, String> {
    let quick = raw.iter().any(|a| a == "--quick");
    let default_json = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("scale-bench.json");
    let mut args = Args {
        n: if quick { 2_000 } else { 1_000_000 },
        processes: if quick { vec![1, 2] } else { vec![1, 2, 3] },
        concurrency: 16,
        sweep: if quick { vec![8] } else { vec![8, 16, 64] },
        refresher: None,
        json: default_json,
        chart: None,
        font: PathBuf::from(chart::DEFAULT_FONT),
        quick,
    };
    let mut it = raw.into_iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--quick" => {}
            "--n" => {
                let v = value()?;
                args.n = v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (1..=integrations_sandbox::MAX_SEEDED_GRANTS).contains(n))
                    .ok_or_else(|| {
                        format!(
                            "--n {v:?}: a number from 1 to {}",
                            integrations_sandbox::MAX_SEEDED_GRANTS
                        )
                    })?;
            }
            "--processes" => args.processes = parse_list(&value()?)?,
            "--concurrency" => {
                args.concurrency = *parse_list(&value()?)?
                    .first()
                    .ok_or("--concurrency needs a number")?
            }
            "--sweep" => args.sweep = parse_list(&value()?)?,
            "--refresher" => args.refresher = Some(PathBuf::from(value()?)),
            "--json" => args.json = PathBuf::from(value()?),
            "--chart" => args.chart = Some(PathBuf::from(value()?)),
            "--font" => args.font = PathBuf::from(value()?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some(sandbox_proc::SERVE_FLAG) {
        return match tokio::runtime::Runtime::new().map(|rt| rt.block_on(sandbox_proc::serve())) {
            Ok(Ok(())) => ExitCode::SUCCESS,
            Ok(Err(e)) => {
                eprintln!("scale-bench sandbox: {e}");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("scale-bench sandbox: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let args = match parse_args(std::env::args().skip(1).collect()) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("scale-bench: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("scale-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scale-bench: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What one refresher process reported and used.
#[derive(Debug, Clone, Default)]
struct ProcResult {
    pid: u32,
    exit: Option<i32>,
    exit_secs: f64,
    peak_rss_mib: f64,
    /// (seconds since the drain started, RSS MiB).
    rss: Vec<(f64, f64)>,
    cpu_secs: f64,
    /// The `pass 1` report line's figures, by name.
    report: Vec<(String, u64)>,
    stderr_tail: String,
}

impl ProcResult {
    fn reported(&self, name: &str) -> u64 {
        self.report
            .iter()
            .find(|(k, _)| k == name)
            .map_or(0, |(_, v)| *v)
    }

    /// RSS at about `fraction` of the drain (the nearest sample).
    fn rss_at(&self, fraction: f64, drain: f64) -> f64 {
        let t = fraction * drain;
        self.rss
            .iter()
            .min_by(|a, b| (a.0 - t).abs().total_cmp(&(b.0 - t).abs()))
            .map_or(0.0, |s| s.1)
    }
}

/// One drain.
#[derive(Debug, Clone)]
struct RunResult {
    processes: usize,
    concurrency: usize,
    n: u64,
    seed_secs: f64,
    fill_secs: f64,
    drain_secs: f64,
    procs: Vec<ProcResult>,
    /// Every PostgreSQL process (the server is shared).
    pg_cpu_secs: f64,
    /// The backends of the refreshers' connections.
    pg_ours_cpu_secs: f64,
    /// The machine's busy share over the drain (all processes).
    machine_busy: f64,
    sandbox_cpu_secs: f64,
    sandbox_peak_rss_mib: f64,
    cores: usize,
    summary: GrantSummary,
    table: TableState,
    /// Why exactly-once failed; empty when it held.
    failures: Vec<String>,
}

impl RunResult {
    fn rate(&self) -> f64 {
        self.n as f64 / self.drain_secs.max(1e-9)
    }

    fn share(&self, cpu_secs: f64) -> f64 {
        cpu_secs / (self.drain_secs.max(1e-9) * self.cores.max(1) as f64)
    }

    fn refreshers_cpu(&self) -> f64 {
        self.procs.iter().map(|p| p.cpu_secs).sum()
    }

    fn to_json(&self) -> serde_json::Value {
        json!({
            "processes": self.processes,
            "concurrency": self.concurrency,
            "per_provider": self.concurrency,
            "n": self.n,
            "seed_secs": self.seed_secs,
            "fill_secs": self.fill_secs,
            "drain_secs": self.drain_secs,
            "refreshes_per_sec": self.rate(),
            "postgres_cpu_secs": self.pg_cpu_secs,
            "postgres_cpu_share": self.share(self.pg_cpu_secs),
            "postgres_refresher_backends_cpu_share": self.share(self.pg_ours_cpu_secs),
            "machine_busy_share": self.machine_busy,
            "sandbox_cpu_share": self.share(self.sandbox_cpu_secs),
            "refreshers_cpu_share": self.share(self.refreshers_cpu()),
            "sandbox_peak_rss_mib": self.sandbox_peak_rss_mib,
            "refreshers": self.procs.iter().map(|p| json!({
                "pid": p.pid,
                "exit": p.exit,
                "exit_secs": p.exit_secs,
                "peak_rss_mib": p.peak_rss_mib,
                "cpu_secs": p.cpu_secs,
                "report": p.report.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
                "rss_samples_mib": p.rss.iter().map(|(t, m)| json!([(t * 10.0).round() / 10.0, (m * 10.0).round() / 10.0])).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "sandbox_summary": self.summary,
            "table": self.table,
            "exactly_once": self.failures.is_empty(),
            "failures": self.failures,
        })
    }
}

struct Env {
    postgres_url: String,
    refresher: PathBuf,
    http: reqwest::Client,
    cores: usize,
}

async fn run(args: Args) -> Result<()> {
    let refresher = match &args.refresher {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .ok_or("this binary has no directory")?
            .join("refresher"),
    };
    if !refresher.is_file() {
        return Err(format!(
            "no refresher binary at {}: build it first (cargo build {}-p integrations-examples \
             --bin refresher) or pass --refresher PATH",
            refresher.display(),
            if cfg!(debug_assertions) {
                ""
            } else {
                "--release "
            }
        )
        .into());
    }
    if let Some(path) = &args.chart {
        // Fail before an hour of work if the chart cannot be drawn.
        chart::load_font(&args.font)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
    }
    let env = Env {
        postgres_url: integrations_benches::postgres_url(),
        refresher,
        http: reqwest::Client::builder()
            .user_agent(integrations_benches::USER_AGENT)
            .build()?,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let machine = integrations_benches::machine();
    println!(
        "scale-bench: n={} processes={:?} concurrency={} sweep={:?} profile={} cores={} load {}",
        args.n,
        args.processes,
        args.concurrency,
        args.sweep,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        env.cores,
        integrations_benches::load_average()
    );
    println!("scale-bench: refresher {}", env.refresher.display());
    let mut by_processes = Vec::new();
    for &k in &args.processes {
        let r = run_one(&env, args.n, k, args.concurrency)
            .await
            .map_err(|e| -> BoxError { format!("{k} processes: {e}").into() })?;
        println!("{}", line(&r));
        by_processes.push(r);
    }
    let mut sweep = Vec::new();
    for &c in &args.sweep {
        if let Some(r) = by_processes
            .iter()
            .find(|r| r.processes == 1 && r.concurrency == c)
        {
            sweep.push(r.clone());
            continue;
        }
        let r = run_one(&env, args.n, 1, c)
            .await
            .map_err(|e| -> BoxError { format!("concurrency {c}: {e}").into() })?;
        println!("{}", line(&r));
        sweep.push(r);
    }
    sweep.sort_by_key(|r| r.concurrency);

    println!(
        "\nrefresher processes (concurrency {} each):",
        args.concurrency
    );
    println!("{}", header());
    for r in &by_processes {
        println!("{}", row(r));
    }
    println!("\none refresher process, by concurrency:");
    println!("{}", header());
    for r in &sweep {
        println!("{}", row(r));
    }
    let failed: Vec<String> = by_processes
        .iter()
        .chain(&sweep)
        .filter(|r| !r.failures.is_empty())
        .map(|r| {
            format!(
                "k={} c={}: {}",
                r.processes,
                r.concurrency,
                r.failures.join("; ")
            )
        })
        .collect();
    let doc = json!({
        "benchmark": "scale-bench",
        "quick": args.quick,
        "machine": machine,
        "platform": "tiktok",
        "window_secs": WINDOW_SECS,
        "refresher": "integrations-examples refresher --once --sandbox-url (Integrations::refresh_due)",
        "by_processes": by_processes.iter().map(RunResult::to_json).collect::<Vec<_>>(),
        "by_concurrency": sweep.iter().map(RunResult::to_json).collect::<Vec<_>>(),
        "exactly_once": failed.is_empty(),
    });
    if let Some(dir) = args.json.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.json, serde_json::to_string_pretty(&doc)?)?;
    println!("\nscale-bench: JSON written to {}", args.json.display());
    if let Some(path) = &args.chart {
        let panels = [
            Panel {
                title: format!(
                    "by refresher processes (concurrency {} each)",
                    args.concurrency
                ),
                x_label: "refresher processes".into(),
                points: by_processes
                    .iter()
                    .map(|r| (r.processes as u32, r.rate()))
                    .collect(),
            },
            Panel {
                title: "one process, by concurrency".into(),
                x_label: "concurrency (and per-platform limit)".into(),
                points: sweep
                    .iter()
                    .map(|r| (r.concurrency as u32, r.rate()))
                    .collect(),
            },
        ];
        let title = format!(
            "{} due TikTok accounts drained from PostgreSQL ({} cores)",
            thousands(args.n),
            env.cores
        );
        chart::draw(path, &title, &panels)?;
        println!("scale-bench: chart written to {}", path.display());
    }
    if !failed.is_empty() {
        return Err(format!("exactly-once failed: {}", failed.join(" | ")).into());
    }
    println!("scale-bench: exactly-once held in every run");
    Ok(())
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The refreshers' `DATABASE_URL`: the server URL with the schema as its search path and
/// `application` as the connections' `application_name` (to find their server backends).
fn with_schema(url: &str, schema: &str, application: &str) -> Result<String> {
    let mut u = url::Url::parse(url).map_err(|e| format!("the PostgreSQL URL: {e}"))?;
    u.query_pairs_mut()
        .append_pair("options", &format!("-csearch_path={schema}"))
        .append_pair("application_name", application);
    Ok(u.to_string())
}

/// The server processes serving connections named `application`.
async fn backends(conn: &mut diesel_async::AsyncPgConnection, application: &str) -> Vec<u32> {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Backend {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    diesel::sql_query("SELECT pid FROM pg_stat_activity WHERE application_name = $1")
        .bind::<diesel::sql_types::Text, _>(application)
        .load::<Backend>(conn)
        .await
        .map(|rows| {
            rows.into_iter()
                .filter_map(|b| u32::try_from(b.pid).ok())
                .collect()
        })
        .unwrap_or_default()
}

async fn run_one(env: &Env, n: u64, processes: usize, concurrency: usize) -> Result<RunResult> {
    println!("scale-bench: run: {processes} process(es), concurrency {concurrency}, n={n}");
    let sandbox = SandboxProcess::spawn()?;
    let info = sandbox.info.clone();
    let seed = bulk::seed_request(n);
    let t = Instant::now();
    let seeded = bulk::seed_sandbox(&env.http, &info, &seed).await?;
    let seed_secs = t.elapsed().as_secs_f64();
    if seeded.created != n {
        return Err(format!("the sandbox seeded {} grants of {n}", seeded.created).into());
    }

    let (store, place) = stores::open(StoreKind::Postgres, 2, &env.postgres_url).await?;
    let Place::Postgres { url, schema } = &place else {
        return Err("the store is not on PostgreSQL".into());
    };
    let key = EncryptionKey::generate();
    let key_text = key.to_base64();
    let cipher = TokenCipher::new(key);
    let t = Instant::now();
    let inserted = bulk::fill(url, schema, &seed, &info.base_url, &cipher, Utc::now()).await?;
    let fill_secs = t.elapsed().as_secs_f64();
    if inserted != n {
        return Err(format!("inserted {inserted} accounts of {n}").into());
    }
    let tiktok = bulk::tiktok(&info)?;
    bulk::check_rows(store.as_ref(), &cipher, &tiktok, &seed, CHECK_SAMPLE).await?;
    drop(store);
    println!(
        "scale-bench:   seeded {n} grants in {seed_secs:.1}s; filled and checked {n} sealed accounts in {fill_secs:.1}s"
    );

    let application = format!("scale-bench-{}", integrations_benches::random_suffix());
    let database_url = with_schema(url, schema, &application)?;
    let mut watcher = bulk::connect(url, schema).await?;
    let mut pg = CpuMeter::start("postgres");
    let machine0 = procstat::machine_ticks();
    let sandbox_ticks0 = procstat::cpu_ticks(sandbox.id()).unwrap_or(0);
    let started = Instant::now();
    let mut children = Vec::new();
    for _ in 0..processes {
        children.push(spawn_refresher(
            env,
            &database_url,
            &key_text,
            &info.base_url,
            concurrency,
        )?);
    }
    let mut results: Vec<ProcResult> = children
        .iter()
        .map(|c| ProcResult {
            pid: c.child.id(),
            ..ProcResult::default()
        })
        .collect();
    let mut ticks: Vec<u64> = vec![0; children.len()];
    let mut sandbox_ticks = sandbox_ticks0;
    let mut sandbox_peak_kb = 0;
    let limit = Duration::from_secs(120 + n / 100);
    let mut next_note = Duration::from_secs(30);
    let mut samples = 0u64;
    loop {
        let now = started.elapsed();
        // Every sample while the refreshers connect, then once a second.
        if now < Duration::from_secs(3) || samples.is_multiple_of(4) {
            pg.mark(backends(&mut watcher, &application).await);
        }
        samples += 1;
        let mut running = 0;
        for (i, c) in children.iter_mut().enumerate() {
            if results[i].exit.is_some() {
                continue;
            }
            if let Some((rss, hwm)) = procstat::rss_hwm_kb(c.child.id()) {
                results[i]
                    .rss
                    .push((now.as_secs_f64(), rss as f64 / 1024.0));
                results[i].peak_rss_mib = results[i].peak_rss_mib.max(hwm as f64 / 1024.0);
            }
            if let Some(t) = procstat::cpu_ticks(c.child.id()) {
                ticks[i] = ticks[i].max(t);
            }
            match c.child.try_wait()? {
                Some(status) => {
                    results[i].exit = Some(status.code().unwrap_or(-1));
                    results[i].exit_secs = now.as_secs_f64();
                }
                None => running += 1,
            }
        }
        pg.sample();
        if let Some(t) = procstat::cpu_ticks(sandbox.id()) {
            sandbox_ticks = sandbox_ticks.max(t);
        }
        if let Some((_, hwm)) = procstat::rss_hwm_kb(sandbox.id()) {
            sandbox_peak_kb = sandbox_peak_kb.max(hwm);
        }
        if running == 0 {
            break;
        }
        if now > limit {
            for c in &mut children {
                let _ = c.child.kill();
                let _ = c.child.wait();
            }
            return Err(format!("the drain took longer than {}s", limit.as_secs()).into());
        }
        if now >= next_note {
            next_note += Duration::from_secs(30);
            let rss: Vec<String> = results
                .iter()
                .map(|r| format!("{:.0}", r.rss.last().map_or(0.0, |s| s.1)))
                .collect();
            println!(
                "scale-bench:   {:.0}s: {running} refresher(s) running, RSS MiB {}, PostgreSQL CPU {:.0}s",
                now.as_secs_f64(),
                rss.join("/"),
                pg.seconds()
            );
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    // The last exit, to the sampling period.
    let drain_secs = results.iter().map(|r| r.exit_secs).fold(0.0, f64::max);
    let machine_busy = match (machine0, procstat::machine_ticks()) {
        (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => (b1 - b0) as f64 / (t1 - t0) as f64,
        _ => f64::NAN,
    };
    drop(watcher);
    let tps = procstat::ticks_per_sec();
    for ((r, c), t) in results.iter_mut().zip(children).zip(ticks) {
        r.cpu_secs = t as f64 / tps;
        let (stdout, stderr) = c.output()?;
        r.report = parse_report(&stdout).unwrap_or_default();
        r.stderr_tail = tail(&stderr, 2000);
    }

    let summary = bulk::summary(&env.http, &info, &seed).await?;
    let table = bulk::table_state(url, schema, WINDOW_SECS as i64).await?;
    let mut failures = Vec::new();
    for r in &results {
        if r.exit != Some(0) {
            failures.push(format!(
                "refresher {} exited with {:?}: {}",
                r.pid, r.exit, r.stderr_tail
            ));
        } else if r.report.is_empty() {
            failures.push(format!("refresher {} printed no pass report", r.pid));
        }
        for field in ["needs_reconnect", "failed_transient", "failed_other"] {
            if r.reported(field) > 0 {
                failures.push(format!(
                    "refresher {} reported {field} {}",
                    r.pid,
                    r.reported(field)
                ));
            }
        }
    }
    let reported: u64 = results.iter().map(|r| r.reported("refreshed")).sum();
    let checks = [
        (summary.grants == n, "sandbox grants"),
        (summary.refreshed_once == n, "grants refreshed exactly once"),
        (summary.never_refreshed == 0, "grants never refreshed"),
        (
            summary.refreshed_more == 0,
            "grants refreshed twice or more",
        ),
        (summary.revoked == 0, "grants revoked"),
        (reported == n, "refreshes the refreshers reported"),
        (table.accounts == n as i64, "accounts in the table"),
        (table.refreshed == n as i64, "accounts rewritten"),
        (table.needs_reconnect == 0, "accounts in needs_reconnect"),
        (table.still_due == 0, "accounts still due"),
        (table.leased == 0, "accounts still leased"),
    ];
    for (ok, what) in checks {
        if !ok {
            failures.push(format!(
                "{what}: sandbox {summary:?}, table {table:?}, reported {reported}"
            ));
        }
    }
    let result = RunResult {
        processes,
        concurrency,
        n,
        seed_secs,
        fill_secs,
        drain_secs,
        procs: results,
        pg_cpu_secs: pg.seconds(),
        pg_ours_cpu_secs: pg.marked_seconds(),
        machine_busy,
        sandbox_cpu_secs: sandbox_ticks.saturating_sub(sandbox_ticks0) as f64 / tps,
        sandbox_peak_rss_mib: sandbox_peak_kb as f64 / 1024.0,
        cores: env.cores,
        summary,
        table,
        failures,
    };
    drop(place);
    drop(sandbox);
    Ok(result)
}

/// A refresher child and the threads draining its output.
struct Refresher {
    child: Child,
    stdout: std::thread::JoinHandle<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Refresher {
    fn output(self) -> Result<(String, String)> {
        let out = self.stdout.join().map_err(|_| "stdout reader panicked")?;
        let err = self.stderr.join().map_err(|_| "stderr reader panicked")?;
        Ok((out, err))
    }
}

fn spawn_refresher(
    env: &Env,
    database_url: &str,
    key: &str,
    sandbox_url: &str,
    concurrency: usize,
) -> Result<Refresher> {
    let c = concurrency.to_string();
    let mut cmd = Command::new(&env.refresher);
    cmd.args(["--once", "--sandbox-url", sandbox_url])
        .args(["--concurrency", &c, "--per-provider", &c])
        .args(["--window-secs", &WINDOW_SECS.to_string()])
        .env("DATABASE_URL", database_url)
        .env("TOKEN_ENCRYPTION_KEY", key)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Nothing else from the environment steers it.
    for var in [
        "TOKEN_ENCRYPTION_KEY_PREVIOUS",
        "PROVIDERS_FILE",
        "WEBHOOK_URL",
        "METRICS_ADDR",
        "SANDBOX_URL",
        "REFRESHER_SANDBOX",
        "REFRESH_PER_PROVIDER",
        "REFRESH_CONCURRENCY",
    ] {
        cmd.env_remove(var);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("starting {}: {e}", env.refresher.display()))?;
    let reader = |stream: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut s) = stream {
                let mut buf = Vec::new();
                let _ = s.read_to_end(&mut buf);
                text = String::from_utf8_lossy(&buf).into_owned();
            }
            text
        })
    };
    let stdout = reader(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let stderr = reader(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    Ok(Refresher {
        child,
        stdout,
        stderr,
    })
}

/// The figures of `refresher: pass 1: claimed 5 refreshed 5 needs_reconnect 0 ...`.
fn parse_report(stdout: &str) -> Option<Vec<(String, u64)>> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("refresher: pass 1:"))?;
    let words: Vec<&str> = line["refresher: pass 1:".len()..]
        .split_whitespace()
        .collect();
    words
        .chunks(2)
        .map(|pair| match pair {
            [k, v] => v.parse().ok().map(|v| ((*k).to_owned(), v)),
            _ => None,
        })
        .collect()
}

fn tail(text: &str, max: usize) -> String {
    let start = text.len().saturating_sub(max);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].trim().to_owned()
}

fn header() -> String {
    format!(
        "{:>5} {:>4} {:>9} {:>8} {:>10} {:>20} {:>20} {:>7} {:>7} {:>8} {:>10} {:>8} {:>12}",
        "procs",
        "conc",
        "N",
        "drain s",
        "refresh/s",
        "peak RSS MiB (each)",
        "RSS 10%→90% MiB",
        "PG ours",
        "PG all",
        "sandbox",
        "refreshers",
        "machine",
        "exactly-once"
    )
}

fn row(r: &RunResult) -> String {
    let peaks: Vec<String> = r
        .procs
        .iter()
        .map(|p| format!("{:.0}", p.peak_rss_mib))
        .collect();
    let flat: Vec<String> = r
        .procs
        .iter()
        .map(|p| {
            format!(
                "{:.0}→{:.0}",
                p.rss_at(0.1, r.drain_secs),
                p.rss_at(0.9, r.drain_secs)
            )
        })
        .collect();
    format!(
        "{:>5} {:>4} {:>9} {:>8.1} {:>10.0} {:>20} {:>20} {:>6.0}% {:>6.0}% {:>7.0}% {:>9.0}% {:>7.0}% {:>12}",
        r.processes,
        r.concurrency,
        r.n,
        r.drain_secs,
        r.rate(),
        peaks.join(" / "),
        flat.join(" / "),
        100.0 * r.share(r.pg_ours_cpu_secs),
        100.0 * r.share(r.pg_cpu_secs),
        100.0 * r.share(r.sandbox_cpu_secs),
        100.0 * r.share(r.refreshers_cpu()),
        100.0 * r.machine_busy,
        if r.failures.is_empty() {
            "held"
        } else {
            "FAILED"
        }
    )
}

fn line(r: &RunResult) -> String {
    format!(
        "scale-bench:   drained {} in {:.1}s: {:.0} refreshes/s; PostgreSQL CPU {:.0}% of the machine ({:.0}% in the refreshers' backends), machine busy {:.0}%; exactly-once {}",
        r.n,
        r.drain_secs,
        r.rate(),
        100.0 * r.share(r.pg_cpu_secs),
        100.0 * r.share(r.pg_ours_cpu_secs),
        100.0 * r.machine_busy,
        if r.failures.is_empty() {
            "held".to_owned()
        } else {
            format!("FAILED: {}", r.failures.join("; "))
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn arguments_and_their_errors() {
        let a = parse_args(args(&["--quick"])).unwrap();
        assert_eq!(
            (a.n, a.processes.clone(), a.sweep.clone()),
            (2000, vec![1, 2], vec![8])
        );
        let a = parse_args(args(&["--n", "10", "--processes", "3", "--sweep", "4,64"])).unwrap();
        assert_eq!((a.n, a.processes, a.sweep), (10, vec![3], vec![4, 64]));
        for (bad, expected) in [
            (vec!["--n", "0"], "--n"),
            (vec!["--processes", "1,x"], "bad list item"),
            (vec!["--sweep", ""], "empty list"),
            (vec!["--chart"], "needs a value"),
            (vec!["--fast"], "unknown argument"),
        ] {
            let err = parse_args(args(&bad)).unwrap_err();
            assert!(err.contains(expected), "{bad:?}: {err}");
        }
    }

    #[test]
    fn the_report_line_is_read() {
        let out = "refresher: store opened\nrefresher: pass 1: claimed 5 refreshed 4 needs_reconnect 1 failed_transient 0\n";
        let r = parse_report(out).unwrap();
        assert_eq!(r[1], ("refreshed".to_owned(), 4));
        assert_eq!(r.len(), 4);
        assert!(parse_report("nothing").is_none());
    }

    #[test]
    fn a_schema_goes_into_the_url() {
        let u = with_schema("postgres://postgres@127.0.0.1:5432/test", "bench_1", "app").unwrap();
        assert_eq!(
            u,
            "postgres://postgres@127.0.0.1:5432/test?options=-csearch_path%3Dbench_1&application_name=app"
        );
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(999), "999");
    }
}
