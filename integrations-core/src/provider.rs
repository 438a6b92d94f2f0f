//! The [`Provider`] trait: what a platform crate implements.

use crate::secret::{AccessToken, PkceVerifier, RefreshToken};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;
use url::Url;

/// A provider's stable lowercase id (`"instagram"`, `"tiktok"`, ...), used in URLs and rows.
///
/// Ids are 1 to 50 characters of `a-z`, `0-9`, `-` and `_`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProviderId(String);

impl ProviderId {
    /// Checks and wraps an id.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidProviderId> {
        let id = id.into();
        let ok = !id.is_empty()
            && id.len() <= 50
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(id))
        } else {
            Err(InvalidProviderId(id.chars().take(60).collect()))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl TryFrom<String> for ProviderId {
    type Error = InvalidProviderId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<ProviderId> for String {
    fn from(value: ProviderId) -> Self {
        value.0
    }
}

/// A provider id that is not 1–50 characters of `a-z0-9-_`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid provider id {0:?}: use 1 to 50 characters of a-z, 0-9, '-' and '_'")]
pub struct InvalidProviderId(pub String);

/// Whether a provider uses PKCE (RFC 7636).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkceSupport {
    /// The platform has no PKCE; no verifier is generated.
    Unsupported,
    /// The platform accepts PKCE; the service always uses it.
    Supported,
    /// The platform requires PKCE.
    Required,
}

/// What a provider can do. The service reads these instead of calling and failing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// PKCE support.
    pub pkce: PkceSupport,
    /// Whether tokens can be refreshed without the user (with a refresh token, or, like
    /// Instagram, by refreshing the access token itself).
    pub refresh: bool,
    /// Whether the platform has a revocation endpoint.
    pub revoke: bool,
    /// The youngest token the platform will refresh (Instagram: 24 hours).
    pub min_token_age_for_refresh: Option<Duration>,
    /// Whether [`Provider::refresh`] reads [`RefreshRequest::access_token`] (default
    /// `true`). A provider that refreshes with the refresh token alone (RFC 6749 §6) says
    /// `false`: the service then does not decrypt the stored access token for a refresh,
    /// and passes `None`.
    pub refresh_uses_access_token: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Self {
            pkce: PkceSupport::Supported,
            refresh: true,
            revoke: true,
            min_token_age_for_refresh: None,
            refresh_uses_access_token: true,
        }
    }
}

/// A PKCE S256 challenge derived from a [`PkceVerifier`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkceChallenge {
    /// `base64url(SHA-256(verifier))` without padding, as RFC 7636 specifies.
    pub s256_base64url: String,
    /// `hex(SHA-256(verifier))`, for platforms documented to expect hex.
    pub s256_hex: String,
}

/// Everything a provider needs to build its authorization URL.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    /// The one-time state (>= 128 random bits, base64url).
    pub state: String,
    /// The PKCE challenge, when the provider supports PKCE.
    pub pkce_challenge: Option<PkceChallenge>,
    /// Scopes to ask for; empty means the provider's configured defaults.
    pub scopes: Vec<String>,
}

/// The query parameters the platform sent back to the redirect URI.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackParams(pub BTreeMap<String, String>);

impl CallbackParams {
    /// Parses a query string (`code=...&state=...`), with or without a leading `?`.
    pub fn from_query(query: &str) -> Self {
        let query = query.strip_prefix('?').unwrap_or(query);
        Self(
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// Builds the parameters from pairs.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// One parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The `state` parameter.
    pub fn state(&self) -> Option<&str> {
        self.get("state")
    }

    /// The `error` parameter (RFC 6749 §4.1.2.1).
    pub fn error(&self) -> Option<&str> {
        self.get("error")
    }

    /// A required parameter, or a [`ProviderError::Protocol`] naming it.
    pub fn require(&self, name: &str) -> Result<&str, ProviderError> {
        match self.get(name) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(ProviderError::Protocol {
                message: format!("the callback carries no `{name}` parameter"),
                body: None,
            }),
        }
    }
}

impl fmt::Debug for CallbackParams {
    /// Values of `code` and similar one-time credentials are redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in &self.0 {
            match k.as_str() {
                "state" | "error" | "error_reason" | "error_description" | "scopes" | "scope" => {
                    m.entry(k, v)
                }
                _ => m.entry(k, &"[redacted]"),
            };
        }
        m.finish()
    }
}

/// What a platform's redirect back to the callback URI says, as its provider reads it
/// ([`Provider::read_callback`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackReply<'a> {
    /// The one-time state the platform echoed back (OAuth's `state`; a connection
    /// gateway may echo it under another name), or `None` when it is missing.
    pub state: Option<&'a str>,
    /// Whether the user authorized, cancelled, or the platform reported a failure.
    pub outcome: CallbackOutcome,
}

