//! The [`TokenStore`] conformance suite: one function per contract sentence.
//!
//! Every function takes a fresh, empty store and panics (with a message naming the
//! broken sentence) when the store does not meet the contract.

use crate::crypto::{EncryptionKey, SecretContext, TokenCipher};
use crate::events::{ConnectionEvent, ConnectionEventKind, EventId, EventPosition};
use crate::platform_webhooks::WebhookReceipt;
use crate::provider::ProviderId;
use crate::secret::SealedSecret;
use crate::store::{
    AccountRecord, AuditAction, DeliveryOutcome, DeliveryStatus, Lease, LimitedAppend, NewAccount,
    NewAuditEvent, PendingAuthorization, StateHash, StoreError, StoredStatus, TokenStore, Upserted,
    UserId,
};
use chrono::{DateTime, Duration, TimeZone, Utc};
use std::collections::HashSet;
use std::sync::Arc;

/// A fixed, whole-second time every backend stores exactly.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .expect("valid time")
}

fn pid(s: &str) -> ProviderId {
    ProviderId::new(s).expect("valid provider id")
}

/// A sealed value for tests (really sealed, so stores see realistic text).
pub fn sealed(text: &str) -> SealedSecret {
    thread_local! {
        static CIPHER: TokenCipher = TokenCipher::new(EncryptionKey::from_bytes([7u8; 32]));
    }
    CIPHER.with(|c| {
        c.seal(SecretContext::access_token("conformance", "r"), text)
            .expect("seal")
    })
}

/// A new account for `user` on `provider` with account id `account`.
pub fn new_account(user: i64, provider: &str, account: &str) -> NewAccount {
    NewAccount {
        user_id: UserId(user),
        provider: pid(provider),
        provider_account_id: account.to_owned(),
        access_token: Some(sealed(&format!("at-{account}"))),
        refresh_token: Some(sealed(&format!("rt-{account}"))),
        expires_at: Some(t0() + Duration::hours(1)),
        refresh_expires_at: None,
        token_type: Some("bearer".into()),
        scope: Some("read write".into()),
        metadata: serde_json::json!({ "username": format!("u_{account}"), "followers_count": 12 }),
        now: t0(),
    }
}

fn lease(owner: &str, now: DateTime<Utc>) -> Lease {
    Lease {
        owner: owner.to_owned(),
        now,
        until: now + Duration::seconds(60),
    }
}

async fn insert(store: &dyn TokenStore, user: i64, provider: &str, account: &str) -> AccountRecord {
    match store
        .upsert_account(new_account(user, provider, account), EventId::random())
        .await
        .expect("upsert")
    {
        Upserted::Inserted(r) => r,
        Upserted::Updated(_) => panic!("a new (provider, account) must be Inserted"),
    }
}

/// `upsert_account` inserts a new row, then updates the same user's row: tokens, expiry,
/// scope, metadata, status `Active`, failures cleared, version + 1.
pub async fn upsert_inserts_then_updates_same_user(store: Arc<dyn TokenStore>) {
    let first = insert(&*store, 1, "instagram", "1784").await;
    assert_eq!(first.version, 1, "a new row starts at version 1");
    assert_eq!(first.status, StoredStatus::Active);
    assert_eq!(first.created_at, t0());
    assert_eq!(first.token_issued_at, Some(t0()));
    // Mark it dead, as a failed refresh would.
    let mut dead = first.clone();
    dead.status = StoredStatus::NeedsReconnect;
    dead.access_token = None;
    dead.refresh_token = None;
    dead.refresh_failures = 3;
    dead.last_error = Some("reconnect".into());
    let dead = store.update_account(&dead, &[]).await.expect("update");
    let mut again = new_account(1, "instagram", "1784");
    again.access_token = Some(sealed("new-at"));
    again.scope = Some("read".into());
    again.metadata = serde_json::json!({ "username": "renamed" });
    again.now = t0() + Duration::minutes(5);
    let updated = match store
        .upsert_account(again.clone(), EventId::random())
        .await
        .expect("upsert")
    {
        Upserted::Updated(r) => r,
        Upserted::Inserted(_) => panic!("the same user's account must be Updated, not duplicated"),
    };
    assert_eq!(updated.id, first.id);
    assert_eq!(updated.version, dead.version + 1);
    assert_eq!(updated.status, StoredStatus::Active);
    assert_eq!(updated.refresh_failures, 0);
    assert_eq!(updated.last_error, None);
    assert_eq!(updated.access_token, again.access_token);
    assert_eq!(updated.refresh_token, again.refresh_token);
    assert_eq!(updated.scope.as_deref(), Some("read"));
    assert_eq!(updated.metadata, again.metadata);
    assert_eq!(updated.token_issued_at, Some(again.now));
    assert_eq!(updated.created_at, t0(), "created_at never changes");
    assert_eq!(store.list_accounts(UserId(1)).await.expect("list").len(), 1);
}

/// `(provider, provider_account_id)` is unique across users; another user's upsert fails
/// with `OwnedByAnotherUser` and leaves the row untouched.
pub async fn upsert_refuses_another_users_account(store: Arc<dyn TokenStore>) {
    let owned = insert(&*store, 1, "tiktok", "-000abc").await;
    let mut theirs = new_account(2, "tiktok", "-000abc");
    theirs.access_token = Some(sealed("attacker"));
    let err = store
        .upsert_account(theirs, EventId::random())
        .await
        .expect_err("must refuse");
    assert!(
        matches!(err, StoreError::OwnedByAnotherUser),
        "expected OwnedByAnotherUser, got {err:?}"
    );
    let row = store
        .find_account(&pid("tiktok"), "-000abc")
        .await
        .expect("find")
        .expect("row still there");
    assert_eq!(row, owned, "the owner's row must be untouched");
    assert!(
        store
            .list_accounts(UserId(2))
            .await
            .expect("list")
            .is_empty()
    );
    // The same account id on another platform is a different account.
    insert(&*store, 2, "reddit", "-000abc").await;
}

/// `get_account`, `find_account` and `list_accounts` (ordered by provider, then id, and
/// only the user's).
pub async fn get_find_and_list(store: Arc<dyn TokenStore>) {
    let a = insert(&*store, 1, "tiktok", "a").await;
    let b = insert(&*store, 1, "instagram", "b").await;
    let c = insert(&*store, 1, "instagram", "c").await;
    insert(&*store, 2, "instagram", "d").await;
    assert_eq!(store.get_account(a.id).await.expect("get"), Some(a.clone()));
    assert_eq!(store.get_account(a.id + 1000).await.expect("get"), None);
    assert_eq!(
        store
            .find_account(&pid("instagram"), "b")
            .await
            .expect("find"),
        Some(b.clone())
    );
    assert_eq!(
        store.find_account(&pid("tiktok"), "b").await.expect("find"),
        None
    );
    let listed = store.list_accounts(UserId(1)).await.expect("list");
    let ids: Vec<i64> = listed.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![b.id, c.id, a.id], "ordered by provider then id");
    assert_eq!(listed[2], a);
    assert!(
        store
            .list_accounts(UserId(3))
            .await
            .expect("list")
            .is_empty()
    );
}

