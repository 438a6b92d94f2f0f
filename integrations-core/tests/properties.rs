//! The design's eight correctness properties, as quickcheck properties (at least 100
//! cases each).

use chrono::{Duration, TimeZone, Utc};
use integrations_core::testing::ScriptedProvider;
use integrations_core::{
    CallbackParams, EncryptionKey, Error, IntegrationStatus, Integrations, ManualClock,
    MemoryStore, ProviderId, ServiceConfig, StoredStatus, TokenCipher, TokenStore, UserId,
    compute_status, is_token_expired,
};
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

const CASES: u64 = 100;

fn qc() -> QuickCheck {
    QuickCheck::new().tests(CASES).max_tests(CASES * 20)
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

struct World {
    integrations: Integrations,
    store: Arc<MemoryStore>,
    provider: Arc<ScriptedProvider>,
    clock: Arc<ManualClock>,
}

fn world() -> World {
    let store = Arc::new(MemoryStore::new());
    let provider = Arc::new(ScriptedProvider::new("tiktok"));
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
    ));
    let integrations =
        Integrations::builder(store.clone(), TokenCipher::new(EncryptionKey::generate()))
            .provider(provider.clone())
            .clock(clock.clone())
            .config(ServiceConfig {
                connect_limit: usize::MAX,
                ..ServiceConfig::default()
            })
            .build();
    World {
        integrations,
        store,
        provider,
        clock,
    }
}

async fn try_connect(
    w: &World,
    user: i64,
    code: &str,
) -> Result<integrations_core::Connected, Error> {
    let start = w.integrations.connect(UserId(user), "tiktok", None).await?;
    w.integrations
        .callback(
            UserId(user),
            "tiktok",
            &CallbackParams::from_pairs([("code", code), ("state", start.state.as_str())]),
        )
        .await
}

/// Property 1: integration uniqueness. Whatever sequence of (user, account) connections
/// happens, each (provider, providerAccountId) is stored at most once, owned by the first
/// user who connected it.
#[test]
fn property_1_integration_uniqueness() {
    fn prop(ops: Vec<(u8, u8)>) -> bool {
        block_on(async {
            let w = world();
            let mut owner: HashMap<u8, i64> = HashMap::new();
            for (i, (user, account)) in ops.iter().enumerate() {
                let user = i64::from(user % 4);
                let account = account % 6;
                // Each connection uses a fresh code that maps to the account.
                let code = format!("code-{i}");
                w.provider
                    .account_for_code(&code, &format!("acct{account}"));
                let result = try_connect(&w, user, &code).await;
                match owner.get(&account) {
                    Some(&o) if o != user => {
                        if !matches!(result, Err(Error::AccountOwnedByAnotherUser)) {
                            return false;
                        }
                    }
                    _ => {
                        if result.is_err() {
                            return false;
                        }
                        owner.insert(account, user);
                    }
                }
            }
            let mut seen = HashSet::new();
            for user in 0..4 {
                for rec in w.store.list_accounts(UserId(user)).await.unwrap() {
                    if !seen.insert(rec.provider_account_id.clone()) {
                        return false;
                    }
                    let account: u8 = rec.provider_account_id[4..].parse().unwrap();
                    if owner.get(&account) != Some(&user) {
                        return false;
                    }
                }
            }
            seen.len() == owner.len()
        })
    }
    qc().quickcheck(prop as fn(Vec<(u8, u8)>) -> bool);
}

