//! Webhook delivery end to end on both backends: deliverers sharing a store, a receiver
//! that fails often, signatures checked by an independent implementation (the
//! `standardwebhooks` crate), and the outbox's all-or-nothing write.

mod common;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::{PgSchema, TempDir, account, cipher, t0};
use integrations_core::webhooks::{
    Deliverer, DelivererConfig, Endpoint, RetrySchedule, WebhookSecret,
};
use integrations_core::{
    ConnectionEvent, ConnectionEventKind, DeliveryStatus, EventId, EventPosition, Integrations,
    StoreError, TokenStore,
};
use integrations_storage_diesel::DieselStore;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the receiver saw.
#[derive(Default)]
struct Seen {
    /// 2xx answers per webhook-id.
    accepted: HashMap<String, u32>,
    /// Per account key, the positions accepted, in arrival order.
    order: HashMap<String, Vec<i64>>,
    /// Requests whose signature did not verify.
    forged: u32,
    /// Requests answered with a failure.
    failed: u32,
}

struct Receiver {
    verifier: standardwebhooks::Webhook,
    timeout_after: Duration,
    seen: Mutex<Seen>,
}

/// Fails 30% of requests, half with a 5xx and half by answering after the deliverer's
/// timeout; accepts the rest, recording them. A request is decided before it is
/// recorded, so an accepted request is one the deliverer saw answered 2xx.
async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if r.verifier.verify(&body, &headers).is_err() {
        r.seen.lock().unwrap().forged += 1;
        return StatusCode::BAD_REQUEST;
    }
    let roll: f64 = rand::random();
    if roll < 0.15 {
        r.seen.lock().unwrap().failed += 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    if roll < 0.30 {
        r.seen.lock().unwrap().failed += 1;
        tokio::time::sleep(r.timeout_after).await;
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON body");
    let data = &json["data"];
    let key = format!(
        "{}:{}",
        data["provider"].as_str().expect("provider"),
        data["provider_account_id"].as_str().expect("account")
    );
    let id = headers["webhook-id"].to_str().expect("id").to_owned();
    assert_eq!(
        data["id"].as_str(),
        Some(id.as_str()),
        "webhook-id is the event id"
    );
    let mut seen = r.seen.lock().unwrap();
    *seen.accepted.entry(id).or_default() += 1;
    seen.order
        .entry(key)
        .or_default()
        .push(data["position"].as_i64().expect("position"));
    StatusCode::NO_CONTENT
}

async fn start_receiver(shown_secret: &str, timeout_after: Duration) -> (url::Url, Arc<Receiver>) {
    let receiver = Arc::new(Receiver {
        verifier: standardwebhooks::Webhook::new(shown_secret).expect("secret"),
        timeout_after,
        seen: Mutex::default(),
    });
    let app = axum::Router::new()
        .route("/hooks", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let url = format!("http://{addr}/hooks").parse().expect("url");
    (url, receiver)
}

/// `accounts` accounts with `per_account` events each (the connect event and the rest
/// recorded with one update per account).
async fn record_events(store: &DieselStore, accounts: usize, per_account: usize) {
    let c = cipher();
    for i in 0..accounts {
        let upserted = store
            .upsert_account(
                account(&c, 1, "reddit", &format!("acct{i}"), t0()),
                EventId::random(),
            )
            .await
            .expect("upsert");
        let record = upserted.into_record();
        let events: Vec<ConnectionEvent> = (1..per_account)
            .map(|_| ConnectionEvent::of_account(ConnectionEventKind::Refreshed, &record, t0()))
            .collect();
        store
            .update_account(&record, &events)
            .await
            .expect("update");
    }
}

/// Three deliverers, `accounts × per_account` events, a receiver failing 30% of requests:
/// every event is accepted exactly once, each account's in order, none given up, every
/// signature verified by the `standardwebhooks` crate.
async fn three_deliverers_deliver_everything_once_in_order(
    store: DieselStore,
    accounts: usize,
    per_account: usize,
) {
    record_events(&store, accounts, per_account).await;
    let total = accounts * per_account;
    let (secret, shown) = WebhookSecret::generate();
    // An accepted request is answered at once; a timed-out one well after the timeout,
    // so that no 2xx ever arrives after the deliverer gave up on it.
    let timeout = Duration::from_secs(1);
    let (url, receiver) = start_receiver(&shown, timeout + Duration::from_millis(500)).await;
    let integrations = Integrations::builder(Arc::new(store.clone()), cipher()).build();
    let endpoint = Endpoint {
        name: "host".into(),
        url,
        secrets: vec![secret],
    };
    let config = DelivererConfig {
        batch: 64,
        lease_ttl: Duration::from_secs(10),
        timeout,
        retries: RetrySchedule {
            waits: vec![Duration::from_millis(10); 40],
            jitter: 0.5,
        },
        poll: Duration::from_millis(20),
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let deliverers: Vec<_> = (0..3)
        .map(|_| {
            let d = Deliverer::new(integrations.clone(), vec![endpoint.clone()], config.clone());
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                d.run(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await
            })
        })
        .collect();
    let started = std::time::Instant::now();
    loop {
        let accepted = receiver.seen.lock().unwrap().accepted.len();
        if accepted >= total || started.elapsed() > Duration::from_secs(240) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A little longer, so that a second delivery of anything would show.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.send_replace(true);
    for d in deliverers {
        d.await.expect("deliverer");
    }
    {
        let seen = receiver.seen.lock().unwrap();
        assert_eq!(seen.forged, 0, "every signature verifies");
        assert!(seen.failed > 0, "the receiver failed some requests");
        assert_eq!(seen.accepted.len(), total, "every event delivered");
        let twice = seen.accepted.values().filter(|n| **n > 1).count();
        assert_eq!(twice, 0, "events delivered again after a 2xx");
        assert_eq!(seen.order.len(), accounts);
        for (key, positions) in &seen.order {
            assert_eq!(positions.len(), per_account, "{key}");
            assert!(
                positions.windows(2).all(|w| w[0] < w[1]),
                "{key} out of order: {positions:?}"
            );
        }
    }
    let failed = store
        .list_deliveries("host", DeliveryStatus::Failed, 10)
        .await
        .expect("list");
    assert!(
        failed.is_empty(),
        "nothing given up ({} failed)",
        failed.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_three_deliverers_ten_thousand_events_flaky_receiver() {
    let Some(schema) = PgSchema::create("webhooks_pg").await else {
        return;
    };
    let store = schema.store().await;
    let started = std::time::Instant::now();
    three_deliverers_deliver_everything_once_in_order(store, 1000, 10).await;
    eprintln!("delivered in {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_three_deliverers_ten_thousand_events_flaky_receiver() {
    let dir = TempDir::new();
    let store = DieselStore::connect(&dir.sqlite_url("hooks.db"))
        .await
        .expect("store");
    three_deliverers_deliver_everything_once_in_order(store, 1000, 10).await;
}

/// A fault between the account change and its event (the event's insert fails: its id is
/// taken) aborts the transaction: neither is written.
async fn no_change_without_its_event(store: DieselStore) {
    let c = cipher();
    let id = EventId::random();
    let record = store
        .upsert_account(account(&c, 1, "reddit", "a", t0()), id.clone())
        .await
        .expect("upsert")
        .into_record();
    let before = store
        .events_after(EventPosition::START, 100)
        .await
        .expect("events");
    assert_eq!(before.len(), 1);
    let mut changed = record.clone();
    changed.refresh_failures = 7;
    let clash = ConnectionEvent::of_account(ConnectionEventKind::RefreshFailed, &changed, t0())
        .with_id(id.clone());
    let err = store
        .update_account(&changed, std::slice::from_ref(&clash))
        .await
        .expect_err("fault");
    assert!(matches!(err, StoreError::UniqueViolation(_)), "{err:?}");
    let after = store
        .get_account(record.id)
        .await
        .expect("get")
        .expect("row");
    assert_eq!(
        after.refresh_failures, 0,
        "the change was rolled back with its event"
    );
    assert_eq!(after.version, record.version);
    // The same through the refresh write and the upsert and delete paths.
    let err = store
        .update_account_and_release(&changed, "nobody", std::slice::from_ref(&clash))
        .await
        .expect_err("fault");
    assert!(matches!(err, StoreError::UniqueViolation(_)), "{err:?}");
    let err = store
        .upsert_account(account(&c, 1, "reddit", "b", t0()), id.clone())
        .await
        .expect_err("fault");
    assert!(matches!(err, StoreError::UniqueViolation(_)), "{err:?}");
    assert!(
        store
            .find_account(&record.provider, "b")
            .await
            .expect("find")
            .is_none(),
        "no account without its event"
    );
    let err = store
        .delete_account(record.id, &[clash])
        .await
        .expect_err("fault");
    assert!(matches!(err, StoreError::UniqueViolation(_)), "{err:?}");
    let kept = store
        .get_account(record.id)
        .await
        .expect("get")
        .expect("row");
    assert_eq!(kept.version, record.version, "nothing changed");
    let events = store
        .events_after(EventPosition::START, 100)
        .await
        .expect("events");
    assert_eq!(events.len(), 1, "and no event without its change");
    // And the write goes through once the event is valid.
    let ok = ConnectionEvent::of_account(ConnectionEventKind::RefreshFailed, &changed, t0());
    store.update_account(&changed, &[ok]).await.expect("update");
    assert_eq!(
        store
            .events_after(EventPosition::START, 100)
            .await
            .expect("events")
            .len(),
        2
    );
}

#[tokio::test]
async fn postgres_no_change_without_its_event() {
    let Some(schema) = PgSchema::create("outbox_fault_pg").await else {
        return;
    };
    no_change_without_its_event(schema.store().await).await;
}

#[tokio::test]
async fn sqlite_no_change_without_its_event() {
    let dir = TempDir::new();
    let store = DieselStore::connect(&dir.sqlite_url("fault.db"))
        .await
        .expect("store");
    no_change_without_its_event(store).await;
}
