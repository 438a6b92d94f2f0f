//! [`DieselStore`] and its [`TokenStore`] implementation.

use crate::connect::{self, BackendKind, SqliteConn, StoreOptions, Target};
use crate::error::{self, Error, Result};
use crate::group_commit::{Next, QueuedWrite, WriteQueue};
use crate::models::{
    self, AccountChanges, AccountRow, AuditRow, EventColumns, NewAccountRow, NewAuditRow,
    PendingRow, ReleasedColumns, WrittenId, records,
};
use crate::outbox::{self, ClaimedRow, DeliveryRow, EventRow, NewDeliveryRow, OutboxConn};
use crate::receipts::{HealthRow, ReceiptRow};
use crate::schema::connection_events::dsl as ce;
use crate::schema::integration_audit_events::dsl as ev;
use crate::schema::oauth_accounts::dsl as acc;
use crate::schema::oauth_pending_authorizations::dsl as pen;
use crate::schema::platform_health_minutes::dsl as ph;
use crate::schema::platform_webhook_receipts::dsl as wr;
use crate::schema::webhook_cursors::dsl as wc;
use crate::schema::webhook_deliveries::dsl as wd;
use crate::types::{Ts, UtcTimestamp};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};
use diesel::upsert::excluded;
use diesel_async::pooled_connection::deadpool::{Pool, PoolError};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use integrations_core::{
    AccountCount, AccountRecord, AuditAction, AuditEvent, ConnectionEvent, ConnectionEventKind,
    DeletedUserData, Delivery, DeliveryOutcome, DeliveryRecord, DeliveryStatus, EventId,
    EventPosition, Lease, LimitedAppend, NewAccount, NewAuditEvent, PendingAuthorization,
    ProviderId, StateHash, StoreError, StoredEvent, StoredStatus, TokenStore, Upserted, UserId,
    WebhookReceipt,
};
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A [`TokenStore`] on PostgreSQL or SQLite, chosen by the URL.
///
/// Cloning is cheap: clones share the connection pool.
#[derive(Clone)]
pub struct DieselStore {
    inner: Arc<Inner>,
}

pub(crate) enum Backend {
    Postgres(Pool<AsyncPgConnection>),
    Sqlite(Pool<SqliteConn>),
}

pub(crate) struct Inner {
    pub(crate) backend: Backend,
    schema: Option<String>,
    acquire_timeout: Duration,
    /// SQLite has one writer at a time; writers of this store queue here instead of
    /// spinning in `busy_timeout` (other processes still rely on `busy_timeout`).
    sqlite_writes: tokio::sync::Mutex<()>,
    /// Refresh writes waiting to be committed together.
    writes: WriteQueue,
    /// Woken by PostgreSQL's `NOTIFY` when any process records events (the listener
    /// starts with the first `wait_for_events`).
    events_notified: Arc<tokio::sync::Notify>,
    listener: std::sync::OnceLock<()>,
}

impl Inner {
    /// Waits for a pooled connection at most `acquire_timeout`.
    pub(crate) async fn acquire<T>(
        &self,
        get: impl std::future::Future<Output = Result<T, PoolError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.acquire_timeout, get).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(error::pool(e)),
            Err(_) => Err(error::acquire_timeout(self.acquire_timeout)),
        }
    }
}

impl fmt::Debug for DieselStore {
    /// Shows the backend and pool state, never the URL.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (backend, status) = match &self.inner.backend {
            Backend::Postgres(p) => (BackendKind::Postgres, p.status()),
            Backend::Sqlite(p) => (BackendKind::Sqlite, p.status()),
        };
        f.debug_struct("DieselStore")
            .field("backend", &backend)
            .field("schema", &self.inner.schema)
            .field("pool_size", &status.size)
            .field("pool_max_size", &status.max_size)
            .finish()
    }
}

/// Runs `$body` with `$conn: &mut <backend connection>` from the pool.
macro_rules! with_conn {
    ($store:expr, |$conn:ident| $body:expr) => {{
        let inner = &$store.inner;
        match &inner.backend {
            Backend::Postgres(pool) => {
                let mut obj = inner.acquire(pool.get()).await?;
                let $conn: &mut AsyncPgConnection = &mut obj;
                $body
            }
            Backend::Sqlite(pool) => {
                let mut obj = inner.acquire(pool.get()).await?;
                let $conn: &mut SqliteConn = &mut obj;
                $body
            }
        }
    }};
}

/// Like `with_conn!`, for writes: on SQLite, writers of this store take turns.
macro_rules! with_write_conn {
    ($store:expr, |$conn:ident| $body:expr) => {{
        let inner = &$store.inner;
        match &inner.backend {
            Backend::Postgres(pool) => {
                let mut obj = inner.acquire(pool.get()).await?;
                let $conn: &mut AsyncPgConnection = &mut obj;
                $body
            }
            Backend::Sqlite(pool) => {
                let _turn = inner.sqlite_writes.lock().await;
                let mut obj = inner.acquire(pool.get()).await?;
                let $conn: &mut SqliteConn = &mut obj;
                $body
            }
        }
    }};
}

/// Runs `$body` (returning `Result<_, diesel::result::Error>`) in a transaction:
/// a plain one on PostgreSQL, `BEGIN IMMEDIATE` on SQLite (the write lock is taken up
/// front, so a read-then-write transaction never fails to upgrade).
macro_rules! in_transaction {
    ($store:expr, |$conn:ident| $body:block) => {{
        let inner = &$store.inner;
        match &inner.backend {
            Backend::Postgres(pool) => {
                let mut obj = inner.acquire(pool.get()).await?;
                let conn: &mut AsyncPgConnection = &mut obj;
                conn.transaction::<_, diesel::result::Error, _>(
                    async |$conn: &mut AsyncPgConnection| $body,
                )
                .await
                .map_err(error::db)
            }
            Backend::Sqlite(pool) => {
                let _turn = inner.sqlite_writes.lock().await;
                let mut obj = inner.acquire(pool.get()).await?;
                let conn: &mut SqliteConn = &mut obj;
                conn.immediate_transaction::<_, diesel::result::Error, _>(
                    async |$conn: &mut SqliteConn| $body,
                )
                .await
                .map_err(error::db)
            }
        }
    }};
}

/// The refresh write: `$record`'s changes at the next version, the lease released, only
/// where the row is still at `$record.version` and leased to `$owner`.
macro_rules! released_update {
    ($record:expr, $owner:expr, $changes:expr) => {
        diesel::update(
            acc::oauth_accounts
                .filter(acc::id.eq($record.id))
                .filter(acc::version.eq($record.version))
                .filter(acc::lease_owner.eq($owner)),
        )
        .set((
            $changes,
            acc::version.eq(acc::version + 1),
            acc::lease_owner.eq(None::<String>),
            acc::lease_until.eq(None::<Ts>),
        ))
    };
}

