//! Scenarios run on both backends against a real database, with raw SQL access.

use super::*;
use diesel_async::SimpleAsyncConnection;
use integrations_core::{
    ConnectionEvent, ConnectionEventKind, EncryptionKey, EventPosition, PendingAuthorization,
    SecretContext, StateHash, StoreError, StoredStatus, TokenCipher, TokenStore, UserId,
};
use integrations_storage_diesel::DieselStore;

/// A tampered ciphertext is the core's problem when opening: the store still lists the
/// row, and every other row opens.
pub async fn tampered_ciphertext_still_lists<C: SimpleAsyncConnection + Send>(
    store: &DieselStore,
    raw: &mut C,
) {
    let c = cipher();
    let a = insert(store, account(&c, 7, "reddit", "a1", t0())).await;
    let b = insert(store, account(&c, 7, "tiktok", "b1", t0())).await;
    raw.batch_execute(&format!(
        "UPDATE oauth_accounts SET access_token = 'v1.garbage.AAAA' WHERE id = {}",
        a.id
    ))
    .await
    .unwrap_or_else(|e| panic!("tamper: {e}"));
    let list = store
        .list_accounts(UserId(7))
        .await
        .unwrap_or_else(|e| panic!("list: {e}"));
    assert_eq!(list.len(), 2);
    let tampered = list
        .iter()
        .find(|r| r.id == a.id)
        .unwrap_or_else(|| panic!("row a listed"));
    let sealed = tampered
        .access_token
        .clone()
        .unwrap_or_else(|| panic!("token kept"));
    assert!(
        c.open(ctx("reddit", "a1", "access_token"), &sealed)
            .is_err()
    );
    let good = list
        .iter()
        .find(|r| r.id == b.id)
        .unwrap_or_else(|| panic!("row b listed"));
    let opened = c
        .open(
            ctx("tiktok", "b1", "access_token"),
            good.access_token
                .as_ref()
                .unwrap_or_else(|| panic!("token")),
        )
        .unwrap_or_else(|e| panic!("open: {e}"));
    assert_eq!(&*opened, "at-b1");
}

/// Unknown status text and a bad provider id read back as `Corrupt`.
pub async fn corrupt_rows_are_typed<C: SimpleAsyncConnection + Send>(
    store: &DieselStore,
    raw: &mut C,
) {
    let c = cipher();
    let a = insert(store, account(&c, 8, "reddit", "c1", t0())).await;
    raw.batch_execute(&format!(
        "UPDATE oauth_accounts SET status = 'paused' WHERE id = {}",
        a.id
    ))
    .await
    .unwrap_or_else(|e| panic!("corrupt: {e}"));
    match store.get_account(a.id).await {
        Err(StoreError::Corrupt(m)) => assert!(m.contains("status"), "{m}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(matches!(
        store.list_accounts(UserId(8)).await,
        Err(StoreError::Corrupt(_))
    ));
    raw.batch_execute(&format!(
        "UPDATE oauth_accounts SET status = 'active', provider = 'Not A Provider!' WHERE id = {}",
        a.id
    ))
    .await
    .unwrap_or_else(|e| panic!("corrupt: {e}"));
    assert!(matches!(
        store.get_account(a.id).await,
        Err(StoreError::Corrupt(_))
    ));
}

