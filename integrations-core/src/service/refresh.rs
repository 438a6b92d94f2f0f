//! Refreshing one account: [`Integrations::refresh`] and [`Integrations::access_token`],
//! the eligibility rule every caller asks, the single-flight refresh under the store's
//! lease, and the [`RefreshOutcome`] that metrics and reports count.

use super::eligibility::{Eligibility, Trigger, eligibility};
use super::{IntegrationView, Integrations, join_scopes, to_chrono};
use crate::error::{Error, Result};
use crate::events::{ConnectionEvent, ConnectionEventKind};
use crate::provider::{Provider, ProviderError, RefreshRequest};
use crate::secret::AccessToken;
use crate::status::{LifecycleEvent, is_token_expired, transition};
use crate::store::{AccountRecord, AuditAction, Lease, NewAuditEvent, StoredStatus, UserId};
use std::sync::{Arc, Mutex};

/// The stored status after `event`. Refresh events are only possible on an `Active`
/// account (`refresh_record` never calls the platform for a dead grant); were one to reach
/// a `NeedsReconnect` account, the grant is still dead.
fn next_status(current: StoredStatus, event: LifecycleEvent) -> Result<StoredStatus> {
    transition(current, event).map_err(|_| Error::NeedsReconnect)
}

/// Concurrency permits a refresher task holds while it calls the platform.
pub(super) type Slot = Vec<tokio::sync::OwnedSemaphorePermit>;

/// Audit events a refresher pass collects and appends in one batch.
pub(super) type AuditBuffer = Mutex<Vec<NewAuditEvent>>;

/// How one refresh ended. Its [`label`](Self::label) is the `outcome` of the
/// `integrations_refresh_total` metric, and a refresher pass counts it in its
/// [`RefreshReport`](super::RefreshReport).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefreshOutcome {
    /// This call refreshed the tokens.
    Refreshed,
    /// Another caller or worker had just refreshed them; its result was used.
    Reused,
    /// The grant is dead: the user must reconnect.
    NeedsReconnect,
    /// A transient failure (rate limit, 5xx, network); the tokens were kept.
    TransientFailure,
    /// Any other failure.
    Failure,
    /// Nothing to do: no refresh for this platform, no token to refresh with, or too
    /// young to refresh.
    NotRefreshable,
}

impl RefreshOutcome {
    /// The outcome of [`Integrations::refresh_record`]'s result.
    pub(super) fn of(result: &Result<(AccountRecord, bool)>) -> Self {
        match result {
            Ok((_, true)) => Self::Refreshed,
            Ok((_, false)) => Self::Reused,
            Err(Error::NeedsReconnect) => Self::NeedsReconnect,
            Err(Error::Provider(ProviderError::RefreshNotYetAllowed { .. })) => {
                Self::NotRefreshable
            }
            Err(e) if e.is_transient() => Self::TransientFailure,
            Err(_) => Self::Failure,
        }
    }

    /// The metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Refreshed => "refreshed",
            Self::Reused => "reused",
            Self::NeedsReconnect => "needs_reconnect",
            Self::TransientFailure => "transient_failure",
            Self::Failure => "failure",
            Self::NotRefreshable => "not_refreshable",
        }
    }
}

/// How [`Integrations::refresh_record`] runs: on demand, or inside a refresher pass.
#[derive(Default)]
pub(super) struct RefreshContext<'a> {
    /// The refresher's batch lease owner: the account is claimed with it, and a failed
    /// refresh leaves that lease for the pass to release. `None`: a fresh lease.
    owner: Option<&'a str>,
    /// Skip the `refresh_coalesce` shortcut (after a 401 the token is known bad).
    force: bool,
    /// Where audit events go (a pass appends them in one batch). `None`: at once.
    audit: Option<&'a AuditBuffer>,
    /// Concurrency permits, held for the platform call only.
    slot: Option<Slot>,
}

impl<'a> RefreshContext<'a> {
    /// A refresh for a caller acting now (`refresh`, `access_token`, `send`).
    pub(super) fn on_demand() -> Self {
        Self::default()
    }

    /// A refresh after the platform refused the current token.
    pub(super) fn after_unauthorized() -> Self {
        Self {
            force: true,
            ..Self::default()
        }
    }

    /// A refresh of an account a refresher pass claimed with `owner`.
    pub(super) fn in_pass(owner: &'a str, audit: &'a AuditBuffer, slot: Slot) -> Self {
        Self {
            owner: Some(owner),
            force: false,
            audit: Some(audit),
            slot: Some(slot),
        }
    }
}

