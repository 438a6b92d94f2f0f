//! A local development server that emulates the OAuth and profile endpoints of Instagram,
//! TikTok, Reddit and an OnlyFans connection gateway, each in its own dialect (paths,
//! parameter names, client authentication, JSON shapes, error bodies and quirks), so that
//! the real provider crates run unchanged against it with only their base URLs changed.
//!
//! **Development only.** Every response carries `X-Sandbox: integrations-sandbox
//! (development only)` and every HTML page shows a banner saying so.
//!
//! # Quick start
//!
//! ```no_run
//! use integrations_sandbox::{Consent, Platform, Sandbox, SandboxConfig};
//!
//! # async fn demo() -> Result<(), integrations_sandbox::Error> {
//! let sandbox = Sandbox::start_with(SandboxConfig {
//!     auto_consent: Some(Consent::Allow),
//!     ..SandboxConfig::default()
//! })
//! .await?;
//! let urls = sandbox.urls();
//! let client = sandbox.client(Platform::TikTok);
//! // Point the TikTok provider at the sandbox:
//! //   www_base_url = urls.tiktok_www, api_base_url = urls.tiktok_open,
//! //   client_key = client.client_id, client_secret = client.client_secret,
//! //   redirect_uri = client.redirect_uri
//! println!("{} {}", urls.tiktok_www, client.client_id);
//!
//! // Fault controls for tests:
//! sandbox.fail_next(Some(Platform::TikTok), 2, integrations_sandbox::Failure::ServerError);
//! assert_eq!(sandbox.counters(Platform::TikTok).refresh_ok, 0);
//! sandbox.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! See `docs/sandbox.md` at the repository root for how to point each provider at the
//! sandbox, the consent modes and the HTTP control endpoints under `/_sandbox`.
//!
//! Load tests that need many grants seed them in one call ([`SandboxHandle::seed_grants`],
//! tokens derived from a seed the test chooses) and read their refresh counts back
//! ([`SandboxHandle::grant_summary`]).
//!
//! # Emulation notes (documented deviations and choices)
//!
//! Each dialect follows the platform's documents, not our provider crates; the wire facts,
//! their sources and confidence levels are listed in `providers/sandbox/CONTRACT-instagram.md`,
//! `CONTRACT-tiktok.md` and `CONTRACT-reddit.md`, and cited next to the code. Notably:
//! - Reddit refresh errors are HTTP 400 `{"error": "invalid_request"}` (Reddit's
//!   `r2/r2/controllers/oauth2.py`), while code-exchange errors are HTTP 200 bodies.
//! - TikTok access tokens last 2 h and refresh tokens 180 d by default (the 2026 token
//!   pages); older pages said 24 h / 365 d, see [`SandboxHandle::set_token_lifetime`].
//! - Authorization codes are one-time and expire after [`SandboxConfig::code_ttl`]
//!   (default 10 minutes); a code is consumed only by a successful exchange.
//! - TikTok PKCE: the verifier must match the challenge as base64url(SHA-256) (RFC 7636);
//!   if the challenge was sent as 64 hex digits, hex(SHA-256) is accepted too.
//! - Reddit requires a descriptive `User-Agent` on its API endpoints (token, revoke, `me`):
//!   a missing, short (< 8 chars) or bare-library one (`reqwest/…`, `curl/…`,
//!   `python-requests/…`, …) gets **429** `{"message": "Too Many Requests", "error": 429}`.
//! - Instagram refresh is refused with a Meta error (code 100) while the long-lived token is
//!   younger than [`SandboxConfig::instagram_min_refresh_age`] (24 h by default, measured on
//!   the sandbox clock, see [`SandboxHandle::advance_clock`]); dead tokens get code 190.
//! - A grant keeps at most 4 live access tokens; issuing a fifth drops the oldest.
//! - Platform webhooks (see [`SandboxHandle::remove_app`] and `GET /_sandbox/{platform}/apps`):
//!   Instagram's `signed_request` carries the app-scoped id as `user_id` unless
//!   [`WebhookTargets::signed_request_user_id`] says otherwise (Meta does not document which
//!   id Instagram Login sends); the OnlyFans gateway's Svix secret is new at every start
//!   ([`SandboxHandle::onlyfans_webhook_secret`]); webhook timestamps use the wall clock.
//! - Quotas (see [`SandboxHandle::set_quota`], [`QuotaSettings::default_for`]): one fixed
//!   window per platform on the sandbox clock, with each platform's usage headers (Reddit
//!   `X-Ratelimit-*`, Meta `X-App-Usage` / `X-Business-Use-Case-Usage`, OFAuth
//!   `X-RateLimit-*`, none for TikTok) and its throttle reply once used up (Instagram code
//!   80002 with HTTP 400, 429 elsewhere). OFAuth's `X-RateLimit-Limit` / `-Remaining` names
//!   and the `-Reset` format (seconds) are assumptions; [`SandboxHandle::set_health`] sets
//!   the operational / degraded / throttled / failing presets of [`PlatformHealth`].