/// `update_account` writes when the version matches (version + 1) and fails with
/// `VersionConflict` on a stale version and `NotFound` for a missing row.
pub async fn update_account_checks_version(store: Arc<dyn TokenStore>) {
    let rec = insert(&*store, 1, "reddit", "1w72").await;
    let mut next = rec.clone();
    next.access_token = Some(sealed("rotated"));
    next.expires_at = Some(t0() + Duration::hours(2));
    next.refresh_failures = 2;
    next.last_error = Some("Connection failed.".into());
    next.last_refresh_attempt_at = Some(t0() + Duration::minutes(1));
    next.last_refresh_success_at = Some(t0() + Duration::minutes(1));
    next.token_issued_at = Some(t0() + Duration::minutes(1));
    next.metadata = serde_json::json!({"username": "spez", "karma": 5});
    next.updated_at = t0() + Duration::minutes(1);
    let stored = store.update_account(&next, &[]).await.expect("update");
    assert_eq!(stored.version, rec.version + 1);
    let expect = AccountRecord {
        version: rec.version + 1,
        ..next.clone()
    };
    assert_eq!(stored, expect);
    assert_eq!(store.get_account(rec.id).await.expect("get"), Some(expect));
    // Stale version.
    let err = store.update_account(&next, &[]).await.expect_err("stale");
    assert!(matches!(err, StoreError::VersionConflict), "got {err:?}");
    // Missing row.
    let mut missing = stored.clone();
    missing.id += 1000;
    let err = store
        .update_account(&missing, &[])
        .await
        .expect_err("missing");
    assert!(matches!(err, StoreError::NotFound), "got {err:?}");
}

/// `update_account` never changes the lease.
pub async fn update_account_keeps_lease(store: Arc<dyn TokenStore>) {
    let rec = insert(&*store, 1, "reddit", "x").await;
    let held = store
        .claim_for_refresh(rec.id, &lease("w1", t0()))
        .await
        .expect("claim")
        .expect("free");
    let mut next = held.clone();
    next.lease_owner = None;
    next.lease_until = None;
    let stored = store.update_account(&next, &[]).await.expect("update");
    assert_eq!(stored.lease_owner.as_deref(), Some("w1"));
    assert!(
        store
            .claim_for_refresh(rec.id, &lease("w2", t0()))
            .await
            .expect("claim")
            .is_none(),
        "the lease must still be held after an update"
    );
}

/// `delete_account` removes the row and its credentials; `false` when absent.
pub async fn delete_account_removes_row(store: Arc<dyn TokenStore>) {
    let rec = insert(&*store, 1, "tiktok", "gone").await;
    assert!(store.delete_account(rec.id, &[]).await.expect("delete"));
    assert!(!store.delete_account(rec.id, &[]).await.expect("delete"));
    assert_eq!(store.get_account(rec.id).await.expect("get"), None);
    assert_eq!(
        store
            .find_account(&pid("tiktok"), "gone")
            .await
            .expect("find"),
        None
    );
    // The key is free again.
    insert(&*store, 2, "tiktok", "gone").await;
}

/// `delete_user_data` removes every account, pending authorization and audit event of the
/// user, and nothing of other users.
pub async fn delete_user_data_removes_only_that_user(store: Arc<dyn TokenStore>) {
    for (user, account) in [(1, "a"), (1, "b"), (2, "c")] {
        insert(&*store, user, "reddit", account).await;
        store
            .append_audit(audit(user, AuditAction::Connected, t0()))
            .await
            .expect("audit");
    }
    for (user, state) in [(1, "s1"), (2, "s2")] {
        store
            .put_pending(pending(user, state, t0()))
            .await
            .expect("pending");
    }
    let deleted = store
        .delete_user_data(UserId(1), t0())
        .await
        .expect("delete");
    assert_eq!(deleted.accounts, 2);
    assert_eq!(deleted.pending, 1);
    assert_eq!(deleted.audit_events, 2);
    assert!(
        store
            .list_accounts(UserId(1))
            .await
            .expect("list")
            .is_empty()
    );
    assert!(
        store
            .list_audit(UserId(1), 10)
            .await
            .expect("audit")
            .is_empty()
    );
    assert!(
        store
            .take_pending(&StateHash::of("s1"))
            .await
            .expect("take")
            .is_none()
    );
    assert_eq!(store.list_accounts(UserId(2)).await.expect("list").len(), 1);
    assert_eq!(
        store.list_audit(UserId(2), 10).await.expect("audit").len(),
        1
    );
    assert!(
        store
            .take_pending(&StateHash::of("s2"))
            .await
            .expect("take")
            .is_some()
    );
}

fn audit(user: i64, action: AuditAction, at: DateTime<Utc>) -> NewAuditEvent {
    NewAuditEvent {
        user_id: UserId(user),
        provider: pid("reddit"),
        provider_account_id: Some("acct".into()),
        action,
        outcome: "success".into(),
        at,
    }
}

fn pending(user: i64, state: &str, now: DateTime<Utc>) -> PendingAuthorization {
    PendingAuthorization {
        state_hash: StateHash::of(state),
        user_id: UserId(user),
        provider: pid("tiktok"),
        pkce_verifier: Some(sealed("verifier")),
        redirect_url: Some("https://app.example/integrations".into()),
        created_at: now,
        expires_at: now + Duration::minutes(10),
    }
}

/// `take_pending` returns a pending authorization once and never again.
pub async fn take_pending_returns_once(store: Arc<dyn TokenStore>) {
    let p = pending(1, "state-1", t0());
    store.put_pending(p.clone()).await.expect("put");
    assert_eq!(
        store
            .take_pending(&StateHash::of("state-1"))
            .await
            .expect("take"),
        Some(p)
    );
    assert_eq!(
        store
            .take_pending(&StateHash::of("state-1"))
            .await
            .expect("take"),
        None,
        "a state is consumed once"
    );
    assert_eq!(
        store
            .take_pending(&StateHash::of("never"))
            .await
            .expect("take"),
        None
    );
    let mut no_verifier = pending(1, "state-2", t0());
    no_verifier.pkce_verifier = None;
    no_verifier.redirect_url = None;
    store.put_pending(no_verifier.clone()).await.expect("put");
    assert_eq!(
        store
            .take_pending(&StateHash::of("state-2"))
            .await
            .expect("take"),
        Some(no_verifier)
    );
}

