//! The Integrations page and the demo sign-in page: plain HTML, CSS and a little
//! JavaScript embedded in the binary.

use super::AppState;
use super::cookie::user_of;
use super::session::local_path;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::SignedCookieJar;
use integrations_core::error as msg;
use serde::Deserialize;
use std::sync::OnceLock;

const PAGE: &str = include_str!("../../assets/integrations.html");
const SIGNIN: &str = include_str!("../../assets/signin.html");
const CSS: &str = include_str!("../../assets/integrations.css");
const JS: &str = include_str!("../../assets/integrations.js");

/// The user messages the page shows for an error code (the design's error table), so a
/// redirect carries only the code.
fn messages() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        let table = serde_json::json!({
            "cancelled": msg::MSG_CANCELLED,
            "authorization_failed": msg::MSG_INVALID_CREDENTIALS,
            "invalid_state": msg::MSG_INVALID_CREDENTIALS,
            "state_mismatch": msg::MSG_INVALID_CREDENTIALS,
            "state_expired": msg::MSG_INVALID_CREDENTIALS,
            "invalid_client": msg::MSG_INVALID_CREDENTIALS,
            "account_owned_by_another_user": msg::MSG_OWNED_ELSEWHERE,
            "not_found": msg::MSG_NOT_FOUND,
            "unknown_provider": msg::MSG_UNKNOWN_PROVIDER,
            "needs_reconnect": msg::MSG_RECONNECT,
            "invalid_grant": msg::MSG_RECONNECT,
            "rate_limited": msg::MSG_RATE_LIMITED,
            "provider_rate_limited": msg::MSG_RATE_LIMITED,
            "provider_unavailable": msg::MSG_NETWORK,
            "network": msg::MSG_NETWORK,
            "internal": msg::MSG_INTERNAL,
        });
        // Safe inside <script type="application/json">: no `<` survives.
        table.to_string().replace('<', "\\u003c")
    })
}

fn page_html() -> &'static str {
    static HTML: OnceLock<String> = OnceLock::new();
    HTML.get_or_init(|| PAGE.replace("{{MESSAGES}}", messages()))
}

fn html(body: &'static str) -> Response {
    let mut r = Html(body).into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' http://127.0.0.1:* https: data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    r
}

/// `GET /`: to the page.
pub(crate) async fn root() -> Redirect {
    Redirect::to("/integrations")
}

/// `GET /integrations`: the page, or the sign-in page first.
pub(crate) async fn integrations(State(_): State<AppState>, jar: SignedCookieJar) -> Response {
    if user_of(&jar).is_none() {
        return Redirect::to("/signin?next=/integrations").into_response();
    }
    html(page_html())
}

/// The sign-in page's query.
#[derive(Debug, Deserialize)]
pub(crate) struct SigninQuery {
    next: Option<String>,
}

/// `GET /signin`: the demo sign-in form.
pub(crate) async fn signin(Query(q): Query<SigninQuery>) -> Response {
    let next = local_path(q.next.as_deref());
    // `next` is a checked local path; encode it for the form's action attribute.
    let action: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
    let body = SIGNIN.replace("{{NEXT}}", &action);
    let mut r = Html(body).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `GET /assets/integrations.css`.
pub(crate) async fn css() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}

/// `GET /assets/integrations.js`.
pub(crate) async fn js() -> Response {
    asset(JS, "text/javascript; charset=utf-8")
}
