//! Platform webhooks sent by the sandbox: the calls a real platform makes to the app when a
//! user removes it, each in the platform's wire format. The wire facts and their sources are
//! collected in the team's `webhooks.md` (sections cited next to each format below):
//!
//! - Instagram deauthorize / data deletion: `POST`, form field `signed_request=<sig>.<payload>`
//!   (§1a, §1b; Meta's `SignedRequest.php` in facebookarchive/php-graph-sdk, and
//!   <https://developers.facebook.com/docs/development/create-an-app/app-dashboard/data-deletion-callback>).
//! - Instagram Graph webhooks: the `hub.mode=subscribe` handshake and `X-Hub-Signature-256`
//!   (§1c; <https://developers.facebook.com/docs/graph-api/webhooks/getting-started>).
//! - TikTok `authorization.removed` with `TikTok-Signature` (§2;
//!   <https://developers.tiktok.com/doc/webhooks-events/> and
//!   <https://developers.tiktok.com/doc/webhooks-verification>).
//! - OFAuth `connection.expired` / `connection.updated`, Svix-signed (§4b; the official SDKs
//!   OFAuth-org/onlyfans-sdk-typescript `src/webhooks.ts` and onlyfans-sdk-python
//!   `onlyfans_sdk/webhooks.py`).
//!
//! Reddit has no deauthorization webhook (§3), so nothing is sent for it.
//!
//! Bodies are built as text, field by field, so the bytes on the wire are exactly the
//! documented ones (no map ordering); signatures are computed over those exact bytes.

use crate::state::Inner;
use crate::util::{random_hex, random_token};
use crate::{Error, Platform, Result, SandboxHandle, users};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Deliveries kept per platform (older ones are dropped).
const LOG_CAP: usize = 200;
/// Response bodies are recorded up to this many bytes.
const RESPONSE_KEEP: usize = 2048;
/// Response bodies are read up to this many bytes (to parse a data-deletion answer).
const RESPONSE_READ: usize = 64 * 1024;
/// Timeout of one webhook request.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Which Instagram id goes into `user_id` of a `signed_request`.
///
/// Meta documents an "app-scoped" id for Facebook Login; for Instagram Login it does not say
/// which id is sent (webhooks.md §1a, open question 1). The sandbox sends the app-scoped id
/// (the `id` of `GET /me`) by default; switch to the professional account id (`user_id` of
/// `GET /me` and of the code exchange) to test that a receiver matches on either.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignedRequestUserId {
    /// The app-scoped id (`/me` `id`). The default.
    #[default]
    AppScoped,
    /// The professional account id (`/me` `user_id`, the code exchange's `user_id`).
    Professional,
}

/// Where a platform's webhooks go. Fields that do not apply to a platform must be `None`.
///
/// | field | Instagram | TikTok | OnlyFans gateway |
/// |---|---|---|---|
/// | `deauthorize_url` | "Deauthorize callback URL" | — | — |
/// | `data_deletion_url` | "Data deletion request URL" | — | — |
/// | `callback_url` | Graph webhooks callback URL (handshake, events) | the app's callback URL | the webhook endpoint URL |
/// | `verify_token` | Graph webhooks verify token | — | — |
///
/// The targets are per platform: the demo client and every registered client share them;
/// each event is signed with the secret of the client whose grant it is about.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookTargets {
    /// Instagram: the "Deauthorize callback URL".
    pub deauthorize_url: Option<String>,
    /// Instagram: the "Data deletion request URL".
    pub data_deletion_url: Option<String>,
    /// TikTok: the callback URL; OnlyFans gateway: the webhook URL; Instagram: the Graph
    /// webhooks callback URL (for [`SandboxHandle::verify_instagram_webhooks`] and
    /// [`SandboxHandle::send_instagram_event`]).
    #[serde(alias = "webhook_url", alias = "url")]
    pub callback_url: Option<String>,
    /// Instagram: the Graph webhooks verify token sent in the handshake.
    pub verify_token: Option<String>,
    /// Instagram: which id a `signed_request` carries as `user_id`.
    pub signed_request_user_id: SignedRequestUserId,
}

impl fmt::Debug for WebhookTargets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookTargets")
            .field("deauthorize_url", &self.deauthorize_url)
            .field("data_deletion_url", &self.data_deletion_url)
            .field("callback_url", &self.callback_url)
            .field(
                "verify_token",
                &self.verify_token.as_ref().map(|_| "[redacted]"),
            )
            .field("signed_request_user_id", &self.signed_request_user_id)
            .finish()
    }
}