/// `take_pending` is atomic: of 16 concurrent takes, exactly one gets the row.
pub async fn take_pending_is_atomic_under_concurrency(store: Arc<dyn TokenStore>) {
    for round in 0..5 {
        let state = format!("race-{round}");
        store
            .put_pending(pending(1, &state, t0()))
            .await
            .expect("put");
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let store = store.clone();
            let hash = StateHash::of(&state);
            tasks.push(tokio::spawn(async move { store.take_pending(&hash).await }));
        }
        let mut winners = 0;
        for t in tasks {
            if t.await.expect("join").expect("take").is_some() {
                winners += 1;
            }
        }
        assert_eq!(winners, 1, "exactly one concurrent take may win");
    }
}

/// Expired pending authorizations are still returned by `take_pending` (the caller checks
/// `expires_at`); `purge_expired_pending` removes only expired ones.
pub async fn pending_expiry_and_purge(store: Arc<dyn TokenStore>) {
    let old = pending(1, "old", t0() - Duration::hours(1));
    let fresh = pending(1, "fresh", t0());
    store.put_pending(old.clone()).await.expect("put");
    store.put_pending(fresh.clone()).await.expect("put");
    store
        .put_pending(pending(1, "old2", t0() - Duration::hours(2)))
        .await
        .expect("put");
    let taken = store
        .take_pending(&StateHash::of("old2"))
        .await
        .expect("take")
        .expect("expired rows are returned");
    assert!(taken.expires_at < t0());
    assert_eq!(store.purge_expired_pending(t0()).await.expect("purge"), 1);
    assert_eq!(
        store
            .take_pending(&StateHash::of("old"))
            .await
            .expect("take"),
        None
    );
    assert_eq!(
        store
            .take_pending(&StateHash::of("fresh"))
            .await
            .expect("take"),
        Some(fresh)
    );
}

/// `claim_for_refresh`: free → granted; held by another live lease → `None`; same owner →
/// granted; ended lease → taken over; `release_lease` only by the holder.
pub async fn claim_for_refresh_is_exclusive(store: Arc<dyn TokenStore>) {
    let rec = insert(&*store, 1, "tiktok", "lease").await;
    let got = store
        .claim_for_refresh(rec.id, &lease("w1", t0()))
        .await
        .expect("claim")
        .expect("a free account is granted");
    assert_eq!(got.lease_owner.as_deref(), Some("w1"));
    assert_eq!(got.lease_until, Some(t0() + Duration::seconds(60)));
    assert!(
        store
            .claim_for_refresh(rec.id, &lease("w2", t0() + Duration::seconds(10)))
            .await
            .expect("claim")
            .is_none(),
        "a live lease excludes other owners"
    );
    assert!(
        store
            .claim_for_refresh(rec.id, &lease("w1", t0() + Duration::seconds(10)))
            .await
            .expect("claim")
            .is_some(),
        "the holder may claim again"
    );
    assert!(!store.release_lease(rec.id, "w2").await.expect("release"));
    // w1's renewed lease ends at t0+70s: at t0+70s it can be taken over.
    let taken = store
        .claim_for_refresh(rec.id, &lease("w3", t0() + Duration::seconds(70)))
        .await
        .expect("claim")
        .expect("an ended lease can be taken over");
    assert_eq!(taken.lease_owner.as_deref(), Some("w3"));
    assert!(!store.release_lease(rec.id, "w1").await.expect("release"));
    assert!(store.release_lease(rec.id, "w3").await.expect("release"));
    assert!(
        store
            .claim_for_refresh(rec.id, &lease("w4", t0() + Duration::seconds(71)))
            .await
            .expect("claim")
            .is_some(),
        "a released lease is free"
    );
    assert!(
        store
            .claim_for_refresh(rec.id + 1000, &lease("w1", t0()))
            .await
            .expect("claim")
            .is_none(),
        "a missing account gives None"
    );
}

/// Of 16 concurrent `claim_for_refresh` calls by different owners, exactly one wins.
pub async fn claim_for_refresh_under_concurrency(store: Arc<dyn TokenStore>) {
    let rec = insert(&*store, 1, "tiktok", "hot").await;
    for round in 0..5i64 {
        let now = t0() + Duration::minutes(10 * round);
        let mut tasks = Vec::new();
        for w in 0..16 {
            let store = store.clone();
            let l = lease(&format!("r{round}w{w}"), now);
            tasks.push(tokio::spawn(async move {
                store.claim_for_refresh(rec.id, &l).await
            }));
        }
        let mut winners = 0;
        for t in tasks {
            if t.await.expect("join").expect("claim").is_some() {
                winners += 1;
            }
        }
        assert_eq!(
            winners, 1,
            "round {round}: exactly one concurrent claim may win"
        );
    }
}

/// `claim_due` leases up to `limit` `Active` accounts with `expires_at <= before` and no
/// live lease, soonest expiry first.
pub async fn claim_due_selects_due_active_unleased(store: Arc<dyn TokenStore>) {
    let mut ids = Vec::new();
    for (i, minutes) in [30i64, 5, 50, 20, 90].into_iter().enumerate() {
        let mut a = new_account(1, "tiktok", &format!("due{i}"));
        a.expires_at = Some(t0() + Duration::minutes(minutes));
        ids.push(
            store
                .upsert_account(a, EventId::random())
                .await
                .expect("upsert")
                .into_record()
                .id,
        );
    }
    // No expiry: never due.
    let mut forever = new_account(1, "tiktok", "forever");
    forever.expires_at = None;
    store
        .upsert_account(forever, EventId::random())
        .await
        .expect("upsert");
    // Dead: not due.
    let dead = store
        .find_account(&pid("tiktok"), "due1")
        .await
        .expect("find")
        .expect("row");
    let mut dead_next = dead.clone();
    dead_next.status = StoredStatus::NeedsReconnect;
    store.update_account(&dead_next, &[]).await.expect("update");
    // Leased by someone else: not due.
    store
        .claim_for_refresh(ids[3], &lease("other", t0()))
        .await
        .expect("claim")
        .expect("free");

    let before = t0() + Duration::minutes(60);
    let first = store
        .claim_due(before, 1, &lease("worker", t0()))
        .await
        .expect("claim_due");
    assert_eq!(first.iter().map(|r| r.id).collect::<Vec<_>>(), vec![ids[0]]);
    assert_eq!(first[0].lease_owner.as_deref(), Some("worker"));
    let rest = store
        .claim_due(before, 10, &lease("worker2", t0()))
        .await
        .expect("claim_due");
    assert_eq!(
        rest.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![ids[2]],
        "only due, active, unleased accounts, soonest first"
    );
    assert!(
        store
            .claim_due(before, 10, &lease("worker3", t0()))
            .await
            .expect("claim_due")
            .is_empty()
    );
    // Once the leases end, they are due again.
    let later = t0() + Duration::minutes(2);
    let again = store
        .claim_due(before, 10, &lease("worker4", later))
        .await
        .expect("claim_due");
    assert_eq!(
        again.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![ids[3], ids[0], ids[2]]
    );
}

