//! Wire errors mapped to [`ProviderError`]; the mapping is documented at the crate root.

use chrono::Utc;
use integrations_core::ProviderError;
pub(crate) use integrations_core::http::scrub;
use integrations_core::http::{
    CappedResponse, body_excerpt, classify_status, oauth_error, retry_after,
};
use reqwest::StatusCode;
use serde::Deserialize;

/// The token-endpoint error body.
#[derive(Debug, Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    log_id: Option<String>,
}

/// The `error` object of the data-endpoint envelope.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ApiError {
    pub(crate) code: String,
    #[serde(default)]
    pub(crate) message: Option<String>,
    #[serde(default)]
    pub(crate) log_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Envelope {
    error: ApiError,
}

fn with_log_id(text: Option<String>, log_id: Option<&str>) -> Option<String> {
    match (
        text.filter(|t| !t.is_empty()),
        log_id.filter(|l| !l.is_empty()),
    ) {
        (Some(t), Some(l)) => Some(format!("{t} (log_id {l})")),
        (None, Some(l)) => Some(format!("log_id {l}")),
        (t, None) => t,
    }
}

fn scrub_error(err: ProviderError, secrets: &[&str]) -> ProviderError {
    let s = |d: Option<String>| d.map(|d| scrub(&d, secrets));
    match err {
        ProviderError::AccessDenied { description } => ProviderError::AccessDenied {
            description: s(description),
        },
        ProviderError::InvalidGrant { description } => ProviderError::InvalidGrant {
            description: s(description),
        },
        ProviderError::InvalidClient { description } => ProviderError::InvalidClient {
            description: s(description),
        },
        ProviderError::Protocol { message, body } => ProviderError::Protocol {
            message: scrub(&message, secrets),
            body: s(body),
        },
        other => other,
    }
}

/// Checks a token or revoke reply; `None` means the caller may read the success body.
pub(crate) fn check_token_reply(
    response: &CappedResponse,
    secrets: &[&str],
) -> Option<ProviderError> {
    if let Some(e) = classify_status(response, Utc::now()) {
        return Some(e);
    }
    if let Ok(e) = serde_json::from_slice::<TokenError>(&response.body) {
        let description = with_log_id(e.error_description, e.log_id.as_deref());
        let mapped = match oauth_error(&e.error, description) {
            // Keep any Retry-After TikTok may add to a rate-limit error.
            ProviderError::RateLimited { .. } => ProviderError::RateLimited {
                retry_after: retry_after(&response.headers, Utc::now()),
            },
            other => other,
        };
        return Some(scrub_error(mapped, secrets));
    }
    if let Ok(Envelope { error }) = serde_json::from_slice::<Envelope>(&response.body)
        && error.code != "ok"
    {
        return Some(map_api_error(&error, response, secrets));
    }
    if response.status == StatusCode::UNAUTHORIZED {
        return Some(ProviderError::InvalidClient {
            description: Some("HTTP 401 from the token endpoint".into()),
        });
    }
    if !response.status.is_success() {
        return Some(ProviderError::Protocol {
            message: format!("unexpected HTTP {}", response.status.as_u16()),
            body: Some(scrub(&body_excerpt(&response.body), secrets)),
        });
    }
    None
}

/// Checks a data-endpoint reply; `None` means the caller may read `data`.
pub(crate) fn check_api_reply(
    response: &CappedResponse,
    secrets: &[&str],
) -> Option<ProviderError> {
    if let Ok(Envelope { error }) = serde_json::from_slice::<Envelope>(&response.body)
        && error.code != "ok"
    {
        return Some(map_api_error(&error, response, secrets));
    }
    if let Some(e) = classify_status(response, Utc::now()) {
        return Some(e);
    }
    if response.status == StatusCode::UNAUTHORIZED {
        return Some(ProviderError::InvalidGrant {
            description: Some("HTTP 401 from the API".into()),
        });
    }
    if !response.status.is_success() {
        return Some(ProviderError::Protocol {
            message: format!("unexpected HTTP {}", response.status.as_u16()),
            body: Some(scrub(&body_excerpt(&response.body), secrets)),
        });
    }
    None
}

