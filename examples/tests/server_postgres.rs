//! The example server on PostgreSQL (`DATABASE_URL`-style URL, a schema of its own):
//! connect, status, refresh, cross-user 404, disconnect over real HTTP.
//!
//! The server comes from `INTEGRATIONS_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); unreachable fails the test unless
//! `INTEGRATIONS_SKIP_POSTGRES=1`.

mod support;

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use integrations_examples::server::ServerConfig;
use integrations_sandbox::Platform;
use integrations_storage_diesel::StoreOptions;
use support::{Client, start};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

#[tokio::test]
async fn the_api_on_postgresql() {
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
    let mut suffix = [0u8; 8];
    rand_bytes(&mut suffix);
    let schema = format!("examples_server_{}", hex::encode(suffix));

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
    let sandbox = server.sandbox().unwrap();
    let alice = Client::signed_in(&server, 1).await;
    let bob = Client::signed_in(&server, 2).await;

    alice.connect("reddit", "alice").await;
    alice.connect("instagram", "alice").await;
    let status = alice.status().await;
    assert_eq!(status.len(), 2);
    assert!(status.iter().all(|v| v["isConnected"] == true));
    let reddit = sandbox.user_info(Platform::Reddit, "alice").account_id;

    let resp = alice
        .post(&format!("/api/integrations/refresh/reddit/{reddit}"))
        .await;
    assert_eq!(resp.status(), 200);
    let resp = bob
        .delete(&format!("/api/integrations/disconnect/reddit/{reddit}"))
        .await;
    assert_eq!(resp.status(), 404);
    let resp = alice
        .delete(&format!("/api/integrations/disconnect/reddit/{reddit}"))
        .await;
    assert_eq!(resp.status(), 200);
    let status = alice.status().await;
    assert_eq!(status.len(), 1);
    assert_eq!(status[0]["provider"], "instagram");

    server.shutdown().await;
    admin
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .expect("drop the test schema");
}

fn rand_bytes(out: &mut [u8]) {
    // The standard library's randomly seeded hasher is enough for a schema name.
    use std::hash::{BuildHasher, RandomState};
    for chunk in out.chunks_mut(8) {
        let v = RandomState::new().hash_one(std::time::SystemTime::now());
        chunk.copy_from_slice(&v.to_le_bytes()[..chunk.len()]);
    }
}
