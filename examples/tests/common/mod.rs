//! Shared set-up of the examples' integration tests: a PostgreSQL schema of its own per
//! test (`integrations_storage_diesel::testing`), the sandbox with the real TikTok
//! provider, and connecting many sandbox users through `Integrations` concurrently.
#![allow(dead_code, unreachable_pub, unused_imports)]

use integrations_core::CallbackParams;
use integrations_core::{ClientSecret, Integrations, ServiceConfig, TokenCipher, UserId};
use integrations_sandbox::{Consent, Platform, Sandbox, SandboxConfig};
use integrations_tiktok::{TikTokConfig, TikTokProvider};
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

pub use integrations_storage_diesel::testing::PgSchema;

/// The redirect URI registered for the sandbox's demo clients (the sandbox default).
pub const REDIRECT: &str = "http://127.0.0.1:3000/callback/tiktok";

/// A sandbox answering consent at once.
pub async fn sandbox() -> Sandbox {
    Sandbox::start_with(SandboxConfig {
        auto_consent: Some(Consent::Allow),
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

/// The real TikTok provider pointed at the sandbox (both user-info scopes, so the profile
/// is one request).
pub fn tiktok(sandbox: &Sandbox) -> Arc<TikTokProvider> {
    let client = sandbox.client(Platform::TikTok);
    Arc::new(
        TikTokProvider::new(
            TikTokConfig::builder()
                .client_key(client.client_id.clone())
                .client_secret(ClientSecret::new(client.client_secret.clone()))
                .redirect_uri(REDIRECT)
                .scopes(["user.info.basic", "user.info.profile"])
                .www_base_url(sandbox.tiktok_www())
                .api_base_url(sandbox.tiktok_open())
                .user_agent(integrations_examples::USER_AGENT)
                .build()
                .expect("valid config"),
        )
        .expect("provider"),
    )
}

/// An `Integrations` over `store` with TikTok, no connect rate limit.
pub fn instance(
    store: Arc<dyn integrations_core::TokenStore>,
    cipher: &TokenCipher,
    provider: Arc<TikTokProvider>,
    config: ServiceConfig,
) -> Integrations {
    Integrations::builder(store, cipher.clone())
        .provider(provider)
        .config(ServiceConfig {
            connect_limit: usize::MAX,
            ..config
        })
        .build()
}

/// The sandbox user of account number `n`.
pub fn sandbox_user(n: usize) -> String {
    format!("u{n}")
}

/// The host user owning account number `n` (ten accounts per user).
pub fn host_user(n: usize) -> UserId {
    UserId(1 + (n / 10) as i64)
}

/// Connects sandbox users `u0..u{count}` through connect → authorize → callback, spread
/// over `instances`, `concurrency` at a time. Returns `(n, provider_account_id)` pairs.
pub async fn connect_many(
    instances: &[Integrations],
    count: usize,
    concurrency: usize,
) -> Vec<(usize, String)> {
    let limit = Arc::new(Semaphore::new(concurrency));
    let mut tasks = JoinSet::new();
    for n in 0..count {
        let i = instances[n % instances.len()].clone();
        let limit = limit.clone();
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("semaphore open");
            let user = host_user(n);
            let start = i.connect(user, "tiktok", None).await.expect("connect");
            let mut url = start.auth_url.clone();
            url.query_pairs_mut()
                .append_pair("sandbox_user", &sandbox_user(n));
            let params = authorize(&url).await;
            let c = i.callback(user, "tiktok", &params).await.expect("callback");
            (n, c.account.provider_account_id)
        });
    }
    let mut out = Vec::with_capacity(count);
    while let Some(r) = tasks.join_next().await {
        out.push(r.expect("connect task"));
    }
    out.sort();
    out
}

/// Follows an authorize URL of a sandbox in automatic-consent mode back to the redirect
/// URI, and returns the callback parameters.
pub async fn authorize(url: &url::Url) -> CallbackParams {
    integrations_examples::follow_authorization(url, REDIRECT)
        .await
        .expect("the sandbox redirects back")
}