/// `reseal_all` moves every token to the new key; afterwards a cipher holding only the
/// new key opens them all, and a second pass has nothing to do.
pub async fn key_rotation_reseals_rows(store: &DieselStore) {
    let old_key = EncryptionKey::generate();
    let new_key = EncryptionKey::generate();
    let old = TokenCipher::new(old_key.clone());
    let mut ids = Vec::new();
    for i in 0..5 {
        let acct = format!("k{i}");
        let mut n = account(&old, 9, "instagram", &acct, t0());
        if i == 4 {
            n.refresh_token = None; // a platform without refresh tokens
        }
        ids.push(insert(store, n).await.id);
    }
    // Pending authorizations: a verifier under the old key, one under a key nobody has,
    // and one without a verifier.
    let stranger = TokenCipher::new(EncryptionKey::generate());
    fn pending_ctx(hex: &str) -> SecretContext<'_> {
        SecretContext::pkce_verifier("tiktok", hex)
    }
    let mut states = Vec::new();
    for (i, sealer) in [Some(&old), Some(&stranger), None].into_iter().enumerate() {
        let hash = StateHash::of(&format!("state-{i}"));
        let hex = hash.to_hex();
        let verifier = sealer.map(|c| {
            c.seal(pending_ctx(&hex), &format!("verifier-{i}"))
                .unwrap_or_else(|e| panic!("seal: {e}"))
        });
        store
            .put_pending(PendingAuthorization {
                state_hash: hash,
                user_id: UserId(9),
                provider: pid("tiktok"),
                pkce_verifier: verifier,
                redirect_url: None,
                created_at: t0(),
                expires_at: t0() + chrono::Duration::minutes(10),
            })
            .await
            .unwrap_or_else(|e| panic!("put_pending: {e}"));
        states.push(hash);
    }

    let rotating = TokenCipher::new(new_key.clone()).with_previous(old_key);
    let report = store
        .reseal_all(&rotating)
        .await
        .unwrap_or_else(|e| panic!("reseal: {e}"));
    assert_eq!(report.scanned, 5);
    assert_eq!(report.resealed, 5);
    assert_eq!((report.pending_resealed, report.pending_failed), (1, 1));
    assert!(
        report.failed.is_empty() && report.conflicted.is_empty(),
        "{report:?}"
    );

    let only_new = TokenCipher::new(new_key);
    for (i, id) in ids.iter().enumerate() {
        let r = store
            .get_account(*id)
            .await
            .unwrap_or_else(|e| panic!("get: {e}"))
            .unwrap_or_else(|| panic!("row"));
        assert_eq!(r.version, 2, "re-sealing goes through the version check");
        let acct = format!("k{i}");
        let at = r
            .access_token
            .as_ref()
            .unwrap_or_else(|| panic!("access token"));
        assert!(!only_new.needs_reseal(at));
        assert_eq!(
            &*only_new
                .open(ctx("instagram", &acct, "access_token"), at)
                .unwrap_or_else(|e| panic!("open at: {e}")),
            &format!("at-{acct}")
        );
        match &r.refresh_token {
            Some(rt) => assert_eq!(
                &*only_new
                    .open(ctx("instagram", &acct, "refresh_token"), rt)
                    .unwrap_or_else(|e| panic!("open rt: {e}")),
                &format!("rt-{acct}")
            ),
            None => assert_eq!(i, 4),
        }
    }
    let pending = store
        .take_pending(&states[0])
        .await
        .unwrap_or_else(|e| panic!("take_pending: {e}"))
        .unwrap_or_else(|| panic!("pending row"));
    let verifier = pending
        .pkce_verifier
        .unwrap_or_else(|| panic!("verifier kept"));
    assert!(!only_new.needs_reseal(&verifier));
    assert_eq!(
        &*only_new
            .open(pending_ctx(&states[0].to_hex()), &verifier)
            .unwrap_or_else(|e| panic!("open verifier: {e}")),
        "verifier-0"
    );
    let untouched = store
        .take_pending(&states[1])
        .await
        .unwrap_or_else(|e| panic!("take_pending: {e}"))
        .unwrap_or_else(|| panic!("pending row"));
    assert!(
        stranger
            .open(
                pending_ctx(&states[1].to_hex()),
                untouched
                    .pkce_verifier
                    .as_ref()
                    .unwrap_or_else(|| panic!("verifier"))
            )
            .is_ok(),
        "a verifier no loaded key opens is left as it was"
    );

    let again = store
        .reseal_all(&only_new)
        .await
        .unwrap_or_else(|e| panic!("reseal: {e}"));
    assert_eq!((again.scanned, again.resealed), (5, 0));
    assert_eq!((again.pending_resealed, again.pending_failed), (0, 0));

    // A value no loaded key opens is reported, not lost.
    let orphan = insert(store, account(&stranger, 9, "instagram", "orphan", t0())).await;
    let report = store
        .reseal_all(&only_new)
        .await
        .unwrap_or_else(|e| panic!("reseal: {e}"));
    assert_eq!(report.failed, vec![orphan.id]);
}

