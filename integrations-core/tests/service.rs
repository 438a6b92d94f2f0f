//! The `Integrations` state machine over `MemoryStore` and `ScriptedProvider`.

use chrono::{Duration, TimeZone, Utc};
use integrations_core::testing::ScriptedProvider;
use integrations_core::{
    AuditAction, CallbackParams, Capabilities, ConnectionEventKind, EncryptionKey, Error,
    IntegrationStatus, Integrations, ManualClock, MemoryStore, PendingAuthorization, PkceSupport,
    ProviderError, ProviderId, SealedSecret, ServiceConfig, StateHash, StoreError, StoredStatus,
    TokenCipher, TokenStore, UserId,
};
use std::sync::Arc;

struct Fixture {
    integrations: Integrations,
    store: Arc<MemoryStore>,
    provider: Arc<ScriptedProvider>,
    clock: Arc<ManualClock>,
}

fn fixture_with(provider: ScriptedProvider, config: ServiceConfig) -> Fixture {
    let store = Arc::new(MemoryStore::new());
    let provider = Arc::new(provider);
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 5, 1, 8, 0, 0).unwrap(),
    ));
    let integrations =
        Integrations::builder(store.clone(), TokenCipher::new(EncryptionKey::generate()))
            .provider(provider.clone())
            .clock(clock.clone())
            .config(config)
            .build();
    Fixture {
        integrations,
        store,
        provider,
        clock,
    }
}

fn fixture() -> Fixture {
    fixture_with(ScriptedProvider::new("reddit"), ServiceConfig::default())
}

fn params(pairs: &[(&str, &str)]) -> CallbackParams {
    CallbackParams::from_pairs(pairs.iter().copied())
}

async fn connect(f: &Fixture, user: i64, code: &str) -> integrations_core::Connected {
    let start = f
        .integrations
        .connect(UserId(user), "reddit", None)
        .await
        .expect("connect");
    f.integrations
        .callback(
            UserId(user),
            "reddit",
            &params(&[("code", code), ("state", &start.state)]),
        )
        .await
        .expect("callback")
}

async fn snapshot(store: &MemoryStore) -> Vec<integrations_core::AccountRecord> {
    let mut all = Vec::new();
    for u in 0..10 {
        all.extend(store.list_accounts(UserId(u)).await.unwrap());
    }
    all
}

#[tokio::test]
async fn connect_callback_stores_sealed_tokens_and_metadata() {
    let f = fixture();
    let mut events = f.integrations.subscribe();
    f.provider.set_metadata(
        "spez",
        serde_json::json!({"username": "spez", "karma": 1234}),
    );
    let start = f
        .integrations
        .connect(UserId(1), "reddit", Some("/integrations".into()))
        .await
        .unwrap();
    let q: std::collections::HashMap<_, _> = start.auth_url.query_pairs().into_owned().collect();
    assert_eq!(q["state"], start.state);
    assert!(start.state.len() >= 22, "state carries >= 128 bits");
    assert!(
        q.contains_key("code_challenge"),
        "PKCE S256 is used where supported"
    );
    let c = f
        .integrations
        .callback(
            UserId(1),
            "reddit",
            &params(&[("code", "spez"), ("state", &start.state)]),
        )
        .await
        .unwrap();
    assert!(!c.reauthorized);
    assert_eq!(c.redirect_url.as_deref(), Some("/integrations"));
    assert_eq!(c.account.username.as_deref(), Some("spez"));
    assert_eq!(c.account.metadata["karma"], 1234);
    assert_eq!(c.account.status, IntegrationStatus::Connected);
    assert_eq!(
        c.account.expires_at,
        Some(f.clock.now_for_test() + Duration::hours(1))
    );
    let row = f
        .store
        .find_account(&ProviderId::new("reddit").unwrap(), "spez")
        .await
        .unwrap()
        .unwrap();
    let sealed = row.access_token.clone().unwrap();
    assert!(
        !sealed.as_str().contains("at-"),
        "tokens are sealed at rest"
    );
    let token = f
        .integrations
        .access_token(UserId(1), "reddit", "spez")
        .await
        .unwrap();
    assert!(f.provider.is_live_access_token(token.expose_secret()));
    let ev = events.try_recv().unwrap();
    assert_eq!(ev.kind, ConnectionEventKind::Connected);
    assert_eq!(ev.provider_account_id, "spez");
    let audit = f.store.list_audit(UserId(1), 10).await.unwrap();
    assert_eq!(
        audit.iter().map(|e| e.event.action).collect::<Vec<_>>(),
        vec![AuditAction::Connected, AuditAction::ConnectStarted]
    );
}

trait NowForTest {
    fn now_for_test(&self) -> chrono::DateTime<Utc>;
}
impl NowForTest for ManualClock {
    fn now_for_test(&self) -> chrono::DateTime<Utc> {
        integrations_core::Clock::now(self)
    }
}