#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
// Handlers return early with a ready HTTP response as the `Err` value; boxing it buys nothing.
#![allow(clippy::result_large_err)]

mod apps;
mod common;
mod control;
mod faults;
mod instagram;
mod onlyfans;
mod pages;
mod quota;
mod reddit;
mod seed;
mod state;
mod tiktok;
mod users;
mod util;
mod webhooks;

pub use faults::{Failure, Faults};
pub use quota::{PlatformHealth, QuotaSettings, QuotaState};
pub use seed::{
    GrantSummary, MAX_SEEDED_GRANTS, MIN_SEED_LEN, SeedGrants, SeededGrants, SeededTokens,
};
pub use webhooks::{
    AppRemoval, RemoveAppOptions, SignedRequestUserId, WebhookDelivery, WebhookTargets,
};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post};
use serde::{Deserialize, Serialize};
use state::{Inner, dur_ms};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The value of the `X-Sandbox` header on every response.
pub const SANDBOX_HEADER_VALUE: &str = "integrations-sandbox (development only)";

/// Errors from starting the sandbox or from its handle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Binding or serving the listener failed.
    #[error("sandbox I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A redirect URI is not an absolute URL.
    #[error("invalid redirect URI: {0}")]
    InvalidRedirectUri(String),
    /// A platform name is not one of `instagram`, `tiktok`, `reddit`, `onlyfans`.
    #[error("unknown platform: {0}")]
    UnknownPlatform(String),
    /// The platform sends no webhooks (Reddit).
    #[error("{0} sends no webhooks")]
    WebhooksUnsupported(Platform),
    /// A webhook target or option is invalid (not an absolute http(s) URL, a field that does
    /// not apply to the platform, a reason out of range, a malformed secret).
    #[error("invalid webhook target: {0}")]
    InvalidWebhookTarget(String),
    /// The webhook target needed for this action is not configured.
    #[error("no {target} configured for {platform} webhooks")]
    NoWebhookTarget {
        /// The platform.
        platform: Platform,
        /// The missing field of [`WebhookTargets`].
        target: &'static str,
    },
    /// The user has no live grant (nothing to remove, nothing to reconnect).
    #[error("{user} has no live grant on {platform}")]
    NoLiveGrant {
        /// The platform.
        platform: Platform,
        /// The sandbox user.
        user: String,
    },
    /// There is no delivery to replay yet.
    #[error("no {0} webhook delivery to replay")]
    NothingToReplay(Platform),
    /// A bulk seeding request is invalid ([`SandboxHandle::seed_grants`]): a platform
    /// without refresh tokens, a count out of range, a short seed, a bad user name, an
    /// unknown client, or a user who already has a grant.
    #[error("invalid grant seeding: {0}")]
    InvalidSeed(String),
    /// Quota settings or a health state are invalid (a window under one second, usage above
    /// the limit, an unknown health state name).
    #[error("invalid quota: {0}")]
    InvalidQuota(String),
}

/// `Result` with the sandbox [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An emulated platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// Instagram API with Instagram Login.
    Instagram,
    /// TikTok Login Kit v2.
    #[serde(rename = "tiktok")]
    TikTok,
    /// Reddit OAuth2.
    Reddit,
    /// The OnlyFans connection gateway (OFAuth-style link flow).
    #[serde(rename = "onlyfans")]
    OnlyFans,
}

impl Platform {
    /// All platforms, in a fixed order.
    pub const ALL: [Platform; 4] = [
        Platform::Instagram,
        Platform::TikTok,
        Platform::Reddit,
        Platform::OnlyFans,
    ];

    /// The lowercase name used in URLs and provider ids (`instagram`, `tiktok`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Instagram => "instagram",
            Platform::TikTok => "tiktok",
            Platform::Reddit => "reddit",
            Platform::OnlyFans => "onlyfans",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Platform {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Platform::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::UnknownPlatform(s.to_owned()))
    }
}

