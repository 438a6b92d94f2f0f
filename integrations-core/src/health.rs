//! Integration health: how each platform is doing, from the calls this library makes.
//!
//! Every platform call (the authorization a gateway opens, token exchange, refresh,
//! revoke, profile, and each attempt of [`Integrations::send`](crate::Integrations::send))
//! is recorded with its outcome class, its latency and the platform's own quota signals
//! ([`quota_signal`]: Reddit's `X-Ratelimit-*`, Meta's `X-App-Usage` and
//! `X-Business-Use-Case-Usage`, the `RateLimit-*` / `X-RateLimit-*` forms, a 429's
//! `Retry-After`). A [`HealthRecorder`] aggregates them in memory into one-minute
//! buckets per platform; [`Integrations::flush_health`](crate::Integrations::flush_health)
//! writes this process's buckets to the store ([`HealthMinute`], one row per platform,
//! minute and process), so that every process sharing the store contributes to one view,
//! [`Integrations::health`](crate::Integrations::health) ([`HealthOverview`](crate::HealthOverview)).
//!
//! A provider needs nothing for this: its calls go through the provider toolkit's HTTP
//! client ([`http::read_capped`](crate::http::read_capped)), which hands each response's
//! headers to the call being recorded (a task-local scope the service opens around the
//! provider call).
//!
//! # A platform's state
//!
//! Over the last 15 minutes (the rule [`PlatformState::of`] implements, first match):
//!
//! 1. **failing**: at least 3 calls, and at least half of them failed for a reason other
//!    than a rate limit (5xx, network, timeout, unreadable answers, refused credentials);
//! 2. **throttled**: the newest quota signal (of the last hour) says the quota is used up
//!    and its reset is still ahead, or a call was rate limited in the last 5 minutes;
//! 3. **degraded**: some calls failed (success under 95%), or p99 latency is over 5 s, or
//!    the newest quota signal is at 80% or more;
//! 4. **operational**: otherwise, including no calls at all.

use crate::provider::{ProviderError, ProviderId};
use chrono::{DateTime, Duration as ChronoDuration, DurationRound, Utc};
use http::{HeaderMap, HeaderName};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What kind of platform call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallKind {
    /// Opening an authorization at the platform (a gateway's link session).
    Authorize,
    /// The code exchange.
    Token,
    /// A token refresh.
    Refresh,
    /// A revocation.
    Revoke,
    /// The profile fetch.
    Profile,
    /// A request of [`Integrations::send`](crate::Integrations::send) (each attempt).
    Send,
}

impl CallKind {
    /// Every kind.
    pub const ALL: [Self; 6] = [
        Self::Authorize,
        Self::Token,
        Self::Refresh,
        Self::Revoke,
        Self::Profile,
        Self::Send,
    ];

    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authorize => "authorize",
            Self::Token => "token",
            Self::Refresh => "refresh",
            Self::Revoke => "revoke",
            Self::Profile => "profile",
            Self::Send => "send",
        }
    }
}

/// The outcome class of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallClass {
    /// Success (2xx, or an answer the provider read).
    Ok,
    /// The platform throttled the call (429, or its own throttling error).
    RateLimited,
    /// The grant or the client credentials were refused (401, `invalid_grant`,
    /// `invalid_client`).
    Unauthorized,
    /// Another 4xx.
    ClientError,
    /// 5xx.
    ServerError,
    /// The connection failed.
    Network,
    /// No answer in time.
    Timeout,
    /// An answer that could not be read.
    Protocol,
}

impl CallClass {
    /// Every class.
    pub const ALL: [Self; 8] = [
        Self::Ok,
        Self::RateLimited,
        Self::Unauthorized,
        Self::ClientError,
        Self::ServerError,
        Self::Network,
        Self::Timeout,
        Self::Protocol,
    ];

    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::RateLimited => "rate_limited",
            Self::Unauthorized => "unauthorized",
            Self::ClientError => "client_error",
            Self::ServerError => "server_error",
            Self::Network => "network",
            Self::Timeout => "timeout",
            Self::Protocol => "protocol",
        }
    }

    /// The class of a provider's error; `None` for errors no request was made for (a
    /// refresh the platform does not allow yet, an unsupported operation, configuration).
    pub fn of_error(error: &ProviderError) -> Option<Self> {
        Some(match error {
            ProviderError::RateLimited { .. } => Self::RateLimited,
            ProviderError::AccessDenied { .. }
            | ProviderError::InvalidGrant { .. }
            | ProviderError::InvalidClient { .. } => Self::Unauthorized,
            ProviderError::Unavailable { .. } => Self::ServerError,
            ProviderError::Network { timeout: true, .. } => Self::Timeout,
            ProviderError::Network { .. } => Self::Network,
            ProviderError::Protocol { .. } => Self::Protocol,
            ProviderError::RefreshNotYetAllowed { .. }
            | ProviderError::Unsupported { .. }
            | ProviderError::Config(_) => return None,
        })
    }

    /// The class of an HTTP status.
    pub fn of_status(status: u16) -> Self {
        match status {
            429 => Self::RateLimited,
            401 | 403 => Self::Unauthorized,
            400..=499 => Self::ClientError,
            500..=599 => Self::ServerError,
            _ => Self::Ok,
        }
    }

    /// Whether the class counts against a platform's health as a failure (a rate limit
    /// is the platform working as designed: it makes the platform `throttled`).
    pub fn is_failure(self) -> bool {
        !matches!(self, Self::Ok | Self::RateLimited)
    }
}