impl DieselStore {
    /// Connects with [`StoreOptions::default`] (migrations applied).
    ///
    /// `url` is `postgres://...` / `postgresql://...`, `sqlite://PATH` (the file and its
    /// missing parent directories are created; a relative path is relative to the
    /// working directory) or `sqlite::memory:`. Fails with [`Error::InvalidUrl`] for
    /// anything else, with [`Error::SqliteFile`] naming the path when a SQLite file cannot
    /// be created or opened, and with [`StoreError::Unavailable`] (inside
    /// [`Error::Store`]) when the database cannot be reached.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, StoreOptions::default()).await
    }

    /// Connects with explicit options; see [`connect`](Self::connect).
    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<Self> {
        if options.max_connections == 0 {
            return Err(Error::InvalidOption(
                "max_connections must be at least 1".into(),
            ));
        }
        if let Some(schema) = &options.schema
            && (schema.is_empty() || schema.len() > 63)
        {
            return Err(Error::InvalidOption(
                "schema must be 1 to 63 bytes long".into(),
            ));
        }
        let target = Target::parse(url)?;
        let backend = match &target {
            Target::Postgres(url) => Backend::Postgres(connect::pg_pool(url, &options)?),
            Target::SqliteFile(_) | Target::SqliteMemory => {
                if options.schema.is_some() {
                    return Err(Error::InvalidOption("schema is a PostgreSQL option".into()));
                }
                if let Target::SqliteFile(path) = &target {
                    connect::prepare_sqlite_file(path)?;
                }
                Backend::Sqlite(connect::sqlite_pool(&target, &options)?)
            }
        };
        let store = Self {
            inner: Arc::new(Inner {
                backend,
                schema: options.schema.clone(),
                acquire_timeout: options.acquire_timeout,
                sqlite_writes: tokio::sync::Mutex::new(()),
                writes: WriteQueue::default(),
                events_notified: Arc::new(tokio::sync::Notify::new()),
                listener: std::sync::OnceLock::new(),
            }),
        };
        if options.migrate {
            store.migrate().await?;
        } else {
            // Fail now, not at the first request, when the database is unreachable.
            store.ping().await?;
        }
        tracing::debug!(store = ?store, "connected");
        Ok(store)
    }

    /// Applies the pending embedded migrations ([`POSTGRES_MIGRATIONS`] or
    /// [`SQLITE_MIGRATIONS`]); returns how many were applied. Safe to call on every start
    /// and from several processes at once (PostgreSQL: under an advisory lock; SQLite:
    /// under the database's write lock).
    ///
    /// [`POSTGRES_MIGRATIONS`]: crate::POSTGRES_MIGRATIONS
    /// [`SQLITE_MIGRATIONS`]: crate::SQLITE_MIGRATIONS
    pub async fn migrate(&self) -> Result<usize> {
        let inner = &self.inner;
        let applied = match &inner.backend {
            Backend::Postgres(pool) => {
                let conn = inner.acquire(pool.get()).await?;
                connect::migrate_pg(conn, inner.schema.as_deref()).await?
            }
            Backend::Sqlite(pool) => {
                let _turn = inner.sqlite_writes.lock().await;
                let mut conn = inner.acquire(pool.get()).await?;
                connect::migrate_sqlite(&mut conn).await?
            }
        };
        if applied > 0 {
            tracing::info!(applied, "applied database migrations");
        }
        Ok(applied)
    }

    /// Checks that a connection can be had and answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        use diesel_async::SimpleAsyncConnection;
        with_conn!(self, |conn| conn
            .batch_execute("SELECT 1")
            .await
            .map_err(error::db))
    }

    /// Which database this store talks to.
    pub fn backend(&self) -> BackendKind {
        match self.inner.backend {
            Backend::Postgres(_) => BackendKind::Postgres,
            Backend::Sqlite(_) => BackendKind::Sqlite,
        }
    }

    /// Accounts with `id > after`, by id, at most `limit` (for maintenance walks).
    pub(crate) async fn accounts_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AccountRecord>, StoreError> {
        let rows: Vec<AccountRow> = with_conn!(self, |conn| acc::oauth_accounts
            .filter(acc::id.gt(after))
            .order(acc::id.asc())
            .limit(limit)
            .select(AccountRow::as_select())
            .load(conn)
            .await
            .map_err(error::db))?;
        records(rows)
    }

    /// Writes `record` and releases `owner`'s lease in one statement, committed together
    /// with the refresh writes that queue up meanwhile; `false` when the row is no longer
    /// at `record.version` or no longer leased to `owner` (nothing written).
    async fn write_released(
        &self,
        record: &AccountRecord,
        owner: &str,
        events: &[ConnectionEvent],
    ) -> Result<bool, StoreError> {
        let queue = &self.inner.writes;
        let mut ticket = queue.submit(record.clone(), owner.to_owned(), events.to_vec());
        loop {
            match queue.next(&mut ticket).await {
                Next::Done(result) => return result,
                Next::Flush(batch, turn) => {
                    // In a task of its own: a caller that gives up waiting does not
                    // abandon the other writes of its batch.
                    let store = self.clone();
                    tokio::spawn(async move {
                        store.flush_released(batch).await;
                        drop(turn);
                    });
                }
            }
        }
    }

    /// Writes a batch and answers every write in it.
    async fn flush_released(&self, batch: Vec<QueuedWrite>) {
        // Two writes of one row go one after the other, as they would unbatched (the
        // later one then finds the version the earlier one left).
        let mut seen = HashSet::with_capacity(batch.len());
        let (distinct, repeats): (Vec<_>, Vec<_>) =
            batch.into_iter().partition(|w| seen.insert(w.record.id));
        self.flush_distinct(distinct).await;
        for w in repeats {
            let result = self
                .write_released_alone(&w.record, &w.owner, &w.events)
                .await;
            let _ = w.done.send(result);
        }
    }

    /// Writes a batch of writes to distinct rows and answers every write in it.
    async fn flush_distinct(&self, batch: Vec<QueuedWrite>) {
        if batch.is_empty() {
            return;
        }
        let (items, senders): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .map(|w| ((w.record, w.owner, w.events), w.done))
            .unzip();
        let items = Arc::new(items);
        let results: Vec<Result<bool, StoreError>> = if items.len() == 1 {
            let (record, owner, events) = &items[0];
            vec![self.write_released_alone(record, owner, events).await]
        } else {
            match self.write_released_batch(items.clone()).await {
                Ok(written) => written.into_iter().map(Ok).collect(),
                Err(StoreError::Unavailable { message, .. }) => items
                    .iter()
                    .map(|_| {
                        Err(StoreError::Unavailable {
                            message: message.clone(),
                            source: None,
                        })
                    })
                    .collect(),
                Err(_) => {
                    // One row's statement failed and took the transaction with it: write
                    // each alone so that only that row reports the error.
                    let mut results = Vec::with_capacity(items.len());
                    for (record, owner, events) in items.iter() {
                        results.push(self.write_released_alone(record, owner, events).await);
                    }
                    results
                }
            }
        };
        for (done, result) in senders.into_iter().zip(results) {
            // A caller that stopped waiting has nobody to tell.
            let _ = done.send(result);
        }
    }

    /// One refresh write, in its own (autocommit) statement.
    async fn write_released_alone(
        &self,
        record: &AccountRecord,
        owner: &str,
        events: &[ConnectionEvent],
    ) -> Result<bool, StoreError> {
        let changes = AccountChanges::new(record);
        if events.is_empty() {
            let n = with_write_conn!(self, |conn| released_update!(record, owner, &changes)
                .execute(conn)
                .await
                .map_err(error::db))?;
            return Ok(n == 1);
        }
        // With events: one statement on PostgreSQL, one blocking transaction on SQLite.
        let one = Arc::new(vec![(record.clone(), owner.to_owned(), events.to_vec())]);
        if let Ok(written) = self.write_released_batch(one).await {
            return Ok(written.into_iter().next().unwrap_or(false));
        }
        // The batch statement failed: the same in a plain transaction, for its error.
        in_transaction!(self, |c| {
            c.lock_outbox().await?;
            let n = released_update!(record, owner, &changes).execute(c).await?;
            if n == 1 {
                c.record_events(events).await?;
            }
            Ok(n == 1)
        })
    }

    /// Several refresh writes (to distinct rows) in one transaction; whether each row was
    /// written.
    async fn write_released_batch(
        &self,
        items: Arc<Vec<(AccountRecord, String, Vec<ConnectionEvent>)>>,
    ) -> Result<Vec<bool>, StoreError> {
        let inner = &self.inner;
        match &inner.backend {
            Backend::Postgres(pool) => {
                // One statement over arrays of the new values: one round trip, one
                // commit, and the same prepared statement whatever the batch size.
                let mut cols = ReleasedColumns::default();
                for (record, owner, _) in items.iter() {
                    cols.push(record, owner);
                }
                let mut obj = inner.acquire(pool.get()).await?;
                let conn: &mut AsyncPgConnection = &mut obj;
                let has_events = items.iter().any(|(_, _, events)| !events.is_empty());
                let written: Vec<WrittenId> = if has_events {
                    // The events of the rows written, in the same statement.
                    let mut events = EventColumns::default();
                    for (record, _, record_events) in items.iter() {
                        events.push(record.id, record_events);
                    }
                    cols.query_with_events(events, outbox::OUTBOX_LOCK_KEY)
                        .load(conn)
                        .await
                        .map_err(error::db)?
                } else {
                    cols.query().load(conn).await.map_err(error::db)?
                };
                let written: HashSet<i64> = written.into_iter().map(|w| w.id).collect();
                Ok(items
                    .iter()
                    .map(|(record, _, _)| written.contains(&record.id))
                    .collect())
            }
            Backend::Sqlite(pool) => {
                let _turn = inner.sqlite_writes.lock().await;
                let mut obj = inner.acquire(pool.get()).await?;
                let conn: &mut SqliteConn = &mut obj;
                // The whole transaction in one blocking call.
                conn.spawn_blocking(move |c| {
                    c.immediate_transaction(|c| {
                        items
                            .iter()
                            .map(|(record, owner, events)| {
                                let changes = AccountChanges::new(record);
                                let n = diesel::RunQueryDsl::execute(
                                    released_update!(record, owner.as_str(), &changes),
                                    c,
                                )?;
                                if n == 1 {
                                    outbox::record_events_sqlite(c, events)?;
                                }
                                Ok(n == 1)
                            })
                            .collect()
                    })
                })
                .await
                .map_err(error::db)
            }
        }
    }

    /// `(state_hash, provider, sealed verifier)` of every pending authorization that has a
    /// verifier.
    pub(crate) async fn pending_verifiers(
        &self,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        let rows: Vec<(String, String, Option<String>)> = with_conn!(self, |conn| {
            pen::oauth_pending_authorizations
                .filter(pen::pkce_verifier.is_not_null())
                .select((pen::state_hash, pen::provider, pen::pkce_verifier))
                .load(conn)
                .await
                .map_err(error::db)
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|(h, p, v)| v.map(|v| (h, p, v)))
            .collect())
    }

    /// Replaces a pending authorization's sealed verifier when it still is `old`; `false`
    /// when the row was taken or changed meanwhile.
    pub(crate) async fn replace_pending_verifier(
        &self,
        state_hash: &str,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let n = with_write_conn!(self, |conn| diesel::update(
            pen::oauth_pending_authorizations
                .filter(pen::state_hash.eq(state_hash))
                .filter(pen::pkce_verifier.eq(old))
        )
        .set(pen::pkce_verifier.eq(new))
        .execute(conn)
        .await
        .map_err(error::db))?;
        Ok(n == 1)
    }

    async fn account_exists(&self, id: i64) -> Result<bool, StoreError> {
        let n: i64 = with_conn!(self, |conn| acc::oauth_accounts
            .filter(acc::id.eq(id))
            .count()
            .get_result(conn)
            .await
            .map_err(error::db))?;
        Ok(n > 0)
    }
}

