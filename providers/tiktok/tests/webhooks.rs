//! TikTok webhooks: `TikTok-Signature` checked with signatures computed here (the `hmac`
//! crate, not the library's helpers), every refusal, and the whole path end to end: the
//! sandbox removes the app and calls a local receiver that hands the raw request to
//! `Integrations::handle_platform_webhook`.

use axum::http::{HeaderMap, HeaderValue};
use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use integrations_core::platform_webhooks::WebhookMethod;
use integrations_core::store::StoredStatus;
use integrations_core::{
    AccountMatch, AccountRecord, CallbackParams, ClientSecret, ConnectionEventKind, EncryptionKey,
    EventPosition, Integrations, ManualClock, MemoryStore, PlatformAction, PlatformEvent,
    PlatformWebhook, Provider, ProviderId, TokenCipher, TokenStore, UserId, WebhookRefusal,
    WebhookRequest, WebhookRoute,
};
use integrations_sandbox::{
    Consent, Platform, RemoveAppOptions, Sandbox, SandboxConfig, WebhookTargets,
};
use integrations_tiktok::{TikTokConfig, TikTokProvider};
use sha2::Digest;
use std::sync::Arc;
use std::time::Duration;

const CLIENT_KEY: &str = "awclientkey";
const SECRET: &str = "client-secret";
const OPEN_ID: &str = "_000open-id";

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Lowercase hex HMAC-SHA256 of `"<t>." + body`, as TikTok documents it.
fn sign(secret: &str, t: &str, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn provider_with(
    build: impl FnOnce(
        integrations_tiktok::TikTokConfigBuilder,
    ) -> integrations_tiktok::TikTokConfigBuilder,
) -> TikTokProvider {
    let builder = TikTokConfig::builder()
        .client_key(CLIENT_KEY)
        .client_secret(ClientSecret::new(SECRET))
        .redirect_uri("https://app.example/integrations/tiktok/callback");
    TikTokProvider::new(build(builder).build().unwrap()).unwrap()
}

fn provider() -> TikTokProvider {
    provider_with(|b| b)
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_764_500_000, 0).unwrap()
}

fn removed_body(create_time: i64, content: &str) -> String {
    serde_json::json!({
        "client_key": CLIENT_KEY,
        "event": "authorization.removed",
        "create_time": create_time,
        "user_openid": OPEN_ID,
        "content": content,
    })
    .to_string()
}

fn headers(signature: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    if let Some(s) = signature {
        h.insert("tiktok-signature", HeaderValue::from_str(s).unwrap());
    }
    h
}

/// Reads a POST to the events route at [`now`].
fn read(
    p: &TikTokProvider,
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

fn read_at(
    p: &TikTokProvider,
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

/// A correctly signed delivery of `body` at `t`.
fn signed(t: i64, body: &str) -> HeaderMap {
    let t = t.to_string();
    headers(Some(&format!(
        "t={t},s={}",
        sign(SECRET, &t, body.as_bytes())
    )))
}

fn digest(body: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(body)))
}

#[test]
fn authorization_removed_is_a_revocation_with_its_reason() {
    let t = now().timestamp();
    // The documented form: content is a JSON string, `{"reason": 1 }`.
    let body = removed_body(t - 2, "{\"reason\": 1 }");
    let got = read(&provider(), &signed(t, &body), body.as_bytes()).unwrap();
    assert_eq!(
        got,
        PlatformWebhook::Events(vec![PlatformEvent {
            id: digest(body.as_bytes()),
            name: "authorization.removed".into(),
            accounts: vec![AccountMatch::Id(OPEN_ID.into())],
            occurred_at: DateTime::from_timestamp(t - 2, 0),
            action: PlatformAction::Revoked {
                reason: "You disconnected this app in TikTok.".into()
            },
        }])
    );

    let reasons = [
        "TikTok ended this connection (no reason given).",
        "You disconnected this app in TikTok.",
        "This TikTok account was deleted.",
        "TikTok ended this connection because the account's age changed.",
        "This TikTok account was banned.",
        "This app's access was revoked by its developer.",
    ];
    for (code, want) in reasons.iter().enumerate() {
        let body = removed_body(t, &format!("{{\"reason\":{code}}}"));
        let PlatformWebhook::Events(events) =
            read(&provider(), &signed(t, &body), body.as_bytes()).unwrap()
        else {
            panic!("not events");
        };
        assert_eq!(
            events[0].action,
            PlatformAction::Revoked {
                reason: (*want).into()
            }
        );
    }
}

