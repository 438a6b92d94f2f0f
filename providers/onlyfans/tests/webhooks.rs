//! The gateway's webhooks: OFAuth (Svix / Standard Webhooks) and OnlyFansAPI.com
//! (`Signature`), with signatures computed here (the `hmac` crate, not the library's
//! helpers) and the Standard Webhooks test vector; every refusal; and the whole path end
//! to end: the sandbox expires and reconnects a connection and calls a local receiver
//! that hands the raw request to `Integrations::handle_platform_webhook`.

use axum::http::{HeaderMap, HeaderValue};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use integrations_core::platform_webhooks::WebhookMethod;
use integrations_core::store::StoredStatus;
use integrations_core::{
    AccountMatch, AccountRecord, ClientSecret, ConnectionEventKind, EncryptionKey, EventPosition,
    Integrations, ManualClock, MemoryStore, PlatformAction, PlatformEvent, PlatformWebhook,
    Provider, ProviderId, TokenCipher, TokenStore, UserId, WebhookRefusal, WebhookRequest,
    WebhookRoute,
};
use integrations_onlyfans::{
    OnlyFansConfig, OnlyFansConfigBuilder, OnlyFansProvider, connection_alias,
};
use integrations_sandbox::{Consent, Platform, Sandbox, SandboxConfig, WebhookTargets};
use sha2::Digest;
use std::sync::Arc;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The Standard Webhooks test vector (webhooks.md, "Test vectors").
const VECTOR_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const VECTOR_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
const VECTOR_TS: i64 = 1_649_367_553;
const VECTOR_BODY: &str = r#"{"email":"test@example.com","username":"test_user"}"#;
const VECTOR_SIGNATURE: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

/// An OnlyFansAPI.com signing secret: any string.
const OFAPI_SECRET: &str = "my onlyfansapi signing secret";

const CONN: &str = "conn_abc123";
const PUID: &str = "123456";
const EXPIRED_REASON: &str =
    "The gateway's OnlyFans session expired; the user must link the account again";

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).unwrap();
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// `v1,<base64 HMAC-SHA256(base64-decoded whsec key, "{id}.{ts}.{body}")>`.
fn svix_sign(secret: &str, id: &str, ts: i64, body: &[u8]) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut msg = format!("{id}.{ts}.").into_bytes();
    msg.extend_from_slice(body);
    format!("v1,{}", STANDARD.encode(hmac(&key, &msg)))
}

fn provider_with(
    build: impl FnOnce(OnlyFansConfigBuilder) -> OnlyFansConfigBuilder,
) -> OnlyFansProvider {
    let builder = OnlyFansConfig::builder()
        .api_key(ClientSecret::new("gateway-api-key"))
        .redirect_uri("https://app.example/integrations/onlyfans/callback");
    OnlyFansProvider::new(build(builder).build().unwrap()).unwrap()
}

/// Configured with the vector's Svix secret and an OnlyFansAPI.com secret.
fn provider() -> OnlyFansProvider {
    provider_with(|b| {
        b.webhook_secret(ClientSecret::new(VECTOR_SECRET))
            .webhook_secret(ClientSecret::new(OFAPI_SECRET))
    })
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_764_500_000, 0).unwrap()
}

