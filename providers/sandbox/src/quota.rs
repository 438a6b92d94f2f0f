//! Per-platform API quotas, the usage headers each platform sends, its throttle reply, and
//! the one-call health presets (operational / degraded / throttled / failing).
//!
//! Each platform has one fixed window on the **sandbox clock** (so
//! [`crate::SandboxHandle::advance_clock`] moves it): a length, a limit, and the calls counted
//! in the current window. Every request to a quota-counted route counts one; once the count
//! reaches the limit, further requests get the platform's throttle reply (not counted) until
//! the window ends. Which routes count, per platform:
//!
//! - Instagram: the `graph.instagram.com` routes (`/access_token`, `/refresh_access_token`,
//!   `/me`), where Meta's usage headers apply; not the `api.instagram.com` code exchange.
//! - TikTok: every `open.tiktokapis.com` route (token, revoke, user info).
//! - Reddit: every API route (token and revoke on `www`, `/api/v1/me` on `oauth`).
//! - OnlyFans gateway: the Access API (`/v2/access/…`), the only part OFAuth rate-limits.
//!
//! Formats and sources are cited next to each header writer below. Wire facts are marked as
//! in the contracts: [V] verified in the platform's documents, [S] seen in client code or
//! reports, [U] the sandbox's choice.

use crate::state::Inner;
use crate::{Error, Failure, Faults, Platform};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Milliseconds in a second.
const MS: i64 = 1000;

/// A platform's quota: the window length, the calls allowed in it, and the calls already
/// counted in the current window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaSettings {
    /// Calls allowed per window. `0` throttles every call.
    pub limit: u64,
    /// Window length (at least one second). Serialized as `window_secs`.
    #[serde(with = "secs", rename = "window_secs")]
    pub window: Duration,
    /// Calls already counted in the window that starts now (at most `limit`).
    #[serde(default)]
    pub used: u64,
}

impl QuotaSettings {
    /// The sandbox's default quota for a platform; generous, so that tests and benchmarks
    /// never meet it unless they ask to:
    ///
    /// - Instagram: 10 000 calls per rolling hour. Meta's usage headers are percentages of
    ///   an allowance that depends on the app's users (`200 × users` per hour) or, for the
    ///   Instagram Platform, impressions (`4800 × impressions` per 24 h)
    ///   (<https://developers.facebook.com/docs/graph-api/overview/rate-limiting>); the
    ///   figure is the sandbox's \[U\].
    /// - TikTok: 1 000 000 calls per minute. TikTok documents 600 requests per minute per
    ///   endpoint (<https://developers.tiktok.com/doc/tiktok-api-v2-rate-limit>); the sandbox
    ///   counts all endpoints together and keeps the default far above the refresh
    ///   benchmarks' pace. Set 600 to reproduce the documented figure.
    /// - Reddit: 1000 calls per 600 s, i.e. 100 queries per minute per OAuth client averaged
    ///   over ten minutes (Reddit's 2023 Data API terms, r/redditdev admin posts \[S\]; the
    ///   ten-minute window is the one announced with the headers, see `docs/sandbox.md`).
    /// - OnlyFans gateway: 1000 calls per minute. OFAuth documents 60 requests per minute
    ///   with a burst of 90, per connection, on the Access API
    ///   (<https://docs.ofauth.com/reference/rate-limiting>); set 90 / 60 s to reproduce it.
    pub fn default_for(platform: Platform) -> Self {
        let (limit, window) = match platform {
            Platform::Instagram => (10_000, 3_600),
            Platform::TikTok => (1_000_000, 60),
            Platform::Reddit => (1_000, 600),
            Platform::OnlyFans => (1_000, 60),
        };
        Self {
            limit,
            window: Duration::from_secs(window),
            used: 0,
        }
    }
}

/// A platform's quota as it stands (what `GET /_sandbox/{platform}/quota` answers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaState {
    /// The platform.
    pub platform: Platform,
    /// Calls counted in the current window.
    pub used: u64,
    /// Calls allowed per window.
    pub limit: u64,
    /// `limit - used`.
    pub remaining: u64,
    /// Window length in seconds.
    pub window_secs: u64,
    /// When the current window ends, in unix seconds on the sandbox clock (rounded up).
    pub reset_at: i64,
    /// Seconds from now (sandbox clock) until the window ends, rounded up.
    pub reset_in_secs: u64,
    /// Whether the next counted call is throttled (`used >= limit`).
    pub exhausted: bool,
}

