//! The example server's REST API over real HTTP: every route's success, 401, another
//! user's account (404, indistinguishable from a missing one), unknown and disabled
//! platforms, forged state, replayed and cancelled callbacks, rate limits, error bodies.

mod support;

use integrations_examples::server::ServerConfig;
use integrations_sandbox::Platform;
use reqwest::Method;
use serde_json::Value;
use support::{Client, location, start};

async fn error_body(resp: reqwest::Response) -> Value {
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "error bodies are JSON"
    );
    let body: Value = resp.json().await.unwrap();
    let keys: Vec<&String> = body.as_object().expect("an object").keys().collect();
    assert_eq!(
        keys,
        ["code", "message", "success"],
        "only code and message: {body}"
    );
    assert_eq!(body["success"], false);
    body
}

/// A request as the page sends it: JSON on `POST`.
async fn send(client: &Client, method: &Method, path: &str) -> reqwest::Response {
    let mut request = client.request(method.clone(), path);
    if *method == Method::POST {
        request = request.json(&serde_json::json!({}));
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn every_route_needs_a_session() {
    let server = start(ServerConfig::default()).await;
    let anon = Client::anonymous(&server);
    let mut forged = Client::anonymous(&server);
    // A cookie that was not signed by the server (a user id alone) is no session.
    forged.cookie = Some("integrations_session=1".into());
    let routes = [
        (Method::GET, "/api/integrations/status"),
        (Method::GET, "/api/integrations/providers"),
        (Method::POST, "/api/integrations/connect/reddit"),
        (
            Method::GET,
            "/api/integrations/callback/reddit?code=x&state=y",
        ),
        (Method::DELETE, "/api/integrations/disconnect/reddit/abc"),
        (Method::POST, "/api/integrations/refresh/reddit/abc"),
        (Method::GET, "/api/session"),
    ];
    for client in [&anon, &forged] {
        for (method, path) in &routes {
            let resp = send(client, method, path).await;
            assert_eq!(resp.status(), 401, "{method} {path}");
            let body = error_body(resp).await;
            assert_eq!(body["code"], "unauthenticated");
            assert_eq!(body["message"], "Please sign in.");
        }
    }
    // The page sends the browser to the sign-in form instead.
    let resp = anon.get("/integrations").await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/signin?next=%2Fintegrations");
    server.shutdown().await;
}

#[tokio::test]
async fn connect_callback_status_refresh_disconnect() {
    let server = start(ServerConfig::default()).await;
    let sandbox = server.sandbox().unwrap();
    let alice = Client::signed_in(&server, 1).await;
    assert!(alice.status().await.is_empty());

    let loc = alice.connect("reddit", "alice").await;
    let info = sandbox.user_info(Platform::Reddit, "alice");
    assert_eq!(
        loc,
        format!("/integrations?connected=reddit&account={}", info.account_id)
    );

    let status = alice.status().await;
    assert_eq!(status.len(), 1);
    let it = &status[0];
    for key in [
        "provider",
        "providerAccountId",
        "isConnected",
        "expiresAt",
        "metadata",
        "createdAt",
        "updatedAt",
        "status",
        "username",
    ] {
        assert!(it.get(key).is_some(), "status item has {key}: {it}");
    }
    assert_eq!(it["provider"], "reddit");
    assert_eq!(it["providerAccountId"], info.account_id.as_str());
    assert_eq!(it["isConnected"], true);
    assert_eq!(it["status"], "connected");
    assert_eq!(it["username"], "alice");
    assert_eq!(it["metadata"]["username"], "alice");
    assert!(
        it["metadata"]["karma"].is_i64(),
        "karma from the profile: {it}"
    );
    let text = it.to_string();
    assert!(
        !text.to_lowercase().contains("token\":"),
        "no token: {text}"
    );

    // Refresh: {success, expiresAt}.
    let refreshes = sandbox.refresh_count(Platform::Reddit, "alice");
    let resp = alice
        .post(&format!(
            "/api/integrations/refresh/reddit/{}",
            info.account_id
        ))
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["success"], true);
    let expires = body["expiresAt"].as_str().expect("expiresAt");
    assert!(chrono::DateTime::parse_from_rfc3339(expires).is_ok());
    assert_eq!(
        sandbox.refresh_count(Platform::Reddit, "alice"),
        refreshes + 1
    );

    // Disconnect: {success, message}; revoked at the platform; gone from the status.
    let resp = alice
        .delete(&format!(
            "/api/integrations/disconnect/reddit/{}",
            info.account_id
        ))
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"success": true, "message": "Reddit disconnected."})
    );
    assert!(alice.status().await.is_empty());
    assert!(
        sandbox
            .counters(Platform::Reddit)
            .grants
            .iter()
            .all(|g| g.revoked),
        "the grant was revoked"
    );
    // Disconnecting again: 404.
    let resp = alice
        .delete(&format!(
            "/api/integrations/disconnect/reddit/{}",
            info.account_id
        ))
        .await;
    assert_eq!(resp.status(), 404);
    server.shutdown().await;
}

