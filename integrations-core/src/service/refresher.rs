//! Refreshing tokens before they expire: [`Integrations::refresh_due`] and the
//! [`Refresher`] background task.

use super::Integrations;
use super::eligibility::{Eligibility, Trigger, eligibility, scheduled_window};
use super::refresh::{AuditBuffer, RefreshContext, RefreshOutcome, Slot};
use crate::error::Result;
use crate::store::AccountRecord;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// Bounds of one [`Integrations::refresh_due`] pass.
#[derive(Debug, Clone)]
pub struct RefreshLimits {
    /// Accounts claimed per store round trip (default 256).
    pub batch: usize,
    /// Platform refresh calls in flight at once, over all platforms (default 16). A
    /// refresh holds its slot for the platform call only; the store write that follows is
    /// bounded by the store's connection pool.
    pub concurrency: usize,
    /// Platform refresh calls in flight at once per platform (default 8), to stay inside
    /// each platform's rate limits.
    pub per_provider: usize,
    /// The most accounts one pass handles (default unlimited).
    pub max_accounts: usize,
}

impl Default for RefreshLimits {
    fn default() -> Self {
        Self {
            batch: 256,
            concurrency: 16,
            per_provider: 8,
            max_accounts: usize::MAX,
        }
    }
}

/// What one [`Integrations::refresh_due`] pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefreshReport {
    /// Accounts claimed.
    pub claimed: usize,
    /// Refreshed by this pass.
    pub refreshed: usize,
    /// The platform refused the grant: the user must reconnect.
    pub needs_reconnect: usize,
    /// Failed with a transient error (rate limit, 5xx, network); old tokens kept, retried
    /// on a later pass.
    pub failed_transient: usize,
    /// Failed otherwise (unreadable tokens, protocol errors, store errors).
    pub failed_other: usize,
    /// Another worker had refreshed or was refreshing them.
    pub skipped_leased: usize,
    /// Nothing to do without a pointless call: no refresh capability, no refresh token
    /// where one is needed, too young to refresh (Instagram's 24 hours), not due yet (more
    /// than half its lifetime left, see [`Integrations::refresh_due`]), or the platform is
    /// not registered here.
    pub skipped_not_refreshable: usize,
}

impl RefreshReport {
    fn add(&mut self, other: &RefreshReport) {
        self.claimed += other.claimed;
        self.refreshed += other.refreshed;
        self.needs_reconnect += other.needs_reconnect;
        self.failed_transient += other.failed_transient;
        self.failed_other += other.failed_other;
        self.skipped_leased += other.skipped_leased;
        self.skipped_not_refreshable += other.skipped_not_refreshable;
    }

    /// Counts one account's outcome.
    fn count(&mut self, outcome: RefreshOutcome) {
        let field = match outcome {
            RefreshOutcome::Refreshed => &mut self.refreshed,
            RefreshOutcome::Reused => &mut self.skipped_leased,
            RefreshOutcome::NeedsReconnect => &mut self.needs_reconnect,
            RefreshOutcome::TransientFailure => &mut self.failed_transient,
            RefreshOutcome::Failure => &mut self.failed_other,
            RefreshOutcome::NotRefreshable => &mut self.skipped_not_refreshable,
        };
        *field += 1;
    }
}

