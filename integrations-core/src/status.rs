//! Integration status and expiry rules, as pure functions of stored data and a clock.

use crate::store::{AccountRecord, AccountStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The status shown for a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationStatus {
    /// Usable now, or refreshable without the user.
    Connected,
    /// The access token expired and cannot be refreshed: the user must reconnect.
    Expired,
    /// The platform refused a refresh (revoked or dead grant): the user must reconnect.
    NeedsReconnect,
}

impl IntegrationStatus {
    /// Lowercase text (`"connected"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::Expired => "expired",
            Self::NeedsReconnect => "needs_reconnect",
        }
    }
}

impl fmt::Display for IntegrationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Whether a token with this expiry is expired at `now` (the design's `isTokenExpired`).
/// A token without expiry never expires; one expiring exactly now is expired.
pub fn is_token_expired(expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    expires_at.is_some_and(|at| now >= at)
}

/// The status of a connection from its stored state.
///
/// - stored `NeedsReconnect` → `NeedsReconnect`;
/// - access token expired and no way to refresh (no refresh token, or the refresh token
///   itself expired) → `Expired`;
/// - otherwise `Connected`.
pub fn compute_status(
    stored: AccountStatus,
    expires_at: Option<DateTime<Utc>>,
    has_refresh_token: bool,
    refresh_expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> IntegrationStatus {
    if stored == AccountStatus::NeedsReconnect {
        return IntegrationStatus::NeedsReconnect;
    }
    let refreshable = has_refresh_token && !is_token_expired(refresh_expires_at, now);
    if is_token_expired(expires_at, now) && !refreshable {
        IntegrationStatus::Expired
    } else {
        IntegrationStatus::Connected
    }
}

/// [`compute_status`] for a stored record.
pub fn account_status(record: &AccountRecord, now: DateTime<Utc>) -> IntegrationStatus {
    compute_status(
        record.status,
        record.expires_at,
        record.refresh_token.is_some(),
        record.refresh_expires_at,
        now,
    )
}

/// What happens to a connection, as seen by its stored lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleEvent {
    /// The user completed the authorization (new or again).
    Authorized,
    /// A refresh succeeded.
    RefreshSucceeded,
    /// A refresh failed with a transient error.
    RefreshFailedTransient,
    /// The platform said the grant is dead.
    GrantRevoked,
}

/// The stored-status transition function.
pub fn transition(current: AccountStatus, event: LifecycleEvent) -> AccountStatus {
    use AccountStatus::*;
    use LifecycleEvent::*;
    match (current, event) {
        (_, Authorized) => Active,
        (Active, RefreshSucceeded) => Active,
        // A refresh cannot succeed on a dead grant; the state stays until the user acts.
        (NeedsReconnect, RefreshSucceeded) => NeedsReconnect,
        (s, RefreshFailedTransient) => s,
        (_, GrantRevoked) => NeedsReconnect,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    #[test]
    fn transition_table() {
        use AccountStatus::*;
        use LifecycleEvent::*;
        let table = [
            (Active, Authorized, Active),
            (Active, RefreshSucceeded, Active),
            (Active, RefreshFailedTransient, Active),
            (Active, GrantRevoked, NeedsReconnect),
            (NeedsReconnect, Authorized, Active),
            (NeedsReconnect, RefreshSucceeded, NeedsReconnect),
            (NeedsReconnect, RefreshFailedTransient, NeedsReconnect),
            (NeedsReconnect, GrantRevoked, NeedsReconnect),
        ];
        for (from, ev, to) in table {
            assert_eq!(transition(from, ev), to, "{from:?} + {ev:?}");
        }
    }

    #[test]
    fn status_table() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let past = Some(now - Duration::seconds(1));
        let future = Some(now + Duration::hours(1));
        use AccountStatus::*;
        use IntegrationStatus as S;
        let cases = [
            (Active, None, false, None, S::Connected),
            (Active, future, false, None, S::Connected),
            (Active, past, false, None, S::Expired),
            (Active, past, true, None, S::Connected),
            (Active, past, true, future, S::Connected),
            (Active, past, true, past, S::Expired),
            (Active, Some(now), false, None, S::Expired),
            (NeedsReconnect, future, true, None, S::NeedsReconnect),
        ];
        for (stored, exp, has_rt, rexp, want) in cases {
            assert_eq!(compute_status(stored, exp, has_rt, rexp, now), want);
        }
    }
}
