//! TikTok Login Kit v2: `open.tiktokapis.com/v2/oauth/{token,revoke}/` and `/v2/user/info/`.
//!
//! Sources (cited again next to each behaviour):
//! - token: <https://developers.tiktok.com/doc/oauth-user-access-token-management> and
//!   <https://developers.tiktok.com/docs/en/oauth-refresh-a-user-access-token>
//! - revoke: <https://developers.tiktok.com/docs/en/oauth-revoke-a-user-access-token>
//! - token-endpoint errors: <https://developers.tiktok.com/doc/oauth-error-handling>
//! - user info: <https://developers.tiktok.com/doc/tiktok-api-v2-get-user-info>, errors
//!   <https://developers.tiktok.com/doc/tiktok-api-v2-error-handling>
//! - reference client: repo `pilcrowonpaper/arctic` `src/providers/tiktok.ts`
//!
//! The contract is `providers/sandbox/CONTRACT-tiktok.md`.

use crate::Platform;
use crate::common::{bearer, json, secs};
use crate::state::{AccessCheck, Inner, TokenKind};
use crate::util::{parse_form, random_hex, random_token, s256_base64url, s256_hex};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;

const P: Platform = Platform::TikTok;

fn log_id() -> String {
    format!(
        "{}{}",
        chrono::Utc::now().format("%Y%m%d%H%M%S"),
        random_hex(10).to_uppercase()
    )
}

/// Token-endpoint error `{"error", "error_description", "log_id"}` ("Error struct" on
/// <https://developers.tiktok.com/doc/oauth-error-handling>). The page gives no HTTP status;
/// the sandbox sends 401 for `invalid_client` and 400 otherwise (RFC 6749 §5.2) [U].
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json(
        status,
        json!({"error": error, "error_description": description, "log_id": log_id()}),
    )
}

/// API error envelope `{"data": {}, "error": {"code", "message", "log_id"}}`; codes and their
/// HTTP statuses from <https://developers.tiktok.com/doc/tiktok-api-v2-error-handling>.
fn api_error(status: StatusCode, code: &str, message: &str) -> Response {
    json(
        status,
        json!({"data": {}, "error": {"code": code, "message": message, "log_id": log_id()}}),
    )
}

/// Whether a PKCE verifier matches a challenge: base64url S256 (RFC 7636 §4.2, as arctic's
/// `createS256CodeChallenge` sends), or — if the challenge was sent as 64 hex digits — hex
/// S256 (the encoding in some TikTok desktop docs, <https://developers.tiktok.com/doc/login-kit-desktop>) [U].
pub(crate) fn pkce_matches(challenge: &str, verifier: &str) -> bool {
    if s256_base64url(verifier) == challenge {
        return true;
    }
    challenge.len() == 64
        && challenge.bytes().all(|b| b.is_ascii_hexdigit())
        && s256_hex(verifier).eq_ignore_ascii_case(challenge)
}

/// `POST /tiktok/open/v2/oauth/token/`, form-encoded: `client_key`, `client_secret`,
/// `grant_type`, then `code`, `redirect_uri`, `code_verifier` (authorization_code) or
/// `refresh_token` (refresh_token). Request and response fields:
/// <https://developers.tiktok.com/doc/oauth-user-access-token-management> and
/// <https://developers.tiktok.com/docs/en/oauth-refresh-a-user-access-token>.
pub(crate) async fn token(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    let f = parse_form(&body);
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
    let grant_type = get("grant_type");
    let ps = inner.platform(P);
    if grant_type == "refresh_token" {
        ps.refresh_calls.fetch_add(1, Ordering::Relaxed);
    }
    let client_key = get("client_key");
    if inner
        .authenticate(P, client_key, get("client_secret"))
        .is_none()
    {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client key or secret is invalid.",
        );
    }
    let now = inner.now_ms();
    let access_ttl = ps.access_ttl();
    let refresh_exp = ps.refresh_expiry(now);
    let access = random_token("act.", 48);
    let refresh = random_token("rft.", 48);
    let (user, scopes) = match grant_type {
        "authorization_code" => {
            let code = get("code");
            if code.is_empty() {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "The code parameter is missing.",
                );
            }
            let mut store = ps.lock();
            let Some(c) = store.codes.get_mut(code) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Authorization code is invalid.",
                );
            };
            // `invalid_grant`: "authorization grant ... is invalid, expired, revoked, does not
            // match the redirection URI used in the authorization request, or was issued to
            // another client" (https://developers.tiktok.com/doc/oauth-error-handling).
            // `code_verifier` is checked whenever the authorize request carried a challenge.
            let failure = if c.client_id != client_key {
                Some("Authorization code was issued to another client.")
            } else if c.used {
                Some("Authorization code has been used.")
            } else if c.expires_at <= now {
                Some("Authorization code is expired.")
            } else if c.redirect_uri != get("redirect_uri") {
                Some("Redirect URI does not match the authorization request.")
            } else if c
                .challenge
                .as_deref()
                .is_some_and(|ch| !pkce_matches(ch, get("code_verifier")))
            {
                Some("Code verifier is invalid.")
            } else {
                None
            };
            if let Some(d) = failure {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", d);
            }
            c.used = true;
            let (user, scopes) = (c.user.clone(), c.scopes.clone());
            let grant = store.new_grant(client_key, &user, scopes.clone());
            store.issue_access(grant, access.clone(), now, access_ttl, TokenKind::Normal);
            store.set_refresh(grant, refresh.clone(), refresh_exp);
            (user, scopes)
        }
        "refresh_token" => {
            let rt = get("refresh_token");
            if rt.is_empty() {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "The refresh_token parameter is missing.",
                );
            }
            let mut store = ps.lock();
            let Some(&grant) = store.refresh.get(rt) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Refresh token is invalid or expired.",
                );
            };
            let Some(g) = store.grants.get(&grant) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Refresh token is invalid or expired.",
                );
            };
            if g.client_id != client_key || g.revoked {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Refresh token is invalid or expired.",
                );
            }
            if g.refresh_expires_at.is_some_and(|e| e <= now) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Refresh token is expired.",
                );
            }
            let (user, scopes) = (g.user.clone(), g.scopes.clone());
            // Rotation: "a successful refresh request will return a new refresh_token in
            // place of the one you sent. The previous refresh token stops working"
            // (https://developers.tiktok.com/docs/en/oauth-refresh-a-user-access-token).
            store.set_refresh(grant, refresh.clone(), refresh_exp);
            store.issue_access(grant, access.clone(), now, access_ttl, TokenKind::Normal);
            if let Some(g) = store.grants.get_mut(&grant) {
                g.refreshes += 1;
            }
            drop(store);
            ps.refresh_ok.fetch_add(1, Ordering::Relaxed);
            (user, scopes)
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "The grant type is not supported.",
            );
        }
    };
    // Response struct: open_id, scope (comma-separated), access_token, expires_in,
    // refresh_token, refresh_expires_in, token_type "Bearer"
    // (https://developers.tiktok.com/doc/oauth-user-access-token-management). A refresh
    // token set to never expire (sandbox control) still reports a finite 365 days.
    let refresh_secs = refresh_exp.map(|e| secs(e - now)).unwrap_or(31_536_000);
    json(
        StatusCode::OK,
        json!({
            "access_token": access,
            "expires_in": secs(access_ttl),
            "open_id": crate::users::tiktok_open_id(&user),
            "refresh_expires_in": refresh_secs,
            "refresh_token": refresh,
            "scope": scopes.join(","),
            "token_type": "Bearer",
        }),
    )
}