/// 16 tasks claim one account at once: exactly one wins, round after round.
pub async fn sixteen_claimers_one_winner(store: &DieselStore) {
    let c = cipher();
    let a = insert(store, account(&c, 10, "reddit", "hot", t0())).await;
    for round in 0..10 {
        let now = t0() + chrono::Duration::minutes(2 * round);
        let tasks: Vec<_> = (0..16)
            .map(|w| {
                let store = store.clone();
                let l = lease(&format!("r{round}-w{w}"), now);
                tokio::spawn(async move { store.claim_for_refresh(a.id, &l).await })
            })
            .collect();
        let mut winners = 0;
        for t in tasks {
            match t.await {
                Ok(Ok(Some(_))) => winners += 1,
                Ok(Ok(None)) => {}
                other => panic!("claim failed: {other:?}"),
            }
        }
        assert_eq!(winners, 1, "round {round}");
    }
}

/// Two stores (two pools, as two processes) drain `n` due accounts with `claim_due`:
/// every account is claimed exactly once.
pub async fn two_pools_claim_each_due_account_once(a: DieselStore, b: DieselStore, n: usize) {
    let c = cipher();
    for i in 0..n {
        let expires = t0() - chrono::Duration::seconds(i as i64 + 1);
        insert(&a, account(&c, 11, "tiktok", &format!("due{i}"), expires)).await;
    }
    let drain = |store: DieselStore, name: &'static str| {
        tokio::spawn(async move {
            let mut got = Vec::new();
            let mut round = 0;
            loop {
                let l = lease(&format!("{name}-{round}"), t0());
                let batch = store
                    .claim_due(t0(), 25, &l)
                    .await
                    .unwrap_or_else(|e| panic!("claim_due: {e}"));
                if batch.is_empty() {
                    break got;
                }
                for r in &batch {
                    assert_eq!(r.lease_owner.as_deref(), Some(l.owner.as_str()));
                }
                got.extend(batch.into_iter().map(|r| r.id));
                round += 1;
            }
        })
    };
    let (x, y) = tokio::join!(drain(a.clone(), "a"), drain(b, "b"));
    let (x, y) = (
        x.unwrap_or_else(|e| panic!("{e}")),
        y.unwrap_or_else(|e| panic!("{e}")),
    );
    let mut all: Vec<i64> = x.iter().chain(&y).copied().collect();
    let total = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), total, "an account was claimed twice");
    assert_eq!(
        total,
        n,
        "every due account is claimed (a: {}, b: {})",
        x.len(),
        y.len()
    );
}

