//! A host's webhook endpoint for connection events: verifies each request's Standard
//! Webhooks signature over the raw body, drops duplicates by `webhook-id`, and prints the
//! event. See `docs/events.md`.
//!
//! ```text
//! WEBHOOK_SECRET=whsec_... cargo run -p integrations-examples --bin webhook_receiver
//! ```
//!
//! - `WEBHOOK_SECRET` (required): the endpoint's secret, `whsec_<base64>`; during a
//!   rotation, the new and the old one separated by a space.
//! - `WEBHOOK_RECEIVER_ADDR`: where to listen (default `127.0.0.1:4000`); events are
//!   accepted at `POST /hooks/integrations`.
//!
//! A real host would record the id and act on the event in one transaction (for example
//! email the user of a `connection.needs_reconnect`), and answer quickly: the deliverer
//! waits 15 s at most, and an event whose answer comes later is sent again.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use integrations_core::webhooks::{WebhookSecret, verify};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Receiver {
    secrets: Vec<WebhookSecret>,
    /// The ids handled (a real host keeps them in its database, as long as the sender
    /// retries: about 3 days).
    seen: Mutex<HashSet<String>>,
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let tolerance = Duration::from_secs(300);
    let verified = match verify(&r.secrets, &headers, &body, chrono::Utc::now(), tolerance) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("refused: {e}");
            return StatusCode::UNAUTHORIZED;
        }
    };
    if !r
        .seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(verified.id.clone())
    {
        // Already handled: a retry after an answer that did not arrive.
        return StatusCode::NO_CONTENT;
    }
    let event: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return StatusCode::BAD_REQUEST,
    };
    let data = &event["data"];
    println!(
        "{} {} user {} {}:{} {}",
        verified.id,
        event["type"].as_str().unwrap_or("?"),
        data["user_id"],
        data["provider"].as_str().unwrap_or("?"),
        data["provider_account_id"].as_str().unwrap_or("?"),
        data["payload"]
    );
    StatusCode::NO_CONTENT
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let Ok(raw) = std::env::var("WEBHOOK_SECRET") else {
        eprintln!("webhook_receiver: WEBHOOK_SECRET is not set (whsec_<base64>)");
        return std::process::ExitCode::from(2);
    };
    let secrets: Result<Vec<_>, _> = raw.split_whitespace().map(WebhookSecret::parse).collect();
    let secrets = match secrets {
        Ok(s) if !s.is_empty() => s,
        Ok(_) | Err(_) => {
            eprintln!(
                "webhook_receiver: WEBHOOK_SECRET must be whsec_ and base64 of 24 to 64 bytes"
            );
            return std::process::ExitCode::from(2);
        }
    };
    let addr = std::env::var("WEBHOOK_RECEIVER_ADDR").unwrap_or_else(|_| "127.0.0.1:4000".into());
    let receiver = Arc::new(Receiver {
        secrets,
        seen: Mutex::default(),
    });
    let app = axum::Router::new()
        .route("/hooks/integrations", axum::routing::post(receive))
        .with_state(receiver);
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("webhook_receiver: cannot listen on {addr}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("webhook_receiver: listening on http://{addr}/hooks/integrations");
    match axum::serve(listener, app).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("webhook_receiver: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
