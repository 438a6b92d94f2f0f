//! `GET /api/integrations/health` against known sandbox traffic: every call the library
//! made is counted exactly, by class and kind, with the platform's quota signals and the
//! state the documented rule gives (throttled Reddit, failing TikTok, idle Instagram).

mod support;

use integrations_examples::server::ServerConfig;
use integrations_sandbox::{Failure, Platform};
use support::{Client, start};

/// `GET {reddit oauth}/api/v1/me` through `Integrations::send`.
fn reddit_me(sandbox: &integrations_sandbox::SandboxHandle) -> reqwest::Request {
    reqwest::Client::new()
        .get(format!("{}/api/v1/me", sandbox.reddit_oauth()))
        .build()
        .unwrap()
}

#[tokio::test]
async fn health_counts_the_calls_made() {
    let server = start(ServerConfig::default()).await;
    let sandbox = server.sandbox().unwrap();
    let integrations = server.integrations.clone();
    let alice = Client::signed_in(&server, 1).await;
    let user = integrations_core::UserId(1);

    // Reddit: connect (token + profile), three sends, then a fourth with the quota used
    // up (one 429: the reset is further away than a send waits).
    alice.connect("reddit", "alice").await;
    let account = sandbox.user_info(Platform::Reddit, "alice").account_id;
    for _ in 0..3 {
        let resp = integrations
            .send(user, "reddit", &account, reddit_me(&sandbox))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let quota = sandbox.exhaust_quota(Platform::Reddit);
    assert!(quota.exhausted);
    let err = integrations
        .send(user, "reddit", &account, reddit_me(&sandbox))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "provider_rate_limited", "{err:?}");

    // Instagram with a small hourly allowance, so that Meta's percentages move.
    sandbox
        .set_quota(
            Platform::Instagram,
            integrations_sandbox::QuotaSettings {
                limit: 10,
                window: std::time::Duration::from_secs(3600),
                used: 0,
            },
        )
        .unwrap();
    alice.connect("instagram", "alice").await;

    // TikTok: three callbacks whose code exchange the platform answers with a 5xx.
    for _ in 0..3 {
        let start = integrations.connect(user, "tiktok", None).await.unwrap();
        let mut url = start.auth_url.clone();
        url.query_pairs_mut()
            .append_pair("sandbox_auto", "allow")
            .append_pair("sandbox_user", "alice");
        let params = integrations_examples::follow_authorization(
            &url,
            &format!("{}/api/integrations/callback/", server.url()),
        )
        .await
        .unwrap();
        sandbox.fail_next(Some(Platform::TikTok), 1, Failure::ServerError);
        let err = integrations
            .callback(user, "tiktok", &params)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "provider_unavailable", "{err:?}");
    }

    let resp = alice.get("/api/integrations/health").await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    let platform = |id: &str| {
        body["platforms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["provider"] == id)
            .unwrap_or_else(|| panic!("{id} in {body}"))
            .clone()
    };

    let reddit = platform("reddit");
    assert_eq!(reddit["name"], "Reddit");
    assert_eq!(reddit["state"], "throttled", "{}", reddit["reason"]);
    let h = &reddit["last1h"];
    assert_eq!(h["calls"], 6, "{h}");
    assert_eq!(h["ok"], 5);
    assert_eq!(h["errors"], serde_json::json!({"rate_limited": 1}));
    assert_eq!(
        h["kinds"],
        serde_json::json!({"token": 1, "profile": 1, "send": 4})
    );
    assert_eq!(reddit["last24h"]["calls"], 6);
    let q = &reddit["quota"];
    assert_eq!(q["source"], "x-ratelimit");
    assert_eq!(q["used_percent"], 100.0);
    assert_eq!(q["remaining"], 0.0);
    let reset: chrono::DateTime<chrono::Utc> = q["reset_at"].as_str().unwrap().parse().unwrap();
    assert!(reset > chrono::Utc::now(), "{reset}");
    assert_eq!(reddit["accounts"], serde_json::json!({"active": 1}));
    assert_eq!(reddit["refreshBacklog"], 0);
    let last = reddit["series"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(reddit["series"].as_array().unwrap().len(), 60);
    // The calls may straddle a minute: the last two points hold them all.
    let series = reddit["series"].as_array().unwrap();
    let recent: u64 = series[58..]
        .iter()
        .map(|p| p["calls"].as_u64().unwrap())
        .sum();
    assert_eq!(recent, 6, "{last}");
    assert_eq!(reddit["recentErrors"][0]["code"], "provider_rate_limited");
    assert_eq!(reddit["recentErrors"][0]["kind"], "send");

    let tiktok = platform("tiktok");
    assert_eq!(tiktok["state"], "failing", "{}", tiktok["reason"]);
    assert_eq!(tiktok["last1h"]["calls"], 3);
    assert_eq!(tiktok["last1h"]["ok"], 0);
    assert_eq!(
        tiktok["last1h"]["errors"],
        serde_json::json!({"server_error": 3})
    );
    assert_eq!(tiktok["last1h"]["kinds"], serde_json::json!({"token": 3}));
    let errors = tiktok["recentErrors"].as_array().unwrap();
    assert_eq!(errors.len(), 3);
    assert!(errors.iter().all(|e| e["code"] == "provider_unavailable"));
    assert_eq!(tiktok["accounts"], serde_json::json!({}));

    // Instagram: the connect's two calls, and Meta's usage headers per account.
    let instagram = platform("instagram");
    assert_eq!(instagram["state"], "operational", "{}", instagram["reason"]);
    assert_eq!(
        instagram["last1h"]["kinds"],
        serde_json::json!({"token": 1, "profile": 1})
    );
    assert_eq!(instagram["quota"]["source"], "x-business-use-case-usage");
    let ig = sandbox.user_info(Platform::Instagram, "alice").account_id;
    let per_account = instagram["accountQuotas"].as_array().unwrap();
    assert_eq!(per_account.len(), 1, "{per_account:?}");
    assert_eq!(per_account[0]["account"], ig.as_str());
    // Two of the ten calls: the long-lived token exchange and the profile.
    assert_eq!(
        per_account[0]["quota"]["used_percent"], 20.0,
        "{per_account:?}"
    );
    assert_eq!(instagram["quota"]["used_percent"], 20.0);

    let onlyfans = platform("onlyfans");
    assert_eq!(onlyfans["state"], "operational");
    assert_eq!(onlyfans["last24h"]["calls"], 0);
    assert!(onlyfans["quota"].is_null());
    assert_eq!(onlyfans["accountQuotas"], serde_json::json!([]));

    // Signed out: no figures.
    let anonymous = Client::anonymous(&server)
        .get("/api/integrations/health")
        .await;
    assert_eq!(anonymous.status(), 401);
    server.shutdown().await;
}
