//! Instagram provider against a local wiremock server: what each request carries, and how
//! every kind of reply is mapped.

use chrono::{TimeDelta, TimeZone, Utc};
use integrations_core::{
    AccessToken, AuthorizationRequest, CallbackParams, ClientSecret, CodeExchange, PkceSupport,
    Provider, ProviderError, RefreshRequest,
};
use integrations_instagram::{
    InstagramConfig, InstagramConfigBuilder, InstagramMetadata, InstagramProvider, PROFILE_FIELDS,
};
use std::collections::HashMap;
use std::time::Duration;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

const CLIENT_ID: &str = "990602627938098";
const CLIENT_SECRET: &str = "app-secret-value";
const REDIRECT: &str = "https://app.example/integrations/instagram/callback";

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Matches a form-encoded body that carries exactly these pairs (and nothing else).
struct FormIs(Vec<(&'static str, String)>);

impl Match for FormIs {
    fn matches(&self, request: &Request) -> bool {
        let got: HashMap<String, String> = url::form_urlencoded::parse(&request.body)
            .into_owned()
            .collect();
        got.len() == self.0.len() && self.0.iter().all(|(k, v)| got.get(*k) == Some(v))
    }
}

/// Matches a request whose query has exactly these keys.
struct QueryKeys(&'static [&'static str]);

impl Match for QueryKeys {
    fn matches(&self, request: &Request) -> bool {
        let mut keys: Vec<String> = request
            .url
            .query_pairs()
            .map(|(k, _)| k.into_owned())
            .collect();
        keys.sort();
        let mut want: Vec<&str> = self.0.to_vec();
        want.sort();
        keys == want
    }
}

fn config(server: &MockServer) -> InstagramConfigBuilder {
    let base = server.uri();
    InstagramConfig::builder()
        .client_id(CLIENT_ID)
        .client_secret(ClientSecret::new(CLIENT_SECRET))
        .redirect_uri(REDIRECT)
        .www_base_url(format!("{base}/instagram/www"))
        .api_base_url(format!("{base}/instagram/api"))
        .graph_base_url(format!("{base}/instagram/graph/"))
}

async fn setup() -> (MockServer, InstagramProvider) {
    let server = MockServer::start().await;
    let provider = InstagramProvider::new(config(&server).build().unwrap()).unwrap();
    (server, provider)
}

fn code_form(code: &str) -> FormIs {
    FormIs(vec![
        ("client_id", CLIENT_ID.into()),
        ("client_secret", CLIENT_SECRET.into()),
        ("grant_type", "authorization_code".into()),
        ("redirect_uri", REDIRECT.into()),
        ("code", code.into()),
    ])
}

async fn mount_code_exchange(server: &MockServer, code: &str, reply: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path("/instagram/api/oauth/access_token"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(code_form(code))
        .respond_with(reply)
        .expect(1)
        .mount(server)
        .await;
}

async fn mount_long_lived(server: &MockServer, short: &str, reply: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path("/instagram/graph/access_token"))
        .and(query_param("grant_type", "ig_exchange_token"))
        .and(query_param("client_secret", CLIENT_SECRET))
        .and(query_param("access_token", short))
        .and(QueryKeys(&["grant_type", "client_secret", "access_token"]))
        .respond_with(reply)
        .expect(1)
        .mount(server)
        .await;
}

fn json(status: u16, body: String) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body, "application/json")
}

async fn exchange(
    provider: &InstagramProvider,
    query: &str,
) -> Result<integrations_core::TokenSet, ProviderError> {
    let params = CallbackParams::from_query(query);
    provider
        .exchange_code(CodeExchange {
            params: &params,
            pkce_verifier: None,
        })
        .await
}

fn at(hours: i64) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap() + TimeDelta::hours(hours)
}

async fn refresh(
    provider: &InstagramProvider,
    token: &AccessToken,
    age_hours: i64,
) -> Result<integrations_core::TokenSet, ProviderError> {
    let scopes = vec!["instagram_business_basic".to_owned()];
    provider
        .refresh(RefreshRequest {
            access_token: Some(token),
            refresh_token: None,
            issued_at: at(0),
            now: at(age_hours),
            scopes: &scopes,
        })
        .await
}

async fn profile_error(reply: ResponseTemplate) -> ProviderError {
    let (server, provider) = setup().await;
    Mock::given(method("GET"))
        .and(path("/instagram/graph/me"))
        .respond_with(reply)
        .expect(1)
        .mount(&server)
        .await;
    provider
        .fetch_profile(&AccessToken::new("IGAAlong-lived-token"))
        .await
        .unwrap_err()
}

#[test]
fn public_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<InstagramProvider>();
    check::<InstagramConfig>();
    check::<InstagramConfigBuilder>();
    check::<InstagramMetadata>();
}

