//! [`MemoryStore`]: a complete, correct [`TokenStore`] in process memory.

use crate::events::{ConnectionEvent, ConnectionEventKind, EventId, EventPosition, StoredEvent};
use crate::platform_webhooks::WebhookReceipt;
use crate::provider::ProviderId;
use crate::store::{
    AccountCount, AccountRecord, AuditAction, AuditEvent, DeletedUserData, Delivery,
    DeliveryOutcome, DeliveryRecord, DeliveryStatus, Lease, LimitedAppend, NewAccount,
    NewAuditEvent, PendingAuthorization, StateHash, StoreError, StoredStatus, TokenStore, Upserted,
    UserId,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// A [`TokenStore`] in memory: for tests, examples and single-process hosts that accept
/// losing connections on restart. Every operation is atomic under one lock.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    next_id: i64,
    accounts: BTreeMap<i64, AccountRecord>,
    by_key: HashMap<(ProviderId, String), i64>,
    pending: HashMap<StateHash, PendingAuthorization>,
    audit: Vec<AuditEvent>,
    next_audit: i64,
    events: Vec<StoredEvent>,
    next_position: i64,
    /// Per endpoint: the cursor and the deliveries by position.
    endpoints: HashMap<String, Endpoint>,
    /// Platform webhook receipts by (provider, key).
    receipts: HashMap<(ProviderId, String), WebhookReceipt>,
    /// Health rows by (provider, minute, instance).
    health: BTreeMap<(ProviderId, DateTime<Utc>, String), crate::health::HealthMinute>,
}

#[derive(Debug, Default)]
struct Endpoint {
    cursor: i64,
    deliveries: BTreeMap<i64, MemoryDelivery>,
}

#[derive(Debug)]
struct MemoryDelivery {
    record: DeliveryRecord,
    lease_owner: Option<String>,
    lease_until: Option<DateTime<Utc>>,
}

impl State {
    fn record_events(&mut self, events: impl IntoIterator<Item = ConnectionEvent>) {
        for event in events {
            self.next_position += 1;
            self.events.push(StoredEvent {
                position: EventPosition(self.next_position),
                event,
            });
        }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `record` over the stored row (version checked) and returns the row as stored.
    fn update_locked<'s>(
        st: &'s mut State,
        record: &AccountRecord,
    ) -> Result<&'s mut AccountRecord, StoreError> {
        let rec = st
            .accounts
            .get_mut(&record.id)
            .ok_or(StoreError::NotFound)?;
        if rec.version != record.version {
            return Err(StoreError::VersionConflict);
        }
        let (lease_owner, lease_until, created_at) =
            (rec.lease_owner.take(), rec.lease_until, rec.created_at);
        *rec = AccountRecord {
            version: record.version + 1,
            lease_owner,
            lease_until,
            created_at,
            // Identity columns never change.
            id: rec.id,
            user_id: rec.user_id,
            provider: rec.provider.clone(),
            provider_account_id: rec.provider_account_id.clone(),
            ..record.clone()
        };
        Ok(rec)
    }

    fn upsert_locked(st: &mut State, a: NewAccount) -> Result<Upserted, StoreError> {
        let key = (a.provider.clone(), a.provider_account_id.clone());
        if let Some(id) = st.by_key.get(&key).copied() {
            let rec = st.accounts.get_mut(&id).ok_or(StoreError::NotFound)?;
            if rec.user_id != a.user_id {
                return Err(StoreError::OwnedByAnotherUser);
            }
            rec.access_token = a.access_token;
            rec.refresh_token = a.refresh_token;
            rec.expires_at = a.expires_at;
            rec.refresh_expires_at = a.refresh_expires_at;
            rec.token_issued_at = Some(a.now);
            rec.token_type = a.token_type;
            rec.scope = a.scope;
            rec.metadata = a.metadata;
            rec.status = StoredStatus::Active;
            rec.last_error = None;
            rec.refresh_failures = 0;
            rec.version += 1;
            rec.updated_at = a.now;
            return Ok(Upserted::Updated(rec.clone()));
        }
        st.next_id += 1;
        let id = st.next_id;
        let rec = AccountRecord {
            id,
            user_id: a.user_id,
            provider: a.provider,
            provider_account_id: a.provider_account_id,
            access_token: a.access_token,
            refresh_token: a.refresh_token,
            expires_at: a.expires_at,
            refresh_expires_at: a.refresh_expires_at,
            token_issued_at: Some(a.now),
            token_type: a.token_type,
            scope: a.scope,
            metadata: a.metadata,
            status: StoredStatus::Active,
            last_error: None,
            refresh_failures: 0,
            last_refresh_attempt_at: None,
            last_refresh_success_at: None,
            version: 1,
            lease_owner: None,
            lease_until: None,
            created_at: a.now,
            updated_at: a.now,
        };
        st.by_key.insert(key, id);
        st.accounts.insert(id, rec.clone());
        Ok(Upserted::Inserted(rec))
    }
}