#[test]
fn content_as_an_object_and_other_events() {
    let t = now().timestamp();
    let body = serde_json::json!({
        "client_key": CLIENT_KEY, "event": "authorization.removed", "create_time": t,
        "user_openid": OPEN_ID, "content": {"reason": 4},
    })
    .to_string();
    let PlatformWebhook::Events(e) = read(&provider(), &signed(t, &body), body.as_bytes()).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        e[0].action,
        PlatformAction::Revoked {
            reason: "This TikTok account was banned.".into()
        }
    );

    // Any other event is authentic but ignored.
    let body = serde_json::json!({
        "client_key": CLIENT_KEY, "event": "video.publish.completed", "create_time": t,
        "user_openid": OPEN_ID, "content": "{\"publish_id\":\"v_pub_1\"}",
    })
    .to_string();
    let PlatformWebhook::Events(e) = read(&provider(), &signed(t, &body), body.as_bytes()).unwrap()
    else {
        panic!()
    };
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].name, "video.publish.completed");
    assert_eq!(e[0].action, PlatformAction::Ignore);
    assert_eq!(e[0].accounts, vec![AccountMatch::Id(OPEN_ID.into())]);
}

#[test]
fn header_spacing_case_and_rotated_secrets() {
    let t = now().timestamp();
    let body = removed_body(t, "{\"reason\":1}");
    let s = sign(SECRET, &t.to_string(), body.as_bytes());
    // Spaces around the parts, an extra key, the header name in any case.
    let mut h = HeaderMap::new();
    h.insert(
        "TikTok-Signature",
        HeaderValue::from_str(&format!(" t = {t} , s = {s} , v = 1 ")).unwrap(),
    );
    assert!(read(&provider(), &h, body.as_bytes()).is_ok());

    // Signed with the previous secret, configured as a webhook secret during a rotation.
    let old = sign("old-secret", &t.to_string(), body.as_bytes());
    let h = headers(Some(&format!("t={t},s={old}")));
    assert_eq!(
        read(&provider(), &h, body.as_bytes()),
        Err(WebhookRefusal::BadSignature)
    );
    let rotated = provider_with(|b| b.webhook_secret(ClientSecret::new("old-secret")));
    assert!(read(&rotated, &h, body.as_bytes()).is_ok());
}

