//! Reddit's wire errors mapped to [`ProviderError`].
//!
//! Sources: Reddit's server code (`r2/r2/controllers/oauth2.py`) and PRAW core.
//! - Token endpoint, bad client credentials: HTTP 401 with
//!   `WWW-Authenticate: Basic realm="reddit"` → [`ProviderError::InvalidClient`].
//! - Code exchange errors come back as **HTTP 200** with `{"error": "invalid_grant"}`;
//!   the body is checked for `error` whatever the status.
//! - Refresh errors come back as HTTP 400 with `{"error": "invalid_request"}` (the server
//!   folds "unknown refresh token" into `invalid_request`); since our refresh request has
//!   no other field that can be wrong, a 400 on refresh is [`ProviderError::InvalidGrant`].
//! - 429 → [`ProviderError::RateLimited`] with `Retry-After`, or else
//!   `X-Ratelimit-Reset` (seconds until the window resets).

use chrono::Utc;
use integrations_core::ProviderError;
use integrations_core::client::Classify;
use integrations_core::engine::TokenCall;
use integrations_core::http::{
    CappedResponse, OAuthErrorBody, check_token_response, classify_status,
};
use reqwest::StatusCode;
use reqwest::header::WWW_AUTHENTICATE;

/// Which call a reply answers; a 400 on refresh is read differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `POST /api/v1/access_token` with `grant_type=authorization_code`.
    CodeExchange,
    /// `POST /api/v1/access_token` with `grant_type=refresh_token`.
    Refresh,
    /// `POST /api/v1/revoke_token`.
    Revoke,
    /// `GET /api/v1/me` and other resource API calls.
    Api,
}

/// Reddit's reading of the engine's token-endpoint replies.
pub(crate) fn classify_token_reply(
    call: TokenCall,
    response: &CappedResponse,
) -> Option<ProviderError> {
    match call {
        TokenCall::Refresh => Endpoint::Refresh,
        TokenCall::Revoke => Endpoint::Revoke,
        _ => Endpoint::CodeExchange,
    }
    .classify(response)
}

impl Classify for Endpoint {
    fn classify(self, response: &CappedResponse) -> Option<ProviderError> {
        match self {
            Self::CodeExchange | Self::Refresh => check_token(response, self),
            Self::Revoke => check_revoke(response),
            Self::Api => check_api(response),
        }
        .err()
    }
}

fn invalid_client_401(response: &CappedResponse) -> ProviderError {
    let basic_realm = response
        .headers
        .get(WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("basic"));
    ProviderError::InvalidClient {
        description: Some(if basic_realm {
            "Reddit rejected the client id/secret (HTTP 401, WWW-Authenticate: Basic)".into()
        } else {
            "HTTP 401 from the Reddit token endpoint".into()
        }),
    }
}

/// Classifies a token-endpoint reply; `Ok(())` means the success body may be parsed.
fn check_token(response: &CappedResponse, endpoint: Endpoint) -> Result<(), ProviderError> {
    if let Some(e) = classify_status(response, Utc::now()) {
        return Err(e);
    }
    if response.status == StatusCode::UNAUTHORIZED {
        return Err(invalid_client_401(response));
    }
    if endpoint == Endpoint::Refresh && response.status == StatusCode::BAD_REQUEST {
        let code = serde_json::from_slice::<OAuthErrorBody>(&response.body).ok();
        match code.as_ref().map(|b| b.error.as_str()) {
            None | Some("invalid_request" | "invalid_grant") => {
                return Err(ProviderError::InvalidGrant {
                    description: Some(
                        "Reddit refused the refresh token (HTTP 400); it was revoked or is unknown"
                            .into(),
                    ),
                });
            }
            Some(_) => {}
        }
    }
    check_token_response(response, Utc::now())
}

