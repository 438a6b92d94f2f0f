//! Cross-platform behaviour: the development-only marker, the consent page, several
//! accounts per platform, HTTP controls, refresh counters and shutdown.

mod common;

use common::*;
use integrations_sandbox::{Platform, SANDBOX_HEADER_VALUE, Sandbox};

async fn tiktok_connect(sb: &Sandbox, user: &str) -> serde_json::Value {
    let c = sb.client(Platform::TikTok);
    let url = with_query(
        &format!("{}/v2/auth/authorize/", sb.tiktok_www()),
        &[
            ("client_key", c.client_id.as_str()),
            ("scope", "user.info.basic"),
            ("response_type", "code"),
            ("redirect_uri", c.redirect_uri.as_str()),
            ("state", "s"),
            ("sandbox_user", user),
            ("sandbox_auto", "allow"),
        ],
    );
    let code = params(&follow(&http(), &url).await)["code"].clone();
    let r = http()
        .post(format!("{}/v2/oauth/token/", sb.tiktok_open()))
        .form(&[
            ("client_key", c.client_id.as_str()),
            ("client_secret", c.client_secret.as_str()),
            ("code", code.as_str()),
            ("grant_type", "authorization_code"),
            ("redirect_uri", c.redirect_uri.as_str()),
        ])
        .send()
        .await
        .unwrap();
    json(r).await
}

#[tokio::test]
async fn every_response_says_development_only() {
    let sb = Sandbox::start().await.unwrap();
    let c = sb.client(Platform::Reddit);
    let page = with_query(
        &format!("{}/api/v1/authorize", sb.reddit_www()),
        &[
            ("client_id", c.client_id.as_str()),
            ("response_type", "code"),
            ("state", "s"),
            ("redirect_uri", c.redirect_uri.as_str()),
            ("scope", "identity"),
        ],
    );
    for url in [
        page.clone(),
        format!("{}/_sandbox", sb.base_url()),
        format!("{}/no/such/route", sb.base_url()),
        format!("{}/me", sb.instagram_graph()),
    ] {
        let r = http().get(&url).send().await.unwrap();
        assert_eq!(r.headers()["x-sandbox"], SANDBOX_HEADER_VALUE, "{url}");
    }
    let html = http()
        .get(&page)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("development only"));
    assert!(html.contains(">Allow<") && html.contains(">Deny<"));
}

