//! Platform webhooks: the requests a platform sends to the host when something happens to
//! a connection there (the user removed the app, asked for their data to be deleted, a
//! gateway session expired or came back).
//!
//! A provider that receives them implements [`Provider::read_webhook`](crate::Provider::read_webhook):
//! it authenticates the raw request (signature over the **raw body bytes**, compared in
//! constant time, with the platform's own scheme) and reads it into [`PlatformEvent`]s, or
//! refuses it with a [`WebhookRefusal`]. [`Integrations::handle_platform_webhook`](crate::Integrations::handle_platform_webhook)
//! then applies each event once (replays are recognised by a [`WebhookReceipt`]), audits it,
//! and records every change as a [`ConnectionEvent`](crate::ConnectionEvent).
//!
//! This module also holds the small toolkit the provider crates share: HMAC-SHA256 with a
//! constant-time check, the timestamp tolerance, and the reading of forms, headers and
//! JSON bodies with typed refusals.
//!
//! Outcomes by action:
//!
//! | [`PlatformAction`] | account found | stored change | connection event |
//! | --- | --- | --- | --- |
//! | `Revoked` | yes | `needs_reconnect`, tokens cleared, the reason as last error | `connection.needs_reconnect` (`error_code: platform_revoked`) |
//! | `SessionLost` | yes | `needs_reconnect`, tokens kept | `connection.needs_reconnect` (`error_code: platform_session_lost`) |
//! | `Restored` | yes, `needs_reconnect` with its tokens kept | `active`, failures cleared | `connection.restored` |
//! | `DeleteData` | yes | the account deleted | `connection.data_deleted` |
//! | any | no | nothing (acknowledged, receipt `unknown_account`) | none |
//!
//! An event the platform dated before the account's current authorization (the user
//! connected again after removing the app) changes nothing: its receipt says `stale`.

use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use std::time::Duration;

type HmacSha256 = hmac::Hmac<Sha256>;

/// The largest body a platform webhook may have (64 KiB); larger ones are refused
/// before any parsing. The platforms' account events are a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The default tolerance between a signed timestamp and now (5 minutes, as Standard
/// Webhooks suggests; TikTok names no window).
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Which of the host's routes a request arrived on. Meta sends the same `signed_request`
/// to two URLs, and only the URL tells a deauthorization from a data-deletion request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookRoute {
    /// `/api/integrations/webhooks/{provider}`: handshakes and event deliveries
    /// (Meta's Deauthorize callback and Graph webhooks, TikTok, the gateways).
    Events,
    /// `/api/integrations/data-deletion/{provider}`: Meta's Data Deletion Request callback.
    DataDeletion,
}

impl WebhookRoute {
    /// `events` or `data_deletion` (part of a receipt's key).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Events => "events",
            Self::DataDeletion => "data_deletion",
        }
    }
}

/// The HTTP method of a platform's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookMethod {
    /// A verification handshake (Meta's `hub.challenge`).
    Get,
    /// A delivery.
    Post,
}

/// A request a platform sent, as it arrived: nothing decoded or re-serialised.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRequest<'a> {
    /// The route it arrived on.
    pub route: WebhookRoute,
    /// Its method.
    pub method: WebhookMethod,
    /// The raw query string, without `?` (empty when none).
    pub query: &'a str,
    /// The headers.
    pub headers: &'a http::HeaderMap,
    /// The raw body bytes, exactly as received: signatures are computed over them.
    pub body: &'a [u8],
    /// Now, by the service's clock (for timestamp tolerances).
    pub now: DateTime<Utc>,
}

impl<'a> WebhookRequest<'a> {
    /// A header's value as text; `None` when absent or not visible ASCII.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers.get(name)?.to_str().ok().map(str::trim)
    }

    /// A query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The body as UTF-8 text, or [`WebhookRefusal::Malformed`].
    pub fn text(&self) -> Result<&'a str, WebhookRefusal> {
        std::str::from_utf8(self.body)
            .map_err(|_| WebhookRefusal::Malformed("the body is not UTF-8".into()))
    }

    /// A field of an `application/x-www-form-urlencoded` body, percent-decoded; a
    /// missing or empty field is [`WebhookRefusal::Malformed`] naming it.
    pub fn form_field(&self, name: &str) -> Result<String, WebhookRefusal> {
        let text = self.text()?;
        url::form_urlencoded::parse(text.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| WebhookRefusal::Malformed(format!("the form has no `{name}` field")))
    }

    /// The body read as JSON into `T`; a body that is not UTF-8 or not that JSON is
    /// [`WebhookRefusal::Malformed`] (with serde's position, never the body).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, WebhookRefusal> {
        serde_json::from_str(self.text()?).map_err(|e| {
            WebhookRefusal::Malformed(format!(
                "the body is not the expected JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })
    }

    /// `sha256:` and the hex SHA-256 of the body: the deduplication id of a delivery
    /// whose platform gives it none.
    pub fn body_digest(&self) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(self.body)))
    }
}

