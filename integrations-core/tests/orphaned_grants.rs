//! A callback that fails after the code exchange revokes the grant it obtained, where the
//! platform can and no stored connection would die with it, and returns its own error.

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use integrations_core::testing::ScriptedProvider;
use integrations_core::{
    AccountCount, AccountRecord, AuditAction, AuditEvent, CallbackParams, Capabilities,
    ConnectionEvent, DeletedUserData, Delivery, DeliveryOutcome, DeliveryRecord, DeliveryStatus,
    EncryptionKey, Error, EventId, EventPosition, Integrations, Lease, ManualClock, MemoryStore,
    NewAccount, NewAuditEvent, PendingAuthorization, ProviderError, ProviderId, StateHash,
    StoreError, StoredEvent, TokenCipher, TokenStore, Upserted, UserId, WebhookReceipt,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A [`MemoryStore`] whose `upsert_account` can be made to fail as an unreachable
/// database does.
#[derive(Debug, Default)]
struct FlakyStore {
    inner: MemoryStore,
    upsert_down: AtomicBool,
}

#[async_trait]
impl TokenStore for FlakyStore {
    async fn upsert_account(
        &self,
        account: NewAccount,
        event: EventId,
    ) -> Result<Upserted, StoreError> {
        if self.upsert_down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable {
                message: "connection refused".into(),
                source: None,
            });
        }
        self.inner.upsert_account(account, event).await
    }
    async fn get_account(&self, id: i64) -> Result<Option<AccountRecord>, StoreError> {
        self.inner.get_account(id).await
    }
    async fn find_account(
        &self,
        provider: &ProviderId,
        provider_account_id: &str,
    ) -> Result<Option<AccountRecord>, StoreError> {
        self.inner.find_account(provider, provider_account_id).await
    }
    async fn list_accounts(&self, user_id: UserId) -> Result<Vec<AccountRecord>, StoreError> {
        self.inner.list_accounts(user_id).await
    }
    async fn update_account(
        &self,
        record: &AccountRecord,
        events: &[ConnectionEvent],
    ) -> Result<AccountRecord, StoreError> {
        self.inner.update_account(record, events).await
    }
    async fn delete_account(
        &self,
        id: i64,
        events: &[ConnectionEvent],
    ) -> Result<bool, StoreError> {
        self.inner.delete_account(id, events).await
    }
    async fn delete_user_data(
        &self,
        user_id: UserId,
        at: DateTime<Utc>,
    ) -> Result<DeletedUserData, StoreError> {
        self.inner.delete_user_data(user_id, at).await
    }
    async fn put_pending(&self, pending: PendingAuthorization) -> Result<(), StoreError> {
        self.inner.put_pending(pending).await
    }
    async fn take_pending(
        &self,
        state_hash: &StateHash,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        self.inner.take_pending(state_hash).await
    }
    async fn purge_expired_pending(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.inner.purge_expired_pending(now).await
    }
    async fn claim_for_refresh(
        &self,
        id: i64,
        lease: &Lease,
    ) -> Result<Option<AccountRecord>, StoreError> {
        self.inner.claim_for_refresh(id, lease).await
    }
    async fn release_lease(&self, id: i64, owner: &str) -> Result<bool, StoreError> {
        self.inner.release_lease(id, owner).await
    }
    async fn claim_due(
        &self,
        before: DateTime<Utc>,
        limit: usize,
        lease: &Lease,
    ) -> Result<Vec<AccountRecord>, StoreError> {
        self.inner.claim_due(before, limit, lease).await
    }
    async fn append_audit(&self, event: NewAuditEvent) -> Result<(), StoreError> {
        self.inner.append_audit(event).await
    }
    async fn list_audit(
        &self,
        user_id: UserId,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        self.inner.list_audit(user_id, limit).await
    }
    async fn recent_audit_times(
        &self,
        user_id: UserId,
        action: AuditAction,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DateTime<Utc>>, StoreError> {
        self.inner
            .recent_audit_times(user_id, action, since, limit)
            .await
    }
    async fn count_accounts(&self, now: DateTime<Utc>) -> Result<Vec<AccountCount>, StoreError> {
        self.inner.count_accounts(now).await
    }
    async fn events_after(
        &self,
        after: EventPosition,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner.events_after(after, limit).await
    }
    async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.inner.prune_events(before).await
    }
    async fn enqueue_deliveries(
        &self,
        endpoint: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<usize, StoreError> {
        self.inner.enqueue_deliveries(endpoint, now, limit).await
    }
    async fn claim_deliveries(
        &self,
        endpoint: &str,
        lease: &Lease,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.inner.claim_deliveries(endpoint, lease, limit).await
    }
    async fn finish_delivery(
        &self,
        endpoint: &str,
        position: EventPosition,
        owner: &str,
        outcome: &DeliveryOutcome,
    ) -> Result<bool, StoreError> {
        self.inner
            .finish_delivery(endpoint, position, owner, outcome)
            .await
    }
    async fn list_deliveries(
        &self,
        endpoint: &str,
        status: DeliveryStatus,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        self.inner.list_deliveries(endpoint, status, limit).await
    }
    async fn find_account_by_alias(
        &self,
        provider: &ProviderId,
        alias: &str,
    ) -> Result<Option<AccountRecord>, StoreError> {
        self.inner.find_account_by_alias(provider, alias).await
    }
    async fn webhook_receipt(
        &self,
        provider: &ProviderId,
        key: &str,
    ) -> Result<Option<WebhookReceipt>, StoreError> {
        self.inner.webhook_receipt(provider, key).await
    }
    async fn insert_webhook_receipt(
        &self,
        receipt: WebhookReceipt,
    ) -> Result<(WebhookReceipt, bool), StoreError> {
        self.inner.insert_webhook_receipt(receipt).await
    }
    async fn webhook_receipt_by_code(
        &self,
        code: &str,
    ) -> Result<Option<WebhookReceipt>, StoreError> {
        self.inner.webhook_receipt_by_code(code).await
    }
    async fn prune_webhook_receipts(
        &self,
        before: DateTime<Utc>,
        codes_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.inner
            .prune_webhook_receipts(before, codes_before)
            .await
    }

    async fn save_health(
        &self,
        rows: &[integrations_core::health::HealthMinute],
    ) -> Result<(), StoreError> {
        self.inner.save_health(rows).await
    }

    async fn health_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<integrations_core::health::HealthMinute>, StoreError> {
        self.inner.health_since(since).await
    }

    async fn prune_health(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.inner.prune_health(before).await
    }
}

