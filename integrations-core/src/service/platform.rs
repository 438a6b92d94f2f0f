//! Platform webhooks applied: [`Integrations::handle_platform_webhook`] and
//! [`Integrations::data_deletion_status`] (the module
//! [`platform_webhooks`](crate::platform_webhooks) holds the types and the rules).

use super::{Integrations, to_chrono};
use crate::error::{Error, Result};
use crate::events::{ConnectionEvent, ConnectionEventKind};
use crate::platform_webhooks::{
    AccountMatch, MAX_BODY_BYTES, PlatformAction, PlatformEvent, PlatformWebhook, WebhookAnswer,
    WebhookReceipt, WebhookRefusal, WebhookRequest, WebhookRoute, confirmation_code,
};
use crate::provider::ProviderId;
use crate::store::{AccountRecord, AuditAction, StoreError, StoredStatus};

/// How many times a change is retried when the account changed meanwhile (a refresh
/// wrote it between our read and our write).
const WRITE_ATTEMPTS: usize = 5;

impl Integrations {
    /// Authenticates a request a platform sent to the host's webhook routes, through the
    /// provider's [`read_webhook`](crate::Provider::read_webhook), and applies each of its
    /// events once:
    ///
    /// - a handshake answers [`WebhookAnswer::Challenge`];
    /// - an event already received (same provider, route and event id) changes nothing
    ///   and answers as the first time did (a data-deletion request keeps its code);
    /// - otherwise the event's action is applied to the account it names (see the table
    ///   in [`platform_webhooks`](crate::platform_webhooks)), audited under the account's
    ///   user, recorded as a [`ConnectionEvent`] when something changed, and its
    ///   [`WebhookReceipt`] written. An event for an account the store does not hold is
    ///   acknowledged (the platforms retry anything else for days) with the receipt
    ///   `unknown_account`.
    ///
    /// A refused request ([`Error::WebhookRefused`]: bad or missing signature, stale,
    /// malformed, over [`MAX_BODY_BYTES`], unknown route) changes nothing; it is logged
    /// and counted (`integrations_platform_webhooks_total`) but not stored, so that
    /// forged requests cannot fill the store.
    #[tracing::instrument(level = "debug", skip(self, request), fields(route = request.route.as_str()))]
    pub async fn handle_platform_webhook(
        &self,
        provider_id: &str,
        request: WebhookRequest<'_>,
    ) -> Result<WebhookAnswer> {
        let provider = self.provider(provider_id)?.clone();
        let read = if request.body.len() > MAX_BODY_BYTES {
            Err(WebhookRefusal::TooLarge(MAX_BODY_BYTES))
        } else {
            provider.read_webhook(&request)
        };
        let events = match read {
            Ok(PlatformWebhook::Handshake { challenge }) => {
                crate::metrics::platform_webhook(provider_id, "handshake");
                return Ok(WebhookAnswer::Challenge(challenge));
            }
            Ok(PlatformWebhook::Events(events)) => events,
            Err(refusal) => {
                crate::metrics::platform_webhook(provider_id, refusal.code());
                tracing::warn!(provider = provider_id, refusal = %refusal, "platform webhook refused");
                return Err(Error::WebhookRefused(refusal));
            }
        };
        let mut receipts = Vec::with_capacity(events.len());
        for event in events {
            let receipt = self
                .apply_platform_event(provider.id(), request.route, event)
                .await?;
            crate::metrics::platform_webhook(provider_id, &receipt.outcome);
            receipts.push(receipt);
        }
        if request.route == WebhookRoute::DataDeletion {
            // Meta's data-deletion request carries one user; answer with its code.
            if let Some(receipt) = receipts.into_iter().find(WebhookReceipt::deletion_done) {
                return Ok(WebhookAnswer::DataDeletion { receipt });
            }
            return Err(Error::WebhookRefused(WebhookRefusal::Malformed(
                "the data-deletion request names no user".into(),
            )));
        }
        Ok(WebhookAnswer::Acknowledged { receipts })
    }

