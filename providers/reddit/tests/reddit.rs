//! Reddit against a local wiremock server: every request's method, path, headers and
//! form fields are asserted.

use chrono::Utc;
use integrations_core::secret::{AccessToken, RefreshToken};
use integrations_core::{
    AuthorizationRequest, CallbackParams, ClientSecret, CodeExchange, Provider, ProviderError,
    RefreshRequest,
};
use integrations_reddit::{RedditConfig, RedditMetadata, RedditProvider};
use std::collections::BTreeMap;
use std::time::Duration;
use wiremock::matchers::{body_string, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const CLIENT_ID: &str = "my-client";
const CLIENT_SECRET: &str = "my-secret";
/// base64("my-client:my-secret")
const BASIC: &str = "Basic bXktY2xpZW50Om15LXNlY3JldA==";
const UA: &str = "web:com.example.integrations:v0.1.0 (by /u/example)";
const REDIRECT: &str = "https://app.example.com/integrations/reddit/callback";
const TOKEN_PATH: &str = "/reddit/www/api/v1/access_token";
const REVOKE_PATH: &str = "/reddit/www/api/v1/revoke_token";
const ME_PATH: &str = "/reddit/oauth/api/v1/me";

const TOKEN_JSON: &str = include_str!("fixtures/token.json");
const REFRESH_JSON: &str = include_str!("fixtures/refresh.json");
const ME_JSON: &str = include_str!("fixtures/me.json");

/// Matches a form body with exactly these fields (order-insensitive).
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
        let got: BTreeMap<String, String> = url::form_urlencoded::parse(&request.body)
            .into_owned()
            .collect();
        got == self.0
    }
}

fn config(server: &MockServer) -> integrations_reddit::RedditConfigBuilder {
    RedditConfig::builder()
        .client_id(CLIENT_ID)
        .client_secret(ClientSecret::new(CLIENT_SECRET))
        .redirect_uri(REDIRECT)
        .user_agent(UA)
        .scopes(["identity", "read"])
        .www_base_url(format!("{}/reddit/www", server.uri()))
        .oauth_base_url(format!("{}/reddit/oauth", server.uri()))
}

fn provider(server: &MockServer) -> RedditProvider {
    RedditProvider::new(config(server).build().unwrap()).unwrap()
}

/// A POST to the token endpoint with Basic auth, the User-Agent and a form body.
fn token_mock(form: FormIs) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .and(header("authorization", BASIC))
        .and(header("user-agent", UA))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(form)
}

fn code_form(code: &str) -> FormIs {
    FormIs::new(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ])
}

