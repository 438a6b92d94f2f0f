//! Authorized requests with refresh-and-retry: [`Integrations::send`].

use super::Integrations;
use super::eligibility::{Eligibility, Trigger, eligibility};
use super::refresh::RefreshContext;
use crate::error::{Error, Result};
use crate::provider::ProviderError;
use crate::store::{AuditAction, UserId};
use reqwest::{Method, Request, Response, ResponseBuilderExt, StatusCode};
use std::time::Duration;

fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

pub(crate) fn jittered(base: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.min(16));
    let mut b = [0u8; 2];
    rand::fill(&mut b[..]);
    let frac = f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX) * 0.5;
    exp + exp.mul_f64(frac)
}

impl Integrations {
    /// Sends an API request on behalf of an account of `user`, with the credential attached
    /// the way the platform wants it ([`Provider::authorize_request`](crate::Provider::authorize_request)).
    ///
    /// - The token is refreshed first when it expires within
    ///   [`SendPolicy::refresh_skew`](super::SendPolicy::refresh_skew).
    /// - On 401 the token is refreshed once (single-flight) and the request retried once;
    ///   a refresh answering `invalid_grant` marks the account `NeedsReconnect` and gives
    ///   [`Error::NeedsReconnect`].
    /// - On 429 it waits for `Retry-After` (or `X-Ratelimit-Reset`), up to
    ///   [`SendPolicy::max_retry_wait`](super::SendPolicy::max_retry_wait), then
    ///   retries; a longer wait returns [`ProviderError::RateLimited`].
    /// - Network errors and 5xx are retried for idempotent methods, up to
    ///   [`SendPolicy::max_attempts`](super::SendPolicy::max_attempts) in all,
    ///   with exponential backoff and jitter; then the typed error is returned.
    ///
    /// Other responses (including 4xx) are returned as they are. A request whose body
    /// cannot be cloned (a stream) is sent once.
    #[tracing::instrument(level = "debug", skip(self, request), fields(user = user.0, method = %request.method()))]
    pub async fn send(
        &self,
        user: UserId,
        provider_id: &str,
        provider_account_id: &str,
        request: Request,
    ) -> Result<Response> {
        let provider = self.provider(provider_id)?.clone();
        let pid = provider.id().clone();
        let policy = self.inner.config.send.clone();
        let mut record = self.owned_account(user, &pid, provider_account_id).await?;
        let skew = chrono::Duration::from_std(policy.refresh_skew).unwrap_or_default();
        match eligibility(
            provider.as_ref(),
            &record,
            Trigger::Needed(skew),
            self.now(),
        ) {
            Eligibility::NeedsReconnect => return Err(self.dead_grant(&record).await),
            Eligibility::Refresh => {
                record = self
                    .refresh_record(&provider, record, RefreshContext::on_demand())
                    .await?
                    .0;
            }
            // Without a refresh the token is sent as it is: the platform decides.
            Eligibility::Fresh | Eligibility::Unsupported | Eligibility::Pointless => {}
        }
        let retryable = idempotent(request.method());
        let mut pending = Some(request);
        let mut refreshed_after_401 = false;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let Some(current) = pending.take() else {
                return Err(Error::Provider(ProviderError::Protocol {
                    message: "the request body cannot be replayed for a retry".into(),
                    body: None,
                }));
            };
            pending = current.try_clone();
            let token = self.open_access_token(&record)?;
            let builder = reqwest::RequestBuilder::from_parts(self.inner.http.clone(), current);
            let started = std::time::Instant::now();
            let sent = provider.authorize_request(builder, &token).send().await;
            match &sent {
                Ok(resp) => self.record_send(
                    &pid,
                    Ok((resp.status().as_u16(), resp.headers())),
                    started.elapsed(),
                ),
                Err(e) => self.record_send(
                    &pid,
                    Err(&crate::http::network_error_ref(e)),
                    started.elapsed(),
                ),
            }
            let last_attempt = attempt >= policy.max_attempts.max(1);
            match sent {
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED && !refreshed_after_401 => {
                    let now = self.now();
                    if eligibility(provider.as_ref(), &record, Trigger::Unauthorized, now)
                        != Eligibility::Refresh
                    {
                        crate::metrics::send(pid.as_str(), "failed");
                        return self.unauthorized(&provider, &record, resp).await;
                    }
                    refreshed_after_401 = true;
                    record = self
                        .refresh_record(&provider, record, RefreshContext::after_unauthorized())
                        .await?
                        .0;
                    // The retry after a refresh does not count as an attempt.
                    attempt -= 1;
                    crate::metrics::send(pid.as_str(), "refreshed_and_retried");
                }
                Ok(resp) if resp.status() == StatusCode::TOO_MANY_REQUESTS => {
                    let now = self.now();
                    let wait = crate::http::retry_after(resp.headers(), now).or_else(|| {
                        crate::http::seconds_header(resp.headers(), "x-ratelimit-reset")
                    });
                    crate::metrics::send(pid.as_str(), "rate_limited");
                    match wait {
                        Some(w) if w > policy.max_retry_wait => {
                            return Err(ProviderError::RateLimited {
                                retry_after: Some(w),
                            }
                            .into());
                        }
                        _ if last_attempt => {
                            return Err(ProviderError::RateLimited { retry_after: wait }.into());
                        }
                        Some(w) => tokio::time::sleep(w).await,
                        None => {
                            tokio::time::sleep(jittered(policy.backoff_base, attempt - 1)).await
                        }
                    }
                }
                Ok(resp) if resp.status().is_server_error() && retryable => {
                    if last_attempt {
                        crate::metrics::send(pid.as_str(), "failed");
                        return Err(ProviderError::Unavailable {
                            status: resp.status().as_u16(),
                        }
                        .into());
                    }
                    crate::metrics::send(pid.as_str(), "retried");
                    tokio::time::sleep(jittered(policy.backoff_base, attempt - 1)).await;
                }
                Ok(resp) => {
                    crate::metrics::send(pid.as_str(), "ok");
                    return Ok(resp);
                }
                Err(e) => {
                    let err = crate::http::network_error(e);
                    if !retryable || last_attempt {
                        crate::metrics::send(pid.as_str(), "failed");
                        return Err(err.into());
                    }
                    crate::metrics::send(pid.as_str(), "retried");
                    tokio::time::sleep(jittered(policy.backoff_base, attempt - 1)).await;
                }
            }
        }
    }
}

