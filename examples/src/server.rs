//! The example server: the `integrations-axum` routers over the providers of the
//! [registry](registry::server_providers), the embedded SQLite store (or PostgreSQL when
//! `DATABASE_URL` says so) and the demo sign-in ([`DemoSessions`]); expired pending
//! authorizations are purged every minute, and with `WEBHOOK_URL` set connection events
//! go out as signed webhooks ([`crate::webhooks`]). Mounted at the root: the demo sign-in
//! (`/signin`, `/signout`, `/api/session`), the REST API under `/api/integrations`, the
//! page under `/integrations` and `GET /metrics` (unless [`ServerConfig::metrics`] is
//! off); `docs/http-api.md` documents every route. The `server` binary runs it with
//! [`ServerConfig::from_env`]; the tests start it on a free port.

pub use crate::config::{ServerConfig, ServerError};

use crate::metrics;
use crate::registry::{self, PLATFORMS, ProviderSet};
use axum::response::Redirect;
use axum::routing::get;
use integrations_axum::session::DemoSessions;
use integrations_axum::{IntegrationsRouter, NavLink, PageConfig, ServeLimits, ServerHandle};
use integrations_core::Integrations;
use integrations_sandbox::{Sandbox, SandboxHandle};
use integrations_storage_diesel::DieselStore;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// How often this process's platform call records are written to the store.
const HEALTH_FLUSH_EVERY: Duration = Duration::from_secs(10);

/// How often expired pending authorizations are purged while the server runs.
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// A running example server. Dropping it stops the server, the sandbox and the background
/// tasks (purge, webhook deliverer); [`shutdown`](Self::shutdown) waits for them.
#[derive(Debug)]
pub struct RunningServer {
    /// The HTTP server on 127.0.0.1: its address, [`ServerHandle::wait`].
    pub http: ServerHandle,
    /// The service, for inspection.
    pub integrations: Integrations,
    /// The registered providers, where each comes from, and the sandbox.
    pub providers: ProviderSet,
    /// The purge of expired pending authorizations, every minute, and the webhook
    /// deliverer when configured.
    background: JoinSet<()>,
}

impl RunningServer {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        self.http.url()
    }

    /// The in-process sandbox, when any platform uses it.
    pub fn sandbox(&self) -> Option<SandboxHandle> {
        self.providers.sandbox.as_ref().map(Sandbox::handle)
    }

    /// Stops the server (open requests finish), the purge and the sandbox.
    pub async fn shutdown(mut self) {
        let _ = self.http.shutdown().await;
        self.background.shutdown().await;
        if let Some(sandbox) = self.providers.sandbox.take() {
            sandbox.shutdown().await;
        }
    }
}

/// Binds 127.0.0.1:`config.port`, opens the store, starts the sandbox when a platform
/// needs it, and serves until the returned server is shut down or dropped.
pub async fn serve(config: ServerConfig) -> Result<RunningServer, ServerError> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let cipher = config.token_cipher()?;
    let store = DieselStore::connect_with(&config.store_url()?, config.store_options).await?;
    let providers = registry::server_providers(
        &base,
        &config.disabled,
        config.credentials_from_env,
        config.sandbox_auto_consent,
        config.extra_providers,
    )
    .await?;
    let mut builder = Integrations::builder(Arc::new(store), cipher);
    for p in providers.providers.iter().cloned() {
        builder = builder.provider(p);
    }
    if let Some(clock) = config.clock {
        builder = builder.clock(clock);
    }
    let integrations = builder.build();

    let css = "/integrations/assets/integrations.css";
    let sessions = DemoSessions::new(config.session_secret.as_deref(), "/integrations", css)
        .map_err(ServerError::Config)?
        .secure_cookies(config.secure_cookies);
    let page = PageConfig {
        nav: ["Dashboard", "Content", "Analytics"]
            .map(|label| NavLink {
                label: label.into(),
                href: None,
            })
            .into(),
        sign_in_url: Some("/signin".into()),
        sign_out_action: Some("/signout".into()),
        whoami_url: Some("/api/session".into()),
        ..PageConfig::default()
    };
    let mut web = IntegrationsRouter::new(integrations.clone(), sessions.clone()).page_config(page);
    for p in &PLATFORMS {
        web = web.card(p.id, p.display_name);
    }
    let mut app = sessions
        .router()
        .route("/", get(|| async { Redirect::to("/integrations") }))
        .nest("/api/integrations", web.api())
        .nest("/integrations", web.page())
        .fallback(integrations_axum::not_found);
    if let Some(handle) = config.metrics.then(metrics::prometheus).flatten() {
        app = app.route("/metrics", metrics::route(integrations.clone(), handle));
    }

    let mut background = JoinSet::new();
    background.spawn(integrations.clone().purge_expired_every(PURGE_EVERY));
    background.spawn(integrations.follow_events());
    background.spawn(integrations.clone().flush_health_every(HEALTH_FLUSH_EVERY));
    if config.webhooks_from_env
        && let Some(d) = crate::webhooks::deliverer_from_process_env(&integrations)?
    {
        background.spawn(async move { d.run(std::future::pending()).await });
    }
    Ok(RunningServer {
        http: integrations_axum::spawn(listener, app, ServeLimits::default())?,
        integrations,
        providers,
        background,
    })
}
