//! The OnlyFans connection gateway (OFAuth-style link flow), as fixed in the shared
//! conventions: `POST /v2/link/init`, the hosted link page, `GET /v2/access/self`,
//! `DELETE /v2/access/connections/{id}`.

use crate::Platform;
use crate::common::json;
use crate::state::{AccessCheck, Code, Inner};
use crate::util::random_token;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

const P: Platform = Platform::OnlyFans;

/// Gateway error `{"error": {"code", "message"}}`.
fn gw_error(status: StatusCode, code: &str, message: &str) -> Response {
    json(status, json!({"error": {"code": code, "message": message}}))
}

/// The client id behind the `apikey` header, or the `INVALID_API_KEY` reply.
fn api_key(inner: &Inner, headers: &HeaderMap) -> Result<String, Response> {
    headers
        .get("apikey")
        .and_then(|v| v.to_str().ok())
        .and_then(|k| inner.api_key_client(k))
        .ok_or_else(|| {
            gw_error(
                StatusCode::UNAUTHORIZED,
                "INVALID_API_KEY",
                "The API key is missing or invalid.",
            )
        })
}

/// `POST /onlyfans/gateway/v2/link/init`.
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
            "INVALID_REQUEST",
            "The body must be JSON.",
        );
    };
    let Some(redirect) = req.get("redirectUrl").and_then(|v| v.as_str()) else {
        return gw_error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "redirectUrl is required.",
        );
    };
    let reference = req
        .get("clientReferenceId")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let registered = inner
        .client(P, &client_id)
        .is_some_and(|c| c.redirect_uris.iter().any(|u| u == redirect));
    if !registered {
        return gw_error(
            StatusCode::BAD_REQUEST,
            "INVALID_REDIRECT_URL",
            "redirectUrl is not an allowed redirect URL for this API key.",
        );
    }
    let now = inner.now_ms();
    let expires_at = now.saturating_add(inner.code_ttl());
    let session = random_token("lnk_", 24).replace('-', "x");
    inner.platform(P).lock().insert_code(
        session.clone(),
        Code {
            client_id,
            redirect_uri: redirect.to_owned(),
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
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    json(
        StatusCode::OK,
        json!({
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
        return gw_error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "The x-connection-id header is required.",
        );
    };
    let now = inner.now_ms();
    let check = inner.platform(P).lock().check_access(conn, now);
    let not_found = || {
        gw_error(
            StatusCode::NOT_FOUND,
            "CONNECTION_NOT_FOUND",
            "No connection with this id.",
        )
    };
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
            "The connection's session has expired; the user must reconnect.",
        ),
        AccessCheck::Revoked { client_id: owner } if owner == client_id => gw_error(
            StatusCode::UNAUTHORIZED,
            "CONNECTION_EXPIRED",
            "The connection has expired; the user must reconnect.",
        ),
        _ => not_found(),
    }
}

/// `DELETE /onlyfans/gateway/v2/access/connections/{id}` → 204.
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
                .is_some_and(|g| g.client_id == client_id) =>
        {
            store.remove_grant(g);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => gw_error(
            StatusCode::NOT_FOUND,
            "CONNECTION_NOT_FOUND",
            "No connection with this id.",
        ),
    }
}
