//! Test helpers (feature `testing`): a PostgreSQL schema of its own per test.
//!
//! The server's URL comes from `INTEGRATIONS_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). An unreachable server fails the test with
//! the command that would fix it, unless `INTEGRATIONS_SKIP_POSTGRES=1`, in which case
//! [`PgSchema::create`] says it skips and returns `None`.

use crate::{DieselStore, StoreOptions};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use std::sync::atomic::{AtomicU64, Ordering};

/// The variable holding the test server's URL.
pub const POSTGRES_URL_ENV: &str = "INTEGRATIONS_TEST_POSTGRES_URL";
/// The variable that turns an unreachable server into a skip (`1`).
pub const SKIP_POSTGRES_ENV: &str = "INTEGRATIONS_SKIP_POSTGRES";
/// The URL used when [`POSTGRES_URL_ENV`] is unset.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The test server's URL.
pub fn postgres_url() -> String {
    std::env::var(POSTGRES_URL_ENV).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// A schema of its own on the test server, dropped (CASCADE) when this value drops.
#[derive(Debug)]
pub struct PgSchema {
    /// The schema's name (`itest_<pid>_<time>_<n>`).
    pub name: String,
    url: String,
}

impl PgSchema {
    /// Creates a fresh schema; `None` (after saying so) when PostgreSQL tests are skipped.
    /// Panics with a clear message when the server cannot be reached.
    pub async fn create(test: &str) -> Option<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let url = postgres_url();
        let mut conn = match AsyncPgConnection::establish(&url).await {
            Ok(c) => c,
            Err(e) if std::env::var(SKIP_POSTGRES_ENV).is_ok_and(|v| v == "1") => {
                eprintln!("SKIPPED {test}: PostgreSQL unreachable ({e}) and {SKIP_POSTGRES_ENV}=1");
                return None;
            }
            Err(e) => panic!(
                "{test}: cannot connect to PostgreSQL at {POSTGRES_URL_ENV} (default \
                 {DEFAULT_POSTGRES_URL}): {e}. Start a server, point {POSTGRES_URL_ENV} at one, \
                 or set {SKIP_POSTGRES_ENV}=1 to skip the PostgreSQL tests."
            ),
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("itest_{:x}_{nanos:x}_{n}", std::process::id());
        conn.batch_execute(&format!("CREATE SCHEMA \"{name}\""))
            .await
            .unwrap_or_else(|e| panic!("{test}: CREATE SCHEMA failed: {e}"));
        Some(Self { name, url })
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Store options on this schema with a pool of 8.
    pub fn options(&self) -> StoreOptions {
        StoreOptions {
            schema: Some(self.name.clone()),
            max_connections: 8,
            ..StoreOptions::default()
        }
    }

    /// A store (its own pool of 8) on this schema, migrated.
    pub async fn store(&self) -> DieselStore {
        self.store_with(self.options()).await
    }

    /// A store on this schema with a pool of `max_connections`.
    pub async fn store_pool(&self, max_connections: usize) -> DieselStore {
        self.store_with(StoreOptions {
            max_connections,
            ..self.options()
        })
        .await
    }

    /// A store with these options (their `schema` should be this one).
    pub async fn store_with(&self, options: StoreOptions) -> DieselStore {
        DieselStore::connect_with(&self.url, options)
            .await
            .unwrap_or_else(|e| panic!("connect to PostgreSQL schema {}: {e}", self.name))
    }

    /// A direct connection with `search_path` set to the schema, for raw SQL.
    pub async fn raw(&self) -> AsyncPgConnection {
        let mut conn = AsyncPgConnection::establish(&self.url)
            .await
            .unwrap_or_else(|e| panic!("raw connection: {e}"));
        conn.batch_execute(&format!("SET search_path TO \"{}\"", self.name))
            .await
            .unwrap_or_else(|e| panic!("set search_path: {e}"));
        conn
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let url = self.url.clone();
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        // Its own thread and runtime: Drop cannot await, and it may run inside (or after)
        // the test's runtime.
        let done = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut conn) = AsyncPgConnection::establish(&url).await
                    && let Err(e) = conn.batch_execute(&sql).await
                {
                    eprintln!("cleanup: {sql}: {e}");
                }
            });
        })
        .join();
        if done.is_err() {
            eprintln!("cleanup of schema {} panicked", self.name);
        }
    }
}
