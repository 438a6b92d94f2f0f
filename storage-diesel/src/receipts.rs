//! `platform_webhook_receipts` rows (one per platform event applied) and
//! `platform_health_minutes` rows (one per platform, minute and process).

use crate::models::provider;
use crate::schema::{platform_health_minutes, platform_webhook_receipts};
use crate::types::{Doc, Ts};
use diesel::prelude::*;
use integrations_core::health::{HealthMinute, MinuteStats};
use integrations_core::{StoreError, WebhookReceipt};

/// A `platform_webhook_receipts` row (read and written alike).
#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = platform_webhook_receipts)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub(crate) struct ReceiptRow {
    pub(crate) provider: String,
    pub(crate) receipt_key: String,
    pub(crate) event: String,
    pub(crate) provider_account_id: Option<String>,
    pub(crate) outcome: String,
    pub(crate) confirmation_code: Option<String>,
    pub(crate) received_at: Ts,
}

impl ReceiptRow {
    pub(crate) fn new(r: &WebhookReceipt) -> Self {
        Self {
            provider: r.provider.as_str().to_owned(),
            receipt_key: r.key.clone(),
            event: r.event.clone(),
            provider_account_id: r.provider_account_id.clone(),
            outcome: r.outcome.clone(),
            confirmation_code: r.confirmation_code.clone(),
            received_at: Ts::new(r.received_at),
        }
    }

    pub(crate) fn into_receipt(self) -> Result<WebhookReceipt, StoreError> {
        Ok(WebhookReceipt {
            provider: provider(self.provider, "platform_webhook_receipts row")?,
            key: self.receipt_key,
            event: self.event,
            provider_account_id: self.provider_account_id,
            outcome: self.outcome,
            confirmation_code: self.confirmation_code,
            received_at: self.received_at.0,
        })
    }
}

/// A `platform_health_minutes` row.
#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = platform_health_minutes)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub(crate) struct HealthRow {
    pub(crate) provider: String,
    pub(crate) minute: Ts,
    pub(crate) instance: String,
    pub(crate) stats: Doc,
}

impl HealthRow {
    pub(crate) fn new(r: &HealthMinute) -> Result<Self, StoreError> {
        Ok(Self {
            provider: r.provider.as_str().to_owned(),
            minute: Ts::new(r.minute),
            instance: r.instance.clone(),
            stats: Doc(serde_json::to_value(&r.stats)
                .map_err(|e| StoreError::Corrupt(format!("health stats: {e}")))?),
        })
    }

    pub(crate) fn into_minute(self) -> Result<HealthMinute, StoreError> {
        let what = "platform_health_minutes row";
        let stats: MinuteStats = serde_json::from_value(self.stats.0)
            .map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))?;
        Ok(HealthMinute {
            provider: provider(self.provider, what)?,
            minute: self.minute.0,
            instance: self.instance,
            stats,
        })
    }
}
