//! Bulk seeding for load tests: grants made by `POST /_sandbox/{platform}/grants/seed`
//! refresh through the platform's own token endpoint like grants made by consent, and
//! `GET /_sandbox/{platform}/grants/summary` counts their refreshes.

mod common;

use common::*;
use integrations_sandbox::{Platform, Sandbox, SeedGrants};

fn seed(prefix: &str, count: u64) -> SeedGrants {
    SeedGrants {
        user_prefix: prefix.to_owned(),
        first: 0,
        count,
        seed: "a-seed-for-the-tests-0001".to_owned(),
        scopes: Vec::new(),
        client_id: None,
    }
}

/// One TikTok refresh over plain HTTP, as the platform's documents describe it.
async fn refresh(sb: &Sandbox, refresh_token: &str) -> (u16, serde_json::Value) {
    let c = sb.client(Platform::TikTok);
    let r = http()
        .post(format!("{}/v2/oauth/token/", sb.tiktok_open()))
        .form(&[
            ("client_key", c.client_id.as_str()),
            ("client_secret", c.client_secret.as_str()),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn summary(sb: &Sandbox, prefix: &str) -> serde_json::Value {
    let r = http()
        .get(with_query(
            &format!("{}/_sandbox/tiktok/grants/summary", sb.base_url()),
            &[("user_prefix", prefix)],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn seeded_grants_refresh_like_any_grant_and_are_counted() {
    let sb = auto_sandbox().await;
    let s = seed("load-", 4);
    let r = http()
        .post(format!("{}/_sandbox/tiktok/grants/seed", sb.base_url()))
        .json(&s)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let made: serde_json::Value = r.json().await.unwrap();
    assert_eq!(made["created"], 4);
    assert_eq!(made["first_user"], "load-0");
    assert_eq!(made["last_user"], "load-3");

    // The derived access token is live: the profile answers for that user.
    let t1 = s.tokens(Platform::TikTok, 1);
    let me = http()
        .get(format!(
            "{}/v2/user/info/?fields=open_id,display_name",
            sb.tiktok_open()
        ))
        .bearer_auth(&t1.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let me: serde_json::Value = me.json().await.unwrap();
    let expected = sb.user_info(Platform::TikTok, "load-1").account_id;
    assert_eq!(me["data"]["user"]["open_id"], expected.as_str());

    // A refresh with the derived refresh token succeeds and rotates it (TikTok's rule).
    let (status, body) = refresh(&sb, &t1.refresh_token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["open_id"], expected.as_str());
    assert_eq!(body["scope"], "user.info.basic");
    let (status, body) = refresh(&sb, &t1.refresh_token).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");

    // Grant 2 twice (with the rotated token), grant 3 revoked.
    let t2 = s.tokens(Platform::TikTok, 2);
    let (_, body) = refresh(&sb, &t2.refresh_token).await;
    let rotated = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, _) = refresh(&sb, &rotated).await;
    assert_eq!(status, 200);
    assert_eq!(sb.revoke_grants(Platform::TikTok, "load-3"), 1);

    let got = summary(&sb, "load-").await;
    assert_eq!(got["grants"], 4);
    assert_eq!(got["never_refreshed"], 2, "{got}");
    assert_eq!(got["refreshed_once"], 1, "{got}");
    assert_eq!(got["refreshed_more"], 1, "{got}");
    assert_eq!(got["revoked"], 1, "{got}");
    assert_eq!(got["refreshes"], 3, "{got}");
    assert_eq!(got["max_refreshes"], 2, "{got}");
    // Another prefix counts nothing; the handle gives the same figures.
    assert_eq!(summary(&sb, "other-").await["grants"], 0);
    let h = sb.grant_summary(Platform::TikTok, "load-");
    assert_eq!((h.grants, h.refreshed_once, h.refreshed_more), (4, 1, 1));

    // Seeding the same users again is refused: their grants exist.
    let r = http()
        .post(format!("{}/_sandbox/tiktok/grants/seed", sb.base_url()))
        .json(&s)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let err: serde_json::Value = r.json().await.unwrap();
    assert!(
        err["error"].as_str().unwrap().contains("already has"),
        "{err}"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn seeding_refuses_what_it_cannot_do() {
    let sb = auto_sandbox().await;
    let post = |platform: &str, body: serde_json::Value| {
        http()
            .post(format!("{}/_sandbox/{platform}/grants/seed", sb.base_url()))
            .json(&body)
            .send()
    };
    let ok = serde_json::to_value(seed("x-", 1)).unwrap();
    for (platform, body, status) in [
        ("instagram", ok.clone(), 400),
        ("myspace", ok.clone(), 404),
        ("tiktok", serde_json::json!({"user_prefix": "x-"}), 400),
        (
            "tiktok",
            serde_json::json!({"user_prefix": "x-", "count": 1, "seed": "0123456789abcdef", "colour": "red"}),
            400,
        ),
        (
            "tiktok",
            serde_json::json!({"user_prefix": "x-", "count": 1, "seed": "0123456789abcdef", "client_id": "nobody"}),
            400,
        ),
    ] {
        let r = post(platform, body.clone()).await.unwrap();
        assert_eq!(r.status(), status, "{platform} {body}");
    }
    // Reddit grants refresh through Reddit's own endpoint.
    let s = seed("rd-", 2);
    assert_eq!(sb.seed_grants(Platform::Reddit, &s).unwrap().created, 2);
    let c = sb.client(Platform::Reddit);
    let r = http()
        .post(format!("{}/api/v1/access_token", sb.reddit_www()))
        .basic_auth(&c.client_id, Some(&c.client_secret))
        .header("user-agent", UA)
        .form(&[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                s.tokens(Platform::Reddit, 0).refresh_token.as_str(),
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(sb.grant_summary(Platform::Reddit, "rd-").refreshed_once, 1);
    sb.shutdown().await;
}
