//! Meta's callbacks through `Provider::read_webhook` and
//! `Integrations::handle_platform_webhook`, with signatures computed here independently
//! (the `hmac` crate), and a refused request for every refusal, leaving the stored rows
//! as they were.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeZone, Utc};
use hmac::{KeyInit, Mac};
use integrations_core::platform_webhooks::{
    AccountMatch, PlatformAction, PlatformWebhook, WebhookAnswer, WebhookMethod, WebhookRefusal,
    WebhookRequest, WebhookRoute,
};
use integrations_core::store::ALIASES_KEY;
use integrations_core::{
    ClientSecret, ConnectionEventKind, EncryptionKey, Error, EventId, EventPosition, Integrations,
    ManualClock, MemoryStore, NewAccount, Provider, ProviderId, TokenCipher, TokenStore, UserId,
};
use integrations_instagram::{DEAUTHORIZED_REASON, InstagramConfig, InstagramProvider};
use std::sync::Arc;

const IG_SECRET: &str = "instagram-app-secret";
const META_SECRET: &str = "meta-app-secret";
const VERIFY_TOKEN: &str = "my-verify-token";
const PROFESSIONAL_ID: &str = "17841405793187218";
const SCOPED_ID: &str = "7590000000000001";

fn provider(verify_token: bool) -> InstagramProvider {
    let mut b = InstagramConfig::builder()
        .client_id("990602627938098")
        .client_secret(ClientSecret::new(IG_SECRET))
        .webhook_secret(ClientSecret::new(META_SECRET))
        .redirect_uri("https://app.example/cb");
    if verify_token {
        b = b.webhook_verify_token(ClientSecret::new(VERIFY_TOKEN));
    }
    InstagramProvider::new(b.build().unwrap()).unwrap()
}

fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(1_764_547_200, 0).unwrap()
}

fn hmac(key: &str, msg: &[u8]) -> Vec<u8> {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// `signed_request=<sig>.<payload>` as Meta builds it.
fn signed_form(secret: &str, payload: &serde_json::Value) -> String {
    let payload = URL_SAFE_NO_PAD.encode(payload.to_string());
    let sig = URL_SAFE_NO_PAD.encode(hmac(secret, payload.as_bytes()));
    format!("signed_request={sig}.{payload}")
}

fn deauth_payload(user_id: &str, issued_at: i64) -> serde_json::Value {
    serde_json::json!({"algorithm": "HMAC-SHA256", "issued_at": issued_at, "user_id": user_id})
}

fn form_headers() -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert(
        "content-type",
        "application/x-www-form-urlencoded".parse().unwrap(),
    );
    h
}

fn request<'a>(
    route: WebhookRoute,
    method: WebhookMethod,
    query: &'a str,
    headers: &'a http::HeaderMap,
    body: &'a [u8],
) -> WebhookRequest<'a> {
    WebhookRequest {
        route,
        method,
        query,
        headers,
        body,
        now: now(),
    }
}

#[test]
fn deauthorize_and_data_deletion_are_read_with_either_secret() {
    let p = provider(false);
    let headers = form_headers();
    for secret in [IG_SECRET, META_SECRET] {
        let body = signed_form(secret, &deauth_payload(SCOPED_ID, 1_764_547_000));
        let read = p
            .read_webhook(&request(
                WebhookRoute::Events,
                WebhookMethod::Post,
                "",
                &headers,
                body.as_bytes(),
            ))
            .unwrap();
        let PlatformWebhook::Events(events) = read else {
            panic!("{read:?}")
        };
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.name, "deauthorize");
        assert_eq!(
            e.accounts,
            [
                AccountMatch::Id(SCOPED_ID.into()),
                AccountMatch::Alias(SCOPED_ID.into())
            ]
        );
        assert_eq!(
            e.occurred_at,
            Some(Utc.timestamp_opt(1_764_547_000, 0).unwrap())
        );
        assert_eq!(
            e.action,
            PlatformAction::Revoked {
                reason: DEAUTHORIZED_REASON.into()
            }
        );
    }
    // The same request on the data-deletion route is a deletion request; `expires` and a
    // numeric user id are accepted.
    let body = signed_form(
        IG_SECRET,
        &serde_json::json!({"user_id": 218471, "algorithm": "HMAC-SHA256",
            "issued_at": 1291836800, "expires": 1291840400}),
    );
    let read = p
        .read_webhook(&request(
            WebhookRoute::DataDeletion,
            WebhookMethod::Post,
            "",
            &headers,
            body.as_bytes(),
        ))
        .unwrap();
    let PlatformWebhook::Events(events) = read else {
        panic!()
    };
    assert_eq!(events[0].action, PlatformAction::DeleteData);
    assert_eq!(events[0].accounts[0], AccountMatch::Id("218471".into()));
}

