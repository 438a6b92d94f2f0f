//! The whole flow through `Integrations` against the workspace's local platform sandbox
//! (`integrations-sandbox`), an independent model of Reddit's wire format.

use integrations_core::{
    CallbackParams, ClientSecret, EncryptionKey, Error, IntegrationStatus, Integrations,
    MemoryStore, ServiceConfig, TokenCipher, UserId,
};
use integrations_reddit::{RedditConfig, RedditProvider};
use integrations_sandbox::{Platform, Sandbox, SandboxConfig};
use std::sync::Arc;
use std::time::Duration;

const UA: &str = "rust:integrations-reddit-tests:0.1.0 (by /u/integrations-demo)";

async fn setup() -> (Sandbox, Integrations) {
    let sandbox = Sandbox::start_with(SandboxConfig {
        auto_consent: None,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let client = sandbox.client(Platform::Reddit);
    let provider = RedditProvider::new(
        RedditConfig::builder()
            .client_id(client.client_id.clone())
            .client_secret(ClientSecret::new(client.client_secret.clone()))
            .redirect_uri(client.redirect_uri.clone())
            .user_agent(UA)
            .www_base_url(sandbox.reddit_www())
            .oauth_base_url(sandbox.reddit_oauth())
            .build()
            .unwrap(),
    )
    .unwrap();
    let integrations = Integrations::builder(
        Arc::new(MemoryStore::new()),
        TokenCipher::new(EncryptionKey::generate()),
    )
    .provider(Arc::new(provider))
    .config(ServiceConfig {
        refresh_coalesce: Duration::ZERO,
        status_cache_ttl: Duration::ZERO,
        ..ServiceConfig::default()
    })
    .build();
    (sandbox, integrations)
}

/// Follows the authorize URL with the sandbox's consent decision and returns the
/// callback's query parameters.
async fn authorize(auth_url: &url::Url, decision: &str, user: &str) -> CallbackParams {
    let mut url = auth_url.clone();
    url.query_pairs_mut()
        .append_pair("sandbox_auto", decision)
        .append_pair("sandbox_user", user);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let reply = http.get(url).send().await.unwrap();
    assert_eq!(reply.status(), 302, "the consent redirects back");
    let location = url::Url::parse(reply.headers()["location"].to_str().unwrap()).unwrap();
    assert!(
        location
            .as_str()
            .starts_with("http://127.0.0.1:3000/callback/reddit")
    );
    CallbackParams::from_query(location.query().unwrap_or_default())
}

#[tokio::test]
async fn connect_refresh_keeps_refresh_token_revoke_and_reconnect() {
    let (sandbox, integrations) = setup().await;
    let user = UserId(11);
    let start = integrations.connect(user, "reddit", None).await.unwrap();
    let q: std::collections::HashMap<_, _> = start.auth_url.query_pairs().into_owned().collect();
    assert_eq!(q["duration"], "permanent");
    let params = authorize(&start.auth_url, "allow", "spez").await;
    let connection = integrations
        .callback(user, "reddit", &params)
        .await
        .unwrap();
    let info = sandbox.user_info(Platform::Reddit, "spez");
    assert_eq!(connection.account.provider_account_id, info.account_id);
    assert_eq!(connection.account.username.as_deref(), Some("spez"));
    let icon = connection.account.metadata["icon_img"].as_str().unwrap();
    assert!(!icon.contains("&amp;"), "icon_img is unescaped: {icon}");
    assert!(connection.account.metadata["karma"].is_i64());
    let account = connection.account.provider_account_id.clone();

    // Reddit keeps the refresh token: two refreshes with the same one both succeed.
    for n in 1..=2 {
        let view = integrations
            .refresh(user, "reddit", &account)
            .await
            .unwrap();
        assert_eq!(view.status, IntegrationStatus::Connected);
        assert_eq!(sandbox.refresh_count(Platform::Reddit, "spez"), n);
    }

    // The user revokes the app at Reddit: the next refresh marks the account.
    assert!(sandbox.revoke_grants(Platform::Reddit, "spez") > 0);
    let err = integrations
        .refresh(user, "reddit", &account)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NeedsReconnect), "{err:?}");
    assert_eq!(
        integrations.status(user).await.unwrap()[0].status,
        IntegrationStatus::NeedsReconnect
    );

    // Reconnecting restores it on the same row.
    let start = integrations.connect(user, "reddit", None).await.unwrap();
    let params = authorize(&start.auth_url, "allow", "spez").await;
    let again = integrations
        .callback(user, "reddit", &params)
        .await
        .unwrap();
    assert!(again.reauthorized);
    assert_eq!(again.account.status, IntegrationStatus::Connected);

    // Disconnect revokes at the sandbox and deletes the row.
    integrations
        .disconnect(user, "reddit", &account)
        .await
        .unwrap();
    assert!(integrations.status(user).await.unwrap().is_empty());
    let grants = sandbox.counters(Platform::Reddit).grants;
    assert!(
        grants
            .iter()
            .filter(|g| g.user == "spez")
            .all(|g| g.revoked)
    );
}

#[tokio::test]
async fn denied_consent_is_cancelled() {
    let (_sandbox, integrations) = setup().await;
    let start = integrations
        .connect(UserId(12), "reddit", None)
        .await
        .unwrap();
    let params = authorize(&start.auth_url, "deny", "spez").await;
    assert_eq!(params.error(), Some("access_denied"));
    let err = integrations
        .callback(UserId(12), "reddit", &params)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err:?}");
    assert!(integrations.status(UserId(12)).await.unwrap().is_empty());
}