    /// The receipt of a data-deletion request by its confirmation code (what the status
    /// page shows), while it is kept ([`ServiceConfig::deletion_status_retention`](super::ServiceConfig::deletion_status_retention)).
    pub async fn data_deletion_status(&self, code: &str) -> Result<Option<WebhookReceipt>> {
        // Codes are 12 alphanumerics; anything else is no code of ours.
        if code.is_empty() || code.len() > 64 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Ok(None);
        }
        Ok(self.inner.store.webhook_receipt_by_code(code).await?)
    }

    /// Deletes receipts of platform webhooks past
    /// [`ServiceConfig::webhook_receipt_retention`](super::ServiceConfig::webhook_receipt_retention),
    /// and those of data-deletion requests past
    /// [`ServiceConfig::deletion_status_retention`](super::ServiceConfig::deletion_status_retention);
    /// returns how many (the [`Refresher`](crate::Refresher) does it after every pass).
    pub async fn prune_webhook_receipts(&self) -> Result<u64> {
        let now = self.now();
        let config = &self.inner.config;
        Ok(self
            .inner
            .store
            .prune_webhook_receipts(
                now - to_chrono(config.webhook_receipt_retention),
                now - to_chrono(config.deletion_status_retention),
            )
            .await?)
    }

    async fn apply_platform_event(
        &self,
        provider: &ProviderId,
        route: WebhookRoute,
        event: PlatformEvent,
    ) -> Result<WebhookReceipt> {
        let key: String = format!("{}:{}", route.as_str(), event.id)
            .chars()
            .take(255)
            .collect();
        if let Some(done) = self.inner.store.webhook_receipt(provider, &key).await? {
            tracing::debug!(provider = %provider, key, "platform webhook replayed; nothing to do");
            return Ok(done);
        }
        let record = self
            .find_platform_account(provider, &event.accounts)
            .await?;
        let deletion = matches!(event.action, PlatformAction::DeleteData);
        let (outcome, account) = match record {
            None => ("unknown_account".to_owned(), None),
            Some(record) => {
                let account = record.provider_account_id.clone();
                (self.apply_action(record, &event).await?, Some(account))
            }
        };
        let mut receipt = WebhookReceipt {
            provider: provider.clone(),
            key,
            event: crate::platform_webhooks::event_name(&event.name),
            provider_account_id: account,
            outcome,
            confirmation_code: deletion.then(confirmation_code),
            received_at: self.now(),
        };
        // A code is random; on the rare clash, draw another.
        for _ in 0..3 {
            match self
                .inner
                .store
                .insert_webhook_receipt(receipt.clone())
                .await
            {
                Ok((stored, _)) => return Ok(stored),
                Err(StoreError::UniqueViolation(_)) if deletion => {
                    receipt.confirmation_code = Some(confirmation_code());
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Store(StoreError::UniqueViolation(
            "webhook_receipts.confirmation_code".into(),
        )))
    }

    async fn find_platform_account(
        &self,
        provider: &ProviderId,
        accounts: &[AccountMatch],
    ) -> Result<Option<AccountRecord>> {
        let store = &self.inner.store;
        for m in accounts {
            let found = match m {
                AccountMatch::Id(id) => store.find_account(provider, id).await?,
                AccountMatch::Alias(alias) => store.find_account_by_alias(provider, alias).await?,
                AccountMatch::IdWithAlias { id, alias } => store
                    .find_account(provider, id)
                    .await?
                    .filter(|r| has_alias_or_none(r, alias)),
            };
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// Applies one event to its account; returns the receipt's outcome.
    async fn apply_action(
        &self,
        mut record: AccountRecord,
        event: &PlatformEvent,
    ) -> Result<String> {
        // The user authorized again after the platform's event: it is about a grant
        // that no longer exists here.
        // Platforms date events in whole seconds: an event in the second of the
        // authorization is not older than it.
        let authorized_after = |r: &AccountRecord| {
            matches!((event.occurred_at, r.token_issued_at),
                (Some(at), Some(issued)) if at.timestamp() < issued.timestamp())
        };
        let user = record.user_id;
        let pid = record.provider.clone();
        let account = record.provider_account_id.clone();
        if let PlatformAction::DeleteData = event.action {
            let events = [ConnectionEvent::of_account(
                ConnectionEventKind::DataDeleted,
                &record,
                self.now(),
            )
            .with("reason", "platform_request")];
            let deleted = self.inner.store.delete_account(record.id, &events).await?;
            let events = if deleted { &events[..] } else { &[] };
            self.after_write(user, events).await;
            self.audit(
                user,
                &pid,
                Some(&account),
                AuditAction::PlatformDataDeleted,
                &format!("success: {}", event.name),
            )
            .await;
            crate::metrics::disconnected(pid.as_str());
            return Ok("deleted".into());
        }
        for _ in 0..WRITE_ATTEMPTS {
            if authorized_after(&record) {
                return Ok("stale".into());
            }
            let now = self.now();
            let mut next = record.clone();
            let (kind, outcome, audit) = match &event.action {
                PlatformAction::Revoked { reason } | PlatformAction::SessionLost { reason } => {
                    let revoked = matches!(event.action, PlatformAction::Revoked { .. });
                    if revoked {
                        next.access_token = None;
                        next.refresh_token = None;
                    }
                    next.status = StoredStatus::NeedsReconnect;
                    next.last_error = Some(reason.chars().take(200).collect());
                    let (outcome, code) = if revoked {
                        ("revoked", "platform_revoked")
                    } else {
                        ("session_lost", "platform_session_lost")
                    };
                    let kind = (record.status != StoredStatus::NeedsReconnect)
                        .then_some((ConnectionEventKind::NeedsReconnect, code));
                    (kind, outcome, AuditAction::PlatformRevoked)
                }
                PlatformAction::Restored => {
                    if record.status != StoredStatus::NeedsReconnect
                        || record.access_token.is_none()
                    {
                        // Active already, or its grant was revoked: only the user can
                        // bring a revoked grant back.
                        return Ok("unchanged".into());
                    }
                    next.status = StoredStatus::Active;
                    next.last_error = None;
                    next.refresh_failures = 0;
                    (
                        Some((ConnectionEventKind::Restored, "")),
                        "restored",
                        AuditAction::PlatformRestored,
                    )
                }
                PlatformAction::Ignore | PlatformAction::DeleteData => {
                    return Ok("ignored".into());
                }
            };
            if next == record {
                return Ok("unchanged".into());
            }
            next.updated_at = now;
            let events: Vec<ConnectionEvent> = kind
                .map(|(kind, code)| {
                    let e = ConnectionEvent::of_account(kind, &next, now);
                    if code.is_empty() {
                        e
                    } else {
                        e.with("error_code", code)
                            .with("reason", next.last_error.clone().unwrap_or_default())
                    }
                })
                .into_iter()
                .collect();
            match self.inner.store.update_account(&next, &events).await {
                Ok(_) => {
                    self.after_write(user, &events).await;
                    self.audit(
                        user,
                        &pid,
                        Some(&account),
                        audit,
                        &format!("{outcome}: {}", event.name),
                    )
                    .await;
                    if kind.is_some() {
                        crate::metrics::connection_changed(pid.as_str(), next.status.as_str());
                    }
                    return Ok(outcome.into());
                }
                Err(StoreError::VersionConflict) => {
                    match self.inner.store.get_account(record.id).await? {
                        Some(fresh) => record = fresh,
                        None => return Ok("unknown_account".into()),
                    }
                }
                Err(StoreError::NotFound) => return Ok("unknown_account".into()),
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Busy)
    }
}

/// Whether the account lists `alias` among its other ids, or lists none (a row stored
/// before its provider recorded aliases).
fn has_alias_or_none(record: &AccountRecord, alias: &str) -> bool {
    match record
        .metadata
        .get(crate::store::ALIASES_KEY)
        .and_then(|v| v.as_array())
    {
        Some(ids) if !ids.is_empty() => ids.iter().any(|v| v.as_str() == Some(alias)),
        _ => true,
    }
}
