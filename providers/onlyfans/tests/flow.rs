//! The core provider conformance check and the whole connect → callback → refresh →
//! disconnect flow through `Integrations` with `MemoryStore`, against a wiremock gateway.

use integrations_core::testing::{
    ProviderConformance, ProviderFlow, header_values, provider_conformance, provider_flow,
};
use integrations_core::{
    CallbackParams, ClientSecret, EncryptionKey, Error, IntegrationStatus, Integrations,
    MemoryStore, ProviderError, TokenCipher, UserId,
};
use integrations_onlyfans::{OnlyFansConfig, OnlyFansProvider};
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const API_KEY: &str = "ofauth-test-key";
const REDIRECT: &str = "https://app.example.com/integrations/onlyfans/callback";
const HOSTED: &str = "https://link.ofauth.example/l/lnk_123";
const SELF_JSON: &str = include_str!("fixtures/self.json");
const SESSION_EXPIRED_JSON: &str = include_str!("fixtures/session_expired.json");

/// The link/init body: our redirect URL and a non-empty clientReferenceId (the state,
/// generated inside the service, is checked after the call).
struct LinkInitBody;

impl wiremock::Match for LinkInitBody {
    fn matches(&self, request: &Request) -> bool {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&request.body) else {
            return false;
        };
        let obj = v.as_object();
        obj.is_some_and(|o| o.len() == 2)
            && v["redirectUrl"] == REDIRECT
            && v["clientReferenceId"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
    }
}

fn provider(server: &MockServer) -> OnlyFansProvider {
    OnlyFansProvider::new(
        OnlyFansConfig::builder()
            .api_key(ClientSecret::new(API_KEY))
            .redirect_uri(REDIRECT)
            .api_base_url(format!("{}/onlyfans/gateway", server.uri()))
            .build()
            .unwrap(),
    )
    .unwrap()
}

async fn mount_gateway(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/onlyfans/gateway/v2/link/init"))
        .and(header("apikey", API_KEY))
        .and(LinkInitBody)
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "url": HOSTED, "expiresAt": "2026-11-30T12:00:00Z"
        })))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/onlyfans/gateway/v2/access/self"))
        .and(header("apikey", API_KEY))
        .and(header("x-connection-id", "conn_abc123"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(SELF_JSON, "application/json"))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/onlyfans/gateway/v2/access/self"))
        .and(header("apikey", API_KEY))
        .and(header("x-connection-id", "conn_expired"))
        .respond_with(
            ResponseTemplate::new(401).set_body_raw(SESSION_EXPIRED_JSON, "application/json"),
        )
        .mount(server)
        .await;
}

#[tokio::test]
async fn onlyfans_meets_the_provider_conformance_check() {
    let server = MockServer::start().await;
    mount_gateway(&server).await;
    let p = provider(&server);
    provider_conformance(ProviderConformance {
        provider: &p,
        redirect_uri: REDIRECT,
        scopes: Vec::new(),
        // The hosted link URL is the gateway's; state and redirect URI travel in the
        // link/init body instead (asserted by the mock).
        oauth_query: false,
        good_callback: CallbackParams::from_pairs([
            ("status", "success"),
            ("connection_id", "conn_abc123"),
        ]),
        bad_callback: CallbackParams::from_pairs([
            ("status", "success"),
            ("connection_id", "conn_expired"),
        ]),
    })
    .await;
}

/// OFAuth's success redirect: `status=success&connection_id=…&client_reference_id=…`.
fn success(state: &str, connection: &str) -> CallbackParams {
    CallbackParams::from_pairs([
        ("status", "success"),
        ("connection_id", connection),
        ("client_reference_id", state),
    ])
}

fn integrations(server: &MockServer) -> Integrations {
    Integrations::builder(
        Arc::new(MemoryStore::new()),
        TokenCipher::new(EncryptionKey::generate()),
    )
    .provider(Arc::new(provider(server)))
    .build()
}

