//! Connecting an account: [`Integrations::connect`] and [`Integrations::callback`].

use super::{IntegrationView, Integrations, join_scopes, to_chrono};
use crate::crypto::SecretContext;
use crate::error::{Error, Result};
use crate::events::{ConnectionEvent, ConnectionEventKind, EventId};
use crate::health::CallKind;
use crate::oauth::{generate_pkce_verifier, generate_state, pkce_challenge};
use crate::provider::{
    AuthorizationRequest, CallbackOutcome, CallbackParams, CodeExchange, PkceSupport, Provider,
    ProviderError, ProviderId, TokenSet,
};
use crate::secret::PkceVerifier;
use crate::store::{
    AuditAction, LimitedAppend, NewAccount, NewAuditEvent, PendingAuthorization, StateHash,
    StoreError, USERNAME_KEY, Upserted, UserId,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;
use url::Url;

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

/// What a successful callback gives.
#[derive(Debug, Clone)]
pub struct Connected {
    /// The connected account.
    pub account: IntegrationView,
    /// Where the host wanted the user sent afterwards (from `connect`).
    pub redirect_url: Option<String>,
    /// Whether an existing connection was re-authorized rather than created.
    pub reauthorized: bool,
}

/// The most failed callbacks audited per user per connect window.
pub const FAILED_CALLBACK_AUDIT_LIMIT: usize = 20;

impl Integrations {
    /// The per-user connect limit, counted from the store's `ConnectStarted` audit events
    /// so that every instance sharing the store enforces the same limit. The event is
    /// appended in the same atomic step as the count
    /// ([`TokenStore::append_audit_within_limit`](crate::TokenStore::append_audit_within_limit)):
    /// parallel connects cannot get past it.
    async fn admit_connect(
        &self,
        user: UserId,
        provider: &ProviderId,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let limit = self.inner.config.connect_limit;
        let event = NewAuditEvent {
            user_id: user,
            provider: provider.clone(),
            provider_account_id: None,
            action: AuditAction::ConnectStarted,
            outcome: "success".into(),
            at: now,
        };
        if limit == usize::MAX {
            self.inner.store.append_audit(event).await?;
            return Ok(());
        }
        let window = to_chrono(self.inner.config.connect_window);
        // Events younger than the window count; one exactly `window` old has left it.
        let since = now - window + chrono::Duration::microseconds(1);
        match self
            .inner
            .store
            .append_audit_within_limit(event, since, limit)
            .await?
        {
            LimitedAppend::Appended => Ok(()),
            LimitedAppend::Refused(recent) => {
                // The oldest of the `limit` newest leaves the window first.
                let retry_at = recent.last().map_or(now, |t| *t + window);
                Err(Error::ConnectRateLimited { retry_at })
            }
        }
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
        self.admit_connect(user, provider.id(), now).await?;
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
        let auth_url = self
            .observed(
                provider.id(),
                CallKind::Authorize,
                provider.authorization_url(&request),
            )
            .await?;
        let hash_hex = state_hash.to_hex();
        let sealed_verifier = verifier
            .as_ref()
            .map(|v| {
                self.inner.cipher.seal(
                    SecretContext::pkce_verifier(provider.id().as_str(), &hash_hex),
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
        Ok(ConnectStart { auth_url, state })
    }

    /// Completes a connection from the platform's redirect.
    ///
    /// The state must exist, belong to `user` and this provider, and be unexpired; it is
    /// consumed whatever happens next. `error=access_denied` gives [`Error::Cancelled`].
    /// The code is exchanged, the profile fetched, and the account stored for `user`
    /// (re-authorizing it when the user already has it; refused when another user does).
    ///
    /// When the profile fetch or the save fails after a successful exchange (a
    /// configuration error, [`Error::AccountOwnedByAnotherUser`], a store outage), the
    /// grant just issued is revoked at the platform where it can revoke and doing so ends
    /// no stored connection ([`Provider::revoke_is_per_grant`]), and the attempt is
    /// audited as [`AuditAction::OrphanRevoked`]; the error returned is the original one,
    /// whatever the revoke answers.
    #[tracing::instrument(level = "debug", skip(self, params), fields(user = user.0))]
    pub async fn callback(
        &self,
        user: UserId,
        provider_id: &str,
        params: &CallbackParams,
    ) -> Result<Connected> {
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
            self.audit_failed_callback(user, &pid, e.code()).await;
        }
        result
    }

    /// Audits a failed callback, at most [`FAILED_CALLBACK_AUDIT_LIMIT`] a user per connect
    /// window: forged or replayed callbacks cannot grow the audit table without bound (the
    /// `connect_finished` metric still counts every one).
    async fn audit_failed_callback(&self, user: UserId, provider: &ProviderId, code: &str) {
        let now = self.now();
        let since =
            now - to_chrono(self.inner.config.connect_window) + chrono::Duration::microseconds(1);
        let event = NewAuditEvent {
            user_id: user,
            provider: provider.clone(),
            provider_account_id: None,
            action: AuditAction::CallbackFailed,
            outcome: code.to_owned(),
            at: now,
        };
        match self
            .inner
            .store
            .append_audit_within_limit(event, since, FAILED_CALLBACK_AUDIT_LIMIT)
            .await
        {
            Ok(LimitedAppend::Appended) => {}
            Ok(LimitedAppend::Refused(_)) => {
                tracing::debug!(user = user.0, "failed-callback audit limit reached");
            }
            Err(e) => tracing::warn!(error = %e, "could not append an audit event"),
        }
    }

    /// Deletes the pending authorizations past their expiry (the [`Refresher`] does it
    /// after every pass; a host without one calls it on a schedule). Returns how many.
    ///
    /// [`Refresher`]: crate::Refresher
    pub async fn purge_expired(&self) -> Result<u64> {
        Ok(self.inner.store.purge_expired_pending(self.now()).await?)
    }

    /// Runs [`purge_expired`](Self::purge_expired) at once and then every `period`, for
    /// as long as the future is polled (it never ends by itself); a failed pass is logged
    /// and the next one tried. For a host that serves callbacks without a [`Refresher`]:
    /// spawn it beside the server and abort it when the server stops. Panics if `period`
    /// is zero.
    ///
    /// [`Refresher`]: crate::Refresher
    pub async fn purge_expired_every(self, period: std::time::Duration) {
        let mut every = tokio::time::interval(period);
        loop {
            every.tick().await;
            if let Err(e) = self.purge_expired().await {
                tracing::warn!(error = %e, "could not purge expired authorizations");
            }
        }
    }

    async fn callback_inner(
        &self,
        user: UserId,
        provider: &Arc<dyn Provider>,
        params: &CallbackParams,
    ) -> Result<Connected> {
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
                    SecretContext::pkce_verifier(provider.id().as_str(), &hash_hex),
                    sealed,
                )?;
                Some(PkceVerifier::new(plain.as_str()))
            }
            None => None,
        };
        let tokens = self
            .observed(
                provider.id(),
                CallKind::Token,
                provider.exchange_code(CodeExchange {
                    params,
                    pkce_verifier: verifier.as_ref(),
                }),
            )
            .await?;
        // From here on the platform has issued a grant: if it cannot be stored, nobody
        // holds it, and it is revoked where that is safe.
        let mut account = None;
        let event_id = EventId::random();
        let upserted = match self
            .store_grant(user, provider, &tokens, &mut account, event_id.clone())
            .await
        {
            Ok(upserted) => upserted,
            Err(e) => {
                self.revoke_orphan(user, provider, account.as_deref(), &tokens, &e)
                    .await;
                return Err(e);
            }
        };
        let now = self.now();
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
        // The event the store recorded with the account.
        let event = ConnectionEvent::of_account(kind, &record, record.updated_at).with_id(event_id);
        self.after_write(user, &[event]).await;
        Ok(Connected {
            account: IntegrationView::from_record(&record, now),
            redirect_url: pending.redirect_url,
            reauthorized,
        })
    }

    /// Fetches the profile of a grant just obtained and stores the account with its
    /// tokens. `account` is set to the platform account id once the profile named a
    /// usable one.
    async fn store_grant(
        &self,
        user: UserId,
        provider: &Arc<dyn Provider>,
        tokens: &TokenSet,
        account: &mut Option<String>,
        event: EventId,
    ) -> Result<Upserted> {
        let profile = self
            .observed(
                provider.id(),
                CallKind::Profile,
                provider.fetch_profile(&tokens.access_token),
            )
            .await?;
        if profile.account_id.is_empty() || profile.account_id.len() > 255 {
            return Err(Error::Provider(ProviderError::Protocol {
                message: "the profile has no usable account id".into(),
                body: None,
            }));
        }
        *account = Some(profile.account_id.clone());
        let now = self.now();
        let (access, refresh) = self.seal_tokens(provider.id(), &profile.account_id, tokens)?;
        self.inner
            .store
            .upsert_account(
                NewAccount {
                    user_id: user,
                    provider: provider.id().clone(),
                    provider_account_id: profile.account_id.clone(),
                    access_token: Some(access),
                    refresh_token: refresh,
                    expires_at: tokens.expires_in.map(|d| now + to_chrono(d)),
                    refresh_expires_at: tokens.refresh_expires_in.map(|d| now + to_chrono(d)),
                    token_type: tokens.token_type.clone(),
                    scope: join_scopes(&tokens.scopes),
                    metadata: stored_metadata(profile.metadata, profile.username),
                    now,
                },
                event,
            )
            .await
            .map_err(|e| match e {
                StoreError::OwnedByAnotherUser => Error::AccountOwnedByAnotherUser,
                other => Error::Store(other),
            })
    }

    /// Revokes a grant a failed callback leaves behind (`cause` is that failure, which the
    /// caller returns whatever happens here), where the platform can revoke and it is
    /// safe: a platform whose revoke may end every grant of the account
    /// ([`Provider::revoke_is_per_grant`] `false`) is asked only when the account is known
    /// and no connection of it is stored, which the revoke would end too. One attempt;
    /// audited as `orphan_revoked` with its outcome.
    async fn revoke_orphan(
        &self,
        user: UserId,
        provider: &Arc<dyn Provider>,
        account: Option<&str>,
        tokens: &TokenSet,
        cause: &Error,
    ) {
        if !provider.capabilities().revoke {
            return;
        }
        let safe = provider.revoke_is_per_grant()
            || match account {
                Some(account) => matches!(
                    self.inner.store.find_account(provider.id(), account).await,
                    Ok(None)
                ),
                None => false,
            };
        let outcome = if safe {
            let revoked = self
                .observed(
                    provider.id(),
                    CallKind::Revoke,
                    provider.revoke(Some(&tokens.access_token), tokens.refresh_token.as_ref()),
                )
                .await;
            crate::metrics::revoke(provider.id().as_str(), revoked.is_ok());
            match revoked {
                Ok(()) => "success",
                Err(e) => {
                    let e = Error::Provider(e);
                    tracing::warn!(
                        error = %e,
                        cause = cause.code(),
                        provider = %provider.id(),
                        "could not revoke the grant of a failed connection; it stays live at the platform"
                    );
                    e.code()
                }
            }
        } else {
            "skipped: the revoke could end a stored connection of the account"
        };
        self.audit(
            user,
            provider.id(),
            account,
            AuditAction::OrphanRevoked,
            outcome,
        )
        .await;
    }
}

