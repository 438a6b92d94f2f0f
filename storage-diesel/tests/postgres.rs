//! PostgreSQL-specific behaviour: cascades from a host `users` table, concurrency across
//! pools, faults, corrupt rows and key rotation. Each test runs in its own schema.

mod common;

use common::scenarios;
use common::*;
use diesel_async::SimpleAsyncConnection;
use integrations_core::{
    EventId, PendingAuthorization, StateHash, StoreError, TokenStore, Upserted, UserId,
};
use integrations_storage_diesel::{DieselStore, Error, StoreOptions};
use std::time::Duration;

macro_rules! schema_or_skip {
    ($name:expr) => {
        match PgSchema::create($name).await {
            Some(s) => s,
            None => return,
        }
    };
}

#[tokio::test(flavor = "multi_thread")]
async fn host_users_table_cascades_deletes() {
    let schema = schema_or_skip!("host_users_table_cascades_deletes");
    let store = schema.store().await;
    let mut raw = schema.raw().await;
    // What a host adds in its own migration (see the crate docs).
    raw.batch_execute(
        "CREATE TABLE users (id BIGINT PRIMARY KEY, email TEXT NOT NULL);
         ALTER TABLE oauth_accounts ADD CONSTRAINT oauth_accounts_user_fk
             FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
         ALTER TABLE oauth_pending_authorizations ADD CONSTRAINT oauth_pending_authorizations_user_fk
             FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
         INSERT INTO users (id, email) VALUES (1, 'a@example.test'), (2, 'b@example.test');",
    )
    .await
    .unwrap_or_else(|e| panic!("host schema: {e}"));
    let c = cipher();
    insert(&store, account(&c, 1, "reddit", "r1", t0())).await;
    insert(&store, account(&c, 1, "tiktok", "t1", t0())).await;
    insert(&store, account(&c, 2, "reddit", "r2", t0())).await;
    store
        .put_pending(PendingAuthorization {
            state_hash: StateHash::of("state-1"),
            user_id: UserId(1),
            provider: pid("reddit"),
            pkce_verifier: None,
            redirect_url: None,
            created_at: t0(),
            expires_at: t0() + chrono::Duration::minutes(10),
        })
        .await
        .unwrap_or_else(|e| panic!("put_pending: {e}"));
    // The constraint is enforced: no account for a user that does not exist.
    assert!(matches!(
        store
            .upsert_account(account(&c, 3, "reddit", "r3", t0()), EventId::random())
            .await,
        Err(StoreError::Other { .. })
    ));

    raw.batch_execute("DELETE FROM users WHERE id = 1")
        .await
        .unwrap_or_else(|e| panic!("delete user: {e}"));
    assert!(
        store
            .list_accounts(UserId(1))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .is_empty()
    );
    assert!(
        store
            .take_pending(&StateHash::of("state-1"))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .is_none()
    );
    assert_eq!(
        store
            .list_accounts(UserId(2))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_pools_claim_1000_due_accounts_exactly_once() {
    let schema = schema_or_skip!("two_pools_claim_1000_due_accounts_exactly_once");
    let a = schema.store().await;
    let b = schema.store().await;
    scenarios::two_pools_claim_each_due_account_once(a, b, 1000).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sixteen_concurrent_claims_have_one_winner() {
    let schema = schema_or_skip!("sixteen_concurrent_claims_have_one_winner");
    let store = schema
        .store_with(StoreOptions {
            max_connections: 16,
            ..schema.options()
        })
        .await;
    scenarios::sixteen_claimers_one_winner(&store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_upserts_by_different_users_have_one_owner() {
    let schema = schema_or_skip!("concurrent_upserts_by_different_users_have_one_owner");
    let store = schema.store().await;
    let c = cipher();
    let tasks: Vec<_> = (1..=8)
        .map(|user| {
            let store = store.clone();
            let n = account(&c, user, "reddit", "contested", t0());
            tokio::spawn(async move { (user, store.upsert_account(n, EventId::random()).await) })
        })
        .collect();
    let mut owner = None;
    for t in tasks {
        match t.await.unwrap_or_else(|e| panic!("{e}")) {
            (user, Ok(Upserted::Inserted(_))) => {
                assert!(owner.replace(user).is_none(), "two inserts")
            }
            (_, Err(StoreError::OwnedByAnotherUser)) => {}
            (user, other) => panic!("user {user}: unexpected {other:?}"),
        }
    }
    let owner = owner.unwrap_or_else(|| panic!("nobody inserted"));
    let row = store
        .find_account(&pid("reddit"), "contested")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let row = row.unwrap_or_else(|| panic!("row"));
    assert_eq!(
        (row.user_id, row.version),
        (UserId(owner), 1),
        "the refused upserts left it untouched"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_server_is_unavailable() {
    // Port 1 on loopback: nothing listens, the connection is refused.
    let started = std::time::Instant::now();
    let err = DieselStore::connect_with(
        "postgres://postgres:hunter2@127.0.0.1:1/test",
        StoreOptions {
            acquire_timeout: Duration::from_secs(5),
            ..StoreOptions::default()
        },
    )
    .await
    .err()
    .unwrap_or_else(|| panic!("connecting to a closed port must fail"));
    assert!(
        matches!(err, Error::Store(StoreError::Unavailable { .. })),
        "{err:?}"
    );
    assert!(
        !format!("{err} {err:?}").contains("hunter2"),
        "no password in errors"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread")]
async fn terminated_connection_mid_transaction_is_unavailable_and_writes_nothing() {
    let schema = schema_or_skip!("terminated_connection_mid_transaction");
    // The pool's connections carry the schema name, so only they are terminated.
    let sep = if schema.url().contains('?') { '&' } else { '?' };
    let url = format!("{}{sep}application_name={}", schema.url(), schema.name);
    let store = DieselStore::connect_with(
        &url,
        StoreOptions {
            max_connections: 2,
            ..schema.options()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("connect: {e}"));
    let c = cipher();
    insert(&store, account(&c, 5, "reddit", "keep", t0())).await;
    store
        .append_audit(integrations_core::NewAuditEvent {
            user_id: UserId(5),
            provider: pid("reddit"),
            provider_account_id: Some("keep".into()),
            action: integrations_core::AuditAction::Connected,
            outcome: "success".into(),
            at: t0(),
        })
        .await
        .unwrap_or_else(|e| panic!("audit: {e}"));

    // Hold a lock on the audit row so `delete_user_data` deletes the account, then waits.
    let mut blocker = schema.raw().await;
    blocker
        .batch_execute("BEGIN; SELECT id FROM integration_audit_events FOR UPDATE;")
        .await
        .unwrap_or_else(|e| panic!("lock: {e}"));
    let running = {
        let store = store.clone();
        tokio::spawn(async move { store.delete_user_data(UserId(5), chrono::Utc::now()).await })
    };
    let mut admin = schema.raw().await;
    let terminate = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = '{}' AND wait_event_type = 'Lock'",
        schema.name
    );
    let mut terminated = false;
    for _ in 0..200 {
        use diesel_async::RunQueryDsl;
        let n: i64 = diesel::sql_query(format!(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = '{}' AND wait_event_type = 'Lock'",
            schema.name
        ))
        .get_result::<Count>(&mut admin)
        .await
        .map(|c| c.n)
        .unwrap_or_else(|e| panic!("pg_stat_activity: {e}"));
        if n > 0 {
            admin
                .batch_execute(&terminate)
                .await
                .unwrap_or_else(|e| panic!("terminate: {e}"));
            terminated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        terminated,
        "the store's transaction never blocked on the lock"
    );
    let outcome = running.await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(outcome, Err(StoreError::Unavailable { .. })),
        "{outcome:?}"
    );
    blocker
        .batch_execute("ROLLBACK")
        .await
        .unwrap_or_else(|e| panic!("rollback: {e}"));

    // No partial write: the account deleted inside the killed transaction is still there,
    // and the pool reconnects for the next call.
    let left = store
        .list_accounts(UserId(5))
        .await
        .unwrap_or_else(|e| panic!("after reconnect: {e}"));
    assert_eq!(left.len(), 1);
    assert_eq!(
        store
            .list_audit(UserId(5), 10)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .len(),
        1
    );
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_ciphertext_still_lists() {
    let schema = schema_or_skip!("tampered_ciphertext_still_lists");
    let store = schema.store().await;
    scenarios::tampered_ciphertext_still_lists(&store, &mut schema.raw().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn corrupt_rows_are_typed() {
    let schema = schema_or_skip!("corrupt_rows_are_typed");
    let store = schema.store().await;
    scenarios::corrupt_rows_are_typed(&store, &mut schema.raw().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn key_rotation_reseals_rows() {
    let schema = schema_or_skip!("key_rotation_reseals_rows");
    scenarios::key_rotation_reseals_rows(&schema.store().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn explicit_migrate_when_automatic_is_off() {
    let schema = schema_or_skip!("explicit_migrate_when_automatic_is_off");
    let store = schema
        .store_with(StoreOptions {
            migrate: false,
            ..schema.options()
        })
        .await;
    assert!(
        store.list_accounts(UserId(1)).await.is_err(),
        "no tables before migrate()"
    );
    assert_eq!(
        store
            .migrate()
            .await
            .unwrap_or_else(|e| panic!("migrate: {e}")),
        5
    );
    assert_eq!(
        store
            .migrate()
            .await
            .unwrap_or_else(|e| panic!("migrate: {e}")),
        0
    );
    assert!(
        store
            .list_accounts(UserId(1))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn due_query_uses_the_partial_index() {
    let schema = schema_or_skip!("due_query_uses_the_partial_index");
    let _store = schema.store().await;
    let mut raw = schema.raw().await;
    raw.batch_execute("SET enable_seqscan = off")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    #[derive(diesel::QueryableByName)]
    struct Plan {
        #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
        line: String,
    }
    use diesel_async::RunQueryDsl;
    let plan: Vec<Plan> = diesel::sql_query(
        "EXPLAIN SELECT id FROM oauth_accounts WHERE status = 'active' AND expires_at <= now() \
         ORDER BY expires_at LIMIT 10",
    )
    .load(&mut raw)
    .await
    .unwrap_or_else(|e| panic!("explain: {e}"));
    let text: Vec<String> = plan.into_iter().map(|p| p.line).collect();
    assert!(
        text.iter()
            .any(|l| l.contains("oauth_accounts_active_expiry_idx")),
        "{text:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_released_writes_keep_their_own_outcome() {
    let schema = schema_or_skip!("concurrent_released_writes_keep_their_own_outcome");
    let store = schema.store().await;
    schema
        .raw()
        .await
        .batch_execute(
            "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.scope = 'poison' THEN RAISE EXCEPTION 'poisoned row'; END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER refuse_poison BEFORE UPDATE ON oauth_accounts
                 FOR EACH ROW EXECUTE FUNCTION refuse_poison();",
        )
        .await
        .unwrap_or_else(|e| panic!("trigger: {e}"));
    scenarios::concurrent_released_writes_keep_their_own_outcome(&store, false).await;
    scenarios::concurrent_released_writes_keep_their_own_outcome(&store, true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn abandoned_released_writes_do_not_stall_others() {
    let schema = schema_or_skip!("abandoned_released_writes_do_not_stall_others");
    scenarios::abandoned_released_writes_do_not_stall_others(&schema.store().await).await;
}
