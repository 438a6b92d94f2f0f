//! Quotas and platform health: each platform's usage headers (names and formats), one count
//! per API call, the platform's throttle reply once the quota is used up with a reset in the
//! future, service restored by a reset or the window's end, the health presets, and the
//! HTTP controls and page.

mod common;

use common::*;
use integrations_sandbox::{
    Failure, Faults, Platform, PlatformHealth, QuotaSettings, QuotaState, Sandbox,
};
use std::time::Duration;

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("header {name}"))
        .to_str()
        .expect("ascii header")
}

fn quota(limit: u64, window_secs: u64) -> QuotaSettings {
    QuotaSettings {
        limit,
        window: Duration::from_secs(window_secs),
        used: 0,
    }
}

fn now_secs(sb: &Sandbox) -> i64 {
    sb.now().timestamp()
}

// --- Reddit ---

async fn reddit_access(sb: &Sandbox) -> String {
    let c = sb.client(Platform::Reddit);
    let url = with_query(
        &format!("{}/api/v1/authorize", sb.reddit_www()),
        &[
            ("client_id", c.client_id.as_str()),
            ("response_type", "code"),
            ("state", "s"),
            ("redirect_uri", c.redirect_uri.as_str()),
            ("duration", "permanent"),
            ("scope", "identity"),
        ],
    );
    let code = params(&follow(&http(), &url).await)["code"].clone();
    let r = http()
        .post(format!("{}/api/v1/access_token", sb.reddit_www()))
        .basic_auth(&c.client_id, Some(&c.client_secret))
        .header("user-agent", UA)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", c.redirect_uri.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The token endpoint carries the headers too.
    assert!(r.headers().contains_key("x-ratelimit-used"));
    json(r).await["access_token"].as_str().unwrap().to_owned()
}

async fn reddit_me(sb: &Sandbox, access: &str) -> reqwest::Response {
    http()
        .get(format!("{}/api/v1/me", sb.reddit_oauth()))
        .bearer_auth(access)
        .header("user-agent", UA)
        .send()
        .await
        .unwrap()
}

/// (used, remaining, reset) from Reddit's headers, checking their formats: integers, and a
/// float with one decimal for `X-Ratelimit-Remaining`.
fn reddit_usage(r: &reqwest::Response) -> (u64, f64, u64) {
    let used: u64 = header(r, "x-ratelimit-used").parse().expect("integer used");
    let remaining = header(r, "x-ratelimit-remaining");
    assert!(remaining.ends_with(".0"), "float remaining: {remaining}");
    let remaining: f64 = remaining.parse().expect("float remaining");
    let reset: u64 = header(r, "x-ratelimit-reset")
        .parse()
        .expect("integer reset");
    (used, remaining, reset)
}

