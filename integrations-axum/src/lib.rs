//! The Integrations REST API and the Integrations page of
//! [`integrations-core`](integrations_core) as [`axum`] routers a host mounts under any
//! prefix.
//!
//! - [`IntegrationsRouter::api`]: the design's routes (`GET /providers`, `GET /status`,
//!   `POST /connect/{provider}`, `GET /callback/{provider}`,
//!   `DELETE /disconnect/{provider}/{account_id}`, `POST /refresh/{provider}/{account_id}`,
//!   and `POST /bulk` to refresh or disconnect up to [`BULK_MAX_ACCOUNTS`] accounts at once,
//!   [`BULK_CONCURRENCY`] at a time), JSON in and out, errors as `{"success": false, "code", "message"}` with the status of
//!   [`Error::http_status`](integrations_core::Error) (the table in `docs/http-api.md`).
//! - [`IntegrationsRouter::page`]: the Integrations page (`GET /`) and its assets, embedded
//!   in the binary; title, brand, navigation and platform names are configurable
//!   ([`PageConfig`], [`IntegrationsRouter::card`]).
//! - The host says who is signed in through one seam, [`Authenticate`]. The demo cookie
//!   sign-in is one implementation (feature `demo-session`).
//! - [`serve`] runs a router with header-read, idle and request timeouts and a connection
//!   cap ([`ServeLimits`]); [`spawn`] runs it in a task of its own and returns a
//!   [`ServerHandle`] with the bound address, to wait for or shut down.
//! - [`not_found`] answers the API's JSON 404, a fallback for the rest of a host's app.
//! - The routes platforms call, mounted with the API and open without a session (the
//!   platform's signature authenticates them, see
//!   [`platform_webhooks`](integrations_core::platform_webhooks)):
//!   `GET|POST /webhooks/{provider}` (handshakes and deliveries: Meta's Deauthorize
//!   callback and Graph webhooks, TikTok, the OnlyFans gateways) and
//!   `POST /data-deletion/{provider}` (Meta's Data Deletion Request callback, answering
//!   `{"url", "confirmation_code"}`), whose `url` is the request's public status page,
//!   `GET /data-deletion/{provider}?code=…`. Bodies over 64 KiB are refused.
//!
//! State-changing routes take JSON only (`Content-Type: application/json`, so a cross-site
//! form cannot reach them without a CORS preflight) and refuse requests whose
//! `Sec-Fetch-Site` or `Origin` says they come from another site.
//!
//! # Example
//!
//! ```no_run
//! use integrations_axum::{Authenticate, IntegrationsRouter, PageConfig};
//! use integrations_core::{EncryptionKey, Integrations, MemoryStore, TokenCipher, UserId};
//! use std::sync::Arc;
//!
//! struct Bearer;
//!
//! #[async_trait::async_trait]
//! impl Authenticate for Bearer {
//!     async fn user(&self, parts: &mut axum::http::request::Parts) -> Option<UserId> {
//!         let value = parts.headers.get("authorization")?.to_str().ok()?;
//!         value.strip_prefix("Bearer user-")?.parse().ok().map(UserId)
//!     }
//! }
//!
//! # async fn demo() -> std::io::Result<()> {
//! let integrations = Integrations::builder(
//!     Arc::new(MemoryStore::new()),
//!     TokenCipher::new(EncryptionKey::generate()),
//! )
//! .build();
//! let web = IntegrationsRouter::new(integrations, Bearer).page_config(PageConfig {
//!     api_base: "/settings/integrations/api".into(),
//!     page_url: "/settings/integrations".into(),
//!     ..PageConfig::default()
//! });
//! let app = axum::Router::new()
//!     .nest("/settings/integrations/api", web.api())
//!     .nest("/settings/integrations", web.page());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! integrations_axum::serve(listener, app, Default::default()).await
//! # }
//! ```

mod api;
mod auth;
mod bulk;
mod guard;
mod health;
mod openapi;
mod page;
mod platform;
mod serve;
#[cfg(feature = "demo-session")]
pub mod session;

pub use api::local_path;
pub use auth::Authenticate;
pub use bulk::{BULK_CONCURRENCY, BULK_MAX_ACCOUNTS};
pub use serve::{ServeLimits, ServerHandle, serve, serve_with_shutdown, spawn};

use integrations_core::Integrations;
use std::sync::Arc;

/// The API's answer to an address it has no route for, as a handler: `404` with
/// `{"success": false, "code": "not_found", "message": "There is nothing here."}`. A host
/// sets it as the fallback of its whole app (`Router::fallback(not_found)`) so that every
/// unknown address answers the same JSON the API's own unknown routes do.
pub async fn not_found() -> axum::response::Response {
    axum::response::IntoResponse::into_response(api::not_found().await)
}

