//! OnlyFans gateway (OFAuth's documented dialect): link init → hosted page → redirect with
//! `status`, `connection_id` and `client_reference_id` → `/v2/access/self` → `DELETE
//! /v2/account/connections/{id}`; error bodies `{"error", "type", "requestId"}`.

mod common;

use common::*;
use integrations_sandbox::{Platform, Sandbox};

async fn link(sb: &Sandbox, state: &str) -> reqwest::Response {
    let c = sb.client(Platform::OnlyFans);
    http()
        .post(format!("{}/v2/link/init", sb.onlyfans_gateway()))
        .header("apikey", &c.client_secret)
        .json(&serde_json::json!({"redirectUrl": c.redirect_uri, "clientReferenceId": state}))
        .send()
        .await
        .unwrap()
}

async fn connect(sb: &Sandbox, user: &str) -> String {
    let r = link(sb, "st-of").await;
    assert_eq!(r.status(), 200);
    let b = json(r).await;
    assert!(b["expiresAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(b["mode"], "hosted");
    let url = with_query(b["url"].as_str().unwrap(), &[("sandbox_user", user)]);
    let loc = follow(&http(), &url).await;
    let c = sb.client(Platform::OnlyFans);
    assert!(loc.as_str().starts_with(&c.redirect_uri));
    let p = params(&loc);
    assert_eq!(p["status"], "success");
    assert_eq!(p["client_reference_id"], "st-of");
    assert!(!p.contains_key("state"), "OFAuth sends no state parameter");
    let conn = p["connection_id"].clone();
    assert!(conn.starts_with("conn_"));
    conn
}

async fn me(sb: &Sandbox, conn: &str) -> reqwest::Response {
    let c = sb.client(Platform::OnlyFans);
    http()
        .get(format!("{}/v2/access/self", sb.onlyfans_gateway()))
        .header("apikey", &c.client_secret)
        .header("x-connection-id", conn)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn happy_path_and_disconnect() {
    let sb = auto_sandbox().await;
    let conn = connect(&sb, "jane").await;
    let r = me(&sb, &conn).await;
    assert_eq!(r.status(), 200);
    let b = json(r).await;
    // A number on the wire.
    assert_eq!(
        b["id"].as_u64().unwrap().to_string(),
        sb.user_info(Platform::OnlyFans, "jane").account_id
    );
    assert_eq!(b["isAuth"], true);
    assert!(b["postsCount"].is_u64());
    assert_eq!(b["username"], "jane");
    assert_eq!(b["name"], "Jane");
    assert!(b["avatar"].is_string());

    let c = sb.client(Platform::OnlyFans);
    let r = http()
        .delete(format!(
            "{}/v2/account/connections/{conn}",
            sb.onlyfans_gateway()
        ))
        .header("apikey", &c.client_secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = me(&sb, &conn).await;
    assert_eq!(r.status(), 401);
    let b = json(r).await;
    assert_eq!(b["type"], "SESSION_NOT_PROVIDED");
    assert!(b["error"].is_string() && b["requestId"].is_string());
    // Deleting again: the resource is gone.
    let delete = || {
        http()
            .delete(format!(
                "{}/v2/account/connections/{conn}",
                sb.onlyfans_gateway()
            ))
            .header("apikey", &c.client_secret)
            .send()
    };
    let r = delete().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(json(r).await["type"], "RESOURCE_NOT_FOUND");
    // The path this crate once used does not exist.
    let r = http()
        .delete(format!(
            "{}/v2/access/connections/{conn}",
            sb.onlyfans_gateway()
        ))
        .header("apikey", &c.client_secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(json(r).await["type"], "ROUTE_NOT_FOUND");
}

#[tokio::test]
async fn bad_api_key_and_unregistered_redirect() {
    let sb = auto_sandbox().await;
    let r = http()
        .post(format!("{}/v2/link/init", sb.onlyfans_gateway()))
        .header("apikey", "wrong")
        .json(&serde_json::json!({"redirectUrl": "http://127.0.0.1:3000/callback/onlyfans", "clientReferenceId": "s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(json(r).await["type"], "UNAUTHORIZED");
    let c = sb.client(Platform::OnlyFans);
    let r = http()
        .post(format!("{}/v2/link/init", sb.onlyfans_gateway()))
        .header("apikey", &c.client_secret)
        .json(&serde_json::json!({"redirectUrl": "https://evil.example/cb", "clientReferenceId": "s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["type"], "BAD_REQUEST");
    // Without redirectUrl the first allowed redirect URI is used.
    let r = http()
        .post(format!("{}/v2/link/init", sb.onlyfans_gateway()))
        .header("apikey", &c.client_secret)
        .json(&serde_json::json!({"clientReferenceId": "s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let url = json(r).await["url"].as_str().unwrap().to_owned();
    let loc = follow(&http(), &with_query(&url, &[("sandbox_user", "amy")])).await;
    assert!(loc.as_str().starts_with(&c.redirect_uri), "{loc}");
}

#[tokio::test]
async fn expired_and_revoked_connections() {
    let sb = auto_sandbox().await;
    let conn = connect(&sb, "kim").await;
    sb.expire_tokens(Platform::OnlyFans, "kim");
    let r = me(&sb, &conn).await;
    assert_eq!(r.status(), 401);
    assert_eq!(json(r).await["type"], "SESSION_EXPIRED");
    let conn = connect(&sb, "lee").await;
    sb.revoke_grants(Platform::OnlyFans, "lee");
    let r = me(&sb, &conn).await;
    assert_eq!(r.status(), 401);
    assert_eq!(json(r).await["type"], "SESSION_NOT_PROVIDED");
    // No connection id at all.
    let c = sb.client(Platform::OnlyFans);
    let r = http()
        .get(format!("{}/v2/access/self", sb.onlyfans_gateway()))
        .header("apikey", &c.client_secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(json(r).await["type"], "SESSION_NOT_PROVIDED");
}

#[tokio::test]
async fn cancel_and_link_reuse() {
    let sb = Sandbox::start().await.unwrap();
    let b = json(link(&sb, "st2").await).await;
    let url = b["url"].as_str().unwrap();
    // interactive page first
    let r = http().get(url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("development only") && html.contains("Deny"));
    let p = params(&follow(&http(), &with_query(url, &[("sandbox_auto", "deny")])).await);
    assert_eq!(p["status"], "cancelled");
    assert_eq!(p["step"], "authorization");
    assert_eq!(p["client_reference_id"], "st2");
    assert!(!p.contains_key("connection_id") && !p.contains_key("error"));
    // a completed link session cannot be used again
    let r = http()
        .get(with_query(url, &[("sandbox_auto", "allow")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
}

#[tokio::test]
async fn error_redirect() {
    let sb = Sandbox::start().await.unwrap();
    let b = json(link(&sb, "st3").await).await;
    let url = with_query(
        b["url"].as_str().unwrap(),
        &[
            ("sandbox_user", "amy"),
            ("sandbox_link_error", "invalid_credentials"),
        ],
    );
    let p = params(&follow(&http(), &url).await);
    assert_eq!(p["status"], "error");
    assert_eq!(p["error_code"], "invalid_credentials");
    assert_eq!(p["client_reference_id"], "st3");
    assert!(!p.contains_key("connection_id"));
}