#[tokio::test]
async fn reddit_headers_count_each_call_and_429_when_exhausted() {
    let sb = auto_sandbox().await;
    let d = sb.quota(Platform::Reddit);
    assert_eq!((d.limit, d.window_secs), (1000, 600));
    assert_eq!(
        QuotaSettings::default_for(Platform::Reddit),
        quota(1000, 600)
    );
    let access = reddit_access(&sb).await;
    assert_eq!(
        sb.quota(Platform::Reddit).used,
        1,
        "the code exchange counted"
    );

    sb.set_quota(Platform::Reddit, quota(5, 600)).unwrap();
    let r = reddit_me(&sb, &access).await;
    assert_eq!(r.status(), 200);
    let (used, remaining, reset) = reddit_usage(&r);
    assert_eq!((used, remaining), (1, 4.0));
    assert!(reset > 0 && reset <= 600, "{reset}");
    let r = reddit_me(&sb, &access).await;
    assert_eq!(reddit_usage(&r).0, 2);
    assert_eq!(reddit_usage(&r).1, 3.0);
    let q = sb.quota(Platform::Reddit);
    assert_eq!((q.used, q.remaining, q.exhausted), (2, 3, false));

    // Exhausted: Reddit's 429 body, nothing remaining, a reset in the future.
    let q = sb.exhaust_quota(Platform::Reddit);
    assert!(q.exhausted && q.remaining == 0);
    assert!(q.reset_at > now_secs(&sb) && q.reset_in_secs > 0);
    for _ in 0..3 {
        let r = reddit_me(&sb, &access).await;
        assert_eq!(r.status(), 429);
        let (used, remaining, reset) = reddit_usage(&r);
        assert_eq!((used, remaining), (5, 0.0));
        assert!(reset > 0 && reset <= 600);
        assert_eq!(
            json(r).await,
            serde_json::json!({"message": "Too Many Requests", "error": 429})
        );
    }
    assert_eq!(
        sb.quota(Platform::Reddit).used,
        5,
        "throttled calls are not counted"
    );

    // A reset restores service.
    sb.reset_quota(Platform::Reddit);
    let r = reddit_me(&sb, &access).await;
    assert_eq!(r.status(), 200);
    let (used, remaining, reset) = reddit_usage(&r);
    assert_eq!((used, remaining), (1, 4.0));
    assert!((590..=600).contains(&reset), "a new window: {reset}");

    // So does the end of the window, on the sandbox clock.
    sb.exhaust_quota(Platform::Reddit);
    assert_eq!(reddit_me(&sb, &access).await.status(), 429);
    sb.advance_clock(Duration::from_secs(601));
    let r = reddit_me(&sb, &access).await;
    assert_eq!(r.status(), 200);
    assert_eq!(reddit_usage(&r).0, 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn reddit_injected_429_reports_the_live_window() {
    let sb = auto_sandbox().await;
    let access = reddit_access(&sb).await;
    sb.set_quota(
        Platform::Reddit,
        QuotaSettings {
            used: 7,
            ..quota(100, 300)
        },
    )
    .unwrap();
    sb.fail_next(
        Some(Platform::Reddit),
        1,
        Failure::RateLimited {
            retry_after_secs: None,
        },
    );
    let r = reddit_me(&sb, &access).await;
    assert_eq!(r.status(), 429);
    let (used, remaining, reset) = reddit_usage(&r);
    assert_eq!((used, remaining), (7, 0.0));
    assert!(reset > 0 && reset <= 300);
    assert_eq!(
        sb.quota(Platform::Reddit).used,
        7,
        "injected faults are not counted"
    );
    sb.shutdown().await;
}

// --- Instagram ---

async fn instagram_long_lived(sb: &Sandbox) -> String {
    let c = sb.client(Platform::Instagram);
    let url = with_query(
        &format!("{}/oauth/authorize", sb.instagram_www()),
        &[
            ("client_id", c.client_id.as_str()),
            ("redirect_uri", c.redirect_uri.as_str()),
            ("response_type", "code"),
            ("scope", "instagram_business_basic"),
            ("state", "s"),
        ],
    );
    let code = params(&follow(&http(), &url).await)["code"].clone();
    let r = http()
        .post(format!("{}/oauth/access_token", sb.instagram_api()))
        .form(&[
            ("client_id", c.client_id.as_str()),
            ("client_secret", c.client_secret.as_str()),
            ("grant_type", "authorization_code"),
            ("redirect_uri", c.redirect_uri.as_str()),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        !r.headers().contains_key("x-app-usage"),
        "api.instagram.com is not a Graph host"
    );
    let short = json(r).await["access_token"].as_str().unwrap().to_owned();
    let r = http()
        .get(format!("{}/access_token", sb.instagram_graph()))
        .query(&[
            ("grant_type", "ig_exchange_token"),
            ("client_secret", c.client_secret.as_str()),
            ("access_token", short.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-app-usage"));
    assert!(r.headers().contains_key("x-business-use-case-usage"));
    json(r).await["access_token"].as_str().unwrap().to_owned()
}

async fn instagram_me(sb: &Sandbox, token: &str) -> reqwest::Response {
    http()
        .get(format!("{}/me", sb.instagram_graph()))
        .query(&[("fields", "id,username"), ("access_token", token)])
        .send()
        .await
        .unwrap()
}

/// `X-App-Usage` parsed, checking its exact keys; returns `call_count`.
fn app_usage(r: &reqwest::Response) -> u64 {
    let v: serde_json::Value =
        serde_json::from_str(header(r, "x-app-usage")).expect("X-App-Usage is JSON");
    let obj = v.as_object().expect("object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["call_count", "total_cputime", "total_time"]);
    for k in &keys {
        let n = obj[*k].as_u64().expect("whole-number percentage");
        assert!(n <= 100);
    }
    obj["call_count"].as_u64().unwrap()
}

/// `X-Business-Use-Case-Usage` parsed for `account`: (call_count, minutes to regain access).
fn buc_usage(r: &reqwest::Response, account: &str) -> (u64, u64) {
    let v: serde_json::Value = serde_json::from_str(header(r, "x-business-use-case-usage"))
        .expect("X-Business-Use-Case-Usage is JSON");
    let obj = v.as_object().expect("object");
    assert_eq!(obj.len(), 1);
    let entries = obj[account].as_array().expect("array for the account id");
    assert_eq!(entries.len(), 1);
    let e = entries[0].as_object().unwrap();
    let mut keys: Vec<&str> = e.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "call_count",
            "estimated_time_to_regain_access",
            "total_cputime",
            "total_time",
            "type"
        ]
    );
    assert_eq!(e["type"], "instagram");
    let pct = e["call_count"].as_u64().unwrap();
    assert_eq!(e["total_cputime"].as_u64(), Some(pct));
    assert_eq!(e["total_time"].as_u64(), Some(pct));
    (pct, e["estimated_time_to_regain_access"].as_u64().unwrap())
}

#[tokio::test]
async fn instagram_usage_headers_and_80002_throttle() {
    let sb = auto_sandbox().await;
    let token = instagram_long_lived(&sb).await;
    assert_eq!(
        sb.quota(Platform::Instagram).used,
        1,
        "only the Graph call counted"
    );
    let account = sb.user_info(Platform::Instagram, "demo").account_id;

    // 100 calls per hour: one call is one percent.
    sb.set_quota(Platform::Instagram, quota(100, 3600)).unwrap();
    let r = instagram_me(&sb, &token).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "x-app-usage"),
        r#"{"call_count":1,"total_time":1,"total_cputime":1}"#
    );
    assert_eq!(app_usage(&r), 1);
    assert_eq!(buc_usage(&r, &account), (1, 0));
    let r = instagram_me(&sb, &token).await;
    assert_eq!((app_usage(&r), buc_usage(&r, &account).0), (2, 2));
    assert_eq!(sb.quota(Platform::Instagram).used, 2);

    // The call that reaches 100 % succeeds and says how long until access returns.
    sb.set_quota(
        Platform::Instagram,
        QuotaSettings {
            used: 99,
            ..quota(100, 3600)
        },
    )
    .unwrap();
    let r = instagram_me(&sb, &token).await;
    assert_eq!(r.status(), 200);
    assert_eq!(app_usage(&r), 100);
    let (pct, regain) = buc_usage(&r, &account);
    assert_eq!(pct, 100);
    assert!(regain > 0 && regain <= 60, "{regain}");

    // The next one is throttled: Graph code 80002, HTTP 400, transient.
    let r = instagram_me(&sb, &token).await;
    assert_eq!(r.status(), 400);
    assert_eq!(app_usage(&r), 100);
    let (_, regain) = buc_usage(&r, &account);
    assert!(regain > 0);
    let b = json(r).await;
    let e = &b["error"];
    assert_eq!(e["code"], 80002);
    assert_eq!(e["type"], "OAuthException");
    assert_eq!(e["is_transient"], true);
    assert!(e["message"].as_str().unwrap().contains("too many calls"));
    assert!(!e["fbtrace_id"].as_str().unwrap().is_empty());
    let q = sb.quota(Platform::Instagram);
    assert!(q.exhausted && q.reset_at > now_secs(&sb));

    sb.reset_quota(Platform::Instagram);
    let r = instagram_me(&sb, &token).await;
    assert_eq!(r.status(), 200);
    assert_eq!(app_usage(&r), 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn instagram_unknown_token_gets_app_usage_only() {
    let sb = auto_sandbox().await;
    let r = instagram_me(&sb, "IGAAnope").await;
    assert_eq!(r.status(), 400);
    assert_eq!(app_usage(&r), 0);
    assert!(!r.headers().contains_key("x-business-use-case-usage"));
    assert_eq!(sb.quota(Platform::Instagram).used, 1);
    sb.shutdown().await;
}

// --- TikTok ---

async fn tiktok_tokens(sb: &Sandbox) -> serde_json::Value {
    let c = sb.client(Platform::TikTok);
    let url = with_query(
        &format!("{}/v2/auth/authorize/", sb.tiktok_www()),
        &[
            ("client_key", c.client_id.as_str()),
            ("scope", "user.info.basic"),
            ("response_type", "code"),
            ("redirect_uri", c.redirect_uri.as_str()),
            ("state", "s"),
        ],
    );
    let code = params(&follow(&http(), &url).await)["code"].clone();
    let r = tiktok_token(
        sb,
        &[
            ("code", code.as_str()),
            ("grant_type", "authorization_code"),
            ("redirect_uri", c.redirect_uri.as_str()),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    json(r).await
}

async fn tiktok_token(sb: &Sandbox, form: &[(&str, &str)]) -> reqwest::Response {
    let c = sb.client(Platform::TikTok);
    let mut f = vec![
        ("client_key", c.client_id.as_str()),
        ("client_secret", c.client_secret.as_str()),
    ];
    f.extend_from_slice(form);
    http()
        .post(format!("{}/v2/oauth/token/", sb.tiktok_open()))
        .form(&f)
        .send()
        .await
        .unwrap()
}

async fn tiktok_info(sb: &Sandbox, access: &str) -> reqwest::Response {
    http()
        .get(format!("{}/v2/user/info/", sb.tiktok_open()))
        .query(&[("fields", "open_id,display_name")])
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
}

async fn assert_tiktok_throttled(r: reqwest::Response) {
    assert_eq!(r.status(), 429);
    let b = json(r).await;
    assert_eq!(b["data"], serde_json::json!({}));
    assert_eq!(b["error"]["code"], "rate_limit_exceeded");
    assert!(!b["error"]["message"].as_str().unwrap().is_empty());
    assert!(!b["error"]["log_id"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn tiktok_counts_without_headers_and_429_when_exhausted() {
    let sb = auto_sandbox().await;
    let t = tiktok_tokens(&sb).await;
    let access = t["access_token"].as_str().unwrap().to_owned();
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(sb.quota(Platform::TikTok).used, 1);

    sb.set_quota(Platform::TikTok, quota(3, 60)).unwrap();
    for n in 1..=2 {
        let r = tiktok_info(&sb, &access).await;
        assert_eq!(r.status(), 200);
        for h in r.headers().keys() {
            let h = h.as_str();
            assert!(
                !h.contains("ratelimit") && !h.contains("usage"),
                "TikTok sends no usage header: {h}"
            );
        }
        assert_eq!(sb.quota(Platform::TikTok).used, n);
    }

    let q = sb.exhaust_quota(Platform::TikTok);
    assert_eq!((q.used, q.remaining), (3, 0));
    assert!(q.reset_at > now_secs(&sb) && q.reset_in_secs <= 60);
    assert_tiktok_throttled(tiktok_info(&sb, &access).await).await;
    assert_tiktok_throttled(
        tiktok_token(
            &sb,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt.as_str()),
            ],
        )
        .await,
    )
    .await;

    sb.reset_quota(Platform::TikTok);
    assert_eq!(tiktok_info(&sb, &access).await.status(), 200);
    assert_eq!(sb.quota(Platform::TikTok).used, 1);
    sb.shutdown().await;
}

// --- OnlyFans gateway ---

async fn onlyfans_connection(sb: &Sandbox) -> String {
    let c = sb.client(Platform::OnlyFans);
    let r = onlyfans_link_init(sb).await;
    assert_eq!(r.status(), 200);
    let b = json(r).await;
    let loc = follow(&http(), b["url"].as_str().unwrap()).await;
    assert!(loc.as_str().starts_with(&c.redirect_uri));
    params(&loc)["connection_id"].clone()
}

async fn onlyfans_link_init(sb: &Sandbox) -> reqwest::Response {
    let c = sb.client(Platform::OnlyFans);
    http()
        .post(format!("{}/v2/link/init", sb.onlyfans_gateway()))
        .header("apikey", &c.client_secret)
        .json(&serde_json::json!({"clientReferenceId": "ref"}))
        .send()
        .await
        .unwrap()
}

async fn onlyfans_self(sb: &Sandbox, conn: &str) -> reqwest::Response {
    let c = sb.client(Platform::OnlyFans);
    http()
        .get(format!("{}/v2/access/self", sb.onlyfans_gateway()))
        .header("apikey", &c.client_secret)
        .header("x-connection-id", conn)
        .send()
        .await
        .unwrap()
}

/// (limit, remaining, reset) from OFAuth's `X-RateLimit-*` headers, all integers.
fn ofauth_usage(r: &reqwest::Response) -> (u64, u64, u64) {
    let n = |name: &str| -> u64 { header(r, name).parse().expect("integer header") };
    (
        n("x-ratelimit-limit"),
        n("x-ratelimit-remaining"),
        n("x-ratelimit-reset"),
    )
}

#[tokio::test]
async fn onlyfans_ratelimit_headers_and_429_when_exhausted() {
    let sb = auto_sandbox().await;
    let conn = onlyfans_connection(&sb).await;
    assert_eq!(
        sb.quota(Platform::OnlyFans).used,
        0,
        "Link is not rate-limited"
    );

    sb.set_quota(Platform::OnlyFans, quota(10, 60)).unwrap();
    for n in 1..=2u64 {
        let r = onlyfans_self(&sb, &conn).await;
        assert_eq!(r.status(), 200);
        let (limit, remaining, reset) = ofauth_usage(&r);
        assert_eq!((limit, remaining), (10, 10 - n));
        assert!(reset > 0 && reset <= 60);
        assert_eq!(sb.quota(Platform::OnlyFans).used, n);
    }

    let q = sb.exhaust_quota(Platform::OnlyFans);
    assert!(q.reset_at > now_secs(&sb));
    let r = onlyfans_self(&sb, &conn).await;
    assert_eq!(r.status(), 429);
    let (limit, remaining, reset) = ofauth_usage(&r);
    assert_eq!((limit, remaining), (10, 0));
    assert!(reset > 0 && reset <= 60);
    let b = json(r).await;
    assert_eq!(b["type"], "RATE_LIMIT_EXCEEDED");
    assert!(b["error"].as_str().is_some());
    assert!(b["requestId"].as_str().unwrap().starts_with("req_"));
    // The Link API stays open while the Access API is throttled.
    assert_eq!(onlyfans_link_init(&sb).await.status(), 200);

    sb.reset_quota(Platform::OnlyFans);
    let r = onlyfans_self(&sb, &conn).await;
    assert_eq!(r.status(), 200);
    assert_eq!(ofauth_usage(&r).1, 9);
    sb.shutdown().await;
}

// --- Health presets ---

#[tokio::test]
async fn failing_answers_every_call_with_5xx() {
    let sb = auto_sandbox().await;
    let access = tiktok_tokens(&sb).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let raccess = reddit_access(&sb).await;
    sb.set_health(Platform::TikTok, PlatformHealth::Failing);
    sb.set_health(Platform::Reddit, PlatformHealth::Failing);
    assert_eq!(
        sb.faults(Platform::TikTok),
        PlatformHealth::Failing.faults()
    );
    for _ in 0..10 {
        let r = tiktok_info(&sb, &access).await;
        assert_eq!(r.status(), 500);
        assert_eq!(json(r).await["error"]["code"], "internal_error");
        assert_eq!(reddit_me(&sb, &raccess).await.status(), 503);
    }
    assert_eq!(
        sb.quota(Platform::TikTok).used,
        0,
        "5xx answers are not counted"
    );

    sb.set_health(Platform::TikTok, PlatformHealth::Operational);
    assert_eq!(sb.faults(Platform::TikTok), Faults::default());
    assert_eq!(tiktok_info(&sb, &access).await.status(), 200);
    assert_eq!(
        reddit_me(&sb, &raccess).await.status(),
        503,
        "other platforms keep theirs"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn degraded_fails_thirty_percent_and_is_slow() {
    let sb = auto_sandbox().await;
    let access = tiktok_tokens(&sb).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    sb.set_health(Platform::TikTok, PlatformHealth::Degraded);
    let f = sb.faults(Platform::TikTok);
    assert_eq!(f.latency, Duration::from_millis(800));
    assert!((f.server_error_rate - 0.3).abs() < 1e-9);

    // Concurrent, so the 800 ms are paid once; the accumulator makes the count exact.
    const N: usize = 20;
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..N {
        let (url, access) = (
            format!("{}/v2/user/info/", sb.tiktok_open()),
            access.clone(),
        );
        tasks.push(tokio::spawn(async move {
            http()
                .get(url)
                .query(&[("fields", "open_id")])
                .bearer_auth(access)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut errors = 0;
    for t in tasks {
        match t.await.unwrap() {
            200 => {}
            500 => errors += 1,
            s => panic!("unexpected status {s}"),
        }
    }
    assert!(started.elapsed() >= Duration::from_millis(800));
    let expected = (N as f64 * 0.3).round() as i64;
    assert!(
        (errors - expected).abs() <= 1,
        "{errors} of {N} failed, expected about {expected}"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn throttled_preset_exhausts_the_quota() {
    let sb = auto_sandbox().await;
    let access = tiktok_tokens(&sb).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    sb.set_faults(
        Some(Platform::TikTok),
        Faults {
            server_error_rate: 0.5,
            ..Faults::default()
        },
    );
    let q = sb.set_health(Platform::TikTok, PlatformHealth::Throttled);
    assert!(q.exhausted);
    assert_eq!(sb.faults(Platform::TikTok), Faults::default());
    assert_tiktok_throttled(tiktok_info(&sb, &access).await).await;
    let q = sb.set_health(Platform::TikTok, PlatformHealth::Operational);
    assert_eq!(q.used, 0);
    assert_eq!(tiktok_info(&sb, &access).await.status(), 200);
    sb.shutdown().await;
}

// --- Controls ---

#[tokio::test]
async fn quota_settings_are_validated() {
    let sb = auto_sandbox().await;
    assert!(sb.set_quota(Platform::Reddit, quota(10, 0)).is_err());
    assert!(
        sb.set_quota(
            Platform::Reddit,
            QuotaSettings {
                used: 11,
                ..quota(10, 60)
            }
        )
        .is_err()
    );
    assert_eq!(sb.quota(Platform::Reddit).limit, 1000, "unchanged");
    // A zero limit throttles every call.
    let q = sb.set_quota(Platform::Reddit, quota(0, 60)).unwrap();
    assert!(q.exhausted);
    sb.shutdown().await;
}

#[tokio::test]
async fn http_quota_and_health_controls() {
    let sb = auto_sandbox().await;
    let base = sb.base_url().to_owned();
    let c = http();

    let r = c
        .get(format!("{base}/_sandbox/reddit/quota"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let q: QuotaState = r.json().await.unwrap();
    assert_eq!(
        (q.platform, q.limit, q.window_secs, q.used),
        (Platform::Reddit, 1000, 600, 0)
    );
    assert!(q.reset_at >= now_secs(&sb));

    let r = c
        .put(format!("{base}/_sandbox/reddit/quota"))
        .json(&serde_json::json!({"limit": 10, "window_secs": 60, "used": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let q: QuotaState = r.json().await.unwrap();
    assert_eq!(
        (q.limit, q.window_secs, q.used, q.remaining),
        (10, 60, 3, 7)
    );
    // Missing fields keep their values.
    let r = c
        .put(format!("{base}/_sandbox/reddit/quota"))
        .json(&serde_json::json!({"limit": 20}))
        .send()
        .await
        .unwrap();
    let q: QuotaState = r.json().await.unwrap();
    assert_eq!((q.limit, q.window_secs, q.used), (20, 60, 3));
    for bad in [
        serde_json::json!({"window_secs": 0}),
        serde_json::json!({"used": 21}),
        serde_json::json!({"limit": -1}),
        serde_json::json!({"bogus": 1}),
    ] {
        let r = c
            .put(format!("{base}/_sandbox/reddit/quota"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }

    let r = c
        .post(format!("{base}/_sandbox/reddit/quota/exhaust"))
        .send()
        .await
        .unwrap();
    let q: QuotaState = r.json().await.unwrap();
    assert!(q.exhausted && q.used == 20 && q.reset_at > now_secs(&sb));
    let r = c
        .post(format!("{base}/_sandbox/reddit/quota/reset"))
        .send()
        .await
        .unwrap();
    let q: QuotaState = r.json().await.unwrap();
    assert_eq!((q.used, q.exhausted), (0, false));

    let r = c
        .post(format!("{base}/_sandbox/instagram/health/degraded"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b = json(r).await;
    assert_eq!(b["health"], "degraded");
    assert_eq!(b["faults"]["latency_ms"], 800);
    assert_eq!(b["faults"]["server_error_rate"], 0.3);
    assert_eq!(b["quota"]["used"], 0);
    let r = c
        .post(format!("{base}/_sandbox/instagram/health/throttled"))
        .send()
        .await
        .unwrap();
    assert_eq!(json(r).await["quota"]["exhausted"], true);
    for url in [
        "/_sandbox/instagram/health/bogus",
        "/_sandbox/myspace/health/failing",
        "/_sandbox/myspace/quota/exhaust",
    ] {
        let r = c.post(format!("{base}{url}")).send().await.unwrap();
        assert_eq!(r.status(), 404, "{url}");
    }
    let r = c
        .get(format!("{base}/_sandbox/myspace/quota"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    sb.shutdown().await;
}

#[tokio::test]
async fn sandbox_page_forms_drive_health_and_quota() {
    let sb = auto_sandbox().await;
    let base = sb.base_url().to_owned();
    let c = http();
    let page = c
        .get(format!("{base}/_sandbox"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for p in Platform::ALL {
        for id in [
            format!("health-{p}"),
            format!("health-{p}-operational"),
            format!("health-{p}-degraded"),
            format!("health-{p}-throttled"),
            format!("health-{p}-failing"),
            format!("quota-{p}-exhaust"),
            format!("quota-{p}-reset"),
            format!("quota-{p}-limit"),
            format!("quota-{p}-window"),
            format!("quota-{p}-used"),
            format!("quota-{p}-set"),
        ] {
            assert!(
                page.contains(&format!("data-testid=\"{id}\"")),
                "{id} on the page"
            );
        }
    }

    // A form post answers 303 back to the page, which then shows the new state.
    let r = c
        .post(format!("{base}/_sandbox/tiktok/health/failing"))
        .form(&[("go", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(header(&r, "location"), "/_sandbox#health");
    let r = c
        .post(format!("{base}/_sandbox/reddit/quota"))
        .form(&[("limit", "50"), ("window_secs", "120"), ("used", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let q = sb.quota(Platform::Reddit);
    assert_eq!((q.limit, q.window_secs, q.used), (50, 120, 0));
    let r = c
        .post(format!("{base}/_sandbox/onlyfans/quota/exhaust"))
        .form(&[("go", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let page = c
        .get(format!("{base}/_sandbox"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"data-testid="health-tiktok" data-platform="tiktok""#));
    assert!(page.contains(r#"data-server-error-rate="1""#));
    assert!(page.contains(r#"data-limit="50" data-remaining="50" data-window-secs="120""#));
    assert!(page.contains(r#"data-used="1000" data-limit="1000" data-remaining="0""#));

    // A bad form value comes back as a message on the page.
    let r = c
        .post(format!("{base}/_sandbox/reddit/quota"))
        .form(&[("limit", "lots")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let loc = header(&r, "location").to_owned();
    assert!(loc.starts_with("/_sandbox?error="), "{loc}");
    let page = c
        .get(format!("{base}{loc}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"<p id="flash" role="alert">limit must be a whole number</p>"#));
    sb.shutdown().await;
}
