//! Keeping connections alive: `refresh_due`, the `Refresher`, `send` and the status cache.

use chrono::{Duration, TimeZone, Utc};
use integrations_core::testing::ScriptedProvider;
use integrations_core::{
    CallbackParams, EncryptionKey, Error, IntegrationStatus, Integrations, ManualClock,
    MemoryStore, ProviderError, ProviderId, RefreshLimits, Refresher, RefresherConfig, SendPolicy,
    ServiceConfig, StoredStatus, TokenCipher, TokenStore, UserId,
};
use std::sync::Arc;
use std::time::Duration as StdDuration;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 7, 1, 0, 0, 0).unwrap(),
    ))
}

fn instance(
    store: &Arc<MemoryStore>,
    provider: &Arc<ScriptedProvider>,
    clock: &Arc<ManualClock>,
    key: &EncryptionKey,
    config: ServiceConfig,
) -> Integrations {
    Integrations::builder(store.clone(), TokenCipher::new(key.clone()))
        .provider(provider.clone())
        .clock(clock.clone())
        .config(config)
        .build()
}

fn no_limit() -> ServiceConfig {
    ServiceConfig {
        connect_limit: usize::MAX,
        send: SendPolicy {
            backoff_base: StdDuration::from_millis(5),
            ..SendPolicy::default()
        },
        ..ServiceConfig::default()
    }
}

async fn connect(i: &Integrations, user: i64, provider: &str, code: &str) {
    let start = i.connect(UserId(user), provider, None).await.unwrap();
    i.callback(
        UserId(user),
        provider,
        &CallbackParams::from_pairs([("code", code), ("state", start.state.as_str())]),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_refresh_every_due_account_exactly_once() {
    let store = Arc::new(MemoryStore::new());
    let provider = Arc::new(ScriptedProvider::new("tiktok"));
    let clock = clock();
    let key = EncryptionKey::generate();
    let instances: Vec<_> = (0..3)
        .map(|_| instance(&store, &provider, &clock, &key, no_limit()))
        .collect();
    for n in 0..300 {
        connect(
            &instances[n % 3],
            1 + (n as i64 % 10),
            "tiktok",
            &format!("a{n}"),
        )
        .await;
    }
    // Tokens live one hour; 55 minutes later all are within a 10-minute window.
    clock.advance(Duration::minutes(55));
    let limits = RefreshLimits {
        batch: 16,
        concurrency: 8,
        per_provider: 4,
        ..RefreshLimits::default()
    };
    let mut tasks = Vec::new();
    for i in &instances {
        let i = i.clone();
        let limits = limits.clone();
        tasks.push(tokio::spawn(async move {
            i.refresh_due(StdDuration::from_secs(600), limits)
                .await
                .unwrap()
        }));
    }
    let mut refreshed = 0;
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.needs_reconnect, 0);
        assert_eq!(r.failed_transient + r.failed_other, 0);
        refreshed += r.refreshed;
    }
    assert_eq!(
        refreshed, 300,
        "every account refreshed by exactly one instance"
    );
    assert_eq!(
        provider.refresh_calls(),
        300,
        "one provider call per account"
    );
    // Nothing is due any more.
    let again = instances[0]
        .refresh_due(StdDuration::from_secs(600), limits)
        .await
        .unwrap();
    assert_eq!(again.claimed, 0);
    for user in 1..=10 {
        for view in instances[0].status(UserId(user)).await.unwrap() {
            assert_eq!(view.status, IntegrationStatus::Connected);
        }
    }
}

#[tokio::test]
async fn transient_failures_keep_tokens_and_succeed_on_a_later_pass() {
    let store = Arc::new(MemoryStore::new());
    let provider = Arc::new(ScriptedProvider::new("tiktok"));
    let clock = clock();
    let key = EncryptionKey::generate();
    let i = instance(&store, &provider, &clock, &key, no_limit());
    for n in 0..10 {
        connect(&i, 1, "tiktok", &format!("a{n}")).await;
    }
    let before = store.list_accounts(UserId(1)).await.unwrap();
    clock.advance(Duration::minutes(55));
    for _ in 0..3 {
        provider.fail_next_refresh(ProviderError::Unavailable { status: 503 });
    }
    let limits = RefreshLimits {
        concurrency: 1,
        ..RefreshLimits::default()
    };
    let first = i
        .refresh_due(StdDuration::from_secs(600), limits.clone())
        .await
        .unwrap();
    assert_eq!(first.failed_transient, 3);
    assert_eq!(first.refreshed, 7);
    let after = store.list_accounts(UserId(1)).await.unwrap();
    let failed: Vec<_> = after.iter().filter(|r| r.refresh_failures == 1).collect();
    assert_eq!(failed.len(), 3);
    for f in &failed {
        let old = before.iter().find(|b| b.id == f.id).unwrap();
        assert_eq!(
            f.access_token, old.access_token,
            "failed ones keep their tokens"
        );
        assert_eq!(f.status, StoredStatus::Active);
    }
    let second = i
        .refresh_due(StdDuration::from_secs(600), limits)
        .await
        .unwrap();
    assert_eq!(second.refreshed, 3);
    assert_eq!(provider.refresh_calls(), 13);
}

