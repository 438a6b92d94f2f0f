//! The two bare baselines: (a) raw TikTok refresh calls to the sandbox with a plain
//! reqwest client, (b) raw token `UPDATE`s with plain diesel, one row at a time and in
//! batches. Both run
//! `concurrency` spawned workers (like the refresher's spawned tasks) that take the next
//! item until none is left, and time every operation.

use crate::grants::Grant;
use crate::sandbox_proc::SandboxInfo;
use crate::{Result, USER_AGENT};
use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Text, Timestamptz};
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use serde::Deserialize;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a timed run did.
#[derive(Debug, Clone)]
pub struct Timed {
    /// Operations completed.
    pub ops: usize,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Per-operation latencies, seconds.
    pub latencies: Vec<f64>,
}

impl Timed {
    /// Operations per second.
    pub fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs `op(i)` for `i in 0..n` on `concurrency` spawned workers; fails on the first error.
pub async fn run_workers<F, Fut>(n: usize, concurrency: usize, op: F) -> Result<Timed>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let op = op.clone();
        let next = next.clone();
        workers.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, crate::BoxError>(latencies);
                }
                let t = Instant::now();
                op(i).await?;
                latencies.push(t.elapsed().as_secs_f64());
            }
        });
    }
    let mut latencies = Vec::with_capacity(n);
    while let Some(joined) = workers.join_next().await {
        latencies.extend(joined??);
    }
    Ok(Timed {
        ops: latencies.len(),
        elapsed: started.elapsed(),
        latencies,
    })
}

#[derive(Deserialize)]
struct TokenReply {
    access_token: String,
    refresh_token: String,
}

/// Baseline (a): one `POST /v2/oauth/token/` (`grant_type=refresh_token`) per grant,
/// reading the JSON reply and keeping the rotated tokens in `grants`.
pub async fn http_refresh(
    info: &SandboxInfo,
    grants: &mut [Grant],
    concurrency: usize,
) -> Result<Timed> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        .timeout(Duration::from_secs(30))
        .build()?;
    let url = format!("{}/v2/oauth/token/", info.tiktok_open());
    let key = info.tiktok.client_id.clone();
    let secret = info.tiktok.client_secret.clone();
    let shared: Arc<Vec<Mutex<Grant>>> = Arc::new(grants.iter().cloned().map(Mutex::new).collect());
    let slots = shared.clone();
    let timed = run_workers(grants.len(), concurrency, move |i| {
        let client = client.clone();
        let url = url.clone();
        let key = key.clone();
        let secret = secret.clone();
        let slots = slots.clone();
        async move {
            let refresh = lock(&slots[i]).refresh_token.clone();
            let form = [
                ("client_key", key.as_str()),
                ("client_secret", secret.as_str()),
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.as_str()),
            ];
            let response = client.post(&url).form(&form).send().await?;
            let status = response.status();
            if !status.is_success() {
                return Err(format!("raw refresh answered HTTP {status}").into());
            }
            let reply: TokenReply = response.json().await?;
            let mut g = lock(&slots[i]);
            g.access_token = reply.access_token;
            g.refresh_token = reply.refresh_token;
            Ok(())
        }
    })
    .await?;
    for (g, slot) in grants.iter_mut().zip(shared.iter()) {
        *g = lock(slot).clone();
    }
    Ok(timed)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One row's new token columns for baseline (b).
#[derive(Clone)]
pub struct RowUpdate {
    /// The account id.
    pub id: i64,
    /// Sealed access token text.
    pub access_token: String,
    /// Sealed refresh token text.
    pub refresh_token: String,
}

impl std::fmt::Debug for RowUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowUpdate")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

const UPDATE_SQL_PG: &str = "UPDATE oauth_accounts SET access_token = $1, refresh_token = $2, \
     expires_at = $3, updated_at = $4 WHERE id = $5";
const UPDATE_SQL_SQLITE: &str = "UPDATE oauth_accounts SET access_token = ?, refresh_token = ?, \
     expires_at = ?, updated_at = ? WHERE id = ?";

