//! HTTP plumbing shared by provider crates: a hardened client, size-capped body reads,
//! `Retry-After` parsing, and mapping of RFC 6749 error bodies to [`ProviderError`].

use crate::provider::ProviderError;
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Response, StatusCode};
use std::time::Duration;

/// Default cap on a response body (1 MiB). Token and profile replies are a few KiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;
/// Default request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of an unexpected body is kept in a [`ProviderError::Protocol`].
const BODY_EXCERPT: usize = 512;

/// A `reqwest::Client` with redirects off (token endpoints must never be followed
/// elsewhere), connect and total timeouts, and the given `User-Agent`.
pub fn client(user_agent: &str, timeout: Duration) -> Result<reqwest::Client, ProviderError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(DEFAULT_CONNECT_TIMEOUT.min(timeout))
        .timeout(timeout)
        .user_agent(user_agent)
        .build()
        .map_err(|e| ProviderError::Config(format!("cannot build the HTTP client: {e}")))
}

/// Maps a transport error to [`ProviderError::Network`] (never includes the URL, which
/// may carry a token in its query).
pub fn network_error(err: reqwest::Error) -> ProviderError {
    network_error_ref(&err)
}

/// [`network_error`] without taking the error.
pub(crate) fn network_error_ref(err: &reqwest::Error) -> ProviderError {
    let timeout = err.is_timeout();
    let what = if timeout {
        "the request timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_body() || err.is_decode() {
        "the response body could not be read"
    } else {
        "the request failed"
    };
    ProviderError::Network {
        message: what.to_owned(),
        timeout,
    }
}

/// A response read whole, up to a size cap.
#[derive(Debug)]
pub struct CappedResponse {
    /// HTTP status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// The body (at most the cap).
    pub body: Vec<u8>,
}

impl CappedResponse {
    /// A response from its parts, for classifier tests: `status` must be a valid HTTP
    /// status and `headers` valid header pairs (it panics otherwise).
    pub fn new(status: u16, headers: &[(&'static str, &'static str)], body: &str) -> Self {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(*name, reqwest::header::HeaderValue::from_static(value));
        }
        Self {
            status: StatusCode::from_u16(status).expect("an HTTP status"),
            headers: map,
            body: body.as_bytes().to_vec(),
        }
    }

    /// Parses the body as JSON. On failure the [`ProviderError::Protocol`] keeps neither
    /// the body nor serde's message (which may quote a value), only the position: this
    /// reader cannot know which secrets the request sent, and a platform may echo them.
    /// Use [`json_scrubbed`](Self::json_scrubbed) to keep a scrubbed excerpt.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ProviderError> {
        self.json_secret("JSON")
    }

    /// The start of the body, lossily decoded, for error messages.
    pub fn excerpt(&self) -> String {
        body_excerpt(&self.body)
    }
    /// Parses a success body that carries credentials: on failure the error keeps neither
    /// the body nor serde's message (which may quote a value), only the position.
    pub fn json_secret<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
    ) -> Result<T, ProviderError> {
        serde_json::from_slice(&self.body).map_err(|e| ProviderError::Protocol {
            message: format!(
                "malformed {what} (HTTP {}): {:?} error at line {} column {}",
                self.status.as_u16(),
                e.classify(),
                e.line(),
                e.column()
            ),
            body: None,
        })
    }

    /// Parses a body without credentials, keeping an excerpt on failure with `secrets`
    /// (what the request sent) scrubbed out.
    pub fn json_scrubbed<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        secrets: &[&str],
    ) -> Result<T, ProviderError> {
        serde_json::from_slice(&self.body).map_err(|e| ProviderError::Protocol {
            message: scrub(
                &format!("malformed {what} (HTTP {}): {e}", self.status.as_u16()),
                secrets,
            ),
            body: Some(scrub(&self.excerpt(), secrets)),
        })
    }
}

/// Replaces every occurrence of the given secrets (8 characters or more) in `text` with
/// `[redacted]`.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for s in secrets.iter().filter(|s| s.len() >= 8) {
        out = out.replace(s, "[redacted]");
    }
    out
}

/// Parses `value` as an absolute `http(s)` URL with a host, for provider configuration;
/// errors read `"<provider>: <what> ..."`.
pub fn config_url(provider: &str, value: &str, what: &str) -> Result<url::Url, ProviderError> {
    let url = url::Url::parse(value.trim()).map_err(|e| {
        ProviderError::Config(format!("{provider}: {what} is not an absolute URL: {e}"))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ProviderError::Config(format!(
            "{provider}: {what} must be an http(s) URL"
        )));
    }
    Ok(url)
}

