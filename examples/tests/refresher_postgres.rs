//! The refresher over PostgreSQL: 2,000 TikTok accounts, connected through the real
//! provider against the sandbox (which rotates refresh tokens), refreshed by three
//! `Integrations` instances with their own pools at the same time.

mod common;

use chrono::{DateTime, Utc};
use common::{PgSchema, connect_many, host_user, sandbox, sandbox_user, tiktok};
use integrations_core::{
    AccountRecord, Clock, EncryptionKey, Integrations, RefreshLimits, RefreshReport, ServiceConfig,
    StoredStatus, TokenCipher, TokenStore, UserId,
};
use integrations_sandbox::{Faults, Platform, Sandbox};
use integrations_storage_diesel::DieselStore;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

const ACCOUNTS: usize = 2000;
/// Access tokens issued while connecting live this long: inside the refresh window, and
/// due once half of it is gone.
const SHORT: Duration = Duration::from_secs(300);
const WINDOW: Duration = Duration::from_secs(600);

/// The wall clock, set ahead once the accounts are connected: a pass refreshes a token
/// once half its lifetime is gone, and the passes run as if that time had passed, while
/// the tokens are still valid at the sandbox (which keeps the real time).
#[derive(Debug, Default)]
struct AheadClock {
    ahead_secs: AtomicI64,
}

impl Clock for AheadClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::seconds(self.ahead_secs.load(Ordering::SeqCst))
    }
}

struct World {
    _schema: PgSchema,
    sandbox: Sandbox,
    stores: Vec<Arc<DieselStore>>,
    instances: Vec<Integrations>,
    accounts: Vec<(usize, String)>,
}

async fn world(test: &str) -> Option<World> {
    let schema = PgSchema::create(test).await?;
    let sandbox = sandbox().await;
    let provider = tiktok(&sandbox);
    let cipher = TokenCipher::new(EncryptionKey::generate());
    let clock = Arc::new(AheadClock::default());
    let mut stores = Vec::new();
    let mut instances = Vec::new();
    for _ in 0..3 {
        let store = Arc::new(schema.store_pool(8).await);
        instances.push(
            Integrations::builder(store.clone(), cipher.clone())
                .provider(provider.clone())
                .clock(clock.clone())
                .config(ServiceConfig {
                    connect_limit: usize::MAX,
                    ..ServiceConfig::default()
                })
                .build(),
        );
        stores.push(store);
    }
    sandbox.set_token_lifetime(Platform::TikTok, SHORT);
    let started = Instant::now();
    let accounts = connect_many(&instances, ACCOUNTS, 48).await;
    eprintln!(
        "{test}: connected {ACCOUNTS} accounts through the provider in {:?}",
        started.elapsed()
    );
    // Refreshed tokens live a day: once refreshed, an account is no longer due.
    sandbox.set_token_lifetime(Platform::TikTok, Duration::from_secs(86_400));
    // Past half the connected tokens' life: every account is due.
    let half = SHORT.as_secs() / 2;
    clock.ahead_secs.store(half as i64 + 10, Ordering::SeqCst);
    assert_eq!(sandbox.counters(Platform::TikTok).grants.len(), ACCOUNTS);
    Some(World {
        _schema: schema,
        sandbox,
        stores,
        instances,
        accounts,
    })
}

fn limits() -> RefreshLimits {
    RefreshLimits {
        batch: 128,
        concurrency: 16,
        per_provider: 16,
        ..RefreshLimits::default()
    }
}

/// One pass on every instance at the same time; the reports summed.
async fn pass_everywhere(instances: &[Integrations]) -> RefreshReport {
    let started = Instant::now();
    let tasks: Vec<_> = instances
        .iter()
        .map(|i| {
            let i = i.clone();
            tokio::spawn(async move { i.refresh_due(WINDOW, limits()).await.expect("pass") })
        })
        .collect();
    let mut total = RefreshReport::default();
    for t in tasks {
        let r = t.await.expect("pass task");
        total.claimed += r.claimed;
        total.refreshed += r.refreshed;
        total.needs_reconnect += r.needs_reconnect;
        total.failed_transient += r.failed_transient;
        total.failed_other += r.failed_other;
        total.skipped_leased += r.skipped_leased;
        total.skipped_not_refreshable += r.skipped_not_refreshable;
    }
    eprintln!(
        "three concurrent passes took {:?}: {total:?}",
        started.elapsed()
    );
    total
}

/// Every stored account, by sandbox account number (read per host user: ten a user).
async fn snapshot(
    store: &DieselStore,
    accounts: &[(usize, String)],
) -> HashMap<usize, AccountRecord> {
    let number: HashMap<&str, usize> = accounts.iter().map(|(n, a)| (a.as_str(), *n)).collect();
    let mut out = HashMap::new();
    for user in 1..=host_user(ACCOUNTS - 1).0 {
        for r in store.list_accounts(UserId(user)).await.expect("read") {
            let n = number[r.provider_account_id.as_str()];
            assert_eq!(r.user_id, host_user(n));
            out.insert(n, r);
        }
    }
    assert_eq!(out.len(), accounts.len(), "no account lost or added");
    out
}

/// The access token of account `n` is accepted by the sandbox's user-info endpoint.
async fn token_works(w: &World, n: usize, account: &str) {
    let i = &w.instances[n % 3];
    let token = i
        .access_token(host_user(n), "tiktok", account)
        .await
        .expect("stored token opens");
    let profile = i
        .provider("tiktok")
        .expect("registered")
        .fetch_profile(&token)
        .await
        .unwrap_or_else(|e| panic!("token of u{n} refused by the sandbox: {e}"));
    assert_eq!(profile.account_id, account);
}