struct Fixture {
    integrations: Integrations,
    store: Arc<FlakyStore>,
    provider: Arc<ScriptedProvider>,
}

fn fixture(provider: ScriptedProvider) -> Fixture {
    let store = Arc::new(FlakyStore::default());
    let provider = Arc::new(provider);
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 5, 1, 8, 0, 0).unwrap(),
    ));
    let integrations =
        Integrations::builder(store.clone(), TokenCipher::new(EncryptionKey::generate()))
            .provider(provider.clone())
            .clock(clock)
            .build();
    Fixture {
        integrations,
        store,
        provider,
    }
}

/// A provider whose revoke ends only the tokens it is given (Reddit's kind).
fn per_grant() -> ScriptedProvider {
    let p = ScriptedProvider::new("reddit");
    p.set_revoke_per_grant(true);
    p
}

async fn callback(f: &Fixture, user: i64, code: &str) -> Result<(), Error> {
    let start = f
        .integrations
        .connect(UserId(user), "reddit", None)
        .await
        .expect("connect");
    let params = CallbackParams::from_pairs([("code", code), ("state", start.state.as_str())]);
    f.integrations
        .callback(UserId(user), "reddit", &params)
        .await
        .map(|_| ())
}

/// The user's audit trail, oldest first, as `(action, account, outcome)`.
async fn trail(f: &Fixture, user: i64) -> Vec<(AuditAction, Option<String>, String)> {
    let mut events = f.store.list_audit(UserId(user), 50).await.unwrap();
    events.reverse();
    events
        .into_iter()
        .map(|e| (e.event.action, e.event.provider_account_id, e.event.outcome))
        .collect()
}

fn orphan_rows(trail: &[(AuditAction, Option<String>, String)]) -> Vec<(Option<String>, String)> {
    trail
        .iter()
        .filter(|(a, _, _)| *a == AuditAction::OrphanRevoked)
        .map(|(_, account, outcome)| (account.clone(), outcome.clone()))
        .collect()
}