fn read_at(
    p: &OnlyFansProvider,
    route: WebhookRoute,
    method: WebhookMethod,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<PlatformWebhook, WebhookRefusal> {
    p.read_webhook(&WebhookRequest {
        route,
        method,
        query: "",
        headers,
        body,
        now,
    })
}

fn read(
    p: &OnlyFansProvider,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<PlatformWebhook, WebhookRefusal> {
    read_at(
        p,
        WebhookRoute::Events,
        WebhookMethod::Post,
        headers,
        body,
        now(),
    )
}

/// Svix headers (`prefix` `svix` or `webhook`) for a delivery.
fn svix_headers(prefix: &str, id: &str, ts: &str, signature: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    for (name, value) in [("id", id), ("timestamp", ts), ("signature", signature)] {
        h.insert(
            axum::http::HeaderName::from_bytes(format!("{prefix}-{name}").as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    h
}

/// A correctly signed OFAuth delivery of `body` at [`now`].
fn ofauth(id: &str, body: &str) -> HeaderMap {
    let ts = now().timestamp();
    svix_headers(
        "svix",
        id,
        &ts.to_string(),
        &svix_sign(VECTOR_SECRET, id, ts, body.as_bytes()),
    )
}

fn ofauth_body(event: &str, status: &str) -> String {
    format!(
        r#"{{"eventType":"{event}","live":false,"data":{{"connection":{{"id":"{CONN}","platformUserId":"{PUID}","status":"{status}"}},"clientReferenceId":"ref-1"}}}}"#
    )
}

fn one(read: Result<PlatformWebhook, WebhookRefusal>) -> PlatformEvent {
    match read {
        Ok(PlatformWebhook::Events(mut events)) if events.len() == 1 => events.remove(0),
        other => panic!("not one event: {other:?}"),
    }
}

/// A correctly signed OnlyFansAPI.com delivery.
fn ofapi(body: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "Signature",
        HeaderValue::from_str(&hex::encode(hmac(OFAPI_SECRET.as_bytes(), body.as_bytes())))
            .unwrap(),
    );
    h
}

fn digest(body: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(body)))
}

#[test]
fn standard_webhooks_vector_verifies_on_the_svix_path() {
    // The test's own signer reproduces the vector.
    assert_eq!(
        svix_sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY.as_bytes()),
        VECTOR_SIGNATURE
    );
    let at = DateTime::from_timestamp(VECTOR_TS, 0).unwrap();
    let p = provider();
    for prefix in ["svix", "webhook"] {
        let h = svix_headers(prefix, VECTOR_ID, &VECTOR_TS.to_string(), VECTOR_SIGNATURE);
        // The signature verifies: what fails is the body, which is no gateway event.
        let r = read_at(
            &p,
            WebhookRoute::Events,
            WebhookMethod::Post,
            &h,
            VECTOR_BODY.as_bytes(),
            at,
        );
        assert!(
            matches!(&r, Err(WebhookRefusal::Malformed(m)) if m.contains("eventType")),
            "{prefix}: {r:?}"
        );
        // One character off, or another secret: refused as a bad signature.
        let off = VECTOR_SIGNATURE.replace("tZ1I4", "tZ1I5");
        let h = svix_headers(prefix, VECTOR_ID, &VECTOR_TS.to_string(), &off);
        assert_eq!(
            read_at(
                &p,
                WebhookRoute::Events,
                WebhookMethod::Post,
                &h,
                VECTOR_BODY.as_bytes(),
                at
            ),
            Err(WebhookRefusal::BadSignature)
        );
    }
    let other = provider_with(|b| {
        b.webhook_secret(ClientSecret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
    });
    let h = svix_headers("svix", VECTOR_ID, &VECTOR_TS.to_string(), VECTOR_SIGNATURE);
    assert_eq!(
        read_at(
            &other,
            WebhookRoute::Events,
            WebhookMethod::Post,
            &h,
            VECTOR_BODY.as_bytes(),
            at
        ),
        Err(WebhookRefusal::BadSignature)
    );
}

#[test]
fn ofauth_connection_events() {
    let p = provider();
    let expired = ofauth_body("connection.expired", "expired");
    assert_eq!(
        one(read(&p, &ofauth("msg_1", &expired), expired.as_bytes())),
        PlatformEvent {
            id: "msg_1".into(),
            name: "connection.expired".into(),
            accounts: vec![
                AccountMatch::IdWithAlias {
                    id: PUID.into(),
                    alias: connection_alias(CONN)
                },
                AccountMatch::Alias(connection_alias(CONN)),
            ],
            occurred_at: Some(now()),
            action: PlatformAction::SessionLost {
                reason: EXPIRED_REASON.into()
            },
        }
    );
    let cases = [
        ("active", PlatformAction::Restored),
        (
            "expired",
            PlatformAction::SessionLost {
                reason: EXPIRED_REASON.into(),
            },
        ),
        (
            "awaiting_2fa",
            PlatformAction::SessionLost {
                reason: "The gateway's OnlyFans session needs a two-factor code; the user \
                         must link the account again"
                    .into(),
            },
        ),
        ("pending", PlatformAction::Ignore),
    ];
    for (status, want) in cases {
        let body = ofauth_body("connection.updated", status);
        let e = one(read(&p, &ofauth("msg_2", &body), body.as_bytes()));
        assert_eq!(e.action, want, "{status}");
        assert_eq!(e.name, "connection.updated");
    }
    for event in ["connection.created", "rules.updated", "realtime.message"] {
        let body = ofauth_body(event, "active");
        assert_eq!(
            one(read(&p, &ofauth("msg_3", &body), body.as_bytes())).action,
            PlatformAction::Ignore
        );
    }
    let body = r#"{"eventType":"rules.updated","data":{}}"#;
    let e = one(read(&p, &ofauth("msg_4", body), body.as_bytes()));
    assert_eq!((e.action, e.accounts), (PlatformAction::Ignore, vec![]));
}

#[test]
fn ofauth_documented_variant_type_user_data_and_timestamp() {
    // docs-next.ofauth.com/reference/webhooks: `type`, `timestamp`, `userData.id`.
    let body = format!(
        r#"{{"type":"connection.expired","timestamp":"2025-11-30T10:00:00Z","data":{{"connection":{{"id":"{CONN}","status":"expired","userData":{{"id":{PUID},"username":"jane"}}}}}}}}"#
    );
    // Signed as `webhook-*` (Standard Webhooks names).
    let ts = now().timestamp();
    let h = svix_headers(
        "webhook",
        "msg_5",
        &ts.to_string(),
        &svix_sign(VECTOR_SECRET, "msg_5", ts, body.as_bytes()),
    );
    let e = one(read(&provider(), &h, body.as_bytes()));
    assert_eq!(e.name, "connection.expired");
    assert_eq!(
        e.accounts,
        vec![
            AccountMatch::IdWithAlias {
                id: PUID.into(),
                alias: connection_alias(CONN)
            },
            AccountMatch::Alias(connection_alias(CONN))
        ]
    );
    assert_eq!(e.occurred_at, DateTime::from_timestamp(1_764_496_800, 0));

    // A connection named only by its id is found by its alias.
    let body = format!(
        r#"{{"eventType":"connection.expired","data":{{"connection":{{"id":"{CONN}"}}}}}}"#
    );
    let e = one(read(&provider(), &ofauth("msg_6", &body), body.as_bytes()));
    assert_eq!(
        e.accounts,
        vec![AccountMatch::Alias(connection_alias(CONN))]
    );

    // Several signatures (a rotation): any one matching is enough.
    let rotated = provider_with(|b| {
        b.webhook_secret(ClientSecret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
            .webhook_secret(ClientSecret::new(VECTOR_SECRET))
    });
    let old = svix_sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_7",
        ts,
        body.as_bytes(),
    );
    let unknown = svix_sign(
        "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXkh",
        "msg_7",
        ts,
        body.as_bytes(),
    );
    let h = svix_headers(
        "svix",
        "msg_7",
        &ts.to_string(),
        &format!("{unknown} v1a,xyz {old}"),
    );
    assert!(read(&rotated, &h, body.as_bytes()).is_ok());
}

#[test]
fn onlyfansapi_account_events() {
    let p = provider();
    let lost = [
        (
            "accounts.session_expired",
            "The gateway reports the OnlyFans session expired; the user may need to link the \
             account again",
        ),
        (
            "accounts.authentication_failed",
            "The gateway could not sign in to OnlyFans; the user must link the account again",
        ),
        (
            "accounts.otp_code_required",
            "OnlyFans asks for a one-time code; the user must enter it at the gateway",
        ),
        (
            "accounts.face_otp_required",
            "OnlyFans asks for a face verification; the user must complete it at the gateway",
        ),
    ];
    for (event, reason) in lost {
        let body = format!(r#"{{"event":"{event}","account_id":"acct_9","payload":{{}}}}"#);
        assert_eq!(
            one(read(&p, &ofapi(&body), body.as_bytes())),
            PlatformEvent {
                id: digest(body.as_bytes()),
                name: event.into(),
                accounts: vec![AccountMatch::Alias(connection_alias("acct_9"))],
                occurred_at: None,
                action: PlatformAction::SessionLost {
                    reason: reason.into()
                },
            }
        );
    }
    let body = r#"{"event":"accounts.reconnected","account_id":"acct_9","payload":{"x":1}}"#;
    assert_eq!(
        one(read(&p, &ofapi(body), body.as_bytes())).action,
        PlatformAction::Restored
    );
    for event in ["accounts.connected", "messages.received"] {
        let body = format!(r#"{{"event":"{event}","account_id":"acct_9","payload":{{}}}}"#);
        assert_eq!(
            one(read(&p, &ofapi(&body), body.as_bytes())).action,
            PlatformAction::Ignore
        );
    }
    // Upper-case hex is the same signature.
    let body = r#"{"event":"accounts.reconnected","account_id":"acct_9"}"#;
    let mut h = HeaderMap::new();
    h.insert(
        "signature",
        HeaderValue::from_str(&hex::encode_upper(hmac(
            OFAPI_SECRET.as_bytes(),
            body.as_bytes(),
        )))
        .unwrap(),
    );
    assert!(read(&p, &h, body.as_bytes()).is_ok());
}

#[test]
fn every_refusal() {
    let p = provider();
    let body = ofauth_body("connection.expired", "expired");
    let b = body.as_bytes();
    let good = ofauth("msg_1", &body);
    let ts = now().timestamp();

    // Route and method.
    assert_eq!(
        read_at(
            &p,
            WebhookRoute::Events,
            WebhookMethod::Get,
            &good,
            b,
            now()
        ),
        Err(WebhookRefusal::Method)
    );
    assert_eq!(
        read_at(
            &p,
            WebhookRoute::DataDeletion,
            WebhookMethod::Post,
            &good,
            b,
            now()
        ),
        Err(WebhookRefusal::Unsupported)
    );

    // No signing secret configured; for Svix, none that reads as `whsec_`.
    let none = provider_with(|b| b);
    assert_eq!(read(&none, &good, b), Err(WebhookRefusal::NotConfigured));
    let ofapi_only = provider_with(|b| b.webhook_secret(ClientSecret::new(OFAPI_SECRET)));
    assert_eq!(
        read(&ofapi_only, &good, b),
        Err(WebhookRefusal::NotConfigured)
    );

    // No signature header of either dialect; Svix headers missing.
    let mut plain = HeaderMap::new();
    plain.insert("content-type", HeaderValue::from_static("application/json"));
    assert_eq!(
        read(&p, &plain, b),
        Err(WebhookRefusal::MissingSignature("svix-signature"))
    );
    for (missing, name) in [("svix-id", "svix-id"), ("svix-timestamp", "svix-timestamp")] {
        let mut h = good.clone();
        h.remove(missing);
        assert_eq!(read(&p, &h, b), Err(WebhookRefusal::MissingSignature(name)));
    }

    // Bad signatures: another secret, a changed body, re-serialised JSON, another id,
    // no v1 entry at all.
    let wrong = svix_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_1", ts, b);
    assert_eq!(
        read(
            &p,
            &svix_headers("svix", "msg_1", &ts.to_string(), &wrong),
            b
        ),
        Err(WebhookRefusal::BadSignature)
    );
    let tampered = body.replace("connection.expired", "connection.updated");
    assert_eq!(
        read(&p, &good, tampered.as_bytes()),
        Err(WebhookRefusal::BadSignature)
    );
    let pretty =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&body).unwrap())
            .unwrap();
    assert_eq!(
        read(&p, &good, pretty.as_bytes()),
        Err(WebhookRefusal::BadSignature)
    );
    let mut other_id = good.clone();
    other_id.insert("svix-id", HeaderValue::from_static("msg_2"));
    assert_eq!(read(&p, &other_id, b), Err(WebhookRefusal::BadSignature));
    for garbage in [
        "",
        "garbage",
        "v1,not-base64!",
        "v2,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
    ] {
        let mut h = good.clone();
        h.insert("svix-signature", HeaderValue::from_static(garbage));
        assert_eq!(
            read(&p, &h, b),
            Err(WebhookRefusal::BadSignature),
            "{garbage:?}"
        );
    }

    // Timestamps: past and future beyond 5 minutes; a malformed one.
    for off in [-301, 301] {
        let t = ts + off;
        let h = svix_headers(
            "svix",
            "msg_1",
            &t.to_string(),
            &svix_sign(VECTOR_SECRET, "msg_1", t, b),
        );
        assert_eq!(read(&p, &h, b), Err(WebhookRefusal::Stale), "{off}");
    }
    let mut h = good.clone();
    h.insert("svix-timestamp", HeaderValue::from_static("yesterday"));
    assert!(matches!(read(&p, &h, b), Err(WebhookRefusal::Malformed(_))));

    // Authentic, but not an event: not UTF-8, not JSON, no event name, no connection.
    for bad in [
        &b"\xff\xfe{}"[..],
        b"not json",
        b"[1]",
        br#"{"eventType":5}"#,
        br#"{"data":{}}"#,
        br#"{"eventType":"connection.expired","data":{}}"#,
        br#"{"eventType":"connection.updated","data":{"connection":{"status":"active"}}}"#,
    ] {
        let h = svix_headers(
            "svix",
            "msg_9",
            &ts.to_string(),
            &svix_sign(VECTOR_SECRET, "msg_9", ts, bad),
        );
        assert!(
            matches!(read(&p, &h, bad), Err(WebhookRefusal::Malformed(_))),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }

    // OnlyFansAPI.com: another secret, a changed body, a header that is not hex, a body
    // that is not its event, an account event without its account.
    let ofapi_body = r#"{"event":"accounts.session_expired","account_id":"acct_9"}"#;
    let mut h = HeaderMap::new();
    h.insert(
        "signature",
        HeaderValue::from_str(&hex::encode(hmac(b"another secret", ofapi_body.as_bytes())))
            .unwrap(),
    );
    assert_eq!(
        read(&p, &h, ofapi_body.as_bytes()),
        Err(WebhookRefusal::BadSignature)
    );
    let changed = ofapi_body.replace("acct_9", "acct_8");
    assert_eq!(
        read(&p, &ofapi(ofapi_body), changed.as_bytes()),
        Err(WebhookRefusal::BadSignature)
    );
    for sig in ["sha256=abc", "zz", ""] {
        let mut h = HeaderMap::new();
        h.insert("signature", HeaderValue::from_static(sig));
        assert!(
            matches!(
                read(&p, &h, ofapi_body.as_bytes()),
                Err(WebhookRefusal::Malformed(_))
            ),
            "{sig:?}"
        );
    }
    for bad in [
        "\u{0}not json",
        r#"{"account_id":"acct_9"}"#,
        r#"{"event":"","account_id":"acct_9"}"#,
        r#"{"event":"accounts.session_expired"}"#,
        r#"{"event":"accounts.reconnected","account_id":""}"#,
    ] {
        assert!(
            matches!(
                read(&p, &ofapi(bad), bad.as_bytes()),
                Err(WebhookRefusal::Malformed(_))
            ),
            "{bad:?}"
        );
    }
    let bytes = b"\xff\xfe";
    let mut h = HeaderMap::new();
    h.insert(
        "signature",
        HeaderValue::from_str(&hex::encode(hmac(OFAPI_SECRET.as_bytes(), bytes))).unwrap(),
    );
    assert!(matches!(
        read(&p, &h, bytes),
        Err(WebhookRefusal::Malformed(_))
    ));
    // Without a secret, an OnlyFansAPI.com delivery is refused too.
    assert_eq!(
        read(&none, &ofapi(ofapi_body), ofapi_body.as_bytes()),
        Err(WebhookRefusal::NotConfigured)
    );
}

// ---------- end to end against the sandbox ----------

/// Headers of a request sent by hand.
type Headers = Vec<(&'static str, String)>;

#[path = "../../testing/webhook_receiver.rs"]
mod receiver;
use receiver::{Answers, start_receiver};

async fn stored(store: &MemoryStore, account: &str) -> AccountRecord {
    store
        .find_account(&ProviderId::new("onlyfans").unwrap(), account)
        .await
        .unwrap()
        .unwrap()
}

async fn events(store: &MemoryStore) -> Vec<(ConnectionEventKind, serde_json::Value)> {
    store
        .events_after(EventPosition::START, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.event.kind, e.event.payload))
        .collect()
}

struct Setup {
    sandbox: Sandbox,
    store: Arc<MemoryStore>,
    integrations: Integrations,
    base: String,
    answers: Answers,
    account: String,
    connection_id: String,
}

/// The sandbox with its webhooks pointed at a local receiver, and the default sandbox
/// user linked through `Integrations`.
async fn setup() -> Setup {
    let sandbox = Sandbox::start_with(SandboxConfig {
        auto_consent: Some(Consent::Allow),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let client = sandbox.client(Platform::OnlyFans);
    let provider = OnlyFansProvider::new(
        OnlyFansConfig::builder()
            .api_key(ClientSecret::new(client.client_secret.clone()))
            .redirect_uri(client.redirect_uri.clone())
            .api_base_url(sandbox.onlyfans_gateway())
            .webhook_secret(ClientSecret::new(sandbox.onlyfans_webhook_secret()))
            .webhook_secret(ClientSecret::new(OFAPI_SECRET))
            .build()
            .unwrap(),
    )
    .unwrap();
    // Connected now: the removal, dated in whole seconds, may fall in the same second.
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let store = Arc::new(MemoryStore::new());
    let integrations =
        Integrations::builder(store.clone(), TokenCipher::new(EncryptionKey::generate()))
            .provider(Arc::new(provider))
            .clock(clock)
            .build();
    let (base, answers) = start_receiver(integrations.clone()).await;
    sandbox
        .set_webhook_targets(
            Platform::OnlyFans,
            WebhookTargets {
                callback_url: Some(format!("{base}/onlyfans")),
                ..WebhookTargets::default()
            },
        )
        .unwrap();

    let user = UserId(9);
    let start = integrations.connect(user, "onlyfans", None).await.unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let reply = http.get(start.auth_url.as_str()).send().await.unwrap();
    assert_eq!(reply.status(), 302);
    let location = url::Url::parse(reply.headers()["location"].to_str().unwrap()).unwrap();
    let params =
        integrations_core::CallbackParams::from_query(location.query().unwrap_or_default());
    let connection_id = params.get("connection_id").unwrap().to_owned();
    let connected = integrations
        .callback(user, "onlyfans", &params)
        .await
        .unwrap();
    let account = connected.account.provider_account_id.clone();
    assert_eq!(
        account,
        sandbox.user_info(Platform::OnlyFans, "demo").account_id
    );
    let stored = store
        .find_account(
            &integrations_core::ProviderId::new("onlyfans").unwrap(),
            &account,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.metadata["platform_aliases"],
        serde_json::json!([connection_alias(&connection_id)])
    );
    assert!(
        connected.account.metadata.get("platform_aliases").is_none(),
        "the view does not show the aliases"
    );
    Setup {
        sandbox,
        store,
        integrations,
        base,
        answers,
        account,
        connection_id,
    }
}

#[tokio::test]
async fn sandbox_expiry_loses_the_session_once_reconnect_restores_it_and_forgeries_change_nothing()
{
    let s = setup().await;
    let (sandbox, store, account) = (&s.sandbox, &*s.store, s.account.as_str());
    let active = stored(store, account).await;
    assert_eq!(active.status, StoredStatus::Active);
    assert!(active.access_token.is_some());
    let events_before = events(store).await;

    // A forged expiry (wrong secret) is refused with 401 and changes nothing.
    let forged = sandbox
        .send_forged_webhook(Platform::OnlyFans, "demo")
        .await
        .unwrap();
    assert_eq!(forged.status, Some(401));
    assert_eq!(stored(store, account).await, active);
    assert_eq!(events(store).await, events_before);

    // Requests that are not the gateway's, sent straight to the route: each refused,
    // nothing changed.
    let secret = sandbox.onlyfans_webhook_secret();
    let body = format!(
        r#"{{"eventType":"connection.expired","data":{{"connection":{{"id":"{}","platformUserId":"{account}","status":"expired"}}}}}}"#,
        s.connection_id
    );
    let now = Utc::now().timestamp();
    let http = reqwest::Client::new();
    let cases: Vec<(Headers, String, u16)> = vec![
        (vec![], body.clone(), 401),
        (
            vec![
                ("svix-id", "msg_x".into()),
                ("svix-timestamp", now.to_string()),
                (
                    "svix-signature",
                    svix_sign(VECTOR_SECRET, "msg_x", now, body.as_bytes()),
                ),
            ],
            body.clone(),
            401,
        ),
        (
            vec![
                ("svix-id", "msg_x".into()),
                ("svix-timestamp", (now - 3600).to_string()),
                (
                    "svix-signature",
                    svix_sign(&secret, "msg_x", now - 3600, body.as_bytes()),
                ),
            ],
            body.clone(),
            401,
        ),
        (
            vec![
                ("svix-id", "msg_x".into()),
                ("svix-timestamp", (now + 3600).to_string()),
                (
                    "svix-signature",
                    svix_sign(&secret, "msg_x", now + 3600, body.as_bytes()),
                ),
            ],
            body.clone(),
            401,
        ),
        (
            vec![
                ("svix-id", "msg_x".into()),
                ("svix-timestamp", now.to_string()),
                ("svix-signature", svix_sign(&secret, "msg_x", now, b"[]")),
            ],
            "[]".into(),
            400,
        ),
        (
            vec![("signature", hex::encode(hmac(b"wrong", body.as_bytes())))],
            body.clone(),
            401,
        ),
    ];
    for (headers, body, status) in cases {
        let mut request = http.post(format!("{}/onlyfans", s.base)).body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        assert_eq!(request.send().await.unwrap().status().as_u16(), status);
        assert_eq!(stored(store, account).await, active);
    }
    assert_eq!(events(store).await, events_before);

    // The gateway's session ends: connection.expired.
    let removal = sandbox
        .remove_app(Platform::OnlyFans, "demo")
        .await
        .unwrap();
    assert_eq!(removal.deliveries.len(), 1);
    assert_eq!(
        removal.deliveries[0].status,
        Some(200),
        "{:?}",
        removal.deliveries[0]
    );
    let lost = stored(store, account).await;
    assert_eq!(lost.status, StoredStatus::NeedsReconnect);
    assert_eq!(
        lost.access_token, active.access_token,
        "the connection id is kept"
    );
    assert_eq!(lost.last_error.as_deref(), Some(EXPIRED_REASON));
    let after = events(store).await;
    assert_eq!(after.len(), events_before.len() + 1);
    let (kind, payload) = after.last().unwrap();
    assert_eq!(kind.as_str(), "connection.needs_reconnect");
    assert_eq!(payload["error_code"], "platform_session_lost");
    assert_eq!(payload["reason"], EXPIRED_REASON);
    let first = s.answers.lock().unwrap().last().cloned().unwrap();
    assert_eq!(first.0, 200);
    assert_eq!(first.1[0].outcome, "session_lost");

    // A retry of the same delivery: acknowledged, nothing changed.
    let replay = sandbox
        .replay_last_webhook(Platform::OnlyFans)
        .await
        .unwrap();
    assert_eq!(replay.status, Some(200));
    assert_eq!(stored(store, account).await, lost);
    assert_eq!(events(store).await, after);
    assert_eq!(s.answers.lock().unwrap().last().cloned().unwrap(), first);

    // A forgery now changes nothing either.
    let forged = sandbox
        .send_forged_webhook(Platform::OnlyFans, "demo")
        .await
        .unwrap();
    assert_eq!(forged.status, Some(401));
    assert_eq!(stored(store, account).await, lost);

    // The user reconnects at the gateway: connection.updated (active) restores it.
    let reconnect = sandbox.onlyfans_reconnect("demo").await.unwrap();
    assert_eq!(reconnect.status, Some(200), "{reconnect:?}");
    let restored = stored(store, account).await;
    assert_eq!(restored.status, StoredStatus::Active);
    assert_eq!(restored.last_error, None);
    assert_eq!(restored.access_token, active.access_token);
    let after = events(store).await;
    let (kind, _) = after.last().unwrap();
    assert_eq!(*kind, ConnectionEventKind::Restored);
    assert_eq!(kind.as_str(), "connection.restored");
    // The stored connection works again.
    let token = s
        .integrations
        .access_token(UserId(9), "onlyfans", account)
        .await
        .unwrap();
    assert_eq!(token.expose_secret(), s.connection_id);

    // Its retry changes nothing.
    let replay = sandbox
        .replay_last_webhook(Platform::OnlyFans)
        .await
        .unwrap();
    assert_eq!(replay.status, Some(200));
    assert_eq!(stored(store, account).await, restored);
    assert_eq!(events(store).await, after);
}

#[tokio::test]
async fn onlyfansapi_events_find_the_account_by_its_connection_alias() {
    let s = setup().await;
    let (store, account) = (&*s.store, s.account.as_str());
    let http = reqwest::Client::new();
    let post = |body: String| {
        let signature = hex::encode(hmac(OFAPI_SECRET.as_bytes(), body.as_bytes()));
        http.post(format!("{}/onlyfans", s.base))
            .header("Signature", signature)
            .body(body)
            .send()
    };
    // With OnlyFansAPI.com as the gateway, its account id is the stored connection id.
    let lost = format!(
        r#"{{"event":"accounts.otp_code_required","account_id":"{}","payload":{{}}}}"#,
        s.connection_id
    );
    assert_eq!(post(lost.clone()).await.unwrap().status(), 200);
    let record = stored(store, account).await;
    assert_eq!(record.status, StoredStatus::NeedsReconnect);
    assert!(record.access_token.is_some());
    assert_eq!(
        record.last_error.as_deref(),
        Some("OnlyFans asks for a one-time code; the user must enter it at the gateway")
    );
    // Replayed (no event id: the body's digest): nothing changes.
    assert_eq!(post(lost).await.unwrap().status(), 200);
    assert_eq!(stored(store, account).await, record);

    // Another connection's event finds no account: acknowledged, nothing changed.
    let other = r#"{"event":"accounts.reconnected","account_id":"conn_someone_else"}"#.to_owned();
    assert_eq!(post(other).await.unwrap().status(), 200);
    assert_eq!(stored(store, account).await, record);
    let last = s.answers.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last.1[0].outcome, "unknown_account");

    let back = format!(
        r#"{{"event":"accounts.reconnected","account_id":"{}"}}"#,
        s.connection_id
    );
    assert_eq!(post(back).await.unwrap().status(), 200);
    assert_eq!(stored(store, account).await.status, StoredStatus::Active);
    let (kind, _) = events(store).await.last().cloned().unwrap();
    assert_eq!(kind, ConnectionEventKind::Restored);
}
