//! Connection URLs, options, pools and migrations.

use crate::error::{self, Error, Result};
use diesel::ConnectionError;
use diesel::sqlite::SqliteConnection;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// The PostgreSQL migrations (`migrations/postgres/`), embedded in the binary.
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
/// The SQLite migrations (`migrations/sqlite/`), embedded in the binary.
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Session-level PostgreSQL advisory lock key held while migrating, so two processes
/// starting together do not apply the same migration twice.
const MIGRATION_LOCK_KEY: i64 = 0x696e_7465_6772_6174; // "integrat"

pub(crate) type SqliteConn = SyncConnectionWrapper<SqliteConnection>;

/// Options for [`DieselStore::connect_with`](crate::DieselStore::connect_with).
///
/// ```
/// use integrations_storage_diesel::StoreOptions;
/// let options = StoreOptions { max_connections: 4, ..StoreOptions::default() };
/// assert!(options.migrate);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Apply pending embedded migrations while connecting (default `true`). When `false`,
    /// call [`DieselStore::migrate`](crate::DieselStore::migrate) yourself, or run the SQL
    /// files under `migrations/` with your own tooling.
    pub migrate: bool,
    /// Pool size (default 10). `sqlite::memory:` always uses 1: every SQLite memory
    /// connection is a separate database.
    pub max_connections: usize,
    /// PostgreSQL only: the schema to use (`SET search_path` on every connection; created
    /// by `migrate` when missing). `None` keeps the server's default search path.
    pub schema: Option<String>,
    /// How long a call waits for a pooled connection, including establishing a new one,
    /// before failing with [`StoreError::Unavailable`](integrations_core::StoreError::Unavailable) (default 10 s).
    pub acquire_timeout: Duration,
    /// SQLite only: how long a statement waits for another connection's write lock
    /// (`PRAGMA busy_timeout`, default 5 s).
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            migrate: true,
            max_connections: 10,
            schema: None,
            acquire_timeout: Duration::from_secs(10),
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// Which database a [`DieselStore`](crate::DieselStore) talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackendKind {
    /// PostgreSQL through `diesel_async::AsyncPgConnection`.
    Postgres,
    /// SQLite (a file, or `sqlite::memory:`) through `SyncConnectionWrapper<SqliteConnection>`.
    Sqlite,
}

/// A parsed database URL.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Postgres(String),
    SqliteFile(String),
    SqliteMemory,
}

impl fmt::Debug for Target {
    /// Never prints the URL: it may carry a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Postgres(_) => f.write_str("Postgres"),
            Self::SqliteFile(path) => f.debug_tuple("SqliteFile").field(path).finish(),
            Self::SqliteMemory => f.write_str("SqliteMemory"),
        }
    }
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Self> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        if matches!(
            url,
            "sqlite::memory:" | "sqlite://:memory:" | "sqlite:::memory:"
        ) {
            return Ok(Self::SqliteMemory);
        }
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err(Error::InvalidUrl(
                    "sqlite URL without a path (use sqlite://PATH or sqlite::memory:)".into(),
                ));
            }
            return Ok(Self::SqliteFile(path.to_owned()));
        }
        let scheme: String = url
            .split(':')
            .next()
            .unwrap_or_default()
            .chars()
            .take(20)
            .collect();
        Err(Error::InvalidUrl(format!(
            "unsupported scheme {scheme:?}: use postgres://, postgresql://, sqlite://PATH or sqlite::memory:"
        )))
    }
}

/// Quotes a PostgreSQL identifier.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub(crate) fn pg_pool(url: &str, options: &StoreOptions) -> Result<Pool<AsyncPgConnection>> {
    let search_path = options
        .schema
        .as_deref()
        .map(|s| format!("SET search_path TO {}", quote_ident(s)));
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    // No `SELECT 1` round trip before every statement: the fast check still discards a
    // connection whose socket the server closed or whose transaction broke.
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |url| {
        let url = url.to_owned();
        let search_path = search_path.clone();
        Box::pin(async move {
            let mut conn = AsyncPgConnection::establish(&url).await?;
            if let Some(sql) = search_path {
                conn.batch_execute(&sql)
                    .await
                    .map_err(ConnectionError::CouldntSetupConfiguration)?;
            }
            Ok(conn)
        })
    });
    let manager = AsyncDieselConnectionManager::new_with_config(url, config);
    Pool::builder(manager)
        .max_size(options.max_connections)
        .build()
        .map_err(|e| Error::InvalidOption(format!("cannot build the connection pool: {e}")))
}

/// Prepares the file of a `sqlite://PATH` store: creates its missing parent directories
/// and the file itself (an empty file is an empty SQLite database), so that a path
/// problem is reported as [`Error::SqliteFile`] naming the path, not as the
/// `Unavailable` of an outage when the first connection fails. A SQLite URI filename
/// (`file:…`) is left to SQLite.
pub(crate) fn prepare_sqlite_file(path: &str) -> Result<()> {
    if path.starts_with("file:") {
        return Ok(());
    }
    let file = Path::new(path);
    let failed = |source| Error::SqliteFile {
        path: file.to_path_buf(),
        source,
    };
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(file)
        .map_err(failed)?;
    Ok(())
}

