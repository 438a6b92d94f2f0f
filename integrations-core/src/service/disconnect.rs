//! Ending connections: [`Integrations::disconnect`] and [`Integrations::delete_user_data`].

use super::{ConnectionEventKind, Integrations};
use crate::error::Result;
use crate::provider::Provider;
use crate::store::{AccountRecord, AuditAction, DeletedUserData, UserId};
use std::sync::Arc;

impl Integrations {
    async fn try_revoke(
        &self,
        provider: &Arc<dyn Provider>,
        record: &AccountRecord,
    ) -> &'static str {
        if !provider.capabilities().revoke {
            return "success";
        }
        let Ok((access, refresh)) = self.open_tokens(record) else {
            return "success; revoke skipped: tokens unreadable";
        };
        if access.is_none() && refresh.is_none() {
            return "success";
        }
        let revoked = provider.revoke(access.as_ref(), refresh.as_ref()).await;
        crate::metrics::revoke(record.provider.as_str(), revoked.is_ok());
        match revoked {
            Ok(()) => "success",
            Err(e) => {
                tracing::warn!(error = %e, provider = %record.provider, "revoke failed; deleting the connection anyway");
                "success; revoke failed"
            }
        }
    }

    /// Disconnects an account of `user`: tries to revoke the grant at the platform (a
    /// failure there does not keep the credentials), then deletes the row with its tokens.
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
        let outcome = self.try_revoke(&provider, &record).await;
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

    /// Deletes everything stored for `user` (GDPR erasure), revoking grants where the
    /// platform allows. One `user_data_deleted` audit event (user id only) remains as the
    /// record of the erasure.
    #[tracing::instrument(level = "debug", skip(self), fields(user = user.0))]
    pub async fn delete_user_data(&self, user: UserId) -> Result<DeletedUserData> {
        let accounts = self.inner.store.list_accounts(user).await?;
        for record in &accounts {
            if let Ok(provider) = self.provider(record.provider.as_str()) {
                let provider = provider.clone();
                self.try_revoke(&provider, record).await;
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
