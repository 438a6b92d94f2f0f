//! [`MemoryStore`]: a complete, correct [`TokenStore`] in process memory.

use crate::provider::ProviderId;
use crate::store::{
    AccountCount, AccountRecord, AccountStatus, AuditAction, AuditEvent, DeletedUserData, Lease,
    LimitedAppend, NewAccount, NewAuditEvent, PendingAuthorization, StateHash, StoreError,
    TokenStore, Upserted, UserId,
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
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn lease_live(r: &AccountRecord, now: DateTime<Utc>) -> bool {
    r.lease_until.is_some_and(|until| until > now)
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn upsert_account(&self, a: NewAccount) -> Result<Upserted, StoreError> {
        let mut st = self.state();
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
            rec.status = AccountStatus::Active;
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
            status: AccountStatus::Active,
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

    async fn update_account(&self, record: &AccountRecord) -> Result<AccountRecord, StoreError> {
        let mut st = self.state();
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
        Ok(rec.clone())
    }

    async fn delete_account(&self, id: i64) -> Result<bool, StoreError> {
        let mut st = self.state();
        match st.accounts.remove(&id) {
            Some(r) => {
                st.by_key.remove(&(r.provider, r.provider_account_id));
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn delete_user_data(&self, user_id: UserId) -> Result<DeletedUserData, StoreError> {
        let mut st = self.state();
        let ids: Vec<i64> = st
            .accounts
            .values()
            .filter(|r| r.user_id == user_id)
            .map(|r| r.id)
            .collect();
        for id in &ids {
            if let Some(r) = st.accounts.remove(id) {
                st.by_key.remove(&(r.provider, r.provider_account_id));
            }
        }
        let before_pending = st.pending.len();
        st.pending.retain(|_, p| p.user_id != user_id);
        let before_audit = st.audit.len();
        st.audit.retain(|e| e.event.user_id != user_id);
        Ok(DeletedUserData {
            accounts: ids.len() as u64,
            pending: (before_pending - st.pending.len()) as u64,
            audit_events: (before_audit - st.audit.len()) as u64,
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
            .filter(|r| r.status == AccountStatus::Active && !lease_live(r, lease.now))
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
        let mut groups: BTreeMap<(ProviderId, AccountStatus), (u64, u64)> = BTreeMap::new();
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
}
