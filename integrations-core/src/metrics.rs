//! Metric names and the helpers that record them through the `metrics` facade.
//!
//! Install any `metrics` recorder (Prometheus, StatsD, ...) in the host to collect them.
//!
//! | name | kind | labels |
//! | --- | --- | --- |
//! | `integrations_connect_started_total` | counter | `provider` |
//! | `integrations_connect_succeeded_total` | counter | `provider`, `kind` (`new`, `reauthorized`) |
//! | `integrations_connect_failed_total` | counter | `provider`, `reason` (an error code) |
//! | `integrations_refresh_total` | counter | `provider`, `outcome` (`refreshed`, `reused`, `needs_reconnect`, `transient_failure`, `failure`, `not_refreshable`) |
//! | `integrations_refresh_duration_seconds` | histogram | `provider` |
//! | `integrations_revoke_total` | counter | `provider`, `outcome` (`success`, `failure`) |
//! | `integrations_disconnect_total` | counter | `provider` |
//! | `integrations_connections_changed_total` | counter | `provider`, `status` (`connected`, `needs_reconnect`, `disconnected`): transitions, from which a dashboard derives connections by status |
//! | `integrations_send_total` | counter | `provider`, `outcome` (`ok`, `refreshed_and_retried`, `rate_limited`, `retried`, `failed`) |
//! | `integrations_connections` | gauge | `provider`, `status` (`active`, `needs_reconnect`): accounts in the store, set by [`Integrations::record_connection_gauges`](crate::Integrations::record_connection_gauges) (after every [`Refresher`](crate::Refresher) pass) |
//! | `integrations_connections_past_expiry` | gauge | `provider`, `status`: of those, accounts whose access token is past its expiry (for `active`: waiting for a refresh or unable to refresh) |

use crate::provider::ProviderId;
use crate::service::RefreshOutcome;
use crate::store::{AccountCount, StoredStatus};
use std::collections::HashSet;
use std::time::Duration;

/// The label sets the connection gauges were last set for.
pub(crate) type Gauged = HashSet<(ProviderId, StoredStatus)>;

/// Sets the connection gauges to `counts`, and to zero for the groups of `gauged` that are
/// no longer there; `gauged` becomes the groups of `counts`.
pub(crate) fn connection_gauges(counts: &[AccountCount], gauged: &mut Gauged) {
    let set = |provider: &ProviderId, status: StoredStatus, accounts: u64, past: u64| {
        let labels = [
            ("provider", provider.as_str().to_owned()),
            ("status", status.as_str().to_owned()),
        ];
        metrics::gauge!("integrations_connections", &labels).set(accounts as f64);
        metrics::gauge!("integrations_connections_past_expiry", &labels).set(past as f64);
    };
    let now: Gauged = counts
        .iter()
        .map(|c| (c.provider.clone(), c.status))
        .collect();
    for (provider, status) in gauged.difference(&now) {
        set(provider, *status, 0, 0);
    }
    for c in counts {
        set(&c.provider, c.status, c.accounts, c.past_expiry);
    }
    *gauged = now;
}

/// Records a connect start.
pub(crate) fn connect_started(provider: &str) {
    metrics::counter!("integrations_connect_started_total", "provider" => provider.to_owned())
        .increment(1);
}

/// Records a connect result.
pub(crate) fn connect_finished(provider: &str, result: Result<bool, &'static str>) {
    match result {
        Ok(reauthorized) => {
            let kind = if reauthorized { "reauthorized" } else { "new" };
            metrics::counter!("integrations_connect_succeeded_total", "provider" => provider.to_owned(), "kind" => kind)
                .increment(1);
            connection_changed(provider, "connected");
        }
        Err(reason) => {
            metrics::counter!("integrations_connect_failed_total", "provider" => provider.to_owned(), "reason" => reason)
                .increment(1);
        }
    }
}

/// Records a refresh outcome and its duration.
pub(crate) fn refresh_outcome(provider: &str, outcome: RefreshOutcome, took: Duration) {
    metrics::counter!("integrations_refresh_total", "provider" => provider.to_owned(), "outcome" => outcome.label())
        .increment(1);
    metrics::histogram!("integrations_refresh_duration_seconds", "provider" => provider.to_owned())
        .record(took.as_secs_f64());
}

/// Records a revoke attempt.
pub(crate) fn revoke(provider: &str, ok: bool) {
    let outcome = if ok { "success" } else { "failure" };
    metrics::counter!("integrations_revoke_total", "provider" => provider.to_owned(), "outcome" => outcome)
        .increment(1);
}

/// Records a disconnect.
pub(crate) fn disconnected(provider: &str) {
    metrics::counter!("integrations_disconnect_total", "provider" => provider.to_owned())
        .increment(1);
    connection_changed(provider, "disconnected");
}

/// Records a connection status transition.
pub(crate) fn connection_changed(provider: &str, status: &'static str) {
    metrics::counter!("integrations_connections_changed_total", "provider" => provider.to_owned(), "status" => status)
        .increment(1);
}

/// Records an authorized request's outcome.
pub(crate) fn send(provider: &str, outcome: &'static str) {
    metrics::counter!("integrations_send_total", "provider" => provider.to_owned(), "outcome" => outcome)
        .increment(1);
}

/// A platform webhook's outcome: `handshake`, a refusal code, or a receipt's outcome.
pub(crate) fn platform_webhook(provider: &str, outcome: &str) {
    metrics::counter!("integrations_platform_webhooks_total", "provider" => provider.to_owned(), "outcome" => outcome.to_owned())
        .increment(1);
}
