//! Small helpers: random tokens, stable per-user hashing, HTML escaping, form parsing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// A random URL-safe token with a platform-looking prefix (`bytes` of randomness).
pub(crate) fn random_token(prefix: &str, bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::fill(&mut b[..]);
    let mut s = String::with_capacity(prefix.len() + bytes * 4 / 3 + 2);
    s.push_str(prefix);
    s.push_str(&URL_SAFE_NO_PAD.encode(&b));
    s
}

/// A random lowercase hex string of `bytes` bytes.
pub(crate) fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::fill(&mut b[..]);
    hex::encode(b)
}

/// A stable 64-bit number derived from a platform, a sandbox user name and a purpose.
pub(crate) fn stable_u64(platform: &str, user: &str, purpose: &str) -> u64 {
    let d = Sha256::digest(format!("{platform}\0{user}\0{purpose}").as_bytes());
    let mut a = [0u8; 8];
    a.copy_from_slice(&d[..8]);
    u64::from_be_bytes(a)
}

/// SHA-256 of `input`, base64url without padding (RFC 7636 S256).
pub(crate) fn s256_base64url(input: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(input.as_bytes()))
}

/// SHA-256 of `input`, lowercase hex (the encoding some TikTok desktop docs use).
pub(crate) fn s256_hex(input: &str) -> String {
    hex::encode(Sha256::digest(input.as_bytes()))
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
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

/// Parses `application/x-www-form-urlencoded` text (a query string or a form body).
/// The first occurrence of a repeated name wins.
pub(crate) fn parse_form(input: &[u8]) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(input) {
        map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    map
}

/// Parses a form into ordered pairs (kept for re-posting the consent form).
pub(crate) fn parse_pairs(input: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(input)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Whether `name` is an acceptable sandbox user name: 1–30 of `[A-Za-z0-9_.-]`.
pub(crate) fn valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 30
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

/// Base-36 lowercase rendering (Reddit ids).
pub(crate) fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if n == 0 {
        return "0".to_owned();
    }
    let mut out = Vec::new();
    while n > 0 {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// Capitalises the first letter of each `.`/`_`/`-` separated part: `jane_doe` → `Jane Doe`.
pub(crate) fn display_name(user: &str) -> String {
    user.split(['.', '_', '-'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_vector() {
        assert_eq!(
            s256_base64url("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn helpers() {
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
        assert_eq!(display_name("jane_doe"), "Jane Doe");
        assert!(valid_user_name("alice-2"));
        assert!(!valid_user_name("a b"));
        assert_eq!(html_escape("<a&\"b\">"), "&lt;a&amp;&quot;b&quot;&gt;");
        assert_ne!(random_token("x", 16), random_token("x", 16));
    }
}