#[test]
fn every_refusal() {
    let p = provider(true);
    let headers = form_headers();
    let refused = |route, method, query: &str, headers: &http::HeaderMap, body: &[u8]| {
        p.read_webhook(&request(route, method, query, headers, body))
            .unwrap_err()
    };
    let ev = WebhookRoute::Events;
    let post = WebhookMethod::Post;
    // Signed with another secret.
    let body = signed_form("not-our-secret", &deauth_payload(SCOPED_ID, 1));
    assert_eq!(
        refused(ev, post, "", &headers, body.as_bytes()),
        WebhookRefusal::BadSignature
    );
    // Validly signed, but another algorithm.
    let body = signed_form(
        IG_SECRET,
        &serde_json::json!({"algorithm": "HMAC-SHA1", "user_id": "1"}),
    );
    assert!(matches!(
        refused(ev, post, "", &headers, body.as_bytes()),
        WebhookRefusal::Malformed(m) if m.contains("algorithm")
    ));
    // Validly signed, no user.
    let body = signed_form(IG_SECRET, &serde_json::json!({"algorithm": "HMAC-SHA256"}));
    assert!(matches!(
        refused(ev, post, "", &headers, body.as_bytes()),
        WebhookRefusal::Malformed(m) if m.contains("user_id")
    ));
    // Signed payload that is not JSON.
    let payload = URL_SAFE_NO_PAD.encode("not json");
    let sig = URL_SAFE_NO_PAD.encode(hmac(IG_SECRET, payload.as_bytes()));
    let body = format!("signed_request={sig}.{payload}");
    assert!(matches!(
        refused(ev, post, "", &headers, body.as_bytes()),
        WebhookRefusal::Malformed(_)
    ));
    // No field, an empty one, no dot, not UTF-8.
    for body in [
        &b"other=1"[..],
        b"signed_request=",
        b"signed_request=abc",
        b"\xff\xfe",
    ] {
        assert!(
            matches!(
                refused(ev, post, "", &headers, body),
                WebhookRefusal::Malformed(_)
            ),
            "{body:?}"
        );
    }
    // Graph deliveries: a wrong or malformed X-Hub-Signature-256.
    let json = br#"{"object":"instagram","entry":[]}"#;
    let mut h = http::HeaderMap::new();
    h.insert(
        "x-hub-signature-256",
        format!("sha256={}", hex::encode(hmac("wrong", json)))
            .parse()
            .unwrap(),
    );
    assert_eq!(
        refused(ev, post, "", &h, json),
        WebhookRefusal::BadSignature
    );
    h.insert("x-hub-signature-256", "sha1=abc".parse().unwrap());
    assert!(matches!(
        refused(ev, post, "", &h, json),
        WebhookRefusal::Malformed(_)
    ));
    // Handshakes: wrong token, wrong mode, missing parameters.
    let get = WebhookMethod::Get;
    let empty = http::HeaderMap::new();
    assert_eq!(
        refused(
            ev,
            get,
            "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=nope",
            &empty,
            b""
        ),
        WebhookRefusal::VerifyToken
    );
    assert!(matches!(
        refused(
            ev,
            get,
            "hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=my-verify-token",
            &empty,
            b""
        ),
        WebhookRefusal::Malformed(_)
    ));
    assert!(matches!(
        refused(ev, get, "hub.challenge=1", &empty, b""),
        WebhookRefusal::Malformed(_)
    ));
    // No verify token configured: no handshake.
    assert_eq!(
        provider(false)
            .read_webhook(&request(
                ev,
                get,
                "hub.mode=subscribe&hub.challenge=1&hub.verify_token=x",
                &empty,
                b""
            ))
            .unwrap_err(),
        WebhookRefusal::NotConfigured
    );
    // The data-deletion route takes POST only.
    assert_eq!(
        refused(WebhookRoute::DataDeletion, get, "", &empty, b""),
        WebhookRefusal::Method
    );
    for r in [
        WebhookRefusal::BadSignature,
        WebhookRefusal::VerifyToken,
        WebhookRefusal::Method,
    ] {
        assert!(r.http_status().is_client_error());
    }
}