/// Property 2: token refresh preserves the connection. Any number of refreshes at any
/// times keeps the account connected, without the user, with a live token.
#[test]
fn property_2_token_refresh_preserves_connection() {
    fn prop(gaps_minutes: Vec<u16>) -> bool {
        block_on(async {
            let w = world();
            try_connect(&w, 1, "acct").await.unwrap();
            for gap in gaps_minutes.iter().take(20) {
                // Minutes, plus a few seconds so coalescing never hides a refresh.
                w.clock
                    .advance(Duration::minutes(i64::from(gap % 600)) + Duration::seconds(3));
                let view = w
                    .integrations
                    .refresh(UserId(1), "tiktok", "acct")
                    .await
                    .unwrap();
                if view.status != IntegrationStatus::Connected {
                    return false;
                }
            }
            let token = w
                .integrations
                .access_token(UserId(1), "tiktok", "acct")
                .await
                .unwrap();
            w.provider.is_live_access_token(token.expose_secret())
                && w.provider.refresh_calls() == gaps_minutes.len().min(20)
                && w.provider.exchange_calls() == 1
        })
    }
    qc().quickcheck(prop as fn(Vec<u16>) -> bool);
}

/// Property 3: disconnection cleanup. Disconnecting removes the account's row and every
/// credential; other accounts keep theirs.
#[test]
fn property_3_disconnection_cleanup() {
    fn prop(n: u8, remove_mask: u16) -> bool {
        let n = n % 8 + 1;
        block_on(async {
            let w = world();
            for i in 0..n {
                try_connect(&w, 1, &format!("a{i}")).await.unwrap();
            }
            let mut kept = 0;
            for i in 0..n {
                if remove_mask & (1 << i) != 0 {
                    w.integrations
                        .disconnect(UserId(1), "tiktok", &format!("a{i}"))
                        .await
                        .unwrap();
                } else {
                    kept += 1;
                }
            }
            let pid = ProviderId::new("tiktok").unwrap();
            for i in 0..n {
                let row = w.store.find_account(&pid, &format!("a{i}")).await.unwrap();
                let removed = remove_mask & (1 << i) != 0;
                match (removed, row) {
                    (true, Some(_)) => return false,
                    (false, Some(r)) if r.access_token.is_none() || r.refresh_token.is_none() => {
                        return false;
                    }
                    (false, None) => return false,
                    _ => {}
                }
            }
            w.store.list_accounts(UserId(1)).await.unwrap().len() == kept
        })
    }
    qc().quickcheck(prop as fn(u8, u16) -> bool);
}

/// Property 4: OAuth state validation. A callback whose state differs from the issued one
/// in any way (forged, truncated, extended, case-changed) is rejected and stores nothing;
/// the issued one works once.
#[test]
fn property_4_oauth_state_validation() {
    fn prop(forged: String, cut: usize) -> TestResult {
        block_on(async {
            let w = world();
            let start = w
                .integrations
                .connect(UserId(1), "tiktok", None)
                .await
                .unwrap();
            let s = &start.state;
            let mut candidates = vec![forged, s[..cut % s.len()].to_owned(), format!("{s}x")];
            let flipped: String = s
                .chars()
                .map(|c| {
                    if c.is_ascii_lowercase() {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    }
                })
                .collect();
            candidates.push(flipped);
            for bad in candidates.iter().filter(|c| *c != s) {
                let r = w
                    .integrations
                    .callback(
                        UserId(1),
                        "tiktok",
                        &CallbackParams::from_pairs([("code", "x"), ("state", bad.as_str())]),
                    )
                    .await;
                if !matches!(r, Err(Error::InvalidState)) {
                    return TestResult::failed();
                }
            }
            if !w.store.list_accounts(UserId(1)).await.unwrap().is_empty() {
                return TestResult::failed();
            }
            let ok = CallbackParams::from_pairs([("code", "x"), ("state", s.as_str())]);
            if w.integrations
                .callback(UserId(1), "tiktok", &ok)
                .await
                .is_err()
            {
                return TestResult::failed();
            }
            let replay = w.integrations.callback(UserId(1), "tiktok", &ok).await;
            TestResult::from_bool(matches!(replay, Err(Error::InvalidState)))
        })
    }
    qc().quickcheck(prop as fn(String, usize) -> TestResult);
}

