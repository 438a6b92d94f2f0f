//! Ending connections: [`Integrations::disconnect`] and [`Integrations::delete_user_data`].

use super::Integrations;
use crate::error::{Error, Result};
use crate::events::{ConnectionEvent, ConnectionEventKind};
use crate::health::CallKind;
use crate::provider::{Provider, ProviderError};
use crate::store::{AccountRecord, AuditAction, DeletedUserData, UserId};
use std::sync::Arc;

impl Integrations {
    /// Revokes the grant at the platform, retrying transient failures with the
    /// [`SendPolicy`](super::SendPolicy) backoff. `Ok` carries the audit outcome when the account may be
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
            let revoked = self
                .observed(
                    provider.id(),
                    CallKind::Revoke,
                    provider.revoke(access.as_ref(), refresh.as_ref()),
                )
                .await;
            let wait = match &revoked {
                Err(e) if e.is_transient() && attempt + 1 < policy.max_attempts => e
                    .retry_after()
                    .unwrap_or_else(|| super::send::jittered(policy.backoff_base, attempt)),
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
        let events = [ConnectionEvent::of_account(
            ConnectionEventKind::Disconnected,
            &record,
            self.now(),
        )];
        let deleted = self.inner.store.delete_account(record.id, &events).await?;
        crate::metrics::disconnected(provider.id().as_str());
        self.audit(
            user,
            provider.id(),
            Some(&record.provider_account_id),
            AuditAction::Disconnected,
            outcome,
        )
        .await;
        // Deleted meanwhile by another request: that one recorded the event.
        let events = if deleted { &events[..] } else { &[] };
        self.after_write(user, events).await;
        Ok(())
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
        }
        let deleted = self.inner.store.delete_user_data(user, self.now()).await?;
        self.after_write(user, &deleted.events).await;
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
