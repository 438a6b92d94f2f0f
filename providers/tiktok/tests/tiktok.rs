//! TikTok provider against a local wiremock server: what each request carries, and how
//! every kind of reply is mapped.

use chrono::{TimeZone, Utc};
use integrations_core::oauth::{generate_pkce_verifier, pkce_challenge};
use integrations_core::{
    AccessToken, AuthorizationRequest, CallbackParams, ClientSecret, CodeExchange, PkceSupport,
    PkceVerifier, Provider, ProviderError, RefreshRequest, RefreshToken, TokenSet,
};
use integrations_tiktok::{
    PkceChallengeEncoding, TikTokConfig, TikTokConfigBuilder, TikTokMetadata, TikTokProvider,
};
use std::collections::HashMap;
use std::time::Duration;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

const CLIENT_KEY: &str = "awclientkey123";
const CLIENT_SECRET: &str = "tiktok-client-secret";
const REDIRECT: &str = "https://app.example/integrations/tiktok/callback";
const FIELDS: &str = "open_id,union_id,avatar_url,display_name,username";

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

fn config(server: &MockServer) -> TikTokConfigBuilder {
    let base = server.uri();
    TikTokConfig::builder()
        .client_key(CLIENT_KEY)
        .client_secret(ClientSecret::new(CLIENT_SECRET))
        .redirect_uri(REDIRECT)
        .www_base_url(format!("{base}/tiktok/www/"))
        .api_base_url(format!("{base}/tiktok/open"))
}

async fn setup() -> (MockServer, TikTokProvider) {
    let server = MockServer::start().await;
    let provider = TikTokProvider::new(config(&server).build().unwrap()).unwrap();
    (server, provider)
}

fn json(status: u16, body: String) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body, "application/json")
}

fn code_form(code: &str, verifier: &str) -> FormIs {
    FormIs(vec![
        ("client_key", CLIENT_KEY.into()),
        ("client_secret", CLIENT_SECRET.into()),
        ("code", code.into()),
        ("grant_type", "authorization_code".into()),
        ("redirect_uri", REDIRECT.into()),
        ("code_verifier", verifier.into()),
    ])
}

fn refresh_form(refresh_token: &str) -> FormIs {
    FormIs(vec![
        ("client_key", CLIENT_KEY.into()),
        ("client_secret", CLIENT_SECRET.into()),
        ("grant_type", "refresh_token".into()),
        ("refresh_token", refresh_token.into()),
    ])
}

async fn mount_token(server: &MockServer, form: FormIs, reply: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path("/tiktok/open/v2/oauth/token/"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(form)
        .respond_with(reply)
        .expect(1)
        .mount(server)
        .await;
}

async fn exchange(
    provider: &TikTokProvider,
    query: &str,
    verifier: &PkceVerifier,
) -> Result<TokenSet, ProviderError> {
    let params = CallbackParams::from_query(query);
    provider
        .exchange_code(CodeExchange {
            params: &params,
            pkce_verifier: Some(verifier),
        })
        .await
}

async fn refresh(
    provider: &TikTokProvider,
    refresh_token: &RefreshToken,
) -> Result<TokenSet, ProviderError> {
    let access = AccessToken::new("act.first-access-token");
    let scopes = vec!["user.info.basic".to_owned()];
    let t = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    provider
        .refresh(RefreshRequest {
            access_token: Some(&access),
            refresh_token: Some(refresh_token),
            issued_at: t,
            now: t + chrono::TimeDelta::minutes(5),
            scopes: &scopes,
        })
        .await
}

async fn profile_error(reply: ResponseTemplate) -> ProviderError {
    let (server, provider) = setup().await;
    Mock::given(method("GET"))
        .and(path("/tiktok/open/v2/user/info/"))
        .respond_with(reply)
        .expect(1)
        .mount(&server)
        .await;
    provider
        .fetch_profile(&AccessToken::new("act.first-access-token"))
        .await
        .unwrap_err()
}

#[test]
fn public_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<TikTokProvider>();
    check::<TikTokConfig>();
    check::<TikTokConfigBuilder>();
    check::<TikTokMetadata>();
}

#[tokio::test]
async fn capabilities_are_declared() {
    let (_server, provider) = setup().await;
    assert_eq!(provider.id().as_str(), "tiktok");
    let caps = provider.capabilities();
    assert_eq!(caps.pkce, PkceSupport::Supported);
    assert!(caps.refresh);
    assert!(caps.revoke);
    assert_eq!(caps.min_token_age_for_refresh, None);
    assert!(!format!("{provider:?}").contains(CLIENT_SECRET));
}

