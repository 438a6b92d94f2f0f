//! The [`TokenStore`] trait: persistence of accounts, pending authorizations, refresh
//! leases and audit events. Stores hold no policy and only ever see sealed secrets.

use crate::events::{ConnectionEvent, EventId, EventPosition, StoredEvent};
use crate::platform_webhooks::WebhookReceipt;
use crate::provider::ProviderId;
use crate::secret::SealedSecret;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// The host application's user id (a 64-bit integer, like `users.id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UserId(pub i64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The stored lifecycle state of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredStatus {
    /// Tokens are usable or refreshable.
    Active,
    /// The grant is dead (revoked, expired refresh token); the user must reconnect.
    NeedsReconnect,
}

impl StoredStatus {
    /// The text stored in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::NeedsReconnect => "needs_reconnect",
        }
    }

    /// Parses the stored text.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "needs_reconnect" => Some(Self::NeedsReconnect),
            _ => None,
        }
    }
}

/// One connected account: the `oauth_accounts` row.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountRecord {
    /// Store-assigned id.
    pub id: i64,
    /// The owning user.
    pub user_id: UserId,
    /// The platform.
    pub provider: ProviderId,
    /// The platform's account id.
    pub provider_account_id: String,
    /// Sealed access token (`None` once cleared).
    pub access_token: Option<SealedSecret>,
    /// Sealed refresh token.
    pub refresh_token: Option<SealedSecret>,
    /// When the access token expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// When the refresh token expires, if the platform said.
    pub refresh_expires_at: Option<DateTime<Utc>>,
    /// When the current access token was issued.
    pub token_issued_at: Option<DateTime<Utc>>,
    /// `token_type` as the platform sent it.
    pub token_type: Option<String>,
    /// Granted scopes, space-separated.
    pub scope: Option<String>,
    /// Platform metadata from `fetch_profile`, with the handle under
    /// [`USERNAME_KEY`] (read it with [`username`](Self::username)).
    pub metadata: serde_json::Value,
    /// Lifecycle state.
    pub status: StoredStatus,
    /// The last refresh failure, as a user-safe message (never a secret).
    pub last_error: Option<String>,
    /// Refresh failures since the last success.
    pub refresh_failures: i32,
    /// Last refresh attempt.
    pub last_refresh_attempt_at: Option<DateTime<Utc>>,
    /// Last successful refresh.
    pub last_refresh_success_at: Option<DateTime<Utc>>,
    /// Optimistic concurrency version; every update increments it.
    pub version: i64,
    /// Current refresh lease holder.
    pub lease_owner: Option<String>,
    /// Current refresh lease end.
    pub lease_until: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last update time.
    pub updated_at: DateTime<Utc>,
}

/// The key of the stored metadata holding the account's handle: the service writes
/// [`Profile::username`](crate::Profile::username) there at every authorization.
pub const USERNAME_KEY: &str = "username";

/// The key of the stored metadata holding the account's other platform ids, a JSON array
/// of strings: ids a platform may name the account by in its webhooks (Instagram's
/// app-scoped user id beside the professional account id; a digest of a gateway's
/// connection id). [`TokenStore::find_account_by_alias`] finds an account by one.
pub const ALIASES_KEY: &str = "platform_aliases";

impl AccountRecord {
    /// The account's handle, as stored from [`Profile::username`](crate::Profile::username)
    /// at the last authorization (the `username` of the metadata, where rows stored before
    /// the service wrote it also keep it).
    pub fn username(&self) -> Option<&str> {
        self.metadata.get(USERNAME_KEY)?.as_str()
    }
}

/// An account to insert or, when `(provider, provider_account_id)` exists for the same
/// user, to update (see [`TokenStore::upsert_account`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NewAccount {
    /// The owning user.
    pub user_id: UserId,
    /// The platform.
    pub provider: ProviderId,
    /// The platform's account id.
    pub provider_account_id: String,
    /// Sealed access token.
    pub access_token: Option<SealedSecret>,
    /// Sealed refresh token.
    pub refresh_token: Option<SealedSecret>,
    /// Access token expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Refresh token expiry.
    pub refresh_expires_at: Option<DateTime<Utc>>,
    /// `token_type`.
    pub token_type: Option<String>,
    /// Granted scopes, space-separated.
    pub scope: Option<String>,
    /// Platform metadata, with the handle under [`USERNAME_KEY`].
    pub metadata: serde_json::Value,
    /// Now (creation or update time, and `token_issued_at`).
    pub now: DateTime<Utc>,
}

