//! [`Integrations`]: the connect → callback → refresh → disconnect state machine.

use crate::clock::{Clock, SystemClock};
use crate::crypto::{SecretContext, TokenCipher};
use crate::error::{Error, Result};
use crate::oauth::{generate_pkce_verifier, generate_state, pkce_challenge};
use crate::provider::{
    AuthorizationRequest, CallbackOutcome, CallbackParams, CodeExchange, PkceSupport, Provider,
    ProviderError, ProviderId, RefreshRequest, TokenSet,
};
use crate::secret::{AccessToken, PkceVerifier, RefreshToken, SealedSecret};
use crate::status::IntegrationStatus;
use crate::status::{LifecycleEvent, account_status, transition};
use crate::store::{
    AccountCount, AccountRecord, AccountStatus, AuditAction, DeletedUserData, Lease, NewAccount,
    NewAuditEvent, PendingAuthorization, StateHash, StoreError, TokenStore, Upserted, UserId,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use url::Url;

/// Concurrency permits a refresher task holds while it calls the platform.
pub(crate) type Slot = Vec<tokio::sync::OwnedSemaphorePermit>;

/// Audit events a refresher pass collects and appends in one batch.
pub(crate) type AuditBuffer = Mutex<Vec<NewAuditEvent>>;

/// Table name used in the associated data of sealed account tokens.
pub const ACCOUNTS_TABLE: &str = "oauth_accounts";
/// Table name used in the associated data of sealed PKCE verifiers.
pub const PENDING_TABLE: &str = "oauth_pending_authorizations";

/// Tunables of the service. The defaults suit most hosts.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// How long a started connection waits for its callback (default 10 minutes).
    pub pending_ttl: Duration,
    /// `connect` calls allowed per user per [`connect_window`](Self::connect_window)
    /// (default 10; `usize::MAX` switches the limit off). Counted from the store's
    /// `ConnectStarted` audit events, so instances sharing a store share the limit
    /// (concurrent connects of one user may each see the count just under it).
    pub connect_limit: usize,
    /// The rate-limit window (default 5 minutes).
    pub connect_window: Duration,
    /// How long a refresh lease lasts if its holder dies (default 60 seconds).
    pub lease_ttl: Duration,
    /// How long a refresh waits for another worker's lease (default 30 seconds).
    pub lease_wait: Duration,
    /// How often a waiting refresh polls the lease (default 25 ms).
    pub lease_poll: Duration,
    /// A refresh asked for within this time of a successful one, while the token is
    /// still valid, returns that result instead of calling the platform again
    /// (default 2 seconds).
    pub refresh_coalesce: Duration,
    /// How long `status` results are cached per user (default 5 minutes; zero disables
    /// the cache). Writes through this instance invalidate the user's entry at once;
    /// writes by other instances sharing the store show after at most this long.
    pub status_cache_ttl: Duration,
    /// Retry policy of [`Integrations::send`].
    pub send: SendPolicy,
}

/// How [`Integrations::send`] retries.
#[derive(Debug, Clone)]
pub struct SendPolicy {
    /// Attempts in all, for network errors and 5xx on idempotent requests (default 3).
    pub max_attempts: u32,
    /// First backoff; doubled each retry, with up to 50% random jitter added (default
    /// 200 ms).
    pub backoff_base: Duration,
    /// The longest `Retry-After` honoured on 429; longer waits return the rate-limit error
    /// (default 60 seconds).
    pub max_retry_wait: Duration,
    /// Refresh before sending when the token expires within this time (default 60 s).
    pub refresh_skew: Duration,
}

impl Default for SendPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff_base: Duration::from_millis(200),
            max_retry_wait: Duration::from_secs(60),
            refresh_skew: Duration::from_secs(60),
        }
    }
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            pending_ttl: Duration::from_secs(600),
            connect_limit: 10,
            connect_window: Duration::from_secs(300),
            lease_ttl: Duration::from_secs(60),
            lease_wait: Duration::from_secs(30),
            lease_poll: Duration::from_millis(25),
            refresh_coalesce: Duration::from_secs(2),
            status_cache_ttl: Duration::from_secs(300),
            send: SendPolicy::default(),
        }
    }
}

/// What `connect` returns: where to send the user, and the state (the design's
/// `{ authUrl, state }`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectStart {
    /// The platform's authorization URL.
    pub auth_url: Url,
    /// The one-time state carried by the URL.
    pub state: String,
}

