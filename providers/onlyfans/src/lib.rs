//! OnlyFans accounts through a **third-party connection gateway**. This is **not an
//! official OnlyFans API**: OnlyFans publishes no OAuth or developer API. This crate
//! depends on a gateway vendor (by default OFAuth, `https://api.ofauth.com`) that holds
//! the user's OnlyFans session on your behalf; its availability, terms and wire format
//! are that vendor's, and may change. Check the vendor's and OnlyFans' terms before use.
//!
//! [`OnlyFansProvider`] fits the gateway's hosted "link" flow into the
//! [`Provider`] trait. It is not OAuth, and it does not pretend to be:
//!
//! - [`authorization_url`](Provider::authorization_url) `POST`s `{api}/v2/link/init`
//!   with `{"redirectUrl": <redirect_uri>, "clientReferenceId": <state>}` and returns the
//!   hosted link page `url` from the reply (the reason it is async). Scopes and PKCE do
//!   not exist here and are ignored.
//! - The user comes back to
//!   `<redirect_uri>?status=success&connection_id=conn_…&client_reference_id=<state>`;
//!   the gateway sends no `state` parameter, it echoes `clientReferenceId` as
//!   `client_reference_id`, and [`read_callback`](Provider::read_callback) reads the
//!   state from there. A cancelled link comes back as `status=cancelled&step=<step>`
//!   ([`CallbackOutcome::Cancelled`]) and a failed one as `status=error&error_code=<code>`
//!   ([`CallbackOutcome::Failed`]) (<https://docs.ofauth.com/api-reference/link/init>,
//!   "Redirect Query Parameters"). [`exchange_code`](Provider::exchange_code) verifies the
//!   connection with `GET {api}/v2/access/self` and returns a [`TokenSet`] whose
//!   `access_token` **is the connection id**: no refresh token, no expiry. The account id
//!   is the OnlyFans user id, from [`fetch_profile`](Provider::fetch_profile).
//! - Every request carries the API key in the `apikey` header; account calls add
//!   `x-connection-id`. [`authorize_request`](Provider::authorize_request) attaches
//!   both, instead of a Bearer token.
//! - [`refresh`](Provider::refresh) is [`ProviderError::Unsupported`] (there is nothing
//!   to refresh); an expired or deleted gateway connection (`SESSION_EXPIRED`,
//!   `SESSION_NOT_PROVIDED`) on any call is [`ProviderError::InvalidGrant`]: the user
//!   must link again. On a request made through `Integrations::send`, such an answer
//!   marks the account `needs_reconnect` ([`Provider::api_error`]).
//! - [`revoke`](Provider::revoke) deletes the connection
//!   (`DELETE {api}/v2/account/connections/{id}`), which is what stops the gateway's
//!   billing; [`revoke_required`](Provider::revoke_required) is `true`, so a disconnect
//!   the gateway did not confirm is retried and reported, and the account is kept.
//!
//! Every name of that contract (base URL, header names, callback parameter, paths) is
//! configurable on [`OnlyFansConfigBuilder`]. See `docs/providers.md` in the repository.
//!
//! [`fetch_profile`](Provider::fetch_profile) also stores, under `platform_aliases` of the
//! metadata, the [`connection_alias`] of the connection (`connection-sha256:` and the hex
//! SHA-256 of its id: the id is a credential and is never stored in the clear), by which a
//! gateway webhook naming the connection finds the account.
//!
//! # Webhooks
//!
//! [`Provider::read_webhook`] reads the gateway's webhooks, to be passed in by the host's
//! route through
//! [`Integrations::handle_platform_webhook`](integrations_core::Integrations::handle_platform_webhook).
//! Setup: register the host's webhook URL with the gateway and put its signing secret in
//! **`ONLYFANS_WEBHOOK_SECRETS`** (comma-separated: several during a rotation, or one per
//! gateway; the builder's `webhook_secret`). Without one, every webhook is refused with
//! [`WebhookRefusal::NotConfigured`]. `ONLYFANS_WEBHOOK_TOLERANCE_SECS` (default 300)
//! bounds the Svix timestamp.
//!
//! Only `POST` on the events route is taken (`GET` → [`WebhookRefusal::Method`], the
//! data-deletion route → [`WebhookRefusal::Unsupported`]). The signature is checked
//! (over the raw body, in constant time) before the body is read. The dialect is told by
//! its header:
//!
//! - **OFAuth** (`svix-signature`, or `webhook-signature`): OFAuth's dashboard
//!   (Webhooks: URL, events, secret) gives a `whsec_…` secret. Verified as Svix /
//!   Standard Webhooks (`svix-id`, `svix-timestamp`, `svix-signature`, as OFAuth's
//!   official SDKs check them) with every configured secret that reads as `whsec_…`; the
//!   `svix-id` is the event id. OFAuth's docs also describe an `OFAuth-Signature` header
//!   and an `x-signature` keyed with the API key; those disagree with the SDKs, which are
//!   followed, and are refused. The body's event name is read from `eventType` (SDK types)
//!   or `type` (docs), the OnlyFans user id from `data.connection.platformUserId` or
//!   `data.connection.userData.id`, since which shape is live is unconfirmed.
//!   - `connection.expired`, and `connection.updated` with status `expired` or
//!     `awaiting_2fa`: [`PlatformAction::SessionLost`](integrations_core::PlatformAction::SessionLost)
//!     (the account needs reconnecting; its connection id is kept);
//!   - `connection.updated` with status `active`: [`PlatformAction::Restored`](integrations_core::PlatformAction::Restored);
//!   - anything else (`connection.created`, `rules.updated`, ...): acknowledged, ignored.
//!
//!   The account is found by its OnlyFans user id, then by the connection's alias.
//! - **OnlyFansAPI.com** (`Signature`): the console's (or `POST /api/webhooks`) signing
//!   secret, any string; the header is the hex HMAC-SHA256 of the raw body keyed with its
//!   bytes. There is no timestamp and no event id: a delivery is deduplicated by the
//!   SHA-256 of its body, so a replay of an event never received before is accepted, and
//!   a later event with a body identical to an earlier one counts as its replay while the
//!   earlier receipt is kept (`ServiceConfig::webhook_receipt_retention`, 7 days by
//!   default).
//!   `accounts.session_expired`, `accounts.authentication_failed`,
//!   `accounts.otp_code_required` and `accounts.face_otp_required` are `SessionLost`,
//!   `accounts.reconnected` is `Restored`, anything else is ignored. The account is found
//!   by the alias of `account_id` (with OnlyFansAPI.com as the gateway, its account id is
//!   the connection id this provider stores). **Unconfirmed:** whether
//!   `accounts.session_expired` means the gateway already recovered the session by itself
//!   (one integration reads it so); it is treated as a lost session, and a later
//!   `accounts.reconnected` restores the account.
//! - Neither header: [`WebhookRefusal::MissingSignature`] (`svix-signature`).
//!
//! # Example
//!
//! ```no_run
//! use integrations_core::{AuthorizationRequest, ClientSecret, Provider};
//! use integrations_onlyfans::{OnlyFansConfig, OnlyFansProvider};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), integrations_core::ProviderError> {
//! let config = OnlyFansConfig::builder()
//!     .api_key(ClientSecret::new("gateway-api-key"))
//!     .redirect_uri("https://app.example.com/integrations/onlyfans/callback")
//!     .build()?;
//! // Or: OnlyFansConfig::from_env()?, reading ONLYFANS_API_KEY, ONLYFANS_REDIRECT_URI
//! // and optionally ONLYFANS_API_BASE_URL.
//! let onlyfans = OnlyFansProvider::new(config)?;
//!
//! // Opens a link session at the gateway and returns its hosted page.
//! let url = onlyfans
//!     .authorization_url(&AuthorizationRequest {
//!         state: "a-fresh-random-state".into(),
//!         pkce_challenge: None,
//!         scopes: Vec::new(),
//!     })
//!     .await?;
//! println!("send the user to {url}");
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod api;
mod config;
mod error;
mod webhooks;

