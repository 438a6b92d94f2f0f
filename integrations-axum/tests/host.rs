//! A host mounting the routers under its own prefix, with its own authentication (a bearer
//! header), and running the whole flow through them over real HTTP; then what a security
//! review of the example server found, each refused.

use integrations_axum::{
    Authenticate, IntegrationsRouter, PageConfig, ServeLimits, serve_with_shutdown,
};
use integrations_core::testing::ScriptedProvider;
use integrations_core::{EncryptionKey, Integrations, MemoryStore, TokenCipher, UserId};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The host's authentication: `Authorization: Bearer user-<id>`.
struct Bearer;

#[async_trait::async_trait]
impl Authenticate for Bearer {
    async fn user(&self, parts: &mut axum::http::request::Parts) -> Option<UserId> {
        let value = parts.headers.get("authorization")?.to_str().ok()?;
        value.strip_prefix("Bearer user-")?.parse().ok().map(UserId)
    }
}

struct Host {
    base: String,
    provider: Arc<ScriptedProvider>,
    integrations: Integrations,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

async fn host(limits: ServeLimits) -> Host {
    let provider = Arc::new(ScriptedProvider::new("acme"));
    provider.account_for_code("good-code", "acct-1");
    let integrations = Integrations::builder(
        Arc::new(MemoryStore::new()),
        TokenCipher::new(EncryptionKey::generate()),
    )
    .provider(provider.clone())
    .build();
    let web = IntegrationsRouter::new(integrations.clone(), Bearer)
        .card("acme", "Acme")
        .page_config(PageConfig {
            title: "Connected apps".into(),
            api_base: "/settings/integrations/api".into(),
            page_url: "/settings/integrations".into(),
            ..PageConfig::default()
        });
    let app = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .nest("/settings/integrations/api", web.api())
        .nest("/settings/integrations", web.page());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve_with_shutdown(listener, app, limits, async move {
        let _ = rx.await;
    }));
    Host {
        base,
        provider,
        integrations,
        stop: Some(tx),
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

const AUTH: &str = "Bearer user-7";
const API: &str = "/settings/integrations/api";

async fn json_error(resp: reqwest::Response) -> Value {
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(ct.as_deref(), Some("application/json"), "JSON error body");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["success"], false, "{body}");
    body
}

#[tokio::test]
async fn a_host_mounts_the_routers_under_a_prefix_with_its_own_authentication() {
    let h = host(ServeLimits::default()).await;
    let c = client();
    assert_eq!(
        c.get(format!("{}/health", h.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok"
    );

    // The page knows where it is mounted and where the API is.
    let page = c
        .get(format!("{}/settings/integrations", h.base))
        .header("authorization", AUTH)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains("<title>Connected apps</title>"));
    assert!(html.contains(r#"data-api="/settings/integrations/api""#));
    assert!(html.contains(r#"src="/settings/integrations/assets/integrations.js?v="#));
    let js = c
        .get(format!(
            "{}/settings/integrations/assets/integrations.js",
            h.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    // Signed out: no page (no sign-in URL configured, so a 401), no API.
    let anon = c
        .get(format!("{}/settings/integrations", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
    let anon = c
        .get(format!("{}{API}/status", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
    assert_eq!(json_error(anon).await["code"], "unauthenticated");

    // Providers, connect, callback, status, disconnect.
    let providers: Value = c
        .get(format!("{}{API}/providers", h.base))
        .header("authorization", AUTH)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        providers["providers"],
        serde_json::json!([{"id": "acme", "name": "Acme", "canRefresh": true}])
    );
    let start: Value = c
        .post(format!("{}{API}/connect/acme", h.base))
        .header("authorization", AUTH)
        .json(&serde_json::json!({"redirectUrl": "/settings/integrations"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let state = start["state"].as_str().unwrap();
    assert!(start["authUrl"].as_str().unwrap().contains(state));
    let back = c
        .get(format!(
            "{}{API}/callback/acme?code=good-code&state={state}",
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
    let status: Value = c
        .get(format!("{}{API}/status", h.base))
        .header("authorization", AUTH)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["integrations"][0]["providerAccountId"], "acct-1");
    assert_eq!(status["integrations"][0]["status"], "connected");
    // Another user of the host sees nothing of it.
    let other: Value = c
        .get(format!("{}{API}/status", h.base))
        .header("authorization", "Bearer user-8")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(other["integrations"], serde_json::json!([]));
    let gone = c
        .delete(format!("{}{API}/disconnect/acme/acct-1", h.base))
        .header("authorization", AUTH)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 200);
    let body: Value = gone.json().await.unwrap();
    assert_eq!(body["message"], "Acme disconnected.");
    assert!(h.integrations.status(UserId(7)).await.unwrap().is_empty());
    assert_eq!(h.provider.revoke_calls(), 1);
}

#[tokio::test]
async fn cross_site_and_non_json_requests_change_nothing() {
    let h = host(ServeLimits::default()).await;
    let c = client();
    let connect = format!("{}{API}/connect/acme", h.base);
    // The "simple" requests a cross-site page can send without a preflight.
    for _ in 0..10 {
        for (ct, body) in [
            ("text/plain", "{}"),
            ("application/x-www-form-urlencoded", "redirectUrl=%2F"),
            ("multipart/form-data; boundary=x", "--x--"),
        ] {
            let resp = c
                .post(&connect)
                .header("authorization", AUTH)
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 415, "{ct}");
            assert_eq!(json_error(resp).await["code"], "unsupported_media_type");
        }
        let resp = c
            .post(&connect)
            .header("authorization", AUTH)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 415, "no content type");
    }
    for (name, value) in [
        ("sec-fetch-site", "cross-site"),
        ("origin", "https://evil.example"),
    ] {
        let resp = c
            .post(&connect)
            .header("authorization", AUTH)
            .header(name, value)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{name}: {value}");
        assert_eq!(json_error(resp).await["code"], "cross_site");
    }
    let resp = c
        .delete(format!("{}{API}/disconnect/acme/acct-1", h.base))
        .header("authorization", AUTH)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    // None of that counted against the user's connect limit: a real connect still works.
    let resp = c
        .post(&connect)
        .header("authorization", AUTH)
        .header("sec-fetch-site", "same-origin")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(h.provider.exchange_calls(), 0);
}

#[tokio::test]
async fn errors_are_json_everywhere() {
    let h = host(ServeLimits::default()).await;
    let c = client();
    // Invalid UTF-8 in a path segment.
    let resp = c
        .delete(format!("{}{API}/disconnect/acme/%FF%FE", h.base))
        .header("authorization", AUTH)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body = json_error(resp).await;
    assert_eq!(body["code"], "invalid_request");
    assert!(!body.to_string().contains("account_id"), "{body}");
    // A route asked with the wrong method.
    let resp = c
        .put(format!("{}{API}/status", h.base))
        .header("authorization", AUTH)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(json_error(resp).await["code"], "method_not_allowed");
    // A method the route does not take is a 405 whatever the request's content type or
    // origin: the JSON and same-site rules are those of the routes that take it.
    for (method, path) in [
        (reqwest::Method::POST, "/status"),
        (reqwest::Method::POST, "/callback/acme"),
        (reqwest::Method::GET, "/connect/acme"),
        (reqwest::Method::PUT, "/refresh/acme/acct-1"),
        (reqwest::Method::PATCH, "/disconnect/acme/acct-1"),
    ] {
        for cross_site in [false, true] {
            let mut request = c
                .request(method.clone(), format!("{}{API}{path}", h.base))
                .header("authorization", AUTH)
                .header("content-type", "text/plain")
                .body("x");
            if cross_site {
                request = request.header("sec-fetch-site", "cross-site");
            }
            let resp = request.send().await.unwrap();
            assert_eq!(resp.status(), 405, "{method} {path}");
            assert_eq!(json_error(resp).await["code"], "method_not_allowed");
        }
    }
    // An over-long address and over-large headers.
    let long = "a".repeat(10_000);
    let resp = c
        .get(format!("{}{API}/status?x={long}", h.base))
        .header("authorization", AUTH)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 414);
    assert_eq!(json_error(resp).await["code"], "uri_too_long");
    let resp = c
        .get(format!("{}{API}/status", h.base))
        .header("authorization", AUTH)
        .header("x-big", "b".repeat(40_000))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 431);
    assert_eq!(json_error(resp).await["code"], "headers_too_large");
    // Unknown routes under the API.
    let resp = c
        .get(format!("{}{API}/nothing", h.base))
        .header("authorization", AUTH)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(json_error(resp).await["code"], "not_found");
}

/// A `MakeWriter` collecting the log text.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

#[tokio::test]
async fn request_data_reaches_the_log_escaped() {
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let h = host(ServeLimits::default()).await;
    let c = client();
    let start: Value = c
        .post(format!("{}{API}/connect/acme", h.base))
        .header("authorization", AUTH)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let state = start["state"].as_str().unwrap();
    // A callback `error` with a newline, a forged log line and a terminal escape code, and
    // a provider path segment with the same.
    let forged = "%0A2026-01-01T00:00:00Z%20ERROR%20admin%20logged%20in%1B%5B31m";
    let resp = c
        .get(format!(
            "{}{API}/callback/acme?error=x{forged}&state={state}",
            h.base
        ))
        .header("authorization", AUTH)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let resp = c
        .get(format!(
            "{}{API}/callback/acme{forged}?code=c&state=s",
            h.base
        ))
        .header("authorization", AUTH)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("logged in"), "the error was logged: {text}");
    assert!(!text.contains('\u{1b}'), "no escape code: {text:?}");
    for line in text.lines() {
        assert!(
            !line.starts_with("2026-01-01T00:00:00Z"),
            "no forged line: {text}"
        );
    }
}

#[tokio::test]
async fn idle_and_trickling_connections_are_closed_and_capped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = host(ServeLimits {
        header_read_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_secs(5),
        connection_lifetime: Duration::from_secs(30),
        max_connections: 8,
    })
    .await;
    let addr = h.base.trim_start_matches("http://").to_owned();
    // Far more idle sockets than the cap: some send nothing, some trickle a header.
    let mut idle = Vec::new();
    for i in 0..40 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        if i % 2 == 0 {
            s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
        }
        idle.push(s);
    }
    // The server still answers, once the idle ones are closed.
    let c = client();
    let started = std::time::Instant::now();
    let resp = tokio::time::timeout(
        Duration::from_secs(10),
        c.get(format!("{}/health", h.base)).send(),
    )
    .await
    .expect("answered despite the idle sockets")
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(10));
    // An idle socket is closed by the server (EOF, or a 408 then EOF).
    let mut s = idle.remove(1);
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the server closed the idle connection");
    // A kept-alive connection idling after its request is closed too.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "closed after idling");
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"));
}

/// Reads one HTTP/1.1 answer's head from `s` (up to the blank line).
async fn read_head(s: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut byte))
            .await
            .expect("an answer")
            .unwrap();
        assert_eq!(n, 1, "the connection closed before an answer: {head:?}");
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap().to_ascii_lowercase()
}

#[tokio::test]
async fn an_answer_that_leaves_the_body_unread_says_the_connection_closes() {
    use tokio::io::AsyncWriteExt;
    let h = host(ServeLimits::default()).await;
    let addr = h.base.trim_start_matches("http://").to_owned();
    // Answered before the body arrives (a method the route does not take, a cross-site
    // request, an unknown route): the server does not wait for a body it will not read,
    // so it must say it closes the connection, or a client reusing it loses its next
    // request.
    for head in [
        format!("PUT {API}/status HTTP/1.1\r\nhost: x\r\nauthorization: {AUTH}\r\n"),
        format!(
            "POST {API}/connect/acme HTTP/1.1\r\nhost: x\r\nauthorization: {AUTH}\r\n\
             sec-fetch-site: cross-site\r\ncontent-type: application/json\r\n"
        ),
        format!("POST {API}/nothing HTTP/1.1\r\nhost: x\r\n"),
    ] {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(format!("{head}content-length: 5000\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let answer = read_head(&mut s).await;
        assert!(
            answer.contains("\r\nconnection: close\r\n"),
            "{head}\n{answer}"
        );
    }
    // A request whose body is read keeps its connection.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    for _ in 0..2 {
        s.write_all(
            format!(
                "POST {API}/connect/acme HTTP/1.1\r\nhost: x\r\nauthorization: {AUTH}\r\n\
                 content-type: application/json\r\ncontent-length: 2\r\n\r\n{{}}"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let answer = read_head(&mut s).await;
        assert!(answer.starts_with("http/1.1 200"), "{answer}");
        assert!(!answer.contains("connection: close"), "{answer}");
        let length: usize = answer
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let mut body = vec![0u8; length];
        tokio::io::AsyncReadExt::read_exact(&mut s, &mut body)
            .await
            .unwrap();
    }
}
