//! The connection gauges: `integrations_connections` and
//! `integrations_connections_past_expiry`, by platform and stored status.

use chrono::{Duration, TimeZone, Utc};
use integrations_core::testing::ScriptedProvider;
use integrations_core::{
    CallbackParams, EncryptionKey, Integrations, ManualClock, MemoryStore, ServiceConfig,
    StoredStatus, TokenCipher, TokenStore, UserId,
};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Gauge values by (name, provider, status).
fn gauges(snapshotter: &Snapshotter) -> BTreeMap<(String, String, String), f64> {
    let mut out = BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let DebugValue::Gauge(v) = value else {
            continue;
        };
        let key = key.key();
        let label = |name: &str| {
            key.labels()
                .find(|l| l.key() == name)
                .map(|l| l.value().to_owned())
                .unwrap_or_default()
        };
        out.insert(
            (key.name().to_owned(), label("provider"), label("status")),
            v.into_inner(),
        );
    }
    out
}

fn expect(rows: &[(&str, &str, &str, f64)]) -> BTreeMap<(String, String, String), f64> {
    rows.iter()
        .map(|(n, p, s, v)| ((n.to_string(), p.to_string(), s.to_string()), *v))
        .collect()
}

async fn connect(i: &Integrations, user: i64, provider: &str, code: &str) {
    let start = i.connect(UserId(user), provider, None).await.unwrap();
    i.callback(
        UserId(user),
        provider,
        &CallbackParams::from_pairs([("code", code), ("state", start.state.as_str())]),
    )
    .await
    .unwrap();
}

#[test]
fn connection_gauges_follow_the_store() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        rt.block_on(async {
            let store = Arc::new(MemoryStore::new());
            let clock = Arc::new(ManualClock::new(
                Utc.with_ymd_and_hms(2026, 7, 1, 0, 0, 0).unwrap(),
            ));
            let i =
                Integrations::builder(store.clone(), TokenCipher::new(EncryptionKey::generate()))
                    .provider(Arc::new(ScriptedProvider::new("tiktok")))
                    .provider(Arc::new(ScriptedProvider::new("reddit")))
                    .clock(clock.clone())
                    .config(ServiceConfig {
                        connect_limit: usize::MAX,
                        ..ServiceConfig::default()
                    })
                    .build();
            for user in 1..=3 {
                connect(&i, user, "tiktok", &format!("t{user}")).await;
            }
            connect(&i, 1, "reddit", "r1").await;

            let counts = i.record_connection_gauges().await.unwrap();
            assert_eq!(counts.len(), 2);
            let c = "integrations_connections";
            let p = "integrations_connections_past_expiry";
            assert_eq!(
                gauges(&snapshotter),
                expect(&[
                    (c, "reddit", "active", 1.0),
                    (c, "tiktok", "active", 3.0),
                    (p, "reddit", "active", 0.0),
                    (p, "tiktok", "active", 0.0),
                ])
            );

            // Two hours later every token (one hour) is past expiry; one TikTok grant died;
            // the Reddit account is disconnected, so its group goes to zero.
            clock.advance(Duration::hours(2));
            let mut dead = store.list_accounts(UserId(2)).await.unwrap().remove(0);
            dead.status = StoredStatus::NeedsReconnect;
            store.update_account(&dead, &[]).await.unwrap();
            let reddit = store.list_accounts(UserId(1)).await.unwrap();
            let reddit = reddit
                .iter()
                .find(|r| r.provider.as_str() == "reddit")
                .unwrap();
            i.disconnect(UserId(1), "reddit", &reddit.provider_account_id)
                .await
                .unwrap();

            i.record_connection_gauges().await.unwrap();
            assert_eq!(
                gauges(&snapshotter),
                expect(&[
                    (c, "reddit", "active", 0.0),
                    (c, "tiktok", "active", 2.0),
                    (c, "tiktok", "needs_reconnect", 1.0),
                    (p, "reddit", "active", 0.0),
                    (p, "tiktok", "active", 2.0),
                    (p, "tiktok", "needs_reconnect", 1.0),
                ])
            );
        })
    });
}