impl Integrations {
    /// Refreshes every account whose access token expires within `window`, claiming them
    /// through the store (`claim_due`) so that several workers share the work and no
    /// account is refreshed twice. Runs until no due account is left that this pass has
    /// not handled.
    ///
    /// A token whose whole lifetime is not much longer than `window` is refreshed when
    /// half its lifetime remains rather than within `window`, which would refresh it on
    /// every pass (a two-hour window with one-hour tokens refreshes them when 30 minutes
    /// remain); such accounts count as `skipped_not_refreshable` until then, and the first
    /// pass that meets one logs a warning naming the platform.
    ///
    /// Accounts that were not refreshed (transient failures, nothing to refresh yet) keep
    /// their lease until the pass ends, so that neither this pass nor another worker's
    /// concurrent pass tries them again at once, and they do not fill the following
    /// batches; they are released at the end and come up again on a later pass.
    #[tracing::instrument(level = "debug", skip_all, fields(window_secs = window.as_secs()))]
    pub async fn refresh_due(
        &self,
        window: Duration,
        limits: RefreshLimits,
    ) -> Result<RefreshReport> {
        let mut held: Vec<(i64, String)> = Vec::new();
        let result = self.refresh_due_inner(window, limits, &mut held).await;
        futures::stream::iter(held)
            .for_each_concurrent(8, |(id, owner)| async move {
                self.release_quietly(id, &owner).await;
            })
            .await;
        let report = result?;
        tracing::debug!(?report, "refresh pass finished");
        Ok(report)
    }

    async fn refresh_due_inner(
        &self,
        window: Duration,
        limits: RefreshLimits,
        held: &mut Vec<(i64, String)>,
    ) -> Result<RefreshReport> {
        let mut report = RefreshReport::default();
        // The accounts this pass has started and may meet again: an account it refreshed
        // leaves the set once its new expiry is past the window (a later claim can only
        // return it when it is due again), so the set holds the accounts the pass keeps
        // leased, not every account of the table.
        let mut seen: HashSet<i64> = HashSet::new();
        let mut started = 0usize;
        let global = Arc::new(Semaphore::new(limits.concurrency.max(1)));
        let mut per_provider: HashMap<String, Arc<Semaphore>> = HashMap::new();
        let audit = Arc::new(AuditBuffer::default());
        let batch_size = limits.batch.max(1);
        let mut tasks = JoinSet::new();
        let mut exhausted = false;
        let mut failure = None;
        loop {
            // Claim the next batch while the current one still has half its refreshes to
            // go, so that the store round trip overlaps the platform calls instead of
            // stalling them.
            if !exhausted && tasks.len() <= batch_size / 2 {
                if started >= limits.max_accounts {
                    exhausted = true;
                    continue;
                }
                let lease = self.lease();
                let before =
                    lease.now + chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
                let want = batch_size.min(limits.max_accounts - started);
                let batch = match self.store().claim_due(before, want, &lease).await {
                    Ok(batch) => batch,
                    Err(e) => {
                        // Let the refreshes already running finish before reporting it.
                        failure = Some(e);
                        exhausted = true;
                        continue;
                    }
                };
                // An empty claim ends the pass. A claim of only accounts the pass has met
                // does not: they are now held until the pass ends, so the next claim
                // reaches past them.
                if batch.is_empty() {
                    exhausted = true;
                }
                let mut fresh = 0;
                for record in batch {
                    if !seen.insert(record.id) {
                        // Met earlier in this pass: its lease expired, or its refresh gave
                        // a token already inside the window. Hold it until the pass ends.
                        held.push((record.id, lease.owner.clone()));
                        continue;
                    }
                    fresh += 1;
                    started += 1;
                    let sem = per_provider
                        .entry(record.provider.as_str().to_owned())
                        .or_insert_with(|| Arc::new(Semaphore::new(limits.per_provider.max(1))))
                        .clone();
                    let global = global.clone();
                    let this = self.clone();
                    let owner = lease.owner.clone();
                    let audit = audit.clone();
                    let window = super::to_chrono(window);
                    tasks.spawn(async move {
                        let mut slot = Slot::new();
                        slot.extend(global.acquire_owned().await.ok());
                        slot.extend(sem.acquire_owned().await.ok());
                        let id = record.id;
                        let span = tracing::debug_span!(
                            "refresh_account",
                            provider = %record.provider,
                            account = %record.provider_account_id,
                        );
                        let outcome = tracing::Instrument::instrument(
                            this.refresh_claimed(record, window, &owner, &audit, slot),
                            span,
                        )
                        .await;
                        (id, owner, outcome)
                    });
                }
                report.claimed += fresh;
                self.flush_audit(&audit).await;
                continue;
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            let Ok((id, owner, (outcome, expires_at))) = joined else {
                // A panicked task: its lease runs out by itself.
                report.failed_other += 1;
                continue;
            };
            report.count(outcome);
            if matches!(outcome, RefreshOutcome::Refreshed | RefreshOutcome::Reused) {
                let horizon = self.now() + super::to_chrono(window);
                if expires_at.is_some_and(|at| at > horizon) {
                    seen.remove(&id);
                }
            } else {
                held.push((id, owner));
            }
        }
        self.flush_audit(&audit).await;
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(report),
        }
    }