#[tokio::test]
async fn cancelled_callback_is_typed_and_changes_nothing() {
    let f = fixture();
    connect(&f, 1, "keep").await;
    let before = snapshot(&f.store).await;
    let start = f
        .integrations
        .connect(UserId(1), "reddit", None)
        .await
        .unwrap();
    let err = f
        .integrations
        .callback(
            UserId(1),
            "reddit",
            &params(&[("error", "access_denied"), ("state", &start.state)]),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err:?}");
    assert_eq!(
        err.user_message(),
        "Connection cancelled. You can try again anytime."
    );
    assert_eq!(snapshot(&f.store).await, before);
    // The state was consumed by the cancelled callback.
    let again = f
        .integrations
        .callback(
            UserId(1),
            "reddit",
            &params(&[("code", "x"), ("state", &start.state)]),
        )
        .await
        .unwrap_err();
    assert!(matches!(again, Error::InvalidState));
    // Another platform error.
    let start = f
        .integrations
        .connect(UserId(1), "reddit", None)
        .await
        .unwrap();
    let err = f
        .integrations
        .callback(
            UserId(1),
            "reddit",
            &params(&[("error", "invalid_scope"), ("state", &start.state)]),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AuthorizationFailed { .. }), "{err:?}");
    assert_eq!(
        f.provider.exchange_calls(),
        1,
        "no exchange on error callbacks"
    );
}

#[tokio::test]
async fn forged_replayed_expired_and_mismatched_states_are_refused() {
    let f = fixture_with(ScriptedProvider::new("reddit"), ServiceConfig::default());
    let c = connect(&f, 1, "acct").await;
    let before = snapshot(&f.store).await;

    // Forged / missing state.
    for p in [
        params(&[("code", "evil"), ("state", "forged")]),
        params(&[("code", "evil")]),
        params(&[("code", "evil"), ("state", "")]),
        params(&[("code", "evil"), ("state", &"x".repeat(10_000))]),
    ] {
        let err = f
            .integrations
            .callback(UserId(1), "reddit", &p)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidState), "{err:?}");
    }
    // Unknown provider.
    let err = f
        .integrations
        .callback(
            UserId(1),
            "myspace",
            &params(&[("code", "a"), ("state", "b")]),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnknownProvider(_)));

    // Replayed state.
    let start = f
        .integrations
        .connect(UserId(1), "reddit", None)
        .await
        .unwrap();
    let ok = params(&[("code", "acct2"), ("state", &start.state)]);
    f.integrations
        .callback(UserId(1), "reddit", &ok)
        .await
        .unwrap();
    let replay = params(&[("code", "acct3"), ("state", &start.state)]);
    let err = f
        .integrations
        .callback(UserId(1), "reddit", &replay)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidState), "{err:?}");

    // Expired state.
    let start = f
        .integrations
        .connect(UserId(1), "reddit", None)
        .await
        .unwrap();
    f.clock.advance(Duration::minutes(10));
    let err = f
        .integrations
        .callback(
            UserId(1),
            "reddit",
            &params(&[("code", "late"), ("state", &start.state)]),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::StateExpired), "{err:?}");

    // Another user's state.
    let start = f
        .integrations
        .connect(UserId(2), "reddit", None)
        .await
        .unwrap();
    let err = f
        .integrations
        .callback(
            UserId(1),
            "reddit",
            &params(&[("code", "stolen"), ("state", &start.state)]),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::StateMismatch), "{err:?}");

    let after = snapshot(&f.store).await;
    assert_eq!(
        after.len(),
        before.len() + 1,
        "only the one valid callback stored"
    );
    assert!(after.contains(&before[0]));
    assert_eq!(c.account.provider_account_id, "acct");
    assert_eq!(f.provider.exchange_calls(), 2);
}

#[tokio::test]
async fn state_for_another_provider_is_refused() {
    let store = Arc::new(MemoryStore::new());
    let integrations =
        Integrations::builder(store.clone(), TokenCipher::new(EncryptionKey::generate()))
            .provider(Arc::new(ScriptedProvider::new("reddit")))
            .provider(Arc::new(ScriptedProvider::new("tiktok")))
            .build();
    let start = integrations
        .connect(UserId(1), "reddit", None)
        .await
        .unwrap();
    let err = integrations
        .callback(
            UserId(1),
            "tiktok",
            &params(&[("code", "x"), ("state", &start.state)]),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::StateMismatch), "{err:?}");
    assert!(store.list_accounts(UserId(1)).await.unwrap().is_empty());
}