/// What a platform said about its quota on one response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuotaSignal {
    /// The share of the quota used, in percent (Meta's highest percentage; Reddit's used
    /// over used + remaining).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_percent: Option<f64>,
    /// Requests left in the window, when the platform says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<f64>,
    /// The window's limit, when the platform says (or it follows from used + remaining).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<f64>,
    /// When the window resets or access is regained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_at: Option<DateTime<Utc>>,
    /// Which header it came from (`x-ratelimit`, `x-app-usage`,
    /// `x-business-use-case-usage`, `ratelimit`, `retry-after`).
    pub source: String,
    /// When it was seen.
    pub at: DateTime<Utc>,
}

impl QuotaSignal {
    /// Whether the quota is used up and its reset is still ahead of `now`.
    pub fn exhausted(&self, now: DateTime<Utc>) -> bool {
        let used_up = self.used_percent.is_some_and(|p| p >= 100.0)
            || self.remaining.is_some_and(|r| r <= 0.0);
        used_up && self.reset_at.is_none_or(|r| r > now)
    }
}

// Header names as constants: a lookup by `&str` parses the name every time.
const X_RATELIMIT_USED: HeaderName = HeaderName::from_static("x-ratelimit-used");
const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
const X_APP_USAGE: HeaderName = HeaderName::from_static("x-app-usage");
/// Meta's header, and the spelling some of its pages use.
const BUSINESS_USAGE: [HeaderName; 2] = [
    HeaderName::from_static("x-business-use-case-usage"),
    HeaderName::from_static("x-business-use-case"),
];

fn header_f64(headers: &HeaderMap, name: &HeaderName) -> Option<f64> {
    let v: f64 = headers.get(name)?.to_str().ok()?.trim().parse().ok()?;
    v.is_finite().then_some(v)
}

/// Meta's usage objects: the highest of `call_count`, `total_time`, `total_cputime`,
/// and `estimated_time_to_regain_access` (minutes) when present.
#[derive(Deserialize, Default)]
struct MetaUsage {
    #[serde(default)]
    call_count: Option<f64>,
    #[serde(default)]
    total_time: Option<f64>,
    #[serde(default)]
    total_cputime: Option<f64>,
    #[serde(default)]
    estimated_time_to_regain_access: Option<f64>,
}

impl MetaUsage {
    fn highest(&self) -> Option<f64> {
        [self.call_count, self.total_time, self.total_cputime]
            .into_iter()
            .flatten()
            .filter(|v| v.is_finite())
            .reduce(f64::max)
    }
}

fn reset_in(now: DateTime<Utc>, seconds: f64) -> Option<DateTime<Utc>> {
    (seconds.is_finite() && seconds >= 0.0)
        .then(|| now + ChronoDuration::milliseconds((seconds.min(86_400.0 * 7.0) * 1000.0) as i64))
}

