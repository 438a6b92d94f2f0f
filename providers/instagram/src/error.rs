//! Wire errors mapped to [`ProviderError`]; the mapping is documented at the crate root.

use chrono::Utc;
use integrations_core::ProviderError;
use integrations_core::client::Classify;
use integrations_core::http::{CappedResponse, classify_status, retry_after};
use serde::Deserialize;

/// Which call a reply answers; decides how a generic `OAuthException` is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `POST {api}/oauth/access_token`.
    CodeExchange,
    /// `GET {graph}/access_token` and `GET {graph}/refresh_access_token`.
    TokenExchange,
    /// `GET {graph}/me`.
    Profile,
}

/// Meta's Graph error object.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct GraphError {
    #[serde(default)]
    pub(crate) message: Option<String>,
    #[serde(default, rename = "type")]
    pub(crate) kind: Option<String>,
    #[serde(default)]
    pub(crate) code: Option<i64>,
    #[serde(default)]
    pub(crate) error_subcode: Option<i64>,
    #[serde(default)]
    pub(crate) fbtrace_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct GraphEnvelope {
    error: GraphError,
}

/// The legacy flat error of `api.instagram.com`.
#[derive(Debug, Deserialize)]
struct LegacyError {
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    code: Option<i64>,
    error_message: String,
}

impl Classify for Endpoint {
    fn classify(self, response: &CappedResponse) -> Option<ProviderError> {
        if let Some(e) = classify_status(response, Utc::now()) {
            return Some(e);
        }
        if let Ok(GraphEnvelope { error }) = serde_json::from_slice(&response.body) {
            return Some(map_graph_error(&error, response, self));
        }
        if let Ok(legacy) = serde_json::from_slice::<LegacyError>(&response.body) {
            let graph = GraphError {
                message: Some(legacy.error_message),
                kind: legacy.error_type,
                code: legacy.code,
                error_subcode: None,
                fbtrace_id: None,
            };
            return Some(map_graph_error(&graph, response, self));
        }
        if !response.status.is_success() {
            return Some(ProviderError::Protocol {
                message: format!("unexpected HTTP {}", response.status.as_u16()),
                body: Some(response.excerpt()),
            });
        }
        None
    }
}

fn describe(e: &GraphError) -> String {
    let mut d = e.message.clone().unwrap_or_else(|| "no message".into());
    if let Some(code) = e.code {
        d.push_str(&format!(" (code {code}"));
        if let Some(sub) = e.error_subcode {
            d.push_str(&format!(", subcode {sub}"));
        }
        if let Some(trace) = &e.fbtrace_id {
            d.push_str(&format!(", fbtrace_id {trace}"));
        }
        d.push(')');
    }
    d
}