/// What [`TokenStore::upsert_account`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Upserted {
    /// A new row.
    Inserted(AccountRecord),
    /// The user's existing row for that platform account, with new tokens, scope and
    /// metadata, status `Active`, failures cleared, version incremented.
    Updated(AccountRecord),
}

impl Upserted {
    /// The stored record.
    pub fn record(&self) -> &AccountRecord {
        match self {
            Self::Inserted(r) | Self::Updated(r) => r,
        }
    }

    /// The stored record, by value.
    pub fn into_record(self) -> AccountRecord {
        match self {
            Self::Inserted(r) | Self::Updated(r) => r,
        }
    }
}

/// The SHA-256 of an OAuth state: pending authorizations are looked up by it, so a leaked
/// table gives no usable state.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateHash(pub [u8; 32]);

impl StateHash {
    /// Hashes a state.
    pub fn of(state: &str) -> Self {
        Self(Sha256::digest(state.as_bytes()).into())
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses lowercase or uppercase hex.
    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = hex::decode(s).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }
}

impl fmt::Debug for StateHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StateHash({})", &self.to_hex()[..12])
    }
}

/// A started connection waiting for its callback: the `oauth_pending_authorizations` row.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingAuthorization {
    /// SHA-256 of the state.
    pub state_hash: StateHash,
    /// The user who started it.
    pub user_id: UserId,
    /// The platform.
    pub provider: ProviderId,
    /// Sealed PKCE verifier.
    pub pkce_verifier: Option<SealedSecret>,
    /// Where the host sends the user after the callback.
    pub redirect_url: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// After this, the callback is refused.
    pub expires_at: DateTime<Utc>,
}

/// What an audit event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// `connect` started a flow.
    ConnectStarted,
    /// A callback connected a new account.
    Connected,
    /// A callback reconnected an existing account.
    Reauthorized,
    /// A callback was refused or failed.
    CallbackFailed,
    /// A token refresh.
    Refreshed,
    /// A failed token refresh.
    RefreshFailed,
    /// An account was disconnected.
    Disconnected,
    /// A disconnect the platform had to confirm failed there; the account was kept.
    DisconnectFailed,
    /// An API call found the grant dead at the platform; the account needs reconnecting.
    GrantRevoked,
    /// All of a user's data was deleted.
    UserDataDeleted,
    /// A callback failed after the code exchange (profile fetch, save), and the grant it
    /// had just obtained was revoked at the platform. The outcome is `success`, the
    /// revoke's error code, or `skipped: …` when revoking might have ended a stored
    /// connection ([`Provider::revoke_is_per_grant`](crate::Provider::revoke_is_per_grant)).
    OrphanRevoked,
    /// The platform reported the grant revoked or the session lost (a platform webhook);
    /// the outcome is `revoked: <event>` or `session_lost: <event>`.
    PlatformRevoked,
    /// The platform reported the connection working again (a platform webhook).
    PlatformRestored,
    /// The platform relayed the user's request to delete the account's data (a platform
    /// webhook); the account was deleted.
    PlatformDataDeleted,
}

impl AuditAction {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConnectStarted => "connect_started",
            Self::Connected => "connected",
            Self::Reauthorized => "reauthorized",
            Self::CallbackFailed => "callback_failed",
            Self::Refreshed => "refreshed",
            Self::RefreshFailed => "refresh_failed",
            Self::Disconnected => "disconnected",
            Self::DisconnectFailed => "disconnect_failed",
            Self::GrantRevoked => "grant_revoked",
            Self::UserDataDeleted => "user_data_deleted",
            Self::OrphanRevoked => "orphan_revoked",
            Self::PlatformRevoked => "platform_revoked",
            Self::PlatformRestored => "platform_restored",
            Self::PlatformDataDeleted => "platform_data_deleted",
        }
    }

    /// Parses the stored text.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::ConnectStarted,
            Self::Connected,
            Self::Reauthorized,
            Self::CallbackFailed,
            Self::Refreshed,
            Self::RefreshFailed,
            Self::Disconnected,
            Self::DisconnectFailed,
            Self::GrantRevoked,
            Self::UserDataDeleted,
            Self::OrphanRevoked,
            Self::PlatformRevoked,
            Self::PlatformRestored,
            Self::PlatformDataDeleted,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// An audit event to append. Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEvent {
    /// The user.
    pub user_id: UserId,
    /// The platform.
    pub provider: ProviderId,
    /// The platform account, when known.
    pub provider_account_id: Option<String>,
    /// What happened.
    pub action: AuditAction,
    /// `"success"` or a short failure reason (an error code, never a secret).
    pub outcome: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// The answer of [`TokenStore::append_audit_within_limit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitedAppend {
    /// The event was appended.
    Appended,
    /// The window was full; nothing was written. The times of the newest `limit` events
    /// in it, newest first.
    Refused(Vec<DateTime<Utc>>),
}

