//! The Integrations page: plain HTML, CSS and a little JavaScript embedded in the binary,
//! told where the API is and how to name things by [`PageConfig`].
//!
//! The stylesheet and the script are served with a strong `ETag` (a hash of their
//! content, `304 Not Modified` on `If-None-Match`), gzip-compressed when the request's
//! `Accept-Encoding` allows it (compressed once, at first use). The page links them with
//! `?v=<hash>`: such a URL never changes content, so it is cached for a year.

use crate::PageConfig;
use crate::auth::Authenticate;
use axum::Router;
use axum::extract::{OriginalUri, RawQuery, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use integrations_core::error as msg;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::sync::{Arc, OnceLock};

const PAGE: &str = include_str!("../assets/integrations.html");
const CSS: &str = include_str!("../assets/integrations.css");
const JS: &str = include_str!("../assets/integrations.js");
const HEALTH_PAGE: &str = include_str!("../assets/health.html");

/// The assets served under `/assets/`: name, content, content type. The chart library is
/// the pinned npm release (`assets/vendor/README.md`).
const ASSETS: [(&str, &str, &str); 6] = [
    ("integrations.css", CSS, "text/css; charset=utf-8"),
    ("integrations.js", JS, "text/javascript; charset=utf-8"),
    (
        "health.css",
        include_str!("../assets/health.css"),
        "text/css; charset=utf-8",
    ),
    (
        "health.js",
        include_str!("../assets/health.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "vendor/uPlot.min.css",
        include_str!("../assets/vendor/uPlot.min.css"),
        "text/css; charset=utf-8",
    ),
    (
        "vendor/uPlot.iife.min.js",
        include_str!("../assets/vendor/uPlot.iife.min.js"),
        "text/javascript; charset=utf-8",
    ),
];

/// The pages' icon (the brand mark), inline: no `/favicon.ico` request, no 404.
pub(crate) const ICON: &str = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' \
viewBox='0 0 32 32'%3E%3ClinearGradient id='g' x2='1' y2='1'%3E%3Cstop offset='0' \
stop-color='%236366f1'/%3E%3Cstop offset='1' stop-color='%23ec4899'/%3E%3C/linearGradient%3E\
%3Crect width='32' height='32' rx='9' fill='url(%23g)'/%3E%3C/svg%3E";

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
    fill(PAGE, config).replace("{{MESSAGES}}", messages())
}

/// The Health page with everything but its own path filled in.
fn health_template(config: &PageConfig) -> String {
    fill(HEALTH_PAGE, config)
        .replace("{{HEALTH_CSS_VERSION}}", &Asset::get("health.css").version)
        .replace("{{HEALTH_JS_VERSION}}", &Asset::get("health.js").version)
        .replace(
            "{{UPLOT_CSS_VERSION}}",
            &Asset::get("vendor/uPlot.min.css").version,
        )
        .replace(
            "{{UPLOT_JS_VERSION}}",
            &Asset::get("vendor/uPlot.iife.min.js").version,
        )
}

/// Fills a page's placeholders from the configuration.
fn fill(page: &str, config: &PageConfig) -> String {
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
    page.replace("{{ICON}}", ICON)
        .replace("{{CSS_VERSION}}", &Asset::css().version)
        .replace("{{JS_VERSION}}", &Asset::js().version)
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
        auth: auth.clone(),
        template: template(config),
        sign_in_url: config.sign_in_url.clone(),
    });
    let health = Arc::new(PageState {
        auth,
        template: health_template(config),
        sign_in_url: config.sign_in_url.clone(),
    });
    Router::new()
        .route(
            "/",
            get(move |uri: OriginalUri, request: Request| page(state.clone(), uri, request)),
        )
        .route(
            "/health",
            get(move |uri: OriginalUri, request: Request| page(health.clone(), uri, request)),
        )
        .route("/assets/integrations.css", get(css))
        .route("/assets/integrations.js", get(js))
        .route("/assets/{file}", get(asset))
        .route("/assets/vendor/{file}", get(vendor_asset))
}