/// A platform's health, as the integration health dashboard names it. Each value is a preset
/// of the standing [`Faults`] and of the quota usage; see [`PlatformHealth::faults`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlatformHealth {
    /// No faults, quota usage back to zero.
    Operational,
    /// 30 % of API calls answer 5xx and every call is 800 ms slower; quota usage zero.
    Degraded,
    /// No faults; the quota is exhausted, so calls get the platform's throttle reply until
    /// the window ends.
    Throttled,
    /// Every API call answers 5xx; quota usage zero.
    Failing,
}

impl PlatformHealth {
    /// All values, in order.
    pub const ALL: [PlatformHealth; 4] = [
        PlatformHealth::Operational,
        PlatformHealth::Degraded,
        PlatformHealth::Throttled,
        PlatformHealth::Failing,
    ];

    /// The lowercase name used in URLs (`operational`, `degraded`, `throttled`, `failing`).
    pub fn as_str(self) -> &'static str {
        match self {
            PlatformHealth::Operational => "operational",
            PlatformHealth::Degraded => "degraded",
            PlatformHealth::Throttled => "throttled",
            PlatformHealth::Failing => "failing",
        }
    }

    /// The standing faults of the preset: none for operational and throttled;
    /// `server_error_rate 0.3` and `latency 800 ms` for degraded; `server_error_rate 1.0`
    /// for failing. Rates use the faults' deterministic accumulator.
    pub fn faults(self) -> Faults {
        match self {
            PlatformHealth::Operational | PlatformHealth::Throttled => Faults::default(),
            PlatformHealth::Degraded => Faults {
                latency: Duration::from_millis(800),
                server_error_rate: 0.3,
                ..Faults::default()
            },
            PlatformHealth::Failing => Faults {
                server_error_rate: 1.0,
                ..Faults::default()
            },
        }
    }
}

impl fmt::Display for PlatformHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PlatformHealth {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        PlatformHealth::ALL
            .into_iter()
            .find(|h| h.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::InvalidQuota(format!("unknown health state {s}")))
    }
}

#[derive(Debug)]
struct Window {
    limit: u64,
    window_ms: i64,
    used: u64,
    start_ms: i64,
}

impl Window {
    /// Starts a new window when the current one has ended.
    fn roll(&mut self, now: i64) {
        if now >= self.start_ms.saturating_add(self.window_ms) {
            self.start_ms = now;
            self.used = 0;
        }
    }

    fn snapshot(&self, now: i64) -> Snapshot {
        let end = self.start_ms.saturating_add(self.window_ms);
        Snapshot {
            used: self.used,
            limit: self.limit,
            end_ms: end,
            reset_in_ms: end.saturating_sub(now).max(0),
        }
    }
}

/// The quota as one request saw it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Snapshot {
    used: u64,
    limit: u64,
    end_ms: i64,
    reset_in_ms: i64,
}

impl Snapshot {
    fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }

    fn exhausted(&self) -> bool {
        self.used >= self.limit
    }

    /// Seconds until the window ends, rounded up.
    fn reset_secs(&self) -> u64 {
        u64::try_from((self.reset_in_ms + MS - 1) / MS).unwrap_or(0)
    }

    /// Whole-number percentage of the allowance used (100 once exhausted).
    fn percent(&self) -> u64 {
        if self.limit == 0 || self.exhausted() {
            return 100;
        }
        // u128: no overflow for any u64 pair; below 100 while used < limit.
        u64::try_from(u128::from(self.used) * 100 / u128::from(self.limit)).unwrap_or(100)
    }

    fn state(&self, platform: Platform, window_ms: i64) -> QuotaState {
        QuotaState {
            platform,
            used: self.used,
            limit: self.limit,
            remaining: self.remaining(),
            window_secs: u64::try_from(window_ms / MS).unwrap_or(0),
            reset_at: (self.end_ms + MS - 1).div_euclid(MS),
            reset_in_secs: self.reset_secs(),
            exhausted: self.exhausted(),
        }
    }
}

/// One platform's quota window, behind a mutex held for a few integer operations.
#[derive(Debug)]
pub(crate) struct QuotaSlot {
    window: Mutex<Window>,
}

impl QuotaSlot {
    pub(crate) fn new(platform: Platform) -> Self {
        let d = QuotaSettings::default_for(platform);
        Self {
            window: Mutex::new(Window {
                limit: d.limit,
                window_ms: crate::state::dur_ms(d.window),
                used: 0,
                start_ms: 0,
            }),
        }
    }

    fn with<R>(&self, now: i64, f: impl FnOnce(&mut Window) -> R) -> R {
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        w.roll(now);
        f(&mut w)
    }