#[tokio::test]
async fn accounts_that_cannot_refresh_make_no_calls() {
    let store = Arc::new(MemoryStore::new());
    let provider = Arc::new(ScriptedProvider::with_capabilities(
        "tiktok",
        integrations_core::Capabilities {
            refresh: false,
            ..Default::default()
        },
        false,
    ));
    let clock = clock();
    let i = instance(
        &store,
        &provider,
        &clock,
        &EncryptionKey::generate(),
        no_limit(),
    );
    connect(&i, 1, "tiktok", "x").await;
    clock.advance(Duration::minutes(59));
    let r = i
        .refresh_due(StdDuration::from_secs(600), RefreshLimits::default())
        .await
        .unwrap();
    assert_eq!(r.skipped_not_refreshable, 1);
    assert_eq!(provider.refresh_calls(), 0);
    let r = i
        .refresh_due(StdDuration::from_secs(600), RefreshLimits::default())
        .await
        .unwrap();
    assert_eq!(
        r.skipped_not_refreshable, 1,
        "released, seen again next pass, still no call"
    );
    assert_eq!(provider.refresh_calls(), 0);
}

#[tokio::test]
async fn refresher_runs_passes_and_shuts_down_cleanly() {
    let store = Arc::new(MemoryStore::new());
    let provider = Arc::new(ScriptedProvider::new("tiktok"));
    let clock = clock();
    let i = instance(
        &store,
        &provider,
        &clock,
        &EncryptionKey::generate(),
        no_limit(),
    );
    for n in 0..5 {
        connect(&i, 1, "tiktok", &format!("a{n}")).await;
    }
    clock.advance(Duration::minutes(58));
    let refresher = Refresher::spawn(
        i.clone(),
        RefresherConfig {
            interval: StdDuration::from_millis(20),
            jitter: StdDuration::from_millis(5),
            ..RefresherConfig::default()
        },
    );
    let mut reports = refresher.reports();
    tokio::time::timeout(
        StdDuration::from_secs(10),
        reports.wait_for(|r| r.refreshed == 5),
    )
    .await
    .expect("the first pass refreshes all")
    .unwrap();
    let totals = refresher.shutdown().await;
    assert_eq!(totals.refreshed, 5);
    assert_eq!(provider.refresh_calls(), 5);
    for r in store.list_accounts(UserId(1)).await.unwrap() {
        assert_eq!(r.lease_owner, None, "no lease left behind");
    }
}

#[tokio::test]
async fn status_cache_is_invalidated_by_own_writes_and_bounded_for_others() {
    let store = Arc::new(MemoryStore::new());
    let provider = Arc::new(ScriptedProvider::new("tiktok"));
    let clock = clock();
    let key = EncryptionKey::generate();
    let cached = ServiceConfig {
        status_cache_ttl: StdDuration::from_millis(300),
        ..no_limit()
    };
    let a = instance(&store, &provider, &clock, &key, cached.clone());
    let b = instance(&store, &provider, &clock, &key, cached);
    assert!(a.status(UserId(1)).await.unwrap().is_empty());
    // A write through the same instance is visible at once.
    connect(&a, 1, "tiktok", "one").await;
    assert_eq!(a.status(UserId(1)).await.unwrap().len(), 1);
    // B cached the old view; A's write shows in B within the TTL.
    assert!(b.status(UserId(1)).await.unwrap().len() <= 1);
    let b_before = b.status(UserId(1)).await.unwrap().len();
    connect(&a, 1, "tiktok", "two").await;
    assert_eq!(a.status(UserId(1)).await.unwrap().len(), 2);
    assert_eq!(
        b.status(UserId(1)).await.unwrap().len(),
        b_before,
        "cached in B"
    );
    tokio::time::sleep(StdDuration::from_millis(400)).await;
    assert_eq!(
        b.status(UserId(1)).await.unwrap().len(),
        2,
        "visible in B after the TTL"
    );
    // A refresh by the refresher path invalidates too.
    clock.advance(Duration::minutes(55));
    let views = a.status(UserId(1)).await.unwrap();
    a.refresh_due(StdDuration::from_secs(600), RefreshLimits::default())
        .await
        .unwrap();
    let after = a.status(UserId(1)).await.unwrap();
    assert_ne!(
        views[0].expires_at, after[0].expires_at,
        "refresh visible at once"
    );
    // And the status itself is recomputed at read time from cached data.
    clock.advance(Duration::hours(5));
    let _ = a.status(UserId(1)).await.unwrap();
}

