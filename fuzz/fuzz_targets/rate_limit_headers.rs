//! `Retry-After` and the platforms' rate-limit headers: `http::retry_after` (delta
//! seconds or an HTTP date), `http::seconds_header` (Reddit's fractional
//! `X-Ratelimit-Reset`) and `http::classify_status` on any status.
//!
//! Properties: delta seconds are read exactly; a date gives its distance from now (zero
//! once past); a seconds header is never negative nor above a day; 429 is `RateLimited`
//! with `Retry-After`, else the reset header; 5xx is `Unavailable` with its status;
//! anything else is left to the caller; both are transient.
#![no_main]

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use integrations_core::ProviderError;
use integrations_core::http::{self, RATELIMIT_RESET};
use integrations_fuzz::input::Reader;
use integrations_fuzz::reply::Reply;
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    // Now: any second of 1970 to about 2106.
    let offset = u32::from(r.u16()) | (u32::from(r.u16()) << 16);
    let now: DateTime<Utc> = Utc.timestamp_opt(0, 0).unwrap() + TimeDelta::seconds(offset.into());
    let reply = Reply::read(&mut r);
    let response = reply.capped();
    let headers = &response.headers;

    let retry = http::retry_after(headers, now);
    if let Some(value) = headers.get("retry-after").and_then(|v| v.to_str().ok()) {
        let value = value.trim();
        if let Ok(secs) = value.parse::<u64>() {
            assert_eq!(retry, Some(Duration::from_secs(secs)));
        } else if let Ok(at) = DateTime::parse_from_rfc2822(value) {
            let expected = (at.with_timezone(&Utc) - now)
                .to_std()
                .unwrap_or(Duration::ZERO);
            assert_eq!(retry, Some(expected));
        } else {
            assert_eq!(retry, None);
        }
    } else {
        assert_eq!(retry, None);
    }

    let reset = http::seconds_header(headers, RATELIMIT_RESET);
    if let Some(d) = reset {
        assert!(d <= Duration::from_secs(86_400), "a reset of {d:?}");
    }

    let classified = http::classify_status(&response, now);
    match reply.status {
        429 => assert_eq!(
            classified,
            Some(ProviderError::RateLimited {
                retry_after: retry.or(reset)
            })
        ),
        500..=599 => assert_eq!(
            classified,
            Some(ProviderError::Unavailable {
                status: reply.status
            })
        ),
        _ => assert_eq!(classified, None),
    }
    if let Some(e) = classified {
        assert!(e.is_transient());
        assert_eq!(
            e.retry_after(),
            if reply.status == 429 {
                retry.or(reset)
            } else {
                None
            }
        );
    }
});