/// The page's own path (where it is mounted), from the request's original URI.
fn page_path(uri: &OriginalUri) -> String {
    let path = uri.0.path();
    let trimmed = path.trim_end_matches('/');
    // The Health page lives under the Integrations page.
    let trimmed = trimmed.strip_suffix("/health").unwrap_or(trimmed);
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

/// An embedded asset with its gzip form and validators, made once.
struct Asset {
    content_type: &'static str,
    body: &'static str,
    gzip: Vec<u8>,
    /// The first 16 hex digits of the content's SHA-256: the `?v=` of versioned URLs.
    version: String,
    /// `"<version>"`, the strong validator of the identity encoding.
    etag: HeaderValue,
    /// `"<version>-gzip"`: each encoding is its own representation.
    etag_gzip: HeaderValue,
}

impl Asset {
    fn new(body: &'static str, content_type: &'static str) -> Self {
        let version = hex::encode(&Sha256::digest(body.as_bytes())[..8]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        // Writing to a Vec cannot fail.
        let gzip = gz
            .write_all(body.as_bytes())
            .and_then(|()| gz.finish())
            .unwrap_or_default();
        let etag = HeaderValue::from_str(&format!("\"{version}\"")).expect("hex is a header value");
        let etag_gzip =
            HeaderValue::from_str(&format!("\"{version}-gzip\"")).expect("hex is a header value");
        Self {
            content_type,
            body,
            gzip,
            version,
            etag,
            etag_gzip,
        }
    }

    fn all() -> &'static std::collections::HashMap<&'static str, Asset> {
        static CELL: OnceLock<std::collections::HashMap<&'static str, Asset>> = OnceLock::new();
        CELL.get_or_init(|| {
            ASSETS
                .iter()
                .map(|(name, body, kind)| (*name, Self::new(body, kind)))
                .collect()
        })
    }

    fn find(name: &str) -> Option<&'static Self> {
        Self::all().get(name)
    }

    /// One of [`ASSETS`] (by a name from that table).
    fn get(name: &'static str) -> &'static Self {
        Self::find(name).unwrap_or_else(|| unreachable!("{name} is in ASSETS"))
    }

    fn css() -> &'static Self {
        Self::get("integrations.css")
    }

    fn js() -> &'static Self {
        Self::get("integrations.js")
    }

    /// The answer to `headers`: gzip when accepted (and non-empty), `304` when the
    /// client's copy is current, a year's caching for the versioned URL.
    fn respond(&self, headers: &HeaderMap, query: Option<&str>) -> Response {
        let gzip = !self.gzip.is_empty() && accepts_gzip(headers);
        let etag = if gzip { &self.etag_gzip } else { &self.etag };
        let versioned = query.is_some_and(|q| {
            url::form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "v" && v == self.version)
        });
        let cache = if versioned {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        let mut r = if none_match(headers, etag) {
            StatusCode::NOT_MODIFIED.into_response()
        } else if gzip {
            let mut r = self.gzip.clone().into_response();
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            r
        } else {
            self.body.into_response()
        };
        let modified = r.status() != StatusCode::NOT_MODIFIED;
        let h = r.headers_mut();
        if modified {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            );
        }
        h.insert(header::ETAG, etag.clone());
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        r
    }
}

/// Whether `Accept-Encoding` allows gzip: `gzip`, `x-gzip` or `*` with a quality above
/// zero, an explicit `gzip;q=0` winning over `*`.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut star = None;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let quality = parts
                .filter_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    (k.trim().eq_ignore_ascii_case("q")).then(|| v.trim().parse::<f32>().ok())?
                })
                .next()
                .unwrap_or(1.0);
            match coding.as_str() {
                "gzip" | "x-gzip" => return quality > 0.0,
                "*" => star = Some(quality > 0.0),
                _ => {}
            }
        }
    }
    star.unwrap_or(false)
}

/// Whether `If-None-Match` names `etag` (or is `*`): the weak comparison of RFC 9110.
fn none_match(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = etag.to_str().unwrap_or_default();
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == ours)
}

/// `GET /assets/integrations.css`.
async fn css(headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    Asset::css().respond(&headers, query.as_deref())
}

/// `GET /assets/integrations.js`.
async fn js(headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    Asset::js().respond(&headers, query.as_deref())
}