/// What a host instance asks of an account another instance has marked
/// `needs_reconnect`.
#[derive(Debug, Clone, Copy)]
enum Ask {
    Refresh,
    AccessToken,
    Send,
}

#[tokio::test]
async fn a_dead_grant_read_from_the_store_drops_the_cached_status() {
    let store = Arc::new(MemoryStore::new());
    let provider = Arc::new(ScriptedProvider::new("reddit"));
    let clock = clock();
    let key = EncryptionKey::generate();
    // The host's web process (status cached for the default five minutes) and a
    // refresher process on the same store.
    let host = instance(&store, &provider, &clock, &key, no_limit());
    let refresher = instance(&store, &provider, &clock, &key, no_limit());
    for (n, ask) in [Ask::Refresh, Ask::AccessToken, Ask::Send]
        .into_iter()
        .enumerate()
    {
        let user = UserId(n as i64 + 1);
        let account = format!("acct{n}");
        connect(&host, user.0, "reddit", &account).await;
        let before = host.status(user).await.unwrap();
        assert_eq!(before[0].status, IntegrationStatus::Connected);
        // The user removes the app; the refresher finds out.
        provider.revoke_grant(&account);
        clock.advance(Duration::minutes(55));
        let report = refresher
            .refresh_due(StdDuration::from_secs(600), RefreshLimits::default())
            .await
            .unwrap();
        assert_eq!(report.needs_reconnect, 1, "{ask:?}");
        assert_eq!(
            host.status(user).await.unwrap()[0].status,
            IntegrationStatus::Connected,
            "another process's write shows in the host only after the cache TTL"
        );
        // The host reads the row itself and answers 409 needs_reconnect ...
        let calls = provider.refresh_calls();
        let answer = match ask {
            Ask::Refresh => host.refresh(user, "reddit", &account).await.map(|_| ()),
            Ask::AccessToken => host
                .access_token(user, "reddit", &account)
                .await
                .map(|_| ()),
            Ask::Send => {
                let url = "http://127.0.0.1:9/never-sent".parse().unwrap();
                host.send(
                    user,
                    "reddit",
                    &account,
                    reqwest::Request::new(reqwest::Method::GET, url),
                )
                .await
                .map(|_| ())
            }
        };
        assert!(
            matches!(answer, Err(Error::NeedsReconnect)),
            "{ask:?}: {answer:?}"
        );
        assert_eq!(provider.refresh_calls(), calls, "no platform call");
        // ... and its status page says the same at once, with no expiry for the cleared
        // tokens.
        let after = host.status(user).await.unwrap();
        assert_eq!(
            after[0].status,
            IntegrationStatus::NeedsReconnect,
            "{ask:?}"
        );
        assert_eq!(after[0].expires_at, None, "{ask:?}");
    }
}

#[tokio::test]
async fn a_refresh_reusing_another_instances_result_drops_the_cached_status() {
    let store = Arc::new(MemoryStore::new());
    let provider = Arc::new(ScriptedProvider::new("reddit"));
    let clock = clock();
    let key = EncryptionKey::generate();
    let host = instance(&store, &provider, &clock, &key, no_limit());
    let other = instance(&store, &provider, &clock, &key, no_limit());
    connect(&host, 1, "reddit", "acct").await;
    clock.advance(Duration::minutes(55));
    let cached = host.status(UserId(1)).await.unwrap();
    let refreshed = other.refresh(UserId(1), "reddit", "acct").await.unwrap();
    assert_ne!(refreshed.expires_at, cached[0].expires_at);
    // Within `refresh_coalesce` the host reuses the other instance's refresh ...
    let reused = host.refresh(UserId(1), "reddit", "acct").await.unwrap();
    assert_eq!(provider.refresh_calls(), 1);
    assert_eq!(reused.expires_at, refreshed.expires_at);
    // ... and its status shows that refresh, not the cached row.
    assert_eq!(
        host.status(UserId(1)).await.unwrap()[0].expires_at,
        refreshed.expires_at
    );
}

