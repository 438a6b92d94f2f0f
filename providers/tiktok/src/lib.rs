//! TikTok provider for `integrations-core`: **Login Kit v2** and the Open API v2.
//!
//! - Authorization at `{www}/v2/auth/authorize/` with `client_key` (TikTok's name for the
//!   client id), comma-separated `scope`, `response_type=code`, `redirect_uri`, `state`
//!   and a PKCE S256 challenge (base64url per RFC 7636 by default, hex as an option: see
//!   [`PkceChallengeEncoding`]).
//! - [`Provider::exchange_code`] and [`Provider::refresh`] call `POST
//!   {api}/v2/oauth/token/` (form-encoded). Lifetimes come from `expires_in` and
//!   `refresh_expires_in`, never from constants; the newest `refresh_token` of a refresh
//!   reply is always returned, since TikTok rotates refresh tokens. The account id is the
//!   `open_id` of the user info.
//! - [`Provider::revoke`] calls `POST {api}/v2/oauth/revoke/` with the access token.
//! - [`Provider::fetch_profile`] reads `GET {api}/v2/user/info/` into [`TikTokMetadata`].
//!
//! # Errors
//!
//! TikTok's error bodies and their mapping to [`ProviderError`].
//!
//! **Token and revoke endpoints** (`/v2/oauth/token/`, `/v2/oauth/revoke/`) answer errors
//! as `{"error", "error_description", "log_id"}`, usually with HTTP 400 or 401 but possibly
//! with 200, so the body is checked whatever the status:
//! 1. HTTP 429 → `RateLimited` (with `Retry-After` when sent); HTTP 5xx → `Unavailable`.
//! 2. An `error` string → core's RFC 6749 mapping
//!    ([`oauth_error`](integrations_core::http::oauth_error)): `invalid_grant` →
//!    `InvalidGrant`, `invalid_client` / `unauthorized_client` → `InvalidClient`,
//!    `access_denied` → `AccessDenied`, others → `Protocol`. The `log_id` is appended to
//!    the description for TikTok support.
//! 3. HTTP 401 without a body → `InvalidClient`; other non-2xx → `Protocol`.
//!
//! **Data endpoints** (`/v2/user/info/`) wrap every reply as `{"data": ..., "error":
//! {"code", "message", "log_id"}}`; `error.code` other than `"ok"` is an error:
//! - `access_token_invalid` → `InvalidGrant` (the user reconnects);
//! - `scope_not_authorized` (once the user-info call has been retried with only the
//!   `user.info.basic` fields), `scope_permission_missed` → `InvalidClient`: the requested
//!   fields need a scope the app did not ask for or is not approved for, which is fixed in
//!   the configuration (scopes, `user_info_fields`) or the developer portal, not by
//!   retrying or by clearing the user's tokens;
//! - `rate_limit_exceeded` → `RateLimited` (TikTok documents no `Retry-After`; it is read
//!   when present);
//! - `internal_error` → `Unavailable`;
//! - anything else → `Protocol` with the code, message and `log_id`.
//!
//!   Without an envelope, HTTP 429 → `RateLimited`, 5xx → `Unavailable`, 401 →
//!   `InvalidGrant`, other non-2xx → `Protocol`.
//!
//! Every description, message and body kept in an error is scrubbed of the secrets we sent
//! (tokens, code, verifier, client secret).
//!
//! # Webhooks
//!
//! [`Provider::read_webhook`] reads what TikTok sends to the app's callback URL, to be
//! passed in by the host's route through
//! [`Integrations::handle_platform_webhook`](integrations_core::Integrations::handle_platform_webhook).
//! Setup: register the callback URL (HTTPS) on the app in the TikTok Developer Portal; once
//! one is set, every event is subscribed (<https://developers.tiktok.com/doc/webhooks-overview/>).
//! Nothing else is needed: TikTok signs with the app's client secret. Optional variables:
//! `TIKTOK_WEBHOOK_SECRETS` (more secrets to accept, comma-separated, such as the previous
//! client secret during a rotation) and `TIKTOK_WEBHOOK_TOLERANCE_SECS` (default 300).
//!
//! - Only `POST` on the events route: a `GET` is [`WebhookRefusal::Method`], the
//!   data-deletion route [`WebhookRefusal::Unsupported`].
//! - `TikTok-Signature: t=<unix s>,s=<hex>` (<https://developers.tiktok.com/doc/webhooks-verification>)
//!   is checked first: missing → `MissingSignature`, unreadable → `Malformed`, `t` outside
//!   the tolerance (TikTok names none) → `Stale`, `s` not the lowercase hex
//!   HMAC-SHA256 of `"<t>." + raw body` under the client secret or a configured webhook
//!   secret (compared in constant time) → `BadSignature`.
//! - Then the body `{client_key, event, create_time, user_openid, content}`
//!   (<https://developers.tiktok.com/doc/webhooks-events/>): not that JSON, or a
//!   `client_key` other than ours → `Malformed`. `content` is documented as a JSON object
//!   serialized into a string; an object is accepted too.
//! - `authorization.removed` is [`PlatformAction::Revoked`](integrations_core::PlatformAction::Revoked)
//!   for the account whose `open_id` is `user_openid` (its tokens are cleared: TikTok has
//!   already revoked them), with [`removal_reason`] of `content.reason` as the account's
//!   last error and `create_time` as the time (an event dated before the account's current
//!   authorization changes nothing). Any other event (`video.publish.completed`, ...) is
//!   acknowledged and ignored.
//! - TikTok sends no event id: a delivery is deduplicated by the SHA-256 of its body
//!   (retries are at least once, for up to 72 hours).
//!
//! # Example
//!
//! ```
//! use integrations_core::{AuthorizationRequest, ClientSecret, Provider};
//! use integrations_tiktok::{PkceChallengeEncoding, TikTokConfig, TikTokProvider};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), integrations_core::ProviderError> {
//! let config = TikTokConfig::builder()
//!     .client_key("awclientkey")
//!     .client_secret(ClientSecret::new("client-secret"))
//!     .redirect_uri("https://app.example/integrations/tiktok/callback")
//!     .scopes(["user.info.basic", "user.info.profile"])
//!     .pkce_encoding(PkceChallengeEncoding::Base64Url)
//!     .build()?;
//! // Or: TikTokConfig::from_env()?, reading TIKTOK_CLIENT_KEY, TIKTOK_CLIENT_SECRET,
//! // TIKTOK_REDIRECT_URI and the optional TIKTOK_* variables it documents.
//! let tiktok = TikTokProvider::new(config)?;
//!
//! let verifier = integrations_core::oauth::generate_pkce_verifier();
//! let url = tiktok
//!     .authorization_url(&AuthorizationRequest {
//!         state: integrations_core::oauth::generate_state(),
//!         pkce_challenge: Some(integrations_core::oauth::pkce_challenge(&verifier)),
//!         scopes: Vec::new(), // the configured defaults
//!     })
//!     .await?;
//! assert!(url.as_str().starts_with("https://www.tiktok.com/v2/auth/authorize/?"));
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod api;
mod config;
mod error;
mod webhooks;