fn refresh_form(rt: &str) -> FormIs {
    FormIs::new(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
}

async fn exchange(
    p: &RedditProvider,
    code: &str,
) -> Result<integrations_core::TokenSet, ProviderError> {
    let params = CallbackParams::from_pairs([("code", code), ("state", "st")]);
    p.exchange_code(CodeExchange {
        params: &params,
        pkce_verifier: None,
    })
    .await
}

async fn refresh(
    p: &RedditProvider,
    rt: &str,
) -> Result<integrations_core::TokenSet, ProviderError> {
    let at = AccessToken::new("old-access");
    let rt = RefreshToken::new(rt);
    let scopes = vec!["identity".to_owned(), "read".to_owned()];
    let now = Utc::now();
    p.refresh(RefreshRequest {
        access_token: Some(&at),
        refresh_token: Some(&rt),
        issued_at: now - chrono::Duration::hours(1),
        now,
        scopes: &scopes,
    })
    .await
}

#[tokio::test]
async fn authorization_url_carries_every_required_parameter() {
    let server = MockServer::start().await;
    let p = provider(&server);
    let url = p
        .authorization_url(&AuthorizationRequest {
            state: "state-123".into(),
            pkce_challenge: None,
            scopes: vec![],
        })
        .await
        .unwrap();
    assert_eq!(
        url.as_str().split('?').next().unwrap(),
        format!("{}/reddit/www/api/v1/authorize", server.uri())
    );
    let q: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    let expected: BTreeMap<String, String> = [
        ("client_id", CLIENT_ID),
        ("response_type", "code"),
        ("state", "state-123"),
        ("redirect_uri", REDIRECT),
        ("duration", "permanent"),
        ("scope", "identity read"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(q, expected);

    // Requested scopes override the defaults; identity is kept for /api/v1/me.
    let url = p
        .authorization_url(&AuthorizationRequest {
            state: "s".into(),
            pkce_challenge: None,
            scopes: vec!["history".into(), "mysubreddits".into()],
        })
        .await
        .unwrap();
    assert!(
        url.query_pairs()
            .any(|(k, v)| k == "scope" && v == "identity history mysubreddits")
    );

    // Reddit requires a state.
    let err = p
        .authorization_url(&AuthorizationRequest {
            state: String::new(),
            pkce_challenge: None,
            scopes: vec![],
        })
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Config(_)), "{err}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn exchange_and_profile_happy_path() {
    let server = MockServer::start().await;
    token_mock(code_form("the-code"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(TOKEN_JSON, "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(ME_PATH))
        .and(header(
            "authorization",
            "bearer eyJhbGciOiJSUzI1NiJ9.access-1",
        ))
        .and(header("user-agent", UA))
        .respond_with(ResponseTemplate::new(200).set_body_raw(ME_JSON, "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    let p = provider(&server);

    let tokens = exchange(&p, "the-code").await.unwrap();
    assert_eq!(
        tokens.access_token.expose_secret(),
        "eyJhbGciOiJSUzI1NiJ9.access-1"
    );
    assert_eq!(
        tokens.refresh_token.as_ref().unwrap().expose_secret(),
        "123-refresh-abc"
    );
    assert_eq!(tokens.expires_in, Some(Duration::from_secs(3600)));
    assert_eq!(tokens.token_type.as_deref(), Some("bearer"));
    assert_eq!(tokens.scopes, ["identity", "read"]);

    let profile = p.fetch_profile(&tokens.access_token).await.unwrap();
    assert_eq!(profile.account_id, "1w72");
    assert_eq!(profile.username.as_deref(), Some("spez"));
    let meta: RedditMetadata = serde_json::from_value(profile.metadata.clone()).unwrap();
    assert_eq!(
        meta,
        RedditMetadata {
            username: "spez".into(),
            icon_img: Some(
                "https://styles.redditmedia.com/t5_3k30p/styles/profileIcon_snoo.png?width=256&height=256&crop=256:256,smart&s=0123abcd"
                    .into()
            ),
            karma: Some(1234),
        }
    );
    assert!(!profile.metadata.to_string().contains("&amp;"));
}

#[tokio::test]
async fn profile_karma_fallback_and_prefix() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(ME_PATH))
        .and(header("authorization", "bearer tok"))
        .and(header("user-agent", UA))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "id": "t2_abc12", "name": "jane", "link_karma": 40, "comment_karma": 2
        })))
        .mount(&server)
        .await;
    let profile = provider(&server)
        .fetch_profile(&AccessToken::new("tok"))
        .await
        .unwrap();
    assert_eq!(profile.account_id, "abc12");
    assert_eq!(
        profile.metadata,
        serde_json::json!({"username": "jane", "karma": 42})
    );
}

#[tokio::test]
async fn profile_errors() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(ME_PATH))
        .and(header("authorization", "bearer expired"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(serde_json::json!({"message": "Unauthorized", "error": 401})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(ME_PATH))
        .and(header("authorization", "bearer garbled"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>not json</html>"))
        .mount(&server)
        .await;
    let p = provider(&server);
    let err = p
        .fetch_profile(&AccessToken::new("expired"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::InvalidGrant { .. }), "{err}");
    let err = p
        .fetch_profile(&AccessToken::new("garbled"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Protocol { .. }), "{err}");
}

#[tokio::test]
async fn code_exchange_error_in_http_200_is_invalid_grant() {
    let server = MockServer::start().await;
    token_mock(code_form("used-code"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"error": "invalid_grant"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = exchange(&provider(&server), "used-code").await.unwrap_err();
    assert!(matches!(err, ProviderError::InvalidGrant { .. }), "{err}");
}

#[tokio::test]
async fn bad_client_credentials_401_basic_realm_is_invalid_client() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .and(header("authorization", "Basic bXktY2xpZW50Ondyb25n")) // my-client:wrong
        .and(header("user-agent", UA))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("www-authenticate", "Basic realm=\"reddit\"")
                .set_body_json(serde_json::json!({"message": "Unauthorized", "error": 401})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let p = RedditProvider::new(
        config(&server)
            .client_secret(ClientSecret::new("wrong"))
            .build()
            .unwrap(),
    )
    .unwrap();
    let err = exchange(&p, "c").await.unwrap_err();
    match err {
        ProviderError::InvalidClient { description } => {
            assert!(description.unwrap().contains("Basic"))
        }
        other => panic!("expected InvalidClient, got {other:?}"),
    }
}

#[tokio::test]
async fn refresh_keeps_the_old_refresh_token() {
    let server = MockServer::start().await;
    token_mock(refresh_form("123-refresh-abc"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(REFRESH_JSON, "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    let tokens = refresh(&provider(&server), "123-refresh-abc")
        .await
        .unwrap();
    assert_eq!(
        tokens.access_token.expose_secret(),
        "eyJhbGciOiJSUzI1NiJ9.access-2"
    );
    assert_eq!(
        tokens.refresh_token.unwrap().expose_secret(),
        "123-refresh-abc"
    );
    assert_eq!(tokens.expires_in, Some(Duration::from_secs(3600)));
    assert_eq!(tokens.scopes, ["identity", "read"]);
}

#[tokio::test]
async fn refresh_uses_a_new_refresh_token_if_one_is_sent() {
    let server = MockServer::start().await;
    token_mock(refresh_form("old-rt"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "a2", "token_type": "bearer", "expires_in": 3600,
            "scope": "identity", "refresh_token": "new-rt"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let tokens = refresh(&provider(&server), "old-rt").await.unwrap();
    assert_eq!(tokens.refresh_token.unwrap().expose_secret(), "new-rt");
}

#[tokio::test]
async fn refresh_with_a_revoked_token_is_invalid_grant() {
    let server = MockServer::start().await;
    token_mock(refresh_form("revoked-rt"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(serde_json::json!({"error": "invalid_request"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = refresh(&provider(&server), "revoked-rt").await.unwrap_err();
    assert!(matches!(err, ProviderError::InvalidGrant { .. }), "{err}");
}

#[tokio::test]
async fn refresh_without_a_refresh_token_is_invalid_grant() {
    let server = MockServer::start().await;
    let now = Utc::now();
    let err = provider(&server)
        .refresh(RefreshRequest {
            access_token: None,
            refresh_token: None,
            issued_at: now,
            now,
            scopes: &[],
        })
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::InvalidGrant { .. }), "{err}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn rate_limits_read_retry_after_then_x_ratelimit_reset() {
    let server = MockServer::start().await;
    token_mock(code_form("ra"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "30")
                .insert_header("x-ratelimit-reset", "500"),
        )
        .mount(&server)
        .await;
    token_mock(code_form("reset"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("x-ratelimit-used", "100")
                .insert_header("x-ratelimit-remaining", "0.0")
                .insert_header("x-ratelimit-reset", "12.5"),
        )
        .mount(&server)
        .await;
    token_mock(code_form("none"))
        .respond_with(ResponseTemplate::new(429))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(ME_PATH))
        .and(header("user-agent", UA))
        .respond_with(ResponseTemplate::new(429).insert_header("x-ratelimit-reset", "7"))
        .mount(&server)
        .await;
    let p = provider(&server);
    fn retry<T: std::fmt::Debug>(r: Result<T, ProviderError>) -> Option<Duration> {
        match r {
            Err(ProviderError::RateLimited { retry_after }) => retry_after,
            other => panic!("expected RateLimited, got {other:?}"),
        }
    }
    assert_eq!(
        retry(exchange(&p, "ra").await),
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        retry(exchange(&p, "reset").await),
        Some(Duration::from_secs_f64(12.5))
    );
    assert_eq!(retry(exchange(&p, "none").await), None);
    assert_eq!(
        retry(p.fetch_profile(&AccessToken::new("t")).await),
        Some(Duration::from_secs(7))
    );
}

#[tokio::test]
async fn server_errors_are_unavailable() {
    let server = MockServer::start().await;
    token_mock(code_form("c"))
        .respond_with(ResponseTemplate::new(503).set_body_string("upstream down"))
        .mount(&server)
        .await;
    token_mock(refresh_form("rt"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let p = provider(&server);
    let err = exchange(&p, "c").await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Unavailable { status: 503 }),
        "{err}"
    );
    assert!(err.is_transient());
    let err = refresh(&p, "rt").await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Unavailable { status: 500 }),
        "{err}"
    );
}

#[tokio::test]
async fn malformed_token_json_is_protocol_without_the_body() {
    let server = MockServer::start().await;
    token_mock(code_form("c"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"{"access_token": "secret-token", "expires_in": "#,
            "application/json",
        ))
        .mount(&server)
        .await;
    let err = exchange(&provider(&server), "c").await.unwrap_err();
    match &err {
        ProviderError::Protocol { body, .. } => assert!(body.is_none()),
        other => panic!("expected Protocol, got {other:?}"),
    }
    assert!(!format!("{err:?}").contains("secret-token"));
}

#[tokio::test]
async fn oversized_body_is_refused() {
    let server = MockServer::start().await;
    let big = vec![b' '; 10 * 1024 * 1024];
    token_mock(code_form("big"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(big, "application/json"))
        .mount(&server)
        .await;
    let err = exchange(&provider(&server), "big").await.unwrap_err();
    match err {
        ProviderError::Protocol { message, .. } => assert!(message.contains("limit"), "{message}"),
        other => panic!("expected Protocol, got {other:?}"),
    }
}

#[tokio::test]
async fn slow_replies_time_out() {
    let server = MockServer::start().await;
    token_mock(code_form("slow"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(TOKEN_JSON, "application/json")
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let p = RedditProvider::new(
        config(&server)
            .timeout(Duration::from_millis(200))
            .build()
            .unwrap(),
    )
    .unwrap();
    let err = exchange(&p, "slow").await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Network { timeout: true, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn user_cancel_never_reaches_the_token_endpoint() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let params = CallbackParams::from_query("?error=access_denied&state=st");
    assert_eq!(
        provider(&server).read_callback(&params).outcome,
        integrations_core::CallbackOutcome::Cancelled
    );
    // A callback with neither code nor error is malformed.
    let params = CallbackParams::from_query("state=st");
    let err = provider(&server)
        .exchange_code(CodeExchange {
            params: &params,
            pkce_verifier: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Protocol { .. }), "{err}");
}

#[tokio::test]
async fn revoke_prefers_the_refresh_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(REVOKE_PATH))
        .and(header("authorization", BASIC))
        .and(header("user-agent", UA))
        .and(FormIs::new(&[
            ("token", "rt-1"),
            ("token_type_hint", "refresh_token"),
        ]))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(REVOKE_PATH))
        .and(header("authorization", BASIC))
        .and(header("user-agent", UA))
        .and(body_string("token=at-1&token_type_hint=access_token"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let p = provider(&server);
    p.revoke(
        Some(&AccessToken::new("at-1")),
        Some(&RefreshToken::new("rt-1")),
    )
    .await
    .unwrap();
    p.revoke(Some(&AccessToken::new("at-1")), None)
        .await
        .unwrap();
    p.revoke(None, None).await.unwrap();
}

#[tokio::test]
async fn revoke_for_another_client_is_invalid_client() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(REVOKE_PATH))
        .and(header("authorization", BASIC))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(serde_json::json!({"error": "unauthorized_client"})),
        )
        .mount(&server)
        .await;
    let err = provider(&server)
        .revoke(None, Some(&RefreshToken::new("theirs")))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::InvalidClient { .. }), "{err}");
}

#[tokio::test]
async fn authorize_request_uses_reddit_bearer_spelling() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/reddit/oauth/api/v1/me/prefs"))
        .and(header("authorization", "bearer tok"))
        .and(header("user-agent", UA))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let p = provider(&server);
    let client = reqwest::Client::builder().user_agent(UA).build().unwrap();
    let req = p.authorize_request(
        client.get(format!("{}/reddit/oauth/api/v1/me/prefs", server.uri())),
        &AccessToken::new("tok"),
    );
    assert_eq!(req.send().await.unwrap().status(), 200);
}

#[test]
fn debug_never_shows_the_secret() {
    let c = RedditConfig::builder()
        .client_id(CLIENT_ID)
        .client_secret(ClientSecret::new("super-secret-value"))
        .redirect_uri(REDIRECT)
        .user_agent(UA)
        .build()
        .unwrap();
    let p = RedditProvider::new(c).unwrap();
    assert!(!format!("{p:?}").contains("super-secret-value"));
}
