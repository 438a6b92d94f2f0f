//! Fault injection: latency, 5xx and 429 at a rate, and "fail the next N requests".

use crate::Platform;
use crate::state::Inner;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Standing fault settings for a platform's API endpoints (token, revoke, profile, gateway).
///
/// Rates are applied deterministically: with `server_error_rate = 0.25` exactly every
/// fourth request fails (an accumulator, not a random draw), so tests can count.
/// HTML pages (authorize/consent/link) and `/_sandbox` endpoints are never faulted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Delay added before every API response.
    #[serde(with = "millis", rename = "latency_ms")]
    pub latency: Duration,
    /// Fraction (0.0–1.0) of requests answered with a 5xx.
    pub server_error_rate: f64,
    /// Fraction (0.0–1.0) of requests answered with 429.
    pub rate_limit_rate: f64,
    /// `Retry-After` seconds sent with 429s caused by `rate_limit_rate` (`None` = no header).
    pub retry_after_secs: Option<u64>,
}

/// A single injected failure (see `SandboxHandle::fail_next`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Failure {
    /// A 5xx in the platform's dialect (500 for Instagram/TikTok, 503 for Reddit/gateway).
    ServerError,
    /// A 429 in the platform's dialect, with `Retry-After: <secs>` when given.
    RateLimited {
        /// `Retry-After` seconds; `None` sends no header.
        retry_after_secs: Option<u64>,
    },
}

#[derive(Debug, Default)]
struct FaultState {
    faults: Faults,
    err_acc: f64,
    rl_acc: f64,
    queue: VecDeque<Failure>,
}

impl FaultState {
    fn is_idle(&self) -> bool {
        self.queue.is_empty()
            && self.faults.latency.is_zero()
            && self.faults.server_error_rate <= 0.0
            && self.faults.rate_limit_rate <= 0.0
    }
}

/// Per-platform fault state; `active` lets the hot path skip the lock when nothing is set.
#[derive(Debug, Default)]
pub(crate) struct FaultSlot {
    active: AtomicBool,
    inner: Mutex<FaultState>,
}

impl FaultSlot {
    fn with<R>(&self, f: impl FnOnce(&mut FaultState) -> R) -> R {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let r = f(&mut g);
        self.active.store(!g.is_idle(), Ordering::Release);
        r
    }

    pub(crate) fn set(&self, faults: Faults) {
        self.with(|s| {
            s.faults = Faults {
                server_error_rate: faults.server_error_rate.clamp(0.0, 1.0),
                rate_limit_rate: faults.rate_limit_rate.clamp(0.0, 1.0),
                ..faults
            };
            s.err_acc = 0.0;
            s.rl_acc = 0.0;
        });
    }

    pub(crate) fn get(&self) -> Faults {
        self.with(|s| s.faults.clone())
    }

    pub(crate) fn push(&self, n: usize, failure: Failure) {
        self.with(|s| s.queue.extend(std::iter::repeat_n(failure, n)));
    }

    pub(crate) fn clear(&self) {
        self.with(|s| *s = FaultState::default());
    }

    /// Decides the fate of one request: (latency, failure).
    fn decide(&self) -> (Duration, Option<Failure>) {
        if !self.active.load(Ordering::Acquire) {
            return (Duration::ZERO, None);
        }
        self.with(|s| {
            let latency = s.faults.latency;
            if let Some(f) = s.queue.pop_front() {
                return (latency, Some(f));
            }
            s.err_acc += s.faults.server_error_rate;
            if s.err_acc >= 1.0 - 1e-9 {
                s.err_acc -= 1.0;
                return (latency, Some(Failure::ServerError));
            }
            s.rl_acc += s.faults.rate_limit_rate;
            if s.rl_acc >= 1.0 - 1e-9 {
                s.rl_acc -= 1.0;
                return (
                    latency,
                    Some(Failure::RateLimited {
                        retry_after_secs: s.faults.retry_after_secs,
                    }),
                );
            }
            (latency, None)
        })
    }
}

