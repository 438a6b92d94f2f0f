//! The OpenAPI document: the checked-in `docs/openapi.json` is what the code generates,
//! the router serves it without sign-in, and it describes what the routes answer.

use integrations_axum::{
    Authenticate, IntegrationsRouter, PageConfig, ServeLimits, serve_with_shutdown,
};
use integrations_core::testing::ScriptedProvider;
use integrations_core::{
    EncryptionKey, Integrations, MemoryStore, ProviderError, TokenCipher, UserId,
};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

fn checked_in_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
}

fn generated() -> String {
    let mut json = IntegrationsRouter::openapi()
        .to_pretty_json()
        .expect("the document serializes");
    json.push('\n');
    json
}

/// `UPDATE_OPENAPI=1 cargo test -p integrations-axum --test openapi` rewrites the file.
#[test]
fn the_checked_in_document_is_the_generated_one() {
    let path = checked_in_path();
    let generated = generated();
    if std::env::var_os("UPDATE_OPENAPI").is_some_and(|v| v != "0") {
        std::fs::write(&path, &generated).expect("write docs/openapi.json");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "docs/openapi.json is not what the code generates; regenerate it with\n\n    \
         UPDATE_OPENAPI=1 cargo test -p integrations-axum --test openapi\n\nand commit it"
    );
}

/// The host's authentication: `Authorization: Bearer user-<id>`.
struct Bearer;

#[async_trait::async_trait]
impl Authenticate for Bearer {
    async fn user(&self, parts: &mut axum::http::request::Parts) -> Option<UserId> {
        let value = parts.headers.get("authorization")?.to_str().ok()?;
        value.strip_prefix("Bearer user-")?.parse().ok().map(UserId)
    }
}

const API: &str = "/settings/integrations/api";
const AUTH: &str = "Bearer user-7";

struct Host {
    base: String,
    provider: Arc<ScriptedProvider>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn host() -> Host {
    let provider = Arc::new(ScriptedProvider::new("acme"));
    provider.account_for_code("good-code", "acct-1");
    provider.account_for_code("again-code", "acct-1");
    let integrations = Integrations::builder(
        Arc::new(MemoryStore::new()),
        TokenCipher::new(EncryptionKey::generate()),
    )
    .provider(provider.clone())
    .build();
    let web = IntegrationsRouter::new(integrations, Bearer).page_config(PageConfig {
        api_base: API.into(),
        page_url: "/settings/integrations".into(),
        ..PageConfig::default()
    });
    let app = axum::Router::new().nest(API, web.api());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}{API}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve_with_shutdown(
        listener,
        app,
        ServeLimits::default(),
        async move {
            let _ = rx.await;
        },
    ));
    Host {
        base,
        provider,
        _stop: tx,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn document() -> Value {
    serde_json::from_str(&generated()).unwrap()
}

#[tokio::test]
async fn the_router_serves_its_document_without_sign_in_naming_its_mount_point() {
    let h = host().await;
    let resp = client()
        .get(format!("{}/openapi.json", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let mut served: Value = resp.json().await.unwrap();
    assert_eq!(served["openapi"], "3.1.0");
    assert_eq!(served["servers"][0]["url"], API);
    // Apart from where it is mounted, it is the checked-in document.
    served["servers"][0]["url"] = "/api/integrations".into();
    assert_eq!(served, document());
}

/// Connects the account `acct-1` of user 7 with a code issued for it.
async fn connect(h: &Host, c: &reqwest::Client, code: &str) {
    let start: Value = c
        .post(format!("{}/connect/acme", h.base))
        .header("authorization", AUTH)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let state = start["state"].as_str().unwrap();
    let back = c
        .get(format!(
            "{}/callback/acme?code={code}&state={state}",
            h.base
        ))
        .header("authorization", AUTH)
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 303);
    assert_eq!(
        back.headers()["location"],
        "/settings/integrations?connected=acme&account=acct-1"
    );
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn a_status_item_has_exactly_the_documented_fields() {
    let h = host().await;
    let c = client();
    connect(&h, &c, "good-code").await;
    let status: Value = c
        .get(format!("{}/status", h.base))
        .header("authorization", AUTH)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let item = &status["integrations"][0];
    let doc = document();
    let schema = &doc["components"]["schemas"]["IntegrationView"];
    assert_eq!(keys(item), keys(&schema["properties"]), "{item}");
    let required: BTreeSet<String> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys(item), required);
    let statuses = &doc["components"]["schemas"]["IntegrationStatus"]["enum"];
    assert!(
        statuses.as_array().unwrap().contains(&item["status"]),
        "{statuses}"
    );
}

/// The documented answer of `method template` with `status`, or a failure naming what
/// is missing.
fn documented<'a>(doc: &'a Value, method: &str, template: &str, status: u16) -> &'a Value {
    let answer = &doc["paths"][template][method]["responses"][status.to_string()];
    assert!(
        answer.is_object(),
        "{method} {template} answered {status}, which the document does not list"
    );
    answer
}