/// What a provider read from an authentic request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlatformWebhook {
    /// A verification handshake: answer `200` with `challenge` as the plain-text body.
    Handshake {
        /// The platform's challenge, echoed verbatim.
        challenge: String,
    },
    /// A delivery of events (possibly none that matter: each carries its action).
    Events(Vec<PlatformEvent>),
}

/// One event of a platform's delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformEvent {
    /// Deduplication id: the platform's own delivery or event id, else a digest of the
    /// body (with the event's index when a body carries several). At most 200 characters.
    pub id: String,
    /// The platform's name for the event (`authorization.removed`, `deauthorize`, ...),
    /// at most 64 characters, for receipts and audit rows.
    pub name: String,
    /// The account the event is about, as the platform names it: candidates tried in
    /// order. Empty when the event concerns no account.
    pub accounts: Vec<AccountMatch>,
    /// When the platform says it happened, when it says so.
    pub occurred_at: Option<DateTime<Utc>>,
    /// What it means for the account.
    pub action: PlatformAction,
}

/// How a platform names an account in its webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountMatch {
    /// The account's `provider_account_id` (the id [`Profile::account_id`](crate::Profile::account_id) gave).
    Id(String),
    /// One of the account's other ids, stored by its provider under
    /// [`ALIASES_KEY`](crate::store::ALIASES_KEY) of its metadata (found with
    /// [`TokenStore::find_account_by_alias`](crate::TokenStore::find_account_by_alias)).
    Alias(String),
    /// The account with this `provider_account_id`, only while it lists `alias` among its
    /// other ids (or lists none): an event about one connection of the account (a
    /// gateway's connection id) must not reach a newer connection of the same account.
    IdWithAlias {
        /// The `provider_account_id`.
        id: String,
        /// The other id the account must list.
        alias: String,
    },
}

/// What an event means for the account it names.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlatformAction {
    /// The grant is dead at the platform (the user removed the app; the token was
    /// revoked): the account needs reconnecting and its tokens are cleared.
    Revoked {
        /// Why, for people: shown as the account's last error.
        reason: String,
    },
    /// The connection needs the user (a gateway's session expired or its login failed),
    /// but it still exists there and may come back: the account needs reconnecting and
    /// its credentials are kept.
    SessionLost {
        /// Why, for people.
        reason: String,
    },
    /// The connection works again (a gateway reconnected it): an account that lost its
    /// session is active again.
    Restored,
    /// The user asked the platform to have their data deleted: the account is deleted.
    DeleteData,
    /// Authentic, but nothing to do (an event type the library does not act on).
    Ignore,
}

/// A platform webhook refused: nothing is changed, and the platform gets a 4xx.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookRefusal {
    /// The provider receives no webhooks on this route (Reddit has none at all).
    #[error("this provider receives no platform webhooks on this route")]
    Unsupported,
    /// The secret needed to check this webhook is not configured.
    #[error("the provider has no secret configured for its webhooks")]
    NotConfigured,
    /// A method the route does not take.
    #[error("this method is not accepted on this webhook route")]
    Method,
    /// A body over [`MAX_BODY_BYTES`].
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    /// The signature header or field is missing.
    #[error("the `{0}` signature is missing")]
    MissingSignature(&'static str),
    /// No signature matches any configured secret.
    #[error("the signature does not match")]
    BadSignature,
    /// The signed timestamp is outside the tolerance (a replay, or a clock far off).
    #[error("the signed timestamp is outside the tolerance")]
    Stale,
    /// A handshake whose verify token is not ours.
    #[error("the verify token does not match")]
    VerifyToken,
    /// The request is not what the platform sends.
    #[error("malformed webhook: {0}")]
    Malformed(String),
}

