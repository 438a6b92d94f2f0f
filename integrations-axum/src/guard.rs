//! What every API request passes: the same-site JSON rule for state-changing requests and
//! JSON bodies for every error the router itself answers.

use crate::api::ApiError;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The longest request target taken (longer: JSON 414).
pub(crate) const MAX_URI: usize = 8 * 1024;
/// The most header bytes taken (more: JSON 431).
pub(crate) const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Whether a request says it comes from another site: `Sec-Fetch-Site` other than
/// `same-origin` or `none` (a browser's own navigation), or else an `Origin` whose host is
/// not the `Host` the request was sent to.
pub(crate) fn cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return !matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = url::Url::parse(origin).ok().and_then(|u| {
        let host = u.host_str()?.to_owned();
        Some(match u.port() {
            Some(p) => format!("{host}:{p}"),
            None => host,
        })
    });
    match (origin_host, host) {
        (Some(o), Some(h)) => !o.eq_ignore_ascii_case(h),
        // `Origin: null` (a sandboxed or opaque origin) or no `Host`: not ours.
        _ => true,
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

/// State-changing requests (anything but `GET`/`HEAD`/`OPTIONS`) must be same-site, and
/// `POST`s must say `Content-Type: application/json`: a cross-site form, `text/plain` or
/// multipart request is refused before it can start a connection or a refresh.
pub(crate) async fn same_site_json(request: Request, next: Next) -> Response {
    let method = request.method();
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    if cross_site(request.headers()) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_site",
            "This request must come from this site.",
        )
        .into_response();
    }
    if *method == Method::POST && !is_json(request.headers()) {
        return ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send JSON (Content-Type: application/json).",
        )
        .into_response();
    }
    next.run(request).await
}

/// Over-long targets and headers are refused as JSON (414, 431), and an error the
/// framework answers with an empty or non-JSON body gets the JSON error body.
pub(crate) async fn json_errors(request: Request, next: Next) -> Response {
    if request.uri().to_string().len() > MAX_URI {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            "The address is too long.",
        )
        .into_response();
    }
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            "The request headers are too large.",
        )
        .into_response();
    }
    let response = next.run(request).await;
    let status = response.status();
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    // A page meant for people (the data-deletion status page) keeps its HTML.
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if (status.is_client_error() || status.is_server_error()) && !json && !html {
        let (code, message) = match status {
            StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "The request is too large."),
            StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", crate::api::MSG_METHOD),
            s if s.is_server_error() => ("internal", integrations_core::error::MSG_INTERNAL),
            _ => ("invalid_request", "The request is not valid."),
        };
        let mut fixed = ApiError::new(status, code, message).into_response();
        if let Some(v) = response.headers().get(header::RETRY_AFTER) {
            fixed.headers_mut().insert(header::RETRY_AFTER, v.clone());
        }
        return fixed;
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn same_site_is_told_by_fetch_metadata_then_origin() {
        assert!(!cross_site(&headers(&[])));
        assert!(!cross_site(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!cross_site(&headers(&[("sec-fetch-site", "none")])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(!cross_site(&headers(&[
            ("origin", "http://127.0.0.1:3000"),
            ("host", "127.0.0.1:3000")
        ])));
        assert!(cross_site(&headers(&[
            ("origin", "https://evil.example"),
            ("host", "127.0.0.1:3000")
        ])));
        assert!(cross_site(&headers(&[
            ("origin", "null"),
            ("host", "127.0.0.1:3000")
        ])));
        assert!(is_json(&headers(&[(
            "content-type",
            "application/json; charset=utf-8"
        )])));
        assert!(!is_json(&headers(&[("content-type", "text/plain")])));
    }
}
