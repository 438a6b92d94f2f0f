//! Instagram: authorize → code → short-lived → long-lived → /me → refresh, and refusals.

mod common;

use common::*;
use integrations_sandbox::{Platform, Sandbox, SandboxConfig};
use std::time::Duration;

const SCOPE: &str = "instagram_business_basic,instagram_business_manage_comments";

async fn code(sb: &Sandbox, user: Option<&str>) -> String {
    let c = sb.client(Platform::Instagram);
    let mut q = vec![
        ("client_id", c.client_id.as_str()),
        ("redirect_uri", c.redirect_uri.as_str()),
        ("response_type", "code"),
        ("scope", SCOPE),
        ("state", "st-ig"),
    ];
    if let Some(u) = user {
        q.push(("sandbox_user", u));
    }
    let url = with_query(&format!("{}/oauth/authorize", sb.instagram_www()), &q);
    let loc = follow(&http(), &url).await;
    assert_eq!(loc.fragment(), Some("_"), "Meta appends #_");
    let p = params(&loc);
    assert_eq!(p["state"], "st-ig");
    p["code"].clone()
}

async fn exchange(sb: &Sandbox, code: &str, redirect: &str, secret: &str) -> reqwest::Response {
    let c = sb.client(Platform::Instagram);
    http()
        .post(format!("{}/oauth/access_token", sb.instagram_api()))
        .form(&[
            ("client_id", c.client_id.as_str()),
            ("client_secret", secret),
            ("grant_type", "authorization_code"),
            ("redirect_uri", redirect),
            ("code", code),
        ])
        .send()
        .await
        .expect("exchange")
}

async fn long_lived(sb: &Sandbox, user: Option<&str>) -> String {
    let c = sb.client(Platform::Instagram);
    let code = code(sb, user).await;
    let r = exchange(sb, &code, &c.redirect_uri, &c.client_secret).await;
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
    json(r).await["access_token"].as_str().unwrap().to_owned()
}

async fn refresh(sb: &Sandbox, token: &str) -> reqwest::Response {
    http()
        .get(format!("{}/refresh_access_token", sb.instagram_graph()))
        .query(&[("grant_type", "ig_refresh_token"), ("access_token", token)])
        .send()
        .await
        .unwrap()
}

