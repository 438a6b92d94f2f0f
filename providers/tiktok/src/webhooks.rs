//! TikTok's webhooks (Login Kit v2 callback URL), read for
//! [`Provider::read_webhook`](integrations_core::Provider::read_webhook).
//!
//! The wire format, as TikTok documents it:
//!
//! - <https://developers.tiktok.com/doc/webhooks-verification>: the header
//!   `TikTok-Signature: t=<unix seconds>,s=<signature>`, split on `,` then on `=`; the
//!   signature is the hex HMAC-SHA256 of `"<t>." + <raw body>` keyed with the app's
//!   client secret. The page names no tolerance for `t`: the configured one is used
//!   ([`WebhookSettings::tolerance`](integrations_core::client::WebhookSettings::tolerance),
//!   5 minutes by default).
//! - <https://developers.tiktok.com/doc/webhooks-events/>: the body
//!   `{"client_key", "event", "create_time", "user_openid", "content"}`, where `content`
//!   is a JSON object **serialized as a string** (read a second time; an object is
//!   accepted too), and `authorization.removed` with `content = {"reason": <0..5>}`.
//! - <https://developers.tiktok.com/doc/webhooks-overview/>: delivery is at least once,
//!   retried for up to 72 hours, and carries no event id, so a delivery is deduplicated by
//!   the digest of its body.

use crate::config::TikTokConfig;
use chrono::DateTime;
use integrations_core::platform_webhooks::{
    AccountMatch, MAX_BODY_BYTES, PlatformAction, PlatformEvent, PlatformWebhook, WebhookMethod,
    WebhookRefusal, WebhookRequest, WebhookRoute, check_timestamp, event_name, hmac_sha256_matches,
};
use serde::Deserialize;

/// The header carrying the signature (header names are case-insensitive).
pub const SIGNATURE_HEADER: &str = "TikTok-Signature";

/// The event TikTok sends when an authorization ends: the user removed the app, deleted or
/// lost their account, or the developer revoked it. The access token is already revoked
/// when it arrives.
pub const AUTHORIZATION_REMOVED: &str = "authorization.removed";

/// The people-readable reason of an `authorization.removed` reason code
/// (<https://developers.tiktok.com/doc/webhooks-events/>): what the account's last error
/// shows.
pub fn removal_reason(code: u64) -> String {
    match code {
        0 => "TikTok ended this connection (no reason given).".to_owned(),
        1 => "You disconnected this app in TikTok.".to_owned(),
        2 => "This TikTok account was deleted.".to_owned(),
        3 => "TikTok ended this connection because the account's age changed.".to_owned(),
        4 => "This TikTok account was banned.".to_owned(),
        5 => "This app's access was revoked by its developer.".to_owned(),
        other => format!("TikTok ended this connection (reason code {other})."),
    }
}

/// The body of a TikTok webhook (webhooks-events).
#[derive(Debug, Deserialize)]
struct Envelope {
    client_key: String,
    event: String,
    create_time: UnixTime,
    #[serde(default)]
    user_openid: Option<String>,
    #[serde(default)]
    content: Option<serde_json::Value>,
}

/// `create_time`: an integer of unix seconds (a numeric string is accepted too).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum UnixTime {
    Number(i64),
    Text(String),
}

impl UnixTime {
    fn seconds(&self) -> Option<i64> {
        match self {
            Self::Number(n) => Some(*n),
            Self::Text(s) => s.trim().parse().ok(),
        }
    }
}

/// The parts of a `TikTok-Signature` header.
#[derive(Debug)]
struct Signature<'a> {
    timestamp: &'a str,
    signatures: Vec<[u8; 32]>,
}

/// Reads `t=<unix s>,s=<64 hex>`: split on `,` then on the first `=`, spaces around
/// either tolerated; keys other than `t` and `s` are ignored; several `s` entries are
/// all tried.
fn parse_signature(value: &str) -> Result<Signature<'_>, WebhookRefusal> {
    let malformed =
        |what: &str| WebhookRefusal::Malformed(format!("the {SIGNATURE_HEADER} header {what}"));
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| malformed("has an entry without `=`"))?;
        match key.trim() {
            "t" if timestamp.is_some() => return Err(malformed("has two `t` entries")),
            "t" => timestamp = Some(value.trim()),
            "s" => signatures.push(
                decode_hex32(value.trim())
                    .ok_or_else(|| malformed("has an `s` that is not 64 hex digits"))?,
            ),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| malformed("has no `t`"))?;
    if signatures.is_empty() {
        return Err(malformed("has no `s`"));
    }
    Ok(Signature {
        timestamp,
        signatures,
    })
}

/// 64 hex digits (either case) into 32 bytes.
fn decode_hex32(text: &str) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let nibble = |b: u8| char::from(b).to_digit(16);
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let value = nibble(pair[0])? * 16 + nibble(pair[1])?;
        *byte = u8::try_from(value).ok()?;
    }
    Some(out)
}