/// Reads a response's quota signals, in the forms the platforms document:
///
/// - Reddit: `X-Ratelimit-Used`, `X-Ratelimit-Remaining`, `X-Ratelimit-Reset` (seconds)
///   (reddit-archive/reddit wiki, "API", rules: the `X-Ratelimit-*` response headers);
/// - Meta: `X-App-Usage` and `X-Business-Use-Case-Usage` (also spelled
///   `X-Business-Use-Case` on some pages), JSON percentages of the allowance, with
///   `estimated_time_to_regain_access` in minutes; the highest value wins
///   (<https://developers.facebook.com/docs/graph-api/overview/rate-limiting>);
/// - `RateLimit-Limit/Remaining/Reset` (IETF draft-ietf-httpapi-ratelimit-headers) and
///   `X-RateLimit-Limit/Remaining/Reset`, the form OFAuth tells clients to track
///   (<https://docs.ofauth.com/reference/rate-limiting>);
/// - a 429's `Retry-After` (RFC 9110 §10.2.3), as a quota used up until then.
///
/// `None` when the response carries none of them. Malformed values are ignored.
pub fn quota_signal(status: u16, headers: &HeaderMap, now: DateTime<Utc>) -> Option<QuotaSignal> {
    let signal = |source: &str| QuotaSignal {
        used_percent: None,
        remaining: None,
        limit: None,
        reset_at: None,
        source: source.to_owned(),
        at: now,
    };
    // Reddit (and the X-RateLimit-Limit form).
    let used = header_f64(headers, &X_RATELIMIT_USED);
    let remaining = header_f64(headers, &X_RATELIMIT_REMAINING)
        .or_else(|| header_f64(headers, &RATELIMIT_REMAINING));
    let limit = header_f64(headers, &X_RATELIMIT_LIMIT)
        .or_else(|| header_f64(headers, &RATELIMIT_LIMIT))
        .or_else(|| Some(used? + remaining?));
    if remaining.is_some() || used.is_some() {
        let mut s = signal(if headers.contains_key(&X_RATELIMIT_REMAINING) {
            "x-ratelimit"
        } else {
            "ratelimit"
        });
        s.remaining = remaining;
        s.limit = limit.filter(|l| *l > 0.0);
        s.used_percent = match (used, remaining, s.limit) {
            (Some(u), _, Some(l)) => Some(u / l * 100.0),
            (None, Some(r), Some(l)) => Some((l - r) / l * 100.0),
            _ => None,
        }
        .map(|p| p.clamp(0.0, 100.0));
        s.reset_at = header_f64(headers, &X_RATELIMIT_RESET)
            .or_else(|| header_f64(headers, &RATELIMIT_RESET))
            .and_then(|secs| reset_in(now, secs));
        return Some(s);
    }
    // Meta.
    let app: Option<MetaUsage> = headers
        .get(&X_APP_USAGE)
        .and_then(|v| serde_json::from_slice(v.as_bytes()).ok());
    let business: Vec<MetaUsage> = BUSINESS_USAGE
        .iter()
        .filter_map(|h| headers.get(h))
        .filter_map(|v| {
            serde_json::from_slice::<HashMap<String, Vec<MetaUsage>>>(v.as_bytes()).ok()
        })
        .flat_map(|m| m.into_values().flatten())
        .collect();
    if app.is_some() || !business.is_empty() {
        let mut s = signal(if business.is_empty() {
            "x-app-usage"
        } else {
            "x-business-use-case-usage"
        });
        s.used_percent = app
            .iter()
            .chain(business.iter())
            .filter_map(MetaUsage::highest)
            .reduce(f64::max)
            .map(|p| p.clamp(0.0, 100.0));
        s.reset_at = business
            .iter()
            .filter_map(|b| b.estimated_time_to_regain_access)
            .filter(|m| *m > 0.0)
            .reduce(f64::max)
            .and_then(|minutes| reset_in(now, minutes * 60.0));
        return Some(s);
    }
    if status == 429 {
        let mut s = signal("retry-after");
        s.used_percent = Some(100.0);
        s.reset_at =
            crate::http::retry_after(headers, now).and_then(|d| reset_in(now, d.as_secs_f64()));
        return Some(s);
    }
    None
}

/// The quota signals a response gives per account: Meta's `X-Business-Use-Case-Usage`
/// is keyed by the business object (for Instagram, the professional account id, which is
/// the account's `provider_account_id`). Empty for platform-wide signals.
pub fn account_quotas(headers: &HeaderMap, now: DateTime<Utc>) -> Vec<(String, QuotaSignal)> {
    BUSINESS_USAGE
        .iter()
        .filter_map(|h| headers.get(h))
        .filter_map(|v| {
            serde_json::from_slice::<HashMap<String, Vec<MetaUsage>>>(v.as_bytes()).ok()
        })
        .flat_map(|m| m.into_iter())
        .filter(|(id, _)| !id.is_empty() && id.len() <= 64)
        .map(|(id, usages)| {
            let signal = QuotaSignal {
                used_percent: usages
                    .iter()
                    .filter_map(MetaUsage::highest)
                    .reduce(f64::max)
                    .map(|p| p.clamp(0.0, 100.0)),
                remaining: None,
                limit: None,
                reset_at: usages
                    .iter()
                    .filter_map(|b| b.estimated_time_to_regain_access)
                    .filter(|m| *m > 0.0)
                    .reduce(f64::max)
                    .and_then(|minutes| reset_in(now, minutes * 60.0)),
                source: "x-business-use-case-usage".to_owned(),
                at: now,
            };
            (id, signal)
        })
        .collect()
}

/// What a recorded call's responses said: how many were read, the newest quota signal
/// and the per-account ones.
#[derive(Debug, Default)]
struct Captured {
    responses: u32,
    quota: Option<QuotaSignal>,
    accounts: Vec<(String, QuotaSignal)>,
}

tokio::task_local! {
    static CAPTURE: Arc<Mutex<Captured>>;
}

/// Called by the provider toolkit's HTTP client with every response: inside a recorded
/// call, counts it and keeps its quota signal.
pub(crate) fn observe_response(status: u16, headers: &HeaderMap) {
    let _ = CAPTURE.try_with(|slot| {
        let now = Utc::now();
        let quota = quota_signal(status, headers, now);
        let accounts = account_quotas(headers, now);
        if let Ok(mut slot) = slot.lock() {
            slot.responses += 1;
            if quota.is_some() {
                slot.quota = quota;
            }
            slot.accounts.extend(accounts);
        }
    });
}

