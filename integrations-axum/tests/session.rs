//! The demo sign-in (feature `demo-session`): sessions end at sign-out and at expiry on
//! the server, sign-in refuses cross-site requests, every HTML page has the page headers.

use integrations_axum::session::DemoSessions;
use integrations_axum::{IntegrationsRouter, PageConfig, ServeLimits, serve_with_shutdown};
use integrations_core::{EncryptionKey, Integrations, MemoryStore, TokenCipher};
use std::sync::Arc;
use std::time::Duration;

async fn start(sessions: DemoSessions) -> (String, tokio::sync::oneshot::Sender<()>) {
    let integrations = Integrations::builder(
        Arc::new(MemoryStore::new()),
        TokenCipher::new(EncryptionKey::generate()),
    )
    .build();
    let web = IntegrationsRouter::new(integrations, sessions.clone()).page_config(PageConfig {
        sign_in_url: Some("/signin".into()),
        ..PageConfig::default()
    });
    let app = sessions
        .router()
        .nest("/api/integrations", web.api())
        .nest("/integrations", web.page());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve_with_shutdown(
        listener,
        app,
        ServeLimits::default(),
        async move {
            let _ = rx.await;
        },
    ));
    (base, tx)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn sign_in(c: &reqwest::Client, base: &str, user: i64) -> String {
    let resp = c
        .post(format!("{base}/api/session"))
        .json(&serde_json::json!({ "userId": user }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let set = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    assert!(set.contains("Max-Age="), "the cookie expires: {set}");
    set.split(';').next().unwrap().to_owned()
}

async fn status_of(c: &reqwest::Client, base: &str, cookie: &str) -> u16 {
    c.get(format!("{base}/api/integrations/status"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn sessions() -> DemoSessions {
    DemoSessions::new(
        None,
        "/integrations",
        "/integrations/assets/integrations.css",
    )
    .unwrap()
}

#[tokio::test]
async fn signing_out_ends_the_session_on_the_server() {
    let (base, _stop) = start(sessions()).await;
    let c = client();
    let cookie = sign_in(&c, &base, 4).await;
    assert_eq!(status_of(&c, &base, &cookie).await, 200);
    // A copy of the cookie, kept by whoever saw it.
    let copy = cookie.clone();
    let resp = c
        .delete(format!("{base}/api/session"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(status_of(&c, &base, &copy).await, 401);
    // The form sign-out as well.
    let cookie = sign_in(&c, &base, 4).await;
    let resp = c
        .post(format!("{base}/signout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(status_of(&c, &base, &cookie).await, 401);
}

#[tokio::test]
async fn sessions_expire() {
    let (base, _stop) = start(sessions().ttl(Duration::from_millis(300))).await;
    let c = client();
    let cookie = sign_in(&c, &base, 5).await;
    assert_eq!(status_of(&c, &base, &cookie).await, 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(status_of(&c, &base, &cookie).await, 401);
    // A cookie the server never issued (a user id alone) is no session either.
    assert_eq!(status_of(&c, &base, "integrations_session=5").await, 401);
}

#[tokio::test]
async fn sign_in_refuses_cross_site_requests() {
    let (base, _stop) = start(sessions()).await;
    let c = client();
    // Login CSRF: an attacker's page posting its own user number.
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let resp = c
            .post(format!("{base}/signin?next=/integrations"))
            .header(name, value)
            .form(&[("user", "666")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{name}");
        assert!(resp.headers().get("set-cookie").is_none());
        let resp = c
            .post(format!("{base}/api/session"))
            .header(name, value)
            .json(&serde_json::json!({"userId": 666}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{name}");
        assert!(resp.headers().get("set-cookie").is_none());
    }
    // The site's own form works.
    let resp = c
        .post(format!("{base}/signin?next=/integrations"))
        .header("sec-fetch-site", "same-origin")
        .form(&[("user", "6")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert!(resp.headers().get("set-cookie").is_some());
}

#[tokio::test]
async fn every_html_page_has_the_page_headers() {
    let (base, _stop) = start(sessions()).await;
    let c = client();
    let cookie = sign_in(&c, &base, 1).await;
    for (path, cookie) in [
        ("/signin", None),
        ("/integrations", Some(cookie.as_str())),
        ("/integrations", None),
    ] {
        let mut req = c.get(format!("{base}{path}"));
        if let Some(cookie) = cookie {
            req = req.header("cookie", cookie);
        }
        let resp = req.send().await.unwrap();
        let csp = resp
            .headers()
            .get("content-security-policy")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(resp.headers()["x-frame-options"], "DENY", "{path}");
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    }
}