impl Integrations {
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
        let record = self
            .owned_account(user, provider.id(), provider_account_id)
            .await?;
        let trigger = Trigger::Needed(chrono::Duration::zero());
        let record = match eligibility(provider.as_ref(), &record, trigger, self.now()) {
            Eligibility::NeedsReconnect => return Err(self.dead_grant(&record).await),
            Eligibility::Refresh => {
                self.refresh_record(&provider, record, RefreshContext::on_demand())
                    .await?
                    .0
            }
            Eligibility::Fresh | Eligibility::Pointless => record,
            Eligibility::Unsupported if is_token_expired(record.expires_at, self.now()) => {
                return Err(ProviderError::Unsupported {
                    operation: "refresh",
                }
                .into());
            }
            Eligibility::Unsupported => record,
        };
        self.open_access_token(&record)
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
        match eligibility(provider.as_ref(), &record, Trigger::Requested, self.now()) {
            Eligibility::NeedsReconnect => return Err(self.dead_grant(&record).await),
            Eligibility::Unsupported => {
                return Err(ProviderError::Unsupported {
                    operation: "refresh",
                }
                .into());
            }
            Eligibility::Refresh | Eligibility::Fresh | Eligibility::Pointless => {}
        }
        let started = std::time::Instant::now();
        let result = self
            .refresh_record(&provider, record, RefreshContext::on_demand())
            .await;
        crate::metrics::refresh_outcome(
            provider.id().as_str(),
            RefreshOutcome::of(&result),
            started.elapsed(),
        );
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

    /// A fresh refresh lease of this instance, valid for `lease_ttl` from now.
    pub(super) fn lease(&self) -> Lease {
        let mut nonce = [0u8; 6];
        rand::fill(&mut nonce[..]);
        self.lease_of(format!("{}:{}", self.inner.instance_id, hex::encode(nonce)))
    }

    /// A lease of `owner`, valid for `lease_ttl` from now.
    fn lease_of(&self, owner: String) -> Lease {
        let now = self.now();
        Lease {
            owner,
            now,
            until: now + to_chrono(self.inner.config.lease_ttl),
        }
    }

    /// The lease to refresh `observed` under, claimed through the store unless a pass's
    /// claim is still fresh; waits (polling) while another worker holds the account.
    async fn claim(
        &self,
        observed: AccountRecord,
        owner: Option<&str>,
    ) -> Result<(AccountRecord, Lease)> {
        let started = tokio::time::Instant::now();
        loop {
            let lease = match owner {
                Some(owner) => self.lease_of(owner.to_owned()),
                None => self.lease(),
            };
            if let Some(owner) = owner {
                // A row `claim_due` just leased to `owner` is current as returned: claiming
                // it again would repeat the same UPDATE. Re-claim only when the lease has
                // used up half its time (a long wait for a concurrency permit), which
                // extends it.
                if observed.lease_owner.as_deref() == Some(owner)
                    && observed.lease_until.is_some_and(|until| {
                        until - self.now() > to_chrono(self.inner.config.lease_ttl / 2)
                    })
                {
                    return Ok((observed, lease));
                }
            }
            if let Some(current) = self
                .inner
                .store
                .claim_for_refresh(observed.id, &lease)
                .await?
            {
                return Ok((current, lease));
            }
            if started.elapsed() >= self.inner.config.lease_wait {
                return Err(Error::Busy);
            }
            tokio::time::sleep(self.inner.config.lease_poll).await;
            // The account may have been deleted meanwhile.
            if self.inner.store.get_account(observed.id).await?.is_none() {
                self.invalidate_status(observed.user_id).await;
                return Err(Error::NotFound);
            }
        }
    }

