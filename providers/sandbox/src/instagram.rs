//! Instagram API with Instagram Login: `api.instagram.com/oauth/access_token` and
//! `graph.instagram.com/{access_token,refresh_access_token,me}`.
//!
//! Sources (cited again next to each behaviour):
//! - code exchange: <https://developers.facebook.com/docs/instagram-platform/reference/oauth-access-token>
//!   and the Business Login guide
//!   <https://developers.facebook.com/docs/instagram-platform/instagram-api-with-instagram-login/business-login>
//! - long-lived token: <https://developers.facebook.com/documentation/instagram-platform/reference/access_token>
//! - refresh: <https://developers.facebook.com/documentation/instagram-platform/reference/refresh_access_token>
//! - profile: <https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/ig-user>
//! - Graph error shape and codes: <https://developers.facebook.com/docs/graph-api/guides/error-handling>
//!
//! There is no token-revocation endpoint for Instagram Login (none is documented; users
//! remove the app and Meta calls the Deauthorize callback), so none is emulated. The
//! contract is `providers/sandbox/CONTRACT-instagram.md`.

use crate::Platform;
use crate::common::{bearer, json, secs};
use crate::state::{AccessCheck, Inner, TokenKind};
use crate::util::{parse_form, random_hex, random_token};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

const P: Platform = Platform::Instagram;

/// `error_message` for an unknown or already used authorization code [S].
const UNKNOWN_CODE: &str = "Matching code was not found or was already used";

/// The legacy flat error of `api.instagram.com/oauth/access_token`:
/// `{"error_type": "OAuthException", "code": 400, "error_message": "..."}` with HTTP 400
/// (shape seen in client reports of this endpoint, e.g. "Matching code was not found or was
/// already used" [S]; the reference page shows no error example).
fn flat_error(message: &str) -> Response {
    json(
        StatusCode::BAD_REQUEST,
        json!({"error_type": "OAuthException", "code": 400, "error_message": message}),
    )
}

/// The Graph API error shape `{"error": {"message", "type", "code", "error_subcode",
/// "fbtrace_id"}}`, HTTP 400
/// (<https://developers.facebook.com/docs/graph-api/guides/error-handling>). The
/// `WWW-Authenticate: OAuth "Facebook Platform" "invalid_token" ...` header on code 190 is
/// what Graph sends [S].
fn graph_error(code: u32, subcode: Option<u32>, message: &str) -> Response {
    let mut err = json!({
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": random_hex(11),
    });
    if let Some(s) = subcode {
        err["error_subcode"] = json!(s);
    }
    let mut r = json(StatusCode::BAD_REQUEST, json!({ "error": err }));
    if code == 190 {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(
                "OAuth \"Facebook Platform\" \"invalid_token\" \"Error validating access token\"",
            ),
        );
    }
    r
}

/// Dead tokens: code 190 with subcode 463 (expired) or 458 (app not installed / user removed
/// the app); codes and subcodes from
/// <https://developers.facebook.com/docs/graph-api/guides/error-handling>.
fn token_error(check: &AccessCheck) -> Response {
    match check {
        AccessCheck::Expired { .. } => graph_error(
            190,
            Some(463),
            "Error validating access token: Session has expired.",
        ),
        AccessCheck::Revoked => graph_error(
            190,
            Some(458),
            "Error validating access token: The user has not authorized application.",
        ),
        _ => graph_error(
            190,
            None,
            "Invalid OAuth access token - Cannot parse access token",
        ),
    }
}