#[tokio::test]
async fn account_of_another_user_is_refused_and_untouched() {
    let f = fixture();
    f.provider.account_for_code("code-a", "shared");
    f.provider.account_for_code("code-b", "shared");
    connect(&f, 1, "code-a").await;
    let before = snapshot(&f.store).await;
    let start = f
        .integrations
        .connect(UserId(2), "reddit", None)
        .await
        .unwrap();
    let err = f
        .integrations
        .callback(
            UserId(2),
            "reddit",
            &params(&[("code", "code-b"), ("state", &start.state)]),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AccountOwnedByAnotherUser), "{err:?}");
    assert_eq!(snapshot(&f.store).await, before);
}

#[tokio::test]
async fn reconnect_updates_the_same_row_and_clears_needs_reconnect() {
    let f = fixture();
    f.provider.account_for_code("c1", "acct");
    f.provider.account_for_code("c2", "acct");
    connect(&f, 1, "c1").await;
    f.provider.revoke_grant("acct");
    f.clock.advance(Duration::hours(2));
    let err = f
        .integrations
        .refresh(UserId(1), "reddit", "acct")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NeedsReconnect));
    assert_eq!(
        f.integrations.status(UserId(1)).await.unwrap()[0].status,
        IntegrationStatus::NeedsReconnect
    );
    let mut events = f.integrations.subscribe();
    f.provider
        .set_metadata("acct", serde_json::json!({"username": "renamed"}));
    let c = connect(&f, 1, "c2").await;
    assert!(c.reauthorized);
    assert_eq!(c.account.status, IntegrationStatus::Connected);
    assert_eq!(c.account.username.as_deref(), Some("renamed"));
    let rows = snapshot(&f.store).await;
    assert_eq!(rows.len(), 1, "no duplicate row");
    assert_eq!(rows[0].status, StoredStatus::Active);
    assert!(rows[0].access_token.is_some());
    assert_eq!(
        events.try_recv().unwrap().kind,
        ConnectionEventKind::Reauthorized
    );
}

#[tokio::test]
async fn the_access_token_reaches_a_refresh_only_when_the_provider_reads_it() {
    for uses_access_token in [true, false] {
        let caps = Capabilities {
            refresh_uses_access_token: uses_access_token,
            ..Capabilities::default()
        };
        let f = fixture_with(
            ScriptedProvider::with_capabilities("reddit", caps, true),
            ServiceConfig::default(),
        );
        connect(&f, 1, "acct").await;
        f.clock.advance(Duration::minutes(59));
        let view = f
            .integrations
            .refresh(UserId(1), "reddit", "acct")
            .await
            .expect("refresh");
        assert_eq!(view.status, IntegrationStatus::Connected);
        assert_eq!(f.provider.refresh_calls(), 1);
        assert_eq!(
            f.provider.refresh_calls_with_access_token(),
            usize::from(uses_access_token),
            "refresh_uses_access_token = {uses_access_token}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_make_one_provider_call() {
    let f = fixture();
    connect(&f, 1, "hot").await;
    f.provider
        .set_refresh_delay(std::time::Duration::from_millis(50));
    f.clock.advance(Duration::minutes(59));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let i = f.integrations.clone();
        tasks.push(tokio::spawn(async move {
            i.refresh(UserId(1), "reddit", "hot").await
        }));
    }
    let mut expiries = std::collections::HashSet::new();
    for t in tasks {
        let view = t
            .await
            .unwrap()
            .expect("every task gets the refreshed connection");
        assert_eq!(view.status, IntegrationStatus::Connected);
        expiries.insert(view.expires_at);
    }
    assert_eq!(f.provider.refresh_calls(), 1, "single-flight");
    assert_eq!(expiries.len(), 1, "all tasks see the same result");
    let token = f
        .integrations
        .access_token(UserId(1), "reddit", "hot")
        .await
        .unwrap();
    assert!(f.provider.is_live_access_token(token.expose_secret()));
    let row = f
        .store
        .find_account(&ProviderId::new("reddit").unwrap(), "hot")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.lease_owner, None, "the lease is released");
}

#[tokio::test]
async fn two_instances_sharing_a_store_refresh_once() {
    let store = Arc::new(MemoryStore::new());
    let provider = Arc::new(ScriptedProvider::new("reddit"));
    provider.set_refresh_delay(std::time::Duration::from_millis(40));
    let key = EncryptionKey::generate();
    let make = || {
        Integrations::builder(store.clone(), TokenCipher::new(key.clone()))
            .provider(provider.clone())
            .build()
    };
    let (a, b) = (make(), make());
    let start = a.connect(UserId(1), "reddit", None).await.unwrap();
    a.callback(
        UserId(1),
        "reddit",
        &params(&[("code", "acct"), ("state", &start.state)]),
    )
    .await
    .unwrap();
    let (ra, rb) = tokio::join!(
        a.refresh(UserId(1), "reddit", "acct"),
        b.refresh(UserId(1), "reddit", "acct")
    );
    assert_eq!(ra.unwrap().expires_at, rb.unwrap().expires_at);
    assert_eq!(provider.refresh_calls(), 1);
}

