//! Deliverer processes killed with SIGKILL in the middle of their attempts, twenty times
//! over 2,000 events, on SQLite and PostgreSQL: every event still arrives, a redelivery
//! carries the same `webhook-id` and body, and a receiver that deduplicates by id handles
//! each exactly once. The events are recorded by this process and read by the deliverer
//! processes: two processes, one store.
#![cfg(unix)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{TimeZone, Utc};
use integrations_core::webhooks::{WebhookSecret, verify};
use integrations_core::{
    ConnectionEvent, ConnectionEventKind, DeliveryStatus, EncryptionKey, EventId, EventPosition,
    NewAccount, ProviderId, TokenCipher, TokenStore, UserId,
};
use integrations_storage_diesel::DieselStore;
use integrations_storage_diesel::testing::PgSchema;
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ACCOUNTS: usize = 100;
const PER_ACCOUNT: usize = 20;
const KILLS: usize = 20;

#[derive(Default)]
struct Seen {
    /// Requests per webhook-id.
    requests: HashMap<String, u32>,
    /// The body first received per id.
    bodies: HashMap<String, Bytes>,
    /// Ids handled (the receiver's deduplication).
    handled: std::collections::HashSet<String>,
    /// Requests whose body differed from the first of their id.
    changed: u32,
    total: u64,
}

struct Receiver {
    secrets: Vec<WebhookSecret>,
    seen: Mutex<Seen>,
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let Ok(v) = verify(
        &r.secrets,
        &headers,
        &body,
        Utc::now(),
        Duration::from_secs(300),
    ) else {
        return StatusCode::UNAUTHORIZED;
    };
    // Slow enough that a kill lands while attempts are in flight.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut seen = r.seen.lock().unwrap();
    seen.total += 1;
    *seen.requests.entry(v.id.clone()).or_default() += 1;
    let first = seen
        .bodies
        .entry(v.id.clone())
        .or_insert_with(|| body.clone())
        .clone();
    if first != body {
        seen.changed += 1;
    }
    seen.handled.insert(v.id);
    StatusCode::NO_CONTENT
}

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).single().unwrap()
}

async fn record_events(store: &DieselStore) -> Vec<EventId> {
    let cipher = TokenCipher::new(EncryptionKey::generate());
    for i in 0..ACCOUNTS {
        let acct = format!("acct{i}");
        let sealed = cipher
            .seal(
                integrations_core::SecretContext::access_token("reddit", &acct),
                "at",
            )
            .unwrap();
        let record = store
            .upsert_account(
                NewAccount {
                    user_id: UserId(1),
                    provider: ProviderId::new("reddit").unwrap(),
                    provider_account_id: acct,
                    access_token: Some(sealed),
                    refresh_token: None,
                    expires_at: None,
                    refresh_expires_at: None,
                    token_type: None,
                    scope: None,
                    metadata: serde_json::json!({}),
                    now: t0(),
                },
                EventId::random(),
            )
            .await
            .unwrap()
            .into_record();
        let events: Vec<_> = (1..PER_ACCOUNT)
            .map(|_| ConnectionEvent::of_account(ConnectionEventKind::Refreshed, &record, t0()))
            .collect();
        store.update_account(&record, &events).await.unwrap();
    }
    store
        .events_after(EventPosition::START, 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.id)
        .collect()
}

fn deliverer(database_url: &str, webhook_url: &str, secret: &str) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_refresher"));
    cmd.env_clear()
        .arg("--deliver-only")
        .env("DATABASE_URL", database_url)
        .env("WEBHOOK_URL", webhook_url)
        .env("WEBHOOK_SECRET", secret)
        .env("WEBHOOK_LEASE_SECS", "1")
        .env("WEBHOOK_TIMEOUT_SECS", "1")
        .env("WEBHOOK_CONCURRENCY", "32")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd.spawn().expect("start the deliverer")
}

async fn killed_deliverers_lose_nothing(store: DieselStore, database_url: &str) {
    let ids = record_events(&store).await;
    assert_eq!(ids.len(), ACCOUNTS * PER_ACCOUNT);
    let (secret, shown) = WebhookSecret::generate();
    let receiver = Arc::new(Receiver {
        secrets: vec![secret],
        seen: Mutex::default(),
    });
    let app = axum::Router::new()
        .route("/hooks", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let total = |r: &Receiver| r.seen.lock().unwrap().total;
    for kill in 0..KILLS {
        let mut child = deliverer(database_url, &url, &shown);
        // Kill once it has sent a few dozen requests (or after 3 s).
        let before = total(&receiver);
        let started = Instant::now();
        while total(&receiver) < before + 40 && started.elapsed() < Duration::from_secs(3) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        assert!(
            total(&receiver) > before || kill > 0,
            "the first deliverer sent nothing"
        );
    }
    // A last deliverer finishes the work (the killed ones' leases lapse after 1 s).
    let mut child = deliverer(database_url, &url, &shown);
    let started = Instant::now();
    while receiver.seen.lock().unwrap().handled.len() < ids.len()
        && started.elapsed() < Duration::from_secs(120)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");

    {
        let seen = receiver.seen.lock().unwrap();
        let expected: std::collections::HashSet<String> =
            ids.iter().map(|id| id.as_str().to_owned()).collect();
        assert_eq!(seen.handled, expected, "every event handled, once, by id");
        assert_eq!(seen.changed, 0, "a redelivery carries the same body");
        let duplicates: u32 = seen.requests.values().map(|n| n - 1).sum();
        eprintln!(
            "{} requests for {} events: {duplicates} redeliveries after {KILLS} kills",
            seen.total,
            ids.len()
        );
    }
    let delivered = store
        .list_deliveries("default", DeliveryStatus::Delivered, 100_000)
        .await
        .unwrap();
    assert!(
        delivered.len() >= ids.len() - 64,
        "the store shows them delivered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_killed_deliverers_lose_nothing() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("deliverer-kill-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("events.db").display());
    let store = DieselStore::connect(&url).await.unwrap();
    killed_deliverers_lose_nothing(store, &url).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_deliverers_lose_nothing() {
    let Some(schema) = PgSchema::create("deliverer_kill").await else {
        return;
    };
    // The deliverer processes open the schema through the URL's `search_path` option.
    let name = schema.options().schema.expect("a schema");
    let url = format!("{}?options=-csearch_path%3D{name}", schema.url());
    killed_deliverers_lose_nothing(schema.store().await, &url).await;
}
