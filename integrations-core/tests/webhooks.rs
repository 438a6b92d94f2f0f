//! `Deliverer::run_once` against a local endpoint: the Standard Webhooks headers and body
//! of each event, retries, and 410 giving up.

use integrations_core::testing::ScriptedProvider;
use integrations_core::webhooks::{
    Deliverer, DelivererConfig, Endpoint, RetrySchedule, WebhookSecret, verify,
};
use integrations_core::{
    CallbackParams, DeliveryStatus, EncryptionKey, EventPosition, Integrations, MemoryStore,
    TokenCipher, TokenStore, UserId,
};
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn connected(store: Arc<MemoryStore>, accounts: &[&str]) -> Integrations {
    let integrations = Integrations::builder(store, TokenCipher::new(EncryptionKey::generate()))
        .provider(Arc::new(ScriptedProvider::new("reddit")))
        .build();
    for code in accounts {
        let start = integrations
            .connect(UserId(7), "reddit", None)
            .await
            .unwrap();
        let params = CallbackParams::from_pairs([("code", *code), ("state", start.state.as_str())]);
        integrations
            .callback(UserId(7), "reddit", &params)
            .await
            .unwrap();
    }
    integrations
}

fn deliverer(integrations: &Integrations, url: String, secret: WebhookSecret) -> Deliverer {
    Deliverer::new(
        integrations.clone(),
        vec![Endpoint {
            name: "host".into(),
            url: url.parse().unwrap(),
            secrets: vec![secret],
        }],
        DelivererConfig {
            retries: RetrySchedule {
                waits: vec![Duration::ZERO; 2],
                jitter: 0.0,
            },
            ..DelivererConfig::default()
        },
    )
}

#[tokio::test]
async fn each_event_is_posted_signed_with_its_id_and_body() {
    let store = Arc::new(MemoryStore::new());
    let integrations = connected(store.clone(), &["alice", "bob"]).await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks"))
        .respond_with(ResponseTemplate::new(204))
        .expect(2)
        .mount(&server)
        .await;
    let (secret, _) = WebhookSecret::generate();
    let d = deliverer(
        &integrations,
        format!("{}/hooks", server.uri()),
        secret.clone(),
    );
    let report = d.run_once().await.unwrap();
    assert_eq!((report.enqueued, report.delivered), (2, 2), "{report:?}");
    assert_eq!(d.run_once().await.unwrap().delivered, 0, "nothing twice");

    let events = store.events_after(EventPosition::START, 10).await.unwrap();
    for request in server.received_requests().await.unwrap() {
        assert_eq!(request.headers["content-type"], "application/json");
        let ok = verify(
            std::slice::from_ref(&secret),
            &request.headers,
            &request.body,
            chrono::Utc::now(),
            Duration::from_secs(60),
        )
        .unwrap();
        let event = events
            .iter()
            .find(|e| e.event.id.as_str() == ok.id)
            .expect("webhook-id is an event id");
        assert_eq!(
            request.body,
            event.webhook_body(),
            "the body is the event's"
        );
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["type"], "connection.connected");
        assert_eq!(body["data"]["user_id"], 7);
        assert_eq!(body["data"]["provider"], "reddit");
        assert!(
            !String::from_utf8_lossy(&request.body).contains("access"),
            "no token"
        );
    }
}

#[tokio::test]
async fn failures_are_retried_and_gone_gives_up() {
    let store = Arc::new(MemoryStore::new());
    let integrations = connected(store.clone(), &["alice"]).await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(410))
        .mount(&server)
        .await;
    let (secret, _) = WebhookSecret::generate();
    let d = deliverer(&integrations, format!("{}/hooks", server.uri()), secret);
    assert_eq!(d.run_once().await.unwrap().retried, 1);
    assert_eq!(
        d.run_once().await.unwrap().failed,
        1,
        "410 gives up at once"
    );
    let failed = store
        .list_deliveries("host", DeliveryStatus::Failed, 10)
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].attempts, 2);
    assert_eq!(
        failed[0].last_error.as_deref(),
        Some("the endpoint answered HTTP 410")
    );
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].headers["webhook-id"], requests[1].headers["webhook-id"],
        "a retry carries the same id"
    );
}