impl WebhookRefusal {
    /// A stable code (`webhook_bad_signature`, `webhook_stale`, ...): the error code
    /// [`Error::WebhookRefused`](crate::Error::WebhookRefused) answers with.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unsupported => "webhook_unsupported",
            Self::NotConfigured => "webhook_not_configured",
            Self::Method => "webhook_method",
            Self::TooLarge(_) => "webhook_too_large",
            Self::MissingSignature(_) => "webhook_missing_signature",
            Self::BadSignature => "webhook_bad_signature",
            Self::Stale => "webhook_stale",
            Self::VerifyToken => "webhook_verify_token",
            Self::Malformed(_) => "webhook_malformed",
        }
    }

    /// A sentence for the answer's `message` (no detail from the request).
    pub fn summary(&self) -> &'static str {
        match self {
            Self::Unsupported => "This platform sends no webhooks here.",
            Self::NotConfigured => "Webhooks of this platform are not set up here.",
            Self::Method => "This webhook address does not take that method.",
            Self::TooLarge(_) => "The webhook body is too large.",
            Self::MissingSignature(_) => "The webhook carries no signature.",
            Self::BadSignature => "The webhook signature does not match.",
            Self::Stale => "The webhook timestamp is too old or in the future.",
            Self::VerifyToken => "The verify token does not match.",
            Self::Malformed(_) => "The webhook is not what the platform sends.",
        }
    }

    /// The HTTP status to answer: 404 for a route that does not exist for the provider,
    /// 405, 413, 401 for authentication failures, 403 for a handshake with the wrong
    /// token (what Meta's samples answer), 400 for the rest.
    pub fn http_status(&self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            Self::Unsupported | Self::NotConfigured => S::NOT_FOUND,
            Self::Method => S::METHOD_NOT_ALLOWED,
            Self::TooLarge(_) => S::PAYLOAD_TOO_LARGE,
            Self::MissingSignature(_) | Self::BadSignature | Self::Stale => S::UNAUTHORIZED,
            Self::VerifyToken => S::FORBIDDEN,
            Self::Malformed(_) => S::BAD_REQUEST,
        }
    }
}

/// HMAC-SHA256 of the concatenated `parts` under `key`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    mac_of(key, parts).finalize().into_bytes().into()
}

fn mac_of(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    for part in parts {
        mac.update(part);
    }
    mac
}

/// Whether `signature` is the HMAC-SHA256 of the concatenated `parts` under any of
/// `keys`, compared in constant time.
pub fn hmac_sha256_matches(keys: &[&[u8]], parts: &[&[u8]], signature: &[u8]) -> bool {
    keys.iter()
        .any(|key| mac_of(key, parts).verify_slice(signature).is_ok())
}

/// Checks a signed unix timestamp (seconds) against `now`: within `tolerance` either way,
/// or [`WebhookRefusal::Stale`]; text that is no timestamp is
/// [`WebhookRefusal::Malformed`].
pub fn check_timestamp(
    seconds: &str,
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<DateTime<Utc>, WebhookRefusal> {
    let at = seconds
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .ok_or_else(|| WebhookRefusal::Malformed("the signed timestamp is not a time".into()))?;
    let tolerance = chrono::Duration::from_std(tolerance).unwrap_or(chrono::Duration::MAX);
    if (now - at).abs() > tolerance {
        return Err(WebhookRefusal::Stale);
    }
    Ok(at)
}

/// A platform's event name, cut to 64 characters (it ends up in receipts and audit rows).
pub fn event_name(name: &str) -> String {
    name.chars().take(64).collect()
}

/// What [`Integrations::handle_platform_webhook`](crate::Integrations::handle_platform_webhook) answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookAnswer {
    /// A handshake: `200` with this plain-text body.
    Challenge(String),
    /// Events applied (or recognised as replays): `200`.
    Acknowledged {
        /// Each event's receipt, in the delivery's order.
        receipts: Vec<WebhookReceipt>,
    },
    /// A data-deletion request: `200` with `{"url": <status page>, "confirmation_code"}`.
    DataDeletion {
        /// The request's receipt; its `confirmation_code` is set.
        receipt: WebhookReceipt,
    },
}

