//! The status cache over PostgreSQL: two `Integrations` instances with their own
//! `DieselStore` pools on one schema. A write shows at once in the instance that made it,
//! and in the other within `status_cache_ttl`.

mod common;

use common::PgSchema;
use integrations_core::testing::ScriptedProvider;
use integrations_core::{
    CallbackParams, EncryptionKey, IntegrationView, Integrations, ServiceConfig, TokenCipher,
    UserId,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

const USER: UserId = UserId(3);
const TTL: Duration = Duration::from_millis(800);

async fn connect(i: &Integrations, code: &str) {
    let start = i.connect(USER, "tiktok", None).await.unwrap();
    i.callback(
        USER,
        "tiktok",
        &CallbackParams::from_pairs([("code", code), ("state", start.state.as_str())]),
    )
    .await
    .unwrap();
}

/// Polls `i.status` until `done`, for at most `TTL` + a margin; returns how long it took.
async fn visible_within(
    i: &Integrations,
    since: Instant,
    done: impl Fn(&[IntegrationView]) -> bool,
) -> Duration {
    let deadline = since + TTL + Duration::from_millis(500);
    loop {
        if done(&i.status(USER).await.unwrap()) {
            return since.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "not visible within the TTL ({TTL:?}) plus a margin"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn writes_show_at_once_here_and_within_the_ttl_elsewhere() {
    let Some(schema) = PgSchema::create("status_cache_postgres").await else {
        return;
    };
    let provider = Arc::new(ScriptedProvider::new("tiktok"));
    let cipher = TokenCipher::new(EncryptionKey::generate());
    let config = ServiceConfig {
        status_cache_ttl: TTL,
        connect_limit: usize::MAX,
        ..ServiceConfig::default()
    };
    let build = |store| {
        Integrations::builder(Arc::new(store), cipher.clone())
            .provider(provider.clone())
            .config(config.clone())
            .build()
    };
    let a = build(schema.store_pool(4).await);
    let b = build(schema.store_pool(4).await);
    assert!(a.status(USER).await.unwrap().is_empty());
    assert!(b.status(USER).await.unwrap().is_empty());

    // A write through A: A sees it at once; B still answers from its cache, then sees it
    // within the TTL.
    connect(&a, "one").await;
    let written = Instant::now();
    assert_eq!(a.status(USER).await.unwrap().len(), 1, "own write at once");
    let took = visible_within(&b, written, |v| v.len() == 1).await;
    eprintln!("A's write visible in B after {took:?} (TTL {TTL:?})");

    // A write through B (disconnect): B at once, A within the TTL.
    b.disconnect(USER, "tiktok", "one").await.unwrap();
    let written = Instant::now();
    assert!(
        b.status(USER).await.unwrap().is_empty(),
        "own write at once"
    );
    let took = visible_within(&a, written, |v| v.is_empty()).await;
    eprintln!("B's write visible in A after {took:?}");

    // A refresh through A shows in A at once (new expiry).
    connect(&a, "two").await;
    let before = a.status(USER).await.unwrap()[0].expires_at;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let view = a.refresh(USER, "tiktok", "two").await.unwrap();
    assert_ne!(view.expires_at, before);
    assert_eq!(a.status(USER).await.unwrap()[0].expires_at, view.expires_at);
    visible_within(&b, Instant::now(), |v| {
        v.len() == 1 && v[0].expires_at == view.expires_at
    })
    .await;
}

#[tokio::test]
async fn a_zero_ttl_disables_the_cache() {
    let Some(schema) = PgSchema::create("status_cache_disabled").await else {
        return;
    };
    let provider = Arc::new(ScriptedProvider::new("tiktok"));
    let cipher = TokenCipher::new(EncryptionKey::generate());
    let config = ServiceConfig {
        status_cache_ttl: Duration::ZERO,
        ..ServiceConfig::default()
    };
    let a = Integrations::builder(Arc::new(schema.store_pool(2).await), cipher.clone())
        .provider(provider.clone())
        .config(config.clone())
        .build();
    let b = Integrations::builder(Arc::new(schema.store_pool(2).await), cipher)
        .provider(provider)
        .config(config)
        .build();
    assert!(b.status(USER).await.unwrap().is_empty());
    connect(&a, "one").await;
    assert_eq!(b.status(USER).await.unwrap().len(), 1, "no cache: at once");
}