/// The outcome a platform reported on its redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallbackOutcome {
    /// The user authorized: the provider exchanges what the callback carries.
    Authorized,
    /// The user declined or cancelled (OAuth `error=access_denied`).
    Cancelled,
    /// The platform reported a failure.
    Failed {
        /// The platform's error code (OAuth `error`), at most 64 characters.
        error: String,
    },
}

impl<'a> CallbackReply<'a> {
    /// The RFC 6749 reading (§4.1.2 and §4.1.2.1): the state is `state`; an `error`
    /// parameter is a failure, `access_denied` (or Meta's `error_reason=user_denied`) a
    /// cancellation; otherwise authorized.
    pub fn oauth2(params: &'a CallbackParams) -> Self {
        let outcome = match params.error() {
            None => CallbackOutcome::Authorized,
            Some("access_denied") => CallbackOutcome::Cancelled,
            Some(_) if params.get("error_reason") == Some("user_denied") => {
                CallbackOutcome::Cancelled
            }
            Some(error) => CallbackOutcome::failed(error),
        };
        Self {
            state: params.state(),
            outcome,
        }
    }
}

impl CallbackOutcome {
    /// A failure with the platform's code, cut to 64 characters (it comes from the
    /// user's browser and ends up in errors and audit rows).
    pub fn failed(error: &str) -> Self {
        let error: String = error.chars().take(64).collect();
        Self::Failed {
            error: if error.is_empty() {
                "unknown".to_owned()
            } else {
                error
            },
        }
    }
}

/// The callback, handed to [`Provider::exchange_code`].
#[derive(Debug)]
pub struct CodeExchange<'a> {
    /// Every query parameter of the callback (`code` for OAuth providers; a connection id
    /// for gateway providers).
    pub params: &'a CallbackParams,
    /// The PKCE verifier generated at `connect`, when PKCE is used.
    pub pkce_verifier: Option<&'a PkceVerifier>,
}

/// Tokens as a provider returned them. Lifetimes are relative; the service turns them into
/// absolute times with its clock.
#[derive(Debug, Clone)]
pub struct TokenSet {
    /// The access token (or gateway connection credential).
    pub access_token: AccessToken,
    /// The refresh token, when the platform issued one.
    pub refresh_token: Option<RefreshToken>,
    /// Seconds until the access token expires, from the platform's `expires_in`.
    pub expires_in: Option<Duration>,
    /// Seconds until the refresh token expires (TikTok's `refresh_expires_in`).
    pub refresh_expires_in: Option<Duration>,
    /// `token_type` as sent (`bearer`, `Bearer`).
    pub token_type: Option<String>,
    /// Scopes granted.
    pub scopes: Vec<String>,
}

impl TokenSet {
    /// A token set with only an access token.
    pub fn bearer(access_token: impl Into<String>) -> Self {
        Self {
            access_token: AccessToken::new(access_token),
            refresh_token: None,
            expires_in: None,
            refresh_expires_in: None,
            token_type: Some("bearer".into()),
            scopes: Vec::new(),
        }
    }
}

/// What [`Provider::refresh`] gets: the current credentials and their age.
#[derive(Debug)]
pub struct RefreshRequest<'a> {
    /// The current access token; always `None` when the provider's
    /// [`Capabilities::refresh_uses_access_token`] is `false`.
    pub access_token: Option<&'a AccessToken>,
    /// The current refresh token.
    pub refresh_token: Option<&'a RefreshToken>,
    /// When the current access token was issued.
    pub issued_at: DateTime<Utc>,
    /// Now, by the service's clock.
    pub now: DateTime<Utc>,
    /// Scopes currently granted.
    pub scopes: &'a [String],
}

/// The connected account as the platform's API describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// The platform's stable account id (the row's `provider_account_id`).
    pub account_id: String,
    /// The handle, when the platform has one. The service stores it with the account
    /// (under [`USERNAME_KEY`](crate::store::USERNAME_KEY) of the stored metadata,
    /// replacing whatever `metadata` has there) and shows it as
    /// [`IntegrationView::username`](crate::IntegrationView::username).
    pub username: Option<String>,
    /// Platform-specific metadata (the design's per-platform structs), stored as JSON. A
    /// JSON object (the conformance suite checks it).
    pub metadata: serde_json::Value,
}

