//! Real TikTok grants in the sandbox: each is one authorization (the sandbox's automatic
//! consent answers the authorize URL with a 302 carrying a code) and one code exchange
//! with PKCE through the real `integrations-tiktok` provider. The sandbox accepts their
//! refresh tokens and rotates them at every refresh.

use crate::sandbox_proc::SandboxInfo;
use crate::{Result, USER_AGENT};
use futures::StreamExt;
use integrations_core::oauth::{generate_pkce_verifier, generate_state, pkce_challenge};
use integrations_core::{
    AuthorizationRequest, CallbackParams, ClientSecret, CodeExchange, Provider,
};
use integrations_tiktok::{TikTokConfig, TikTokProvider};
use std::sync::Arc;

/// One sandbox user's grant, in plaintext (the benchmark's own bookkeeping; the stores
/// only ever get sealed copies).
#[derive(Clone)]
pub struct Grant {
    /// The sandbox user (`bench<i>`).
    pub user: String,
    /// TikTok `open_id` (the provider account id).
    pub open_id: String,
    /// The current access token.
    pub access_token: String,
    /// The current refresh token (rotated by every refresh).
    pub refresh_token: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("user", &self.user)
            .field("open_id", &self.open_id)
            .finish_non_exhaustive()
    }
}

/// The TikTok provider pointed at the sandbox with its demo client.
pub fn tiktok(info: &SandboxInfo) -> Result<Arc<TikTokProvider>> {
    let c = &info.tiktok;
    let config = TikTokConfig::builder()
        .client_key(c.client_id.clone())
        .client_secret(ClientSecret::new(c.client_secret.clone()))
        .redirect_uri(c.redirect_uri.clone())
        .www_base_url(info.tiktok_www())
        .api_base_url(info.tiktok_open())
        .user_agent(USER_AGENT)
        .build()?;
    Ok(Arc::new(TikTokProvider::new(config)?))
}

/// Runs one authorize + exchange flow for sandbox user `user`.
pub async fn mint_one(
    tiktok: &TikTokProvider,
    http: &reqwest::Client,
    user: &str,
) -> Result<Grant> {
    let verifier = generate_pkce_verifier();
    let request = AuthorizationRequest {
        state: generate_state(),
        pkce_challenge: Some(pkce_challenge(&verifier)),
        scopes: Vec::new(),
    };
    let mut url = tiktok.authorization_url(&request).await?;
    url.query_pairs_mut()
        .append_pair("sandbox_user", user)
        .append_pair("sandbox_auto", "allow");
    let response = http.get(url.clone()).send().await?;
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            format!(
                "authorize answered {} without a redirect",
                response.status()
            )
        })?;
    let back = url.join(location)?;
    let params = CallbackParams::from_query(back.query().unwrap_or_default());
    let tokens = tiktok
        .exchange_code(CodeExchange {
            params: &params,
            pkce_verifier: Some(&verifier),
        })
        .await?;
    let open_id = tiktok.fetch_profile(&tokens.access_token).await?.account_id;
    let refresh_token = tokens
        .refresh_token
        .as_ref()
        .ok_or("the exchange reply has no refresh token")?
        .expose_secret()
        .to_owned();
    Ok(Grant {
        user: user.to_owned(),
        open_id,
        access_token: tokens.access_token.expose_secret().to_owned(),
        refresh_token,
        scopes: tokens.scopes.clone(),
    })
}

/// Mints `n` grants for users `bench0..bench{n-1}`, `concurrency` flows at a time.
pub async fn mint(
    tiktok: &Arc<TikTokProvider>,
    n: usize,
    concurrency: usize,
) -> Result<Vec<Grant>> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        .build()?;
    let results: Vec<Result<Grant>> = futures::stream::iter(0..n)
        .map(|i| {
            let tiktok = tiktok.clone();
            let http = http.clone();
            async move {
                tokio::spawn(async move { mint_one(&tiktok, &http, &format!("bench{i}")).await })
                    .await?
            }
        })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}