/// One connection as shown to its user: never a token.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationView {
    /// The platform.
    pub provider: ProviderId,
    /// The platform's account id.
    pub provider_account_id: String,
    /// The handle, from the stored metadata.
    pub username: Option<String>,
    /// Computed status.
    pub status: IntegrationStatus,
    /// `status == Connected` (the design's `isConnected`).
    pub is_connected: bool,
    /// Access-token expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Granted scopes, space-separated.
    pub scope: Option<String>,
    /// Platform metadata exactly as `fetch_profile` returned it.
    pub metadata: serde_json::Value,
    /// The last refresh failure, user-safe.
    pub last_error: Option<String>,
    /// Connection time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl IntegrationView {
    /// The view of a stored record at `now`.
    pub fn from_record(record: &AccountRecord, now: DateTime<Utc>) -> Self {
        let status = account_status(record, now);
        Self {
            provider: record.provider.clone(),
            provider_account_id: record.provider_account_id.clone(),
            username: record
                .metadata
                .get("username")
                .and_then(|u| u.as_str())
                .map(str::to_owned),
            status,
            is_connected: status == IntegrationStatus::Connected,
            expires_at: record.expires_at,
            scope: record.scope.clone(),
            metadata: record.metadata.clone(),
            last_error: record.last_error.clone(),
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

/// What a successful callback gives.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The connected account.
    pub account: IntegrationView,
    /// Where the host wanted the user sent afterwards (from `connect`).
    pub redirect_url: Option<String>,
    /// Whether an existing connection was re-authorized rather than created.
    pub reauthorized: bool,
}

/// The kinds of [`ConnectionEvent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionEventKind {
    /// A new account was connected.
    Connected,
    /// An existing account was authorized again.
    Reauthorized,
    /// Tokens were refreshed.
    Refreshed,
    /// A refresh failed transiently; sent on the first failure after a success.
    RefreshFailed {
        /// The error code.
        code: &'static str,
    },
    /// The grant is dead; sent when the account enters that state.
    NeedsReconnect,
    /// The account was disconnected.
    Disconnected,
}

/// A change of a connection, delivered to [`Integrations::subscribe`]rs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionEvent {
    /// What happened.
    pub kind: ConnectionEventKind,
    /// The user.
    pub user_id: UserId,
    /// The platform.
    pub provider: ProviderId,
    /// The platform account.
    pub provider_account_id: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// Builds an [`Integrations`] service.
pub struct IntegrationsBuilder {
    store: Arc<dyn TokenStore>,
    cipher: TokenCipher,
    providers: HashMap<ProviderId, Arc<dyn Provider>>,
    clock: Arc<dyn Clock>,
    config: ServiceConfig,
    http: Option<reqwest::Client>,
}

impl fmt::Debug for IntegrationsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntegrationsBuilder")
            .field("providers", &self.providers.keys().collect::<Vec<_>>())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl IntegrationsBuilder {
    /// Registers a provider (a later one with the same id replaces an earlier one).
    pub fn provider(mut self, provider: Arc<dyn Provider>) -> Self {
        self.providers.insert(provider.id().clone(), provider);
        self
    }

    /// Injects a clock (tests use [`ManualClock`](crate::clock::ManualClock)).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Replaces the tunables.
    pub fn config(mut self, config: ServiceConfig) -> Self {
        self.config = config;
        self
    }

    /// The HTTP client [`Integrations::send`] uses (default: redirects off, 30 s timeout).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Builds the service.
    pub fn build(self) -> Integrations {
        let status_cache = (!self.config.status_cache_ttl.is_zero()).then(|| {
            moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(self.config.status_cache_ttl)
                .build()
        });
        let http = self.http.unwrap_or_else(|| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default()
        });
        let (events, _) = broadcast::channel(1024);
        let mut instance = [0u8; 8];
        rand::fill(&mut instance[..]);
        Integrations {
            inner: Arc::new(Inner {
                store: self.store,
                cipher: self.cipher,
                providers: self.providers,
                clock: self.clock,
                config: self.config,
                events,
                inflight: Mutex::new(HashMap::new()),
                gauged: Mutex::new(Default::default()),
                instance_id: hex::encode(instance),
                status_cache,
                http,
            }),
        }
    }
}

/// The integrations service (the design's `IntegrationsService`). Cheap to clone; share one
/// per process.
#[derive(Clone)]
pub struct Integrations {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn TokenStore>,
    cipher: TokenCipher,
    providers: HashMap<ProviderId, Arc<dyn Provider>>,
    clock: Arc<dyn Clock>,
    config: ServiceConfig,
    events: broadcast::Sender<ConnectionEvent>,
    inflight: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
    /// The connection gauges set by the last `record_connection_gauges` (set to zero when
    /// their group disappears).
    gauged: Mutex<crate::metrics::Gauged>,
    instance_id: String,
    status_cache: Option<moka::future::Cache<UserId, Arc<Vec<AccountRecord>>>>,
    http: reqwest::Client,
}

impl fmt::Debug for Integrations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Integrations")
            .field(
                "providers",
                &self.inner.providers.keys().collect::<Vec<_>>(),
            )
            .field("store", &self.inner.store)
            .field("cipher", &self.inner.cipher)
            .field("instance", &self.inner.instance_id)
            .finish_non_exhaustive()
    }
}

fn token_context<'a>(
    provider: &'a ProviderId,
    account: &'a str,
    column: &'a str,
) -> SecretContext<'a> {
    SecretContext {
        table: ACCOUNTS_TABLE,
        provider: provider.as_str(),
        row: account,
        column,
    }
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn join_scopes(scopes: &[String]) -> Option<String> {
    (!scopes.is_empty()).then(|| scopes.join(" "))
}