#[tokio::test]
async fn config_is_built_and_exposed() {
    let (server, provider) = setup().await;
    let c = provider.config();
    assert_eq!(c.client_key(), CLIENT_KEY);
    assert_eq!(c.redirect_uri().as_str(), REDIRECT);
    assert_eq!(c.user_info_fields(), FIELDS);
    // The helper's www URL ends with `/`; it is trimmed.
    assert_eq!(c.www_base_url(), format!("{}/tiktok/www", server.uri()));
    assert!(!format!("{c:?}").contains(CLIENT_SECRET));
    assert!(!format!("{:?}", config(&server)).contains(CLIENT_SECRET));
    let err = config(&server)
        .redirect_uri("no-scheme/cb")
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Config(m) if m.contains("TIKTOK_REDIRECT_URI")),
        "{err}"
    );
    let err = TikTokConfig::builder()
        .client_key(CLIENT_KEY)
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
    let verifier = PkceVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
    let url = provider
        .authorization_url(&AuthorizationRequest {
            state: "state-123".into(),
            pkce_challenge: Some(pkce_challenge(&verifier)),
            scopes: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(
        url.as_str().split('?').next().unwrap(),
        format!("{}/tiktok/www/v2/auth/authorize/", server.uri())
    );
    let q: HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["client_key"], CLIENT_KEY);
    assert!(!q.contains_key("client_id"));
    assert_eq!(q["scope"], "user.info.basic");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["redirect_uri"], REDIRECT);
    assert_eq!(q["state"], "state-123");
    // RFC 7636 appendix B.
    assert_eq!(
        q["code_challenge"],
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q.len(), 7, "{q:?}");

    let url = provider
        .authorization_url(&AuthorizationRequest {
            state: "s".into(),
            pkce_challenge: Some(pkce_challenge(&verifier)),
            scopes: vec!["user.info.basic".into(), "user.info.profile".into()],
        })
        .await
        .unwrap();
    let q: HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["scope"], "user.info.basic,user.info.profile");
}

#[tokio::test]
async fn hex_challenge_is_configurable() {
    let server = MockServer::start().await;
    let provider = TikTokProvider::new(
        config(&server)
            .pkce_encoding(PkceChallengeEncoding::Hex)
            .build()
            .unwrap(),
    )
    .unwrap();
    let verifier = PkceVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
    let challenge = pkce_challenge(&verifier);
    let url = provider
        .authorization_url(&AuthorizationRequest {
            state: "s".into(),
            pkce_challenge: Some(challenge.clone()),
            scopes: Vec::new(),
        })
        .await
        .unwrap();
    let q: HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge"], challenge.s256_hex);
    assert_eq!(q["code_challenge"].len(), 64);
    assert_eq!(q["code_challenge_method"], "S256");
}

#[tokio::test]
async fn default_hosts_are_the_real_ones() {
    let provider = TikTokProvider::new(
        TikTokConfig::builder()
            .client_key(CLIENT_KEY)
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
            .starts_with("https://www.tiktok.com/v2/auth/authorize/?"),
        "{url}"
    );
}

#[tokio::test]
async fn exchange_sends_the_verifier_and_keeps_lifetimes() {
    let (server, provider) = setup().await;
    let verifier = generate_pkce_verifier();
    mount_token(
        &server,
        code_form("code-from-tiktok", verifier.expose_secret()),
        json(200, fixture("token.json")),
    )
    .await;
    let tokens = exchange(
        &provider,
        "code=code-from-tiktok&scopes=user.info.basic&state=s",
        &verifier,
    )
    .await
    .unwrap();
    assert_eq!(
        tokens.access_token.expose_secret(),
        "act.first-access-token"
    );
    assert_eq!(
        tokens.refresh_token.as_ref().unwrap().expose_secret(),
        "rft.first-refresh-token"
    );
    assert_eq!(tokens.expires_in, Some(Duration::from_secs(86_400)));
    assert_eq!(
        tokens.refresh_expires_in,
        Some(Duration::from_secs(31_536_000))
    );
    assert_eq!(tokens.token_type.as_deref(), Some("Bearer"));
    assert_eq!(tokens.scopes, ["user.info.basic", "user.info.profile"]);
}

