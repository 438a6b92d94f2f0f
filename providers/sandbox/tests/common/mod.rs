//! Shared helpers for the sandbox tests (a plain reqwest client, no provider crates).
#![allow(dead_code, unreachable_pub)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use integrations_sandbox::{Consent, Sandbox, SandboxConfig};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

pub const UA: &str = "sandbox-tests:com.example.integrations:v0.1 (by /u/tester)";

/// A sandbox answering consent automatically with "allow".
pub async fn auto_sandbox() -> Sandbox {
    Sandbox::start_with(SandboxConfig {
        auto_consent: Some(Consent::Allow),
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

/// A client that does not follow redirects.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// GETs `url` and returns the `Location` of the expected 302.
pub async fn follow(http: &reqwest::Client, url: &str) -> url::Url {
    let r = http.get(url).send().await.expect("authorize");
    assert_eq!(r.status(), 302, "authorize answers 302: {url}");
    let loc = r
        .headers()
        .get("location")
        .expect("Location")
        .to_str()
        .expect("ascii")
        .to_owned();
    url::Url::parse(&loc).expect("absolute Location")
}

/// Query parameters of a URL.
pub fn params(u: &url::Url) -> HashMap<String, String> {
    u.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// base64url(SHA-256(verifier)).
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Builds a URL with query pairs.
pub fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let mut u = url::Url::parse(base).expect("url");
    u.query_pairs_mut().extend_pairs(pairs);
    u.to_string()
}

pub async fn json(r: reqwest::Response) -> serde_json::Value {
    r.json().await.expect("JSON body")
}