impl Integrations {
    /// A 401 from a provider that cannot refresh: the provider reads the body
    /// ([`Provider::api_error`](crate::Provider::api_error)); a dead grant marks the
    /// account `NeedsReconnect`, anything else returns the response as it came.
    async fn unauthorized(
        &self,
        provider: &std::sync::Arc<dyn crate::Provider>,
        record: &crate::store::AccountRecord,
        resp: Response,
    ) -> Result<Response> {
        let version = resp.version();
        let url = resp.url().clone();
        let capped = crate::http::read_capped(resp, crate::http::DEFAULT_BODY_LIMIT).await?;
        if let Some(ProviderError::InvalidGrant { .. }) = provider.api_error(&capped) {
            self.store_failure(
                record,
                Error::NeedsReconnect,
                None,
                AuditAction::GrantRevoked,
            )
            .await?;
            return Err(Error::NeedsReconnect);
        }
        let mut rebuilt = ::http::Response::builder()
            .status(capped.status)
            .version(version)
            .url(url);
        if let Some(headers) = rebuilt.headers_mut() {
            *headers = capped.headers;
        }
        let rebuilt = rebuilt
            .body(capped.body)
            .map_err(|e| ProviderError::Protocol {
                message: format!("cannot rebuild the response: {e}"),
                body: None,
            })?;
        Ok(Response::from(rebuilt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented backoff: the base doubled per retry, plus a random part of up to
    /// half of that, drawn anew each time and spread over that range; from the 17th retry
    /// on it stops growing.
    #[test]
    fn backoff_doubles_with_bounded_jitter() {
        let base = Duration::from_millis(100);
        for attempt in 0..20 {
            let exp = base * (1 << attempt.min(16));
            let draws: Vec<Duration> = (0..1000).map(|_| jittered(base, attempt)).collect();
            for d in &draws {
                assert!(
                    *d >= exp && *d <= exp + exp / 2,
                    "{d:?} for attempt {attempt}"
                );
            }
            // 1000 draws, each below the lowest tenth of the range with chance 1/10: none
            // there (or none in the highest tenth) happens with chance 0.9^1000.
            let (low, high) = (exp + exp / 20, exp + exp / 2 - exp / 20);
            assert!(draws.iter().any(|d| *d < low), "attempt {attempt}");
            assert!(draws.iter().any(|d| *d > high), "attempt {attempt}");
        }
        assert!(idempotent(&Method::GET) && !idempotent(&Method::POST));
    }
}