/// `GET /assets/{file}`: the Health page's assets.
async fn asset(
    axum::extract::Path(file): axum::extract::Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match Asset::find(&file) {
        Some(a) => a.respond(&headers, query.as_deref()),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `GET /assets/vendor/{file}`: the chart library.
async fn vendor_asset(
    axum::extract::Path(file): axum::extract::Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match Asset::find(&format!("vendor/{file}")) {
        Some(a) => a.respond(&headers, query.as_deref()),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chart library is the pinned npm release, byte for byte (the digests recorded
    /// in `assets/vendor/README.md`, next to the steps that copy it).
    #[test]
    fn vendored_chart_library_is_the_pinned_release() {
        let readme = include_str!("../assets/vendor/README.md");
        let lock = include_str!("../assets/vendor/package-lock.json");
        assert!(
            lock.contains("\"node_modules/uplot\": {\n      \"version\": \"1.6.32\""),
            "{lock}"
        );
        for (name, body, _) in ASSETS.iter().filter(|(n, _, _)| n.starts_with("vendor/")) {
            let digest = hex::encode(Sha256::digest(body.as_bytes()));
            let file = name.trim_start_matches("vendor/");
            let row = readme
                .lines()
                .find(|l| l.contains(&format!("`{file}`")))
                .unwrap_or_else(|| panic!("{file} is listed in the README"));
            assert!(row.contains(&digest), "{file}: {digest} is not in {row}");
        }
    }

    #[test]
    fn the_health_page_links_its_assets_by_version() {
        let html = health_template(&PageConfig::default());
        for name in [
            "health.css",
            "health.js",
            "vendor/uPlot.min.css",
            "vendor/uPlot.iife.min.js",
        ] {
            assert!(
                html.contains(&format!("/assets/{name}?v={}\"", Asset::get(name).version)),
                "{name}"
            );
        }
        let rest = html.replace("{{BASE}}", "").replace("{{PAGE}}", "");
        assert!(
            !rest.contains("{{"),
            "only the per-request placeholders are left"
        );
    }

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

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn gzip_only_when_accepted() {
        let ae = header::ACCEPT_ENCODING;
        for (value, gzip) in [
            ("gzip", true),
            ("gzip, deflate, br, zstd", true),
            ("br;q=1.0, GZIP;q=0.5", true),
            ("x-gzip", true),
            ("*", true),
            ("identity", false),
            ("br", false),
            ("gzip;q=0", false),
            ("gzip; q=0.0, *", false),
            ("*;q=0", false),
            ("deflate, *;q=0.1", true),
        ] {
            assert_eq!(
                accepts_gzip(&headers(&[(ae.clone(), value)])),
                gzip,
                "{value}"
            );
        }
        assert!(!accepts_gzip(&HeaderMap::new()), "no header: identity");
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let etag = HeaderValue::from_static("\"abc\"");
        let inm = header::IF_NONE_MATCH;
        assert!(none_match(&headers(&[(inm.clone(), "\"abc\"")]), &etag));
        assert!(none_match(&headers(&[(inm.clone(), "W/\"abc\"")]), &etag));
        assert!(none_match(
            &headers(&[(inm.clone(), "\"x\", \"abc\"")]),
            &etag
        ));
        assert!(none_match(&headers(&[(inm.clone(), "*")]), &etag));
        assert!(!none_match(
            &headers(&[(inm.clone(), "\"abc-gzip\"")]),
            &etag
        ));
        assert!(!none_match(&HeaderMap::new(), &etag));
    }

    #[test]
    fn the_page_links_its_assets_by_version_and_has_an_icon() {
        let html = template(&PageConfig::default());
        let css = Asset::css();
        let js = Asset::js();
        assert!(html.contains(&format!("/assets/integrations.css?v={}\"", css.version)));
        assert!(html.contains(&format!("/assets/integrations.js?v={}\"", js.version)));
        assert_ne!(css.version, js.version);
        assert!(html.contains(&format!("<link rel=\"icon\" href=\"{ICON}\">")));
        let rest = html.replace("{{BASE}}", "").replace("{{PAGE}}", "");
        assert!(
            !rest.contains("{{"),
            "only the per-request placeholders are left"
        );
    }
}