async fn me(sb: &Sandbox, token: &str) -> reqwest::Response {
    http()
        .get(format!("{}/me", sb.instagram_graph()))
        .query(&[
            ("fields", "id,user_id,username,name,account_type,profile_picture_url,followers_count,follows_count,media_count"),
            ("access_token", token),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn happy_path_exchange_profile_refresh() {
    let sb = auto_sandbox().await;
    let c = sb.client(Platform::Instagram);
    let code = code(&sb, Some("alice")).await;
    let r = exchange(&sb, &code, &c.redirect_uri, &c.client_secret).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let expected = sb.user_info(Platform::Instagram, "alice").account_id;
    let id: u64 = expected.parse().unwrap();
    assert!(id > (1u64 << 53), "user_id is above 2^53");
    assert_ne!(id as f64 as u64, id, "an f64 round trip would corrupt it");
    assert!(
        text.contains(&format!("\"user_id\":{expected}")),
        "user_id is a raw JSON number: {text}"
    );
    let short: serde_json::Value = serde_json::from_str(&text).unwrap();
    let short = short["access_token"].as_str().unwrap();

    // short-lived → long-lived
    let r = http()
        .get(format!("{}/access_token", sb.instagram_graph()))
        .query(&[
            ("grant_type", "ig_exchange_token"),
            ("client_secret", c.client_secret.as_str()),
            ("access_token", short),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = json(r).await;
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 5_184_000);
    let long = body["access_token"].as_str().unwrap().to_owned();

    // profile
    let r = me(&sb, &long).await;
    assert_eq!(r.status(), 200);
    let p = json(r).await;
    assert_eq!(p["user_id"], expected.as_str());
    assert_eq!(p["username"], "alice");
    assert!(p["id"].is_string());
    assert!(p["followers_count"].is_u64());
    assert!(["BUSINESS", "MEDIA_CREATOR"].contains(&p["account_type"].as_str().unwrap()));

    // refresh is refused under 24 h ...
    let r = refresh(&sb, &long).await;
    assert_eq!(r.status(), 400);
    let e = json(r).await;
    assert_eq!(e["error"]["type"], "OAuthException");
    assert_eq!(e["error"]["code"], 100);
    // ... and allowed after
    sb.advance_clock(Duration::from_secs(25 * 3600));
    let r = refresh(&sb, &long).await;
    assert_eq!(r.status(), 200);
    let b = json(r).await;
    assert_eq!(b["token_type"], "bearer");
    let new = b["access_token"].as_str().unwrap();
    assert_eq!(me(&sb, new).await.status(), 200);
    assert_eq!(sb.refresh_count(Platform::Instagram, "alice"), 1);
    let counters = sb.counters(Platform::Instagram);
    assert_eq!(counters.refresh_calls, 2);
    assert_eq!(counters.refresh_ok, 1);
}

#[tokio::test]
async fn wrong_redirect_uri_is_refused() {
    let sb = auto_sandbox().await;
    let c = sb.client(Platform::Instagram);
    let code = code(&sb, None).await;
    let r = exchange(&sb, &code, "http://127.0.0.1:3000/other", &c.client_secret).await;
    assert_eq!(r.status(), 400);
    let e = json(r).await;
    assert_eq!(e["error_type"], "OAuthException");
    assert_eq!(e["code"], 400);
    assert!(
        e["error_message"]
            .as_str()
            .unwrap()
            .contains("redirect_uri")
    );
}

#[tokio::test]
async fn wrong_client_secret_is_refused() {
    let sb = auto_sandbox().await;
    let c = sb.client(Platform::Instagram);
    let code = code(&sb, None).await;
    let r = exchange(&sb, &code, &c.redirect_uri, "not-the-secret").await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        json(r).await["error_message"],
        "Error validating client secret."
    );
    // the code was not consumed by the failed attempt
    let r = exchange(&sb, &code, &c.redirect_uri, &c.client_secret).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn reused_code_is_refused() {
    let sb = auto_sandbox().await;
    let c = sb.client(Platform::Instagram);
    let code = code(&sb, None).await;
    assert_eq!(
        exchange(&sb, &code, &c.redirect_uri, &c.client_secret)
            .await
            .status(),
        200
    );
    // the flat legacy error clients report from api.instagram.com/oauth/access_token
    let r = exchange(&sb, &code, &c.redirect_uri, &c.client_secret).await;
    assert_eq!(r.status(), 400);
    let e = json(r).await;
    assert_eq!(e["error_type"], "OAuthException");
    assert_eq!(e["code"], 400);
    assert_eq!(
        e["error_message"],
        "Matching code was not found or was already used"
    );
    // an unknown code gets the same answer
    let r = exchange(&sb, "AQnot-a-code", &c.redirect_uri, &c.client_secret).await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        json(r).await["error_message"],
        "Matching code was not found or was already used"
    );
}

#[tokio::test]
async fn expired_code_is_refused() {
    let sb = auto_sandbox().await;
    let c = sb.client(Platform::Instagram);
    let code = code(&sb, None).await;
    sb.advance_clock(Duration::from_secs(11 * 60));
    let r = exchange(&sb, &code, &c.redirect_uri, &c.client_secret).await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        json(r).await["error_message"],
        "This authorization code has expired"
    );
}

#[tokio::test]
async fn deny_redirects_with_error_reason() {
    let sb = Sandbox::start().await.unwrap();
    let c = sb.client(Platform::Instagram);
    let url = with_query(
        &format!("{}/oauth/authorize", sb.instagram_www()),
        &[
            ("client_id", c.client_id.as_str()),
            ("redirect_uri", c.redirect_uri.as_str()),
            ("response_type", "code"),
            ("scope", SCOPE),
            ("state", "s1"),
            ("sandbox_auto", "deny"),
        ],
    );
    let loc = follow(&http(), &url).await;
    let p = params(&loc);
    assert_eq!(p["error"], "access_denied");
    assert_eq!(p["error_reason"], "user_denied");
    assert!(p.contains_key("error_description"));
    assert_eq!(p["state"], "s1");
    assert!(!p.contains_key("code"));
}

#[tokio::test]
async fn bad_authorize_requests_get_an_error_page_without_redirect() {
    let sb = auto_sandbox().await;
    let c = sb.client(Platform::Instagram);
    let base = format!("{}/oauth/authorize", sb.instagram_www());
    for q in [
        vec![
            ("client_id", "nope"),
            ("redirect_uri", c.redirect_uri.as_str()),
            ("response_type", "code"),
            ("scope", SCOPE),
        ],
        vec![
            ("client_id", c.client_id.as_str()),
            ("redirect_uri", "https://evil.example/cb"),
            ("response_type", "code"),
            ("scope", SCOPE),
        ],
        vec![
            ("client_id", c.client_id.as_str()),
            ("redirect_uri", c.redirect_uri.as_str()),
            ("response_type", "token"),
            ("scope", SCOPE),
        ],
        vec![
            ("client_id", c.client_id.as_str()),
            ("redirect_uri", c.redirect_uri.as_str()),
            ("response_type", "code"),
            ("scope", "business_basic"),
        ],
    ] {
        let r = http().get(with_query(&base, &q)).send().await.unwrap();
        assert_eq!(r.status(), 400, "{q:?}");
        assert!(r.headers().get("location").is_none());
        assert!(r.text().await.unwrap().contains("development only"));
    }
}

#[tokio::test]
async fn expired_and_revoked_tokens_get_code_190() {
    let sb = auto_sandbox().await;
    let long = long_lived(&sb, Some("bob")).await;
    assert_eq!(me(&sb, &long).await.status(), 200);
    assert!(sb.expire_tokens(Platform::Instagram, "bob") >= 1);
    let r = me(&sb, &long).await;
    assert_eq!(r.status(), 400);
    let e = json(r).await;
    assert_eq!(e["error"]["code"], 190);
    assert_eq!(e["error"]["error_subcode"], 463);
    // an expired token cannot be refreshed either
    sb.advance_clock(Duration::from_secs(25 * 3600));
    assert_eq!(json(refresh(&sb, &long).await).await["error"]["code"], 190);

    let long = long_lived(&sb, Some("carol")).await;
    sb.advance_clock(Duration::from_secs(25 * 3600));
    assert_eq!(sb.revoke_grants(Platform::Instagram, "carol"), 1);
    let e = json(refresh(&sb, &long).await).await;
    assert_eq!(e["error"]["code"], 190);
    assert_eq!(json(me(&sb, "garbage").await).await["error"]["code"], 190);
}

#[tokio::test]
async fn data_array_shape_on_request() {
    let sb = Sandbox::start_with(SandboxConfig {
        auto_consent: Some(integrations_sandbox::Consent::Allow),
        instagram_data_array: true,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let c = sb.client(Platform::Instagram);
    let code = code(&sb, None).await;
    let b = json(exchange(&sb, &code, &c.redirect_uri, &c.client_secret).await).await;
    let d = &b["data"][0];
    assert!(d["access_token"].as_str().unwrap().starts_with("IGAA"));
    assert_eq!(
        d["user_id"],
        sb.user_info(Platform::Instagram, "demo")
            .account_id
            .as_str()
    );
    assert_eq!(d["permissions"], SCOPE);
}
