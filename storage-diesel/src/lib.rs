//! A [`TokenStore`](integrations_core::TokenStore) on **PostgreSQL** or **SQLite**, built
//! on `diesel` and `diesel-async`.
//!
//! One constructor takes a URL and picks the backend:
//!
//! | URL | backend |
//! | --- | --- |
//! | `postgres://user:pass@host:5432/db`, `postgresql://...` | PostgreSQL (`AsyncPgConnection`, deadpool pool) |
//! | `sqlite://path/to/file.db` (the file and its directories created when missing) | SQLite file, WAL journal, `busy_timeout` |
//! | `sqlite::memory:` | SQLite in memory (one connection: each memory connection is its own database) |
//!
//! ```no_run
//! use integrations_storage_diesel::{DieselStore, StoreOptions};
//! use std::sync::Arc;
//! use integrations_core::TokenStore;
//!
//! # async fn run() -> Result<(), integrations_storage_diesel::Error> {
//! // Connect and apply pending migrations.
//! let store = DieselStore::connect("postgres://app@127.0.0.1:5432/app").await?;
//! let store: Arc<dyn TokenStore> = Arc::new(store);
//!
//! // Or choose the options: here migrations are left to a deploy step.
//! let store = DieselStore::connect_with(
//!     "sqlite://integrations.db",
//!     StoreOptions { migrate: false, max_connections: 4, ..StoreOptions::default() },
//! )
//! .await?;
//! store.migrate().await?;
//! # Ok(()) }
//! ```
//!
//! # Tables
//! The embedded migrations ([`POSTGRES_MIGRATIONS`], [`SQLITE_MIGRATIONS`]; the SQL is in
//! `migrations/postgres/` and `migrations/sqlite/`) create:
//!
//! - `oauth_accounts`: one row per connected platform account, `UNIQUE (provider,
//!   provider_account_id)`, indexed by `(user_id, provider)` and by `expires_at` for active
//!   accounts (the refresher's range scan). Token columns hold sealed ciphertext only:
//!   the store receives [`SealedSecret`](integrations_core::SealedSecret)s and never a
//!   plaintext token.
//! - `oauth_pending_authorizations`: started connections, keyed by the hex SHA-256 of the
//!   OAuth state, consumed with one `DELETE ... RETURNING`.
//! - `integration_audit_events`: who connected, refreshed or disconnected what, and the
//!   outcome. No secrets.
//!
//! Times are UTC: `TIMESTAMPTZ` on PostgreSQL, fixed-width UTC text on SQLite, both with
//! microsecond precision (finer digits are truncated on write). `metadata` is `JSONB` on
//! PostgreSQL and JSON text on SQLite.
//!
//! # Linking accounts to your `users` table
//! `user_id` is your application's 64-bit user id; the migrations add no foreign key,
//! because they cannot know your users table. To have PostgreSQL delete a user's
//! integrations with the user, add the constraint in one of your own migrations, after
//! this crate's:
//!
//! ```sql
//! ALTER TABLE oauth_accounts
//!     ADD CONSTRAINT oauth_accounts_user_fk
//!     FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
//! ALTER TABLE oauth_pending_authorizations
//!     ADD CONSTRAINT oauth_pending_authorizations_user_fk
//!     FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
//! ```
//!
//! `users.id` must be a `BIGINT` (or `BIGSERIAL`) primary key. Audit events are usually
//! kept without a foreign key, so they outlive the account they describe;
//! [`TokenStore::delete_user_data`](integrations_core::TokenStore::delete_user_data)
//! removes them when a user asks to be forgotten. On SQLite a foreign key cannot be added
//! to an existing table; recreate the table with the constraint if you need it (the store
//! turns `PRAGMA foreign_keys` on for every connection).
//!
//! # Concurrency
//! - Refresh leases: [`claim_for_refresh`](integrations_core::TokenStore::claim_for_refresh)
//!   is one conditional `UPDATE ... RETURNING` (no lease, an ended lease, or the same
//!   owner); [`claim_due`](integrations_core::TokenStore::claim_due) selects due rows with
//!   `FOR UPDATE SKIP LOCKED` on PostgreSQL, inside `BEGIN IMMEDIATE` on SQLite, and leases
//!   them in the same transaction, so concurrent refreshers (threads or processes) never
//!   get the same account.
//! - [`upsert_account`](integrations_core::TokenStore::upsert_account) is one
//!   `INSERT ... ON CONFLICT (provider, provider_account_id) DO UPDATE ... WHERE user_id =
//!   excluded.user_id RETURNING *`: another user's row is never touched, even under races.
//! - SQLite allows one writer at a time: writes of one store queue on an async mutex and
//!   `busy_timeout` covers other processes.
//! - Group commit: [`update_account_and_release`](integrations_core::TokenStore::update_account_and_release)
//!   (the refresher's write) commits together the writes that queued while another was
//!   being committed: one `UPDATE ... FROM unnest(...)` on PostgreSQL, one transaction on
//!   SQLite. Each row keeps its own version and lease check, and each call returns only
//!   after its row is committed; a lone write is a single statement, with no added wait.
//!
//! # Errors
//! Store operations return [`StoreError`](integrations_core::StoreError): a refused
//! connection, a pool timeout or a lost connection is `Unavailable` (nothing was written
//! by the failed call); undecodable rows (unknown status, bad provider id, bad JSON) are
//! `Corrupt`. Setup returns this crate's [`Error`].
//!
//! # Key rotation
//! [`DieselStore::reseal_all`] re-seals every token under the cipher's current key; see
//! `docs/operations.md`.

mod connect;
mod error;
mod group_commit;
mod models;
mod outbox;
mod receipts;
mod reseal;
mod schema;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod types;

pub use connect::{BackendKind, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS, StoreOptions};
pub use error::{Error, Result};
pub use reseal::ResealReport;
pub use store::DieselStore;

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn public_types_are_send_and_sync() {
        assert_send_sync::<DieselStore>();
        assert_send_sync::<StoreOptions>();
        assert_send_sync::<Error>();
        assert_send_sync::<ResealReport>();
    }

    #[test]
    fn urls_pick_the_backend() {
        use connect::Target;
        assert!(matches!(
            Target::parse("postgres://u:p@h/db"),
            Ok(Target::Postgres(_))
        ));
        assert!(matches!(
            Target::parse("postgresql://h/db"),
            Ok(Target::Postgres(_))
        ));
        assert!(matches!(
            Target::parse("sqlite::memory:"),
            Ok(Target::SqliteMemory)
        ));
        assert!(
            matches!(Target::parse("sqlite://data/x.db"), Ok(Target::SqliteFile(p)) if p == "data/x.db")
        );
        assert!(
            matches!(Target::parse("sqlite:///abs/x.db"), Ok(Target::SqliteFile(p)) if p == "/abs/x.db")
        );
        let err = Target::parse("mysql://root:hunter2@h/db")
            .err()
            .map(|e| e.to_string());
        let Some(err) = err else {
            panic!("mysql must be refused")
        };
        assert!(!err.contains("hunter2"), "{err}");
        assert!(format!("{:?}", Target::parse("postgres://u:hunter2@h/db")).contains("Postgres"));
        assert!(!format!("{:?}", Target::parse("postgres://u:hunter2@h/db")).contains("hunter2"));
    }
}
