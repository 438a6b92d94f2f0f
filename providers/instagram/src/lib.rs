//! Instagram provider for `integrations-core`: the **Instagram API with Instagram Login**
//! (Business Login for Instagram).
//!
//! - Authorization at `{www}/oauth/authorize` (`client_id`, `redirect_uri`,
//!   `response_type=code`, comma-separated `scope`, `state`). No PKCE.
//! - [`Provider::exchange_code`] trades the code (with Meta's trailing `#_` removed) for a
//!   short-lived token at `POST {api}/oauth/access_token`, then, in the same call, for a
//!   long-lived (about 60 days) token at `GET {graph}/access_token?grant_type=ig_exchange_token`.
//!   The returned [`TokenSet`] holds the long-lived token and its `expires_in`; the account
//!   id is the `user_id` of `/me` ([`Provider::fetch_profile`]).
//! - [`Provider::refresh`] refreshes the access token itself (there is no refresh token) at
//!   `GET {graph}/refresh_access_token?grant_type=ig_refresh_token`, and refuses, without a
//!   request, tokens younger than 24 hours
//!   ([`ProviderError::RefreshNotYetAllowed`]).
//! - [`Provider::fetch_profile`] reads `GET {graph}/me` into [`InstagramMetadata`].
//! - Instagram has no revocation endpoint: [`Provider::revoke`] returns
//!   [`ProviderError::Unsupported`] and [`Capabilities::revoke`] is `false`.
//!
//! # Errors
//!
//! Instagram's error bodies and their mapping to [`ProviderError`].
//!
//! Two shapes exist:
//! - the legacy flat shape of `api.instagram.com/oauth/access_token`:
//!   `{"error_type": "OAuthException", "code": 400, "error_message": "..."}`;
//! - Meta's Graph shape: `{"error": {"message", "type", "code", "error_subcode",
//!   "fbtrace_id"}}`.
//!
//! Mapping (first match wins):
//! 1. HTTP 429 → `RateLimited` (with `Retry-After`); HTTP 5xx → `Unavailable`.
//! 2. Graph code 190 (token expired, invalidated, password changed, ...) → `InvalidGrant`.
//! 3. Graph codes 4, 17, 32, 613 and 80002 (throttling; usually HTTP 400, not 429) → `RateLimited`,
//!    with `Retry-After` when Meta sends one, else the business use case usage's
//!    `estimated_time_to_regain_access`.
//! 4. Graph codes 10 and 200–299 (permission missing) → `InvalidClient`: the app lacks the
//!    permission (app review, app mode, or a scope the app did not ask for), which an
//!    operator fixes in the app's configuration; retrying or clearing the user's tokens
//!    would not help.
//! 5. Graph codes 1 and 2 (unknown / temporary API error) → `Unavailable`.
//! 6. Any other `OAuthException`: messages naming the client secret, client id, app or
//!    platform app → `InvalidClient`; otherwise, at the code exchange and the token
//!    endpoints → `InvalidGrant` (bad, used or expired code, `redirect_uri` mismatch,
//!    unusable short-lived token), elsewhere `Protocol`.
//! 7. Everything else → `Protocol` with the message.
//!
//! Every message and body kept in an error is scrubbed of the secrets we sent (access
//! token, client secret, code), in case the platform echoes them.
//!
//! # Example
//!
//! ```
//! use integrations_core::{AuthorizationRequest, ClientSecret, Provider};
//! use integrations_instagram::{InstagramConfig, InstagramProvider};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), integrations_core::ProviderError> {
//! let config = InstagramConfig::builder()
//!     .client_id("990602627938098")
//!     .client_secret(ClientSecret::new("app-secret"))
//!     .redirect_uri("https://app.example/integrations/instagram/callback")
//!     .scopes(["instagram_business_basic", "instagram_business_content_publish"])
//!     .build()?;
//! // Or: InstagramConfig::from_env()?, reading INSTAGRAM_CLIENT_ID, INSTAGRAM_CLIENT_SECRET,
//! // INSTAGRAM_REDIRECT_URI and the optional INSTAGRAM_* variables it documents.
//! let instagram = InstagramProvider::new(config)?;
//!
//! let url = instagram
//!     .authorization_url(&AuthorizationRequest {
//!         state: integrations_core::oauth::generate_state(),
//!         pkce_challenge: None,
//!         scopes: Vec::new(), // the configured defaults
//!     })
//!     .await?;
//! assert!(url.as_str().starts_with("https://www.instagram.com/oauth/authorize?"));
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod api;
mod config;
mod error;
mod webhooks;

