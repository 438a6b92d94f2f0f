//! The gateway adapter against a local wiremock server: every request's method, path,
//! API-key and connection headers and JSON body are asserted.

use chrono::Utc;
use integrations_core::secret::{AccessToken, RefreshToken};
use integrations_core::{
    AuthorizationRequest, CallbackOutcome, CallbackParams, ClientSecret, CodeExchange, Provider,
    ProviderError, RefreshRequest,
};
use integrations_onlyfans::{
    OnlyFansConfig, OnlyFansConfigBuilder, OnlyFansMetadata, OnlyFansProvider, connection_alias,
};
use std::time::Duration;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const API_KEY: &str = "ofauth-test-key";
const REDIRECT: &str = "https://app.example.com/integrations/onlyfans/callback";
const PREFIX: &str = "/onlyfans/gateway";
const SELF_JSON: &str = include_str!("fixtures/self.json");
const SESSION_EXPIRED_JSON: &str = include_str!("fixtures/session_expired.json");

/// Matches requests that do NOT carry a header.
struct NoHeader(&'static str);

impl wiremock::Match for NoHeader {
    fn matches(&self, request: &Request) -> bool {
        !request.headers.contains_key(self.0)
    }
}

fn config(server: &MockServer) -> OnlyFansConfigBuilder {
    OnlyFansConfig::builder()
        .api_key(ClientSecret::new(API_KEY))
        .redirect_uri(REDIRECT)
        .api_base_url(format!("{}{PREFIX}", server.uri()))
}

fn provider(server: &MockServer) -> OnlyFansProvider {
    OnlyFansProvider::new(config(server).build().unwrap()).unwrap()
}

fn p(path_: &str) -> String {
    format!("{PREFIX}{path_}")
}

/// `GET /v2/access/self` for a connection, with both headers asserted.
fn self_mock(connection: &str) -> wiremock::MockBuilder {
    Mock::given(method("GET"))
        .and(path(p("/v2/access/self")))
        .and(header("apikey", API_KEY))
        .and(header("x-connection-id", connection))
        .and(NoHeader("authorization"))
}

fn callback(connection: &str) -> CallbackParams {
    CallbackParams::from_pairs([("state", "st"), ("connection_id", connection)])
}

async fn exchange(
    provider: &OnlyFansProvider,
    params: &CallbackParams,
) -> Result<integrations_core::TokenSet, ProviderError> {
    provider
        .exchange_code(CodeExchange {
            params,
            pkce_verifier: None,
        })
        .await
}

fn request(state: &str) -> AuthorizationRequest {
    AuthorizationRequest {
        state: state.into(),
        pkce_challenge: None,
        scopes: vec![],
    }
}

#[tokio::test]
async fn authorization_url_opens_a_link_session() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(p("/v2/link/init")))
        .and(header("apikey", API_KEY))
        .and(header("content-type", "application/json"))
        .and(NoHeader("x-connection-id"))
        .and(NoHeader("authorization"))
        .and(body_json(serde_json::json!({
            "redirectUrl": REDIRECT,
            "clientReferenceId": "state-abc"
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "url": "https://link.ofauth.example/l/lnk_123?token=xyz",
            "expiresAt": "2026-11-30T12:00:00Z"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let url = provider(&server)
        .authorization_url(&request("state-abc"))
        .await
        .unwrap();
    assert_eq!(
        url.as_str(),
        "https://link.ofauth.example/l/lnk_123?token=xyz"
    );
}

#[tokio::test]
async fn authorization_url_errors() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(p("/v2/link/init")))
        .and(header("apikey", "wrong-key"))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "error": "Missing or invalid API key: wrong-key", "type": "UNAUTHORIZED",
            "requestId": "req_1"
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(p("/v2/link/init")))
        .and(header("apikey", API_KEY))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"url": "javascript:alert(1)"})),
        )
        .mount(&server)
        .await;
    let bad_key = OnlyFansProvider::new(
        config(&server)
            .api_key(ClientSecret::new("wrong-key"))
            .build()
            .unwrap(),
    )
    .unwrap();
    match bad_key.authorization_url(&request("s")).await.unwrap_err() {
        ProviderError::InvalidClient { description } => {
            let d = description.unwrap();
            assert!(d.contains("UNAUTHORIZED"), "{d}");
            assert!(!d.contains("wrong-key"), "the key leaked: {d}");
        }
        other => panic!("expected InvalidClient, got {other:?}"),
    }
    let err = provider(&server)
        .authorization_url(&request("s"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Protocol { .. }), "{err}");
    let err = provider(&server)
        .authorization_url(&request(""))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Config(_)), "{err}");
}

