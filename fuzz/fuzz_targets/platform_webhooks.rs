//! Platform webhooks as the platforms (or anyone) could send them, through each real
//! provider's `Provider::read_webhook`: Instagram (`signed_request` forms, the
//! `hub.challenge` handshake, `X-Hub-Signature-256`), TikTok (`TikTok-Signature`) and the
//! OnlyFans gateways (Svix / Standard Webhooks headers through `webhooks::verify_with`,
//! OnlyFansAPI.com's `Signature`).
//!
//! The input picks a provider, a route, a method, a query, headers and a body; in its
//! "signed" modes the harness signs the fuzzed body with the configured secret the way
//! the platform does, so the parsers behind the signatures are reached.
//!
//! Properties: never a panic; a refusal is a 4xx whose text holds no secret and is
//! bounded; an unsigned `POST` is never accepted (only a correctly signed one is), and a
//! correctly signed one is never refused for its signature or timestamp; every event has
//! an id and a name of at most 64 characters.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderName, HeaderValue};
use integrations_core::platform_webhooks::{
    PlatformWebhook, WebhookMethod, WebhookRefusal, WebhookRequest, WebhookRoute, hmac_sha256,
};
use integrations_core::webhooks::WebhookSecret;
use integrations_core::{ClientSecret, Provider};
use integrations_fuzz::check_error;
use integrations_fuzz::input::Reader;
use integrations_fuzz::secrets::CLIENT_SECRET;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

/// The Meta app secret / a gateway's plain signing secret.
const OTHER_SECRET: &str = "FUZZSECRET-webhook-9p3d";
/// The Svix-format secret of the OFAuth gateway (24 bytes).
const SVIX_SECRET: &str = "whsec_RlVaWlNFQ1JFVC1zdml4LXNlY3JldC0x";
const VERIFY_TOKEN: &str = "FUZZSECRET-verify-2b7c";
const SECRETS: [&str; 4] = [CLIENT_SECRET, OTHER_SECRET, SVIX_SECRET, VERIFY_TOKEN];

/// The header names the platforms use, by index.
const HEADERS: [&str; 10] = [
    "content-type",
    "x-hub-signature-256",
    "tiktok-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "signature",
];

static PROVIDERS: LazyLock<[Box<dyn Provider>; 3]> = LazyLock::new(|| {
    let secret = || ClientSecret::new(CLIENT_SECRET);
    let redirect = "https://app.example/cb";
    [
        Box::new(
            integrations_instagram::InstagramProvider::new(
                integrations_instagram::InstagramConfig::builder()
                    .client_id("990602627938098")
                    .client_secret(secret())
                    .webhook_secret(ClientSecret::new(OTHER_SECRET))
                    .webhook_verify_token(ClientSecret::new(VERIFY_TOKEN))
                    .redirect_uri(redirect)
                    .build()
                    .unwrap(),
            )
            .unwrap(),
        ),
        Box::new(
            integrations_tiktok::TikTokProvider::new(
                integrations_tiktok::TikTokConfig::builder()
                    .client_key("fuzzclientkey")
                    .client_secret(secret())
                    .redirect_uri(redirect)
                    .build()
                    .unwrap(),
            )
            .unwrap(),
        ),
        Box::new(
            integrations_onlyfans::OnlyFansProvider::new(
                integrations_onlyfans::OnlyFansConfig::builder()
                    .api_key(secret())
                    .webhook_secret(ClientSecret::new(SVIX_SECRET))
                    .webhook_secret(ClientSecret::new(OTHER_SECRET))
                    .redirect_uri(redirect)
                    .build()
                    .unwrap(),
            )
            .unwrap(),
        ),
    ]
});

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_764_547_200, 0).unwrap()
}

fn set(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(HeaderName::from_static(name), v);
    }
}

