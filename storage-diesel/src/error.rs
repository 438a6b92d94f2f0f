//! Every database and pool error becomes a [`StoreError`] here, and nowhere else.

use diesel::result::{ConnectionError, DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::PoolError as ManagerError;
use diesel_async::pooled_connection::deadpool::PoolError;
use integrations_core::StoreError;

/// Errors of [`DieselStore::connect`](crate::DieselStore::connect),
/// [`migrate`](crate::DieselStore::migrate) and the maintenance helpers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database URL is not one this crate understands. The message never repeats a
    /// password.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// An option is out of range (for example `max_connections = 0`).
    #[error("invalid store option: {0}")]
    InvalidOption(String),
    /// The SQLite database file, or a directory on its path, cannot be created or opened
    /// for writing (the path runs through a file, a permission is missing, the disk is
    /// read-only): a configuration problem, which retrying does not fix. Names the path.
    #[error("the SQLite database {} cannot be created or opened: {source}", path.display())]
    SqliteFile {
        /// The database file's path, as the URL gave it.
        path: std::path::PathBuf,
        /// What the file system answered.
        #[source]
        source: std::io::Error,
    },
    /// Applying the embedded migrations failed.
    #[error("database migration failed: {message}")]
    Migration {
        /// What failed.
        message: String,
    },
    /// A store operation failed (including `Unavailable` when the database cannot be
    /// reached).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn unavailable(
    message: impl Into<String>,
    source: impl std::error::Error + Send + Sync + 'static,
) -> StoreError {
    StoreError::Unavailable {
        message: message.into(),
        source: Some(Box::new(source)),
    }
}

/// PostgreSQL and SQLite messages that mean "the server or file is going away or busy":
/// retrying later may succeed, so they are `Unavailable`, not `Other`.
const UNAVAILABLE_MESSAGES: &[&str] = &[
    "terminating connection",
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is in recovery mode",
    "server closed the connection",
    "connection closed",
    "database is locked",
    "database table is locked",
    "database is busy",
];

/// Maps a query error.
pub(crate) fn db(err: DieselError) -> StoreError {
    match err {
        DieselError::NotFound => StoreError::NotFound,
        DieselError::DeserializationError(e) => StoreError::Corrupt(e.to_string()),
        DieselError::DatabaseError(kind, info) => {
            // Only the server's message: PostgreSQL's `detail` can quote key values.
            let message = info.message().to_owned();
            match kind {
                DatabaseErrorKind::UniqueViolation => StoreError::UniqueViolation(
                    info.constraint_name()
                        .map(|c| format!("{message} ({c})"))
                        .unwrap_or(message),
                ),
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand => {
                    StoreError::Unavailable {
                        message: format!("the database connection was lost: {message}"),
                        source: None,
                    }
                }
                _ if UNAVAILABLE_MESSAGES
                    .iter()
                    .any(|m| message.to_ascii_lowercase().contains(m)) =>
                {
                    StoreError::Unavailable {
                        message: format!("the database is unavailable: {message}"),
                        source: None,
                    }
                }
                _ => StoreError::Other {
                    message: format!("database error: {message}"),
                    source: None,
                },
            }
        }
        other => StoreError::Other {
            message: format!("database error: {other}"),
            source: Some(Box::new(other)),
        },
    }
}

/// Maps a connection error (establishing or configuring a connection).
pub(crate) fn connection(err: ConnectionError) -> StoreError {
    match err {
        ConnectionError::InvalidConnectionUrl(_) => StoreError::Other {
            message: "the database URL was rejected by the driver".into(),
            source: None,
        },
        ConnectionError::CouldntSetupConfiguration(e) => match db(e) {
            StoreError::Unavailable { message, source } => {
                StoreError::Unavailable { message, source }
            }
            other => StoreError::Unavailable {
                message: format!("could not configure a new database connection: {other}"),
                source: Some(Box::new(other)),
            },
        },
        other => unavailable("could not connect to the database", other),
    }
}

/// Maps a pool error: every way of not getting a connection is `Unavailable`.
pub(crate) fn pool(err: PoolError) -> StoreError {
    match err {
        PoolError::Backend(ManagerError::ConnectionError(e)) => connection(e),
        PoolError::Backend(ManagerError::QueryError(e)) => match db(e) {
            e @ StoreError::Unavailable { .. } => e,
            e => StoreError::Unavailable {
                message: format!("a new database connection failed its check: {e}"),
                source: Some(Box::new(e)),
            },
        },
        PoolError::Timeout(kind) => StoreError::Unavailable {
            message: format!("timed out getting a database connection ({kind:?})"),
            source: None,
        },
        PoolError::Closed => StoreError::Unavailable {
            message: "the connection pool is closed".into(),
            source: None,
        },
        other => StoreError::Unavailable {
            message: format!("could not get a database connection: {other}"),
            source: None,
        },
    }
}

/// A timed-out wait for a pooled connection.
pub(crate) fn acquire_timeout(after: std::time::Duration) -> StoreError {
    StoreError::Unavailable {
        message: format!("no database connection became available within {after:?}"),
        source: None,
    }
}