#[test]
fn handshake_and_graph_deliveries() {
    let p = provider(true);
    let empty = http::HeaderMap::new();
    let read = p
        .read_webhook(&request(
            WebhookRoute::Events,
            WebhookMethod::Get,
            "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=my-verify-token",
            &empty,
            b"",
        ))
        .unwrap();
    assert_eq!(
        read,
        PlatformWebhook::Handshake {
            challenge: "1158201444".into()
        }
    );
    // A comments delivery, signed with the Meta app secret: acknowledged, ignored.
    let body = br#"{"object":"instagram","entry":[{"id":"17841405793187218","time":1764547200,"changes":[{"field":"comments","value":{"id":"1","text":"hi"}}]},{"id":"0","time":1,"messaging":[{"sender":{"id":"1"}}]}]}"#;
    let mut h = http::HeaderMap::new();
    h.insert(
        "x-hub-signature-256",
        format!("sha256={}", hex::encode(hmac(META_SECRET, body)))
            .parse()
            .unwrap(),
    );
    let read = p
        .read_webhook(&request(
            WebhookRoute::Events,
            WebhookMethod::Post,
            "",
            &h,
            body,
        ))
        .unwrap();
    let PlatformWebhook::Events(events) = read else {
        panic!()
    };
    let names: Vec<_> = events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["instagram.comments", "instagram.messaging"]);
    assert!(events.iter().all(|e| e.action == PlatformAction::Ignore));
    assert_ne!(events[0].id, events[1].id);
}

struct Setup {
    integrations: Integrations,
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
}

async fn setup() -> Setup {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(now()));
    let cipher = TokenCipher::new(EncryptionKey::generate());
    let integrations = Integrations::builder(store.clone(), cipher.clone())
        .provider(Arc::new(provider(true)))
        .clock(clock.clone())
        .build();
    let ctx = integrations_core::SecretContext::access_token("instagram", PROFESSIONAL_ID);
    let account = NewAccount {
        user_id: UserId(7),
        provider: ProviderId::new("instagram").unwrap(),
        provider_account_id: PROFESSIONAL_ID.into(),
        access_token: Some(cipher.seal(ctx, "IGAA-token").unwrap()),
        refresh_token: None,
        expires_at: Some(now() + chrono::Duration::days(60)),
        refresh_expires_at: None,
        token_type: Some("bearer".into()),
        scope: Some("instagram_business_basic".into()),
        metadata: serde_json::json!({"username": "acme", ALIASES_KEY: [SCOPED_ID]}),
        now: now() - chrono::Duration::hours(1),
    };
    store
        .upsert_account(account, EventId::random())
        .await
        .unwrap();
    Setup {
        integrations,
        store,
        clock,
    }
}

async fn stored(s: &Setup) -> integrations_core::AccountRecord {
    s.store
        .find_account(&ProviderId::new("instagram").unwrap(), PROFESSIONAL_ID)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn refused_requests_change_nothing() {
    let s = setup().await;
    let before = stored(&s).await;
    let events = s
        .integrations
        .events_after(EventPosition::START, 100)
        .await
        .unwrap()
        .len();
    let headers = form_headers();
    let forged = signed_form("not-our-secret", &deauth_payload(SCOPED_ID, 1_764_547_100));
    let bad_alg = signed_form(
        IG_SECRET,
        &serde_json::json!({"algorithm": "none", "user_id": SCOPED_ID}),
    );
    let big = vec![b'a'; integrations_core::platform_webhooks::MAX_BODY_BYTES + 1];
    let cases: Vec<(WebhookRoute, &[u8], u16)> = vec![
        (WebhookRoute::Events, forged.as_bytes(), 401),
        (WebhookRoute::DataDeletion, forged.as_bytes(), 401),
        (WebhookRoute::Events, bad_alg.as_bytes(), 400),
        (WebhookRoute::Events, b"signed_request=x.y", 400),
        (WebhookRoute::Events, b"\xff", 400),
        (WebhookRoute::Events, &big, 413),
    ];
    for (route, body, status) in cases {
        let err = s
            .integrations
            .handle_platform_webhook(
                "instagram",
                request(route, WebhookMethod::Post, "", &headers, body),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::WebhookRefused(_)), "{err:?}");
        assert_eq!(err.http_status().as_u16(), status, "{err:?}");
        assert_eq!(stored(&s).await, before);
    }
    assert_eq!(
        s.integrations
            .events_after(EventPosition::START, 100)
            .await
            .unwrap()
            .len(),
        events
    );
}