    /// Replaces limit, window and usage; the new window starts now.
    pub(crate) fn set(&self, settings: &QuotaSettings, now: i64) -> Result<(), Error> {
        if settings.window < Duration::from_secs(1) {
            return Err(Error::InvalidQuota(
                "the window must be at least one second".to_owned(),
            ));
        }
        if settings.used > settings.limit {
            return Err(Error::InvalidQuota(format!(
                "used ({}) exceeds limit ({})",
                settings.used, settings.limit
            )));
        }
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        *w = Window {
            limit: settings.limit,
            window_ms: crate::state::dur_ms(settings.window),
            used: settings.used,
            start_ms: now,
        };
        Ok(())
    }

    /// Uses up the current window (its end does not move).
    pub(crate) fn exhaust(&self, now: i64) {
        self.with(now, |w| w.used = w.limit);
    }

    /// Usage back to zero, in a new window starting now.
    pub(crate) fn reset(&self, now: i64) {
        self.with(now, |w| {
            w.used = 0;
            w.start_ms = now;
        });
    }

    pub(crate) fn state(&self, platform: Platform, now: i64) -> QuotaState {
        self.with(now, |w| w.snapshot(now).state(platform, w.window_ms))
    }

    /// Counts one call: `Ok` with the usage after it, or `Err` (not counted) when exhausted.
    fn take(&self, now: i64) -> Result<Snapshot, Snapshot> {
        self.with(now, |w| {
            if w.used >= w.limit {
                return Err(w.snapshot(now));
            }
            w.used += 1;
            Ok(w.snapshot(now))
        })
    }

    fn peek(&self, now: i64) -> Snapshot {
        self.with(now, |w| w.snapshot(now))
    }
}

fn set_header(h: &mut HeaderMap, name: &'static str, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        h.insert(name, v);
    }
}

/// Reddit: `X-Ratelimit-Used` (integer), `X-Ratelimit-Remaining` (a float, `596.0`) and
/// `X-Ratelimit-Reset` (integer seconds to the end of the period) on API responses
/// ([V] <https://github.com/reddit-archive/reddit/wiki/API>: "Approximate number of requests
/// used in this period / left to use / seconds to end of period"; the float form and the
/// ten-minute window: praw-dev/prawcore `prawcore/rate_limit.py` and the announcement
/// "Formal ratelimiting headers", r/redditdev, 2014-02-25 [S]). The token server sends them
/// too (Pyprohly/reddit-api-doc-notes, rate limits [S]).
fn reddit_headers(h: &mut HeaderMap, s: &Snapshot, remaining: u64) {
    set_header(h, "x-ratelimit-used", s.used.to_string());
    set_header(h, "x-ratelimit-remaining", format!("{remaining}.0"));
    set_header(h, "x-ratelimit-reset", s.reset_secs().to_string());
}

