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
    RateLimited {
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
            Self::RateLimited { .. } => "rate_limited",
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
            Self::RateLimited { .. } => MSG_RATE_LIMITED,
            Self::Provider(e) => match e {
                ProviderError::AccessDenied { .. } => MSG_CANCELLED,
                ProviderError::InvalidGrant { .. } => MSG_RECONNECT,
                ProviderError::InvalidClient { .. } => MSG_INVALID_CREDENTIALS,
                ProviderError::RateLimited { .. } => MSG_RATE_LIMITED,
                ProviderError::Unavailable { .. } | ProviderError::Network { .. } => MSG_NETWORK,
                _ => MSG_INTERNAL,
            },
            Self::Busy | Self::Store(_) | Self::Crypto(_) => MSG_INTERNAL,
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
