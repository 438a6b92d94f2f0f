//! The outbox tables (`connection_events`, `webhook_cursors`, `webhook_deliveries`): rows,
//! and the statements that differ between the backends.
//!
//! Events are recorded inside the transaction of the change that causes them
//! ([`OutboxConn::record_events`]). On PostgreSQL, writers first take a transaction-level
//! advisory lock ([`OutboxConn::lock_outbox`], before any row), held until their commit: positions (a sequence) are then handed out in
//! commit order, so a reader that has seen position `p` never misses a later commit below
//! `p`; the transaction also sends a `NOTIFY` that wakes readers when it commits. On
//! SQLite there is one writer at a time, which gives the same order.

use crate::connect::SqliteConn;
use crate::models::provider;
use crate::schema::{connection_events, webhook_cursors, webhook_deliveries};
use crate::types::{Doc, Ts};
use diesel::QueryResult;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use integrations_core::{
    ConnectionEvent, ConnectionEventKind, DeliveryRecord, DeliveryStatus, EventId, EventPosition,
    StoreError, StoredEvent, UserId,
};

/// The transaction-level advisory lock key of event writers ("outbox").
pub(crate) const OUTBOX_LOCK_KEY: i64 = 0x6f75_7462_6f78;

/// The channel PostgreSQL writers notify when they record events.
pub(crate) const EVENTS_CHANNEL: &str = "integrations_connection_events";

/// A `connection_events` row.
#[derive(Queryable, Selectable)]
#[diesel(table_name = connection_events)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub(crate) struct EventRow {
    pub(crate) position: i64,
    pub(crate) event_id: String,
    pub(crate) kind: String,
    pub(crate) user_id: i64,
    pub(crate) provider: String,
    pub(crate) provider_account_id: String,
    pub(crate) at: Ts,
    pub(crate) payload: Doc,
}

impl EventRow {
    pub(crate) fn into_event(self) -> Result<StoredEvent, StoreError> {
        let what = format!("connection_events row {}", self.position);
        let kind = ConnectionEventKind::parse(&self.kind).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "{what}: unknown kind {:?}",
                self.kind.chars().take(40).collect::<String>()
            ))
        })?;
        Ok(StoredEvent {
            position: EventPosition(self.position),
            event: ConnectionEvent {
                id: EventId::from_stored(self.event_id),
                kind,
                user_id: UserId(self.user_id),
                provider: provider(self.provider, &what)?,
                provider_account_id: self.provider_account_id,
                at: self.at.0,
                payload: self.payload.0,
            },
        })
    }
}

/// Rows in order.
pub(crate) fn stored_events(rows: Vec<EventRow>) -> Result<Vec<StoredEvent>, StoreError> {
    rows.into_iter().map(EventRow::into_event).collect()
}

/// A new `connection_events` row.
#[derive(Insertable)]
#[diesel(table_name = connection_events)]
pub(crate) struct NewEventRow<'a> {
    pub(crate) event_id: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) user_id: i64,
    pub(crate) provider: &'a str,
    pub(crate) provider_account_id: &'a str,
    pub(crate) at: Ts,
    pub(crate) payload: Doc,
}

impl<'a> NewEventRow<'a> {
    pub(crate) fn new(e: &'a ConnectionEvent) -> Self {
        Self {
            event_id: e.id.as_str(),
            kind: e.kind.as_str(),
            user_id: e.user_id.0,
            provider: e.provider.as_str(),
            provider_account_id: &e.provider_account_id,
            at: Ts::new(e.at),
            payload: Doc(e.payload.clone()),
        }
    }
}

fn rows(events: &[ConnectionEvent]) -> Vec<NewEventRow<'_>> {
    events.iter().map(NewEventRow::new).collect()
}

/// A new `webhook_deliveries` row.
#[derive(Insertable)]
#[diesel(table_name = webhook_deliveries)]
pub(crate) struct NewDeliveryRow<'a> {
    pub(crate) endpoint: &'a str,
    pub(crate) position: i64,
    pub(crate) event_id: String,
    pub(crate) account_key: String,
    pub(crate) status: &'static str,
    pub(crate) attempts: i32,
    pub(crate) next_attempt_at: Ts,
}

/// A `webhook_deliveries` row.
#[derive(Queryable, Selectable)]
#[diesel(table_name = webhook_deliveries)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub(crate) struct DeliveryRow {
    pub(crate) endpoint: String,
    pub(crate) position: i64,
    pub(crate) event_id: String,
    pub(crate) account_key: String,
    pub(crate) status: String,
    pub(crate) attempts: i32,
    pub(crate) next_attempt_at: Ts,
    pub(crate) last_error: Option<String>,
    pub(crate) finished_at: Option<Ts>,
}

impl DeliveryRow {
    pub(crate) fn into_record(self) -> Result<DeliveryRecord, StoreError> {
        let status = DeliveryStatus::parse(&self.status).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "webhook_deliveries row {}/{}: unknown status",
                self.endpoint, self.position
            ))
        })?;
        Ok(DeliveryRecord {
            endpoint: self.endpoint,
            position: EventPosition(self.position),
            event_id: EventId::from_stored(self.event_id),
            account_key: self.account_key,
            status,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            next_attempt_at: self.next_attempt_at.0,
            last_error: self.last_error,
            finished_at: self.finished_at.map(|t| t.0),
        })
    }
}

/// A row claimed by the claim statement.
#[derive(QueryableByName)]
pub(crate) struct ClaimedRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub(crate) position: i64,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub(crate) attempts: i32,
}

