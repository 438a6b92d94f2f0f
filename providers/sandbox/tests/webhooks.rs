//! Platform webhooks sent by the sandbox, checked byte for byte at a local receiver: Instagram
//! deauthorize / data deletion (`signed_request`) and the Graph webhooks handshake, TikTok
//! `authorization.removed` (`TikTok-Signature`), OFAuth `connection.expired` /
//! `connection.updated` (Svix); replay, forged deliveries, the apps page and the controls.

mod common;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::*;
use hmac::{KeyInit, Mac};
use integrations_sandbox::{Platform, Sandbox, SignedRequestUserId, WebhookTargets};
use std::sync::{Arc, Mutex};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).unwrap();
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

/// A request as the receiver saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
}

impl Seen {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_default()
    }
}

type Log = Arc<Mutex<Vec<Seen>>>;

const VERIFY_TOKEN: &str = "verify-me";

/// A local receiver on 127.0.0.1:0 recording every raw request. `/deletion` answers Meta's
/// data deletion JSON; `/graph` answers the hub handshake; everything else `200 ok`.
async fn receiver() -> (String, Log) {
    let log: Log = Arc::default();
    async fn record(
        State(log): State<Log>,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        let seen = Seen {
            method,
            path: uri.path().to_owned(),
            query: uri.query().map(str::to_owned),
            headers,
            body,
        };
        log.lock().unwrap().push(seen.clone());
        match seen.path.as_str() {
            "/deletion" => axum::Json(serde_json::json!({
                "url": "https://app.example/deletion?code=abc123",
                "confirmation_code": "abc123",
            }))
            .into_response(),
            "/graph" => {
                let q: std::collections::HashMap<String, String> =
                    url::form_urlencoded::parse(seen.query.unwrap_or_default().as_bytes())
                        .into_owned()
                        .collect();
                if q.get("hub.mode").map(String::as_str) == Some("subscribe")
                    && q.get("hub.verify_token").map(String::as_str) == Some(VERIFY_TOKEN)
                {
                    q.get("hub.challenge")
                        .cloned()
                        .unwrap_or_default()
                        .into_response()
                } else {
                    (StatusCode::FORBIDDEN, "bad token").into_response()
                }
            }
            "/refuse" => (StatusCode::BAD_REQUEST, "bad signature").into_response(),
            _ => "ok".into_response(),
        }
    }
    let app = axum::Router::new().fallback(record).with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), log)
}

fn seen(log: &Log) -> Vec<Seen> {
    log.lock().unwrap().clone()
}

