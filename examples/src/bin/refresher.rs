//! The background refresher: refreshes every connection whose access token expires soon,
//! on an interval, against the database in `DATABASE_URL`. Run one or many instances: they
//! share the work through the store's leases.
//!
//! ```text
//! cargo run -p integrations-examples --bin refresher -- [--interval-secs N] [--window-secs N]
//!     [--concurrency N] [--per-provider N] [--jitter-secs N] [--metrics-addr HOST:PORT] [--once]
//!     [--sandbox-url URL]
//! cargo run -p integrations-examples --bin refresher -- --sandbox [--interval-secs 5]
//! cargo run -p integrations-examples --bin refresher -- --deliver-only
//! ```
//!
//! Environment:
//! - `DATABASE_URL` (required): `postgres://…` or `sqlite://path`;
//! - `TOKEN_ENCRYPTION_KEY` (required), `TOKEN_ENCRYPTION_KEY_PREVIOUS` (optional);
//! - the providers' own variables (`INSTAGRAM_CLIENT_ID`, `TIKTOK_CLIENT_KEY`,
//!   `REDDIT_CLIENT_ID`, `ONLYFANS_API_KEY` and the rest of each set): a provider is
//!   loaded when its first variable is present and `ENABLE_<P>_INTEGRATION` is not `false`;
//! - `PROVIDERS_FILE` (optional): a TOML file of extra OAuth 2.0 providers
//!   (`integrations_examples::registry::parse_providers` shows its format);
//! - `REFRESH_INTERVAL_SECS` (60), `REFRESH_WINDOW_SECS` (600), `REFRESH_CONCURRENCY` (16),
//!   `REFRESH_PER_PROVIDER` (the concurrency, at most 8: the platform calls in flight per
//!   platform), `REFRESH_JITTER_SECS` (10): the same as the flags, which win;
//! - `REFRESHER_SANDBOX=1`: the same as `--sandbox`;
//! - `SANDBOX_URL` (unset: off): the same as `--sandbox-url`;
//! - `METRICS_ADDR` (unset: off): the same as `--metrics-addr`, an address such as
//!   `127.0.0.1:9100` where `GET /metrics` serves the library's metrics in the Prometheus
//!   text format (refresh outcomes and durations, the connection gauges updated after
//!   every pass); the bound address is printed (`:0` picks a free port);
//! - `RUST_LOG` (default `warn`): the level of the library's tracing events on stderr;
//! - `WEBHOOK_URL`, `WEBHOOK_SECRET` and the rest of `integrations_examples::webhooks`: when
//!   set, the refresher also delivers the store's connection events to that endpoint as
//!   signed webhooks (docs/events.md). `--deliver-only` runs just the deliverer (no
//!   provider variables needed; `TOKEN_ENCRYPTION_KEY` is not read): run as many as you
//!   like, they share the work.
//!
//! `--sandbox` starts the local platform sandbox in the process, points the four providers
//! at it, uses an in-memory SQLite store (never `DATABASE_URL`: sandbox grants would
//! overwrite real ones), connects one demo account per platform with short-lived tokens
//! (TikTok and Reddit tokens live twice the interval), and refreshes them on every pass. Ctrl-C or SIGTERM finishes the running pass, releases
//! its leases and exits 0.
//!
//! `--sandbox-url URL` (development and load tests only) points the four built-in providers
//! at a sandbox already running in another process at `URL` (`http://127.0.0.1:PORT`, as
//! `integrations-sandbox` or a benchmark prints it) with its fixed demo clients, instead of
//! reading the providers' variables; everything else is as in production: the store in
//! `DATABASE_URL`, the key in `TOKEN_ENCRYPTION_KEY`, `PROVIDERS_FILE` still read. It
//! cannot be combined with `--sandbox`. The scale benchmark (`scale-bench`, see
//! `docs/performance.md`) drains a million accounts with several such processes.