/// Runs `call` in a scope that counts the responses it reads and keeps their newest
/// quota signal.
pub(crate) async fn capture<F: std::future::Future>(
    call: F,
) -> (
    F::Output,
    u32,
    Option<QuotaSignal>,
    Vec<(String, QuotaSignal)>,
) {
    let slot = Arc::new(Mutex::new(Captured::default()));
    let out = CAPTURE.scope(slot.clone(), call).await;
    let captured = slot
        .lock()
        .map(|mut s| std::mem::take(&mut *s))
        .unwrap_or_default();
    (out, captured.responses, captured.quota, captured.accounts)
}

/// Upper bounds, in milliseconds, of the latency histogram's buckets (the last one is
/// open). Percentiles are reported as the upper bound of their bucket.
pub const LATENCY_BOUNDS_MS: [u32; 28] = [
    1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1_000, 1_500, 2_000,
    3_000, 5_000, 7_000, 10_000, 15_000, 20_000, 30_000, 60_000,
];

fn latency_bucket(latency: Duration) -> usize {
    let ms = latency.as_millis();
    LATENCY_BOUNDS_MS
        .iter()
        .position(|b| ms <= u128::from(*b))
        .unwrap_or(LATENCY_BOUNDS_MS.len())
}

/// A failed call, as the health page lists it: codes and messages, never a token (the
/// messages are the library's errors, which are scrubbed of secrets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecentError {
    /// When.
    pub at: DateTime<Utc>,
    /// The call.
    pub kind: CallKind,
    /// Its class.
    pub class: CallClass,
    /// The error code (`provider_unavailable`, `invalid_grant`, `http_503`, ...).
    pub code: String,
    /// The message (at most 300 characters).
    pub message: String,
}

/// The calls of one platform in one minute, as one process saw them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MinuteStats {
    /// Calls by outcome class.
    #[serde(default)]
    pub classes: BTreeMap<CallClass, u64>,
    /// Calls by kind.
    #[serde(default)]
    pub kinds: BTreeMap<CallKind, u64>,
    /// Latency histogram: calls per bucket of [`LATENCY_BOUNDS_MS`] (one more bucket for
    /// longer calls).
    #[serde(default)]
    pub latency: Vec<u64>,
    /// The minute's most recent errors (at most 5).
    #[serde(default)]
    pub errors: Vec<RecentError>,
    /// The minute's newest quota signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaSignal>,
    /// The minute's newest per-account quota signals ([`account_quotas`]), by account.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub account_quotas: BTreeMap<String, QuotaSignal>,
}

impl MinuteStats {
    /// Calls in all.
    pub fn calls(&self) -> u64 {
        self.classes.values().sum()
    }

    fn add(&mut self, other: &Self) {
        for (c, n) in &other.classes {
            *self.classes.entry(*c).or_default() += n;
        }
        for (k, n) in &other.kinds {
            *self.kinds.entry(*k).or_default() += n;
        }
        if self.latency.len() < other.latency.len() {
            self.latency.resize(other.latency.len(), 0);
        }
        for (i, n) in other.latency.iter().enumerate() {
            self.latency[i] += n;
        }
        self.errors.extend(other.errors.iter().cloned());
        if let Some(q) = &other.quota
            && self.quota.as_ref().is_none_or(|mine| mine.at <= q.at)
        {
            self.quota = Some(q.clone());
        }
        for (account, q) in &other.account_quotas {
            if self
                .account_quotas
                .get(account)
                .is_none_or(|mine| mine.at <= q.at)
            {
                self.account_quotas.insert(account.clone(), q.clone());
            }
        }
    }
}

/// One platform's minute, as one process recorded it: a row of the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthMinute {
    /// The platform.
    pub provider: ProviderId,
    /// The minute's start.
    pub minute: DateTime<Utc>,
    /// The recording process ([`HealthRecorder::instance`]).
    pub instance: String,
    /// What it saw.
    pub stats: MinuteStats,
}

/// One finished call, for [`HealthRecorder::record`].
#[derive(Debug, Clone)]
pub struct CallRecord<'a> {
    /// The platform.
    pub provider: &'a ProviderId,
    /// The call.
    pub kind: CallKind,
    /// Its outcome.
    pub class: CallClass,
    /// How long it took.
    pub latency: Duration,
    /// When it ended.
    pub at: DateTime<Utc>,
    /// The error's code and message, for a failure.
    pub error: Option<(String, String)>,
    /// The platform's quota signal on its response.
    pub quota: Option<QuotaSignal>,
    /// Its per-account quota signals ([`account_quotas`]).
    pub account_quotas: Vec<(String, QuotaSignal)>,
}

#[derive(Debug, Default)]
struct Buckets {
    /// Per platform, per minute: the totals, and whether they changed since written.
    /// Keyed so that recording a call allocates nothing once its minute exists.
    minutes: HashMap<ProviderId, BTreeMap<DateTime<Utc>, (MinuteStats, bool)>>,
}