fn limit_of(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn sort_by_expiry(mut rows: Vec<AccountRecord>) -> Vec<AccountRecord> {
    rows.sort_by_key(|r| (r.expires_at, r.id));
    rows
}

#[async_trait]
impl TokenStore for DieselStore {
    async fn upsert_account(
        &self,
        account: NewAccount,
        event: EventId,
    ) -> Result<Upserted, StoreError> {
        let row = NewAccountRow::new(&account);
        let now = account.now;
        let stored: Option<Upserted> = in_transaction!(self, |conn| {
            // `filter` on an upsert is `ON CONFLICT ... DO UPDATE ... WHERE`.
            use diesel::query_dsl::methods::FilterDsl;
            conn.lock_outbox().await?;
            let stored: Option<AccountRow> = diesel::insert_into(acc::oauth_accounts)
                .values(&row)
                .on_conflict((acc::provider, acc::provider_account_id))
                .do_update()
                .set((
                    acc::access_token.eq(excluded(acc::access_token)),
                    acc::refresh_token.eq(excluded(acc::refresh_token)),
                    acc::expires_at.eq(excluded(acc::expires_at)),
                    acc::refresh_expires_at.eq(excluded(acc::refresh_expires_at)),
                    acc::token_issued_at.eq(excluded(acc::token_issued_at)),
                    acc::token_type.eq(excluded(acc::token_type)),
                    acc::scope.eq(excluded(acc::scope)),
                    acc::metadata.eq(excluded(acc::metadata)),
                    acc::status.eq(StoredStatus::Active.as_str()),
                    acc::last_error.eq(None::<String>),
                    acc::refresh_failures.eq(0),
                    acc::version.eq(acc::version + 1),
                    acc::updated_at.eq(excluded(acc::updated_at)),
                ))
                // Another user's row is left untouched: the statement returns no row.
                .filter(acc::user_id.eq(excluded(acc::user_id)))
                .returning(AccountRow::as_returning())
                .get_result(conn)
                .await
                .optional()?;
            let Some(row) = stored else {
                return Ok(None);
            };
            // A fresh row starts at version 1; an update makes it at least 2.
            let inserted = row.version == 1;
            let record = row
                .into_record()
                .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))?;
            let kind = if inserted {
                ConnectionEventKind::Connected
            } else {
                ConnectionEventKind::Reauthorized
            };
            let event = ConnectionEvent::of_account(kind, &record, now).with_id(event);
            conn.record_events(std::slice::from_ref(&event)).await?;
            Ok(Some(if inserted {
                Upserted::Inserted(record)
            } else {
                Upserted::Updated(record)
            }))
        })?;
        stored.ok_or(StoreError::OwnedByAnotherUser)
    }

    async fn get_account(&self, id: i64) -> Result<Option<AccountRecord>, StoreError> {
        let row: Option<AccountRow> = with_conn!(self, |conn| acc::oauth_accounts
            .filter(acc::id.eq(id))
            .select(AccountRow::as_select())
            .first(conn)
            .await
            .optional()
            .map_err(error::db))?;
        row.map(AccountRow::into_record).transpose()
    }

    async fn find_account(
        &self,
        provider: &ProviderId,
        provider_account_id: &str,
    ) -> Result<Option<AccountRecord>, StoreError> {
        let row: Option<AccountRow> = with_conn!(self, |conn| acc::oauth_accounts
            .filter(acc::provider.eq(provider.as_str()))
            .filter(acc::provider_account_id.eq(provider_account_id))
            .select(AccountRow::as_select())
            .first(conn)
            .await
            .optional()
            .map_err(error::db))?;
        row.map(AccountRow::into_record).transpose()
    }

    async fn list_accounts(&self, user_id: UserId) -> Result<Vec<AccountRecord>, StoreError> {
        let rows: Vec<AccountRow> = with_conn!(self, |conn| acc::oauth_accounts
            .filter(acc::user_id.eq(user_id.0))
            .order((acc::provider.asc(), acc::id.asc()))
            .select(AccountRow::as_select())
            .load(conn)
            .await
            .map_err(error::db))?;
        records(rows)
    }

    async fn update_account(
        &self,
        record: &AccountRecord,
        events: &[ConnectionEvent],
    ) -> Result<AccountRecord, StoreError> {
        let changes = AccountChanges::new(record);
        let row: Option<AccountRow> = in_transaction!(self, |conn| {
            if !events.is_empty() {
                conn.lock_outbox().await?;
            }
            let row = diesel::update(
                acc::oauth_accounts
                    .filter(acc::id.eq(record.id))
                    .filter(acc::version.eq(record.version)),
            )
            .set((&changes, acc::version.eq(acc::version + 1)))
            .returning(AccountRow::as_returning())
            .get_result(conn)
            .await
            .optional()?;
            if row.is_some() {
                conn.record_events(events).await?;
            }
            Ok(row)
        })?;
        match row {
            Some(row) => row.into_record(),
            None if self.account_exists(record.id).await? => Err(StoreError::VersionConflict),
            None => Err(StoreError::NotFound),
        }
    }

    async fn update_account_and_release(
        &self,
        record: &AccountRecord,
        owner: &str,
        events: &[ConnectionEvent],
    ) -> Result<AccountRecord, StoreError> {
        // One statement when `owner` holds the lease (the refresher's case), committed
        // together with the writes queued meanwhile (see `group_commit`); otherwise the
        // two-step default, which also tells a version conflict from a missing row. The
        // row written is `record` itself (the version check guarantees nothing else
        // changed it), so it is returned from memory instead of read back.
        let written = self.write_released(record, owner, events).await?;
        let row = written.then(|| stored_after_update(record));
        match row {
            Some(stored) => Ok(stored),
            None => {
                let mut stored = self.update_account(record, events).await?;
                if self.release_lease(record.id, owner).await? {
                    stored.lease_owner = None;
                    stored.lease_until = None;
                }
                Ok(stored)
            }
        }
    }

    async fn delete_account(
        &self,
        id: i64,
        events: &[ConnectionEvent],
    ) -> Result<bool, StoreError> {
        let n = in_transaction!(self, |conn| {
            if !events.is_empty() {
                conn.lock_outbox().await?;
            }
            let n = diesel::delete(acc::oauth_accounts.filter(acc::id.eq(id)))
                .execute(conn)
                .await?;
            if n > 0 {
                conn.record_events(events).await?;
            }
            Ok(n)
        })?;
        Ok(n > 0)
    }

    async fn delete_user_data(
        &self,
        user_id: UserId,
        at: DateTime<Utc>,
    ) -> Result<DeletedUserData, StoreError> {
        let uid = user_id.0;
        let (accounts, pending, audit_events, events) = in_transaction!(self, |c| {
            c.lock_outbox().await?;
            let rows: Vec<AccountRow> =
                diesel::delete(acc::oauth_accounts.filter(acc::user_id.eq(uid)))
                    .returning(AccountRow::as_returning())
                    .get_results(c)
                    .await?;
            let accounts = rows.len();
            let records = records(rows)
                .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))?;
            let events: Vec<ConnectionEvent> = records
                .iter()
                .map(|r| ConnectionEvent::of_account(ConnectionEventKind::DataDeleted, r, at))
                .collect();
            c.record_events(&events).await?;
            let pending =
                diesel::delete(pen::oauth_pending_authorizations.filter(pen::user_id.eq(uid)))
                    .execute(c)
                    .await?;
            let audit = diesel::delete(ev::integration_audit_events.filter(ev::user_id.eq(uid)))
                .execute(c)
                .await?;
            Ok((accounts, pending, audit, events))
        })?;
        Ok(DeletedUserData {
            accounts: accounts as u64,
            pending: pending as u64,
            audit_events: audit_events as u64,
            events,
        })
    }

    async fn put_pending(&self, pending: PendingAuthorization) -> Result<(), StoreError> {
        let row = PendingRow::new(pending);
        with_write_conn!(self, |conn| diesel::insert_into(
            pen::oauth_pending_authorizations
        )
        .values(&row)
        .execute(conn)
        .await
        .map_err(error::db))?;
        Ok(())
    }

    async fn take_pending(
        &self,
        state_hash: &StateHash,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let key = state_hash.to_hex();
        // One `DELETE ... RETURNING`: of concurrent callers, exactly one gets the row.
        let row: Option<PendingRow> = with_write_conn!(self, |conn| diesel::delete(
            pen::oauth_pending_authorizations.filter(pen::state_hash.eq(&key))
        )
        .returning(PendingRow::as_returning())
        .get_result(conn)
        .await
        .optional()
        .map_err(error::db))?;
        row.map(PendingRow::into_pending).transpose()
    }

    async fn purge_expired_pending(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let now = Ts::new(now);
        let n = with_write_conn!(self, |conn| diesel::delete(
            pen::oauth_pending_authorizations.filter(pen::expires_at.lt(now))
        )
        .execute(conn)
        .await
        .map_err(error::db))?;
        Ok(n as u64)
    }

    async fn claim_for_refresh(
        &self,
        id: i64,
        lease: &Lease,
    ) -> Result<Option<AccountRecord>, StoreError> {
        let now = Ts::new(lease.now);
        let until = Ts::new(lease.until);
        let owner = lease.owner.as_str();
        // One conditional UPDATE: the row lock (PostgreSQL) or the write lock (SQLite)
        // makes concurrent claims see each other's lease.
        let row: Option<AccountRow> = with_write_conn!(self, |conn| diesel::update(
            acc::oauth_accounts.filter(acc::id.eq(id)).filter(
                acc::lease_until
                    .is_null()
                    .or(acc::lease_until.le(now))
                    .or(acc::lease_owner.eq(owner))
            )
        )
        .set((acc::lease_owner.eq(owner), acc::lease_until.eq(until)))
        .returning(AccountRow::as_returning())
        .get_result(conn)
        .await
        .optional()
        .map_err(error::db))?;
        row.map(AccountRow::into_record).transpose()
    }

    async fn release_lease(&self, id: i64, owner: &str) -> Result<bool, StoreError> {
        let n = with_write_conn!(self, |conn| diesel::update(
            acc::oauth_accounts
                .filter(acc::id.eq(id))
                .filter(acc::lease_owner.eq(owner))
        )
        .set((
            acc::lease_owner.eq(None::<String>),
            acc::lease_until.eq(None::<Ts>)
        ))
        .execute(conn)
        .await
        .map_err(error::db))?;
        Ok(n > 0)
    }

    async fn claim_due(
        &self,
        before: DateTime<Utc>,
        limit: usize,
        lease: &Lease,
    ) -> Result<Vec<AccountRecord>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let before = Ts::new(before);
        let now = Ts::new(lease.now);
        let until = Ts::new(lease.until);
        let owner = lease.owner.as_str();
        let limit = limit_of(limit);
        let inner = &self.inner;
        // `status = 'active'` is literal SQL so the planner matches the partial index.
        let rows: Vec<AccountRow> = match &inner.backend {
            Backend::Postgres(pool) => {
                let mut obj = inner.acquire(pool.get()).await?;
                let conn: &mut AsyncPgConnection = &mut obj;
                conn.transaction::<_, diesel::result::Error, _>(
                    async |c: &mut AsyncPgConnection| {
                        let ids: Vec<i64> = acc::oauth_accounts
                            .select(acc::id)
                            .filter(sql::<Bool>("status = 'active'"))
                            .filter(acc::expires_at.le(before))
                            .filter(acc::lease_until.is_null().or(acc::lease_until.le(now)))
                            .order((acc::expires_at.asc(), acc::id.asc()))
                            .limit(limit)
                            .for_update()
                            .skip_locked()
                            .load(c)
                            .await?;
                        if ids.is_empty() {
                            return Ok(Vec::new());
                        }
                        diesel::update(acc::oauth_accounts.filter(acc::id.eq_any(&ids)))
                            .set((acc::lease_owner.eq(owner), acc::lease_until.eq(until)))
                            .returning(AccountRow::as_returning())
                            .load(c)
                            .await
                    },
                )
                .await
                .map_err(error::db)?
            }
            Backend::Sqlite(pool) => {
                let _turn = inner.sqlite_writes.lock().await;
                let mut obj = inner.acquire(pool.get()).await?;
                let conn: &mut SqliteConn = &mut obj;
                conn.immediate_transaction::<_, diesel::result::Error, _>(
                    async |c: &mut SqliteConn| {
                        let ids: Vec<i64> = acc::oauth_accounts
                            .select(acc::id)
                            .filter(sql::<Bool>("status = 'active'"))
                            .filter(acc::expires_at.le(before))
                            .filter(acc::lease_until.is_null().or(acc::lease_until.le(now)))
                            .order((acc::expires_at.asc(), acc::id.asc()))
                            .limit(limit)
                            .load(c)
                            .await?;
                        if ids.is_empty() {
                            return Ok(Vec::new());
                        }
                        diesel::update(acc::oauth_accounts.filter(acc::id.eq_any(&ids)))
                            .set((acc::lease_owner.eq(owner), acc::lease_until.eq(until)))
                            .returning(AccountRow::as_returning())
                            .load(c)
                            .await
                    },
                )
                .await
                .map_err(error::db)?
            }
        };
        Ok(sort_by_expiry(records(rows)?))
    }

    async fn append_audit(&self, event: NewAuditEvent) -> Result<(), StoreError> {
        let row = NewAuditRow::new(&event);
        with_write_conn!(self, |conn| diesel::insert_into(
            ev::integration_audit_events
        )
        .values(&row)
        .execute(conn)
        .await
        .map_err(error::db))?;
        Ok(())
    }

    async fn append_audit_batch(&self, events: Vec<NewAuditEvent>) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let inner = &self.inner;
        match &inner.backend {
            Backend::Postgres(pool) => {
                // Multi-row inserts, well under PostgreSQL's bind-parameter limit (six a
                // row).
                let mut obj = inner.acquire(pool.get()).await?;
                let conn: &mut AsyncPgConnection = &mut obj;
                for chunk in events.chunks(1000) {
                    let rows: Vec<NewAuditRow<'_>> = chunk.iter().map(NewAuditRow::new).collect();
                    diesel::insert_into(ev::integration_audit_events)
                        .values(&rows)
                        .execute(conn)
                        .await
                        .map_err(error::db)?;
                }
                Ok(())
            }
            Backend::Sqlite(_) => {
                // SQLite's multi-row insert cannot take the optional account column, and
                // what costs there is the commit: one transaction for the batch.
                in_transaction!(self, |c| {
                    for event in &events {
                        diesel::insert_into(ev::integration_audit_events)
                            .values(&NewAuditRow::new(event))
                            .execute(c)
                            .await?;
                    }
                    Ok(())
                })
            }
        }
    }

    async fn list_audit(
        &self,
        user_id: UserId,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let limit = limit_of(limit);
        let rows: Vec<AuditRow> = with_conn!(self, |conn| ev::integration_audit_events
            .filter(ev::user_id.eq(user_id.0))
            .order(ev::id.desc())
            .limit(limit)
            .select(AuditRow::as_select())
            .load(conn)
            .await
            .map_err(error::db))?;
        rows.into_iter().map(AuditRow::into_event).collect()
    }

    async fn append_audit_within_limit(
        &self,
        event: NewAuditEvent,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<LimitedAppend, StoreError> {
        let row = NewAuditRow::new(&event);
        let since = Ts::new(since);
        let count_limit = limit_of(limit);
        let (user, action) = (event.user_id.0, event.action.as_str());
        // Count, then append only under the limit, in one transaction that no other
        // caller for this user and action can interleave with.
        macro_rules! count_then_append {
            ($c:ident) => {{
                let times: Vec<Ts> = ev::integration_audit_events
                    .filter(ev::user_id.eq(user))
                    .filter(ev::action.eq(action))
                    .filter(ev::at.ge(since))
                    .order(ev::at.desc())
                    .limit(count_limit)
                    .select(ev::at)
                    .load($c)
                    .await?;
                if times.len() >= limit {
                    return Ok(LimitedAppend::Refused(
                        times.into_iter().map(|t| t.0).collect(),
                    ));
                }
                diesel::insert_into(ev::integration_audit_events)
                    .values(&row)
                    .execute($c)
                    .await?;
                Ok(LimitedAppend::Appended)
            }};
        }
        let inner = &self.inner;
        match &inner.backend {
            Backend::Postgres(pool) => {
                let mut obj = inner.acquire(pool.get()).await?;
                let conn: &mut AsyncPgConnection = &mut obj;
                let key = format!("integrations:audit-limit:{action}:{user}");
                conn.transaction::<_, diesel::result::Error, _>(
                    async |c: &mut AsyncPgConnection| {
                        // Serializes this user's and action's counting across every process;
                        // released at commit.
                        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                            .bind::<diesel::sql_types::Text, _>(&key)
                            .execute(c)
                            .await?;
                        count_then_append!(c)
                    },
                )
                .await
                .map_err(error::db)
            }
            Backend::Sqlite(pool) => {
                // BEGIN IMMEDIATE takes the database's write lock before the count.
                let _turn = inner.sqlite_writes.lock().await;
                let mut obj = inner.acquire(pool.get()).await?;
                let conn: &mut SqliteConn = &mut obj;
                conn.immediate_transaction::<_, diesel::result::Error, _>(
                    async |c: &mut SqliteConn| count_then_append!(c),
                )
                .await
                .map_err(error::db)
            }
        }
    }

    async fn recent_audit_times(
        &self,
        user_id: UserId,
        action: AuditAction,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DateTime<Utc>>, StoreError> {
        let since = Ts::new(since);
        let limit = limit_of(limit);
        let times: Vec<Ts> = with_conn!(self, |conn| ev::integration_audit_events
            .filter(ev::user_id.eq(user_id.0))
            .filter(ev::action.eq(action.as_str()))
            .filter(ev::at.ge(since))
            .order(ev::at.desc())
            .limit(limit)
            .select(ev::at)
            .load(conn)
            .await
            .map_err(error::db))?;
        Ok(times.into_iter().map(|t| t.0).collect())
    }

    async fn count_accounts(&self, now: DateTime<Utc>) -> Result<Vec<AccountCount>, StoreError> {
        use diesel::dsl::count_star;
        let now = Ts::new(now);
        // One scan: every account, and those past expiry, per group.
        let past_expiry = sql::<BigInt>("COUNT(*) FILTER (WHERE expires_at <= ")
            .bind::<UtcTimestamp, _>(now)
            .sql(")");
        let rows: Vec<(String, String, i64, i64)> = with_conn!(self, |conn| acc::oauth_accounts
            .group_by((acc::provider, acc::status))
            .select((
                acc::provider,
                acc::status,
                count_star(),
                past_expiry.clone()
            ))
            .load(conn)
            .await
            .map_err(error::db))?;
        // GROUP BY gives each (provider, status) once; the contract wants them sorted.
        let mut counts = rows
            .into_iter()
            .map(|(provider, status, n, past)| {
                Ok(AccountCount::new(
                    models::provider(provider, "oauth_accounts")?,
                    models::status(&status, "oauth_accounts")?,
                    n.max(0) as u64,
                    past.max(0) as u64,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        counts.sort_by(|a, b| (&a.provider, a.status).cmp(&(&b.provider, b.status)));
        Ok(counts)
    }

    async fn events_after(
        &self,
        after: EventPosition,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows: Vec<EventRow> = with_conn!(self, |conn| ce::connection_events
            .filter(ce::position.gt(after.0))
            .order(ce::position.asc())
            .limit(limit_of(limit))
            .select(EventRow::as_select())
            .load(conn)
            .await
            .map_err(error::db))?;
        outbox::stored_events(rows)
    }

    async fn last_event_position(&self) -> Result<EventPosition, StoreError> {
        let last: Option<i64> = with_conn!(self, |conn| ce::connection_events
            .select(diesel::dsl::max(ce::position))
            .first(conn)
            .await
            .map_err(error::db))?;
        Ok(EventPosition(last.unwrap_or(0)))
    }

    async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let before = Ts::new(before);
        let n = in_transaction!(self, |c| {
            let old = ce::connection_events
                .filter(ce::at.lt(before))
                .select(ce::position);
            diesel::delete(wd::webhook_deliveries.filter(wd::position.eq_any(old)))
                .execute(c)
                .await?;
            diesel::delete(ce::connection_events.filter(ce::at.lt(before)))
                .execute(c)
                .await
        })?;
        Ok(n as u64)
    }

    async fn wait_for_events(&self, timeout: Duration) {
        match &self.inner.backend {
            Backend::Postgres(pool) => {
                let wake = self.inner.events_notified.notified();
                self.inner.listener.get_or_init(|| {
                    let notified = self.inner.events_notified.clone();
                    tokio::spawn(listen(Arc::downgrade(&self.inner), pool.clone(), notified));
                });
                let _ = tokio::time::timeout(timeout, wake).await;
            }
            Backend::Sqlite(_) => tokio::time::sleep(timeout).await,
        }
    }

    async fn enqueue_deliveries(
        &self,
        endpoint: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let now = Ts::new(now);
        in_transaction!(self, |c| {
            let cursor = c.lock_cursor(endpoint).await?;
            let new: Vec<(i64, String, String, String)> = ce::connection_events
                .filter(ce::position.gt(cursor))
                .order(ce::position.asc())
                .limit(limit_of(limit))
                .select((
                    ce::position,
                    ce::event_id,
                    ce::provider,
                    ce::provider_account_id,
                ))
                .load(c)
                .await?;
            let Some(last) = new.last().map(|e| e.0) else {
                return Ok(0);
            };
            let rows: Vec<NewDeliveryRow<'_>> = new
                .into_iter()
                .map(|(position, event_id, provider, account)| NewDeliveryRow {
                    endpoint,
                    position,
                    event_id,
                    account_key: format!("{provider}:{account}"),
                    status: DeliveryStatus::Pending.as_str(),
                    attempts: 0,
                    next_attempt_at: now,
                })
                .collect();
            let created = c.insert_deliveries(&rows).await?;
            diesel::update(wc::webhook_cursors.filter(wc::endpoint.eq(endpoint)))
                .set(wc::position.eq(last))
                .execute(c)
                .await?;
            Ok(created)
        })
    }

    async fn claim_deliveries(
        &self,
        endpoint: &str,
        lease: &Lease,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        use diesel::sql_types::{BigInt, Text};
        let postgres = matches!(self.inner.backend, Backend::Postgres(_));
        let sql = outbox::claim_sql(postgres);
        let (owner, until, now) = (
            lease.owner.as_str(),
            Ts::new(lease.until),
            Ts::new(lease.now),
        );
        let limit = limit_of(limit);
        let (claimed, rows): (Vec<ClaimedRow>, Vec<EventRow>) = in_transaction!(self, |c| {
            let claimed: Vec<ClaimedRow> = diesel::sql_query(sql.as_str())
                .bind::<Text, _>(endpoint)
                .bind::<Text, _>(owner)
                .bind::<UtcTimestamp, _>(until)
                .bind::<UtcTimestamp, _>(now)
                .bind::<BigInt, _>(limit)
                .load(c)
                .await?;
            let positions: Vec<i64> = claimed.iter().map(|r| r.position).collect();
            let rows: Vec<EventRow> = if positions.is_empty() {
                Vec::new()
            } else {
                ce::connection_events
                    .filter(ce::position.eq_any(&positions))
                    .select(EventRow::as_select())
                    .load(c)
                    .await?
            };
            Ok((claimed, rows))
        })?;
        let mut events: std::collections::HashMap<i64, StoredEvent> = outbox::stored_events(rows)?
            .into_iter()
            .map(|e| (e.position.0, e))
            .collect();
        let mut out: Vec<Delivery> = claimed
            .into_iter()
            .filter_map(|r| {
                events.remove(&r.position).map(|event| Delivery {
                    endpoint: endpoint.to_owned(),
                    event,
                    attempts: u32::try_from(r.attempts).unwrap_or(0),
                })
            })
            .collect();
        out.sort_by_key(|d| d.event.position);
        Ok(out)
    }

    async fn finish_delivery(
        &self,
        endpoint: &str,
        position: EventPosition,
        owner: &str,
        outcome: &DeliveryOutcome,
    ) -> Result<bool, StoreError> {
        let target = wd::webhook_deliveries
            .filter(wd::endpoint.eq(endpoint))
            .filter(wd::position.eq(position.0))
            .filter(wd::lease_owner.eq(owner));
        let released = (
            wd::lease_owner.eq(None::<String>),
            wd::lease_until.eq(None::<Ts>),
        );
        let n = match outcome {
            DeliveryOutcome::Delivered { at } => with_write_conn!(self, |conn| {
                diesel::update(target)
                    .set((
                        released,
                        wd::status.eq(DeliveryStatus::Delivered.as_str()),
                        wd::finished_at.eq(Some(Ts::new(*at))),
                        wd::last_error.eq(None::<String>),
                    ))
                    .execute(conn)
                    .await
                    .map_err(error::db)
            })?,
            DeliveryOutcome::Retry {
                next_attempt_at,
                error,
            } => with_write_conn!(self, |conn| {
                diesel::update(target)
                    .set((
                        released,
                        wd::next_attempt_at.eq(Ts::new(*next_attempt_at)),
                        wd::last_error.eq(Some(error.as_str())),
                    ))
                    .execute(conn)
                    .await
                    .map_err(error::db)
            })?,
            DeliveryOutcome::Failed { at, error } => with_write_conn!(self, |conn| {
                diesel::update(target)
                    .set((
                        released,
                        wd::status.eq(DeliveryStatus::Failed.as_str()),
                        wd::finished_at.eq(Some(Ts::new(*at))),
                        wd::last_error.eq(Some(error.as_str())),
                    ))
                    .execute(conn)
                    .await
                    .map_err(error::db)
            })?,
        };
        Ok(n == 1)
    }

    async fn list_deliveries(
        &self,
        endpoint: &str,
        status: DeliveryStatus,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let rows: Vec<DeliveryRow> = with_conn!(self, |conn| wd::webhook_deliveries
            .filter(wd::endpoint.eq(endpoint))
            .filter(wd::status.eq(status.as_str()))
            .order(wd::position.desc())
            .limit(limit_of(limit))
            .select(DeliveryRow::as_select())
            .load(conn)
            .await
            .map_err(error::db))?;
        rows.into_iter().map(DeliveryRow::into_record).collect()
    }

    async fn find_account_by_alias(
        &self,
        provider: &ProviderId,
        alias: &str,
    ) -> Result<Option<AccountRecord>, StoreError> {
        use diesel::sql_types::Text;
        // The alias test in each backend's JSON dialect, around the bound alias.
        let (before, after) = match &self.inner.backend {
            Backend::Postgres(_) => (
                "(metadata -> 'platform_aliases') @> jsonb_build_array(CAST(",
                " AS TEXT))",
            ),
            Backend::Sqlite(_) => (
                "EXISTS (SELECT 1 FROM json_each(oauth_accounts.metadata, \
                 '$.platform_aliases') WHERE json_each.type = 'text' \
                 AND json_each.value = ",
                ")",
            ),
        };
        // Rare (platform webhooks): a scan of the platform's accounts, using the
        // (provider, provider_account_id) index for the platform.
        let row: Option<AccountRow> = with_conn!(self, |conn| acc::oauth_accounts
            .filter(acc::provider.eq(provider.as_str()))
            .filter(sql::<Bool>(before).bind::<Text, _>(alias).sql(after))
            .order(acc::id.asc())
            .select(AccountRow::as_select())
            .first(conn)
            .await
            .optional()
            .map_err(error::db))?;
        row.map(AccountRow::into_record).transpose()
    }

    async fn webhook_receipt(
        &self,
        provider: &ProviderId,
        key: &str,
    ) -> Result<Option<WebhookReceipt>, StoreError> {
        let row: Option<ReceiptRow> = with_conn!(self, |conn| wr::platform_webhook_receipts
            .filter(wr::provider.eq(provider.as_str()))
            .filter(wr::receipt_key.eq(key))
            .select(ReceiptRow::as_select())
            .first(conn)
            .await
            .optional()
            .map_err(error::db))?;
        row.map(ReceiptRow::into_receipt).transpose()
    }

    async fn insert_webhook_receipt(
        &self,
        receipt: WebhookReceipt,
    ) -> Result<(WebhookReceipt, bool), StoreError> {
        let row = ReceiptRow::new(&receipt);
        let written = with_write_conn!(self, |conn| diesel::insert_into(
            wr::platform_webhook_receipts
        )
        .values(&row)
        .on_conflict_do_nothing()
        .execute(conn)
        .await
        .map_err(error::db))?;
        if written == 1 {
            return Ok((receipt, true));
        }
        match self
            .webhook_receipt(&receipt.provider, &receipt.key)
            .await?
        {
            Some(existing) => Ok((existing, false)),
            // Not the key: the confirmation code clashed.
            None => Err(StoreError::UniqueViolation(
                "platform_webhook_receipts.confirmation_code".into(),
            )),
        }
    }

    async fn webhook_receipt_by_code(
        &self,
        code: &str,
    ) -> Result<Option<WebhookReceipt>, StoreError> {
        let row: Option<ReceiptRow> = with_conn!(self, |conn| wr::platform_webhook_receipts
            .filter(wr::confirmation_code.eq(code))
            .select(ReceiptRow::as_select())
            .first(conn)
            .await
            .optional()
            .map_err(error::db))?;
        row.map(ReceiptRow::into_receipt).transpose()
    }

    async fn prune_webhook_receipts(
        &self,
        before: DateTime<Utc>,
        codes_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let n = with_write_conn!(self, |conn| diesel::delete(
            wr::platform_webhook_receipts.filter(
                wr::received_at
                    .lt(Ts::new(codes_before))
                    .or(wr::confirmation_code
                        .is_null()
                        .and(wr::received_at.lt(Ts::new(before)))),
            )
        )
        .execute(conn)
        .await
        .map_err(error::db))?;
        Ok(n as u64)
    }

    async fn save_health(
        &self,
        rows: &[integrations_core::health::HealthMinute],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let rows = rows
            .iter()
            .map(HealthRow::new)
            .collect::<Result<Vec<_>, _>>()?;
        with_write_conn!(self, |conn| {
            for row in &rows {
                diesel::insert_into(ph::platform_health_minutes)
                    .values(row)
                    .on_conflict((ph::provider, ph::minute, ph::instance))
                    .do_update()
                    .set(ph::stats.eq(excluded(ph::stats)))
                    .execute(conn)
                    .await
                    .map_err(error::db)?;
            }
            Ok::<(), StoreError>(())
        })
    }

    async fn health_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<integrations_core::health::HealthMinute>, StoreError> {
        let rows: Vec<HealthRow> = with_conn!(self, |conn| ph::platform_health_minutes
            .filter(ph::minute.ge(Ts::new(since)))
            .order((ph::minute.asc(), ph::provider.asc()))
            .select(HealthRow::as_select())
            .load(conn)
            .await
            .map_err(error::db))?;
        rows.into_iter().map(HealthRow::into_minute).collect()
    }

    async fn prune_health(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let n = with_write_conn!(self, |conn| diesel::delete(
            ph::platform_health_minutes.filter(ph::minute.lt(Ts::new(before)))
        )
        .execute(conn)
        .await
        .map_err(error::db))?;
        Ok(n as u64)
    }
}

/// Listens for PostgreSQL's event notifications on a connection of its own (taken out of
/// the pool) and wakes the store's readers; reconnects after an error, and stops when the
/// store is gone.
async fn listen(
    store: std::sync::Weak<Inner>,
    pool: Pool<AsyncPgConnection>,
    notified: Arc<tokio::sync::Notify>,
) {
    use futures::StreamExt;
    loop {
        if store.strong_count() == 0 {
            return;
        }
        let conn = match pool.get().await {
            Ok(obj) => diesel_async::pooled_connection::deadpool::Object::take(obj),
            Err(e) => {
                tracing::debug!(error = %e, "event listener could not connect; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut conn = conn;
        if let Err(e) = diesel::sql_query(format!("LISTEN {}", outbox::EVENTS_CHANNEL))
            .execute(&mut conn)
            .await
        {
            tracing::debug!(error = %e, "event listener could not LISTEN; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        // Whatever was recorded before the LISTEN took effect is read by the next poll.
        notified.notify_waiters();
        let mut stream = std::pin::pin!(conn.notifications_stream());
        loop {
            match tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
                Ok(Some(Ok(_))) => notified.notify_waiters(),
                Ok(Some(Err(_)) | None) => break,
                Err(_) if store.strong_count() == 0 => return,
                Err(_) => {}
            }
        }
    }
}

/// The row as `update_account_and_release` leaves it: `record` at the next version,
/// without a lease, with its times at the microsecond precision both backends keep.
fn stored_after_update(record: &AccountRecord) -> AccountRecord {
    let micros = |t: DateTime<Utc>| Ts::new(t).0;
    let opt = |t: Option<DateTime<Utc>>| t.map(micros);
    AccountRecord {
        version: record.version + 1,
        lease_owner: None,
        lease_until: None,
        expires_at: opt(record.expires_at),
        refresh_expires_at: opt(record.refresh_expires_at),
        token_issued_at: opt(record.token_issued_at),
        last_refresh_attempt_at: opt(record.last_refresh_attempt_at),
        last_refresh_success_at: opt(record.last_refresh_success_at),
        created_at: micros(record.created_at),
        updated_at: micros(record.updated_at),
        ..record.clone()
    }
}
