//! The gateway's wire errors mapped to [`ProviderError`].
//!
//! OFAuth answers errors as `{"error": "<human-readable text>", "type": "<TYPE>",
//! "requestId": "req_…", "actionRequired": "…"}`
//! (<https://docs.ofauth.com/reference/error-handling>); an earlier version of that page
//! names the machine-readable field `code` instead of `type`, so both are read. The
//! `error` field is text for people, never a code.
//!
//! | type (documented status) | `ProviderError` |
//! |---|---|
//! | `SESSION_EXPIRED`, `SESSION_NOT_PROVIDED` (401; "re-authenticate user via Link") | `InvalidGrant` (the user must link again) |
//! | `UNAUTHORIZED` (401, missing or invalid API key) | `InvalidClient` |
//! | `RULES_OUTDATED` (401; "retry — OFAuth handles this automatically") | `Unavailable` (transient) |
//! | `RATE_LIMIT_EXCEEDED` (429, optional `Retry-After`) | `RateLimited` |
//!
//! Without a known type: 429 → `RateLimited`, 5xx → `Unavailable`, 401/403 →
//! `InvalidClient`, anything else → `Protocol`. Excerpts kept in errors have the API key
//! and the connection id scrubbed (by [`integrations_core::client::check`]).

use chrono::Utc;
use integrations_core::ProviderError;
use integrations_core::client::{Classify, scrub_error};
use integrations_core::http::{CappedResponse, retry_after};
use reqwest::StatusCode;

/// Types meaning the connection is gone or expired and the user must link again.
pub(crate) const RECONNECT_TYPES: &[&str] = &["SESSION_EXPIRED", "SESSION_NOT_PROVIDED"];

/// A gateway error body: the machine-readable type and the text for people.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct GatewayError {
    pub(crate) kind: Option<String>,
    pub(crate) message: Option<String>,
}

/// Reads an error body; `None` when it is not the documented JSON object.
pub(crate) fn gateway_error(body: &[u8]) -> Option<GatewayError> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = |name: &str| {
        v.get(name)
            .and_then(|f| f.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let kind = text("type").or_else(|| text("code"));
    let message = text("error").or_else(|| text("message"));
    (kind.is_some() || message.is_some()).then_some(GatewayError { kind, message })
}

/// The gateway's endpoints, for [`Classify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// Link sessions and account-scoped calls: any non-2xx is an error.
    Api,
    /// `DELETE {connection_path}`: a connection the gateway no longer has
    /// (`RESOURCE_NOT_FOUND`) is already disconnected; any other refusal, including a 404
    /// for an unknown route, is an error.
    Delete,
}

impl Classify for Endpoint {
    /// Maps a non-2xx reply to its [`ProviderError`] (the table in the module docs).
    /// Secrets are scrubbed by [`integrations_core::client::check`].
    fn classify(self, response: &CappedResponse) -> Option<ProviderError> {
        let status = response.status;
        if status.is_success() {
            return None;
        }
        let parsed = gateway_error(&response.body);
        let kind = parsed.as_ref().and_then(|e| e.kind.as_deref());
        if self == Self::Delete
            && status == StatusCode::NOT_FOUND
            && kind == Some("RESOURCE_NOT_FOUND")
        {
            return None;
        }
        let description = parsed.as_ref().map(|e| match (&e.kind, &e.message) {
            (Some(k), Some(m)) => format!("{k}: {m}"),
            (Some(k), None) => k.clone(),
            (None, Some(m)) => m.clone(),
            (None, None) => String::new(),
        });
        let rate_limited = || ProviderError::RateLimited {
            retry_after: retry_after(&response.headers, Utc::now()),
        };
        Some(match kind {
            Some(t) if RECONNECT_TYPES.contains(&t) => ProviderError::InvalidGrant { description },
            Some("UNAUTHORIZED") => ProviderError::InvalidClient { description },
            Some("RULES_OUTDATED") => ProviderError::Unavailable {
                status: status.as_u16(),
            },
            Some("RATE_LIMIT_EXCEEDED") => rate_limited(),
            _ => match status {
                StatusCode::TOO_MANY_REQUESTS => rate_limited(),
                s if s.is_server_error() => ProviderError::Unavailable { status: s.as_u16() },
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ProviderError::InvalidClient {
                    description: Some(description.unwrap_or_else(|| {
                        format!("the gateway refused the request (HTTP {})", status.as_u16())
                    })),
                },
                s => ProviderError::Protocol {
                    message: format!("unexpected HTTP {} from the gateway", s.as_u16()),
                    body: Some(response.excerpt()),
                },
            },
        })
    }
}