/// One webhook request the sandbox made, and what the receiver answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookDelivery {
    /// Increasing id (per sandbox).
    pub id: u64,
    /// The platform that sent it.
    pub platform: Platform,
    /// `deauthorize`, `data_deletion`, `verify` or `graph_event` (Instagram),
    /// `authorization.removed` (TikTok), `connection.expired` or `connection.updated`
    /// (OnlyFans gateway).
    pub event: String,
    /// The sandbox user the event is about, when there is one.
    pub user: Option<String>,
    /// Signed with a wrong secret on purpose ([`SandboxHandle::send_forged_webhook`]).
    pub forged: bool,
    /// The delivery this one re-sent byte for byte ([`SandboxHandle::replay_last_webhook`]).
    pub replay_of: Option<u64>,
    /// `POST`, or `GET` for the Graph webhooks handshake.
    pub method: String,
    /// The full target URL (with the handshake's query).
    pub url: String,
    /// The headers the sandbox set, lowercase names, in order (the HTTP client adds `host`,
    /// `content-length`, `accept` and `user-agent`).
    pub request_headers: Vec<(String, String)>,
    /// The exact request body.
    pub request_body: String,
    /// Unix seconds (wall clock) when it was sent.
    pub sent_at: i64,
    /// The receiver's HTTP status; `None` when the request failed (see `error`).
    pub status: Option<u16>,
    /// The receiver's body, cut to 2 kB.
    pub response_body: String,
    /// A transport error (connection refused, timeout, ...).
    pub error: Option<String>,
    /// Data deletion: `confirmation_code` of the receiver's JSON answer.
    pub confirmation_code: Option<String>,
    /// Data deletion: `url` of the receiver's JSON answer.
    pub status_url: Option<String>,
    /// Handshake: the `hub.challenge` sent.
    pub challenge: Option<String>,
    /// Handshake: whether the answer was 200 with the bare challenge as its body.
    pub challenge_ok: Option<bool>,
}

/// Options of [`SandboxHandle::remove_app_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveAppOptions {
    /// Only the grants of this client (default: all of the user's live grants).
    pub client_id: Option<String>,
    /// TikTok `authorization.removed` reason, 0..=5 (webhooks.md §2: 0 unknown, 1 user
    /// disconnected in the app, 2 account deleted, 3 age changed, 4 account banned,
    /// 5 developer revoked). Default 1.
    pub tiktok_reason: u8,
    /// Instagram: also send the data deletion request after the deauthorize callback.
    pub data_deletion: bool,
}

impl Default for RemoveAppOptions {
    fn default() -> Self {
        Self {
            client_id: None,
            tiktok_reason: 1,
            data_deletion: false,
        }
    }
}

/// The result of removing the app for a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppRemoval {
    /// Grants revoked.
    pub revoked: usize,
    /// Webhooks sent (none for a target that is not configured, and none for Reddit).
    pub deliveries: Vec<WebhookDelivery>,
}

/// Per-platform webhook state.
#[derive(Debug, Default)]
struct PlatformHooks {
    targets: WebhookTargets,
    log: VecDeque<WebhookDelivery>,
}

/// Webhook targets, the gateway's signing secret and the delivery logs.
#[derive(Debug)]
pub(crate) struct Hooks {
    per: [Mutex<PlatformHooks>; 4],
    onlyfans_secret: Mutex<String>,
    next_id: AtomicU64,
    client: OnceLock<Option<reqwest::Client>>,
}

impl Hooks {
    pub(crate) fn new() -> Self {
        Self {
            per: Default::default(),
            onlyfans_secret: Mutex::new(new_whsec()),
            next_id: AtomicU64::new(0),
            client: OnceLock::new(),
        }
    }