#[tokio::test]
async fn consent_form_post_redirects_with_code_for_the_chosen_user() {
    let sb = Sandbox::start().await.unwrap();
    let c = sb.client(Platform::TikTok);
    let pairs = [
        ("client_key", c.client_id.as_str()),
        ("scope", "user.info.basic"),
        ("response_type", "code"),
        ("redirect_uri", c.redirect_uri.as_str()),
        ("state", "st"),
        ("sandbox_user", "zoe"),
        ("sandbox_decision", "allow"),
    ];
    let r = http()
        .post(format!("{}/v2/auth/authorize/", sb.tiktok_www()))
        .form(&pairs)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let p = params(&loc);
    assert_eq!(p["state"], "st");
    let r = http()
        .post(format!("{}/v2/oauth/token/", sb.tiktok_open()))
        .form(&[
            ("client_key", c.client_id.as_str()),
            ("client_secret", c.client_secret.as_str()),
            ("code", p["code"].as_str()),
            ("grant_type", "authorization_code"),
            ("redirect_uri", c.redirect_uri.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        json(r).await["open_id"],
        sb.user_info(Platform::TikTok, "zoe").account_id.as_str()
    );
}

#[tokio::test]
async fn several_accounts_and_refresh_counters() {
    let sb = auto_sandbox().await;
    let users: Vec<String> = (0..20).map(|i| format!("user{i}")).collect();
    let mut tokens = Vec::new();
    for u in &users {
        tokens.push(tiktok_connect(&sb, u).await);
    }
    let ids: std::collections::HashSet<_> = tokens
        .iter()
        .map(|t| t["open_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), users.len(), "distinct accounts");
    // refresh every account once, concurrently
    let c = sb.client(Platform::TikTok);
    let mut tasks = Vec::new();
    for t in &tokens {
        let url = format!("{}/v2/oauth/token/", sb.tiktok_open());
        let (id, secret) = (c.client_id.clone(), c.client_secret.clone());
        let rt = t["refresh_token"].as_str().unwrap().to_owned();
        tasks.push(tokio::spawn(async move {
            http()
                .post(url)
                .form(&[
                    ("client_key", id.as_str()),
                    ("client_secret", secret.as_str()),
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt.as_str()),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let counters = sb.counters(Platform::TikTok);
    assert_eq!(counters.refresh_ok, 20);
    assert_eq!(counters.refresh_calls, 20);
    assert_eq!(counters.grants.len(), 20);
    assert!(
        counters.grants.iter().all(|g| g.refreshes == 1),
        "every account refreshed exactly once"
    );
    for u in &users {
        assert_eq!(sb.refresh_count(Platform::TikTok, u), 1);
    }
    sb.reset_counters();
    assert_eq!(sb.counters(Platform::TikTok).refresh_ok, 0);
}

#[tokio::test]
async fn http_control_endpoints() {
    let sb = auto_sandbox().await;
    let base = sb.base_url().to_owned();
    let t = tiktok_connect(&sb, "hal").await;
    let access = t["access_token"].as_str().unwrap().to_owned();
    let info = |access: String| {
        let url = format!("{}/v2/user/info/?fields=open_id", sb.tiktok_open());
        async move { http().get(url).bearer_auth(access).send().await.unwrap() }
    };

    // fail-next via HTTP
    let r = http()
        .post(format!("{base}/_sandbox/tiktok/fail-next"))
        .json(&serde_json::json!({"count": 2, "kind": "rate_limited", "retry_after_secs": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    for _ in 0..2 {
        let r = info(access.clone()).await;
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "5");
    }
    assert_eq!(info(access.clone()).await.status(), 200);

    // standing faults via HTTP: 100% 5xx, then cleared
    let r = http()
        .put(format!("{base}/_sandbox/tiktok/faults"))
        .json(&serde_json::json!({"server_error_rate": 1.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(info(access.clone()).await.status(), 500);
    http()
        .delete(format!("{base}/_sandbox/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(info(access.clone()).await.status(), 200);

    // expire via HTTP
    let r = http()
        .post(format!("{base}/_sandbox/tiktok/users/hal/expire"))
        .send()
        .await
        .unwrap();
    assert_eq!(json(r).await["expired"], 1);
    assert_eq!(info(access.clone()).await.status(), 401);

    // counters and user info via HTTP
    let all = json(
        http()
            .get(format!("{base}/_sandbox/counters"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(all["tiktok"]["requests"].as_u64().unwrap() >= 5);
    let u = json(
        http()
            .get(format!("{base}/_sandbox/tiktok/users/hal"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        u["account_id"],
        sb.user_info(Platform::TikTok, "hal").account_id.as_str()
    );

    // register a client with its own redirect URI
    let r = http()
        .post(format!("{base}/_sandbox/clients"))
        .json(
            &serde_json::json!({"platform": "reddit", "redirect_uri": "http://127.0.0.1:9999/cb"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let c = json(r).await;
    assert_eq!(c["redirect_uri"], "http://127.0.0.1:9999/cb");
    let list = json(
        http()
            .get(format!("{base}/_sandbox/clients"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list.as_array().unwrap().len(), 5);

    // clock
    let r = http()
        .post(format!("{base}/_sandbox/clock/advance"))
        .json(&serde_json::json!({"secs": 3600}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(sb.now() > chrono_now_plus_59min());
}

fn chrono_now_plus_59min() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() + chrono::Duration::minutes(59)
}

#[tokio::test]
async fn registered_client_works_and_latency_applies() {
    let sb = auto_sandbox().await;
    let c = sb
        .register_client(Platform::Instagram, "http://127.0.0.1:4000/ig")
        .unwrap();
    let url = with_query(
        &format!("{}/oauth/authorize", sb.instagram_www()),
        &[
            ("client_id", c.client_id.as_str()),
            ("redirect_uri", "http://127.0.0.1:4000/ig"),
            ("response_type", "code"),
            ("scope", "instagram_business_basic"),
        ],
    );
    let loc = follow(&http(), &url).await;
    assert!(loc.as_str().starts_with("http://127.0.0.1:4000/ig?code="));
    // the demo client's redirect is not registered for the new client
    let bad = url.replace(
        "127.0.0.1%3A4000%2Fig",
        "127.0.0.1%3A3000%2Fcallback%2Finstagram",
    );
    assert_eq!(http().get(bad).send().await.unwrap().status(), 400);

    sb.set_faults(
        Some(Platform::Instagram),
        integrations_sandbox::Faults {
            latency: std::time::Duration::from_millis(150),
            ..Default::default()
        },
    );
    let t0 = std::time::Instant::now();
    let _ = http()
        .get(format!("{}/me", sb.instagram_graph()))
        .send()
        .await
        .unwrap();
    assert!(t0.elapsed() >= std::time::Duration::from_millis(150));
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let sb = Sandbox::start().await.unwrap();
    let base = sb.base_url().to_owned();
    assert!(http().get(format!("{base}/_sandbox")).send().await.is_ok());
    sb.shutdown().await;
    assert!(http().get(format!("{base}/_sandbox")).send().await.is_err());
}

#[test]
fn public_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Sandbox>();
    check::<integrations_sandbox::SandboxHandle>();
    check::<integrations_sandbox::SandboxClient>();
    check::<integrations_sandbox::PlatformCounters>();
    check::<integrations_sandbox::Error>();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_are_all_counted() {
    let sb = auto_sandbox().await;
    let c = sb.client(Platform::Reddit);
    // one permanent grant, refreshed many times concurrently (Reddit keeps the token)
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
    let token_url = format!("{}/api/v1/access_token", sb.reddit_www());
    let t = json(
        http()
            .post(&token_url)
            .basic_auth(&c.client_id, Some(&c.client_secret))
            .header("user-agent", UA)
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", c.redirect_uri.as_str()),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    let client = http();
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (client, url, rt, id, secret) = (
            client.clone(),
            token_url.clone(),
            rt.clone(),
            c.client_id.clone(),
            c.client_secret.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for _ in 0..50 {
                let r = client
                    .post(&url)
                    .basic_auth(&id, Some(&secret))
                    .header("user-agent", UA)
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", rt.as_str()),
                    ])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed();
    let counters = sb.counters(Platform::Reddit);
    assert_eq!(counters.refresh_ok, 800);
    assert_eq!(counters.grants[0].refreshes, 800);
    eprintln!("800 refreshes in {elapsed:?}");
}
