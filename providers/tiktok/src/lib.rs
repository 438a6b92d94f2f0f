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
//! 2. An `error` string → core's RFC 6749 mapping ([`oauth_error`]): `invalid_grant` →
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
//! // TIKTOK_REDIRECT_URI and optionally TIKTOK_SCOPES and TIKTOK_PKCE_ENCODING.
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

pub use api::{BASIC_USER_FIELDS, TikTokMetadata};
pub use config::{
    DEFAULT_API_BASE_URL, DEFAULT_SCOPE, DEFAULT_USER_INFO_FIELDS, DEFAULT_WWW_BASE_URL,
    PkceChallengeEncoding, TikTokConfig, TikTokConfigBuilder,
};

use async_trait::async_trait;
use integrations_core::http::{client, oauth_error};
use integrations_core::{
    AccessToken, AuthorizationRequest, CallbackParams, Capabilities, CodeExchange, PkceSupport,
    Profile, Provider, ProviderError, ProviderId, RefreshRequest, RefreshToken, TokenSet,
};
use std::time::Duration;
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
        let client = client(&config.user_agent, config.timeout)?;
        Ok(Self {
            id: ProviderId::new("tiktok").map_err(|e| ProviderError::Config(e.to_string()))?,
            api: api::Api { client, config },
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

    fn token_set(
        &self,
        reply: api::TokenReply,
        fallback_refresh: Option<&RefreshToken>,
        fallback_scopes: &[String],
    ) -> TokenSet {
        let scopes = reply
            .scope
            .as_deref()
            .map(integrations_core::http::split_scopes)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| fallback_scopes.to_vec());
        TokenSet {
            access_token: AccessToken::new(reply.access_token),
            refresh_token: reply
                .refresh_token
                .filter(|r| !r.is_empty())
                .map(RefreshToken::new)
                .or_else(|| fallback_refresh.cloned()),
            expires_in: reply.expires_in.map(Duration::from_secs),
            refresh_expires_in: reply.refresh_expires_in.map(Duration::from_secs),
            token_type: reply.token_type,
            scopes,
        }
    }
}

/// Reads an error redirect (`?error=access_denied&error_description=...&state=...`) into a
/// [`ProviderError`]; `None` when the callback carries no `error`.
///
/// `access_denied` → [`ProviderError::AccessDenied`]; other codes follow RFC 6749 via
/// [`oauth_error`].
pub fn callback_error(params: &CallbackParams) -> Option<ProviderError> {
    let error = params.error()?;
    let description = params
        .get("error_description")
        .map(str::to_owned)
        .filter(|d| !d.is_empty());
    Some(oauth_error(error, description))
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
        }
    }

    async fn authorization_url(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<Url, ProviderError> {
        let c = &self.api.config;
        let scopes = if request.scopes.is_empty() {
            &c.scopes
        } else {
            &request.scopes
        };
        let mut url = Url::parse(&format!("{}/v2/auth/authorize/", c.www_base_url))
            .map_err(|e| ProviderError::Config(format!("bad TikTok www_base_url: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_key", &c.client_key)
                .append_pair("scope", &scopes.join(","))
                .append_pair("response_type", "code")
                .append_pair("redirect_uri", c.redirect_uri.as_str())
                .append_pair("state", &request.state);
            if let Some(challenge) = &request.pkce_challenge {
                let value = match c.pkce_encoding {
                    PkceChallengeEncoding::Base64Url => &challenge.s256_base64url,
                    PkceChallengeEncoding::Hex => &challenge.s256_hex,
                };
                q.append_pair("code_challenge", value)
                    .append_pair("code_challenge_method", "S256");
            }
        }
        Ok(url)
    }

    async fn exchange_code(&self, exchange: CodeExchange<'_>) -> Result<TokenSet, ProviderError> {
        if let Some(e) = callback_error(exchange.params) {
            return Err(e);
        }
        let code = exchange.params.require("code")?;
        let verifier = exchange.pkce_verifier.map(|v| v.expose_secret());
        let reply = self.api.exchange_code(code, verifier).await?;
        Ok(self.token_set(reply, None, &[]))
    }

    async fn refresh(&self, request: RefreshRequest<'_>) -> Result<TokenSet, ProviderError> {
        let Some(refresh_token) = request.refresh_token else {
            return Err(ProviderError::InvalidGrant {
                description: Some("there is no refresh token".into()),
            });
        };
        let reply = self.api.refresh(refresh_token.expose_secret()).await?;
        // TikTok rotates refresh tokens: the reply's token replaces the old one. The old one
        // is returned only when a reply carries none (then it was not rotated).
        Ok(self.token_set(reply, Some(refresh_token), request.scopes))
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
            metadata: serde_json::to_value(&metadata).map_err(|e| ProviderError::Protocol {
                message: format!("cannot encode the metadata: {e}"),
                body: None,
            })?,
        })
    }

    async fn revoke(
        &self,
        access_token: Option<&AccessToken>,
        _refresh_token: Option<&RefreshToken>,
    ) -> Result<(), ProviderError> {
        let Some(token) = access_token else {
            return Err(ProviderError::InvalidGrant {
                description: Some("TikTok revokes by access token and there is none".into()),
            });
        };
        self.api.revoke(token.expose_secret()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_errors() {
        let p = CallbackParams::from_query(
            "error=access_denied&error_description=User+cancelled&state=s",
        );
        assert!(matches!(
            callback_error(&p),
            Some(ProviderError::AccessDenied { .. })
        ));
        let p = CallbackParams::from_query("error=invalid_scope&state=s");
        assert!(matches!(
            callback_error(&p),
            Some(ProviderError::Protocol { .. })
        ));
        assert!(callback_error(&CallbackParams::from_query("code=x&state=s")).is_none());
    }
}