/// A consent decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Consent {
    /// The user clicks "Allow".
    Allow,
    /// The user clicks "Deny".
    Deny,
}

/// Sandbox settings.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Port on 127.0.0.1; `0` picks a free one.
    pub port: u16,
    /// Answer every authorize/link request with this decision immediately (302, no page).
    /// `None` shows the consent page unless the URL carries `sandbox_auto=allow|deny`.
    pub auto_consent: Option<Consent>,
    /// Lifetime of authorization codes and gateway link sessions.
    pub code_ttl: Duration,
    /// The sandbox user who consents when the URL carries no `sandbox_user=<name>`.
    pub default_user: String,
    /// Redirect URIs registered for the demo client of every platform; `{platform}` is
    /// replaced by the platform name. The first one is [`SandboxClient::redirect_uri`].
    pub redirect_uris: Vec<String>,
    /// Instagram code exchange answers with the `{"data": [{...}]}` shape (Business Login
    /// guide) instead of the flat `{"access_token", "user_id"}` one.
    pub instagram_data_array: bool,
    /// Minimum age of an Instagram long-lived token before it may be refreshed (24 h).
    pub instagram_min_refresh_age: Duration,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            port: 0,
            auto_consent: None,
            code_ttl: Duration::from_secs(600),
            default_user: "demo".to_owned(),
            redirect_uris: vec![
                "http://127.0.0.1:3000/callback/{platform}".to_owned(),
                "http://localhost:3000/callback/{platform}".to_owned(),
            ],
            instagram_data_array: false,
            instagram_min_refresh_age: Duration::from_secs(24 * 3600),
        }
    }
}

/// Registered client credentials. For the OnlyFans gateway `client_secret` is the API key
/// (sent as the `apikey` header) and `client_id` only names it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxClient {
    /// The platform.
    pub platform: Platform,
    /// `client_id` (TikTok: `client_key`).
    pub client_id: String,
    /// `client_secret` (OnlyFans gateway: the API key).
    pub client_secret: String,
    /// The first registered redirect URI.
    pub redirect_uri: String,
}

impl fmt::Debug for SandboxClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxClient")
            .field("platform", &self.platform)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}

impl SandboxClient {
    /// The demo client of `platform` as every sandbox registers it (the credentials are
    /// fixed, see `docs/sandbox.md`), with `redirect_uri` as its first redirect URI: what a
    /// program needs to reach a sandbox running in another process. The default
    /// configuration's first redirect URI is `http://127.0.0.1:3000/callback/{platform}`.
    pub fn demo(platform: Platform, redirect_uri: &str) -> Self {
        let (client_id, client_secret) = demo_credentials(platform);
        Self {
            platform,
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
        }
    }
}

/// The base URLs to configure in each provider (none ends with `/`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BaseUrls {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Instagram `www_base_url` (authorize).
    pub instagram_www: String,
    /// Instagram `api_base_url` (code exchange).
    pub instagram_api: String,
    /// Instagram `graph_base_url` (long-lived exchange, refresh, `/me`).
    pub instagram_graph: String,
    /// TikTok `www_base_url` (authorize).
    pub tiktok_www: String,
    /// TikTok `api_base_url` (token, revoke, user info).
    pub tiktok_open: String,
    /// Reddit `www_base_url` (authorize, token, revoke).
    pub reddit_www: String,
    /// Reddit `oauth_base_url` (`/api/v1/me`).
    pub reddit_oauth: String,
    /// OnlyFans gateway `api_base_url`.
    pub onlyfans_gateway: String,
}

impl BaseUrls {
    /// The base URLs of a sandbox listening at `base` (`http://127.0.0.1:PORT`, no
    /// trailing slash), for a program that reaches a sandbox running in another process.
    pub fn at(base: &str) -> Self {
        Self::new(base.trim_end_matches('/'))
    }

    fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            instagram_www: format!("{base}/instagram/www"),
            instagram_api: format!("{base}/instagram/api"),
            instagram_graph: format!("{base}/instagram/graph"),
            tiktok_www: format!("{base}/tiktok/www"),
            tiktok_open: format!("{base}/tiktok/open"),
            reddit_www: format!("{base}/reddit/www"),
            reddit_oauth: format!("{base}/reddit/oauth"),
            onlyfans_gateway: format!("{base}/onlyfans/gateway"),
        }
    }
}