/// This process's recent calls, in one-minute buckets per platform, until they are
/// flushed to the store.
#[derive(Debug)]
pub struct HealthRecorder {
    instance: String,
    buckets: Mutex<Buckets>,
}

impl Default for HealthRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl HealthRecorder {
    /// An empty recorder with a random instance id.
    pub fn new() -> Self {
        let mut bytes = [0u8; 8];
        rand::fill(&mut bytes[..]);
        Self {
            instance: hex::encode(bytes),
            buckets: Mutex::new(Buckets::default()),
        }
    }

    /// The id this process's rows are stored under.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Adds a call to its minute.
    pub fn record(&self, call: CallRecord<'_>) {
        let minute = minute_of(call.at);
        let Ok(mut b) = self.buckets.lock() else {
            return;
        };
        let per_minute = match b.minutes.get_mut(call.provider) {
            Some(m) => m,
            None => b.minutes.entry(call.provider.clone()).or_default(),
        };
        let (stats, dirty) = per_minute.entry(minute).or_default();
        *dirty = true;
        *stats.classes.entry(call.class).or_default() += 1;
        *stats.kinds.entry(call.kind).or_default() += 1;
        if stats.latency.is_empty() {
            stats.latency = vec![0; LATENCY_BOUNDS_MS.len() + 1];
        }
        stats.latency[latency_bucket(call.latency)] += 1;
        if let Some((code, message)) = call.error {
            if stats.errors.len() >= 5 {
                stats.errors.remove(0);
            }
            stats.errors.push(RecentError {
                at: call.at,
                kind: call.kind,
                class: call.class,
                code: code.chars().take(64).collect(),
                message: message.chars().take(300).collect(),
            });
        }
        if let Some(q) = call.quota {
            stats.quota = Some(q);
        }
        for (account, q) in call.account_quotas {
            stats.account_quotas.insert(account, q);
        }
    }

    /// The minutes changed since the last call, as rows to write (their totals so far),
    /// and forgets minutes older than `keep_after` that are written.
    pub fn take_dirty(&self, keep_after: DateTime<Utc>) -> Vec<HealthMinute> {
        let Ok(mut b) = self.buckets.lock() else {
            return Vec::new();
        };
        let mut rows = Vec::new();
        for (provider, per_minute) in &mut b.minutes {
            for (minute, (stats, dirty)) in per_minute.iter_mut() {
                if std::mem::take(dirty) {
                    rows.push(HealthMinute {
                        provider: provider.clone(),
                        minute: *minute,
                        instance: self.instance.clone(),
                        stats: stats.clone(),
                    });
                }
            }
            per_minute.retain(|minute, _| *minute >= keep_after);
        }
        rows.sort_by(|a, b| (a.minute, a.provider.as_str()).cmp(&(b.minute, b.provider.as_str())));
        rows
    }

    /// Marks rows as still to write (after a failed flush).
    pub fn restore_dirty(&self, rows: &[HealthMinute]) {
        if let Ok(mut b) = self.buckets.lock() {
            for r in rows {
                let (_, dirty) = b
                    .minutes
                    .entry(r.provider.clone())
                    .or_default()
                    .entry(r.minute)
                    .or_insert_with(|| (r.stats.clone(), true));
                *dirty = true;
            }
        }
    }
}

/// The start of `at`'s minute.
pub fn minute_of(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(ChronoDuration::minutes(1)).unwrap_or(at)
}

/// A platform's state (see the [module docs](self) for the rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlatformState {
    /// Working.
    Operational,
    /// Working with failures, slowness or a quota nearly used.
    Degraded,
    /// Rate limited: the quota is used up until its reset.
    Throttled,
    /// Most calls fail.
    Failing,
}

/// Totals over a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowStats {
    /// Calls.
    pub calls: u64,
    /// Successful calls.
    pub ok: u64,
    /// `ok / calls` (1 when there were no calls).
    pub success_rate: f64,
    /// Calls by outcome class, failures and rate limits only.
    pub errors: BTreeMap<CallClass, u64>,
    /// Calls by kind.
    pub kinds: BTreeMap<CallKind, u64>,
    /// Median latency (the upper bound of its histogram bucket), when there were calls.
    pub p50_ms: Option<u32>,
    /// 99th percentile latency, likewise.
    pub p99_ms: Option<u32>,
}

impl WindowStats {
    fn of(stats: &MinuteStats) -> Self {
        let calls = stats.calls();
        let ok = stats.classes.get(&CallClass::Ok).copied().unwrap_or(0);
        let percentile = |p: f64| -> Option<u32> {
            let total: u64 = stats.latency.iter().sum();
            if total == 0 {
                return None;
            }
            let rank = ((total as f64) * p).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (i, n) in stats.latency.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    return Some(LATENCY_BOUNDS_MS.get(i).copied().unwrap_or(u32::MAX));
                }
            }
            None
        };
        Self {
            calls,
            ok,
            success_rate: if calls == 0 {
                1.0
            } else {
                ok as f64 / calls as f64
            },
            errors: stats
                .classes
                .iter()
                .filter(|(c, _)| **c != CallClass::Ok)
                .map(|(c, n)| (*c, *n))
                .collect(),
            kinds: stats.kinds.clone(),
            p50_ms: percentile(0.5),
            p99_ms: percentile(0.99),
        }
    }

    fn failures(&self) -> u64 {
        self.errors
            .iter()
            .filter(|(c, _)| c.is_failure())
            .map(|(_, n)| n)
            .sum()
    }
}