    /// Refreshes `observed` under the lease; returns the record as stored afterwards and
    /// whether this call refreshed it (`false`: another worker's result was reused).
    pub(super) async fn refresh_record(
        &self,
        provider: &Arc<dyn Provider>,
        observed: AccountRecord,
        mut ctx: RefreshContext<'_>,
    ) -> Result<(AccountRecord, bool)> {
        let (id, observed_version) = (observed.id, observed.version);
        let lock = self.inflight_lock(id);
        let _guard = lock.lock().await;
        let (current, lease) = self.claim(observed, ctx.owner).await?;
        let now = self.now();
        let just_refreshed = !ctx.force
            && current
                .last_refresh_success_at
                .is_some_and(|t| now - t < to_chrono(self.inner.config.refresh_coalesce))
            && !is_token_expired(current.expires_at, now);
        let result = if current.status == StoredStatus::NeedsReconnect {
            // The grant died while we waited: no platform call can revive it.
            Err(self.dead_grant(&current).await)
        } else if current.version != observed_version || just_refreshed {
            // Someone else wrote (refreshed, reconnected) while we waited: use their result,
            // which the cached status of the user may not show yet.
            self.invalidate_status(current.user_id).await;
            Ok((current, false))
        } else {
            let slot = ctx.slot.take();
            self.refresh_leased(provider, current, &lease.owner, ctx.audit, slot)
                .await
        };
        // A failed refresh under a refresher's batch lease keeps the lease: the pass
        // releases it when it ends, so neither it nor another worker retries the account
        // within the same pass.
        let keep = ctx.owner.is_some() && result.is_err();
        // A successful refresh released the lease with its write.
        let released = matches!(result, Ok((_, true)));
        if !keep
            && !released
            && let Err(e) = self.inner.store.release_lease(id, &lease.owner).await
        {
            tracing::warn!(error = %e, account = id, "could not release a refresh lease");
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
        let with_access = provider.capabilities().refresh_uses_access_token;
        let (access, refresh) = self.open_tokens_for(&current, with_access)?;
        let scopes: Vec<String> = current
            .scope
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        let outcome = self
            .observed(
                provider.id(),
                crate::health::CallKind::Refresh,
                provider.refresh(RefreshRequest {
                    access_token: access.as_ref(),
                    refresh_token: refresh.as_ref(),
                    issued_at: current.token_issued_at.unwrap_or(current.created_at),
                    now: self.now(),
                    scopes: &scopes,
                }),
            )
            .await;
        // The concurrency limits bound platform calls; the store write that follows is
        // bounded by the store's own pool and must not hold a platform slot.
        drop(slot);
        let tokens = match outcome {
            Ok(tokens) => tokens,
            Err(ProviderError::InvalidGrant { .. }) => {
                // A row that changed meanwhile means someone else rotated the token: our
                // refresh token was stale, the connection is fine.
                if let Some(latest) = self.inner.store.get_account(current.id).await?
                    && latest.version != current.version
                {
                    return Ok((latest, false));
                }
                return self
                    .store_failure(
                        &current,
                        Error::NeedsReconnect,
                        audit,
                        AuditAction::RefreshFailed,
                    )
                    .await;
            }
            Err(e @ ProviderError::RefreshNotYetAllowed { .. }) => return Err(e.into()),
            Err(e) => {
                return self
                    .store_failure(
                        &current,
                        Error::Provider(e),
                        audit,
                        AuditAction::RefreshFailed,
                    )
                    .await;
            }
        };
        let now = self.now();
        let (sealed_access, sealed_refresh) =
            self.seal_tokens(&current.provider, &current.provider_account_id, &tokens)?;
        // The record read is not needed past this point: it becomes the record written.
        let mut next = current;
        next.status = next_status(next.status, LifecycleEvent::RefreshSucceeded)?;
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
        next.refresh_failures = 0;
        next.last_error = None;
        next.last_refresh_attempt_at = Some(now);
        next.last_refresh_success_at = Some(now);
        next.updated_at = now;
        let events = [ConnectionEvent::of_account(
            ConnectionEventKind::Refreshed,
            &next,
            now,
        )];
        let stored = self
            .inner
            .store
            .update_account_and_release(&next, owner, &events)
            .await?;
        self.audit_via(
            audit,
            stored.user_id,
            &stored.provider,
            Some(&stored.provider_account_id),
            AuditAction::Refreshed,
            "success",
        )
        .await;
        self.after_write(stored.user_id, &events).await;
        Ok((stored, true))
    }

    /// Stores a failed refresh and returns `err`. [`Error::NeedsReconnect`] (the platform
    /// answered `invalid_grant`) marks the account `NeedsReconnect` and clears its tokens;
    /// any other error keeps them. Either way the failure is counted with a user-safe
    /// message and audited, and subscribers hear of it once: when the account enters
    /// `NeedsReconnect`, or on the first failure after a success.
    /// Records a failure on the account (always returns `Err(err)`): a dead grant
    /// (`Error::NeedsReconnect`) drops the tokens and moves the account to
    /// `NeedsReconnect`; anything else counts a transient failure. The audit row is
    /// written under `action`.
    pub(super) async fn store_failure(
        &self,
        current: &AccountRecord,
        err: Error,
        audit: Option<&AuditBuffer>,
        action: AuditAction,
    ) -> Result<(AccountRecord, bool)> {
        let dead = matches!(err, Error::NeedsReconnect);
        let event = if dead {
            LifecycleEvent::GrantRevoked
        } else {
            LifecycleEvent::RefreshFailedTransient
        };
        let now = self.now();
        let mut next = current.clone();
        next.status = next_status(current.status, event)?;
        if dead {
            next.access_token = None;
            next.refresh_token = None;
        }
        next.refresh_failures = current.refresh_failures.saturating_add(1);
        next.last_error = Some(err.user_message().to_owned());
        next.last_refresh_attempt_at = Some(now);
        next.updated_at = now;
        // Recorded on the edges only: entering `NeedsReconnect`, or the first transient
        // failure after a success.
        let edge = if dead && current.status != next.status {
            Some(ConnectionEventKind::NeedsReconnect)
        } else if !dead && current.refresh_failures == 0 {
            Some(ConnectionEventKind::RefreshFailed)
        } else {
            None
        };
        let events: Vec<ConnectionEvent> = edge
            .map(|kind| {
                ConnectionEvent::of_account(kind, &next, now).with("error_code", err.code())
            })
            .into_iter()
            .collect();
        let stored = self.inner.store.update_account(&next, &events).await?;
        self.after_write(stored.user_id, &events).await;
        let pid = &current.provider;
        let outcome = if dead { "invalid_grant" } else { err.code() };
        self.audit_via(
            audit,
            current.user_id,
            pid,
            Some(&current.provider_account_id),
            action,
            outcome,
        )
        .await;
        if edge == Some(ConnectionEventKind::NeedsReconnect) {
            crate::metrics::connection_changed(pid.as_str(), "needs_reconnect");
        }
        Err(err)
    }

    /// The error for an account the store shows as `NeedsReconnect`. The row was read from
    /// the store just now, and another instance (a refresher, another web process) may
    /// have written that state: the user's cached status is dropped, so that `status`
    /// shows what this answer says.
    pub(super) async fn dead_grant(&self, record: &AccountRecord) -> Error {
        self.invalidate_status(record.user_id).await;
        Error::NeedsReconnect
    }

    /// The access token of a record; none stored means the user must reconnect.
    pub(super) fn open_access_token(&self, record: &AccountRecord) -> Result<AccessToken> {
        self.open_tokens(record)?.0.ok_or(Error::NeedsReconnect)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn refreshes_of_one_account_share_a_lock_and_unused_locks_are_dropped() {
        let i = Integrations::builder(
            Arc::new(crate::MemoryStore::new()),
            crate::TokenCipher::new(crate::EncryptionKey::generate()),
        )
        .build();
        let held = i.inflight_lock(1);
        // A second refresh of the same account, while the first holds its lock, waits
        // on the same one.
        assert!(Arc::ptr_eq(&held, &i.inflight_lock(1)));
        drop(held);
        // Once nobody holds it, the next call for another account forgets it: the map
        // stays as small as the refreshes in flight.
        let other = i.inflight_lock(2);
        let ids: Vec<i64> = i.inner.inflight.lock().unwrap().keys().copied().collect();
        assert_eq!(ids, vec![2]);
        drop(other);
    }

    #[test]
    fn outcomes_and_their_labels() {
        use RefreshOutcome::*;
        let provider = |e: ProviderError| -> Result<(AccountRecord, bool)> { Err(e.into()) };
        let cases = [
            (
                Err(Error::NeedsReconnect),
                NeedsReconnect,
                "needs_reconnect",
            ),
            (
                provider(ProviderError::RefreshNotYetAllowed {
                    not_before: chrono::Utc::now(),
                }),
                NotRefreshable,
                "not_refreshable",
            ),
            (
                provider(ProviderError::RateLimited {
                    retry_after: Some(Duration::from_secs(1)),
                }),
                TransientFailure,
                "transient_failure",
            ),
            (
                provider(ProviderError::Unavailable { status: 503 }),
                TransientFailure,
                "transient_failure",
            ),
            (
                provider(ProviderError::InvalidClient { description: None }),
                Failure,
                "failure",
            ),
            (Err(Error::Busy), TransientFailure, "transient_failure"),
            (Err(Error::NotFound), Failure, "failure"),
        ];
        for (result, outcome, label) in cases {
            assert_eq!(RefreshOutcome::of(&result), outcome, "{result:?}");
            assert_eq!(outcome.label(), label);
        }
        assert_eq!(Refreshed.label(), "refreshed");
        assert_eq!(Reused.label(), "reused");
    }
}