/// What a provider should end up storing for a sandbox user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    /// The platform.
    pub platform: Platform,
    /// The sandbox user name (`sandbox_user`).
    pub user: String,
    /// The platform account id: Instagram `user_id` (> 2^53), TikTok `open_id`, Reddit `id`
    /// (base 36, no `t2_`), gateway `id`.
    pub account_id: String,
    /// The username (equal to the sandbox user name).
    pub username: String,
    /// Display name (`jane_doe` → `Jane Doe`).
    pub display_name: String,
    /// Avatar URL (served by the sandbox as SVG; Reddit's `icon_img` adds query params).
    pub avatar_url: String,
    /// Followers count (Instagram `followers_count`, TikTok `follower_count`).
    pub followers: u64,
}

impl UserInfo {
    /// What a sandbox at `base_url` (`http://127.0.0.1:PORT`) shows for `user` on
    /// `platform`: the profile data are derived from the platform and the user name, so a
    /// program can compute them without asking (a load test filling its own database, see
    /// [`SandboxHandle::seed_grants`]). The same as [`SandboxHandle::user_info`].
    pub fn of(base_url: &str, platform: Platform, user: &str) -> Self {
        users::user_info(base_url.trim_end_matches('/'), platform, user)
    }
}

/// Counters of one grant (one user's authorization of one client).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantCounters {
    /// Sandbox-internal grant id (increasing per platform).
    pub grant_id: u64,
    /// The sandbox user.
    pub user: String,
    /// The client the grant was issued to.
    pub client_id: String,
    /// Successful refreshes of this grant.
    pub refreshes: u64,
    /// Whether the grant was revoked (by the client, or via the controls).
    pub revoked: bool,
}

/// Counters of one platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlatformCounters {
    /// The platform.
    pub platform: Platform,
    /// API requests that reached the platform's API routes (including faulted ones).
    pub requests: u64,
    /// Refresh requests that reached the handler (TikTok/Reddit `grant_type=refresh_token`,
    /// Instagram `refresh_access_token`), successful or not. Faulted requests are not counted.
    pub refresh_calls: u64,
    /// Successful refreshes.
    pub refresh_ok: u64,
    /// Per-grant counters, by grant id.
    pub grants: Vec<GrantCounters>,
}

/// Default (access, refresh) lifetimes per platform.
fn default_lifetimes(p: Platform) -> (Duration, Option<Duration>) {
    match p {
        // Long-lived token, 60 days ("expires_in": 5184000):
        // https://developers.facebook.com/documentation/instagram-platform/reference/access_token
        Platform::Instagram => (Duration::from_secs(5_184_000), None),
        // Access 2 h, refresh 180 d: "Token lifetimes" on
        // https://developers.tiktok.com/docs/en/oauth-user-access-token-management (updated
        // 2026-11) and https://developers.tiktok.com/docs/en/oauth-refresh-a-user-access-token.
        // The older https://developers.tiktok.com/doc/oauth-user-access-token-management says
        // 24 h / 365 d; `set_token_lifetime` / `set_refresh_token_lifetime` select those.
        Platform::TikTok => (
            Duration::from_secs(7_200),
            Some(Duration::from_secs(180 * 86_400)),
        ),
        // `expires_in` 3600: https://github.com/reddit-archive/reddit/wiki/OAuth2
        // (the server's refresh tokens do not expire until revoked).
        Platform::Reddit => (Duration::from_secs(3_600), None),
        Platform::OnlyFans => (Duration::from_secs(30 * 86_400), None),
    }
}

/// The fixed demo credentials (stable across runs).
fn demo_credentials(p: Platform) -> (&'static str, &'static str) {
    match p {
        Platform::Instagram => ("990000000000001", "sandbox-instagram-secret-0001"),
        Platform::TikTok => ("sbxawdemo0000001", "sandbox-tiktok-secret-0001"),
        Platform::Reddit => ("sandboxRedditDemo01", "sandbox-reddit-secret-0001"),
        Platform::OnlyFans => ("onlyfans-demo", "sbx_of_apikey_demo_0001"),
    }
}

/// A cloneable handle to a sandbox's state and controls (also reachable through
/// [`Sandbox`] by `Deref`). Cheap to clone; usable from any task.
#[derive(Debug, Clone)]
pub struct SandboxHandle {
    inner: Arc<Inner>,
}

impl SandboxHandle {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn base_url(&self) -> &str {
        self.inner.base_url()
    }

    /// Every provider base URL.
    pub fn urls(&self) -> BaseUrls {
        BaseUrls::new(self.base_url())
    }