#[tokio::test]
async fn capabilities_are_declared() {
    let (_server, provider) = setup().await;
    assert_eq!(provider.id().as_str(), "instagram");
    let caps = provider.capabilities();
    assert_eq!(caps.pkce, PkceSupport::Unsupported);
    assert!(caps.refresh);
    assert!(!caps.revoke);
    assert_eq!(
        caps.min_token_age_for_refresh,
        Some(Duration::from_secs(86_400))
    );
    assert!(
        !provider.refresh_needs_refresh_token(),
        "Instagram refreshes the access token itself"
    );
    assert!(!format!("{provider:?}").contains(CLIENT_SECRET));
}

#[tokio::test]
async fn config_is_built_and_exposed() {
    let (server, provider) = setup().await;
    let c = provider.config();
    assert_eq!(c.client_id(), CLIENT_ID);
    assert_eq!(c.redirect_uri().as_str(), REDIRECT);
    // The helper's graph URL ends with `/`; it is trimmed.
    assert_eq!(
        c.graph_base_url(),
        format!("{}/instagram/graph", server.uri())
    );
    assert!(!format!("{c:?}").contains(CLIENT_SECRET));
    assert!(!format!("{:?}", config(&server)).contains(CLIENT_SECRET));
    let err = config(&server)
        .redirect_uri("no-scheme/cb")
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Config(m) if m.contains("INSTAGRAM_REDIRECT_URI")),
        "{err}"
    );
    let err = InstagramConfig::builder()
        .client_id(CLIENT_ID)
        .redirect_uri(REDIRECT)
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Config(m) if m.contains("client_secret")),
        "{err}"
    );
}

#[tokio::test]
async fn authorization_url_carries_every_parameter() {
    let (server, provider) = setup().await;
    let url = provider
        .authorization_url(&AuthorizationRequest {
            state: "state-123".into(),
            pkce_challenge: None,
            scopes: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(
        url.as_str().split('?').next().unwrap(),
        format!("{}/instagram/www/oauth/authorize", server.uri())
    );
    let q: HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["redirect_uri"], REDIRECT);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["scope"], "instagram_business_basic");
    assert_eq!(q["state"], "state-123");
    assert_eq!(q.len(), 5, "{q:?}");

    let url = provider
        .authorization_url(&AuthorizationRequest {
            state: "s".into(),
            pkce_challenge: None,
            scopes: vec![
                "instagram_business_basic".into(),
                "instagram_business_content_publish".into(),
            ],
        })
        .await
        .unwrap();
    let q: HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(
        q["scope"],
        "instagram_business_basic,instagram_business_content_publish"
    );
}

#[tokio::test]
async fn default_hosts_are_the_real_ones() {
    let provider = InstagramProvider::new(
        InstagramConfig::builder()
            .client_id(CLIENT_ID)
            .client_secret(ClientSecret::new(CLIENT_SECRET))
            .redirect_uri(REDIRECT)
            .build()
            .unwrap(),
    )
    .unwrap();
    let url = provider
        .authorization_url(&AuthorizationRequest {
            state: "s".into(),
            pkce_challenge: None,
            scopes: Vec::new(),
        })
        .await
        .unwrap();
    assert!(
        url.as_str()
            .starts_with("https://www.instagram.com/oauth/authorize?"),
        "{url}"
    );
}

#[tokio::test]
async fn exchange_flat_reply_then_long_lived_token() {
    let (server, provider) = setup().await;
    // Meta appends `#_`; the code sent is without it.
    mount_code_exchange(
        &server,
        "AQBcode",
        json(200, fixture("short_lived_flat.json")),
    )
    .await;
    mount_long_lived(
        &server,
        "IGQVshort-lived-token",
        json(200, fixture("long_lived.json")),
    )
    .await;

    let tokens = exchange(&provider, "code=AQBcode%23_&state=s")
        .await
        .unwrap();
    assert_eq!(tokens.access_token.expose_secret(), "IGAAlong-lived-token");
    assert_eq!(tokens.expires_in, Some(Duration::from_secs(5_183_944)));
    assert_eq!(tokens.token_type.as_deref(), Some("bearer"));
    assert!(tokens.refresh_token.is_none());
    assert!(tokens.scopes.is_empty());
}

#[tokio::test]
async fn exchange_data_array_reply() {
    let (server, provider) = setup().await;
    mount_code_exchange(
        &server,
        "AQBcode",
        json(200, fixture("short_lived_data.json")),
    )
    .await;
    mount_long_lived(
        &server,
        "IGAAshort-lived-token",
        json(200, fixture("long_lived.json")),
    )
    .await;

    let tokens = exchange(&provider, "code=AQBcode&state=s").await.unwrap();
    assert_eq!(tokens.access_token.expose_secret(), "IGAAlong-lived-token");
    assert_eq!(
        tokens.scopes,
        [
            "instagram_business_basic",
            "instagram_business_manage_comments"
        ]
    );
}