/// Two concurrent callers of `claim_due` never receive the same account.
pub async fn claim_due_concurrent_callers_are_disjoint(store: Arc<dyn TokenStore>) {
    let n = 200;
    for i in 0..n {
        let mut a = new_account(1 + i % 7, "reddit", &format!("c{i}"));
        a.expires_at = Some(t0() + Duration::seconds(i));
        store
            .upsert_account(a, EventId::random())
            .await
            .expect("upsert");
    }
    let before = t0() + Duration::hours(1);
    let mut workers = Vec::new();
    for w in 0..2 {
        let store = store.clone();
        workers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = store
                    .claim_due(before, 7, &lease(&format!("w{w}"), t0()))
                    .await
                    .expect("claim_due");
                if batch.is_empty() {
                    break got;
                }
                got.extend(batch.into_iter().map(|r| r.id));
            }
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for w in workers {
        for id in w.await.expect("join") {
            total += 1;
            assert!(seen.insert(id), "account {id} was claimed twice");
        }
    }
    assert_eq!(
        total, n as usize,
        "every due account is claimed exactly once"
    );
}

/// `append_audit` and `list_audit` (newest first, at most `limit`, only the user's).
pub async fn audit_append_and_list(store: Arc<dyn TokenStore>) {
    let actions = [
        AuditAction::ConnectStarted,
        AuditAction::Connected,
        AuditAction::Refreshed,
        AuditAction::Disconnected,
    ];
    for (i, a) in actions.iter().enumerate() {
        store
            .append_audit(audit(1, *a, t0() + Duration::seconds(i as i64)))
            .await
            .expect("append");
    }
    store
        .append_audit(audit(2, AuditAction::RefreshFailed, t0()))
        .await
        .expect("append");
    let listed = store.list_audit(UserId(1), 3).await.expect("list");
    assert_eq!(
        listed.iter().map(|e| e.event.action).collect::<Vec<_>>(),
        vec![
            AuditAction::Disconnected,
            AuditAction::Refreshed,
            AuditAction::Connected
        ]
    );
    assert!(listed[0].id > listed[1].id);
    assert_eq!(
        listed[0].event,
        audit(1, AuditAction::Disconnected, t0() + Duration::seconds(3))
    );
    assert_eq!(
        store.list_audit(UserId(2), 10).await.expect("list").len(),
        1
    );
}

/// Sealed values come back byte for byte; a row may hold no tokens at all.
pub async fn sealed_values_round_trip(store: Arc<dyn TokenStore>) {
    let mut a = new_account(1, "onlyfans", "conn_1");
    a.refresh_token = None;
    a.expires_at = None;
    a.metadata = serde_json::json!({
        "account_id": "123", "username": "jane", "display_name": "Jane \u{e9}\u{1f600}",
        "nested": { "n": 17841400000000001u64 }
    });
    let rec = store
        .upsert_account(a.clone(), EventId::random())
        .await
        .expect("upsert")
        .into_record();
    assert_eq!(rec.access_token, a.access_token);
    assert_eq!(rec.refresh_token, None);
    assert_eq!(rec.metadata, a.metadata);
    let back = store.get_account(rec.id).await.expect("get").expect("row");
    assert_eq!(back, rec);
    let mut cleared = back.clone();
    cleared.access_token = None;
    let stored = store.update_account(&cleared, &[]).await.expect("update");
    assert_eq!(stored.access_token, None);
}

/// `update_account_and_release` writes like `update_account` (version check included) and
/// releases the lease only when `owner` holds it.
pub async fn update_account_and_release_writes_and_releases(store: Arc<dyn TokenStore>) {
    let rec = insert(&*store, 1, "tiktok", "uar").await;
    let held = store
        .claim_for_refresh(rec.id, &lease("w1", t0()))
        .await
        .expect("claim")
        .expect("free");
    let mut next = held.clone();
    next.access_token = Some(sealed("after-refresh"));
    // A sub-microsecond part: the returned row must equal what a read gives back.
    next.last_refresh_success_at = Some(t0() + Duration::nanoseconds(5_000_123_456));
    // Another owner's name releases nothing, but the write happens.
    let stored = store
        .update_account_and_release(&next, "w2", &[])
        .await
        .expect("update");
    assert_eq!(stored.version, held.version + 1);
    assert_eq!(stored.access_token, next.access_token);
    assert_eq!(
        stored.lease_owner.as_deref(),
        Some("w1"),
        "w1 still holds it"
    );
    assert_eq!(
        store.get_account(rec.id).await.expect("get"),
        Some(stored.clone())
    );
    // The holder's name writes and releases.
    let mut again = stored.clone();
    again.refresh_failures = 0;
    again.access_token = Some(sealed("second"));
    again.updated_at = t0() + Duration::nanoseconds(7_000_000_999);
    again.metadata = serde_json::json!({"username": "renamed", "n": 1});
    let released = store
        .update_account_and_release(&again, "w1", &[])
        .await
        .expect("update");
    assert_eq!(released.version, stored.version + 1);
    assert_eq!(released.lease_owner, None);
    assert_eq!(released.lease_until, None);
    assert_eq!(
        store.get_account(rec.id).await.expect("get"),
        Some(released.clone())
    );
    assert!(
        store
            .claim_for_refresh(rec.id, &lease("w3", t0()))
            .await
            .expect("claim")
            .is_some(),
        "the lease is free"
    );
    // A stale version still conflicts.
    let err = store
        .update_account_and_release(&again, "w3", &[])
        .await
        .expect_err("stale");
    assert!(matches!(err, StoreError::VersionConflict), "got {err:?}");
}

/// `append_audit_batch` appends every event, in order.
pub async fn append_audit_batch_keeps_order(store: Arc<dyn TokenStore>) {
    let events: Vec<_> = (0..5)
        .map(|i| {
            let action = if i % 2 == 0 {
                AuditAction::Refreshed
            } else {
                AuditAction::RefreshFailed
            };
            audit(1, action, t0() + Duration::seconds(i))
        })
        .collect();
    store
        .append_audit_batch(events.clone())
        .await
        .expect("batch");
    store
        .append_audit_batch(Vec::new())
        .await
        .expect("empty batch");
    let listed = store.list_audit(UserId(1), 10).await.expect("list");
    let got: Vec<_> = listed.into_iter().rev().map(|e| e.event).collect();
    assert_eq!(got, events);
}

