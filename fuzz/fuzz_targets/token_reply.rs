//! A token endpoint's reply read by core: `http::check_token_response` (status, RFC 6749
//! error bodies even on HTTP 200), `client::TokenReply::parse` (lenient numbers) and
//! `into_token_set`, and `CappedResponse::json_scrubbed` for bodies without credentials.
//!
//! Properties: the reply becomes a typed `TokenReply` or a typed `ProviderError`; a parsed
//! reply has a non-empty access token, numbers sent as strings are read, `Debug` hides
//! the tokens; a new refresh token replaces the kept one, and the kept one stays
//! otherwise; no error carries a token of a success reply, `json_scrubbed` keeps none of
//! the secrets it is given, and error text stays bounded.
#![no_main]

use chrono::{TimeZone, Utc};
use integrations_core::RefreshToken;
use integrations_core::client::TokenReply;
use integrations_core::http;
use integrations_fuzz::input::Reader;
use integrations_fuzz::reply::Reply;
use integrations_fuzz::{check_error, reply_tokens, secrets};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    let reply = Reply::read(&mut r);
    let response = reply.capped();
    let now = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
    // Core reads the reply; scrubbing what the request sent is its caller's (the
    // provider toolkit's `check`). The tokens of a success reply are never repeated.
    let forbidden: Vec<String> = if (200..300).contains(&reply.status) {
        reply_tokens(&reply.body)
    } else {
        Vec::new()
    };
    let forbidden: Vec<&str> = forbidden.iter().map(String::as_str).collect();

    if let Err(e) = http::check_token_response(&response, now) {
        check_error(&e, &forbidden);
    }
    match TokenReply::parse::<TokenReply>(&response, "token reply") {
        Ok(parsed) => {
            assert!(!parsed.access_token.is_empty());
            let shown = format!("{parsed:?}");
            assert!(parsed.access_token.len() < 8 || !shown.contains(&parsed.access_token));
            // (Fields the reply does not read are skipped unchecked, so the body need not
            // be valid JSON throughout.)
            let value: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
            if let Some(n) = value.get("expires_in").and_then(|v| match v {
                serde_json::Value::String(s) => s.trim().parse::<u64>().ok(),
                other => other.as_u64(),
            }) {
                assert_eq!(parsed.expires_in, Some(n));
            }
            let new_refresh = parsed.refresh_token.clone().filter(|t| !t.is_empty());
            let kept = RefreshToken::new(secrets::REFRESH);
            let scopes = vec!["kept.scope".to_owned()];
            let set = parsed.into_token_set(Some(&kept), &scopes);
            let refresh = set.refresh_token.expect("a refresh token stays");
            match new_refresh {
                Some(t) => assert_eq!(refresh.expose_secret(), t),
                None => assert_eq!(refresh.expose_secret(), secrets::REFRESH),
            }
            assert!(!set.scopes.is_empty());
        }
        Err(e) => check_error(&e, &forbidden),
    }
    if let Err(e) = response.json_scrubbed::<serde_json::Value>("profile", &secrets::ALL) {
        check_error(&e, &secrets::ALL);
    }
});
