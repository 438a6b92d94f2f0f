//! Keeping connections alive: `refresh_due`, the `Refresher`, `send` and the status cache.

use chrono::{Duration, TimeZone, Utc};
use integrations_core::testing::ScriptedProvider;
use integrations_core::{
    AccessToken, AccountRecord, AuditAction, AuthorizationRequest, CallbackParams, Capabilities,
    Clock, CodeExchange, EncryptionKey, Error, IntegrationStatus, Integrations, Lease, ManualClock,
    MemoryStore, Profile, Provider, ProviderError, ProviderId, RefreshLimits, RefreshReport,
    RefreshRequest, RefreshToken, Refresher, RefresherConfig, SendPolicy, ServiceConfig,
    StoredStatus, TokenCipher, TokenSet, TokenStore, UserId,
};
use std::sync::{Arc, Mutex};
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
    instance_of(
        store,
        [provider.clone() as Arc<dyn Provider>],
        clock,
        key,
        config,
    )
}

/// An instance serving several platforms.
fn instance_of(
    store: &Arc<MemoryStore>,
    providers: impl IntoIterator<Item = Arc<dyn Provider>>,
    clock: &Arc<ManualClock>,
    key: &EncryptionKey,
    config: ServiceConfig,
) -> Integrations {
    providers
        .into_iter()
        .fold(
            Integrations::builder(store.clone(), TokenCipher::new(key.clone())),
            |builder, provider| builder.provider(provider),
        )
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

#[tokio::test]
async fn a_pass_meets_an_account_refreshed_into_its_own_window_once() {
    let store = Arc::new(MemoryStore::new());
    let provider = Arc::new(ScriptedProvider::new("reddit"));
    let clock = clock();
    let i = instance(
        &store,
        &provider,
        &clock,
        &EncryptionKey::generate(),
        no_limit(),
    );
    for n in 0..4 {
        connect(&i, 1, "reddit", &format!("a{n}")).await;
    }
    clock.advance(Duration::minutes(55));
    // The platform now hands out one-minute tokens: refreshed, each account is due again
    // at once, inside the pass's ten-minute window, and (expiring first) heads the next
    // claims of the pass, which takes two accounts at a time.
    provider.set_expires_in(Some(StdDuration::from_secs(60)));
    let limits = RefreshLimits {
        batch: 2,
        ..RefreshLimits::default()
    };
    let report = i
        .refresh_due(StdDuration::from_secs(600), limits)
        .await
        .unwrap();
    assert_eq!(
        (
            report.claimed,
            report.refreshed,
            report.skipped_not_refreshable
        ),
        (4, 4, 0),
        "each account is met once in the pass: {report:?}"
    );
    assert_eq!(provider.refresh_calls(), 4);
    for n in 0..4 {
        let r = row(&store, "reddit", &format!("a{n}")).await;
        assert_eq!(r.lease_owner, None, "no lease is left behind");
    }
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

/// What other instances and the user do while a platform call is under way.
type Meanwhile = Box<dyn FnOnce() -> futures::future::BoxFuture<'static, ()> + Send>;

/// A platform in front of a [`ScriptedProvider`], watched from outside the service:
///
/// - each refresh call takes `takes` on the service's clock, and records which account it
///   renewed and how much of that account's refresh lease (as stored) was left when it
///   ended;
/// - the first refresh call first runs what was set with [`meanwhile`](Self::meanwhile);
/// - each API request `send` makes is recorded with its time on tokio's clock (paused in
///   the tests that read it); past 20 requests it panics, so that a retry loop that never
///   ends fails instead of hanging.
struct Platform {
    inner: Arc<ScriptedProvider>,
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
    takes: Duration,
    accounts: Vec<String>,
    meanwhile: Mutex<Option<Meanwhile>>,
    refreshes: Mutex<Vec<(String, Option<Duration>)>>,
    sent: Mutex<Vec<tokio::time::Instant>>,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform")
            .field("id", self.inner.id())
            .field("takes", &self.takes)
            .finish_non_exhaustive()
    }
}

impl Platform {
    fn new(
        inner: &Arc<ScriptedProvider>,
        store: &Arc<MemoryStore>,
        clock: &Arc<ManualClock>,
        takes: Duration,
        accounts: &[&str],
    ) -> Arc<Self> {
        Arc::new(Self {
            inner: inner.clone(),
            store: store.clone(),
            clock: clock.clone(),
            takes,
            accounts: accounts.iter().map(|a| (*a).to_owned()).collect(),
            meanwhile: Mutex::new(None),
            refreshes: Mutex::new(Vec::new()),
            sent: Mutex::new(Vec::new()),
        })
    }

    fn meanwhile(&self, what: Meanwhile) {
        *self.meanwhile.lock().unwrap() = Some(what);
    }

    /// The accounts refreshed, in order.
    fn refreshed(&self) -> Vec<String> {
        let calls = self.refreshes.lock().unwrap();
        calls.iter().map(|(account, _)| account.clone()).collect()
    }

    /// The gaps between consecutive API requests.
    fn gaps(&self) -> Vec<StdDuration> {
        let sent = self.sent.lock().unwrap();
        sent.windows(2).map(|w| w[1] - w[0]).collect()
    }

    fn requests(&self) -> usize {
        self.sent.lock().unwrap().len()
    }

    fn last_request(&self) -> tokio::time::Instant {
        *self
            .sent
            .lock()
            .unwrap()
            .last()
            .expect("a request was sent")
    }
}

#[async_trait::async_trait]
impl Provider for Platform {
    fn id(&self) -> &ProviderId {
        self.inner.id()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn authorization_url(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<url::Url, ProviderError> {
        self.inner.authorization_url(request).await
    }
    async fn exchange_code(&self, exchange: CodeExchange<'_>) -> Result<TokenSet, ProviderError> {
        self.inner.exchange_code(exchange).await
    }
    async fn refresh(&self, request: RefreshRequest<'_>) -> Result<TokenSet, ProviderError> {
        let token = request.refresh_token.map(|t| t.expose_secret().to_owned());
        let account = self
            .accounts
            .iter()
            .find(|a| token.is_some() && self.inner.current_refresh_token(a) == token)
            .cloned()
            .unwrap_or_default();
        let meanwhile = self.meanwhile.lock().unwrap().take();
        if let Some(meanwhile) = meanwhile {
            meanwhile().await;
        }
        let result = self.inner.refresh(request).await;
        self.clock.advance(self.takes);
        let row = self
            .store
            .find_account(self.inner.id(), &account)
            .await
            .unwrap();
        let left = row
            .and_then(|r| r.lease_until)
            .map(|until| until - self.clock.now());
        self.refreshes.lock().unwrap().push((account, left));
        result
    }
    async fn fetch_profile(&self, access_token: &AccessToken) -> Result<Profile, ProviderError> {
        self.inner.fetch_profile(access_token).await
    }
    async fn revoke(
        &self,
        access_token: Option<&AccessToken>,
        refresh_token: Option<&RefreshToken>,
    ) -> Result<(), ProviderError> {
        self.inner.revoke(access_token, refresh_token).await
    }
    fn authorize_request(
        &self,
        request: reqwest::RequestBuilder,
        access_token: &AccessToken,
    ) -> reqwest::RequestBuilder {
        let mut sent = self.sent.lock().unwrap();
        assert!(
            sent.len() < 20,
            "more requests than any retry policy here allows"
        );
        sent.push(tokio::time::Instant::now());
        self.inner.authorize_request(request, access_token)
    }
}

async fn row(store: &MemoryStore, provider: &str, account: &str) -> AccountRecord {
    store
        .find_account(&ProviderId::new(provider).unwrap(), account)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no account {provider}/{account}"))
}

/// Audit events appended after the one with id `after`, as (platform, account, action,
/// outcome), sorted.
async fn audit_after(
    store: &MemoryStore,
    after: i64,
) -> Vec<(String, Option<String>, AuditAction, String)> {
    let mut events: Vec<_> = store
        .list_audit(UserId(1), 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.id > after)
        .map(|e| {
            let e = e.event;
            (
                e.provider.as_str().to_owned(),
                e.provider_account_id,
                e.action,
                e.outcome,
            )
        })
        .collect();
    events.sort_by(|a, b| (&a.0, &a.1, a.2.as_str()).cmp(&(&b.0, &b.1, b.2.as_str())));
    events
}

async fn last_audit_id(store: &MemoryStore) -> i64 {
    let events = store.list_audit(UserId(1), 1000).await.unwrap();
    events.iter().map(|e| e.id).max().unwrap_or(0)
}

const WINDOW: StdDuration = StdDuration::from_secs(600);

/// One account per outcome of a refresh in a pass, each on its own platform so that
/// every scripted failure meets its own account. The platforms, and the account on each
/// (named like it): `ok` (two accounts, `ok` and `ok2`) refreshes; `dead` has revoked
/// the grant; `down` answers 503; `limited` answers 429; `slow` times out;
/// `misconfigured` refuses the client; `gateway` has no refresh; `recent` was refreshed
/// on demand a moment ago. All tokens are due when it is returned.
struct EveryOutcome {
    i: Integrations,
    store: Arc<MemoryStore>,
    platforms: Vec<Arc<ScriptedProvider>>,
}

impl EveryOutcome {
    async fn new() -> Self {
        let store = Arc::new(MemoryStore::new());
        let clock = clock();
        let scripted = |id: &str| Arc::new(ScriptedProvider::new(id));
        let no_refresh = Capabilities {
            refresh: false,
            ..Capabilities::default()
        };
        let platforms = vec![
            scripted("ok"),
            scripted("dead"),
            scripted("down"),
            scripted("limited"),
            scripted("slow"),
            scripted("misconfigured"),
            Arc::new(ScriptedProvider::with_capabilities(
                "gateway", no_refresh, false,
            )),
            scripted("recent"),
        ];
        let config = ServiceConfig {
            // The pass finds `recent` refreshed within this time, and uses that result.
            refresh_coalesce: StdDuration::from_secs(3600),
            ..no_limit()
        };
        let i = instance_of(
            &store,
            platforms.iter().map(|p| p.clone() as Arc<dyn Provider>),
            &clock,
            &EncryptionKey::generate(),
            config,
        );
        for p in &platforms {
            connect(&i, 1, p.id().as_str(), p.id().as_str()).await;
        }
        connect(&i, 1, "ok", "ok2").await;
        clock.advance(Duration::minutes(5));
        i.refresh(UserId(1), "recent", "recent").await.unwrap();
        // Every token is within the window of its expiry, `recent`'s too.
        clock.advance(Duration::minutes(51));
        let f = Self {
            i,
            store,
            platforms,
        };
        f.platform("dead").revoke_grant("dead");
        f.platform("down")
            .fail_next_refresh(ProviderError::Unavailable { status: 503 });
        f.platform("limited")
            .fail_next_refresh(ProviderError::RateLimited {
                retry_after: Some(StdDuration::from_secs(30)),
            });
        f.platform("slow")
            .fail_next_refresh(ProviderError::Network {
                message: "timed out".into(),
                timeout: true,
            });
        f.platform("misconfigured")
            .fail_next_refresh(ProviderError::InvalidClient { description: None });
        f
    }

    fn platform(&self, id: &str) -> &ScriptedProvider {
        self.platforms
            .iter()
            .find(|p| p.id().as_str() == id)
            .unwrap()
    }

    async fn pass(&self) -> RefreshReport {
        self.i
            .refresh_due(WINDOW, RefreshLimits::default())
            .await
            .unwrap()
    }

    async fn status_of(&self, account: &str) -> IntegrationStatus {
        let views = self.i.status(UserId(1)).await.unwrap();
        views
            .into_iter()
            .find(|v| v.provider_account_id == account)
            .unwrap()
            .status
    }
}

#[tokio::test]
async fn a_pass_counts_each_outcome_once_and_audits_each_refresh() {
    let f = EveryOutcome::new().await;
    let before = last_audit_id(&f.store).await;
    let report = f.pass().await;
    assert_eq!(
        report,
        RefreshReport {
            claimed: 9,
            refreshed: 2,
            needs_reconnect: 1,
            failed_transient: 3,
            failed_other: 1,
            skipped_leased: 1,
            skipped_not_refreshable: 1,
        }
    );
    // One platform call per account that needed one; `recent`'s one call is the
    // on-demand refresh before the pass.
    for (platform, calls) in [
        ("ok", 2),
        ("dead", 1),
        ("down", 1),
        ("limited", 1),
        ("slow", 1),
        ("misconfigured", 1),
        ("gateway", 0),
        ("recent", 1),
    ] {
        assert_eq!(f.platform(platform).refresh_calls(), calls, "{platform}");
    }
    // One audit event per refresh the pass tried, written by the pass.
    let event = |platform: &str, account: &str, action, outcome: &str| {
        (
            platform.to_owned(),
            Some(account.to_owned()),
            action,
            outcome.to_owned(),
        )
    };
    let failed = AuditAction::RefreshFailed;
    assert_eq!(
        audit_after(&f.store, before).await,
        vec![
            event("dead", "dead", failed, "invalid_grant"),
            event("down", "down", failed, "provider_unavailable"),
            event("limited", "limited", failed, "provider_rate_limited"),
            event("misconfigured", "misconfigured", failed, "invalid_client"),
            event("ok", "ok", AuditAction::Refreshed, "success"),
            event("ok", "ok2", AuditAction::Refreshed, "success"),
            event("slow", "slow", failed, "network"),
        ]
    );
    for r in f.store.list_accounts(UserId(1)).await.unwrap() {
        assert_eq!(r.lease_owner, None, "no lease left behind by the pass");
    }
}

#[tokio::test]
async fn a_transient_failure_stays_connected_for_the_next_pass_and_a_dead_grant_needs_reconnect() {
    let f = EveryOutcome::new().await;
    let transient = ["down", "limited", "slow"];
    let mut before = Vec::new();
    for account in transient {
        before.push(row(&f.store, account, account).await);
    }
    let first = f.pass().await;
    assert_eq!(
        (first.failed_transient, first.needs_reconnect),
        (3, 1),
        "{first:?}"
    );
    for old in &before {
        let account = old.provider_account_id.as_str();
        let now = row(&f.store, account, account).await;
        assert_eq!(now.status, StoredStatus::Active, "{account}");
        assert_eq!(now.access_token, old.access_token, "{account}: tokens kept");
        assert_eq!(now.refresh_token, old.refresh_token, "{account}");
        assert_eq!(now.refresh_failures, 1, "{account}");
        assert!(now.last_error.is_some(), "{account}");
        assert_eq!(
            f.status_of(account).await,
            IntegrationStatus::Connected,
            "{account}"
        );
    }
    let dead = row(&f.store, "dead", "dead").await;
    assert_eq!(dead.status, StoredStatus::NeedsReconnect);
    assert_eq!((dead.access_token, dead.refresh_token), (None, None));
    assert_eq!(f.status_of("dead").await, IntegrationStatus::NeedsReconnect);
    // The next pass retries the transient failures (and the refused client) and leaves
    // the dead grant alone.
    let second = f.pass().await;
    assert_eq!(
        second,
        RefreshReport {
            claimed: 6,
            refreshed: 4,
            skipped_leased: 1,
            skipped_not_refreshable: 1,
            ..RefreshReport::default()
        }
    );
    for old in &before {
        let account = old.provider_account_id.as_str();
        let now = row(&f.store, account, account).await;
        assert_eq!(now.status, StoredStatus::Active, "{account}");
        assert_ne!(now.access_token, old.access_token, "{account}: refreshed");
        assert_eq!(now.refresh_failures, 0, "{account}");
        assert_eq!(now.last_error, None, "{account}");
    }
    assert_eq!(f.platform("dead").refresh_calls(), 1, "no second call");
    assert_eq!(f.status_of("dead").await, IntegrationStatus::NeedsReconnect);
}

#[tokio::test]
async fn a_pass_calls_the_platform_only_for_the_claimed_accounts_that_are_eligible() {
    let store = Arc::new(MemoryStore::new());
    let clock = clock();
    let key = EncryptionKey::generate();
    let ok = Arc::new(ScriptedProvider::new("ok"));
    let gateway = Arc::new(ScriptedProvider::with_capabilities(
        "gateway",
        Capabilities {
            refresh: false,
            ..Capabilities::default()
        },
        false,
    ));
    // Instagram's rule: no refresh before the token is a day old.
    let young = Arc::new(ScriptedProvider::with_capabilities(
        "young",
        Capabilities {
            min_token_age_for_refresh: Some(StdDuration::from_secs(86_400)),
            ..Capabilities::default()
        },
        true,
    ));
    // Fifteen-minute tokens, renewed when half their life remains.
    let brief = Arc::new(ScriptedProvider::new("brief"));
    brief.set_expires_in(Some(StdDuration::from_secs(15 * 60)));
    // A platform this instance does not serve (another instance on the store does).
    let elsewhere = Arc::new(ScriptedProvider::new("elsewhere"));
    let all = [&ok, &gateway, &young, &brief, &elsewhere];
    let everywhere = instance_of(
        &store,
        all.iter().map(|p| (*p).clone() as Arc<dyn Provider>),
        &clock,
        &key,
        no_limit(),
    );
    let here = instance_of(
        &store,
        all[..4].iter().map(|p| (*p).clone() as Arc<dyn Provider>),
        &clock,
        &key,
        no_limit(),
    );
    for p in [&ok, &gateway, &young, &elsewhere] {
        connect(&everywhere, 1, p.id().as_str(), "acct").await;
    }
    clock.advance(Duration::minutes(50));
    connect(&everywhere, 1, "brief", "acct").await;
    // The one-hour tokens expire in 4 minutes; `brief`'s in 9, within the window but
    // with more than half its life left.
    clock.advance(Duration::minutes(6));
    let report = here
        .refresh_due(WINDOW, RefreshLimits::default())
        .await
        .unwrap();
    assert_eq!(
        report,
        RefreshReport {
            claimed: 5,
            refreshed: 1,
            skipped_not_refreshable: 4,
            ..RefreshReport::default()
        }
    );
    let calls: Vec<_> = all
        .iter()
        .map(|p| (p.id().as_str(), p.refresh_calls()))
        .collect();
    assert_eq!(
        calls,
        [
            ("ok", 1),
            ("gateway", 0),
            ("young", 0),
            ("brief", 0),
            ("elsewhere", 0)
        ]
    );
    // Once due, `brief` is refreshed.
    clock.advance(Duration::minutes(2));
    let report = here
        .refresh_due(WINDOW, RefreshLimits::default())
        .await
        .unwrap();
    assert_eq!(report.refreshed, 1, "{report:?}");
    assert_eq!(brief.refresh_calls(), 1);
}

/// One pass over accounts `a`, `b` and `c` (their turns in this order), one refresh at a
/// time, on a platform taking `takes` a call, with 60-second leases: for each call, the
/// account and the lease it had left when the call ended.
async fn lease_left_after_each_call(takes: Duration) -> Vec<(String, Option<Duration>)> {
    let store = Arc::new(MemoryStore::new());
    let scripted = Arc::new(ScriptedProvider::new("tiktok"));
    let clock = clock();
    let accounts = ["a", "b", "c"];
    let platform = Platform::new(&scripted, &store, &clock, takes, &accounts);
    let config = ServiceConfig {
        lease_ttl: StdDuration::from_secs(60),
        ..no_limit()
    };
    let i = instance_of(
        &store,
        [platform.clone() as Arc<dyn Provider>],
        &clock,
        &EncryptionKey::generate(),
        config,
    );
    // One second apart, so that the pass takes turns in this order.
    for account in accounts {
        connect(&i, 1, "tiktok", account).await;
        clock.advance(Duration::seconds(1));
    }
    clock.advance(Duration::minutes(55));
    let limits = RefreshLimits {
        concurrency: 1,
        ..RefreshLimits::default()
    };
    let report = i.refresh_due(WINDOW, limits).await.unwrap();
    assert_eq!(report.refreshed, 3, "{report:?}");
    let calls = platform.refreshes.lock().unwrap().clone();
    for (account, left) in &calls {
        assert!(
            left.is_some_and(|left| left > Duration::zero()),
            "{account}: the lease ran out during the platform call ({left:?} left)"
        );
    }
    calls
}

/// A pass claims all its accounts at once, so that the later turns come with less of
/// their lease left. A turn with half the lease or less left claims the account again
/// before calling the platform: no call shorter than half the lease outlives the lease it
/// runs under (another worker could otherwise claim the account meanwhile and refresh it
/// too). A turn with more than half left uses the lease as the pass claimed it, without a
/// second write to the store.
#[tokio::test]
async fn a_refresh_in_a_pass_never_outlives_its_lease() {
    let s = |n| Some(Duration::seconds(n));
    // 25 s calls: `a` ends with 35 s of its lease left and `b` (not claimed again, 35 s
    // left at its turn) with 10 s; `c`'s turn comes with 10 s left, its new lease has
    // 35 s left at the end.
    assert_eq!(
        lease_left_after_each_call(Duration::seconds(25)).await,
        [
            ("a".to_owned(), s(35)),
            ("b".to_owned(), s(10)),
            ("c".to_owned(), s(35))
        ]
    );
    // 30 s calls: `b`'s turn comes with exactly half left, `c`'s as the lease ends; both
    // are claimed again.
    assert_eq!(
        lease_left_after_each_call(Duration::seconds(30)).await,
        [
            ("a".to_owned(), s(30)),
            ("b".to_owned(), s(30)),
            ("c".to_owned(), s(30))
        ]
    );
}

/// Accounts a pass claimed, changed by others while the pass waited for its turn (the
/// platform takes 35 s a call, one call at a time, so every turn after the first comes
/// with less than half the lease left): the pass reads them again and refreshes only the
/// one that is still as it claimed it. An account another worker holds is not claimed,
/// and its lease is left alone.
#[tokio::test]
async fn accounts_changed_while_a_pass_waits_are_not_refreshed() {
    let store = Arc::new(MemoryStore::new());
    let scripted = Arc::new(ScriptedProvider::new("tiktok"));
    let clock = clock();
    let accounts = ["a", "b", "c", "d", "f", "e"];
    let platform = Platform::new(&scripted, &store, &clock, Duration::seconds(35), &accounts);
    let config = ServiceConfig {
        lease_ttl: StdDuration::from_secs(60),
        ..no_limit()
    };
    let i = instance_of(
        &store,
        [platform.clone() as Arc<dyn Provider>],
        &clock,
        &EncryptionKey::generate(),
        config,
    );
    // One second apart, so that the pass claims (and takes turns) in this order.
    for account in accounts {
        connect(&i, 1, "tiktok", account).await;
        clock.advance(Duration::seconds(1));
    }
    clock.advance(Duration::minutes(55));
    // Another worker is refreshing `e`.
    let e = row(&store, "tiktok", "e").await;
    let other = Lease {
        owner: "another-worker".into(),
        now: clock.now(),
        until: clock.now() + Duration::minutes(10),
    };
    assert!(
        store
            .claim_for_refresh(e.id, &other)
            .await
            .unwrap()
            .is_some()
    );
    // During the first platform call: the user disconnects `b`, a platform webhook
    // reports `c`'s grant revoked, and the user reconnects `d`.
    scripted.account_for_code("d-again", "d");
    let (others, written) = (i.clone(), store.clone());
    platform.meanwhile(Box::new(move || {
        Box::pin(async move {
            others.disconnect(UserId(1), "tiktok", "b").await.unwrap();
            let mut c = row(&written, "tiktok", "c").await;
            c.status = StoredStatus::NeedsReconnect;
            c.access_token = None;
            c.refresh_token = None;
            written.update_account(&c, &[]).await.unwrap();
            connect(&others, 1, "tiktok", "d-again").await;
        })
    }));
    let limits = RefreshLimits {
        concurrency: 1,
        ..RefreshLimits::default()
    };
    let report = i.refresh_due(WINDOW, limits).await.unwrap();
    assert_eq!(platform.refreshed(), ["a", "f"], "platform calls");
    assert_eq!(
        report,
        RefreshReport {
            claimed: 5,
            refreshed: 2,
            needs_reconnect: 1,
            // `b` is gone.
            failed_other: 1,
            // `d` was renewed by its reconnection.
            skipped_leased: 1,
            ..RefreshReport::default()
        }
    );
    let e_after = row(&store, "tiktok", "e").await;
    assert_eq!(e_after.lease_owner.as_deref(), Some("another-worker"));
    assert_eq!(e_after.access_token, e.access_token);
    let views = i.status(UserId(1)).await.unwrap();
    let status = |account: &str| {
        views
            .iter()
            .find(|v| v.provider_account_id == account)
            .map(|v| v.status)
    };
    assert_eq!(status("b"), None);
    assert_eq!(status("c"), Some(IntegrationStatus::NeedsReconnect));
    assert_eq!(status("d"), Some(IntegrationStatus::Connected));
}

/// Runs a [`Refresher`] over three accounts, due at its first pass, for `passes` passes.
/// Returns the instant it was started followed by the instant each pass reported, its
/// store, and the report of the first pass.
async fn refresher_pass_times(
    config: RefresherConfig,
    passes: usize,
) -> (Vec<tokio::time::Instant>, Arc<MemoryStore>, RefreshReport) {
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
    for n in 0..3 {
        connect(&i, 1, "tiktok", &format!("a{n}")).await;
    }
    clock.advance(Duration::minutes(55));
    let started = tokio::time::Instant::now();
    let refresher = Refresher::spawn(i, config);
    let mut reports = refresher.reports();
    let mut times = vec![started];
    let mut first = None;
    for _ in 0..passes {
        reports
            .changed()
            .await
            .expect("the refresher keeps running");
        times.push(tokio::time::Instant::now());
        first.get_or_insert(*reports.borrow_and_update());
    }
    refresher.shutdown().await;
    (times, store, first.unwrap_or_default())
}

#[tokio::test(start_paused = true)]
async fn refresher_passes_are_an_interval_plus_a_bounded_jitter_apart() {
    let interval = StdDuration::from_secs(60);
    let jitter = StdDuration::from_secs(10);
    let config = RefresherConfig {
        interval,
        jitter,
        ..RefresherConfig::default()
    };
    let (times, store, first) = refresher_pass_times(config, 40).await;
    assert_eq!(times[1], times[0], "the first pass runs at once");
    assert_eq!(first.refreshed, 3, "{first:?}");
    let audit = audit_after(&store, 0).await;
    let refreshed = audit
        .iter()
        .filter(|(_, _, action, outcome)| *action == AuditAction::Refreshed && outcome == "success")
        .count();
    assert_eq!(refreshed, 3, "one audit event per refresh: {audit:?}");
    let gaps: Vec<_> = times[1..].windows(2).map(|w| w[1] - w[0]).collect();
    for gap in &gaps {
        assert!(
            *gap >= interval && *gap < interval + jitter,
            "a pass {gap:?} after the previous one"
        );
    }
    // The jitter is drawn anew for each wait: the gaps spread over its range.
    let middle = interval + jitter / 2;
    assert!(gaps.iter().any(|g| *g < middle), "{gaps:?}");
    assert!(gaps.iter().any(|g| *g >= middle), "{gaps:?}");
}

#[tokio::test(start_paused = true)]
async fn refresher_without_jitter_runs_exactly_every_interval() {
    let interval = StdDuration::from_secs(30);
    let config = RefresherConfig {
        interval,
        jitter: StdDuration::ZERO,
        ..RefresherConfig::default()
    };
    let (times, _, _) = refresher_pass_times(config, 5).await;
    let gaps: Vec<_> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(
        gaps,
        [StdDuration::ZERO, interval, interval, interval, interval]
    );
}

/// A service whose `send` goes through a [`Platform`] (so that its requests' times are
/// recorded), for account `acct` of user 1, with an HTTP client that sets no timer of its
/// own (no timeout, no sweep of idle connections): under paused time the clock then moves
/// only by the retry policy's waits.
async fn paused_sender(send: SendPolicy) -> (Integrations, Arc<Platform>, Arc<ScriptedProvider>) {
    let store = Arc::new(MemoryStore::new());
    let scripted = Arc::new(ScriptedProvider::new("tiktok"));
    let clock = clock();
    let platform = Platform::new(&scripted, &store, &clock, Duration::zero(), &["acct"]);
    let http = reqwest::Client::builder()
        .pool_idle_timeout(None)
        .build()
        .unwrap();
    let i = Integrations::builder(store.clone(), TokenCipher::new(EncryptionKey::generate()))
        .provider(platform.clone())
        .clock(clock.clone())
        .config(ServiceConfig { send, ..no_limit() })
        .http_client(http)
        .build();
    connect(&i, 1, "tiktok", "acct").await;
    (i, platform, scripted)
}

/// Asserts the backoff before retry `n` (0 for the first retry): the base doubled `n`
/// times, plus up to half of that.
fn assert_backoff(gap: StdDuration, base: StdDuration, n: u32) {
    let exp = base * 2u32.pow(n);
    assert!(
        gap >= exp && gap <= exp + exp / 2,
        "retry {n}: waited {gap:?}, expected {exp:?} plus up to half"
    );
}

#[tokio::test(start_paused = true)]
async fn send_waits_a_retry_after_of_exactly_max_retry_wait_and_refuses_a_second_more() {
    let policy = SendPolicy {
        max_retry_wait: StdDuration::from_secs(5),
        ..SendPolicy::default()
    };
    // "Up to max_retry_wait": a wait of exactly the cap is waited.
    let (i, platform, _) = paused_sender(policy.clone()).await;
    let server = api(vec![
        ResponseTemplate::new(429).insert_header("Retry-After", "5"),
    ])
    .await;
    let resp = i
        .send(UserId(1), "tiktok", "acct", get(&server))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(platform.gaps(), vec![StdDuration::from_secs(5)]);
    // One second more: the typed error at once, no second request.
    let (i, platform, _) = paused_sender(policy).await;
    let server = api(vec![
        ResponseTemplate::new(429).insert_header("Retry-After", "6"),
    ])
    .await;
    let err = i
        .send(UserId(1), "tiktok", "acct", get(&server))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Provider(ProviderError::RateLimited { retry_after: Some(d) }) if d.as_secs() == 6
        ),
        "{err:?}"
    );
    assert_eq!(platform.requests(), 1);
}

#[tokio::test(start_paused = true)]
async fn send_retries_5xx_max_attempts_times_with_doubling_backoff_and_no_wait_after_the_last() {
    let base = StdDuration::from_secs(1);
    let (i, platform, _) = paused_sender(SendPolicy {
        max_attempts: 4,
        backoff_base: base,
        ..SendPolicy::default()
    })
    .await;
    // More 503s than attempts, then success: a retry too many would succeed.
    let server = api((0..6).map(|_| ResponseTemplate::new(503)).collect()).await;
    let err = i
        .send(UserId(1), "tiktok", "acct", get(&server))
        .await
        .unwrap_err();
    let returned = tokio::time::Instant::now();
    assert!(
        matches!(
            err,
            Error::Provider(ProviderError::Unavailable { status: 503 })
        ),
        "{err:?}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 4);
    assert_eq!(platform.requests(), 4);
    let gaps = platform.gaps();
    for (n, gap) in gaps.iter().enumerate() {
        assert_backoff(*gap, base, n as u32);
    }
    assert_eq!(
        returned,
        platform.last_request(),
        "the last attempt's error is returned at once"
    );
}

#[tokio::test(start_paused = true)]
async fn send_backs_off_by_attempt_across_rate_limits_and_5xx() {
    let base = StdDuration::from_secs(1);
    let policy = SendPolicy {
        max_attempts: 4,
        backoff_base: base,
        ..SendPolicy::default()
    };
    let (i, platform, _) = paused_sender(policy.clone()).await;
    // A 429 with `Retry-After`, a 503, a 429 without: the waits are the platform's, then
    // the backoff of the second and the third attempt.
    let server = api(vec![
        ResponseTemplate::new(429).insert_header("Retry-After", "2"),
        ResponseTemplate::new(503),
        ResponseTemplate::new(429),
    ])
    .await;
    let resp = i
        .send(UserId(1), "tiktok", "acct", get(&server))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let gaps = platform.gaps();
    assert_eq!(gaps.len(), 3);
    assert_eq!(gaps[0], StdDuration::from_secs(2), "Retry-After");
    assert_backoff(gaps[1], base, 1);
    assert_backoff(gaps[2], base, 2);

    // 429s without a wait: as many attempts as the policy allows, then the rate limit.
    let (i, platform, _) = paused_sender(policy).await;
    let server = api((0..6).map(|_| ResponseTemplate::new(429)).collect()).await;
    let err = i
        .send(UserId(1), "tiktok", "acct", get(&server))
        .await
        .unwrap_err();
    let returned = tokio::time::Instant::now();
    assert!(
        matches!(
            err,
            Error::Provider(ProviderError::RateLimited { retry_after: None })
        ),
        "{err:?}"
    );
    assert_eq!(platform.requests(), 4);
    for (n, gap) in platform.gaps().iter().enumerate() {
        assert_backoff(*gap, base, n as u32);
    }
    assert_eq!(returned, platform.last_request());
}

#[tokio::test(start_paused = true)]
async fn send_retries_network_errors_of_idempotent_requests_only() {
    let base = StdDuration::from_secs(1);
    let policy = SendPolicy {
        max_attempts: 3,
        backoff_base: base,
        ..SendPolicy::default()
    };
    // A port nothing listens on: every attempt is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url: reqwest::Url = format!("http://{closed}/v1/data").parse().unwrap();
    let (i, platform, _) = paused_sender(policy.clone()).await;
    let get = reqwest::Request::new(reqwest::Method::GET, url.clone());
    let err = i.send(UserId(1), "tiktok", "acct", get).await.unwrap_err();
    let returned = tokio::time::Instant::now();
    assert!(
        matches!(err, Error::Provider(ProviderError::Network { .. })),
        "{err:?}"
    );
    assert_eq!(platform.requests(), 3);
    for (n, gap) in platform.gaps().iter().enumerate() {
        assert_backoff(*gap, base, n as u32);
    }
    assert_eq!(returned, platform.last_request());
    // A POST is sent once.
    let (i, platform, _) = paused_sender(policy).await;
    let post = reqwest::Request::new(reqwest::Method::POST, url);
    let err = i.send(UserId(1), "tiktok", "acct", post).await.unwrap_err();
    assert!(
        matches!(err, Error::Provider(ProviderError::Network { .. })),
        "{err:?}"
    );
    assert_eq!(platform.requests(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_retry_after_a_refresh_on_401_does_not_use_up_an_attempt() {
    let base = StdDuration::from_secs(1);
    let (i, platform, scripted) = paused_sender(SendPolicy {
        max_attempts: 3,
        backoff_base: base,
        ..SendPolicy::default()
    })
    .await;
    let mut responses = vec![ResponseTemplate::new(401)];
    responses.extend((0..5).map(|_| ResponseTemplate::new(503)));
    let server = api(responses).await;
    let err = i
        .send(UserId(1), "tiktok", "acct", get(&server))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Provider(ProviderError::Unavailable { status: 503 })
        ),
        "{err:?}"
    );
    assert_eq!(scripted.refresh_calls(), 1);
    // The 401, then the policy's three attempts with the refreshed token.
    assert_eq!(platform.requests(), 4);
    let gaps = platform.gaps();
    assert_eq!(
        gaps[0],
        StdDuration::ZERO,
        "retried at once after the refresh"
    );
    assert_backoff(gaps[1], base, 0);
    assert_backoff(gaps[2], base, 1);
}