/// One minute of a platform's chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeriesPoint {
    /// The minute.
    pub minute: DateTime<Utc>,
    /// Calls.
    pub calls: u64,
    /// Failed calls (not counting rate limits).
    pub errors: u64,
    /// Rate-limited calls.
    pub rate_limited: u64,
    /// The minute's newest quota use, in percent.
    pub quota_percent: Option<f64>,
}

/// One platform's health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformHealth {
    /// The platform.
    pub provider: ProviderId,
    /// Its state.
    pub state: PlatformState,
    /// Why, in a sentence.
    pub reason: String,
    /// The last 15 minutes (what the state is decided on).
    pub last_15m: WindowStats,
    /// The last hour.
    pub last_1h: WindowStats,
    /// The last 24 hours.
    pub last_24h: WindowStats,
    /// The newest quota signal of the last 24 hours.
    pub quota: Option<QuotaSignal>,
    /// The last 60 minutes, one point per minute, oldest first.
    pub series: Vec<SeriesPoint>,
    /// The most recent errors, newest first (at most 10).
    pub recent_errors: Vec<RecentError>,
    /// The accounts with a quota of their own (Meta's business use case), newest signal
    /// each, most used first (at most 10).
    pub account_quotas: Vec<AccountQuota>,
}

/// One account's quota.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountQuota {
    /// The platform's id of the account (Meta's business object id).
    pub account: String,
    /// Its newest signal.
    pub quota: QuotaSignal,
}

impl PlatformState {
    /// The state of a platform from its last 15 minutes, its newest quota signal and
    /// its rate limits of the last 5 minutes (the rule in the [module docs](self)),
    /// with the reason.
    pub fn of(
        last_15m: &WindowStats,
        rate_limited_5m: u64,
        quota: Option<&QuotaSignal>,
        now: DateTime<Utc>,
    ) -> (Self, String) {
        let failures = last_15m.failures();
        if last_15m.calls >= 3 && failures * 2 >= last_15m.calls {
            return (
                Self::Failing,
                format!(
                    "{failures} of the last {} calls failed (15 minutes)",
                    last_15m.calls
                ),
            );
        }
        // A signal counts for an hour, and not past the reset it announced.
        let recent_quota = quota.filter(|q| {
            now - q.at <= ChronoDuration::hours(1) && q.reset_at.is_none_or(|r| r > now)
        });
        if let Some(q) = recent_quota.filter(|q| q.exhausted(now)) {
            let until = q
                .reset_at
                .map(|r| format!(" until {}", r.format("%H:%M:%S UTC")))
                .unwrap_or_default();
            return (Self::Throttled, format!("the quota is used up{until}"));
        }
        if rate_limited_5m > 0 {
            return (
                Self::Throttled,
                format!("{rate_limited_5m} calls were rate limited in the last 5 minutes"),
            );
        }
        if last_15m.calls > 0 && last_15m.success_rate < 0.95 && failures > 0 {
            return (
                Self::Degraded,
                format!(
                    "{:.0}% of the last {} calls succeeded (15 minutes)",
                    last_15m.success_rate * 100.0,
                    last_15m.calls
                ),
            );
        }
        if last_15m.p99_ms.is_some_and(|p| p > 5_000) {
            return (Self::Degraded, "p99 latency is over 5 s".into());
        }
        if let Some(p) = recent_quota
            .and_then(|q| q.used_percent)
            .filter(|p| *p >= 80.0)
        {
            return (Self::Degraded, format!("{p:.0}% of the quota is used"));
        }
        (Self::Operational, "calls succeed".into())
    }
}

