//! Meta's callbacks for Instagram Login apps: the Deauthorize callback and the Data
//! Deletion Request callback (a `signed_request` form field), and Graph API webhooks
//! (the `hub.challenge` handshake and `X-Hub-Signature-256` deliveries).
//!
//! Sources: `facebookarchive/php-graph-sdk` `src/Facebook/SignedRequest.php` (the
//! `signed_request` format and check); developers.facebook.com/docs/development/create-an-app/app-dashboard/data-deletion-callback
//! (the deletion request and its answer); developers.facebook.com/docs/graph-api/webhooks/getting-started
//! (handshake, `X-Hub-Signature-256`); developers.facebook.com/documentation/instagram-platform/webhooks/examples
//! (the `instagram` object's envelope).

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use integrations_core::platform_webhooks::{
    AccountMatch, PlatformAction, PlatformEvent, PlatformWebhook, WebhookMethod, WebhookRefusal,
    WebhookRequest, WebhookRoute, event_name, hmac_sha256_matches,
};
use integrations_core::{ClientSecret, client::ClientConfig};
use serde::Deserialize;

/// The header of a Graph webhook delivery's signature.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// What people read on an account Meta deauthorized.
pub const DEAUTHORIZED_REASON: &str = "You removed this app from your Instagram account.";

/// The payload of a `signed_request`, once its signature is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// The user: an app-scoped id (Meta does not say which of the Instagram ids; the
    /// provider matches it against both).
    pub user_id: String,
    /// When Meta issued it.
    pub issued_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct SignedPayload {
    algorithm: Option<String>,
    #[serde(default)]
    issued_at: Option<serde_json::Value>,
    #[serde(default)]
    user_id: Option<serde_json::Value>,
}

fn decode_segment(segment: &str) -> Option<Vec<u8>> {
    // Meta sends unpadded base64url; padded is accepted too.
    if segment.contains('=') {
        URL_SAFE.decode(segment).ok()
    } else {
        URL_SAFE_NO_PAD.decode(segment).ok()
    }
}

/// Checks and reads a `signed_request`: `<base64url signature>.<base64url JSON>`, split at
/// the first `.`; the signature is the HMAC-SHA256 of the still-encoded payload under one
/// of `secrets` (constant-time), checked before the payload is decoded; the payload's
/// `algorithm` must be `HMAC-SHA256` (upper-cased first, as Meta's own sample does).
pub fn parse_signed_request(
    value: &str,
    secrets: &[&[u8]],
) -> Result<SignedRequest, WebhookRefusal> {
    let malformed = |m: &str| WebhookRefusal::Malformed(format!("signed_request: {m}"));
    let (sig, payload) = value
        .trim()
        .split_once('.')
        .ok_or_else(|| malformed("no `.` between signature and payload"))?;
    let sig = decode_segment(sig).ok_or_else(|| malformed("the signature is not base64url"))?;
    if !hmac_sha256_matches(secrets, &[payload.as_bytes()], &sig) {
        return Err(WebhookRefusal::BadSignature);
    }
    let json = decode_segment(payload).ok_or_else(|| malformed("the payload is not base64url"))?;
    let payload: SignedPayload =
        serde_json::from_slice(&json).map_err(|_| malformed("the payload is not a JSON object"))?;
    if !payload
        .algorithm
        .as_deref()
        .is_some_and(|a| a.eq_ignore_ascii_case("HMAC-SHA256"))
    {
        return Err(malformed("the algorithm is not HMAC-SHA256"));
    }
    let user_id = match payload.user_id {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => return Err(malformed("no user_id")),
    };
    if user_id.len() > 64 {
        return Err(malformed("the user_id is too long"));
    }
    let issued_at = payload
        .issued_at
        .as_ref()
        .and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()))
        .and_then(|s| DateTime::from_timestamp(s, 0));
    Ok(SignedRequest { user_id, issued_at })
}

