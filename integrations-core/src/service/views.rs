//! What users see: [`IntegrationView`], [`Integrations::status`] with its per-user cache,
//! and the connection gauges.

use super::Integrations;
use crate::error::{Error, Result};
use crate::provider::ProviderId;
use crate::status::{IntegrationStatus, account_status};
use crate::store::{AccountCount, AccountRecord, StoreError, StoredStatus, UserId};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;

/// One connection as shown to its user: never a token.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationView {
    /// The platform.
    pub provider: ProviderId,
    /// The platform's account id.
    pub provider_account_id: String,
    /// The handle: [`Profile::username`](crate::Profile::username) as stored at the last
    /// authorization ([`AccountRecord::username`]).
    pub username: Option<String>,
    /// Computed status.
    pub status: IntegrationStatus,
    /// `status == Connected` (the design's `isConnected`).
    pub is_connected: bool,
    /// When the stored access token expires: `None` when it does not expire, and when
    /// there is no usable token (a `NeedsReconnect` account, whose tokens were cleared).
    pub expires_at: Option<DateTime<Utc>>,
    /// Granted scopes, space-separated.
    pub scope: Option<String>,
    /// Platform metadata as `fetch_profile` returned it, with `username` set from
    /// [`Profile::username`](crate::Profile::username).
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
            username: record.username().map(str::to_owned),
            status,
            is_connected: status == IntegrationStatus::Connected,
            expires_at: usable_token_expiry(record),
            scope: record.scope.clone(),
            metadata: shown_metadata(&record.metadata),
            last_error: record.last_error.clone(),
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

/// The metadata shown: the stored one without the account's other platform ids
/// ([`ALIASES_KEY`](crate::store::ALIASES_KEY)), which only serve to match webhooks.
fn shown_metadata(metadata: &serde_json::Value) -> serde_json::Value {
    match metadata {
        serde_json::Value::Object(m) if m.contains_key(crate::store::ALIASES_KEY) => {
            let mut m = m.clone();
            m.remove(crate::store::ALIASES_KEY);
            serde_json::Value::Object(m)
        }
        other => other.clone(),
    }
}

/// The expiry of the account's access token, when it has one it can use: a dead grant's
/// expiry (kept in the row) describes a token that no longer exists.
fn usable_token_expiry(record: &AccountRecord) -> Option<DateTime<Utc>> {
    if record.status == StoredStatus::NeedsReconnect || record.access_token.is_none() {
        return None;
    }
    record.expires_at
}

impl Integrations {
    /// Every connection of `user`, with its status, metadata and dates; never a token.
    ///
    /// Cached per user for [`ServiceConfig::status_cache_ttl`](super::ServiceConfig::status_cache_ttl); the status itself is
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

    /// Drops the cached status of a user (every write through this instance does it).
    pub async fn invalidate_status(&self, user: UserId) {
        if let Some(cache) = &self.inner.status_cache {
            cache.invalidate(&user).await;
        }
    }

    /// Counts the store's accounts by platform and stored status
    /// ([`TokenStore::count_accounts`](crate::TokenStore::count_accounts), one aggregate query) and sets the gauges
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
}