#[test]
fn every_refusal() {
    let p = provider();
    let t = now().timestamp();
    let body = removed_body(t, "{\"reason\":1}");
    let b = body.as_bytes();
    let good = signed(t, &body);
    let refused = |h: &HeaderMap, body: &[u8]| read(&p, h, body).unwrap_err();

    // The route and method.
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

    // The header: missing, unreadable.
    assert_eq!(
        refused(&headers(None), b),
        WebhookRefusal::MissingSignature("TikTok-Signature")
    );
    let s = sign(SECRET, &t.to_string(), b);
    for bad in [
        String::new(),
        format!("s={s}"),
        format!("t={t}"),
        format!("t={t},s=xyz"),
        format!("t={t},s={}", &s[..60]),
        format!("t={t};s={s}"),
        format!("t=yesterday,s={s}"),
    ] {
        assert!(
            matches!(
                refused(&headers(Some(&bad)), b),
                WebhookRefusal::Malformed(_)
            ),
            "{bad:?}"
        );
    }

    // The signature: another secret, a changed body, a signature for another timestamp.
    let wrong = sign("not-the-secret", &t.to_string(), b);
    assert_eq!(
        refused(&headers(Some(&format!("t={t},s={wrong}"))), b),
        WebhookRefusal::BadSignature
    );
    let tampered = body.replace("\"reason\\\":1", "\"reason\\\":5");
    assert_ne!(tampered, body);
    assert_eq!(
        refused(&good, tampered.as_bytes()),
        WebhookRefusal::BadSignature
    );
    // Re-serialised JSON is not the raw body.
    let reserialized =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&body).unwrap())
            .unwrap();
    assert_eq!(
        refused(&good, reserialized.as_bytes()),
        WebhookRefusal::BadSignature
    );
    assert_eq!(
        refused(&headers(Some(&format!("t={},s={s}", t + 1))), b),
        WebhookRefusal::BadSignature
    );

    // The timestamp: past and future beyond the tolerance, and a configured tolerance.
    for off in [-301, 301] {
        assert_eq!(
            refused(&signed(t + off, &body), b),
            WebhookRefusal::Stale,
            "{off}"
        );
    }
    for off in [-299, 299] {
        assert!(read(&p, &signed(t + off, &body), b).is_ok(), "{off}");
    }
    let strict = provider_with(|b| b.webhook_tolerance(Duration::from_secs(10)));
    assert_eq!(
        read(&strict, &signed(t - 11, &body), b),
        Err(WebhookRefusal::Stale)
    );

    // The body, once authentic: not UTF-8, not JSON, not the envelope, another app.
    let cases: Vec<Vec<u8>> = vec![
        b"\xff\xfe{\"event\":1}".to_vec(),
        b"not json".to_vec(),
        b"[1,2]".to_vec(),
        br#"{"client_key":"awclientkey","event":"authorization.removed"}"#.to_vec(),
        serde_json::json!({"client_key": CLIENT_KEY, "event": "authorization.removed",
            "create_time": "soon", "user_openid": OPEN_ID, "content": "{}"})
        .to_string()
        .into_bytes(),
        serde_json::json!({"client_key": "another-app", "event": "authorization.removed",
            "create_time": t, "user_openid": OPEN_ID, "content": "{\"reason\":1}"})
        .to_string()
        .into_bytes(),
        serde_json::json!({"client_key": CLIENT_KEY, "event": "authorization.removed",
            "create_time": t, "content": "{\"reason\":1}"})
        .to_string()
        .into_bytes(),
        serde_json::json!({"client_key": CLIENT_KEY, "event": "authorization.removed",
            "create_time": t, "user_openid": OPEN_ID, "content": "reason=1"})
        .to_string()
        .into_bytes(),
        serde_json::json!({"client_key": CLIENT_KEY, "event": "", "create_time": t,
            "user_openid": OPEN_ID})
        .to_string()
        .into_bytes(),
    ];
    for body in cases {
        let ts = t.to_string();
        let h = headers(Some(&format!("t={ts},s={}", sign(SECRET, &ts, &body))));
        let r = refused(&h, &body);
        assert!(
            matches!(r, WebhookRefusal::Malformed(_)),
            "{:?}: {r:?}",
            String::from_utf8_lossy(&body)
        );
    }
    let r = refused(&good, b"").to_string();
    assert!(!r.contains(SECRET));
}

// ---------- end to end against the sandbox ----------

#[path = "../../testing/webhook_receiver.rs"]
mod receiver;
use receiver::start_receiver;