/// Many `update_account_and_release` calls at once (committed together in batches): each
/// row keeps its own outcome, and of two writes of one version exactly one wins. With
/// `poison`, expects a trigger that fails any update setting `scope` to `'poison'`: such a
/// row alone reports the error and keeps its old value, while the rows committed in the
/// same batch are written.
pub async fn concurrent_released_writes_keep_their_own_outcome(store: &DieselStore, poison: bool) {
    let c = cipher();
    let n = 120;
    // Older than anything an earlier call left due, so that `claim_due` takes these.
    let base = if poison { 3600 } else { 0 };
    for i in 0..n {
        let expires = t0() - chrono::Duration::seconds(base + i as i64 + 1);
        insert(
            store,
            account(&c, 12, "tiktok", &format!("w{poison}{i}"), expires),
        )
        .await;
    }
    let held = store
        .claim_due(t0(), n, &lease("holder", t0()))
        .await
        .unwrap_or_else(|e| panic!("claim_due: {e}"));
    assert_eq!(held.len(), n);
    assert!(
        held.iter()
            .all(|r| r.provider_account_id.starts_with(&format!("w{poison}")))
    );
    // What each write should do, by its position.
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Kind {
        Holder,
        OtherOwner,
        Stale,
        Poisoned,
    }
    let kind = |i: usize| match i % 10 {
        3 => Kind::OtherOwner,
        5 => Kind::Stale,
        7 if poison => Kind::Poisoned,
        _ => Kind::Holder,
    };
    let writes = held.iter().enumerate().map(|(i, rec)| {
        let mut next = rec.clone();
        let acct = rec.provider_account_id.clone();
        next.access_token = Some(
            c.seal(ctx("tiktok", &acct, "access_token"), &format!("new-{acct}"))
                .unwrap_or_else(|e| panic!("seal: {e}")),
        );
        let owner = match kind(i) {
            Kind::OtherOwner => "someone-else",
            _ => "holder",
        };
        match kind(i) {
            Kind::Stale => next.version -= 1,
            Kind::Poisoned => next.scope = Some("poison".into()),
            // Every other column too, to NULL and from NULL, at sub-microsecond times.
            Kind::Holder if i % 4 == 1 => {
                let at = t0() + chrono::Duration::nanoseconds(3_000_000_789 + i as i64);
                next.refresh_token = None;
                next.expires_at = None;
                let later = |s: i64| at + chrono::Duration::seconds(s);
                next.refresh_expires_at = Some(later(1));
                next.token_issued_at = Some(later(2));
                next.token_type = None;
                next.scope = None;
                next.metadata = serde_json::json!({"n": i, "nested": {"list": [1, "two", null]}});
                next.status = StoredStatus::NeedsReconnect;
                next.last_error = Some(format!("error {i}"));
                next.refresh_failures = 3;
                next.last_refresh_attempt_at = Some(later(3));
                next.last_refresh_success_at = Some(later(4));
                next.updated_at = later(5);
            }
            _ => {}
        }
        let store = store.clone();
        // Recorded only if the row is written, in the same statement.
        let event = ConnectionEvent::of_account(ConnectionEventKind::Refreshed, &next, t0())
            .with("write", format!("{poison}:{i}"));
        async move {
            (
                i,
                next.clone(),
                store
                    .update_account_and_release(&next, owner, &[event])
                    .await,
            )
        }
    });
    // A second write of the same version of every tenth row, queued among the others:
    // exactly one of the two may win.
    let seconds = held
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 10 == 0)
        .map(|(i, rec)| {
            let mut next = rec.clone();
            next.access_token = Some(
                c.seal(
                    ctx("tiktok", &rec.provider_account_id, "access_token"),
                    "second",
                )
                .unwrap_or_else(|e| panic!("seal: {e}")),
            );
            let store = store.clone();
            let event = ConnectionEvent::of_account(ConnectionEventKind::Refreshed, &next, t0())
                .with("write", format!("{poison}:{i}:second"));
            async move {
                (
                    i,
                    next.clone(),
                    store
                        .update_account_and_release(&next, "holder", &[event])
                        .await,
                )
            }
        });
    let (results, second_results) = futures::future::join(
        futures::future::join_all(writes),
        futures::future::join_all(seconds),
    )
    .await;
    let written = results.iter().filter(|r| r.2.is_ok()).count()
        + second_results.iter().filter(|r| r.2.is_ok()).count();
    let marker = format!("{poison}:");
    let recorded = store
        .events_after(EventPosition::START, 100_000)
        .await
        .unwrap_or_else(|e| panic!("events: {e}"))
        .into_iter()
        .filter(|e| {
            e.event.payload["write"]
                .as_str()
                .is_some_and(|w| w.starts_with(&marker))
        })
        .count();
    assert_eq!(
        recorded, written,
        "one event per written row, none for a refused one"
    );
    let mut results: Vec<_> = results.into_iter().map(|r| (r, None)).collect();
    for (i, next, result) in second_results {
        results[i].1 = Some((next, result));
    }
    for ((i, next, result), second) in results {
        let (next, result) = match second {
            None => (next, result),
            Some((next2, result2)) => match (result, result2) {
                (Ok(w), Err(StoreError::VersionConflict)) => (next, Ok(w)),
                (Err(StoreError::VersionConflict), Ok(w)) => (next2, Ok(w)),
                other => panic!("row {i}: one of two writes of a version must win, got {other:?}"),
            },
        };
        let before = &held[i];
        let stored = store
            .get_account(before.id)
            .await
            .unwrap_or_else(|e| panic!("get: {e}"))
            .unwrap_or_else(|| panic!("row {i} is gone"));
        match (kind(i), result) {
            (Kind::Holder, Ok(written)) => {
                assert_eq!(written.version, before.version + 1, "row {i}");
                assert_eq!(written.lease_owner, None, "row {i}");
                assert_eq!(
                    stored, written,
                    "row {i}: what was returned is what is stored"
                );
                assert_eq!(stored.access_token, next.access_token, "row {i}");
            }
            (Kind::OtherOwner, Ok(written)) => {
                // Written (the version matched), the holder's lease kept.
                assert_eq!(written.version, before.version + 1, "row {i}");
                assert_eq!(stored.access_token, next.access_token, "row {i}");
                assert_eq!(stored.lease_owner.as_deref(), Some("holder"), "row {i}");
            }
            (Kind::Stale, Err(StoreError::VersionConflict))
            | (Kind::Poisoned, Err(StoreError::Other { .. })) => {
                assert_eq!(&stored, before, "row {i} must be untouched");
            }
            (k, other) => panic!("row {i} ({k:?}): unexpected {other:?}"),
        }
    }
}

