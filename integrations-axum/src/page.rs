//! The Integrations page: plain HTML, CSS and a little JavaScript embedded in the binary,
//! told where the API is and how to name things by [`PageConfig`].

use crate::PageConfig;
use crate::auth::Authenticate;
use axum::Router;
use axum::extract::{OriginalUri, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use integrations_core::error as msg;
use std::sync::{Arc, OnceLock};

const PAGE: &str = include_str!("../assets/integrations.html");
const CSS: &str = include_str!("../assets/integrations.css");
const JS: &str = include_str!("../assets/integrations.js");

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

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page with everything but its own path filled in.
fn template(config: &PageConfig) -> String {
    let nav: String = config
        .nav
        .iter()
        .map(|l| match &l.href {
            Some(href) => format!(
                "    <a class=\"topnav-item\" href=\"{}\">{}</a>\n",
                escape(href),
                escape(&l.label)
            ),
            None => format!(
                "    <span class=\"topnav-item\">{}</span>\n",
                escape(&l.label)
            ),
        })
        .collect();
    let session = match &config.sign_out_action {
        Some(action) => format!(
            "  <form class=\"session\" method=\"post\" action=\"{}\">\n    \
             <span id=\"who\" class=\"who\"></span>\n    \
             <button class=\"btn btn-ghost btn-small\" type=\"submit\">Sign out</button>\n  \
             </form>",
            escape(action)
        ),
        None => String::new(),
    };
    PAGE.replace("{{MESSAGES}}", messages())
        .replace("{{TITLE}}", &escape(&config.title))
        .replace("{{BRAND}}", &escape(&config.brand))
        .replace("{{NAV}}", &nav)
        .replace("{{SESSION}}", &session)
        .replace("{{API}}", &escape(&config.api_base))
        .replace(
            "{{SIGNIN}}",
            &escape(config.sign_in_url.as_deref().unwrap_or_default()),
        )
        .replace(
            "{{WHOAMI}}",
            &escape(config.whoami_url.as_deref().unwrap_or_default()),
        )
}

/// The headers of every HTML answer: no caching, a strict CSP without framing, no
/// sniffing, no referrer to other sites.
pub(crate) fn html_headers(r: &mut Response) {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' http://127.0.0.1:* https: data:; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'",
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
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

struct PageState {
    auth: Arc<dyn Authenticate>,
    template: String,
    sign_in_url: Option<String>,
}

pub(crate) fn router(auth: Arc<dyn Authenticate>, config: &PageConfig) -> Router {
    let state = Arc::new(PageState {
        auth,
        template: template(config),
        sign_in_url: config.sign_in_url.clone(),
    });
    Router::new()
        .route(
            "/",
            get(move |uri: OriginalUri, request: Request| page(state.clone(), uri, request)),
        )
        .route("/assets/integrations.css", get(css))
        .route("/assets/integrations.js", get(js))
}

/// The page's own path (where it is mounted), from the request's original URI.
fn page_path(uri: &OriginalUri) -> String {
    let path = uri.0.path();
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        trimmed.to_owned()
    }
}

/// `GET /`: the page for a signed-in user; otherwise the sign-in page (with `next`) or a
/// 401.
async fn page(state: Arc<PageState>, uri: OriginalUri, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    let base = page_path(&uri);
    if state.auth.user(&mut parts).await.is_none() {
        let next = if base.is_empty() {
            "/".to_owned()
        } else {
            base
        };
        let mut r = match &state.sign_in_url {
            Some(url) => {
                let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
                Redirect::to(&format!("{url}?next={next}")).into_response()
            }
            None => (
                StatusCode::UNAUTHORIZED,
                Html("<!doctype html><title>Sign in</title><p>Please sign in.</p>"),
            )
                .into_response(),
        };
        html_headers(&mut r);
        return r;
    }
    let page_url = if base.is_empty() {
        "/".to_owned()
    } else {
        base.clone()
    };
    let body = state
        .template
        .replace("{{BASE}}", &escape(&base))
        .replace("{{PAGE}}", &escape(&page_url));
    let mut r = Html(body).into_response();
    html_headers(&mut r);
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
async fn css() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}

/// `GET /assets/integrations.js`.
async fn js() -> Response {
    asset(JS, "text/javascript; charset=utf-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_text_is_escaped() {
        let html = template(&PageConfig {
            title: "Apps <&> \"you\"".into(),
            nav: vec![crate::NavLink {
                label: "<b>".into(),
                href: Some("/x?a=1&b=\"2\"".into()),
            }],
            ..PageConfig::default()
        });
        assert!(html.contains("<title>Apps &lt;&amp;&gt; &quot;you&quot;</title>"));
        assert!(html.contains("href=\"/x?a=1&amp;b=&quot;2&quot;\">&lt;b&gt;</a>"));
        assert!(!html.contains("{{TITLE}}") && !html.contains("{{NAV}}"));
        assert!(html.contains("{{BASE}}"), "filled per request");
    }
}
