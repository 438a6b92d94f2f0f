//! The example server: the design's REST API under `/api/integrations/…` and the
//! Integrations page at `/integrations`, over the embedded SQLite store (or PostgreSQL when
//! `DATABASE_URL` says so) and the local platform sandbox (or the real platforms when their
//! credentials are configured).
//!
//! ```no_run
//! use integrations_examples::server::{ServerConfig, serve};
//!
//! # async fn demo() -> Result<(), integrations_examples::server::ServerError> {
//! let running = serve(ServerConfig::from_env()?).await?;
//! println!("open {}/integrations", running.url());
//! running.wait().await;
//! # Ok(()) }
//! ```
//!
//! Routes (see `docs/http-api.md`):
//!
//! | route | what |
//! | --- | --- |
//! | `GET /signin`, `POST /signin`, `POST /signout` | the demo sign-in page and form |
//! | `GET`, `POST`, `DELETE /api/session` | who is signed in; sign in / out as JSON |
//! | `GET /integrations` | the Integrations page |
//! | `GET /api/integrations/providers` | the enabled platforms |
//! | `GET /api/integrations/status` | the user's connections |
//! | `POST /api/integrations/connect/:provider` | start connecting: `{authUrl, state}` |
//! | `GET /api/integrations/callback/:provider` | the platforms' redirect URI |
//! | `DELETE /api/integrations/disconnect/:provider/:accountId` | disconnect |
//! | `POST /api/integrations/refresh/:provider/:accountId` | refresh now |

mod api;
pub mod cookie;
mod page;
mod session;

use crate::{SetupError, load_or_create_key, sandbox_providers};
use axum::Router;
use axum::extract::FromRef;
use axum::routing::{delete, get, post};
use axum_extra::extract::cookie::Key;
use integrations_core::{Clock, Integrations, Provider, SystemClock, TokenCipher};
use integrations_instagram::InstagramProvider;
use integrations_onlyfans::OnlyFansProvider;
use integrations_reddit::RedditProvider;
use integrations_sandbox::{Consent, Platform, Sandbox, SandboxConfig, SandboxHandle};
use integrations_storage_diesel::{DieselStore, StoreOptions};
use integrations_tiktok::TikTokProvider;
use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// The platforms the server knows, in the order the page shows them.
pub const PLATFORMS: [&str; 4] = ["instagram", "tiktok", "reddit", "onlyfans"];

/// The display name of a platform id.
pub fn display_name(provider: &str) -> &'static str {
    match provider {
        "instagram" => "Instagram",
        "tiktok" => "TikTok",
        "reddit" => "Reddit",
        "onlyfans" => "OnlyFans",
        _ => "Unknown",
    }
}

