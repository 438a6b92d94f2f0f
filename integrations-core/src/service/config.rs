//! [`ServiceConfig`] and [`SendPolicy`]: the service's tunables.

use std::time::Duration;

/// Tunables of the service. The defaults suit most hosts.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// How long a started connection waits for its callback (default 10 minutes).
    pub pending_ttl: Duration,
    /// `connect` calls allowed per user per [`connect_window`](Self::connect_window)
    /// (default 10; `usize::MAX` switches the limit off). Counted from the store's
    /// `ConnectStarted` audit events, so instances sharing a store share the limit
    /// (concurrent connects of one user may each see the count just under it).
    pub connect_limit: usize,
    /// The rate-limit window (default 5 minutes).
    pub connect_window: Duration,
    /// How long a refresh lease lasts if its holder dies (default 60 seconds).
    pub lease_ttl: Duration,
    /// How long a refresh waits for another worker's lease (default 30 seconds).
    pub lease_wait: Duration,
    /// How often a waiting refresh polls the lease (default 25 ms).
    pub lease_poll: Duration,
    /// A refresh asked for within this time of a successful one, while the token is
    /// still valid, returns that result instead of calling the platform again
    /// (default 2 seconds).
    pub refresh_coalesce: Duration,
    /// How long `status` results are cached per user (default 5 minutes; zero disables
    /// the cache). Writes through this instance invalidate the user's entry at once;
    /// writes by other instances sharing the store show after at most this long.
    pub status_cache_ttl: Duration,
    /// Retry policy of [`Integrations::send`](super::Integrations::send).
    pub send: SendPolicy,
    /// How long connection events are kept (default 7 days): the
    /// [`Refresher`](crate::Refresher) prunes older ones after each pass. Keep it longer
    /// than a webhook delivery can take to give up (about 3 days with the default
    /// [`RetrySchedule`](crate::webhooks::RetrySchedule)), or undelivered events are lost.
    pub event_retention: Duration,
    /// How often [`Integrations::events`](super::Integrations::events) reads the store
    /// when nothing woke it (default 500 ms; PostgreSQL wakes it at once).
    pub event_poll: Duration,
    /// How long a platform webhook's receipt is kept, so that a replay of it is
    /// recognised (default 7 days; TikTok retries for 72 hours).
    pub webhook_receipt_retention: Duration,
    /// How long a data-deletion request's receipt, and so its status page, is kept
    /// (default 180 days).
    pub deletion_status_retention: Duration,
    /// Whether platform calls are recorded for [`Integrations::health`](super::Integrations::health)
    /// (default `true`).
    pub health_recording: bool,
    /// How long health rows are kept (default 7 days; the [`Refresher`](crate::Refresher)
    /// prunes older ones).
    pub health_retention: Duration,
}

/// How [`Integrations::send`](super::Integrations::send) retries.
#[derive(Debug, Clone)]
pub struct SendPolicy {
    /// Attempts in all, for network errors and 5xx on idempotent requests (default 3).
    pub max_attempts: u32,
    /// First backoff; doubled each retry, with up to 50% random jitter added (default
    /// 200 ms).
    pub backoff_base: Duration,
    /// The longest `Retry-After` honoured on 429; longer waits return the rate-limit error
    /// (default 60 seconds).
    pub max_retry_wait: Duration,
    /// Refresh before sending when the token expires within this time (default 60 s).
    pub refresh_skew: Duration,
}

impl Default for SendPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff_base: Duration::from_millis(200),
            max_retry_wait: Duration::from_secs(60),
            refresh_skew: Duration::from_secs(60),
        }
    }
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            pending_ttl: Duration::from_secs(600),
            event_retention: Duration::from_secs(7 * 24 * 3600),
            event_poll: Duration::from_millis(500),
            webhook_receipt_retention: Duration::from_secs(7 * 24 * 3600),
            deletion_status_retention: Duration::from_secs(180 * 24 * 3600),
            health_recording: true,
            health_retention: Duration::from_secs(7 * 24 * 3600),
            connect_limit: 10,
            connect_window: Duration::from_secs(300),
            lease_ttl: Duration::from_secs(60),
            lease_wait: Duration::from_secs(30),
            lease_poll: Duration::from_millis(25),
            refresh_coalesce: Duration::from_secs(2),
            status_cache_ttl: Duration::from_secs(300),
            send: SendPolicy::default(),
        }
    }
}