/// `count_accounts` counts every account once, by platform and stored status, sorted, with
/// the accounts past expiry at `now` (a `None` expiry never is; the boundary is).
pub async fn count_accounts_by_provider_and_status(store: Arc<dyn TokenStore>) {
    assert_eq!(
        store.count_accounts(t0()).await.expect("count"),
        Vec::new(),
        "an empty store has no group"
    );
    let at = |h: i64| t0() + Duration::hours(h);
    // reddit: three active (one past expiry, one exactly at it, one without expiry), one
    // needing reconnect (past expiry); tiktok: one active, for two users.
    let mut expiring = Vec::new();
    for (user, provider, account, expires) in [
        (1, "reddit", "r1", Some(at(-2))),
        (1, "reddit", "r2", Some(at(0))),
        (2, "reddit", "r3", None),
        (2, "reddit", "r4", Some(at(-1))),
        (1, "tiktok", "t1", Some(at(3))),
    ] {
        let mut account = new_account(user, provider, account);
        account.expires_at = expires;
        let rec = match store
            .upsert_account(account, EventId::random())
            .await
            .expect("upsert")
        {
            Upserted::Inserted(r) => r,
            Upserted::Updated(_) => panic!("new account expected"),
        };
        expiring.push(rec);
    }
    let mut dead = expiring[3].clone();
    dead.status = StoredStatus::NeedsReconnect;
    store.update_account(&dead, &[]).await.expect("update");
    let counts = store.count_accounts(t0()).await.expect("count");
    let got: Vec<(&str, StoredStatus, u64, u64)> = counts
        .iter()
        .map(|c| (c.provider.as_str(), c.status, c.accounts, c.past_expiry))
        .collect();
    assert_eq!(
        got,
        vec![
            ("reddit", StoredStatus::Active, 3, 2),
            ("reddit", StoredStatus::NeedsReconnect, 1, 1),
            ("tiktok", StoredStatus::Active, 1, 0),
        ],
        "groups by provider then status (Active first); past expiry includes `expires_at == now`"
    );
    // Later, the tiktok token is past expiry too; a deleted account is gone from the count.
    store
        .delete_account(expiring[1].id, &[])
        .await
        .expect("delete");
    let later: Vec<(String, StoredStatus, u64, u64)> = store
        .count_accounts(at(4))
        .await
        .expect("count")
        .into_iter()
        .map(|c| {
            (
                c.provider.as_str().to_owned(),
                c.status,
                c.accounts,
                c.past_expiry,
            )
        })
        .collect();
    assert_eq!(
        later,
        vec![
            ("reddit".to_owned(), StoredStatus::Active, 2, 1),
            ("reddit".to_owned(), StoredStatus::NeedsReconnect, 1, 1),
            ("tiktok".to_owned(), StoredStatus::Active, 1, 1),
        ]
    );
}

/// `recent_audit_times` returns the times of one user's events of one action at or after
/// `since`, newest first, at most `limit`.
pub async fn recent_audit_times_filters_and_orders(store: Arc<dyn TokenStore>) {
    let event = |user: i64, action: AuditAction, minutes: i64| NewAuditEvent {
        user_id: UserId(user),
        provider: pid("reddit"),
        provider_account_id: None,
        action,
        outcome: "success".into(),
        at: t0() + Duration::minutes(minutes),
    };
    // Appended out of time order on purpose.
    for (user, action, minutes) in [
        (1, AuditAction::ConnectStarted, 3),
        (1, AuditAction::ConnectStarted, 1),
        (1, AuditAction::Connected, 2),
        (2, AuditAction::ConnectStarted, 2),
        (1, AuditAction::ConnectStarted, 0),
        (1, AuditAction::ConnectStarted, 4),
    ] {
        store
            .append_audit(event(user, action, minutes))
            .await
            .expect("append");
    }
    let at = |m: i64| t0() + Duration::minutes(m);
    let times = |since: i64, limit: usize| {
        let store = store.clone();
        async move {
            store
                .recent_audit_times(UserId(1), AuditAction::ConnectStarted, at(since), limit)
                .await
                .expect("recent_audit_times")
        }
    };
    assert_eq!(
        times(1, 10).await,
        vec![at(4), at(3), at(1)],
        "since is inclusive, newest first"
    );
    assert_eq!(times(0, 2).await, vec![at(4), at(3)], "at most limit");
    assert_eq!(times(5, 10).await, Vec::<DateTime<Utc>>::new());
    assert_eq!(
        store
            .recent_audit_times(UserId(3), AuditAction::ConnectStarted, at(0), 10)
            .await
            .expect("recent_audit_times"),
        Vec::<DateTime<Utc>>::new(),
        "another user has none"
    );
}

/// `append_audit_within_limit` admits at most `limit` events in a window, even to 40
/// concurrent callers, refuses the rest without writing, and counts per user and action.
pub async fn append_audit_within_limit_is_atomic(store: Arc<dyn TokenStore>) {
    let event = |user: i64, action: AuditAction| NewAuditEvent {
        user_id: UserId(user),
        provider: pid("reddit"),
        provider_account_id: None,
        action,
        outcome: "success".into(),
        at: t0() + Duration::minutes(1),
    };
    let since = t0();
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let store = store.clone();
        let e = event(1, AuditAction::ConnectStarted);
        tasks.push(tokio::spawn(async move {
            store.append_audit_within_limit(e, since, 10).await
        }));
    }
    let mut appended = 0;
    let mut refused = 0;
    for t in tasks {
        match t.await.expect("task").expect("append_audit_within_limit") {
            LimitedAppend::Appended => appended += 1,
            LimitedAppend::Refused(times) => {
                assert_eq!(times.len(), 10, "the newest `limit` times");
                refused += 1;
            }
        }
    }
    assert_eq!(
        (appended, refused),
        (10, 30),
        "exactly the limit is admitted"
    );
    let recent = store
        .recent_audit_times(UserId(1), AuditAction::ConnectStarted, since, 100)
        .await
        .expect("recent");
    assert_eq!(recent.len(), 10, "refused calls wrote nothing");
    // Another action and another user have windows of their own; an older window is
    // not counted.
    for (user, action, since) in [
        (1, AuditAction::CallbackFailed, since),
        (2, AuditAction::ConnectStarted, since),
        (1, AuditAction::ConnectStarted, t0() + Duration::minutes(2)),
    ] {
        assert_eq!(
            store
                .append_audit_within_limit(event(user, action), since, 10)
                .await
                .expect("append"),
            LimitedAppend::Appended
        );
    }
}

async fn all_events(store: &dyn TokenStore) -> Vec<crate::events::StoredEvent> {
    store
        .events_after(EventPosition::START, 10_000)
        .await
        .expect("events_after")
}