/// Sends `request`, expects `status`, and checks the answer against the document: the
/// status is listed, an error has the `ApiError` body, a listed `Retry-After` is there.
async fn check(
    doc: &Value,
    (method, template): (&str, &str),
    request: reqwest::RequestBuilder,
    status: u16,
) -> Value {
    let resp = request.send().await.unwrap();
    if resp.status() != status {
        let got = resp.status();
        let body = resp.text().await.unwrap_or_default();
        panic!("{method} {template}: expected {status}, got {got}: {body}");
    }
    let answer = documented(doc, method, template, status);
    if answer["headers"]["Retry-After"].is_object() && status == 429 {
        let secs: u64 = resp.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(secs >= 1);
    }
    if answer["headers"]["Location"].is_object() {
        assert!(resp.headers().contains_key("location"));
    }
    let schema = answer["content"]["application/json"]["schema"]["$ref"].as_str();
    let body: Value = if answer["content"].is_object() {
        assert_eq!(resp.headers()["content-type"], "application/json");
        resp.json().await.unwrap()
    } else {
        Value::Null
    };
    if schema == Some("#/components/schemas/ApiError") {
        assert_eq!(
            keys(&body),
            keys(&json!({"success": 0, "code": 0, "message": 0}))
        );
        assert_eq!(body["success"], false);
    }
    body
}

#[tokio::test]
async fn every_answer_of_the_routes_is_documented() {
    let h = host().await;
    let c = client();
    let doc = document();
    let url = |p: &str| format!("{}{p}", h.base);
    let get = |p: &str| c.get(url(p)).header("authorization", AUTH);
    let post = |p: &str| c.post(url(p)).header("authorization", AUTH);
    let delete = |p: &str| c.delete(url(p)).header("authorization", AUTH);
    const PROVIDERS: (&str, &str) = ("get", "/providers");
    const STATUS: (&str, &str) = ("get", "/status");
    const CONNECT: (&str, &str) = ("post", "/connect/{provider}");
    const CALLBACK: (&str, &str) = ("get", "/callback/{provider}");
    const DISCONNECT: (&str, &str) = ("delete", "/disconnect/{provider}/{account_id}");
    const REFRESH: (&str, &str) = ("post", "/refresh/{provider}/{account_id}");

    check(&doc, PROVIDERS, get("/providers"), 200).await;
    check(&doc, PROVIDERS, c.get(url("/providers")), 401).await;
    let long = "a".repeat(9000);
    check(&doc, PROVIDERS, get(&format!("/providers?x={long}")), 414).await;
    check(
        &doc,
        STATUS,
        get("/status").header("x-big", "b".repeat(40_000)),
        431,
    )
    .await;
    check(&doc, STATUS, get("/status"), 200).await;

    check(&doc, CONNECT, post("/connect/acme").json(&json!({})), 200).await;
    check(&doc, CONNECT, post("/connect/acme").body("{}"), 415).await;
    check(
        &doc,
        CONNECT,
        post("/connect/acme")
            .header("sec-fetch-site", "cross-site")
            .json(&json!({})),
        403,
    )
    .await;
    check(&doc, CONNECT, post("/connect/nope").json(&json!({})), 404).await;
    check(&doc, CONNECT, post("/connect/acme").json(&json!([1])), 400).await;
    check(
        &doc,
        CONNECT,
        post("/connect/acme")
            .header("content-type", "application/json")
            .body(vec![b' '; 3 * 1024 * 1024]),
        413,
    )
    .await;

    check(&doc, CALLBACK, get("/callback/acme?state=forged"), 303).await;
    check(&doc, CALLBACK, get("/callback/nope?state=forged"), 404).await;
    check(&doc, CALLBACK, get("/callback/%FF"), 400).await;

    check(&doc, DISCONNECT, delete("/disconnect/acme/none"), 404).await;
    check(&doc, DISCONNECT, delete("/disconnect/acme/%FF"), 400).await;
    check(
        &doc,
        DISCONNECT,
        delete("/disconnect/acme/none").header("sec-fetch-site", "cross-site"),
        403,
    )
    .await;

    connect(&h, &c, "good-code").await;
    let refresh = || post("/refresh/acme/acct-1").json(&json!({}));
    // The body is `{}` (or none): anything else is refused before the platform is called.
    for body in ["[]", "null", "0", "\"{}\"", "{", "not json"] {
        let before = h.provider.refresh_calls();
        check(
            &doc,
            REFRESH,
            post("/refresh/acme/acct-1")
                .header("content-type", "application/json")
                .body(body),
            400,
        )
        .await;
        assert_eq!(h.provider.refresh_calls(), before, "{body}");
    }
    check(
        &doc,
        REFRESH,
        post("/refresh/acme/acct-1")
            .header("content-type", "application/json")
            .body(vec![b' '; 3 * 1024 * 1024]),
        413,
    )
    .await;
    check(
        &doc,
        REFRESH,
        post("/refresh/acme/none").json(&json!({})),
        404,
    )
    .await;
    check(&doc, REFRESH, post("/refresh/acme/acct-1").body("{}"), 415).await;
    for (error, status) in [
        (
            ProviderError::RateLimited {
                retry_after: Some(Duration::from_secs(30)),
            },
            429,
        ),
        (ProviderError::Unavailable { status: 503 }, 503),
        (
            ProviderError::Protocol {
                message: "nonsense".into(),
                body: None,
            },
            502,
        ),
        (ProviderError::Config("broken".into()), 500),
        (ProviderError::InvalidGrant { description: None }, 409),
    ] {
        h.provider.fail_next_refresh(error);
        check(&doc, REFRESH, refresh(), status).await;
    }
    // Reconnected after the refused grant; then a refresh that works.
    connect(&h, &c, "again-code").await;
    check(&doc, REFRESH, refresh(), 200).await;
    check(&doc, DISCONNECT, delete("/disconnect/acme/acct-1"), 200).await;

    // The per-user limit on starting connections.
    let mut limited = false;
    for _ in 0..20 {
        let resp = post("/connect/acme").json(&json!({})).send().await.unwrap();
        if resp.status() == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited, "connect is rate-limited");
    check(&doc, CONNECT, post("/connect/acme").json(&json!({})), 429).await;
}
