//! The refresher's due-scan on 1,000,000 stored accounts (PostgreSQL).
//!
//! ```text
//! cargo bench -p integrations-benches --bench due_scan
//! ```
//!
//! Builds `oauth_accounts` once, in a schema of its own (`bench_due_<random>`, dropped at
//! the end), with one bulk `INSERT ... SELECT generate_series(1, 1000000)`: four
//! platforms, 5% `needs_reconnect`, expiries spread over 60 days so that about 0.1% are
//! due. Prints the `EXPLAIN` of the due-scan query (the `SELECT` of
//! `DieselStore::claim_due`, written out here) and panics if it scans `oauth_accounts`
//! sequentially. Then measures `claim_due(limit 256)` through the store itself, with a
//! lease that ends at its own `now` so that every iteration finds the same due rows.

use chrono::{DateTime, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use diesel::QueryableByName;
use diesel::sql_types::{Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use integrations_benches::stores::{self, StoreKind};
use integrations_core::Lease;
use std::time::{Duration, Instant};

const ROWS: i64 = 1_000_000;

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

/// The due-scan of `DieselStore::claim_due` on PostgreSQL, as it sends it.
const DUE_SCAN: &str = "SELECT id FROM oauth_accounts \
     WHERE status = 'active' AND expires_at <= $1 \
       AND (lease_until IS NULL OR lease_until <= $2) \
     ORDER BY expires_at ASC, id ASC LIMIT 256 FOR UPDATE SKIP LOCKED";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_else(|| panic!("valid date"))
}

async fn build(url: &str, schema: &str) {
    let mut conn = AsyncPgConnection::establish(url)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    conn.batch_execute(&format!("SET search_path TO \"{schema}\""))
        .await
        .unwrap_or_else(|e| panic!("search_path: {e}"));
    let started = Instant::now();
    diesel::sql_query(format!(
        "INSERT INTO oauth_accounts (user_id, provider, provider_account_id, access_token, \
           refresh_token, expires_at, token_issued_at, metadata, status, created_at, updated_at) \
         SELECT g, (ARRAY['instagram','tiktok','reddit','onlyfans'])[1 + g % 4], 'acct' || g, \
           'v1.bench.' || md5(g::text), 'v1.bench.' || md5((g + 1)::text), \
           $1 + ((g * 7919) % 5184000) * interval '1 second' - interval '1 hour', \
           $1 - interval '1 day', '{{}}'::jsonb, \
           CASE WHEN g % 20 = 0 THEN 'needs_reconnect' ELSE 'active' END, $1, $1 \
         FROM generate_series(1::bigint, {ROWS}) g"
    ))
    .bind::<Timestamptz, _>(t0())
    .execute(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("bulk insert: {e}"));
    conn.batch_execute("ANALYZE oauth_accounts")
        .await
        .unwrap_or_else(|e| panic!("analyze: {e}"));
    println!(
        "due_scan: inserted {ROWS} accounts in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let plan: Vec<PlanLine> = diesel::sql_query(format!("EXPLAIN (ANALYZE, BUFFERS) {DUE_SCAN}"))
        .bind::<Timestamptz, _>(t0() + chrono::Duration::minutes(10))
        .bind::<Timestamptz, _>(t0())
        .load(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("explain: {e}"));
    println!("due_scan: EXPLAIN (ANALYZE, BUFFERS) of the due-scan:");
    for l in &plan {
        println!("  {}", l.line);
    }
    let text: String = plan
        .iter()
        .map(|l| l.line.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        !text.contains("Seq Scan on oauth_accounts"),
        "the due-scan reads oauth_accounts sequentially"
    );
    assert!(
        text.contains("oauth_accounts_active_expiry_idx"),
        "the due-scan does not use oauth_accounts_active_expiry_idx"
    );
}

fn due_scan(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("runtime: {e}"));
    let url = integrations_benches::postgres_url();
    let (store, place) = rt
        .block_on(stores::open(StoreKind::Postgres, 4, &url))
        .unwrap_or_else(|e| panic!("PostgreSQL: {e}"));
    let stores::Place::Postgres { schema, .. } = &place else {
        panic!("not a PostgreSQL place")
    };
    rt.block_on(build(&url, schema));
    let now = t0();
    let lease = Lease {
        owner: "bench".into(),
        now,
        until: now,
    };
    let before = now + chrono::Duration::minutes(10);
    let claimed = rt
        .block_on(store.claim_due(before, 256, &lease))
        .unwrap_or_else(|e| panic!("claim_due: {e}"));
    assert_eq!(claimed.len(), 256, "claim_due should find 256 due accounts");
    let mut g = c.benchmark_group("due_scan_1m");
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("claim_due_256", |b| {
        b.to_async(&rt).iter(|| async {
            let rows = store
                .claim_due(before, 256, &lease)
                .await
                .unwrap_or_else(|e| panic!("claim_due: {e}"));
            assert_eq!(rows.len(), 256);
        })
    });
    // What the connection gauges cost after every refresher pass: one GROUP BY over
    // every row.
    g.sample_size(10);
    g.bench_function("count_accounts", |b| {
        b.to_async(&rt).iter(|| async {
            let counts = store
                .count_accounts(now)
                .await
                .unwrap_or_else(|e| panic!("count_accounts: {e}"));
            assert_eq!(counts.iter().map(|c| c.accounts).sum::<u64>(), 1_000_000);
        })
    });
    g.finish();
    drop(store);
    drop(place);
}

criterion_group!(benches, due_scan);
criterion_main!(benches);