#[tokio::test]
async fn a_failed_profile_fetch_revokes_the_new_grant_and_returns_its_error() {
    let f = fixture(per_grant());
    f.provider.fail_next_profile(ProviderError::InvalidClient {
        description: Some("app not approved for this scope".into()),
    });
    let err = callback(&f, 1, "acct").await.unwrap_err();
    assert!(
        matches!(err, Error::Provider(ProviderError::InvalidClient { .. })),
        "{err:?}"
    );
    assert_eq!(f.provider.exchange_calls(), 1);
    assert_eq!(f.provider.revoke_calls(), 1);
    assert_eq!(
        f.provider.current_refresh_token("acct"),
        None,
        "the grant is dead at the platform"
    );
    let trail = trail(&f, 1).await;
    assert_eq!(orphan_rows(&trail), vec![(None, "success".to_owned())]);
    assert_eq!(
        trail.last().map(|(a, _, o)| (*a, o.as_str())),
        Some((AuditAction::CallbackFailed, "invalid_client"))
    );
    assert!(f.store.list_accounts(UserId(1)).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_store_outage_on_save_revokes_the_new_grant_and_returns_the_outage() {
    let f = fixture(ScriptedProvider::new("reddit"));
    f.store.upsert_down.store(true, Ordering::SeqCst);
    let err = callback(&f, 1, "acct").await.unwrap_err();
    assert!(
        matches!(err, Error::Store(StoreError::Unavailable { .. })),
        "{err:?}"
    );
    assert!(err.is_transient());
    // Only the write failed: the store still says the account is not stored, so even a
    // revoke that ends every grant of the account ends no connection.
    assert_eq!(f.provider.revoke_calls(), 1);
    assert_eq!(f.provider.current_refresh_token("acct"), None);
    assert_eq!(
        orphan_rows(&trail(&f, 1).await),
        vec![(Some("acct".to_owned()), "success".to_owned())]
    );
}

#[tokio::test]
async fn a_failed_revoke_does_not_hide_the_original_error() {
    let f = fixture(per_grant());
    f.provider.fail_next_profile(ProviderError::Protocol {
        message: "no id in the profile".into(),
        body: None,
    });
    f.provider
        .fail_next_revoke(ProviderError::Unavailable { status: 503 });
    let err = callback(&f, 1, "acct").await.unwrap_err();
    assert!(
        matches!(err, Error::Provider(ProviderError::Protocol { .. })),
        "the profile's error, not the revoke's: {err:?}"
    );
    assert_eq!(f.provider.revoke_calls(), 1);
    assert!(
        f.provider.current_refresh_token("acct").is_some(),
        "the revoke failed: the grant is still live"
    );
    let trail = trail(&f, 1).await;
    assert_eq!(
        orphan_rows(&trail),
        vec![(None, "provider_unavailable".to_owned())]
    );
    assert_eq!(
        trail.last().map(|(a, _, o)| (*a, o.as_str())),
        Some((AuditAction::CallbackFailed, "provider_protocol"))
    );
}

#[tokio::test]
async fn an_account_owned_by_another_user_gets_its_new_grant_revoked_where_that_ends_only_it() {
    let f = fixture(per_grant());
    f.provider.account_for_code("code-a", "shared");
    f.provider.account_for_code("code-b", "shared");
    callback(&f, 1, "code-a").await.unwrap();
    let owners_token = f
        .integrations
        .access_token(UserId(1), "reddit", "shared")
        .await
        .unwrap();
    let err = callback(&f, 2, "code-b").await.unwrap_err();
    assert!(matches!(err, Error::AccountOwnedByAnotherUser), "{err:?}");
    assert_eq!(f.provider.revoke_calls(), 1);
    assert!(
        f.provider
            .is_live_access_token(owners_token.expose_secret()),
        "the owner's connection is untouched"
    );
    assert_eq!(
        orphan_rows(&trail(&f, 2).await),
        vec![(Some("shared".to_owned()), "success".to_owned())]
    );
}

#[tokio::test]
async fn a_revoke_that_would_end_a_stored_connection_is_skipped() {
    // The default scripted revoke ends every token of the account, as TikTok's does.
    let f = fixture(ScriptedProvider::new("reddit"));
    f.provider.account_for_code("code-a", "shared");
    f.provider.account_for_code("code-b", "shared");
    callback(&f, 1, "code-a").await.unwrap();
    let owners_token = f
        .integrations
        .access_token(UserId(1), "reddit", "shared")
        .await
        .unwrap();
    let err = callback(&f, 2, "code-b").await.unwrap_err();
    assert!(matches!(err, Error::AccountOwnedByAnotherUser), "{err:?}");
    assert_eq!(f.provider.revoke_calls(), 0);
    assert!(
        f.provider
            .is_live_access_token(owners_token.expose_secret()),
        "revoking would have disconnected the owner"
    );
    let rows = orphan_rows(&trail(&f, 2).await);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0.as_deref(), Some("shared"));
    assert!(rows[0].1.starts_with("skipped"), "{rows:?}");
    // Nor when the failure came before the account was known.
    f.provider
        .fail_next_profile(ProviderError::InvalidClient { description: None });
    let err = callback(&f, 2, "other").await.unwrap_err();
    assert!(matches!(
        err,
        Error::Provider(ProviderError::InvalidClient { .. })
    ));
    assert_eq!(f.provider.revoke_calls(), 0);
}

#[tokio::test]
async fn a_platform_without_revoke_is_not_asked() {
    let caps = Capabilities {
        revoke: false,
        ..Capabilities::default()
    };
    let f = fixture(ScriptedProvider::with_capabilities("reddit", caps, true));
    f.provider
        .fail_next_profile(ProviderError::InvalidClient { description: None });
    let err = callback(&f, 1, "acct").await.unwrap_err();
    assert!(matches!(
        err,
        Error::Provider(ProviderError::InvalidClient { .. })
    ));
    assert_eq!(f.provider.revoke_calls(), 0);
    assert!(orphan_rows(&trail(&f, 1).await).is_empty());
}

#[tokio::test]
async fn a_successful_callback_revokes_nothing() {
    let f = fixture(per_grant());
    callback(&f, 1, "acct").await.unwrap();
    assert_eq!(f.provider.revoke_calls(), 0);
    assert!(orphan_rows(&trail(&f, 1).await).is_empty());
}
