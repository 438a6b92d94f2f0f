//! [`Owned`]: a store together with what it runs on.

use crate::events::{ConnectionEvent, EventId, EventPosition, StoredEvent};
use crate::platform_webhooks::WebhookReceipt;
use crate::provider::ProviderId;
use crate::store::{
    AccountCount, AccountRecord, AuditAction, AuditEvent, DeletedUserData, Delivery,
    DeliveryOutcome, DeliveryRecord, DeliveryStatus, Lease, LimitedAppend, NewAccount,
    NewAuditEvent, PendingAuthorization, StateHash, StoreError, TokenStore, Upserted, UserId,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// A store that owns what it runs on (a database schema, a directory): the guard drops
/// with the store, so conformance cases, which only see `Arc<dyn TokenStore>`, clean up
/// after themselves. Every method is forwarded, those with a default too, so that the
/// suite tests the store's own.
#[derive(Debug)]
pub struct Owned<S, G> {
    /// The store.
    pub store: S,
    /// What is dropped with it.
    pub guard: G,
}

#[async_trait]
impl<S: TokenStore, G: Send + Sync + std::fmt::Debug + 'static> TokenStore for Owned<S, G> {
    async fn upsert_account(&self, a: NewAccount, e: EventId) -> Result<Upserted, StoreError> {
        self.store.upsert_account(a, e).await
    }
    async fn get_account(&self, id: i64) -> Result<Option<AccountRecord>, StoreError> {
        self.store.get_account(id).await
    }
    async fn find_account(
        &self,
        p: &ProviderId,
        a: &str,
    ) -> Result<Option<AccountRecord>, StoreError> {
        self.store.find_account(p, a).await
    }
    async fn list_accounts(&self, u: UserId) -> Result<Vec<AccountRecord>, StoreError> {
        self.store.list_accounts(u).await
    }
    async fn update_account(
        &self,
        r: &AccountRecord,
        e: &[ConnectionEvent],
    ) -> Result<AccountRecord, StoreError> {
        self.store.update_account(r, e).await
    }
    async fn delete_account(&self, id: i64, e: &[ConnectionEvent]) -> Result<bool, StoreError> {
        self.store.delete_account(id, e).await
    }
    async fn delete_user_data(
        &self,
        u: UserId,
        at: DateTime<Utc>,
    ) -> Result<DeletedUserData, StoreError> {
        self.store.delete_user_data(u, at).await
    }
    async fn put_pending(&self, p: PendingAuthorization) -> Result<(), StoreError> {
        self.store.put_pending(p).await
    }
    async fn take_pending(
        &self,
        h: &StateHash,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        self.store.take_pending(h).await
    }
    async fn purge_expired_pending(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.store.purge_expired_pending(now).await
    }
    async fn claim_for_refresh(
        &self,
        id: i64,
        l: &Lease,
    ) -> Result<Option<AccountRecord>, StoreError> {
        self.store.claim_for_refresh(id, l).await
    }
    async fn release_lease(&self, id: i64, owner: &str) -> Result<bool, StoreError> {
        self.store.release_lease(id, owner).await
    }
    async fn claim_due(
        &self,
        before: DateTime<Utc>,
        limit: usize,
        l: &Lease,
    ) -> Result<Vec<AccountRecord>, StoreError> {
        self.store.claim_due(before, limit, l).await
    }
    async fn update_account_and_release(
        &self,
        r: &AccountRecord,
        owner: &str,
        e: &[ConnectionEvent],
    ) -> Result<AccountRecord, StoreError> {
        self.store.update_account_and_release(r, owner, e).await
    }
    async fn append_audit(&self, e: NewAuditEvent) -> Result<(), StoreError> {
        self.store.append_audit(e).await
    }
    async fn append_audit_batch(&self, e: Vec<NewAuditEvent>) -> Result<(), StoreError> {
        self.store.append_audit_batch(e).await
    }
    async fn list_audit(&self, u: UserId, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        self.store.list_audit(u, limit).await
    }
    async fn recent_audit_times(
        &self,
        u: UserId,
        action: AuditAction,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DateTime<Utc>>, StoreError> {
        self.store.recent_audit_times(u, action, since, limit).await
    }
    async fn append_audit_within_limit(
        &self,
        event: NewAuditEvent,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<LimitedAppend, StoreError> {
        self.store
            .append_audit_within_limit(event, since, limit)
            .await
    }
    async fn count_accounts(&self, now: DateTime<Utc>) -> Result<Vec<AccountCount>, StoreError> {
        self.store.count_accounts(now).await
    }
    async fn events_after(
        &self,
        after: EventPosition,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.store.events_after(after, limit).await
    }
    async fn last_event_position(&self) -> Result<EventPosition, StoreError> {
        self.store.last_event_position().await
    }
    async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.store.prune_events(before).await
    }
    async fn wait_for_events(&self, timeout: Duration) {
        self.store.wait_for_events(timeout).await
    }
    async fn enqueue_deliveries(
        &self,
        endpoint: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<usize, StoreError> {
        self.store.enqueue_deliveries(endpoint, now, limit).await
    }
    async fn claim_deliveries(
        &self,
        endpoint: &str,
        lease: &Lease,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.store.claim_deliveries(endpoint, lease, limit).await
    }
    async fn finish_delivery(
        &self,
        endpoint: &str,
        position: EventPosition,
        owner: &str,
        outcome: &DeliveryOutcome,
    ) -> Result<bool, StoreError> {
        self.store
            .finish_delivery(endpoint, position, owner, outcome)
            .await
    }
    async fn list_deliveries(
        &self,
        endpoint: &str,
        status: DeliveryStatus,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        self.store.list_deliveries(endpoint, status, limit).await
    }

    async fn find_account_by_alias(
        &self,
        provider: &ProviderId,
        alias: &str,
    ) -> Result<Option<AccountRecord>, StoreError> {
        self.store.find_account_by_alias(provider, alias).await
    }

    async fn webhook_receipt(
        &self,
        provider: &ProviderId,
        key: &str,
    ) -> Result<Option<WebhookReceipt>, StoreError> {
        self.store.webhook_receipt(provider, key).await
    }

    async fn insert_webhook_receipt(
        &self,
        receipt: WebhookReceipt,
    ) -> Result<(WebhookReceipt, bool), StoreError> {
        self.store.insert_webhook_receipt(receipt).await
    }

    async fn webhook_receipt_by_code(
        &self,
        code: &str,
    ) -> Result<Option<WebhookReceipt>, StoreError> {
        self.store.webhook_receipt_by_code(code).await
    }

    async fn prune_webhook_receipts(
        &self,
        before: DateTime<Utc>,
        codes_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.store
            .prune_webhook_receipts(before, codes_before)
            .await
    }

    async fn save_health(&self, rows: &[crate::health::HealthMinute]) -> Result<(), StoreError> {
        self.store.save_health(rows).await
    }

    async fn health_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<crate::health::HealthMinute>, StoreError> {
        self.store.health_since(since).await
    }

    async fn prune_health(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.store.prune_health(before).await
    }
}
