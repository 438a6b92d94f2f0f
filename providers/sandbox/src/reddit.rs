//! Reddit OAuth2: `www.reddit.com/api/v1/{access_token,revoke_token}` and
//! `oauth.reddit.com/api/v1/me`.

use crate::Platform;
use crate::common::{basic, bearer, json, secs};
use crate::state::{AccessCheck, Inner, RegisteredClient, TokenKind};
use crate::util::{parse_form, random_token};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;

const P: Platform = Platform::Reddit;

/// User-Agent prefixes of generic HTTP libraries that Reddit throttles.
const GENERIC_AGENTS: &[&str] = &[
    "reqwest",
    "python-requests",
    "python-urllib",
    "python-httpx",
    "aiohttp",
    "curl/",
    "wget/",
    "go-http-client",
    "okhttp",
    "java/",
    "apache-httpclient",
    "node-fetch",
    "axios/",
    "undici",
    "hyper/",
    "libwww-perl",
];

/// Whether a User-Agent is "unique and descriptive" enough: present, at least 8 characters,
/// and not a bare HTTP-library default.
pub(crate) fn descriptive_user_agent(headers: &HeaderMap) -> bool {
    let Some(ua) = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let ua = ua.trim();
    let lower = ua.to_ascii_lowercase();
    ua.len() >= 8 && !GENERIC_AGENTS.iter().any(|g| lower.starts_with(g))
}

/// Reddit's throttling reply to a missing or generic User-Agent: 429 with its JSON body.
fn too_many() -> Response {
    let mut r = json(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"message": "Too Many Requests", "error": 429}),
    );
    r.headers_mut()
        .insert("x-ratelimit-reset", HeaderValue::from_static("600"));
    r
}

fn unauthorized_basic() -> Response {
    let mut r = json(
        StatusCode::UNAUTHORIZED,
        json!({"message": "Unauthorized", "error": 401}),
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"reddit\""),
    );
    r
}

fn client(inner: &Inner, headers: &HeaderMap) -> Option<RegisteredClient> {
    let (id, secret) = basic(headers)?;
    inner.authenticate(P, &id, &secret)
}

/// `POST /reddit/www/api/v1/access_token` (HTTP Basic client auth).
pub(crate) async fn access_token(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !descriptive_user_agent(&headers) {
        return too_many();
    }
    let f = parse_form(&body);
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
    let ps = inner.platform(P);
    let grant_type = get("grant_type");
    if grant_type == "refresh_token" {
        ps.refresh_calls.fetch_add(1, Ordering::Relaxed);
    }
    let Some(client) = client(&inner, &headers) else {
        return unauthorized_basic();
    };
    let now = inner.now_ms();
    let ttl = ps.access_ttl();
    let access = random_token("", 40);
    // The code-exchange errors are HTTP 200 on Reddit (PRAW: "Why are these OKAY responses?").
    let ok_error = |e: &str| json(StatusCode::OK, json!({ "error": e }));
    match grant_type {
        "authorization_code" => {
            let code = get("code");
            if code.is_empty() {
                return ok_error("invalid_request");
            }
            let refresh = random_token(&format!("{}-", now / 1000 % 100_000_000), 20);
            let mut store = ps.lock();
            let Some(c) = store.codes.get_mut(code) else {
                return ok_error("invalid_grant");
            };
            if c.client_id != client.client_id
                || c.used
                || c.expires_at <= now
                || c.redirect_uri != get("redirect_uri")
            {
                return ok_error("invalid_grant");
            }
            c.used = true;
            let c = c.clone();
            let grant = store.new_grant(&client.client_id, &c.user, c.scopes.clone());
            store.issue_access(grant, access.clone(), now, ttl, TokenKind::Normal);
            let mut body = json!({
                "access_token": access,
                "token_type": "bearer",
                "expires_in": secs(ttl),
                "scope": c.scopes.join(" "),
            });
            if c.permanent {
                store.set_refresh(grant, refresh.clone(), ps.refresh_expiry(now));
                body["refresh_token"] = json!(refresh);
            }
            drop(store);
            json(StatusCode::OK, body)
        }
        "refresh_token" => {
            let rt = get("refresh_token");
            if rt.is_empty() {
                return json(StatusCode::BAD_REQUEST, json!({"error": "invalid_request"}));
            }
            let invalid = || json(StatusCode::BAD_REQUEST, json!({"error": "invalid_grant"}));
            let mut store = ps.lock();
            let Some(&grant) = store.refresh.get(rt) else {
                return invalid();
            };
            let Some(g) = store.grants.get_mut(&grant) else {
                return invalid();
            };
            if g.client_id != client.client_id
                || g.revoked
                || g.refresh_expires_at.is_some_and(|e| e <= now)
            {
                return invalid();
            }
            g.refreshes += 1;
            let scope = g.scopes.join(" ");
            store.issue_access(grant, access.clone(), now, ttl, TokenKind::Normal);
            drop(store);
            ps.refresh_ok.fetch_add(1, Ordering::Relaxed);
            // Reddit keeps the refresh token: none in the reply.
            json(
                StatusCode::OK,
                json!({
                    "access_token": access,
                    "token_type": "bearer",
                    "expires_in": secs(ttl),
                    "scope": scope,
                }),
            )
        }
        _ => ok_error("unsupported_grant_type"),
    }
}

