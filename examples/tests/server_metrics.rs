//! `GET /metrics` on the example server: the library's counters and the connection gauges
//! in the Prometheus text format. Alone in its test binary: the recorder is global to the
//! process.

mod support;

use integrations_examples::server::ServerConfig;
use integrations_sandbox::Platform;
use support::{Client, start};

/// The value of the sample `name{labels}` in a Prometheus text rendering.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn metrics_show_connects_and_connection_counts() {
    let server = start(ServerConfig {
        metrics: true,
        ..ServerConfig::default()
    })
    .await;
    let alice = Client::signed_in(&server, 1).await;
    let bob = Client::signed_in(&server, 2).await;
    alice.connect("reddit", "alice").await;
    bob.connect("reddit", "bob").await;
    alice.connect("tiktok", "alice").await;

    // No session needed (scraped by a monitoring system).
    let resp = Client::anonymous(&server).get("/metrics").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = resp.text().await.unwrap();
    let series = |s: &str| sample(&text, s).unwrap_or_else(|| panic!("no {s} in:\n{text}"));
    assert_eq!(
        series(r#"integrations_connections{provider="reddit",status="active"}"#),
        2.0
    );
    assert_eq!(
        series(r#"integrations_connections{provider="tiktok",status="active"}"#),
        1.0
    );
    assert_eq!(
        series(r#"integrations_connections_past_expiry{provider="reddit",status="active"}"#),
        0.0
    );
    assert_eq!(
        series(r#"integrations_connect_started_total{provider="reddit"}"#),
        2.0
    );
    assert_eq!(
        series(r#"integrations_connect_succeeded_total{provider="reddit",kind="new"}"#),
        2.0
    );
    assert!(
        !text.contains("access_token") && !text.contains("secret"),
        "no credential in metrics"
    );

    // Bob disconnects: the gauge follows at the next scrape.
    let account = server
        .sandbox()
        .unwrap()
        .user_info(Platform::Reddit, "bob")
        .account_id;
    let resp = bob
        .delete(&format!("/api/integrations/disconnect/reddit/{account}"))
        .await;
    assert_eq!(resp.status(), 200);
    let text = Client::anonymous(&server)
        .get("/metrics")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        sample(
            &text,
            r#"integrations_connections{provider="reddit",status="active"}"#
        ),
        Some(1.0)
    );
    server.shutdown().await;

    // Off: the route is an unknown one.
    let server = start(ServerConfig::default()).await;
    let resp = Client::anonymous(&server).get("/metrics").await;
    assert_eq!(resp.status(), 404);
    server.shutdown().await;
}
