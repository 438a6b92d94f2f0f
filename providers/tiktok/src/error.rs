//! Wire errors mapped to [`ProviderError`]; the mapping is documented at the crate root.

use chrono::Utc;
use integrations_core::ProviderError;
use integrations_core::client::Classify;
use integrations_core::engine::TokenCall;
use integrations_core::http::{
    CappedResponse, classify_status, has_error_member, oauth_error, retry_after,
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

/// Which kind of endpoint a reply comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `/v2/oauth/token/` and `/v2/oauth/revoke/`.
    Token,
    /// `/v2/user/info/` and the other data endpoints.
    Data,
}

/// TikTok's reading of the engine's token-endpoint replies (the revoke endpoint answers
/// like the token endpoint).
pub(crate) fn classify_token_reply(
    _: TokenCall,
    response: &CappedResponse,
) -> Option<ProviderError> {
    Endpoint::Token.classify(response)
}

impl Classify for Endpoint {
    fn classify(self, response: &CappedResponse) -> Option<ProviderError> {
        match self {
            Self::Token => token_reply_error(response),
            Self::Data => api_reply_error(response),
        }
    }
}

/// A token or revoke reply's error; `None` means the caller may read the success body.
fn token_reply_error(response: &CappedResponse) -> Option<ProviderError> {
    if let Some(e) = classify_status(response, Utc::now()) {
        return Some(e);
    }
    // A token reply has no `error` member: skip the two typed parses below.
    if !has_error_member(&response.body) {
        return None;
    }
    if let Ok(e) = serde_json::from_slice::<TokenError>(&response.body) {
        let description = with_log_id(e.error_description, e.log_id.as_deref());
        return Some(oauth_error(&e.error, description));
    }
    if let Ok(Envelope { error }) = serde_json::from_slice::<Envelope>(&response.body)
        && error.code != "ok"
    {
        return Some(map_api_error(&error, response));
    }
    // The rest (401 without a body, other non-2xx) follows the engine's standard rules.
    None
}

/// A data-endpoint reply's error; `None` means the caller may read `data`.
fn api_reply_error(response: &CappedResponse) -> Option<ProviderError> {
    if let Ok(Envelope { error }) = serde_json::from_slice::<Envelope>(&response.body)
        && error.code != "ok"
    {
        return Some(map_api_error(&error, response));
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
            body: Some(response.excerpt()),
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

fn map_api_error(e: &ApiError, response: &CappedResponse) -> ProviderError {
    let description = with_log_id(e.message.clone(), e.log_id.as_deref());
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
            message: format!(
                "TikTok API error `{other}` (HTTP {}){}",
                response.status.as_u16(),
                description.map(|d| format!(": {d}")).unwrap_or_default()
            ),
            body: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use integrations_core::client::check;

    fn resp(status: u16, body: &str) -> CappedResponse {
        CappedResponse::new(status, &[], body)
    }

    fn api(code: &str, status: u16) -> Option<ProviderError> {
        let body = serde_json::json!({"data": {}, "error": {"code": code, "message": "m", "log_id": "L1"}});
        Endpoint::Data.classify(&resp(status, &body.to_string()))
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
        match Endpoint::Token.classify(&resp(200, body)) {
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
        let e = check(resp(401, body), Endpoint::Token, &["act.secret-token-x"]).unwrap_err();
        assert!(matches!(e, ProviderError::InvalidClient { .. }));
        assert!(!format!("{e:?}").contains("act.secret"));
        // A 401 without a body is left to the engine's standard rules.
        assert!(Endpoint::Token.classify(&resp(401, "")).is_none());
        assert!(Endpoint::Token.classify(&resp(200, "{}")).is_none());
        assert!(Endpoint::Token.classify(&resp(200, "")).is_none());
    }
}