/// A deadpool of `size` `AsyncPgConnection`s with `search_path` set to `schema`.
fn pg_pool(url: &str, schema: &str, size: usize) -> Result<Pool<AsyncPgConnection>> {
    let set_path = format!("SET search_path TO \"{schema}\"");
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    config.custom_setup = Box::new(move |url| {
        let url = url.to_owned();
        let set_path = set_path.clone();
        Box::pin(async move {
            let mut conn = AsyncPgConnection::establish(&url).await?;
            conn.batch_execute(&set_path)
                .await
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        })
    });
    let manager = AsyncDieselConnectionManager::new_with_config(url, config);
    Ok(Pool::builder(manager).max_size(size.max(1)).build()?)
}

/// Baseline (b) on PostgreSQL: one autocommit `UPDATE ... WHERE id = $5` per row, on a
/// deadpool of `pool` `AsyncPgConnection`s with `search_path` set to `schema`.
pub async fn pg_updates(
    url: &str,
    schema: &str,
    rows: Vec<RowUpdate>,
    concurrency: usize,
    pool: usize,
) -> Result<Timed> {
    let pool = pg_pool(url, schema, pool)?;
    let rows = Arc::new(rows);
    let n = rows.len();
    let expires: DateTime<Utc> = Utc::now() + chrono::Duration::hours(24);
    run_workers(n, concurrency, move |i| {
        let pool = pool.clone();
        let rows = rows.clone();
        async move {
            let r = &rows[i];
            let mut conn = pool.get().await?;
            let changed = diesel::sql_query(UPDATE_SQL_PG)
                .bind::<Text, _>(&r.access_token)
                .bind::<Text, _>(&r.refresh_token)
                .bind::<Timestamptz, _>(expires)
                .bind::<Timestamptz, _>(Utc::now())
                .bind::<BigInt, _>(r.id)
                .execute(&mut conn)
                .await?;
            if changed != 1 {
                return Err(format!("UPDATE changed {changed} rows").into());
            }
            Ok(())
        }
    })
    .await
}

type SqliteConn = SyncConnectionWrapper<diesel::SqliteConnection>;

/// Baseline (b) on SQLite: one autocommit `UPDATE ... WHERE id = ?` per row, on the same
/// file with the store's pragmas (WAL, `synchronous = NORMAL`), through a deadpool of
/// one connection: SQLite has one writer at a time, so extra writer connections only
/// add `busy_timeout` sleeps.
pub async fn sqlite_updates(
    path: &Path,
    rows: Vec<RowUpdate>,
    concurrency: usize,
) -> Result<Timed> {
    let mut config = ManagerConfig::<SqliteConn>::default();
    config.custom_setup = Box::new(|url| {
        let url = url.to_owned();
        Box::pin(async move {
            let mut conn = SqliteConn::establish(&url).await?;
            conn.batch_execute(
                "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;",
            )
            .await
            .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        })
    });
    let manager = AsyncDieselConnectionManager::new_with_config(path.display().to_string(), config);
    let pool = Pool::builder(manager).max_size(1).build()?;
    let rows = Arc::new(rows);
    let n = rows.len();
    let fmt = "%Y-%m-%d %H:%M:%S%.6fZ";
    let expires = (Utc::now() + chrono::Duration::hours(24))
        .format(fmt)
        .to_string();
    run_workers(n, concurrency, move |i| {
        let pool = pool.clone();
        let rows = rows.clone();
        let expires = expires.clone();
        async move {
            let r = &rows[i];
            let mut conn = pool.get().await?;
            let changed = diesel::sql_query(UPDATE_SQL_SQLITE)
                .bind::<Text, _>(r.access_token.clone())
                .bind::<Text, _>(r.refresh_token.clone())
                .bind::<Text, _>(expires)
                .bind::<Text, _>(Utc::now().format(fmt).to_string())
                .bind::<BigInt, _>(r.id)
                .execute(&mut conn)
                .await?;
            if changed != 1 {
                return Err(format!("UPDATE changed {changed} rows").into());
            }
            Ok(())
        }
    })
    .await
}

/// Rows written per statement or transaction by the batched form of baseline (b).
pub const BATCH_ROWS: usize = 256;

