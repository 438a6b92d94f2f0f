//! Rows as stored, and their conversion to and from the core records.
//!
//! Rows are not `Debug`: even sealed, token columns stay out of logs.

use crate::schema::{integration_audit_events, oauth_accounts, oauth_pending_authorizations};
use crate::types::{Doc, JsonDocument, Ts, UtcTimestamp};
use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use integrations_core::{
    AccountRecord, AuditAction, AuditEvent, NewAccount, NewAuditEvent, PendingAuthorization,
    ProviderId, SealedSecret, StateHash, StoreError, StoredStatus, UserId,
};

fn ts(t: Option<Ts>) -> Option<DateTime<Utc>> {
    t.map(|t| t.0)
}

fn opt_ts(t: Option<DateTime<Utc>>) -> Option<Ts> {
    t.map(Ts::new)
}

/// A stored provider id; a bad one is `Corrupt`, naming `what` was read.
pub(crate) fn provider(raw: String, what: &str) -> Result<ProviderId, StoreError> {
    ProviderId::new(raw).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// A stored status; an unknown one is `Corrupt`, naming `what` was read.
pub(crate) fn status(raw: &str, what: &str) -> Result<StoredStatus, StoreError> {
    StoredStatus::parse(raw).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "{what}: unknown status {:?}",
            raw.chars().take(40).collect::<String>()
        ))
    })
}

/// An `oauth_accounts` row.
#[derive(Queryable, Selectable)]
#[diesel(table_name = oauth_accounts)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub(crate) struct AccountRow {
    pub(crate) id: i64,
    pub(crate) user_id: i64,
    pub(crate) provider: String,
    pub(crate) provider_account_id: String,
    pub(crate) access_token: Option<String>,
    pub(crate) refresh_token: Option<String>,
    pub(crate) expires_at: Option<Ts>,
    pub(crate) refresh_expires_at: Option<Ts>,
    pub(crate) token_issued_at: Option<Ts>,
    pub(crate) token_type: Option<String>,
    pub(crate) scope: Option<String>,
    pub(crate) metadata: Doc,
    pub(crate) status: String,
    pub(crate) last_error: Option<String>,
    pub(crate) refresh_failures: i32,
    pub(crate) last_refresh_attempt_at: Option<Ts>,
    pub(crate) last_refresh_success_at: Option<Ts>,
    pub(crate) version: i64,
    pub(crate) lease_owner: Option<String>,
    pub(crate) lease_until: Option<Ts>,
    pub(crate) created_at: Ts,
    pub(crate) updated_at: Ts,
}

impl AccountRow {
    /// The core record; an unknown status or a bad provider id is `Corrupt`.
    pub(crate) fn into_record(self) -> Result<AccountRecord, StoreError> {
        let what = format!("oauth_accounts row {}", self.id);
        let status = status(&self.status, &what)?;
        Ok(AccountRecord {
            id: self.id,
            user_id: UserId(self.user_id),
            provider: provider(self.provider, &what)?,
            provider_account_id: self.provider_account_id,
            access_token: self.access_token.map(SealedSecret::from_stored),
            refresh_token: self.refresh_token.map(SealedSecret::from_stored),
            expires_at: ts(self.expires_at),
            refresh_expires_at: ts(self.refresh_expires_at),
            token_issued_at: ts(self.token_issued_at),
            token_type: self.token_type,
            scope: self.scope,
            metadata: self.metadata.0,
            status,
            last_error: self.last_error,
            refresh_failures: self.refresh_failures,
            last_refresh_attempt_at: ts(self.last_refresh_attempt_at),
            last_refresh_success_at: ts(self.last_refresh_success_at),
            version: self.version,
            lease_owner: self.lease_owner,
            lease_until: ts(self.lease_until),
            created_at: self.created_at.0,
            updated_at: self.updated_at.0,
        })
    }
}

/// Converts rows, failing on the first corrupt one.
pub(crate) fn records(rows: Vec<AccountRow>) -> Result<Vec<AccountRecord>, StoreError> {
    rows.into_iter().map(AccountRow::into_record).collect()
}