    /// Instagram `www_base_url`.
    pub fn instagram_www(&self) -> String {
        self.urls().instagram_www
    }
    /// Instagram `api_base_url`.
    pub fn instagram_api(&self) -> String {
        self.urls().instagram_api
    }
    /// Instagram `graph_base_url`.
    pub fn instagram_graph(&self) -> String {
        self.urls().instagram_graph
    }
    /// TikTok `www_base_url`.
    pub fn tiktok_www(&self) -> String {
        self.urls().tiktok_www
    }
    /// TikTok `api_base_url`.
    pub fn tiktok_open(&self) -> String {
        self.urls().tiktok_open
    }
    /// Reddit `www_base_url`.
    pub fn reddit_www(&self) -> String {
        self.urls().reddit_www
    }
    /// Reddit `oauth_base_url`.
    pub fn reddit_oauth(&self) -> String {
        self.urls().reddit_oauth
    }
    /// OnlyFans gateway `api_base_url`.
    pub fn onlyfans_gateway(&self) -> String {
        self.urls().onlyfans_gateway
    }

    /// The fixed demo client of a platform.
    pub fn client(&self, platform: Platform) -> SandboxClient {
        self.inner.demo_client(platform)
    }

    /// Every registered client.
    pub fn clients(&self) -> Vec<SandboxClient> {
        self.inner.all_clients()
    }

    /// Registers a new client with fresh random credentials and one redirect URI.
    pub fn register_client(&self, platform: Platform, redirect_uri: &str) -> Result<SandboxClient> {
        if url::Url::parse(redirect_uri).is_err() {
            return Err(Error::InvalidRedirectUri(redirect_uri.to_owned()));
        }
        let (id, secret) = match platform {
            Platform::Instagram => (
                (990_000_000_000_000u64 + rand_u64() % 1_000_000_000).to_string(),
                util::random_hex(16),
            ),
            Platform::TikTok => (
                format!("sbxaw{}", util::random_hex(6)),
                util::random_token("", 24),
            ),
            Platform::Reddit => (util::random_token("", 15), util::random_token("", 21)),
            Platform::OnlyFans => (
                format!("onlyfans-{}", util::random_hex(4)),
                format!("sbx_of_{}", util::random_hex(16)),
            ),
        };
        self.inner.insert_client(
            platform,
            state::RegisteredClient {
                client_id: id.clone(),
                client_secret: secret.clone(),
                redirect_uris: vec![redirect_uri.to_owned()],
            },
        );
        Ok(SandboxClient {
            platform,
            client_id: id,
            client_secret: secret,
            redirect_uri: redirect_uri.to_owned(),
        })
    }

    /// Adds a redirect URI to a registered client; `false` if the client is unknown.
    pub fn add_redirect_uri(
        &self,
        platform: Platform,
        client_id: &str,
        redirect_uri: &str,
    ) -> Result<bool> {
        if url::Url::parse(redirect_uri).is_err() {
            return Err(Error::InvalidRedirectUri(redirect_uri.to_owned()));
        }
        let Some(mut c) = self.inner.client(platform, client_id) else {
            return Ok(false);
        };
        if !c.redirect_uris.iter().any(|u| u == redirect_uri) {
            c.redirect_uris.push(redirect_uri.to_owned());
        }
        self.inner.insert_client(platform, c);
        Ok(true)
    }

    /// Sets the access-token lifetime for tokens issued from now on (Instagram: the
    /// long-lived token; OnlyFans: the connection session).
    pub fn set_token_lifetime(&self, platform: Platform, lifetime: Duration) {
        self.inner
            .platform(platform)
            .access_ttl_ms
            .store(dur_ms(lifetime), Ordering::Relaxed);
    }

    /// Sets the refresh-token lifetime (TikTok, Reddit) for tokens issued from now on;
    /// `None` = never expires.
    pub fn set_refresh_token_lifetime(&self, platform: Platform, lifetime: Option<Duration>) {
        self.inner
            .platform(platform)
            .refresh_ttl_ms
            .store(lifetime.map(dur_ms).unwrap_or(0), Ordering::Relaxed);
    }

    /// Sets the Instagram short-lived token lifetime (default 1 h).
    pub fn set_instagram_short_lifetime(&self, lifetime: Duration) {
        self.inner
            .platform(Platform::Instagram)
            .short_ttl_ms
            .store(dur_ms(lifetime), Ordering::Relaxed);
    }