/// The batched form of baseline (b), as a hand-tuned program writes such rows: batches of
/// [`BATCH_ROWS`], one `UPDATE ... FROM unnest(...)` statement each on PostgreSQL.
/// `ops` counts rows; latencies are per batch.
pub async fn pg_updates_batched(
    url: &str,
    schema: &str,
    rows: Vec<RowUpdate>,
    concurrency: usize,
    pool: usize,
) -> Result<Timed> {
    use diesel::sql_types::Array;
    let pool = pg_pool(url, schema, pool)?;
    let total = rows.len();
    let batches: Arc<Vec<Vec<RowUpdate>>> =
        Arc::new(rows.chunks(BATCH_ROWS).map(<[RowUpdate]>::to_vec).collect());
    let expires: DateTime<Utc> = Utc::now() + chrono::Duration::hours(24);
    let mut timed = run_workers(batches.len(), concurrency, move |i| {
        let pool = pool.clone();
        let batches = batches.clone();
        async move {
            let batch = &batches[i];
            let ids: Vec<i64> = batch.iter().map(|r| r.id).collect();
            let access: Vec<&str> = batch.iter().map(|r| r.access_token.as_str()).collect();
            let refresh: Vec<&str> = batch.iter().map(|r| r.refresh_token.as_str()).collect();
            let mut conn = pool.get().await?;
            let changed = diesel::sql_query(
                "UPDATE oauth_accounts AS a SET access_token = u.at, refresh_token = u.rt, \
                 expires_at = $4, updated_at = $5 \
                 FROM unnest($1::bigint[], $2::text[], $3::text[]) AS u(id, at, rt) \
                 WHERE a.id = u.id",
            )
            .bind::<Array<BigInt>, _>(&ids)
            .bind::<Array<Text>, _>(&access)
            .bind::<Array<Text>, _>(&refresh)
            .bind::<Timestamptz, _>(expires)
            .bind::<Timestamptz, _>(Utc::now())
            .execute(&mut conn)
            .await?;
            if changed != batch.len() {
                return Err(format!("UPDATE changed {changed} of {} rows", batch.len()).into());
            }
            Ok(())
        }
    })
    .await?;
    timed.ops = total;
    Ok(timed)
}

/// The batched form of baseline (b) on SQLite: one transaction of [`BATCH_ROWS`] single-row
/// `UPDATE`s each (the commit is what costs). `ops` counts rows; latencies are per batch.
pub async fn sqlite_updates_batched(
    path: &Path,
    rows: Vec<RowUpdate>,
    concurrency: usize,
) -> Result<Timed> {
    let mut conn = SqliteConn::establish(&path.display().to_string()).await?;
    conn.batch_execute(
        "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;",
    )
    .await?;
    let conn = Arc::new(tokio::sync::Mutex::new(conn));
    let total = rows.len();
    let batches: Arc<Vec<Vec<RowUpdate>>> =
        Arc::new(rows.chunks(BATCH_ROWS).map(<[RowUpdate]>::to_vec).collect());
    let fmt = "%Y-%m-%d %H:%M:%S%.6fZ";
    let expires = (Utc::now() + chrono::Duration::hours(24))
        .format(fmt)
        .to_string();
    let mut timed = run_workers(batches.len(), concurrency, move |i| {
        let conn = conn.clone();
        let batches = batches.clone();
        let expires = expires.clone();
        async move {
            let batch = batches[i].clone();
            let now = Utc::now().format(fmt).to_string();
            // One writer: SQLite serializes writers anyway.
            let mut conn = conn.lock().await;
            conn.immediate_transaction::<_, diesel::result::Error, _>(async |c| {
                for r in &batch {
                    let changed = diesel::sql_query(UPDATE_SQL_SQLITE)
                        .bind::<Text, _>(&r.access_token)
                        .bind::<Text, _>(&r.refresh_token)
                        .bind::<Text, _>(&expires)
                        .bind::<Text, _>(&now)
                        .bind::<BigInt, _>(r.id)
                        .execute(c)
                        .await?;
                    if changed != 1 {
                        return Err(diesel::result::Error::NotFound);
                    }
                }
                Ok(())
            })
            .await?;
            Ok(())
        }
    })
    .await?;
    timed.ops = total;
    Ok(timed)
}