/// Classifies with `Endpoint::Api` and scrubs `secrets`: what the tests and
/// `Provider::api_error` read.
pub(crate) fn check(response: &CappedResponse, secrets: &[&str]) -> Result<(), ProviderError> {
    match Endpoint::Api.classify(response) {
        Some(e) => Err(scrub_error(e, secrets)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};
    use std::time::Duration;

    const KEY: &str = "the-api-key-123";
    const CONN: &str = "conn_abc123def456";
    const SECRETS: &[&str] = &[KEY, CONN];

    fn resp(status: u16, body: &str) -> CappedResponse {
        CappedResponse {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    /// The documented body, with the type under `type` or (older page) `code`.
    fn body(field: &str, kind: &str, text: &str) -> String {
        format!(r#"{{"error": "{text}", "{field}": "{kind}", "requestId": "req_abc123"}}"#)
    }

    #[test]
    fn reads_type_and_the_older_code_field() {
        for field in ["type", "code"] {
            let e = gateway_error(
                body(field, "SESSION_EXPIRED", "User session has expired").as_bytes(),
            )
            .unwrap();
            assert_eq!(e.kind.as_deref(), Some("SESSION_EXPIRED"));
            assert_eq!(e.message.as_deref(), Some("User session has expired"));
        }
        assert_eq!(gateway_error(b"<html>"), None);
        assert_eq!(gateway_error(b"{}"), None);
    }

    #[test]
    fn reauthentication_types_are_invalid_grant() {
        for field in ["type", "code"] {
            for kind in RECONNECT_TYPES {
                let text = format!("Connection {CONN} not found, re-authenticate user via Link");
                match check(&resp(401, &body(field, kind, &text)), SECRETS) {
                    Err(ProviderError::InvalidGrant {
                        description: Some(d),
                    }) => {
                        assert!(d.starts_with(kind), "{d}");
                        assert!(!d.contains(CONN), "{d}");
                    }
                    other => panic!("{field} {kind}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn other_types_and_statuses() {
        assert!(matches!(
            check(&resp(401, &body("type", "UNAUTHORIZED", &format!("bad key {KEY}"))), SECRETS),
            Err(ProviderError::InvalidClient { description: Some(d) }) if !d.contains(KEY)
        ));
        assert!(matches!(
            check(
                &resp(
                    401,
                    &body("type", "RULES_OUTDATED", "Dynamic rules need updating")
                ),
                SECRETS
            ),
            Err(ProviderError::Unavailable { status: 401 })
        ));
        let mut limited = resp(429, &body("type", "RATE_LIMIT_EXCEEDED", "Slow down"));
        limited
            .headers
            .insert("retry-after", HeaderValue::from_static("9"));
        assert!(matches!(
            check(&limited, SECRETS),
            Err(ProviderError::RateLimited { retry_after: Some(d) }) if d == Duration::from_secs(9)
        ));
        assert!(matches!(
            check(&resp(429, ""), SECRETS),
            Err(ProviderError::RateLimited { retry_after: None })
        ));
        assert!(matches!(
            check(&resp(502, "<html>"), SECRETS),
            Err(ProviderError::Unavailable { status: 502 })
        ));
        // A 401 without a type is the API key (the documented UNAUTHORIZED), not the user.
        assert!(matches!(
            check(&resp(401, ""), SECRETS),
            Err(ProviderError::InvalidClient { .. })
        ));
        assert!(matches!(
            check(&resp(418, &format!("teapot {CONN}")), SECRETS),
            Err(ProviderError::Protocol { body: Some(b), .. }) if !b.contains(CONN)
        ));
        assert!(check(&resp(204, ""), SECRETS).is_ok());
    }
}