use integrations_core::{
    EncryptionKey, Integrations, Provider, RefreshLimits, RefreshReport, Refresher,
    RefresherConfig, TokenCipher, UserId,
};
use integrations_examples::registry;
use integrations_examples::{follow_authorization, sandbox_providers};
use integrations_sandbox::{Consent, Platform, Sandbox, SandboxConfig};
use integrations_storage_diesel::{DieselStore, StoreOptions};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: refresher [--sandbox] [--once] [--interval-secs N] [--window-secs N] \
                     [--concurrency N] [--per-provider N] [--jitter-secs N] \
                     [--metrics-addr HOST:PORT] [--sandbox-url URL] [--deliver-only]\n\
                     environment: DATABASE_URL, TOKEN_ENCRYPTION_KEY, the providers' variables, \
                     REFRESH_INTERVAL_SECS, REFRESH_WINDOW_SECS, REFRESH_CONCURRENCY, \
                     REFRESH_PER_PROVIDER, REFRESH_JITTER_SECS, REFRESHER_SANDBOX=1, SANDBOX_URL, \
                     METRICS_ADDR, WEBHOOK_URL, WEBHOOK_SECRET";

const SANDBOX_REDIRECT: &str = "http://127.0.0.1:3000/callback";

/// What the command line and the environment ask for.
#[derive(Debug, Clone, PartialEq)]
struct Settings {
    sandbox: bool,
    once: bool,
    deliver_only: bool,
    interval: Duration,
    window: Duration,
    jitter: Duration,
    concurrency: usize,
    /// Platform calls in flight per platform; `None`: the concurrency, at most 8.
    per_provider: Option<usize>,
    metrics_addr: Option<std::net::SocketAddr>,
    /// A sandbox running in another process, by its base URL.
    sandbox_url: Option<url::Url>,
}

impl Settings {
    /// The limits of one pass.
    fn limits(&self) -> RefreshLimits {
        RefreshLimits {
            concurrency: self.concurrency,
            per_provider: self
                .per_provider
                .unwrap_or_else(|| self.concurrency.clamp(1, 8)),
            ..RefreshLimits::default()
        }
    }
}

fn number(name: &str, value: &str) -> Result<u64, String> {
    value
        .trim()
        .parse::<u64>()
        .map_err(|_| format!("{name} must be a whole number, got {value:?}"))
}

/// Reads the flags, then the environment for what the flags leave unset.
fn settings(
    args: &[String],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Settings>, String> {
    let env_num = |name: &str, default: u64| -> Result<u64, String> {
        match lookup(name) {
            Some(v) if !v.trim().is_empty() => number(name, &v),
            _ => Ok(default),
        }
    };
    let mut s = Settings {
        sandbox: integrations_examples::env_bool(lookup, "REFRESHER_SANDBOX")
            .map_err(|e| e.to_string())?
            .unwrap_or(false),
        once: false,
        deliver_only: false,
        interval: Duration::from_secs(env_num("REFRESH_INTERVAL_SECS", 60)?),
        window: Duration::from_secs(env_num("REFRESH_WINDOW_SECS", 600)?),
        jitter: Duration::from_secs(env_num("REFRESH_JITTER_SECS", 10)?),
        concurrency: env_num("REFRESH_CONCURRENCY", 16)? as usize,
        per_provider: match lookup("REFRESH_PER_PROVIDER") {
            Some(v) if !v.trim().is_empty() => Some(number("REFRESH_PER_PROVIDER", &v)? as usize),
            _ => None,
        },
        metrics_addr: match lookup("METRICS_ADDR") {
            Some(v) if !v.trim().is_empty() => Some(socket_addr("METRICS_ADDR", &v)?),
            _ => None,
        },
        sandbox_url: match lookup("SANDBOX_URL") {
            Some(v) if !v.trim().is_empty() => Some(sandbox_url("SANDBOX_URL", &v)?),
            _ => None,
        },
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut text = |flag: &str| -> Result<&String, String> {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        if arg == "--metrics-addr" {
            s.metrics_addr = Some(socket_addr(arg, text(arg)?)?);
            continue;
        }
        if arg == "--sandbox-url" {
            s.sandbox_url = Some(sandbox_url(arg, text(arg)?)?);
            continue;
        }
        let mut value = |flag: &str| -> Result<u64, String> { number(flag, text(flag)?) };
        match arg.as_str() {
            "--sandbox" => s.sandbox = true,
            "--once" => s.once = true,
            "--deliver-only" => s.deliver_only = true,
            "--interval-secs" => s.interval = Duration::from_secs(value(arg)?),
            "--window-secs" => s.window = Duration::from_secs(value(arg)?),
            "--jitter-secs" => s.jitter = Duration::from_secs(value(arg)?),
            "--concurrency" => s.concurrency = value(arg)? as usize,
            "--per-provider" => s.per_provider = Some(value(arg)? as usize),
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if s.concurrency == 0 {
        return Err("REFRESH_CONCURRENCY / --concurrency must be at least 1".into());
    }
    if s.per_provider == Some(0) {
        return Err("REFRESH_PER_PROVIDER / --per-provider must be at least 1".into());
    }
    if s.sandbox && s.sandbox_url.is_some() {
        return Err(
            "--sandbox starts a sandbox in the process; --sandbox-url (SANDBOX_URL) points at \
             one running elsewhere: choose one"
                .into(),
        );
    }
    if s.window.is_zero() {
        return Err("REFRESH_WINDOW_SECS / --window-secs must be at least 1".into());
    }
    Ok(Some(s))
}

fn sandbox_url(name: &str, value: &str) -> Result<url::Url, String> {
    url::Url::parse(value.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| {
            format!(
                "{name} must be the sandbox's base URL such as http://127.0.0.1:8025, got {value:?}"
            )
        })
}

fn socket_addr(name: &str, value: &str) -> Result<std::net::SocketAddr, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{name} must be an address such as 127.0.0.1:9100, got {value:?}"))
}

/// Serves `GET /metrics` on `addr` in the background; returns the bound address.
async fn serve_metrics(addr: std::net::SocketAddr) -> Result<std::net::SocketAddr, BoxError> {
    let handle = integrations_examples::metrics::prometheus()
        .ok_or("another metrics recorder is already installed")?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            async move { integrations_examples::metrics::response(&handle) }
        }),
    );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("refresher: the metrics listener stopped: {e}");
        }
    });
    Ok(bound)
}