/// Property 5: expired token detection. A token is expired exactly when now >= expiresAt;
/// an expired one without a way to refresh shows `Expired`, a dead grant shows
/// `NeedsReconnect`.
#[test]
fn property_5_expired_token_detection() {
    fn prop(expires_offset: i32, has_expiry: bool, has_refresh: bool, dead: bool) -> bool {
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        let expires_at = has_expiry.then(|| now + Duration::seconds(i64::from(expires_offset)));
        let expired = is_token_expired(expires_at, now);
        if expired != (has_expiry && expires_offset <= 0) {
            return false;
        }
        let stored = if dead {
            StoredStatus::NeedsReconnect
        } else {
            StoredStatus::Active
        };
        let status = compute_status(stored, expires_at, has_refresh, None, now);
        let want = if dead {
            IntegrationStatus::NeedsReconnect
        } else if expired && !has_refresh {
            IntegrationStatus::Expired
        } else {
            IntegrationStatus::Connected
        };
        status == want
    }
    qc().quickcheck(prop as fn(i32, bool, bool, bool) -> bool);

    // And through the service with a moving clock.
    fn through_service(lifetime_s: u16, wait_s: u16) -> bool {
        block_on(async {
            let caps = integrations_core::Capabilities {
                refresh: false,
                ..Default::default()
            };
            let store = Arc::new(MemoryStore::new());
            let provider = Arc::new(ScriptedProvider::with_capabilities("tiktok", caps, false));
            let lifetime = u64::from(lifetime_s) + 1;
            provider.set_expires_in(Some(std::time::Duration::from_secs(lifetime)));
            let clock = Arc::new(ManualClock::new(
                Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            ));
            let i = Integrations::builder(store, TokenCipher::new(EncryptionKey::generate()))
                .provider(provider)
                .clock(clock.clone())
                .build();
            let start = i.connect(UserId(1), "tiktok", None).await.unwrap();
            i.callback(
                UserId(1),
                "tiktok",
                &CallbackParams::from_pairs([("code", "a"), ("state", start.state.as_str())]),
            )
            .await
            .unwrap();
            clock.advance(Duration::seconds(i64::from(wait_s)));
            let status = i.status(UserId(1)).await.unwrap()[0].status;
            let want = if u64::from(wait_s) >= lifetime {
                IntegrationStatus::Expired
            } else {
                IntegrationStatus::Connected
            };
            status == want
        })
    }
    qc().quickcheck(through_service as fn(u16, u16) -> bool);
}

#[derive(Debug, Clone)]
struct JsonMeta(serde_json::Value);

impl Arbitrary for JsonMeta {
    fn arbitrary(g: &mut Gen) -> Self {
        let mut m = serde_json::Map::new();
        if bool::arbitrary(g) {
            m.insert("username".into(), String::arbitrary(g).into());
        }
        for _ in 0..u8::arbitrary(g) % 5 {
            let key = format!("k{}", u8::arbitrary(g));
            let v = match u8::arbitrary(g) % 4 {
                0 => serde_json::Value::from(String::arbitrary(g)),
                1 => serde_json::Value::from(u64::arbitrary(g)),
                2 => serde_json::Value::from(bool::arbitrary(g)),
                _ => serde_json::Value::Null,
            };
            m.insert(key, v);
        }
        JsonMeta(serde_json::Value::Object(m))
    }
}

/// Property 6: real data display. What `status` shows is exactly what the platform's
/// profile returned: no invented usernames, counts or placeholders.
#[test]
fn property_6_real_data_display() {
    fn prop(meta: JsonMeta) -> bool {
        block_on(async {
            let w = world();
            w.provider.set_metadata("acct", meta.0.clone());
            try_connect(&w, 1, "acct").await.unwrap();
            let view = &w.integrations.status(UserId(1)).await.unwrap()[0];
            let username = meta
                .0
                .get("username")
                .and_then(|u| u.as_str())
                .map(str::to_owned);
            view.metadata == meta.0 && view.username == username
        })
    }
    qc().quickcheck(prop as fn(JsonMeta) -> bool);
}

