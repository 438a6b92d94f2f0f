//! Platform webhooks end to end, on SQLite and on PostgreSQL: the example server registers
//! its webhook routes with the sandbox at start; a sandbox user removes the app there (or
//! asks Meta to delete their data), the sandbox sends the platform's signed request to
//! the server, exactly as the platform formats it, and the stored connections change.
//! Forged requests are refused with nothing changed, and replays change nothing.

mod support;

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use integrations_core::{ConnectionEventKind, EventPosition, StoredStatus};
use integrations_examples::server::{RunningServer, ServerConfig};
use integrations_sandbox::Platform;
use integrations_storage_diesel::StoreOptions;
use support::{Client, start};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

#[tokio::test]
async fn platform_webhooks_on_sqlite() {
    let server = start(ServerConfig::default()).await;
    journey(&server).await;
    server.shutdown().await;
}

#[tokio::test]
async fn platform_webhooks_on_postgresql() {
    let url =
        std::env::var("INTEGRATIONS_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
    let mut admin = match AsyncPgConnection::establish(&url).await {
        Ok(c) => c,
        Err(e) if std::env::var("INTEGRATIONS_SKIP_POSTGRES").is_ok_and(|v| v == "1") => {
            eprintln!("SKIPPED: PostgreSQL unreachable ({e}) and INTEGRATIONS_SKIP_POSTGRES=1");
            return;
        }
        Err(e) => panic!(
            "cannot connect to PostgreSQL at INTEGRATIONS_TEST_POSTGRES_URL (default \
             {DEFAULT_URL}): {e}; start one or set INTEGRATIONS_SKIP_POSTGRES=1"
        ),
    };
    let schema = format!(
        "examples_platform_webhooks_{}",
        std::process::id() as u64 * 1000 + u64::from(rand_byte())
    );
    let server = start(ServerConfig {
        database_url: Some(url.clone()),
        store_options: StoreOptions {
            schema: Some(schema.clone()),
            max_connections: 4,
            ..StoreOptions::default()
        },
        ..ServerConfig::default()
    })
    .await;
    journey(&server).await;
    server.shutdown().await;
    admin
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .expect("drop the test schema");
}

fn rand_byte() -> u8 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now()) as u8
}

async fn record(
    server: &RunningServer,
    provider: &str,
    account: &str,
) -> Option<integrations_core::AccountRecord> {
    let provider = integrations_core::ProviderId::new(provider).unwrap();
    server
        .integrations
        .store()
        .find_account(&provider, account)
        .await
        .unwrap()
}

async fn event_kinds(server: &RunningServer) -> Vec<(ConnectionEventKind, String)> {
    server
        .integrations
        .events_after(EventPosition::START, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.event.kind, e.event.provider.as_str().to_owned()))
        .collect()
}