#[tokio::test]
async fn invalid_grant_marks_needs_reconnect_and_clears_tokens_once() {
    let f = fixture();
    connect(&f, 1, "dead").await;
    let mut events = f.integrations.subscribe();
    f.provider.revoke_grant("dead");
    f.clock.advance(Duration::hours(1));
    let err = f
        .integrations
        .refresh(UserId(1), "reddit", "dead")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NeedsReconnect), "{err:?}");
    assert_eq!(err.user_message(), "Please reconnect your account.");
    let row = f
        .store
        .find_account(&ProviderId::new("reddit").unwrap(), "dead")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, StoredStatus::NeedsReconnect);
    assert_eq!(row.access_token, None);
    assert_eq!(row.refresh_token, None);
    assert_eq!(
        events.try_recv().unwrap().kind,
        ConnectionEventKind::NeedsReconnect
    );
    // Refreshing again fails fast, with no provider call and no second event.
    let calls = f.provider.refresh_calls();
    assert!(matches!(
        f.integrations.refresh(UserId(1), "reddit", "dead").await,
        Err(Error::NeedsReconnect)
    ));
    assert_eq!(f.provider.refresh_calls(), calls);
    assert!(events.try_recv().is_err());
}

#[tokio::test]
async fn needs_reconnect_shows_no_expiry_for_its_cleared_tokens() {
    let f = fixture();
    connect(&f, 1, "dead").await;
    let live = &f.integrations.status(UserId(1)).await.unwrap()[0];
    assert!(live.expires_at.is_some());
    f.provider.revoke_grant("dead");
    f.clock.advance(Duration::minutes(30));
    let err = f.integrations.refresh(UserId(1), "reddit", "dead").await;
    assert!(matches!(err, Err(Error::NeedsReconnect)), "{err:?}");
    let row = &snapshot(&f.store).await[0];
    assert!(row.access_token.is_none() && row.refresh_token.is_none());
    let view = &f.integrations.status(UserId(1)).await.unwrap()[0];
    assert_eq!(view.status, IntegrationStatus::NeedsReconnect);
    assert_eq!(view.expires_at, None);
    let json = serde_json::to_value(view).unwrap();
    assert_eq!(json["expiresAt"], serde_json::Value::Null);
    assert_eq!(json["status"], "needs_reconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_grant_after_a_concurrent_reconnect_is_a_lost_race() {
    let f = fixture();
    f.provider.account_for_code("c1", "acct");
    f.provider.account_for_code("c2", "acct");
    connect(&f, 1, "c1").await;
    f.provider
        .set_refresh_delay(std::time::Duration::from_millis(100));
    f.provider
        .fail_next_refresh(ProviderError::InvalidGrant { description: None });
    f.clock.advance(Duration::hours(1));
    let i = f.integrations.clone();
    let refresh = tokio::spawn(async move { i.refresh(UserId(1), "reddit", "acct").await });
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    // The user reconnects while the refresh is in flight: the row changes.
    connect(&f, 1, "c2").await;
    let view = refresh
        .await
        .unwrap()
        .expect("a lost race is not a dead connection");
    assert_eq!(view.status, IntegrationStatus::Connected);
    let row = &snapshot(&f.store).await[0];
    assert_eq!(row.status, StoredStatus::Active);
    assert!(row.access_token.is_some());
}

#[tokio::test]
async fn transient_errors_keep_tokens_and_count_failures() {
    let f = fixture();
    connect(&f, 1, "flaky").await;
    let before = snapshot(&f.store).await[0].clone();
    let mut events = f.integrations.subscribe();
    f.provider
        .fail_next_refresh(ProviderError::Unavailable { status: 503 });
    f.provider.fail_next_refresh(ProviderError::RateLimited {
        retry_after: Some(std::time::Duration::from_secs(30)),
    });
    for _ in 0..2 {
        let err = f
            .integrations
            .refresh(UserId(1), "reddit", "flaky")
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err:?}");
        f.clock.advance(Duration::seconds(10));
    }
    let row = snapshot(&f.store).await[0].clone();
    assert_eq!(row.access_token, before.access_token, "old tokens kept");
    assert_eq!(row.refresh_token, before.refresh_token);
    assert_eq!(row.refresh_failures, 2);
    assert_eq!(row.status, StoredStatus::Active);
    assert!(row.last_error.is_some());
    // Edge-triggered: one RefreshFailed for two failures.
    let failed = events.try_recv().unwrap();
    assert_eq!(failed.kind, ConnectionEventKind::RefreshFailed);
    assert!(failed.payload["error_code"].is_string(), "{failed:?}");
    assert!(events.try_recv().is_err());
    // What subscribers heard is what the store recorded, with the same id.
    let stored = f
        .integrations
        .events_after(integrations_core::EventPosition::START, 100)
        .await
        .unwrap();
    assert_eq!(
        stored
            .iter()
            .filter(|s| s.event.kind == ConnectionEventKind::RefreshFailed)
            .map(|s| &s.event)
            .collect::<Vec<_>>(),
        vec![&failed],
        "one refresh_failed event recorded"
    );
    // Then a success resets the counters.
    f.integrations
        .refresh(UserId(1), "reddit", "flaky")
        .await
        .unwrap();
    let row = snapshot(&f.store).await[0].clone();
    assert_eq!(row.refresh_failures, 0);
    assert_eq!(row.last_error, None);
    assert_eq!(row.last_refresh_success_at, Some(f.clock.now_for_test()));
    assert_eq!(
        events.try_recv().unwrap().kind,
        ConnectionEventKind::Refreshed
    );
}

