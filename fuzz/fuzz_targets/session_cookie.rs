//! The example server's session cookie, as browsers send it back: read by
//! `server::cookie::read_session` (what every route uses) from any `Cookie` headers. The
//! server's `cookie.rs` is compiled here as it is, so that fuzzing it does not build the
//! whole example server.
//!
//! Properties: a session is only ever a positive user number; the cookie signed at sign-in
//! reads back as its user under the same key and as nobody under another key; a cookie
//! with one character changed (other than the case of a percent-escape) reads as nobody.
#![no_main]

use axum_extra::extract::cookie::Key;
use http::{HeaderMap, HeaderValue, header::COOKIE};
use integrations_core::UserId;

#[path = "../../examples/src/server/cookie.rs"]
#[allow(dead_code, unreachable_pub)]
mod cookie;

use cookie::{read_session, session_cookie_header};
use integrations_fuzz::input::Reader;
use libfuzzer_sys::fuzz_target;

fn key(r: &mut Reader<'_>) -> Key {
    let mut bytes = [0u8; 64];
    for (b, v) in bytes.iter_mut().zip(r.chunk()) {
        *b = *v;
    }
    Key::from(&bytes[..])
}

fn headers(values: &[&[u8]]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for v in values {
        if let Ok(v) = HeaderValue::from_bytes(v) {
            map.append(COOKIE, v);
        }
    }
    map
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    let mode = r.byte();
    let key = key(&mut r);
    match mode % 3 {
        // Any Cookie headers.
        0 => {
            let first = r.chunk();
            let second = r.rest();
            if let Some(user) = read_session(&headers(&[first, second]), &key) {
                assert!(user.0 > 0, "a session for user {}", user.0);
            }
        }
        // The signed cookie, under the same key and under another one.
        1 => {
            let id = i64::from_le_bytes(
                r.chunk()
                    .iter()
                    .copied()
                    .chain([0; 8])
                    .take(8)
                    .collect::<Vec<_>>()
                    .try_into()
                    .unwrap_or_default(),
            );
            let other = key_from(r.rest());
            let cookie = session_cookie_header(&key, UserId(id)).expect("a cookie");
            let read = read_session(&headers(&[cookie.as_bytes()]), &key);
            assert_eq!(read, (id > 0).then_some(UserId(id)));
            if other.signing() != key.signing() {
                assert_eq!(read_session(&headers(&[cookie.as_bytes()]), &other), None);
            }
        }
        // One character of the signed cookie changed.
        _ => {
            let id = i64::from(r.u16()) + 1;
            let at = usize::from(r.u16());
            let with = r.byte();
            let cookie = session_cookie_header(&key, UserId(id)).expect("a cookie");
            let mut altered = cookie.clone().into_bytes();
            let at = at % altered.len();
            altered[at] = with;
            // Percent-escapes decode alike whatever the case of their hex digits.
            let decoded = |b: &[u8]| {
                url::form_urlencoded::parse(b)
                    .into_owned()
                    .collect::<Vec<_>>()
            };
            if decoded(&altered) != decoded(cookie.as_bytes()) {
                let read = read_session(&headers(&[&altered]), &key);
                assert_eq!(
                    read,
                    None,
                    "{:?} (from {cookie:?}) still reads as a session",
                    String::from_utf8_lossy(&altered)
                );
            }
        }
    }
});

fn key_from(bytes: &[u8]) -> Key {
    let mut r = Reader::new(bytes);
    key(&mut r)
}