pub use api::OnlyFansMetadata;
pub use config::{
    CONNECTION_ID_PLACEHOLDER, DEFAULT_API_BASE_URL, DEFAULT_API_KEY_HEADER,
    DEFAULT_CALLBACK_PARAM, DEFAULT_CONNECTION_ID_HEADER, DEFAULT_CONNECTION_PATH,
    DEFAULT_LINK_INIT_PATH, DEFAULT_SELF_PATH, DEFAULT_STATE_PARAM, LEGACY_GATEWAY_URL_VAR,
    OnlyFansConfig, OnlyFansConfigBuilder,
};
pub use webhooks::{CONNECTION_ALIAS_PREFIX, ONLYFANSAPI_SIGNATURE_HEADER, connection_alias};

use async_trait::async_trait;
use integrations_core::client::{ApiClient, metadata_json};
use integrations_core::http::CappedResponse;
use integrations_core::platform_webhooks::{PlatformWebhook, WebhookRefusal, WebhookRequest};
use integrations_core::secret::{AccessToken, RefreshToken};
use integrations_core::{
    AuthorizationRequest, CallbackOutcome, CallbackParams, CallbackReply, Capabilities,
    CodeExchange, PkceSupport, Profile, Provider, ProviderError, ProviderId, RefreshRequest,
    TokenSet,
};
use url::Url;