#[tokio::test]
async fn disconnect_checks_ownership_revokes_and_deletes() {
    let f = fixture();
    connect(&f, 1, "mine").await;
    let err = f
        .integrations
        .disconnect(UserId(2), "reddit", "mine")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound));
    assert_eq!(snapshot(&f.store).await.len(), 1);
    assert_eq!(f.provider.revoke_calls(), 0);
    let err = f
        .integrations
        .disconnect(UserId(1), "reddit", "nope")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound));
    f.integrations
        .disconnect(UserId(1), "reddit", "mine")
        .await
        .unwrap();
    assert_eq!(f.provider.revoke_calls(), 1);
    assert!(snapshot(&f.store).await.is_empty());
    assert_eq!(
        f.store.list_audit(UserId(1), 1).await.unwrap()[0]
            .event
            .action,
        AuditAction::Disconnected
    );
}

#[tokio::test]
async fn disconnect_without_revoke_capability_makes_no_call() {
    let caps = Capabilities {
        pkce: PkceSupport::Unsupported,
        revoke: false,
        ..Capabilities::default()
    };
    let f = fixture_with(
        ScriptedProvider::with_capabilities("reddit", caps, false),
        ServiceConfig::default(),
    );
    let start = f
        .integrations
        .connect(UserId(1), "reddit", None)
        .await
        .unwrap();
    assert!(!start.auth_url.as_str().contains("code_challenge"));
    f.integrations
        .callback(
            UserId(1),
            "reddit",
            &params(&[("code", "a"), ("state", &start.state)]),
        )
        .await
        .unwrap();
    f.integrations
        .disconnect(UserId(1), "reddit", "a")
        .await
        .unwrap();
    assert_eq!(f.provider.revoke_calls(), 0);
    assert!(snapshot(&f.store).await.is_empty());
}

#[tokio::test]
async fn instances_sharing_a_store_share_the_connect_limit() {
    let f = fixture();
    let t0 = f.clock.now_for_test();
    // A second instance (another process, say) on the same store and clock.
    let other = Integrations::builder(f.store.clone(), TokenCipher::new(EncryptionKey::generate()))
        .provider(f.provider.clone())
        .clock(f.clock.clone())
        .build();
    for n in 0..10 {
        let i = if n % 2 == 0 { &f.integrations } else { &other };
        i.connect(UserId(1), "reddit", None).await.unwrap();
        f.clock.advance(Duration::seconds(1));
    }
    for i in [&f.integrations, &other] {
        match i.connect(UserId(1), "reddit", None).await.unwrap_err() {
            Error::ConnectRateLimited { retry_at } => {
                assert_eq!(retry_at, t0 + Duration::minutes(5))
            }
            other => panic!("expected RateLimited, got {other:?}"),
        }
    }
    // Refused attempts do not count: once the first one leaves the window, one more is
    // allowed, and only one.
    f.clock.set(t0 + Duration::minutes(5));
    other.connect(UserId(1), "reddit", None).await.unwrap();
    match f.integrations.connect(UserId(1), "reddit", None).await {
        Err(Error::ConnectRateLimited { retry_at }) => {
            assert_eq!(retry_at, t0 + Duration::minutes(5) + Duration::seconds(1))
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
}

#[tokio::test]
async fn without_refresh_the_access_token_serves_until_it_expires() {
    let caps = Capabilities {
        refresh: false,
        ..Capabilities::default()
    };
    let f = fixture_with(
        ScriptedProvider::with_capabilities("reddit", caps, false),
        ServiceConfig::default(),
    );
    connect(&f, 1, "acct").await;
    f.clock.advance(Duration::minutes(59));
    let token = f
        .integrations
        .access_token(UserId(1), "reddit", "acct")
        .await
        .expect("a token that has not expired is served");
    assert!(f.provider.is_live_access_token(token.expose_secret()));
    f.clock.advance(Duration::minutes(1));
    let err = f
        .integrations
        .access_token(UserId(1), "reddit", "acct")
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Provider(ProviderError::Unsupported { .. })),
        "{err:?}"
    );
    assert_eq!(f.provider.refresh_calls(), 0);
}