/// The record of one platform event: written once when the event is applied, so a
/// replay is recognised and answered the same way. Doubles as the audit trail of
/// platform webhooks (an event for no stored account has no user to audit under).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookReceipt {
    /// The platform.
    pub provider: crate::ProviderId,
    /// The route and the event's id (`events:<id>`, `data_deletion:<id>`), at most 255
    /// characters; unique per platform.
    pub key: String,
    /// The platform's event name.
    pub event: String,
    /// The account it concerned, when one was found.
    pub provider_account_id: Option<String>,
    /// What was done (`revoked`, `session_lost`, `restored`, `deleted`, `ignored`,
    /// `unknown_account`, `stale`, `unchanged`).
    pub outcome: String,
    /// For a data-deletion request: the code its status page is found by.
    pub confirmation_code: Option<String>,
    /// When it was received.
    pub received_at: DateTime<Utc>,
}

impl WebhookReceipt {
    /// Whether this receipt is of a data-deletion request whose data was deleted (or
    /// none was held).
    pub fn deletion_done(&self) -> bool {
        self.confirmation_code.is_some()
    }
}

/// A new confirmation code: 12 characters of `A-Z0-9` (about 62 random bits), as Meta
/// asks ("alphanumeric").
pub fn confirmation_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut bytes = [0u8; 12];
    rand::fill(&mut bytes[..]);
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(headers: &'a http::HeaderMap, body: &'a [u8]) -> WebhookRequest<'a> {
        WebhookRequest {
            route: WebhookRoute::Events,
            method: WebhookMethod::Post,
            query: "hub.mode=subscribe&hub.challenge=12%2034",
            headers,
            body,
            now: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        }
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2_and_compares_every_key() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let tag = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex::encode(tag),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(hmac_sha256_matches(
            &[b"other", b"Jefe"],
            &[b"what do ya want for nothing?"],
            &tag
        ));
        assert!(!hmac_sha256_matches(
            &[b"other"],
            &[b"what do ya want for nothing?"],
            &tag
        ));
        assert!(!hmac_sha256_matches(
            &[b"Jefe"],
            &[b"what do ya want for nothing"],
            &tag
        ));
        assert!(!hmac_sha256_matches(&[b"Jefe"], &[b"x"], &tag[..31]));
    }

    #[test]
    fn timestamps_outside_the_tolerance_are_stale() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let t = Duration::from_secs(300);
        assert!(check_timestamp("1700000300", now, t).is_ok());
        assert!(check_timestamp("1699999700", now, t).is_ok());
        assert_eq!(
            check_timestamp("1700000301", now, t),
            Err(WebhookRefusal::Stale)
        );
        assert_eq!(
            check_timestamp("1699999699", now, t),
            Err(WebhookRefusal::Stale)
        );
        assert!(matches!(
            check_timestamp("soon", now, t),
            Err(WebhookRefusal::Malformed(_))
        ));
        assert!(matches!(
            check_timestamp("99999999999999999999", now, t),
            Err(WebhookRefusal::Malformed(_))
        ));
    }

    #[test]
    fn request_readers_refuse_with_typed_errors() {
        let headers = http::HeaderMap::new();
        let r = request(&headers, b"signed_request=a.b&x=");
        assert_eq!(r.form_field("signed_request").unwrap(), "a.b");
        assert!(
            matches!(r.form_field("x"), Err(WebhookRefusal::Malformed(m)) if m.contains("`x`"))
        );
        assert_eq!(r.query_param("hub.challenge").as_deref(), Some("12 34"));
        let bad = request(&headers, b"\xff\xfe");
        assert!(matches!(bad.text(), Err(WebhookRefusal::Malformed(_))));
        let json = request(&headers, br#"{"a": "secret-value""#);
        let err = json.json::<serde_json::Value>().unwrap_err();
        assert!(!err.to_string().contains("secret-value"), "{err}");
        assert_eq!(
            request(&headers, b"abc").body_digest(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn refusals_map_to_4xx() {
        for r in [
            WebhookRefusal::Unsupported,
            WebhookRefusal::NotConfigured,
            WebhookRefusal::Method,
            WebhookRefusal::TooLarge(1),
            WebhookRefusal::MissingSignature("x"),
            WebhookRefusal::BadSignature,
            WebhookRefusal::Stale,
            WebhookRefusal::VerifyToken,
            WebhookRefusal::Malformed("m".into()),
        ] {
            assert!(r.http_status().is_client_error(), "{r:?}");
            assert!(!r.code().is_empty());
        }
    }

    #[test]
    fn confirmation_codes_are_twelve_alphanumerics_and_differ() {
        let a = confirmation_code();
        assert_eq!(a.len(), 12);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        );
        assert_ne!(a, confirmation_code());
    }
}
