//! The webhook deliverer's configuration from the environment, shared by the `refresher`
//! (`--deliver-only`, or beside its passes) and the example server.
//!
//! - `WEBHOOK_URL`: the host's endpoint; unset or empty: no deliverer.
//! - `WEBHOOK_SECRET` (required with `WEBHOOK_URL`): `whsec_<base64>`; during a rotation
//!   the new and the old secret separated by a space (both signatures are sent).
//! - `WEBHOOK_NAME` (default `default`): the name deliveries are stored under.
//! - `WEBHOOK_TIMEOUT_SECS` (15), `WEBHOOK_LEASE_SECS` (60), `WEBHOOK_CONCURRENCY` (64):
//!   [`DelivererConfig`]'s `timeout`, `lease_ttl` and `batch`.

use crate::SetupError;
use integrations_core::Integrations;
use integrations_core::webhooks::{Deliverer, DelivererConfig, Endpoint, WebhookSecret};
use std::time::Duration;

/// The deliverer the environment asks for, or `None` when `WEBHOOK_URL` is unset.
pub fn deliverer_from_env(
    lookup: &dyn Fn(&str) -> Option<String>,
    integrations: &Integrations,
) -> Result<Option<Deliverer>, SetupError> {
    let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    let Some(url) = get("WEBHOOK_URL") else {
        return Ok(None);
    };
    let url: url::Url = url.trim().parse().map_err(|_| {
        SetupError::Variable(format!("WEBHOOK_URL must be an http(s) URL, got {url:?}"))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(SetupError::Variable(
            "WEBHOOK_URL must be an http(s) URL".into(),
        ));
    }
    let secret = get("WEBHOOK_SECRET").ok_or_else(|| {
        SetupError::Variable(
            "WEBHOOK_SECRET is not set: the endpoint's signing secret (whsec_<base64>)".into(),
        )
    })?;
    let secrets = secret
        .split_whitespace()
        .map(WebhookSecret::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SetupError::Variable(format!("WEBHOOK_SECRET: {e}")))?;
    let number = |name: &str, default: u64| -> Result<u64, SetupError> {
        match get(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    SetupError::Variable(format!(
                        "{name} must be a whole number above 0, got {v:?}"
                    ))
                }),
        }
    };
    let config = DelivererConfig {
        timeout: Duration::from_secs(number("WEBHOOK_TIMEOUT_SECS", 15)?),
        lease_ttl: Duration::from_secs(number("WEBHOOK_LEASE_SECS", 60)?),
        batch: number("WEBHOOK_CONCURRENCY", 64)? as usize,
        ..DelivererConfig::default()
    };
    let endpoint = Endpoint {
        name: get("WEBHOOK_NAME").unwrap_or_else(|| "default".into()),
        url,
        secrets,
    };
    Ok(Some(Deliverer::new(
        integrations.clone(),
        vec![endpoint],
        config,
    )))
}

/// [`deliverer_from_env`] over this process's environment. A deliverer stopped in the
/// middle of an attempt loses nothing: the delivery is retried, with the same
/// `webhook-id`, once its lease lapses.
pub fn deliverer_from_process_env(
    integrations: &Integrations,
) -> Result<Option<Deliverer>, SetupError> {
    deliverer_from_env(&|name| std::env::var(name).ok(), integrations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use integrations_core::{EncryptionKey, MemoryStore, TokenCipher};
    use std::collections::HashMap;
    use std::sync::Arc;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn variables_are_checked_and_named() {
        let integrations = Integrations::builder(
            Arc::new(MemoryStore::new()),
            TokenCipher::new(EncryptionKey::generate()),
        )
        .build();
        let (_, shown) = WebhookSecret::generate();
        let ok = deliverer_from_env(&lookup(&[]), &integrations).unwrap();
        assert!(ok.is_none(), "no URL, no deliverer");
        let url = ("WEBHOOK_URL", "http://127.0.0.1:4000/hooks");
        let err = deliverer_from_env(&lookup(&[url]), &integrations).unwrap_err();
        assert!(err.to_string().contains("WEBHOOK_SECRET"), "{err}");
        let err = deliverer_from_env(
            &lookup(&[url, ("WEBHOOK_SECRET", "not-a-secret")]),
            &integrations,
        )
        .unwrap_err();
        assert!(err.to_string().contains("WEBHOOK_SECRET"), "{err}");
        assert!(!err.to_string().contains("not-a-secret"), "{err}");
        let err = deliverer_from_env(
            &lookup(&[("WEBHOOK_URL", "ftp://x"), ("WEBHOOK_SECRET", &shown)]),
            &integrations,
        )
        .unwrap_err();
        assert!(err.to_string().contains("WEBHOOK_URL"), "{err}");
        let err = deliverer_from_env(
            &lookup(&[url, ("WEBHOOK_SECRET", &shown), ("WEBHOOK_LEASE_SECS", "0")]),
            &integrations,
        )
        .unwrap_err();
        assert!(err.to_string().contains("WEBHOOK_LEASE_SECS"), "{err}");
        let rotation = format!("{shown} {shown}");
        let d = deliverer_from_env(
            &lookup(&[url, ("WEBHOOK_SECRET", &rotation)]),
            &integrations,
        )
        .unwrap();
        assert!(d.is_some());
    }
}
