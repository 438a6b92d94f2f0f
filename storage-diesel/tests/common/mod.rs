//! Shared test setup: real PostgreSQL schemas, SQLite temp files, sealed test accounts.
//!
//! PostgreSQL: the URL comes from `INTEGRATIONS_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). Every test gets its own schema with a
//! random name, dropped at the end. An unreachable server fails the test, unless
//! `INTEGRATIONS_SKIP_POSTGRES=1`, in which case the test says it skips.
#![allow(dead_code, unreachable_pub, unused_imports)]

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use integrations_core::{
    AccountCount, AccountRecord, AuditAction, AuditEvent, DeletedUserData, EncryptionKey, EventId,
    Lease, LimitedAppend, NewAccount, NewAuditEvent, PendingAuthorization, ProviderId,
    SecretContext, StateHash, StoreError, TokenCipher, TokenStore, Upserted, UserId,
};
use integrations_storage_diesel::{DieselStore, StoreOptions};
use std::path::PathBuf;
use std::sync::Arc;

pub mod scenarios;

pub use integrations_storage_diesel::testing::{PgSchema, postgres_url};

fn random_suffix() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A temporary directory, removed when this value drops.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let path =
            std::env::temp_dir().join(format!("integrations-storage-test-{}", random_suffix()));
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {path:?}: {e}"));
        Self(path)
    }

    pub fn sqlite_url(&self, file: &str) -> String {
        format!("sqlite://{}", self.0.join(file).display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub use integrations_core::testing::Owned;

impl std::fmt::Debug for TempDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("TempDir").field(&self.0).finish()
    }
}

/// A fresh PostgreSQL store in its own schema, for the conformance macro. With
/// `INTEGRATIONS_SKIP_POSTGRES=1` and no server, the case runs on `MemoryStore` instead
/// and says so.
pub async fn postgres_store() -> Arc<dyn TokenStore> {
    match PgSchema::create("conformance_postgres").await {
        Some(schema) => Arc::new(Owned {
            store: schema.store().await,
            guard: schema,
        }),
        None => {
            eprintln!("SKIPPED PostgreSQL: this case runs on MemoryStore instead");
            Arc::new(integrations_core::MemoryStore::new())
        }
    }
}

/// A fresh SQLite file store in a temp directory.
pub async fn sqlite_file_store() -> Arc<dyn TokenStore> {
    let dir = TempDir::new();
    let store = DieselStore::connect_with(
        &dir.sqlite_url("store.db"),
        StoreOptions {
            max_connections: 4,
            ..StoreOptions::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("connect sqlite file: {e}"));
    Arc::new(Owned { store, guard: dir })
}

/// A fresh SQLite memory store.
pub async fn sqlite_memory_store() -> Arc<dyn TokenStore> {
    Arc::new(
        DieselStore::connect("sqlite::memory:")
            .await
            .unwrap_or_else(|e| panic!("connect sqlite memory: {e}")),
    )
}

// --- test data ---

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .unwrap_or_else(|| panic!("valid date"))
}

pub fn pid(s: &str) -> ProviderId {
    ProviderId::new(s).unwrap_or_else(|e| panic!("{e}"))
}

pub fn cipher() -> TokenCipher {
    TokenCipher::new(EncryptionKey::generate())
}

pub fn ctx<'a>(provider: &'a str, account: &'a str, column: &str) -> SecretContext<'a> {
    match column {
        "access_token" => SecretContext::access_token(provider, account),
        "refresh_token" => SecretContext::refresh_token(provider, account),
        other => panic!("no account column {other}"),
    }
}

/// A new account with tokens sealed by `cipher` for their row and column.
pub fn account(
    cipher: &TokenCipher,
    user: i64,
    provider: &str,
    acct: &str,
    expires_at: DateTime<Utc>,
) -> NewAccount {
    let seal = |column: &str, text: &str| {
        cipher
            .seal(ctx(provider, acct, column), text)
            .unwrap_or_else(|e| panic!("seal: {e}"))
    };
    NewAccount {
        user_id: UserId(user),
        provider: pid(provider),
        provider_account_id: acct.to_owned(),
        access_token: Some(seal("access_token", &format!("at-{acct}"))),
        refresh_token: Some(seal("refresh_token", &format!("rt-{acct}"))),
        expires_at: Some(expires_at),
        refresh_expires_at: None,
        token_type: Some("bearer".into()),
        scope: Some("read".into()),
        metadata: serde_json::json!({ "username": format!("u_{acct}") }),
        now: t0(),
    }
}

pub fn lease(owner: &str, now: DateTime<Utc>) -> Lease {
    Lease {
        owner: owner.to_owned(),
        now,
        until: now + Duration::seconds(60),
    }
}

pub async fn insert(store: &dyn TokenStore, n: NewAccount) -> AccountRecord {
    match store.upsert_account(n, EventId::random()).await {
        Ok(Upserted::Inserted(r)) => r,
        other => panic!("expected Inserted, got {other:?}"),
    }
}