/// The health of every platform in `providers`, from the stored rows of the last 24
/// hours (every process's), at `now`.
pub fn report(
    providers: &[ProviderId],
    rows: &[HealthMinute],
    now: DateTime<Utc>,
) -> Vec<PlatformHealth> {
    let this_minute = minute_of(now);
    providers
        .iter()
        .map(|provider| {
            let mine: Vec<&HealthMinute> =
                rows.iter().filter(|r| &r.provider == provider).collect();
            let within = |minutes: i64| {
                let since = this_minute - ChronoDuration::minutes(minutes - 1);
                let mut total = MinuteStats::default();
                for r in mine.iter().filter(|r| r.minute >= since && r.minute <= now) {
                    total.add(&r.stats);
                }
                total
            };
            let (m5, m15, h1, d1) = (within(5), within(15), within(60), within(24 * 60));
            let last_15m = WindowStats::of(&m15);
            let rate_limited_5m = m5
                .classes
                .get(&CallClass::RateLimited)
                .copied()
                .unwrap_or(0);
            let quota = d1.quota.clone();
            let (state, reason) =
                PlatformState::of(&last_15m, rate_limited_5m, quota.as_ref(), now);
            let series = (0..60)
                .rev()
                .map(|ago| {
                    let minute = this_minute - ChronoDuration::minutes(ago);
                    let mut total = MinuteStats::default();
                    for r in mine.iter().filter(|r| r.minute == minute) {
                        total.add(&r.stats);
                    }
                    let w = WindowStats::of(&total);
                    SeriesPoint {
                        minute,
                        calls: w.calls,
                        errors: w.failures(),
                        rate_limited: total
                            .classes
                            .get(&CallClass::RateLimited)
                            .copied()
                            .unwrap_or(0),
                        quota_percent: total.quota.and_then(|q| q.used_percent),
                    }
                })
                .collect();
            let mut recent_errors = d1.errors.clone();
            recent_errors.sort_by_key(|e| std::cmp::Reverse(e.at));
            recent_errors.truncate(10);
            let mut account_quotas: Vec<AccountQuota> = d1
                .account_quotas
                .iter()
                .map(|(account, quota)| AccountQuota {
                    account: account.clone(),
                    quota: quota.clone(),
                })
                .collect();
            account_quotas.sort_by(|a, b| {
                b.quota
                    .used_percent
                    .unwrap_or(0.0)
                    .total_cmp(&a.quota.used_percent.unwrap_or(0.0))
            });
            account_quotas.truncate(10);
            PlatformHealth {
                account_quotas,
                provider: provider.clone(),
                state,
                reason,
                last_15m,
                last_1h: WindowStats::of(&h1),
                last_24h: WindowStats::of(&d1),
                quota,
                series,
                recent_errors,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 12, 30, 30).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn reddit_headers() {
        let q = quota_signal(
            200,
            &headers(&[
                ("x-ratelimit-used", "400"),
                ("x-ratelimit-remaining", "600.0"),
                ("x-ratelimit-reset", "120"),
            ]),
            now(),
        )
        .unwrap();
        assert_eq!(q.source, "x-ratelimit");
        assert_eq!(q.used_percent, Some(40.0));
        assert_eq!(q.limit, Some(1000.0));
        assert_eq!(q.remaining, Some(600.0));
        assert_eq!(q.reset_at, Some(now() + ChronoDuration::seconds(120)));
        assert!(!q.exhausted(now()));
        let used_up = quota_signal(
            429,
            &headers(&[
                ("x-ratelimit-used", "1000"),
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "30"),
            ]),
            now(),
        )
        .unwrap();
        assert!(used_up.exhausted(now()));
        assert!(!used_up.exhausted(now() + ChronoDuration::seconds(31)));
    }

    #[test]
    fn meta_headers_take_the_highest_percentage() {
        let q = quota_signal(
            200,
            &headers(&[
                ("x-app-usage", r#"{"call_count":28,"total_time":25,"total_cputime":25}"#),
                (
                    "x-business-use-case-usage",
                    r#"{"17841405793187218":[{"type":"instagram","call_count":100,"total_cputime":12,"total_time":30,"estimated_time_to_regain_access":7}]}"#,
                ),
            ]),
            now(),
        )
        .unwrap();
        assert_eq!(q.source, "x-business-use-case-usage");
        assert_eq!(q.used_percent, Some(100.0));
        assert_eq!(q.reset_at, Some(now() + ChronoDuration::minutes(7)));
        assert!(q.exhausted(now()));
        let per_account = account_quotas(
            &headers(&[(
                "x-business-use-case-usage",
                r#"{"17841405793187218":[{"type":"instagram","call_count":100,"total_cputime":12,"total_time":30,"estimated_time_to_regain_access":7}],"17841400000000001":[{"type":"instagram","call_count":12,"total_cputime":1,"total_time":3,"estimated_time_to_regain_access":0}]}"#,
            )]),
            now(),
        );
        let mut per_account: Vec<_> = per_account
            .into_iter()
            .map(|(id, q)| (id, q.used_percent, q.reset_at))
            .collect();
        per_account.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            per_account,
            [
                ("17841400000000001".to_owned(), Some(12.0), None),
                (
                    "17841405793187218".to_owned(),
                    Some(100.0),
                    Some(now() + ChronoDuration::minutes(7))
                ),
            ]
        );
        let app = quota_signal(
            200,
            &headers(&[(
                "x-app-usage",
                r#"{"call_count":5,"total_time":81,"total_cputime":2}"#,
            )]),
            now(),
        )
        .unwrap();
        assert_eq!(app.used_percent, Some(81.0));
        assert_eq!(app.reset_at, None);
        // Malformed values are ignored.
        assert_eq!(
            quota_signal(200, &headers(&[("x-app-usage", "{not json")]), now()),
            None
        );
        assert_eq!(quota_signal(200, &HeaderMap::new(), now()), None);
    }

    #[test]
    fn a_429_with_retry_after_is_a_used_up_quota() {
        let q = quota_signal(429, &headers(&[("retry-after", "60")]), now()).unwrap();
        assert_eq!(q.source, "retry-after");
        assert!(q.exhausted(now()));
        assert_eq!(q.reset_at, Some(now() + ChronoDuration::seconds(60)));
        let generic = quota_signal(
            200,
            &headers(&[
                ("ratelimit-limit", "100"),
                ("ratelimit-remaining", "25"),
                ("ratelimit-reset", "10"),
            ]),
            now(),
        )
        .unwrap();
        assert_eq!(generic.source, "ratelimit");
        assert_eq!(generic.used_percent, Some(75.0));
    }

    fn call<'a>(p: &'a ProviderId, class: CallClass, ms: u64, at: DateTime<Utc>) -> CallRecord<'a> {
        CallRecord {
            provider: p,
            kind: CallKind::Refresh,
            class,
            latency: Duration::from_millis(ms),
            at,
            error: (class != CallClass::Ok)
                .then(|| ("provider_unavailable".to_owned(), "HTTP 503".to_owned())),
            quota: None,
            account_quotas: Vec::new(),
        }
    }

    #[test]
    fn recorder_buckets_flush_and_report() {
        let p = ProviderId::new("reddit").unwrap();
        let r = HealthRecorder::new();
        for i in 0..8 {
            r.record(call(&p, CallClass::Ok, 40 + i, now()));
        }
        r.record(call(&p, CallClass::ServerError, 900, now()));
        r.record(call(
            &p,
            CallClass::Ok,
            12,
            now() - ChronoDuration::minutes(20),
        ));
        let rows = r.take_dirty(now() - ChronoDuration::minutes(5));
        assert_eq!(rows.len(), 2);
        assert!(r.take_dirty(now()).is_empty(), "nothing changed since");
        let report = report(std::slice::from_ref(&p), &rows, now());
        let h = &report[0];
        assert_eq!(h.last_15m.calls, 9);
        assert_eq!(h.last_15m.ok, 8);
        assert_eq!(h.last_1h.calls, 10);
        assert_eq!(h.last_15m.errors.get(&CallClass::ServerError), Some(&1));
        assert_eq!(h.last_15m.p50_ms, Some(50));
        assert_eq!(h.last_15m.p99_ms, Some(1_000));
        assert_eq!(h.state, PlatformState::Degraded, "{}", h.reason);
        assert_eq!(h.series.len(), 60);
        assert_eq!(h.series.last().unwrap().calls, 9);
        assert_eq!(h.series.last().unwrap().errors, 1);
        assert_eq!(h.recent_errors.len(), 1);
        assert_eq!(h.recent_errors[0].code, "provider_unavailable");
    }

    #[test]
    fn the_state_rule() {
        let w = |calls: u64, ok: u64, class: CallClass| {
            let mut s = MinuteStats::default();
            s.classes.insert(CallClass::Ok, ok);
            if calls > ok {
                s.classes.insert(class, calls - ok);
            }
            WindowStats::of(&s)
        };
        let t = now();
        use PlatformState::*;
        assert_eq!(
            PlatformState::of(&w(0, 0, CallClass::Ok), 0, None, t).0,
            Operational
        );
        assert_eq!(
            PlatformState::of(&w(10, 10, CallClass::Ok), 0, None, t).0,
            Operational
        );
        assert_eq!(
            PlatformState::of(&w(10, 5, CallClass::ServerError), 0, None, t).0,
            Failing
        );
        assert_eq!(
            PlatformState::of(&w(2, 0, CallClass::ServerError), 0, None, t).0,
            Degraded
        );
        assert_eq!(
            PlatformState::of(&w(10, 9, CallClass::Network), 0, None, t).0,
            Degraded
        );
        // Rate limits make a platform throttled, not failing.
        assert_eq!(
            PlatformState::of(&w(10, 2, CallClass::RateLimited), 8, None, t).0,
            Throttled
        );
        let used_up = QuotaSignal {
            used_percent: Some(100.0),
            remaining: Some(0.0),
            limit: Some(1000.0),
            reset_at: Some(t + ChronoDuration::seconds(90)),
            source: "x-ratelimit".into(),
            at: t,
        };
        let (state, reason) = PlatformState::of(&w(1, 1, CallClass::Ok), 0, Some(&used_up), t);
        assert_eq!(state, Throttled);
        assert!(reason.contains("12:32:00"), "{reason}");
        let nearly = QuotaSignal {
            used_percent: Some(85.0),
            remaining: Some(150.0),
            ..used_up.clone()
        };
        assert_eq!(
            PlatformState::of(&w(1, 1, CallClass::Ok), 0, Some(&nearly), t).0,
            Degraded
        );
        // A used-up quota whose reset passed no longer throttles.
        assert_eq!(
            PlatformState::of(
                &w(1, 1, CallClass::Ok),
                0,
                Some(&used_up),
                t + ChronoDuration::seconds(91)
            )
            .0,
            Operational
        );
    }
}
