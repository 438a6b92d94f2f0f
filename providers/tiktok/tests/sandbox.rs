//! End to end against the workspace's local OAuth sandbox (`integrations-sandbox`): a
//! second, independent model of TikTok's wire format, driven through `Integrations`.

use chrono::{TimeDelta, Utc};
use integrations_core::{
    CallbackParams, ClientSecret, EncryptionKey, IntegrationStatus, Integrations, ManualClock,
    MemoryStore, TokenCipher, UserId,
};
use integrations_sandbox::{Consent, Platform, Sandbox, SandboxConfig};
use integrations_tiktok::{TikTokConfig, TikTokProvider};
use std::sync::Arc;

async fn run(scopes: &[&str], expect_username: Option<&str>) {
    let sandbox = Sandbox::start_with(SandboxConfig {
        auto_consent: Some(Consent::Allow),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let client = sandbox.client(Platform::TikTok);
    let provider = TikTokProvider::new(
        TikTokConfig::builder()
            .client_key(client.client_id.clone())
            .client_secret(ClientSecret::new(client.client_secret.clone()))
            .redirect_uri(client.redirect_uri.clone())
            .scopes(scopes.iter().copied())
            .www_base_url(sandbox.tiktok_www())
            .api_base_url(sandbox.tiktok_open())
            .build()
            .unwrap(),
    )
    .unwrap();
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let integrations = Integrations::builder(
        Arc::new(MemoryStore::new()),
        TokenCipher::new(EncryptionKey::generate()),
    )
    .provider(Arc::new(provider))
    .clock(clock.clone())
    .build();
    let user = UserId(4);

    let start = integrations.connect(user, "tiktok", None).await.unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let reply = http.get(start.auth_url.as_str()).send().await.unwrap();
    assert_eq!(reply.status(), 302);
    let location = reply.headers()["location"].to_str().unwrap().to_owned();
    let query = url::Url::parse(&location).unwrap();
    let params = CallbackParams::from_query(query.query().unwrap_or_default());
    let connection = integrations
        .callback(user, "tiktok", &params)
        .await
        .unwrap();
    let account = connection.account.provider_account_id.clone();
    assert_eq!(connection.account.metadata["open_id"], account.as_str());
    let info = sandbox.user_info(Platform::TikTok, "demo");
    let display_name = connection.account.metadata["display_name"]
        .as_str()
        .unwrap()
        .to_owned();
    let username = connection.account.username.clone().unwrap();
    match expect_username {
        Some(_) => assert_ne!(username, display_name, "{info:?}"),
        None => assert_eq!(username, display_name),
    }

    // Two refreshes: the sandbox rotates refresh tokens and refuses a used one, so the
    // second succeeds only if the rotated token was stored.
    for _ in 0..2 {
        clock.advance(TimeDelta::hours(3));
        let view = integrations
            .refresh(user, "tiktok", &account)
            .await
            .unwrap();
        assert_eq!(view.status, IntegrationStatus::Connected);
    }
    assert_eq!(sandbox.counters(Platform::TikTok).refresh_ok, 2);

    integrations
        .disconnect(user, "tiktok", &account)
        .await
        .unwrap();
    assert!(integrations.status(user).await.unwrap().is_empty());
}

#[tokio::test]
async fn sandbox_with_basic_scope_falls_back_to_display_name() {
    run(&["user.info.basic"], None).await;
}

#[tokio::test]
async fn sandbox_with_profile_scope_reads_username() {
    run(&["user.info.basic", "user.info.profile"], Some("username")).await;
}