pub use api::{BASIC_USER_FIELDS, TikTokMetadata};
pub use config::{
    DEFAULT_API_BASE_URL, DEFAULT_SCOPE, DEFAULT_USER_INFO_FIELDS, DEFAULT_WWW_BASE_URL,
    PkceChallengeEncoding, TikTokConfig, TikTokConfigBuilder,
};
pub use webhooks::{AUTHORIZATION_REMOVED, SIGNATURE_HEADER, removal_reason};

use async_trait::async_trait;
use integrations_core::client::{ApiClient, metadata_json};
use integrations_core::engine::{ClientAuth, OAuthDialect, OAuthEngine, RevokeStyle};
use integrations_core::platform_webhooks::{PlatformWebhook, WebhookRefusal, WebhookRequest};
use integrations_core::{
    AccessToken, AuthorizationRequest, Capabilities, CodeExchange, PkceSupport, Profile, Provider,
    ProviderError, ProviderId, RefreshRequest, RefreshToken, TokenSet,
};
use url::Url;

/// The TikTok [`Provider`] (id `"tiktok"`). Cheap to share behind an `Arc`; holds one
/// HTTP client.
#[derive(Debug)]
pub struct TikTokProvider {
    id: ProviderId,
    api: api::Api,
}

impl TikTokProvider {
    /// Builds the provider and its HTTP client (redirects off, the configured timeout
    /// and User-Agent).
    pub fn new(config: TikTokConfig) -> Result<Self, ProviderError> {
        let client = ApiClient::new(&config.client)?;
        let app = config.client.oauth_app(
            (&config::WWW, "/v2/auth/authorize/"),
            (&config::API, "/v2/oauth/token/"),
            Some((&config::API, "/v2/oauth/revoke/")),
        )?;
        // TikTok's dialect: `client_key`, comma-separated scopes, credentials in the form,
        // revocation by access token without a hint, errors possibly sent with HTTP 200.
        // It rotates refresh tokens; a reply without one keeps the current one.
        // Sources: https://developers.tiktok.com/doc/login-kit-web (authorize),
        // https://developers.tiktok.com/doc/oauth-user-access-token-management (token,
        // refresh), https://developers.tiktok.com/docs/en/oauth-revoke-a-user-access-token
        // and https://developers.tiktok.com/doc/oauth-error-handling (error bodies).
        let dialect = OAuthDialect {
            client_id_param: "client_key".into(),
            scope_separator: ",".into(),
            client_auth: ClientAuth::Body,
            pkce: Some(config.pkce_encoding),
            revoke_style: RevokeStyle::AccessTokenOnly,
            classify: Some(error::classify_token_reply),
            ..OAuthDialect::default()
        };
        let engine = OAuthEngine::new(client.clone(), app, dialect)?;
        Ok(Self {
            id: ProviderId::new("tiktok").map_err(|e| ProviderError::Config(e.to_string()))?,
            api: api::Api {
                client,
                config,
                engine,
            },
        })
    }

