//! Whether an account may and should be refreshed: the one rule `refresh`,
//! `access_token`, `send` and the refresher all ask.

use super::to_chrono;
use crate::provider::Provider;
use crate::status::is_token_expired;
use crate::store::{AccountRecord, AccountStatus};
use chrono::{DateTime, Utc};

/// Why a refresh is being considered.
#[derive(Debug, Clone, Copy)]
pub(super) enum Trigger {
    /// The user asked for it ([`Integrations::refresh`]).
    Requested,
    /// A caller needs the access token valid for at least this long
    /// ([`Integrations::access_token`]: zero; [`Integrations::send`]: the refresh skew).
    Needed(chrono::Duration),
    /// The platform answered 401 to the current token.
    Unauthorized,
    /// A refresher pass claimed the account as due.
    Scheduled,
}

/// What to do about an account's tokens, from [`eligibility`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Eligibility {
    /// Refresh now.
    Refresh,
    /// The access token is valid for as long as needed: use it as it is.
    Fresh,
    /// The grant is dead (stored `NeedsReconnect`): only the user can revive it.
    NeedsReconnect,
    /// The platform has no refresh.
    Unsupported,
    /// A scheduled call would achieve nothing: there is no token to refresh with, or the
    /// token is younger than the platform refreshes (Instagram's 24 hours).
    Pointless,
}

/// What a platform allows, as far as refreshing goes (from its [`Provider`]).
#[derive(Debug, Clone, Copy)]
struct RefreshRules {
    /// [`Capabilities::refresh`](crate::Capabilities::refresh).
    refresh: bool,
    /// [`Capabilities::min_token_age_for_refresh`](crate::Capabilities::min_token_age_for_refresh).
    min_token_age: Option<std::time::Duration>,
    /// [`Provider::refresh_needs_refresh_token`].
    needs_refresh_token: bool,
}

impl RefreshRules {
    fn of(provider: &dyn Provider) -> Self {
        let caps = provider.capabilities();
        Self {
            refresh: caps.refresh,
            min_token_age: caps.min_token_age_for_refresh,
            needs_refresh_token: provider.refresh_needs_refresh_token(),
        }
    }
}

/// Whether `record` may and should be refreshed now, the one rule every caller asks.
///
/// A dead grant is never refreshed, nor an account of a platform without refresh. A
/// caller that needs the token refreshes only when it expires within the time it needs.
/// Only a scheduled refresh (speculative, done for every due account) skips calls the
/// platform would refuse; a caller acting for the user lets the platform answer, so the
/// user sees its reason.
pub(super) fn eligibility(
    provider: &dyn Provider,
    record: &AccountRecord,
    trigger: Trigger,
    now: DateTime<Utc>,
) -> Eligibility {
    decide(RefreshRules::of(provider), record, trigger, now)
}