/// Property 7: multi-account support. A user can connect several accounts on one
/// platform; all are stored and listed, distinguished by providerAccountId.
#[test]
fn property_7_multi_account_support() {
    fn prop(accounts: Vec<u16>) -> bool {
        block_on(async {
            let w = world();
            let distinct: HashSet<u16> = accounts.iter().take(12).copied().collect();
            for (i, a) in accounts.iter().take(12).enumerate() {
                let code = format!("c{i}");
                w.provider.account_for_code(&code, &format!("acct-{a}"));
                try_connect(&w, 7, &code).await.unwrap();
            }
            let listed: HashSet<String> = w
                .integrations
                .status(UserId(7))
                .await
                .unwrap()
                .into_iter()
                .map(|v| v.provider_account_id)
                .collect();
            let want: HashSet<String> = distinct.iter().map(|a| format!("acct-{a}")).collect();
            listed == want
        })
    }
    qc().quickcheck(prop as fn(Vec<u16>) -> bool);
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct InstagramMetadata {
    ig_business_id: String,
    username: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    profile_picture_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    followers_count: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OnlyFansMetadata {
    account_id: String,
    username: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    avatar_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TikTokMetadata {
    open_id: String,
    username: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    avatar_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RedditMetadata {
    username: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    icon_img: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    karma: Option<i64>,
}

#[derive(Debug, Clone)]
enum PlatformMeta {
    Instagram(InstagramMetadata),
    OnlyFans(OnlyFansMetadata),
    TikTok(TikTokMetadata),
    Reddit(RedditMetadata),
}

impl Arbitrary for PlatformMeta {
    fn arbitrary(g: &mut Gen) -> Self {
        let s = |g: &mut Gen| String::arbitrary(g);
        let os = |g: &mut Gen| Option::<String>::arbitrary(g);
        match u8::arbitrary(g) % 4 {
            0 => Self::Instagram(InstagramMetadata {
                ig_business_id: u64::arbitrary(g).to_string(),
                username: s(g),
                profile_picture_url: os(g),
                followers_count: Option::arbitrary(g),
            }),
            1 => Self::OnlyFans(OnlyFansMetadata {
                account_id: s(g),
                username: s(g),
                display_name: os(g),
                avatar_url: os(g),
            }),
            2 => Self::TikTok(TikTokMetadata {
                open_id: s(g),
                username: s(g),
                display_name: os(g),
                avatar_url: os(g),
            }),
            _ => Self::Reddit(RedditMetadata {
                username: s(g),
                icon_img: os(g),
                karma: Option::arbitrary(g),
            }),
        }
    }
}

/// Property 8: metadata persistence. Each platform's metadata stored at connection comes
/// back from the store and parses into the same typed structure.
#[test]
fn property_8_metadata_persistence() {
    fn prop(meta: PlatformMeta) -> bool {
        block_on(async {
            let w = world();
            let json = match &meta {
                PlatformMeta::Instagram(m) => serde_json::to_value(m),
                PlatformMeta::OnlyFans(m) => serde_json::to_value(m),
                PlatformMeta::TikTok(m) => serde_json::to_value(m),
                PlatformMeta::Reddit(m) => serde_json::to_value(m),
            }
            .unwrap();
            w.provider.set_metadata("acct", json);
            try_connect(&w, 1, "acct").await.unwrap();
            let stored = w.integrations.status(UserId(1)).await.unwrap()[0]
                .metadata
                .clone();
            match meta {
                PlatformMeta::Instagram(m) => {
                    serde_json::from_value::<InstagramMetadata>(stored).ok() == Some(m)
                }
                PlatformMeta::OnlyFans(m) => {
                    serde_json::from_value::<OnlyFansMetadata>(stored).ok() == Some(m)
                }
                PlatformMeta::TikTok(m) => {
                    serde_json::from_value::<TikTokMetadata>(stored).ok() == Some(m)
                }
                PlatformMeta::Reddit(m) => {
                    serde_json::from_value::<RedditMetadata>(stored).ok() == Some(m)
                }
            }
        })
    }
    qc().quickcheck(prop as fn(PlatformMeta) -> bool);
}
