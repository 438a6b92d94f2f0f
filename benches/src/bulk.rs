//! A million TikTok accounts in minutes: the sandbox seeds the grants in one call
//! (`POST /_sandbox/tiktok/grants/seed`), and the same tokens, derived from the same seed,
//! are sealed and bulk-inserted into `oauth_accounts` as the store itself writes a new
//! TikTok account, 10,000 rows per `INSERT ... SELECT FROM unnest(...)`.
//!
//! [`check_rows`] holds the result against the real code: the TikTok provider's profile
//! of sampled accounts must equal the stored metadata, and the store must read the rows
//! back and the cipher open their tokens.

use crate::sandbox_proc::SandboxInfo;
use crate::stores::context;
use crate::{Result, USER_AGENT};
use chrono::{DateTime, Duration, Utc};
use diesel::sql_types::{Array, BigInt, Jsonb, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use integrations_core::store::USERNAME_KEY;
use integrations_core::{AccessToken, Provider, ProviderId, TokenCipher, TokenStore};
use integrations_sandbox::{GrantSummary, Platform, SeedGrants, SeededGrants, UserInfo};
use integrations_tiktok::{TikTokMetadata, TikTokProvider};

/// The scope of every seeded grant, as the sandbox's token reply states it (TikTok's
/// default `user.info.basic`), stored space-separated as the service stores scopes.
pub const SCOPE: &str = "user.info.basic";
/// TikTok's access-token lifetime (`expires_in` 7200, the sandbox's default).
pub const ACCESS_LIFETIME_SECS: i64 = 7_200;
/// TikTok's refresh-token lifetime (`refresh_expires_in`, 180 days).
pub const REFRESH_LIFETIME_SECS: i64 = 180 * 86_400;
/// Rows per insert statement.
pub const BATCH_ROWS: usize = 10_000;

/// The seeding request for `n` users `scale-0` … with a fresh random seed.
pub fn seed_request(n: u64) -> SeedGrants {
    let mut seed = [0u8; 24];
    rand::fill(&mut seed[..]);
    SeedGrants {
        user_prefix: "scale-".to_owned(),
        first: 0,
        count: n,
        seed: seed.iter().map(|b| format!("{b:02x}")).collect(),
        scopes: Vec::new(),
        client_id: None,
    }
}

/// Asks the sandbox to seed the grants.
pub async fn seed_sandbox(
    http: &reqwest::Client,
    info: &SandboxInfo,
    seed: &SeedGrants,
) -> Result<SeededGrants> {
    let response = http
        .post(format!("{}/_sandbox/tiktok/grants/seed", info.base_url))
        .json(seed)
        .send()
        .await?;
    let status = response.status();
    let body = response.text().await?;
    if status.as_u16() != 201 {
        return Err(format!("seeding answered {status}: {body}").into());
    }
    Ok(serde_json::from_str(&body)?)
}

/// The sandbox's refresh counts of the seeded users.
pub async fn summary(
    http: &reqwest::Client,
    info: &SandboxInfo,
    seed: &SeedGrants,
) -> Result<GrantSummary> {
    let response = http
        .get(format!("{}/_sandbox/tiktok/grants/summary", info.base_url))
        .query(&[("user_prefix", seed.user_prefix.as_str())])
        .send()
        .await?
        .error_for_status()?;
    Ok(response.json().await?)
}

/// The metadata the service stores for the TikTok account of sandbox user `user`: the
/// provider's [`TikTokMetadata`] of the profile the sandbox serves (with `user.info.basic`
/// only, TikTok returns no `username`, so the provider takes the display name), plus the
/// handle under [`USERNAME_KEY`].
pub fn metadata(base_url: &str, user: &str) -> Result<(String, serde_json::Value)> {
    let info = UserInfo::of(base_url, Platform::TikTok, user);
    let meta = TikTokMetadata {
        open_id: info.account_id.clone(),
        username: info.display_name.clone(),
        display_name: Some(info.display_name.clone()),
        avatar_url: Some(info.avatar_url),
    };
    let mut value = integrations_core::client::metadata_json(&meta)?;
    if let Some(fields) = value.as_object_mut() {
        fields.insert(USERNAME_KEY.to_owned(), info.display_name.into());
    }
    Ok((info.account_id, value))
}

/// One batch of rows, in column arrays.
#[derive(Default)]
struct Rows {
    user_id: Vec<i64>,
    account: Vec<String>,
    access: Vec<String>,
    refresh: Vec<String>,
    expires_at: Vec<DateTime<Utc>>,
    refresh_expires_at: Vec<DateTime<Utc>>,
    issued_at: Vec<DateTime<Utc>>,
    metadata: Vec<serde_json::Value>,
}

/// Builds rows `range` of the table: account `i` belongs to user `i + 1`, its tokens are
/// the seeded grant's, sealed; it was issued `ACCESS_LIFETIME_SECS + 1 + (i mod 600)`
/// seconds before `t0`, so it expired between 1 s and 10 min before `t0`.
fn build(
    range: std::ops::Range<u64>,
    seed: &SeedGrants,
    base_url: &str,
    cipher: &TokenCipher,
    t0: DateTime<Utc>,
) -> Result<Rows> {
    let mut rows = Rows::default();
    for i in range {
        let user = seed.user(i);
        let (open_id, meta) = metadata(base_url, &user)?;
        let tokens = seed.tokens(Platform::TikTok, i);
        let access = cipher.seal(
            context("tiktok", &open_id, "access_token"),
            &tokens.access_token,
        )?;
        let refresh = cipher.seal(
            context("tiktok", &open_id, "refresh_token"),
            &tokens.refresh_token,
        )?;
        let issued = t0 - Duration::seconds(ACCESS_LIFETIME_SECS + 1 + (i % 600) as i64);
        rows.user_id.push(i as i64 + 1);
        rows.account.push(open_id);
        rows.access.push(access.as_str().to_owned());
        rows.refresh.push(refresh.as_str().to_owned());
        rows.expires_at
            .push(issued + Duration::seconds(ACCESS_LIFETIME_SECS));
        rows.refresh_expires_at
            .push(issued + Duration::seconds(REFRESH_LIFETIME_SECS));
        rows.issued_at.push(issued);
        rows.metadata.push(meta);
    }
    Ok(rows)
}

/// The insert: the columns `NewAccountRow` (storage-diesel) writes for a new account, with
/// the same values: status `active`, no failures, version 1, `token_issued_at`,
/// `created_at` and `updated_at` all the connection time.
const INSERT: &str = "INSERT INTO oauth_accounts (user_id, provider, provider_account_id, \
     access_token, refresh_token, expires_at, refresh_expires_at, token_issued_at, token_type, \
     scope, metadata, status, refresh_failures, version, created_at, updated_at) \
     SELECT u, $9, a, at, rt, e, re, n, $10, $11, m, 'active', 0, 1, n, n \
     FROM unnest($1, $2, $3, $4, $5, $6, $7, $8) AS t(u, a, at, rt, e, re, n, m)";

async fn insert(conn: &mut AsyncPgConnection, rows: Rows) -> Result<usize> {
    let n = diesel::sql_query(INSERT)
        .bind::<Array<BigInt>, _>(rows.user_id)
        .bind::<Array<Text>, _>(rows.account)
        .bind::<Array<Text>, _>(rows.access)
        .bind::<Array<Text>, _>(rows.refresh)
        .bind::<Array<Timestamptz>, _>(rows.expires_at)
        .bind::<Array<Timestamptz>, _>(rows.refresh_expires_at)
        .bind::<Array<Timestamptz>, _>(rows.issued_at)
        .bind::<Array<Jsonb>, _>(rows.metadata)
        .bind::<Text, _>("tiktok")
        .bind::<Text, _>("Bearer")
        .bind::<Text, _>(SCOPE)
        .execute(conn)
        .await?;
    Ok(n)
}

/// A connection to `url` with `schema` as its search path.
pub async fn connect(url: &str, schema: &str) -> Result<AsyncPgConnection> {
    let mut conn = AsyncPgConnection::establish(url).await?;
    conn.batch_execute(&format!("SET search_path TO \"{schema}\""))
        .await?;
    Ok(conn)
}

/// Fills `oauth_accounts` of `schema` (migrated, empty) with one account per seeded grant,
/// two connections inserting while blocking threads build and seal the next batches; then
/// `ANALYZE` and a `CHECKPOINT`, so the drain that follows starts from a settled server.
/// Returns the rows inserted.
pub async fn fill(
    url: &str,
    schema: &str,
    seed: &SeedGrants,
    base_url: &str,
    cipher: &TokenCipher,
    t0: DateTime<Utc>,
) -> Result<u64> {
    let batches: Vec<std::ops::Range<u64>> = (seed.first..seed.first + seed.count)
        .step_by(BATCH_ROWS)
        .map(|start| start..(start + BATCH_ROWS as u64).min(seed.first + seed.count))
        .collect();
    let lanes = 2;
    let mut tasks = Vec::new();
    for lane in 0..lanes {
        let mine: Vec<_> = batches.iter().skip(lane).step_by(lanes).cloned().collect();
        let (url, schema, seed) = (url.to_owned(), schema.to_owned(), seed.clone());
        let (base_url, cipher) = (base_url.to_owned(), cipher.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = connect(&url, &schema).await?;
            let mut inserted = 0u64;
            for range in mine {
                let (seed, base_url, cipher) = (seed.clone(), base_url.clone(), cipher.clone());
                let rows = tokio::task::spawn_blocking(move || {
                    build(range, &seed, &base_url, &cipher, t0)
                })
                .await??;
                inserted += insert(&mut conn, rows).await? as u64;
            }
            Result::<u64>::Ok(inserted)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    let mut conn = connect(url, schema).await?;
    conn.batch_execute("ANALYZE oauth_accounts; CHECKPOINT")
        .await?;
    Ok(total)
}

/// Holds the filled table against the real code, on `sample` accounts spread over it: the
/// TikTok provider's profile (fetched from the sandbox with the seeded access token) is
/// exactly the stored metadata and account id; the store reads each row; the cipher opens
/// its tokens into the seeded ones.
pub async fn check_rows(
    store: &dyn TokenStore,
    cipher: &TokenCipher,
    tiktok: &TikTokProvider,
    seed: &SeedGrants,
    sample: u64,
) -> Result<()> {
    let provider = ProviderId::new("tiktok")?;
    let step = (seed.count / sample.max(1)).max(1);
    let mut checked = 0;
    for i in (seed.first..seed.first + seed.count).step_by(step as usize) {
        let tokens = seed.tokens(Platform::TikTok, i);
        let profile = tiktok
            .fetch_profile(&AccessToken::new(tokens.access_token.clone()))
            .await?;
        let record = store
            .find_account(&provider, &profile.account_id)
            .await?
            .ok_or_else(|| format!("no account for {} (index {i})", profile.account_id))?;
        let mut expected = profile.metadata.clone();
        if let (Some(fields), Some(u)) = (expected.as_object_mut(), &profile.username) {
            fields.insert(USERNAME_KEY.to_owned(), u.clone().into());
        }
        if record.metadata != expected {
            return Err(format!(
                "index {i}: stored metadata {} differs from the provider's {expected}",
                record.metadata
            )
            .into());
        }
        let open = |column: &str, sealed: &Option<integrations_core::SealedSecret>| {
            let sealed = sealed.as_ref().ok_or("a token column is empty")?;
            cipher
                .open(context("tiktok", &profile.account_id, column), sealed)
                .map(|s| s.to_string())
                .map_err(crate::BoxError::from)
        };
        if open("access_token", &record.access_token)? != tokens.access_token
            || open("refresh_token", &record.refresh_token)? != tokens.refresh_token
        {
            return Err(format!("index {i}: the stored tokens are not the seeded ones").into());
        }
        if record.scope.as_deref() != Some(SCOPE) || record.user_id.0 != i as i64 + 1 {
            return Err(format!("index {i}: scope or owner differs").into());
        }
        checked += 1;
    }
    if checked == 0 {
        return Err("no account was checked".into());
    }
    Ok(())
}

/// The TikTok provider pointed at the sandbox (used for the profile checks).
pub fn tiktok(info: &SandboxInfo) -> Result<TikTokProvider> {
    let c = &info.tiktok;
    let config = integrations_tiktok::TikTokConfig::builder()
        .client_key(c.client_id.clone())
        .client_secret(integrations_core::ClientSecret::new(
            c.client_secret.clone(),
        ))
        .redirect_uri(c.redirect_uri.clone())
        .www_base_url(info.tiktok_www())
        .api_base_url(info.tiktok_open())
        .user_agent(USER_AGENT)
        .build()?;
    Ok(TikTokProvider::new(config)?)
}

/// What the table says after a drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TableState {
    /// Rows.
    pub accounts: i64,
    /// Rows in `needs_reconnect`.
    pub needs_reconnect: i64,
    /// Active rows expiring within `window` of now: still due.
    pub still_due: i64,
    /// Rows still leased.
    pub leased: i64,
    /// Rows refreshed (version above 1).
    pub refreshed: i64,
}

/// Counts the table's rows by state (one scan).
pub async fn table_state(url: &str, schema: &str, window_secs: i64) -> Result<TableState> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        accounts: i64,
        #[diesel(sql_type = BigInt)]
        needs_reconnect: i64,
        #[diesel(sql_type = BigInt)]
        still_due: i64,
        #[diesel(sql_type = BigInt)]
        leased: i64,
        #[diesel(sql_type = BigInt)]
        refreshed: i64,
    }
    let mut conn = connect(url, schema).await?;
    let r: Row = diesel::sql_query(
        "SELECT count(*) AS accounts, \
         count(*) FILTER (WHERE status = 'needs_reconnect') AS needs_reconnect, \
         count(*) FILTER (WHERE status = 'active' AND expires_at <= now() + make_interval(secs => $1)) AS still_due, \
         count(*) FILTER (WHERE lease_owner IS NOT NULL) AS leased, \
         count(*) FILTER (WHERE version > 1) AS refreshed \
         FROM oauth_accounts",
    )
    .bind::<diesel::sql_types::Double, _>(window_secs as f64)
    .get_result(&mut conn)
    .await?;
    Ok(TableState {
        accounts: r.accounts,
        needs_reconnect: r.needs_reconnect,
        still_due: r.still_due,
        leased: r.leased,
        refreshed: r.refreshed,
    })
}