#[tokio::test]
async fn a_connection_stores_when_its_tokens_expire() {
    let f = fixture();
    f.provider
        .set_refresh_expires_in(Some(std::time::Duration::from_secs(86_400)));
    let connected_at = integrations_core::Clock::now(f.clock.as_ref());
    connect(&f, 1, "acct").await;
    let row = f
        .store
        .find_account(&ProviderId::new("reddit").unwrap(), "acct")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.expires_at, Some(connected_at + Duration::hours(1)));
    assert_eq!(
        row.refresh_expires_at,
        Some(connected_at + Duration::days(1))
    );
}

/// The failed-callback audit limit counts the callbacks of the last `connect_window`: one
/// exactly a window old no longer counts.
#[tokio::test]
async fn the_failed_callback_audit_window_ends_exactly_one_window_later() {
    let f = fixture();
    let window = Duration::from_std(ServiceConfig::default().connect_window).unwrap();
    let forged = |n: usize| {
        let i = f.integrations.clone();
        async move {
            let state = format!("forged-{n}");
            let _ = i
                .callback(
                    UserId(1),
                    "reddit",
                    &params(&[("code", "c"), ("state", &state)]),
                )
                .await;
        }
    };
    let audited = || async {
        f.store
            .list_audit(UserId(1), 1000)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.event.action == AuditAction::CallbackFailed)
            .count()
    };
    let limit = integrations_core::FAILED_CALLBACK_AUDIT_LIMIT;
    for n in 0..limit {
        forged(n).await;
    }
    assert_eq!(audited().await, limit);
    // A microsecond before the window has passed: still at the limit.
    f.clock.advance(window - Duration::microseconds(1));
    forged(100).await;
    assert_eq!(audited().await, limit);
    // Exactly one window after the first ones: they are out of it.
    f.clock.advance(Duration::microseconds(1));
    forged(101).await;
    assert_eq!(audited().await, limit + 1);
}

/// Forged callbacks are refused, and at most FAILED_CALLBACK_AUDIT_LIMIT of them are
/// audited per window; expired pending authorizations are purged.
#[tokio::test]
async fn failing_traffic_writes_a_bounded_audit_and_pendings_are_purged() {
    let f = fixture();
    for i in 0..50 {
        let state = format!("forged-{i}");
        let err = f
            .integrations
            .callback(
                UserId(1),
                "reddit",
                &params(&[("code", "c"), ("state", &state)]),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidState), "{err:?}");
    }
    let audit = f.store.list_audit(UserId(1), 1000).await.unwrap();
    let failed = audit
        .iter()
        .filter(|e| e.event.action == AuditAction::CallbackFailed)
        .count();
    assert_eq!(failed, integrations_core::FAILED_CALLBACK_AUDIT_LIMIT);
    // A new window audits again.
    f.clock.advance(Duration::minutes(6));
    let _ = f
        .integrations
        .callback(
            UserId(1),
            "reddit",
            &params(&[("code", "c"), ("state", "x")]),
        )
        .await;
    let audit = f.store.list_audit(UserId(1), 1000).await.unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.event.action == AuditAction::CallbackFailed)
            .count(),
        integrations_core::FAILED_CALLBACK_AUDIT_LIMIT + 1
    );

    // Two started connects; once their pending authorizations expire, they are purged.
    f.integrations
        .connect(UserId(2), "reddit", None)
        .await
        .unwrap();
    f.integrations
        .connect(UserId(2), "reddit", None)
        .await
        .unwrap();
    assert_eq!(f.integrations.purge_expired().await.unwrap(), 0);
    f.clock.advance(Duration::hours(1));
    assert_eq!(f.integrations.purge_expired().await.unwrap(), 2);
}

/// The periodic purge runs at once and then every period: pending authorizations that
/// expired meanwhile are gone at the next pass, without anyone calling `purge_expired`.
#[tokio::test(start_paused = true)]
async fn expired_pending_authorizations_are_purged_every_period() {
    let f = fixture();
    for _ in 0..2 {
        f.integrations
            .connect(UserId(2), "reddit", None)
            .await
            .unwrap();
    }
    let period = std::time::Duration::from_secs(60);
    let purging = tokio::spawn(f.integrations.clone().purge_expired_every(period));
    // The first pass (at once) finds nothing expired.
    tokio::time::sleep(period / 2).await;
    f.clock.advance(Duration::hours(1));
    // The next pass, one period after the first, purges both.
    tokio::time::sleep(period).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        f.integrations.purge_expired().await.unwrap(),
        0,
        "already purged"
    );
    assert!(!purging.is_finished(), "the purge keeps running");
    purging.abort();
}

