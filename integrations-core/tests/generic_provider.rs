//! The generic OAuth 2.0 provider against a local wiremock server.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use integrations_core::generic::{
    ClientAuth, GenericOAuth2Config, GenericOAuth2Provider, RefreshRotation,
};
use integrations_core::{
    AccessToken, AuthorizationRequest, CallbackOutcome, CallbackParams, ClientSecret, CodeExchange,
    PkceSupport, Provider, ProviderError, ProviderId, RefreshRequest, RefreshToken, oauth,
};
use std::collections::HashMap;
use std::time::Duration;
use wiremock::matchers::{bearer_token, header, method, path};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

const CLIENT_ID: &str = "client id/1";
const CLIENT_SECRET: &str = "s3cr:t&x";
const REDIRECT: &str = "https://app.example/integrations/acme/callback";

fn config(server: &MockServer) -> GenericOAuth2Config {
    let base = server.uri();
    let mut c = GenericOAuth2Config::new(
        ProviderId::new("acme").unwrap(),
        CLIENT_ID,
        format!("{base}/oauth/authorize"),
        format!("{base}/oauth/token"),
        REDIRECT,
        format!("{base}/api/me"),
    );
    c.client_secret = Some(ClientSecret::new(CLIENT_SECRET));
    c.revoke_url = Some(format!("{base}/oauth/revoke"));
    c.scopes = vec!["user.read".into(), "posts.read".into()];
    c.timeout = Duration::from_secs(5);
    c
}

fn provider(c: GenericOAuth2Config) -> GenericOAuth2Provider {
    GenericOAuth2Provider::new(c).unwrap()
}

fn form(request: &Request) -> HashMap<String, String> {
    url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect()
}

/// The form body has `name=value`.
struct FormHas(&'static str, String);
impl Match for FormHas {
    fn matches(&self, request: &Request) -> bool {
        form(request).get(self.0) == Some(&self.1)
    }
}

/// The form body has no `name`.
struct FormLacks(&'static str);
impl Match for FormLacks {
    fn matches(&self, request: &Request) -> bool {
        !form(request).contains_key(self.0)
    }
}

/// The request has no header `name`.
struct NoHeader(&'static str);
impl Match for NoHeader {
    fn matches(&self, request: &Request) -> bool {
        !request.headers.contains_key(self.0)
    }
}

fn has(name: &'static str, value: &str) -> FormHas {
    FormHas(name, value.to_owned())
}

/// RFC 6749 §2.3.1: id and secret are form-url-encoded, then Basic-encoded.
fn basic_header() -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(CLIENT_ID), enc(CLIENT_SECRET)))
    )
}

fn token_reply() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "access_token": "at-1",
        "token_type": "Bearer",
        "expires_in": 3600,
        "refresh_token": "rt-1",
        "scope": "user.read posts.read"
    }))
}

fn callback(code: &str) -> CallbackParams {
    CallbackParams::from_pairs([("code", code), ("state", "st")])
}

async fn exchange(
    p: &GenericOAuth2Provider,
    code: &str,
    verifier: Option<&integrations_core::PkceVerifier>,
) -> Result<integrations_core::TokenSet, ProviderError> {
    let params = callback(code);
    p.exchange_code(CodeExchange {
        params: &params,
        pkce_verifier: verifier,
    })
    .await
}

async fn refresh(
    p: &GenericOAuth2Provider,
    current: &RefreshToken,
) -> Result<integrations_core::TokenSet, ProviderError> {
    let scopes = vec!["user.read".to_owned()];
    p.refresh(RefreshRequest {
        access_token: None,
        refresh_token: Some(current),
        issued_at: Utc::now(),
        now: Utc::now(),
        scopes: &scopes,
    })
    .await
}

#[test]
fn provider_is_send_and_sync() {
    fn check<T: Send + Sync + 'static>() {}
    check::<GenericOAuth2Provider>();
    check::<GenericOAuth2Config>();
}