impl Integrations {
    /// Starts building a service over a store and a cipher.
    pub fn builder(store: Arc<dyn TokenStore>, cipher: TokenCipher) -> IntegrationsBuilder {
        IntegrationsBuilder {
            store,
            cipher,
            providers: HashMap::new(),
            clock: Arc::new(SystemClock),
            config: ServiceConfig::default(),
            http: None,
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn TokenStore> {
        &self.inner.store
    }

    /// The cipher.
    pub fn cipher(&self) -> &TokenCipher {
        &self.inner.cipher
    }

    /// The registered provider ids, sorted.
    pub fn provider_ids(&self) -> Vec<ProviderId> {
        let mut ids: Vec<_> = self.inner.providers.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// A registered provider.
    pub fn provider(&self, id: &str) -> Result<&Arc<dyn Provider>> {
        self.inner
            .providers
            .iter()
            .find(|(k, _)| k.as_str() == id)
            .map(|(_, p)| p)
            .ok_or_else(|| Error::UnknownProvider(id.chars().take(50).collect()))
    }

    /// Subscribes to connection events (a lagging receiver loses the oldest ones).
    pub fn subscribe(&self) -> broadcast::Receiver<ConnectionEvent> {
        self.inner.events.subscribe()
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// Drops the cached status of a user (every write through this instance does it).
    pub async fn invalidate_status(&self, user: UserId) {
        if let Some(cache) = &self.inner.status_cache {
            cache.invalidate(&user).await;
        }
    }

    /// Counts the store's accounts by platform and stored status
    /// ([`TokenStore::count_accounts`], one aggregate query) and sets the gauges
    /// `integrations_connections` and `integrations_connections_past_expiry` (labels
    /// `provider`, `status`); a group that has disappeared since the last call is set to
    /// zero. Returns the counts.
    ///
    /// A [`Refresher`](crate::Refresher) calls it after every pass; hosts without one can
    /// call it on their own schedule.
    pub async fn record_connection_gauges(&self) -> Result<Vec<AccountCount>> {
        let counts = self.inner.store.count_accounts(self.now()).await?;
        let mut gauged = self.inner.gauged.lock().unwrap_or_else(|e| e.into_inner());
        crate::metrics::connection_gauges(&counts, &mut gauged);
        Ok(counts)
    }

    pub(crate) fn config(&self) -> &ServiceConfig {
        &self.inner.config
    }

    pub(crate) fn now_pub(&self) -> DateTime<Utc> {
        self.now()
    }

    pub(crate) fn inner_http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub(crate) fn open_access_token(&self, record: &AccountRecord) -> Result<AccessToken> {
        self.open_tokens(record)?.0.ok_or(Error::NeedsReconnect)
    }

    async fn after_write(&self, kind: ConnectionEventKind, record: &AccountRecord) {
        self.invalidate_status(record.user_id).await;
        self.emit(kind, record);
    }

    fn emit(&self, kind: ConnectionEventKind, record: &AccountRecord) {
        let _ = self.inner.events.send(ConnectionEvent {
            kind,
            user_id: record.user_id,
            provider: record.provider.clone(),
            provider_account_id: record.provider_account_id.clone(),
            at: self.now(),
        });
    }

    /// Records an audit event: appended at once, or, with a buffer (a refresher pass),
    /// collected there and appended by the pass in one batch.
    async fn audit_via(
        &self,
        buffer: Option<&AuditBuffer>,
        user_id: UserId,
        provider: &ProviderId,
        account: Option<&str>,
        action: AuditAction,
        outcome: &str,
    ) {
        match buffer {
            Some(buffer) => buffer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(NewAuditEvent {
                    user_id,
                    provider: provider.clone(),
                    provider_account_id: account.map(str::to_owned),
                    action,
                    outcome: outcome.to_owned(),
                    at: self.now(),
                }),
            None => {
                self.audit(user_id, provider, account, action, outcome)
                    .await
            }
        }
    }

    async fn audit(
        &self,
        user_id: UserId,
        provider: &ProviderId,
        account: Option<&str>,
        action: AuditAction,
        outcome: &str,
    ) {
        let event = NewAuditEvent {
            user_id,
            provider: provider.clone(),
            provider_account_id: account.map(str::to_owned),
            action,
            outcome: outcome.to_owned(),
            at: self.now(),
        };
        if let Err(e) = self.inner.store.append_audit(event).await {
            tracing::warn!(error = %e, action = action.as_str(), "could not append an audit event");
        }
    }

    /// The per-user connect limit, counted from the store's `ConnectStarted` audit events
    /// so that every instance sharing the store enforces the same limit.
    async fn check_connect_rate(&self, user: UserId, now: DateTime<Utc>) -> Result<()> {
        let limit = self.inner.config.connect_limit;
        if limit == usize::MAX {
            return Ok(());
        }
        let window = to_chrono(self.inner.config.connect_window);
        // Events younger than the window count; one exactly `window` old has left it.
        let since = now - window + chrono::Duration::microseconds(1);
        let recent = self
            .inner
            .store
            .recent_audit_times(user, AuditAction::ConnectStarted, since, limit)
            .await?;
        if recent.len() >= limit {
            // The oldest of the `limit` newest leaves the window first.
            let retry_at = recent.last().map_or(now, |t| *t + window);
            return Err(Error::RateLimited { retry_at });
        }
        Ok(())
    }

    /// Starts connecting an account: checks the per-user rate limit, stores a pending
    /// authorization (state hashed, PKCE verifier sealed) and returns the platform URL.
    ///
    /// `redirect_url` is where the host wants the user sent after the callback; it is
    /// returned by [`callback`](Self::callback).
    #[tracing::instrument(level = "debug", skip(self, redirect_url), fields(user = user.0))]
    pub async fn connect(
        &self,
        user: UserId,
        provider_id: &str,
        redirect_url: Option<String>,
    ) -> Result<ConnectStart> {
        let provider = self.provider(provider_id)?.clone();
        let now = self.now();
        self.check_connect_rate(user, now).await?;
        crate::metrics::connect_started(provider.id().as_str());
        let state = generate_state();
        let state_hash = StateHash::of(&state);
        let verifier =
            (provider.capabilities().pkce != PkceSupport::Unsupported).then(generate_pkce_verifier);
        let request = AuthorizationRequest {
            state: state.clone(),
            pkce_challenge: verifier.as_ref().map(pkce_challenge),
            scopes: Vec::new(),
        };
        let auth_url = provider.authorization_url(&request).await?;
        let hash_hex = state_hash.to_hex();
        let sealed_verifier = verifier
            .as_ref()
            .map(|v| {
                self.inner.cipher.seal(
                    SecretContext {
                        table: PENDING_TABLE,
                        provider: provider.id().as_str(),
                        row: &hash_hex,
                        column: "pkce_verifier",
                    },
                    v.expose_secret(),
                )
            })
            .transpose()?;
        self.inner
            .store
            .put_pending(PendingAuthorization {
                state_hash,
                user_id: user,
                provider: provider.id().clone(),
                pkce_verifier: sealed_verifier,
                redirect_url,
                created_at: now,
                expires_at: now + to_chrono(self.inner.config.pending_ttl),
            })
            .await?;
        self.audit(
            user,
            provider.id(),
            None,
            AuditAction::ConnectStarted,
            "success",
        )
        .await;
        Ok(ConnectStart { auth_url, state })
    }

    /// Completes a connection from the platform's redirect.
    ///
    /// The state must exist, belong to `user` and this provider, and be unexpired; it is
    /// consumed whatever happens next. `error=access_denied` gives [`Error::Cancelled`].
    /// The code is exchanged, the profile fetched, and the account stored for `user`
    /// (re-authorizing it when the user already has it; refused when another user does).
    #[tracing::instrument(level = "debug", skip(self, params), fields(user = user.0))]
    pub async fn callback(
        &self,
        user: UserId,
        provider_id: &str,
        params: &CallbackParams,
    ) -> Result<Connection> {
        let provider = self.provider(provider_id)?.clone();
        let pid = provider.id().clone();
        let result = self.callback_inner(user, &provider, params).await;
        crate::metrics::connect_finished(
            pid.as_str(),
            result
                .as_ref()
                .map(|c| c.reauthorized)
                .map_err(|e| e.code()),
        );
        if let Err(e) = &result {
            self.audit(user, &pid, None, AuditAction::CallbackFailed, e.code())
                .await;
        }
        result
    }

    async fn callback_inner(
        &self,
        user: UserId,
        provider: &Arc<dyn Provider>,
        params: &CallbackParams,
    ) -> Result<Connection> {
        let reply = provider.read_callback(params);
        let refused = match reply.outcome {
            CallbackOutcome::Authorized => None,
            CallbackOutcome::Cancelled => Some(Error::Cancelled),
            CallbackOutcome::Failed { error } => Some(Error::AuthorizationFailed { error }),
        };
        let Some(state) = reply.state.filter(|s| !s.is_empty()) else {
            return Err(refused.unwrap_or(Error::InvalidState));
        };
        if state.len() > 512 {
            return Err(Error::InvalidState);
        }
        let state_hash = StateHash::of(state);
        let pending = self
            .inner
            .store
            .take_pending(&state_hash)
            .await?
            .ok_or(Error::InvalidState)?;
        if &pending.provider != provider.id() || pending.user_id != user {
            return Err(Error::StateMismatch);
        }
        let now = self.now();
        if now >= pending.expires_at {
            return Err(Error::StateExpired);
        }
        if let Some(refused) = refused {
            return Err(refused);
        }
        let verifier = match &pending.pkce_verifier {
            Some(sealed) => {
                let hash_hex = state_hash.to_hex();
                let plain = self.inner.cipher.open(
                    SecretContext {
                        table: PENDING_TABLE,
                        provider: provider.id().as_str(),
                        row: &hash_hex,
                        column: "pkce_verifier",
                    },
                    sealed,
                )?;
                Some(PkceVerifier::new(plain.as_str()))
            }
            None => None,
        };
        let tokens = provider
            .exchange_code(CodeExchange {
                params,
                pkce_verifier: verifier.as_ref(),
            })
            .await?;
        let profile = provider.fetch_profile(&tokens.access_token).await?;
        if profile.account_id.is_empty() || profile.account_id.len() > 255 {
            return Err(Error::Provider(ProviderError::Protocol {
                message: "the profile has no usable account id".into(),
                body: None,
            }));
        }
        let now = self.now();
        let (access, refresh) = self.seal_tokens(provider.id(), &profile.account_id, &tokens)?;
        let upserted = self
            .inner
            .store
            .upsert_account(NewAccount {
                user_id: user,
                provider: provider.id().clone(),
                provider_account_id: profile.account_id.clone(),
                access_token: Some(access),
                refresh_token: refresh,
                expires_at: tokens.expires_in.map(|d| now + to_chrono(d)),
                refresh_expires_at: tokens.refresh_expires_in.map(|d| now + to_chrono(d)),
                token_type: tokens.token_type.clone(),
                scope: join_scopes(&tokens.scopes),
                metadata: profile.metadata,
                now,
            })
            .await
            .map_err(|e| match e {
                StoreError::OwnedByAnotherUser => Error::AccountOwnedByAnotherUser,
                other => Error::Store(other),
            })?;
        let reauthorized = matches!(upserted, Upserted::Updated(_));
        let record = upserted.into_record();
        let (kind, action) = if reauthorized {
            (ConnectionEventKind::Reauthorized, AuditAction::Reauthorized)
        } else {
            (ConnectionEventKind::Connected, AuditAction::Connected)
        };
        self.audit(
            user,
            provider.id(),
            Some(&record.provider_account_id),
            action,
            "success",
        )
        .await;
        self.after_write(kind, &record).await;
        Ok(Connection {
            account: IntegrationView::from_record(&record, now),
            redirect_url: pending.redirect_url,
            reauthorized,
        })
    }

    fn seal_tokens(
        &self,
        provider: &ProviderId,
        account: &str,
        tokens: &TokenSet,
    ) -> Result<(SealedSecret, Option<SealedSecret>)> {
        let cipher = &self.inner.cipher;
        let access = cipher.seal(
            token_context(provider, account, "access_token"),
            tokens.access_token.expose_secret(),
        )?;
        let refresh = tokens
            .refresh_token
            .as_ref()
            .map(|r| {
                cipher.seal(
                    token_context(provider, account, "refresh_token"),
                    r.expose_secret(),
                )
            })
            .transpose()?;
        Ok((access, refresh))
    }

    /// Opens an account's stored tokens.
    fn open_tokens(
        &self,
        record: &AccountRecord,
    ) -> Result<(Option<AccessToken>, Option<RefreshToken>)> {
        let cipher = &self.inner.cipher;
        let pid = &record.provider;
        let account = record.provider_account_id.as_str();
        let access = record
            .access_token
            .as_ref()
            .map(|s| cipher.open(token_context(pid, account, "access_token"), s))
            .transpose()?
            .map(|p| AccessToken::new(p.as_str()));
        let refresh = record
            .refresh_token
            .as_ref()
            .map(|s| cipher.open(token_context(pid, account, "refresh_token"), s))
            .transpose()?
            .map(|p| RefreshToken::new(p.as_str()));
        Ok((access, refresh))
    }

    async fn owned_account(
        &self,
        user: UserId,
        provider: &ProviderId,
        provider_account_id: &str,
    ) -> Result<AccountRecord> {
        match self
            .inner
            .store
            .find_account(provider, provider_account_id)
            .await?
        {
            Some(r) if r.user_id == user => Ok(r),
            _ => Err(Error::NotFound),
        }
    }

    /// A usable access token for an account of `user`, refreshing it first when it is
    /// expired and refreshable.
    #[tracing::instrument(level = "debug", skip(self), fields(user = user.0))]
    pub async fn access_token(
        &self,
        user: UserId,
        provider_id: &str,
        provider_account_id: &str,
    ) -> Result<AccessToken> {
        let provider = self.provider(provider_id)?.clone();
        let mut record = self
            .owned_account(user, provider.id(), provider_account_id)
            .await?;
        if record.status == AccountStatus::NeedsReconnect {
            return Err(Error::NeedsReconnect);
        }
        if crate::status::is_token_expired(record.expires_at, self.now()) {
            record = self
                .refresh_record(&provider, record, None, false, None, None)
                .await?
                .0;
        }
        self.open_tokens(&record)?.0.ok_or(Error::NeedsReconnect)
    }

    /// Refreshes an account's tokens now.
    ///
    /// Single-flight: concurrent refreshes of one account, in this process or in others
    /// sharing the store, make one provider call; the others wait for it and return its
    /// result. `invalid_grant` marks the account `NeedsReconnect` and clears its tokens,
    /// unless the row changed meanwhile (a lost race, not a dead grant). Transient errors
    /// keep the old tokens.
    #[tracing::instrument(level = "debug", skip(self), fields(user = user.0))]
    pub async fn refresh(
        &self,
        user: UserId,
        provider_id: &str,
        provider_account_id: &str,
    ) -> Result<IntegrationView> {
        let provider = self.provider(provider_id)?.clone();
        let record = self
            .owned_account(user, provider.id(), provider_account_id)
            .await?;
        if !provider.capabilities().refresh {
            return Err(ProviderError::Unsupported {
                operation: "refresh",
            }
            .into());
        }
        if record.status == AccountStatus::NeedsReconnect {
            return Err(Error::NeedsReconnect);
        }
        let started = std::time::Instant::now();
        let result = self
            .refresh_record(&provider, record, None, false, None, None)
            .await;
        let outcome = match &result {
            Ok((_, true)) => "refreshed",
            Ok((_, false)) => "reused",
            Err(Error::NeedsReconnect) => "needs_reconnect",
            Err(e) if e.is_transient() => "transient_failure",
            Err(_) => "failure",
        };
        crate::metrics::refresh_outcome(provider.id().as_str(), outcome, started.elapsed());
        let (record, _) = result?;
        Ok(IntegrationView::from_record(&record, self.now()))
    }

    fn inflight_lock(&self, id: i64) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self
            .inner
            .inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        map.retain(|_, m| Arc::strong_count(m) > 1);
        map.entry(id).or_default().clone()
    }

    pub(crate) fn lease(&self) -> Lease {
        let now = self.now();
        let mut nonce = [0u8; 6];
        rand::fill(&mut nonce[..]);
        Lease {
            owner: format!("{}:{}", self.inner.instance_id, hex::encode(nonce)),
            now,
            until: now + to_chrono(self.inner.config.lease_ttl),
        }
    }

    /// Refreshes `observed` under the lease; returns the record as stored afterwards and
    /// whether this call refreshed it (`false`: another worker's result was reused).
    ///
    /// `owner`: a lease owner to claim with (the refresher's batch lease), else a fresh
    /// one; with an owner, a failed refresh leaves the lease for the caller to release.
    /// `force`: skip the `refresh_coalesce` shortcut (after a 401).
    pub(crate) async fn refresh_record(
        &self,
        provider: &Arc<dyn Provider>,
        observed: AccountRecord,
        owner: Option<&str>,
        force: bool,
        audit: Option<&AuditBuffer>,
        slot: Option<Slot>,
    ) -> Result<(AccountRecord, bool)> {
        let lock = self.inflight_lock(observed.id);
        let _guard = lock.lock().await;
        let started = tokio::time::Instant::now();
        let (current, lease) = loop {
            // A row `claim_due` just leased to `owner` is current as returned: claiming it
            // again would repeat the same UPDATE. Re-claim only when the lease has used
            // up half its time (a long wait for a concurrency permit), which extends it.
            if let Some(owner) = owner
                && observed.lease_owner.as_deref() == Some(owner)
                && observed.lease_until.is_some_and(|until| {
                    until - self.now() > to_chrono(self.inner.config.lease_ttl / 2)
                })
            {
                let mut lease = self.lease();
                lease.owner = owner.to_owned();
                break (observed.clone(), lease);
            }
            let mut lease = self.lease();
            if let Some(owner) = owner {
                lease.owner = owner.to_owned();
            }
            match self
                .inner
                .store
                .claim_for_refresh(observed.id, &lease)
                .await?
            {
                Some(current) => break (current, lease),
                None => {
                    if started.elapsed() >= self.inner.config.lease_wait {
                        return Err(Error::Busy);
                    }
                    tokio::time::sleep(self.inner.config.lease_poll).await;
                    // The account may have been deleted meanwhile.
                    if self.inner.store.get_account(observed.id).await?.is_none() {
                        return Err(Error::NotFound);
                    }
                }
            }
        };
        let now = self.now();
        let just_refreshed = !force
            && current
                .last_refresh_success_at
                .is_some_and(|t| now - t < to_chrono(self.inner.config.refresh_coalesce))
            && !crate::status::is_token_expired(current.expires_at, now);
        let result = if current.version != observed.version || just_refreshed {
            // Someone else wrote (refreshed, reconnected) while we waited: use their result.
            if current.status == AccountStatus::NeedsReconnect {
                Err(Error::NeedsReconnect)
            } else {
                Ok((current, false))
            }
        } else {
            self.refresh_leased(provider, current, &lease.owner, audit, slot)
                .await
        };
        // A failed refresh under a refresher's batch lease keeps the lease: the pass
        // releases it when it ends, so neither it nor another worker retries the account
        // within the same pass.
        let keep = owner.is_some() && result.is_err();
        // A successful refresh released the lease with its write.
        let released = matches!(result, Ok((_, true)));
        if !keep
            && !released
            && let Err(e) = self
                .inner
                .store
                .release_lease(observed.id, &lease.owner)
                .await
        {
            tracing::warn!(error = %e, account = observed.id, "could not release a refresh lease");
        }
        result
    }

    /// Calls the platform and stores the outcome. On success the write also releases the
    /// lease held by `owner` (one statement on database stores).
    async fn refresh_leased(
        &self,
        provider: &Arc<dyn Provider>,
        current: AccountRecord,
        owner: &str,
        audit: Option<&AuditBuffer>,
        slot: Option<Slot>,
    ) -> Result<(AccountRecord, bool)> {
        let (access, refresh) = self.open_tokens(&current)?;
        let now = self.now();
        let scopes: Vec<String> = current
            .scope
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        let outcome = provider
            .refresh(RefreshRequest {
                access_token: access.as_ref(),
                refresh_token: refresh.as_ref(),
                issued_at: current.token_issued_at.unwrap_or(current.created_at),
                now,
                scopes: &scopes,
            })
            .await;
        // The concurrency limits bound platform calls; the store write that follows is
        // bounded by the store's own pool and must not hold a platform slot.
        drop(slot);
        let now = self.now();
        let user = current.user_id;
        let pid = current.provider.clone();
        let account = current.provider_account_id.clone();
        match outcome {
            Ok(tokens) => {
                let (sealed_access, sealed_refresh) = self.seal_tokens(&pid, &account, &tokens)?;
                let mut next = current.clone();
                next.access_token = Some(sealed_access);
                if let Some(r) = sealed_refresh {
                    next.refresh_token = Some(r);
                    next.refresh_expires_at = tokens.refresh_expires_in.map(|d| now + to_chrono(d));
                }
                next.expires_at = tokens.expires_in.map(|d| now + to_chrono(d));
                next.token_issued_at = Some(now);
                if tokens.token_type.is_some() {
                    next.token_type = tokens.token_type.clone();
                }
                if let Some(scope) = join_scopes(&tokens.scopes) {
                    next.scope = Some(scope);
                }
                next.status = transition(current.status, LifecycleEvent::RefreshSucceeded);
                next.refresh_failures = 0;
                next.last_error = None;
                next.last_refresh_attempt_at = Some(now);
                next.last_refresh_success_at = Some(now);
                next.updated_at = now;
                let stored = self
                    .inner
                    .store
                    .update_account_and_release(&next, owner)
                    .await?;
                self.audit_via(
                    audit,
                    user,
                    &pid,
                    Some(&account),
                    AuditAction::Refreshed,
                    "success",
                )
                .await;
                self.after_write(ConnectionEventKind::Refreshed, &stored)
                    .await;
                Ok((stored, true))
            }
            Err(ProviderError::InvalidGrant { .. }) => {
                // A row that changed meanwhile means someone else rotated the token: our
                // refresh token was stale, the connection is fine.
                if let Some(latest) = self.inner.store.get_account(current.id).await?
                    && latest.version != current.version
                {
                    return Ok((latest, false));
                }
                self.mark_needs_reconnect(&current, audit, AuditAction::RefreshFailed)
                    .await?;
                Err(Error::NeedsReconnect)
            }
            Err(e @ ProviderError::RefreshNotYetAllowed { .. }) => Err(e.into()),
            Err(e) => {
                let err = Error::Provider(e);
                let mut next = current.clone();
                next.refresh_failures = current.refresh_failures.saturating_add(1);
                next.last_error = Some(err.user_message().to_owned());
                next.last_refresh_attempt_at = Some(now);
                next.status = transition(current.status, LifecycleEvent::RefreshFailedTransient);
                next.updated_at = now;
                let stored = self.inner.store.update_account(&next).await?;
                self.invalidate_status(stored.user_id).await;
                self.audit_via(
                    audit,
                    user,
                    &pid,
                    Some(&account),
                    AuditAction::RefreshFailed,
                    err.code(),
                )
                .await;
                if current.refresh_failures == 0 {
                    self.emit(
                        ConnectionEventKind::RefreshFailed { code: err.code() },
                        &stored,
                    );
                }
                Err(err)
            }
        }
    }

    /// Records that the platform declared the grant dead: tokens dropped, status
    /// `NeedsReconnect`, an `invalid_grant` audit row under `action`, and the
    /// `NeedsReconnect` event when the account was not in that state already.
    pub(crate) async fn mark_needs_reconnect(
        &self,
        current: &AccountRecord,
        audit: Option<&AuditBuffer>,
        action: AuditAction,
    ) -> Result<AccountRecord> {
        let now = self.now();
        let mut next = current.clone();
        next.access_token = None;
        next.refresh_token = None;
        next.status = transition(current.status, LifecycleEvent::GrantRevoked);
        next.refresh_failures = current.refresh_failures.saturating_add(1);
        next.last_error = Some(crate::error::MSG_RECONNECT.to_owned());
        next.last_refresh_attempt_at = Some(now);
        next.updated_at = now;
        let stored = self.inner.store.update_account(&next).await?;
        self.invalidate_status(stored.user_id).await;
        self.audit_via(
            audit,
            current.user_id,
            &current.provider,
            Some(&current.provider_account_id),
            action,
            "invalid_grant",
        )
        .await;
        if current.status != AccountStatus::NeedsReconnect {
            crate::metrics::connection_changed(current.provider.as_str(), "needs_reconnect");
            self.emit(ConnectionEventKind::NeedsReconnect, &stored);
        }
        Ok(stored)
    }

    /// Revokes the grant at the platform, retrying transient failures with the
    /// [`SendPolicy`] backoff. `Ok` carries the audit outcome when the account may be
    /// deleted; `Err` when the provider requires the revoke
    /// ([`Provider::revoke_required`]) and the platform did not confirm it.
    async fn try_revoke(
        &self,
        provider: &Arc<dyn Provider>,
        record: &AccountRecord,
    ) -> std::result::Result<&'static str, ProviderError> {
        if !provider.capabilities().revoke {
            return Ok("success");
        }
        let Ok((access, refresh)) = self.open_tokens(record) else {
            return Ok("success; revoke skipped: tokens unreadable");
        };
        if access.is_none() && refresh.is_none() {
            return Ok("success");
        }
        let policy = &self.inner.config.send;
        let mut attempt = 0;
        let revoked = loop {
            let revoked = provider.revoke(access.as_ref(), refresh.as_ref()).await;
            let wait = match &revoked {
                Err(e) if e.is_transient() && attempt + 1 < policy.max_attempts => e
                    .retry_after()
                    .unwrap_or_else(|| crate::send::jittered(policy.backoff_base, attempt)),
                _ => break revoked,
            };
            if wait > policy.max_retry_wait {
                break revoked;
            }
            attempt += 1;
            tokio::time::sleep(wait).await;
        };
        crate::metrics::revoke(record.provider.as_str(), revoked.is_ok());
        match revoked {
            Ok(()) => Ok("success"),
            Err(ProviderError::InvalidGrant { .. }) if provider.revoke_required() => {
                Ok("success; already gone at the platform")
            }
            Err(e) if provider.revoke_required() => {
                tracing::warn!(error = %e, provider = %record.provider, "the platform did not confirm the disconnect; the connection is kept");
                Err(e)
            }
            Err(e) => {
                tracing::warn!(error = %e, provider = %record.provider, "revoke failed; deleting the connection anyway");
                Ok("success; revoke failed")
            }
        }
    }

    /// Disconnects an account of `user`: revokes the grant at the platform, then deletes
    /// the row with its tokens.
    ///
    /// For most platforms the revoke is best effort: a failure there does not keep the
    /// credentials. Where the platform must confirm it ([`Provider::revoke_required`], a
    /// connection gateway that bills until the connection is deleted), a transient
    /// failure is retried and a failure that remains is returned as
    /// [`Error::Provider`] with the account kept, so the user can try again.
    #[tracing::instrument(level = "debug", skip(self), fields(user = user.0))]
    pub async fn disconnect(
        &self,
        user: UserId,
        provider_id: &str,
        provider_account_id: &str,
    ) -> Result<()> {
        let provider = self.provider(provider_id)?.clone();
        let record = self
            .owned_account(user, provider.id(), provider_account_id)
            .await?;
        let outcome = match self.try_revoke(&provider, &record).await {
            Ok(outcome) => outcome,
            Err(e) => {
                let e = Error::Provider(e);
                self.audit(
                    user,
                    provider.id(),
                    Some(&record.provider_account_id),
                    AuditAction::DisconnectFailed,
                    e.code(),
                )
                .await;
                return Err(e);
            }
        };
        self.inner.store.delete_account(record.id).await?;
        crate::metrics::disconnected(provider.id().as_str());
        self.audit(
            user,
            provider.id(),
            Some(&record.provider_account_id),
            AuditAction::Disconnected,
            outcome,
        )
        .await;
        self.after_write(ConnectionEventKind::Disconnected, &record)
            .await;
        Ok(())
    }

    /// Every connection of `user`, with its status, metadata and dates; never a token.
    ///
    /// Cached per user for [`ServiceConfig::status_cache_ttl`]; the status itself is
    /// computed at every call, so an expiry shows at once even from the cache.
    #[tracing::instrument(level = "debug", skip(self), fields(user = user.0))]
    pub async fn status(&self, user: UserId) -> Result<Vec<IntegrationView>> {
        let records = match &self.inner.status_cache {
            Some(cache) => {
                let store = self.inner.store.clone();
                cache
                    .try_get_with(user, async move {
                        store.list_accounts(user).await.map(Arc::new)
                    })
                    .await
                    .map_err(|e| match Arc::try_unwrap(e) {
                        Ok(e) => Error::Store(e),
                        Err(shared) => Error::Store(StoreError::Other {
                            message: shared.to_string(),
                            source: None,
                        }),
                    })?
            }
            None => Arc::new(self.inner.store.list_accounts(user).await?),
        };
        let now = self.now();
        Ok(records
            .iter()
            .map(|r| IntegrationView::from_record(r, now))
            .collect())
    }

    /// Deletes everything stored for `user` (GDPR erasure), revoking grants where the
    /// platform allows. One `user_data_deleted` audit event (user id only) remains as the
    /// record of the erasure. The erasure goes ahead even where a platform's revoke is
    /// required for a disconnect ([`Provider::revoke_required`]) and fails.
    #[tracing::instrument(level = "debug", skip(self), fields(user = user.0))]
    pub async fn delete_user_data(&self, user: UserId) -> Result<DeletedUserData> {
        let accounts = self.inner.store.list_accounts(user).await?;
        for record in &accounts {
            if let Ok(provider) = self.provider(record.provider.as_str()) {
                let provider = provider.clone();
                // An erasure deletes whatever the platform answers.
                let _ = self.try_revoke(&provider, record).await;
            }
            self.after_write(ConnectionEventKind::Disconnected, record)
                .await;
        }
        let deleted = self.inner.store.delete_user_data(user).await?;
        self.invalidate_status(user).await;
        if let Some(first) = accounts.first() {
            self.audit(
                user,
                &first.provider,
                None,
                AuditAction::UserDataDeleted,
                "success",
            )
            .await;
        }
        Ok(deleted)
    }
}
