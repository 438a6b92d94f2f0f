//! The three stores under test, each fresh per round, and filling them with due accounts.

use crate::Result;
use crate::baseline::RowUpdate;
use crate::grants::Grant;
use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use futures::StreamExt;
use integrations_core::{
    EventId, MemoryStore, NewAccount, ProviderId, SecretContext, TokenCipher, TokenStore, Upserted,
    UserId,
};
use integrations_storage_diesel::{DieselStore, StoreOptions};
use std::path::PathBuf;
use std::sync::Arc;

/// Which store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// `integrations_core::MemoryStore`.
    Memory,
    /// `DieselStore` on a SQLite file (WAL) in a temporary directory.
    Sqlite,
    /// `DieselStore` on PostgreSQL, in a schema of its own.
    Postgres,
}

impl StoreKind {
    /// The name used on the command line and in the output.
    pub fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "memory" => Some(Self::Memory),
            "sqlite" => Some(Self::Sqlite),
            "postgres" | "postgresql" => Some(Self::Postgres),
            _ => None,
        }
    }
}

/// Where a fresh store lives; removed on drop.
#[derive(Debug)]
pub enum Place {
    /// Nothing on disk.
    Memory,
    /// A temporary directory holding `bench.db`.
    Sqlite(PathBuf),
    /// A PostgreSQL schema (dropped with CASCADE).
    Postgres {
        /// The server.
        url: String,
        /// The schema.
        schema: String,
    },
}

impl Place {
    /// The SQLite file URL, for the baseline.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        match self {
            Place::Sqlite(dir) => Some(dir.join("bench.db")),
            _ => None,
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        match self {
            Place::Memory => {}
            Place::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Place::Postgres { url, schema } => {
                let url = url.clone();
                let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
                // Drop cannot await; use a small runtime on its own thread.
                let _ = std::thread::spawn(move || {
                    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    else {
                        return;
                    };
                    rt.block_on(async move {
                        if let Ok(mut c) = AsyncPgConnection::establish(&url).await
                            && let Err(e) = c.batch_execute(&sql).await
                        {
                            eprintln!("cleanup: {sql}: {e}");
                        }
                    });
                })
                .join();
            }
        }
    }
}

/// A fresh store of `kind` with `pool` connections (SQLite and PostgreSQL).
pub async fn open(
    kind: StoreKind,
    pool: usize,
    postgres_url: &str,
) -> Result<(Arc<dyn TokenStore>, Place)> {
    match kind {
        StoreKind::Memory => Ok((Arc::new(MemoryStore::new()), Place::Memory)),
        StoreKind::Sqlite => {
            let dir =
                std::env::temp_dir().join(format!("integrations-bench-{}", crate::random_suffix()));
            std::fs::create_dir_all(&dir)?;
            let place = Place::Sqlite(dir.clone());
            let url = format!("sqlite://{}", dir.join("bench.db").display());
            let store = DieselStore::connect_with(
                &url,
                StoreOptions {
                    max_connections: pool,
                    ..StoreOptions::default()
                },
            )
            .await?;
            Ok((Arc::new(store), place))
        }
        StoreKind::Postgres => {
            let schema = format!("bench_{}", crate::random_suffix());
            let place = Place::Postgres {
                url: postgres_url.to_owned(),
                schema: schema.clone(),
            };
            let store = DieselStore::connect_with(
                postgres_url,
                StoreOptions {
                    max_connections: pool,
                    schema: Some(schema),
                    ..StoreOptions::default()
                },
            )
            .await
            .map_err(|e| format!("PostgreSQL at {}: {e}", redact(postgres_url)))?;
            Ok((Arc::new(store), place))
        }
    }
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "(unparsable URL)".to_owned(),
    }
}

/// The sealing context of a TikTok account's token column, as the service uses it.
pub fn context<'a>(provider: &'a str, account: &'a str, column: &str) -> SecretContext<'a> {
    match column {
        "refresh_token" => SecretContext::refresh_token(provider, account),
        _ => SecretContext::access_token(provider, account),
    }
}

/// Inserts one account per grant (grant `i` for user `user_of(i)`), tokens sealed by
/// `cipher`, expiring at `expires_at`; `concurrency` upserts at a time. Returns the
/// account ids, in grant order.
pub async fn fill(
    store: &Arc<dyn TokenStore>,
    user_of: impl Fn(usize) -> UserId,
    cipher: &TokenCipher,
    grants: &[Grant],
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
    concurrency: usize,
) -> Result<Vec<i64>> {
    let provider = ProviderId::new("tiktok")?;
    let mut accounts = Vec::with_capacity(grants.len());
    for (i, g) in grants.iter().enumerate() {
        let seal =
            |column: &str, text: &str| cipher.seal(context("tiktok", &g.open_id, column), text);
        accounts.push(NewAccount {
            user_id: user_of(i),
            provider: provider.clone(),
            provider_account_id: g.open_id.clone(),
            access_token: Some(seal("access_token", &g.access_token)?),
            refresh_token: Some(seal("refresh_token", &g.refresh_token)?),
            expires_at: Some(expires_at),
            refresh_expires_at: Some(now + chrono::Duration::days(365)),
            token_type: Some("Bearer".into()),
            scope: Some(g.scopes.join(" ")),
            metadata: serde_json::json!({ "open_id": g.open_id, "username": g.user }),
            now,
        });
    }
    let results: Vec<Result<i64>> = futures::stream::iter(accounts)
        .map(|a| {
            let store = store.clone();
            async move {
                match store.upsert_account(a, EventId::random()).await? {
                    Upserted::Inserted(r) => Ok(r.id),
                    Upserted::Updated(_) => Err("an account was already there".into()),
                }
            }
        })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

/// Reads the rotated tokens back into `grants` (same order as `ids`) and counts the
/// refresh tokens that did not change. Also returns each row's sealed token columns, for
/// baseline (b).
pub async fn read_back(
    store: &Arc<dyn TokenStore>,
    cipher: &TokenCipher,
    ids: &[i64],
    grants: &mut [Grant],
    concurrency: usize,
) -> Result<(usize, Vec<RowUpdate>)> {
    let records: Vec<Result<integrations_core::AccountRecord>> =
        futures::stream::iter(ids.iter().copied())
            .map(|id| {
                let store = store.clone();
                async move {
                    store
                        .get_account(id)
                        .await?
                        .ok_or_else(|| format!("account {id} vanished").into())
                }
            })
            .buffered(concurrency.max(1))
            .collect()
            .await;
    let mut unchanged = 0;
    let mut rows = Vec::with_capacity(ids.len());
    for (g, r) in grants.iter_mut().zip(records) {
        let r = r?;
        let open = |column: &str, sealed: &Option<integrations_core::SealedSecret>| {
            let sealed = sealed.as_ref().ok_or("a token is missing after refresh")?;
            cipher
                .open(context("tiktok", &g.open_id, column), sealed)
                .map(|s| s.to_string())
                .map_err(crate::BoxError::from)
        };
        let refresh = open("refresh_token", &r.refresh_token)?;
        let access = open("access_token", &r.access_token)?;
        if refresh == g.refresh_token {
            unchanged += 1;
        }
        g.refresh_token = refresh;
        g.access_token = access;
        if let (Some(a), Some(rt)) = (&r.access_token, &r.refresh_token) {
            rows.push(RowUpdate {
                id: r.id,
                access_token: a.as_str().to_owned(),
                refresh_token: rt.as_str().to_owned(),
            });
        }
    }
    Ok((unchanged, rows))
}