/// Authenticates a request to the events route and reads its event (see the module docs).
pub(crate) fn read(
    config: &TikTokConfig,
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
    let header = request
        .headers
        .get(SIGNATURE_HEADER)
        .ok_or(WebhookRefusal::MissingSignature(SIGNATURE_HEADER))?
        .to_str()
        .map_err(|_| {
            WebhookRefusal::Malformed(format!("the {SIGNATURE_HEADER} header is not ASCII"))
        })?;
    let signature = parse_signature(header)?;
    let webhooks = config.client.webhooks();
    check_timestamp(signature.timestamp, request.now, webhooks.tolerance())?;
    // The client secret signs; configured webhook secrets (an old client secret during a
    // rotation) are tried too.
    let keys: Vec<&[u8]> = std::iter::once(config.client.client_secret())
        .chain(&webhooks.secrets)
        .map(|s| s.expose_secret().as_bytes())
        .filter(|k| !k.is_empty())
        .collect();
    let parts: [&[u8]; 3] = [signature.timestamp.as_bytes(), b".", request.body];
    if !signature
        .signatures
        .iter()
        .any(|s| hmac_sha256_matches(&keys, &parts, s))
    {
        return Err(WebhookRefusal::BadSignature);
    }

    // Authentic: now the body.
    let envelope: Envelope = request.json()?;
    if envelope.client_key != config.client.client_id() {
        return Err(WebhookRefusal::Malformed(
            "the event is for another client_key".into(),
        ));
    }
    if envelope.event.trim().is_empty() {
        return Err(WebhookRefusal::Malformed("the event has no name".into()));
    }
    let occurred_at = envelope
        .create_time
        .seconds()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .ok_or_else(|| WebhookRefusal::Malformed("`create_time` is not a unix time".into()))?;
    let open_id = envelope
        .user_openid
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let action = if envelope.event == AUTHORIZATION_REMOVED {
        if open_id.is_none() {
            return Err(WebhookRefusal::Malformed(
                "`authorization.removed` names no `user_openid`".into(),
            ));
        }
        PlatformAction::Revoked {
            reason: removal_reason(reason_code(envelope.content.as_ref())?),
        }
    } else {
        // video.upload.failed, video.publish.completed, portability.download.ready and
        // anything new: acknowledged, nothing to do.
        PlatformAction::Ignore
    };
    Ok(PlatformWebhook::Events(vec![PlatformEvent {
        id: request.body_digest(),
        name: event_name(&envelope.event),
        accounts: open_id
            .map(|id| AccountMatch::Id(id.to_owned()))
            .into_iter()
            .collect(),
        occurred_at: Some(occurred_at),
        action,
    }]))
}

/// The `reason` of `authorization.removed`'s `content`: a JSON object serialized as a
/// string (as documented), or the object itself. A missing `content` or `reason` is 0
/// (unknown); content that is no JSON object is malformed.
fn reason_code(content: Option<&serde_json::Value>) -> Result<u64, WebhookRefusal> {
    let malformed = || WebhookRefusal::Malformed("`content` is not a JSON object".into());
    let parsed;
    let object = match content {
        None | Some(serde_json::Value::Null) => return Ok(0),
        Some(serde_json::Value::String(text)) => {
            parsed = serde_json::from_str::<serde_json::Value>(text).map_err(|_| malformed())?;
            &parsed
        }
        Some(other) => other,
    };
    let object = object.as_object().ok_or_else(malformed)?;
    Ok(match object.get("reason") {
        Some(serde_json::Value::Number(n)) => n.as_u64().unwrap_or(0),
        Some(serde_json::Value::String(s)) => s.trim().parse().unwrap_or(0),
        _ => 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_header_forms() {
        let hex = "ab".repeat(32);
        let header = format!("t=1633174587,s={hex}");
        let s = parse_signature(&header).unwrap();
        assert_eq!(s.timestamp, "1633174587");
        assert_eq!(s.signatures, vec![[0xab; 32]]);
        let header = format!(" t = 1 , s = {} ,v=2", hex.to_uppercase());
        let s = parse_signature(&header).unwrap();
        assert_eq!(s.timestamp, "1");
        assert_eq!(s.signatures.len(), 1);
        for bad in [
            String::new(),
            "t=1".into(),
            format!("s={hex}"),
            format!("t=1,s={}", &hex[..62]),
            format!("t=1,s={}zz", &hex[..62]),
            format!("t=1,t=2,s={hex}"),
            format!("t=1,{hex}"),
        ] {
            assert!(
                matches!(parse_signature(&bad), Err(WebhookRefusal::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn reasons() {
        let code = |v: serde_json::Value| reason_code(Some(&v));
        assert_eq!(code(serde_json::json!("{\"reason\": 1 }")).unwrap(), 1);
        assert_eq!(code(serde_json::json!({"reason": 4})).unwrap(), 4);
        assert_eq!(code(serde_json::json!("{}")).unwrap(), 0);
        assert_eq!(reason_code(None).unwrap(), 0);
        assert!(code(serde_json::json!("not json")).is_err());
        assert!(code(serde_json::json!("[1]")).is_err());
        assert!(code(serde_json::json!(3)).is_err());
        for c in 0..=6 {
            assert!(!removal_reason(c).is_empty());
        }
        assert_eq!(removal_reason(1), "You disconnected this app in TikTok.");
    }
}
