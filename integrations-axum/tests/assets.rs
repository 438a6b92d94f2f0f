//! The page's stylesheet and script over real HTTP: gzip when the browser accepts it,
//! a content-hash `ETag` with `304 Not Modified`, and a year's caching for the versioned
//! URLs the page links.

use integrations_axum::{Authenticate, IntegrationsRouter, ServeLimits, serve_with_shutdown};
use integrations_core::{EncryptionKey, Integrations, MemoryStore, TokenCipher, UserId};
use reqwest::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY,
};
use std::io::Read;
use std::sync::Arc;

struct Everyone;

#[async_trait::async_trait]
impl Authenticate for Everyone {
    async fn user(&self, _: &mut axum::http::request::Parts) -> Option<UserId> {
        Some(UserId(1))
    }
}

async fn host() -> (String, tokio::sync::oneshot::Sender<()>) {
    let integrations = Integrations::builder(
        Arc::new(MemoryStore::new()),
        TokenCipher::new(EncryptionKey::generate()),
    )
    .build();
    let web = IntegrationsRouter::new(integrations, Everyone);
    let app = axum::Router::new().nest("/apps", web.page());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/apps", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve_with_shutdown(
        listener,
        app,
        ServeLimits::default(),
        async move {
            let _ = rx.await;
        },
    ));
    (base, tx)
}

/// The `?v=` the page links `name` with.
fn version_in(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("/assets/{name}?v="))
        .unwrap_or_else(|| panic!("the page links {name} with a version"));
    html[at..]
        .split_once("?v=")
        .unwrap()
        .1
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}

fn header(resp: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<String> {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

fn gunzip(bytes: &[u8]) -> String {
    let mut out = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut out)
        .expect("a gzip body");
    out
}

#[tokio::test]
async fn assets_are_compressed_and_revalidated_by_etag() {
    let (base, _stop) = host().await;
    // reqwest here has no decompression: it sends no Accept-Encoding of its own and hands
    // over the bytes as sent.
    let c = reqwest::Client::new();
    let html = c.get(&base).send().await.unwrap().text().await.unwrap();

    for (name, content_type) in [
        ("integrations.css", "text/css; charset=utf-8"),
        ("integrations.js", "text/javascript; charset=utf-8"),
    ] {
        let url = format!("{base}/assets/{name}");
        let version = version_in(&html, name);
        assert_eq!(version.len(), 16, "{version}");

        // Identity: the whole file, revalidated on every use.
        let plain = c.get(&url).send().await.unwrap();
        assert_eq!(plain.status(), 200);
        assert_eq!(header(&plain, CONTENT_ENCODING), None);
        assert_eq!(header(&plain, CONTENT_TYPE).as_deref(), Some(content_type));
        assert_eq!(header(&plain, CACHE_CONTROL).as_deref(), Some("no-cache"));
        assert_eq!(header(&plain, VARY).as_deref(), Some("Accept-Encoding"));
        let etag = header(&plain, ETAG).expect("an ETag");
        assert_eq!(
            etag,
            format!("\"{version}\""),
            "the ETag is the content hash"
        );
        let text = plain.text().await.unwrap();
        assert!(text.len() > 1000, "{name}: {} bytes", text.len());

        // gzip when accepted, the same content in fewer bytes, its own ETag.
        let zipped = c
            .get(&url)
            .header(ACCEPT_ENCODING, "gzip, deflate, br")
            .send()
            .await
            .unwrap();
        assert_eq!(zipped.status(), 200);
        assert_eq!(header(&zipped, CONTENT_ENCODING).as_deref(), Some("gzip"));
        assert_eq!(header(&zipped, CONTENT_TYPE).as_deref(), Some(content_type));
        let gz_etag = header(&zipped, ETAG).expect("an ETag");
        assert_eq!(gz_etag, format!("\"{version}-gzip\""));
        let bytes = zipped.bytes().await.unwrap();
        assert!(
            bytes.len() * 2 < text.len(),
            "{name}: {} bytes gzip of {}",
            bytes.len(),
            text.len()
        );
        assert_eq!(gunzip(&bytes), text);

        // Refused gzip: identity.
        let refused = c
            .get(&url)
            .header(ACCEPT_ENCODING, "gzip;q=0, br")
            .send()
            .await
            .unwrap();
        assert_eq!(header(&refused, CONTENT_ENCODING), None);

        // A current copy: 304 without a body, for each encoding's own ETag.
        for (accept, tag) in [("identity", &etag), ("gzip", &gz_etag)] {
            let again = c
                .get(&url)
                .header(ACCEPT_ENCODING, accept)
                .header(IF_NONE_MATCH, tag.as_str())
                .send()
                .await
                .unwrap();
            assert_eq!(again.status(), 304, "{name} {accept}");
            assert_eq!(header(&again, ETAG).as_deref(), Some(tag.as_str()));
            assert_eq!(header(&again, VARY).as_deref(), Some("Accept-Encoding"));
            assert!(again.bytes().await.unwrap().is_empty());
        }
        // A stale copy, or the other encoding's: the file again.
        for stale in ["\"0000000000000000\"", gz_etag.as_str()] {
            let again = c
                .get(&url)
                .header(IF_NONE_MATCH, stale)
                .send()
                .await
                .unwrap();
            assert_eq!(again.status(), 200, "{name} with {stale}");
            assert_eq!(again.text().await.unwrap(), text);
        }

        // The versioned URL never changes content: cached for a year. Another version
        // (an older page's) is revalidated instead.
        let versioned = c
            .get(format!("{url}?v={version}"))
            .header(ACCEPT_ENCODING, "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(
            header(&versioned, CACHE_CONTROL).as_deref(),
            Some("public, max-age=31536000, immutable")
        );
        assert_eq!(gunzip(&versioned.bytes().await.unwrap()), text);
        let other = c.get(format!("{url}?v=0123")).send().await.unwrap();
        assert_eq!(header(&other, CACHE_CONTROL).as_deref(), Some("no-cache"));
    }
}

#[tokio::test]
async fn the_page_declares_its_icon() {
    let (base, _stop) = host().await;
    let html = reqwest::get(&base).await.unwrap().text().await.unwrap();
    // An inline icon: browsers do not ask for /favicon.ico.
    assert!(
        html.contains(r#"<link rel="icon" href="data:image/svg+xml,"#),
        "{html}"
    );
}
