//! Integration status and expiry rules, as pure functions of stored data and a clock.

use crate::store::{AccountRecord, StoredStatus};
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
    stored: StoredStatus,
    expires_at: Option<DateTime<Utc>>,
    has_refresh_token: bool,
    refresh_expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> IntegrationStatus {
    if stored == StoredStatus::NeedsReconnect {
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
    /// The user completed the authorization (new or again). The store's
    /// [`upsert_account`](crate::TokenStore::upsert_account) applies it.
    Authorized,
    /// A refresh succeeded.
    RefreshSucceeded,
    /// A refresh failed with an error that leaves the grant alive (transient, or one the
    /// platform may not repeat).
    RefreshFailedTransient,
    /// The platform said the grant is dead (`invalid_grant`).
    GrantRevoked,
}

/// A lifecycle event that cannot happen to an account in its stored state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{event:?} cannot happen to an account that is {from:?}")]
pub struct InvalidTransition {
    /// The stored state.
    pub from: StoredStatus,
    /// The event.
    pub event: LifecycleEvent,
}

/// The stored-status transition function.
///
/// Authorizing makes any account `Active`. Refresh outcomes only happen to an `Active`
/// account: no refresh is attempted for a dead grant, so a `NeedsReconnect` account
/// leaves that state only when the user authorizes again.
pub fn transition(
    current: StoredStatus,
    event: LifecycleEvent,
) -> Result<StoredStatus, InvalidTransition> {
    use LifecycleEvent::*;
    use StoredStatus::*;
    match (current, event) {
        (_, Authorized) => Ok(Active),
        (Active, RefreshSucceeded | RefreshFailedTransient) => Ok(Active),
        (Active, GrantRevoked) => Ok(NeedsReconnect),
        (NeedsReconnect, RefreshSucceeded | RefreshFailedTransient | GrantRevoked) => {
            Err(InvalidTransition {
                from: current,
                event,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    #[test]
    fn status_text_is_its_json_name() {
        for (status, text) in [
            (IntegrationStatus::Connected, "connected"),
            (IntegrationStatus::Expired, "expired"),
            (IntegrationStatus::NeedsReconnect, "needs_reconnect"),
        ] {
            assert_eq!(status.as_str(), text);
            assert_eq!(status.to_string(), text);
            assert_eq!(
                format!("{status:>16}"),
                format!("{text:>16}"),
                "Display pads"
            );
            assert_eq!(serde_json::to_value(status).unwrap(), text);
        }
    }

    /// Every state and every event; the matches fail to compile when either enum grows,
    /// so the table below must grow with them.
    const STATES: [StoredStatus; 2] = [StoredStatus::Active, StoredStatus::NeedsReconnect];
    const EVENTS: [LifecycleEvent; 4] = [
        LifecycleEvent::Authorized,
        LifecycleEvent::RefreshSucceeded,
        LifecycleEvent::RefreshFailedTransient,
        LifecycleEvent::GrantRevoked,
    ];
    #[allow(dead_code)]
    fn every_variant_listed(s: StoredStatus, e: LifecycleEvent) {
        match s {
            StoredStatus::Active | StoredStatus::NeedsReconnect => {}
        }
        match e {
            LifecycleEvent::Authorized
            | LifecycleEvent::RefreshSucceeded
            | LifecycleEvent::RefreshFailedTransient
            | LifecycleEvent::GrantRevoked => {}
        }
    }

    #[test]
    fn transition_table_covers_every_state_and_event() {
        use LifecycleEvent::*;
        use StoredStatus::*;
        let refused = |from, event| Err(InvalidTransition { from, event });
        let table = [
            (Active, Authorized, Ok(Active)),
            (Active, RefreshSucceeded, Ok(Active)),
            (Active, RefreshFailedTransient, Ok(Active)),
            (Active, GrantRevoked, Ok(NeedsReconnect)),
            (NeedsReconnect, Authorized, Ok(Active)),
            (
                NeedsReconnect,
                RefreshSucceeded,
                refused(NeedsReconnect, RefreshSucceeded),
            ),
            (
                NeedsReconnect,
                RefreshFailedTransient,
                refused(NeedsReconnect, RefreshFailedTransient),
            ),
            (
                NeedsReconnect,
                GrantRevoked,
                refused(NeedsReconnect, GrantRevoked),
            ),
        ];
        for from in STATES {
            for event in EVENTS {
                let rows: Vec<_> = table
                    .iter()
                    .filter(|(f, e, _)| *f == from && *e == event)
                    .collect();
                assert_eq!(rows.len(), 1, "{from:?} + {event:?} must have one row");
                assert_eq!(transition(from, event), rows[0].2, "{from:?} + {event:?}");
            }
        }
        assert_eq!(table.len(), STATES.len() * EVENTS.len());
    }

    #[test]
    fn status_table() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let past = Some(now - Duration::seconds(1));
        let future = Some(now + Duration::hours(1));
        use IntegrationStatus as S;
        use StoredStatus::*;
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