/// `POST /reddit/www/api/v1/revoke_token`: 204 even for unknown tokens.
pub(crate) async fn revoke_token(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !descriptive_user_agent(&headers) {
        return too_many();
    }
    let Some(client) = client(&inner, &headers) else {
        return unauthorized_basic();
    };
    let f = parse_form(&body);
    let token = f.get("token").map(String::as_str).unwrap_or_default();
    let mut store = inner.platform(P).lock();
    if let Some(&grant) = store.refresh.get(token) {
        if store
            .grants
            .get(&grant)
            .is_some_and(|g| g.client_id != client.client_id)
        {
            return json(
                StatusCode::BAD_REQUEST,
                json!({"error": "unauthorized_client"}),
            );
        }
        // revoking a refresh token revokes its access tokens too
        store.remove_grant(grant);
    } else if let Some(grant) = store.access.get(token).map(|e| e.grant) {
        if store
            .grants
            .get(&grant)
            .is_some_and(|g| g.client_id != client.client_id)
        {
            return json(
                StatusCode::BAD_REQUEST,
                json!({"error": "unauthorized_client"}),
            );
        }
        store.access.remove(token);
        if let Some(g) = store.grants.get_mut(&grant) {
            g.access_tokens.retain(|t| t != token);
        }
    }
    drop(store);
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /reddit/oauth/api/v1/me` with `Authorization: bearer`.
pub(crate) async fn me(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    if !descriptive_user_agent(&headers) {
        return too_many();
    }
    let unauthorized = || {
        let mut r = json(
            StatusCode::UNAUTHORIZED,
            json!({"message": "Unauthorized", "error": 401}),
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"reddit\", error=\"invalid_token\""),
        );
        r
    };
    let Some(token) = bearer(&headers) else {
        return unauthorized();
    };
    let now = inner.now_ms();
    let check = inner.platform(P).lock().check_access(token, now);
    let AccessCheck::Valid { user, scopes, .. } = check else {
        return unauthorized();
    };
    if !scopes.iter().any(|s| s == "identity" || s == "*") {
        let mut r = json(
            StatusCode::FORBIDDEN,
            json!({"message": "Forbidden", "error": 403}),
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"reddit\", error=\"insufficient_scope\""),
        );
        return r;
    }
    let mut r = json(
        StatusCode::OK,
        crate::users::reddit_me(inner.base_url(), &user),
    );
    let h = r.headers_mut();
    h.insert("x-ratelimit-used", HeaderValue::from_static("1"));
    h.insert("x-ratelimit-remaining", HeaderValue::from_static("99.0"));
    h.insert("x-ratelimit-reset", HeaderValue::from_static("600"));
    r
}