/// Errors of starting the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A setting is missing or malformed.
    #[error("configuration: {0}")]
    Config(String),
    /// Providers or the key could not be set up.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// A provider configured from the environment failed.
    #[error("provider: {0}")]
    Provider(#[from] integrations_core::ProviderError),
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] integrations_storage_diesel::Error),
    /// The sandbox could not start.
    #[error("sandbox: {0}")]
    Sandbox(#[from] integrations_sandbox::Error),
    /// Binding the port failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// How to run the server. [`ServerConfig::default`] suits tests (any free port, in-memory
/// SQLite, sandbox for every platform, a generated key); [`ServerConfig::from_env`] suits
/// the binary.
pub struct ServerConfig {
    /// Port on 127.0.0.1; `0` picks a free one.
    pub port: u16,
    /// `postgres://…` or `sqlite://path`; `None`: `sqlite://<data_dir>/integrations.db`.
    pub database_url: Option<String>,
    /// Pool size, PostgreSQL schema, migrations (default: migrate, public schema).
    pub store_options: StoreOptions,
    /// Where the default SQLite file and the generated encryption key live.
    pub data_dir: PathBuf,
    /// The token cipher; `None`: `TOKEN_ENCRYPTION_KEY`, else a key file in `data_dir`.
    pub cipher: Option<TokenCipher>,
    /// The session-cookie signing key (at least 64 bytes); `None`: a random one (sessions
    /// end when the server stops).
    pub session_secret: Option<Vec<u8>>,
    /// Platforms switched off (`ENABLE_<PROVIDER>_INTEGRATION=false`): not registered, not
    /// shown.
    pub disabled: BTreeSet<String>,
    /// Build a platform's provider from its `from_env()` when its credentials are set
    /// (`INSTAGRAM_CLIENT_ID`, `TIKTOK_CLIENT_KEY`, `REDDIT_CLIENT_ID`, `ONLYFANS_API_KEY`);
    /// the others use the sandbox.
    pub credentials_from_env: bool,
    /// The service clock (tests inject a `ManualClock`); `None`: the system clock.
    pub clock: Option<Arc<dyn Clock>>,
    /// The sandbox's consent mode; `None` shows its consent pages (the default).
    pub sandbox_auto_consent: Option<Consent>,
    /// Mark the session cookie `Secure` (behind HTTPS).
    pub secure_cookies: bool,
    /// Serve `GET /metrics` (Prometheus text, no session needed; the connection gauges are
    /// counted at each scrape). The server listens on 127.0.0.1 only; anything exposed
    /// further must keep this route internal.
    pub metrics: bool,
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("port", &self.port)
            .field(
                "database_url",
                &self.database_url.as_ref().map(|_| "[configured]"),
            )
            .field("store_options", &self.store_options)
            .field("data_dir", &self.data_dir)
            .field("cipher", &self.cipher)
            .field(
                "session_secret",
                &self.session_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("disabled", &self.disabled)
            .field("credentials_from_env", &self.credentials_from_env)
            .field("clock", &self.clock)
            .field("sandbox_auto_consent", &self.sandbox_auto_consent)
            .field("secure_cookies", &self.secure_cookies)
            .field("metrics", &self.metrics)
            .finish()
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            port: 0,
            database_url: Some("sqlite::memory:".into()),
            store_options: StoreOptions::default(),
            data_dir: PathBuf::from("server-data"),
            cipher: None,
            session_secret: None,
            disabled: BTreeSet::new(),
            credentials_from_env: false,
            clock: None,
            sandbox_auto_consent: None,
            secure_cookies: false,
            metrics: false,
        }
    }
}

/// Whether `ENABLE_<PROVIDER>_INTEGRATION` (read through `lookup`) leaves a platform on:
/// unset or anything but `false`/`0`/`no`/`off` means on.
pub fn enabled_by(lookup: &impl Fn(&str) -> Option<String>, provider: &str) -> bool {
    let var = format!("ENABLE_{}_INTEGRATION", provider.to_ascii_uppercase());
    !matches!(
        lookup(&var)
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref(),
        Some("false" | "0" | "no" | "off")
    )
}

impl ServerConfig {
    /// Reads the binary's settings from the environment:
    ///
    /// - `PORT` (default 3000);
    /// - `DATABASE_URL` (`postgres://…` or `sqlite://path`; default the SQLite file
    ///   `<dir>/integrations.db`);
    /// - `INTEGRATIONS_SERVER_DIR` (default `./server-data`): the SQLite file and, unless
    ///   `TOKEN_ENCRYPTION_KEY` is set, a generated key file;
    /// - `SESSION_SECRET`: at least 64 bytes signing the session cookie (default: random
    ///   per start);
    /// - `ENABLE_<PROVIDER>_INTEGRATION=false` switches a platform off;
    /// - real platform credentials (`INSTAGRAM_CLIENT_ID`, `TIKTOK_CLIENT_KEY`,
    ///   `REDDIT_CLIENT_ID`, `ONLYFANS_API_KEY` and the rest each provider's `from_env`
    ///   lists) replace the sandbox for that platform;
    /// - `SECURE_COOKIES=true` marks the cookie `Secure`;
    /// - `METRICS=false` turns `GET /metrics` off (on by default).
    pub fn from_env() -> Result<Self, ServerError> {
        let lookup = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let port = match lookup("PORT") {
            Some(p) => p
                .trim()
                .parse()
                .map_err(|_| ServerError::Config("PORT must be a port number".into()))?,
            None => 3000,
        };
        let session_secret = lookup("SESSION_SECRET").map(String::into_bytes);
        if session_secret.as_ref().is_some_and(|s| s.len() < 64) {
            return Err(ServerError::Config(
                "SESSION_SECRET must be at least 64 bytes".into(),
            ));
        }
        Ok(Self {
            port,
            database_url: lookup("DATABASE_URL"),
            store_options: StoreOptions::default(),
            data_dir: lookup("INTEGRATIONS_SERVER_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("server-data")),
            cipher: None,
            session_secret,
            disabled: PLATFORMS
                .iter()
                .filter(|p| !enabled_by(&lookup, p))
                .map(|p| (*p).to_owned())
                .collect(),
            credentials_from_env: true,
            clock: None,
            sandbox_auto_consent: None,
            secure_cookies: lookup("SECURE_COOKIES").is_some_and(|v| v == "true" || v == "1"),
            metrics: lookup("METRICS")
                .is_none_or(|v| !matches!(v.trim(), "false" | "0" | "no" | "off")),
        })
    }
}

/// Shared state of the handlers.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) integrations: Integrations,
    pub(crate) key: Key,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) secure_cookies: bool,
    pub(crate) metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

