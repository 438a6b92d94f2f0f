//! The core conformance check and the whole connect → callback → refresh → disconnect
//! flow through `Integrations` with `MemoryStore`, against a local wiremock server.

use integrations_core::oauth::pkce_challenge;
use integrations_core::testing::{
    ProviderConformance, ProviderFlow, header_values, provider_conformance, provider_flow,
};
use integrations_core::{
    CallbackParams, ClientSecret, EncryptionKey, Error, Integrations, MemoryStore, PkceVerifier,
    TokenCipher, UserId,
};
use integrations_tiktok::{TikTokConfig, TikTokProvider};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wiremock::matchers::{header, method, path};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

const CLIENT_KEY: &str = "awclientkey123";
const CLIENT_SECRET: &str = "tiktok-client-secret";
const REDIRECT: &str = "https://app.example/integrations/tiktok/callback";

fn form(request: &Request) -> HashMap<String, String> {
    url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect()
}

struct FormHas(&'static str, &'static str);

impl Match for FormHas {
    fn matches(&self, request: &Request) -> bool {
        form(request).get(self.0).map(String::as_str) == Some(self.1)
    }
}

/// Matches a code exchange whose `code_verifier` hashes to the challenge the
/// authorization URL carried (when one was recorded; otherwise any non-empty verifier).
struct VerifierMatches(Arc<Mutex<Option<String>>>);

impl Match for VerifierMatches {
    fn matches(&self, request: &Request) -> bool {
        let Some(verifier) = form(request).get("code_verifier").cloned() else {
            return false;
        };
        let expected = self.0.lock().unwrap().clone();
        match expected {
            Some(challenge) => {
                pkce_challenge(&PkceVerifier::new(verifier)).s256_base64url == challenge
            }
            None => !verifier.is_empty(),
        }
    }
}