/// A stored audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Store-assigned id, increasing.
    pub id: i64,
    /// The event.
    pub event: NewAuditEvent,
}

/// What [`TokenStore::delete_user_data`] removed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeletedUserData {
    /// Accounts removed.
    pub accounts: u64,
    /// Pending authorizations removed.
    pub pending: u64,
    /// Audit events removed.
    pub audit_events: u64,
    /// The [`DataDeleted`](crate::ConnectionEventKind::DataDeleted) events recorded, one per
    /// account removed.
    pub events: Vec<ConnectionEvent>,
}

/// A refresh lease request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Who holds it (unique per worker and operation).
    pub owner: String,
    /// Now, by the caller's clock.
    pub now: DateTime<Utc>,
    /// When it lapses if not released.
    pub until: DateTime<Utc>,
}

/// Store errors, typed so the state machine can branch on them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A unique constraint was violated.
    #[error("unique constraint violated: {0}")]
    UniqueViolation(String),
    /// The row changed since it was read (optimistic `version` check failed).
    #[error("the account was changed by someone else (version conflict)")]
    VersionConflict,
    /// The row does not exist.
    #[error("not found")]
    NotFound,
    /// The platform account is connected to another user.
    #[error("the platform account is connected to another user")]
    OwnedByAnotherUser,
    /// The database could not be reached or the connection was lost.
    #[error("the store is unavailable: {message}")]
    Unavailable {
        /// What happened (no credentials).
        message: String,
        /// The cause.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A stored row cannot be read back.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Anything else the backend reported.
    #[error("store error: {message}")]
    Other {
        /// What happened.
        message: String,
        /// The cause.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

/// Persistence for the integrations service.
///
/// # Contract
/// Every sentence here has a case in the store conformance suite (`testing` module, feature
/// `testing`); an implementation is correct when that suite passes against it.
///
/// - `(provider, provider_account_id)` is unique across all users.
/// - [`upsert_account`](Self::upsert_account) inserts a new row, or updates the same
///   user's row for that platform account (tokens, expiry, token type, scope, metadata,
///   `status = Active`, failures and last error cleared, `token_issued_at = now`,
///   `version + 1`); a row owned by another user is left untouched and the call fails
///   with [`StoreError::OwnedByAnotherUser`].
/// - [`update_account`](Self::update_account) writes every mutable field of the record
///   when the stored `version` equals `record.version`, and returns the row with
///   `version + 1`; otherwise [`StoreError::VersionConflict`] (or `NotFound`). It never
///   changes the lease.
/// - [`take_pending`](Self::take_pending) returns a pending authorization once and never
///   again, atomically, even to concurrent callers; expired rows are returned too (the
///   caller checks `expires_at`) and are removed like the others.
/// - [`claim_for_refresh`](Self::claim_for_refresh) succeeds when the account has no lease,
///   its lease ended (`lease_until <= now`), or the same owner holds it; at most one owner
///   holds a live lease at any time, even under concurrent claims.
/// - [`claim_due`](Self::claim_due) leases up to `limit` `Active` accounts with
///   `expires_at <= before` and no live lease, soonest expiry first; two concurrent
///   callers never receive the same account.
/// - [`update_account_and_release`](Self::update_account_and_release) is
///   `update_account` followed by `release_lease(owner)`, as one step.
/// - [`append_audit_batch`](Self::append_audit_batch) appends the events in order, as
///   `append_audit` would one by one.
/// - [`delete_user_data`](Self::delete_user_data) removes every account, pending
///   authorization and audit event of the user, and nothing of other users.
/// - [`recent_audit_times`](Self::recent_audit_times) returns the times of the user's
///   events of one action at or after `since`, newest first, at most `limit`.
/// - [`count_accounts`](Self::count_accounts) counts every account once, by platform and
///   stored status, sorted by platform then status (`Active` first), with no group of
///   zero accounts.
#[async_trait]
pub trait TokenStore: Send + Sync + fmt::Debug {
    /// Inserts or updates an account (see the contract) and, in the same transaction,
    /// records its event: [`ConnectionEvent::of_account`] with id `event`, kind
    /// `Connected` for a new row or `Reauthorized` for an updated one, the stored record
    /// and `account.now`. Nothing is written when another user owns the account.
    async fn upsert_account(
        &self,
        account: NewAccount,
        event: EventId,
    ) -> Result<Upserted, StoreError>;
    /// One account by id.
    async fn get_account(&self, id: i64) -> Result<Option<AccountRecord>, StoreError>;
    /// One account by platform key.
    async fn find_account(
        &self,
        provider: &ProviderId,
        provider_account_id: &str,
    ) -> Result<Option<AccountRecord>, StoreError>;
    /// Every account of a user, ordered by provider then id.
    async fn list_accounts(&self, user_id: UserId) -> Result<Vec<AccountRecord>, StoreError>;
    /// Writes the mutable fields of `record` when its version still matches and, in the
    /// same transaction, records `events` (none are recorded when nothing is written).
    async fn update_account(
        &self,
        record: &AccountRecord,
        events: &[ConnectionEvent],
    ) -> Result<AccountRecord, StoreError>;
    /// Deletes an account and, in the same transaction, records `events`; `false` (and no
    /// event) when it did not exist.
    async fn delete_account(&self, id: i64, events: &[ConnectionEvent])
    -> Result<bool, StoreError>;
    /// Deletes all of a user's data and, in the same transaction, records one
    /// [`DataDeleted`](crate::ConnectionEventKind::DataDeleted) event per account removed
    /// ([`ConnectionEvent::of_account`] at `at`, with a random id). The user's earlier
    /// connection events stay until [`prune_events`](Self::prune_events) removes them:
    /// they hold ids, never tokens or names.
    async fn delete_user_data(
        &self,
        user_id: UserId,
        at: DateTime<Utc>,
    ) -> Result<DeletedUserData, StoreError>;

    /// Stores a pending authorization.
    async fn put_pending(&self, pending: PendingAuthorization) -> Result<(), StoreError>;
    /// Removes and returns the pending authorization for a state hash.
    async fn take_pending(
        &self,
        state_hash: &StateHash,
    ) -> Result<Option<PendingAuthorization>, StoreError>;
    /// Deletes pending authorizations that expired before `now`; returns how many.
    async fn purge_expired_pending(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Takes the refresh lease of one account; `None` when another owner holds a live one
    /// (or the account does not exist).
    async fn claim_for_refresh(
        &self,
        id: i64,
        lease: &Lease,
    ) -> Result<Option<AccountRecord>, StoreError>;
    /// Releases a lease held by `owner`; `false` when `owner` did not hold it.
    async fn release_lease(&self, id: i64, owner: &str) -> Result<bool, StoreError>;
    /// Leases up to `limit` accounts due for refresh before `before`.
    async fn claim_due(
        &self,
        before: DateTime<Utc>,
        limit: usize,
        lease: &Lease,
    ) -> Result<Vec<AccountRecord>, StoreError>;

    /// Writes like [`update_account`](Self::update_account) and, in the same step,
    /// releases the refresh lease when `owner` holds it. The returned row shows the lease
    /// as it is afterwards.
    ///
    /// The default makes the two calls; a database store overrides it with one statement,
    /// which is what the background refresher's throughput rests on.
    async fn update_account_and_release(
        &self,
        record: &AccountRecord,
        owner: &str,
        events: &[ConnectionEvent],
    ) -> Result<AccountRecord, StoreError> {
        let mut stored = self.update_account(record, events).await?;
        if self.release_lease(record.id, owner).await? {
            stored.lease_owner = None;
            stored.lease_until = None;
        }
        Ok(stored)
    }

    /// Appends an audit event.
    async fn append_audit(&self, event: NewAuditEvent) -> Result<(), StoreError>;

    /// Appends several audit events, in order (the default appends them one by one; a
    /// database store overrides it with one multi-row insert).
    async fn append_audit_batch(&self, events: Vec<NewAuditEvent>) -> Result<(), StoreError> {
        for event in events {
            self.append_audit(event).await?;
        }
        Ok(())
    }
    /// A user's audit events, newest first, at most `limit`.
    async fn list_audit(
        &self,
        user_id: UserId,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError>;

    /// The times of `user_id`'s audit events of `action` at or after `since`, newest first,
    /// at most `limit` (the connect rate limit counts `ConnectStarted` events with it, so
    /// that every instance sharing the store sees the same count).
    async fn recent_audit_times(
        &self,
        user_id: UserId,
        action: AuditAction,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DateTime<Utc>>, StoreError>;

    /// Appends `event` only if fewer than `limit` events of the same user and action are
    /// at or after `since`, **atomically**: concurrent callers, in every process sharing
    /// the store, append at most `limit` in a window between them (the connect rate limit
    /// rests on it). When refused, nothing is written and the answer carries the times of
    /// the newest `limit` events, newest first.
    ///
    /// The default counts with [`recent_audit_times`](Self::recent_audit_times) and then
    /// appends: correct for a store used by one caller at a time only; stores shared by
    /// concurrent callers override it (the built-in stores do).
    async fn append_audit_within_limit(
        &self,
        event: NewAuditEvent,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<LimitedAppend, StoreError> {
        let recent = self
            .recent_audit_times(event.user_id, event.action, since, limit)
            .await?;
        if recent.len() >= limit {
            return Ok(LimitedAppend::Refused(recent));
        }
        self.append_audit(event).await?;
        Ok(LimitedAppend::Appended)
    }

    /// How many accounts the store holds, by platform and stored status, and of those how
    /// many have an access token past its expiry at `now` (see [`AccountCount`]). For
    /// monitoring: one aggregate query, no row is read.
    async fn count_accounts(&self, now: DateTime<Utc>) -> Result<Vec<AccountCount>, StoreError>;

    /// The connection events after `after`, oldest first, at most `limit`. Positions
    /// increase in commit order: a reader that has seen position `p` never misses an
    /// event later committed below `p`.
    async fn events_after(
        &self,
        after: EventPosition,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// The position of the newest event ([`EventPosition::START`] when there is none):
    /// where a reader starts to hear only what comes next.
    ///
    /// The default pages through [`events_after`](Self::events_after); the built-in stores
    /// answer with one query.
    async fn last_event_position(&self) -> Result<EventPosition, StoreError> {
        let mut last = EventPosition::START;
        loop {
            let page = self.events_after(last, 1000).await?;
            match page.last() {
                Some(e) => last = e.position,
                None => return Ok(last),
            }
        }
    }

    /// Deletes the events recorded before `before`, with their deliveries; returns how
    /// many events.
    async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Waits until an event may have been recorded by any process sharing the store, or
    /// `timeout` passes. The default just sleeps (readers then poll); a store with a
    /// wake-up signal (PostgreSQL's `LISTEN/NOTIFY`) returns early.
    async fn wait_for_events(&self, timeout: std::time::Duration) {
        tokio::time::sleep(timeout).await;
    }

    /// Creates a pending delivery to `endpoint`, due at `now`, for each of up to `limit`
    /// events recorded after the endpoint's cursor, and moves the cursor past them (a new
    /// endpoint starts at the oldest event kept). Concurrent callers never create one
    /// delivery twice. Returns how many were created.
    async fn enqueue_deliveries(
        &self,
        endpoint: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<usize, StoreError>;

    /// Leases up to `limit` pending deliveries to `endpoint` that are due at `lease.now`,
    /// counting an attempt for each, oldest first, **at most one per account** (see
    /// [`ConnectionEvent::account_key`]): a delivery is claimable only when it is the
    /// oldest pending delivery of its account and no live lease holds it. Concurrent
    /// claimers (in any process) never hold one delivery at once while its lease lives.
    async fn claim_deliveries(
        &self,
        endpoint: &str,
        lease: &Lease,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// Records the outcome of an attempt held by `owner`; `false` (nothing written) when
    /// `owner` no longer holds the delivery's lease.
    async fn finish_delivery(
        &self,
        endpoint: &str,
        position: EventPosition,
        owner: &str,
        outcome: &DeliveryOutcome,
    ) -> Result<bool, StoreError>;

    /// Deliveries to `endpoint` in `status`, newest first, at most `limit`.
    async fn list_deliveries(
        &self,
        endpoint: &str,
        status: DeliveryStatus,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, StoreError>;

    /// The account of `provider` whose metadata lists `alias` under [`ALIASES_KEY`]
    /// (the oldest, should several). Used for platform webhooks, which are rare: a store
    /// may scan the platform's accounts.
    async fn find_account_by_alias(
        &self,
        provider: &ProviderId,
        alias: &str,
    ) -> Result<Option<AccountRecord>, StoreError>;

    /// The receipt of a platform event by its key, if one was written.
    async fn webhook_receipt(
        &self,
        provider: &ProviderId,
        key: &str,
    ) -> Result<Option<WebhookReceipt>, StoreError>;

    /// Writes a receipt unless one with the same provider and key exists; returns the
    /// stored receipt (this one, or the one already there) and whether this one was
    /// written. Concurrent callers with one key: exactly one writes.
    async fn insert_webhook_receipt(
        &self,
        receipt: WebhookReceipt,
    ) -> Result<(WebhookReceipt, bool), StoreError>;

    /// The receipt carrying a data-deletion confirmation code.
    async fn webhook_receipt_by_code(
        &self,
        code: &str,
    ) -> Result<Option<WebhookReceipt>, StoreError>;

    /// Deletes receipts received before `before`, except those with a confirmation code,
    /// which are deleted only when received before `codes_before`; returns how many.
    async fn prune_webhook_receipts(
        &self,
        before: DateTime<Utc>,
        codes_before: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Writes health rows ([`HealthMinute`](crate::health::HealthMinute)): each replaces
    /// the row of the same provider, minute and instance (a process writes its totals of
    /// a minute again as they grow).
    async fn save_health(&self, rows: &[crate::health::HealthMinute]) -> Result<(), StoreError>;

    /// The health rows of minutes at or after `since`, every instance's.
    async fn health_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<crate::health::HealthMinute>, StoreError>;

    /// Deletes the health rows of minutes before `before`; returns how many.
    async fn prune_health(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// A delivery leased by [`TokenStore::claim_deliveries`].
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The endpoint's name.
    pub endpoint: String,
    /// The event.
    pub event: StoredEvent,
    /// Attempts so far, this one included.
    pub attempts: u32,
}

/// The outcome of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The endpoint answered 2xx.
    Delivered {
        /// When.
        at: DateTime<Utc>,
    },
    /// The attempt failed; try again at `next_attempt_at`.
    Retry {
        /// When the next attempt is due.
        next_attempt_at: DateTime<Utc>,
        /// What went wrong (a status or transport error; never a secret).
        error: String,
    },
    /// The attempt failed and no other will be made.
    Failed {
        /// When.
        at: DateTime<Utc>,
        /// What went wrong.
        error: String,
    },
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Waiting for an attempt (or in one).
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every attempt failed.
    Failed,
}

impl DeliveryStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// The status of a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A delivery as [`TokenStore::list_deliveries`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// The endpoint's name.
    pub endpoint: String,
    /// The event's position.
    pub position: EventPosition,
    /// The event's id (the `webhook-id`).
    pub event_id: EventId,
    /// The event's account key.
    pub account_key: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: DateTime<Utc>,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// When it was delivered or given up.
    pub finished_at: Option<DateTime<Utc>>,
}

/// One group of [`TokenStore::count_accounts`]: the accounts of one platform in one stored
/// status.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccountCount {
    /// The platform.
    pub provider: ProviderId,
    /// The stored status.
    pub status: StoredStatus,
    /// How many accounts.
    pub accounts: u64,
    /// Of those, how many have an access token whose `expires_at` is at or before `now`
    /// (for `Active` accounts: waiting for a refresh, or unable to refresh).
    pub past_expiry: u64,
}

impl AccountCount {
    /// A group.
    pub fn new(
        provider: ProviderId,
        status: StoredStatus,
        accounts: u64,
        past_expiry: u64,
    ) -> Self {
        Self {
            provider,
            status,
            accounts,
            past_expiry,
        }
    }
}