/// `POST /tiktok/open/v2/oauth/revoke/`: revokes the whole authorization; 200, empty body.
///
/// <https://developers.tiktok.com/docs/en/oauth-revoke-a-user-access-token>: form
/// `client_key`, `client_secret`, `token` (the user access token); "Revokes a user access
/// token and disconnects your app from the user's TikTok account"; "A successful request
/// returns an empty response body" (its example shows `{}`). The sandbox also accepts the
/// refresh token as `token`, and answers 200 for an unknown token (the page's error example
/// was not read) [U].
pub(crate) async fn revoke(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    let f = parse_form(&body);
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
    let client_key = get("client_key");
    if inner
        .authenticate(P, client_key, get("client_secret"))
        .is_none()
    {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client key or secret is invalid.",
        );
    }
    let token = get("token");
    if token.is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The token parameter is missing.",
        );
    }
    let mut store = inner.platform(P).lock();
    let grant = store
        .access
        .get(token)
        .map(|e| e.grant)
        .or_else(|| store.refresh.get(token).copied());
    if let Some(g) = grant
        && store
            .grants
            .get(&g)
            .is_some_and(|g| g.client_id == client_key)
    {
        store.remove_grant(g);
    }
    drop(store);
    StatusCode::OK.into_response()
}

/// `GET /tiktok/open/v2/user/info/?fields=...` with `Authorization: Bearer`.
///
/// <https://developers.tiktok.com/doc/tiktok-api-v2-get-user-info>: `fields` is required;
/// the reply is `{"data": {"user": {...}}, "error": {"code": "ok", "message": "", "log_id"}}`.
/// Error codes/statuses from <https://developers.tiktok.com/doc/tiktok-api-v2-error-handling>:
/// `access_token_invalid` 401, `invalid_params` 400, `scope_not_authorized` 401 (the page
/// also lists `scope_permission_missed` 400, "some fields need additional scopes"; the
/// sandbox uses `scope_not_authorized` for a field outside the granted scopes [U]).
pub(crate) async fn user_info(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let invalid = || {
        api_error(
            StatusCode::UNAUTHORIZED,
            "access_token_invalid",
            "The access token is invalid or not found in the request.",
        )
    };
    let Some(token) = bearer(&headers) else {
        return invalid();
    };
    let now = inner.now_ms();
    let check = inner.platform(P).lock().check_access(token, now);
    let AccessCheck::Valid { user, scopes, .. } = check else {
        return invalid();
    };
    let q = parse_form(query.unwrap_or_default().as_bytes());
    let fields = q.get("fields").map(String::as_str).unwrap_or_default();
    if fields.trim().is_empty() {
        return api_error(
            StatusCode::BAD_REQUEST,
            "invalid_params",
            "The fields parameter is required.",
        );
    }
    let all = crate::users::tiktok_fields(inner.base_url(), &user);
    let mut out = serde_json::Map::new();
    for f in fields.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let Some((name, scope, value)) = all.iter().find(|(n, _, _)| *n == f) else {
            return api_error(
                StatusCode::BAD_REQUEST,
                "invalid_params",
                &format!("Invalid field: {f}"),
            );
        };
        if !scopes.iter().any(|s| s == scope) {
            return api_error(
                StatusCode::UNAUTHORIZED,
                "scope_not_authorized",
                &format!(
                    "The user did not authorize the scope required for field {name} ({scope})."
                ),
            );
        }
        out.insert((*name).to_owned(), value.clone());
    }
    json(
        StatusCode::OK,
        json!({"data": {"user": out}, "error": {"code": "ok", "message": "", "log_id": log_id()}}),
    )
}
