//! The whole connect → callback → send → refresh → disconnect flow through
//! [`Integrations`], run by every provider crate against its platform's emulation.

use crate::clock::ManualClock;
use crate::error::Error;
use crate::memory::MemoryStore;
use crate::provider::{CallbackParams, Provider, ProviderError};
use crate::service::{ConnectStart, IntegrationView, Integrations};
use crate::status::IntegrationStatus;
use crate::store::UserId;
use crate::{EncryptionKey, TokenCipher};
use std::sync::Arc;
use std::time::Duration;

/// Builds the platform's redirect back to the callback for a connect start.
pub type Redirect = Box<dyn Fn(&ConnectStart) -> CallbackParams + Send + Sync>;

/// One provider's whole flow: what to send and what to expect.
pub struct ProviderFlow {
    /// The provider, pointed at the platform's emulation.
    pub provider: Arc<dyn Provider>,
    /// The platform's redirect after consent.
    pub authorized: Redirect,
    /// The platform's redirect after the user declined.
    pub cancelled: Redirect,
    /// The account id the profile gives.
    pub account_id: String,
    /// The handle the profile gives.
    pub username: String,
    /// Whether the authorization URL carries the state (OAuth 2.0 platforms; a gateway
    /// keeps it in its own session).
    pub state_in_url: bool,
    /// How long after connecting the refresh is tried (the flow's clock advances by it;
    /// Instagram refuses refreshes of tokens younger than 24 hours).
    pub refresh_after: Duration,
    /// A URL to call through [`Integrations::send`] once connected, with a generic
    /// `User-Agent` the provider must replace; the crate then checks what arrived.
    pub send_url: Option<String>,
}

impl std::fmt::Debug for ProviderFlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderFlow")
            .field("provider", &self.provider.id())
            .field("account_id", &self.account_id)
            .field("username", &self.username)
            .field("refresh_after", &self.refresh_after)
            .field("send_url", &self.send_url)
            .finish_non_exhaustive()
    }
}

/// What the flow saw, for the crate's own checks.
#[derive(Debug)]
pub struct FlowReport {
    /// The account right after the callback.
    pub connected: IntegrationView,
    /// The account after the refresh; `None` for a platform without refresh (whose
    /// refresh must be refused as `Unsupported`).
    pub refreshed: Option<IntegrationView>,
    /// The status of the `send` reply, when a URL was given.
    pub sent: Option<reqwest::StatusCode>,
}

/// Runs the flow with a [`MemoryStore`] and a manual clock, asserting at each step:
///
/// 1. a declined consent is [`Error::Cancelled`] and stores nothing;
/// 2. `connect` (with a post-connect redirect) gives a URL carrying the state (when
///    [`state_in_url`](ProviderFlow::state_in_url)), and the callback connects the expected
///    account and handle, `connected`, not a re-authorization, with the redirect kept;
/// 3. `status` shows it connected, and no token appears in its JSON;
/// 4. `send` to [`send_url`](ProviderFlow::send_url) succeeds;
/// 5. after [`refresh_after`](ProviderFlow::refresh_after), `refresh` keeps it connected
///    (or is refused as `Unsupported` when the provider has no refresh);
/// 6. `disconnect` removes it.
///
/// Panics, naming the step, when one fails.
pub async fn provider_flow(flow: ProviderFlow) -> FlowReport {
    let id = flow.provider.id().as_str().to_owned();
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let svc = Integrations::builder(
        Arc::new(MemoryStore::new()),
        TokenCipher::new(EncryptionKey::generate()),
    )
    .provider(flow.provider.clone())
    .clock(clock.clone())
    .build();
    let user = UserId(7);

    let start = svc.connect(user, &id, None).await.expect("connect");
    match svc.callback(user, &id, &(flow.cancelled)(&start)).await {
        Err(Error::Cancelled) => {}
        other => panic!("{id}: a declined consent should be Cancelled, got {other:?}"),
    }
    assert!(
        svc.status(user).await.unwrap().is_empty(),
        "{id}: nothing stored"
    );

    let start = svc
        .connect(user, &id, Some("/after".into()))
        .await
        .expect("connect");
    if flow.state_in_url {
        assert!(
            start.auth_url.as_str().contains(&start.state),
            "{id}: the state rides on the authorization URL"
        );
    }
    let conn = svc
        .callback(user, &id, &(flow.authorized)(&start))
        .await
        .unwrap_or_else(|e| panic!("{id}: callback: {e:?}"));
    assert_eq!(conn.account.provider_account_id, flow.account_id, "{id}");
    assert_eq!(
        conn.account.username.as_deref(),
        Some(flow.username.as_str())
    );
    assert_eq!(conn.account.status, IntegrationStatus::Connected, "{id}");
    assert_eq!(conn.redirect_url.as_deref(), Some("/after"), "{id}");
    assert!(!conn.reauthorized, "{id}");

    let status = svc.status(user).await.unwrap();
    assert_eq!(status.len(), 1, "{id}: one account");
    assert!(status[0].is_connected, "{id}: connected");
    let token = svc
        .access_token(user, &id, &flow.account_id)
        .await
        .unwrap_or_else(|e| panic!("{id}: access_token: {e:?}"));
    let json = serde_json::to_string(&status).unwrap();
    assert!(
        !json.contains(token.expose_secret()),
        "{id}: status shows no token"
    );

    let sent = match &flow.send_url {
        Some(url) => {
            let request = reqwest::Client::new()
                .get(url)
                .header("user-agent", "generic/1.0")
                .build()
                .unwrap();
            let reply = svc
                .send(user, &id, &flow.account_id, request)
                .await
                .unwrap_or_else(|e| panic!("{id}: send: {e:?}"));
            assert!(
                reply.status().is_success(),
                "{id}: send: {}",
                reply.status()
            );
            Some(reply.status())
        }
        None => None,
    };

    clock.advance(chrono::TimeDelta::from_std(flow.refresh_after).unwrap());
    let refreshed = if flow.provider.capabilities().refresh {
        let view = svc
            .refresh(user, &id, &flow.account_id)
            .await
            .unwrap_or_else(|e| panic!("{id}: refresh: {e:?}"));
        assert_eq!(view.status, IntegrationStatus::Connected, "{id}");
        Some(view)
    } else {
        match svc.refresh(user, &id, &flow.account_id).await {
            Err(Error::Provider(ProviderError::Unsupported { .. })) => None,
            other => panic!("{id}: refresh without support should be Unsupported: {other:?}"),
        }
    };

    svc.disconnect(user, &id, &flow.account_id)
        .await
        .unwrap_or_else(|e| panic!("{id}: disconnect: {e:?}"));
    assert!(
        svc.status(user).await.unwrap().is_empty(),
        "{id}: disconnected"
    );
    FlowReport {
        connected: conn.account,
        refreshed,
        sent,
    }
}
