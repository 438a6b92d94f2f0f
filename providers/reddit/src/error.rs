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
//!
//! The token and revoke endpoints run on the core [engine](integrations_core::engine):
//! [`classify_token_reply`] states only what is Reddit's own (the 401 and the refresh
//! 400); 429, 5xx and RFC 6749 error bodies (with any status) follow the engine's
//! standard rules.

use chrono::Utc;
use integrations_core::ProviderError;
use integrations_core::client::Classify;
use integrations_core::engine::TokenCall;
use integrations_core::http::{CappedResponse, OAuthErrorBody, classify_status};
use reqwest::StatusCode;
use reqwest::header::WWW_AUTHENTICATE;

/// Reddit's own reading of the token and revoke endpoints' replies, before the engine's
/// standard rules: a 401 is a client-credentials problem (named as such when Reddit says
/// `WWW-Authenticate: Basic`), and a 400 on refresh without another error code is a dead
/// refresh token.
pub(crate) fn classify_token_reply(
    call: TokenCall,
    response: &CappedResponse,
) -> Option<ProviderError> {
    if response.status == StatusCode::UNAUTHORIZED {
        let basic_realm = response
            .headers
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("basic"));
        return Some(ProviderError::InvalidClient {
            description: Some(if basic_realm {
                "Reddit rejected the client id/secret (HTTP 401, WWW-Authenticate: Basic)".into()
            } else {
                "HTTP 401 from the Reddit token endpoint".into()
            }),
        });
    }
    if call == TokenCall::Refresh && response.status == StatusCode::BAD_REQUEST {
        let code = serde_json::from_slice::<OAuthErrorBody>(&response.body).ok();
        if let None | Some("invalid_request" | "invalid_grant") =
            code.as_ref().map(|b| b.error.as_str())
        {
            return Some(ProviderError::InvalidGrant {
                description: Some(
                    "Reddit refused the refresh token (HTTP 400); it was revoked or is unknown"
                        .into(),
                ),
            });
        }
    }
    None
}

/// Reddit's API endpoints (`/api/v1/me` and calls made through `Integrations::send`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Api;

impl Classify for Api {
    fn classify(self, response: &CappedResponse) -> Option<ProviderError> {
        if let Some(e) = classify_status(response, Utc::now()) {
            return Some(e);
        }
        match response.status {
            s if s.is_success() => None,
            StatusCode::UNAUTHORIZED => Some(ProviderError::InvalidGrant {
                description: Some(
                    "Reddit rejected the access token (HTTP 401): expired or revoked".into(),
                ),
            }),
            StatusCode::FORBIDDEN => Some(ProviderError::InvalidGrant {
                description: Some(
                    "Reddit refused the request (HTTP 403): the grant lacks the `identity` scope"
                        .into(),
                ),
            }),
            s => Some(ProviderError::Protocol {
                message: format!("unexpected HTTP {} from /api/v1/me", s.as_u16()),
                body: Some(response.excerpt()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, body: &str, headers: &[(&'static str, &'static str)]) -> CappedResponse {
        CappedResponse::new(status, headers, body)
    }

    #[test]
    fn token_replies_reddit_reads_itself() {
        let code = TokenCall::CodeExchange;
        let refresh = TokenCall::Refresh;
        let basic = [("www-authenticate", "Basic realm=\"reddit\"")];
        assert!(matches!(
            classify_token_reply(code, &resp(401, r#"{"message": "Unauthorized", "error": 401}"#, &basic)),
            Some(ProviderError::InvalidClient { description: Some(d) }) if d.contains("Basic")
        ));
        assert!(matches!(
            classify_token_reply(TokenCall::Revoke, &resp(401, "", &[])),
            Some(ProviderError::InvalidClient { .. })
        ));
        for body in [
            r#"{"error": "invalid_request"}"#,
            r#"{"message": "Bad Request", "error": 400}"#,
        ] {
            assert!(matches!(
                classify_token_reply(refresh, &resp(400, body, &[])),
                Some(ProviderError::InvalidGrant { .. })
            ));
        }
        // Left to the engine's standard rules.
        assert!(
            classify_token_reply(code, &resp(400, r#"{"error": "invalid_request"}"#, &[]))
                .is_none()
        );
        assert!(
            classify_token_reply(
                refresh,
                &resp(400, r#"{"error": "unsupported_grant_type"}"#, &[])
            )
            .is_none()
        );
        assert!(
            classify_token_reply(code, &resp(200, r#"{"error": "invalid_grant"}"#, &[])).is_none()
        );
        assert!(classify_token_reply(code, &resp(429, "", &[])).is_none());
    }

    #[test]
    fn api_errors() {
        assert!(matches!(
            Api.classify(&resp(401, "{}", &[])),
            Some(ProviderError::InvalidGrant { .. })
        ));
        assert!(matches!(
            Api.classify(&resp(404, "nope", &[])),
            Some(ProviderError::Protocol { .. })
        ));
        assert!(matches!(
            Api.classify(&resp(429, "", &[("x-ratelimit-reset", "17")])),
            Some(ProviderError::RateLimited { retry_after: Some(d) }) if d.as_secs() == 17
        ));
        assert!(Api.classify(&resp(200, "{}", &[])).is_none());
    }
}
