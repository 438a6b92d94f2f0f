//! `Integrations::send` through the real TikTok provider against the sandbox: the token
//! is attached as TikTok wants it, an expired token is refreshed once and the request
//! retried, and a revoked grant ends in `NeedsReconnect`.

mod common;

use common::{REDIRECT, authorize, sandbox, tiktok};
use integrations_core::{
    EncryptionKey, Error, IntegrationStatus, Integrations, MemoryStore, ServiceConfig, TokenCipher,
    UserId,
};
use integrations_sandbox::Platform;
use std::sync::Arc;

const USER: UserId = UserId(7);

fn user_info(sandbox: &integrations_sandbox::Sandbox) -> reqwest::Request {
    reqwest::Request::new(
        reqwest::Method::GET,
        format!("{}/v2/user/info/?fields=open_id", sandbox.tiktok_open())
            .parse()
            .expect("URL"),
    )
}

#[tokio::test]
async fn send_refreshes_an_expired_token_once_and_a_revoked_grant_needs_reconnect() {
    let sandbox = sandbox().await;
    let i: Integrations = common::instance(
        Arc::new(MemoryStore::new()),
        &TokenCipher::new(EncryptionKey::generate()),
        tiktok(&sandbox),
        ServiceConfig::default(),
    );
    let start = i.connect(USER, "tiktok", None).await.unwrap();
    let mut url = start.auth_url.clone();
    url.query_pairs_mut().append_pair("sandbox_user", "sender");
    let params = authorize(&url).await;
    let account = i
        .callback(USER, "tiktok", &params)
        .await
        .unwrap()
        .account
        .provider_account_id;
    assert!(REDIRECT.ends_with("/tiktok"));

    // The stored token works as it is: no refresh.
    let resp = i
        .send(USER, "tiktok", &account, user_info(&sandbox))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["user"]["open_id"], account.as_str());
    assert_eq!(sandbox.refresh_count(Platform::TikTok, "sender"), 0);

    // The platform expires the token early: 401, one refresh (rotating), one retry.
    assert!(sandbox.expire_tokens(Platform::TikTok, "sender") > 0);
    let resp = i
        .send(USER, "tiktok", &account, user_info(&sandbox))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(sandbox.refresh_count(Platform::TikTok, "sender"), 1);
    assert_eq!(sandbox.counters(Platform::TikTok).refresh_calls, 1);

    // The user revokes the app: the token is refused, the refresh answers invalid_grant.
    assert_eq!(sandbox.revoke_grants(Platform::TikTok, "sender"), 1);
    let err = i
        .send(USER, "tiktok", &account, user_info(&sandbox))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NeedsReconnect), "{err:?}");
    let views = i.status(USER).await.unwrap();
    assert_eq!(views[0].status, IntegrationStatus::NeedsReconnect);
    assert!(!views[0].is_connected);
    assert_eq!(sandbox.counters(Platform::TikTok).refresh_ok, 1);
    // Later sends fail at once, without calling the platform.
    let requests = sandbox.counters(Platform::TikTok).requests;
    let err = i
        .send(USER, "tiktok", &account, user_info(&sandbox))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NeedsReconnect), "{err:?}");
    assert_eq!(sandbox.counters(Platform::TikTok).requests, requests);
}