#[tokio::test]
async fn user_cancelled_redirect_makes_no_request() {
    let (server, provider) = setup().await;
    let params = integrations_core::CallbackParams::from_query(
        "error=access_denied&error_description=User+cancelled+the+authorization&state=s",
    );
    assert_eq!(
        provider.read_callback(&params).outcome,
        integrations_core::CallbackOutcome::Cancelled
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn expired_code_is_invalid_grant() {
    let (server, provider) = setup().await;
    let verifier = generate_pkce_verifier();
    mount_token(
        &server,
        code_form("expired-code", verifier.expose_secret()),
        json(400, fixture("invalid_grant.json")),
    )
    .await;
    let err = exchange(&provider, "code=expired-code&state=s", &verifier)
        .await
        .unwrap_err();
    match err {
        ProviderError::InvalidGrant { description } => {
            let d = description.unwrap();
            assert!(
                d.contains("expired") && d.contains("20231125000000ABCDEF"),
                "{d}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn token_error_with_http_200_is_still_an_error() {
    let (server, provider) = setup().await;
    let verifier = generate_pkce_verifier();
    mount_token(
        &server,
        code_form("expired-code", verifier.expose_secret()),
        json(200, fixture("invalid_grant.json")),
    )
    .await;
    let err = exchange(&provider, "code=expired-code&state=s", &verifier)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::InvalidGrant { .. }), "{err:?}");
}

#[tokio::test]
async fn bad_client_is_invalid_client() {
    let (server, provider) = setup().await;
    let verifier = generate_pkce_verifier();
    mount_token(
        &server,
        code_form("some-code-1", verifier.expose_secret()),
        json(
            401,
            r#"{"error":"invalid_client","error_description":"Client key or secret is incorrect.","log_id":"L"}"#
                .into(),
        ),
    )
    .await;
    let err = exchange(&provider, "code=some-code-1&state=s", &verifier)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::InvalidClient { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn refresh_returns_the_rotated_refresh_token() {
    let (server, provider) = setup().await;
    mount_token(
        &server,
        refresh_form("rft.first-refresh-token"),
        json(200, fixture("refreshed.json")),
    )
    .await;
    let tokens = refresh(&provider, &RefreshToken::new("rft.first-refresh-token"))
        .await
        .unwrap();
    assert_eq!(
        tokens.access_token.expose_secret(),
        "act.second-access-token"
    );
    assert_eq!(
        tokens.refresh_token.as_ref().unwrap().expose_secret(),
        "rft.rotated-refresh-token"
    );
    // Lifetimes come from the reply (here the newer 2 h / 180 d), never from constants.
    assert_eq!(tokens.expires_in, Some(Duration::from_secs(7_200)));
    assert_eq!(
        tokens.refresh_expires_in,
        Some(Duration::from_secs(15_552_000))
    );
}

#[tokio::test]
async fn refresh_without_a_new_refresh_token_keeps_the_current_one() {
    let (server, provider) = setup().await;
    mount_token(
        &server,
        refresh_form("rft.first-refresh-token"),
        json(
            200,
            r#"{"access_token":"act.third","expires_in":86400,"open_id":"-000abcOpenId","token_type":"Bearer"}"#
                .into(),
        ),
    )
    .await;
    let tokens = refresh(&provider, &RefreshToken::new("rft.first-refresh-token"))
        .await
        .unwrap();
    assert_eq!(
        tokens.refresh_token.as_ref().unwrap().expose_secret(),
        "rft.first-refresh-token"
    );
    assert_eq!(tokens.scopes, ["user.info.basic"]);
}

#[tokio::test]
async fn revoked_refresh_token_is_invalid_grant() {
    let (server, provider) = setup().await;
    mount_token(
        &server,
        refresh_form("rft.revoked-refresh"),
        json(
            400,
            r#"{"error":"invalid_grant","error_description":"Refresh token is invalid or expired.","log_id":"L2"}"#
                .into(),
        ),
    )
    .await;
    let err = refresh(&provider, &RefreshToken::new("rft.revoked-refresh"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::InvalidGrant { .. }), "{err:?}");
}

#[tokio::test]
async fn token_endpoint_rate_limit_outage_and_garbage() {
    let (server, provider) = setup().await;
    mount_token(
        &server,
        refresh_form("rft.limited-1"),
        ResponseTemplate::new(429).insert_header("retry-after", "60"),
    )
    .await;
    mount_token(
        &server,
        refresh_form("rft.limited-2"),
        ResponseTemplate::new(429),
    )
    .await;
    mount_token(
        &server,
        refresh_form("rft.outage-1"),
        ResponseTemplate::new(503),
    )
    .await;
    mount_token(
        &server,
        refresh_form("rft.garbage-1"),
        json(200, r#"{"access_token":"act.truncated-secret"#.into()),
    )
    .await;
    assert!(matches!(
        refresh(&provider, &RefreshToken::new("rft.limited-1")).await.unwrap_err(),
        ProviderError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(60)
    ));
    assert!(matches!(
        refresh(&provider, &RefreshToken::new("rft.limited-2"))
            .await
            .unwrap_err(),
        ProviderError::RateLimited { retry_after: None }
    ));
    assert!(matches!(
        refresh(&provider, &RefreshToken::new("rft.outage-1"))
            .await
            .unwrap_err(),
        ProviderError::Unavailable { status: 503 }
    ));
    let err = refresh(&provider, &RefreshToken::new("rft.garbage-1"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Protocol { .. }), "{err:?}");
    assert!(!format!("{err:?}").contains("act.truncated"), "{err:?}");
}

#[tokio::test]
async fn profile_reads_user_info() {
    let (server, provider) = setup().await;
    Mock::given(method("GET"))
        .and(path("/tiktok/open/v2/user/info/"))
        .and(query_param("fields", FIELDS))
        .and(header("authorization", "Bearer act.first-access-token"))
        .respond_with(json(200, fixture("user_info.json")))
        .expect(1)
        .mount(&server)
        .await;
    let profile = provider
        .fetch_profile(&AccessToken::new("act.first-access-token"))
        .await
        .unwrap();
    assert_eq!(profile.account_id, "-000abcOpenId");
    assert_eq!(profile.username.as_deref(), Some("jane"));
    assert_eq!(
        profile.metadata,
        serde_json::json!({"open_id": "-000abcOpenId", "username": "jane",
            "display_name": "Jane Doe", "avatar_url": "https://p16.tiktokcdn.example/a.jpeg"})
    );
}

#[tokio::test]
async fn profile_username_falls_back_to_display_name() {
    let (server, provider) = setup().await;
    Mock::given(method("GET"))
        .and(path("/tiktok/open/v2/user/info/"))
        .and(query_param("fields", FIELDS))
        .and(header("authorization", "Bearer act.first-access-token"))
        .respond_with(json(200, fixture("user_info_basic.json")))
        .expect(1)
        .mount(&server)
        .await;
    let profile = provider
        .fetch_profile(&AccessToken::new("act.first-access-token"))
        .await
        .unwrap();
    let meta: TikTokMetadata = serde_json::from_value(profile.metadata).unwrap();
    assert_eq!(meta.username, "Jane Doe");
    assert_eq!(meta.display_name.as_deref(), Some("Jane Doe"));
}

#[tokio::test]
async fn profile_api_error_codes() {
    assert!(matches!(
        profile_error(json(401, fixture("user_info_token_invalid.json"))).await,
        ProviderError::InvalidGrant { .. }
    ));
    assert!(matches!(
        profile_error(json(
            403,
            r#"{"data":{},"error":{"code":"scope_permission_missed","message":"m","log_id":"L8"}}"#
                .into(),
        ))
        .await,
        ProviderError::InvalidClient { .. }
    ));
    assert!(matches!(
        profile_error(json(500, fixture("user_info_internal.json"))).await,
        ProviderError::Unavailable { status: 500 }
    ));
    let err = profile_error(json(
        400,
        r#"{"data":{},"error":{"code":"invalid_params","message":"bad fields","log_id":"L9"}}"#
            .into(),
    ))
    .await;
    assert!(matches!(err, ProviderError::Protocol { .. }), "{err:?}");
}

#[tokio::test]
async fn profile_rate_limit_with_and_without_retry_after() {
    assert!(matches!(
        profile_error(json(429, fixture("user_info_rate_limited.json"))).await,
        ProviderError::RateLimited { retry_after: None }
    ));
    assert!(matches!(
        profile_error(json(429, fixture("user_info_rate_limited.json")).insert_header("retry-after", "17")).await,
        ProviderError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(17)
    ));
    assert!(matches!(
        profile_error(ResponseTemplate::new(429).insert_header("retry-after", "5")).await,
        ProviderError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(5)
    ));
}

#[tokio::test]
async fn profile_server_error_is_unavailable() {
    assert!(matches!(
        profile_error(ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>")).await,
        ProviderError::Unavailable { status: 502 }
    ));
}

#[tokio::test]
async fn profile_malformed_json_is_protocol() {
    let err = profile_error(json(200, "{\"data\": {\"user\": ".into())).await;
    assert!(matches!(err, ProviderError::Protocol { .. }), "{err:?}");
    let err = profile_error(json(
        200,
        r#"{"data":{"user":{"display_name":"x"}},"error":{"code":"ok"}}"#.into(),
    ))
    .await;
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
    let provider = TikTokProvider::new(
        config(&server)
            .timeout(Duration::from_millis(200))
            .build()
            .unwrap(),
    )
    .unwrap();
    Mock::given(method("POST"))
        .and(path("/tiktok/open/v2/oauth/token/"))
        .respond_with(json(200, fixture("refreshed.json")).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let err = refresh(&provider, &RefreshToken::new("rft.first-refresh-token"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::Network { timeout: true, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn revoke_posts_the_access_token() {
    for reply in [ResponseTemplate::new(200), json(200, "{}".into())] {
        let (server, provider) = setup().await;
        Mock::given(method("POST"))
            .and(path("/tiktok/open/v2/oauth/revoke/"))
            .and(header("content-type", "application/x-www-form-urlencoded"))
            .and(FormIs(vec![
                ("client_key", CLIENT_KEY.into()),
                ("client_secret", CLIENT_SECRET.into()),
                ("token", "act.first-access-token".into()),
            ]))
            .respond_with(reply)
            .expect(1)
            .mount(&server)
            .await;
        provider
            .revoke(
                Some(&AccessToken::new("act.first-access-token")),
                Some(&RefreshToken::new("rft.first-refresh-token")),
            )
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn revoke_errors_are_typed() {
    let (server, provider) = setup().await;
    Mock::given(method("POST"))
        .and(path("/tiktok/open/v2/oauth/revoke/"))
        .respond_with(json(
            401,
            r#"{"error":"invalid_client","error_description":"bad key","log_id":"L"}"#.into(),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let err = provider
        .revoke(Some(&AccessToken::new("act.first-access-token")), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::InvalidClient { .. }),
        "{err:?}"
    );
    assert!(matches!(
        provider.revoke(None, None).await.unwrap_err(),
        ProviderError::InvalidGrant { .. }
    ));
}

#[tokio::test]
async fn tokens_never_appear_in_errors() {
    let token = "act.secret-token-never-printed";
    for reply in [
        json(
            401,
            format!(
                r#"{{"data":{{}},"error":{{"code":"access_token_invalid","message":"bad {token}","log_id":"L"}}}}"#
            ),
        ),
        json(
            400,
            format!(
                r#"{{"data":{{}},"error":{{"code":"weird","message":"bad {token}","log_id":"L"}}}}"#
            ),
        ),
        ResponseTemplate::new(418).set_body_string(format!("teapot {token}")),
        json(200, format!(r#"{{"data": "{token}" "#)),
    ] {
        let (server, provider) = setup().await;
        Mock::given(method("GET"))
            .and(path("/tiktok/open/v2/user/info/"))
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
async fn username_without_its_scope_retries_with_basic_fields() {
    let (server, provider) = setup().await;
    Mock::given(method("GET"))
        .and(path("/tiktok/open/v2/user/info/"))
        .and(query_param("fields", FIELDS))
        .and(header("authorization", "Bearer act.first-access-token"))
        .respond_with(json(401, fixture("user_info_scope.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/tiktok/open/v2/user/info/"))
        .and(query_param(
            "fields",
            "open_id,union_id,avatar_url,display_name",
        ))
        .and(header("authorization", "Bearer act.first-access-token"))
        .respond_with(json(200, fixture("user_info_basic.json")))
        .expect(1)
        .mount(&server)
        .await;
    let profile = provider
        .fetch_profile(&AccessToken::new("act.first-access-token"))
        .await
        .unwrap();
    assert_eq!(profile.account_id, "-000abcOpenId");
    assert_eq!(profile.username.as_deref(), Some("Jane Doe"));
}

#[tokio::test]
async fn basic_fields_refused_too_is_invalid_client() {
    let (server, provider) = setup().await;
    Mock::given(method("GET"))
        .and(path("/tiktok/open/v2/user/info/"))
        .respond_with(json(401, fixture("user_info_scope.json")))
        .expect(2)
        .mount(&server)
        .await;
    let err = provider
        .fetch_profile(&AccessToken::new("act.first-access-token"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::InvalidClient { .. }),
        "{err:?}"
    );
}