/// `POST /instagram/api/oauth/access_token`: code → short-lived token.
///
/// Body `client_id`, `client_secret`, `grant_type=authorization_code`, `redirect_uri` ("must be
/// the same URI or we will reject the request"), `code`; reply `{"access_token", "user_id"}`
/// with `user_id` a JSON number
/// (<https://developers.facebook.com/docs/instagram-platform/reference/oauth-access-token>), or
/// the `{"data": [{access_token, user_id, permissions}]}` shape of the Business Login guide
/// when [`crate::SandboxConfig::instagram_data_array`] is set. The code lasts 1 hour and is
/// single-use (Business Login guide); the sandbox's code TTL is configurable (10 min default).
pub(crate) async fn access_token(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    let f = parse_form(&body);
    for field in [
        "client_id",
        "client_secret",
        "grant_type",
        "redirect_uri",
        "code",
    ] {
        if f.get(field).is_none_or(|v| v.is_empty()) {
            return flat_error(&format!("Missing required field {field}"));
        }
    }
    let client_id = &f["client_id"];
    if inner.client(P, client_id).is_none() {
        return flat_error("Invalid platform app");
    }
    if inner
        .authenticate(P, client_id, &f["client_secret"])
        .is_none()
    {
        return flat_error("Error validating client secret.");
    }
    if f["grant_type"] != "authorization_code" {
        return flat_error("Unsupported grant_type");
    }
    let now = inner.now_ms();
    let ps = inner.platform(P);
    let short_ttl = ps.short_ttl_ms.load(Ordering::Relaxed);
    let token = random_token("IGAA", 96);
    let (user, scopes) = {
        let mut store = ps.lock();
        // Unknown, another app's and already used codes: the message clients report from
        // this endpoint [S] (e.g. https://openillumi.com/?p=57909 quoting Stack Overflow).
        let Some(code) = store.codes.get_mut(&f["code"]) else {
            return flat_error(UNKNOWN_CODE);
        };
        if code.client_id != *client_id || code.used {
            return flat_error(UNKNOWN_CODE);
        }
        // Expired and misdirected codes: wording from Facebook Login's code exchange [U].
        if code.expires_at <= now {
            return flat_error("This authorization code has expired");
        }
        if code.redirect_uri != f["redirect_uri"] {
            return flat_error(
                "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request",
            );
        }
        code.used = true;
        let (user, scopes) = (code.user.clone(), code.scopes.clone());
        let grant = store.new_grant(client_id, &user, scopes.clone());
        store.issue_access(grant, token.clone(), now, short_ttl, TokenKind::Short);
        (user, scopes)
    };
    let user_id = crate::users::instagram_user_id(&user);
    if inner.config.instagram_data_array {
        json(
            StatusCode::OK,
            json!({"data": [{
                "access_token": token,
                "user_id": user_id.to_string(),
                "permissions": scopes.join(","),
            }]}),
        )
    } else {
        // serde_json writes u64 as an exact integer literal (no f64 round trip).
        json(
            StatusCode::OK,
            json!({"access_token": token, "user_id": user_id}),
        )
    }
}

fn query_token<'a>(q: &'a HashMap<String, String>, headers: &'a HeaderMap) -> Option<&'a str> {
    q.get("access_token")
        .map(String::as_str)
        .filter(|t| !t.is_empty())
        .or_else(|| bearer(headers))
}

/// `GET /instagram/graph/access_token?grant_type=ig_exchange_token`: short → long-lived.
///
/// Query `grant_type=ig_exchange_token`, `client_secret`, `access_token` (a valid short-lived
/// token); reply `{"access_token", "token_type": "bearer", "expires_in": 5184000}`
/// (<https://developers.facebook.com/documentation/instagram-platform/reference/access_token>).
/// The error codes for a wrong grant type / secret / token kind are the Graph codes of
/// <https://developers.facebook.com/docs/graph-api/guides/error-handling> (100 invalid
/// parameter, 1 unknown, 2500 no token); their messages are the sandbox's [U].
pub(crate) async fn exchange(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let q = parse_form(query.unwrap_or_default().as_bytes());
    if q.get("grant_type").map(String::as_str) != Some("ig_exchange_token") {
        return graph_error(
            100,
            None,
            "Unsupported grant type: expected ig_exchange_token",
        );
    }
    let Some(token) = query_token(&q, &headers) else {
        return graph_error(
            2500,
            None,
            "An active access token must be used to query information about the current user.",
        );
    };
    let Some(secret) = q.get("client_secret") else {
        return graph_error(100, None, "Missing client_secret parameter.");
    };
    let now = inner.now_ms();
    let ps = inner.platform(P);
    let ttl = ps.access_ttl();
    let mut store = ps.lock();
    let check = store.check_access(token, now);
    let AccessCheck::Valid {
        entry, client_id, ..
    } = &check
    else {
        return token_error(&check);
    };
    if inner.authenticate(P, client_id, secret).is_none() {
        return graph_error(1, None, "Error validating client secret.");
    }
    if entry.kind != TokenKind::Short {
        return graph_error(
            100,
            None,
            "(#100) ig_exchange_token expects a short-lived access token.",
        );
    }
    let long = random_token("IGAA", 120);
    store.issue_access(entry.grant, long.clone(), now, ttl, TokenKind::Long);
    drop(store);
    json(
        StatusCode::OK,
        json!({"access_token": long, "token_type": "bearer", "expires_in": secs(ttl)}),
    )
}

