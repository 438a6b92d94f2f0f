//! A server started with `spawn`: it answers at the address its handle gives, finishes a
//! request in flight when shut down, and stops when the handle is dropped; `not_found`
//! answers what the API answers for an unknown route.

use integrations_axum::{IntegrationsRouter, ServerHandle, not_found, spawn};
use integrations_core::{EncryptionKey, Integrations, MemoryStore, TokenCipher, UserId};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

struct Nobody;

#[async_trait::async_trait]
impl integrations_axum::Authenticate for Nobody {
    async fn user(&self, _: &mut axum::http::request::Parts) -> Option<UserId> {
        None
    }
}

async fn start(app: axum::Router) -> ServerHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    spawn(listener, app, Default::default()).unwrap()
}

/// Whether the address refuses connections, waiting (up to 10 s) for it to.
async fn refuses(addr: std::net::SocketAddr) -> bool {
    tokio::time::timeout(Duration::from_secs(10), async {
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn a_spawned_server_answers_at_its_address_and_stops_on_shutdown() {
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
    let server = start(app).await;
    let addr = server.addr();
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0, "the port the listener was given");
    assert_eq!(server.url(), format!("http://{addr}"));
    let body = reqwest::get(server.url())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "hello");
    server.shutdown().await.unwrap();
    assert!(refuses(addr).await, "nothing listens after shutdown");
}

#[tokio::test]
async fn shutdown_lets_a_request_in_flight_finish() {
    let started = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let (s, r) = (started.clone(), release.clone());
    let app = axum::Router::new().route(
        "/slow",
        axum::routing::get(move || {
            let (s, r) = (s.clone(), r.clone());
            async move {
                s.notify_one();
                r.notified().await;
                "done"
            }
        }),
    );
    let server = start(app).await;
    let url = format!("{}/slow", server.url());
    let request = tokio::spawn(async move { reqwest::get(url).await?.text().await });
    started.notified().await;
    let addr = server.addr();
    let shutting_down = tokio::spawn(server.shutdown());
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(
        !shutting_down.is_finished(),
        "shutdown waits for the request"
    );
    release.notify_one();
    assert_eq!(request.await.unwrap().unwrap(), "done");
    shutting_down.await.unwrap().unwrap();
    assert!(refuses(addr).await);
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let server = start(axum::Router::new()).await;
    let addr = server.addr();
    drop(server);
    assert!(refuses(addr).await, "the server stops without its handle");
}

#[tokio::test]
async fn not_found_answers_like_the_api() {
    let integrations = Integrations::builder(
        Arc::new(MemoryStore::new()),
        TokenCipher::new(EncryptionKey::generate()),
    )
    .build();
    let web = IntegrationsRouter::new(integrations, Nobody);
    let app = axum::Router::new()
        .nest("/api/integrations", web.api())
        .fallback(not_found);
    let server = start(app).await;
    let get = |path: &str| reqwest::get(format!("{}{path}", server.url()));
    let ours = get("/no/such/page").await.unwrap();
    let api = get("/api/integrations/no/such/route").await.unwrap();
    assert_eq!(ours.status(), 404);
    assert_eq!(api.status(), 404);
    assert_eq!(
        ours.headers()["content-type"],
        api.headers()["content-type"]
    );
    let ours: serde_json::Value = ours.json().await.unwrap();
    let api: serde_json::Value = api.json().await.unwrap();
    assert_eq!(ours, api);
    assert_eq!(ours["code"], "not_found");
    assert_eq!(ours["success"], false);
}
