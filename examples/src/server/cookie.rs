//! The session cookie: its name, how a request's `Cookie` headers are read into the
//! signed-in user, and what sign-in sets. A signed (HMAC) cookie holding the user number.
//!
//! This file uses only `axum`, `axum-extra` and `integrations-core`, so that the fuzz
//! target `session_cookie` compiles it as it is, without building the whole server.

use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use axum_extra::extract::cookie::{Cookie, Key, SignedCookieJar};
use integrations_core::UserId;

/// The session cookie's name.
pub const COOKIE: &str = "integrations_session";

/// Reads the user from a signed cookie jar: the session cookie holding a positive user
/// number.
pub(crate) fn user_of(jar: &SignedCookieJar) -> Option<UserId> {
    jar.get(COOKIE)
        .and_then(|c| c.value().parse::<i64>().ok())
        .filter(|id| *id > 0)
        .map(UserId)
}

/// The signed-in user of a request, from its `Cookie` headers: the session cookie,
/// signed with `key`, holding a positive user number. Anything else (no cookie, a bad
/// signature, another key's signature, a value that is not a positive number) is `None`.
///
/// Every route reads the session this way.
pub fn read_session(headers: &HeaderMap, key: &Key) -> Option<UserId> {
    user_of(&SignedCookieJar::from_headers(headers, key.clone()))
}

/// The `Cookie` header a browser sends back after signing in as `user` on a server
/// whose signing key is `key` (the `name=value` part of the sign-in's `Set-Cookie`).
pub fn session_cookie_header(key: &Key, user: UserId) -> Option<String> {
    let jar = SignedCookieJar::new(key.clone()).add(Cookie::new(COOKIE, user.0.to_string()));
    let response = (jar, ()).into_response();
    let set_cookie = response.headers().get(header::SET_COOKIE)?.to_str().ok()?;
    set_cookie.split(';').next().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookie: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, cookie.parse().unwrap());
        h
    }

    #[test]
    fn a_signed_cookie_reads_back_under_its_key_only() {
        let key = Key::from(&[7u8; 64][..]);
        let other = Key::from(&[8u8; 64][..]);
        let cookie = session_cookie_header(&key, UserId(42)).unwrap();
        assert!(cookie.starts_with("integrations_session="));
        assert_eq!(read_session(&headers(&cookie), &key), Some(UserId(42)));
        assert_eq!(read_session(&headers(&cookie), &other), None);
        assert_eq!(
            read_session(&headers("integrations_session=42"), &key),
            None
        );
        let zero = session_cookie_header(&key, UserId(0)).unwrap();
        assert_eq!(read_session(&headers(&zero), &key), None);
    }
}
