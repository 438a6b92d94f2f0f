//! A platform added by configuration alone: a `PROVIDERS_FILE` names a standard OAuth 2.0
//! platform, and the example server connects, refreshes and disconnects an account on it
//! through its real HTTP API, against a strict local emulation of that platform (every
//! request's method, path, credentials and form fields are asserted; anything else gets
//! wiremock's 404 and fails the flow).

mod support;

use integrations_core::{EncryptionKey, TokenCipher};
use integrations_examples::registry;
use integrations_examples::server::{ServerConfig, serve};
use std::collections::HashMap;
use support::{Client, location};
use wiremock::matchers::{header, method, path};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

/// The form body is exactly these fields (order aside), plus a `code_verifier` when
/// `pkce` says so.
struct FormIs(Vec<(&'static str, String)>, bool);
impl Match for FormIs {
    fn matches(&self, request: &Request) -> bool {
        let mut form: HashMap<String, String> = url::form_urlencoded::parse(&request.body)
            .into_owned()
            .collect();
        if self.1 && form.remove("code_verifier").is_none_or(|v| v.len() < 43) {
            return false;
        }
        form.len() == self.0.len() && self.0.iter().all(|(k, v)| form.get(*k) == Some(v))
    }
}

fn basic() -> String {
    use base64::Engine;
    let raw = "acme-client:acme-secret-123";
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[tokio::test]
async fn a_configured_platform_connects_refreshes_and_disconnects_through_the_api() {
    let platform = MockServer::start().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let callback = format!("http://127.0.0.1:{port}/api/integrations/callback/acme");
    let base = platform.uri();
    let dir = std::env::temp_dir().join(format!("providers-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("providers.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[[provider]]
id = "acme"
display_name = "Acme"
client_id = "acme-client"
client_secret = "acme-secret-123"
authorize_url = "{base}/oauth/authorize"
token_url = "{base}/oauth/token"
revoke_url = "{base}/oauth/revoke"
redirect_uri = "{callback}"
profile_url = "{base}/v2/me"
scopes = ["profile", "posts"]
account_id_pointer = "/data/id"
username_pointer = "/data/handle"
refresh_token_rotation = "rotates"
metadata_pointers = {{ avatar = "/data/avatar" }}
"#
        ),
    )
    .unwrap();
    let path_text = file.display().to_string();
    let extra = registry::providers_file_from_env(&|name| {
        (name == registry::PROVIDERS_FILE_VAR).then(|| path_text.clone())
    })
    .unwrap();
    let server = serve(ServerConfig {
        port,
        cipher: Some(TokenCipher::new(EncryptionKey::generate())),
        extra_providers: extra,
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let alice = Client::signed_in(&server, 7).await;

    let providers = alice.get("/api/integrations/providers").await;
    let providers: serde_json::Value = providers.json().await.unwrap();
    let acme = providers["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "acme")
        .cloned()
        .expect("acme is listed");
    assert_eq!(acme["name"], "Acme");
    assert_eq!(acme["canRefresh"], true);

    // Connect: the authorization URL is the platform's, with everything RFC 6749 asks.
    let auth = reqwest::Url::parse(&alice.start_connect("acme").await).unwrap();
    assert_eq!(auth.path(), "/oauth/authorize");
    let q: HashMap<_, _> = auth.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "acme-client");
    assert_eq!(q["redirect_uri"], callback);
    assert_eq!(q["scope"], "profile posts");
    assert_eq!(q["code_challenge_method"], "S256");
    let state = q["state"].clone();

    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(header("authorization", basic().as_str()))
        .and(FormIs(
            vec![
                ("grant_type", "authorization_code".into()),
                ("code", "the-code".into()),
                ("redirect_uri", callback.clone()),
            ],
            true,
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "at-1", "token_type": "Bearer", "expires_in": 3600,
            "refresh_token": "rt-1", "scope": "profile posts"
        })))
        .expect(1)
        .mount(&platform)
        .await;
    for token in ["at-1", "at-2"] {
        Mock::given(method("GET"))
            .and(path("/v2/me"))
            .and(header("authorization", format!("Bearer {token}").as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "data": {"id": 42, "handle": "alice", "avatar": "https://x/a.png",
                         "email": "alice@example.com"}
            })))
            .mount(&platform)
            .await;
    }
    let resp = alice
        .get(&format!(
            "/api/integrations/callback/acme?code=the-code&state={state}"
        ))
        .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/integrations?connected=acme&account=42");
    let status = alice.status().await;
    assert_eq!(status.len(), 1);
    assert_eq!(status[0]["provider"], "acme");
    assert_eq!(status[0]["username"], "alice");
    assert_eq!(status[0]["status"], "connected");
    // Only the allow-listed profile values are kept: no e-mail address.
    assert_eq!(
        status[0]["metadata"],
        serde_json::json!({"account_id": "42", "username": "alice", "avatar": "https://x/a.png"})
    );

    // Refresh: the rotated refresh token replaces the old one.
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(header("authorization", basic().as_str()))
        .and(FormIs(
            vec![
                ("grant_type", "refresh_token".into()),
                ("refresh_token", "rt-1".into()),
            ],
            false,
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "at-2", "expires_in": 7200, "refresh_token": "rt-2"
        })))
        .expect(1)
        .mount(&platform)
        .await;
    let resp = alice.post("/api/integrations/refresh/acme/42").await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["success"], true);
    assert!(body["expiresAt"].is_string(), "{body}");

    // Disconnect: RFC 7009 revocation of the rotated refresh token.
    Mock::given(method("POST"))
        .and(path("/oauth/revoke"))
        .and(header("authorization", basic().as_str()))
        .and(FormIs(
            vec![
                ("token", "rt-2".into()),
                ("token_type_hint", "refresh_token".into()),
            ],
            false,
        ))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&platform)
        .await;
    let resp = alice.delete("/api/integrations/disconnect/acme/42").await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["message"], "Acme disconnected.");
    assert!(alice.status().await.is_empty());

    server.shutdown().await;
    platform.verify().await;
    let _ = std::fs::remove_dir_all(&dir);
}