/// The metadata stored for a profile: its `metadata` with [`USERNAME_KEY`] set to the
/// profile's `username` (removed when the profile has none), so that the stored handle is
/// always the one the provider stated. A `null` metadata becomes an object when there is
/// a handle to keep; other non-object values (which providers must not return) are kept
/// as they are.
fn stored_metadata(mut metadata: serde_json::Value, username: Option<String>) -> serde_json::Value {
    if metadata.is_null() && username.is_some() {
        metadata = serde_json::Value::Object(serde_json::Map::new());
    }
    if let Some(fields) = metadata.as_object_mut() {
        match username {
            Some(u) => {
                fields.insert(USERNAME_KEY.to_owned(), u.into());
            }
            None => {
                fields.remove(USERNAME_KEY);
            }
        }
    }
    metadata
}

#[cfg(test)]
mod tests {
    use super::stored_metadata;
    use serde_json::json;

    #[test]
    fn the_stored_username_is_the_profiles() {
        let u = || Some("jane".to_owned());
        let cases = [
            (json!({"id": 1}), u(), json!({"id": 1, "username": "jane"})),
            (json!({"username": "old"}), u(), json!({"username": "jane"})),
            (json!({"username": "stale", "n": 2}), None, json!({"n": 2})),
            (json!({}), None, json!({})),
            (json!(null), u(), json!({"username": "jane"})),
            (json!(null), None, json!(null)),
        ];
        for (metadata, username, want) in cases {
            assert_eq!(
                stored_metadata(metadata.clone(), username),
                want,
                "{metadata}"
            );
        }
    }
}