/// A base URL for provider configuration: absolute `http(s)`, no query or fragment,
/// without a trailing `/` (a path prefix is kept).
pub fn config_base_url(provider: &str, value: &str, what: &str) -> Result<String, ProviderError> {
    let url = config_url(provider, value, what)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ProviderError::Config(format!(
            "{provider}: {what} must not have a query or fragment"
        )));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Splits a scope list written with spaces and/or commas.
pub fn split_scopes(value: &str) -> Vec<String> {
    value
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Serde helpers for platform replies.
pub mod wire {
    use serde::de::{self, Deserializer, Visitor};
    use std::fmt;

    /// Deserializes an optional non-negative integer sent as a JSON number (an integer, or
    /// a float without fraction) or a numeric string; `null` is `None`. Use with
    /// `#[serde(default, deserialize_with = "...")]`.
    pub fn lenient_u64<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<u64>, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Option<u64>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative integer")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Some(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v)
                    .map(Some)
                    .map_err(|_| E::custom("a negative number"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < 1e15 {
                    Ok(Some(v as u64))
                } else {
                    Err(E::custom("not a non-negative integer"))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                v.trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| E::custom("not a non-negative integer"))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// The start of a body, lossily decoded.
pub fn body_excerpt(body: &[u8]) -> String {
    let end = body.len().min(BODY_EXCERPT);
    String::from_utf8_lossy(&body[..end]).into_owned()
}

/// Sends a request and reads the body, refusing bodies over `limit` bytes without
/// buffering them (the `Content-Length` is checked first, then the stream is cut).
pub async fn send_capped(
    request: reqwest::RequestBuilder,
    limit: usize,
) -> Result<CappedResponse, ProviderError> {
    let response = request.send().await.map_err(network_error)?;
    read_capped(response, limit).await
}

/// Reads a response body up to `limit` bytes.
pub async fn read_capped(
    mut response: Response,
    limit: usize,
) -> Result<CappedResponse, ProviderError> {
    let status = response.status();
    crate::health::observe_response(status.as_u16(), response.headers());
    let too_big = |n: u64| ProviderError::Protocol {
        message: format!(
            "the response body exceeds the {limit}-byte limit (at least {n} bytes, HTTP {})",
            status.as_u16()
        ),
        body: None,
    };
    if let Some(len) = response.content_length()
        && len > limit as u64
    {
        return Err(too_big(len));
    }
    let headers = response.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(network_error)? {
        if body.len() + chunk.len() > limit {
            return Err(too_big((body.len() + chunk.len()) as u64));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(CappedResponse {
        status,
        headers,
        body,
    })
}

/// Parses `Retry-After` as delta-seconds or an HTTP date (RFC 9110 §10.2.3). A date in the
/// past gives zero.
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// Parses a header holding (possibly fractional) seconds, such as Reddit's
/// `X-Ratelimit-Reset`.
pub fn seconds_header(headers: &HeaderMap, name: &str) -> Option<Duration> {
    let v: f64 = headers.get(name)?.to_str().ok()?.trim().parse().ok()?;
    (v.is_finite() && v >= 0.0).then(|| Duration::from_secs_f64(v.min(86_400.0)))
}

/// Whether `body` is a JSON object with a top-level `error` member (of any type but
/// `null`), read in one pass that builds nothing.
///
/// A successful token reply has none, so a reader can skip the typed error parses (each of
/// which would scan the whole body and then build a "missing field" error) when this is
/// `false`. A body that is not a JSON object answers `true`: the caller's own parses then
/// decide what it is.
///
/// ```
/// use integrations_core::http::has_error_member;
/// assert!(!has_error_member(br#"{"access_token":"a","expires_in":3600}"#));
/// assert!(has_error_member(br#"{"error":"invalid_grant"}"#));
/// assert!(has_error_member(br#"{"data":{},"error":{"code":"ok"}}"#));
/// assert!(!has_error_member(br#"{"error":null}"#));
/// assert!(has_error_member(b"<html>"));
/// ```
pub fn has_error_member(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(default)]
        error: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Probe>(body).map_or(true, |p| p.error.is_some())
}

/// The RFC 6749 §5.2 error body.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct OAuthErrorBody {
    /// The error code.
    pub error: String,
    /// A human-readable description.
    #[serde(default)]
    pub error_description: Option<String>,
}

/// Maps an RFC 6749 error code to a [`ProviderError`].
pub fn oauth_error(code: &str, description: Option<String>) -> ProviderError {
    match code {
        "access_denied" => ProviderError::AccessDenied { description },
        "invalid_grant" => ProviderError::InvalidGrant { description },
        "invalid_client" | "unauthorized_client" => ProviderError::InvalidClient { description },
        "temporarily_unavailable" | "server_error" => ProviderError::Unavailable { status: 503 },
        "rate_limit_exceeded" | "slow_down" => ProviderError::RateLimited { retry_after: None },
        other => ProviderError::Protocol {
            message: format!(
                "OAuth error `{other}`{}",
                description.map(|d| format!(": {d}")).unwrap_or_default()
            ),
            body: None,
        },
    }
}

/// Reddit's (and others') rate-limit reset header: seconds until the window ends.
pub const RATELIMIT_RESET: &str = "x-ratelimit-reset";

/// The common status-based classification: 429 → `RateLimited` (with `Retry-After`, or
/// else [`RATELIMIT_RESET`]), 5xx → `Unavailable`; `None` for other statuses.
pub fn classify_status(response: &CappedResponse, now: DateTime<Utc>) -> Option<ProviderError> {
    let status = response.status;
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Some(ProviderError::RateLimited {
            retry_after: retry_after(&response.headers, now)
                .or_else(|| seconds_header(&response.headers, RATELIMIT_RESET)),
        });
    }
    if status.is_server_error() {
        return Some(ProviderError::Unavailable {
            status: status.as_u16(),
        });
    }
    None
}

/// Classifies a token-endpoint reply: 429/5xx by status, then an RFC 6749 `error` body
/// (even on HTTP 200, as some platforms send), then 401 → `InvalidClient`, other non-2xx
/// → `Protocol`. `Ok(())` means the caller may parse the success body.
pub fn check_token_response(
    response: &CappedResponse,
    now: DateTime<Utc>,
) -> Result<(), ProviderError> {
    if let Some(e) = classify_status(response, now) {
        return Err(e);
    }
    if let Ok(body) = serde_json::from_slice::<OAuthErrorBody>(&response.body) {
        return Err(oauth_error(&body.error, body.error_description));
    }
    if response.status == StatusCode::UNAUTHORIZED {
        return Err(ProviderError::InvalidClient {
            description: Some("HTTP 401 from the token endpoint".into()),
        });
    }
    if !response.status.is_success() {
        return Err(ProviderError::Protocol {
            message: format!("unexpected HTTP {}", response.status.as_u16()),
            body: Some(response.excerpt()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use reqwest::header::HeaderValue;

    fn resp(status: u16, body: &str) -> CappedResponse {
        CappedResponse::new(status, &[], body)
    }

    #[test]
    fn retry_after_seconds_and_date() {
        let now = Utc.with_ymd_and_hms(2015, 10, 21, 7, 27, 0).unwrap();
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("120"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(120)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(60)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
        let mut r = HeaderMap::new();
        r.insert("x-ratelimit-reset", HeaderValue::from_static("42.5"));
        assert_eq!(
            seconds_header(&r, "x-ratelimit-reset"),
            Some(Duration::from_secs_f64(42.5))
        );
    }

    #[test]
    fn token_response_classification() {
        let now = Utc::now();
        assert!(matches!(
            check_token_response(&resp(200, r#"{"error":"invalid_grant"}"#), now),
            Err(ProviderError::InvalidGrant { .. })
        ));
        assert!(matches!(
            check_token_response(&resp(401, ""), now),
            Err(ProviderError::InvalidClient { .. })
        ));
        assert!(matches!(
            check_token_response(&resp(502, "bad gateway"), now),
            Err(ProviderError::Unavailable { status: 502 })
        ));
        assert!(matches!(
            check_token_response(&resp(429, ""), now),
            Err(ProviderError::RateLimited { retry_after: None })
        ));
        assert!(check_token_response(&resp(200, r#"{"access_token":"x"}"#), now).is_ok());
        let e = resp(200, "not json")
            .json::<serde_json::Value>()
            .unwrap_err();
        assert!(matches!(e, ProviderError::Protocol { .. }));
    }

    /// Found by the `reddit_responses` fuzz target: a profile reply that is not valid JSON
    /// and echoes the bearer token kept the token in the error's body excerpt, because
    /// `json` cannot know the request's secrets. It now keeps only the position.
    #[test]
    fn json_errors_keep_no_part_of_the_body() {
        let token = "FUZZSECRET-access-8m1w";
        for body in [
            format!("{{\"id\": \"1w72\", \"name\": \"\u{1}{token}\"}}"),
            format!("{{\"id\": 17, \"name\": [\"{token}\"]}}"),
            format!("<html>{token}</html>"),
        ] {
            #[derive(Debug, serde::Deserialize)]
            #[allow(dead_code)]
            struct Me {
                id: String,
                name: String,
            }
            let e = resp(200, &body).json::<Me>().unwrap_err();
            let text = format!("{e} {e:?}");
            assert!(!text.contains(token), "{text}");
            assert!(
                matches!(&e, ProviderError::Protocol { body: None, message } if message.contains("line 1")),
                "{e:?}"
            );
        }
    }
}
