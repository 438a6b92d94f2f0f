//! The gateway's webhooks, read for
//! [`Provider::read_webhook`](integrations_core::Provider::read_webhook). Two dialects,
//! told apart by their signature header:
//!
//! - **OFAuth** (the default gateway): Svix, that is Standard Webhooks under `svix-*` header
//!   names (`webhook-*` accepted too, as OFAuth's docs are unsure which is live): the
//!   official SDKs' `src/webhooks.ts` (OFAuth-org/onlyfans-sdk-typescript) and
//!   `onlyfans_sdk/webhooks.py` (OFAuth-org/onlyfans-sdk-python) verify
//!   `svix-signature: v1,<base64 HMAC-SHA256("{svix-id}.{svix-timestamp}.{raw body}")>`
//!   keyed with the base64-decoded `whsec_` secret, 5 minutes of tolerance. Events
//!   (<https://docs.ofauth.com/api-reference/realtime/overview>): `connection.created`,
//!   `connection.updated`, `connection.expired`, `rules.updated`; body, per the SDK types,
//!   `{"eventType", "live", "data": {"connection": {"id", "platformUserId", "status",
//!   "userData"?}, "clientReferenceId"}}`, while <https://docs-next.ofauth.com/reference/webhooks>
//!   shows `type`, `timestamp` and `data.connection.userData.id`: both are read.
//! - **OnlyFansAPI.com**: `Signature: <hex HMAC-SHA256(raw body)>` keyed with the signing
//!   secret's bytes, no timestamp
//!   (<https://docs.onlyfansapi.com/webhooks/protecting-your-webhooks>); body
//!   `{"event", "account_id", "payload"}`
//!   (<https://docs.onlyfansapi.com/webhooks/fansly-events>, "same envelope as OnlyFans
//!   events"); account events `accounts.connected`, `accounts.reconnected`,
//!   `accounts.session_expired`, `accounts.authentication_failed`,
//!   `accounts.otp_code_required`, `accounts.face_otp_required` (the SDKs' webhook
//!   docblocks).

use chrono::{DateTime, Utc};
use integrations_core::platform_webhooks::{
    AccountMatch, MAX_BODY_BYTES, PlatformAction, PlatformEvent, PlatformWebhook, WebhookMethod,
    WebhookRefusal, WebhookRequest, WebhookRoute, event_name, hmac_sha256_matches,
};
use integrations_core::webhooks::{
    STANDARD_HEADERS, SVIX_HEADERS, WebhookError, WebhookSecret, verify_with,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::config::OnlyFansConfig;

/// The OnlyFansAPI.com signature header.
pub const ONLYFANSAPI_SIGNATURE_HEADER: &str = "Signature";

/// The prefix of [`connection_alias`].
pub const CONNECTION_ALIAS_PREFIX: &str = "connection-sha256:";

/// The id a gateway connection is known by in an account's metadata
/// (`platform_aliases`): `connection-sha256:` and the hex SHA-256 of the connection id.
/// The connection id is a credential (it is the access token), so only its digest is
/// stored in the clear; a webhook naming the connection finds the account by it.
pub fn connection_alias(connection_id: &str) -> String {
    format!(
        "{CONNECTION_ALIAS_PREFIX}{}",
        hex::encode(Sha256::digest(connection_id.as_bytes()))
    )
}

/// The reason shown when OFAuth reports the connection's session expired.
const OFAUTH_EXPIRED: &str =
    "The gateway's OnlyFans session expired; the user must link the account again";
/// The reason shown when OFAuth's connection waits for a two-factor code.
const OFAUTH_2FA: &str = "The gateway's OnlyFans session needs a two-factor code; \
                          the user must link the account again";

/// Authenticates a request to the events route and reads its event (see the module docs).
pub(crate) fn read(
    config: &OnlyFansConfig,
    request: &WebhookRequest<'_>,
) -> Result<PlatformWebhook, WebhookRefusal> {
    if request.route != WebhookRoute::Events {
        return Err(WebhookRefusal::Unsupported);
    }
    if request.method != WebhookMethod::Post {
        return Err(WebhookRefusal::Method);
    }
    if request.body.len() > MAX_BODY_BYTES {
        return Err(WebhookRefusal::TooLarge(MAX_BODY_BYTES));
    }
    let webhooks = config.client.webhooks();
    if webhooks
        .secrets
        .iter()
        .all(|s| s.expose_secret().is_empty())
    {
        return Err(WebhookRefusal::NotConfigured);
    }
    let has = |name: &str| request.headers.contains_key(name);
    if has(SVIX_HEADERS.signature) {
        read_ofauth(config, request, SVIX_HEADERS)
    } else if has(STANDARD_HEADERS.signature) {
        read_ofauth(config, request, STANDARD_HEADERS)
    } else if has(ONLYFANSAPI_SIGNATURE_HEADER) {
        read_onlyfansapi(config, request)
    } else {
        Err(WebhookRefusal::MissingSignature(SVIX_HEADERS.signature))
    }
}

// ---------- OFAuth (Svix / Standard Webhooks) ----------

/// An OFAuth event body (both documented shapes).
#[derive(Debug, Deserialize)]
struct OfAuthEvent {
    #[serde(default, rename = "eventType")]
    event_type: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    timestamp: Option<serde_json::Value>,
    #[serde(default)]
    data: Option<OfAuthData>,
}

#[derive(Debug, Deserialize)]
struct OfAuthData {
    #[serde(default)]
    connection: Option<OfAuthConnection>,
}

#[derive(Debug, Deserialize)]
struct OfAuthConnection {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default, rename = "platformUserId")]
    platform_user_id: Option<serde_json::Value>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default, rename = "userData")]
    user_data: Option<OfAuthUserData>,
}

