//! TikTok: authorize with PKCE → token → user info → refresh (rotation) → revoke, refusals
//! and fault controls.

mod common;

use common::*;
use integrations_sandbox::{Failure, Faults, Platform, Sandbox};
use sha2::{Digest, Sha256};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const SCOPES: &str = "user.info.basic,user.info.profile";

async fn code_with(sb: &Sandbox, user: &str, challenge: &str) -> String {
    let c = sb.client(Platform::TikTok);
    let url = with_query(
        &format!("{}/v2/auth/authorize/", sb.tiktok_www()),
        &[
            ("client_key", c.client_id.as_str()),
            ("scope", SCOPES),
            ("response_type", "code"),
            ("redirect_uri", c.redirect_uri.as_str()),
            ("state", "st-tt"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("sandbox_user", user),
        ],
    );
    let p = params(&follow(&http(), &url).await);
    assert_eq!(p["state"], "st-tt");
    assert_eq!(p["scopes"], SCOPES);
    p["code"].clone()
}

async fn token(sb: &Sandbox, form: &[(&str, &str)]) -> reqwest::Response {
    let c = sb.client(Platform::TikTok);
    let mut f: Vec<(&str, &str)> = vec![
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

async fn exchange(sb: &Sandbox, code: &str, verifier: &str) -> reqwest::Response {
    let c = sb.client(Platform::TikTok);
    token(
        sb,
        &[
            ("code", code),
            ("grant_type", "authorization_code"),
            ("redirect_uri", c.redirect_uri.as_str()),
            ("code_verifier", verifier),
        ],
    )
    .await
}

async fn refresh(sb: &Sandbox, rt: &str) -> reqwest::Response {
    token(
        sb,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await
}

async fn user_info(sb: &Sandbox, access: &str, fields: &str) -> reqwest::Response {
    http()
        .get(format!("{}/v2/user/info/", sb.tiktok_open()))
        .query(&[("fields", fields)])
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
}

async fn connect(sb: &Sandbox, user: &str) -> serde_json::Value {
    let code = code_with(sb, user, &s256(VERIFIER)).await;
    let r = exchange(sb, &code, VERIFIER).await;
    assert_eq!(r.status(), 200);
    json(r).await
}

#[tokio::test]
async fn happy_path_with_rotation_and_revoke() {
    let sb = auto_sandbox().await;
    let t = connect(&sb, "alice").await;
    let info = sb.user_info(Platform::TikTok, "alice");
    assert_eq!(t["open_id"], info.account_id.as_str());
    assert_eq!(t["scope"], SCOPES);
    assert_eq!(t["token_type"], "Bearer");
    // "Token lifetimes": access 2 hours, refresh 180 days
    // (https://developers.tiktok.com/docs/en/oauth-user-access-token-management, 2026-11)
    assert_eq!(t["expires_in"], 7_200);
    assert_eq!(t["refresh_expires_in"], 180 * 86_400);
    let access = t["access_token"].as_str().unwrap();
    assert!(access.starts_with("act."));
    let rt1 = t["refresh_token"].as_str().unwrap().to_owned();

    let r = user_info(
        &sb,
        access,
        "open_id,union_id,avatar_url,display_name,username",
    )
    .await;
    assert_eq!(r.status(), 200);
    let b = json(r).await;
    assert_eq!(b["error"]["code"], "ok");
    assert_eq!(b["data"]["user"]["open_id"], info.account_id.as_str());
    assert_eq!(b["data"]["user"]["username"], "alice");
    assert_eq!(b["data"]["user"]["display_name"], "Alice");
    assert!(b["error"]["log_id"].is_string());

    // refresh rotates: a new refresh token, the old one is dead
    let r = refresh(&sb, &rt1).await;
    assert_eq!(r.status(), 200);
    let t2 = json(r).await;
    let rt2 = t2["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    let r = refresh(&sb, &rt1).await;
    assert_eq!(r.status(), 400);
    let e = json(r).await;
    assert_eq!(e["error"], "invalid_grant");
    assert!(e["log_id"].is_string());
    assert_eq!(sb.refresh_count(Platform::TikTok, "alice"), 1);

    // revoke: 200, then the access token is invalid and the refresh token too
    let c = sb.client(Platform::TikTok);
    let access2 = t2["access_token"].as_str().unwrap();
    let r = http()
        .post(format!("{}/v2/oauth/revoke/", sb.tiktok_open()))
        .form(&[
            ("client_key", c.client_id.as_str()),
            ("client_secret", c.client_secret.as_str()),
            ("token", access2),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = user_info(&sb, access2, "open_id").await;
    assert_eq!(r.status(), 401);
    assert_eq!(json(r).await["error"]["code"], "access_token_invalid");
    assert_eq!(
        json(refresh(&sb, &rt2).await).await["error"],
        "invalid_grant"
    );
}

#[tokio::test]
async fn wrong_pkce_verifier_is_refused() {
    let sb = auto_sandbox().await;
    let code = code_with(&sb, "demo", &s256(VERIFIER)).await;
    let r = exchange(&sb, &code, "a-different-verifier-a-different-verifier-xx").await;
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["error"], "invalid_grant");
    // missing verifier is refused too
    let c = sb.client(Platform::TikTok);
    let r = token(
        &sb,
        &[
            ("code", code.as_str()),
            ("grant_type", "authorization_code"),
            ("redirect_uri", c.redirect_uri.as_str()),
        ],
    )
    .await;
    assert_eq!(json(r).await["error"], "invalid_grant");
}

#[tokio::test]
async fn hex_challenge_is_accepted() {
    let sb = auto_sandbox().await;
    let hex_challenge: String = Sha256::digest(VERIFIER.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let code = code_with(&sb, "demo", &hex_challenge).await;
    assert_eq!(exchange(&sb, &code, VERIFIER).await.status(), 200);
}

#[tokio::test]
async fn reused_expired_and_misdirected_codes_are_refused() {
    let sb = auto_sandbox().await;
    let code = code_with(&sb, "demo", &s256(VERIFIER)).await;
    assert_eq!(exchange(&sb, &code, VERIFIER).await.status(), 200);
    let e = json(exchange(&sb, &code, VERIFIER).await).await;
    assert_eq!(e["error"], "invalid_grant");

    let code = code_with(&sb, "demo", &s256(VERIFIER)).await;
    sb.advance_clock(std::time::Duration::from_secs(601));
    let e = json(exchange(&sb, &code, VERIFIER).await).await;
    assert_eq!(e["error"], "invalid_grant");
    assert_eq!(e["error_description"], "Authorization code is expired.");

    let code = code_with(&sb, "demo", &s256(VERIFIER)).await;
    let r = token(
        &sb,
        &[
            ("code", code.as_str()),
            ("grant_type", "authorization_code"),
            ("redirect_uri", "http://127.0.0.1:3000/elsewhere"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(json(r).await["error"], "invalid_grant");
}

#[tokio::test]
async fn wrong_client_secret_is_invalid_client() {
    let sb = auto_sandbox().await;
    let c = sb.client(Platform::TikTok);
    let code = code_with(&sb, "demo", &s256(VERIFIER)).await;
    let r = http()
        .post(format!("{}/v2/oauth/token/", sb.tiktok_open()))
        .form(&[
            ("client_key", c.client_id.as_str()),
            ("client_secret", "wrong"),
            ("code", code.as_str()),
            ("grant_type", "authorization_code"),
            ("redirect_uri", c.redirect_uri.as_str()),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(json(r).await["error"], "invalid_client");
}

#[tokio::test]
async fn user_info_checks_fields_and_scopes() {
    let sb = auto_sandbox().await;
    let t = connect(&sb, "demo").await;
    let access = t["access_token"].as_str().unwrap();
    let r = user_info(&sb, access, "").await;
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["error"]["code"], "invalid_params");
    let r = user_info(&sb, access, "follower_count").await;
    assert_eq!(r.status(), 401);
    assert_eq!(json(r).await["error"]["code"], "scope_not_authorized");
}

#[tokio::test]
async fn expired_token_and_revoked_grant() {
    let sb = auto_sandbox().await;
    let t = connect(&sb, "erin").await;
    let access = t["access_token"].as_str().unwrap();
    sb.expire_tokens(Platform::TikTok, "erin");
    assert_eq!(user_info(&sb, access, "open_id").await.status(), 401);
    // the refresh token still works after an access-token expiry
    let rt = t["refresh_token"].as_str().unwrap();
    let t2 = json(refresh(&sb, rt).await).await;
    let access2 = t2["access_token"].as_str().unwrap();
    assert_eq!(user_info(&sb, access2, "open_id").await.status(), 200);
    // revoking the grant kills the refresh token
    sb.revoke_grants(Platform::TikTok, "erin");
    let rt2 = t2["refresh_token"].as_str().unwrap();
    assert_eq!(
        json(refresh(&sb, rt2).await).await["error"],
        "invalid_grant"
    );
}

#[tokio::test]
async fn rate_limit_with_retry_after_and_server_errors() {
    let sb = auto_sandbox().await;
    let t = connect(&sb, "demo").await;
    let access = t["access_token"].as_str().unwrap();
    sb.fail_next(
        Some(Platform::TikTok),
        1,
        Failure::RateLimited {
            retry_after_secs: Some(7),
        },
    );
    let r = user_info(&sb, access, "open_id").await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    assert_eq!(json(r).await["error"]["code"], "rate_limit_exceeded");
    sb.fail_next(
        Some(Platform::TikTok),
        1,
        Failure::RateLimited {
            retry_after_secs: None,
        },
    );
    let r = user_info(&sb, access, "open_id").await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_none());
    assert_eq!(user_info(&sb, access, "open_id").await.status(), 200);

    // 50% server errors, deterministic: exactly every second request fails
    sb.set_faults(
        Some(Platform::TikTok),
        Faults {
            server_error_rate: 0.5,
            ..Faults::default()
        },
    );
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(user_info(&sb, access, "open_id").await.status().as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 500).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 5);
    // other platforms are unaffected
    let r = http()
        .get(format!("{}/me", sb.instagram_graph()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    sb.clear_faults(None);
    assert_eq!(user_info(&sb, access, "open_id").await.status(), 200);
}
