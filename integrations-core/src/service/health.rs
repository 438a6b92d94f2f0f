//! Recording platform calls and reading the platforms' health: [`Integrations::health`]
//! (the module [`health`](crate::health) holds the types and the rules).

use super::{Integrations, to_chrono};
use crate::error::{Error, Result};
use crate::health::{self, CallClass, CallKind, CallRecord, PlatformHealth, minute_of};
use crate::provider::{ProviderError, ProviderId};
use crate::store::StoredStatus;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::future::Future;
use std::time::{Duration, Instant};

/// Every platform's health, with its accounts.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthOverview {
    /// When it was computed.
    pub generated_at: DateTime<Utc>,
    /// One entry per registered platform, by id.
    pub platforms: Vec<PlatformOverview>,
}

/// One platform's health and accounts.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformOverview {
    /// Its calls, state, quota, chart series and recent errors.
    #[serde(flatten)]
    pub health: PlatformHealth,
    /// Accounts by stored status (`active`, `needs_reconnect`).
    pub accounts: std::collections::BTreeMap<StoredStatus, u64>,
    /// Active accounts whose access token is past its expiry: waiting for a refresh, or
    /// unable to refresh (the refresh backlog).
    pub refresh_backlog: u64,
}

impl Integrations {
    /// Runs a provider call, recording its outcome class, latency and the quota signal of
    /// the responses it read (unless [`ServiceConfig::health_recording`](super::ServiceConfig::health_recording)
    /// is off). Errors no request was made for are not recorded.
    pub(crate) async fn observed<T>(
        &self,
        provider: &ProviderId,
        kind: CallKind,
        call: impl Future<Output = std::result::Result<T, ProviderError>>,
    ) -> std::result::Result<T, ProviderError> {
        if !self.inner.config.health_recording {
            return call.await;
        }
        let started = Instant::now();
        let (out, responses, quota, account_quotas) = health::capture(call).await;
        // A call that read no response made no platform call (an authorization URL
        // built locally), unless it failed to reach the platform at all.
        let class = match &out {
            Ok(_) if responses == 0 => None,
            Ok(_) => Some(CallClass::Ok),
            Err(e @ ProviderError::Network { .. }) => CallClass::of_error(e),
            Err(_) if responses == 0 => None,
            Err(e) => CallClass::of_error(e),
        };
        if let Some(class) = class {
            let error = out.as_ref().err().map(|e| {
                let e = Error::Provider(e.clone());
                (e.code().to_owned(), e.to_string())
            });
            self.inner.health.record(CallRecord {
                provider,
                kind,
                class,
                latency: started.elapsed(),
                at: self.now(),
                error,
                quota,
                account_quotas,
            });
        }
        out
    }

    /// Records one attempt of [`send`](Self::send): its status (or the transport error)
    /// and the quota signal of its headers.
    pub(crate) fn record_send(
        &self,
        provider: &ProviderId,
        answer: std::result::Result<(u16, &http::HeaderMap), &ProviderError>,
        latency: Duration,
    ) {
        if !self.inner.config.health_recording {
            return;
        }
        let now = self.now();
        let (class, error, quota, account_quotas) = match answer {
            Ok((status, headers)) => {
                let class = CallClass::of_status(status);
                // The codes the library's errors use for the same answers.
                let code = match class {
                    CallClass::RateLimited => "provider_rate_limited".to_owned(),
                    CallClass::ServerError => "provider_unavailable".to_owned(),
                    _ => format!("http_{status}"),
                };
                let error = class
                    .ne(&CallClass::Ok)
                    .then(|| (code, format!("the platform answered HTTP {status}")));
                (
                    class,
                    error,
                    health::quota_signal(status, headers, now),
                    health::account_quotas(headers, now),
                )
            }
            Err(e) => {
                let class = CallClass::of_error(e).unwrap_or(CallClass::Network);
                let err = Error::Provider(e.clone());
                (
                    class,
                    Some((err.code().to_owned(), err.to_string())),
                    None,
                    Vec::new(),
                )
            }
        };
        self.inner.health.record(CallRecord {
            provider,
            kind: CallKind::Send,
            class,
            latency,
            at: now,
            error,
            quota,
            account_quotas,
        });
    }

    /// Writes this process's recorded minutes that changed to the store (each process
    /// writes its own rows, so several processes make one view); returns how many rows.
    /// On a store error the minutes are kept for the next flush.
    pub async fn flush_health(&self) -> Result<usize> {
        let keep_after = minute_of(self.now()) - chrono::Duration::minutes(2);
        let rows = self.inner.health.take_dirty(keep_after);
        if rows.is_empty() {
            return Ok(0);
        }
        if let Err(e) = self.inner.store.save_health(&rows).await {
            self.inner.health.restore_dirty(&rows);
            return Err(e.into());
        }
        Ok(rows.len())
    }

    /// Flushes the health records every `period`, forever (spawn it; the
    /// [`Refresher`](crate::Refresher) also flushes after each pass).
    pub async fn flush_health_every(self, period: Duration) {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.flush_health().await {
                tracing::warn!(error = %e, "could not write the health records");
            }
        }
    }

    /// Deletes health rows past [`ServiceConfig::health_retention`](super::ServiceConfig::health_retention);
    /// returns how many.
    pub async fn prune_health(&self) -> Result<u64> {
        let before = self.now() - to_chrono(self.inner.config.health_retention);
        Ok(self.inner.store.prune_health(before).await?)
    }

    /// Every registered platform's health over the last 24 hours, from every process's
    /// records (this one's are flushed first), with its accounts by status and its
    /// refresh backlog. See [`crate::health`] for what is recorded and how a
    /// platform's state is decided.
    pub async fn health(&self) -> Result<HealthOverview> {
        let now = self.now();
        if let Err(e) = self.flush_health().await {
            tracing::warn!(error = %e, "could not write the health records");
        }
        let rows = self
            .inner
            .store
            .health_since(minute_of(now) - chrono::Duration::hours(24))
            .await?;
        let counts = self.inner.store.count_accounts(now).await?;
        let providers = self.provider_ids();
        let platforms = health::report(&providers, &rows, now)
            .into_iter()
            .map(|health| {
                let mine = counts.iter().filter(|c| c.provider == health.provider);
                let mut accounts = std::collections::BTreeMap::new();
                let mut refresh_backlog = 0;
                for c in mine {
                    *accounts.entry(c.status).or_default() += c.accounts;
                    if c.status == StoredStatus::Active {
                        refresh_backlog += c.past_expiry;
                    }
                }
                PlatformOverview {
                    health,
                    accounts,
                    refresh_backlog,
                }
            })
            .collect();
        Ok(HealthOverview {
            generated_at: now,
            platforms,
        })
    }
}
