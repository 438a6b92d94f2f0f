//! Reddit OAuth 2.0 for `integrations-core`.
//!
//! [`RedditProvider`] implements [`Provider`] for Reddit's "web app" code flow:
//!
//! - **Authorize**: `GET {www}/api/v1/authorize` with `client_id`, `response_type=code`,
//!   `state` (required by Reddit), `redirect_uri`, `duration=permanent` (so a refresh
//!   token is issued) and `scope` (space-separated; `identity` is always included,
//!   because the profile comes from `/api/v1/me`).
//! - **Code exchange / refresh**: `POST {www}/api/v1/access_token` with HTTP Basic
//!   `client_id:client_secret`. Access tokens live one hour (`expires_in` is used, never
//!   a constant). Refresh replies carry no new refresh token: the old one is returned in
//!   the [`TokenSet`] so it is never lost. Reddit reports code-exchange errors as HTTP
//!   200 with `{"error": "invalid_grant"}`; these become [`ProviderError::InvalidGrant`].
//! - **Revoke**: `POST {www}/api/v1/revoke_token`, revoking the refresh token when there
//!   is one (which also revokes its access tokens).
//! - **Profile**: `GET {oauth}/api/v1/me` with `Authorization: bearer <token>`, giving
//!   [`RedditMetadata`].
//! - Every request carries the configured descriptive **User-Agent**
//!   (`<platform>:<app ID>:<version> (by /u/<username>)`); a missing or empty one is a
//!   configuration error. 429 replies become [`ProviderError::RateLimited`] with
//!   `Retry-After`, or else `X-Ratelimit-Reset`.
//!
//! PKCE is not supported by Reddit. See `docs/providers.md` in the repository for lifetimes, rate
//! limits and sources.
//!
//! # Example
//!
//! ```
//! use integrations_core::{AuthorizationRequest, ClientSecret, Provider};
//! use integrations_reddit::{RedditConfig, RedditProvider};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), integrations_core::ProviderError> {
//! let config = RedditConfig::builder()
//!     .client_id("my-client-id")
//!     .client_secret(ClientSecret::new("my-client-secret"))
//!     .redirect_uri("https://app.example.com/integrations/reddit/callback")
//!     .user_agent("web:com.example.app:v1.2.3 (by /u/example)")
//!     .scopes(["identity", "read"])
//!     .build()?;
//! // Or: RedditConfig::from_env()?, reading REDDIT_CLIENT_ID, REDDIT_CLIENT_SECRET,
//! // REDDIT_REDIRECT_URI and REDDIT_USER_AGENT.
//! let reddit = RedditProvider::new(config)?;
//!
//! let url = reddit
//!     .authorization_url(&AuthorizationRequest {
//!         state: "a-fresh-random-state".into(),
//!         pkce_challenge: None,
//!         scopes: Vec::new(), // the configured defaults
//!     })
//!     .await?;
//! assert!(url.as_str().starts_with("https://www.reddit.com/api/v1/authorize?"));
//! assert!(url.query_pairs().any(|(k, v)| k == "duration" && v == "permanent"));
//! assert!(url.query_pairs().any(|(k, v)| k == "scope" && v == "identity read"));
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod api;
mod config;
mod error;

pub use api::RedditMetadata;
pub use config::{
    DEFAULT_OAUTH_BASE_URL, DEFAULT_SCOPES, DEFAULT_WWW_BASE_URL, IDENTITY_SCOPE, RedditConfig,
    RedditConfigBuilder,
};

use api::Api;
use async_trait::async_trait;
use integrations_core::client::{ApiClient, metadata_json};
use integrations_core::engine::{OAuthDialect, OAuthEngine, RevokeStyle};
use integrations_core::secret::{AccessToken, RefreshToken};
use integrations_core::{
    AuthorizationRequest, Capabilities, CodeExchange, PkceSupport, Profile, Provider,
    ProviderError, ProviderId, RefreshRequest, TokenSet,
};
use url::Url;

/// The provider id: `"reddit"`.
pub const PROVIDER_ID: &str = "reddit";

