//! The `Integrations` service of integrations-core over `DieselStore`, on PostgreSQL and
//! SQLite: the whole connect → callback → refresh → disconnect path, and single-flight
//! refresh across many service instances sharing one database.

mod common;

use chrono::Duration;
use common::*;
use integrations_core::testing::ScriptedProvider;
use integrations_core::{
    AuditAction, CallbackParams, EncryptionKey, IntegrationStatus, Integrations, ManualClock,
    SecretContext, TokenCipher, TokenStore, UserId,
};
use integrations_storage_diesel::{DieselStore, StoreOptions};
use std::sync::Arc;

fn params(code: &str, state: &str) -> CallbackParams {
    CallbackParams::from_pairs([("code", code), ("state", state)])
}

async fn end_to_end(store: DieselStore) {
    let provider = Arc::new(ScriptedProvider::new("reddit"));
    provider.set_metadata(
        "spez",
        serde_json::json!({ "username": "spez", "karma": 7 }),
    );
    let clock = Arc::new(ManualClock::new(t0()));
    let cipher = TokenCipher::new(EncryptionKey::generate());
    let integrations = Integrations::builder(Arc::new(store.clone()), cipher.clone())
        .provider(provider.clone())
        .clock(clock.clone())
        .build();
    let user = UserId(42);

    let start = integrations
        .connect(user, "reddit", Some("/settings".into()))
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let connection = integrations
        .callback(user, "reddit", &params("spez", &start.state))
        .await
        .unwrap_or_else(|e| panic!("callback: {e}"));
    assert_eq!(connection.redirect_url.as_deref(), Some("/settings"));
    assert_eq!(connection.account.metadata["karma"], 7);
    // The state was consumed.
    assert!(
        integrations
            .callback(user, "reddit", &params("spez", &start.state))
            .await
            .is_err()
    );

    let row = store
        .find_account(&pid("reddit"), "spez")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("row stored"));
    let sealed = row
        .access_token
        .clone()
        .unwrap_or_else(|| panic!("access token"));
    assert!(!sealed.as_str().contains("at-"), "sealed at rest");
    let first_rt = row.refresh_token.clone();

    clock.advance(Duration::minutes(59));
    let view = integrations
        .refresh(user, "reddit", "spez")
        .await
        .unwrap_or_else(|e| panic!("refresh: {e}"));
    assert_eq!(view.status, IntegrationStatus::Connected);
    assert_eq!(provider.refresh_calls(), 1);
    let token = integrations
        .access_token(user, "reddit", "spez")
        .await
        .unwrap_or_else(|e| panic!("access_token: {e}"));
    assert!(provider.is_live_access_token(token.expose_secret()));
    let row = store
        .find_account(&pid("reddit"), "spez")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("row"));
    assert_ne!(
        row.refresh_token, first_rt,
        "the rotated refresh token is stored"
    );
    assert_eq!(row.lease_owner, None, "the lease is released");

    let status = integrations
        .status(user)
        .await
        .unwrap_or_else(|e| panic!("status: {e}"));
    assert_eq!(status.len(), 1);

    integrations
        .disconnect(user, "reddit", "spez")
        .await
        .unwrap_or_else(|e| panic!("disconnect: {e}"));
    assert!(
        store
            .list_accounts(user)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .is_empty()
    );
    assert!(
        integrations
            .status(user)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .is_empty()
    );
    let actions: Vec<AuditAction> = store
        .list_audit(user, 20)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|e| e.event.action)
        .collect();
    assert_eq!(
        actions,
        vec![
            AuditAction::Disconnected,
            AuditAction::Refreshed,
            AuditAction::CallbackFailed, // the replayed state
            AuditAction::Connected,
            AuditAction::ConnectStarted
        ]
    );
}

/// 16 service instances (as 16 workers) share one database through one pool of 16
/// connections; a provider rotating refresh tokens. Every round: one provider refresh,
/// every task ends with the same access token, and the stored refresh token is the newest.
async fn single_flight(store: DieselStore, rounds: i64) {
    let provider = Arc::new(ScriptedProvider::new("reddit"));
    let clock = Arc::new(ManualClock::new(t0()));
    let key = EncryptionKey::generate();
    let instances: Vec<Integrations> = (0..16)
        .map(|_| {
            Integrations::builder(Arc::new(store.clone()), TokenCipher::new(key.clone()))
                .provider(provider.clone())
                .clock(clock.clone())
                .build()
        })
        .collect();
    let user = UserId(7);
    let start = instances[0]
        .connect(user, "reddit", None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    instances[0]
        .callback(user, "reddit", &params("hot", &start.state))
        .await
        .unwrap_or_else(|e| panic!("callback: {e}"));
    let cipher = TokenCipher::new(key);

    for round in 0..rounds {
        clock.advance(Duration::minutes(59));
        let tasks: Vec<_> = instances
            .iter()
            .cloned()
            .map(|i| {
                tokio::spawn(async move {
                    i.refresh(user, "reddit", "hot").await?;
                    i.access_token(user, "reddit", "hot").await
                })
            })
            .collect();
        let mut tokens = std::collections::HashSet::new();
        for t in tasks {
            let token = t
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_else(|e| panic!("round {round}: refresh failed: {e}"));
            tokens.insert(token.expose_secret().to_owned());
        }
        assert_eq!(
            provider.refresh_calls() as i64,
            round + 1,
            "round {round}: one provider call"
        );
        assert_eq!(
            tokens.len(),
            1,
            "round {round}: every task has the same token"
        );
        let Some(token) = tokens.into_iter().next() else {
            panic!("no token")
        };
        assert!(provider.is_live_access_token(&token));

        let row = store
            .find_account(&pid("reddit"), "hot")
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("row"));
        let ctx = SecretContext::refresh_token("reddit", "hot");
        let stored_rt = cipher
            .open(
                ctx,
                row.refresh_token
                    .as_ref()
                    .unwrap_or_else(|| panic!("refresh token")),
            )
            .unwrap_or_else(|e| panic!("open: {e}"));
        assert_eq!(
            Some(stored_rt.as_str()),
            provider.current_refresh_token("hot").as_deref(),
            "round {round}"
        );
        assert_eq!(row.lease_owner, None);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn end_to_end_postgres() {
    let Some(schema) = PgSchema::create("end_to_end_postgres").await else {
        return;
    };
    end_to_end(schema.store().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn end_to_end_sqlite_file() {
    let dir = TempDir::new();
    let store = DieselStore::connect(&dir.sqlite_url("e2e.db"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    end_to_end(store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn end_to_end_sqlite_memory() {
    end_to_end(
        DieselStore::connect("sqlite::memory:")
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn single_flight_refresh_postgres_16_workers_50_rounds() {
    let Some(schema) = PgSchema::create("single_flight_refresh_postgres").await else {
        return;
    };
    let store = schema
        .store_with(StoreOptions {
            max_connections: 16,
            ..schema.options()
        })
        .await;
    single_flight(store, 50).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn single_flight_refresh_sqlite_16_workers_50_rounds() {
    let dir = TempDir::new();
    let store = DieselStore::connect_with(
        &dir.sqlite_url("flight.db"),
        StoreOptions {
            max_connections: 16,
            ..StoreOptions::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    single_flight(store, 50).await;
}
