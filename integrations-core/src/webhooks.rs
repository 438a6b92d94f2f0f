//! Signed webhooks: connection events POSTed to a host's endpoints as the
//! [Standard Webhooks](https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md)
//! specification describes them, and the check a receiving host runs.
//!
//! Each request carries `webhook-id` (the event's id, the same on every retry),
//! `webhook-timestamp` (unix seconds, per attempt) and `webhook-signature`: one
//! `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` entry per secret, so that a
//! secret can be rotated without a gap (sign with both, then drop the old one).
//!
//! [`Deliverer`] sends at least once: an event is retried on the
//! [`RetrySchedule`] until the endpoint answers 2xx or the schedule ends (the delivery is
//! then `failed`, listed by [`TokenStore::list_deliveries`](crate::TokenStore::list_deliveries)).
//! Several deliverers, in any processes sharing the store, split the work; each account's
//! events reach an endpoint one at a time, in order. A receiver deduplicates by
//! `webhook-id`. [`verify`] is the receiving side.

use crate::Integrations;
use crate::events::StoredEvent;
use crate::store::{Delivery, DeliveryOutcome, Lease};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use std::fmt;
use std::time::Duration;
use zeroize::Zeroizing;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The header carrying the event id.
pub const HEADER_ID: &str = "webhook-id";
/// The header carrying the attempt's unix time in seconds.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// The header carrying the signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// What went wrong with a secret or a webhook.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The secret is not `whsec_` followed by base64 of 24 to 64 bytes.
    #[error("the webhook secret must be `whsec_` and the base64 of 24 to 64 random bytes")]
    InvalidSecret,
    /// A required header is missing.
    #[error("the `{0}` header is missing")]
    MissingHeader(&'static str),
    /// A header is present but malformed.
    #[error("the `{0}` header is malformed")]
    InvalidHeader(&'static str),
    /// The timestamp is too far from now (a replay, or a clock far off).
    #[error("the webhook timestamp is outside the tolerance")]
    Timestamp,
    /// No signature matches any of the secrets.
    #[error("no webhook signature matches")]
    InvalidSignature,
}

/// A signing secret: shown as `whsec_<base64>`, never printed by `Debug`.
#[derive(Clone)]
pub struct WebhookSecret(Zeroizing<Vec<u8>>);

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

impl WebhookSecret {
    /// Reads `whsec_<base64>` (the prefix may be left out), 24 to 64 bytes once decoded.
    pub fn parse(s: &str) -> Result<Self, WebhookError> {
        let b64 = s.trim().strip_prefix("whsec_").unwrap_or(s.trim());
        let bytes = Zeroizing::new(
            STANDARD
                .decode(b64)
                .map_err(|_| WebhookError::InvalidSecret)?,
        );
        if !(24..=64).contains(&bytes.len()) {
            return Err(WebhookError::InvalidSecret);
        }
        Ok(Self(bytes))
    }

    /// A new random 32-byte secret, with its `whsec_` form to hand to the receiver.
    pub fn generate() -> (Self, String) {
        let mut bytes = Zeroizing::new(vec![0u8; 32]);
        rand::fill(&mut bytes[..]);
        let shown = format!("whsec_{}", STANDARD.encode(&bytes[..]));
        (Self(bytes), shown)
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        // Any key length is valid for HMAC.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `v1,<base64>` signature of a message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self.mac(id, timestamp, body).finalize().into_bytes();
        format!("v1,{}", STANDARD.encode(tag))
    }
}

/// The `webhook-signature` value: one entry per secret, space-separated.
pub fn signature_header(
    secrets: &[WebhookSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| s.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A webhook that passed [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The `webhook-id`: deduplicate by it.
    pub id: String,
    /// The attempt's time.
    pub timestamp: DateTime<Utc>,
}

/// Checks a received webhook: the three headers are present, the timestamp is within
/// `tolerance` of `now` (the specification suggests 5 minutes), and at least one `v1`
/// signature matches one of `secrets` (compared in constant time) over the **raw**
/// `body` bytes. Entries of other versions are ignored.
pub fn verify(
    secrets: &[WebhookSecret],
    headers: &http::HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<Verified, WebhookError> {
    verify_with(STANDARD_HEADERS, secrets, headers, body, now, tolerance)
}

/// The names of the three headers of a Standard Webhooks signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureHeaders {
    /// The message id header.
    pub id: &'static str,
    /// The timestamp header.
    pub timestamp: &'static str,
    /// The signature header.
    pub signature: &'static str,
}

/// `webhook-id`, `webhook-timestamp`, `webhook-signature` (what this library sends).
pub const STANDARD_HEADERS: SignatureHeaders = SignatureHeaders {
    id: HEADER_ID,
    timestamp: HEADER_TIMESTAMP,
    signature: HEADER_SIGNATURE,
};

/// `svix-id`, `svix-timestamp`, `svix-signature`: the same scheme under Svix's names
/// (what Svix-based senders, such as the OFAuth gateway, send).
pub const SVIX_HEADERS: SignatureHeaders = SignatureHeaders {
    id: "svix-id",
    timestamp: "svix-timestamp",
    signature: "svix-signature",
};

/// [`verify`] with other header names ([`SVIX_HEADERS`]).
pub fn verify_with(
    names: SignatureHeaders,
    secrets: &[WebhookSecret],
    headers: &http::HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<Verified, WebhookError> {
    let header = |name: &'static str| -> Result<&str, WebhookError> {
        headers
            .get(name)
            .ok_or(WebhookError::MissingHeader(name))?
            .to_str()
            .map_err(|_| WebhookError::InvalidHeader(name))
    };
    let id = header(names.id)?;
    let timestamp: i64 = header(names.timestamp)?
        .trim()
        .parse()
        .map_err(|_| WebhookError::InvalidHeader(names.timestamp))?;
    let signatures = header(names.signature)?;
    let at = DateTime::from_timestamp(timestamp, 0)
        .ok_or(WebhookError::InvalidHeader(names.timestamp))?;
    let tolerance = chrono::Duration::from_std(tolerance).unwrap_or(chrono::Duration::MAX);
    if (now - at).abs() > tolerance {
        return Err(WebhookError::Timestamp);
    }
    for entry in signatures.split_whitespace() {
        let Some(("v1", sig)) = entry.split_once(',') else {
            continue;
        };
        let Ok(sig) = STANDARD.decode(sig) else {
            continue;
        };
        if secrets
            .iter()
            .any(|s| s.mac(id, timestamp, body).verify_slice(&sig).is_ok())
        {
            return Ok(Verified {
                id: id.to_owned(),
                timestamp: at,
            });
        }
    }
    Err(WebhookError::InvalidSignature)
}

fn chrono_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// A host's endpoint.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// A stable name: deliveries and their cursor are stored under it (renaming it starts
    /// over from the oldest event kept).
    pub name: String,
    /// Where events are POSTed.
    pub url: url::Url,
    /// The signing secrets: the first alone, or during a rotation the new and the old.
    pub secrets: Vec<WebhookSecret>,
}

/// The waits before each retry; after the last one fails, the delivery is `failed`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySchedule {
    /// The wait before retry 1, 2, ...
    pub waits: Vec<Duration>,
    /// Each wait is lengthened by a random part up to this fraction of it (default 0.2),
    /// so that endpoints back up do not all get retried at once.
    pub jitter: f64,
}

impl Default for RetrySchedule {
    /// The specification's schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h,
    /// 24 h (10 attempts over about 3 days).
    fn default() -> Self {
        let m = 60;
        let h = 3600;
        Self {
            waits: [
                5,
                5 * m,
                30 * m,
                2 * h,
                5 * h,
                10 * h,
                14 * h,
                20 * h,
                24 * h,
            ]
            .into_iter()
            .map(Duration::from_secs)
            .collect(),
            jitter: 0.2,
        }
    }
}

impl RetrySchedule {
    /// The wait after failed attempt `attempt` (1-based), or `None` when it was the last.
    pub fn wait_after(&self, attempt: u32) -> Option<Duration> {
        let base = *self.waits.get(attempt.checked_sub(1)? as usize)?;
        let mut r = [0u8; 4];
        rand::fill(&mut r[..]);
        let fraction = f64::from(u32::from_le_bytes(r)) / f64::from(u32::MAX);
        let extra = base.as_secs_f64() * self.jitter.clamp(0.0, 1.0) * fraction;
        Some(base + Duration::from_secs_f64(extra))
    }
}

/// Tunables of a [`Deliverer`].
#[derive(Debug, Clone)]
pub struct DelivererConfig {
    /// Deliveries claimed (and sent concurrently) per endpoint and round (default 64).
    pub batch: usize,
    /// How long a claimed delivery stays leased if its deliverer dies (default 60 s;
    /// longer than `timeout`).
    pub lease_ttl: Duration,
    /// The time an endpoint has to answer (default 15 s).
    pub timeout: Duration,
    /// The retry schedule.
    pub retries: RetrySchedule,
    /// How long an idle deliverer waits before looking again, unless an event wakes it
    /// (default 1 s).
    pub poll: Duration,
}

impl Default for DelivererConfig {
    fn default() -> Self {
        Self {
            batch: 64,
            lease_ttl: Duration::from_secs(60),
            timeout: Duration::from_secs(15),
            retries: RetrySchedule::default(),
            poll: Duration::from_secs(1),
        }
    }
}

/// What one [`Deliverer::run_once`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Deliveries created from new events.
    pub enqueued: usize,
    /// Attempts answered 2xx.
    pub delivered: usize,
    /// Attempts that failed and will be retried.
    pub retried: usize,
    /// Attempts that failed for good.
    pub failed: usize,
}