/// A new `oauth_accounts` row (version 1, status active).
#[derive(Insertable)]
#[diesel(table_name = oauth_accounts)]
pub(crate) struct NewAccountRow<'a> {
    pub(crate) user_id: i64,
    pub(crate) provider: &'a str,
    pub(crate) provider_account_id: &'a str,
    pub(crate) access_token: Option<&'a str>,
    pub(crate) refresh_token: Option<&'a str>,
    pub(crate) expires_at: Option<Ts>,
    pub(crate) refresh_expires_at: Option<Ts>,
    pub(crate) token_issued_at: Option<Ts>,
    pub(crate) token_type: Option<&'a str>,
    pub(crate) scope: Option<&'a str>,
    pub(crate) metadata: Doc,
    pub(crate) status: &'a str,
    pub(crate) refresh_failures: i32,
    pub(crate) version: i64,
    pub(crate) created_at: Ts,
    pub(crate) updated_at: Ts,
}

impl<'a> NewAccountRow<'a> {
    pub(crate) fn new(a: &'a NewAccount) -> Self {
        let now = Ts::new(a.now);
        Self {
            user_id: a.user_id.0,
            provider: a.provider.as_str(),
            provider_account_id: &a.provider_account_id,
            access_token: a.access_token.as_ref().map(SealedSecret::as_str),
            refresh_token: a.refresh_token.as_ref().map(SealedSecret::as_str),
            expires_at: opt_ts(a.expires_at),
            refresh_expires_at: opt_ts(a.refresh_expires_at),
            token_issued_at: Some(now),
            token_type: a.token_type.as_deref(),
            scope: a.scope.as_deref(),
            metadata: Doc(a.metadata.clone()),
            status: StoredStatus::Active.as_str(),
            refresh_failures: 0,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }
}

/// Every mutable field of an account, as [`TokenStore::update_account`] writes them
/// (`None` writes NULL). Not the identity, the version, the lease or `created_at`.
///
/// [`TokenStore::update_account`]: integrations_core::TokenStore::update_account
#[derive(AsChangeset)]
#[diesel(table_name = oauth_accounts, treat_none_as_null = true)]
pub(crate) struct AccountChanges<'a> {
    pub(crate) access_token: Option<&'a str>,
    pub(crate) refresh_token: Option<&'a str>,
    pub(crate) expires_at: Option<Ts>,
    pub(crate) refresh_expires_at: Option<Ts>,
    pub(crate) token_issued_at: Option<Ts>,
    pub(crate) token_type: Option<&'a str>,
    pub(crate) scope: Option<&'a str>,
    pub(crate) metadata: Doc,
    pub(crate) status: &'a str,
    pub(crate) last_error: Option<&'a str>,
    pub(crate) refresh_failures: i32,
    pub(crate) last_refresh_attempt_at: Option<Ts>,
    pub(crate) last_refresh_success_at: Option<Ts>,
    pub(crate) updated_at: Ts,
}

impl<'a> AccountChanges<'a> {
    pub(crate) fn new(r: &'a AccountRecord) -> Self {
        Self {
            access_token: r.access_token.as_ref().map(SealedSecret::as_str),
            refresh_token: r.refresh_token.as_ref().map(SealedSecret::as_str),
            expires_at: opt_ts(r.expires_at),
            refresh_expires_at: opt_ts(r.refresh_expires_at),
            token_issued_at: opt_ts(r.token_issued_at),
            token_type: r.token_type.as_deref(),
            scope: r.scope.as_deref(),
            metadata: Doc(r.metadata.clone()),
            status: r.status.as_str(),
            last_error: r.last_error.as_deref(),
            refresh_failures: r.refresh_failures,
            last_refresh_attempt_at: opt_ts(r.last_refresh_attempt_at),
            last_refresh_success_at: opt_ts(r.last_refresh_success_at),
            updated_at: Ts::new(r.updated_at),
        }
    }
}