pub(crate) fn sqlite_pool(target: &Target, options: &StoreOptions) -> Result<Pool<SqliteConn>> {
    let (path, size) = match target {
        Target::SqliteFile(path) => (path.clone(), options.max_connections),
        _ => (":memory:".to_owned(), 1),
    };
    let setup = format!(
        "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
        options.busy_timeout.as_millis()
    );
    let busy_timeout = options.busy_timeout;
    let mut config = ManagerConfig::<SqliteConn>::default();
    // A file connection does not go away; skip the `SELECT 1` hop per checkout.
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |url| {
        let url = url.to_owned();
        let setup = setup.clone();
        Box::pin(async move {
            let mut conn = SqliteConn::establish(&url).await?;
            // Switching a new file to WAL takes its exclusive lock. When two processes
            // open a new file at once, SQLite answers one of them `database is locked`
            // at once instead of waiting (the two would otherwise wait for each other),
            // so the setup, which only sets pragmas, is tried again for up to
            // `busy_timeout`.
            let deadline = tokio::time::Instant::now() + busy_timeout;
            loop {
                match conn.batch_execute(&setup).await {
                    Ok(()) => return Ok(conn),
                    Err(e) if is_busy(&e) && tokio::time::Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err(e) => return Err(ConnectionError::CouldntSetupConfiguration(e)),
                }
            }
        })
    });
    let manager = AsyncDieselConnectionManager::new_with_config(path, config);
    Pool::builder(manager)
        .max_size(size)
        .build()
        .map_err(|e| Error::InvalidOption(format!("cannot build the connection pool: {e}")))
}

/// Whether SQLite answered `SQLITE_BUSY` (`database is locked`).
fn is_busy(e: &diesel::result::Error) -> bool {
    match e {
        diesel::result::Error::DatabaseError(_, info) => {
            let message = info.message().to_ascii_lowercase();
            message.contains("database is locked") || message.contains("database is busy")
        }
        _ => false,
    }
}

/// Applies pending PostgreSQL migrations on one pooled connection, under an advisory lock.
pub(crate) async fn migrate_pg(
    mut conn: Object<AsyncPgConnection>,
    schema: Option<&str>,
) -> Result<usize> {
    conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
        .await
        .map_err(error::db)?;
    let created = match schema {
        Some(s) => conn
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(s)))
            .await
            .map_err(error::db),
        None => Ok(()),
    };
    let outcome = match created {
        Ok(()) => {
            // The harness blocks (block_in_place + block_on); run it off the async workers
            // so `migrate` also works on a current-thread runtime.
            tokio::task::spawn_blocking(move || {
                let mut harness = diesel_async::AsyncMigrationHarness::new(conn);
                let applied = harness
                    .run_pending_migrations(POSTGRES_MIGRATIONS)
                    .map(|v| v.len())
                    .map_err(|e| Error::Migration {
                        message: e.to_string(),
                    });
                (harness.into_inner(), applied)
            })
            .await
            .map_err(|e| Error::Migration {
                message: format!("the migration task failed: {e}"),
            })
        }
        Err(e) => return Err(e.into()),
    };
    let (mut conn, applied) = outcome?;
    // Best effort: if the connection died the lock is gone with it.
    let _ = conn
        .batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
        .await;
    applied
}

/// Why a SQLite migration run failed: the database, or a migration.
enum SqliteMigrationFailure {
    Database(diesel::result::Error),
    Migration(String),
}

impl From<diesel::result::Error> for SqliteMigrationFailure {
    fn from(e: diesel::result::Error) -> Self {
        Self::Database(e)
    }
}

/// Applies pending SQLite migrations on the inner sync connection, in one `BEGIN
/// IMMEDIATE` transaction (each migration in a savepoint of it): the list of pending
/// migrations is read under the database's write lock, so processes starting together on
/// a new file wait for each other (up to `busy_timeout`) and each migration runs once.
pub(crate) async fn migrate_sqlite(conn: &mut SqliteConn) -> Result<usize> {
    let outcome = conn
        .spawn_blocking(|c| {
            Ok(c.immediate_transaction(|c| {
                c.run_pending_migrations(SQLITE_MIGRATIONS)
                    .map(|v| v.len())
                    .map_err(|e| SqliteMigrationFailure::Migration(e.to_string()))
            }))
        })
        .await
        .map_err(|e| Error::Store(error::db(e)))?;
    match outcome {
        Ok(applied) => Ok(applied),
        Err(SqliteMigrationFailure::Database(e)) => Err(Error::Store(error::db(e))),
        Err(SqliteMigrationFailure::Migration(message)) => Err(Error::Migration { message }),
    }
}