/// Middleware on each platform's API routes.
pub(crate) async fn fault_layer(
    State((inner, platform)): State<(Arc<Inner>, Platform)>,
    req: Request,
    next: Next,
) -> Response {
    let ps = inner.platform(platform);
    ps.requests.fetch_add(1, Ordering::Relaxed);
    let (latency, failure) = ps.faults.decide();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match failure {
        None => next.run(req).await,
        Some(f) => {
            let mut resp = failure_response(platform, f);
            if matches!(f, Failure::RateLimited { .. }) {
                crate::quota::decorate_rate_limited_fault(&inner, platform, &mut resp);
            }
            resp
        }
    }
}

/// A failure in the platform's dialect.
pub(crate) fn failure_response(platform: Platform, failure: Failure) -> Response {
    let log_id = crate::util::random_hex(12);
    let mut resp = match (platform, failure) {
        // Graph codes 1/2 (unknown / temporary service error, `is_transient`) and 4
        // (application request limit):
        // https://developers.facebook.com/docs/graph-api/guides/error-handling. Meta usually
        // sends throttling errors with HTTP 400/403, not 429 [U]; the sandbox uses 429 so the
        // fault is visible at the HTTP level too.
        (Platform::Instagram, Failure::ServerError) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(serde_json::json!({"error": {
                "message": "An unexpected error has occurred. Please retry your request later.",
                "type": "OAuthException", "is_transient": true, "code": 2,
                "fbtrace_id": log_id}})),
        )
            .into_response(),
        (Platform::Instagram, Failure::RateLimited { .. }) => (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(serde_json::json!({"error": {
                "message": "(#4) Application request limit reached",
                "type": "OAuthException", "is_transient": true, "code": 4,
                "fbtrace_id": log_id}})),
        )
            .into_response(),
        // `internal_error` 500 and `rate_limit_exceeded` 429 in the v2 envelope:
        // https://developers.tiktok.com/doc/tiktok-api-v2-error-handling and
        // https://developers.tiktok.com/doc/tiktok-api-v2-rate-limit (no Retry-After documented).
        (Platform::TikTok, Failure::ServerError) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(serde_json::json!({"data": {}, "error": {
                "code": "internal_error",
                "message": "Something went wrong. Please try again later.",
                "log_id": log_id}})),
        )
            .into_response(),
        (Platform::TikTok, Failure::RateLimited { .. }) => (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(serde_json::json!({"data": {}, "error": {
                "code": "rate_limit_exceeded",
                "message": "The API rate limit was exceeded. Please try again later.",
                "log_id": log_id}})),
        )
            .into_response(),
        // Reddit's 503 "all of our servers are busy" HTML page [S], and 429 with the
        // `X-Ratelimit-*` headers of https://github.com/reddit-archive/reddit/wiki/API.
        (Platform::Reddit, Failure::ServerError) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
            "<!doctype html><html><title>Ow! -- reddit.com</title><body>all of our servers are busy right now. please try again in a minute.</body></html>",
        )
            .into_response(),
        // The `X-Ratelimit-*` values come from the live quota window (`quota.rs`).
        (Platform::Reddit, Failure::RateLimited { .. }) => (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(serde_json::json!({"message": "Too Many Requests", "error": 429})),
        )
            .into_response(),
        // 503 "Network error — retry after delay" and 429 `RATE_LIMIT_EXCEEDED`
        // (https://docs.ofauth.com/reference/error-handling); the page names no type for
        // 5xx answers, so this one is a guess the client must not depend on.
        (Platform::OnlyFans, Failure::ServerError) => crate::onlyfans::gw_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "NETWORK_ERROR",
            "Network error. Retry after delay.",
        ),
        (Platform::OnlyFans, Failure::RateLimited { .. }) => crate::onlyfans::gw_error(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMIT_EXCEEDED",
            "Request rate limit exceeded.",
        ),
    };
    if let Failure::RateLimited {
        retry_after_secs: Some(s),
    } = failure
        && let Ok(v) = HeaderValue::from_str(&s.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}