    fn lock(&self, p: Platform) -> MutexGuard<'_, PlatformHooks> {
        self.per[p as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn secret(&self) -> String {
        self.onlyfans_secret
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The HTTP client: 5 s timeout, no redirects followed, no proxy (webhook targets are
    /// the developer's local app).
    fn client(&self) -> Option<&reqwest::Client> {
        self.client
            .get_or_init(|| {
                reqwest::Client::builder()
                    .timeout(SEND_TIMEOUT)
                    .redirect(reqwest::redirect::Policy::none())
                    .no_proxy()
                    .user_agent(crate::SANDBOX_HEADER_VALUE)
                    .build()
                    .ok()
            })
            .as_ref()
    }
}

/// A fresh Standard Webhooks secret: `whsec_` + base64 of 24 random bytes (webhooks.md §5).
fn new_whsec() -> String {
    let mut b = [0u8; 24];
    rand::fill(&mut b[..]);
    format!("whsec_{}", STANDARD.encode(b))
}

/// The key bytes of a `whsec_…` secret (Svix: strip the prefix, standard base64-decode).
pub(crate) fn whsec_key(secret: &str) -> Option<Vec<u8>> {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    STANDARD.decode(b64).ok().filter(|k| !k.is_empty())
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length; the fallback is unreachable.
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return [0; 32];
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Meta's `signed_request`: `base64url(HMAC-SHA256(secret, encoded payload)) + "." +
/// encoded payload`, both unpadded (webhooks.md §1a; `SignedRequest.php`).
pub(crate) fn signed_request(secret: &[u8], payload_json: &str) -> String {
    let payload = URL_SAFE_NO_PAD.encode(payload_json.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(hmac_sha256(secret, &[payload.as_bytes()]));
    format!("{sig}.{payload}")
}

/// `X-Hub-Signature-256` value: `sha256=<lowercase hex HMAC-SHA256(app secret, raw body)>`
/// (webhooks.md §1c).
pub(crate) fn x_hub_signature_256(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hex::encode(hmac_sha256(secret, &[body])))
}

/// `TikTok-Signature` value: `t=<t>,s=<hex HMAC-SHA256(client_secret, "<t>.<body>")>`
/// (webhooks.md §2; <https://developers.tiktok.com/doc/webhooks-verification>).
pub(crate) fn tiktok_signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    let t = t.to_string();
    let s = hmac_sha256(secret, &[t.as_bytes(), b".", body]);
    format!("t={t},s={}", hex::encode(s))
}

/// `svix-signature` value: `v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`
/// (webhooks.md §4b and §5).
pub(crate) fn svix_signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    let s = hmac_sha256(key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    format!("v1,{}", STANDARD.encode(s))
}

/// A JSON string literal.
fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

/// Wall-clock unix seconds. Webhook timestamps use the wall clock, not the sandbox clock:
/// the receiver checks them against its own clock.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A request about to be sent.
#[derive(Debug, Clone)]
struct Outgoing {
    event: String,
    user: Option<String>,
    forged: bool,
    replay_of: Option<u64>,
    method: &'static str,
    url: String,
    headers: Vec<(String, String)>,
    body: String,
    challenge: Option<String>,
}

impl Outgoing {
    fn post(event: &str, user: Option<&str>, url: &str) -> Self {
        Self {
            event: event.to_owned(),
            user: user.map(str::to_owned),
            forged: false,
            replay_of: None,
            method: "POST",
            url: url.to_owned(),
            headers: Vec::new(),
            body: String::new(),
            challenge: None,
        }
    }
}

/// Instagram deauthorize / data deletion request (webhooks.md §1a, §1b): `POST`,
/// `Content-Type: application/x-www-form-urlencoded`, one field `signed_request`. The payload
/// is `{"algorithm":"HMAC-SHA256","issued_at":<s>,"user_id":"<id>"}`; the data deletion
/// request adds `"expires"` (one hour later, as in the bk-rs fixture).
fn instagram_signed_post(
    event: &str,
    user: &str,
    url: &str,
    secret: &[u8],
    user_id: &str,
    with_expires: bool,
) -> Outgoing {
    let now = unix_now();
    let payload = if with_expires {
        format!(
            r#"{{"algorithm":"HMAC-SHA256","issued_at":{now},"expires":{},"user_id":{}}}"#,
            now + 3600,
            js(user_id)
        )
    } else {
        format!(
            r#"{{"algorithm":"HMAC-SHA256","issued_at":{now},"user_id":{}}}"#,
            js(user_id)
        )
    };
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("signed_request", &signed_request(secret, &payload))
        .finish();
    let mut o = Outgoing::post(event, Some(user), url);
    o.headers.push((
        "content-type".to_owned(),
        "application/x-www-form-urlencoded".to_owned(),
    ));
    o.body = body;
    o
}

/// TikTok `authorization.removed` (webhooks.md §2): JSON body with `content` as a
/// serialized JSON string, `TikTok-Signature: t=…,s=…`.
fn tiktok_removed(user: &str, url: &str, client_key: &str, secret: &[u8], reason: u8) -> Outgoing {
    let t = unix_now();
    let content = js(&format!(r#"{{"reason":{reason}}}"#));
    let body = format!(
        r#"{{"client_key":{},"event":"authorization.removed","create_time":{t},"user_openid":{},"content":{content}}}"#,
        js(client_key),
        js(&users::tiktok_open_id(user)),
    );
    let mut o = Outgoing::post("authorization.removed", Some(user), url);
    o.headers
        .push(("content-type".to_owned(), "application/json".to_owned()));
    o.headers.push((
        "tiktok-signature".to_owned(),
        tiktok_signature(secret, t, body.as_bytes()),
    ));
    o.body = body;
    o
}

/// OFAuth connection event (webhooks.md §4b, SDK types): `{"eventType", "live": false,
/// "data": {"connection": {"id", "platformUserId", "status"}, "clientReferenceId"}}`, with
/// the Svix headers `svix-id`, `svix-timestamp`, `svix-signature`.
fn onlyfans_event(
    event: &str,
    status: &str,
    user: &str,
    url: &str,
    key: &[u8],
    connection: &str,
    reference: Option<&str>,
) -> Outgoing {
    let ts = unix_now();
    let id = format!("msg_{}", random_token("", 20).replace(['-', '_'], "x"));
    let body = format!(
        r#"{{"eventType":{},"live":false,"data":{{"connection":{{"id":{},"platformUserId":{},"status":{}}},"clientReferenceId":{}}}}}"#,
        js(event),
        js(connection),
        js(&users::onlyfans_id(user)),
        js(status),
        reference.map(js).unwrap_or_else(|| "null".to_owned()),
    );
    let mut o = Outgoing::post(event, Some(user), url);
    o.headers
        .push(("content-type".to_owned(), "application/json".to_owned()));
    o.headers.push(("svix-id".to_owned(), id.clone()));
    o.headers
        .push(("svix-timestamp".to_owned(), ts.to_string()));
    o.headers.push((
        "svix-signature".to_owned(),
        svix_signature(key, &id, ts, body.as_bytes()),
    ));
    o.body = body;
    o
}

/// A wrong secret for forged deliveries.
fn wrong_secret() -> Vec<u8> {
    format!("forged-{}", random_hex(16)).into_bytes()
}

/// Reads at most `limit` bytes of a response body.
async fn read_limited(mut resp: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = limit.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= limit {
            break;
        }
    }
    out
}

/// Sends a request and records it in the platform's log.
async fn send(inner: &Inner, platform: Platform, o: Outgoing) -> WebhookDelivery {
    let id = inner.hooks.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    let mut d = WebhookDelivery {
        id,
        platform,
        event: o.event,
        user: o.user,
        forged: o.forged,
        replay_of: o.replay_of,
        method: o.method.to_owned(),
        url: o.url,
        request_headers: o.headers,
        request_body: o.body,
        sent_at: unix_now(),
        status: None,
        response_body: String::new(),
        error: None,
        confirmation_code: None,
        status_url: None,
        challenge: o.challenge,
        challenge_ok: None,
    };
    match inner.hooks.client() {
        None => d.error = Some("the HTTP client could not be built".to_owned()),
        Some(client) => {
            let mut req = if d.method == "GET" {
                client.get(&d.url)
            } else {
                client.post(&d.url).body(d.request_body.clone())
            };
            for (k, v) in &d.request_headers {
                req = req.header(k, v);
            }
            match req.send().await {
                Err(e) => d.error = Some(e.to_string()),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    d.status = Some(status);
                    let body = read_limited(resp, RESPONSE_READ).await;
                    let keep = &body[..body.len().min(RESPONSE_KEEP)];
                    d.response_body = String::from_utf8_lossy(keep).into_owned();
                    if d.event == "data_deletion"
                        && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
                    {
                        d.confirmation_code = v
                            .get("confirmation_code")
                            .map(|c| c.as_str().map(str::to_owned).unwrap_or(c.to_string()));
                        d.status_url = v.get("url").and_then(|u| u.as_str()).map(str::to_owned);
                    }
                    if let Some(ch) = &d.challenge {
                        d.challenge_ok = Some(status == 200 && body == ch.as_bytes());
                    }
                }
            }
        }
    }
    if d.error.is_some() && d.challenge.is_some() {
        d.challenge_ok = Some(false);
    }
    let mut h = inner.hooks.lock(platform);
    h.log.push_back(d.clone());
    while h.log.len() > LOG_CAP {
        h.log.pop_front();
    }
    d
}

fn check_url(what: &str, u: &Option<String>) -> Result<()> {
    if let Some(u) = u {
        let ok = url::Url::parse(u)
            .map(|p| matches!(p.scheme(), "http" | "https") && p.has_host())
            .unwrap_or(false);
        if !ok {
            return Err(Error::InvalidWebhookTarget(format!(
                "{what} must be an absolute http(s) URL: {u}"
            )));
        }
    }
    Ok(())
}

fn supported(platform: Platform) -> Result<()> {
    if platform == Platform::Reddit {
        return Err(Error::WebhooksUnsupported(platform));
    }
    Ok(())
}

/// A grant revoked by a removal, with what its webhook needs.
struct Removed {
    client_id: String,
    connection: Option<String>,
    reference: Option<String>,
}

impl SandboxHandle {
    /// Sets where a platform's webhooks go (replacing the previous targets). Reddit has no
    /// webhooks: [`Error::WebhooksUnsupported`]. A URL that is not absolute http(s), or a
    /// field that does not apply to the platform, is [`Error::InvalidWebhookTarget`].
    pub fn set_webhook_targets(&self, platform: Platform, targets: WebhookTargets) -> Result<()> {
        supported(platform)?;
        check_url("deauthorize_url", &targets.deauthorize_url)?;
        check_url("data_deletion_url", &targets.data_deletion_url)?;
        check_url("callback_url", &targets.callback_url)?;
        if platform != Platform::Instagram {
            let extra = [
                ("deauthorize_url", targets.deauthorize_url.is_some()),
                ("data_deletion_url", targets.data_deletion_url.is_some()),
                ("verify_token", targets.verify_token.is_some()),
                (
                    "signed_request_user_id",
                    targets.signed_request_user_id != SignedRequestUserId::AppScoped,
                ),
            ];
            if let Some((name, _)) = extra.iter().find(|(_, set)| *set) {
                return Err(Error::InvalidWebhookTarget(format!(
                    "{name} applies to instagram only"
                )));
            }
        }
        self.inner.hooks.lock(platform).targets = targets;
        Ok(())
    }

    /// The current webhook targets of a platform (all `None` until set).
    pub fn webhook_targets(&self, platform: Platform) -> WebhookTargets {
        self.inner.hooks.lock(platform).targets.clone()
    }

    /// The OnlyFans gateway's webhook signing secret, `whsec_<base64 of 24 bytes>`, new at
    /// every sandbox start (Svix / Standard Webhooks form; the key is the base64-decoded
    /// part after `whsec_`).
    pub fn onlyfans_webhook_secret(&self) -> String {
        self.inner.hooks.secret()
    }

    /// Replaces the OnlyFans gateway's webhook signing secret (for a host with a fixed
    /// secret in its configuration). It must be `whsec_` and non-empty standard base64.
    pub fn set_onlyfans_webhook_secret(&self, secret: &str) -> Result<()> {
        if !secret.starts_with("whsec_") || whsec_key(secret).is_none() {
            return Err(Error::InvalidWebhookTarget(
                "the secret must be whsec_ followed by standard base64".to_owned(),
            ));
        }
        *self
            .inner
            .hooks
            .onlyfans_secret
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = secret.to_owned();
        Ok(())
    }

    /// The deliveries of a platform, oldest first (at most the last 200).
    pub fn webhook_log(&self, platform: Platform) -> Vec<WebhookDelivery> {
        self.inner
            .hooks
            .lock(platform)
            .log
            .iter()
            .cloned()
            .collect()
    }

    /// Empties a platform's delivery log.
    pub fn clear_webhook_log(&self, platform: Platform) {
        self.inner.hooks.lock(platform).log.clear();
    }

    /// The user removes the app: every live grant of `user` is revoked (tokens stop working,
    /// as with [`SandboxHandle::revoke_grants`]), then the platform's removal webhook is sent:
    /// Instagram deauthorize callback, TikTok `authorization.removed` (reason 1), OnlyFans
    /// gateway `connection.expired`. Reddit sends nothing. See [`Self::remove_app_with`].
    pub async fn remove_app(&self, platform: Platform, user: &str) -> Result<AppRemoval> {
        self.remove_app_with(platform, user, RemoveAppOptions::default())
            .await
    }

    /// Instagram: the user removes the app and asks for their data to be deleted: the
    /// grants are revoked, then the deauthorize callback and the data deletion request are
    /// sent (the latter's answer, `{"url", "confirmation_code"}`, is recorded).
    pub async fn request_data_deletion(&self, user: &str) -> Result<AppRemoval> {
        let opts = RemoveAppOptions {
            data_deletion: true,
            ..RemoveAppOptions::default()
        };
        self.remove_app_with(Platform::Instagram, user, opts).await
    }

    /// [`Self::remove_app`] with options. One event is sent per removed client (Instagram,
    /// TikTok) or per removed connection (OnlyFans gateway), signed with that client's
    /// secret (the gateway: [`Self::onlyfans_webhook_secret`]). A target that is not
    /// configured is skipped (the real platform would not call either). No live grant:
    /// [`Error::NoLiveGrant`].
    pub async fn remove_app_with(
        &self,
        platform: Platform,
        user: &str,
        opts: RemoveAppOptions,
    ) -> Result<AppRemoval> {
        if opts.tiktok_reason > 5 {
            return Err(Error::InvalidWebhookTarget(
                "the TikTok reason must be 0 to 5".to_owned(),
            ));
        }
        if opts.data_deletion && platform != Platform::Instagram {
            return Err(Error::InvalidWebhookTarget(
                "data deletion requests are an instagram callback".to_owned(),
            ));
        }
        let removed: Vec<Removed> = {
            let mut store = self.inner.platform(platform).lock();
            let mut out = Vec::new();
            for id in store.user_grants(user) {
                if let Some(g) = store.grants.get_mut(&id)
                    && !g.revoked
                    && opts.client_id.as_ref().is_none_or(|c| *c == g.client_id)
                {
                    g.revoked = true;
                    out.push(Removed {
                        client_id: g.client_id.clone(),
                        connection: g.access_tokens.back().cloned(),
                        reference: g.client_reference_id.clone(),
                    });
                }
            }
            out
        };
        if removed.is_empty() {
            return Err(Error::NoLiveGrant {
                platform,
                user: user.to_owned(),
            });
        }
        let targets = self.webhook_targets(platform);
        let mut deliveries = Vec::new();
        let mut clients: Vec<&str> = removed.iter().map(|r| r.client_id.as_str()).collect();
        clients.sort_unstable();
        clients.dedup();
        match platform {
            Platform::Instagram => {
                let user_id = self.instagram_signed_user_id(&targets, user);
                for c in clients {
                    let Some(secret) = self.client_secret(platform, c) else {
                        continue;
                    };
                    if let Some(url) = &targets.deauthorize_url {
                        let o = instagram_signed_post(
                            "deauthorize",
                            user,
                            url,
                            secret.as_bytes(),
                            &user_id,
                            false,
                        );
                        deliveries.push(send(&self.inner, platform, o).await);
                    }
                    if opts.data_deletion
                        && let Some(url) = &targets.data_deletion_url
                    {
                        let o = instagram_signed_post(
                            "data_deletion",
                            user,
                            url,
                            secret.as_bytes(),
                            &user_id,
                            true,
                        );
                        deliveries.push(send(&self.inner, platform, o).await);
                    }
                }
            }
            Platform::TikTok => {
                if let Some(url) = &targets.callback_url {
                    for c in clients {
                        let Some(secret) = self.client_secret(platform, c) else {
                            continue;
                        };
                        let o = tiktok_removed(user, url, c, secret.as_bytes(), opts.tiktok_reason);
                        deliveries.push(send(&self.inner, platform, o).await);
                    }
                }
            }
            Platform::OnlyFans => {
                if let (Some(url), Some(key)) =
                    (&targets.callback_url, whsec_key(&self.inner.hooks.secret()))
                {
                    for r in &removed {
                        let Some(conn) = &r.connection else { continue };
                        let o = onlyfans_event(
                            "connection.expired",
                            "expired",
                            user,
                            url,
                            &key,
                            conn,
                            r.reference.as_deref(),
                        );
                        deliveries.push(send(&self.inner, platform, o).await);
                    }
                }
            }
            Platform::Reddit => {}
        }
        Ok(AppRemoval {
            revoked: removed.len(),
            deliveries,
        })
    }

    /// Sends the platform's removal event for `user` signed with a **wrong** secret (the
    /// receiver must refuse it). Nothing is revoked. Instagram: the deauthorize callback;
    /// TikTok: `authorization.removed`; OnlyFans gateway: `connection.expired` (for the
    /// user's latest connection, or a made-up one).
    pub async fn send_forged_webhook(
        &self,
        platform: Platform,
        user: &str,
    ) -> Result<WebhookDelivery> {
        supported(platform)?;
        let targets = self.webhook_targets(platform);
        let (client_id, connection, reference) = self.latest_grant(platform, user);
        let wrong = wrong_secret();
        let mut o = match platform {
            Platform::Instagram => {
                let url = need(platform, "deauthorize_url", &targets.deauthorize_url)?;
                let user_id = self.instagram_signed_user_id(&targets, user);
                instagram_signed_post("deauthorize", user, url, &wrong, &user_id, false)
            }
            Platform::TikTok => {
                let url = need(platform, "callback_url", &targets.callback_url)?;
                let client = client_id.unwrap_or_else(|| self.client(platform).client_id);
                tiktok_removed(user, url, &client, &wrong, 1)
            }
            _ => {
                let url = need(platform, "callback_url", &targets.callback_url)?;
                let conn = connection.unwrap_or_else(|| format!("conn_{}", random_hex(12)));
                onlyfans_event(
                    "connection.expired",
                    "expired",
                    user,
                    url,
                    &wrong,
                    &conn,
                    reference.as_deref(),
                )
            }
        };
        o.forged = true;
        Ok(send(&self.inner, platform, o).await)
    }

    /// Re-sends the platform's last delivery (other than a handshake) byte for byte: same
    /// URL, headers and body, so timestamps and signatures are the old ones.
    pub async fn replay_last_webhook(&self, platform: Platform) -> Result<WebhookDelivery> {
        supported(platform)?;
        let last = self
            .inner
            .hooks
            .lock(platform)
            .log
            .iter()
            .rev()
            .find(|d| d.method == "POST")
            .cloned()
            .ok_or(Error::NothingToReplay(platform))?;
        let o = Outgoing {
            event: last.event,
            user: last.user,
            forged: last.forged,
            replay_of: Some(last.id),
            method: "POST",
            url: last.url,
            headers: last.request_headers,
            body: last.request_body,
            challenge: None,
        };
        Ok(send(&self.inner, platform, o).await)
    }

    /// OnlyFans gateway: the user's latest connection works again (un-revoked, same
    /// connection id, a fresh session lifetime) and `connection.updated` with `"status":
    /// "active"` is sent. No connection at all: [`Error::NoLiveGrant`]. No webhook URL: the
    /// connection is restored and [`Error::NoWebhookTarget`] is returned.
    pub async fn onlyfans_reconnect(&self, user: &str) -> Result<WebhookDelivery> {
        let p = Platform::OnlyFans;
        let now = self.inner.now_ms();
        let ttl = self.inner.platform(p).access_ttl();
        let found = {
            let mut store = self.inner.platform(p).lock();
            let latest = store
                .user_grants(user)
                .into_iter()
                .filter(|id| {
                    store.grants.get(id).is_some_and(|g| {
                        g.access_tokens
                            .back()
                            .is_some_and(|t| store.access.contains_key(t))
                    })
                })
                .max();
            let mut found = None;
            if let Some(id) = latest
                && let Some(g) = store.grants.get_mut(&id)
            {
                g.revoked = false;
                let conn = g.access_tokens.back().cloned();
                let reference = g.client_reference_id.clone();
                if let Some(c) = &conn
                    && let Some(e) = store.access.get_mut(c)
                {
                    e.expires_at = now.saturating_add(ttl);
                }
                found = conn.map(|c| (c, reference));
            }
            found
        };
        let Some((conn, reference)) = found else {
            return Err(Error::NoLiveGrant {
                platform: p,
                user: user.to_owned(),
            });
        };
        let targets = self.webhook_targets(p);
        let url = need(p, "callback_url", &targets.callback_url)?;
        let key = whsec_key(&self.inner.hooks.secret()).unwrap_or_default();
        let o = onlyfans_event(
            "connection.updated",
            "active",
            user,
            url,
            &key,
            &conn,
            reference.as_deref(),
        );
        Ok(send(&self.inner, p, o).await)
    }

    /// Instagram Graph webhooks handshake (webhooks.md §1c): `GET <callback_url>?hub.mode=
    /// subscribe&hub.challenge=<random int>&hub.verify_token=<verify_token>`; the delivery's
    /// `challenge_ok` says whether the answer was 200 with the bare challenge as its body.
    pub async fn verify_instagram_webhooks(&self) -> Result<WebhookDelivery> {
        let p = Platform::Instagram;
        let targets = self.webhook_targets(p);
        let base = need(p, "callback_url", &targets.callback_url)?;
        let Ok(mut url) = url::Url::parse(base) else {
            return Err(Error::InvalidWebhookTarget(base.to_owned()));
        };
        let challenge = (crate::rand_u64() % 1_000_000_000 + 1).to_string();
        url.query_pairs_mut()
            .append_pair("hub.mode", "subscribe")
            .append_pair("hub.challenge", &challenge)
            .append_pair(
                "hub.verify_token",
                targets.verify_token.as_deref().unwrap_or_default(),
            );
        let o = Outgoing {
            event: "verify".to_owned(),
            user: None,
            forged: false,
            replay_of: None,
            method: "GET",
            url: url.to_string(),
            headers: Vec::new(),
            body: String::new(),
            challenge: Some(challenge),
        };
        Ok(send(&self.inner, p, o).await)
    }

    /// Instagram Graph webhooks event: POSTs `body` (for example `{"object":"instagram",
    /// "entry":[…]}`) unchanged to the callback URL with `Content-Type: application/json` and
    /// `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(demo client secret, body)>`
    /// (webhooks.md §1c). The sandbox emits no Graph events by itself.
    pub async fn send_instagram_event(&self, body: &str) -> Result<WebhookDelivery> {
        let p = Platform::Instagram;
        let targets = self.webhook_targets(p);
        let url = need(p, "callback_url", &targets.callback_url)?;
        let secret = self.client(p).client_secret;
        let mut o = Outgoing::post("graph_event", None, url);
        o.headers
            .push(("content-type".to_owned(), "application/json".to_owned()));
        o.headers.push((
            "x-hub-signature-256".to_owned(),
            x_hub_signature_256(secret.as_bytes(), body.as_bytes()),
        ));
        o.body = body.to_owned();
        Ok(send(&self.inner, p, o).await)
    }

    fn client_secret(&self, platform: Platform, client_id: &str) -> Option<String> {
        self.inner
            .client(platform, client_id)
            .map(|c| c.client_secret)
    }

    fn instagram_signed_user_id(&self, targets: &WebhookTargets, user: &str) -> String {
        match targets.signed_request_user_id {
            SignedRequestUserId::AppScoped => users::instagram_app_scoped_id(user),
            SignedRequestUserId::Professional => users::instagram_user_id(user).to_string(),
        }
    }

    /// (client id, connection id, client reference) of the user's latest grant.
    fn latest_grant(
        &self,
        platform: Platform,
        user: &str,
    ) -> (Option<String>, Option<String>, Option<String>) {
        let store = self.inner.platform(platform).lock();
        let g = store
            .user_grants(user)
            .into_iter()
            .max()
            .and_then(|id| store.grants.get(&id));
        (
            g.map(|g| g.client_id.clone()),
            g.and_then(|g| g.access_tokens.back().cloned()),
            g.and_then(|g| g.client_reference_id.clone()),
        )
    }
}

fn need<'a>(platform: Platform, what: &'static str, v: &'a Option<String>) -> Result<&'a str> {
    v.as_deref().ok_or(Error::NoWebhookTarget {
        platform,
        target: what,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// webhooks.md test vector (bk-rs `facebook-signed-request` test): secret `key`.
    #[test]
    fn meta_signed_request_vector() {
        let payload = r#"{"user_id":"0","algorithm":"HMAC-SHA256","issued_at":1624244156}"#;
        assert_eq!(
            signed_request(b"key", payload),
            "Mf_s6nTb38UYqioBmPqu0Ewm9souPZB9I2fIGwV729U.eyJ1c2VyX2lkIjoiMCIsImFsZ29yaXRobSI6IkhNQUMtU0hBMjU2IiwiaXNzdWVkX2F0IjoxNjI0MjQ0MTU2fQ"
        );
    }

    /// webhooks.md test vector (the `standardwebhooks` crate's `test_sign`).
    #[test]
    fn standard_webhooks_vector() {
        let key = whsec_key("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        assert_eq!(
            svix_signature(
                &key,
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1649367553,
                br#"{"email":"test@example.com","username":"test_user"}"#
            ),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn secrets_and_formats() {
        let s = new_whsec();
        assert!(s.starts_with("whsec_"));
        assert_eq!(whsec_key(&s).unwrap().len(), 24);
        let sig = tiktok_signature(b"k", 1633174587, b"{}");
        let (t, s) = sig.split_once(',').unwrap();
        assert_eq!(t, "t=1633174587");
        assert_eq!(s.len(), 2 + 64);
        assert!(x_hub_signature_256(b"k", b"{}").starts_with("sha256="));
        let o = tiktok_removed("alice", "http://x/", "ck", b"k", 3);
        let v: serde_json::Value = serde_json::from_str(&o.body).unwrap();
        assert_eq!(v["content"], r#"{"reason":3}"#);
    }
}