/// The core's whole flow, then what is the gateway's own: the state sent to the gateway
/// as `clientReferenceId` and echoed in OFAuth's redirect (no `state` parameter), no
/// expiry and no refresh, the connection deleted at disconnect, and `send` carrying the
/// API key and connection id headers (no `Authorization`) and the configured
/// `User-Agent`.
#[tokio::test]
async fn the_whole_flow_through_integrations() {
    let server = MockServer::start().await;
    mount_gateway(&server).await;
    Mock::given(method("DELETE"))
        .and(path("/onlyfans/gateway/v2/account/connections/conn_abc123"))
        .and(header("apikey", API_KEY))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let posts = "/onlyfans/gateway/v2/access/posts";
    Mock::given(method("GET"))
        .and(path(posts))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"list": []})))
        .expect(1)
        .mount(&server)
        .await;
    let report = provider_flow(ProviderFlow {
        provider: Arc::new(provider(&server)),
        authorized: Box::new(|start| {
            assert_eq!(start.auth_url.as_str(), HOSTED);
            success(&start.state, "conn_abc123")
        }),
        cancelled: Box::new(|start| {
            CallbackParams::from_pairs([
                ("status", "cancelled"),
                ("step", "authorization"),
                ("client_reference_id", start.state.as_str()),
            ])
        }),
        account_id: "123456".into(),
        username: "jane".into(),
        state_in_url: false,
        refresh_after: Duration::ZERO,
        send_url: Some(format!("{}{posts}", server.uri())),
    })
    .await;
    assert_eq!(report.connected.expires_at, None);
    assert!(report.refreshed.is_none());
    assert_eq!(
        report.connected.metadata,
        serde_json::json!({
            "account_id": "123456",
            "username": "jane",
            "display_name": "Jane Doe",
            "avatar_url": "https://public.onlyfans.example/files/avatar.jpg"
        })
    );

    let received = server.received_requests().await.unwrap();
    // Each connect sent its state to the gateway as clientReferenceId.
    let inits: Vec<serde_json::Value> = received
        .iter()
        .filter(|r| r.url.path().ends_with("/v2/link/init"))
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(inits.len(), 2);
    assert_ne!(inits[0]["clientReferenceId"], inits[1]["clientReferenceId"]);
    let sent = received.iter().find(|r| r.url.path() == posts).unwrap();
    let values = |name: &str| header_values(&sent.headers, name);
    let ua = concat!("integrations-onlyfans/", env!("CARGO_PKG_VERSION"));
    assert_eq!(values("user-agent"), [ua.as_bytes()]);
    assert_eq!(values("apikey"), [API_KEY.as_bytes()]);
    assert_eq!(values("x-connection-id"), [b"conn_abc123".as_slice()]);
    assert!(values("authorization").is_empty());
}

#[tokio::test]
async fn expired_session_at_callback_is_invalid_grant_and_nothing_is_stored() {
    let server = MockServer::start().await;
    mount_gateway(&server).await;
    let svc = integrations(&server);
    let user = UserId(12);
    let start = svc.connect(user, "onlyfans", None).await.unwrap();
    let params = success(&start.state, "conn_expired");
    let err = svc.callback(user, "onlyfans", &params).await.unwrap_err();
    assert!(
        matches!(err, Error::Provider(ProviderError::InvalidGrant { .. })),
        "{err:?}"
    );
    assert!(svc.status(user).await.unwrap().is_empty());
}

#[tokio::test]
async fn cancelled_link_is_cancelled() {
    let server = MockServer::start().await;
    mount_gateway(&server).await;
    let svc = integrations(&server);
    let user = UserId(13);
    let start = svc.connect(user, "onlyfans", None).await.unwrap();
    let params = CallbackParams::from_pairs([
        ("status", "cancelled"),
        ("step", "authorization"),
        ("client_reference_id", start.state.as_str()),
    ]);
    let err = svc.callback(user, "onlyfans", &params).await.unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err:?}");
    // The state was consumed: replaying it is refused.
    let err = svc
        .callback(user, "onlyfans", &success(&start.state, "conn_abc123"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidState), "{err:?}");
    let calls = server.received_requests().await.unwrap();
    assert!(
        calls
            .iter()
            .all(|r| r.url.path().ends_with("/v2/link/init"))
    );
}

#[tokio::test]
async fn error_redirect_is_authorization_failed_and_a_state_parameter_is_not_the_state() {
    let server = MockServer::start().await;
    mount_gateway(&server).await;
    let svc = integrations(&server);
    let user = UserId(14);
    let start = svc.connect(user, "onlyfans", None).await.unwrap();
    let params = CallbackParams::from_pairs([
        ("status", "error"),
        ("error_code", "invalid_credentials"),
        ("client_reference_id", start.state.as_str()),
    ]);
    let err = svc.callback(user, "onlyfans", &params).await.unwrap_err();
    assert!(
        matches!(&err, Error::AuthorizationFailed { error } if error == "invalid_credentials"),
        "{err:?}"
    );
    // A redirect carrying the state as `state` (which OFAuth never sends) is refused.
    let start = svc.connect(user, "onlyfans", None).await.unwrap();
    let params = CallbackParams::from_pairs([
        ("status", "success"),
        ("connection_id", "conn_abc123"),
        ("state", start.state.as_str()),
    ]);
    let err = svc.callback(user, "onlyfans", &params).await.unwrap_err();
    assert!(matches!(err, Error::InvalidState), "{err:?}");
    assert!(svc.status(user).await.unwrap().is_empty());
}