#[tokio::test]
async fn authorization_url_carries_state_scopes_pkce_and_extras() {
    let server = MockServer::start().await;
    let mut c = config(&server);
    c.scope_separator = ",".into();
    c.extra_authorize_params = vec![("prompt".into(), "consent".into())];
    let p = provider(c);
    let verifier = oauth::generate_pkce_verifier();
    let challenge = oauth::pkce_challenge(&verifier);
    let url = p
        .authorization_url(&AuthorizationRequest {
            state: "state-123".into(),
            pkce_challenge: Some(challenge.clone()),
            scopes: Vec::new(),
        })
        .await
        .unwrap();
    assert!(
        url.as_str()
            .starts_with(&format!("{}/oauth/authorize?", server.uri()))
    );
    let q: HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["state"], "state-123");
    assert_eq!(q["redirect_uri"], REDIRECT);
    assert_eq!(q["scope"], "user.read,posts.read");
    assert_eq!(q["code_challenge"], challenge.s256_base64url);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["prompt"], "consent");
    assert!(!url.as_str().contains(CLIENT_SECRET));

    // Requested scopes replace the defaults; the default separator is a space.
    let p = provider(config(&server));
    let url = p
        .authorization_url(&AuthorizationRequest {
            state: "s".into(),
            pkce_challenge: None,
            scopes: vec!["a".into(), "b".into()],
        })
        .await
        .unwrap();
    let q: HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["scope"], "a b");
    assert!(url.as_str().contains("scope=a+b"), "{url}");
    assert!(!q.contains_key("code_challenge"));
}

#[tokio::test]
async fn authorization_url_without_pkce_ignores_the_challenge() {
    let server = MockServer::start().await;
    let mut c = config(&server);
    c.pkce = false;
    let p = provider(c);
    assert_eq!(p.capabilities().pkce, PkceSupport::Unsupported);
    let verifier = oauth::generate_pkce_verifier();
    let url = p
        .authorization_url(&AuthorizationRequest {
            state: "s".into(),
            pkce_challenge: Some(oauth::pkce_challenge(&verifier)),
            scopes: Vec::new(),
        })
        .await
        .unwrap();
    assert!(!url.as_str().contains("code_challenge"), "{url}");
}

#[tokio::test]
async fn exchange_with_basic_auth_and_pkce() {
    let server = MockServer::start().await;
    let verifier = oauth::generate_pkce_verifier();
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(header("authorization", basic_header().as_str()))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(has("grant_type", "authorization_code"))
        .and(has("code", "good-code"))
        .and(has("redirect_uri", REDIRECT))
        .and(has("code_verifier", verifier.expose_secret()))
        .and(FormLacks("client_secret"))
        .and(FormLacks("client_id"))
        .respond_with(token_reply())
        .expect(1)
        .mount(&server)
        .await;
    let p = provider(config(&server));
    assert_eq!(p.capabilities().pkce, PkceSupport::Supported);
    let t = exchange(&p, "good-code", Some(&verifier)).await.unwrap();
    assert_eq!(t.access_token.expose_secret(), "at-1");
    assert_eq!(t.refresh_token.unwrap().expose_secret(), "rt-1");
    assert_eq!(t.expires_in, Some(Duration::from_secs(3600)));
    assert_eq!(t.token_type.as_deref(), Some("Bearer"));
    assert_eq!(t.scopes, vec!["user.read", "posts.read"]);
}

#[tokio::test]
async fn exchange_with_body_credentials_and_no_pkce() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(NoHeader("authorization"))
        .and(has("grant_type", "authorization_code"))
        .and(has("code", "good-code"))
        .and(has("redirect_uri", REDIRECT))
        .and(has("client_id", CLIENT_ID))
        .and(has("client_secret", CLIENT_SECRET))
        .and(FormLacks("code_verifier"))
        // A lenient reply: no token_type, expires_in as a string, text content type.
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(r#"{"access_token":"at-2","expires_in":"60"}"#, "text/plain"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let mut c = config(&server);
    c.client_auth = ClientAuth::Body;
    c.pkce = false;
    let p = provider(c);
    // Even if a verifier is passed, PKCE off means no code_verifier is sent.
    let verifier = oauth::generate_pkce_verifier();
    let t = exchange(&p, "good-code", Some(&verifier)).await.unwrap();
    assert_eq!(t.access_token.expose_secret(), "at-2");
    assert!(t.refresh_token.is_none());
    assert_eq!(t.expires_in, Some(Duration::from_secs(60)));
    assert_eq!(t.token_type, None);
}

