//! Whether an account may and should be refreshed: the one rule `refresh`,
//! `access_token`, `send` and the refresher all ask.

use super::to_chrono;
use crate::provider::Provider;
use crate::status::is_token_expired;
use crate::store::{AccountRecord, StoredStatus};
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
    /// A refresher pass claimed the account as due: its token expires within the pass's
    /// window (see [`scheduled_window`]).
    Scheduled(chrono::Duration),
}

/// What to do about an account's tokens, from [`eligibility`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Eligibility {
    /// Refresh now.
    Refresh,
    /// The access token is valid for as long as needed (a caller needing it), or not yet
    /// due (a refresher pass): use it as it is.
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

/// The share of a token's lifetime a scheduled refresh waits for: the refresher renews a
/// token once this much of its lifetime remains, or within its window when that is
/// shorter.
const SCHEDULED_SHARE_OF_LIFETIME: i32 = 2;

/// How long before its expiry a refresher pass with `window` renews `record`'s token:
/// `window`, or half the token's lifetime (from its issue to its expiry) when that is
/// shorter. A window longer than the tokens' life would otherwise renew every token on
/// every pass; with this rule a one-hour token is renewed when 30 minutes remain, whatever
/// the window. `None` for a token that does not expire.
pub(super) fn scheduled_window(
    record: &AccountRecord,
    window: chrono::Duration,
) -> Option<chrono::Duration> {
    let expires_at = record.expires_at?;
    let issued_at = record.token_issued_at.unwrap_or(record.created_at);
    let share = (expires_at - issued_at) / SCHEDULED_SHARE_OF_LIFETIME;
    Some(window.min(share.max(chrono::Duration::zero())))
}

/// Whether `record` may and should be refreshed now, the one rule every caller asks.
///
/// A dead grant is never refreshed, nor an account of a platform without refresh. A
/// caller that needs the token refreshes only when it expires within the time it needs;
/// a refresher pass only when it expires within the pass's window, clamped to half the
/// token's lifetime ([`scheduled_window`]). Only a scheduled refresh (speculative, done
/// for every due account) skips calls the platform would refuse; a caller acting for the
/// user lets the platform answer, so the user sees its reason.
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
    if record.status == StoredStatus::NeedsReconnect {
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
        Trigger::Scheduled(window) => {
            let due = scheduled_window(record, window)
                .zip(record.expires_at)
                .is_some_and(|(window, at)| is_token_expired(Some(at - window), now));
            if !due {
                return Eligibility::Fresh;
            }
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
            status: StoredStatus::Active,
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
        let scheduled = Trigger::Scheduled(Duration::hours(2));
        let expired = Trigger::Needed(Duration::zero());
        let day = Duration::days(1);
        let valid = account(day, Some(Duration::hours(1)));
        let expiring = account(day, Some(Duration::seconds(30)));
        let past = account(day, Some(-Duration::seconds(1)));
        let at_expiry = account(day, Some(Duration::zero()));
        let forever = account(day, None);
        let young = account(Duration::hours(1), Some(Duration::hours(1)));
        let dead = AccountRecord {
            status: StoredStatus::NeedsReconnect,
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
            (oauth, &dead, scheduled, NeedsReconnect),
            (gateway, &dead, expired, NeedsReconnect),
            // No refresh at the platform.
            (gateway, &past, Trigger::Requested, Unsupported),
            (gateway, &past, expired, Unsupported),
            (gateway, &past, Trigger::Unauthorized, Unsupported),
            (gateway, &past, scheduled, Unsupported),
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
            (oauth, &past, scheduled, Refresh),
            (oauth, &no_refresh_token, scheduled, Pointless),
            (oauth, &no_tokens, scheduled, Pointless),
            (instagram, &no_refresh_token, scheduled, Refresh),
            (instagram, &no_tokens, scheduled, Pointless),
            (instagram, &young, scheduled, Pointless),
            (instagram, &valid, scheduled, Refresh),
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
        let scheduled = Trigger::Scheduled(Duration::hours(2));
        let exactly = account(Duration::days(1), Some(Duration::hours(1)));
        assert_eq!(
            decide(rules, &exactly, scheduled, now()),
            Eligibility::Refresh
        );
        let mut never_refreshed = exactly.clone();
        never_refreshed.token_issued_at = None;
        never_refreshed.created_at = now() - Duration::hours(23);
        assert_eq!(
            decide(rules, &never_refreshed, scheduled, now()),
            Eligibility::Pointless
        );
    }

    #[test]
    fn a_pass_waits_for_its_window_or_half_the_lifetime_whichever_is_shorter() {
        use Eligibility::*;
        let oauth = RefreshRules {
            refresh: true,
            min_token_age: None,
            needs_refresh_token: true,
        };
        let (h, m) = (Duration::hours, Duration::minutes);
        // (window, token lifetime, time left, decision)
        let cases = [
            // A window longer than the tokens' life: refreshed at half their life, not on
            // every pass.
            (h(2), h(1), h(1), Fresh),
            (h(2), h(1), m(31), Fresh),
            (h(2), h(1), m(30), Refresh),
            (h(2), h(1), m(5), Refresh),
            (h(2), h(1), -m(1), Refresh),
            // The window equal to the life: the same.
            (h(1), h(1), m(45), Fresh),
            (h(1), h(1), m(30), Refresh),
            // A window shorter than half the life is the rule (the default 10 minutes with
            // Reddit's one-hour and TikTok's one-day tokens).
            (m(10), h(1), m(11), Fresh),
            (m(10), h(1), m(10), Refresh),
            (m(10), h(24), h(2), Fresh),
            (m(10), h(24), m(10), Refresh),
            (h(2), h(24), h(2), Refresh),
            (h(2), h(24), h(3), Fresh),
            // Instagram's 60-day tokens with a one-week window.
            (h(24 * 7), h(24 * 60), h(24 * 8), Fresh),
            (h(24 * 7), h(24 * 60), h(24 * 7), Refresh),
            // A token issued already expired (a platform's zero `expires_in`): always due.
            (m(10), Duration::zero(), Duration::zero(), Refresh),
        ];
        for (i, (window, life, left, want)) in cases.into_iter().enumerate() {
            let record = account(life - left, Some(left));
            assert_eq!(
                decide(oauth, &record, Trigger::Scheduled(window), now()),
                want,
                "case {i}: window {window}, life {life}, left {left}"
            );
        }
        // A token that does not expire is never due.
        let forever = account(Duration::days(1), None);
        assert_eq!(
            decide(oauth, &forever, Trigger::Scheduled(h(2)), now()),
            Fresh
        );
    }

    #[test]
    fn the_scheduled_window_is_clamped_to_half_the_lifetime() {
        let (h, m) = (Duration::hours, Duration::minutes);
        let one_hour = account(m(20), Some(m(40)));
        assert_eq!(scheduled_window(&one_hour, h(2)), Some(m(30)));
        assert_eq!(scheduled_window(&one_hour, m(10)), Some(m(10)));
        let mut never_refreshed = one_hour.clone();
        never_refreshed.token_issued_at = None;
        never_refreshed.created_at = now() - h(3);
        assert_eq!(scheduled_window(&never_refreshed, h(24)), Some(m(110)));
        let forever = account(h(1), None);
        assert_eq!(scheduled_window(&forever, h(2)), None);
    }
}
