//! The core provider conformance check and the whole connect → callback → refresh →
//! disconnect flow through `Integrations` with `MemoryStore`, against wiremock.

use integrations_core::testing::{
    ProviderConformance, ProviderFlow, header_values, provider_conformance, provider_flow,
};
use integrations_core::{
    CallbackParams, ClientSecret, EncryptionKey, Error, IntegrationStatus, Integrations,
    MemoryStore, ProviderError, TokenCipher, UserId,
};
use integrations_reddit::{RedditConfig, RedditProvider};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const BASIC: &str = "Basic bXktY2xpZW50Om15LXNlY3JldA==";
const UA: &str = "web:com.example.integrations:v0.1.0 (by /u/example)";
const REDIRECT: &str = "https://app.example.com/integrations/reddit/callback";
const TOKEN_PATH: &str = "/reddit/www/api/v1/access_token";
const REVOKE_PATH: &str = "/reddit/www/api/v1/revoke_token";
const ME_PATH: &str = "/reddit/oauth/api/v1/me";
const TOKEN_JSON: &str = include_str!("fixtures/token.json");
const REFRESH_JSON: &str = include_str!("fixtures/refresh.json");
const ME_JSON: &str = include_str!("fixtures/me.json");

struct FormIs(BTreeMap<String, String>);

impl FormIs {
    fn new(pairs: &[(&str, &str)]) -> Self {
        Self(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }
}

impl wiremock::Match for FormIs {
    fn matches(&self, request: &Request) -> bool {
        url::form_urlencoded::parse(&request.body)
            .into_owned()
            .collect::<BTreeMap<_, _>>()
            == self.0
    }
}

fn provider(server: &MockServer) -> RedditProvider {
    RedditProvider::new(
        RedditConfig::builder()
            .client_id("my-client")
            .client_secret(ClientSecret::new("my-secret"))
            .redirect_uri(REDIRECT)
            .user_agent(UA)
            .scopes(["identity", "read"])
            .www_base_url(format!("{}/reddit/www", server.uri()))
            .oauth_base_url(format!("{}/reddit/oauth", server.uri()))
            .build()
            .unwrap(),
    )
    .unwrap()
}

fn token(form: FormIs) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .and(header("authorization", BASIC))
        .and(header("user-agent", UA))
        .and(form)
}

fn code_form(code: &str) -> FormIs {
    FormIs::new(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ])
}

/// Token (good and bad code), refresh and /me, as a Reddit app would see them.
async fn mount_reddit(server: &MockServer) {
    token(code_form("good-code"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(TOKEN_JSON, "application/json"))
        .mount(server)
        .await;
    // Reddit's quirk: a refused code is HTTP 200 with an error body.
    token(code_form("bad-code"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"error": "invalid_grant"})),
        )
        .mount(server)
        .await;
    token(FormIs::new(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", "123-refresh-abc"),
    ]))
    .respond_with(ResponseTemplate::new(200).set_body_raw(REFRESH_JSON, "application/json"))
    .mount(server)
    .await;
    Mock::given(method("GET"))
        .and(path(ME_PATH))
        .and(header(
            "authorization",
            "bearer eyJhbGciOiJSUzI1NiJ9.access-1",
        ))
        .and(header("user-agent", UA))
        .respond_with(ResponseTemplate::new(200).set_body_raw(ME_JSON, "application/json"))
        .mount(server)
        .await;
}

#[tokio::test]
async fn reddit_meets_the_provider_conformance_check() {
    let server = MockServer::start().await;
    mount_reddit(&server).await;
    let p = provider(&server);
    provider_conformance(ProviderConformance {
        provider: &p,
        redirect_uri: REDIRECT,
        scopes: vec!["identity".into(), "read".into()],
        oauth_query: true,
        good_callback: CallbackParams::from_pairs([("code", "good-code")]),
        bad_callback: CallbackParams::from_pairs([("code", "bad-code")]),
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

/// The core's whole flow, then what is Reddit's own: `duration=permanent` and no PKCE on
/// the authorization URL, the refresh token kept through the refresh (the revocation
/// names the original one), a declined consent never reaching Reddit, and `send` carrying
/// Reddit's bearer spelling and the configured `User-Agent` in place of the caller's.
#[tokio::test]
async fn the_whole_flow_through_integrations() {
    let server = MockServer::start().await;
    mount_reddit(&server).await;
    Mock::given(method("POST"))
        .and(path(REVOKE_PATH))
        .and(header("authorization", BASIC))
        .and(header("user-agent", UA))
        .and(FormIs::new(&[
            ("token", "123-refresh-abc"),
            ("token_type_hint", "refresh_token"),
        ]))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let karma = "/reddit/oauth/api/v1/me/karma";
    Mock::given(method("GET"))
        .and(path(karma))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"data": []})))
        .expect(1)
        .mount(&server)
        .await;
    let report = provider_flow(ProviderFlow {
        provider: Arc::new(provider(&server)),
        authorized: Box::new(|start| {
            let q: BTreeMap<String, String> = start.auth_url.query_pairs().into_owned().collect();
            assert_eq!(q.get("duration").map(String::as_str), Some("permanent"));
            assert!(!q.contains_key("code_challenge"));
            CallbackParams::from_pairs([("code", "good-code"), ("state", start.state.as_str())])
        }),
        cancelled: Box::new(|start| {
            CallbackParams::from_pairs([
                ("error", "access_denied"),
                ("state", start.state.as_str()),
            ])
        }),
        account_id: "1w72".into(),
        username: "spez".into(),
        state_in_url: true,
        refresh_after: Duration::ZERO,
        send_url: Some(format!("{}{karma}", server.uri())),
    })
    .await;
    assert_eq!(report.connected.metadata["karma"], 1234);
    assert!(report.connected.expires_at.is_some());

    let received = server.received_requests().await.unwrap();
    let token_calls = received
        .iter()
        .filter(|r| r.url.path() == TOKEN_PATH)
        .count();
    assert_eq!(
        token_calls, 2,
        "the code exchange and the refresh, nothing for the decline"
    );
    let sent = received.iter().find(|r| r.url.path() == karma).unwrap();
    let values = |name: &str| header_values(&sent.headers, name);
    assert_eq!(values("user-agent"), [UA.as_bytes()]);
    assert_eq!(
        values("authorization"),
        [b"bearer eyJhbGciOiJSUzI1NiJ9.access-1".as_slice()]
    );
    assert_eq!(sent.url.query(), None);
}

#[tokio::test]
async fn revoked_refresh_token_marks_the_account_needs_reconnect() {
    let server = MockServer::start().await;
    token(FormIs::new(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", "123-refresh-abc"),
    ]))
    .respond_with(
        ResponseTemplate::new(400).set_body_json(serde_json::json!({"error": "invalid_request"})),
    )
    .mount(&server)
    .await;
    mount_reddit(&server).await;
    let svc = integrations(&server);
    let user = UserId(8);
    let start = svc.connect(user, "reddit", None).await.unwrap();
    let params =
        CallbackParams::from_pairs([("code", "good-code"), ("state", start.state.as_str())]);
    svc.callback(user, "reddit", &params).await.unwrap();

    let err = svc.refresh(user, "reddit", "1w72").await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::NeedsReconnect | Error::Provider(ProviderError::InvalidGrant { .. })
        ),
        "{err:?}"
    );
    let status = svc.status(user).await.unwrap();
    assert_eq!(status[0].status, IntegrationStatus::NeedsReconnect);
}