fn decide(
    rules: RefreshRules,
    record: &AccountRecord,
    trigger: Trigger,
    now: DateTime<Utc>,
) -> Eligibility {
    if record.status == AccountStatus::NeedsReconnect {
        return Eligibility::NeedsReconnect;
    }
    if !rules.refresh {
        return Eligibility::Unsupported;
    }
    match trigger {
        Trigger::Requested | Trigger::Unauthorized => Eligibility::Refresh,
        Trigger::Needed(valid_for) => {
            let expiring = record
                .expires_at
                .is_some_and(|at| is_token_expired(Some(at - valid_for), now));
            if expiring {
                Eligibility::Refresh
            } else {
                Eligibility::Fresh
            }
        }
        Trigger::Scheduled => {
            let too_young = rules.min_token_age.is_some_and(|min| {
                now - record.token_issued_at.unwrap_or(record.created_at) < to_chrono(min)
            });
            let no_token = record.access_token.is_none() && record.refresh_token.is_none()
                || rules.needs_refresh_token && record.refresh_token.is_none();
            if too_young || no_token {
                Eligibility::Pointless
            } else {
                Eligibility::Refresh
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::ProviderId;
    use crate::secret::SealedSecret;
    use crate::store::UserId;
    use chrono::{Duration, TimeZone};
    use std::time::Duration as StdDuration;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap()
    }

    /// An active account issued `age` ago, expiring `expires_in` from now.
    fn account(age: Duration, expires_in: Option<Duration>) -> AccountRecord {
        let issued = now() - age;
        AccountRecord {
            id: 1,
            user_id: UserId(1),
            provider: ProviderId::new("p").unwrap(),
            provider_account_id: "a".into(),
            access_token: Some(SealedSecret::from_stored("v1.k.at")),
            refresh_token: Some(SealedSecret::from_stored("v1.k.rt")),
            expires_at: expires_in.map(|d| now() + d),
            refresh_expires_at: None,
            token_issued_at: Some(issued),
            token_type: None,
            scope: None,
            metadata: serde_json::json!({}),
            status: AccountStatus::Active,
            last_error: None,
            refresh_failures: 0,
            last_refresh_attempt_at: None,
            last_refresh_success_at: None,
            version: 1,
            lease_owner: None,
            lease_until: None,
            created_at: issued,
            updated_at: issued,
        }
    }

    #[test]
    fn eligibility_table() {
        use Eligibility::*;
        let oauth = RefreshRules {
            refresh: true,
            min_token_age: None,
            needs_refresh_token: true,
        };
        // Instagram: refreshes the access token itself, not before it is 24 hours old.
        let instagram = RefreshRules {
            refresh: true,
            min_token_age: Some(StdDuration::from_secs(86_400)),
            needs_refresh_token: false,
        };
        let gateway = RefreshRules {
            refresh: false,
            min_token_age: None,
            needs_refresh_token: true,
        };
        let skew = Trigger::Needed(Duration::seconds(60));
        let expired = Trigger::Needed(Duration::zero());
        let day = Duration::days(1);
        let valid = account(day, Some(Duration::hours(1)));
        let expiring = account(day, Some(Duration::seconds(30)));
        let past = account(day, Some(-Duration::seconds(1)));
        let at_expiry = account(day, Some(Duration::zero()));
        let forever = account(day, None);
        let young = account(Duration::hours(1), Some(Duration::hours(1)));
        let dead = AccountRecord {
            status: AccountStatus::NeedsReconnect,
            ..past.clone()
        };
        let no_refresh_token = AccountRecord {
            refresh_token: None,
            ..past.clone()
        };
        let no_tokens = AccountRecord {
            access_token: None,
            ..no_refresh_token.clone()
        };
        let cases = [
            // A dead grant, whoever asks and whatever the platform.
            (oauth, &dead, Trigger::Requested, NeedsReconnect),
            (oauth, &dead, expired, NeedsReconnect),
            (oauth, &dead, Trigger::Unauthorized, NeedsReconnect),
            (oauth, &dead, Trigger::Scheduled, NeedsReconnect),
            (gateway, &dead, expired, NeedsReconnect),
            // No refresh at the platform.
            (gateway, &past, Trigger::Requested, Unsupported),
            (gateway, &past, expired, Unsupported),
            (gateway, &past, Trigger::Unauthorized, Unsupported),
            (gateway, &past, Trigger::Scheduled, Unsupported),
            // The user asks, or the platform refused the token: always.
            (oauth, &valid, Trigger::Requested, Refresh),
            (oauth, &valid, Trigger::Unauthorized, Refresh),
            (instagram, &young, Trigger::Requested, Refresh),
            (oauth, &no_tokens, Trigger::Requested, Refresh),
            // A caller needing the token: only when it expires within the time needed.
            (oauth, &valid, expired, Fresh),
            (oauth, &valid, skew, Fresh),
            (oauth, &expiring, expired, Fresh),
            (oauth, &expiring, skew, Refresh),
            (oauth, &at_expiry, expired, Refresh),
            (oauth, &past, expired, Refresh),
            (oauth, &forever, skew, Fresh),
            (oauth, &no_refresh_token, expired, Refresh),
            // Scheduled: skips what the platform would refuse.
            (oauth, &past, Trigger::Scheduled, Refresh),
            (oauth, &no_refresh_token, Trigger::Scheduled, Pointless),
            (oauth, &no_tokens, Trigger::Scheduled, Pointless),
            (instagram, &no_refresh_token, Trigger::Scheduled, Refresh),
            (instagram, &no_tokens, Trigger::Scheduled, Pointless),
            (instagram, &young, Trigger::Scheduled, Pointless),
            (instagram, &valid, Trigger::Scheduled, Refresh),
        ];
        for (i, (rules, record, trigger, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                decide(rules, record, trigger, now()),
                want,
                "case {i}: {trigger:?} with {rules:?}"
            );
        }
    }

    #[test]
    fn the_minimum_age_is_counted_from_the_last_issue() {
        let rules = RefreshRules {
            refresh: true,
            min_token_age: Some(StdDuration::from_secs(86_400)),
            needs_refresh_token: false,
        };
        let exactly = account(Duration::days(1), Some(Duration::hours(1)));
        assert_eq!(
            decide(rules, &exactly, Trigger::Scheduled, now()),
            Eligibility::Refresh
        );
        let mut never_refreshed = exactly.clone();
        never_refreshed.token_issued_at = None;
        never_refreshed.created_at = now() - Duration::hours(23);
        assert_eq!(
            decide(rules, &never_refreshed, Trigger::Scheduled, now()),
            Eligibility::Pointless
        );
    }
}