/// Every account change records its event in the same step, and only when the change is
/// written: `Connected` then `Reauthorized` by `upsert_account` (with the id given),
/// events of `update_account`, `update_account_and_release` and `delete_account`, and one
/// `DataDeleted` per account of `delete_user_data`; a refused write records nothing.
/// Positions increase; `events_after` pages from a cursor.
pub async fn events_are_recorded_with_their_change(store: Arc<dyn TokenStore>) {
    assert_eq!(
        store.last_event_position().await.expect("last"),
        EventPosition::START,
        "an empty store's last position is START"
    );
    let id = EventId::random();
    let first = match store
        .upsert_account(new_account(1, "reddit", "a"), id.clone())
        .await
        .expect("upsert")
    {
        Upserted::Inserted(r) => r,
        Upserted::Updated(_) => panic!("new row expected"),
    };
    store
        .upsert_account(new_account(1, "reddit", "a"), EventId::random())
        .await
        .expect("upsert again");
    // Another user's account: refused, no event.
    store
        .upsert_account(new_account(2, "reddit", "a"), EventId::random())
        .await
        .expect_err("owned by another user");
    let events = all_events(&*store).await;
    assert_eq!(
        events.len(),
        2,
        "upsert records exactly one event per write"
    );
    assert_eq!(
        events[0].event.id, id,
        "upsert_account records the id given"
    );
    assert_eq!(events[0].event.kind, ConnectionEventKind::Connected);
    assert_eq!(events[1].event.kind, ConnectionEventKind::Reauthorized);
    assert_eq!(events[0].event.user_id, UserId(1));
    assert_eq!(events[0].event.provider_account_id, "a");
    assert_eq!(events[0].event.at, t0(), "the event is at `account.now`");
    assert_eq!(events[0].event.payload["scope"], "read write");
    assert!(events[0].position < events[1].position);

    // update_account: written with its event; a stale version writes neither.
    let current = store
        .get_account(first.id)
        .await
        .expect("get")
        .expect("row");
    let mut next = current.clone();
    next.refresh_failures = 1;
    let failed = ConnectionEvent::of_account(ConnectionEventKind::RefreshFailed, &next, t0())
        .with("error_code", "provider_unavailable");
    store
        .update_account(&next, std::slice::from_ref(&failed))
        .await
        .expect("update");
    let stale = ConnectionEvent::of_account(ConnectionEventKind::NeedsReconnect, &next, t0());
    store
        .update_account(&next, &[stale])
        .await
        .expect_err("stale version");
    let events = all_events(&*store).await;
    assert_eq!(events.len(), 3, "a refused update records no event");
    assert_eq!(events[2].event, failed, "the event is stored as given");

    // update_account_and_release: the same, lease or not.
    let leased = store
        .claim_for_refresh(first.id, &lease("w1", t0()))
        .await
        .expect("claim")
        .expect("leased");
    let refreshed = ConnectionEvent::of_account(ConnectionEventKind::Refreshed, &leased, t0());
    let mut written = store
        .update_account_and_release(&leased, "w1", std::slice::from_ref(&refreshed))
        .await
        .expect("write");
    written.version -= 1; // now stale
    store
        .update_account_and_release(&written, "w1", std::slice::from_ref(&refreshed))
        .await
        .expect_err("stale version");
    let events = all_events(&*store).await;
    assert_eq!(events.len(), 4, "a refused refresh write records no event");
    assert_eq!(events[3].event.kind, ConnectionEventKind::Refreshed);

    // delete_account: the event only when a row went.
    let gone = ConnectionEvent::of_account(ConnectionEventKind::Disconnected, &first, t0());
    assert!(
        store
            .delete_account(first.id, std::slice::from_ref(&gone))
            .await
            .expect("delete")
    );
    assert!(
        !store
            .delete_account(first.id, std::slice::from_ref(&gone))
            .await
            .expect("delete")
    );
    let events = all_events(&*store).await;
    assert_eq!(events.len(), 5, "deleting a missing row records no event");

    // delete_user_data: one DataDeleted per account, returned and stored.
    insert(&*store, 3, "reddit", "b").await;
    insert(&*store, 3, "tiktok", "c").await;
    let deleted = store
        .delete_user_data(UserId(3), t0())
        .await
        .expect("delete user");
    assert_eq!(deleted.events.len(), 2);
    let events = all_events(&*store).await;
    assert_eq!(events.len(), 9);
    let tail: Vec<_> = events[7..].iter().map(|e| e.event.clone()).collect();
    assert!(
        tail.iter()
            .all(|e| e.kind == ConnectionEventKind::DataDeleted)
    );
    let mut returned = deleted.events.clone();
    returned.sort_by(|a, b| a.id.cmp(&b.id));
    let mut stored = tail;
    stored.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(
        returned, stored,
        "delete_user_data returns the events it stored"
    );

    // Paging from a cursor.
    let page = store
        .events_after(events[3].position, 2)
        .await
        .expect("page");
    assert_eq!(page.len(), 2);
    assert_eq!(page[0].position, events[4].position);
    assert_eq!(page[1].position, events[5].position);
    let positions: Vec<_> = events.iter().map(|e| e.position).collect();
    let mut sorted = positions.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(positions, sorted, "positions are distinct and increasing");
    assert_eq!(
        store.last_event_position().await.expect("last"),
        events[events.len() - 1].position,
        "last_event_position is the newest event's"
    );
}

/// `prune_events` deletes the events before the cutoff and their deliveries, and keeps
/// the rest.
pub async fn prune_events_keeps_the_recent(store: Arc<dyn TokenStore>) {
    let a = insert(&*store, 1, "reddit", "a").await;
    for minutes in [10, 20, 30] {
        let e = ConnectionEvent::of_account(
            ConnectionEventKind::Refreshed,
            &a,
            t0() + Duration::minutes(minutes),
        );
        let current = store.get_account(a.id).await.expect("get").expect("row");
        store.update_account(&current, &[e]).await.expect("update");
    }
    store
        .enqueue_deliveries("ep", t0(), 100)
        .await
        .expect("enqueue");
    let pruned = store
        .prune_events(t0() + Duration::minutes(15))
        .await
        .expect("prune");
    assert_eq!(pruned, 2, "the connect event (t0) and the one at +10 min");
    let left = all_events(&*store).await;
    assert_eq!(left.len(), 2);
    assert!(
        left.iter()
            .all(|e| e.event.at >= t0() + Duration::minutes(20))
    );
    let pending = store
        .list_deliveries("ep", DeliveryStatus::Pending, 100)
        .await
        .expect("list");
    assert_eq!(
        pending.len(),
        2,
        "the pruned events' deliveries went with them"
    );
}