/// The PostgreSQL refresh write of a batch: each row's new values come in as one array per
/// column and are matched to rows by id, version and lease owner. Written ids come back.
const RELEASED_BATCH_SQL: &str = "\
UPDATE oauth_accounts AS a SET \
    access_token = v.access_token, refresh_token = v.refresh_token, \
    expires_at = v.expires_at, refresh_expires_at = v.refresh_expires_at, \
    token_issued_at = v.token_issued_at, token_type = v.token_type, scope = v.scope, \
    metadata = v.metadata, status = v.status, last_error = v.last_error, \
    refresh_failures = v.refresh_failures, \
    last_refresh_attempt_at = v.last_refresh_attempt_at, \
    last_refresh_success_at = v.last_refresh_success_at, updated_at = v.updated_at, \
    version = a.version + 1, lease_owner = NULL, lease_until = NULL \
FROM unnest($1::int8[], $2::int8[], $3::text[], $4::text[], $5::text[], \
            $6::timestamptz[], $7::timestamptz[], $8::timestamptz[], $9::text[], $10::text[], \
            $11::jsonb[], $12::text[], $13::text[], $14::int4[], $15::timestamptz[], \
            $16::timestamptz[], $17::timestamptz[]) \
    AS v(id, version, owner, access_token, refresh_token, expires_at, refresh_expires_at, \
         token_issued_at, token_type, scope, metadata, status, last_error, refresh_failures, \
         last_refresh_attempt_at, last_refresh_success_at, updated_at) \
WHERE a.id = v.id AND a.version = v.version AND a.lease_owner = v.owner \
RETURNING a.id";

/// A batch of refresh writes as columns, for [`RELEASED_BATCH_SQL`]: what
/// [`AccountChanges`] writes, plus the id, version and lease owner each row must still
/// have.
#[derive(Default)]
pub(crate) struct ReleasedColumns<'a> {
    id: Vec<i64>,
    version: Vec<i64>,
    owner: Vec<&'a str>,
    access_token: Vec<Option<&'a str>>,
    refresh_token: Vec<Option<&'a str>>,
    expires_at: Vec<Option<Ts>>,
    refresh_expires_at: Vec<Option<Ts>>,
    token_issued_at: Vec<Option<Ts>>,
    token_type: Vec<Option<&'a str>>,
    scope: Vec<Option<&'a str>>,
    metadata: Vec<Doc>,
    status: Vec<&'a str>,
    last_error: Vec<Option<&'a str>>,
    refresh_failures: Vec<i32>,
    last_refresh_attempt_at: Vec<Option<Ts>>,
    last_refresh_success_at: Vec<Option<Ts>>,
    updated_at: Vec<Ts>,
}

impl<'a> ReleasedColumns<'a> {
    /// Adds the write of `record` by the lease holder `owner`.
    pub(crate) fn push(&mut self, record: &'a AccountRecord, owner: &'a str) {
        // Destructured in full: a field added to `AccountChanges` must be added here.
        let AccountChanges {
            access_token,
            refresh_token,
            expires_at,
            refresh_expires_at,
            token_issued_at,
            token_type,
            scope,
            metadata,
            status,
            last_error,
            refresh_failures,
            last_refresh_attempt_at,
            last_refresh_success_at,
            updated_at,
        } = AccountChanges::new(record);
        self.id.push(record.id);
        self.version.push(record.version);
        self.owner.push(owner);
        self.access_token.push(access_token);
        self.refresh_token.push(refresh_token);
        self.expires_at.push(expires_at);
        self.refresh_expires_at.push(refresh_expires_at);
        self.token_issued_at.push(token_issued_at);
        self.token_type.push(token_type);
        self.scope.push(scope);
        self.metadata.push(metadata);
        self.status.push(status);
        self.last_error.push(last_error);
        self.refresh_failures.push(refresh_failures);
        self.last_refresh_attempt_at.push(last_refresh_attempt_at);
        self.last_refresh_success_at.push(last_refresh_success_at);
        self.updated_at.push(updated_at);
    }