/// The providers configured in the environment: the built-in platforms whose first
/// variable is present and whose `ENABLE_<P>_INTEGRATION` is not `false`, and those of
/// the file in `PROVIDERS_FILE`. A provider whose set is incomplete is an error naming the
/// missing variable.
fn providers_from(
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Arc<dyn Provider>>, String> {
    let mut out = registry::providers_from_env(lookup).map_err(|e| e.to_string())?;
    out.extend(registry::providers_file_from_env(lookup).map_err(|e| e.to_string())?);
    if out.is_empty() {
        return Err(
            "no provider is configured: set the variables of at least one \
                    (INSTAGRAM_CLIENT_ID…, TIKTOK_CLIENT_KEY…, REDDIT_CLIENT_ID…, \
                    ONLYFANS_API_KEY…) and leave its ENABLE_<P>_INTEGRATION unset or true, \
                    or name a providers file in PROVIDERS_FILE"
                .into(),
        );
    }
    Ok(out)
}

fn report_line(label: &str, r: &RefreshReport) -> String {
    format!(
        "refresher: {label}: claimed {} refreshed {} needs_reconnect {} failed_transient {} \
         failed_other {} skipped_leased {} skipped_not_refreshable {}",
        r.claimed,
        r.refreshed,
        r.needs_reconnect,
        r.failed_transient,
        r.failed_other,
        r.skipped_leased,
        r.skipped_not_refreshable
    )
}

#[tokio::main]
async fn main() -> ExitCode {
    // The library's warnings (a failed refresh, a failed pass) on stderr; `RUST_LOG`
    // overrides the level.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env = |name: &str| std::env::var(name).ok();
    let settings = match settings(&args, &env) {
        Ok(Some(s)) => s,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("refresher: {e}");
            return ExitCode::from(2);
        }
    };
    match run(settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("refresher: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Everything needed to run: the service, and the sandbox kept alive in sandbox mode.
struct Setup {
    integrations: Integrations,
    _sandbox: Option<Sandbox>,
}

async fn production_setup(settings: &Settings) -> Result<Setup, BoxError> {
    let env = |name: &str| std::env::var(name).ok();
    let url = env("DATABASE_URL").filter(|v| !v.trim().is_empty()).ok_or(
        "DATABASE_URL is not set: point it at the integrations database \
         (postgres://user:pass@host/db or sqlite://path)",
    )?;
    let cipher = TokenCipher::from_env().map_err(|e| format!("{e}"))?;
    let providers = match &settings.sandbox_url {
        Some(base) => {
            let base = base.as_str().trim_end_matches('/');
            println!("refresher: providers pointed at the sandbox at {base} (development only)");
            let mut out = registry::sandbox_url_providers(base, |p| {
                format!("{SANDBOX_REDIRECT}/{}", p.as_str())
            })?;
            out.extend(registry::providers_file_from_env(&env)?);
            out
        }
        None => providers_from(&env)?,
    };
    let store = DieselStore::connect_with(
        &url,
        StoreOptions {
            max_connections: settings.concurrency + 2,
            ..StoreOptions::default()
        },
    )
    .await
    .map_err(|e| format!("cannot open the store in DATABASE_URL: {e}"))?;
    let mut builder = Integrations::builder(Arc::new(store), cipher);
    let mut names = Vec::new();
    for p in providers {
        names.push(p.id().to_string());
        builder = builder.provider(p);
    }
    println!(
        "refresher: store opened; providers: {}; interval {}s (+ up to {}s jitter), window {}s, concurrency {} ({} per platform)",
        names.join(", "),
        settings.interval.as_secs(),
        settings.jitter.as_secs(),
        settings.window.as_secs(),
        settings.concurrency,
        settings.limits().per_provider
    );
    Ok(Setup {
        integrations: builder.build(),
        _sandbox: None,
    })
}

async fn sandbox_setup(settings: &Settings) -> Result<Setup, BoxError> {
    if std::env::var_os("DATABASE_URL").is_some() {
        println!("refresher: sandbox mode ignores DATABASE_URL and uses an in-memory store");
    }
    let sandbox = Sandbox::start_with(SandboxConfig {
        auto_consent: Some(Consent::Allow),
        ..SandboxConfig::default()
    })
    .await?;
    // A pass refreshes a token once half its lifetime is gone (or it expires within the
    // window). The demo accounts are connected with two-second tokens, due after one
    // second, when the first pass runs; the tokens refreshed afterwards live twice the
    // interval, so every later pass finds them due again.
    let first = Duration::from_secs(2);
    let lifetime = (settings.interval * 2).max(first);
    for platform in [Platform::TikTok, Platform::Reddit] {
        sandbox.set_token_lifetime(platform, first);
    }
    println!(
        "refresher: sandbox (development only) at {}; TikTok and Reddit access tokens live {}s",
        sandbox.base_url(),
        lifetime.as_secs()
    );
    let cipher = match TokenCipher::from_env() {
        Ok(c) => c,
        Err(_) => TokenCipher::new(EncryptionKey::generate()),
    };
    let store = DieselStore::connect("sqlite::memory:").await?;
    let mut builder = Integrations::builder(Arc::new(store), cipher);
    for p in sandbox_providers(&sandbox.handle(), |p| {
        format!("{SANDBOX_REDIRECT}/{}", p.as_str())
    })? {
        builder = builder.provider(p);
    }
    let integrations = builder.build();
    let user = UserId(1);
    for platform in Platform::ALL {
        let start = integrations.connect(user, platform.as_str(), None).await?;
        let params = follow_authorization(&start.auth_url, SANDBOX_REDIRECT).await?;
        let c = integrations
            .callback(user, platform.as_str(), &params)
            .await?;
        println!(
            "refresher: sandbox: connected {platform} account {}",
            c.account.provider_account_id
        );
    }
    for platform in [Platform::TikTok, Platform::Reddit] {
        sandbox.set_token_lifetime(platform, lifetime);
    }
    tokio::time::sleep(first / 2).await;
    Ok(Setup {
        integrations,
        _sandbox: Some(sandbox),
    })
}

/// Delivers the store's connection events until Ctrl-C or SIGTERM; no provider needed.
async fn deliver_only() -> Result<(), BoxError> {
    let env = |name: &str| std::env::var(name).ok();
    let url = env("DATABASE_URL").filter(|v| !v.trim().is_empty()).ok_or(
        "DATABASE_URL is not set: point it at the integrations database \
         (postgres://user:pass@host/db or sqlite://path)",
    )?;
    let store = DieselStore::connect(&url)
        .await
        .map_err(|e| format!("cannot open the store in DATABASE_URL: {e}"))?;
    // The deliverer reads events, never tokens: no key is needed.
    let integrations =
        Integrations::builder(Arc::new(store), TokenCipher::new(EncryptionKey::generate())).build();
    let deliverer = integrations_examples::webhooks::deliverer_from_env(&env, &integrations)?
        .ok_or("--deliver-only needs WEBHOOK_URL and WEBHOOK_SECRET")?;
    println!("refresher: delivering connection events as webhooks");
    deliverer
        .run(async {
            let signal = shutdown_signal().await;
            println!("refresher: {signal}: finishing the attempts in flight");
        })
        .await;
    println!("refresher: deliverer stopped");
    Ok(())
}

async fn run(settings: Settings) -> Result<(), BoxError> {
    if let Some(addr) = settings.metrics_addr {
        let bound = serve_metrics(addr).await?;
        println!("refresher: metrics on http://{bound}/metrics");
    }
    if settings.deliver_only {
        return deliver_only().await;
    }
    let setup = if settings.sandbox {
        sandbox_setup(&settings).await?
    } else {
        production_setup(&settings).await?
    };
    let limits = settings.limits();
    if settings.once {
        let report = setup
            .integrations
            .refresh_due(settings.window, limits)
            .await?;
        println!("{}", report_line("pass 1", &report));
        return Ok(());
    }
    let env = |name: &str| std::env::var(name).ok();
    let (stop_delivering, delivering) = tokio::sync::watch::channel(false);
    let deliverer = integrations_examples::webhooks::deliverer_from_env(&env, &setup.integrations)?
        .map(|d| {
            println!("refresher: also delivering connection events as webhooks");
            let mut delivering = delivering;
            tokio::spawn(async move {
                d.run(async move {
                    let _ = delivering.wait_for(|stop| *stop).await;
                })
                .await
            })
        });
    let refresher = Refresher::spawn(
        setup.integrations.clone(),
        RefresherConfig {
            interval: settings.interval,
            jitter: settings.jitter,
            window: settings.window,
            limits,
        },
    );
    let mut reports = refresher.reports();
    let stop = shutdown_signal();
    tokio::pin!(stop);
    let mut pass = 0u64;
    loop {
        tokio::select! {
            changed = reports.changed() => {
                if changed.is_err() {
                    break;
                }
                pass += 1;
                let report = *reports.borrow_and_update();
                println!("{}", report_line(&format!("pass {pass}"), &report));
            }
            signal = &mut stop => {
                println!("refresher: {signal}: finishing the running pass");
                break;
            }
        }
    }
    let totals = refresher.shutdown().await;
    stop_delivering.send_replace(true);
    if let Some(task) = deliverer {
        let _ = task.await;
    }
    println!("{}", report_line("stopped; totals", &totals));
    Ok(())
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM, naming which.
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "interrupted",
                _ = term.recv() => "SIGTERM",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "interrupted"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "interrupted"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_override_the_environment() {
        let e = env(&[
            ("REFRESH_INTERVAL_SECS", "30"),
            ("REFRESH_WINDOW_SECS", "120"),
            ("REFRESH_CONCURRENCY", "4"),
        ]);
        let s = settings(&args(&["--interval-secs", "5"]), &e)
            .unwrap()
            .unwrap();
        assert_eq!(s.interval, Duration::from_secs(5));
        assert_eq!(s.window, Duration::from_secs(120));
        assert_eq!(s.concurrency, 4);
        assert!(!s.sandbox && !s.once);
        let s = settings(&args(&[]), &env(&[("REFRESHER_SANDBOX", "1")]))
            .unwrap()
            .unwrap();
        assert!(s.sandbox);
        assert_eq!(s.interval, Duration::from_secs(60));
    }

    #[test]
    fn bad_values_name_the_setting() {
        let e = env(&[("REFRESH_WINDOW_SECS", "ten")]);
        let err = settings(&args(&[]), &e).unwrap_err();
        assert!(err.contains("REFRESH_WINDOW_SECS"), "{err}");
        let err = settings(&args(&["--concurrency", "0"]), &env(&[])).unwrap_err();
        assert!(err.contains("concurrency"), "{err}");
        let err = settings(&args(&["--interval-secs"]), &env(&[])).unwrap_err();
        assert!(err.contains("--interval-secs needs a value"), "{err}");
        let err = settings(&args(&["--metrics-addr", "localhost"]), &env(&[])).unwrap_err();
        assert!(err.contains("--metrics-addr"), "{err}");
        let err = settings(&args(&[]), &env(&[("METRICS_ADDR", "9100")])).unwrap_err();
        assert!(err.contains("METRICS_ADDR"), "{err}");
        let s = settings(&args(&[]), &env(&[("METRICS_ADDR", "127.0.0.1:9100")]))
            .unwrap()
            .unwrap();
        assert_eq!(s.metrics_addr, Some("127.0.0.1:9100".parse().unwrap()));
        let s = settings(
            &args(&["--metrics-addr", "0.0.0.0:0"]),
            &env(&[("METRICS_ADDR", "127.0.0.1:9100")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.metrics_addr, Some("0.0.0.0:0".parse().unwrap()));
        let err = settings(&args(&["--bogus"]), &env(&[])).unwrap_err();
        assert!(err.contains("--bogus"), "{err}");
    }

    #[test]
    fn a_sandbox_url_and_the_per_platform_limit_are_read() {
        let s = settings(
            &args(&[
                "--sandbox-url",
                "http://127.0.0.1:8025",
                "--concurrency",
                "32",
            ]),
            &env(&[]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            s.sandbox_url.as_ref().map(url::Url::as_str),
            Some("http://127.0.0.1:8025/")
        );
        // The per-platform limit follows the concurrency up to 8 unless set.
        assert_eq!(s.limits().concurrency, 32);
        assert_eq!(s.limits().per_provider, 8);
        let s = settings(
            &args(&["--per-provider", "32"]),
            &env(&[
                ("SANDBOX_URL", "http://127.0.0.1:9000"),
                ("REFRESH_PER_PROVIDER", "4"),
            ]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.limits().per_provider, 32);
        assert_eq!(s.sandbox_url.unwrap().port(), Some(9000));
        let s = settings(&args(&[]), &env(&[("REFRESH_PER_PROVIDER", "4")]))
            .unwrap()
            .unwrap();
        assert_eq!(s.limits().per_provider, 4);
        assert_eq!(s.sandbox_url, None);
        for (a, e, expected) in [
            (
                vec!["--sandbox-url", "127.0.0.1:8025"],
                vec![],
                "--sandbox-url",
            ),
            (vec!["--sandbox-url"], vec![], "--sandbox-url needs a value"),
            (vec![], vec![("SANDBOX_URL", "ftp://x")], "SANDBOX_URL"),
            (vec!["--per-provider", "0"], vec![], "per-provider"),
            (
                vec!["--sandbox", "--sandbox-url", "http://127.0.0.1:1"],
                vec![],
                "choose one",
            ),
        ] {
            let err = settings(&args(&a), &env(&e)).unwrap_err();
            assert!(err.contains(expected), "{a:?} {e:?}: {err}");
        }
    }

    #[test]
    fn providers_are_chosen_by_their_variables_and_enable_flags() {
        let tiktok = [
            ("TIKTOK_CLIENT_KEY", "key"),
            ("TIKTOK_CLIENT_SECRET", "secret"),
            ("TIKTOK_REDIRECT_URI", "https://app.example/callback/tiktok"),
        ];
        let found = providers_from(&env(&tiktok)).unwrap();
        let ids: Vec<_> = found.iter().map(|p| p.id().to_string()).collect();
        assert_eq!(ids, ["tiktok"]);
        let mut off = tiktok.to_vec();
        off.push(("ENABLE_TIKTOK_INTEGRATION", "false"));
        let err = providers_from(&env(&off)).err().unwrap();
        assert!(err.contains("no provider is configured"), "{err}");
        // An incomplete set is an error naming the missing variable.
        let err = providers_from(&env(&tiktok[..2])).err().unwrap();
        assert!(err.contains("TIKTOK_REDIRECT_URI"), "{err}");
        let err = providers_from(&env(&[])).err().unwrap();
        assert!(err.contains("no provider is configured"), "{err}");
    }
}