fn lease_live(r: &AccountRecord, now: DateTime<Utc>) -> bool {
    r.lease_until.is_some_and(|until| until > now)
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn upsert_account(&self, a: NewAccount, event: EventId) -> Result<Upserted, StoreError> {
        let now = a.now;
        let mut st = self.state();
        let upserted = Self::upsert_locked(&mut st, a)?;
        let kind = match &upserted {
            Upserted::Inserted(_) => ConnectionEventKind::Connected,
            Upserted::Updated(_) => ConnectionEventKind::Reauthorized,
        };
        st.record_events(
            [ConnectionEvent::of_account(kind, upserted.record(), now).with_id(event)],
        );
        Ok(upserted)
    }

    async fn get_account(&self, id: i64) -> Result<Option<AccountRecord>, StoreError> {
        Ok(self.state().accounts.get(&id).cloned())
    }

    async fn find_account(
        &self,
        provider: &ProviderId,
        provider_account_id: &str,
    ) -> Result<Option<AccountRecord>, StoreError> {
        let st = self.state();
        let id = st
            .by_key
            .get(&(provider.clone(), provider_account_id.to_owned()))
            .copied();
        Ok(id.and_then(|id| st.accounts.get(&id).cloned()))
    }

    async fn list_accounts(&self, user_id: UserId) -> Result<Vec<AccountRecord>, StoreError> {
        let mut out: Vec<_> = self
            .state()
            .accounts
            .values()
            .filter(|r| r.user_id == user_id)
            .cloned()
            .collect();
        out.sort_by(|a, b| a.provider.cmp(&b.provider).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    async fn update_account(
        &self,
        record: &AccountRecord,
        events: &[ConnectionEvent],
    ) -> Result<AccountRecord, StoreError> {
        let mut st = self.state();
        let stored = Self::update_locked(&mut st, record)?.clone();
        st.record_events(events.iter().cloned());
        Ok(stored)
    }

    async fn update_account_and_release(
        &self,
        record: &AccountRecord,
        owner: &str,
        events: &[ConnectionEvent],
    ) -> Result<AccountRecord, StoreError> {
        let mut st = self.state();
        let rec = Self::update_locked(&mut st, record)?;
        if rec.lease_owner.as_deref() == Some(owner) {
            rec.lease_owner = None;
            rec.lease_until = None;
        }
        let stored = rec.clone();
        st.record_events(events.iter().cloned());
        Ok(stored)
    }

    async fn delete_account(
        &self,
        id: i64,
        events: &[ConnectionEvent],
    ) -> Result<bool, StoreError> {
        let mut st = self.state();
        match st.accounts.remove(&id) {
            Some(r) => {
                st.by_key.remove(&(r.provider, r.provider_account_id));
                st.record_events(events.iter().cloned());
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn delete_user_data(
        &self,
        user_id: UserId,
        at: DateTime<Utc>,
    ) -> Result<DeletedUserData, StoreError> {
        let mut st = self.state();
        let ids: Vec<i64> = st
            .accounts
            .values()
            .filter(|r| r.user_id == user_id)
            .map(|r| r.id)
            .collect();
        let mut events = Vec::with_capacity(ids.len());
        for id in &ids {
            if let Some(r) = st.accounts.remove(id) {
                events.push(ConnectionEvent::of_account(
                    ConnectionEventKind::DataDeleted,
                    &r,
                    at,
                ));
                st.by_key.remove(&(r.provider, r.provider_account_id));
            }
        }
        st.record_events(events.iter().cloned());
        let before_pending = st.pending.len();
        st.pending.retain(|_, p| p.user_id != user_id);
        let before_audit = st.audit.len();
        st.audit.retain(|e| e.event.user_id != user_id);
        Ok(DeletedUserData {
            accounts: ids.len() as u64,
            pending: (before_pending - st.pending.len()) as u64,
            audit_events: (before_audit - st.audit.len()) as u64,
            events,
        })
    }

    async fn put_pending(&self, pending: PendingAuthorization) -> Result<(), StoreError> {
        let mut st = self.state();
        if st.pending.contains_key(&pending.state_hash) {
            return Err(StoreError::UniqueViolation("pending state".into()));
        }
        st.pending.insert(pending.state_hash, pending);
        Ok(())
    }

    async fn take_pending(
        &self,
        state_hash: &StateHash,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        Ok(self.state().pending.remove(state_hash))
    }

    async fn purge_expired_pending(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut st = self.state();
        let before = st.pending.len();
        st.pending.retain(|_, p| p.expires_at >= now);
        Ok((before - st.pending.len()) as u64)
    }

    async fn claim_for_refresh(
        &self,
        id: i64,
        lease: &Lease,
    ) -> Result<Option<AccountRecord>, StoreError> {
        let mut st = self.state();
        let Some(rec) = st.accounts.get_mut(&id) else {
            return Ok(None);
        };
        if lease_live(rec, lease.now) && rec.lease_owner.as_deref() != Some(lease.owner.as_str()) {
            return Ok(None);
        }
        rec.lease_owner = Some(lease.owner.clone());
        rec.lease_until = Some(lease.until);
        Ok(Some(rec.clone()))
    }

    async fn release_lease(&self, id: i64, owner: &str) -> Result<bool, StoreError> {
        let mut st = self.state();
        match st.accounts.get_mut(&id) {
            Some(rec) if rec.lease_owner.as_deref() == Some(owner) => {
                rec.lease_owner = None;
                rec.lease_until = None;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn claim_due(
        &self,
        before: DateTime<Utc>,
        limit: usize,
        lease: &Lease,
    ) -> Result<Vec<AccountRecord>, StoreError> {
        let mut st = self.state();
        let mut due: Vec<(DateTime<Utc>, i64)> = st
            .accounts
            .values()
            .filter(|r| r.status == StoredStatus::Active && !lease_live(r, lease.now))
            .filter_map(|r| r.expires_at.filter(|e| *e <= before).map(|e| (e, r.id)))
            .collect();
        due.sort();
        due.truncate(limit);
        let mut out = Vec::with_capacity(due.len());
        for (_, id) in due {
            if let Some(rec) = st.accounts.get_mut(&id) {
                rec.lease_owner = Some(lease.owner.clone());
                rec.lease_until = Some(lease.until);
                out.push(rec.clone());
            }
        }
        Ok(out)
    }

    async fn append_audit(&self, event: NewAuditEvent) -> Result<(), StoreError> {
        let mut st = self.state();
        st.next_audit += 1;
        let id = st.next_audit;
        st.audit.push(AuditEvent { id, event });
        Ok(())
    }

    async fn append_audit_within_limit(
        &self,
        event: NewAuditEvent,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<LimitedAppend, StoreError> {
        // Counted and appended under one lock: atomic.
        let mut st = self.state();
        let mut times: Vec<DateTime<Utc>> = st
            .audit
            .iter()
            .filter(|e| {
                e.event.user_id == event.user_id
                    && e.event.action == event.action
                    && e.event.at >= since
            })
            .map(|e| e.event.at)
            .collect();
        if times.len() >= limit {
            times.sort_unstable_by(|a, b| b.cmp(a));
            times.truncate(limit);
            return Ok(LimitedAppend::Refused(times));
        }
        st.next_audit += 1;
        let id = st.next_audit;
        st.audit.push(AuditEvent { id, event });
        Ok(LimitedAppend::Appended)
    }

    async fn list_audit(
        &self,
        user_id: UserId,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        Ok(self
            .state()
            .audit
            .iter()
            .rev()
            .filter(|e| e.event.user_id == user_id)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn recent_audit_times(
        &self,
        user_id: UserId,
        action: AuditAction,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DateTime<Utc>>, StoreError> {
        let mut times: Vec<DateTime<Utc>> = self
            .state()
            .audit
            .iter()
            .filter(|e| {
                e.event.user_id == user_id && e.event.action == action && e.event.at >= since
            })
            .map(|e| e.event.at)
            .collect();
        times.sort_unstable_by(|a, b| b.cmp(a));
        times.truncate(limit);
        Ok(times)
    }

    async fn count_accounts(&self, now: DateTime<Utc>) -> Result<Vec<AccountCount>, StoreError> {
        let mut groups: BTreeMap<(ProviderId, StoredStatus), (u64, u64)> = BTreeMap::new();
        for r in self.state().accounts.values() {
            let group = groups.entry((r.provider.clone(), r.status)).or_default();
            group.0 += 1;
            if r.expires_at.is_some_and(|e| e <= now) {
                group.1 += 1;
            }
        }
        Ok(groups
            .into_iter()
            .map(|((provider, status), (accounts, past_expiry))| {
                AccountCount::new(provider, status, accounts, past_expiry)
            })
            .collect())
    }

    async fn events_after(
        &self,
        after: EventPosition,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let st = self.state();
        let from = st.events.partition_point(|e| e.position <= after);
        Ok(st.events[from..].iter().take(limit).cloned().collect())
    }

    async fn last_event_position(&self) -> Result<EventPosition, StoreError> {
        Ok(self
            .state()
            .events
            .last()
            .map_or(EventPosition::START, |e| e.position))
    }

    async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut st = self.state();
        let pruned: Vec<i64> = st
            .events
            .iter()
            .filter(|e| e.event.at < before)
            .map(|e| e.position.0)
            .collect();
        st.events.retain(|e| e.event.at >= before);
        for endpoint in st.endpoints.values_mut() {
            for p in &pruned {
                endpoint.deliveries.remove(p);
            }
        }
        Ok(pruned.len() as u64)
    }

    async fn enqueue_deliveries(
        &self,
        endpoint: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let mut guard = self.state();
        let st = &mut *guard;
        let ep = st.endpoints.entry(endpoint.to_owned()).or_default();
        let from = st.events.partition_point(|e| e.position.0 <= ep.cursor);
        let mut created = 0;
        for e in st.events[from..].iter().take(limit) {
            ep.cursor = e.position.0;
            ep.deliveries.insert(
                e.position.0,
                MemoryDelivery {
                    record: DeliveryRecord {
                        endpoint: endpoint.to_owned(),
                        position: e.position,
                        event_id: e.event.id.clone(),
                        account_key: e.event.account_key(),
                        status: DeliveryStatus::Pending,
                        attempts: 0,
                        next_attempt_at: now,
                        last_error: None,
                        finished_at: None,
                    },
                    lease_owner: None,
                    lease_until: None,
                },
            );
            created += 1;
        }
        Ok(created)
    }

    async fn claim_deliveries(
        &self,
        endpoint: &str,
        lease: &Lease,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut guard = self.state();
        let st = &mut *guard;
        let Some(ep) = st.endpoints.get_mut(endpoint) else {
            return Ok(Vec::new());
        };
        let mut heads = std::collections::HashSet::new();
        let mut claimed = Vec::new();
        for d in ep.deliveries.values_mut() {
            if claimed.len() >= limit {
                break;
            }
            if d.record.status != DeliveryStatus::Pending
                || !heads.insert(d.record.account_key.clone())
            {
                continue;
            }
            let leased = d.lease_until.is_some_and(|u| u > lease.now);
            if leased || d.record.next_attempt_at > lease.now {
                continue;
            }
            d.lease_owner = Some(lease.owner.clone());
            d.lease_until = Some(lease.until);
            d.record.attempts += 1;
            claimed.push((d.record.position, d.record.attempts));
        }
        let mut out = Vec::with_capacity(claimed.len());
        for (position, attempts) in claimed {
            let at = st.events.partition_point(|e| e.position < position);
            if let Some(event) = st.events.get(at).filter(|e| e.position == position) {
                out.push(Delivery {
                    endpoint: endpoint.to_owned(),
                    event: event.clone(),
                    attempts,
                });
            }
        }
        Ok(out)
    }

    async fn finish_delivery(
        &self,
        endpoint: &str,
        position: EventPosition,
        owner: &str,
        outcome: &DeliveryOutcome,
    ) -> Result<bool, StoreError> {
        let mut st = self.state();
        let Some(d) = st
            .endpoints
            .get_mut(endpoint)
            .and_then(|ep| ep.deliveries.get_mut(&position.0))
            .filter(|d| d.lease_owner.as_deref() == Some(owner))
        else {
            return Ok(false);
        };
        d.lease_owner = None;
        d.lease_until = None;
        match outcome {
            DeliveryOutcome::Delivered { at } => {
                d.record.status = DeliveryStatus::Delivered;
                d.record.finished_at = Some(*at);
                d.record.last_error = None;
            }
            DeliveryOutcome::Retry {
                next_attempt_at,
                error,
            } => {
                d.record.next_attempt_at = *next_attempt_at;
                d.record.last_error = Some(error.clone());
            }
            DeliveryOutcome::Failed { at, error } => {
                d.record.status = DeliveryStatus::Failed;
                d.record.finished_at = Some(*at);
                d.record.last_error = Some(error.clone());
            }
        }
        Ok(true)
    }

    async fn list_deliveries(
        &self,
        endpoint: &str,
        status: DeliveryStatus,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let st = self.state();
        Ok(st
            .endpoints
            .get(endpoint)
            .map(|ep| {
                ep.deliveries
                    .values()
                    .rev()
                    .filter(|d| d.record.status == status)
                    .take(limit)
                    .map(|d| d.record.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn find_account_by_alias(
        &self,
        provider: &ProviderId,
        alias: &str,
    ) -> Result<Option<AccountRecord>, StoreError> {
        let st = self.state();
        Ok(st
            .accounts
            .values()
            .find(|a| {
                &a.provider == provider
                    && a.metadata
                        .get(crate::store::ALIASES_KEY)
                        .and_then(|v| v.as_array())
                        .is_some_and(|ids| ids.iter().any(|id| id.as_str() == Some(alias)))
            })
            .cloned())
    }

    async fn webhook_receipt(
        &self,
        provider: &ProviderId,
        key: &str,
    ) -> Result<Option<WebhookReceipt>, StoreError> {
        let st = self.state();
        Ok(st
            .receipts
            .get(&(provider.clone(), key.to_owned()))
            .cloned())
    }

    async fn insert_webhook_receipt(
        &self,
        receipt: WebhookReceipt,
    ) -> Result<(WebhookReceipt, bool), StoreError> {
        let mut st = self.state();
        let key = (receipt.provider.clone(), receipt.key.clone());
        if let Some(existing) = st.receipts.get(&key) {
            return Ok((existing.clone(), false));
        }
        if let Some(code) = &receipt.confirmation_code
            && st
                .receipts
                .values()
                .any(|r| r.confirmation_code.as_ref() == Some(code))
        {
            return Err(StoreError::UniqueViolation(
                "webhook_receipts.confirmation_code".into(),
            ));
        }
        st.receipts.insert(key, receipt.clone());
        Ok((receipt, true))
    }

    async fn webhook_receipt_by_code(
        &self,
        code: &str,
    ) -> Result<Option<WebhookReceipt>, StoreError> {
        let st = self.state();
        Ok(st
            .receipts
            .values()
            .find(|r| r.confirmation_code.as_deref() == Some(code))
            .cloned())
    }

    async fn prune_webhook_receipts(
        &self,
        before: DateTime<Utc>,
        codes_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut st = self.state();
        let n = st.receipts.len();
        st.receipts.retain(|_, r| {
            let limit = if r.confirmation_code.is_some() {
                codes_before
            } else {
                before
            };
            r.received_at >= limit
        });
        Ok((n - st.receipts.len()) as u64)
    }

    async fn save_health(&self, rows: &[crate::health::HealthMinute]) -> Result<(), StoreError> {
        let mut st = self.state();
        for r in rows {
            st.health.insert(
                (r.provider.clone(), r.minute, r.instance.clone()),
                r.clone(),
            );
        }
        Ok(())
    }

    async fn health_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<crate::health::HealthMinute>, StoreError> {
        let st = self.state();
        Ok(st
            .health
            .values()
            .filter(|r| r.minute >= since)
            .cloned()
            .collect())
    }

    async fn prune_health(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut st = self.state();
        let n = st.health.len();
        st.health.retain(|(_, minute, _), _| *minute >= before);
        Ok((n - st.health.len()) as u64)
    }
}