/// Leases the due pending deliveries of an endpoint that are the oldest pending of their
/// account and not under a live lease. "The oldest pending of its account" is a `min`
/// per row, which both databases answer from the partial index on `(endpoint,
/// account_key, position)` whatever their statistics say (an anti-join planned on a
/// freshly filled table's statistics was quadratic). On PostgreSQL the rows are locked `FOR UPDATE SKIP
/// LOCKED` (claimers skip each other's rows instead of waiting); SQLite has one writer at a
/// time and numbers its parameters `?N`.
pub(crate) fn claim_sql(postgres: bool) -> String {
    let sql = format!(
        "UPDATE webhook_deliveries SET lease_owner = $2, lease_until = $3, \
             attempts = webhook_deliveries.attempts + 1 \
         WHERE (endpoint, position) IN ( \
             SELECT c.endpoint, c.position FROM webhook_deliveries AS c \
             WHERE c.endpoint = $1 AND c.status = 'pending' AND c.next_attempt_at <= $4 \
               AND (c.lease_until IS NULL OR c.lease_until <= $4) \
               AND c.position = (SELECT min(o.position) FROM webhook_deliveries AS o \
                   WHERE o.endpoint = c.endpoint AND o.account_key = c.account_key \
                     AND o.status = 'pending') \
             ORDER BY c.position LIMIT $5 {}) \
         RETURNING position, attempts",
        if postgres {
            "FOR UPDATE SKIP LOCKED"
        } else {
            ""
        }
    );
    if postgres { sql } else { sql.replace('$', "?") }
}

/// What differs between the backends inside a transaction.
pub(crate) trait OutboxConn {
    /// Takes the outbox lock until the transaction ends (PostgreSQL; SQLite's write lock
    /// already serializes writers). Every writer of events takes it **before** touching a
    /// row, so two writers never wait for each other in opposite orders.
    async fn lock_outbox(&mut self) -> QueryResult<()>;
    /// Records `events` (in the caller's transaction, after [`lock_outbox`]).
    ///
    /// [`lock_outbox`]: OutboxConn::lock_outbox
    async fn record_events(&mut self, events: &[ConnectionEvent]) -> QueryResult<()>;
    /// The endpoint's cursor, created at 0 when new, locked until the transaction ends.
    async fn lock_cursor(&mut self, endpoint: &str) -> QueryResult<i64>;
    /// Inserts deliveries, skipping any that exist; how many were inserted.
    async fn insert_deliveries(&mut self, rows: &[NewDeliveryRow<'_>]) -> QueryResult<usize>;
}

impl OutboxConn for AsyncPgConnection {
    async fn lock_outbox(&mut self) -> QueryResult<()> {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<diesel::sql_types::BigInt, _>(OUTBOX_LOCK_KEY)
            .execute(self)
            .await?;
        Ok(())
    }

    async fn record_events(&mut self, events: &[ConnectionEvent]) -> QueryResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        diesel::insert_into(connection_events::table)
            .values(rows(events))
            .execute(self)
            .await?;
        diesel::sql_query(format!("NOTIFY {EVENTS_CHANNEL}"))
            .execute(self)
            .await?;
        Ok(())
    }

    async fn lock_cursor(&mut self, endpoint: &str) -> QueryResult<i64> {
        use webhook_cursors::dsl as wc;
        diesel::insert_into(wc::webhook_cursors)
            .values((wc::endpoint.eq(endpoint), wc::position.eq(0i64)))
            .on_conflict_do_nothing()
            .execute(self)
            .await?;
        wc::webhook_cursors
            .filter(wc::endpoint.eq(endpoint))
            .select(wc::position)
            .for_update()
            .first(self)
            .await
    }

    async fn insert_deliveries(&mut self, rows: &[NewDeliveryRow<'_>]) -> QueryResult<usize> {
        // Seven parameters a row: well under PostgreSQL's limit.
        let mut inserted = 0;
        for chunk in rows.chunks(1000) {
            inserted += diesel::insert_into(webhook_deliveries::table)
                .values(chunk)
                .on_conflict_do_nothing()
                .execute(self)
                .await?;
        }
        Ok(inserted)
    }
}

// SQLite's multi-row insert is not available through Diesel for these rows; what costs
// there is the commit, and the caller's transaction pays it once.
impl OutboxConn for SqliteConn {
    async fn lock_outbox(&mut self) -> QueryResult<()> {
        Ok(())
    }

    async fn record_events(&mut self, events: &[ConnectionEvent]) -> QueryResult<()> {
        for row in rows(events) {
            diesel::insert_into(connection_events::table)
                .values(&row)
                .execute(self)
                .await?;
        }
        Ok(())
    }

    async fn insert_deliveries(&mut self, rows: &[NewDeliveryRow<'_>]) -> QueryResult<usize> {
        let mut inserted = 0;
        for row in rows {
            inserted += diesel::insert_into(webhook_deliveries::table)
                .values(row)
                .on_conflict_do_nothing()
                .execute(self)
                .await?;
        }
        Ok(inserted)
    }

    async fn lock_cursor(&mut self, endpoint: &str) -> QueryResult<i64> {
        use webhook_cursors::dsl as wc;
        diesel::insert_into(wc::webhook_cursors)
            .values((wc::endpoint.eq(endpoint), wc::position.eq(0i64)))
            .on_conflict_do_nothing()
            .execute(self)
            .await?;
        wc::webhook_cursors
            .filter(wc::endpoint.eq(endpoint))
            .select(wc::position)
            .first(self)
            .await
    }
}

/// [`OutboxConn::record_events`] on a plain SQLite connection (inside a blocking
/// transaction).
pub(crate) fn record_events_sqlite(
    c: &mut diesel::SqliteConnection,
    events: &[ConnectionEvent],
) -> QueryResult<()> {
    for row in rows(events) {
        diesel::RunQueryDsl::execute(
            diesel::insert_into(connection_events::table).values(&row),
            c,
        )?;
    }
    Ok(())
}