/// Reddit as a [`Provider`]. Cheap to share behind an `Arc`; holds one HTTP client.
#[derive(Debug)]
pub struct RedditProvider {
    id: ProviderId,
    api: Api,
}

impl RedditProvider {
    /// Builds the provider and its HTTP client (redirects off, the configured timeout
    /// and User-Agent).
    pub fn new(config: RedditConfig) -> Result<Self, ProviderError> {
        let client = ApiClient::new(&config.client)?;
        let id = ProviderId::new(PROVIDER_ID)
            .map_err(|e| ProviderError::Config(format!("reddit: {e}")))?;
        let app = config.client.oauth_app(
            (&config::WWW, api::AUTHORIZE_PATH),
            (&config::WWW, api::TOKEN_PATH),
            Some((&config::WWW, api::REVOKE_PATH)),
        )?;
        // Reddit's dialect: Basic client authentication, no PKCE, `duration=permanent` for
        // a refresh token, refresh tokens kept, RFC 7009 revocation, its own error replies.
        // Sources: https://github.com/reddit-archive/reddit/wiki/OAuth2 (authorize,
        // access_token, revoke_token) and reddit-archive/reddit r2/r2/controllers/oauth2.py.
        let dialect = OAuthDialect {
            pkce: None,
            extra_authorize_params: vec![("duration".into(), "permanent".into())],
            revoke_style: RevokeStyle::Rfc7009,
            classify: Some(error::classify_token_reply),
            ..OAuthDialect::default()
        };
        let engine = OAuthEngine::new(client.clone(), app, dialect)?;
        Ok(Self {
            id,
            api: Api {
                client,
                config,
                engine,
            },
        })
    }

    /// Reads [`RedditConfig::from_env`] and builds the provider.
    pub fn from_env() -> Result<Self, ProviderError> {
        Self::new(RedditConfig::from_env()?)
    }

    /// The configuration.
    pub fn config(&self) -> &RedditConfig {
        &self.api.config
    }
}

#[async_trait]
impl Provider for RedditProvider {
    fn id(&self) -> &ProviderId {
        &self.id
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            pkce: PkceSupport::Unsupported,
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
        if request.state.is_empty() {
            return Err(ProviderError::Config(
                "reddit: the authorization request needs a state; Reddit requires one".into(),
            ));
        }
        let scopes = self.api.config.client().scopes_for(&request.scopes);
        Ok(self
            .api
            .engine
            .authorization_url(&request.state, &scopes, None))
    }

    async fn exchange_code(&self, exchange: CodeExchange<'_>) -> Result<TokenSet, ProviderError> {
        let code = exchange.params.require("code")?;
        self.api.engine.exchange_code(code, None).await
    }

    /// Reddit keeps the refresh token; its reply omits it, so the old one is handed back.
    async fn refresh(&self, request: RefreshRequest<'_>) -> Result<TokenSet, ProviderError> {
        self.api
            .engine
            .refresh(request.refresh_token, request.scopes)
            .await
    }

    async fn fetch_profile(&self, access_token: &AccessToken) -> Result<Profile, ProviderError> {
        let me = self.api.me(access_token).await?;
        let account_id = me.account_id();
        if account_id.is_empty() || me.name.is_empty() {
            return Err(ProviderError::Protocol {
                message: "/api/v1/me returned an empty id or name".into(),
                body: None,
            });
        }
        let metadata = me.metadata();
        Ok(Profile {
            account_id: account_id.to_owned(),
            username: Some(metadata.username.clone()),
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

    /// `true`: revoking a refresh token ends that grant's token chain only.
    fn revoke_is_per_grant(&self) -> bool {
        true
    }

    fn authorize_request(
        &self,
        request: reqwest::RequestBuilder,
        access_token: &AccessToken,
    ) -> reqwest::RequestBuilder {
        self.api.authorize(request, access_token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_types_are_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<RedditProvider>();
        check::<RedditConfig>();
        check::<RedditConfigBuilder>();
        check::<RedditMetadata>();
    }
}