impl FromRef<AppState> for Key {
    fn from_ref(state: &AppState) -> Key {
        state.key.clone()
    }
}

/// A running server. Dropping it stops the server; [`RunningServer::shutdown`] waits.
pub struct RunningServer {
    addr: SocketAddr,
    integrations: Integrations,
    sandbox: Option<Sandbox>,
    sources: Vec<(String, &'static str)>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningServer")
            .field("addr", &self.addr)
            .field("sources", &self.sources)
            .finish_non_exhaustive()
    }
}

impl RunningServer {
    /// The bound address (127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The service, for inspection.
    pub fn integrations(&self) -> &Integrations {
        &self.integrations
    }

    /// The in-process sandbox, when any platform uses it.
    pub fn sandbox(&self) -> Option<SandboxHandle> {
        self.sandbox.as_ref().map(Sandbox::handle)
    }

    /// Each enabled platform and where it points (`"sandbox"` or `"environment"`).
    pub fn provider_sources(&self) -> &[(String, &'static str)] {
        &self.sources
    }

    /// Waits until the server stops (it does not stop by itself).
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Stops the server and the sandbox, waiting up to 5 s for open connections.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(std::time::Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
        if let Some(sandbox) = self.sandbox.take() {
            sandbox.shutdown().await;
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Whether a platform's real credentials are present in the environment.
fn has_real_credentials(provider: &str) -> bool {
    let var = match provider {
        "instagram" => "INSTAGRAM_CLIENT_ID",
        "tiktok" => "TIKTOK_CLIENT_KEY",
        "reddit" => "REDDIT_CLIENT_ID",
        "onlyfans" => "ONLYFANS_API_KEY",
        _ => return false,
    };
    std::env::var(var).is_ok_and(|v| !v.trim().is_empty())
}

fn provider_from_env(provider: &str) -> Result<Arc<dyn Provider>, ServerError> {
    Ok(match provider {
        "instagram" => Arc::new(InstagramProvider::from_env()?),
        "tiktok" => Arc::new(TikTokProvider::from_env()?),
        "reddit" => Arc::new(RedditProvider::from_env()?),
        "onlyfans" => Arc::new(OnlyFansProvider::from_env()?),
        other => return Err(ServerError::Config(format!("unknown platform {other}"))),
    })
}

/// Binds 127.0.0.1:`config.port`, starts the sandbox when a platform needs it, opens the
/// store and serves until the returned server is shut down or dropped.
pub async fn serve(config: ServerConfig) -> Result<RunningServer, ServerError> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port)).await?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");

    let enabled: Vec<&str> = PLATFORMS
        .iter()
        .copied()
        .filter(|p| !config.disabled.contains(*p))
        .collect();
    let from_env: Vec<&str> = enabled
        .iter()
        .copied()
        .filter(|p| config.credentials_from_env && has_real_credentials(p))
        .collect();
    let needs_sandbox = enabled.iter().any(|p| !from_env.contains(p));

    let sandbox = if needs_sandbox {
        Some(
            Sandbox::start_with(SandboxConfig {
                auto_consent: config.sandbox_auto_consent,
                redirect_uris: vec![format!("{base}/api/integrations/callback/{{platform}}")],
                ..SandboxConfig::default()
            })
            .await?,
        )
    } else {
        None
    };

    let mut providers: Vec<Arc<dyn Provider>> = Vec::new();
    let mut sources = Vec::new();
    if let Some(sandbox) = &sandbox {
        let all = sandbox_providers(&sandbox.handle(), |p: Platform| {
            format!("{base}/api/integrations/callback/{}", p.as_str())
        })?;
        for p in all {
            let id = p.id().as_str().to_owned();
            if enabled.contains(&id.as_str()) && !from_env.contains(&id.as_str()) {
                sources.push((id, "sandbox"));
                providers.push(p);
            }
        }
    }
    for id in &from_env {
        providers.push(provider_from_env(id)?);
        sources.push(((*id).to_owned(), "environment"));
    }
    sources.sort_by_key(|(id, _)| PLATFORMS.iter().position(|p| p == id));

    let cipher = match config.cipher {
        Some(c) => c,
        None => {
            let path = config.data_dir.join("server.key");
            let (cipher, created) = load_or_create_key(&path)?;
            if created {
                tracing::warn!(
                    path = %path.display(),
                    "generated a new token encryption key; production keys belong in TOKEN_ENCRYPTION_KEY, never next to the database"
                );
            }
            cipher
        }
    };
    let url = match config.database_url {
        Some(u) => u,
        None => {
            std::fs::create_dir_all(&config.data_dir)?;
            format!(
                "sqlite://{}",
                config.data_dir.join("integrations.db").display()
            )
        }
    };
    let store = Arc::new(DieselStore::connect_with(&url, config.store_options).await?);
    let clock: Arc<dyn Clock> = config.clock.unwrap_or_else(|| Arc::new(SystemClock));
    let mut builder = Integrations::builder(store, cipher).clock(clock.clone());
    for p in providers {
        builder = builder.provider(p);
    }
    let integrations = builder.build();

    let key = match config.session_secret {
        Some(secret) => Key::try_from(secret.as_slice()).map_err(|_| {
            ServerError::Config("the session secret must be at least 64 bytes".into())
        })?,
        None => Key::try_generate()
            .ok_or_else(|| ServerError::Config("no randomness for the session key".into()))?,
    };
    let state = AppState {
        integrations: integrations.clone(),
        key,
        clock,
        secure_cookies: config.secure_cookies,
        metrics: if config.metrics {
            crate::metrics::prometheus()
        } else {
            None
        },
    };
    let app = router(state);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = rx.await;
        });
        if let Err(e) = serve.await {
            tracing::warn!(error = %e, "the example server stopped with an error");
        }
    });
    Ok(RunningServer {
        addr,
        integrations,
        sandbox,
        sources,
        stop: Some(tx),
        task: Some(task),
    })
}

fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/providers", get(api::providers))
        .route("/status", get(api::status))
        .route("/connect/{provider}", post(api::connect))
        .route("/callback/{provider}", get(api::callback))
        .route(
            "/disconnect/{provider}/{account_id}",
            delete(api::disconnect),
        )
        .route("/refresh/{provider}/{account_id}", post(api::refresh))
        .fallback(api::not_found);
    Router::new()
        .route("/", get(page::root))
        .route("/integrations", get(page::integrations))
        .route("/assets/integrations.css", get(page::css))
        .route("/assets/integrations.js", get(page::js))
        .route("/signin", get(page::signin).post(session::signin_form))
        .route("/signout", post(session::signout_form))
        .route("/metrics", get(api::metrics))
        .route(
            "/api/session",
            get(session::whoami)
                .post(session::signin_json)
                .delete(session::signout_json),
        )
        .nest("/api/integrations", api)
        .fallback(api::not_found)
        .with_state(state)
}