    /// The statement, returning a [`WrittenId`] per written row.
    pub(crate) fn query(self) -> BoxedSqlQuery<'a, Pg, SqlQuery> {
        self.bind_all(diesel::sql_query(RELEASED_BATCH_SQL).into_boxed::<Pg>())
    }

    /// Binds the 17 column arrays, `$1` to `$17`.
    fn bind_all(self, query: BoxedSqlQuery<'a, Pg, SqlQuery>) -> BoxedSqlQuery<'a, Pg, SqlQuery> {
        use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text};
        query
            .bind::<Array<BigInt>, _>(self.id)
            .bind::<Array<BigInt>, _>(self.version)
            .bind::<Array<Text>, _>(self.owner)
            .bind::<Array<Nullable<Text>>, _>(self.access_token)
            .bind::<Array<Nullable<Text>>, _>(self.refresh_token)
            .bind::<Array<Nullable<UtcTimestamp>>, _>(self.expires_at)
            .bind::<Array<Nullable<UtcTimestamp>>, _>(self.refresh_expires_at)
            .bind::<Array<Nullable<UtcTimestamp>>, _>(self.token_issued_at)
            .bind::<Array<Nullable<Text>>, _>(self.token_type)
            .bind::<Array<Nullable<Text>>, _>(self.scope)
            .bind::<Array<JsonDocument>, _>(self.metadata)
            .bind::<Array<Text>, _>(self.status)
            .bind::<Array<Nullable<Text>>, _>(self.last_error)
            .bind::<Array<Integer>, _>(self.refresh_failures)
            .bind::<Array<Nullable<UtcTimestamp>>, _>(self.last_refresh_attempt_at)
            .bind::<Array<Nullable<UtcTimestamp>>, _>(self.last_refresh_success_at)
            .bind::<Array<UtcTimestamp>, _>(self.updated_at)
    }
}

/// [`RELEASED_BATCH_SQL`] with the events of the rows it writes, in one statement (one
/// round trip, one commit): the outbox's advisory lock is taken first (joined into the
/// UPDATE), the events of the written ids are inserted in their order, and readers are
/// notified. Binds: the 17 arrays of [`ReleasedColumns`], the lock key, then the event
/// arrays of [`EventColumns`].
static RELEASED_WITH_EVENTS_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let update = RELEASED_BATCH_SQL.replacen(" WHERE a.id = v.id", ", l WHERE a.id = v.id", 1);
    format!(
        "WITH l AS (SELECT pg_advisory_xact_lock($18) AS locked), w AS ({update}), \
         ins AS (INSERT INTO connection_events \
                 (event_id, kind, user_id, provider, provider_account_id, at, payload) \
             SELECT e.event_id, e.kind, e.user_id, e.provider, e.provider_account_id, e.at, \
                 e.payload \
             FROM unnest($19::int8[], $20::text[], $21::text[], $22::int8[], $23::text[], \
                 $24::text[], $25::timestamptz[], $26::jsonb[]) WITH ORDINALITY \
                 AS e(account_id, event_id, kind, user_id, provider, provider_account_id, at, \
                      payload, n) \
             WHERE e.account_id IN (SELECT id FROM w) ORDER BY e.n RETURNING 1) \
         SELECT w.id FROM w LEFT JOIN \
             (SELECT pg_notify('{}', '') AS notified FROM ins LIMIT 1) AS n ON true",
        crate::outbox::EVENTS_CHANNEL
    )
});

/// The events of a batch as columns, for the statement with events.
#[derive(Default)]
pub(crate) struct EventColumns<'a> {
    account_id: Vec<i64>,
    event_id: Vec<&'a str>,
    kind: Vec<&'a str>,
    user_id: Vec<i64>,
    provider: Vec<&'a str>,
    provider_account_id: Vec<&'a str>,
    at: Vec<Ts>,
    payload: Vec<Doc>,
}

impl<'a> EventColumns<'a> {
    /// Adds the events recorded if row `account_id` is written.
    pub(crate) fn push(
        &mut self,
        account_id: i64,
        events: &'a [integrations_core::ConnectionEvent],
    ) {
        for e in events {
            self.account_id.push(account_id);
            self.event_id.push(e.id.as_str());
            self.kind.push(e.kind.as_str());
            self.user_id.push(e.user_id.0);
            self.provider.push(e.provider.as_str());
            self.provider_account_id.push(&e.provider_account_id);
            self.at.push(Ts::new(e.at));
            self.payload.push(Doc(e.payload.clone()));
        }
    }
}