    /// Appends the audit events collected so far in one batch.
    async fn flush_audit(&self, audit: &AuditBuffer) {
        let events = std::mem::take(&mut *audit.lock().unwrap_or_else(|e| e.into_inner()));
        if !events.is_empty()
            && let Err(e) = self.store().append_audit_batch(events).await
        {
            tracing::warn!(error = %e, "could not append a refresh pass's audit events");
        }
    }

    /// Warns, once per platform and instance, when a pass's window is longer than half the
    /// lifetime of a platform's tokens: such tokens are refreshed when half their lifetime
    /// remains ([`scheduled_window`]), not as soon as the window says, which would be on
    /// every pass.
    fn warn_if_window_clamped(&self, record: &AccountRecord, window: chrono::Duration) {
        let Some(clamped) = scheduled_window(record, window) else {
            return;
        };
        if clamped >= window {
            return;
        }
        let first = self
            .inner
            .window_warned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(record.provider.clone());
        if first {
            tracing::warn!(
                provider = %record.provider,
                window_secs = window.num_seconds(),
                refreshed_within_secs = clamped.num_seconds(),
                "the refresh window is longer than half the lifetime of this platform's tokens; \
                 they are refreshed when half their lifetime remains. Choose a window shorter \
                 than half the token lifetime"
            );
        }
    }

    async fn release_quietly(&self, id: i64, owner: &str) {
        if let Err(e) = self.store().release_lease(id, owner).await {
            tracing::warn!(error = %e, account = id, "could not release a refresh lease");
        }
    }

    async fn refresh_claimed(
        &self,
        record: AccountRecord,
        window: chrono::Duration,
        owner: &str,
        audit: &AuditBuffer,
        slot: Slot,
    ) -> (RefreshOutcome, Option<DateTime<Utc>>) {
        let Ok(provider) = self.provider(record.provider.as_str()).cloned() else {
            return (RefreshOutcome::NotRefreshable, None);
        };
        self.warn_if_window_clamped(&record, window);
        let trigger = Trigger::Scheduled(window);
        if eligibility(provider.as_ref(), &record, trigger, self.now()) != Eligibility::Refresh {
            return (RefreshOutcome::NotRefreshable, None);
        }
        let id = record.id;
        let pid = record.provider.clone();
        let started = std::time::Instant::now();
        let result = self
            .refresh_record(
                &provider,
                record,
                RefreshContext::in_pass(owner, audit, slot),
            )
            .await;
        let outcome = RefreshOutcome::of(&result);
        if let (RefreshOutcome::Failure, Err(e)) = (outcome, &result) {
            tracing::warn!(error = %e, account = id, provider = %pid, "refresh failed");
        }
        crate::metrics::refresh_outcome(pid.as_str(), outcome, started.elapsed());
        let expires_at = result.ok().and_then(|(stored, _)| stored.expires_at);
        (outcome, expires_at)
    }
}