#[tokio::test]
async fn exchange_verifies_the_connection_and_returns_it_as_the_token() {
    let server = MockServer::start().await;
    self_mock("conn_abc123")
        .respond_with(ResponseTemplate::new(200).set_body_raw(SELF_JSON, "application/json"))
        .expect(2)
        .mount(&server)
        .await;
    let provider = provider(&server);
    let tokens = exchange(&provider, &callback("conn_abc123")).await.unwrap();
    assert_eq!(tokens.access_token.expose_secret(), "conn_abc123");
    assert!(tokens.refresh_token.is_none());
    assert!(tokens.expires_in.is_none());
    assert!(tokens.refresh_expires_in.is_none());

    let profile = provider.fetch_profile(&tokens.access_token).await.unwrap();
    assert_eq!(profile.account_id, "123456");
    assert_eq!(profile.username.as_deref(), Some("jane"));
    assert_eq!(
        profile.metadata,
        serde_json::json!({
            "account_id": "123456",
            "username": "jane",
            "display_name": "Jane Doe",
            "avatar_url": "https://public.onlyfans.example/files/avatar.jpg",
            "platform_aliases": [connection_alias("conn_abc123")]
        })
    );
    let meta: OnlyFansMetadata = serde_json::from_value(profile.metadata).unwrap();
    assert_eq!(meta.display_name.as_deref(), Some("Jane Doe"));
}

#[tokio::test]
async fn expired_or_missing_connections_are_invalid_grant() {
    let server = MockServer::start().await;
    self_mock("conn_expired")
        .respond_with(
            ResponseTemplate::new(401).set_body_raw(SESSION_EXPIRED_JSON, "application/json"),
        )
        .mount(&server)
        .await;
    self_mock("conn_gone")
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "error": "Connection conn_gone not found or missing session data. Re-authenticate user via Link.",
            "type": "SESSION_NOT_PROVIDED", "requestId": "req_2"
        })))
        .mount(&server)
        .await;
    // The older version of the error page names the type field `code`.
    self_mock("conn_old")
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "error": "User session has expired", "code": "SESSION_EXPIRED", "requestId": "req_3"
        })))
        .mount(&server)
        .await;
    let provider = provider(&server);
    match exchange(&provider, &callback("conn_expired"))
        .await
        .unwrap_err()
    {
        ProviderError::InvalidGrant { description } => {
            assert!(description.unwrap().contains("SESSION_EXPIRED"))
        }
        other => panic!("expected InvalidGrant, got {other:?}"),
    }
    let err = provider
        .fetch_profile(&AccessToken::new("conn_expired"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::InvalidGrant { .. }), "{err}");
    match provider
        .fetch_profile(&AccessToken::new("conn_gone"))
        .await
        .unwrap_err()
    {
        ProviderError::InvalidGrant { description } => {
            let d = description.unwrap();
            assert!(d.contains("SESSION_NOT_PROVIDED"), "{d}");
            assert!(!d.contains("conn_gone"), "the connection id leaked: {d}");
        }
        other => panic!("expected InvalidGrant, got {other:?}"),
    }
    let err = exchange(&provider, &callback("conn_old"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::InvalidGrant { .. }), "{err}");
}

#[tokio::test]
async fn rate_limits_with_and_without_retry_after() {
    let server = MockServer::start().await;
    self_mock("conn_slow_down")
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "42")
                .set_body_json(serde_json::json!({
                    "error": "Request rate limit exceeded", "type": "RATE_LIMIT_EXCEEDED",
                    "requestId": "req_6"
                })),
        )
        .mount(&server)
        .await;
    self_mock("conn_bare_429")
        .respond_with(ResponseTemplate::new(429))
        .mount(&server)
        .await;
    let provider = provider(&server);
    let err = provider
        .fetch_profile(&AccessToken::new("conn_slow_down"))
        .await
        .unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(42)), "{err:?}");
    let err = exchange(&provider, &callback("conn_bare_429"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::RateLimited { retry_after: None }),
        "{err:?}"
    );
}