pub use api::{IgId, InstagramMetadata, PROFILE_FIELDS};
pub use config::{
    DEFAULT_API_BASE_URL, DEFAULT_GRAPH_BASE_URL, DEFAULT_SCOPE, DEFAULT_WWW_BASE_URL,
    InstagramConfig, InstagramConfigBuilder,
};
pub use webhooks::{DEAUTHORIZED_REASON, SIGNATURE_HEADER, SignedRequest, parse_signed_request};

use async_trait::async_trait;
use chrono::TimeDelta;
use integrations_core::client::{ApiClient, metadata_json};
use integrations_core::platform_webhooks::{PlatformWebhook, WebhookRefusal, WebhookRequest};
use integrations_core::{
    AccessToken, AuthorizationRequest, CallbackParams, Capabilities, CodeExchange, PkceSupport,
    Profile, Provider, ProviderError, ProviderId, RefreshRequest, RefreshToken, TokenSet,
};
use std::time::Duration;
use url::Url;

/// Instagram refreshes only long-lived tokens at least this old (24 hours).
pub const MIN_TOKEN_AGE_FOR_REFRESH: Duration = Duration::from_secs(24 * 60 * 60);

/// The Instagram [`Provider`] (id `"instagram"`). Cheap to share behind an `Arc`; holds
/// one HTTP client.
#[derive(Debug)]
pub struct InstagramProvider {
    id: ProviderId,
    api: api::Api,
}

impl InstagramProvider {
    /// Builds the provider and its HTTP client (redirects off, the configured timeout
    /// and User-Agent).
    pub fn new(config: InstagramConfig) -> Result<Self, ProviderError> {
        let client = ApiClient::new(&config.client)?;
        Ok(Self {
            id: ProviderId::new("instagram").map_err(|e| ProviderError::Config(e.to_string()))?,
            api: api::Api { client, config },
        })
    }

    /// Reads [`InstagramConfig::from_env`] and builds the provider.
    pub fn from_env() -> Result<Self, ProviderError> {
        Self::new(InstagramConfig::from_env()?)
    }

    /// The configuration.
    pub fn config(&self) -> &InstagramConfig {
        &self.api.config
    }
}

/// The code from the callback without the `#_` fragment Meta appends to the redirect.
fn callback_code(params: &CallbackParams) -> Result<&str, ProviderError> {
    let code = params.require("code")?;
    let code = code.split('#').next().unwrap_or_default().trim();
    if code.is_empty() {
        return Err(ProviderError::Protocol {
            message: "the callback's `code` parameter is empty".into(),
            body: None,
        });
    }
    Ok(code)
}