    /// Sets the lifetime of codes and link sessions issued from now on.
    pub fn set_code_ttl(&self, ttl: Duration) {
        self.inner.code_ttl_ms.store(dur_ms(ttl), Ordering::Relaxed);
    }

    /// Changes the automatic consent mode at run time.
    pub fn set_auto_consent(&self, consent: Option<Consent>) {
        let v = match consent {
            None => 0,
            Some(Consent::Allow) => 1,
            Some(Consent::Deny) => 2,
        };
        self.inner.auto_consent.store(v, Ordering::Relaxed);
    }

    /// Makes every access token of `user` on `platform` expire now (refresh tokens keep
    /// working). Returns the number of tokens affected.
    pub fn expire_tokens(&self, platform: Platform, user: &str) -> usize {
        let now = self.inner.now_ms();
        let mut store = self.inner.platform(platform).lock();
        let mut n = 0;
        for g in store.user_grants(user) {
            let tokens: Vec<String> = store
                .grants
                .get(&g)
                .map(|g| g.access_tokens.iter().cloned().collect())
                .unwrap_or_default();
            for t in tokens {
                if let Some(e) = store.access.get_mut(&t)
                    && e.expires_at > now
                {
                    e.expires_at = now;
                    n += 1;
                }
            }
        }
        n
    }

    /// Revokes every grant of `user` on `platform` (as if the user removed the app): access
    /// tokens stop working and the next refresh gets `invalid_grant`. Returns the number of
    /// grants revoked.
    pub fn revoke_grants(&self, platform: Platform, user: &str) -> usize {
        let mut store = self.inner.platform(platform).lock();
        let mut n = 0;
        for g in store.user_grants(user) {
            if let Some(grant) = store.grants.get_mut(&g)
                && !grant.revoked
            {
                grant.revoked = true;
                n += 1;
            }
        }
        n
    }

    /// Moves the sandbox clock forward (codes, token expiry, Instagram's 24 h rule).
    pub fn advance_clock(&self, by: Duration) {
        self.inner
            .clock_offset_ms
            .fetch_add(dur_ms(by), Ordering::Relaxed);
    }