#[tokio::test]
async fn callback_error_and_missing_code_make_no_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(token_reply())
        .expect(0)
        .mount(&server)
        .await;
    let p = provider(config(&server));
    // The callback's `error` is read by the provider's `read_callback` (the OAuth
    // reading), before any exchange.
    let denied = CallbackParams::from_pairs([("error", "access_denied"), ("state", "s")]);
    let reply = p.read_callback(&denied);
    assert_eq!(reply.state, Some("s"));
    assert_eq!(reply.outcome, CallbackOutcome::Cancelled);
    let failed = CallbackParams::from_pairs([("error", "server_error"), ("state", "s")]);
    assert_eq!(
        p.read_callback(&failed).outcome,
        CallbackOutcome::Failed {
            error: "server_error".into()
        }
    );
    let empty = CallbackParams::from_pairs([("state", "s")]);
    let e = p
        .exchange_code(CodeExchange {
            params: &empty,
            pkce_verifier: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Protocol { .. }), "{e:?}");
}

#[tokio::test]
async fn invalid_grant_and_invalid_client() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(has("code", "bad-code"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "error": "invalid_grant", "error_description": "code expired"
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(has("code", "bad-client"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(serde_json::json!({"error": "invalid_client"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(has("code", "error-with-200"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"error": "invalid_grant"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(has("code", "bare-401"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let p = provider(config(&server));
    match exchange(&p, "bad-code", None).await.unwrap_err() {
        ProviderError::InvalidGrant { description } => {
            assert_eq!(description.as_deref(), Some("code expired"))
        }
        e => panic!("{e:?}"),
    }
    let e = exchange(&p, "bad-client", None).await.unwrap_err();
    assert!(matches!(e, ProviderError::InvalidClient { .. }), "{e:?}");
    let e = exchange(&p, "error-with-200", None).await.unwrap_err();
    assert!(matches!(e, ProviderError::InvalidGrant { .. }), "{e:?}");
    let e = exchange(&p, "bare-401", None).await.unwrap_err();
    assert!(matches!(e, ProviderError::InvalidClient { .. }), "{e:?}");
}

#[tokio::test]
async fn refresh_with_rotation_and_keep() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(header("authorization", basic_header().as_str()))
        .and(has("grant_type", "refresh_token"))
        .and(has("refresh_token", "rt-rotating"))
        .and(FormLacks("code_verifier"))
        .and(FormLacks("redirect_uri"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "at-new", "token_type": "bearer", "expires_in": 7200,
            "refresh_token": "rt-next"
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(has("grant_type", "refresh_token"))
        .and(has("refresh_token", "rt-old"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "at-new2", "token_type": "bearer", "expires_in": 7200
        })))
        .expect(2)
        .mount(&server)
        .await;

    let mut c = config(&server);
    c.refresh_token_rotation = RefreshRotation::Rotates;
    let rotating = provider(c);
    let t = refresh(&rotating, &RefreshToken::new("rt-rotating"))
        .await
        .unwrap();
    assert_eq!(t.access_token.expose_secret(), "at-new");
    assert_eq!(t.refresh_token.unwrap().expose_secret(), "rt-next");
    assert_eq!(t.expires_in, Some(Duration::from_secs(7200)));
    // No scope in the reply: the current scopes are kept.
    assert_eq!(t.scopes, vec!["user.read"]);

    // A rotating platform that sends no new refresh token leaves none.
    let t = refresh(&rotating, &RefreshToken::new("rt-old"))
        .await
        .unwrap();
    assert!(t.refresh_token.is_none());

    let mut c = config(&server);
    c.refresh_token_rotation = RefreshRotation::Keeps;
    let keeping = provider(c);
    let t = refresh(&keeping, &RefreshToken::new("rt-old"))
        .await
        .unwrap();
    assert_eq!(t.access_token.expose_secret(), "at-new2");
    assert_eq!(t.refresh_token.unwrap().expose_secret(), "rt-old");
}

#[tokio::test]
async fn refresh_without_refresh_token_is_invalid_grant() {
    let server = MockServer::start().await;
    let p = provider(config(&server));
    let e = p
        .refresh(RefreshRequest {
            access_token: Some(&AccessToken::new("at")),
            refresh_token: None,
            issued_at: Utc::now(),
            now: Utc::now(),
            scopes: &[],
        })
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::InvalidGrant { .. }), "{e:?}");
}

#[tokio::test]
async fn refresh_invalid_grant() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(has("grant_type", "refresh_token"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(serde_json::json!({"error": "invalid_grant"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let p = provider(config(&server));
    let e = refresh(&p, &RefreshToken::new("revoked"))
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::InvalidGrant { .. }), "{e:?}");
}

#[tokio::test]
async fn rate_limited_with_and_without_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(has("code", "with"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "30")
                .set_body_json(serde_json::json!({"error": "rate_limited"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(has("code", "without"))
        .respond_with(ResponseTemplate::new(429))
        .mount(&server)
        .await;
    let p = provider(config(&server));
    let e = exchange(&p, "with", None).await.unwrap_err();
    assert!(
        matches!(e, ProviderError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(30)),
        "{e:?}"
    );
    assert!(e.is_transient());
    let e = exchange(&p, "without", None).await.unwrap_err();
    assert!(
        matches!(e, ProviderError::RateLimited { retry_after: None }),
        "{e:?}"
    );
}

#[tokio::test]
async fn server_errors_are_unavailable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(503).set_body_string("<html>down</html>"))
        .mount(&server)
        .await;
    let p = provider(config(&server));
    let e = exchange(&p, "c", None).await.unwrap_err();
    assert!(
        matches!(e, ProviderError::Unavailable { status: 503 }),
        "{e:?}"
    );
    let e = refresh(&p, &RefreshToken::new("rt")).await.unwrap_err();
    assert!(
        matches!(e, ProviderError::Unavailable { status: 503 }),
        "{e:?}"
    );
}

#[tokio::test]
async fn malformed_json_is_protocol_without_leaking_tokens() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(has("code", "garbage"))
        .respond_with(ResponseTemplate::new(200).set_body_string("this is not json"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(has("code", "wrong-shape"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            serde_json::json!({"access_token": "issued-secret", "expires_in": {"x": 1}}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(has("code", "html-400"))
        .respond_with(ResponseTemplate::new(400).set_body_string("<h1>Bad Request</h1>"))
        .mount(&server)
        .await;
    let p = provider(config(&server));
    match exchange(&p, "garbage", None).await.unwrap_err() {
        ProviderError::Protocol { body, .. } => {
            assert_eq!(body.as_deref(), Some("this is not json"))
        }
        e => panic!("{e:?}"),
    }
    match exchange(&p, "wrong-shape", None).await.unwrap_err() {
        e @ ProviderError::Protocol { .. } => {
            let text = format!("{e:?}");
            assert!(!text.contains("issued-secret"), "{text}");
            assert!(text.contains("expires_in"), "{text}");
        }
        e => panic!("{e:?}"),
    }
    let e = exchange(&p, "html-400", None).await.unwrap_err();
    assert!(matches!(e, ProviderError::Protocol { .. }), "{e:?}");
}

#[tokio::test]
async fn oversized_replies_are_refused() {
    let server = MockServer::start().await;
    let ten_mb = vec![b'a'; 10 * 1024 * 1024];
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(ten_mb.clone(), "application/json"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/me"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(ten_mb, "application/json"))
        .mount(&server)
        .await;
    let p = provider(config(&server));
    let e = exchange(&p, "c", None).await.unwrap_err();
    assert!(
        matches!(&e, ProviderError::Protocol { message, body: None } if message.contains("limit")),
        "{e:?}"
    );
    let e = p.fetch_profile(&AccessToken::new("at")).await.unwrap_err();
    assert!(
        matches!(&e, ProviderError::Protocol { message, .. } if message.contains("limit")),
        "{e:?}"
    );
}

#[tokio::test]
async fn timeouts_are_network_errors() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(token_reply().set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let mut c = config(&server);
    c.timeout = Duration::from_millis(300);
    let p = provider(c);
    let e = exchange(&p, "c", None).await.unwrap_err();
    assert!(
        matches!(e, ProviderError::Network { timeout: true, .. }),
        "{e:?}"
    );
}

#[tokio::test]
async fn connection_refused_is_a_network_error() {
    let server = MockServer::start().await;
    // A port nothing listens on (wiremock keeps pooled servers alive after drop).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut c = config(&server);
    c.token_url = format!("http://{closed}/oauth/token");
    let p = provider(c);
    let e = exchange(&p, "c", None).await.unwrap_err();
    assert!(
        matches!(e, ProviderError::Network { timeout: false, .. }),
        "{e:?}"
    );
}

#[tokio::test]
async fn profile_with_nested_pointers_and_a_large_numeric_id() {
    let server = MockServer::start().await;
    let body = r#"{"data":{"user":{"open_id":18446744073709551557,"handle":"jane","avatar":"https://x/a.png","email":"jane@example.com","followers":12}}}"#;
    Mock::given(method("GET"))
        .and(path("/api/me"))
        .and(bearer_token("at-1"))
        .and(header("accept", "application/json"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    let mut c = config(&server);
    c.account_id_pointer = "/data/user/open_id".into();
    c.username_pointer = Some("/data/user/handle".into());
    c.metadata_pointers = [
        ("avatar".to_owned(), "/data/user/avatar".to_owned()),
        ("followers".to_owned(), "/data/user/followers".to_owned()),
        ("missing".to_owned(), "/data/user/nope".to_owned()),
    ]
    .into();
    let p = provider(c);
    let profile = p.fetch_profile(&AccessToken::new("at-1")).await.unwrap();
    assert_eq!(profile.account_id, "18446744073709551557");
    assert_eq!(profile.username.as_deref(), Some("jane"));
    // Only the allow-list is kept: the e-mail address in the reply is not.
    assert_eq!(
        profile.metadata,
        serde_json::json!({
            "account_id": "18446744073709551557",
            "username": "jane",
            "avatar": "https://x/a.png",
            "followers": "12",
        })
    );
}

#[tokio::test]
async fn profile_id_just_above_2_pow_53_is_exact() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/me"))
        .and(bearer_token("at-1"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(r#"{"id":9007199254740993,"name":null}"#, "application/json"),
        )
        .mount(&server)
        .await;
    let mut c = config(&server);
    c.username_pointer = Some("/name".into());
    let p = provider(c);
    let profile = p.fetch_profile(&AccessToken::new("at-1")).await.unwrap();
    assert_eq!(profile.account_id, "9007199254740993");
    assert_eq!(profile.username, None);
    assert_eq!(
        profile.metadata,
        serde_json::json!({
            "account_id": "9007199254740993",
        })
    );
}

#[tokio::test]
async fn profile_errors() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/me"))
        .and(bearer_token("no-id"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"user": {}})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/me"))
        .and(bearer_token("expired"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/me"))
        .and(bearer_token("limited"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "5"))
        .mount(&server)
        .await;
    let mut c = config(&server);
    c.account_id_pointer = "/user/id".into();
    let p = provider(c);
    match p
        .fetch_profile(&AccessToken::new("no-id"))
        .await
        .unwrap_err()
    {
        ProviderError::Protocol { message, .. } => {
            assert!(message.contains("/user/id"), "{message}")
        }
        e => panic!("{e:?}"),
    }
    let e = p
        .fetch_profile(&AccessToken::new("expired"))
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::InvalidGrant { .. }), "{e:?}");
    let e = p
        .fetch_profile(&AccessToken::new("limited"))
        .await
        .unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(5)));
}

#[tokio::test]
async fn revoke_per_rfc_7009() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/revoke"))
        .and(header("authorization", basic_header().as_str()))
        .and(has("token", "rt-1"))
        .and(has("token_type_hint", "refresh_token"))
        .and(FormLacks("client_secret"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/revoke"))
        .and(NoHeader("authorization"))
        .and(has("token", "at-1"))
        .and(has("token_type_hint", "access_token"))
        .and(has("client_id", CLIENT_ID))
        .and(has("client_secret", CLIENT_SECRET))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let p = provider(config(&server));
    assert!(p.capabilities().revoke);
    p.revoke(
        Some(&AccessToken::new("at-1")),
        Some(&RefreshToken::new("rt-1")),
    )
    .await
    .unwrap();
    let mut c = config(&server);
    c.client_auth = ClientAuth::Body;
    let p = provider(c);
    p.revoke(Some(&AccessToken::new("at-1")), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn revoke_errors_and_unsupported() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/revoke"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let p = provider(config(&server));
    let e = p
        .revoke(Some(&AccessToken::new("at")), None)
        .await
        .unwrap_err();
    assert!(
        matches!(e, ProviderError::Unavailable { status: 503 }),
        "{e:?}"
    );

    let mut c = config(&server);
    c.revoke_url = None;
    let p = provider(c);
    assert!(!p.capabilities().revoke);
    let e = p
        .revoke(Some(&AccessToken::new("at")), None)
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Unsupported { .. }), "{e:?}");
}

#[tokio::test]
async fn config_from_json_and_validation() {
    let json = serde_json::json!({
        "id": "custom",
        "client_id": "cid",
        "client_secret": "top-secret",
        "authorize_url": "https://auth.example/authorize",
        "token_url": "https://auth.example/token",
        "redirect_uri": "https://app.example/cb",
        "profile_url": "https://api.example/me",
        "client_auth": "body",
        "pkce": false,
        "refresh_token_rotation": "rotates",
        "extra_authorize_params": [["access_type", "offline"]],
        "timeout": 2.5,
        "body_limit": 4096
    });
    let c: GenericOAuth2Config = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(c.client_auth, ClientAuth::Body);
    assert_eq!(c.refresh_token_rotation, RefreshRotation::Rotates);
    assert_eq!(c.timeout, Duration::from_millis(2500));
    assert_eq!(c.scope_separator, " ");
    assert_eq!(c.account_id_pointer, "/id");
    assert_eq!(
        c.extra_authorize_params,
        vec![("access_type".to_owned(), "offline".to_owned())]
    );
    assert_eq!(
        c.client_secret.as_ref().map(|s| s.expose_secret()),
        Some("top-secret")
    );
    let debug = format!("{c:?}");
    assert!(!debug.contains("top-secret"), "{debug}");
    let p = GenericOAuth2Provider::new(c).unwrap();
    assert!(!format!("{p:?}").contains("top-secret"));
    assert!(!p.capabilities().revoke);
    assert!(p.capabilities().refresh);

    let mut bad = json.clone();
    bad["account_id_pointer"] = "data.id".into();
    let c: GenericOAuth2Config = serde_json::from_value(bad).unwrap();
    assert!(matches!(
        GenericOAuth2Provider::new(c),
        Err(ProviderError::Config(m)) if m.contains("account_id_pointer")
    ));
    // A typo is refused with the field's name instead of silently falling back.
    let mut typo = json.clone();
    typo["account_id_path"] = "/data/id".into();
    let e = serde_json::from_value::<GenericOAuth2Config>(typo)
        .unwrap_err()
        .to_string();
    assert!(e.contains("account_id_path"), "{e}");
    // The secret may come from the environment instead of the file; not both.
    let mut from_env = json.clone();
    from_env.as_object_mut().unwrap().remove("client_secret");
    // Cargo sets CARGO_PKG_NAME for the test process: a variable that is surely set.
    from_env["client_secret_env"] = "CARGO_PKG_NAME".into();
    let c: GenericOAuth2Config = serde_json::from_value(from_env.clone()).unwrap();
    assert_eq!(
        c.client_secret.as_ref().map(|s| s.expose_secret()),
        Some("integrations-core")
    );
    from_env["client_secret_env"] = "GENERIC_TEST_SECRET_UNSET".into();
    let e = serde_json::from_value::<GenericOAuth2Config>(from_env.clone())
        .unwrap_err()
        .to_string();
    assert!(e.contains("GENERIC_TEST_SECRET_UNSET"), "{e}");
    from_env["client_secret"] = "inline".into();
    let e = serde_json::from_value::<GenericOAuth2Config>(from_env)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not both"), "{e}");

    let mut bad = json;
    bad["profile_url"] = "::nope".into();
    let c: GenericOAuth2Config = serde_json::from_value(bad).unwrap();
    assert!(matches!(
        GenericOAuth2Provider::new(c),
        Err(ProviderError::Config(m)) if m.contains("profile_url")
    ));
}

/// The form body has `name`, whatever its value.
struct FormHasKey(&'static str);
impl Match for FormHasKey {
    fn matches(&self, request: &Request) -> bool {
        form(request).contains_key(self.0)
    }
}

/// The form's `code_verifier` hashes to the given S256 challenge.
struct VerifierMatches(String);
impl Match for VerifierMatches {
    fn matches(&self, request: &Request) -> bool {
        form(request).get("code_verifier").is_some_and(|v| {
            oauth::pkce_challenge(&integrations_core::PkceVerifier::new(v.clone())).s256_base64url
                == self.0
        })
    }
}

fn profile_reply() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "data": {"user": {"open_id": "u-42", "handle": "jane"}}
    }))
}

fn nested_pointer_config(server: &MockServer) -> GenericOAuth2Config {
    let mut c = config(server);
    c.account_id_pointer = "/data/user/open_id".into();
    c.username_pointer = Some("/data/user/handle".into());
    c
}

#[tokio::test]
async fn provider_conformance_suite() {
    use integrations_core::testing::{ProviderConformance, provider_conformance};
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(has("grant_type", "authorization_code"))
        .and(has("code", "good"))
        .and(has("redirect_uri", REDIRECT))
        .and(FormHasKey("code_verifier"))
        .respond_with(token_reply())
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(has("grant_type", "authorization_code"))
        .and(has("code", "bad"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(serde_json::json!({"error": "invalid_grant"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(has("grant_type", "refresh_token"))
        .and(has("refresh_token", "rt-1"))
        .respond_with(token_reply())
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/me"))
        .and(bearer_token("at-1"))
        .respond_with(profile_reply())
        .mount(&server)
        .await;
    let p = provider(nested_pointer_config(&server));
    provider_conformance(ProviderConformance {
        provider: &p,
        redirect_uri: REDIRECT,
        scopes: vec!["user.read".into(), "posts.read".into()],
        oauth_query: true,
        good_callback: CallbackParams::from_pairs([("code", "good")]),
        bad_callback: CallbackParams::from_pairs([("code", "bad")]),
    })
    .await;
}

#[tokio::test]
async fn connect_callback_refresh_disconnect_through_the_service() {
    use integrations_core::{
        EncryptionKey, IntegrationStatus, Integrations, MemoryStore, TokenCipher, UserId,
    };
    use std::sync::Arc;

    let server = MockServer::start().await;
    let integrations = Integrations::builder(
        Arc::new(MemoryStore::new()),
        TokenCipher::new(EncryptionKey::generate()),
    )
    .provider(Arc::new(provider(nested_pointer_config(&server))))
    .build();
    let user = UserId(7);

    let start = integrations.connect(user, "acme", None).await.unwrap();
    let q: HashMap<_, _> = start.auth_url.query_pairs().into_owned().collect();
    assert_eq!(q["state"], start.state);
    let challenge = q["code_challenge"].clone();

    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(header("authorization", basic_header().as_str()))
        .and(has("grant_type", "authorization_code"))
        .and(has("code", "the-code"))
        .and(has("redirect_uri", REDIRECT))
        .and(VerifierMatches(challenge))
        .respond_with(token_reply())
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/me"))
        .and(bearer_token("at-1"))
        .respond_with(profile_reply())
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(has("grant_type", "refresh_token"))
        .and(has("refresh_token", "rt-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "at-2", "token_type": "bearer", "expires_in": 3600
        })))
        .expect(1)
        .mount(&server)
        .await;
    // The refresh token was kept, so the revocation names it.
    Mock::given(method("POST"))
        .and(path("/oauth/revoke"))
        .and(has("token", "rt-1"))
        .and(has("token_type_hint", "refresh_token"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;

    let params = CallbackParams::from_pairs([("code", "the-code"), ("state", &start.state)]);
    let connection = integrations.callback(user, "acme", &params).await.unwrap();
    assert_eq!(connection.account.provider_account_id, "u-42");
    assert_eq!(connection.account.username.as_deref(), Some("jane"));
    assert_eq!(connection.account.status, IntegrationStatus::Connected);

    let view = integrations.refresh(user, "acme", "u-42").await.unwrap();
    assert!(view.is_connected);
    assert_eq!(view.metadata["username"], "jane");

    integrations.disconnect(user, "acme", "u-42").await.unwrap();
    assert!(integrations.status(user).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_renamed_client_parameter_is_renamed_everywhere() {
    let server = MockServer::start().await;
    let mut c = config(&server);
    c.client_id_param = "client_key".into();
    c.client_auth = ClientAuth::Body;
    c.scope_separator = ",".into();
    let p = provider(c);
    let url = p
        .authorization_url(&AuthorizationRequest {
            state: "st".into(),
            pkce_challenge: None,
            scopes: Vec::new(),
        })
        .await
        .unwrap();
    let query: HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["client_key"], CLIENT_ID);
    assert!(!query.contains_key("client_id"), "{url}");
    assert_eq!(query["scope"], "user.read,posts.read");

    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(has("client_key", CLIENT_ID))
        .and(has("client_secret", CLIENT_SECRET))
        .and(has("code", "the-code"))
        .and(NoFormKey("client_id"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "at-1", "expires_in": "7200", "scope": "user.read,posts.read"
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/revoke"))
        .and(has("client_key", CLIENT_ID))
        .and(has("token", "at-1"))
        .and(NoFormKey("client_id"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let params = CallbackParams::from_pairs([("code", "the-code"), ("state", "st")]);
    let tokens = p
        .exchange_code(CodeExchange {
            params: &params,
            pkce_verifier: None,
        })
        .await
        .unwrap();
    assert_eq!(tokens.access_token.expose_secret(), "at-1");
    assert_eq!(tokens.expires_in, Some(Duration::from_secs(7200)));
    assert_eq!(tokens.scopes, ["user.read", "posts.read"]);
    p.revoke(Some(&tokens.access_token), None).await.unwrap();
}

/// The form body lacks `name`.
struct NoFormKey(&'static str);
impl Match for NoFormKey {
    fn matches(&self, request: &Request) -> bool {
        !form(request).contains_key(self.0)
    }
}

#[tokio::test]
async fn a_profile_error_that_echoes_the_token_keeps_no_token() {
    let server = MockServer::start().await;
    let token = "at-secret-echoed-123";
    Mock::given(method("GET"))
        .and(path("/api/me"))
        .respond_with(
            ResponseTemplate::new(404).set_body_string(format!("no such user for token {token}")),
        )
        .mount(&server)
        .await;
    let p = provider(config(&server));
    let e = p.fetch_profile(&AccessToken::new(token)).await.unwrap_err();
    let text = format!("{e:?} {e}");
    assert!(matches!(e, ProviderError::Protocol { .. }), "{e:?}");
    assert!(!text.contains(token), "{text}");
}