/// `GET /instagram/graph/refresh_access_token?grant_type=ig_refresh_token`.
///
/// Query `grant_type=ig_refresh_token`, `access_token` (long-lived); reply
/// `{"access_token", "token_type": "bearer", "expires_in"}`; only tokens "at least 24 hours
/// old" and unexpired can be refreshed, and the new token lasts 60 days from the refresh
/// (<https://developers.facebook.com/documentation/instagram-platform/reference/refresh_access_token>).
/// The error returned for a too-young token is not documented; the sandbox sends Graph code
/// 100 [U].
pub(crate) async fn refresh(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let ps = inner.platform(P);
    ps.refresh_calls.fetch_add(1, Ordering::Relaxed);
    let q = parse_form(query.unwrap_or_default().as_bytes());
    if q.get("grant_type").map(String::as_str) != Some("ig_refresh_token") {
        return graph_error(
            100,
            None,
            "Unsupported grant type: expected ig_refresh_token",
        );
    }
    let Some(token) = query_token(&q, &headers) else {
        return graph_error(
            2500,
            None,
            "An active access token must be used to query information about the current user.",
        );
    };
    let now = inner.now_ms();
    let ttl = ps.access_ttl();
    let min_age = crate::state::dur_ms(inner.config.instagram_min_refresh_age);
    let mut store = ps.lock();
    let check = store.check_access(token, now);
    let AccessCheck::Valid { entry, .. } = &check else {
        return token_error(&check);
    };
    if entry.kind != TokenKind::Long {
        return graph_error(
            100,
            None,
            "(#100) Only long-lived access tokens can be refreshed.",
        );
    }
    if now - entry.issued_at < min_age {
        return graph_error(
            100,
            None,
            "(#100) The access token is less than 24 hours old and cannot be refreshed yet.",
        );
    }
    let new = random_token("IGAA", 120);
    let grant = entry.grant;
    store.issue_access(grant, new.clone(), now, ttl, TokenKind::Long);
    if let Some(g) = store.grants.get_mut(&grant) {
        g.refreshes += 1;
    }
    drop(store);
    ps.refresh_ok.fetch_add(1, Ordering::Relaxed);
    json(
        StatusCode::OK,
        json!({"access_token": new, "token_type": "bearer", "expires_in": secs(ttl)}),
    )
}

/// `GET /instagram/graph/me` (and `/{version}/me`), token as `access_token` query parameter
/// or `Authorization: Bearer|OAuth` header.
///
/// Fields `id` (app-scoped), `user_id`, `username`, `name`, `account_type`,
/// `profile_picture_url`, `followers_count`, `follows_count`, `media_count`
/// (<https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/ig-user>
/// and the Business Login guide's "Get the user's profile" [S]). An unknown field gets code 100
/// and a token without `instagram_business_basic` gets code 10 (error-handling page codes).
pub(crate) async fn me(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let q = parse_form(query.unwrap_or_default().as_bytes());
    let Some(token) = query_token(&q, &headers) else {
        return graph_error(
            2500,
            None,
            "An active access token must be used to query information about the current user.",
        );
    };
    let now = inner.now_ms();
    let check = inner.platform(P).lock().check_access(token, now);
    let AccessCheck::Valid { user, scopes, .. } = &check else {
        return token_error(&check);
    };
    if !scopes.iter().any(|s| s == "instagram_business_basic") {
        return graph_error(
            10,
            None,
            "(#10) Application does not have permission for this action",
        );
    }
    let all = crate::users::instagram_fields(inner.base_url(), user);
    let mut out = serde_json::Map::new();
    let fields = q.get("fields").map(String::as_str).unwrap_or("id");
    for f in fields.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        match all.get(f) {
            Some(v) => {
                out.insert(f.to_owned(), v.clone());
            }
            None => {
                return graph_error(
                    100,
                    None,
                    &format!("(#100) Tried accessing nonexisting field ({f}) on node type (User)"),
                );
            }
        }
    }
    if !out.contains_key("id")
        && let Some(id) = all.get("id")
    {
        out.insert("id".into(), id.clone());
    }
    json(StatusCode::OK, serde_json::Value::Object(out))
}
