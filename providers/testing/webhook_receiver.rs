//! The host's side of platform webhooks in the provider crates' tests: a local HTTP
//! route passing each raw request to `Integrations::handle_platform_webhook`, as a host's
//! route does, and recording what it answered. Included by each crate's
//! `tests/webhooks.rs` (`#[path]`), so the crates test alike.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use integrations_core::platform_webhooks::WebhookMethod;
use integrations_core::{
    Integrations, WebhookAnswer, WebhookReceipt, WebhookRequest, WebhookRoute,
};
use std::sync::{Arc, Mutex};

/// What the receiver answered, per request.
pub(crate) type Answers = Arc<Mutex<Vec<(u16, Vec<WebhookReceipt>)>>>;

#[derive(Clone)]
pub(crate) struct Receiver {
    integrations: Integrations,
    answers: Answers,
}

/// The host's route: the raw request to `handle_platform_webhook`, the answer back.
async fn receive(
    State(r): State<Receiver>,
    Path(provider): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let method = if method == Method::GET {
        WebhookMethod::Get
    } else {
        WebhookMethod::Post
    };
    let request = WebhookRequest {
        route: WebhookRoute::Events,
        method,
        query: uri.query().unwrap_or_default(),
        headers: &headers,
        body: &body,
        now: Utc::now(),
    };
    let (status, receipts, reply) = match r
        .integrations
        .handle_platform_webhook(&provider, request)
        .await
    {
        Ok(WebhookAnswer::Acknowledged { receipts }) => (StatusCode::OK, receipts, "ok".to_owned()),
        Ok(WebhookAnswer::Challenge(c)) => (StatusCode::OK, Vec::new(), c),
        Ok(WebhookAnswer::DataDeletion { receipt }) => {
            (StatusCode::OK, vec![receipt], String::new())
        }
        Err(e) => (e.http_status(), Vec::new(), e.code().to_owned()),
    };
    r.answers.lock().unwrap().push((status.as_u16(), receipts));
    (status, reply).into_response()
}

pub(crate) async fn start_receiver(integrations: Integrations) -> (String, Answers) {
    let answers = Answers::default();
    let app = axum::Router::new()
        .route("/webhooks/{provider}", axum::routing::any(receive))
        .with_state(Receiver {
            integrations,
            answers: answers.clone(),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/webhooks"), answers)
}