async fn stored(store: &MemoryStore, account: &str) -> AccountRecord {
    store
        .find_account(&ProviderId::new("tiktok").unwrap(), account)
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

#[tokio::test]
async fn sandbox_removal_revokes_the_account_once_and_forgeries_change_nothing() {
    let sandbox = Sandbox::start_with(SandboxConfig {
        auto_consent: Some(Consent::Allow),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let client = sandbox.client(Platform::TikTok);
    let provider = TikTokProvider::new(
        TikTokConfig::builder()
            .client_key(client.client_id.clone())
            .client_secret(ClientSecret::new(client.client_secret.clone()))
            .redirect_uri(client.redirect_uri.clone())
            .www_base_url(sandbox.tiktok_www())
            .api_base_url(sandbox.tiktok_open())
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
            .clock(clock.clone())
            .build();
    let (base, answers) = start_receiver(integrations.clone()).await;
    sandbox
        .set_webhook_targets(
            Platform::TikTok,
            WebhookTargets {
                callback_url: Some(format!("{base}/tiktok")),
                ..WebhookTargets::default()
            },
        )
        .unwrap();

    // Connect the sandbox's default user.
    let user = UserId(7);
    let start = integrations.connect(user, "tiktok", None).await.unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let reply = http.get(start.auth_url.as_str()).send().await.unwrap();
    assert_eq!(reply.status(), 302);
    let location = url::Url::parse(reply.headers()["location"].to_str().unwrap()).unwrap();
    let params = CallbackParams::from_query(location.query().unwrap_or_default());
    let connected = integrations
        .callback(user, "tiktok", &params)
        .await
        .unwrap();
    let account = connected.account.provider_account_id.clone();
    assert_eq!(
        account,
        sandbox.user_info(Platform::TikTok, "demo").account_id
    );
    let active = stored(&store, &account).await;
    assert_eq!(active.status, StoredStatus::Active);
    assert!(active.access_token.is_some() && active.refresh_token.is_some());
    let events_before = events(&store).await;

    // A forged removal (wrong secret) is refused with 401 and changes nothing.
    let forged = sandbox
        .send_forged_webhook(Platform::TikTok, "demo")
        .await
        .unwrap();
    assert_eq!(forged.status, Some(401));
    assert_eq!(stored(&store, &account).await, active);
    assert_eq!(events(&store).await, events_before);

    // Requests that are not TikTok's, sent straight to the route: each refused, nothing
    // changed.
    let now = Utc::now().timestamp();
    let body = format!(
        r#"{{"client_key":"{}","event":"authorization.removed","create_time":{now},"user_openid":"{account}","content":"{{\"reason\":1}}"}}"#,
        client.client_id
    );
    let sig = |t: i64, secret: &str, body: &str| {
        format!("t={t},s={}", sign(secret, &t.to_string(), body.as_bytes()))
    };
    let other_app = body.replace(&client.client_id, "another-client-key");
    let cases: Vec<(Option<String>, String, u16)> = vec![
        (None, body.clone(), 401),
        (Some(sig(now, "wrong-secret", &body)), body.clone(), 401),
        (
            Some(sig(now - 3600, &client.client_secret, &body)),
            body.clone(),
            401,
        ),
        (
            Some(sig(now + 3600, &client.client_secret, &body)),
            body.clone(),
            401,
        ),
        (Some("t=1;s=2".into()), body.clone(), 400),
        (
            Some(sig(now, &client.client_secret, &other_app)),
            other_app.clone(),
            400,
        ),
        (
            Some(sig(now, &client.client_secret, "{}")),
            "{}".into(),
            400,
        ),
    ];
    for (signature, body, status) in cases {
        let mut request = http
            .post(format!("{base}/tiktok"))
            .header("content-type", "application/json")
            .body(body);
        if let Some(s) = signature {
            request = request.header("TikTok-Signature", s);
        }
        assert_eq!(request.send().await.unwrap().status().as_u16(), status);
        assert_eq!(stored(&store, &account).await, active);
    }
    assert_eq!(
        http.get(format!("{base}/tiktok"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
    assert_eq!(events(&store).await, events_before);

    // The user removes the app: TikTok revokes the grant, then calls the app back.
    let removal = sandbox
        .remove_app_with(
            Platform::TikTok,
            "demo",
            RemoveAppOptions {
                tiktok_reason: 1,
                ..RemoveAppOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(removal.deliveries.len(), 1);
    assert_eq!(
        removal.deliveries[0].status,
        Some(200),
        "{:?}",
        removal.deliveries[0]
    );
    let revoked = stored(&store, &account).await;
    assert_eq!(revoked.status, StoredStatus::NeedsReconnect);
    assert_eq!(revoked.access_token, None);
    assert_eq!(revoked.refresh_token, None);
    assert_eq!(
        revoked.last_error.as_deref(),
        Some("You disconnected this app in TikTok.")
    );
    let after = events(&store).await;
    assert_eq!(after.len(), events_before.len() + 1);
    let (kind, payload) = after.last().unwrap();
    assert_eq!(*kind, ConnectionEventKind::NeedsReconnect);
    assert_eq!(kind.as_str(), "connection.needs_reconnect");
    assert_eq!(payload["error_code"], "platform_revoked");
    assert_eq!(payload["reason"], "You disconnected this app in TikTok.");
    let first = answers.lock().unwrap().last().cloned().unwrap();
    assert_eq!(first.0, 200);
    assert_eq!(first.1.len(), 1);
    assert_eq!(first.1[0].outcome, "revoked");
    assert_eq!(
        first.1[0].provider_account_id.as_deref(),
        Some(account.as_str())
    );

    // TikTok retries: the same delivery again is acknowledged and changes nothing.
    let replay = sandbox.replay_last_webhook(Platform::TikTok).await.unwrap();
    assert_eq!(replay.status, Some(200));
    assert_eq!(stored(&store, &account).await, revoked);
    assert_eq!(events(&store).await, after);
    let again = answers.lock().unwrap().last().cloned().unwrap();
    assert_eq!(again, first, "a replay answers with the first receipt");

    // And a forgery after it still changes nothing.
    let forged = sandbox
        .send_forged_webhook(Platform::TikTok, "demo")
        .await
        .unwrap();
    assert_eq!(forged.status, Some(401));
    assert_eq!(stored(&store, &account).await, revoked);
    assert_eq!(events(&store).await, after);
}