/// The `instagram` object's envelope of a Graph webhook delivery.
#[derive(Deserialize)]
struct Envelope {
    object: String,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    changes: Vec<Change>,
    #[serde(default)]
    messaging: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Change {
    #[serde(default)]
    field: String,
}

/// The secrets Meta may sign with: the Instagram app secret (the client secret), then
/// the configured others (the Meta app secret).
fn secrets(client: &ClientConfig) -> Vec<&ClientSecret> {
    std::iter::once(client.client_secret())
        .chain(client.webhooks().secrets.iter())
        .collect()
}

/// [`Provider::read_webhook`](integrations_core::Provider::read_webhook) for Instagram.
pub(crate) fn read(
    client: &ClientConfig,
    request: &WebhookRequest<'_>,
) -> Result<PlatformWebhook, WebhookRefusal> {
    let secrets = secrets(client);
    let keys: Vec<&[u8]> = secrets
        .iter()
        .map(|s| s.expose_secret().as_bytes())
        .collect();
    match (request.route, request.method) {
        (WebhookRoute::Events, WebhookMethod::Get) => handshake(client, request),
        (route, WebhookMethod::Post) if request.header(SIGNATURE_HEADER).is_none() => {
            let signed = request.form_field("signed_request")?;
            let parsed = parse_signed_request(&signed, &keys)?;
            let deletion = route == WebhookRoute::DataDeletion;
            let (name, action) = if deletion {
                ("data_deletion", PlatformAction::DeleteData)
            } else {
                (
                    "deauthorize",
                    PlatformAction::Revoked {
                        reason: DEAUTHORIZED_REASON.into(),
                    },
                )
            };
            Ok(PlatformWebhook::Events(vec![PlatformEvent {
                // The same request repeated is the same signed_request.
                id: request.body_digest(),
                name: name.into(),
                // Which Instagram id Meta sends is undocumented: the professional account
                // id (the row's key) or the app-scoped id (stored as an alias).
                accounts: vec![
                    AccountMatch::Id(parsed.user_id.clone()),
                    AccountMatch::Alias(parsed.user_id),
                ],
                occurred_at: parsed.issued_at,
                action,
            }]))
        }
        (WebhookRoute::Events, WebhookMethod::Post) => graph_delivery(&keys, request),
        (WebhookRoute::DataDeletion, _) => Err(WebhookRefusal::Method),
    }
}

/// `GET ?hub.mode=subscribe&hub.challenge=…&hub.verify_token=…`.
fn handshake(
    client: &ClientConfig,
    request: &WebhookRequest<'_>,
) -> Result<PlatformWebhook, WebhookRefusal> {
    let expected = client
        .webhooks()
        .verify_token
        .as_ref()
        .ok_or(WebhookRefusal::NotConfigured)?;
    let mode = request.query_param("hub.mode");
    let challenge = request.query_param("hub.challenge");
    let token = request.query_param("hub.verify_token");
    let (Some(mode), Some(challenge), Some(token)) = (mode, challenge, token) else {
        return Err(WebhookRefusal::Malformed(
            "the handshake needs hub.mode, hub.challenge and hub.verify_token".into(),
        ));
    };
    if mode != "subscribe" {
        return Err(WebhookRefusal::Malformed(
            "hub.mode is not `subscribe`".into(),
        ));
    }
    // Constant-time: compare the digests of both tokens.
    let key = b"hub.verify_token";
    let ours = integrations_core::platform_webhooks::hmac_sha256(
        key,
        &[expected.expose_secret().as_bytes()],
    );
    if !hmac_sha256_matches(&[key], &[token.as_bytes()], &ours) {
        return Err(WebhookRefusal::VerifyToken);
    }
    if challenge.is_empty() || challenge.len() > 256 {
        return Err(WebhookRefusal::Malformed(
            "hub.challenge is empty or too long".into(),
        ));
    }
    Ok(PlatformWebhook::Handshake { challenge })
}

/// A `POST` with `X-Hub-Signature-256: sha256=<hex>` over the raw body. The Instagram
/// fields (comments, mentions, messages, ...) carry no account lifecycle change: each is
/// acknowledged and ignored.
fn graph_delivery(
    keys: &[&[u8]],
    request: &WebhookRequest<'_>,
) -> Result<PlatformWebhook, WebhookRefusal> {
    let header = request
        .header(SIGNATURE_HEADER)
        .ok_or(WebhookRefusal::MissingSignature("X-Hub-Signature-256"))?;
    let sig = header
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or_else(|| {
            WebhookRefusal::Malformed("X-Hub-Signature-256 is not `sha256=<hex>`".into())
        })?;
    if !hmac_sha256_matches(keys, &[request.body], &sig) {
        return Err(WebhookRefusal::BadSignature);
    }
    let envelope: Envelope = request.json()?;
    let digest = request.body_digest();
    let object = event_name(&envelope.object);
    let mut events = Vec::new();
    for (i, entry) in envelope.entry.iter().enumerate() {
        let fields = entry
            .changes
            .iter()
            .map(|c| c.field.as_str())
            .chain((!entry.messaging.is_empty()).then_some("messaging"));
        for (j, field) in fields.enumerate() {
            events.push(PlatformEvent {
                id: format!("{digest}:{i}:{j}"),
                name: event_name(&format!("{object}.{field}")),
                accounts: Vec::new(),
                occurred_at: None,
                action: PlatformAction::Ignore,
            });
        }
    }
    Ok(PlatformWebhook::Events(events))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// webhooks.md's vector, from bk-rs `facebook-signed-request`'s test.
    const VECTOR: &str = "Mf_s6nTb38UYqioBmPqu0Ewm9souPZB9I2fIGwV729U.eyJ1c2VyX2lkIjoiMCIsImFsZ29yaXRobSI6IkhNQUMtU0hBMjU2IiwiaXNzdWVkX2F0IjoxNjI0MjQ0MTU2fQ";

    #[test]
    fn the_published_signed_request_vector_verifies() {
        let parsed = parse_signed_request(VECTOR, &[b"wrong", b"key"]).unwrap();
        assert_eq!(parsed.user_id, "0");
        assert_eq!(parsed.issued_at, DateTime::from_timestamp(1_624_244_156, 0));
        assert_eq!(
            parse_signed_request(VECTOR, &[b"kez"]),
            Err(WebhookRefusal::BadSignature)
        );
        // Padding accepted on both parts.
        let (sig, payload) = VECTOR.split_once('.').unwrap();
        let padded = format!("{sig}=.{payload}==");
        assert_eq!(
            parse_signed_request(&padded, &[b"key"]),
            Err(WebhookRefusal::BadSignature),
            "the signature covers the payload as sent, padding included"
        );
    }

    #[test]
    fn a_changed_payload_or_algorithm_is_refused() {
        let (sig, payload) = VECTOR.split_once('.').unwrap();
        let json = URL_SAFE_NO_PAD.decode(payload).unwrap();
        let json = String::from_utf8(json).unwrap().replace("\"0\"", "\"1\"");
        let forged = format!("{sig}.{}", URL_SAFE_NO_PAD.encode(json));
        assert_eq!(
            parse_signed_request(&forged, &[b"key"]),
            Err(WebhookRefusal::BadSignature)
        );
        for bad in ["", "nodot", "!!!.abc", "abc.!!!"] {
            assert!(
                matches!(
                    parse_signed_request(bad, &[b"key"]),
                    Err(WebhookRefusal::Malformed(_) | WebhookRefusal::BadSignature)
                ),
                "{bad:?}"
            );
        }
    }
}
