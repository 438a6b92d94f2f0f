//! The core provider conformance check and the whole connect → callback → refresh →
//! disconnect flow through `Integrations` with `MemoryStore`, against a wiremock gateway.

use integrations_core::testing::{ProviderConformance, provider_conformance};
use integrations_core::{
    CallbackParams, ClientSecret, EncryptionKey, Error, IntegrationStatus, Integrations,
    MemoryStore, ProviderError, TokenCipher, UserId,
};
use integrations_onlyfans::{OnlyFansConfig, OnlyFansProvider};
use std::sync::Arc;
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
        good_callback: CallbackParams::from_pairs([("connection_id", "conn_abc123")]),
        bad_callback: CallbackParams::from_pairs([("connection_id", "conn_expired")]),
    })
    .await;
}

fn integrations(server: &MockServer) -> Integrations {
    Integrations::builder(
        Arc::new(MemoryStore::new()),
        TokenCipher::new(EncryptionKey::generate()),
    )
    .provider(Arc::new(provider(server)))
    .build()
}

#[tokio::test]
async fn connect_callback_refresh_disconnect_through_integrations() {
    let server = MockServer::start().await;
    mount_gateway(&server).await;
    Mock::given(method("DELETE"))
        .and(path("/onlyfans/gateway/v2/access/connections/conn_abc123"))
        .and(header("apikey", API_KEY))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let svc = integrations(&server);
    let user = UserId(11);

    let start = svc
        .connect(user, "onlyfans", Some("/settings".into()))
        .await
        .unwrap();
    assert_eq!(start.auth_url.as_str(), HOSTED);
    // The state went to the gateway as clientReferenceId.
    let init = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.url.path().ends_with("/v2/link/init"))
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&init.body).unwrap();
    assert_eq!(body["clientReferenceId"], start.state.as_str());

    // The gateway appends state and connection_id to our redirect URI.
    let params = CallbackParams::from_pairs([
        ("state", start.state.as_str()),
        ("connection_id", "conn_abc123"),
    ]);
    let conn = svc.callback(user, "onlyfans", &params).await.unwrap();
    assert_eq!(conn.redirect_url.as_deref(), Some("/settings"));
    assert_eq!(conn.account.provider_account_id, "123456");
    assert_eq!(conn.account.username.as_deref(), Some("jane"));
    assert_eq!(conn.account.status, IntegrationStatus::Connected);
    assert_eq!(conn.account.expires_at, None);
    assert_eq!(
        conn.account.metadata,
        serde_json::json!({
            "account_id": "123456",
            "username": "jane",
            "display_name": "Jane Doe",
            "avatar_url": "https://public.onlyfans.example/files/avatar.jpg"
        })
    );

    // No refresh for a gateway connection.
    let err = svc.refresh(user, "onlyfans", "123456").await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Provider(ProviderError::Unsupported {
                operation: "refresh"
            })
        ),
        "{err:?}"
    );
    let status = svc.status(user).await.unwrap();
    assert_eq!(status[0].status, IntegrationStatus::Connected);

    // The stored access token is the connection id.
    let token = svc.access_token(user, "onlyfans", "123456").await.unwrap();
    assert_eq!(token.expose_secret(), "conn_abc123");

    svc.disconnect(user, "onlyfans", "123456").await.unwrap();
    assert!(svc.status(user).await.unwrap().is_empty());
}

#[tokio::test]
async fn expired_session_at_callback_is_invalid_grant_and_nothing_is_stored() {
    let server = MockServer::start().await;
    mount_gateway(&server).await;
    let svc = integrations(&server);
    let user = UserId(12);
    let start = svc.connect(user, "onlyfans", None).await.unwrap();
    let params = CallbackParams::from_pairs([
        ("state", start.state.as_str()),
        ("connection_id", "conn_expired"),
    ]);
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
    let params =
        CallbackParams::from_pairs([("state", start.state.as_str()), ("error", "access_denied")]);
    let err = svc.callback(user, "onlyfans", &params).await.unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err:?}");
    let calls = server.received_requests().await.unwrap();
    assert!(
        calls
            .iter()
            .all(|r| r.url.path().ends_with("/v2/link/init"))
    );
}
