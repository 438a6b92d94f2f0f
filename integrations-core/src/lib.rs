//! Connect your users' accounts on OAuth platforms, keep their tokens encrypted and fresh,
//! and disconnect them cleanly.
//!
//! This crate holds what every platform and every database shares:
//!
//! - [`Provider`]: what a platform crate implements (`integrations-instagram`, ...).
//! - [`TokenStore`]: what a persistence backend implements ([`MemoryStore`] here;
//!   `integrations-storage-diesel` for PostgreSQL and SQLite). A store only ever receives
//!   [`SealedSecret`]s.
//! - [`TokenCipher`]: XChaCha20-Poly1305 sealing with a key ring and per-row, per-column
//!   associated data.
//! - [`Integrations`]: the connect → callback → refresh → disconnect state machine, with
//!   single-flight refresh through store leases, audit events and [`ConnectionEvent`]s.
//! - [`status`]: [`IntegrationStatus`] and the expiry rules as pure functions.
//!
//! # Example
//!
//! The whole life of a connection. A scripted provider (feature `testing`) stands in for
//! a platform crate here; with a real one only the registration line changes.
//!
//! ```
//! use std::sync::Arc;
//! use integrations_core::testing::ScriptedProvider;
//! use integrations_core::{
//!     CallbackParams, EncryptionKey, Integrations, IntegrationStatus, MemoryStore,
//!     TokenCipher, UserId,
//! };
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), integrations_core::Error> {
//! let integrations = Integrations::builder(
//!     Arc::new(MemoryStore::new()),
//!     // In production: TokenCipher::from_env()? reads TOKEN_ENCRYPTION_KEY.
//!     TokenCipher::new(EncryptionKey::generate()),
//! )
//! .provider(Arc::new(ScriptedProvider::new("reddit")))
//! .build();
//! let user = UserId(42);
//!
//! // 1. Send the user to the platform.
//! let start = integrations
//!     .connect(user, "reddit", Some("/integrations".into()))
//!     .await?;
//! assert!(start.auth_url.as_str().contains(&start.state));
//!
//! // 2. The platform redirects back with a code and the state.
//! let params = CallbackParams::from_pairs([("code", "spez"), ("state", start.state.as_str())]);
//! let connected = integrations.callback(user, "reddit", &params).await?;
//! assert_eq!(connected.account.username.as_deref(), Some("user_spez"));
//! assert_eq!(connected.redirect_url.as_deref(), Some("/integrations"));
//!
//! // 3. Status never shows a token.
//! let status = integrations.status(user).await?;
//! assert_eq!(status[0].status, IntegrationStatus::Connected);
//!
//! // 4. Refresh (single-flight across workers).
//! integrations.refresh(user, "reddit", "spez").await?;
//!
//! // 5. Disconnect: revoke at the platform, delete the row.
//! integrations.disconnect(user, "reddit", "spez").await?;
//! assert!(integrations.status(user).await?.is_empty());
//! # Ok(())
//! # }
//! ```
//!
//! # Glossary
//!
//! - **Account**: one platform account of one user, stored as an [`AccountRecord`] (one
//!   `oauth_accounts` row, with its sealed tokens). A user may have several per platform.
//! - **Integration**: an account as a user sees it: [`IntegrationView`] (what
//!   [`Integrations::status`] lists and the REST API returns; never a token).
//! - [`StoredStatus`]: the status a store keeps (`active`, `needs_reconnect`), changed only
//!   by the state machine's transitions. [`IntegrationStatus`]: the status shown
//!   (`connected`, `expired`, `needs_reconnect`, ...), computed from the stored one, the
//!   token expiry and the clock ([`compute_status`]).
//! - [`ConnectStart`]: what [`Integrations::connect`] returns (the URL to send the user to,
//!   and the state). [`Connected`]: what [`Integrations::callback`] returns once the account
//!   is stored (the [`IntegrationView`], where to send the user back, and whether it was an
//!   authorization again).
//! - **Connection event** ([`ConnectionEvent`]): a change of an account, recorded by the
//!   store with the change ([`events`]); delivered as a signed webhook by
//!   [`webhooks::Deliverer`].
//! - **Audit event** ([`AuditEvent`]): who did what with which outcome, for the user's
//!   history; not delivered anywhere.
//! - [`Error::ConnectRateLimited`] (code `rate_limited`): this library refused a
//!   `connect` because the user started too many. [`ProviderError::RateLimited`] (code
//!   `provider_rate_limited`): the platform throttled a call.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod client;
pub mod clock;
pub mod crypto;
pub mod engine;
pub mod error;
pub mod events;
pub mod generic;
pub mod health;
pub mod http;
pub mod memory;
pub mod metrics;
pub mod oauth;
pub mod platform_webhooks;
pub mod provider;
pub mod secret;
pub mod service;
pub mod status;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod webhooks;

pub use clock::{Clock, ManualClock, SystemClock};
pub use crypto::{CryptoError, EncryptionKey, SecretContext, TokenCipher};
pub use error::{Error, Result};
pub use events::{ConnectionEvent, ConnectionEventKind, EventId, EventPosition, StoredEvent};
pub use memory::MemoryStore;
pub use platform_webhooks::{
    AccountMatch, PlatformAction, PlatformEvent, PlatformWebhook, WebhookAnswer, WebhookReceipt,
    WebhookRefusal, WebhookRequest, WebhookRoute,
};
pub use provider::{
    AuthorizationRequest, CallbackOutcome, CallbackParams, CallbackReply, Capabilities,
    CodeExchange, InvalidProviderId, PkceChallenge, PkceSupport, Profile, Provider, ProviderError,
    ProviderId, RefreshRequest, TokenSet,
};
pub use secret::{AccessToken, ClientSecret, PkceVerifier, RefreshToken, SealedSecret};
pub use service::{
    ConnectStart, Connected, FAILED_CALLBACK_AUDIT_LIMIT, HealthOverview, IntegrationView,
    Integrations, IntegrationsBuilder, PlatformOverview, RefreshLimits, RefreshReport, Refresher,
    RefresherConfig, SendPolicy, ServiceConfig,
};
pub use status::{IntegrationStatus, compute_status, is_token_expired};
pub use store::{
    AccountCount, AccountRecord, AuditAction, AuditEvent, DeletedUserData, Delivery,
    DeliveryOutcome, DeliveryRecord, DeliveryStatus, Lease, LimitedAppend, NewAccount,
    NewAuditEvent, PendingAuthorization, StateHash, StoreError, StoredStatus, TokenStore, Upserted,
    UserId,
};