/// Errors a provider returns. The state machine branches on the variant.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The user declined at the consent screen.
    #[error("the user declined access{}", fmt_desc(.description))]
    AccessDenied {
        /// The platform's description.
        description: Option<String>,
    },
    /// The code or refresh token is invalid, expired or revoked: the user must reconnect.
    #[error("the grant is invalid, expired or revoked{}", fmt_desc(.description))]
    InvalidGrant {
        /// The platform's description.
        description: Option<String>,
    },
    /// The platform rejected our client credentials or configuration.
    #[error("the platform rejected the client credentials{}", fmt_desc(.description))]
    InvalidClient {
        /// The platform's description.
        description: Option<String>,
    },
    /// Too many requests.
    #[error("rate limited by the platform{}", match .retry_after { Some(d) => format!("; retry after {}s", d.as_secs()), None => String::new() })]
    RateLimited {
        /// How long to wait, from `Retry-After` or the platform's own headers.
        retry_after: Option<Duration>,
    },
    /// The platform answered 5xx.
    #[error("the platform is unavailable (HTTP {status})")]
    Unavailable {
        /// The HTTP status.
        status: u16,
    },
    /// The request did not complete (connection refused, reset, timeout).
    #[error("network error talking to the platform: {message}")]
    Network {
        /// What happened.
        message: String,
        /// Whether it was a timeout.
        timeout: bool,
    },
    /// The platform answered something we cannot understand.
    #[error("unexpected response from the platform: {message}")]
    Protocol {
        /// What was wrong.
        message: String,
        /// The body (truncated), never containing our secrets.
        body: Option<String>,
    },
    /// The platform does not allow refreshing yet (Instagram: tokens under 24 hours old).
    #[error("the platform does not refresh this token before {not_before}")]
    RefreshNotYetAllowed {
        /// The earliest time a refresh is allowed.
        not_before: DateTime<Utc>,
    },
    /// The provider cannot do this operation.
    #[error("{operation} is not supported by this provider")]
    Unsupported {
        /// The operation.
        operation: &'static str,
    },
    /// The provider's configuration is missing or malformed.
    #[error("provider configuration error: {0}")]
    Config(String),
}

fn fmt_desc(d: &Option<String>) -> String {
    d.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
}

impl ProviderError {
    /// Whether retrying the same call later may succeed (rate limits, 5xx, network).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. } | Self::Unavailable { .. } | Self::Network { .. }
        )
    }

    /// How long to wait before retrying, for rate limits.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }
}

/// A platform the service can connect accounts on.
///
/// Implementations are `Send + Sync` and object-safe, so a registry holds
/// `Arc<dyn Provider>`. They never store anything; the service owns persistence.
#[async_trait]
pub trait Provider: Send + Sync + fmt::Debug {
    /// The stable lowercase id (`"instagram"`).
    fn id(&self) -> &ProviderId;

    /// The name people read (`"Reddit"`); the id by default.
    fn display_name(&self) -> &str {
        self.id().as_str()
    }

    /// What the provider supports.
    fn capabilities(&self) -> Capabilities;

    /// The URL to send the user to, carrying the redirect URI, scopes, state and (when
    /// supported) the PKCE challenge.
    ///
    /// Async because some providers (connection gateways) must open a session first.
    async fn authorization_url(&self, request: &AuthorizationRequest)
    -> Result<Url, ProviderError>;

    /// Completes the authorization from the callback parameters: the OAuth code exchange
    /// (plus any follow-up, such as Instagram's long-lived token exchange).
    async fn exchange_code(&self, exchange: CodeExchange<'_>) -> Result<TokenSet, ProviderError>;

    /// Refreshes the credentials with the platform's own rule.
    async fn refresh(&self, request: RefreshRequest<'_>) -> Result<TokenSet, ProviderError>;

    /// Fetches the account's profile from the platform's API.
    async fn fetch_profile(&self, access_token: &AccessToken) -> Result<Profile, ProviderError>;

    /// Revokes the grant, where the platform can ([`Capabilities::revoke`]); otherwise
    /// returns [`ProviderError::Unsupported`].
    async fn revoke(
        &self,
        access_token: Option<&AccessToken>,
        refresh_token: Option<&RefreshToken>,
    ) -> Result<(), ProviderError>;

    /// Reads the platform's redirect: where it carries the state and how it reports a
    /// cancellation or a failure. The service calls this before anything else on a
    /// callback, so it is the one place a callback's `error` is interpreted; by the time
    /// [`exchange_code`](Self::exchange_code) runs, the outcome was
    /// [`CallbackOutcome::Authorized`].
    ///
    /// The default is the OAuth 2.0 reading, [`CallbackReply::oauth2`].
    fn read_callback<'a>(&self, params: &'a CallbackParams) -> CallbackReply<'a> {
        CallbackReply::oauth2(params)
    }