/// The provider id: `"onlyfans"`.
pub const PROVIDER_ID: &str = "onlyfans";

/// OnlyFans through a third-party connection gateway, as a [`Provider`]. Not an
/// official OnlyFans API; see the crate docs.
#[derive(Debug)]
pub struct OnlyFansProvider {
    id: ProviderId,
    api: api::Api,
}

impl OnlyFansProvider {
    /// Builds the provider and its HTTP client (redirects off, the configured timeout,
    /// body cap and `User-Agent`).
    pub fn new(config: OnlyFansConfig) -> Result<Self, ProviderError> {
        let client = ApiClient::new(&config.client)?;
        let id = ProviderId::new(PROVIDER_ID)
            .map_err(|e| ProviderError::Config(format!("onlyfans: {e}")))?;
        Ok(Self {
            id,
            api: api::Api { client, config },
        })
    }

    /// Reads [`OnlyFansConfig::from_env`] and builds the provider.
    pub fn from_env() -> Result<Self, ProviderError> {
        Self::new(OnlyFansConfig::from_env()?)
    }

    /// The configuration.
    pub fn config(&self) -> &OnlyFansConfig {
        &self.api.config
    }
}

#[async_trait]
impl Provider for OnlyFansProvider {
    fn id(&self) -> &ProviderId {
        &self.id
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            pkce: PkceSupport::Unsupported,
            refresh: false,
            revoke: true,
            min_token_age_for_refresh: None,
            refresh_uses_access_token: false,
        }
    }

    /// Opens a hosted link session (`POST {api}/v2/link/init`) and returns its URL.
    /// `request.scopes` and PKCE do not apply to the gateway and are ignored.
    async fn authorization_url(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<Url, ProviderError> {
        if request.state.is_empty() {
            return Err(ProviderError::Config(
                "onlyfans: the link session needs a state (sent as clientReferenceId)".into(),
            ));
        }
        self.api.link_init(&request.state).await
    }

    /// OFAuth's redirect: the state is `client_reference_id` (the configured
    /// [`state_param`](OnlyFansConfig::state_param)); `status=success` is authorized,
    /// `status=cancelled` a cancellation and `status=error` a failure with its
    /// `error_code`. A redirect without `status` is read the OAuth way (`error=`), as
    /// other gateways send it.
    fn read_callback<'a>(&self, params: &'a CallbackParams) -> CallbackReply<'a> {
        let outcome = match params.get("status") {
            Some("success") => CallbackOutcome::Authorized,
            Some("cancelled") => CallbackOutcome::Cancelled,
            Some("error") => CallbackOutcome::failed(params.get("error_code").unwrap_or("error")),
            Some(other) => CallbackOutcome::failed(other),
            None => CallbackReply::oauth2(params).outcome,
        };
        CallbackReply {
            state: params.get(self.config().state_param()),
            outcome,
        }
    }

    /// Reads the connection id from the callback, checks it with the gateway
    /// (`GET {api}/v2/access/self`) and returns it as the access token.
    async fn exchange_code(&self, exchange: CodeExchange<'_>) -> Result<TokenSet, ProviderError> {
        let connection_id = exchange.params.require(self.config().callback_param())?;
        // Verifies the connection before it is stored.
        self.api.access_self(connection_id).await?;
        Ok(TokenSet {
            access_token: AccessToken::new(connection_id),
            refresh_token: None,
            expires_in: None,
            refresh_expires_in: None,
            token_type: None,
            scopes: Vec::new(),
        })
    }

    /// Always [`ProviderError::Unsupported`]: a gateway connection has no refresh token
    /// and no expiry; when the gateway's session dies, calls answer `InvalidGrant` and
    /// the user links again.
    async fn refresh(&self, _request: RefreshRequest<'_>) -> Result<TokenSet, ProviderError> {
        Err(ProviderError::Unsupported {
            operation: "refresh",
        })
    }

    /// `GET {api}/v2/access/self` into [`OnlyFansMetadata`], with the connection's
    /// [`connection_alias`] under `platform_aliases` (for the gateway's webhooks).
    async fn fetch_profile(&self, access_token: &AccessToken) -> Result<Profile, ProviderError> {
        let connection_id = access_token.expose_secret();
        let mut metadata = self.api.access_self(connection_id).await?;
        metadata.platform_aliases = vec![connection_alias(connection_id)];
        Ok(Profile {
            account_id: metadata.account_id.clone(),
            username: Some(metadata.username.clone()),
            metadata: metadata_json(&metadata)?,
        })
    }

    /// Deletes the gateway connection (`DELETE {api}/v2/account/connections/{id}`). A
    /// connection the gateway no longer has counts as deleted. Without a connection id
    /// there is nothing to delete and this returns `Ok(())`.
    async fn revoke(
        &self,
        access_token: Option<&AccessToken>,
        _refresh_token: Option<&RefreshToken>,
    ) -> Result<(), ProviderError> {
        match access_token {
            Some(connection) => self.api.delete_connection(connection.expose_secret()).await,
            None => Ok(()),
        }
    }

    /// `true`: the gateway keeps a connection, and bills it, until it is deleted there.
    fn revoke_required(&self) -> bool {
        true
    }

    /// `true`: a delete ends one gateway connection, nothing else.
    fn revoke_is_per_grant(&self) -> bool {
        true
    }

    /// Reads the gateway's error body on a request made through `Integrations::send`:
    /// `SESSION_EXPIRED` / `SESSION_NOT_PROVIDED` are [`ProviderError::InvalidGrant`].
    fn api_error(&self, response: &CappedResponse) -> Option<ProviderError> {
        let key = self.config().client().client_secret().expose_secret();
        error::check(response, &[key]).err()
    }

    /// The gateway's webhooks (see the crate docs, "Webhooks"): `POST` to the events
    /// route, signed with a secret of `ONLYFANS_WEBHOOK_SECRETS`; OFAuth's Svix-signed
    /// `connection.*` events and OnlyFansAPI.com's `accounts.*` events.
    fn read_webhook(
        &self,
        request: &WebhookRequest<'_>,
    ) -> Result<PlatformWebhook, WebhookRefusal> {
        webhooks::read(&self.api.config, request)
    }

    /// Adds the API key header and the connection id header (the access token is the
    /// connection id). No `Authorization` header is sent.
    fn authorize_request(
        &self,
        request: reqwest::RequestBuilder,
        access_token: &AccessToken,
    ) -> reqwest::RequestBuilder {
        self.api
            .authorize(request, Some(access_token.expose_secret()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_types_are_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<OnlyFansProvider>();
        check::<OnlyFansConfig>();
        check::<OnlyFansConfigBuilder>();
        check::<OnlyFansMetadata>();
    }
}