impl<'a> ReleasedColumns<'a> {
    /// The statement with the batch's events, returning a [`WrittenId`] per written row.
    pub(crate) fn query_with_events(
        self,
        events: EventColumns<'a>,
        lock_key: i64,
    ) -> BoxedSqlQuery<'a, Pg, SqlQuery> {
        use diesel::sql_types::{Array, BigInt, Text};
        self.bind_all(diesel::sql_query(RELEASED_WITH_EVENTS_SQL.as_str()).into_boxed::<Pg>())
            .bind::<BigInt, _>(lock_key)
            .bind::<Array<BigInt>, _>(events.account_id)
            .bind::<Array<Text>, _>(events.event_id)
            .bind::<Array<Text>, _>(events.kind)
            .bind::<Array<BigInt>, _>(events.user_id)
            .bind::<Array<Text>, _>(events.provider)
            .bind::<Array<Text>, _>(events.provider_account_id)
            .bind::<Array<UtcTimestamp>, _>(events.at)
            .bind::<Array<JsonDocument>, _>(events.payload)
    }
}

/// An id returned by [`RELEASED_BATCH_SQL`].
#[derive(QueryableByName)]
pub(crate) struct WrittenId {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub(crate) id: i64,
}

/// An `oauth_pending_authorizations` row.
#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = oauth_pending_authorizations)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub(crate) struct PendingRow {
    pub(crate) state_hash: String,
    pub(crate) user_id: i64,
    pub(crate) provider: String,
    pub(crate) pkce_verifier: Option<String>,
    pub(crate) redirect_url: Option<String>,
    pub(crate) created_at: Ts,
    pub(crate) expires_at: Ts,
}

impl PendingRow {
    pub(crate) fn new(p: PendingAuthorization) -> Self {
        Self {
            state_hash: p.state_hash.to_hex(),
            user_id: p.user_id.0,
            provider: p.provider.into(),
            pkce_verifier: p.pkce_verifier.map(|s| s.as_str().to_owned()),
            redirect_url: p.redirect_url,
            created_at: Ts::new(p.created_at),
            expires_at: Ts::new(p.expires_at),
        }
    }

    pub(crate) fn into_pending(self) -> Result<PendingAuthorization, StoreError> {
        let state_hash = StateHash::from_hex(&self.state_hash).ok_or_else(|| {
            StoreError::Corrupt("oauth_pending_authorizations: malformed state_hash".into())
        })?;
        Ok(PendingAuthorization {
            state_hash,
            user_id: UserId(self.user_id),
            provider: provider(self.provider, "oauth_pending_authorizations row")?,
            pkce_verifier: self.pkce_verifier.map(SealedSecret::from_stored),
            redirect_url: self.redirect_url,
            created_at: self.created_at.0,
            expires_at: self.expires_at.0,
        })
    }
}

/// An `integration_audit_events` row.
#[derive(Queryable, Selectable)]
#[diesel(table_name = integration_audit_events)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub(crate) struct AuditRow {
    pub(crate) id: i64,
    pub(crate) user_id: i64,
    pub(crate) provider: String,
    pub(crate) provider_account_id: Option<String>,
    pub(crate) action: String,
    pub(crate) outcome: String,
    pub(crate) at: Ts,
}

impl AuditRow {
    pub(crate) fn into_event(self) -> Result<AuditEvent, StoreError> {
        let what = format!("integration_audit_events row {}", self.id);
        let action = AuditAction::parse(&self.action).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "{what}: unknown action {:?}",
                self.action.chars().take(40).collect::<String>()
            ))
        })?;
        Ok(AuditEvent {
            id: self.id,
            event: NewAuditEvent {
                user_id: UserId(self.user_id),
                provider: provider(self.provider, &what)?,
                provider_account_id: self.provider_account_id,
                action,
                outcome: self.outcome,
                at: self.at.0,
            },
        })
    }
}

/// A new `integration_audit_events` row.
#[derive(Insertable)]
#[diesel(table_name = integration_audit_events)]
pub(crate) struct NewAuditRow<'a> {
    pub(crate) user_id: i64,
    pub(crate) provider: &'a str,
    pub(crate) provider_account_id: Option<&'a str>,
    pub(crate) action: &'a str,
    pub(crate) outcome: &'a str,
    pub(crate) at: Ts,
}

impl<'a> NewAuditRow<'a> {
    pub(crate) fn new(e: &'a NewAuditEvent) -> Self {
        Self {
            user_id: e.user_id.0,
            provider: e.provider.as_str(),
            provider_account_id: e.provider_account_id.as_deref(),
            action: e.action.as_str(),
            outcome: &e.outcome,
            at: Ts::new(e.at),
        }
    }
}
