//! The whole flow through `Integrations` against the workspace's local platform sandbox
//! (`integrations-sandbox`), which emulates the connection gateway's wire contract.

use integrations_core::{
    CallbackParams, ClientSecret, EncryptionKey, Error, IntegrationStatus, Integrations,
    MemoryStore, Provider, ProviderError, TokenCipher, UserId,
};
use integrations_onlyfans::{OnlyFansConfig, OnlyFansProvider, connection_alias};
use integrations_sandbox::{Platform, Sandbox, SandboxConfig};
use std::sync::Arc;

async fn setup() -> (Sandbox, Arc<OnlyFansProvider>, Integrations) {
    let sandbox = Sandbox::start_with(SandboxConfig::default()).await.unwrap();
    let client = sandbox.client(Platform::OnlyFans);
    let provider = Arc::new(
        OnlyFansProvider::new(
            OnlyFansConfig::builder()
                .api_key(ClientSecret::new(client.client_secret.clone()))
                .redirect_uri(client.redirect_uri.clone())
                .api_base_url(sandbox.onlyfans_gateway())
                .build()
                .unwrap(),
        )
        .unwrap(),
    );
    let integrations = Integrations::builder(
        Arc::new(MemoryStore::new()),
        TokenCipher::new(EncryptionKey::generate()),
    )
    .provider(provider.clone())
    .build();
    (sandbox, provider, integrations)
}

async fn link(auth_url: &url::Url, decision: &str, user: &str) -> CallbackParams {
    let mut url = auth_url.clone();
    url.query_pairs_mut()
        .append_pair("sandbox_auto", decision)
        .append_pair("sandbox_user", user);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let reply = http.get(url).send().await.unwrap();
    assert_eq!(reply.status(), 302);
    let location = url::Url::parse(reply.headers()["location"].to_str().unwrap()).unwrap();
    CallbackParams::from_query(location.query().unwrap_or_default())
}

#[tokio::test]
async fn link_connect_profile_disconnect_and_expired_session() {
    let (sandbox, provider, integrations) = setup().await;
    let user = UserId(21);
    let start = integrations.connect(user, "onlyfans", None).await.unwrap();
    let params = link(&start.auth_url, "allow", "jane").await;
    let connection_id = params.get("connection_id").unwrap().to_owned();
    assert!(connection_id.starts_with("conn_"));
    let connection = integrations
        .callback(user, "onlyfans", &params)
        .await
        .unwrap();
    let info = sandbox.user_info(Platform::OnlyFans, "jane");
    assert_eq!(connection.account.provider_account_id, info.account_id);
    assert_eq!(
        connection.account.metadata["account_id"],
        info.account_id.as_str()
    );
    assert_eq!(connection.account.username.as_deref(), Some("jane"));
    // The connection's alias (a digest, never the id itself) for the gateway's webhooks,
    // stored but not shown.
    let stored = integrations
        .store()
        .find_account(provider.id(), &connection.account.provider_account_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.metadata["platform_aliases"],
        serde_json::json!([connection_alias(&connection_id)])
    );
    assert!(!stored.metadata.to_string().contains(&connection_id));
    assert!(
        connection
            .account
            .metadata
            .get("platform_aliases")
            .is_none()
    );
    assert_eq!(
        connection.account.expires_at, None,
        "gateway sessions carry no expiry"
    );
    let account = connection.account.provider_account_id.clone();

    // No refresh: declared, and no call made.
    let err = integrations
        .refresh(user, "onlyfans", &account)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Provider(ProviderError::Unsupported { .. })
    ));

    // The stored credential works against the gateway until the session expires.
    let token = integrations
        .access_token(user, "onlyfans", &account)
        .await
        .unwrap();
    provider.fetch_profile(&token).await.unwrap();
    assert!(sandbox.expire_tokens(Platform::OnlyFans, "jane") > 0);
    let err = provider.fetch_profile(&token).await.unwrap_err();
    assert!(matches!(err, ProviderError::InvalidGrant { .. }), "{err:?}");

    // Reconnect, then disconnect: the gateway connection is deleted.
    let start = integrations.connect(user, "onlyfans", None).await.unwrap();
    let params = link(&start.auth_url, "allow", "jane").await;
    let again = integrations
        .callback(user, "onlyfans", &params)
        .await
        .unwrap();
    assert!(again.reauthorized);
    assert_eq!(again.account.status, IntegrationStatus::Connected);
    let token = integrations
        .access_token(user, "onlyfans", &account)
        .await
        .unwrap();
    integrations
        .disconnect(user, "onlyfans", &account)
        .await
        .unwrap();
    assert!(integrations.status(user).await.unwrap().is_empty());
    let err = provider.fetch_profile(&token).await.unwrap_err();
    assert!(matches!(err, ProviderError::InvalidGrant { .. }), "{err:?}");
}

#[tokio::test]
async fn cancelled_link_is_cancelled() {
    let (_sandbox, _provider, integrations) = setup().await;
    let start = integrations
        .connect(UserId(22), "onlyfans", None)
        .await
        .unwrap();
    let params = link(&start.auth_url, "deny", "jane").await;
    let err = integrations
        .callback(UserId(22), "onlyfans", &params)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err:?}");
}
