//! End to end against the workspace's local OAuth sandbox (`integrations-sandbox`): a
//! second, independent model of Instagram's wire format, driven through `Integrations`.

use chrono::{TimeDelta, Utc};
use integrations_core::{
    CallbackParams, ClientSecret, EncryptionKey, Error, Integrations, ManualClock, MemoryStore,
    ProviderError, TokenCipher, UserId,
};
use integrations_instagram::{InstagramConfig, InstagramProvider};
use integrations_sandbox::{Consent, Platform, Sandbox, SandboxConfig};
use std::sync::Arc;
use std::time::Duration;

async fn run(data_array: bool) {
    let sandbox = Sandbox::start_with(SandboxConfig {
        auto_consent: Some(Consent::Allow),
        instagram_data_array: data_array,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let client = sandbox.client(Platform::Instagram);
    let provider = InstagramProvider::new(
        InstagramConfig::builder()
            .client_id(client.client_id.clone())
            .client_secret(ClientSecret::new(client.client_secret.clone()))
            .redirect_uri(client.redirect_uri.clone())
            .www_base_url(sandbox.instagram_www())
            .api_base_url(sandbox.instagram_api())
            .graph_base_url(sandbox.instagram_graph())
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
    let user = UserId(3);

    let start = integrations.connect(user, "instagram", None).await.unwrap();
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
        .callback(user, "instagram", &params)
        .await
        .unwrap();
    let account = connection.account.provider_account_id.clone();
    assert!(account.len() >= 17, "{account}");
    assert_eq!(
        connection.account.metadata["ig_business_id"],
        account.as_str()
    );

    let err = integrations
        .refresh(user, "instagram", &account)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Provider(ProviderError::RefreshNotYetAllowed { .. })
        ),
        "{err:?}"
    );
    sandbox.advance_clock(Duration::from_secs(25 * 3600));
    clock.advance(TimeDelta::hours(25));
    integrations
        .refresh(user, "instagram", &account)
        .await
        .unwrap();
    assert_eq!(sandbox.counters(Platform::Instagram).refresh_ok, 1);

    integrations
        .disconnect(user, "instagram", &account)
        .await
        .unwrap();
    assert!(integrations.status(user).await.unwrap().is_empty());
}

#[tokio::test]
async fn sandbox_flat_reply() {
    run(false).await;
}

#[tokio::test]
async fn sandbox_data_array_reply() {
    run(true).await;
}