fn map_graph_error(e: &GraphError, response: &CappedResponse, endpoint: Endpoint) -> ProviderError {
    let described = describe(e);
    let description = Some(described.clone());
    match e.code {
        Some(190) => return ProviderError::InvalidGrant { description },
        // 80002: the Instagram business use case throttle; its usage header says when
        // access is regained.
        Some(4 | 17 | 32 | 613 | 80002) => {
            let now = Utc::now();
            let regained = integrations_core::health::quota_signal(
                response.status.as_u16(),
                &response.headers,
                now,
            )
            .and_then(|q| q.reset_at)
            .and_then(|at| (at - now).to_std().ok());
            return ProviderError::RateLimited {
                retry_after: retry_after(&response.headers, now).or(regained),
            };
        }
        Some(10 | 200..=299) => return ProviderError::InvalidClient { description },
        Some(1 | 2) => {
            return ProviderError::Unavailable {
                status: if response.status.is_server_error() {
                    response.status.as_u16()
                } else {
                    503
                },
            };
        }
        _ => {}
    }
    let message = e
        .message
        .as_deref()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let oauth = e.kind.as_deref() == Some("OAuthException");
    let about_client = [
        "client secret",
        "client_secret",
        "client_id",
        "client id",
        "platform app",
        "app id",
        "app secret",
        "application",
    ]
    .iter()
    .any(|w| message.contains(w));
    if oauth && about_client && !message.contains("access token") {
        return ProviderError::InvalidClient { description };
    }
    if oauth && matches!(endpoint, Endpoint::CodeExchange | Endpoint::TokenExchange) {
        return ProviderError::InvalidGrant { description };
    }
    ProviderError::Protocol {
        message: format!(
            "Instagram error{}: {}",
            e.kind
                .as_deref()
                .map(|k| format!(" {k}"))
                .unwrap_or_default(),
            described
        ),
        body: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use integrations_core::client::check;

    fn resp(status: u16, body: &str) -> CappedResponse {
        CappedResponse::new(status, &[], body)
    }

    fn graph(code: i64, kind: &str, message: &str) -> String {
        serde_json::json!({"error": {"message": message, "type": kind, "code": code,
            "error_subcode": 463, "fbtrace_id": "AbC"}})
        .to_string()
    }

    #[test]
    fn the_business_use_case_throttle_says_when_access_is_regained() {
        let mut r = resp(
            400,
            &graph(80002, "OAuthException", "Application request limit reached"),
        );
        r.headers.insert(
            "x-business-use-case-usage",
            r#"{"17841405793187218":[{"type":"instagram","call_count":100,"total_cputime":3,"total_time":4,"estimated_time_to_regain_access":5}]}"#
                .parse()
                .unwrap(),
        );
        match Endpoint::Profile.classify(&r) {
            Some(ProviderError::RateLimited {
                retry_after: Some(d),
            }) => assert!((290..=300).contains(&d.as_secs()), "{d:?}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn graph_codes() {
        let e = |code, ep: Endpoint| ep.classify(&resp(400, &graph(code, "OAuthException", "x")));
        assert!(matches!(
            e(190, Endpoint::Profile),
            Some(ProviderError::InvalidGrant { .. })
        ));
        for code in [4, 17, 32, 613, 80002] {
            assert!(matches!(
                e(code, Endpoint::Profile),
                Some(ProviderError::RateLimited { retry_after: None })
            ));
        }
        for code in [10, 200, 250, 299] {
            assert!(matches!(
                e(code, Endpoint::Profile),
                Some(ProviderError::InvalidClient { .. })
            ));
        }
        assert!(matches!(
            e(2, Endpoint::Profile),
            Some(ProviderError::Unavailable { status: 503 })
        ));
        assert!(matches!(
            e(100, Endpoint::Profile),
            Some(ProviderError::Protocol { .. })
        ));
        assert!(matches!(
            e(100, Endpoint::TokenExchange),
            Some(ProviderError::InvalidGrant { .. })
        ));
    }

    #[test]
    fn legacy_shape() {
        let body = r#"{"error_type":"OAuthException","code":400,"error_message":"Invalid authorization code"}"#;
        assert!(matches!(
            Endpoint::CodeExchange.classify(&resp(400, body)),
            Some(ProviderError::InvalidGrant { .. })
        ));
        let body =
            r#"{"error_type":"OAuthException","code":400,"error_message":"Invalid platform app"}"#;
        assert!(matches!(
            Endpoint::CodeExchange.classify(&resp(400, body)),
            Some(ProviderError::InvalidClient { .. })
        ));
        let body = r#"{"error_type":"OAuthException","code":400,"error_message":"Error validating client secret."}"#;
        assert!(matches!(
            Endpoint::CodeExchange.classify(&resp(400, body)),
            Some(ProviderError::InvalidClient { .. })
        ));
    }

    #[test]
    fn echoed_secrets_are_scrubbed() {
        let body = graph(
            190,
            "OAuthException",
            "Malformed access token IGAAsecret-token-value",
        );
        let err = check(
            resp(400, &body),
            Endpoint::Profile,
            &["IGAAsecret-token-value"],
        )
        .unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains("IGAAsecret"), "{text}");
        let err = check(
            resp(418, "teapot IGAAsecret-token-value"),
            Endpoint::Profile,
            &["IGAAsecret-token-value"],
        )
        .unwrap_err();
        assert!(!format!("{err:?}").contains("IGAAsecret"));
    }

    #[test]
    fn success_passes_and_status_wins() {
        assert!(
            Endpoint::Profile
                .classify(&resp(200, r#"{"access_token":"x"}"#))
                .is_none()
        );
        assert!(matches!(
            Endpoint::Profile.classify(&resp(502, "<html>")),
            Some(ProviderError::Unavailable { status: 502 })
        ));
        let e = resp(200, r#"{"access_token":"IGAAx"#)
            .json_secret::<serde_json::Value>("token")
            .unwrap_err();
        assert!(!format!("{e:?}").contains("IGAAx"));
    }
}