#[tokio::test]
async fn all_four_platforms_and_several_accounts() {
    let server = start(ServerConfig::default()).await;
    let user = Client::signed_in(&server, 7).await;
    for p in ["instagram", "tiktok", "reddit", "onlyfans"] {
        let loc = user.connect(p, "demo").await;
        assert!(
            loc.starts_with(&format!("/integrations?connected={p}&")),
            "{loc}"
        );
    }
    let loc = user.connect("instagram", "second.account").await;
    assert!(
        loc.starts_with("/integrations?connected=instagram&"),
        "{loc}"
    );
    let status = user.status().await;
    assert_eq!(status.len(), 5, "{status:?}");
    let instagram: Vec<&Value> = status
        .iter()
        .filter(|v| v["provider"] == "instagram")
        .collect();
    assert_eq!(instagram.len(), 2);
    let mut names: Vec<&str> = instagram
        .iter()
        .map(|v| v["username"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["demo", "second.account"]);
    assert!(status.iter().all(|v| v["isConnected"] == true));
    server.shutdown().await;
}

#[tokio::test]
async fn another_users_account_is_a_404_like_a_missing_one() {
    let server = start(ServerConfig::default()).await;
    let sandbox = server.sandbox().unwrap();
    let alice = Client::signed_in(&server, 1).await;
    let mallory = Client::signed_in(&server, 2).await;
    alice.connect("tiktok", "alice").await;
    let account = sandbox.user_info(Platform::TikTok, "alice").account_id;

    let mut bodies = Vec::new();
    for (method, path) in [
        (
            Method::DELETE,
            format!("/api/integrations/disconnect/tiktok/{account}"),
        ),
        (
            Method::POST,
            format!("/api/integrations/refresh/tiktok/{account}"),
        ),
        (
            Method::DELETE,
            "/api/integrations/disconnect/tiktok/no-such-account".to_owned(),
        ),
        (
            Method::POST,
            "/api/integrations/refresh/tiktok/no-such-account".to_owned(),
        ),
    ] {
        let resp = send(&mallory, &method, &path).await;
        assert_eq!(resp.status(), 404, "{method} {path}");
        bodies.push(error_body(resp).await);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "no hint the account exists: {bodies:?}"
    );
    assert_eq!(bodies[0]["code"], "not_found");
    assert_eq!(bodies[0]["message"], "Integration not found.");
    assert!(mallory.status().await.is_empty());
    assert_eq!(alice.status().await.len(), 1, "alice keeps her account");
    assert_eq!(
        sandbox.refresh_count(Platform::TikTok, "alice"),
        0,
        "no platform call"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_and_disabled_providers_are_json_404s() {
    let mut config = ServerConfig::default();
    config.disabled.insert("instagram".into());
    let server = start(config).await;
    let user = Client::signed_in(&server, 3).await;

    let resp = user.get("/api/integrations/providers").await;
    let body: Value = resp.json().await.unwrap();
    let ids: Vec<&str> = body["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["tiktok", "reddit", "onlyfans"], "instagram is off");

    for provider in ["instagram", "myspace", "%3Cscript%3E"] {
        for (method, path) in [
            (
                Method::POST,
                format!("/api/integrations/connect/{provider}"),
            ),
            (
                Method::GET,
                format!("/api/integrations/callback/{provider}?code=c&state=s"),
            ),
            (
                Method::DELETE,
                format!("/api/integrations/disconnect/{provider}/1"),
            ),
            (
                Method::POST,
                format!("/api/integrations/refresh/{provider}/1"),
            ),
        ] {
            let resp = send(&user, &method, &path).await;
            assert_eq!(resp.status(), 404, "{method} {path}");
            let body = error_body(resp).await;
            assert_eq!(body["code"], "unknown_provider", "{method} {path}");
            assert_eq!(body["message"], "This integration is not available.");
        }
    }
    // An unknown route under the API is a JSON 404 too.
    let resp = user.get("/api/integrations/nothing").await;
    assert_eq!(resp.status(), 404);
    assert_eq!(error_body(resp).await["code"], "not_found");
    server.shutdown().await;
}

#[tokio::test]
async fn forged_replayed_and_foreign_states_redirect_with_a_code() {
    let server = start(ServerConfig::default()).await;
    let alice = Client::signed_in(&server, 1).await;
    let bob = Client::signed_in(&server, 2).await;

    // Forged: a state the server never issued.
    let resp = alice
        .get("/api/integrations/callback/reddit?state=forged-state&code=abc")
        .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(
        location(&resp),
        "/integrations?provider=reddit&error=invalid_state"
    );
    // No state at all.
    let resp = alice
        .get("/api/integrations/callback/reddit?code=abc")
        .await;
    assert_eq!(
        location(&resp),
        "/integrations?provider=reddit&error=invalid_state"
    );

    // Replayed: the same callback URL twice; the second changes nothing.
    let auth = alice.start_connect("reddit").await;
    let callback = alice.consent(&auth, "alice", "allow").await;
    let first = alice.get(&callback).await;
    assert!(location(&first).starts_with("/integrations?connected=reddit&"));
    let before = alice.status().await;
    let replay = alice.get(&callback).await;
    assert_eq!(replay.status(), 303);
    assert_eq!(
        location(&replay),
        "/integrations?provider=reddit&error=invalid_state"
    );
    assert_eq!(alice.status().await, before);

    // Another user's state (a link sent to someone else) does not connect for them.
    let auth = alice.start_connect("tiktok").await;
    let callback = alice.consent(&auth, "alice", "allow").await;
    let stolen = bob.get(&callback).await;
    assert_eq!(
        location(&stolen),
        "/integrations?provider=tiktok&error=state_mismatch"
    );
    assert!(bob.status().await.is_empty());

    // A state issued for one platform does not complete another.
    let auth = alice.start_connect("tiktok").await;
    let callback = alice.consent(&auth, "alice", "allow").await;
    let crossed = callback.replace("/callback/tiktok", "/callback/reddit");
    let resp = alice.get(&crossed).await;
    assert_eq!(
        location(&resp),
        "/integrations?provider=reddit&error=state_mismatch"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_cancelled_consent_redirects_with_the_cancelled_code() {
    let server = start(ServerConfig::default()).await;
    let user = Client::signed_in(&server, 1).await;
    for provider in ["instagram", "tiktok", "reddit", "onlyfans"] {
        let auth = user.start_connect(provider).await;
        let callback = user.consent(&auth, "demo", "deny").await;
        // OAuth platforms send `error=access_denied`; OFAuth sends `status=cancelled`.
        let denied = if provider == "onlyfans" {
            "status=cancelled"
        } else {
            "error=access_denied"
        };
        assert!(callback.contains(denied), "{callback}");
        let resp = user.get(&callback).await;
        assert_eq!(resp.status(), 303);
        assert_eq!(
            location(&resp),
            format!("/integrations?provider={provider}&error=cancelled")
        );
    }
    assert!(user.status().await.is_empty());
    // The page knows the design's message for that code.
    let page = user.get("/integrations").await.text().await.unwrap();
    assert!(page.contains("Connection cancelled. You can try again anytime."));
    server.shutdown().await;
}

#[tokio::test]
async fn refresh_errors_map_to_http() {
    let server = start(ServerConfig::default()).await;
    let sandbox = server.sandbox().unwrap();
    let user = Client::signed_in(&server, 1).await;
    user.connect("tiktok", "demo").await;
    user.connect("instagram", "demo").await;
    user.connect("onlyfans", "demo").await;
    let tiktok = sandbox.user_info(Platform::TikTok, "demo").account_id;
    let instagram = sandbox.user_info(Platform::Instagram, "demo").account_id;
    let onlyfans = sandbox.user_info(Platform::OnlyFans, "demo").account_id;

    // Instagram refreshes only tokens at least 24 hours old.
    let resp = user
        .post(&format!("/api/integrations/refresh/instagram/{instagram}"))
        .await;
    assert_eq!(resp.status(), 409);
    assert_eq!(error_body(resp).await["code"], "refresh_not_yet_allowed");

    // The gateway keeps connections without refresh.
    let resp = user
        .post(&format!("/api/integrations/refresh/onlyfans/{onlyfans}"))
        .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(error_body(resp).await["code"], "unsupported");

    // A platform outage is a 503 with the design's network message, never its detail.
    sandbox.fail_next(
        Some(Platform::TikTok),
        3,
        integrations_sandbox::Failure::ServerError,
    );
    let resp = user
        .post(&format!("/api/integrations/refresh/tiktok/{tiktok}"))
        .await;
    assert_eq!(resp.status(), 503);
    let body = error_body(resp).await;
    assert_eq!(body["code"], "provider_unavailable");
    assert_eq!(
        body["message"],
        "Connection failed. Please check your internet."
    );
    sandbox.clear_faults(None);

    // The user removed the app at the platform: refresh → 409 needs_reconnect, and the
    // status says so.
    assert_eq!(sandbox.revoke_grants(Platform::TikTok, "demo"), 1);
    let resp = user
        .post(&format!("/api/integrations/refresh/tiktok/{tiktok}"))
        .await;
    assert_eq!(resp.status(), 409);
    let body = error_body(resp).await;
    assert_eq!(body["code"], "needs_reconnect");
    assert_eq!(body["message"], "Please reconnect your account.");
    let status = user.status().await;
    let t = status.iter().find(|v| v["provider"] == "tiktok").unwrap();
    assert_eq!(t["status"], "needs_reconnect");
    assert_eq!(t["isConnected"], false);

    // Reconnecting restores it.
    user.connect("tiktok", "demo").await;
    let status = user.status().await;
    let t = status.iter().find(|v| v["provider"] == "tiktok").unwrap();
    assert_eq!(t["status"], "connected");
    server.shutdown().await;
}

#[tokio::test]
async fn connect_is_rate_limited_with_retry_after() {
    let server = start(ServerConfig::default()).await;
    let user = Client::signed_in(&server, 1).await;
    for _ in 0..10 {
        user.start_connect("reddit").await;
    }
    let resp = user.post("/api/integrations/connect/reddit").await;
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=300).contains(&retry), "{retry}");
    let body = error_body(resp).await;
    assert_eq!(body["code"], "rate_limited");
    assert_eq!(
        body["message"],
        "Too many attempts. Please try again in 5 minutes."
    );
    // Another user is not affected.
    Client::signed_in(&server, 2)
        .await
        .start_connect("reddit")
        .await;
    server.shutdown().await;
}

#[tokio::test]
async fn redirects_stay_on_the_site() {
    let server = start(ServerConfig::default()).await;
    let user = Client::signed_in(&server, 1).await;
    let resp = user
        .request(Method::POST, "/api/integrations/connect/reddit")
        .json(&serde_json::json!({ "redirectUrl": "https://elsewhere.invalid/phish" }))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    let callback = user
        .consent(body["authUrl"].as_str().unwrap(), "demo", "allow")
        .await;
    let resp = user.get(&callback).await;
    assert!(
        location(&resp).starts_with("/integrations?connected=reddit"),
        "{}",
        location(&resp)
    );
    // Malformed connect bodies are a 400 JSON error; no body is fine.
    let resp = user
        .request(Method::POST, "/api/integrations/connect/reddit")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(error_body(resp).await["code"], "invalid_request");
    assert_eq!(
        user.post("/api/integrations/connect/reddit").await.status(),
        200
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_sign_in_form_and_the_page() {
    let server = start(ServerConfig::default()).await;
    let anon = Client::anonymous(&server);
    let form = anon.get("/signin?next=/integrations").await;
    assert_eq!(form.status(), 200);
    assert!(form.text().await.unwrap().contains("name=\"user\""));

    let resp = anon
        .request(Method::POST, "/signin?next=/integrations")
        .form(&[("user", "5")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/integrations");
    let cookie = resp
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let mut user = Client::anonymous(&server);
    user.cookie = Some(cookie);
    let who: Value = user.get("/api/session").await.json().await.unwrap();
    assert_eq!(who, serde_json::json!({"userId": 5}));

    let page = user.get("/integrations").await;
    assert_eq!(page.status(), 200);
    let csp = page
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains("<h1>Integrations</h1>"));
    assert!(html.contains("/integrations/assets/integrations.js"));
    assert_eq!(
        user.get("/integrations/assets/integrations.js")
            .await
            .status(),
        200
    );
    assert_eq!(
        user.get("/integrations/assets/integrations.css")
            .await
            .status(),
        200
    );

    // A bad user number or an off-site `next` never signs in elsewhere.
    let resp = anon
        .request(Method::POST, "/signin?next=//elsewhere.invalid")
        .form(&[("user", "3")])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&resp), "/integrations");
    let resp = anon
        .request(Method::POST, "/signin")
        .form(&[("user", "-1")])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&resp), "/signin?error=invalid_user");
    assert!(resp.headers().get("set-cookie").is_none());

    // Signing out ends the session cookie.
    let resp = user.post("/signout").await;
    assert_eq!(location(&resp), "/signin");
    let cleared = resp.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(cleared.starts_with("integrations_session=;"), "{cleared}");
    server.shutdown().await;
}

#[tokio::test]
async fn the_api_document_is_served_without_a_session() {
    let server = start(ServerConfig::default()).await;
    let resp = Client::anonymous(&server)
        .get("/api/integrations/openapi.json")
        .await;
    assert_eq!(resp.status(), 200);
    let served: Value = resp.json().await.unwrap();
    let checked_in: Value = serde_json::from_str(include_str!("../../docs/openapi.json")).unwrap();
    assert_eq!(
        served, checked_in,
        "the example server serves docs/openapi.json"
    );
    server.shutdown().await;
}
