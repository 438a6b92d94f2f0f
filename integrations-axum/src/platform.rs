//! The routes platforms call: `/webhooks/{provider}` (handshakes and deliveries) and
//! `/data-deletion/{provider}` (Meta's Data Deletion Request callback, and the request's
//! status page). No user session: the platform's signature is the authentication, which
//! [`Integrations::handle_platform_webhook`] checks.

use crate::api::{ApiError, ApiPath, ApiState};
use axum::Json;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use integrations_core::platform_webhooks::{
    MAX_BODY_BYTES, WebhookAnswer, WebhookMethod, WebhookRefusal, WebhookRequest, WebhookRoute,
};
use integrations_core::{Error, Integrations, WebhookReceipt};
use serde_json::json;

/// `GET|POST /webhooks/{provider}`.
pub(crate) async fn events(
    State(state): State<ApiState>,
    ApiPath(provider): ApiPath<String>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    receive(
        &state,
        &provider,
        WebhookRoute::Events,
        method,
        query,
        headers,
        body,
    )
    .await
}

/// `POST /data-deletion/{provider}`.
pub(crate) async fn data_deletion(
    State(state): State<ApiState>,
    ApiPath(provider): ApiPath<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    receive(
        &state,
        &provider,
        WebhookRoute::DataDeletion,
        Method::POST,
        query,
        headers,
        body,
    )
    .await
}

async fn receive(
    state: &ApiState,
    provider: &str,
    route: WebhookRoute,
    method: Method,
    query: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let integrations = &state.integrations;
    let refuse = |r: WebhookRefusal| {
        ApiError::from_service(&Error::WebhookRefused(r), integrations.now()).into_response()
    };
    let method = match method {
        Method::GET => WebhookMethod::Get,
        Method::POST => WebhookMethod::Post,
        _ => return refuse(WebhookRefusal::Method),
    };
    // Read one byte past the limit, so an oversized body is told from a full one.
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES + 1).await {
        Ok(b) if b.len() <= MAX_BODY_BYTES => b,
        _ => return refuse(WebhookRefusal::TooLarge(MAX_BODY_BYTES)),
    };
    let request = WebhookRequest {
        route,
        method,
        query: query.as_deref().unwrap_or_default(),
        headers: &headers,
        body: &body,
        now: integrations.now(),
    };
    match integrations
        .handle_platform_webhook(provider, request)
        .await
    {
        Ok(WebhookAnswer::Challenge(challenge)) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            challenge,
        )
            .into_response(),
        Ok(WebhookAnswer::Acknowledged { receipts }) => Json(json!({
            "success": true,
            "received": receipts.len(),
        }))
        .into_response(),
        Ok(WebhookAnswer::DataDeletion { receipt }) => {
            let code = receipt.confirmation_code.unwrap_or_default();
            let url = status_url(state, provider, &headers, &code);
            Json(json!({ "url": url, "confirmation_code": code })).into_response()
        }
        Err(e) => ApiError::from_service(&e, integrations.now()).into_response(),
    }
}

/// The absolute URL of a deletion request's status page: the configured public origin,
/// else the request's `Host` (over `https` unless it is a loopback address).
fn status_url(state: &ApiState, provider: &str, headers: &HeaderMap, code: &str) -> String {
    let origin = match &state.public_origin {
        Some(origin) => origin.to_string(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| {
                    !h.is_empty()
                        && h.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
                })
                .unwrap_or("localhost");
            let local = host.starts_with("127.") || host.starts_with("localhost");
            format!("{}://{host}", if local { "http" } else { "https" })
        }
    };
    format!(
        "{}{}/data-deletion/{provider}?code={code}",
        origin.trim_end_matches('/'),
        state.api_base
    )
}

/// `GET /data-deletion/{provider}?code=…`: the human-readable status of a deletion
/// request. Public (Meta's rule: no login), and it shows no personal data.
pub(crate) async fn deletion_status(
    State(state): State<ApiState>,
    ApiPath(provider): ApiPath<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let code = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    match lookup(&state.integrations, &provider, &code).await {
        Ok(Some(receipt)) => Html(status_page(&receipt)).into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            Html(page(
                "Deletion request not found",
                "<p>No data deletion request has this confirmation code. Codes are kept \
                 for 180 days after the request.</p>",
            )),
        )
            .into_response(),
        Err(e) => ApiError::from_service(&e, state.integrations.now()).into_response(),
    }
}

async fn lookup(
    integrations: &Integrations,
    provider: &str,
    code: &str,
) -> Result<Option<WebhookReceipt>, Error> {
    Ok(integrations
        .data_deletion_status(code)
        .await?
        .filter(|r| r.provider.as_str() == provider))
}

fn status_page(receipt: &WebhookReceipt) -> String {
    let code = crate::page::escape(receipt.confirmation_code.as_deref().unwrap_or_default());
    let when = receipt.received_at.format("%Y-%m-%d %H:%M UTC");
    let what = if receipt.outcome == "deleted" {
        "The connection and the data this app stored for it (its tokens and profile) were \
         deleted."
    } else {
        "This app stored no data for this account, so there was nothing to delete."
    };
    page(
        "Data deletion request: completed",
        &format!(
            "<p>Confirmation code <code>{code}</code>, received {when}.</p>\
             <p><strong>Status: completed.</strong> {what}</p>"
        ),
    )
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title></head><body><main><h1>{title}</h1>{body}</main></body></html>"
    )
}