    /// Reads [`TikTokConfig::from_env`] and builds the provider.
    pub fn from_env() -> Result<Self, ProviderError> {
        Self::new(TikTokConfig::from_env()?)
    }

    /// The configuration.
    pub fn config(&self) -> &TikTokConfig {
        &self.api.config
    }
}

#[async_trait]
impl Provider for TikTokProvider {
    fn id(&self) -> &ProviderId {
        &self.id
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            pkce: PkceSupport::Supported,
            refresh: true,
            revoke: true,
            min_token_age_for_refresh: None,
            // The refresh sends the refresh token alone.
            refresh_uses_access_token: false,
        }
    }

    async fn authorization_url(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<Url, ProviderError> {
        let scopes = self.api.config.client.scopes_for(&request.scopes);
        let pkce = request.pkce_challenge.as_ref();
        Ok(self
            .api
            .engine
            .authorization_url(&request.state, &scopes, pkce))
    }

    async fn exchange_code(&self, exchange: CodeExchange<'_>) -> Result<TokenSet, ProviderError> {
        let code = exchange.params.require("code")?;
        self.api
            .engine
            .exchange_code(code, exchange.pkce_verifier)
            .await
    }

    /// TikTok rotates refresh tokens: the reply's token replaces the old one, which is
    /// returned only when a reply carries none (then it was not rotated).
    async fn refresh(&self, request: RefreshRequest<'_>) -> Result<TokenSet, ProviderError> {
        self.api
            .engine
            .refresh(request.refresh_token, request.scopes)
            .await
    }

    async fn fetch_profile(&self, access_token: &AccessToken) -> Result<Profile, ProviderError> {
        let user = self.api.user_info(access_token.expose_secret()).await?;
        let non_empty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
        let open_id = non_empty(user.open_id).ok_or_else(|| ProviderError::Protocol {
            message: "the user-info reply has no `open_id`".into(),
            body: None,
        })?;
        let display_name = non_empty(user.display_name);
        let username = non_empty(user.username)
            .or_else(|| display_name.clone())
            .ok_or_else(|| ProviderError::Protocol {
                message: "the user-info reply has neither `username` nor `display_name`".into(),
                body: None,
            })?;
        let metadata = TikTokMetadata {
            open_id: open_id.clone(),
            username: username.clone(),
            display_name,
            avatar_url: non_empty(user.avatar_url),
        };
        Ok(Profile {
            account_id: open_id,
            username: Some(username),
            metadata: metadata_json(&metadata)?,
        })
    }

    async fn revoke(
        &self,
        access_token: Option<&AccessToken>,
        refresh_token: Option<&RefreshToken>,
    ) -> Result<(), ProviderError> {
        self.api.engine.revoke(access_token, refresh_token).await
    }

    /// TikTok's webhooks (see the crate docs, "Webhooks"): `POST` to the events route,
    /// `TikTok-Signature` checked against the client secret (and any
    /// `TIKTOK_WEBHOOK_SECRETS`) before the body is read; `authorization.removed` is
    /// [`PlatformAction::Revoked`](integrations_core::PlatformAction::Revoked), any other
    /// event is acknowledged and ignored.
    fn read_webhook(
        &self,
        request: &WebhookRequest<'_>,
    ) -> Result<PlatformWebhook, WebhookRefusal> {
        webhooks::read(&self.api.config, request)
    }

    fn authorize_request(
        &self,
        request: reqwest::RequestBuilder,
        access_token: &AccessToken,
    ) -> reqwest::RequestBuilder {
        self.api
            .client
            .identify(request)
            .bearer_auth(access_token.expose_secret())
    }
}
