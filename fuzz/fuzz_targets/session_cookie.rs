//! The demo session cookie, as browsers send it back: read by
//! `integrations_axum::session::DemoSessions::user_from_headers` (what every route's
//! `Authenticate` uses) from any `Cookie` headers.
//!
//! Properties: nobody is signed in by a cookie the server did not issue; the cookie issued
//! at sign-in reads back as its user under the same key and as nobody under another key;
//! a cookie with one character changed (other than the case of a percent-escape) reads as
//! nobody.
#![no_main]

use http::{HeaderMap, HeaderValue, header::COOKIE};
use integrations_axum::session::DemoSessions;
use integrations_core::UserId;
use integrations_fuzz::input::Reader;
use libfuzzer_sys::fuzz_target;

fn sessions(r: &mut Reader<'_>) -> DemoSessions {
    let mut bytes = [0u8; 64];
    for (b, v) in bytes.iter_mut().zip(r.chunk()) {
        *b = *v;
    }
    DemoSessions::new(
        Some(&bytes[..]),
        "/integrations",
        "/integrations/assets/x.css",
    )
    .expect("a 64-byte key")
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
    let sessions = sessions(&mut r);
    match mode % 3 {
        // Any Cookie headers: no session was started, so nobody is signed in.
        0 => {
            let first = r.chunk();
            let second = r.rest();
            assert_eq!(sessions.user_from_headers(&headers(&[first, second])), None);
        }
        // The issued cookie, under the same key and under another one.
        1 => {
            let id = i64::from(r.u16()) + 1;
            let other = {
                let mut rest = Reader::new(r.rest());
                self::sessions(&mut rest)
            };
            let cookie = sessions.sign_in_cookie(UserId(id)).expect("a cookie");
            let h = headers(&[cookie.as_bytes()]);
            assert_eq!(sessions.user_from_headers(&h), Some(UserId(id)));
            assert_eq!(other.user_from_headers(&h), None, "another key, no session");
        }
        // One character of the issued cookie changed.
        _ => {
            let id = i64::from(r.u16()) + 1;
            let at = usize::from(r.u16());
            let with = r.byte();
            let cookie = sessions.sign_in_cookie(UserId(id)).expect("a cookie");
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
                assert_eq!(
                    sessions.user_from_headers(&headers(&[&altered])),
                    None,
                    "{:?} (from {cookie:?}) still reads as a session",
                    String::from_utf8_lossy(&altered)
                );
            }
        }
    }
});
