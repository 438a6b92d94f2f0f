//! Events cross processes through the store: the `refresher` binary refreshes accounts in
//! its own process, and this process, sharing the store, reads the events it recorded from
//! `Integrations::events` (a stream that was already waiting), and its cached status
//! follows within the poll interval (`Integrations::follow_events`).

mod common;

use common::{PgSchema, REDIRECT, connect_many, sandbox, tiktok};
use futures::StreamExt;
use integrations_core::{
    ConnectionEventKind, EncryptionKey, EventPosition, Integrations, ServiceConfig, TokenCipher,
};
use integrations_sandbox::Platform;
use integrations_storage_diesel::DieselStore;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

const ACCOUNTS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_events_recorded_by_the_refresher_process_reach_this_one() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("events-xproc-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("store.db").display());
    let store = DieselStore::connect(&url).await.unwrap();
    // SQLite has no wake-up: the stream polls every 50 ms.
    refresher_events_reach_this_process(store, &url).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_events_recorded_by_the_refresher_process_reach_this_one() {
    let Some(schema) = PgSchema::create("events_xproc").await else {
        return;
    };
    let name = schema.options().schema.expect("a schema");
    let url = format!("{}?options=-csearch_path%3D{name}", schema.url());
    // PostgreSQL wakes the stream with NOTIFY when the refresher's transaction commits.
    refresher_events_reach_this_process(schema.store().await, &url).await;
}

async fn refresher_events_reach_this_process(store: DieselStore, url: &str) {
    let sandbox = sandbox().await;
    // Connected with two-second tokens: due once half their lifetime is gone.
    sandbox.set_token_lifetime(Platform::TikTok, Duration::from_secs(2));
    let key = EncryptionKey::generate();
    let key_b64 = key.to_base64();
    let integrations = Integrations::builder(Arc::new(store), TokenCipher::new(key))
        .provider(tiktok(&sandbox))
        .config(ServiceConfig {
            event_poll: if url.starts_with("sqlite") {
                Duration::from_millis(50)
            } else {
                // Longer than the test waits: only NOTIFY can wake it in time.
                Duration::from_secs(120)
            },
            ..ServiceConfig::default()
        })
        .build();
    connect_many(std::slice::from_ref(&integrations), ACCOUNTS, ACCOUNTS).await;
    let connected = integrations
        .events_after(EventPosition::START, 100)
        .await
        .unwrap();
    assert_eq!(connected.len(), ACCOUNTS);
    let cursor = connected.last().unwrap().position;
    // The status this process has cached (for five minutes by default)...
    let user = connected[0].event.user_id;
    let cached = integrations.status(user).await.unwrap();
    tokio::spawn(integrations.follow_events());

    // This process waits for what comes after the connections...
    let mut stream = Box::pin(integrations.events(cursor));
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        while got.len() < ACCOUNTS {
            match tokio::time::timeout(Duration::from_secs(60), stream.next()).await {
                Ok(Some(Ok(event))) => got.push(event),
                other => panic!("the stream ended or failed: {other:?}"),
            }
        }
        got
    });
    // ... which the refresher records in its own, once the tokens are due.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    sandbox.set_token_lifetime(Platform::TikTok, Duration::from_secs(3600));
    let client = sandbox.client(Platform::TikTok);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_refresher"));
    cmd.env_clear()
        .args(["--once", "--window-secs", "600"])
        .env("DATABASE_URL", url)
        .env("TOKEN_ENCRYPTION_KEY", key_b64.as_str())
        .env("TIKTOK_CLIENT_KEY", &client.client_id)
        .env("TIKTOK_CLIENT_SECRET", &client.client_secret)
        .env("TIKTOK_REDIRECT_URI", REDIRECT)
        .env("TIKTOK_SCOPES", "user.info.basic,user.info.profile")
        .env("TIKTOK_WWW_BASE_URL", sandbox.tiktok_www())
        .env("TIKTOK_API_BASE_URL", sandbox.tiktok_open());
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run the refresher"))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("refreshed {ACCOUNTS}")),
        "{stdout}"
    );

    // ... follows the other process's change within the poll interval (at once on
    // PostgreSQL), not after the cache's TTL.
    let refreshed_at = std::time::Instant::now();
    let fresh = loop {
        let now = integrations.status(user).await.unwrap();
        if now != cached || refreshed_at.elapsed() > Duration::from_secs(10) {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let lag = refreshed_at.elapsed();
    assert_ne!(
        fresh, cached,
        "the cached status never followed the refresher's change"
    );
    assert!(
        lag < Duration::from_secs(2),
        "the status followed after {lag:?}"
    );
    for (old, new) in cached.iter().zip(&fresh) {
        assert!(new.expires_at > old.expires_at, "{new:?}");
    }
    let got = reader.await.unwrap();
    assert!(got.iter().all(|e| e.position > cursor));
    assert!(
        got.iter()
            .all(|e| e.event.kind == ConnectionEventKind::Refreshed),
        "{got:?}"
    );
    let mut accounts: Vec<_> = got.iter().map(|e| &e.event.provider_account_id).collect();
    let mut expected: Vec<_> = connected
        .iter()
        .map(|e| &e.event.provider_account_id)
        .collect();
    accounts.sort();
    expected.sort();
    assert_eq!(accounts, expected, "one refresh event per account");
}
