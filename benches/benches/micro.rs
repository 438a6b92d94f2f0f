//! Micro benches: sealing and opening a token, and `Integrations::status` for a user with
//! 50 accounts, cold (every call reads the store) and cached, on each store.
//!
//! ```text
//! cargo bench -p integrations-benches --bench micro
//! ```
//!
//! PostgreSQL as in `refresh-bench` (`INTEGRATIONS_BENCH_POSTGRES_URL`, ...); set
//! `INTEGRATIONS_SKIP_POSTGRES=1` to leave it out.

use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use integrations_benches::grants::Grant;
use integrations_benches::stores::{self, StoreKind};
use integrations_core::{
    EncryptionKey, Integrations, SecretContext, ServiceConfig, TokenCipher, UserId,
};
use std::hint::black_box;
use std::time::Duration;

const TOKEN: &str = "act.3f9c1e2b7a5d4c6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f";

fn ctx() -> SecretContext<'static> {
    SecretContext::access_token("tiktok", "open-id-0001")
}

fn cipher_benches(c: &mut Criterion) {
    let cipher = TokenCipher::new(EncryptionKey::generate());
    let sealed = cipher
        .seal(ctx(), TOKEN)
        .unwrap_or_else(|e| panic!("seal: {e}"));
    let mut g = c.benchmark_group("cipher");
    g.bench_function("seal", |b| {
        b.iter(|| cipher.seal(black_box(ctx()), black_box(TOKEN)))
    });
    g.bench_function("open", |b| {
        b.iter(|| cipher.open(black_box(ctx()), black_box(&sealed)))
    });
    g.finish();
}

fn skip_postgres() -> bool {
    std::env::var("INTEGRATIONS_SKIP_POSTGRES").is_ok_and(|v| v == "1")
}

fn status_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("runtime: {e}"));
    let cipher = TokenCipher::new(EncryptionKey::generate());
    let user = UserId(1);
    // 50 accounts of one user (sealed tokens, as the service stores them).
    let grants: Vec<Grant> = (0..50)
        .map(|i| Grant {
            user: format!("bench{i}"),
            open_id: format!("open-id-{i:04}"),
            access_token: format!("act.{i:060}"),
            refresh_token: format!("rft.{i:060}"),
            scopes: vec!["user.info.basic".into()],
        })
        .collect();
    let mut kinds = vec![StoreKind::Memory, StoreKind::Sqlite];
    if !skip_postgres() {
        kinds.push(StoreKind::Postgres);
    }
    let mut g = c.benchmark_group("status_50_accounts");
    for kind in kinds {
        let (store, place) = rt
            .block_on(stores::open(kind, 4, &integrations_benches::postgres_url()))
            .unwrap_or_else(|e| panic!("{}: {e}", kind.name()));
        let now = Utc::now();
        rt.block_on(stores::fill(
            &store,
            |_| user,
            &cipher,
            &grants,
            now + chrono::Duration::hours(1),
            now,
            8,
        ))
        .unwrap_or_else(|e| panic!("fill: {e}"));
        let cold = Integrations::builder(store.clone(), cipher.clone())
            .config(ServiceConfig {
                status_cache_ttl: Duration::ZERO,
                ..ServiceConfig::default()
            })
            .build();
        let cached = Integrations::builder(store.clone(), cipher.clone()).build();
        let check = |views: Vec<integrations_core::IntegrationView>| {
            assert_eq!(views.len(), 50, "status must list the 50 accounts");
            views
        };
        check(
            rt.block_on(cached.status(user))
                .unwrap_or_else(|e| panic!("status: {e}")),
        );
        g.bench_function(format!("{}/cold", kind.name()), |b| {
            b.to_async(&rt)
                .iter(|| async { check(cold.status(user).await.unwrap_or_else(|e| panic!("{e}"))) })
        });
        g.bench_function(format!("{}/cached", kind.name()), |b| {
            b.to_async(&rt).iter(|| async {
                check(cached.status(user).await.unwrap_or_else(|e| panic!("{e}")))
            })
        });
        drop((cold, cached, store));
        drop(place);
    }
    g.finish();
}

criterion_group!(benches, cipher_benches, status_benches);
criterion_main!(benches);