/// Callers of `update_account_and_release` that stop waiting (aborted tasks, at several
/// moments: before queueing, while queued, while their batch is being written) neither
/// stall nor break the writes queued with theirs: every other write completes, and an
/// abandoned one is either fully written or not at all.
pub async fn abandoned_released_writes_do_not_stall_others(store: &DieselStore) {
    let c = cipher();
    let n = 60;
    for (round, delay_us) in [0u64, 50, 200, 500, 1000, 2000, 5000]
        .into_iter()
        .enumerate()
    {
        // Each round's accounts are older than the previous rounds' (claimed first).
        let base = 10_000 * (round as i64 + 1);
        for i in 0..n {
            let expires = t0() - chrono::Duration::seconds(base + i as i64);
            let name = format!("ab{round}-{i}");
            insert(store, account(&c, 13, "reddit", &name, expires)).await;
        }
        let held = store
            .claim_due(t0(), n, &lease("holder", t0()))
            .await
            .unwrap_or_else(|e| panic!("claim_due: {e}"));
        assert_eq!(held.len(), n);
        assert!(
            held.iter()
                .all(|r| r.provider_account_id.starts_with(&format!("ab{round}-")))
        );
        let tasks: Vec<_> = held
            .iter()
            .map(|rec| {
                let mut next = rec.clone();
                next.refresh_failures = 7;
                let store = store.clone();
                tokio::spawn(
                    async move { store.update_account_and_release(&next, "holder", &[]).await },
                )
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_micros(delay_us)).await;
        for (i, t) in tasks.iter().enumerate() {
            if i % 3 == 0 {
                t.abort();
            }
        }
        let outcome = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            let mut results = Vec::new();
            for t in tasks {
                results.push(t.await);
            }
            results
        })
        .await
        .unwrap_or_else(|_| panic!("round {round}: writes stalled after some callers gave up"));
        for (i, (result, before)) in outcome.into_iter().zip(&held).enumerate() {
            let stored = store
                .get_account(before.id)
                .await
                .unwrap_or_else(|e| panic!("get: {e}"))
                .unwrap_or_else(|| panic!("row {i} is gone"));
            match result {
                Ok(Ok(written)) => assert_eq!(stored, written, "round {round} row {i}"),
                Ok(Err(e)) => panic!("round {round} row {i}: {e}"),
                Err(_) => {
                    // Aborted: all or nothing.
                    let written = stored.version == before.version + 1
                        && stored.refresh_failures == 7
                        && stored.lease_owner.is_none();
                    assert!(
                        written || &stored == before,
                        "round {round} row {i} half written: {stored:?}"
                    );
                }
            }
        }
    }
}