/// Checks a Meta `signed_request` the way Meta's PHP SDK does and returns its payload.
fn verify_signed_request(secret: &str, sr: &str) -> Option<serde_json::Value> {
    let (sig, payload) = sr.split_once('.')?;
    let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
    if sig != hmac(secret.as_bytes(), payload.as_bytes()) {
        return None;
    }
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

#[test]
fn test_verifier_accepts_the_known_meta_vector() {
    let v = verify_signed_request(
        "key",
        "Mf_s6nTb38UYqioBmPqu0Ewm9souPZB9I2fIGwV729U.eyJ1c2VyX2lkIjoiMCIsImFsZ29yaXRobSI6IkhNQUMtU0hBMjU2IiwiaXNzdWVkX2F0IjoxNjI0MjQ0MTU2fQ",
    )
    .unwrap();
    assert_eq!(v["user_id"], "0");
    assert_eq!(v["algorithm"], "HMAC-SHA256");
    assert_eq!(v["issued_at"], 1624244156);
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

// ---------- connecting ----------

/// Instagram: authorize + code exchange; returns the short-lived token.
async fn instagram_connect(sb: &Sandbox, user: &str) -> String {
    let c = sb.client(Platform::Instagram);
    let url = with_query(
        &format!("{}/oauth/authorize", sb.instagram_www()),
        &[
            ("client_id", c.client_id.as_str()),
            ("redirect_uri", c.redirect_uri.as_str()),
            ("response_type", "code"),
            ("scope", "instagram_business_basic"),
            ("state", "s"),
            ("sandbox_user", user),
        ],
    );
    let code = params(&follow(&http(), &url).await)["code"].clone();
    let r = http()
        .post(format!("{}/oauth/access_token", sb.instagram_api()))
        .form(&[
            ("client_id", c.client_id.as_str()),
            ("client_secret", c.client_secret.as_str()),
            ("grant_type", "authorization_code"),
            ("redirect_uri", c.redirect_uri.as_str()),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    json(r).await["access_token"].as_str().unwrap().to_owned()
}

async fn instagram_me(sb: &Sandbox, token: &str) -> reqwest::Response {
    http()
        .get(format!("{}/me", sb.instagram_graph()))
        .query(&[("fields", "id,user_id"), ("access_token", token)])
        .send()
        .await
        .unwrap()
}

/// TikTok: authorize + token; returns the access token.
async fn tiktok_connect(sb: &Sandbox, user: &str) -> String {
    let c = sb.client(Platform::TikTok);
    let url = with_query(
        &format!("{}/v2/auth/authorize/", sb.tiktok_www()),
        &[
            ("client_key", c.client_id.as_str()),
            ("scope", "user.info.basic"),
            ("response_type", "code"),
            ("redirect_uri", c.redirect_uri.as_str()),
            ("state", "s"),
            ("sandbox_user", user),
        ],
    );
    let code = params(&follow(&http(), &url).await)["code"].clone();
    let r = http()
        .post(format!("{}/v2/oauth/token/", sb.tiktok_open()))
        .form(&[
            ("client_key", c.client_id.as_str()),
            ("client_secret", c.client_secret.as_str()),
            ("code", code.as_str()),
            ("grant_type", "authorization_code"),
            ("redirect_uri", c.redirect_uri.as_str()),
        ])
        .send()
        .await
        .unwrap();
    json(r).await["access_token"].as_str().unwrap().to_owned()
}

async fn tiktok_user_info(sb: &Sandbox, access: &str) -> reqwest::Response {
    http()
        .get(format!("{}/v2/user/info/", sb.tiktok_open()))
        .query(&[("fields", "open_id")])
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
}

/// OnlyFans gateway: link init with a clientReferenceId + hosted page; returns the
/// connection id.
async fn onlyfans_connect(sb: &Sandbox, user: &str, reference: &str) -> String {
    let c = sb.client(Platform::OnlyFans);
    let r = http()
        .post(format!("{}/v2/link/init", sb.onlyfans_gateway()))
        .header("apikey", &c.client_secret)
        .json(&serde_json::json!({"clientReferenceId": reference}))
        .send()
        .await
        .unwrap();
    let b = json(r).await;
    let url = with_query(b["url"].as_str().unwrap(), &[("sandbox_user", user)]);
    params(&follow(&http(), &url).await)["connection_id"].clone()
}

async fn onlyfans_self(sb: &Sandbox, conn: &str) -> reqwest::Response {
    let c = sb.client(Platform::OnlyFans);
    http()
        .get(format!("{}/v2/access/self", sb.onlyfans_gateway()))
        .header("apikey", &c.client_secret)
        .header("x-connection-id", conn)
        .send()
        .await
        .unwrap()
}

// ---------- Instagram ----------

#[tokio::test]
async fn instagram_deauthorize_is_a_signed_form_post_and_revokes() {
    let sb = auto_sandbox().await;
    let (base, log) = receiver().await;
    let token = instagram_connect(&sb, "alice").await;
    let me = json(instagram_me(&sb, &token).await).await;
    let app_scoped = me["id"].as_str().unwrap().to_owned();
    sb.set_webhook_targets(
        Platform::Instagram,
        WebhookTargets {
            deauthorize_url: Some(format!("{base}/deauth")),
            data_deletion_url: Some(format!("{base}/deletion")),
            ..WebhookTargets::default()
        },
    )
    .unwrap();

    let removal = sb.remove_app(Platform::Instagram, "alice").await.unwrap();
    assert_eq!(removal.revoked, 1);
    assert_eq!(removal.deliveries.len(), 1, "deauthorize only");

    let got = seen(&log);
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.path, "/deauth");
    assert_eq!(
        r.header("content-type"),
        "application/x-www-form-urlencoded"
    );
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&r.body).into_owned().collect();
    assert_eq!(form.len(), 1);
    assert_eq!(form[0].0, "signed_request");
    let sr = &form[0].1;
    // The raw body is the field verbatim (base64url and '.' need no escaping).
    assert_eq!(r.body, format!("signed_request={sr}").as_bytes());
    assert!(!sr.contains('='), "both parts unpadded");
    let secret = sb.client(Platform::Instagram).client_secret;
    let payload = verify_signed_request(&secret, sr).expect("signature verifies");
    assert!(verify_signed_request("another secret", sr).is_none());
    assert_eq!(payload["algorithm"], "HMAC-SHA256");
    assert_eq!(
        payload["user_id"],
        app_scoped.as_str(),
        "app-scoped id, as a string"
    );
    let issued = payload["issued_at"].as_i64().unwrap();
    assert!((issued - now()).abs() < 60);
    let (_, encoded) = sr.split_once('.').unwrap();
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(encoded).unwrap()).unwrap();
    assert_eq!(
        raw,
        format!(r#"{{"algorithm":"HMAC-SHA256","issued_at":{issued},"user_id":"{app_scoped}"}}"#)
    );

    // The grant is revoked: the token is refused with code 190.
    let r = instagram_me(&sb, &token).await;
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["error"]["code"], 190);
    assert!(
        sb.counters(Platform::Instagram)
            .grants
            .iter()
            .all(|g| g.revoked)
    );

    // The log has what the receiver answered.
    let d = &sb.webhook_log(Platform::Instagram)[0];
    assert_eq!(d.event, "deauthorize");
    assert_eq!(d.status, Some(200));
    assert_eq!(d.response_body, "ok");
    assert_eq!(d.request_body.as_bytes(), &got[0].body[..]);
    assert_eq!(d.user.as_deref(), Some("alice"));

    // Removing again: nothing live.
    let r = http()
        .post(format!(
            "{}/_sandbox/instagram/users/alice/remove-app",
            sb.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn instagram_data_deletion_records_the_confirmation_code() {
    let sb = auto_sandbox().await;
    let (base, log) = receiver().await;
    let token = instagram_connect(&sb, "bob").await;
    // Configured over HTTP, with the professional id in `user_id`.
    let r = http()
        .put(format!("{}/_sandbox/instagram/webhooks", sb.base_url()))
        .json(&serde_json::json!({
            "deauthorize_url": format!("{base}/deauth"),
            "data_deletion_url": format!("{base}/deletion"),
            "signed_request_user_id": "professional",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t = json(r).await;
    assert_eq!(t["signed_request_user_id"], "professional");
    assert_eq!(
        sb.webhook_targets(Platform::Instagram)
            .signed_request_user_id,
        SignedRequestUserId::Professional
    );

    let r = http()
        .post(format!(
            "{}/_sandbox/instagram/users/bob/request-deletion",
            sb.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b = json(r).await;
    assert_eq!(b["revoked"], 1);
    let ds = b["deliveries"].as_array().unwrap();
    assert_eq!(ds.len(), 2);
    assert_eq!(ds[0]["event"], "deauthorize");
    assert_eq!(ds[1]["event"], "data_deletion");
    assert_eq!(ds[1]["confirmation_code"], "abc123");
    assert_eq!(
        ds[1]["status_url"],
        "https://app.example/deletion?code=abc123"
    );

    let got = seen(&log);
    assert_eq!(
        got.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(),
        ["/deauth", "/deletion"]
    );
    let del = &got[1];
    assert_eq!(
        del.header("content-type"),
        "application/x-www-form-urlencoded"
    );
    let sr = std::str::from_utf8(&del.body)
        .unwrap()
        .strip_prefix("signed_request=")
        .unwrap();
    let secret = sb.client(Platform::Instagram).client_secret;
    let p = verify_signed_request(&secret, sr).unwrap();
    let professional = sb.user_info(Platform::Instagram, "bob").account_id;
    assert_eq!(p["user_id"], professional.as_str());
    assert_eq!(
        p["expires"].as_i64().unwrap(),
        p["issued_at"].as_i64().unwrap() + 3600
    );
    assert_eq!(instagram_me(&sb, &token).await.status(), 400);

    // The log route shows it too.
    let r = http()
        .get(format!("{}/_sandbox/instagram/webhooks/log", sb.base_url()))
        .send()
        .await
        .unwrap();
    let l = json(r).await;
    assert_eq!(l[1]["confirmation_code"], "abc123");
    assert!(l[1]["response_body"].as_str().unwrap().contains("abc123"));
}

#[tokio::test]
async fn instagram_webhooks_handshake_and_signed_event() {
    let sb = auto_sandbox().await;
    let (base, log) = receiver().await;
    let targets = |token: &str| WebhookTargets {
        callback_url: Some(format!("{base}/graph")),
        verify_token: Some(token.to_owned()),
        ..WebhookTargets::default()
    };
    sb.set_webhook_targets(Platform::Instagram, targets(VERIFY_TOKEN))
        .unwrap();
    let d = sb.verify_instagram_webhooks().await.unwrap();
    assert_eq!(d.challenge_ok, Some(true));
    let got = seen(&log);
    assert_eq!(got[0].method, Method::GET);
    let q: Vec<(String, String)> =
        url::form_urlencoded::parse(got[0].query.as_deref().unwrap().as_bytes())
            .into_owned()
            .collect();
    assert_eq!(q[0], ("hub.mode".to_owned(), "subscribe".to_owned()));
    assert_eq!(q[1].0, "hub.challenge");
    assert!(q[1].1.parse::<u64>().is_ok());
    assert_eq!(Some(&q[1].1), d.challenge.as_ref());
    assert_eq!(
        q[2],
        ("hub.verify_token".to_owned(), VERIFY_TOKEN.to_owned())
    );

    // A wrong token: the receiver answers 403, the control reports it.
    sb.set_webhook_targets(Platform::Instagram, targets("wrong"))
        .unwrap();
    let r = http()
        .post(format!(
            "{}/_sandbox/instagram/webhooks/verify",
            sb.base_url()
        ))
        .send()
        .await
        .unwrap();
    let d = json(r).await;
    assert_eq!(d["challenge_ok"], false);
    assert_eq!(d["status"], 403);

    // GET hides the verify token.
    let t = json(
        http()
            .get(format!("{}/_sandbox/instagram/webhooks", sb.base_url()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(t["verify_token_set"], true);
    assert!(t.get("verify_token").is_none());

    // A Graph event is forwarded unchanged with X-Hub-Signature-256.
    let event = r#"{"object":"instagram","entry":[{"id":"0","time":1}]}"#;
    let r = http()
        .post(format!(
            "{}/_sandbox/instagram/webhooks/event",
            sb.base_url()
        ))
        .body(event)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = seen(&log);
    let e = got.last().unwrap();
    assert_eq!(e.body, event.as_bytes());
    let secret = sb.client(Platform::Instagram).client_secret;
    assert_eq!(
        e.header("x-hub-signature-256"),
        format!(
            "sha256={}",
            hex::encode(hmac(secret.as_bytes(), event.as_bytes()))
        )
    );
}

// ---------- TikTok ----------

#[tokio::test]
async fn tiktok_authorization_removed_is_signed_and_revokes() {
    let sb = auto_sandbox().await;
    let (base, log) = receiver().await;
    let access = tiktok_connect(&sb, "carol").await;
    sb.set_webhook_targets(
        Platform::TikTok,
        WebhookTargets {
            callback_url: Some(format!("{base}/tiktok")),
            ..WebhookTargets::default()
        },
    )
    .unwrap();
    let removal = sb.remove_app(Platform::TikTok, "carol").await.unwrap();
    assert_eq!(removal.deliveries.len(), 1);

    let got = seen(&log);
    let r = &got[0];
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.path, "/tiktok");
    assert_eq!(r.header("content-type"), "application/json");
    // TikTok-Signature: t=<unix s>,s=<hex HMAC-SHA256(secret, "<t>.<body>")>
    let sig = r.header("tiktok-signature");
    let (t, s) = sig.split_once(',').unwrap();
    let t = t.strip_prefix("t=").unwrap();
    let s = s.strip_prefix("s=").unwrap();
    assert!((t.parse::<i64>().unwrap() - now()).abs() < 60);
    let c = sb.client(Platform::TikTok);
    let mut msg = format!("{t}.").into_bytes();
    msg.extend_from_slice(&r.body);
    assert_eq!(s, hex::encode(hmac(c.client_secret.as_bytes(), &msg)));

    let open_id = sb.user_info(Platform::TikTok, "carol").account_id;
    assert_eq!(
        std::str::from_utf8(&r.body).unwrap(),
        format!(
            r#"{{"client_key":"{}","event":"authorization.removed","create_time":{t},"user_openid":"{open_id}","content":"{{\"reason\":1}}"}}"#,
            c.client_id
        )
    );
    let b: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let content = b["content"].as_str().expect("content is a string");
    let inner: serde_json::Value = serde_json::from_str(content).unwrap();
    assert_eq!(inner, serde_json::json!({"reason": 1}));

    // Revoked before the event arrives.
    assert_eq!(tiktok_user_info(&sb, &access).await.status(), 401);
}

#[tokio::test]
async fn replay_is_byte_identical_and_forged_does_not_verify() {
    let sb = auto_sandbox().await;
    let (base, log) = receiver().await;
    tiktok_connect(&sb, "dave").await;
    let r = http()
        .put(format!("{}/_sandbox/tiktok/webhooks", sb.base_url()))
        .json(&serde_json::json!({"callback_url": format!("{base}/tiktok")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Nothing to replay yet.
    let r = http()
        .post(format!("{}/_sandbox/tiktok/webhooks/replay", sb.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let r = http()
        .post(format!(
            "{}/_sandbox/tiktok/users/dave/remove-app",
            sb.base_url()
        ))
        .json(&serde_json::json!({"reason": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let first = json(r).await["deliveries"][0].clone();
    let replay = sb.replay_last_webhook(Platform::TikTok).await.unwrap();
    assert_eq!(replay.replay_of, first["id"].as_u64());

    let got = seen(&log);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].body, got[1].body);
    assert_eq!(got[0].headers, got[1].headers);
    let b: serde_json::Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(b["content"], r#"{"reason":5}"#);

    // Forged: same event shape, wrong secret.
    let r = http()
        .post(format!("{}/_sandbox/tiktok/webhooks/forged", sb.base_url()))
        .json(&serde_json::json!({"user": "dave"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json(r).await["forged"], true);
    let got = seen(&log);
    let f = &got[2];
    let b: serde_json::Value = serde_json::from_slice(&f.body).unwrap();
    assert_eq!(b["event"], "authorization.removed");
    let sig = f.header("tiktok-signature");
    let (t, s) = sig.split_once(',').unwrap();
    let mut msg = format!("{}.", t.strip_prefix("t=").unwrap()).into_bytes();
    msg.extend_from_slice(&f.body);
    let secret = sb.client(Platform::TikTok).client_secret;
    assert_ne!(
        s.strip_prefix("s=").unwrap(),
        hex::encode(hmac(secret.as_bytes(), &msg))
    );
    let log = sb.webhook_log(Platform::TikTok);
    assert_eq!(log.len(), 3);
    assert!(log[2].forged);
}

// ---------- OnlyFans gateway (OFAuth) ----------

fn verify_svix(secret: &str, r: &Seen) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut msg = format!("{}.{}.", r.header("svix-id"), r.header("svix-timestamp")).into_bytes();
    msg.extend_from_slice(&r.body);
    let expected = format!("v1,{}", STANDARD.encode(hmac(&key, &msg)));
    r.header("svix-signature").split(' ').any(|s| s == expected)
}

#[tokio::test]
async fn onlyfans_connection_expired_and_reconnect_are_svix_signed() {
    let sb = auto_sandbox().await;
    let (base, log) = receiver().await;
    let conn = onlyfans_connect(&sb, "erin", "ref-42").await;
    let r = http()
        .put(format!("{}/_sandbox/onlyfans/webhooks", sb.base_url()))
        .json(&serde_json::json!({"webhook_url": format!("{base}/ofauth")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t = json(r).await;
    let secret = t["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret, sb.onlyfans_webhook_secret());
    assert!(secret.starts_with("whsec_"));
    assert_eq!(
        STANDARD.decode(&secret["whsec_".len()..]).unwrap().len(),
        24
    );
    assert_eq!(onlyfans_self(&sb, &conn).await.status(), 200);

    sb.remove_app(Platform::OnlyFans, "erin").await.unwrap();
    let got = seen(&log);
    let r = &got[0];
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.path, "/ofauth");
    assert_eq!(r.header("content-type"), "application/json");
    assert!(r.header("svix-id").starts_with("msg_"));
    assert!(!r.header("svix-id").contains('.'));
    assert!((r.header("svix-timestamp").parse::<i64>().unwrap() - now()).abs() < 60);
    assert!(verify_svix(&secret, r));
    assert!(!verify_svix("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", r));
    let puid = sb.user_info(Platform::OnlyFans, "erin").account_id;
    assert_eq!(
        std::str::from_utf8(&r.body).unwrap(),
        format!(
            r#"{{"eventType":"connection.expired","live":false,"data":{{"connection":{{"id":"{conn}","platformUserId":"{puid}","status":"expired"}},"clientReferenceId":"ref-42"}}}}"#
        )
    );
    assert_eq!(onlyfans_self(&sb, &conn).await.status(), 401);

    // Reconnect: the connection works again and connection.updated says so.
    let r = http()
        .post(format!(
            "{}/_sandbox/onlyfans/users/erin/reconnect",
            sb.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(onlyfans_self(&sb, &conn).await.status(), 200);
    let got = seen(&log);
    let u = &got[1];
    assert!(verify_svix(&secret, u));
    let b: serde_json::Value = serde_json::from_slice(&u.body).unwrap();
    assert_eq!(b["eventType"], "connection.updated");
    assert_eq!(b["data"]["connection"]["status"], "active");
    assert_eq!(b["data"]["connection"]["id"], conn.as_str());
    assert_ne!(u.header("svix-id"), got[0].header("svix-id"));

    // The apps page shows the secret, the connection and its buttons.
    let html = http()
        .get(format!("{}/_sandbox/onlyfans/apps", sb.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(&format!(r#"<code id="webhook-secret">{secret}</code>"#)));
    assert!(html.contains(r#"data-testid="reconnect-erin""#));
    assert!(html.contains(r#"data-testid="remove-erin""#));
    assert!(html.contains(r#"data-event="connection.updated" data-status="200""#));

    // Forged: fails verification with the real secret.
    sb.send_forged_webhook(Platform::OnlyFans, "erin")
        .await
        .unwrap();
    let got = seen(&log);
    assert!(!verify_svix(&secret, &got[2]));
    // Replay: same id, timestamp, signature and body.
    sb.replay_last_webhook(Platform::OnlyFans).await.unwrap();
    let got = seen(&log);
    assert_eq!(got[3].headers, got[2].headers);
    assert_eq!(got[3].body, got[2].body);
}

// ---------- apps page, controls ----------

#[tokio::test]
async fn apps_page_lists_grants_and_its_buttons_post_back() {
    let sb = auto_sandbox().await;
    let (base, log) = receiver().await;
    tiktok_connect(&sb, "frank").await;
    sb.set_webhook_targets(
        Platform::TikTok,
        WebhookTargets {
            callback_url: Some(format!("{base}/refuse")),
            ..WebhookTargets::default()
        },
    )
    .unwrap();
    let page_url = format!("{}/_sandbox/tiktok/apps", sb.base_url());
    let page = http().get(&page_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(
        page.headers()["x-sandbox"],
        integrations_sandbox::SANDBOX_HEADER_VALUE
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("development only"));
    assert!(html.contains(r#"data-testid="grant-frank""#));
    assert!(html.contains(&sb.user_info(Platform::TikTok, "frank").account_id));
    assert!(html.contains(&sb.client(Platform::TikTok).client_id));
    assert!(html.contains(r#"data-testid="remove-frank""#));
    assert!(html.contains(r#"data-testid="forged-frank""#));
    assert!(html.contains(r#"data-testid="replay""#));
    assert!(html.contains(r#"action="/_sandbox/tiktok/users/frank/remove-app""#));
    assert!(html.contains(r#"id="log""#));

    // The "Remove app" form: a 303 back to the page.
    let r = http()
        .post(format!(
            "{}/_sandbox/tiktok/users/frank/remove-app",
            sb.base_url()
        ))
        .form(&[("reason", "2")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/_sandbox/tiktok/apps");
    assert_eq!(seen(&log).len(), 1);

    let html = http()
        .get(&page_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"data-event="authorization.removed" data-status="400""#));
    assert!(
        html.contains("bad signature"),
        "the receiver's body is shown"
    );
    assert!(
        !html.contains(r#"data-testid="remove-frank""#),
        "no live grant left"
    );
    assert!(html.contains(r#"data-status="removed""#));

    // A failing form action comes back with the error on the page.
    let r = http()
        .post(format!(
            "{}/_sandbox/tiktok/users/nobody/remove-app",
            sb.base_url()
        ))
        .form(&[("reason", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(loc.starts_with("/_sandbox/tiktok/apps?error="));
    let html = http()
        .get(format!("{}{loc}", sb.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"id="flash""#));
    assert!(html.contains("nobody has no live grant"));
}

#[tokio::test]
async fn webhook_controls_validate_their_input() {
    let sb = auto_sandbox().await;
    let put = |p: &str, body: serde_json::Value| {
        http()
            .put(format!("{}/_sandbox/{p}/webhooks", sb.base_url()))
            .json(&body)
            .send()
    };
    assert_eq!(
        put("reddit", serde_json::json!({})).await.unwrap().status(),
        404
    );
    assert_eq!(
        put("tiktok", serde_json::json!({"callback_url": "not a url"}))
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        put(
            "tiktok",
            serde_json::json!({"deauthorize_url": "http://127.0.0.1:1/x"})
        )
        .await
        .unwrap()
        .status(),
        400
    );
    assert_eq!(
        put("onlyfans", serde_json::json!({"secret": "nope"}))
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        put("onlyfans", serde_json::json!({"bogus": 1}))
            .await
            .unwrap()
            .status(),
        400
    );
    let fixed = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let r = put("onlyfans", serde_json::json!({"secret": fixed}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(sb.onlyfans_webhook_secret(), fixed);

    // No target configured: 409; bad reason: 400.
    let r = http()
        .post(format!(
            "{}/_sandbox/instagram/webhooks/forged",
            sb.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    tiktok_connect(&sb, "gina").await;
    let r = http()
        .post(format!(
            "{}/_sandbox/tiktok/users/gina/remove-app",
            sb.base_url()
        ))
        .json(&serde_json::json!({"reason": 9}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Removal without a target still revokes (the platform would not call anyone).
    let r = sb.remove_app(Platform::TikTok, "gina").await.unwrap();
    assert_eq!(r.revoked, 1);
    assert!(r.deliveries.is_empty());

    // A receiver that is down: recorded as an error, no status.
    sb.set_webhook_targets(
        Platform::TikTok,
        WebhookTargets {
            callback_url: Some("http://127.0.0.1:9/down".to_owned()),
            ..WebhookTargets::default()
        },
    )
    .unwrap();
    let d = sb
        .send_forged_webhook(Platform::TikTok, "gina")
        .await
        .unwrap();
    assert_eq!(d.status, None);
    assert!(d.error.is_some());

    // Debug of the targets hides the verify token.
    let t = WebhookTargets {
        verify_token: Some("hush".to_owned()),
        ..WebhookTargets::default()
    };
    assert!(!format!("{t:?}").contains("hush"));
}