    /// Whether a disconnect is only true once the platform confirmed the
    /// [`revoke`](Self::revoke) (default `false`: the revoke is best effort and the
    /// stored credentials are deleted whatever it answers).
    ///
    /// A platform that keeps a connection alive, and billed, until it is deleted there
    /// (a connection gateway) answers `true`: the service then retries a transient
    /// failure and, when the platform still refuses, keeps the account and returns the
    /// error, so the user is told the truth and can try again. An
    /// [`InvalidGrant`](ProviderError::InvalidGrant) answer (the connection is already
    /// gone there) counts as done.
    fn revoke_required(&self) -> bool {
        false
    }

    /// Whether [`revoke`](Self::revoke) ends only the grant of the tokens it is given,
    /// leaving the same platform account's other grants to this client alive (default
    /// `false`: a revoke may end them all).
    ///
    /// It decides what happens to a grant a callback leaves behind: when the profile fetch
    /// or the save fails after a successful code exchange, the service revokes the grant
    /// just issued. Where a revoke may end every grant of the account (TikTok's revoke
    /// "disconnects your app from the user's TikTok account"), that would also end a
    /// connection stored for the same platform account (the same user's, or the one
    /// another user owns), so the service revokes there only when the account is known
    /// and no connection of it is stored. A platform whose revoke ends one token chain
    /// (RFC 7009 revocation of a refresh token, Reddit) or one gateway connection answers
    /// `true`, and its orphaned grants are always revoked.
    fn revoke_is_per_grant(&self) -> bool {
        false
    }

    /// Reads an API response the platform refused, for requests made through
    /// [`Integrations::send`](crate::Integrations::send) on a provider that cannot
    /// refresh ([`Capabilities::refresh`] `false`): an `HTTP 401` answer is handed here
    /// with its body, and [`ProviderError::InvalidGrant`] means the connection is dead
    /// at the platform, so the account is marked `needs_reconnect`. Default `None`: the
    /// response is returned to the caller as it is.
    fn api_error(&self, response: &crate::http::CappedResponse) -> Option<ProviderError> {
        let _ = response;
        None
    }

    /// Whether [`refresh`](Self::refresh) needs a refresh token (default `true`). A
    /// platform that refreshes the access token itself (Instagram) answers `false`, so
    /// accounts without a refresh token are still refreshed there and skipped elsewhere.
    fn refresh_needs_refresh_token(&self) -> bool {
        true
    }

    /// Authenticates and reads a request the platform sent to the host's webhook routes
    /// (see [`platform_webhooks`](crate::platform_webhooks)): checks the platform's
    /// signature over the raw body, then reads the events, or refuses the request with
    /// the reason. Called by
    /// [`Integrations::handle_platform_webhook`](crate::Integrations::handle_platform_webhook),
    /// which has already refused bodies over
    /// [`MAX_BODY_BYTES`](crate::platform_webhooks::MAX_BODY_BYTES). Default:
    /// [`WebhookRefusal::Unsupported`](crate::WebhookRefusal::Unsupported) (the platform sends none).
    fn read_webhook(
        &self,
        request: &crate::platform_webhooks::WebhookRequest<'_>,
    ) -> Result<crate::platform_webhooks::PlatformWebhook, crate::platform_webhooks::WebhookRefusal>
    {
        let _ = request;
        Err(crate::platform_webhooks::WebhookRefusal::Unsupported)
    }

    /// Attaches the credential to an API request the way the platform wants it
    /// (default: `Authorization: Bearer <token>`).
    fn authorize_request(
        &self,
        request: reqwest::RequestBuilder,
        access_token: &AccessToken,
    ) -> reqwest::RequestBuilder {
        request.bearer_auth(access_token.expose_secret())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oauth2_reading_of_a_callback() {
        let read = |q: &str| {
            let params = CallbackParams::from_query(q);
            let reply = CallbackReply::oauth2(&params);
            (reply.state.map(str::to_owned), reply.outcome)
        };
        for q in [
            "error=access_denied&error_reason=user_denied&error_description=The+user+denied.&state=s",
            "error=access_denied&state=s",
            // Meta's reason wins over an unexpected code.
            "error=server_error&error_reason=user_denied&state=s",
        ] {
            assert_eq!(
                read(q),
                (Some("s".into()), CallbackOutcome::Cancelled),
                "{q}"
            );
        }
        assert_eq!(
            read("error=invalid_scope&state=s").1,
            CallbackOutcome::Failed {
                error: "invalid_scope".into()
            }
        );
        assert_eq!(
            read("code=x&state=s"),
            (Some("s".into()), CallbackOutcome::Authorized)
        );
        assert_eq!(read("code=x").0, None);
        assert_eq!(
            read("error=").1,
            CallbackOutcome::Failed {
                error: "unknown".into()
            }
        );
        assert_eq!(
            read(&format!("error={}", "e".repeat(200))).1,
            CallbackOutcome::failed(&"e".repeat(64))
        );
    }
}
