//! The service's error type, with stable codes and the design's user-facing messages.

use crate::crypto::CryptoError;
use crate::provider::ProviderError;
use crate::store::StoreError;
use chrono::{DateTime, Utc};

/// `Result` with the service's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The user message for a cancelled connection.
pub const MSG_CANCELLED: &str = "Connection cancelled. You can try again anytime.";
/// The user message for a refused or failed authorization.
pub const MSG_INVALID_CREDENTIALS: &str = "Unable to connect. Please check your credentials.";
/// The user message for network and platform outages.
pub const MSG_NETWORK: &str = "Connection failed. Please check your internet.";
/// The user message for rate limits.
pub const MSG_RATE_LIMITED: &str = "Too many attempts. Please try again in 5 minutes.";
/// The user message for a connection that must be re-authorized.
pub const MSG_RECONNECT: &str = "Please reconnect your account.";
/// The user message for an unknown account.
pub const MSG_NOT_FOUND: &str = "Integration not found.";
/// The user message for an unknown or disabled platform.
pub const MSG_UNKNOWN_PROVIDER: &str = "This integration is not available.";
/// The user message for an account connected to another user.
pub const MSG_OWNED_ELSEWHERE: &str = "This account is already connected to another user.";
/// The user message for anything else.
pub const MSG_INTERNAL: &str = "Something went wrong. Please try again later.";

/// Errors of the [`Integrations`](crate::Integrations) service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No provider with this id is registered (or it is disabled).
    #[error("unknown or disabled provider `{0}`")]
    UnknownProvider(String),
    /// The user declined at the platform's consent screen.
    #[error("the user cancelled the connection")]
    Cancelled,
    /// The platform redirected back with an error other than `access_denied`.
    #[error("the platform refused the authorization: {error}")]
    AuthorizationFailed {
        /// The `error` parameter (RFC 6749 §4.1.2.1 code).
        error: String,
    },
    /// The callback's state is missing, unknown, forged or already used.
    #[error("the callback state is missing, unknown or already used")]
    InvalidState,
    /// The callback's state belongs to another provider or another user.
    #[error("the callback state was issued for another provider or user")]
    StateMismatch,
    /// The pending authorization expired before the callback.
    #[error("the authorization expired; start the connection again")]
    StateExpired,
    /// The platform account is connected to another user.
    #[error("the platform account is connected to another user")]
    AccountOwnedByAnotherUser,
    /// No such account for this user.
    #[error("integration not found")]
    NotFound,
    /// The grant is dead; the user must reconnect.
    #[error("the connection must be re-authorized by the user")]
    NeedsReconnect,
    /// Too many `connect` calls for this user.
    #[error("too many connection attempts; retry at {retry_at}")]
    ConnectRateLimited {
        /// When the next attempt is allowed.
        retry_at: DateTime<Utc>,
    },
    /// Another worker holds the refresh lease and did not finish in time.
    #[error("another worker is refreshing this account")]
    Busy,
    /// The platform call failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored secret could not be opened (wrong key, tampered row).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A platform webhook was refused (bad signature, stale, malformed, ...): nothing
    /// was changed.
    #[error("platform webhook refused: {0}")]
    WebhookRefused(#[from] crate::platform_webhooks::WebhookRefusal),
}