async fn connected(svc: &Integrations, user: UserId) {
    let start = svc.connect(user, "onlyfans", None).await.unwrap();
    svc.callback(user, "onlyfans", &success(&start.state, "conn_abc123"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_disconnect_the_gateway_does_not_confirm_is_retried_reported_and_keeps_the_account() {
    let server = MockServer::start().await;
    mount_gateway(&server).await;
    let delete = "/onlyfans/gateway/v2/account/connections/conn_abc123";
    // Three 503s (the default attempts), then a 404 for the route, then success.
    Mock::given(method("DELETE"))
        .and(path(delete))
        .and(header("apikey", API_KEY))
        .respond_with(ResponseTemplate::new(503).set_body_json(serde_json::json!({
            "error": "Network error", "type": "NETWORK_ERROR", "requestId": "req_1"
        })))
        .up_to_n_times(3)
        .expect(3)
        .mount(&server)
        .await;
    let svc = integrations(&server);
    let user = UserId(15);
    connected(&svc, user).await;
    let err = svc
        .disconnect(user, "onlyfans", "123456")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Provider(ProviderError::Unavailable { status: 503 })
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), "provider_unavailable");
    let status = svc.status(user).await.unwrap();
    assert_eq!(status.len(), 1, "the account is kept");
    assert_eq!(status[0].status, IntegrationStatus::Connected);
    assert_eq!(
        svc.access_token(user, "onlyfans", "123456")
            .await
            .unwrap()
            .expose_secret(),
        "conn_abc123"
    );

    Mock::given(method("DELETE"))
        .and(path(delete))
        .respond_with(ResponseTemplate::new(404).set_body_json(serde_json::json!({
            "error": "Endpoint path not found", "type": "ROUTE_NOT_FOUND", "requestId": "req_2"
        })))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    let err = svc
        .disconnect(user, "onlyfans", "123456")
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Provider(ProviderError::Protocol { .. })),
        "{err:?}"
    );
    assert_eq!(svc.status(user).await.unwrap().len(), 1);

    Mock::given(method("DELETE"))
        .and(path(delete))
        .and(header("apikey", API_KEY))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    svc.disconnect(user, "onlyfans", "123456").await.unwrap();
    assert!(svc.status(user).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_connection_already_gone_at_the_gateway_disconnects() {
    let server = MockServer::start().await;
    mount_gateway(&server).await;
    Mock::given(method("DELETE"))
        .and(path("/onlyfans/gateway/v2/account/connections/conn_abc123"))
        .respond_with(ResponseTemplate::new(404).set_body_json(serde_json::json!({
            "error": "Requested resource not found", "type": "RESOURCE_NOT_FOUND",
            "requestId": "req_3"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let svc = integrations(&server);
    let user = UserId(16);
    connected(&svc, user).await;
    svc.disconnect(user, "onlyfans", "123456").await.unwrap();
    assert!(svc.status(user).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_expired_session_found_by_send_marks_the_account_needs_reconnect() {
    let server = MockServer::start().await;
    mount_gateway(&server).await;
    let svc = integrations(&server);
    let user = UserId(17);
    connected(&svc, user).await;
    // A call through send: the gateway answers 401 SESSION_EXPIRED.
    Mock::given(method("GET"))
        .and(path("/onlyfans/gateway/v2/access/posts"))
        .and(header("apikey", API_KEY))
        .and(header("x-connection-id", "conn_abc123"))
        .respond_with(
            ResponseTemplate::new(401).set_body_raw(SESSION_EXPIRED_JSON, "application/json"),
        )
        .expect(1)
        .mount(&server)
        .await;
    // A 401 of another kind (the API key) is handed back as it came.
    Mock::given(method("GET"))
        .and(path("/onlyfans/gateway/v2/access/chats"))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "error": "Missing or invalid API key", "type": "UNAUTHORIZED", "requestId": "req_4"
        })))
        .mount(&server)
        .await;
    let url = |p: &str| format!("{}/onlyfans/gateway/v2/access/{p}", server.uri());
    let resp = svc
        .send(
            user,
            "onlyfans",
            "123456",
            reqwest::Request::new(reqwest::Method::GET, url("chats").parse().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "UNAUTHORIZED");
    assert_eq!(
        svc.status(user).await.unwrap()[0].status,
        IntegrationStatus::Connected
    );

    let err = svc
        .send(
            user,
            "onlyfans",
            "123456",
            reqwest::Request::new(reqwest::Method::GET, url("posts").parse().unwrap()),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NeedsReconnect), "{err:?}");
    assert_eq!(
        svc.status(user).await.unwrap()[0].status,
        IntegrationStatus::NeedsReconnect
    );
    // No further call reaches the gateway for a dead connection.
    let err = svc
        .send(
            user,
            "onlyfans",
            "123456",
            reqwest::Request::new(reqwest::Method::GET, url("posts").parse().unwrap()),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NeedsReconnect), "{err:?}");
}