    /// The sandbox clock.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_millis(self.inner.now_ms()).unwrap_or_default()
    }

    /// Sets standing faults for one platform, or for all when `platform` is `None`.
    pub fn set_faults(&self, platform: Option<Platform>, faults: Faults) {
        for p in platforms(platform) {
            self.inner.platform(p).faults.set(faults.clone());
        }
    }

    /// The standing faults of a platform.
    pub fn faults(&self, platform: Platform) -> Faults {
        self.inner.platform(platform).faults.get()
    }

    /// Fails the next `count` API requests of a platform (or of each platform when `None`)
    /// with `failure`, before any standing fault rates apply.
    pub fn fail_next(&self, platform: Option<Platform>, count: usize, failure: Failure) {
        for p in platforms(platform) {
            self.inner.platform(p).faults.push(count, failure);
        }
    }

    /// Removes standing faults and queued failures.
    pub fn clear_faults(&self, platform: Option<Platform>) {
        for p in platforms(platform) {
            self.inner.platform(p).faults.clear();
        }
    }

    /// Sets a platform's quota: limit, window length and the calls already used; a new
    /// window starts now (sandbox clock). A window under one second or `used > limit` is
    /// refused with [`Error::InvalidQuota`]. See [`QuotaSettings::default_for`] for the
    /// defaults and `docs/sandbox.md` for each platform's headers and throttle reply.
    pub fn set_quota(&self, platform: Platform, settings: QuotaSettings) -> Result<QuotaState> {
        let ps = self.inner.platform(platform);
        let now = self.inner.now_ms();
        ps.quota.set(&settings, now)?;
        Ok(ps.quota.state(platform, now))
    }

    /// A platform's quota as it stands (used, limit, remaining, reset time).
    pub fn quota(&self, platform: Platform) -> QuotaState {
        self.inner
            .platform(platform)
            .quota
            .state(platform, self.inner.now_ms())
    }

    /// Uses up the current window: the next counted calls get the platform's throttle reply
    /// until the window ends (the headers and [`QuotaState::reset_at`] say when).
    pub fn exhaust_quota(&self, platform: Platform) -> QuotaState {
        let ps = self.inner.platform(platform);
        let now = self.inner.now_ms();
        ps.quota.exhaust(now);
        ps.quota.state(platform, now)
    }

    /// Usage back to zero in a new window starting now (limit and length unchanged).
    pub fn reset_quota(&self, platform: Platform) -> QuotaState {
        let ps = self.inner.platform(platform);
        let now = self.inner.now_ms();
        ps.quota.reset(now);
        ps.quota.state(platform, now)
    }

    /// Puts a platform in exactly one health state in one call: replaces its standing
    /// faults with [`PlatformHealth::faults`] (queued `fail_next` failures are dropped) and
    /// resets its quota usage, or, for [`PlatformHealth::Throttled`], exhausts it.
    pub fn set_health(&self, platform: Platform, health: PlatformHealth) -> QuotaState {
        let faults = &self.inner.platform(platform).faults;
        faults.clear();
        faults.set(health.faults());
        match health {
            PlatformHealth::Throttled => self.exhaust_quota(platform),
            _ => self.reset_quota(platform),
        }
    }

    /// Counters of a platform (walks its grants: meant for assertions, not hot paths).
    pub fn counters(&self, platform: Platform) -> PlatformCounters {
        let ps = self.inner.platform(platform);
        let mut grants: Vec<GrantCounters> = ps
            .lock()
            .grants
            .values()
            .map(|g| GrantCounters {
                grant_id: g.id,
                user: g.user.clone(),
                client_id: g.client_id.clone(),
                refreshes: g.refreshes,
                revoked: g.revoked,
            })
            .collect();
        grants.sort_by_key(|g| g.grant_id);
        PlatformCounters {
            platform,
            requests: ps.requests.load(Ordering::Relaxed),
            refresh_calls: ps.refresh_calls.load(Ordering::Relaxed),
            refresh_ok: ps.refresh_ok.load(Ordering::Relaxed),
            grants,
        }
    }

    /// Successful refreshes of all grants of `user` on `platform`.
    pub fn refresh_count(&self, platform: Platform, user: &str) -> u64 {
        let store = self.inner.platform(platform).lock();
        store
            .user_grants(user)
            .iter()
            .filter_map(|g| store.grants.get(g))
            .map(|g| g.refreshes)
            .sum()
    }

    /// Resets request and refresh counters (platform-wide and per grant).
    pub fn reset_counters(&self) {
        for p in Platform::ALL {
            let ps = self.inner.platform(p);
            ps.requests.store(0, Ordering::Relaxed);
            ps.refresh_calls.store(0, Ordering::Relaxed);
            ps.refresh_ok.store(0, Ordering::Relaxed);
            for g in ps.lock().grants.values_mut() {
                g.refreshes = 0;
            }
        }
    }

    /// What a provider should see for sandbox user `user` on `platform`.
    pub fn user_info(&self, platform: Platform, user: &str) -> UserInfo {
        users::user_info(self.base_url(), platform, user)
    }
}

fn platforms(p: Option<Platform>) -> Vec<Platform> {
    p.map(|p| vec![p]).unwrap_or_else(|| Platform::ALL.to_vec())
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    rand::fill(&mut b[..]);
    u64::from_le_bytes(b)
}

