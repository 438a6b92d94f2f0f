//! Shared set-up of the examples' integration tests: a PostgreSQL schema of its own per
//! test (the approach of `storage-diesel/tests/common`), the sandbox with the real TikTok
//! provider, and connecting many sandbox users through `Integrations` concurrently.
//!
//! PostgreSQL: the URL comes from `INTEGRATIONS_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). An unreachable server fails the test, unless
//! `INTEGRATIONS_SKIP_POSTGRES=1`, in which case the test says it skips.
#![allow(dead_code, unreachable_pub)]

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use integrations_core::CallbackParams;
use integrations_core::{ClientSecret, Integrations, ServiceConfig, TokenCipher, UserId};
use integrations_sandbox::{Consent, Platform, Sandbox, SandboxConfig};
use integrations_storage_diesel::{DieselStore, StoreOptions};
use integrations_tiktok::{TikTokConfig, TikTokProvider};
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

pub const POSTGRES_URL_ENV: &str = "INTEGRATIONS_TEST_POSTGRES_URL";
pub const SKIP_POSTGRES_ENV: &str = "INTEGRATIONS_SKIP_POSTGRES";
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn postgres_url() -> String {
    std::env::var(POSTGRES_URL_ENV).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// A schema of its own on the test server, dropped (CASCADE) when this value drops.
#[derive(Debug)]
pub struct PgSchema {
    pub name: String,
    url: String,
}

impl PgSchema {
    /// Creates a fresh schema; `None` (after saying so) when PostgreSQL tests are skipped.
    pub async fn create(test: &str) -> Option<Self> {
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
        let name = format!("extest_{:x}_{nanos:x}", std::process::id());
        conn.batch_execute(&format!("CREATE SCHEMA \"{name}\""))
            .await
            .unwrap_or_else(|e| panic!("{test}: CREATE SCHEMA failed: {e}"));
        Some(Self { name, url })
    }

    /// A store (its own pool) on this schema.
    pub async fn store(&self, max_connections: usize) -> DieselStore {
        DieselStore::connect_with(
            &self.url,
            StoreOptions {
                schema: Some(self.name.clone()),
                max_connections,
                ..StoreOptions::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("connect to PostgreSQL schema {}: {e}", self.name))
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let url = self.url.clone();
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        // Its own thread and runtime: Drop cannot await and may run inside a runtime.
        let _ = std::thread::spawn(move || {
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
    }
}

/// The redirect URI registered for the sandbox's demo clients (the sandbox default).
pub const REDIRECT: &str = "http://127.0.0.1:3000/callback/tiktok";

/// A sandbox answering consent at once.
pub async fn sandbox() -> Sandbox {
    Sandbox::start_with(SandboxConfig {
        auto_consent: Some(Consent::Allow),
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

/// The real TikTok provider pointed at the sandbox (both user-info scopes, so the profile
/// is one request).
pub fn tiktok(sandbox: &Sandbox) -> Arc<TikTokProvider> {
    let client = sandbox.client(Platform::TikTok);
    Arc::new(
        TikTokProvider::new(
            TikTokConfig::builder()
                .client_key(client.client_id.clone())
                .client_secret(ClientSecret::new(client.client_secret.clone()))
                .redirect_uri(REDIRECT)
                .scopes(["user.info.basic", "user.info.profile"])
                .www_base_url(sandbox.tiktok_www())
                .api_base_url(sandbox.tiktok_open())
                .user_agent(integrations_examples::USER_AGENT)
                .build()
                .expect("valid config"),
        )
        .expect("provider"),
    )
}

/// An `Integrations` over `store` with TikTok, no connect rate limit.
pub fn instance(
    store: Arc<dyn integrations_core::TokenStore>,
    cipher: &TokenCipher,
    provider: Arc<TikTokProvider>,
    config: ServiceConfig,
) -> Integrations {
    Integrations::builder(store, cipher.clone())
        .provider(provider)
        .config(ServiceConfig {
            connect_limit: usize::MAX,
            ..config
        })
        .build()
}

/// The sandbox user of account number `n`.
pub fn sandbox_user(n: usize) -> String {
    format!("u{n}")
}

/// The host user owning account number `n` (ten accounts per user).
pub fn host_user(n: usize) -> UserId {
    UserId(1 + (n / 10) as i64)
}

/// Connects sandbox users `u0..u{count}` through connect → authorize → callback, spread
/// over `instances`, `concurrency` at a time. Returns `(n, provider_account_id)` pairs.
pub async fn connect_many(
    instances: &[Integrations],
    count: usize,
    concurrency: usize,
) -> Vec<(usize, String)> {
    let limit = Arc::new(Semaphore::new(concurrency));
    let mut tasks = JoinSet::new();
    for n in 0..count {
        let i = instances[n % instances.len()].clone();
        let limit = limit.clone();
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("semaphore open");
            let user = host_user(n);
            let start = i.connect(user, "tiktok", None).await.expect("connect");
            let mut url = start.auth_url.clone();
            url.query_pairs_mut()
                .append_pair("sandbox_user", &sandbox_user(n));
            let params = authorize(&url).await;
            let c = i.callback(user, "tiktok", &params).await.expect("callback");
            (n, c.account.provider_account_id)
        });
    }
    let mut out = Vec::with_capacity(count);
    while let Some(r) = tasks.join_next().await {
        out.push(r.expect("connect task"));
    }
    out.sort();
    out
}

/// Follows an authorize URL of a sandbox in automatic-consent mode (one 302 back to the
/// redirect URI) with one shared HTTP client, and returns the callback parameters.
pub async fn authorize(url: &url::Url) -> CallbackParams {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    let client = CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(integrations_examples::USER_AGENT)
            .build()
            .expect("HTTP client")
    });
    let resp = client.get(url.clone()).send().await.expect("authorize");
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("authorize answered {} without a redirect", resp.status()));
    let back = url::Url::parse(location).expect("absolute redirect");
    assert!(back.as_str().starts_with(REDIRECT), "{back}");
    CallbackParams::from_query(back.query().unwrap_or_default())
}