/// A platform's card on the page: its display name and place (cards are listed in the
/// order they are added, then the other registered providers by id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    /// The provider id.
    pub id: String,
    /// The name people read.
    pub name: String,
}

/// A link of the page's top navigation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NavLink {
    /// The text.
    pub label: String,
    /// Where it goes; `None` shows the label without a link.
    pub href: Option<String>,
}

/// How the page looks and where it finds the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageConfig {
    /// The document title and the page heading (default `Integrations`).
    pub title: String,
    /// The brand in the top bar (default `Studio`).
    pub brand: String,
    /// The top navigation, before the page's own entry.
    pub nav: Vec<NavLink>,
    /// Where the [API router](IntegrationsRouter::api) is mounted (default
    /// `/api/integrations`).
    pub api_base: String,
    /// Where the [page router](IntegrationsRouter::page) is mounted (default
    /// `/integrations`): where the callback sends the browser unless `connect` named a
    /// local page.
    pub page_url: String,
    /// Where a signed-out browser is sent, with `?next=<page>` appended; `None` answers
    /// 401 instead.
    pub sign_in_url: Option<String>,
    /// A form action that signs out (shown as a button when set).
    pub sign_out_action: Option<String>,
    /// A URL answering `GET` with `{"userId": n}` for the signed-in user, shown in the
    /// top bar when set.
    pub whoami_url: Option<String>,
    /// The scheme and host the app is reached at from outside
    /// (`https://app.example.com`), for absolute URLs handed to platforms (the status
    /// page of a data-deletion request). `None` takes the request's `Host` header.
    pub public_origin: Option<String>,
}

impl Default for PageConfig {
    fn default() -> Self {
        Self {
            title: "Integrations".into(),
            brand: "Studio".into(),
            nav: Vec::new(),
            api_base: "/api/integrations".into(),
            page_url: "/integrations".into(),
            sign_in_url: None,
            sign_out_action: None,
            whoami_url: None,
            public_origin: None,
        }
    }
}

/// Builds the [API](Self::api) and [page](Self::page) routers over one [`Integrations`].
#[derive(Clone)]
pub struct IntegrationsRouter {
    integrations: Integrations,
    auth: Arc<dyn Authenticate>,
    cards: Vec<Card>,
    page: PageConfig,
}

impl std::fmt::Debug for IntegrationsRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntegrationsRouter")
            .field("cards", &self.cards)
            .field("page", &self.page)
            .finish_non_exhaustive()
    }
}

impl IntegrationsRouter {
    /// Routers over `integrations`, asking `auth` who is signed in.
    pub fn new(integrations: Integrations, auth: impl Authenticate) -> Self {
        Self::with_auth(integrations, Arc::new(auth))
    }

    /// Like [`new`](Self::new), with a shared authenticator.
    pub fn with_auth(integrations: Integrations, auth: Arc<dyn Authenticate>) -> Self {
        Self {
            integrations,
            auth,
            cards: Vec::new(),
            page: PageConfig::default(),
        }
    }

    /// Names a provider's card and places it after the cards added before. Providers
    /// without a card show their [`Provider::display_name`](integrations_core::Provider).
    pub fn card(mut self, id: impl Into<String>, name: impl Into<String>) -> Self {
        self.cards.push(Card {
            id: id.into(),
            name: name.into(),
        });
        self
    }

    /// Sets how the page looks and where the API is.
    pub fn page_config(mut self, page: PageConfig) -> Self {
        self.page = page;
        self
    }

    /// The API router: the design's routes at its root, and its OpenAPI document at
    /// `GET /openapi.json` (no sign-in needed), naming
    /// [`PageConfig::api_base`] as where it is mounted.
    pub fn api(&self) -> axum::Router {
        let openapi = openapi::document(&self.page.api_base)
            .to_pretty_json()
            .ok()
            .map(axum::body::Bytes::from);
        api::router(api::ApiState {
            integrations: self.integrations.clone(),
            auth: self.auth.clone(),
            cards: Arc::new(self.cards.clone()),
            home: self.page.page_url.as_str().into(),
            openapi,
            api_base: self.page.api_base.trim_end_matches('/').into(),
            public_origin: self.page.public_origin.as_deref().map(Into::into),
        })
    }

    /// The OpenAPI 3.1 document of the [API router](Self::api), mounted at
    /// `/api/integrations` (checked in as `docs/openapi.json`). Every route but
    /// `GET /openapi.json` requires the security scheme `session`, which describes the
    /// example server's demo cookie: a host with its own authentication replaces it in
    /// `components.security_schemes`.
    pub fn openapi() -> utoipa::openapi::OpenApi {
        openapi::document(openapi::DEFAULT_MOUNT)
    }

    /// The page router: the page at its root, the assets under `/assets/`.
    pub fn page(&self) -> axum::Router {
        page::router(self.auth.clone(), &self.page)
    }
}