#[derive(Debug, Deserialize)]
struct OfAuthUserData {
    #[serde(default)]
    id: Option<serde_json::Value>,
}

/// An id sent as a string or a number; `None` when absent or empty.
fn id_text(value: Option<&serde_json::Value>) -> Option<String> {
    match value? {
        serde_json::Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A body `timestamp`: RFC 3339 text or unix seconds.
fn body_time(value: Option<&serde_json::Value>) -> Option<DateTime<Utc>> {
    match value? {
        serde_json::Value::String(s) => DateTime::parse_from_rfc3339(s.trim())
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        serde_json::Value::Number(n) => DateTime::from_timestamp(n.as_i64()?, 0),
        _ => None,
    }
}

fn read_ofauth(
    config: &OnlyFansConfig,
    request: &WebhookRequest<'_>,
    names: integrations_core::webhooks::SignatureHeaders,
) -> Result<PlatformWebhook, WebhookRefusal> {
    let webhooks = config.client.webhooks();
    // Svix secrets are `whsec_<base64>`; other configured secrets (an OnlyFansAPI.com
    // signing secret) do not apply here.
    let secrets: Vec<WebhookSecret> = webhooks
        .secrets
        .iter()
        .filter_map(|s| WebhookSecret::parse(s.expose_secret()).ok())
        .collect();
    if secrets.is_empty() {
        return Err(WebhookRefusal::NotConfigured);
    }
    let verified = verify_with(
        names,
        &secrets,
        request.headers,
        request.body,
        request.now,
        webhooks.tolerance(),
    )
    .map_err(|e| match e {
        WebhookError::MissingHeader(name) => WebhookRefusal::MissingSignature(name),
        WebhookError::Timestamp => WebhookRefusal::Stale,
        WebhookError::InvalidSignature => WebhookRefusal::BadSignature,
        WebhookError::InvalidSecret => WebhookRefusal::NotConfigured,
        other => WebhookRefusal::Malformed(other.to_string()),
    })?;
    if verified.id.trim().is_empty() || verified.id.chars().count() > 200 {
        return Err(WebhookRefusal::Malformed(format!(
            "the `{}` header is empty or longer than 200 characters",
            names.id
        )));
    }

    // Authentic: now the body.
    let event: OfAuthEvent = request.json()?;
    let name = event
        .event_type
        .as_deref()
        .or(event.kind.as_deref())
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| WebhookRefusal::Malformed("the event has no `eventType` or `type`".into()))?
        .to_owned();
    let connection = event.data.and_then(|d| d.connection);
    let mut accounts = Vec::new();
    let mut status = None;
    if let Some(c) = connection {
        let user = id_text(c.platform_user_id.as_ref())
            .or_else(|| id_text(c.user_data.as_ref().and_then(|u| u.id.as_ref())));
        let alias = id_text(c.id.as_ref()).map(|id| connection_alias(&id));
        // The user's account, only while it holds this connection: a late event about
        // an older connection must not reach the one the user linked since.
        match (user, alias) {
            (Some(id), Some(alias)) => {
                accounts.push(AccountMatch::IdWithAlias {
                    id,
                    alias: alias.clone(),
                });
                accounts.push(AccountMatch::Alias(alias));
            }
            (Some(id), None) => accounts.push(AccountMatch::Id(id)),
            (None, Some(alias)) => accounts.push(AccountMatch::Alias(alias)),
            (None, None) => {}
        }
        status = c.status;
    }
    let action = match (name.as_str(), status.as_deref().map(str::trim)) {
        ("connection.expired", _) | ("connection.updated", Some("expired")) => {
            PlatformAction::SessionLost {
                reason: OFAUTH_EXPIRED.into(),
            }
        }
        ("connection.updated", Some("awaiting_2fa")) => PlatformAction::SessionLost {
            reason: OFAUTH_2FA.into(),
        },
        ("connection.updated", Some("active")) => PlatformAction::Restored,
        // connection.created, rules.updated, realtime events, other statuses.
        _ => PlatformAction::Ignore,
    };
    if action != PlatformAction::Ignore && accounts.is_empty() {
        return Err(WebhookRefusal::Malformed(format!(
            "`{name}` names no connection"
        )));
    }
    // The body's `timestamp` when sent; otherwise the signed delivery time, which is no
    // earlier than the event (so an event delivered before the account's current link is
    // still recognised as stale).
    let occurred_at = body_time(event.timestamp.as_ref()).unwrap_or(verified.timestamp);
    Ok(PlatformWebhook::Events(vec![PlatformEvent {
        id: verified.id,
        name: event_name(&name),
        accounts,
        occurred_at: Some(occurred_at),
        action,
    }]))
}

// ---------- OnlyFansAPI.com ----------

/// An OnlyFansAPI.com event body (`payload` is not read).
#[derive(Debug, Deserialize)]
struct OnlyFansApiEvent {
    event: String,
    #[serde(default)]
    account_id: Option<serde_json::Value>,
}

/// 64 hex digits (either case) into 32 bytes.
fn decode_hex32(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

fn read_onlyfansapi(
    config: &OnlyFansConfig,
    request: &WebhookRequest<'_>,
) -> Result<PlatformWebhook, WebhookRefusal> {
    let header = request
        .headers
        .get(ONLYFANSAPI_SIGNATURE_HEADER)
        .ok_or(WebhookRefusal::MissingSignature(
            ONLYFANSAPI_SIGNATURE_HEADER,
        ))?
        .to_str()
        .ok()
        .and_then(|v| decode_hex32(v.trim()))
        .ok_or_else(|| {
            WebhookRefusal::Malformed(format!(
                "the {ONLYFANSAPI_SIGNATURE_HEADER} header is not 64 hex digits"
            ))
        })?;
    // The signing secret is any string the user chose; its bytes are the key.
    let keys: Vec<&[u8]> = config
        .client
        .webhooks()
        .secrets
        .iter()
        .map(|s| s.expose_secret().as_bytes())
        .filter(|k| !k.is_empty())
        .collect();
    if !hmac_sha256_matches(&keys, &[request.body], &header) {
        return Err(WebhookRefusal::BadSignature);
    }

    // Authentic: now the body.
    let event: OnlyFansApiEvent = request.json()?;
    let name = event.event.trim();
    if name.is_empty() {
        return Err(WebhookRefusal::Malformed("the event has no name".into()));
    }
    let action = match name {
        // [U] Whether OnlyFansAPI.com has already recovered the session when it sends
        // `accounts.session_expired` is not documented: it is read as a lost session.
        "accounts.session_expired" => lost(
            "The gateway reports the OnlyFans session expired; the user may need to link \
             the account again",
        ),
        "accounts.authentication_failed" => {
            lost("The gateway could not sign in to OnlyFans; the user must link the account again")
        }
        "accounts.otp_code_required" => {
            lost("OnlyFans asks for a one-time code; the user must enter it at the gateway")
        }
        "accounts.face_otp_required" => {
            lost("OnlyFans asks for a face verification; the user must complete it at the gateway")
        }
        "accounts.reconnected" => PlatformAction::Restored,
        // accounts.connected, messages.*, subscriptions.*, ...
        _ => PlatformAction::Ignore,
    };
    // With OnlyFansAPI.com as the gateway, its account id is the connection id stored.
    let accounts: Vec<AccountMatch> = id_text(event.account_id.as_ref())
        .map(|id| AccountMatch::Alias(connection_alias(&id)))
        .into_iter()
        .collect();
    if action != PlatformAction::Ignore && accounts.is_empty() {
        return Err(WebhookRefusal::Malformed(format!(
            "`{name}` names no `account_id`"
        )));
    }
    Ok(PlatformWebhook::Events(vec![PlatformEvent {
        // No event id and no timestamp: deduplicated by the body's digest.
        id: request.body_digest(),
        name: event_name(name),
        accounts,
        occurred_at: None,
        action,
    }]))
}

fn lost(reason: &str) -> PlatformAction {
    PlatformAction::SessionLost {
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_digests() {
        let a = connection_alias("conn_abc123");
        assert!(a.starts_with(CONNECTION_ALIAS_PREFIX));
        assert_eq!(a.len(), CONNECTION_ALIAS_PREFIX.len() + 64);
        assert!(!a.contains("conn_abc123"));
        assert_eq!(a, connection_alias("conn_abc123"));
        assert_ne!(a, connection_alias("conn_abc124"));
        // sha256("abc")
        assert_eq!(
            connection_alias("abc"),
            "connection-sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn ids_and_times() {
        assert_eq!(id_text(Some(&serde_json::json!(12))).as_deref(), Some("12"));
        assert_eq!(
            id_text(Some(&serde_json::json!(" a "))).as_deref(),
            Some("a")
        );
        assert_eq!(id_text(Some(&serde_json::json!(""))), None);
        assert_eq!(id_text(Some(&serde_json::json!(null))), None);
        assert_eq!(
            body_time(Some(&serde_json::json!("2026-01-02T03:04:05Z"))),
            DateTime::from_timestamp(1_767_323_045, 0)
        );
        assert_eq!(
            body_time(Some(&serde_json::json!(1_767_323_045))),
            DateTime::from_timestamp(1_767_323_045, 0)
        );
        assert_eq!(body_time(Some(&serde_json::json!("yesterday"))), None);
        assert_eq!(decode_hex32(&"0A".repeat(32)), Some([10; 32]));
        assert_eq!(decode_hex32("0a"), None);
    }
}
