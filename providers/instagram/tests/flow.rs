//! The core conformance check and the whole connect → callback → refresh → disconnect
//! flow through `Integrations` with `MemoryStore`, against a local wiremock server.

use chrono::{TimeDelta, Utc};
use integrations_core::testing::{
    ProviderConformance, ProviderFlow, header_values, provider_conformance, provider_flow,
};
use integrations_core::{
    CallbackParams, ClientSecret, EncryptionKey, Error, IntegrationStatus, Integrations,
    ManualClock, MemoryStore, ProviderError, TokenCipher, UserId,
};
use integrations_instagram::{InstagramConfig, InstagramProvider, PROFILE_FIELDS};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

const CLIENT_ID: &str = "990602627938098";
const CLIENT_SECRET: &str = "app-secret-value";
const REDIRECT: &str = "https://app.example/integrations/instagram/callback";

struct FormHas(&'static str, &'static str);

impl Match for FormHas {
    fn matches(&self, request: &Request) -> bool {
        url::form_urlencoded::parse(&request.body).any(|(k, v)| k == self.0 && v == self.1)
    }
}

fn json(status: u16, body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

fn provider(server: &MockServer) -> InstagramProvider {
    let base = server.uri();
    InstagramProvider::new(
        InstagramConfig::builder()
            .client_id(CLIENT_ID)
            .client_secret(ClientSecret::new(CLIENT_SECRET))
            .redirect_uri(REDIRECT)
            .www_base_url(format!("{base}/instagram/www"))
            .api_base_url(format!("{base}/instagram/api"))
            .graph_base_url(format!("{base}/instagram/graph"))
            .build()
            .unwrap(),
    )
    .unwrap()
}

/// A small Instagram: code `good-code` works, `bad-code` is refused, the long-lived token
/// refreshes into `IGAArefreshed`.
async fn platform() -> MockServer {
    let server = MockServer::start().await;
    let form = |code: &'static str| {
        Mock::given(method("POST"))
            .and(path("/instagram/api/oauth/access_token"))
            .and(FormHas("client_id", CLIENT_ID))
            .and(FormHas("client_secret", CLIENT_SECRET))
            .and(FormHas("grant_type", "authorization_code"))
            .and(FormHas("redirect_uri", REDIRECT))
            .and(FormHas("code", code))
    };
    form("good-code")
        .respond_with(json(
            200,
            serde_json::json!({"access_token": "IGQVshort", "user_id": 17841405793187218u64}),
        ))
        .mount(&server)
        .await;
    form("bad-code")
        .respond_with(json(
            400,
            serde_json::json!({"error_type": "OAuthException", "code": 400,
                "error_message": "Matching code was not found or was already used"}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/instagram/graph/access_token"))
        .and(query_param("grant_type", "ig_exchange_token"))
        .and(query_param("client_secret", CLIENT_SECRET))
        .and(query_param("access_token", "IGQVshort"))
        .respond_with(json(
            200,
            serde_json::json!({"access_token": "IGAAlong", "token_type": "bearer", "expires_in": 5183944}),
        ))
        .mount(&server)
        .await;
    for token in ["IGAAlong", "IGAArefreshed"] {
        Mock::given(method("GET"))
            .and(path("/instagram/graph/me"))
            .and(query_param("fields", PROFILE_FIELDS))
            .and(query_param("access_token", token))
            .respond_with(json(
                200,
                serde_json::json!({"id": "7590000000000001", "user_id": "17841405793187218",
                    "username": "acme", "account_type": "BUSINESS", "followers_count": 1200}),
            ))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/instagram/graph/refresh_access_token"))
            .and(query_param("grant_type", "ig_refresh_token"))
            .and(query_param("access_token", token))
            .respond_with(json(
                200,
                serde_json::json!({"access_token": "IGAArefreshed", "token_type": "bearer", "expires_in": 5184000}),
            ))
            .mount(&server)
            .await;
    }
    server
}

#[tokio::test]
async fn provider_conformance_suite() {
    let server = platform().await;
    let instagram = provider(&server);
    provider_conformance(ProviderConformance {
        provider: &instagram,
        redirect_uri: REDIRECT,
        scopes: vec!["instagram_business_basic".into()],
        oauth_query: true,
        good_callback: CallbackParams::from_pairs([("code", "good-code#_")]),
        bad_callback: CallbackParams::from_pairs([("code", "bad-code")]),
    })
    .await;
}

#[tokio::test]
async fn a_refresh_under_24_hours_is_refused_without_a_platform_call() {
    let server = platform().await;
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let integrations = Integrations::builder(
        Arc::new(MemoryStore::new()),
        TokenCipher::new(EncryptionKey::generate()),
    )
    .provider(Arc::new(provider(&server)))
    .clock(clock.clone())
    .build();
    let user = UserId(7);

    let start = integrations
        .connect(user, "instagram", Some("/settings".into()))
        .await
        .unwrap();
    let q: HashMap<_, _> = start.auth_url.query_pairs().into_owned().collect();
    assert_eq!(q["state"], start.state);
    assert_eq!(q["client_id"], CLIENT_ID);
    assert!(!q.contains_key("code_challenge"));

    let params =
        CallbackParams::from_pairs([("code", "good-code#_"), ("state", start.state.as_str())]);
    let connection = integrations
        .callback(user, "instagram", &params)
        .await
        .unwrap();
    assert_eq!(connection.account.provider_account_id, "17841405793187218");
    assert_eq!(connection.account.username.as_deref(), Some("acme"));
    assert_eq!(connection.account.status, IntegrationStatus::Connected);
    assert_eq!(
        connection.account.metadata["ig_business_id"],
        "17841405793187218"
    );
    assert_eq!(connection.redirect_url.as_deref(), Some("/settings"));

    // Under 24 hours: refused without a platform call.
    let before = server.received_requests().await.unwrap().len();
    let err = integrations
        .refresh(user, "instagram", "17841405793187218")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Provider(ProviderError::RefreshNotYetAllowed { .. })
        ),
        "{err:?}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), before);

    clock.advance(TimeDelta::hours(25));
    let view = integrations
        .refresh(user, "instagram", "17841405793187218")
        .await
        .unwrap();
    assert_eq!(view.status, IntegrationStatus::Connected);
}

/// The core's whole flow, then what is Instagram's own: a declined consent (Meta's
/// `error_reason=user_denied`) never reaching the platform, the two-step exchange, a
/// refresh after 24 hours, a disconnect without any platform call (Instagram has no
/// revocation endpoint), and `send` carrying the token as the `access_token` query
/// parameter (no `Authorization` header) and the configured `User-Agent`.
#[tokio::test]
async fn the_whole_flow_through_integrations() {
    let server = platform().await;
    let media = "/instagram/graph/me/media";
    Mock::given(method("GET"))
        .and(path(media))
        .respond_with(json(200, serde_json::json!({"data": []})))
        .expect(1)
        .mount(&server)
        .await;
    let report = provider_flow(ProviderFlow {
        provider: Arc::new(provider(&server)),
        authorized: Box::new(|start| {
            let q: HashMap<_, _> = start.auth_url.query_pairs().into_owned().collect();
            assert_eq!(q["client_id"], CLIENT_ID);
            assert!(!q.contains_key("code_challenge"));
            CallbackParams::from_pairs([("code", "good-code#_"), ("state", start.state.as_str())])
        }),
        cancelled: Box::new(|start| {
            CallbackParams::from_pairs([
                ("error", "access_denied"),
                ("error_reason", "user_denied"),
                ("error_description", "The user denied your request."),
                ("state", start.state.as_str()),
            ])
        }),
        account_id: "17841405793187218".into(),
        username: "acme".into(),
        state_in_url: true,
        refresh_after: Duration::from_secs(25 * 3600),
        send_url: Some(format!("{}{media}?fields=id", server.uri())),
    })
    .await;
    assert_eq!(
        report.connected.metadata["ig_business_id"],
        "17841405793187218"
    );

    let received = server.received_requests().await.unwrap();
    let paths: Vec<&str> = received.iter().map(|r| r.url.path()).collect();
    assert_eq!(
        paths,
        [
            "/instagram/api/oauth/access_token",
            "/instagram/graph/access_token",
            "/instagram/graph/me",
            media,
            "/instagram/graph/refresh_access_token",
        ]
    );
    let sent = received.iter().find(|r| r.url.path() == media).unwrap();
    let values = |name: &str| header_values(&sent.headers, name);
    let ua = concat!("integrations-instagram/", env!("CARGO_PKG_VERSION"));
    assert_eq!(values("user-agent"), [ua.as_bytes()]);
    assert!(values("authorization").is_empty());
    assert_eq!(sent.url.query(), Some("fields=id&access_token=IGAAlong"));
}
