//! SQLite-specific behaviour: two pools on one file, concurrent claims, corrupt rows
//! (including bad JSON) and key rotation.

mod common;

use common::scenarios;
use common::*;
use diesel::sqlite::SqliteConnection;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use integrations_core::{StoreError, TokenStore, UserId};
use integrations_storage_diesel::{BackendKind, DieselStore, Error, StoreOptions};

async fn file_store(dir: &TempDir, pool: usize) -> DieselStore {
    DieselStore::connect_with(
        &dir.sqlite_url("store.db"),
        StoreOptions {
            max_connections: pool,
            ..StoreOptions::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("connect: {e}"))
}

async fn raw(dir: &TempDir) -> SyncConnectionWrapper<SqliteConnection> {
    let path = dir.0.join("store.db");
    let mut conn =
        SyncConnectionWrapper::<SqliteConnection>::establish(&path.display().to_string())
            .await
            .unwrap_or_else(|e| panic!("raw: {e}"));
    conn.batch_execute("PRAGMA busy_timeout = 5000;")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    conn
}

#[tokio::test(flavor = "multi_thread")]
async fn two_pools_on_one_file_claim_each_due_account_once() {
    let dir = TempDir::new();
    let a = file_store(&dir, 4).await;
    let b = file_store(&dir, 4).await;
    assert_eq!(a.backend(), BackendKind::Sqlite);
    scenarios::two_pools_claim_each_due_account_once(a, b, 300).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sixteen_concurrent_claims_have_one_winner() {
    let dir = TempDir::new();
    scenarios::sixteen_claimers_one_winner(&file_store(&dir, 16).await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sixteen_concurrent_claims_have_one_winner_in_memory() {
    let store = DieselStore::connect("sqlite::memory:")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    scenarios::sixteen_claimers_one_winner(&store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_ciphertext_still_lists() {
    let dir = TempDir::new();
    let store = file_store(&dir, 2).await;
    scenarios::tampered_ciphertext_still_lists(&store, &mut raw(&dir).await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn corrupt_rows_are_typed() {
    let dir = TempDir::new();
    let store = file_store(&dir, 2).await;
    let mut raw = raw(&dir).await;
    scenarios::corrupt_rows_are_typed(&store, &mut raw).await;

    // Bad JSON in `metadata` (TEXT on SQLite) is Corrupt too.
    let c = cipher();
    let a = insert(&store, account(&c, 20, "reddit", "json", t0())).await;
    raw.batch_execute(&format!(
        "UPDATE oauth_accounts SET metadata = '{{not json' WHERE id = {}",
        a.id
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        store.get_account(a.id).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        store.list_accounts(UserId(20)).await,
        Err(StoreError::Corrupt(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn key_rotation_reseals_rows() {
    let dir = TempDir::new();
    scenarios::key_rotation_reseals_rows(&file_store(&dir, 2).await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_in_missing_directories_is_created_with_them() {
    let dir = TempDir::new();
    let path = dir.0.join("not").join("yet").join("there.db");
    let url = format!("sqlite://{}", path.display());
    let store = DieselStore::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    assert!(path.is_file(), "{path:?}");
    assert_eq!(
        store.list_accounts(UserId(1)).await.ok().map(|v| v.len()),
        Some(0)
    );
    // Opening it again finds the schema in place.
    drop(store);
    let again = DieselStore::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("reconnect: {e}"));
    assert_eq!(again.migrate().await.ok(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_uncreatable_file_is_a_configuration_error_naming_the_path() {
    let dir = TempDir::new();
    // A directory on the path is a regular file: no permission or retry can fix that.
    let blocker = dir.0.join("a-file");
    std::fs::write(&blocker, b"not a directory").unwrap_or_else(|e| panic!("{e}"));
    let path = blocker.join("sub").join("store.db");
    let err = DieselStore::connect(&format!("sqlite://{}", path.display()))
        .await
        .err()
        .unwrap_or_else(|| panic!("must fail"));
    match &err {
        Error::SqliteFile { path: named, .. } => assert_eq!(named, &path),
        other => panic!("not a configuration error: {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    // The database file being a directory is the same kind of mistake.
    let err = DieselStore::connect(&dir.sqlite_url(""))
        .await
        .err()
        .unwrap_or_else(|| panic!("must fail"));
    assert!(matches!(err, Error::SqliteFile { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn explicit_migrate_when_automatic_is_off() {
    let dir = TempDir::new();
    let store = DieselStore::connect_with(
        &dir.sqlite_url("store.db"),
        StoreOptions {
            migrate: false,
            ..StoreOptions::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        store.list_accounts(UserId(1)).await.is_err(),
        "no tables before migrate()"
    );
    assert_eq!(store.migrate().await.unwrap_or_else(|e| panic!("{e}")), 5);
    assert_eq!(store.migrate().await.unwrap_or_else(|e| panic!("{e}")), 0);
    // A second store on the same file finds the schema in place.
    assert_eq!(
        file_store(&dir, 2)
            .await
            .list_accounts(UserId(1))
            .await
            .map(|v| v.len())
            .ok(),
        Some(0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unsupported_urls_and_options_are_refused() {
    assert!(matches!(
        DieselStore::connect("mysql://root@localhost/db").await,
        Err(Error::InvalidUrl(_))
    ));
    assert!(matches!(
        DieselStore::connect_with(
            "sqlite::memory:",
            StoreOptions {
                schema: Some("x".into()),
                ..StoreOptions::default()
            }
        )
        .await,
        Err(Error::InvalidOption(_))
    ));
    assert!(matches!(
        DieselStore::connect_with(
            "sqlite::memory:",
            StoreOptions {
                max_connections: 0,
                ..StoreOptions::default()
            }
        )
        .await,
        Err(Error::InvalidOption(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_released_writes_keep_their_own_outcome() {
    let dir = TempDir::new();
    let store = file_store(&dir, 4).await;
    raw(&dir)
        .await
        .batch_execute(
            "CREATE TRIGGER refuse_poison BEFORE UPDATE ON oauth_accounts
                 WHEN NEW.scope = 'poison'
                 BEGIN SELECT RAISE(ABORT, 'poisoned row'); END;",
        )
        .await
        .unwrap_or_else(|e| panic!("trigger: {e}"));
    scenarios::concurrent_released_writes_keep_their_own_outcome(&store, false).await;
    scenarios::concurrent_released_writes_keep_their_own_outcome(&store, true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn abandoned_released_writes_do_not_stall_others() {
    let dir = TempDir::new();
    scenarios::abandoned_released_writes_do_not_stall_others(&file_store(&dir, 4).await).await;
}