#[tokio::test]
async fn user_cancelled_redirect_makes_no_request() {
    let (server, provider) = setup().await;
    // The redirect's error is read by `read_callback` before any exchange.
    let params = integrations_core::CallbackParams::from_query(
        "error=access_denied&error_reason=user_denied&error_description=The+user+denied+your+request.&state=s",
    );
    assert_eq!(
        provider.read_callback(&params).outcome,
        integrations_core::CallbackOutcome::Cancelled
    );
    assert!(server.received_requests().await.unwrap().is_empty());
    let err = exchange(&provider, "state=s").await.unwrap_err();
    assert!(matches!(err, ProviderError::Protocol { .. }), "{err:?}");
}

#[tokio::test]
async fn legacy_error_on_code_exchange_is_invalid_grant() {
    let (server, provider) = setup().await;
    mount_code_exchange(
        &server,
        "AQBused-code",
        json(400, fixture("legacy_error.json")),
    )
    .await;
    let err = exchange(&provider, "code=AQBused-code&state=s")
        .await
        .unwrap_err();
    match err {
        ProviderError::InvalidGrant { description } => {
            assert!(description.unwrap().contains("already used"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn graph_error_on_long_lived_exchange_is_typed() {
    let (server, provider) = setup().await;
    mount_code_exchange(
        &server,
        "AQBcode",
        json(200, fixture("short_lived_flat.json")),
    )
    .await;
    mount_long_lived(
        &server,
        "IGQVshort-lived-token",
        json(400, fixture("graph_error_190.json")),
    )
    .await;
    let err = exchange(&provider, "code=AQBcode&state=s")
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::InvalidGrant { .. }), "{err:?}");
    assert!(!format!("{err:?}").contains("IGQVshort"));
}

#[tokio::test]
async fn code_exchange_rate_limit_and_outage() {
    let (server, provider) = setup().await;
    mount_code_exchange(
        &server,
        "a",
        ResponseTemplate::new(429).insert_header("retry-after", "30"),
    )
    .await;
    mount_code_exchange(&server, "b", ResponseTemplate::new(502)).await;
    mount_code_exchange(
        &server,
        "c",
        json(200, "{\"access_token\": \"IGQVtrunc".into()),
    )
    .await;
    assert!(matches!(
        exchange(&provider, "code=a").await.unwrap_err(),
        ProviderError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(30)
    ));
    assert!(matches!(
        exchange(&provider, "code=b").await.unwrap_err(),
        ProviderError::Unavailable { status: 502 }
    ));
    let err = exchange(&provider, "code=c").await.unwrap_err();
    assert!(matches!(err, ProviderError::Protocol { .. }), "{err:?}");
    assert!(!format!("{err:?}").contains("IGQVtrunc"), "{err:?}");
}

#[tokio::test]
async fn refresh_before_24_hours_makes_no_request() {
    let (server, provider) = setup().await;
    let token = AccessToken::new("IGAAlong-lived-token");
    let err = refresh(&provider, &token, 23).await.unwrap_err();
    match err {
        ProviderError::RefreshNotYetAllowed { not_before } => assert_eq!(not_before, at(24)),
        other => panic!("{other:?}"),
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn refresh_after_24_hours() {
    let (server, provider) = setup().await;
    Mock::given(method("GET"))
        .and(path("/instagram/graph/refresh_access_token"))
        .and(query_param("grant_type", "ig_refresh_token"))
        .and(query_param("access_token", "IGAAlong-lived-token"))
        .and(QueryKeys(&["grant_type", "access_token"]))
        .respond_with(json(200, fixture("refreshed.json")))
        .expect(1)
        .mount(&server)
        .await;
    let token = AccessToken::new("IGAAlong-lived-token");
    let tokens = refresh(&provider, &token, 24).await.unwrap();
    assert_eq!(tokens.access_token.expose_secret(), "IGAArefreshed-token");
    assert_eq!(tokens.expires_in, Some(Duration::from_secs(5_184_000)));
    assert_eq!(tokens.scopes, ["instagram_business_basic"]);
    assert!(tokens.refresh_token.is_none());
}

#[tokio::test]
async fn refresh_of_an_expired_token_is_invalid_grant() {
    let (server, provider) = setup().await;
    Mock::given(method("GET"))
        .and(path("/instagram/graph/refresh_access_token"))
        .respond_with(json(400, fixture("graph_error_190.json")))
        .expect(1)
        .mount(&server)
        .await;
    let err = refresh(&provider, &AccessToken::new("IGAAdead"), 48 * 30)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::InvalidGrant { .. }), "{err:?}");
}

#[tokio::test]
async fn profile_reads_the_professional_account() {
    let (server, provider) = setup().await;
    Mock::given(method("GET"))
        .and(path("/instagram/graph/me"))
        .and(query_param("fields", PROFILE_FIELDS))
        .and(query_param("access_token", "IGAAlong-lived-token"))
        .respond_with(json(200, fixture("me.json")))
        .expect(1)
        .mount(&server)
        .await;
    let profile = provider
        .fetch_profile(&AccessToken::new("IGAAlong-lived-token"))
        .await
        .unwrap();
    assert_eq!(profile.account_id, "17841405793187218");
    assert_eq!(profile.username.as_deref(), Some("acme"));
    assert_eq!(
        profile.metadata,
        serde_json::json!({
            "ig_business_id": "17841405793187218", "username": "acme",
            "profile_picture_url": "https://scontent.example/acme.jpg",
            "followers_count": 1200, "name": "Acme", "account_type": "BUSINESS",
            "platform_aliases": ["7590000000000001"],
            "follows_count": 80, "media_count": 54
        })
    );
    let meta: InstagramMetadata = serde_json::from_value(profile.metadata).unwrap();
    assert_eq!(meta.ig_business_id, "17841405793187218");
}

#[tokio::test]
async fn profile_graph_errors() {
    assert!(matches!(
        profile_error(json(400, fixture("graph_error_190.json"))).await,
        ProviderError::InvalidGrant { .. }
    ));
    assert!(matches!(
        profile_error(json(400, fixture("graph_error_throttled.json"))).await,
        ProviderError::RateLimited { retry_after: None }
    ));
    assert!(matches!(
        profile_error(json(403, fixture("graph_error_permission.json"))).await,
        ProviderError::InvalidClient { .. }
    ));
}

#[tokio::test]
async fn profile_rate_limit_with_and_without_retry_after() {
    assert!(matches!(
        profile_error(ResponseTemplate::new(429).insert_header("retry-after", "120")).await,
        ProviderError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(120)
    ));
    assert!(matches!(
        profile_error(ResponseTemplate::new(429)).await,
        ProviderError::RateLimited { retry_after: None }
    ));
}

#[tokio::test]
async fn profile_server_error_is_unavailable() {
    assert!(matches!(
        profile_error(ResponseTemplate::new(503).set_body_string("down")).await,
        ProviderError::Unavailable { status: 503 }
    ));
}

#[tokio::test]
async fn profile_malformed_json_is_protocol() {
    let err = profile_error(json(200, "{\"user_id\": ".into())).await;
    assert!(matches!(err, ProviderError::Protocol { .. }), "{err:?}");
    let err = profile_error(json(200, "{\"username\": \"acme\"}".into())).await;
    assert!(matches!(err, ProviderError::Protocol { .. }), "{err:?}");
}

#[tokio::test]
async fn oversized_body_is_refused() {
    let err = profile_error(ResponseTemplate::new(200).set_body_string("x".repeat(10 << 20))).await;
    match err {
        ProviderError::Protocol { message, body } => {
            assert!(message.contains("limit"), "{message}");
            assert!(body.is_none());
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn slow_reply_times_out() {
    let server = MockServer::start().await;
    let provider = InstagramProvider::new(
        config(&server)
            .timeout(Duration::from_millis(200))
            .build()
            .unwrap(),
    )
    .unwrap();
    Mock::given(method("GET"))
        .and(path("/instagram/graph/me"))
        .respond_with(json(200, fixture("me.json")).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let err = provider
        .fetch_profile(&AccessToken::new("IGAAlong-lived-token"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::Network { timeout: true, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn access_token_never_appears_in_errors() {
    let token = "IGAAsecret-token-never-printed";
    for reply in [
        json(
            400,
            serde_json::json!({"error": {"message": format!("Invalid OAuth access token {token}"),
                "type": "OAuthException", "code": 190}})
            .to_string(),
        ),
        json(
            400,
            serde_json::json!({"error": {"message": format!("Unsupported get request {token}"),
                "type": "GraphMethodException", "code": 100}})
            .to_string(),
        ),
        ResponseTemplate::new(418).set_body_string(format!("teapot {token}")),
        json(200, format!("{{\"user_id\": \"{token}\" ")),
    ] {
        let (server, provider) = setup().await;
        Mock::given(method("GET"))
            .and(path("/instagram/graph/me"))
            .respond_with(reply)
            .mount(&server)
            .await;
        let err = provider
            .fetch_profile(&AccessToken::new(token))
            .await
            .unwrap_err();
        let printed = format!("{err} {err:?}");
        assert!(!printed.contains(token), "{printed}");
    }
}

#[tokio::test]
async fn revoke_is_unsupported() {
    let (server, provider) = setup().await;
    let err = provider
        .revoke(Some(&AccessToken::new("IGAAx")), None)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ProviderError::Unsupported {
            operation: "revoke"
        }
    ));
    assert!(server.received_requests().await.unwrap().is_empty());
}