impl Error {
    /// A stable machine-readable code (`"cancelled"`, `"invalid_state"`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownProvider(_) => "unknown_provider",
            Self::Cancelled => "cancelled",
            Self::AuthorizationFailed { .. } => "authorization_failed",
            Self::InvalidState => "invalid_state",
            Self::StateMismatch => "state_mismatch",
            Self::StateExpired => "state_expired",
            Self::AccountOwnedByAnotherUser => "account_owned_by_another_user",
            Self::NotFound => "not_found",
            Self::NeedsReconnect => "needs_reconnect",
            Self::ConnectRateLimited { .. } => "rate_limited",
            Self::Busy => "busy",
            Self::Provider(e) => match e {
                ProviderError::AccessDenied { .. } => "cancelled",
                ProviderError::InvalidGrant { .. } => "invalid_grant",
                ProviderError::InvalidClient { .. } => "invalid_client",
                ProviderError::RateLimited { .. } => "provider_rate_limited",
                ProviderError::Unavailable { .. } => "provider_unavailable",
                ProviderError::Network { .. } => "network",
                ProviderError::Protocol { .. } => "provider_protocol",
                ProviderError::RefreshNotYetAllowed { .. } => "refresh_not_yet_allowed",
                ProviderError::Unsupported { .. } => "unsupported",
                ProviderError::Config(_) => "provider_config",
            },
            Self::Store(StoreError::Unavailable { .. }) => "store_unavailable",
            Self::Store(_) => "store",
            Self::Crypto(_) => "crypto",
            Self::WebhookRefused(r) => r.code(),
        }
    }

    /// The message to show the user (the design's error table). Never contains internal
    /// detail.
    pub fn user_message(&self) -> &'static str {
        match self {
            Self::Cancelled => MSG_CANCELLED,
            Self::UnknownProvider(_) => MSG_UNKNOWN_PROVIDER,
            Self::AuthorizationFailed { .. }
            | Self::InvalidState
            | Self::StateMismatch
            | Self::StateExpired => MSG_INVALID_CREDENTIALS,
            Self::AccountOwnedByAnotherUser => MSG_OWNED_ELSEWHERE,
            Self::NotFound => MSG_NOT_FOUND,
            Self::NeedsReconnect => MSG_RECONNECT,
            Self::ConnectRateLimited { .. } => MSG_RATE_LIMITED,
            Self::Provider(e) => match e {
                ProviderError::AccessDenied { .. } => MSG_CANCELLED,
                ProviderError::InvalidGrant { .. } => MSG_RECONNECT,
                ProviderError::InvalidClient { .. } => MSG_INVALID_CREDENTIALS,
                ProviderError::RateLimited { .. } => MSG_RATE_LIMITED,
                ProviderError::Unavailable { .. } | ProviderError::Network { .. } => MSG_NETWORK,
                _ => MSG_INTERNAL,
            },
            Self::Busy | Self::Store(_) | Self::Crypto(_) => MSG_INTERNAL,
            Self::WebhookRefused(r) => r.summary(),
        }
    }

    /// The HTTP status a host's API answers this error with, the same for every route (the
    /// table in `docs/http-api.md`): 400 for a refused or cancelled authorization and for
    /// an operation the platform does not offer, 404 for an unknown platform or account,
    /// 409 when the connection's state forbids it (owned by another user, needs
    /// reconnecting, too young to refresh), 429 for rate limits, 502 when the platform
    /// answered something unusable or could not be reached, 503 for outages worth retrying
    /// (the platform's 5xx, a store outage, a busy refresh lease) and 500 for the rest.
    ///
    /// It is an [`http::StatusCode`] of the `http` 1.x crate (the type
    /// `axum`, `hyper` and `reqwest` use); `.as_u16()` gives the number.
    ///
    /// ```
    /// use integrations_core::Error;
    /// assert_eq!(Error::NeedsReconnect.http_status().as_u16(), 409);
    /// ```
    pub fn http_status(&self) -> ::http::StatusCode {
        use ::http::StatusCode as S;
        match self {
            Self::UnknownProvider(_) | Self::NotFound => S::NOT_FOUND,
            Self::Cancelled
            | Self::AuthorizationFailed { .. }
            | Self::InvalidState
            | Self::StateMismatch
            | Self::StateExpired => S::BAD_REQUEST,
            Self::AccountOwnedByAnotherUser | Self::NeedsReconnect => S::CONFLICT,
            Self::ConnectRateLimited { .. } => S::TOO_MANY_REQUESTS,
            Self::Busy => S::SERVICE_UNAVAILABLE,
            Self::Provider(e) => match e {
                ProviderError::AccessDenied { .. } | ProviderError::Unsupported { .. } => {
                    S::BAD_REQUEST
                }
                ProviderError::InvalidGrant { .. } | ProviderError::RefreshNotYetAllowed { .. } => {
                    S::CONFLICT
                }
                ProviderError::RateLimited { .. } => S::TOO_MANY_REQUESTS,
                ProviderError::Unavailable { .. } => S::SERVICE_UNAVAILABLE,
                ProviderError::Network { .. }
                | ProviderError::Protocol { .. }
                | ProviderError::InvalidClient { .. } => S::BAD_GATEWAY,
                ProviderError::Config(_) => S::INTERNAL_SERVER_ERROR,
            },
            Self::Store(StoreError::Unavailable { .. }) => S::SERVICE_UNAVAILABLE,
            Self::Store(_) | Self::Crypto(_) => S::INTERNAL_SERVER_ERROR,
            Self::WebhookRefused(r) => r.http_status(),
        }
    }

    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Provider(e) => e.is_transient(),
            Self::Store(StoreError::Unavailable { .. }) | Self::Busy => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform_webhooks::WebhookRefusal;
    use std::collections::HashMap;
    use std::time::Duration;

    /// One error of every kind the status table distinguishes. The exhaustive matches in
    /// `kind` make a new variant fail to compile here until it is listed.
    fn every_kind() -> Vec<Error> {
        let provider = |e: ProviderError| Error::Provider(e);
        let mut all = vec![
            Error::UnknownProvider("x".into()),
            Error::Cancelled,
            Error::AuthorizationFailed {
                error: "invalid_scope".into(),
            },
            Error::InvalidState,
            Error::StateMismatch,
            Error::StateExpired,
            Error::AccountOwnedByAnotherUser,
            Error::NotFound,
            Error::NeedsReconnect,
            Error::ConnectRateLimited {
                retry_at: Utc::now(),
            },
            Error::Busy,
            provider(ProviderError::AccessDenied { description: None }),
            provider(ProviderError::InvalidGrant { description: None }),
            provider(ProviderError::InvalidClient { description: None }),
            provider(ProviderError::RateLimited {
                retry_after: Some(Duration::from_secs(3)),
            }),
            provider(ProviderError::Unavailable { status: 503 }),
            provider(ProviderError::Network {
                message: "reset".into(),
                timeout: false,
            }),
            provider(ProviderError::Protocol {
                message: "bad".into(),
                body: None,
            }),
            provider(ProviderError::RefreshNotYetAllowed {
                not_before: Utc::now(),
            }),
            provider(ProviderError::Unsupported {
                operation: "refresh",
            }),
            provider(ProviderError::Config("X_CLIENT_ID".into())),
            Error::Store(StoreError::Unavailable {
                message: "down".into(),
                source: None,
            }),
            Error::Store(StoreError::VersionConflict),
            Error::Store(StoreError::NotFound),
            Error::Store(StoreError::UniqueViolation("k".into())),
            Error::Store(StoreError::OwnedByAnotherUser),
            Error::Store(StoreError::Corrupt("row".into())),
            Error::Store(StoreError::Other {
                message: "x".into(),
                source: None,
            }),
            Error::Crypto(CryptoError::Authentication),
        ];
        all.extend(
            [
                WebhookRefusal::Unsupported,
                WebhookRefusal::NotConfigured,
                WebhookRefusal::Method,
                WebhookRefusal::TooLarge(1),
                WebhookRefusal::MissingSignature("x"),
                WebhookRefusal::BadSignature,
                WebhookRefusal::Stale,
                WebhookRefusal::VerifyToken,
                WebhookRefusal::Malformed("m".into()),
            ]
            .map(Error::WebhookRefused),
        );
        let mut kinds: Vec<usize> = all.iter().map(kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds, (0..KINDS).collect::<Vec<_>>(), "a kind is missing");
        all
    }

    const KINDS: usize = 25;

    fn kind(e: &Error) -> usize {
        match e {
            Error::UnknownProvider(_) => 0,
            Error::Cancelled => 1,
            Error::AuthorizationFailed { .. } => 2,
            Error::InvalidState => 3,
            Error::StateMismatch => 4,
            Error::StateExpired => 5,
            Error::AccountOwnedByAnotherUser => 6,
            Error::NotFound => 7,
            Error::NeedsReconnect => 8,
            Error::ConnectRateLimited { .. } => 9,
            Error::Busy => 10,
            Error::Provider(p) => match p {
                ProviderError::AccessDenied { .. } => 11,
                ProviderError::InvalidGrant { .. } => 12,
                ProviderError::InvalidClient { .. } => 13,
                ProviderError::RateLimited { .. } => 14,
                ProviderError::Unavailable { .. } => 15,
                ProviderError::Network { .. } => 16,
                ProviderError::Protocol { .. } => 17,
                ProviderError::RefreshNotYetAllowed { .. } => 18,
                ProviderError::Unsupported { .. } => 19,
                ProviderError::Config(_) => 20,
            },
            Error::Store(StoreError::Unavailable { .. }) => 21,
            Error::Store(
                StoreError::VersionConflict
                | StoreError::NotFound
                | StoreError::UniqueViolation(_)
                | StoreError::OwnedByAnotherUser
                | StoreError::Corrupt(_)
                | StoreError::Other { .. },
            ) => 22,
            Error::Crypto(_) => 23,
            Error::WebhookRefused(_) => 24,
        }
    }

    /// `code → status` from the "Every error code" section of `docs/http-api.md`.
    fn documented_statuses() -> HashMap<String, u16> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/http-api.md");
        let doc = std::fs::read_to_string(path).expect("docs/http-api.md is readable");
        let section = doc
            .split("## Every error code")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("docs/http-api.md has an \"Every error code\" section");
        let mut table = HashMap::new();
        let mut words = section.split(['`', '·', '\n']).map(str::trim);
        while let Some(word) = words.next() {
            let is_code =
                !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
            if !is_code {
                continue;
            }
            let status = words
                .next()
                .and_then(|s| s.split_whitespace().next())
                .map(|s| s.trim_end_matches('.'));
            if let Some(status) = status.and_then(|s| s.parse().ok()) {
                table.insert(word.to_owned(), status);
            }
        }
        table
    }

    #[test]
    fn every_error_answers_the_documented_http_status() {
        let documented = documented_statuses();
        assert!(documented.len() >= 20, "parsed {documented:?}");
        for e in every_kind() {
            let want = documented
                .get(e.code())
                .unwrap_or_else(|| panic!("`{}` is missing from docs/http-api.md", e.code()));
            assert_eq!(e.http_status().as_u16(), *want, "{e:?}");
        }
    }
}