fn json(status: u16, body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

fn token(n: u32) -> serde_json::Value {
    serde_json::json!({"open_id": "-000abcOpenId", "scope": "user.info.basic",
        "access_token": format!("act.access-{n}"), "expires_in": 7200,
        "refresh_token": format!("rft.refresh-{n}"), "refresh_expires_in": 15552000,
        "token_type": "Bearer"})
}

fn provider(server: &MockServer) -> TikTokProvider {
    let base = server.uri();
    TikTokProvider::new(
        TikTokConfig::builder()
            .client_key(CLIENT_KEY)
            .client_secret(ClientSecret::new(CLIENT_SECRET))
            .redirect_uri(REDIRECT)
            .www_base_url(format!("{base}/tiktok/www"))
            .api_base_url(format!("{base}/tiktok/open"))
            .build()
            .unwrap(),
    )
    .unwrap()
}

/// A small TikTok: code `good-code` works, `bad-code` is refused; refresh token
/// `rft.refresh-N` rotates into `rft.refresh-(N+1)` and is then dead.
async fn platform(challenge: Arc<Mutex<Option<String>>>) -> MockServer {
    let server = MockServer::start().await;
    let token_call = || {
        Mock::given(method("POST"))
            .and(path("/tiktok/open/v2/oauth/token/"))
            .and(header("content-type", "application/x-www-form-urlencoded"))
            .and(FormHas("client_key", CLIENT_KEY))
            .and(FormHas("client_secret", CLIENT_SECRET))
    };
    token_call()
        .and(FormHas("grant_type", "authorization_code"))
        .and(FormHas("code", "good-code"))
        .and(FormHas("redirect_uri", REDIRECT))
        .and(VerifierMatches(challenge))
        .respond_with(json(200, token(1)))
        .mount(&server)
        .await;
    token_call()
        .and(FormHas("grant_type", "authorization_code"))
        .and(FormHas("code", "bad-code"))
        .respond_with(json(
            400,
            serde_json::json!({"error": "invalid_grant",
                "error_description": "Authorization code is expired.", "log_id": "L1"}),
        ))
        .mount(&server)
        .await;
    for (from, to) in [("rft.refresh-1", 2), ("rft.refresh-2", 3)] {
        token_call()
            .and(FormHas("grant_type", "refresh_token"))
            .and(FormHas("refresh_token", from))
            .respond_with(json(200, token(to)))
            .up_to_n_times(1)
            .mount(&server)
            .await;
    }
    for n in 1..=3 {
        Mock::given(method("GET"))
            .and(path("/tiktok/open/v2/user/info/"))
            .and(header(
                "authorization",
                format!("Bearer act.access-{n}").as_str(),
            ))
            .respond_with(json(
                200,
                serde_json::json!({"data": {"user": {"open_id": "-000abcOpenId",
                    "display_name": "Jane Doe", "username": "jane",
                    "avatar_url": "https://p16.tiktokcdn.example/a.jpeg"}},
                    "error": {"code": "ok", "message": "", "log_id": "L"}}),
            ))
            .mount(&server)
            .await;
    }
    server
}

fn calls(requests: &[Request], grant: &str) -> Vec<HashMap<String, String>> {
    requests
        .iter()
        .filter(|r| r.url.path() == "/tiktok/open/v2/oauth/token/")
        .map(form)
        .filter(|f| f.get("grant_type").map(String::as_str) == Some(grant))
        .collect()
}

#[tokio::test]
async fn provider_conformance_suite() {
    let server = platform(Arc::new(Mutex::new(None))).await;
    let tiktok = provider(&server);
    provider_conformance(ProviderConformance {
        provider: &tiktok,
        redirect_uri: REDIRECT,
        scopes: vec!["user.info.basic".into()],
        oauth_query: true,
        good_callback: CallbackParams::from_pairs([("code", "good-code")]),
        bad_callback: CallbackParams::from_pairs([("code", "bad-code")]),
    })
    .await;
}

/// The core's whole flow, then what is TikTok's own: `client_key` and an S256 challenge
/// that the code exchange's verifier matches, the rotated refresh token used, the
/// current access token revoked, a declined consent never reaching TikTok, and `send`
/// carrying `Authorization: Bearer` and the configured `User-Agent`.
#[tokio::test]
async fn the_whole_flow_through_integrations() {
    let challenge = Arc::new(Mutex::new(None));
    let server = platform(challenge.clone()).await;
    Mock::given(method("POST"))
        .and(path("/tiktok/open/v2/oauth/revoke/"))
        .and(FormHas("client_key", CLIENT_KEY))
        .and(FormHas("client_secret", CLIENT_SECRET))
        .and(FormHas("token", "act.access-2"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let videos = "/tiktok/open/v2/video/list/";
    Mock::given(method("GET"))
        .and(path(videos))
        .respond_with(json(
            200,
            serde_json::json!({"data": {}, "error": {"code": "ok"}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let seen = challenge.clone();
    provider_flow(ProviderFlow {
        provider: Arc::new(provider(&server)),
        authorized: Box::new(move |start| {
            let q: HashMap<_, _> = start.auth_url.query_pairs().into_owned().collect();
            assert_eq!(q["client_key"], CLIENT_KEY);
            assert_eq!(q["code_challenge_method"], "S256");
            *seen.lock().unwrap() = Some(q["code_challenge"].clone());
            CallbackParams::from_pairs([("code", "good-code"), ("state", start.state.as_str())])
        }),
        cancelled: Box::new(|start| {
            CallbackParams::from_pairs([
                ("error", "access_denied"),
                ("error_description", "User cancelled the authorization"),
                ("state", start.state.as_str()),
            ])
        }),
        account_id: "-000abcOpenId".into(),
        username: "jane".into(),
        state_in_url: true,
        refresh_after: Duration::from_secs(3 * 3600),
        send_url: Some(format!("{}{videos}?fields=id", server.uri())),
    })
    .await;

    let requests = server.received_requests().await.unwrap();
    assert_eq!(calls(&requests, "authorization_code").len(), 1);
    let refreshes = calls(&requests, "refresh_token");
    assert_eq!(refreshes.len(), 1);
    assert_eq!(refreshes[0]["refresh_token"], "rft.refresh-1");
    let sent = requests.iter().find(|r| r.url.path() == videos).unwrap();
    let values = |name: &str| header_values(&sent.headers, name);
    let ua = concat!("integrations-tiktok/", env!("CARGO_PKG_VERSION"));
    assert_eq!(values("user-agent"), [ua.as_bytes()]);
    assert_eq!(values("authorization"), [b"Bearer act.access-1".as_slice()]);
}

#[tokio::test]
async fn bad_code_through_the_service_is_a_typed_error() {
    let server = platform(Arc::new(Mutex::new(None))).await;
    let integrations = Integrations::builder(
        Arc::new(MemoryStore::new()),
        TokenCipher::new(EncryptionKey::generate()),
    )
    .provider(Arc::new(provider(&server)))
    .build();
    let start = integrations
        .connect(UserId(1), "tiktok", None)
        .await
        .unwrap();
    let params =
        CallbackParams::from_pairs([("code", "bad-code"), ("state", start.state.as_str())]);
    let err = integrations
        .callback(UserId(1), "tiktok", &params)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Provider(integrations_core::ProviderError::InvalidGrant { .. })
        ),
        "{err:?}"
    );
    assert!(integrations.status(UserId(1)).await.unwrap().is_empty());
}