/// Deliveries: `enqueue_deliveries` creates one per event once; `claim_deliveries` leases
/// the due ones, at most one per account and only the oldest pending of each, counting
/// attempts; `finish_delivery` by the lease holder records the outcome (a retry is due
/// again at its time, a failure is final and listed), and by anyone else changes nothing.
pub async fn deliveries_claim_in_order_per_account(store: Arc<dyn TokenStore>) {
    let a = insert(&*store, 1, "reddit", "a").await;
    let b = insert(&*store, 1, "reddit", "b").await;
    let current = store.get_account(a.id).await.expect("get").expect("row");
    let e = ConnectionEvent::of_account(ConnectionEventKind::Refreshed, &current, t0());
    store.update_account(&current, &[e]).await.expect("update");
    // Events: a:connected, b:connected, a:refreshed.
    assert_eq!(
        store
            .enqueue_deliveries("ep", t0(), 2)
            .await
            .expect("enqueue"),
        2
    );
    assert_eq!(
        store
            .enqueue_deliveries("ep", t0(), 100)
            .await
            .expect("enqueue"),
        1
    );
    assert_eq!(
        store
            .enqueue_deliveries("ep", t0(), 100)
            .await
            .expect("enqueue"),
        0
    );
    assert_eq!(
        store
            .enqueue_deliveries("other", t0(), 100)
            .await
            .expect("enqueue"),
        3,
        "each endpoint has its own cursor"
    );
    let events = all_events(&*store).await;
    let (a1, b1, a2) = (&events[0], &events[1], &events[2]);
    assert_eq!(a1.event.provider_account_id, "a");
    assert_eq!(b.provider_account_id, "b");

    let claimed = store
        .claim_deliveries("ep", &lease("d1", t0()), 10)
        .await
        .expect("claim");
    let mut got: Vec<_> = claimed.iter().map(|d| d.event.position).collect();
    got.sort();
    assert_eq!(
        got,
        vec![a1.position, b1.position],
        "one per account, the oldest of each"
    );
    assert!(
        claimed
            .iter()
            .all(|d| d.attempts == 1 && d.endpoint == "ep")
    );
    let claimed_a = claimed
        .iter()
        .find(|d| d.event.position == a1.position)
        .expect("a1");
    assert_eq!(claimed_a.event, *a1, "a delivery carries its event");
    // Leased: nobody else gets them, nor a's next event.
    assert!(
        store
            .claim_deliveries("ep", &lease("d2", t0()), 10)
            .await
            .expect("claim")
            .is_empty()
    );
    // Only the holder finishes.
    let delivered = DeliveryOutcome::Delivered { at: t0() };
    assert!(
        !store
            .finish_delivery("ep", a1.position, "d2", &delivered)
            .await
            .expect("finish")
    );
    assert!(
        store
            .finish_delivery("ep", a1.position, "d1", &delivered)
            .await
            .expect("finish")
    );
    // b's delivery fails once, to be retried in 5 minutes.
    let retry = DeliveryOutcome::Retry {
        next_attempt_at: t0() + Duration::minutes(5),
        error: "the endpoint answered HTTP 503".into(),
    };
    assert!(
        store
            .finish_delivery("ep", b1.position, "d1", &retry)
            .await
            .expect("finish")
    );
    let now = t0() + Duration::seconds(1);
    let claimed = store
        .claim_deliveries("ep", &lease("d2", now), 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1, "a's next event; b's retry is not due yet");
    assert_eq!(claimed[0].event.position, a2.position);
    let failed = DeliveryOutcome::Failed {
        at: now,
        error: "the endpoint answered HTTP 410".into(),
    };
    assert!(
        store
            .finish_delivery("ep", a2.position, "d2", &failed)
            .await
            .expect("finish")
    );
    let later = t0() + Duration::minutes(6);
    let claimed = store
        .claim_deliveries("ep", &lease("d3", later), 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].event.position, b1.position);
    assert_eq!(claimed[0].attempts, 2, "attempts count across retries");
    // A lease that lapsed is taken over, counting another attempt.
    let lapsed = later + Duration::seconds(61);
    let claimed = store
        .claim_deliveries("ep", &lease("d4", lapsed), 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].attempts, 3);
    assert!(
        !store
            .finish_delivery("ep", b1.position, "d3", &delivered)
            .await
            .expect("finish"),
        "the lapsed holder no longer finishes"
    );

    let failed = store
        .list_deliveries("ep", DeliveryStatus::Failed, 10)
        .await
        .expect("list");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].position, a2.position);
    assert_eq!(failed[0].event_id, a2.event.id);
    assert_eq!(failed[0].attempts, 1);
    assert_eq!(
        failed[0].last_error.as_deref(),
        Some("the endpoint answered HTTP 410")
    );
    assert_eq!(failed[0].finished_at, Some(now));
    let done = store
        .list_deliveries("ep", DeliveryStatus::Delivered, 10)
        .await
        .expect("list");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].position, a1.position);
    assert_eq!(done[0].account_key, "reddit:a");
    let pending = store
        .list_deliveries("ep", DeliveryStatus::Pending, 10)
        .await
        .expect("list");
    assert_eq!(pending.len(), 1);
    assert_eq!(
        pending[0].last_error.as_deref(),
        Some("the endpoint answered HTTP 503")
    );
}

/// Concurrent claimers never hold one delivery, nor two of one account, at once.
pub async fn deliveries_concurrent_claimers_are_disjoint(store: Arc<dyn TokenStore>) {
    for i in 0..20 {
        let r = insert(&*store, 1, "reddit", &format!("acct{i}")).await;
        let e = ConnectionEvent::of_account(ConnectionEventKind::Refreshed, &r, t0());
        store.update_account(&r, &[e]).await.expect("update");
    }
    store
        .enqueue_deliveries("ep", t0(), 1000)
        .await
        .expect("enqueue");
    let tasks: Vec<_> = (0..6)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .claim_deliveries("ep", &lease(&format!("w{w}"), t0()), 7)
                    .await
                    .expect("claim")
            })
        })
        .collect();
    let mut positions = HashSet::new();
    let mut accounts = HashSet::new();
    for t in tasks {
        for d in t.await.expect("task") {
            assert!(positions.insert(d.event.position), "claimed twice");
            assert!(
                accounts.insert(d.event.event.account_key()),
                "two deliveries of one account in flight"
            );
        }
    }
    assert_eq!(
        accounts.len(),
        20,
        "every account's oldest delivery was claimable"
    );
}