/// Meta Graph usage headers
/// ([V] <https://developers.facebook.com/docs/graph-api/overview/rate-limiting>):
/// `X-App-Usage: {"call_count":N,"total_time":N,"total_cputime":N}`, whole-number
/// percentages of the rolling allowance, and
/// `X-Business-Use-Case-Usage: {"<id>":[{"type":"instagram","call_count":N,
/// "total_cputime":N,"total_time":N,"estimated_time_to_regain_access":<minutes>}]}` keyed by
/// the business object id, here the Instagram professional account id (`user_id`). Whether
/// `graph.instagram.com` sends them is not confirmed [U]; the sandbox does. It has no CPU
/// or time accounting, so all three percentages are the call count's [U]; the BUC entry is
/// left out when the request names no known token. `estimated_time_to_regain_access` is 0
/// below 100 % and otherwise the minutes to the window's end, at least 1.
fn meta_headers(h: &mut HeaderMap, s: &Snapshot, account: Option<u64>) {
    let pct = s.percent();
    set_header(
        h,
        "x-app-usage",
        format!(r#"{{"call_count":{pct},"total_time":{pct},"total_cputime":{pct}}}"#),
    );
    if let Some(id) = account {
        let regain = if pct >= 100 {
            s.reset_secs().div_ceil(60).max(1)
        } else {
            0
        };
        set_header(
            h,
            "x-business-use-case-usage",
            format!(
                r#"{{"{id}":[{{"type":"instagram","call_count":{pct},"total_cputime":{pct},"total_time":{pct},"estimated_time_to_regain_access":{regain}}}]}}"#
            ),
        );
    }
}

/// OFAuth: "Track the `X-RateLimit-*` response headers … Watch the `X-RateLimit-Reset`
/// header to know when full capacity returns" ([V] names,
/// <https://docs.ofauth.com/reference/rate-limiting>). The page names the family and
/// `X-RateLimit-Reset` but shows no values: `X-RateLimit-Limit` and `X-RateLimit-Remaining`
/// (integers) are the usual members of that family, and `X-RateLimit-Reset` is sent as
/// integer seconds until the window ends, not a timestamp [U].
fn ofauth_headers(h: &mut HeaderMap, s: &Snapshot, remaining: u64) {
    set_header(h, "x-ratelimit-limit", s.limit.to_string());
    set_header(h, "x-ratelimit-remaining", remaining.to_string());
    set_header(h, "x-ratelimit-reset", s.reset_secs().to_string());
}

/// The usage headers of a platform on a response (TikTok sends none: its rate-limit page
/// documents only the 429, <https://developers.tiktok.com/doc/tiktok-api-v2-rate-limit>).
fn usage_headers(platform: Platform, h: &mut HeaderMap, s: &Snapshot, account: Option<u64>) {
    match platform {
        Platform::Reddit => reddit_headers(h, s, s.remaining()),
        Platform::Instagram => meta_headers(h, s, account),
        Platform::OnlyFans => ofauth_headers(h, s, s.remaining()),
        Platform::TikTok => {}
    }
}

/// The platform's reply once the quota is used up.
fn throttled(platform: Platform, s: &Snapshot, account: Option<u64>) -> Response {
    let mut resp = match platform {
        // Instagram Platform requests fall under Business Use Case limits; their throttle
        // error is code 80002 ([V] rate-limiting page, "Instagram Platform ... error code
        // 80002"; message as Meta's BUC errors word it [S]). Meta sends throttling errors as
        // HTTP 400 with `is_transient: true` (e.g. arsduo/koala#329 "[HTTP 400]" and the
        // code-4 bodies in nygardk/react-share#70 [S]).
        Platform::Instagram => crate::common::json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": {
                "message": "There have been too many calls to this Instagram account. Wait a bit and try again.",
                "type": "OAuthException",
                "is_transient": true,
                "code": 80002,
                "fbtrace_id": crate::util::random_hex(11),
            }}),
        ),
        // TikTok: 429 `rate_limit_exceeded` in the v2 envelope; Reddit: 429 with its JSON
        // body; OFAuth: 429 `RATE_LIMIT_EXCEEDED` (sources at `faults::failure_response`).
        _ => crate::faults::failure_response(
            platform,
            Failure::RateLimited {
                retry_after_secs: None,
            },
        ),
    };
    let h = resp.headers_mut();
    match platform {
        Platform::Reddit => reddit_headers(h, s, 0),
        Platform::Instagram => meta_headers(h, s, account),
        Platform::OnlyFans => ofauth_headers(h, s, 0),
        Platform::TikTok => {}
    }
    resp
}

/// Sets the quota headers of an injected 429 (a `Failure::RateLimited` fault) from the
/// live window, with nothing remaining: Reddit's `X-Ratelimit-*` and OFAuth's
/// `X-RateLimit-*`. Other platforms are left as they are.
pub(crate) fn decorate_rate_limited_fault(inner: &Inner, platform: Platform, resp: &mut Response) {
    if !matches!(platform, Platform::Reddit | Platform::OnlyFans) {
        return;
    }
    let s = inner.platform(platform).quota.peek(inner.now_ms());
    let h = resp.headers_mut();
    match platform {
        Platform::Reddit => reddit_headers(h, &s, 0),
        _ => ofauth_headers(h, &s, 0),
    }
}

/// The Instagram professional account id behind the request's token (`access_token` query
/// parameter or `Authorization` header), live or not.
fn instagram_account(inner: &Inner, req: &Request) -> Option<u64> {
    let query = crate::util::parse_form(req.uri().query().unwrap_or_default().as_bytes());
    let token = query
        .get("access_token")
        .map(String::as_str)
        .filter(|t| !t.is_empty())
        .or_else(|| crate::common::bearer(req.headers()))?;
    let store = inner.platform(Platform::Instagram).lock();
    let grant = store.access.get(token)?.grant;
    let user = store.grants.get(&grant)?.user.clone();
    drop(store);
    Some(crate::users::instagram_user_id(&user))
}

/// Middleware on each platform's quota-counted routes (inside the fault layer, so injected
/// faults are decided first and are not counted).
pub(crate) async fn quota_layer(
    State((inner, platform)): State<(Arc<Inner>, Platform)>,
    req: Request,
    next: Next,
) -> Response {
    let account = if platform == Platform::Instagram {
        instagram_account(&inner, &req)
    } else {
        None
    };
    match inner.platform(platform).quota.take(inner.now_ms()) {
        Err(s) => throttled(platform, &s, account),
        Ok(s) => {
            let mut resp = next.run(req).await;
            usage_headers(platform, resp.headers_mut(), &s, account);
            resp
        }
    }
}

mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs(u64::deserialize(d)?))
    }
}
