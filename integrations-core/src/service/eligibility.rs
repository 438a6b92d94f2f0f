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
    if record.status == AccountStatus::NeedsReconnect {
        return Eligibility::NeedsReconnect;
    }
    let caps = provider.capabilities();
    if !caps.refresh {
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
            let too_young = caps.min_token_age_for_refresh.is_some_and(|min| {
                now - record.token_issued_at.unwrap_or(record.created_at) < to_chrono(min)
            });
            let no_token = record.access_token.is_none() && record.refresh_token.is_none()
                || provider.refresh_needs_refresh_token() && record.refresh_token.is_none();
            if too_young || no_token {
                Eligibility::Pointless
            } else {
                Eligibility::Refresh
            }
        }
    }
}