/// A running sandbox server. Derefs to [`SandboxHandle`] for the controls. Dropping it
/// stops the server (graceful shutdown in the background); [`Sandbox::shutdown`] waits.
#[derive(Debug)]
pub struct Sandbox {
    handle: SandboxHandle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Sandbox {
    /// Starts a sandbox on 127.0.0.1 with a free port and default settings.
    pub async fn start() -> Result<Sandbox> {
        Self::start_with(SandboxConfig::default()).await
    }

    /// Starts a sandbox with `config`.
    pub async fn start_with(config: SandboxConfig) -> Result<Sandbox> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port)).await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner::new(config));
        let _ = inner.base_url.set(format!("http://{addr}"));
        let app = router(inner.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "integrations-sandbox server stopped with an error");
            }
        });
        Ok(Sandbox {
            handle: SandboxHandle { inner },
            stop: Some(tx),
            task: Some(task),
        })
    }

    /// A cloneable handle to the controls.
    pub fn handle(&self) -> SandboxHandle {
        self.handle.clone()
    }

    /// Stops the server and waits (up to 5 s, then aborts open connections).
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl std::ops::Deref for Sandbox {
    type Target = SandboxHandle;
    fn deref(&self) -> &SandboxHandle {
        &self.handle
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

macro_rules! authorize_handlers {
    ($get:ident, $post:ident, $p:expr) => {
        async fn $get(State(inner): State<Arc<Inner>>, uri: Uri) -> Response {
            pages::authorize_get(&inner, $p, uri.path(), uri.query())
        }
        async fn $post(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
            pages::authorize_post(&inner, $p, &body)
        }
    };
}

authorize_handlers!(ig_authorize, ig_authorize_post, Platform::Instagram);
authorize_handlers!(tt_authorize, tt_authorize_post, Platform::TikTok);
authorize_handlers!(rd_authorize, rd_authorize_post, Platform::Reddit);

async fn not_found(uri: Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        format!(
            "integrations-sandbox (development only): no route for {}\n",
            uri.path()
        ),
    )
        .into_response()
}

async fn add_sandbox_header(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert("x-sandbox", HeaderValue::from_static(SANDBOX_HEADER_VALUE));
    resp
}

/// Builds the whole router.
fn router(inner: Arc<Inner>) -> Router {
    let faulted = |p: Platform, r: Router<Arc<Inner>>| {
        r.layer(axum::middleware::from_fn_with_state(
            (inner.clone(), p),
            faults::fault_layer,
        ))
    };
    // Quota-counted routes (see `quota.rs`); wrapped by `faulted` afterwards, so the fault
    // layer runs first.
    let counted = |p: Platform, r: Router<Arc<Inner>>| {
        r.layer(axum::middleware::from_fn_with_state(
            (inner.clone(), p),
            quota::quota_layer,
        ))
    };
    let instagram_api = faulted(
        Platform::Instagram,
        Router::new()
            .route(
                "/instagram/api/oauth/access_token",
                post(instagram::access_token),
            )
            .merge(counted(
                Platform::Instagram,
                Router::new()
                    .route("/instagram/graph/access_token", get(instagram::exchange))
                    .route(
                        "/instagram/graph/refresh_access_token",
                        get(instagram::refresh),
                    )
                    .route("/instagram/graph/me", get(instagram::me))
                    .route("/instagram/graph/{version}/me", get(instagram::me)),
            )),
    );
    let tiktok_api = faulted(
        Platform::TikTok,
        counted(
            Platform::TikTok,
            Router::new()
                .route("/tiktok/open/v2/oauth/token/", post(tiktok::token))
                .route("/tiktok/open/v2/oauth/revoke/", post(tiktok::revoke))
                .route("/tiktok/open/v2/user/info/", get(tiktok::user_info)),
        ),
    );
    let reddit_api = faulted(
        Platform::Reddit,
        counted(
            Platform::Reddit,
            Router::new()
                .route(
                    "/reddit/www/api/v1/access_token",
                    post(reddit::access_token),
                )
                .route(
                    "/reddit/www/api/v1/revoke_token",
                    post(reddit::revoke_token),
                )
                .route("/reddit/oauth/api/v1/me", get(reddit::me)),
        ),
    );
    let onlyfans_api = faulted(
        Platform::OnlyFans,
        Router::new()
            .route("/onlyfans/gateway/v2/link/init", post(onlyfans::link_init))
            .merge(counted(
                Platform::OnlyFans,
                Router::new().route(
                    "/onlyfans/gateway/v2/access/self",
                    get(onlyfans::access_self),
                ),
            ))
            .route(
                "/onlyfans/gateway/v2/account/connections/{id}",
                delete(onlyfans::delete_connection),
            )
            .route(
                "/onlyfans/gateway/v2/{*rest}",
                any(onlyfans::route_not_found),
            ),
    );
    Router::new()
        .route(
            "/instagram/www/oauth/authorize",
            get(ig_authorize).post(ig_authorize_post),
        )
        .route(
            "/instagram/api/oauth/authorize",
            get(ig_authorize).post(ig_authorize_post),
        )
        .route(
            "/tiktok/www/v2/auth/authorize/",
            get(tt_authorize).post(tt_authorize_post),
        )
        .route(
            "/reddit/www/api/v1/authorize",
            get(rd_authorize).post(rd_authorize_post),
        )
        .route(
            "/reddit/www/api/v1/authorize.compact",
            get(rd_authorize).post(rd_authorize_post),
        )
        .route(
            "/onlyfans/gateway/link/{session}",
            get(pages::link_get).post(pages::link_post),
        )
        .merge(instagram_api)
        .merge(tiktok_api)
        .merge(reddit_api)
        .merge(onlyfans_api)
        .merge(control::router())
        .merge(apps::router())
        .fallback(not_found)
        .layer(axum::middleware::map_response(add_sandbox_header))
        .with_state(inner)
}