#[tokio::test]
async fn deauthorize_by_alias_then_replay_stale_and_unknown() {
    let s = setup().await;
    let headers = form_headers();
    let body = signed_form(IG_SECRET, &deauth_payload(SCOPED_ID, 1_764_547_100));
    let send = |body: String| {
        let integrations = s.integrations.clone();
        let headers = headers.clone();
        async move {
            integrations
                .handle_platform_webhook(
                    "instagram",
                    request(
                        WebhookRoute::Events,
                        WebhookMethod::Post,
                        "",
                        &headers,
                        body.as_bytes(),
                    ),
                )
                .await
        }
    };
    let answer = send(body.clone()).await.unwrap();
    let WebhookAnswer::Acknowledged { receipts } = answer else {
        panic!()
    };
    assert_eq!(receipts[0].outcome, "revoked");
    assert_eq!(
        receipts[0].provider_account_id.as_deref(),
        Some(PROFESSIONAL_ID)
    );
    let revoked = stored(&s).await;
    assert_eq!(
        revoked.status,
        integrations_core::StoredStatus::NeedsReconnect
    );
    assert!(revoked.access_token.is_none());
    assert_eq!(revoked.last_error.as_deref(), Some(DEAUTHORIZED_REASON));
    let events = s
        .integrations
        .events_after(EventPosition::START, 100)
        .await
        .unwrap();
    let last = &events.last().unwrap().event;
    assert_eq!(last.kind, ConnectionEventKind::NeedsReconnect);
    assert_eq!(last.payload["error_code"], "platform_revoked");
    let audit = s.store.list_audit(UserId(7), 10).await.unwrap();
    assert!(audit.iter().any(|a| a.event.action
        == integrations_core::AuditAction::PlatformRevoked
        && a.event.outcome == "revoked: deauthorize"));

    // Replayed later: answered from the receipt, nothing written.
    s.clock.advance(chrono::Duration::seconds(60));
    let WebhookAnswer::Acknowledged { receipts: again } = send(body).await.unwrap() else {
        panic!()
    };
    assert_eq!(again, receipts);
    assert_eq!(stored(&s).await, revoked);
    assert_eq!(
        s.integrations
            .events_after(EventPosition::START, 100)
            .await
            .unwrap()
            .len(),
        events.len()
    );

    // A deauthorization dated before the account's authorization is stale.
    let s = setup().await;
    let before = stored(&s).await;
    let old = signed_form(IG_SECRET, &deauth_payload(PROFESSIONAL_ID, 1_764_500_000));
    let answer = s
        .integrations
        .handle_platform_webhook(
            "instagram",
            request(
                WebhookRoute::Events,
                WebhookMethod::Post,
                "",
                &headers,
                old.as_bytes(),
            ),
        )
        .await
        .unwrap();
    let WebhookAnswer::Acknowledged { receipts } = answer else {
        panic!()
    };
    assert_eq!(receipts[0].outcome, "stale");
    assert_eq!(stored(&s).await, before);

    // An account nobody connected here: acknowledged, recorded, nothing changed.
    let unknown = signed_form(IG_SECRET, &deauth_payload("123", 1_764_547_100));
    let answer = s
        .integrations
        .handle_platform_webhook(
            "instagram",
            request(
                WebhookRoute::Events,
                WebhookMethod::Post,
                "",
                &headers,
                unknown.as_bytes(),
            ),
        )
        .await
        .unwrap();
    let WebhookAnswer::Acknowledged { receipts } = answer else {
        panic!()
    };
    assert_eq!(receipts[0].outcome, "unknown_account");
    assert_eq!(stored(&s).await, before);
}

#[tokio::test]
async fn data_deletion_deletes_and_keeps_its_code() {
    let s = setup().await;
    let headers = form_headers();
    let body = signed_form(
        META_SECRET,
        &serde_json::json!({"user_id": PROFESSIONAL_ID, "algorithm": "HMAC-SHA256",
            "issued_at": 1_764_547_100, "expires": 1_764_550_700}),
    );
    let call = || {
        s.integrations.handle_platform_webhook(
            "instagram",
            request(
                WebhookRoute::DataDeletion,
                WebhookMethod::Post,
                "",
                &headers,
                body.as_bytes(),
            ),
        )
    };
    let WebhookAnswer::DataDeletion { receipt } = call().await.unwrap() else {
        panic!()
    };
    assert_eq!(receipt.outcome, "deleted");
    let code = receipt.confirmation_code.clone().unwrap();
    assert!(
        s.store
            .find_account(&ProviderId::new("instagram").unwrap(), PROFESSIONAL_ID)
            .await
            .unwrap()
            .is_none()
    );
    let WebhookAnswer::DataDeletion { receipt: again } = call().await.unwrap() else {
        panic!()
    };
    assert_eq!(again.confirmation_code.as_deref(), Some(code.as_str()));
    let status = s.integrations.data_deletion_status(&code).await.unwrap();
    assert_eq!(status, Some(receipt));
    assert_eq!(
        s.integrations.data_deletion_status("../etc").await.unwrap(),
        None
    );
    let events = s
        .integrations
        .events_after(EventPosition::START, 100)
        .await
        .unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event.kind == ConnectionEventKind::DataDeleted)
            .count(),
        1
    );
}
