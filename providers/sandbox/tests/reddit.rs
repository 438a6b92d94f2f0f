//! Reddit: Basic client auth, HTTP-200 code errors, refresh keeps the token, revoke 204,
//! User-Agent requirement.

mod common;

use common::*;
use integrations_sandbox::{Failure, Platform, Sandbox};

async fn code(sb: &Sandbox, user: &str, duration: &str) -> String {
    let c = sb.client(Platform::Reddit);
    let url = with_query(
        &format!("{}/api/v1/authorize", sb.reddit_www()),
        &[
            ("client_id", c.client_id.as_str()),
            ("response_type", "code"),
            ("state", "st-rd"),
            ("redirect_uri", c.redirect_uri.as_str()),
            ("duration", duration),
            ("scope", "identity read"),
            ("sandbox_user", user),
        ],
    );
    let p = params(&follow(&http(), &url).await);
    assert_eq!(p["state"], "st-rd");
    p["code"].clone()
}

fn token_req(sb: &Sandbox, secret: &str) -> reqwest::RequestBuilder {
    let c = sb.client(Platform::Reddit);
    http()
        .post(format!("{}/api/v1/access_token", sb.reddit_www()))
        .basic_auth(&c.client_id, Some(secret))
        .header("user-agent", UA)
}

async fn exchange(sb: &Sandbox, code: &str, redirect: &str) -> reqwest::Response {
    let c = sb.client(Platform::Reddit);
    token_req(sb, &c.client_secret)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
        ])
        .send()
        .await
        .unwrap()
}

async fn refresh(sb: &Sandbox, rt: &str) -> reqwest::Response {
    let c = sb.client(Platform::Reddit);
    token_req(sb, &c.client_secret)
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
        .send()
        .await
        .unwrap()
}