/// Settings of a [`Refresher`].
#[derive(Debug, Clone)]
pub struct RefresherConfig {
    /// Time between passes (default 60 seconds).
    pub interval: Duration,
    /// Up to this much random time is added to each interval, so that instances started
    /// together spread out (default 10 seconds).
    pub jitter: Duration,
    /// Refresh tokens expiring within this window (default 10 minutes), or within half
    /// their lifetime when that is shorter. Choose it longer than `interval + jitter` and
    /// shorter than half the shortest token lifetime (Reddit: one hour).
    pub window: Duration,
    /// Bounds of each pass.
    pub limits: RefreshLimits,
}

impl Default for RefresherConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            jitter: Duration::from_secs(10),
            window: Duration::from_secs(600),
            limits: RefreshLimits::default(),
        }
    }
}

/// A background task running [`Integrations::refresh_due`] on an interval with jitter.
///
/// After every pass it also updates the connection gauges
/// ([`Integrations::record_connection_gauges`]).
///
/// [`shutdown`](Self::shutdown) lets a running pass finish (each refresh in it completes
/// and releases its lease) and then stops. Dropping the handle stops it the same way
/// without waiting.
#[derive(Debug)]
pub struct Refresher {
    stop: watch::Sender<bool>,
    reports: watch::Receiver<RefreshReport>,
    task: Option<tokio::task::JoinHandle<RefreshReport>>,
}

impl Refresher {
    /// Starts the task on the current tokio runtime. The first pass runs at once. After
    /// each pass it also updates the connection gauges, purges expired pending
    /// authorizations ([`Integrations::purge_expired`]) and prunes old connection events
    /// ([`Integrations::prune_events`]).
    pub fn spawn(integrations: Integrations, config: RefresherConfig) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let (report_tx, reports) = watch::channel(RefreshReport::default());
        let task = tokio::spawn(async move {
            let mut total = RefreshReport::default();
            loop {
                match integrations
                    .refresh_due(config.window, config.limits.clone())
                    .await
                {
                    Ok(report) => {
                        total.add(&report);
                        let _ = report_tx.send(report);
                    }
                    Err(e) => tracing::warn!(error = %e, "refresh pass failed"),
                }
                if let Err(e) = integrations.record_connection_gauges().await {
                    tracing::warn!(error = %e, "could not count connections for the gauges");
                }
                if let Err(e) = integrations.purge_expired().await {
                    tracing::warn!(error = %e, "could not purge expired authorizations");
                }
                if let Err(e) = integrations.prune_events().await {
                    tracing::warn!(error = %e, "could not prune old connection events");
                }
                if let Err(e) = integrations.prune_webhook_receipts().await {
                    tracing::warn!(error = %e, "could not prune old platform webhook receipts");
                }
                if let Err(e) = integrations.flush_health().await {
                    tracing::warn!(error = %e, "could not write the health records");
                }
                if let Err(e) = integrations.prune_health().await {
                    tracing::warn!(error = %e, "could not prune old health records");
                }
                let mut jitter_ms = [0u8; 4];
                rand::fill(&mut jitter_ms[..]);
                let jitter = config.jitter.as_millis() as u64;
                let extra = if jitter == 0 {
                    0
                } else {
                    u64::from(u32::from_le_bytes(jitter_ms)) % jitter
                };
                let wait = config.interval + Duration::from_millis(extra);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stopped.wait_for(|s| *s) => break,
                }
                if *stopped.borrow() {
                    break;
                }
            }
            total
        });
        Self {
            stop,
            reports,
            task: Some(task),
        }
    }

    /// The report of the latest pass.
    pub fn last_report(&self) -> RefreshReport {
        *self.reports.borrow()
    }

    /// A receiver that sees each pass's report.
    pub fn reports(&self) -> watch::Receiver<RefreshReport> {
        self.reports.clone()
    }

    /// Stops after the running pass (if any) finishes; returns the totals of all passes.
    pub async fn shutdown(mut self) -> RefreshReport {
        let _ = self.stop.send(true);
        match self.task.take() {
            Some(task) => task.await.unwrap_or_default(),
            None => RefreshReport::default(),
        }
    }
}

impl Drop for Refresher {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