/// A `tracing` writer collecting what is logged.
#[derive(Clone, Default)]
struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn a_window_longer_than_the_tokens_life_refreshes_them_at_half_life_not_every_pass() {
    let logs = Logs::default();
    let writer = logs.clone();
    let _subscriber = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish(),
    );
    let store = Arc::new(MemoryStore::new());
    // Reddit-like one-hour tokens, a two-hour window.
    let provider = Arc::new(ScriptedProvider::new("reddit"));
    let clock = clock();
    let i = instance(
        &store,
        &provider,
        &clock,
        &EncryptionKey::generate(),
        no_limit(),
    );
    for n in 0..3 {
        connect(&i, 1, "reddit", &format!("a{n}")).await;
    }
    let window = StdDuration::from_secs(2 * 3600);
    let pass = || i.refresh_due(window, RefreshLimits::default());
    let first = pass().await.unwrap();
    assert_eq!((first.claimed, first.refreshed), (3, 0), "{first:?}");
    assert_eq!(first.skipped_not_refreshable, 3);
    clock.advance(Duration::minutes(29));
    assert_eq!(pass().await.unwrap().refreshed, 0);
    assert_eq!(provider.refresh_calls(), 0, "not refreshed on every pass");
    // Half the lifetime left: due.
    clock.advance(Duration::minutes(1));
    assert_eq!(pass().await.unwrap().refreshed, 3);
    assert_eq!(
        pass().await.unwrap().refreshed,
        0,
        "the new tokens are not due"
    );
    assert_eq!(provider.refresh_calls(), 3);
    let logs = logs.text();
    let warning = "the refresh window is longer than half the lifetime";
    assert_eq!(logs.matches(warning).count(), 1, "warned once: {logs}");
    assert!(logs.contains("provider=reddit"), "{logs}");
}

/// A platform API answering from a script of statuses, recording the tokens it saw.
struct Scripted {
    statuses: std::sync::Mutex<Vec<ResponseTemplate>>,
}

impl Respond for Scripted {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut s = self.statuses.lock().unwrap();
        if s.is_empty() {
            ResponseTemplate::new(200).set_body_string("ok")
        } else {
            s.remove(0)
        }
    }
}

async fn api(responses: Vec<ResponseTemplate>) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/data"))
        .respond_with(Scripted {
            statuses: std::sync::Mutex::new(responses),
        })
        .mount(&server)
        .await;
    server
}

fn get(server: &MockServer) -> reqwest::Request {
    reqwest::Request::new(
        reqwest::Method::GET,
        format!("{}/v1/data", server.uri()).parse().unwrap(),
    )
}

async fn sender() -> (Integrations, Arc<ScriptedProvider>, Arc<ManualClock>) {
    let store = Arc::new(MemoryStore::new());
    let provider = Arc::new(ScriptedProvider::new("tiktok"));
    let clock = clock();
    let i = instance(
        &store,
        &provider,
        &clock,
        &EncryptionKey::generate(),
        no_limit(),
    );
    connect(&i, 1, "tiktok", "acct").await;
    (i, provider, clock)
}

#[tokio::test]
async fn send_attaches_the_token_and_refreshes_once_on_401() {
    let (i, provider, _) = sender().await;
    let server = api(vec![ResponseTemplate::new(401)]).await;
    let resp = i
        .send(UserId(1), "tiktok", "acct", get(&server))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(provider.refresh_calls(), 1, "exactly one refresh");
    let seen = server.received_requests().await.unwrap();
    assert_eq!(seen.len(), 2);
    let first = seen[0]
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let second = seen[1]
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(first.starts_with("Bearer at-"));
    assert_ne!(first, second, "the retry carries the refreshed token");
    let token = i.access_token(UserId(1), "tiktok", "acct").await.unwrap();
    assert_eq!(second, format!("Bearer {}", token.expose_secret()));
    // A second 401 after the refresh is returned as it is.
    let server = api(vec![ResponseTemplate::new(401), ResponseTemplate::new(401)]).await;
    let resp = i
        .send(UserId(1), "tiktok", "acct", get(&server))
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(provider.refresh_calls(), 2);
}

