//! [`Integrations`]: the connect → callback → refresh → disconnect state machine.
//!
//! This file holds the service, its builder and the helpers every operation uses; each
//! submodule adds the operations of one part of the lifecycle: `connect` (connect and
//! callback), `refresh` (refresh, access_token, the single-flight refresh under the
//! store's lease), `eligibility` (whether an account is refreshed), `refresher`
//! (refresh_due and the [`Refresher`] task), `send`, `disconnect` (disconnect and
//! delete_user_data) and `views` (status and the connection gauges).

mod config;
mod connect;
mod disconnect;
mod eligibility;
mod health;
mod platform;
mod refresh;
mod refresher;
mod send;
mod views;

pub use config::{SendPolicy, ServiceConfig};
pub use connect::{ConnectStart, Connected, FAILED_CALLBACK_AUDIT_LIMIT};
pub use health::{HealthOverview, PlatformOverview};
pub(crate) use refresh::RefreshOutcome;
pub use refresher::{RefreshLimits, RefreshReport, Refresher, RefresherConfig};
pub use views::IntegrationView;

use crate::clock::{Clock, SystemClock};
use crate::crypto::{SecretContext, TokenCipher};
use crate::error::{Error, Result};
use crate::events::{ConnectionEvent, EventPosition, StoredEvent};
use crate::provider::{Provider, ProviderId, TokenSet};
use crate::secret::{AccessToken, RefreshToken, SealedSecret};
use crate::store::{AccountRecord, AuditAction, NewAuditEvent, TokenStore, UserId};
use chrono::{DateTime, Utc};
use refresh::AuditBuffer;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;

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
                recorded: Arc::new(tokio::sync::Notify::new()),
                inflight: Mutex::new(HashMap::new()),
                gauged: Mutex::new(Default::default()),
                window_warned: Mutex::new(Default::default()),
                instance_id: hex::encode(instance),
                health: crate::health::HealthRecorder::new(),
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
    /// Woken when this process records an event (readers of `events` wait on it).
    recorded: Arc<tokio::sync::Notify>,
    inflight: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
    /// The connection gauges set by the last `record_connection_gauges` (set to zero when
    /// their group disappears).
    gauged: Mutex<crate::metrics::Gauged>,
    /// The platforms for which a refresher pass warned that its window is longer than
    /// half their tokens' lifetime (warned once per instance).
    window_warned: Mutex<std::collections::HashSet<ProviderId>>,
    instance_id: String,
    /// This process's platform calls, until flushed ([`Integrations::flush_health`]).
    health: crate::health::HealthRecorder,
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

    /// Subscribes to this process's connection events: the in-process fast path, sent
    /// right after each commit without reading the store. A lagging receiver loses the
    /// oldest ones, and events of other processes are not heard: read
    /// [`events`](Self::events) for every event of the store, none lost.
    pub fn subscribe(&self) -> broadcast::Receiver<ConnectionEvent> {
        self.inner.events.subscribe()
    }

    /// Up to `limit` connection events recorded after `after`, oldest first, from every
    /// process sharing the store.
    pub async fn events_after(
        &self,
        after: EventPosition,
        limit: usize,
    ) -> Result<Vec<StoredEvent>> {
        Ok(self.inner.store.events_after(after, limit).await?)
    }

    /// Every connection event recorded after `after`, as a stream that waits for new ones:
    /// it reads the store, and when it has read everything, waits until this process
    /// records an event, the store signals one (PostgreSQL's `LISTEN/NOTIFY`), or
    /// [`ServiceConfig::event_poll`] passes. Keep the position of the last event handled
    /// to resume after it. A store error is yielded and the stream goes on.
    pub fn events(
        &self,
        after: EventPosition,
    ) -> impl futures::Stream<Item = Result<StoredEvent>> + Send + 'static {
        const PAGE: usize = 256;
        let this = self.clone();
        let start = (this, after, std::collections::VecDeque::new());
        futures::stream::unfold(start, |(this, mut cursor, mut buffered)| async move {
            loop {
                if let Some(event) = buffered.pop_front() {
                    return Some((Ok(event), (this, cursor, buffered)));
                }
                let recorded = this.inner.recorded.clone().notified_owned();
                match this.inner.store.events_after(cursor, PAGE).await {
                    Ok(page) if !page.is_empty() => {
                        if let Some(last) = page.last() {
                            cursor = last.position;
                        }
                        buffered.extend(page);
                    }
                    Ok(_) => {
                        let poll = this.inner.config.event_poll;
                        tokio::select! {
                            _ = recorded => {}
                            _ = this.inner.store.wait_for_events(poll) => {}
                        }
                    }
                    Err(e) => {
                        tokio::time::sleep(this.inner.config.event_poll).await;
                        return Some((Err(e.into()), (this, cursor, buffered)));
                    }
                }
            }
        })
    }

    /// Keeps this instance's status cache in step with every process sharing the store:
    /// follows the store's events from the newest one and drops the cached status of each
    /// event's user, so that a change made by another process (a `refresher` marking an
    /// account `needs_reconnect`, another web instance) shows in [`status`](Self::status)
    /// within [`ServiceConfig::event_poll`] (at once on PostgreSQL) instead of after
    /// [`ServiceConfig::status_cache_ttl`]. Spawn it once per instance; it runs until
    /// dropped. Store errors are logged and retried.
    pub fn follow_events(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        use futures::StreamExt;
        let this = self.clone();
        async move {
            let start = loop {
                match this.inner.store.last_event_position().await {
                    Ok(p) => break p,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the newest event; retrying");
                        tokio::time::sleep(this.inner.config.event_poll).await;
                    }
                }
            };
            let mut events = std::pin::pin!(this.events(start));
            while let Some(next) = events.next().await {
                match next {
                    Ok(e) => this.invalidate_status(e.event.user_id).await,
                    Err(e) => tracing::warn!(error = %e, "cannot read connection events"),
                }
            }
        }
    }

    /// Deletes the connection events older than [`ServiceConfig::event_retention`], with
    /// their deliveries; returns how many (the [`Refresher`] does it after every pass).
    pub async fn prune_events(&self) -> Result<u64> {
        let before = self.now() - to_chrono(self.inner.config.event_retention);
        Ok(self.inner.store.prune_events(before).await?)
    }

    /// Now, by the service's clock (the one its expiry rules use).
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// After a committed write: drops the user's cached status and announces its events.
    async fn after_write(&self, user: UserId, events: &[ConnectionEvent]) {
        self.invalidate_status(user).await;
        self.announce(events);
    }

    /// Sends committed events to this process's subscribers and wakes its readers.
    fn announce(&self, events: &[ConnectionEvent]) {
        if events.is_empty() {
            return;
        }
        for event in events {
            let _ = self.inner.events.send(event.clone());
        }
        self.inner.recorded.notify_waiters();
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

    /// Seals a token set for the account `account` of `provider`.
    fn seal_tokens(
        &self,
        provider: &ProviderId,
        account: &str,
        tokens: &TokenSet,
    ) -> Result<(SealedSecret, Option<SealedSecret>)> {
        let cipher = &self.inner.cipher;
        let provider = provider.as_str();
        let access = cipher.seal(
            SecretContext::access_token(provider, account),
            tokens.access_token.expose_secret(),
        )?;
        let refresh = tokens
            .refresh_token
            .as_ref()
            .map(|r| {
                cipher.seal(
                    SecretContext::refresh_token(provider, account),
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
        self.open_tokens_for(record, true)
    }

    /// Opens an account's stored refresh token, and its access token when `with_access`
    /// (`None` otherwise: it stays sealed).
    fn open_tokens_for(
        &self,
        record: &AccountRecord,
        with_access: bool,
    ) -> Result<(Option<AccessToken>, Option<RefreshToken>)> {
        let cipher = &self.inner.cipher;
        let pid = record.provider.as_str();
        let account = record.provider_account_id.as_str();
        let access = record
            .access_token
            .as_ref()
            .filter(|_| with_access)
            .map(|s| cipher.open(SecretContext::access_token(pid, account), s))
            .transpose()?
            .map(|p| AccessToken::new(p.as_str()));
        let refresh = record
            .refresh_token
            .as_ref()
            .map(|s| cipher.open(SecretContext::refresh_token(pid, account), s))
            .transpose()?
            .map(|p| RefreshToken::new(p.as_str()));
        Ok((access, refresh))
    }

    /// The account of `user`; [`Error::NotFound`] when it is missing or another user's.
    /// The user's cached status is dropped on `NotFound`: the account may have been
    /// disconnected through another instance.
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
            _ => {
                self.invalidate_status(user).await;
                Err(Error::NotFound)
            }
        }
    }
}