async fn me(sb: &Sandbox, access: &str) -> reqwest::Response {
    http()
        .get(format!("{}/api/v1/me", sb.reddit_oauth()))
        .header("authorization", format!("bearer {access}"))
        .header("user-agent", UA)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn happy_path_permanent_grant() {
    let sb = auto_sandbox().await;
    let c = sb.client(Platform::Reddit);
    let code = code(&sb, "spez", "permanent").await;
    let r = exchange(&sb, &code, &c.redirect_uri).await;
    assert_eq!(r.status(), 200);
    let t = json(r).await;
    assert_eq!(t["token_type"], "bearer");
    assert_eq!(t["expires_in"], 3600);
    assert_eq!(t["scope"], "identity read");
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    let access = t["access_token"].as_str().unwrap();

    let r = me(&sb, access).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-ratelimit-remaining"));
    let u = json(r).await;
    assert_eq!(u["name"], "spez");
    assert_eq!(
        u["id"],
        sb.user_info(Platform::Reddit, "spez").account_id.as_str()
    );
    assert!(u["icon_img"].as_str().unwrap().contains("&amp;"));
    assert!(u["total_karma"].is_i64());
    assert_eq!(u["subreddit"]["display_name_prefixed"], "u/spez");

    // refresh keeps the refresh token: none in the reply, the old one keeps working
    let r = refresh(&sb, &rt).await;
    assert_eq!(r.status(), 200);
    let t2 = json(r).await;
    assert!(t2.get("refresh_token").is_none());
    assert_eq!(
        me(&sb, t2["access_token"].as_str().unwrap()).await.status(),
        200
    );
    assert_eq!(refresh(&sb, &rt).await.status(), 200);
    assert_eq!(sb.refresh_count(Platform::Reddit, "spez"), 2);

    // revoke the refresh token: 204, then refresh → 400 invalid_request (oauth2.py
    // `_access_token_refresh` → `_check_for_errors`) and the access token is dead
    let r = http()
        .post(format!("{}/api/v1/revoke_token", sb.reddit_www()))
        .basic_auth(&c.client_id, Some(&c.client_secret))
        .header("user-agent", UA)
        .form(&[("token", rt.as_str()), ("token_type_hint", "refresh_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = refresh(&sb, &rt).await;
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["error"], "invalid_request");
    assert_eq!(
        me(&sb, t2["access_token"].as_str().unwrap()).await.status(),
        401
    );
    // unknown tokens still get 204
    let r = http()
        .post(format!("{}/api/v1/revoke_token", sb.reddit_www()))
        .basic_auth(&c.client_id, Some(&c.client_secret))
        .header("user-agent", UA)
        .form(&[("token", "unknown")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}

#[tokio::test]
async fn temporary_grant_has_no_refresh_token() {
    let sb = auto_sandbox().await;
    let c = sb.client(Platform::Reddit);
    let code = code(&sb, "demo", "temporary").await;
    let t = json(exchange(&sb, &code, &c.redirect_uri).await).await;
    assert!(t["access_token"].is_string());
    assert!(t.get("refresh_token").is_none());
}

#[tokio::test]
async fn code_errors_are_http_200() {
    let sb = auto_sandbox().await;
    let c = sb.client(Platform::Reddit);
    // wrong redirect URI
    let code1 = code(&sb, "demo", "permanent").await;
    let r = exchange(&sb, &code1, "http://127.0.0.1:3000/nope").await;
    assert_eq!(r.status(), 200);
    assert_eq!(json(r).await["error"], "invalid_grant");
    // reuse
    assert!(json(exchange(&sb, &code1, &c.redirect_uri).await).await["access_token"].is_string());
    let r = exchange(&sb, &code1, &c.redirect_uri).await;
    assert_eq!(r.status(), 200);
    assert_eq!(json(r).await["error"], "invalid_grant");
    // expired
    let code2 = code(&sb, "demo", "permanent").await;
    sb.advance_clock(std::time::Duration::from_secs(3600));
    assert_eq!(
        json(exchange(&sb, &code2, &c.redirect_uri).await).await["error"],
        "invalid_grant"
    );
    // unsupported grant type
    let r = token_req(&sb, &c.client_secret)
        .form(&[("grant_type", "magic")])
        .send()
        .await
        .unwrap();
    assert_eq!(json(r).await["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn wrong_client_secret_gets_401_basic_challenge() {
    let sb = auto_sandbox().await;
    let c = sb.client(Platform::Reddit);
    let code = code(&sb, "demo", "permanent").await;
    let r = token_req(&sb, "wrong")
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", c.redirect_uri.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"reddit\"");
    // no Authorization at all
    let r = http()
        .post(format!("{}/api/v1/access_token", sb.reddit_www()))
        .header("user-agent", UA)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn generic_or_missing_user_agent_is_throttled() {
    let sb = auto_sandbox().await;
    let c = sb.client(Platform::Reddit);
    for ua in [None, Some("reqwest/0.12"), Some("curl/8.0")] {
        let mut req = http()
            .post(format!("{}/api/v1/access_token", sb.reddit_www()))
            .basic_auth(&c.client_id, Some(&c.client_secret))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")]);
        if let Some(ua) = ua {
            req = req.header("user-agent", ua);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 429, "{ua:?}");
        assert_eq!(json(r).await["error"], 429);
    }
    let r = http()
        .get(format!("{}/api/v1/me", sb.reddit_oauth()))
        .bearer_auth("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
}

#[tokio::test]
async fn bad_authorize_gets_error_page_and_deny_redirects() {
    let sb = Sandbox::start().await.unwrap();
    let c = sb.client(Platform::Reddit);
    let base = format!("{}/api/v1/authorize", sb.reddit_www());
    let bad = with_query(
        &base,
        &[
            ("client_id", c.client_id.as_str()),
            ("response_type", "code"),
            ("state", "s"),
            ("redirect_uri", "http://evil.example/cb"),
            ("scope", "identity"),
        ],
    );
    let r = http().get(bad).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    let deny = with_query(
        &base,
        &[
            ("client_id", c.client_id.as_str()),
            ("response_type", "code"),
            ("state", "s2"),
            ("redirect_uri", c.redirect_uri.as_str()),
            ("scope", "identity"),
            ("sandbox_auto", "deny"),
        ],
    );
    let p = params(&follow(&http(), &deny).await);
    assert_eq!(p["error"], "access_denied");
    assert_eq!(p["state"], "s2");
}

#[tokio::test]
async fn controls_expire_revoke_and_faults() {
    let sb = auto_sandbox().await;
    let c = sb.client(Platform::Reddit);
    let code = code(&sb, "frank", "permanent").await;
    let t = json(exchange(&sb, &code, &c.redirect_uri).await).await;
    let access = t["access_token"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap();
    sb.expire_tokens(Platform::Reddit, "frank");
    let r = me(&sb, access).await;
    assert_eq!(r.status(), 401);
    assert_eq!(json(r).await["error"], 401);
    sb.fail_next(Some(Platform::Reddit), 1, Failure::ServerError);
    assert_eq!(refresh(&sb, rt).await.status(), 503);
    sb.fail_next(
        Some(Platform::Reddit),
        1,
        Failure::RateLimited {
            retry_after_secs: Some(3),
        },
    );
    let r = refresh(&sb, rt).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "3");
    assert!(r.headers().contains_key("x-ratelimit-reset"));
    assert_eq!(refresh(&sb, rt).await.status(), 200);
    sb.revoke_grants(Platform::Reddit, "frank");
    let r = refresh(&sb, rt).await;
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["error"], "invalid_request");
}

/// reddit-archive/reddit r2/r2/controllers/oauth2.py `_access_token_refresh`: an unknown,
/// revoked or other client's refresh token and a missing one are all HTTP 400
/// `{"error": "invalid_request"}` (never `invalid_grant`).
#[tokio::test]
async fn refresh_errors_are_400_invalid_request() {
    let sb = auto_sandbox().await;
    let c = sb.client(Platform::Reddit);
    let code = code(&sb, "gina", "permanent").await;
    let t = json(exchange(&sb, &code, &c.redirect_uri).await).await;
    let rt = t["refresh_token"].as_str().unwrap().to_owned();

    for bad in ["no-such-refresh-token", ""] {
        let r = refresh(&sb, bad).await;
        assert_eq!(r.status(), 400, "{bad:?}");
        assert_eq!(
            json(r).await,
            serde_json::json!({"error": "invalid_request"})
        );
    }

    // another client presenting gina's refresh token
    let other = sb
        .register_client(Platform::Reddit, "http://127.0.0.1:3000/other")
        .unwrap();
    let r = http()
        .post(format!("{}/api/v1/access_token", sb.reddit_www()))
        .basic_auth(&other.client_id, Some(&other.client_secret))
        .header("user-agent", UA)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["error"], "invalid_request");
    // ... and the owner's refresh still works
    assert_eq!(refresh(&sb, &rt).await.status(), 200);
}

/// oauth2.py `_access_token_code`: `redirect_uri` is `VRequired`; without it (or without
/// `code`) the reply is `{"error": "invalid_request"}` with HTTP 200, and the code survives.
#[tokio::test]
async fn code_exchange_without_redirect_uri_is_invalid_request() {
    let sb = auto_sandbox().await;
    let c = sb.client(Platform::Reddit);
    let code = code(&sb, "demo", "temporary").await;
    let r = token_req(&sb, &c.client_secret)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json(r).await["error"], "invalid_request");
    let r = token_req(&sb, &c.client_secret)
        .form(&[
            ("grant_type", "authorization_code"),
            ("redirect_uri", c.redirect_uri.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json(r).await["error"], "invalid_request");
    assert!(json(exchange(&sb, &code, &c.redirect_uri).await).await["access_token"].is_string());
}