/// Classifies a `/api/v1/me` (resource API) reply.
fn check_api(response: &CappedResponse) -> Result<(), ProviderError> {
    if let Some(e) = classify_status(response, Utc::now()) {
        return Err(e);
    }
    match response.status {
        s if s.is_success() => Ok(()),
        StatusCode::UNAUTHORIZED => Err(ProviderError::InvalidGrant {
            description: Some(
                "Reddit rejected the access token (HTTP 401): expired or revoked".into(),
            ),
        }),
        StatusCode::FORBIDDEN => Err(ProviderError::InvalidGrant {
            description: Some(
                "Reddit refused the request (HTTP 403): the grant lacks the `identity` scope"
                    .into(),
            ),
        }),
        s => Err(ProviderError::Protocol {
            message: format!("unexpected HTTP {} from /api/v1/me", s.as_u16()),
            body: Some(response.excerpt()),
        }),
    }
}

/// Classifies a `/api/v1/revoke_token` reply (204, or 200, is success).
fn check_revoke(response: &CappedResponse) -> Result<(), ProviderError> {
    if let Some(e) = classify_status(response, Utc::now()) {
        return Err(e);
    }
    if response.status.is_success() {
        return Ok(());
    }
    if response.status == StatusCode::UNAUTHORIZED {
        return Err(invalid_client_401(response));
    }
    check_token_response(response, Utc::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn resp(status: u16, body: &str, headers: &[(&'static str, &'static str)]) -> CappedResponse {
        CappedResponse::new(status, headers, body)
    }

    #[test]
    fn token_errors() {
        let code = Endpoint::CodeExchange;
        let refresh = Endpoint::Refresh;
        assert!(matches!(
            check_token(&resp(200, r#"{"error": "invalid_grant"}"#, &[]), code),
            Err(ProviderError::InvalidGrant { .. })
        ));
        assert!(matches!(
            check_token(
                &resp(200, r#"{"error": "unsupported_grant_type"}"#, &[]),
                code
            ),
            Err(ProviderError::Protocol { .. })
        ));
        assert!(matches!(
            check_token(
                &resp(401, r#"{"message": "Unauthorized", "error": 401}"#, &[("www-authenticate", "Basic realm=\"reddit\"")]),
                code
            ),
            Err(ProviderError::InvalidClient { description: Some(d) }) if d.contains("Basic")
        ));
        assert!(matches!(
            check_token(&resp(400, r#"{"error": "invalid_request"}"#, &[]), refresh),
            Err(ProviderError::InvalidGrant { .. })
        ));
        assert!(matches!(
            check_token(
                &resp(400, r#"{"message": "Bad Request", "error": 400}"#, &[]),
                refresh
            ),
            Err(ProviderError::InvalidGrant { .. })
        ));
        assert!(matches!(
            check_token(&resp(400, r#"{"error": "invalid_request"}"#, &[]), code),
            Err(ProviderError::Protocol { .. })
        ));
        assert!(matches!(
            check_token(&resp(429, "", &[("x-ratelimit-reset", "17")]), code),
            Err(ProviderError::RateLimited { retry_after: Some(d) }) if d == Duration::from_secs(17)
        ));
        assert!(matches!(
            check_token(&resp(429, "", &[("retry-after", "5"), ("x-ratelimit-reset", "17")]), code),
            Err(ProviderError::RateLimited { retry_after: Some(d) }) if d == Duration::from_secs(5)
        ));
        assert!(matches!(
            check_token(&resp(503, "", &[]), refresh),
            Err(ProviderError::Unavailable { status: 503 })
        ));
        assert!(check_token(&resp(200, r#"{"access_token": "x"}"#, &[]), code).is_ok());
    }

    #[test]
    fn api_and_revoke_errors() {
        assert!(matches!(
            check_api(&resp(401, "{}", &[])),
            Err(ProviderError::InvalidGrant { .. })
        ));
        assert!(matches!(
            check_api(&resp(404, "nope", &[])),
            Err(ProviderError::Protocol { .. })
        ));
        assert!(check_revoke(&resp(204, "", &[])).is_ok());
        assert!(matches!(
            check_revoke(&resp(400, r#"{"error": "unauthorized_client"}"#, &[])),
            Err(ProviderError::InvalidClient { .. })
        ));
    }
}