/// The `error.code` of a data-endpoint envelope, if the body is one.
pub(crate) fn api_error_code(response: &CappedResponse) -> Option<String> {
    serde_json::from_slice::<Envelope>(&response.body)
        .ok()
        .map(|e| e.error.code)
}

fn map_api_error(e: &ApiError, response: &CappedResponse, secrets: &[&str]) -> ProviderError {
    let description =
        with_log_id(e.message.clone(), e.log_id.as_deref()).map(|d| scrub(&d, secrets));
    match e.code.as_str() {
        "access_token_invalid" => ProviderError::InvalidGrant { description },
        "scope_not_authorized" | "scope_permission_missed" => ProviderError::InvalidClient {
            description: Some(format!(
                "{}: {}",
                e.code,
                description
                    .unwrap_or_else(|| "a requested field needs a scope the app lacks".into())
            )),
        },
        "rate_limit_exceeded" => ProviderError::RateLimited {
            retry_after: retry_after(&response.headers, Utc::now()),
        },
        "internal_error" => ProviderError::Unavailable {
            status: if response.status.is_server_error() {
                response.status.as_u16()
            } else {
                500
            },
        },
        other => ProviderError::Protocol {
            message: scrub(
                &format!(
                    "TikTok API error `{other}` (HTTP {}){}",
                    response.status.as_u16(),
                    description.map(|d| format!(": {d}")).unwrap_or_default()
                ),
                secrets,
            ),
            body: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;

    fn resp(status: u16, body: &str) -> CappedResponse {
        CappedResponse {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn api(code: &str, status: u16) -> Option<ProviderError> {
        let body = serde_json::json!({"data": {}, "error": {"code": code, "message": "m", "log_id": "L1"}});
        check_api_reply(&resp(status, &body.to_string()), &[])
    }

    #[test]
    fn api_codes() {
        assert!(matches!(
            api("access_token_invalid", 401),
            Some(ProviderError::InvalidGrant { .. })
        ));
        assert!(matches!(
            api("scope_not_authorized", 401),
            Some(ProviderError::InvalidClient { .. })
        ));
        assert!(matches!(
            api("scope_permission_missed", 403),
            Some(ProviderError::InvalidClient { .. })
        ));
        assert!(matches!(
            api("rate_limit_exceeded", 429),
            Some(ProviderError::RateLimited { retry_after: None })
        ));
        assert!(matches!(
            api("internal_error", 500),
            Some(ProviderError::Unavailable { status: 500 })
        ));
        assert!(matches!(
            api("internal_error", 200),
            Some(ProviderError::Unavailable { status: 500 })
        ));
        assert!(matches!(
            api("invalid_params", 400),
            Some(ProviderError::Protocol { .. })
        ));
        assert!(api("ok", 200).is_none());
    }

    #[test]
    fn token_errors_even_on_200() {
        let body = r#"{"error":"invalid_grant","error_description":"Authorization code is expired.","log_id":"2023X"}"#;
        match check_token_reply(&resp(200, body), &[]) {
            Some(ProviderError::InvalidGrant { description }) => {
                assert_eq!(
                    description.as_deref(),
                    Some("Authorization code is expired. (log_id 2023X)")
                );
            }
            other => panic!("{other:?}"),
        }
        let body =
            r#"{"error":"invalid_client","error_description":"Client key act.secret-token-x"}"#;
        let e = check_token_reply(&resp(401, body), &["act.secret-token-x"]).unwrap();
        assert!(matches!(e, ProviderError::InvalidClient { .. }));
        assert!(!format!("{e:?}").contains("act.secret"));
        assert!(matches!(
            check_token_reply(&resp(401, ""), &[]),
            Some(ProviderError::InvalidClient { .. })
        ));
        assert!(check_token_reply(&resp(200, "{}"), &[]).is_none());
        assert!(check_token_reply(&resp(200, ""), &[]).is_none());
    }
}