fn assert_all_refreshed_once(w: &World) {
    let counters = w.sandbox.counters(Platform::TikTok);
    assert_eq!(counters.refresh_ok, ACCOUNTS as u64, "{counters:?}");
    assert_eq!(counters.grants.len(), ACCOUNTS);
    let twice: Vec<_> = counters
        .grants
        .iter()
        .filter(|g| g.refreshes != 1)
        .map(|g| (&g.user, g.refreshes))
        .collect();
    assert!(
        twice.is_empty(),
        "grants not refreshed exactly once: {twice:?}"
    );
    for n in [0, 1, 2, 999, ACCOUNTS - 1] {
        assert_eq!(
            w.sandbox.refresh_count(Platform::TikTok, &sandbox_user(n)),
            1
        );
    }
}

async fn assert_all_active(w: &World, before: &HashMap<usize, AccountRecord>) {
    let after = snapshot(&w.stores[0], &w.accounts).await;
    assert_eq!(after.len(), ACCOUNTS, "no account lost");
    for (n, r) in &after {
        assert_eq!(r.status, StoredStatus::Active, "u{n}");
        assert!(
            r.access_token.is_some() && r.refresh_token.is_some(),
            "u{n}"
        );
        assert_ne!(r.refresh_token, before[n].refresh_token, "u{n} rotated");
        assert_eq!(r.lease_owner, None, "u{n}: no lease left behind");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_refresh_2000_accounts_exactly_once() {
    let Some(w) = world("three_instances_refresh_2000_accounts_exactly_once").await else {
        return;
    };
    let before = snapshot(&w.stores[0], &w.accounts).await;
    let report = pass_everywhere(&w.instances).await;
    assert_eq!(report.refreshed, ACCOUNTS, "{report:?}");
    assert_eq!(report.needs_reconnect, 0, "{report:?}");
    assert_eq!(
        report.failed_transient + report.failed_other,
        0,
        "{report:?}"
    );
    assert_all_refreshed_once(&w);
    assert_all_active(&w, &before).await;
    for n in [0, 7, 1234, ACCOUNTS - 1] {
        token_works(&w, n, &w.accounts[n].1).await;
    }
    // Nothing is due any more.
    let again = pass_everywhere(&w.instances).await;
    assert_eq!(again.claimed, 0, "{again:?}");
    assert_eq!(
        w.sandbox.counters(Platform::TikTok).refresh_calls,
        ACCOUNTS as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_10_percent_5xx_the_failed_keep_their_tokens_and_succeed_next_pass() {
    let Some(w) = world("with_10_percent_5xx").await else {
        return;
    };
    let before = snapshot(&w.stores[0], &w.accounts).await;
    w.sandbox.set_faults(
        Some(Platform::TikTok),
        Faults {
            server_error_rate: 0.1,
            ..Faults::default()
        },
    );
    let first = pass_everywhere(&w.instances).await;
    w.sandbox.clear_faults(None);
    assert_eq!(first.needs_reconnect + first.failed_other, 0, "{first:?}");
    assert!(first.failed_transient > 0, "{first:?}");

    let mid = snapshot(&w.stores[0], &w.accounts).await;
    let failed: Vec<usize> = mid
        .iter()
        .filter(|(n, r)| r.refresh_token == before[*n].refresh_token)
        .map(|(n, _)| *n)
        .collect();
    let refreshed_ok = w.sandbox.counters(Platform::TikTok).refresh_ok as usize;
    eprintln!(
        "pass 1: {} accounts kept their tokens after a 5xx, {refreshed_ok} refreshed",
        failed.len()
    );
    assert!(!failed.is_empty());
    assert_eq!(refreshed_ok + failed.len(), ACCOUNTS);
    assert_eq!(first.refreshed, refreshed_ok, "{first:?}");
    for n in &failed {
        let (old, now) = (&before[n], &mid[n]);
        assert_eq!(now.status, StoredStatus::Active, "u{n}");
        assert_eq!(
            now.access_token, old.access_token,
            "u{n} keeps its access token"
        );
        assert_eq!(now.expires_at, old.expires_at, "u{n}");
        assert!(now.refresh_failures >= 1, "u{n}");
        assert_eq!(
            now.lease_owner, None,
            "u{n}: released at the end of the pass"
        );
        assert_eq!(
            w.sandbox.refresh_count(Platform::TikTok, &sandbox_user(*n)),
            0
        );
    }
    // The kept (old) tokens are still good at the platform.
    for n in failed.iter().take(5) {
        token_works(&w, *n, &w.accounts[*n].1).await;
    }

    let second = pass_everywhere(&w.instances).await;
    assert_eq!(
        second.refreshed,
        failed.len(),
        "exactly the failed ones: {second:?}"
    );
    assert_eq!(
        second.failed_transient + second.failed_other + second.needs_reconnect,
        0
    );
    assert_all_refreshed_once(&w);
    assert_all_active(&w, &before).await;
    for n in failed.iter().take(3) {
        token_works(&w, *n, &w.accounts[*n].1).await;
    }
    let after = snapshot(&w.stores[1], &w.accounts).await;
    assert!(
        failed
            .iter()
            .all(|n| after[n].refresh_failures == 0 && after[n].last_error.is_none())
    );
}