#[tokio::test]
async fn send_waits_for_retry_after_on_429() {
    let (i, _, _) = sender().await;
    let server = api(vec![
        ResponseTemplate::new(429).insert_header("Retry-After", "1"),
    ])
    .await;
    let started = std::time::Instant::now();
    let resp = i
        .send(UserId(1), "tiktok", "acct", get(&server))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        started.elapsed() >= StdDuration::from_secs(1),
        "waited for Retry-After"
    );
    // Beyond the cap: the typed error at once.
    let server = api(vec![
        ResponseTemplate::new(429).insert_header("Retry-After", "3600"),
    ])
    .await;
    let err = i
        .send(UserId(1), "tiktok", "acct", get(&server))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Provider(ProviderError::RateLimited { retry_after: Some(d) }) if d.as_secs() == 3600
    ));
}

#[tokio::test]
async fn send_gives_up_after_three_5xx() {
    let (i, _, _) = sender().await;
    let server = api((0..5).map(|_| ResponseTemplate::new(503)).collect()).await;
    let err = i
        .send(UserId(1), "tiktok", "acct", get(&server))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Provider(ProviderError::Unavailable { status: 503 })
    ));
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    // Two 5xx then success: succeeds on the third attempt.
    let server = api(vec![ResponseTemplate::new(502), ResponseTemplate::new(500)]).await;
    assert_eq!(
        i.send(UserId(1), "tiktok", "acct", get(&server))
            .await
            .unwrap()
            .status(),
        200
    );
    // POST is not idempotent: no retry.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/post"))
        .and(header("content-type", "application/json"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let mut post = reqwest::Request::new(
        reqwest::Method::POST,
        format!("{}/v1/post", server.uri()).parse().unwrap(),
    );
    post.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    *post.body_mut() = Some("{}".into());
    let resp = i.send(UserId(1), "tiktok", "acct", post).await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn send_with_a_revoked_grant_marks_needs_reconnect() {
    let (i, provider, _) = sender().await;
    provider.revoke_grant("acct");
    let server = api(vec![ResponseTemplate::new(401)]).await;
    let err = i
        .send(UserId(1), "tiktok", "acct", get(&server))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NeedsReconnect), "{err:?}");
    let view = &i.status(UserId(1)).await.unwrap()[0];
    assert_eq!(view.status, IntegrationStatus::NeedsReconnect);
    // Another user cannot send with this account.
    let err = i
        .send(UserId(2), "tiktok", "acct", get(&server))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound));
    let _ = ProviderId::new("tiktok").unwrap();
}

#[tokio::test]
async fn send_refreshes_first_when_the_token_is_about_to_expire() {
    let (i, provider, clock) = sender().await;
    clock.advance(Duration::minutes(59) + Duration::seconds(30));
    let server = api(vec![]).await;
    i.send(UserId(1), "tiktok", "acct", get(&server))
        .await
        .unwrap();
    assert_eq!(provider.refresh_calls(), 1);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn failures_filling_a_whole_batch_do_not_starve_the_rest_of_the_pass() {
    let store = Arc::new(MemoryStore::new());
    let provider = Arc::new(ScriptedProvider::new("tiktok"));
    let clock = clock();
    let i = instance(
        &store,
        &provider,
        &clock,
        &EncryptionKey::generate(),
        no_limit(),
    );
    for n in 0..12 {
        connect(&i, 1, "tiktok", &format!("a{n}")).await;
    }
    clock.advance(Duration::minutes(55));
    // The whole first batch fails: those accounts keep the soonest expiry, so a store
    // that hands them out again first must not end the pass before the others.
    for _ in 0..4 {
        provider.fail_next_refresh(ProviderError::Unavailable { status: 503 });
    }
    let limits = RefreshLimits {
        batch: 4,
        concurrency: 1,
        ..RefreshLimits::default()
    };
    let first = i
        .refresh_due(StdDuration::from_secs(600), limits.clone())
        .await
        .unwrap();
    assert_eq!(first.failed_transient, 4, "{first:?}");
    assert_eq!(first.refreshed, 8, "{first:?}");
    assert_eq!(
        provider.refresh_calls(),
        12,
        "one call per account per pass"
    );
    for r in store.list_accounts(UserId(1)).await.unwrap() {
        assert_eq!(r.lease_owner, None, "no lease left behind after the pass");
    }
    let second = i
        .refresh_due(StdDuration::from_secs(600), limits)
        .await
        .unwrap();
    assert_eq!(second.refreshed, 4, "the failed ones, on the next pass");
    assert_eq!(provider.refresh_calls(), 16);
}
