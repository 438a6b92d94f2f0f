//! The gateway's wire errors mapped to [`ProviderError`].
//!
//! The gateway answers errors as `{"error": {"code": "...", "message": "..."}}`:
//!
//! | code (usual status) | `ProviderError` |
//! |---|---|
//! | `SESSION_EXPIRED`, `CONNECTION_EXPIRED`, `CONNECTION_NOT_FOUND` (401/404) | `InvalidGrant` (the user must reconnect) |
//! | `INVALID_API_KEY` (401) | `InvalidClient` |
//! | `RATE_LIMIT_EXCEEDED` (429, optional `Retry-After`) | `RateLimited` |
//!
//! Without a known code: 429 → `RateLimited`, 5xx → `Unavailable`, 401/403 →
//! `InvalidClient`, anything else → `Protocol`. Excerpts kept in errors have the API key
//! and the connection id scrubbed.

use crate::config::OnlyFansConfig;
use chrono::Utc;
use integrations_core::ProviderError;
use integrations_core::http::{CappedResponse, retry_after};
use reqwest::StatusCode;

/// Codes meaning the connection is gone and the user must link again.
pub(crate) const RECONNECT_CODES: &[&str] = &[
    "SESSION_EXPIRED",
    "CONNECTION_EXPIRED",
    "CONNECTION_NOT_FOUND",
];

/// Scrubs our credentials out of text taken from a gateway reply.
#[derive(Debug)]
pub(crate) struct Redact(Vec<String>);

impl Redact {
    pub(crate) fn new(config: &OnlyFansConfig, connection_id: Option<&str>) -> Self {
        let mut secrets = vec![config.api_key.expose_secret().to_owned()];
        secrets.extend(connection_id.map(str::to_owned));
        secrets.retain(|s| !s.is_empty());
        Self(secrets)
    }

    pub(crate) fn apply(&self, text: &str) -> String {
        self.0
            .iter()
            .fold(text.to_owned(), |t, s| t.replace(s.as_str(), "[redacted]"))
    }
}

/// `(code, message)` of an error body, if it has one.
fn error_code(body: &[u8]) -> Option<(String, Option<String>)> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    match v.get("error")? {
        serde_json::Value::Object(e) => Some((
            e.get("code")?.as_str()?.to_owned(),
            e.get("message").and_then(|m| m.as_str()).map(str::to_owned),
        )),
        serde_json::Value::String(code) => Some((
            code.clone(),
            v.get("message").and_then(|m| m.as_str()).map(str::to_owned),
        )),
        _ => None,
    }
}

/// Classifies a gateway reply; `Ok(())` for 2xx.
pub(crate) fn check(response: &CappedResponse, redact: &Redact) -> Result<(), ProviderError> {
    let status = response.status;
    if status.is_success() {
        return Ok(());
    }
    let coded = error_code(&response.body);
    let description = coded.as_ref().map(|(code, message)| {
        redact.apply(&match message {
            Some(m) => format!("{code}: {m}"),
            None => code.clone(),
        })
    });
    match coded.as_ref().map(|(c, _)| c.as_str()) {
        Some(c) if RECONNECT_CODES.contains(&c) => {
            return Err(ProviderError::InvalidGrant { description });
        }
        Some("INVALID_API_KEY") => return Err(ProviderError::InvalidClient { description }),
        Some("RATE_LIMIT_EXCEEDED") => {
            return Err(ProviderError::RateLimited {
                retry_after: retry_after(&response.headers, Utc::now()),
            });
        }
        _ => {}
    }
    Err(match status {
        StatusCode::TOO_MANY_REQUESTS => ProviderError::RateLimited {
            retry_after: retry_after(&response.headers, Utc::now()),
        },
        s if s.is_server_error() => ProviderError::Unavailable { status: s.as_u16() },
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ProviderError::InvalidClient {
            description: Some(description.unwrap_or_else(|| {
                format!("the gateway refused the request (HTTP {})", status.as_u16())
            })),
        },
        s => ProviderError::Protocol {
            message: format!("unexpected HTTP {} from the gateway", s.as_u16()),
            body: Some(redact.apply(&response.excerpt())),
        },
    })
}

/// Parses a success body, keeping a scrubbed excerpt on failure.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    response: &CappedResponse,
    redact: &Redact,
) -> Result<T, ProviderError> {
    serde_json::from_slice(&response.body).map_err(|e| ProviderError::Protocol {
        message: format!(
            "malformed JSON from the gateway (HTTP {}, {:?} error at line {} column {})",
            response.status.as_u16(),
            e.classify(),
            e.line(),
            e.column()
        ),
        body: Some(redact.apply(&response.excerpt())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use integrations_core::ClientSecret;
    use reqwest::header::{HeaderMap, HeaderValue};
    use std::time::Duration;

    fn resp(status: u16, body: &str) -> CappedResponse {
        CappedResponse {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn redact() -> Redact {
        let c = OnlyFansConfig::builder()
            .api_key(ClientSecret::new("the-key"))
            .redirect_uri("https://app.example/cb")
            .build()
            .unwrap();
        Redact::new(&c, Some("conn_1"))
    }

    #[test]
    fn codes_map_to_variants() {
        let r = redact();
        for code in RECONNECT_CODES {
            let body = format!(r#"{{"error": {{"code": "{code}", "message": "conn_1 is gone"}}}}"#);
            match check(&resp(401, &body), &r) {
                Err(ProviderError::InvalidGrant {
                    description: Some(d),
                }) => {
                    assert!(d.contains(code));
                    assert!(!d.contains("conn_1"), "{d}");
                }
                other => panic!("{code}: {other:?}"),
            }
        }
        assert!(matches!(
            check(&resp(401, r#"{"error": {"code": "INVALID_API_KEY", "message": "bad key the-key"}}"#), &r),
            Err(ProviderError::InvalidClient { description: Some(d) }) if !d.contains("the-key")
        ));
        let mut limited = resp(429, r#"{"error": {"code": "RATE_LIMIT_EXCEEDED"}}"#);
        limited
            .headers
            .insert("retry-after", HeaderValue::from_static("9"));
        assert!(matches!(
            check(&limited, &r),
            Err(ProviderError::RateLimited { retry_after: Some(d) }) if d == Duration::from_secs(9)
        ));
        assert!(matches!(
            check(&resp(429, ""), &r),
            Err(ProviderError::RateLimited { retry_after: None })
        ));
        assert!(matches!(
            check(&resp(502, "<html>"), &r),
            Err(ProviderError::Unavailable { status: 502 })
        ));
        assert!(matches!(
            check(&resp(418, "teapot conn_1"), &r),
            Err(ProviderError::Protocol { body: Some(b), .. }) if !b.contains("conn_1")
        ));
        assert!(check(&resp(204, ""), &r).is_ok());
    }
}
