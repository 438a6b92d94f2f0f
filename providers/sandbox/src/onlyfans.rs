//! The OnlyFans connection gateway, in OFAuth's dialect as OFAuth documents it (not as
//! any client crate assumes it). Every wire fact, with its source, is listed in
//! `CONTRACT-onlyfans.md` beside this crate's `Cargo.toml`:
//!
//! - `POST /v2/link/init`: <https://docs.ofauth.com/api-reference/link/init>
//! - `GET /v2/access/self`: <https://docs.ofauth.com/api-reference/self/get-current-user>
//! - `DELETE /v2/account/connections/{connectionId}`:
//!   <https://docs.ofauth.com/api-reference/account/disconnect-connection>
//! - error bodies and types: <https://docs.ofauth.com/reference/error-handling>

use crate::Platform;
use crate::common::json;
use crate::state::{AccessCheck, Code, Inner};
use crate::util::{random_hex, random_token};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

const P: Platform = Platform::OnlyFans;

/// OFAuth's error body: `{"error": "<text for people>", "type": "<TYPE>", "requestId":
/// "req_…"}` (<https://docs.ofauth.com/reference/error-handling>, "Error Response Format").
pub(crate) fn gw_error(status: StatusCode, kind: &str, message: &str) -> Response {
    json(
        status,
        json!({
            "error": message,
            "type": kind,
            "requestId": format!("req_{}", random_hex(8)),
        }),
    )
}

/// `SESSION_NOT_PROVIDED` (401): "Connection not found or missing session data", the
/// documented answer for a missing or unknown `x-connection-id`.
fn session_not_provided() -> Response {
    gw_error(
        StatusCode::UNAUTHORIZED,
        "SESSION_NOT_PROVIDED",
        "Connection not found or missing session data. Re-authenticate user via Link.",
    )
}

/// The client id behind the `apikey` header (header names are case-insensitive; the docs
/// show both `apiKey` and `apikey`), or the documented `UNAUTHORIZED` (401) reply.
fn api_key(inner: &Inner, headers: &HeaderMap) -> Result<String, Response> {
    headers
        .get("apikey")
        .and_then(|v| v.to_str().ok())
        .and_then(|k| inner.api_key_client(k))
        .ok_or_else(|| {
            gw_error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "Missing or invalid API key.",
            )
        })
}

/// `POST /onlyfans/gateway/v2/link/init`: body `{redirectUrl?, clientReferenceId?,
/// connectionId?}`; `redirectUrl` must be one of the key's allowed redirect URIs and
/// defaults to the first one. Answers `{url, expiresAt, mode: "hosted"}`.
pub(crate) async fn link_init(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let client_id = match api_key(&inner, &headers) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let Ok(req) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return gw_error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "The body must be JSON.",
        );
    };
    let allowed = inner
        .client(P, &client_id)
        .map(|c| c.redirect_uris)
        .unwrap_or_default();
    let redirect = match req.get("redirectUrl") {
        None => allowed.first().cloned(),
        Some(v) => v
            .as_str()
            .filter(|r| allowed.iter().any(|u| u == r))
            .map(str::to_owned),
    };
    let Some(redirect) = redirect else {
        return gw_error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "redirectUrl is not one of the Allowed Redirect URIs.",
        );
    };
    let reference = match req.get("clientReferenceId") {
        None => None,
        Some(v) => match v.as_str() {
            Some(r) => Some(r.to_owned()),
            None => {
                return gw_error(
                    StatusCode::BAD_REQUEST,
                    "BAD_REQUEST",
                    "clientReferenceId must be a string.",
                );
            }
        },
    };
    let now = inner.now_ms();
    let expires_at = now.saturating_add(inner.code_ttl());
    let session = format!("cs_{}", random_token("", 24).replace(['-', '_'], "x"));
    inner.platform(P).lock().insert_code(
        session.clone(),
        Code {
            client_id,
            redirect_uri: redirect,
            user: String::new(),
            scopes: Vec::new(),
            challenge: None,
            expires_at,
            used: false,
            permanent: false,
            state: reference,
        },
        now,
    );
    let expires = chrono::DateTime::from_timestamp_millis(expires_at)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default();
    json(
        StatusCode::OK,
        json!({
            "mode": "hosted",
            "url": format!("{}/onlyfans/gateway/link/{session}", inner.base_url()),
            "expiresAt": expires,
        }),
    )
}

/// `GET /onlyfans/gateway/v2/access/self` with `apikey` and `x-connection-id`.
pub(crate) async fn access_self(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    let client_id = match api_key(&inner, &headers) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let Some(conn) = headers
        .get("x-connection-id")
        .and_then(|v| v.to_str().ok())
        .filter(|c| !c.is_empty())
    else {
        return session_not_provided();
    };
    let now = inner.now_ms();
    let check = inner.platform(P).lock().check_access(conn, now);
    match check {
        AccessCheck::Valid {
            user,
            client_id: owner,
            ..
        } if owner == client_id => json(
            StatusCode::OK,
            crate::users::onlyfans_self(inner.base_url(), &user),
        ),
        AccessCheck::Expired { client_id: owner } if owner == client_id => gw_error(
            StatusCode::UNAUTHORIZED,
            "SESSION_EXPIRED",
            "User session has expired. Re-authenticate user via Link.",
        ),
        // Deleted, revoked, unknown, or another key's connection.
        _ => session_not_provided(),
    }
}

/// `DELETE /onlyfans/gateway/v2/account/connections/{connectionId}` → 204 (the docs say
/// "Connection disconnected successfully" and list 204 for "no data to return"); a
/// connection this key does not have → 404 `RESOURCE_NOT_FOUND`.
pub(crate) async fn delete_connection(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let client_id = match api_key(&inner, &headers) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let mut store = inner.platform(P).lock();
    let grant = store.access.get(&id).map(|e| e.grant);
    match grant {
        Some(g)
            if store
                .grants
                .get(&g)
                .is_some_and(|g| g.client_id == client_id && !g.revoked) =>
        {
            store.remove_grant(g);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => gw_error(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_FOUND",
            "Requested resource not found.",
        ),
    }
}

/// Any other path under the gateway: 404 `ROUTE_NOT_FOUND` ("Endpoint path not found").
pub(crate) async fn route_not_found() -> Response {
    gw_error(
        StatusCode::NOT_FOUND,
        "ROUTE_NOT_FOUND",
        "Endpoint path not found.",
    )
}