#[tokio::test]
async fn server_errors_malformed_and_oversized_bodies() {
    let server = MockServer::start().await;
    self_mock("conn_5xx")
        .respond_with(ResponseTemplate::new(503).set_body_string("maintenance"))
        .mount(&server)
        .await;
    self_mock("conn_garbled")
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"id\": \"1\", \"username\": "))
        .mount(&server)
        .await;
    self_mock("conn_big")
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(vec![b' '; 10 * 1024 * 1024], "application/json"),
        )
        .mount(&server)
        .await;
    self_mock("conn_noname")
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"id": "9"})))
        .mount(&server)
        .await;
    let provider = provider(&server);
    let err = exchange(&provider, &callback("conn_5xx"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::Unavailable { status: 503 }),
        "{err}"
    );
    let err = exchange(&provider, &callback("conn_garbled"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Protocol { .. }), "{err}");
    match exchange(&provider, &callback("conn_big"))
        .await
        .unwrap_err()
    {
        ProviderError::Protocol { message, .. } => assert!(message.contains("limit"), "{message}"),
        other => panic!("expected Protocol, got {other:?}"),
    }
    let err = exchange(&provider, &callback("conn_noname"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Protocol { .. }), "{err}");
}

#[tokio::test]
async fn slow_gateway_times_out() {
    let server = MockServer::start().await;
    self_mock("conn_slow")
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(SELF_JSON, "application/json")
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let provider = OnlyFansProvider::new(
        config(&server)
            .timeout(Duration::from_millis(200))
            .build()
            .unwrap(),
    )
    .unwrap();
    let err = exchange(&provider, &callback("conn_slow"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::Network { timeout: true, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn malformed_callbacks_make_no_request() {
    let server = MockServer::start().await;
    let provider = provider(&server);
    let err = exchange(&provider, &CallbackParams::from_query("state=st"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Protocol { .. }), "{err}");
    for bad in ["conn/../../admin", "conn id", "conn%0d%0aX-Evil:1"] {
        let params = CallbackParams::from_query(&format!("state=st&connection_id={bad}"));
        let err = exchange(&provider, &params).await.unwrap_err();
        assert!(
            matches!(err, ProviderError::Protocol { .. }),
            "{bad}: {err}"
        );
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn refresh_is_unsupported() {
    let server = MockServer::start().await;
    let provider = provider(&server);
    assert!(!provider.capabilities().refresh);
    let at = AccessToken::new("conn_abc");
    let now = Utc::now();
    let err = provider
        .refresh(RefreshRequest {
            access_token: Some(&at),
            refresh_token: None,
            issued_at: now,
            now,
            scopes: &[],
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ProviderError::Unsupported {
                operation: "refresh"
            }
        ),
        "{err}"
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn revoke_deletes_the_connection() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path(p("/v2/account/connections/conn_abc123")))
        .and(header("apikey", API_KEY))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    // A connection the gateway no longer has is already disconnected.
    Mock::given(method("DELETE"))
        .and(path(p("/v2/account/connections/conn_gone")))
        .and(header("apikey", API_KEY))
        .respond_with(ResponseTemplate::new(404).set_body_json(serde_json::json!({
            "error": "Requested resource not found", "type": "RESOURCE_NOT_FOUND",
            "requestId": "req_4"
        })))
        .expect(1)
        .mount(&server)
        .await;
    // A 404 for the route itself (a wrong path) is not a disconnect.
    Mock::given(method("DELETE"))
        .and(path(p("/v2/account/connections/conn_misrouted")))
        .respond_with(ResponseTemplate::new(404).set_body_json(serde_json::json!({
            "error": "Endpoint path not found", "type": "ROUTE_NOT_FOUND", "requestId": "req_5"
        })))
        .mount(&server)
        .await;
    let provider = provider(&server);
    assert!(provider.revoke_required());
    provider
        .revoke(Some(&AccessToken::new("conn_abc123")), None)
        .await
        .unwrap();
    provider
        .revoke(
            Some(&AccessToken::new("conn_gone")),
            Some(&RefreshToken::new("ignored")),
        )
        .await
        .unwrap();
    let err = provider
        .revoke(Some(&AccessToken::new("conn_misrouted")), None)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Protocol { .. }), "{err}");
    provider.revoke(None, None).await.unwrap();
}

#[tokio::test]
async fn authorize_request_sends_api_key_and_connection_id_not_bearer() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(p("/v2/access/posts")))
        .and(header("apikey", API_KEY))
        .and(header("x-connection-id", "conn_abc123"))
        .and(NoHeader("authorization"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let provider = provider(&server);
    let client = reqwest::Client::new();
    let req = provider.authorize_request(
        client.get(format!("{}{}", server.uri(), p("/v2/access/posts"))),
        &AccessToken::new("conn_abc123"),
    );
    assert!(!format!("{req:?}").contains(API_KEY));
    assert_eq!(req.send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn every_wire_name_is_configurable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/gw/api/link/start"))
        .and(header("x-api-key", API_KEY))
        .and(body_json(serde_json::json!({
            "redirectUrl": REDIRECT,
            "clientReferenceId": "s1"
        })))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"url": "https://gw.example/link/1"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/gw/api/me"))
        .and(header("x-api-key", API_KEY))
        .and(header("x-account", "acct_7"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(SELF_JSON, "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/gw/api/accounts/acct_7/link"))
        .and(header("x-api-key", API_KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({})))
        .expect(1)
        .mount(&server)
        .await;
    let provider = OnlyFansProvider::new(
        config(&server)
            .api_base_url(format!("{}/gw/", server.uri()))
            .api_key_header("x-api-key")
            .connection_id_header("x-account")
            .callback_param("account_id")
            .link_init_path("/api/link/start")
            .self_path("/api/me")
            .connection_path("/api/accounts/{connection_id}/link")
            .build()
            .unwrap(),
    )
    .unwrap();
    let url = provider.authorization_url(&request("s1")).await.unwrap();
    assert_eq!(url.as_str(), "https://gw.example/link/1");
    let params = CallbackParams::from_pairs([("state", "s1"), ("account_id", "acct_7")]);
    let tokens = exchange(&provider, &params).await.unwrap();
    assert_eq!(tokens.access_token.expose_secret(), "acct_7");
    provider
        .revoke(Some(&tokens.access_token), None)
        .await
        .unwrap();
}

#[test]
fn debug_never_shows_the_api_key() {
    let c = OnlyFansConfig::builder()
        .api_key(ClientSecret::new("very-secret-api-key"))
        .redirect_uri(REDIRECT)
        .build()
        .unwrap();
    let provider = OnlyFansProvider::new(c).unwrap();
    assert!(!format!("{provider:?}").contains("very-secret-api-key"));
}

/// OFAuth's documented redirects
/// (<https://docs.ofauth.com/api-reference/link/init>, "Redirect Query Parameters").
#[test]
fn read_callback_follows_the_documented_redirects() {
    let server_uri = "http://127.0.0.1:9";
    let provider = OnlyFansProvider::new(
        OnlyFansConfig::builder()
            .api_key(ClientSecret::new(API_KEY))
            .redirect_uri("https://app.example/cb")
            .api_base_url(server_uri)
            .build()
            .unwrap(),
    )
    .unwrap();
    let read = |q: &str| {
        let params = CallbackParams::from_query(q);
        let reply = provider.read_callback(&params);
        (reply.state.map(str::to_owned), reply.outcome)
    };
    assert_eq!(
        read("status=success&connection_id=conn_abc123&client_reference_id=st-1"),
        (Some("st-1".into()), CallbackOutcome::Authorized)
    );
    assert_eq!(
        read("status=cancelled&step=2fa&client_reference_id=st-2"),
        (Some("st-2".into()), CallbackOutcome::Cancelled)
    );
    assert_eq!(
        read("status=error&error_code=session_expired&client_reference_id=st-3"),
        (
            Some("st-3".into()),
            CallbackOutcome::Failed {
                error: "session_expired".into()
            }
        )
    );
    // No `state` parameter is sent; one that is present is not the state.
    assert_eq!(
        read("status=success&connection_id=conn_abc123&state=forged").0,
        None
    );
    // Without `status`, the OAuth reading.
    assert_eq!(
        read("error=access_denied&client_reference_id=st-4"),
        (Some("st-4".into()), CallbackOutcome::Cancelled)
    );
    assert_eq!(
        read(&format!("status=weird{}", "x".repeat(100))).1,
        CallbackOutcome::Failed {
            error: format!("weird{}", "x".repeat(59))
        }
    );
}