/// `find_account_by_alias` finds the platform's account whose metadata lists the alias
/// under `platform_aliases` (text values only), and nothing on another platform.
pub async fn find_account_by_alias_reads_metadata(store: Arc<dyn TokenStore>) {
    let mut a = new_account(1, "instagram", "1784");
    a.metadata = serde_json::json!({
        "username": "a",
        crate::store::ALIASES_KEY: ["9001", "x'); DROP TABLE oauth_accounts; --"],
    });
    store.upsert_account(a, EventId::random()).await.unwrap();
    let mut b = new_account(2, "tiktok", "open-1");
    b.metadata = serde_json::json!({ crate::store::ALIASES_KEY: ["9001"] });
    store.upsert_account(b, EventId::random()).await.unwrap();
    let mut c = new_account(3, "instagram", "1785");
    c.metadata = serde_json::json!({ crate::store::ALIASES_KEY: [9002], "other": ["9003"] });
    store.upsert_account(c, EventId::random()).await.unwrap();

    let found = store
        .find_account_by_alias(&pid("instagram"), "9001")
        .await
        .unwrap()
        .expect("found by its alias");
    assert_eq!(found.provider_account_id, "1784");
    let tiktok = store
        .find_account_by_alias(&pid("tiktok"), "9001")
        .await
        .unwrap()
        .expect("the other platform's own");
    assert_eq!(tiktok.provider_account_id, "open-1");
    let quoted = store
        .find_account_by_alias(&pid("instagram"), "x'); DROP TABLE oauth_accounts; --")
        .await
        .unwrap();
    assert_eq!(
        quoted.map(|r| r.provider_account_id).as_deref(),
        Some("1784")
    );
    for absent in ["9002", "9003", "1784", "", "900"] {
        assert!(
            store
                .find_account_by_alias(&pid("instagram"), absent)
                .await
                .unwrap()
                .is_none(),
            "{absent:?}"
        );
    }
}

fn receipt(provider: &str, key: &str, code: Option<&str>, at: DateTime<Utc>) -> WebhookReceipt {
    WebhookReceipt {
        provider: pid(provider),
        key: key.to_owned(),
        event: "deauthorize".into(),
        provider_account_id: Some("1784".into()),
        outcome: "revoked".into(),
        confirmation_code: code.map(str::to_owned),
        received_at: at,
    }
}

/// A receipt is written once per (provider, key): a second insert returns the first;
/// concurrent inserts of one key write exactly once; codes are unique and found; pruning
/// keeps receipts with a code until their own limit.
pub async fn webhook_receipts_are_written_once(store: Arc<dyn TokenStore>) {
    let first = receipt("instagram", "events:sha256:aa", None, t0());
    let (stored, written) = store.insert_webhook_receipt(first.clone()).await.unwrap();
    assert!(written);
    assert_eq!(stored, first);
    let mut again = first.clone();
    again.outcome = "unknown_account".into();
    let (stored, written) = store.insert_webhook_receipt(again).await.unwrap();
    assert!(!written);
    assert_eq!(stored, first, "the first receipt stands");
    assert_eq!(
        store
            .webhook_receipt(&pid("instagram"), "events:sha256:aa")
            .await
            .unwrap(),
        Some(first.clone())
    );
    // The same key on another platform is another receipt.
    assert!(
        store
            .webhook_receipt(&pid("tiktok"), "events:sha256:aa")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .insert_webhook_receipt(receipt("tiktok", "events:sha256:aa", None, t0()))
            .await
            .unwrap()
            .1
    );

    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut r = receipt("tiktok", "events:race", None, t0());
                r.outcome = format!("attempt-{i}");
                store.insert_webhook_receipt(r).await.unwrap()
            })
        })
        .collect();
    let mut winners = 0;
    let mut outcomes = std::collections::HashSet::new();
    for t in tasks {
        let (stored, written) = t.await.unwrap();
        winners += usize::from(written);
        outcomes.insert(stored.outcome);
    }
    assert_eq!(winners, 1);
    assert_eq!(
        outcomes.len(),
        1,
        "every caller sees the one stored receipt"
    );

    let coded = receipt(
        "instagram",
        "data_deletion:sha256:aa",
        Some("ABC123DEF456"),
        t0(),
    );
    assert!(store.insert_webhook_receipt(coded.clone()).await.unwrap().1);
    assert_eq!(
        store.webhook_receipt_by_code("ABC123DEF456").await.unwrap(),
        Some(coded.clone())
    );
    assert!(
        store
            .webhook_receipt_by_code("abc123def456")
            .await
            .unwrap()
            .is_none()
    );
    let clash = receipt(
        "instagram",
        "data_deletion:sha256:bb",
        Some("ABC123DEF456"),
        t0(),
    );
    assert!(matches!(
        store.insert_webhook_receipt(clash).await,
        Err(StoreError::UniqueViolation(_))
    ));

    let late = receipt("reddit", "events:late", None, t0() + Duration::days(2));
    store.insert_webhook_receipt(late.clone()).await.unwrap();
    // Plain receipts before t0 + 1 day go; the coded one stays until its own limit.
    let pruned = store
        .prune_webhook_receipts(t0() + Duration::days(1), t0())
        .await
        .unwrap();
    assert_eq!(pruned, 3, "instagram, tiktok and the race's receipts");
    assert!(
        store
            .webhook_receipt_by_code("ABC123DEF456")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .webhook_receipt(&pid("reddit"), "events:late")
            .await
            .unwrap()
            .is_some()
    );
    let pruned = store
        .prune_webhook_receipts(t0() + Duration::days(1), t0() + Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    assert!(
        store
            .webhook_receipt_by_code("ABC123DEF456")
            .await
            .unwrap()
            .is_none()
    );
}

/// `save_health` replaces the row of the same provider, minute and instance;
/// `health_since` returns every instance's rows from a minute on; `prune_health` deletes
/// older minutes.
pub async fn health_rows_replace_and_prune(store: Arc<dyn TokenStore>) {
    use crate::health::{CallClass, HealthMinute, MinuteStats};
    let row = |provider: &str, minute: i64, instance: &str, calls: u64| {
        let mut stats = MinuteStats::default();
        stats.classes.insert(CallClass::Ok, calls);
        stats.latency = vec![0, calls];
        HealthMinute {
            provider: pid(provider),
            minute: t0() + Duration::minutes(minute),
            instance: instance.to_owned(),
            stats,
        }
    };
    store
        .save_health(&[
            row("reddit", 0, "a", 1),
            row("reddit", 0, "b", 2),
            row("tiktok", 1, "a", 3),
        ])
        .await
        .unwrap();
    // The same key again: replaced, not added.
    store
        .save_health(&[row("reddit", 0, "a", 5)])
        .await
        .unwrap();
    let mut rows = store.health_since(t0()).await.unwrap();
    rows.sort_by(|x, y| {
        (x.provider.as_str(), x.minute, &x.instance).cmp(&(
            y.provider.as_str(),
            y.minute,
            &y.instance,
        ))
    });
    assert_eq!(
        rows,
        vec![
            row("reddit", 0, "a", 5),
            row("reddit", 0, "b", 2),
            row("tiktok", 1, "a", 3)
        ]
    );
    let later = store
        .health_since(t0() + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(later, vec![row("tiktok", 1, "a", 3)]);
    assert_eq!(
        store
            .prune_health(t0() + Duration::minutes(1))
            .await
            .unwrap(),
        2
    );
    assert_eq!(store.health_since(t0()).await.unwrap(), later);
}