/// 40 parallel connects of one user against a limit of 10: exactly 10 get through (the
/// count and the write are one atomic step in the store).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_connects_cannot_get_past_the_limit() {
    let f = fixture();
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let i = f.integrations.clone();
        tasks.push(tokio::spawn(async move {
            i.connect(UserId(1), "reddit", None).await
        }));
    }
    let mut admitted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => admitted += 1,
            Err(Error::ConnectRateLimited { .. }) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(admitted, 10);
}

#[tokio::test]
async fn connect_is_rate_limited_per_user() {
    let f = fixture();
    let t0 = f.clock.now_for_test();
    for _ in 0..10 {
        f.integrations
            .connect(UserId(1), "reddit", None)
            .await
            .unwrap();
        f.clock.advance(Duration::seconds(1));
    }
    let err = f
        .integrations
        .connect(UserId(1), "reddit", None)
        .await
        .unwrap_err();
    match err {
        Error::ConnectRateLimited { retry_at } => assert_eq!(retry_at, t0 + Duration::minutes(5)),
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!(
        Error::ConnectRateLimited { retry_at: t0 }.user_message(),
        "Too many attempts. Please try again in 5 minutes."
    );
    // Other users are not affected.
    f.integrations
        .connect(UserId(2), "reddit", None)
        .await
        .unwrap();
    f.clock.set(t0 + Duration::minutes(5));
    f.integrations
        .connect(UserId(1), "reddit", None)
        .await
        .unwrap();
}

#[tokio::test]
async fn pkce_required_provider_gets_the_verifier() {
    let caps = Capabilities {
        pkce: PkceSupport::Required,
        ..Capabilities::default()
    };
    let f = fixture_with(
        ScriptedProvider::with_capabilities("reddit", caps, true),
        ServiceConfig::default(),
    );
    // ScriptedProvider refuses a PKCE-required exchange without a verifier.
    connect(&f, 1, "pkce").await;
    assert_eq!(snapshot(&f.store).await.len(), 1);
}

#[tokio::test]
async fn tampered_ciphertext_is_a_typed_error_and_other_accounts_still_list() {
    let f = fixture();
    connect(&f, 1, "good").await;
    connect(&f, 1, "bad").await;
    let mut row = f
        .store
        .find_account(&ProviderId::new("reddit").unwrap(), "bad")
        .await
        .unwrap()
        .unwrap();
    // Move the good row's ciphertext into the bad row: it must not open there.
    let good = f
        .store
        .find_account(&ProviderId::new("reddit").unwrap(), "good")
        .await
        .unwrap()
        .unwrap();
    row.refresh_token = good.refresh_token.clone();
    f.store.update_account(&row, &[]).await.unwrap();
    f.clock.advance(Duration::hours(2));
    let err = f
        .integrations
        .refresh(UserId(1), "reddit", "bad")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Crypto(_)), "{err:?}");
    assert_eq!(f.integrations.status(UserId(1)).await.unwrap().len(), 2);
    f.integrations
        .refresh(UserId(1), "reddit", "good")
        .await
        .unwrap();
    let mut garbage = f
        .store
        .find_account(&ProviderId::new("reddit").unwrap(), "good")
        .await
        .unwrap()
        .unwrap();
    garbage.access_token = Some(SealedSecret::from_stored("v1.zz.garbage"));
    f.store.update_account(&garbage, &[]).await.unwrap();
    assert!(matches!(
        f.integrations
            .access_token(UserId(1), "reddit", "good")
            .await,
        Err(Error::Crypto(_))
    ));
}

#[tokio::test]
async fn expired_token_without_refresh_shows_expired() {
    let caps = Capabilities {
        refresh: false,
        ..Capabilities::default()
    };
    let f = fixture_with(
        ScriptedProvider::with_capabilities("reddit", caps, false),
        ServiceConfig::default(),
    );
    connect(&f, 1, "short").await;
    assert_eq!(
        f.integrations.status(UserId(1)).await.unwrap()[0].status,
        IntegrationStatus::Connected
    );
    f.clock.advance(Duration::hours(1));
    let view = &f.integrations.status(UserId(1)).await.unwrap()[0];
    assert_eq!(view.status, IntegrationStatus::Expired);
    assert!(!view.is_connected);
    let err = f
        .integrations
        .refresh(UserId(1), "reddit", "short")
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Provider(ProviderError::Unsupported { .. })
    ));
    // Asking for the token says the same, without calling the platform or recording a
    // refresh failure on the account.
    let err = f
        .integrations
        .access_token(UserId(1), "reddit", "short")
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Provider(ProviderError::Unsupported { .. })
    ));
    assert_eq!(f.provider.refresh_calls(), 0);
    let row = &snapshot(&f.store).await[0];
    assert_eq!((row.refresh_failures, row.last_error.as_deref()), (0, None));
}