/// Delivers connection events to endpoints (see the [module docs](self)). Cheap to
/// clone: clones share one identity (lease owner) and HTTP client.
#[derive(Debug, Clone)]
pub struct Deliverer {
    inner: std::sync::Arc<DelivererInner>,
}

#[derive(Debug)]
struct DelivererInner {
    integrations: Integrations,
    endpoints: Vec<Endpoint>,
    config: DelivererConfig,
    http: reqwest::Client,
    owner: String,
}

impl Deliverer {
    /// A deliverer of `integrations`' store's events to `endpoints`.
    pub fn new(
        integrations: Integrations,
        endpoints: Vec<Endpoint>,
        config: DelivererConfig,
    ) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .user_agent(concat!("integrations-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        let mut id = [0u8; 8];
        rand::fill(&mut id[..]);
        Self {
            inner: std::sync::Arc::new(DelivererInner {
                integrations,
                endpoints,
                config,
                http,
                owner: format!("deliverer-{}", hex::encode(id)),
            }),
        }
    }

    /// Turns new events into deliveries, then claims up to `free` due ones, spread over
    /// the endpoints (by endpoint index); also returns how many deliveries were created.
    async fn claim(&self, free: usize) -> crate::Result<(usize, Vec<(usize, Delivery)>)> {
        let store = self.inner.integrations.store();
        let mut claimed = Vec::new();
        let mut enqueued = 0;
        for (i, endpoint) in self.inner.endpoints.iter().enumerate() {
            let free = free.saturating_sub(claimed.len());
            if free == 0 {
                break;
            }
            let now = self.inner.integrations.now();
            enqueued += store
                .enqueue_deliveries(&endpoint.name, now, self.inner.config.batch.max(1) * 4)
                .await?;
            let lease = Lease {
                owner: self.inner.owner.clone(),
                now,
                until: now + chrono_of(self.inner.config.lease_ttl),
            };
            for d in store.claim_deliveries(&endpoint.name, &lease, free).await? {
                claimed.push((i, d));
            }
        }
        Ok((enqueued, claimed))
    }

    /// One round: turns new events into deliveries, claims up to
    /// [`DelivererConfig::batch`] due ones over all endpoints, sends them concurrently and
    /// waits for every answer (a test or a cron job; [`run`](Self::run) is the service).
    pub async fn run_once(&self) -> crate::Result<DeliveryReport> {
        let (enqueued, claimed) = self.claim(self.inner.config.batch.max(1)).await?;
        let mut report = DeliveryReport {
            enqueued,
            ..DeliveryReport::default()
        };
        let attempts = claimed
            .into_iter()
            .map(|(i, d)| self.attempt(&self.inner.endpoints[i], d));
        for outcome in futures::future::join_all(attempts).await {
            match outcome? {
                DeliveryOutcome::Delivered { .. } => report.delivered += 1,
                DeliveryOutcome::Retry { .. } => report.retried += 1,
                DeliveryOutcome::Failed { .. } => report.failed += 1,
            }
        }
        Ok(report)
    }

    /// Delivers until `shutdown` completes, keeping up to [`DelivererConfig::batch`]
    /// attempts in flight: whenever one ends, another due delivery is claimed, so a slow
    /// endpoint holds back only its own attempts. When nothing is due it waits for an
    /// event, the end of an attempt, or [`DelivererConfig::poll`]. A store error is
    /// logged and retried after the poll interval. On shutdown, the attempts in flight
    /// finish (each within [`DelivererConfig::timeout`]) and are recorded.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let cap = self.inner.config.batch.max(1);
        let mut inflight = tokio::task::JoinSet::new();
        loop {
            while inflight.try_join_next().is_some() {}
            let free = cap.saturating_sub(inflight.len());
            // Claim in batches: at least half the capacity, or whatever when idle.
            let claimed = if free == 0 || (free < cap.div_ceil(2) && !inflight.is_empty()) {
                Vec::new()
            } else {
                match self.claim(free).await {
                    Ok((_, claimed)) => claimed,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not claim webhook deliveries");
                        Vec::new()
                    }
                }
            };
            let idle = claimed.is_empty();
            for (i, d) in claimed {
                let this = self.clone();
                inflight.spawn(async move {
                    if let Err(e) = this.attempt(&this.inner.endpoints[i], d).await {
                        tracing::warn!(error = %e, "could not record a webhook attempt");
                    }
                });
            }
            if idle {
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = inflight.join_next(), if !inflight.is_empty() => {}
                    _ = self.inner.integrations.store().wait_for_events(self.inner.config.poll) => {}
                }
            } else if futures::FutureExt::now_or_never(&mut shutdown).is_some() {
                break;
            }
        }
        while inflight.join_next().await.is_some() {}
    }

    async fn attempt(&self, endpoint: &Endpoint, d: Delivery) -> crate::Result<DeliveryOutcome> {
        let error = self.post(endpoint, &d.event).await.err();
        let now = self.inner.integrations.now();
        let outcome = match error {
            None => DeliveryOutcome::Delivered { at: now },
            Some((error, gone)) => match self.inner.config.retries.wait_after(d.attempts) {
                Some(wait) if !gone => DeliveryOutcome::Retry {
                    next_attempt_at: now + chrono_of(wait),
                    error,
                },
                _ => DeliveryOutcome::Failed { at: now, error },
            },
        };
        let kept = self
            .inner
            .integrations
            .store()
            .finish_delivery(
                &endpoint.name,
                d.event.position,
                &self.inner.owner,
                &outcome,
            )
            .await?;
        if !kept {
            tracing::warn!(
                endpoint = %endpoint.name,
                position = d.event.position.0,
                "a webhook delivery outlived its lease; another deliverer retries it"
            );
        }
        Ok(outcome)
    }

    /// One POST; on failure, a description (status or transport error, never a secret)
    /// and whether the endpoint is gone for good (410).
    async fn post(&self, endpoint: &Endpoint, event: &StoredEvent) -> Result<(), (String, bool)> {
        let body = event.webhook_body();
        let id = event.event.id.as_str();
        let timestamp = self.inner.integrations.now().timestamp();
        let signature = signature_header(&endpoint.secrets, id, timestamp, &body);
        let sent = self
            .inner
            .http
            .post(endpoint.url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(HEADER_ID, id)
            .header(HEADER_TIMESTAMP, timestamp.to_string())
            .header(HEADER_SIGNATURE, signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => {
                let status = r.status();
                Err((
                    format!("the endpoint answered HTTP {}", status.as_u16()),
                    status == reqwest::StatusCode::GONE,
                ))
            }
            Err(e) if e.is_timeout() => Err(("the endpoint did not answer in time".into(), false)),
            Err(e) if e.is_connect() => Err(("could not connect to the endpoint".into(), false)),
            Err(_) => Err(("the request to the endpoint failed".into(), false)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector of the Standard Webhooks reference library (`test_sign`).
    #[test]
    fn signs_the_specification_vector() {
        let secret = WebhookSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        assert_eq!(
            secret.sign("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367553, body),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    fn headers(id: &str, ts: i64, sig: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(HEADER_ID, id.parse().unwrap());
        h.insert(HEADER_TIMESTAMP, ts.to_string().parse().unwrap());
        h.insert(HEADER_SIGNATURE, sig.parse().unwrap());
        h
    }

    #[test]
    fn verify_accepts_any_matching_secret_and_refuses_the_rest() {
        let (old, _) = WebhookSecret::generate();
        let (new, _) = WebhookSecret::generate();
        let (other, _) = WebhookSecret::generate();
        let now = Utc::now();
        let ts = now.timestamp();
        let body = b"{\"a\":1}";
        let both = signature_header(&[new.clone(), old.clone()], "evt_1", ts, body);
        let tol = Duration::from_secs(300);
        // A receiver that knows only one of the two secrets accepts.
        for secrets in [vec![old.clone()], vec![new.clone()]] {
            let ok = verify(&secrets, &headers("evt_1", ts, &both), body, now, tol).unwrap();
            assert_eq!(ok.id, "evt_1");
        }
        let h = headers("evt_1", ts, &both);
        assert_eq!(
            verify(&[other], &h, body, now, tol),
            Err(WebhookError::InvalidSignature)
        );
        // The body, the id and the timestamp are all signed.
        assert_eq!(
            verify(std::slice::from_ref(&old), &h, b"{\"a\":2}", now, tol),
            Err(WebhookError::InvalidSignature)
        );
        let h2 = headers("evt_2", ts, &both);
        assert_eq!(
            verify(std::slice::from_ref(&old), &h2, body, now, tol),
            Err(WebhookError::InvalidSignature)
        );
        let late = now + chrono::Duration::seconds(301);
        assert_eq!(
            verify(std::slice::from_ref(&old), &h, body, late, tol),
            Err(WebhookError::Timestamp)
        );
        let mut missing = h.clone();
        missing.remove(HEADER_SIGNATURE);
        assert_eq!(
            verify(std::slice::from_ref(&old), &missing, body, now, tol),
            Err(WebhookError::MissingHeader(HEADER_SIGNATURE))
        );
        // Entries of unknown versions and broken base64 are skipped, not fatal.
        let mixed = format!("v1a,AAAA v1,!!! {both}");
        assert!(verify(&[old], &headers("evt_1", ts, &mixed), body, now, tol).is_ok());
    }

    #[test]
    fn secrets_are_checked_and_never_printed() {
        assert!(matches!(
            WebhookSecret::parse("whsec_c2hvcnQ="),
            Err(WebhookError::InvalidSecret)
        ));
        assert!(WebhookSecret::parse("whsec_not base64!").is_err());
        let (s, shown) = WebhookSecret::generate();
        assert!(shown.starts_with("whsec_"));
        assert!(WebhookSecret::parse(&shown).is_ok());
        assert_eq!(format!("{s:?}"), "WebhookSecret(<redacted>)");
    }

    #[test]
    fn the_schedule_ends_and_jitter_only_lengthens() {
        let s = RetrySchedule::default();
        assert_eq!(s.waits.len(), 9);
        for attempt in 1..=9 {
            let base = s.waits[attempt as usize - 1];
            let w = s.wait_after(attempt).unwrap();
            assert!(w >= base && w <= base.mul_f64(1.2) + Duration::from_millis(1));
        }
        assert_eq!(s.wait_after(10), None);
        assert_eq!(s.wait_after(0), None);
    }
}