async fn journey(server: &RunningServer) {
    let sandbox = server.sandbox().expect("the sandbox runs");
    let alice = Client::signed_in(server, 1).await;
    let bob = Client::signed_in(server, 2).await;
    for p in ["instagram", "tiktok", "onlyfans", "reddit"] {
        alice.connect(p, "alice").await;
    }
    bob.connect("instagram", "bob").await;
    let ig_alice = sandbox.user_info(Platform::Instagram, "alice").account_id;
    let tt_alice = sandbox.user_info(Platform::TikTok, "alice").account_id;
    let of_alice = sandbox.user_info(Platform::OnlyFans, "alice").account_id;
    let before_events = event_kinds(server).await.len();

    // A forged removal (signed with another secret) is refused; nothing changes.
    for platform in [Platform::Instagram, Platform::TikTok, Platform::OnlyFans] {
        let forged = sandbox
            .send_forged_webhook(platform, "alice")
            .await
            .unwrap();
        assert_eq!(
            forged.status,
            Some(401),
            "{platform:?}: {}",
            forged.response_body
        );
        assert!(forged.response_body.contains("webhook_bad_signature"));
    }
    for (p, id) in [
        ("instagram", &ig_alice),
        ("tiktok", &tt_alice),
        ("onlyfans", &of_alice),
    ] {
        let r = record(server, p, id).await.unwrap();
        assert_eq!(r.status, StoredStatus::Active, "{p}");
        assert!(r.access_token.is_some());
    }
    assert_eq!(event_kinds(server).await.len(), before_events);

    // Instagram: the deauthorize callback, with the app-scoped id Meta sends (the
    // sandbox's default), finds the account by its alias and revokes it.
    let removal = sandbox
        .remove_app(Platform::Instagram, "alice")
        .await
        .unwrap();
    assert_eq!(removal.deliveries.len(), 1);
    assert_eq!(
        removal.deliveries[0].status,
        Some(200),
        "{:?}",
        removal.deliveries[0]
    );
    let ig = record(server, "instagram", &ig_alice).await.unwrap();
    assert_eq!(ig.status, StoredStatus::NeedsReconnect);
    assert!(ig.access_token.is_none(), "tokens cleared");
    assert_eq!(
        ig.last_error.as_deref(),
        Some(integrations_instagram::DEAUTHORIZED_REASON)
    );

    // TikTok: authorization.removed with reason 1.
    let removal = sandbox.remove_app(Platform::TikTok, "alice").await.unwrap();
    assert_eq!(removal.deliveries[0].status, Some(200));
    let tt = record(server, "tiktok", &tt_alice).await.unwrap();
    assert_eq!(tt.status, StoredStatus::NeedsReconnect);
    assert!(tt.access_token.is_none() && tt.refresh_token.is_none());
    assert!(
        tt.last_error
            .as_deref()
            .is_some_and(|e| e.contains("TikTok")),
        "{tt:?}"
    );
    // A replay is acknowledged and changes nothing.
    let events = event_kinds(server).await.len();
    let replay = sandbox.replay_last_webhook(Platform::TikTok).await.unwrap();
    assert_eq!(replay.status, Some(200));
    assert_eq!(record(server, "tiktok", &tt_alice).await.unwrap(), tt);
    assert_eq!(event_kinds(server).await.len(), events);

    // OnlyFans gateway: the session expired (kept, needs the user), then reconnected.
    let removal = sandbox
        .remove_app(Platform::OnlyFans, "alice")
        .await
        .unwrap();
    assert_eq!(removal.deliveries[0].status, Some(200));
    let of = record(server, "onlyfans", &of_alice).await.unwrap();
    assert_eq!(of.status, StoredStatus::NeedsReconnect);
    assert!(of.access_token.is_some(), "the gateway connection is kept");
    let back = sandbox.onlyfans_reconnect("alice").await.unwrap();
    assert_eq!(back.status, Some(200));
    let of = record(server, "onlyfans", &of_alice).await.unwrap();
    assert_eq!(of.status, StoredStatus::Active);
    assert!(of.last_error.is_none());

    // The page's view shows the revoked state with the reason.
    let status = alice.status().await;
    let view = |p: &str| {
        status
            .iter()
            .find(|v| v["provider"] == p)
            .unwrap_or_else(|| panic!("{p} in {status:?}"))
            .clone()
    };
    assert_eq!(view("instagram")["status"], "needs_reconnect");
    assert_eq!(
        view("instagram")["lastError"],
        integrations_instagram::DEAUTHORIZED_REASON
    );
    assert_eq!(view("onlyfans")["status"], "connected");
    assert_eq!(view("reddit")["status"], "connected");
    assert!(
        view("instagram")["metadata"]
            .get(integrations_core::store::ALIASES_KEY)
            .is_none(),
        "aliases are not shown"
    );

    // Instagram data deletion for bob: the account is deleted, the answer carries the
    // status page's URL and a code, and the page (no sign-in) says it is done.
    let ig_bob = sandbox.user_info(Platform::Instagram, "bob").account_id;
    let removal = sandbox.request_data_deletion("bob").await.unwrap();
    let deletion = removal
        .deliveries
        .iter()
        .find(|d| d.url.contains("/data-deletion/"))
        .expect("a data deletion request was sent");
    assert_eq!(deletion.status, Some(200), "{deletion:?}");
    let answer: serde_json::Value = serde_json::from_str(&deletion.response_body).unwrap();
    let code = answer["confirmation_code"].as_str().unwrap().to_owned();
    let url = answer["url"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 12);
    assert_eq!(
        url,
        format!(
            "{}/api/integrations/data-deletion/instagram?code={code}",
            server.url()
        )
    );
    assert!(record(server, "instagram", &ig_bob).await.is_none());
    assert!(bob.status().await.is_empty());
    let page = Client::anonymous(server)
        .get(&url[server.url().len()..])
        .await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Status: completed"), "{html}");
    assert!(html.contains(&code));
    assert!(
        !html.contains(&ig_bob),
        "no personal data on the status page"
    );
    // Replayed, the request keeps its code and deletes nothing more.
    let replay = sandbox
        .replay_last_webhook(Platform::Instagram)
        .await
        .unwrap();
    assert_eq!(replay.status, Some(200));
    let again: serde_json::Value = serde_json::from_str(&replay.response_body).unwrap();
    assert_eq!(again["confirmation_code"], code.as_str());
    let unknown = Client::anonymous(server)
        .get("/api/integrations/data-deletion/instagram?code=NOSUCHCODE00")
        .await;
    assert_eq!(unknown.status(), 404);

    // Meta's subscription handshake with the verify token the server registered, and a
    // body over the limit, refused before it is read.
    let handshake = sandbox.verify_instagram_webhooks().await.unwrap();
    assert_eq!(handshake.status, Some(200), "{handshake:?}");
    assert_eq!(handshake.challenge_ok, Some(true));
    let resp = Client::anonymous(server)
        .http
        .post(format!("{}/api/integrations/webhooks/tiktok", server.url()))
        .body(vec![b'x'; 64 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "webhook_too_large");

    // Reddit has no webhooks.
    let resp = Client::anonymous(server)
        .http
        .post(format!("{}/api/integrations/webhooks/reddit", server.url()))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    // Every change became one connection event.
    let events = event_kinds(server).await;
    let new: Vec<_> = events[before_events..].to_vec();
    let count = |k: ConnectionEventKind, p: &str| {
        new.iter()
            .filter(|(kind, pr)| *kind == k && pr == p)
            .count()
    };
    assert_eq!(count(ConnectionEventKind::NeedsReconnect, "instagram"), 2);
    assert_eq!(count(ConnectionEventKind::NeedsReconnect, "tiktok"), 1);
    assert_eq!(count(ConnectionEventKind::NeedsReconnect, "onlyfans"), 1);
    assert_eq!(count(ConnectionEventKind::Restored, "onlyfans"), 1);
    assert_eq!(count(ConnectionEventKind::DataDeleted, "instagram"), 1);
    assert_eq!(new.len(), 6, "{new:?}");
}