#[tokio::test]
async fn delete_user_data_removes_everything_of_that_user() {
    let f = fixture();
    connect(&f, 1, "a").await;
    connect(&f, 1, "b").await;
    connect(&f, 2, "c").await;
    f.integrations
        .connect(UserId(1), "reddit", None)
        .await
        .unwrap();
    let deleted = f.integrations.delete_user_data(UserId(1)).await.unwrap();
    assert_eq!(deleted.accounts, 2);
    assert_eq!(deleted.pending, 1);
    assert!(f.integrations.status(UserId(1)).await.unwrap().is_empty());
    assert_eq!(f.integrations.status(UserId(2)).await.unwrap().len(), 1);
    assert_eq!(f.provider.revoke_calls(), 2);
    let audit = f.store.list_audit(UserId(1), 10).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].event.action, AuditAction::UserDataDeleted);
}

#[tokio::test]
async fn store_errors_pass_through_typed() {
    let err: Error = StoreError::VersionConflict.into();
    assert_eq!(err.code(), "store");
    assert_eq!(
        err.user_message(),
        "Something went wrong. Please try again later."
    );
}

/// A pending authorization for `state`, as `connect` stores it, valid for ten minutes.
async fn pending_for(f: &Fixture, user: i64, state: &str) {
    let now = f.clock.now_for_test();
    f.store
        .put_pending(PendingAuthorization {
            state_hash: StateHash::of(state),
            user_id: UserId(user),
            provider: ProviderId::new("reddit").unwrap(),
            pkce_verifier: None,
            redirect_url: None,
            created_at: now,
            expires_at: now + Duration::minutes(10),
        })
        .await
        .unwrap();
}

/// A state of up to 512 characters is looked up; a longer one is refused as invalid
/// before the store is asked, so that a pending authorization stored under it (whatever
/// made it) is neither consumed nor used.
#[tokio::test]
async fn a_state_longer_than_512_characters_is_refused_before_any_lookup() {
    let f = fixture();
    let longest = "s".repeat(512);
    pending_for(&f, 1, &longest).await;
    let connected = f
        .integrations
        .callback(
            UserId(1),
            "reddit",
            &params(&[("code", "acct"), ("state", &longest)]),
        )
        .await
        .expect("a 512-character state is looked up");
    assert_eq!(connected.account.provider_account_id, "acct");

    let too_long = "s".repeat(513);
    pending_for(&f, 1, &too_long).await;
    let err = f
        .integrations
        .callback(
            UserId(1),
            "reddit",
            &params(&[("code", "other"), ("state", &too_long)]),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidState), "{err:?}");
    assert_eq!(f.provider.exchange_calls(), 1, "no exchange for it");
    assert_eq!(snapshot(&f.store).await.len(), 1, "nothing stored for it");
    assert!(
        f.store
            .take_pending(&StateHash::of(&too_long))
            .await
            .unwrap()
            .is_some(),
        "the store was not asked for it"
    );
}

/// The platform's account id is stored when it has 1 to 255 characters; a profile with
/// a longer or an empty one fails the callback with a protocol error and stores nothing.
#[tokio::test]
async fn an_account_id_of_up_to_255_characters_connects_and_a_longer_one_is_refused() {
    let f = fixture();
    let longest = "a".repeat(255);
    f.provider.account_for_code("longest", &longest);
    let start = f
        .integrations
        .connect(UserId(1), "reddit", None)
        .await
        .unwrap();
    let connected = f
        .integrations
        .callback(
            UserId(1),
            "reddit",
            &params(&[("code", "longest"), ("state", &start.state)]),
        )
        .await
        .expect("a 255-character account id is stored");
    assert_eq!(connected.account.provider_account_id, longest);

    for (code, account) in [("too-long", "a".repeat(256)), ("empty", String::new())] {
        f.provider.account_for_code(code, &account);
        let start = f
            .integrations
            .connect(UserId(1), "reddit", None)
            .await
            .unwrap();
        let err = f
            .integrations
            .callback(
                UserId(1),
                "reddit",
                &params(&[("code", code), ("state", &start.state)]),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Provider(ProviderError::Protocol { .. })),
            "{code}: {err:?}"
        );
    }
    let stored = snapshot(&f.store).await;
    assert_eq!(stored.len(), 1, "only the 255-character account");
    assert_eq!(stored[0].provider_account_id, longest);
}
