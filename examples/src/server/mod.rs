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
//! | `GET /api/integrations/openapi.json` | the API's OpenAPI document (`docs/openapi.json`) |

use crate::registry::{self, PLATFORMS};
use crate::{SetupError, load_or_create_key};
use axum::Router;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use integrations_axum::session::DemoSessions;
use integrations_axum::{IntegrationsRouter, NavLink, PageConfig, ServeLimits};
use integrations_core::{Clock, Integrations, Provider, SystemClock, TokenCipher};
use integrations_sandbox::{Consent, Sandbox, SandboxConfig, SandboxHandle};
use integrations_storage_diesel::{DieselStore, StoreOptions};
use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

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
    /// Providers beyond the built-in platforms, such as those of a `PROVIDERS_FILE`
    /// ([`registry::load_providers_file`]).
    pub extra_providers: Vec<Arc<dyn Provider>>,
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
            .field(
                "extra_providers",
                &self
                    .extra_providers
                    .iter()
                    .map(|p| p.id().as_str())
                    .collect::<Vec<_>>(),
            )
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
            extra_providers: Vec::new(),
            secure_cookies: false,
            metrics: false,
        }
    }
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
    ///
    /// Booleans read `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off` in any case; any other
    /// value is an error at start ([`env_bool`](crate::env_bool)).
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
                .map(|p| Ok((p.id, p.enabled(&lookup)?)))
                .collect::<Result<Vec<_>, SetupError>>()?
                .into_iter()
                .filter(|(_, on)| !on)
                .map(|(id, _)| id.to_owned())
                .collect(),
            credentials_from_env: true,
            clock: None,
            sandbox_auto_consent: None,
            extra_providers: registry::providers_file_from_env(&lookup)?,
            secure_cookies: crate::env_bool(&lookup, "SECURE_COOKIES")?.unwrap_or(false),
            metrics: crate::env_bool(&lookup, "METRICS")?.unwrap_or(true),
        })
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

/// Binds 127.0.0.1:`config.port`, starts the sandbox when a platform needs it, opens the
/// store and serves until the returned server is shut down or dropped.
pub async fn serve(config: ServerConfig) -> Result<RunningServer, ServerError> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port)).await?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");

    let env = |name: &str| std::env::var(name).ok();
    let enabled: Vec<&registry::PlatformEntry> = PLATFORMS
        .iter()
        .filter(|p| !config.disabled.contains(p.id))
        .collect();
    let mut from_env = Vec::new();
    for p in &enabled {
        if config.credentials_from_env && p.configured(&env)? {
            from_env.push(p.id);
        }
    }
    let from_env = |p: &registry::PlatformEntry| from_env.contains(&p.id);
    let needs_sandbox = enabled.iter().any(|p| !from_env(p));

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
    for p in enabled {
        if from_env(p) {
            providers.push(p.from_lookup(&env)?);
            sources.push((p.id.to_owned(), "environment"));
        } else if let Some(sandbox) = &sandbox {
            let redirect = format!("{base}/api/integrations/callback/{}", p.id);
            providers.push(p.for_sandbox(&sandbox.handle(), redirect)?);
            sources.push((p.id.to_owned(), "sandbox"));
        }
    }
    for p in config.extra_providers {
        if providers.iter().any(|q| q.id() == p.id()) {
            return Err(ServerError::Config(format!(
                "provider `{}` is registered twice",
                p.id()
            )));
        }
        sources.push((p.id().as_str().to_owned(), "configuration"));
        providers.push(p);
    }

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

    let sessions = DemoSessions::new(
        config.session_secret.as_deref(),
        "/integrations",
        "/integrations/assets/integrations.css",
    )
    .map_err(ServerError::Config)?
    .secure_cookies(config.secure_cookies);
    let mut web =
        IntegrationsRouter::new(integrations.clone(), sessions.clone()).page_config(PageConfig {
            nav: ["Dashboard", "Content", "Analytics"]
                .into_iter()
                .map(|label| NavLink {
                    label: label.into(),
                    href: None,
                })
                .collect(),
            sign_in_url: Some("/signin".into()),
            sign_out_action: Some("/signout".into()),
            whoami_url: Some("/api/session".into()),
            ..PageConfig::default()
        });
    for p in PLATFORMS.iter() {
        web = web.card(p.id, p.display_name);
    }
    let metrics = if config.metrics {
        crate::metrics::prometheus()
    } else {
        None
    };
    let app = router(&web, &sessions, integrations.clone(), metrics);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let purging = integrations.clone();
    let task = tokio::spawn(async move {
        let stop = async move {
            let _ = rx.await;
        };
        let serving =
            integrations_axum::serve_with_shutdown(listener, app, ServeLimits::default(), stop);
        // Expired pending authorizations are purged every minute while the server runs.
        let purge = async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                every.tick().await;
                if let Err(e) = purging.purge_expired().await {
                    tracing::warn!(error = %e, "could not purge expired authorizations");
                }
            }
        };
        tokio::select! {
            served = serving => if let Err(e) = served {
                tracing::warn!(error = %e, "the example server stopped with an error");
            },
            () = purge => {}
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

/// The example's routes: the demo sign-in, the API under `/api/integrations`, the page
/// under `/integrations`, and `GET /metrics`.
fn router(
    web: &IntegrationsRouter,
    sessions: &DemoSessions,
    integrations: Integrations,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
) -> Router {
    let metrics_route = get(move || {
        let integrations = integrations.clone();
        let metrics = metrics.clone();
        async move {
            let Some(handle) = metrics else {
                return not_found();
            };
            if let Err(e) = integrations.record_connection_gauges().await {
                tracing::warn!(error = %e, "could not count connections for /metrics");
            }
            crate::metrics::response(&handle)
        }
    });
    sessions
        .router()
        .route("/", get(|| async { Redirect::to("/integrations") }))
        .route("/metrics", metrics_route)
        .nest("/api/integrations", web.api())
        .nest("/integrations", web.page())
        .fallback(|| async { not_found() })
}

fn not_found() -> Response {
    (
        axum::http::StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({
            "success": false, "code": "not_found", "message": "There is nothing here."
        })),
    )
        .into_response()
}