/// Signs `body` the way the platform of `provider` does (`mode` picks among a platform's
/// schemes); returns the body to send (Instagram's form wraps a signed payload).
fn sign(provider: usize, mode: u8, id: &str, body: &[u8], h: &mut HeaderMap) -> Vec<u8> {
    let ts = now().timestamp();
    match provider {
        0 if mode.is_multiple_of(2) => {
            let payload = URL_SAFE_NO_PAD.encode(body);
            let key = if mode.is_multiple_of(4) {
                CLIENT_SECRET
            } else {
                OTHER_SECRET
            };
            let sig = URL_SAFE_NO_PAD.encode(hmac_sha256(key.as_bytes(), &[payload.as_bytes()]));
            set(h, "content-type", "application/x-www-form-urlencoded");
            format!("signed_request={sig}.{payload}").into_bytes()
        }
        0 => {
            let sig = hex::encode(hmac_sha256(OTHER_SECRET.as_bytes(), &[body]));
            set(h, "x-hub-signature-256", &format!("sha256={sig}"));
            body.to_vec()
        }
        1 => {
            let t = ts.to_string();
            let sig = hex::encode(hmac_sha256(
                CLIENT_SECRET.as_bytes(),
                &[t.as_bytes(), b".", body],
            ));
            set(h, "tiktok-signature", &format!("t={t},s={sig}"));
            body.to_vec()
        }
        _ if mode.is_multiple_of(2) => {
            let secret = WebhookSecret::parse(SVIX_SECRET).unwrap();
            // A Svix id is visible ASCII without dots.
            let id =
                if id.is_empty() || id.contains('.') || !id.bytes().all(|b| b.is_ascii_graphic()) {
                    "msg_1"
                } else {
                    id
                };
            let prefix = if mode.is_multiple_of(4) {
                "svix"
            } else {
                "webhook"
            };
            let names: [&'static str; 3] = if prefix == "svix" {
                ["svix-id", "svix-timestamp", "svix-signature"]
            } else {
                ["webhook-id", "webhook-timestamp", "webhook-signature"]
            };
            set(h, names[0], id);
            set(h, names[1], &ts.to_string());
            set(h, names[2], &secret.sign(id, ts, body));
            body.to_vec()
        }
        _ => {
            let sig = hex::encode(hmac_sha256(OTHER_SECRET.as_bytes(), &[body]));
            set(h, "signature", &sig);
            body.to_vec()
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    let choice = r.byte();
    let provider = usize::from(choice % 3);
    let route = if choice & 0x04 == 0 {
        WebhookRoute::Events
    } else {
        WebhookRoute::DataDeletion
    };
    let method = if choice & 0x08 == 0 {
        WebhookMethod::Post
    } else {
        WebhookMethod::Get
    };
    let signed = choice & 0x10 != 0;
    let mode = r.byte();
    let query = r.text();
    let mut headers = HeaderMap::new();
    for _ in 0..(r.byte() % 6) {
        let name = HEADERS[usize::from(r.byte()) % HEADERS.len()];
        let value = r.chunk();
        if let Ok(v) = HeaderValue::from_bytes(value) {
            headers.append(HeaderName::from_static(name), v);
        }
    }
    let id = String::from_utf8_lossy(r.chunk()).into_owned();
    let mut body = r.rest().to_vec();
    if signed && method == WebhookMethod::Post {
        // Only the platform's own headers, as the platform sends them.
        headers = HeaderMap::new();
        body = sign(provider, mode, &id, &body, &mut headers);
    }
    let request = WebhookRequest {
        route,
        method,
        query: &query,
        headers: &headers,
        body: &body,
        now: now(),
    };
    let read = PROVIDERS[provider].read_webhook(&request);
    match &read {
        Err(refusal) => {
            assert!(refusal.http_status().is_client_error(), "{refusal:?}");
            check_error(refusal, &SECRETS);
            if signed && method == WebhookMethod::Post && route == WebhookRoute::Events {
                assert!(
                    !matches!(
                        refusal,
                        WebhookRefusal::BadSignature
                            | WebhookRefusal::Stale
                            | WebhookRefusal::MissingSignature(_)
                    ),
                    "a correctly signed delivery refused for its signature: {refusal:?}"
                );
            }
        }
        Ok(PlatformWebhook::Handshake { challenge }) => {
            assert_eq!(method, WebhookMethod::Get);
            assert!(!challenge.is_empty());
        }
        Ok(PlatformWebhook::Events(events)) => {
            assert!(
                signed && method == WebhookMethod::Post,
                "an unsigned request was accepted: {events:?}"
            );
            for e in events {
                assert!(!e.id.is_empty());
                assert!(e.name.chars().count() <= 64, "{:?}", e.name);
            }
        }
    }
});
