//! Reddit OAuth2: `www.reddit.com/api/v1/{access_token,revoke_token}` and
//! `oauth.reddit.com/api/v1/me`.
//!
//! Reproduces Reddit's own server code, repo `reddit-archive/reddit`:
//! `r2/r2/controllers/oauth2.py` (`OAuth2AccessController`: client auth, grant types, error
//! bodies and statuses, revoke) and `r2/r2/lib/validator/validator.py`
//! (`VOAuth2RefreshToken`), plus the archived wiki pages
//! <https://github.com/reddit-archive/reddit/wiki/OAuth2> and
//! <https://github.com/reddit-archive/reddit/wiki/API> (User-Agent rule, `X-Ratelimit-*`).
//! The contract is `providers/sandbox/CONTRACT-reddit.md`.

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

/// User-Agent prefixes of generic HTTP libraries that Reddit throttles. The wiki
/// (<https://github.com/reddit-archive/reddit/wiki/API>, "Rules") requires a unique and
/// descriptive User-Agent and says default library agents are heavily limited; the exact
/// list and the 429 reply below are the sandbox's reading of that rule [U].
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
/// The body `{"message": "Too Many Requests", "error": 429}` is Reddit's generic JSON error
/// shape as seen by clients [S]; the quota layer adds the `X-Ratelimit-*` headers documented
/// on the API wiki page (the request counts in the window, as every API request does).
fn too_many() -> Response {
    json(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"message": "Too Many Requests", "error": 429}),
    )
}

/// Bad or missing client credentials on `access_token` / `revoke_token`:
/// `OAuth2AccessController._get_client_auth` does
/// `abort(401, headers=[("WWW-Authenticate", 'Basic realm="reddit"')])`
/// (reddit-archive/reddit r2/r2/controllers/oauth2.py). The JSON body is the generic shape [S].
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
///
/// `OAuth2AccessController.POST_access_token` in reddit-archive/reddit
/// r2/r2/controllers/oauth2.py: form body `grant_type`, `code`, `redirect_uri` /
/// `refresh_token`; success `{access_token, token_type, expires_in, scope}` plus
/// `refresh_token` only for a permanent grant's code (`_make_token_dict`). Only the
/// `authorization_code` and `refresh_token` grants are emulated; any other value gets the
/// server's `{"error": "unsupported_grant_type"}` (HTTP 200).
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
    // The code-exchange errors are HTTP 200 on Reddit: `api_wrapper(resp)` without a status
    // (reddit-archive/reddit r2/r2/controllers/oauth2.py; praw-dev/prawcore prawcore/auth.py
    // `_request_token`: "Why are these OKAY responses?").
    let ok_error = |e: &str| json(StatusCode::OK, json!({ "error": e }));
    match grant_type {
        "authorization_code" => {
            // `_access_token_code`: a missing `code` (NO_TEXT) or `redirect_uri` (VRequired)
            // is `invalid_request`; an unusable code is `invalid_grant` (`_make_token_dict(None)`),
            // both through `api_wrapper`, i.e. HTTP 200. Source: reddit-archive/reddit
            // r2/r2/controllers/oauth2.py.
            let code = get("code");
            if code.is_empty() || get("redirect_uri").is_empty() {
                return ok_error("invalid_request");
            }
            let refresh = random_token(&format!("{}-", now / 1000 % 100_000_000), 20);
            let mut store = ps.lock();
            let Some(c) = store.codes.get_mut(code) else {
                return ok_error("invalid_grant");
            };
            // `OAuth2AuthorizationCode.use_token(code, client_id, redirect_uri)` returns
            // nothing for another client's, a used, an expired or a misdirected code.
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
            // `auth_token.refreshable` (duration=permanent) → a refresh token in the reply.
            if c.permanent {
                store.set_refresh(grant, refresh.clone(), ps.refresh_expiry(now));
                body["refresh_token"] = json!(refresh);
            }
            drop(store);
            json(StatusCode::OK, body)
        }
        "refresh_token" => {
            // `_access_token_refresh`: a missing, unknown, revoked or other client's refresh
            // token all land in `c.errors` (NO_TEXT / OAUTH2_INVALID_REFRESH_TOKEN, see
            // `VOAuth2RefreshToken` in r2/r2/lib/validator/validator.py), and
            // `_check_for_errors` turns any of them into `{"error": "invalid_request"}` with
            // `response.status = 400`. Never `invalid_grant`. Source: reddit-archive/reddit
            // r2/r2/controllers/oauth2.py.
            let invalid = || json(StatusCode::BAD_REQUEST, json!({"error": "invalid_request"}));
            let rt = get("refresh_token");
            if rt.is_empty() {
                return invalid();
            }
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
            // `_make_token_dict(access_token)` without a refresh token: Reddit keeps the
            // refresh token and sends none (oauth2.py `_access_token_refresh`). prawcore
            // tolerates one if present (prawcore/auth.py `_request_token`).
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
        // `POST_access_token`'s final `else`: `api_wrapper({"error": "unsupported_grant_type"})`.
        _ => ok_error("unsupported_grant_type"),
    }
}

/// `POST /reddit/www/api/v1/revoke_token`: 204 even for unknown tokens.
///
/// `OAuth2AccessController.POST_revoke_token` in reddit-archive/reddit
/// r2/r2/controllers/oauth2.py (RFC 7009): form `token`, optional `token_type_hint`
/// (`access_token` | `refresh_token`); `response.status = 204` with no body for a revoked,
/// unknown or missing token; 400 `{"error": "unauthorized_client"}` when the token belongs to
/// another client. Revoking a refresh token revokes its access tokens
/// (`OAuth2RefreshToken.revoke` in r2/r2/models/token.py; prawcore/auth.py `Authorizer.revoke`
/// docstring).
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
///
/// Endpoint and `identity` scope: <https://www.reddit.com/dev/api#GET_api_v1_me> and the
/// OAuth2 wiki. The 401/403 bodies and `WWW-Authenticate` values are what clients see from
/// `oauth.reddit.com` [S]. The body fields follow repo `Pyprohly/reddit-api-doc-notes`
/// `docs/api-reference/user.rst` (see `users::reddit_me`).
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
    // The `X-Ratelimit-*` headers are added by the quota layer (`quota.rs`), from the
    // platform's live window, on this and every other Reddit API response.
    json(
        StatusCode::OK,
        crate::users::reddit_me(inner.base_url(), &user),
    )
}