#[async_trait]
impl Provider for InstagramProvider {
    fn id(&self) -> &ProviderId {
        &self.id
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            pkce: PkceSupport::Unsupported,
            refresh: true,
            revoke: false,
            min_token_age_for_refresh: Some(MIN_TOKEN_AGE_FOR_REFRESH),
            // `ig_refresh_token` refreshes the access token itself.
            refresh_uses_access_token: true,
        }
    }

    /// Instagram refreshes the long-lived access token itself; there is no refresh token.
    fn refresh_needs_refresh_token(&self) -> bool {
        false
    }

    async fn authorization_url(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<Url, ProviderError> {
        let c = self.api.config.client();
        let scope = c.scopes_for(&request.scopes).join(",");
        c.url(
            &config::WWW,
            "/oauth/authorize",
            &[
                ("client_id", c.client_id()),
                ("redirect_uri", c.redirect_uri().as_str()),
                ("response_type", "code"),
                ("scope", &scope),
                ("state", &request.state),
            ],
        )
    }

    async fn exchange_code(&self, exchange: CodeExchange<'_>) -> Result<TokenSet, ProviderError> {
        let code = callback_code(exchange.params)?;
        let short = self.api.exchange_code(code).await?;
        let long = self
            .api
            .exchange_long_lived(short.access_token.expose_secret())
            .await?;
        Ok(long.into_token_set(None, &short.permissions))
    }

    async fn refresh(&self, request: RefreshRequest<'_>) -> Result<TokenSet, ProviderError> {
        let min_age = TimeDelta::from_std(MIN_TOKEN_AGE_FOR_REFRESH)
            .map_err(|e| ProviderError::Config(e.to_string()))?;
        if request.now - request.issued_at < min_age {
            return Err(ProviderError::RefreshNotYetAllowed {
                not_before: request.issued_at + min_age,
            });
        }
        let Some(current) = request.access_token else {
            return Err(ProviderError::InvalidGrant {
                description: Some("there is no access token to refresh".into()),
            });
        };
        let reply = self.api.refresh(current.expose_secret()).await?;
        Ok(reply.into_token_set(None, request.scopes))
    }

    async fn fetch_profile(&self, access_token: &AccessToken) -> Result<Profile, ProviderError> {
        let me = self.api.me(access_token.expose_secret()).await?;
        let missing = |field: &str| ProviderError::Protocol {
            message: format!("the profile reply has no `{field}`"),
            body: None,
        };
        let ig_business_id = me.user_id.ok_or_else(|| missing("user_id"))?.0;
        let username = me
            .username
            .filter(|u| !u.is_empty())
            .ok_or_else(|| missing("username"))?;
        let metadata = InstagramMetadata {
            ig_business_id: ig_business_id.clone(),
            username: username.clone(),
            profile_picture_url: me.profile_picture_url,
            followers_count: me.followers_count,
            name: me.name,
            account_type: me.account_type,
            follows_count: me.follows_count,
            media_count: me.media_count,
            platform_aliases: me
                .id
                .map(|id| id.0)
                .filter(|id| !id.is_empty() && *id != ig_business_id)
                .into_iter()
                .collect(),
        };
        Ok(Profile {
            account_id: ig_business_id,
            username: Some(username),
            metadata: metadata_json(&metadata)?,
        })
    }

    async fn revoke(
        &self,
        _access_token: Option<&AccessToken>,
        _refresh_token: Option<&RefreshToken>,
    ) -> Result<(), ProviderError> {
        Err(ProviderError::Unsupported {
            operation: "revoke",
        })
    }

    /// Instagram's Graph API takes the token as the `access_token` query parameter; the
    /// configured `User-Agent` is set too.
    fn authorize_request(
        &self,
        request: reqwest::RequestBuilder,
        access_token: &AccessToken,
    ) -> reqwest::RequestBuilder {
        self.api
            .client
            .identify(request)
            .query(&[("access_token", access_token.expose_secret())])
    }

    /// Meta's callbacks (see the crate docs, "Webhooks"): on the events route the
    /// Deauthorize callback (a `signed_request` form) and Graph webhooks (the
    /// `hub.challenge` handshake, `X-Hub-Signature-256` deliveries, acknowledged and
    /// ignored); on the data-deletion route the Data Deletion Request callback.
    fn read_webhook(
        &self,
        request: &WebhookRequest<'_>,
    ) -> Result<PlatformWebhook, WebhookRefusal> {
        webhooks::read(&self.api.config.client, request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_loses_the_fragment() {
        let p = CallbackParams::from_pairs([("code", "AQBx#_"), ("state", "s")]);
        assert_eq!(callback_code(&p).unwrap(), "AQBx");
        let p = CallbackParams::from_pairs([("code", "#_")]);
        assert!(callback_code(&p).is_err());
        assert!(callback_code(&CallbackParams::default()).is_err());
    }
}
