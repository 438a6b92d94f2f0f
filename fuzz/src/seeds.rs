//! The seed corpus (`fuzz/corpus/<target>/`), made from the providers' recorded fixtures
//! (`providers/*/tests/fixtures/`) and the platforms' documented redirects and headers.
//!
//! `cargo test` in `fuzz/` checks that the checked-in seeds are exactly these;
//! `FUZZ_WRITE_SEEDS=1 cargo test` in `fuzz/` writes them after a fixture changed.

use crate::input::Writer;
use crate::providers::{Case, Operation};
use crate::reply::Reply;
use std::path::{Path, PathBuf};

/// One seed: its target, file name and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    /// The fuzz target.
    pub target: &'static str,
    /// The file name under `fuzz/corpus/<target>/`.
    pub name: String,
    /// The input.
    pub bytes: Vec<u8>,
}

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// A provider fixture.
///
/// # Panics
///
/// When it is missing.
pub fn fixture(provider: &str, name: &str) -> Vec<u8> {
    let path = root()
        .join("providers")
        .join(provider)
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn case(target: &'static str, name: &str, operation: Operation, replies: Vec<Reply>) -> Seed {
    Seed {
        target,
        name: name.to_owned(),
        bytes: Case { operation, replies }.write(),
    }
}

fn ok(body: &[u8]) -> Reply {
    Reply::json(200, body)
}

fn reddit() -> Vec<Seed> {
    let t = "reddit_responses";
    let f = |n: &str| fixture("reddit", n);
    vec![
        case(
            t,
            "exchange-token",
            Operation::ExchangeCode,
            vec![ok(&f("token.json"))],
        ),
        case(
            t,
            "refresh",
            Operation::Refresh,
            vec![ok(&f("refresh.json"))],
        ),
        case(
            t,
            "profile-me",
            Operation::FetchProfile,
            vec![ok(&f("me.json"))],
        ),
        // Reddit answers a bad code with HTTP 200 and an RFC 6749 error.
        case(
            t,
            "exchange-invalid-grant-200",
            Operation::ExchangeCode,
            vec![ok(br#"{"error": "invalid_grant"}"#)],
        ),
        case(
            t,
            "refresh-429-reset",
            Operation::Refresh,
            vec![
                Reply::json(429, br#"{"message": "Too Many Requests", "error": 429}"#)
                    .header("x-ratelimit-reset", "42.5")
                    .header("x-ratelimit-remaining", "0.0"),
            ],
        ),
        case(t, "revoke-ok", Operation::Revoke, vec![ok(b"")]),
        case(
            t,
            "profile-401",
            Operation::FetchProfile,
            vec![Reply::json(
                401,
                br#"{"message": "Unauthorized", "error": 401}"#,
            )],
        ),
    ]
}

fn tiktok() -> Vec<Seed> {
    let t = "tiktok_responses";
    let f = |n: &str| fixture("tiktok", n);
    let mut seeds = vec![
        case(
            t,
            "exchange-token",
            Operation::ExchangeCode,
            vec![ok(&f("token.json"))],
        ),
        case(
            t,
            "refresh-rotated",
            Operation::Refresh,
            vec![ok(&f("refreshed.json"))],
        ),
        case(
            t,
            "exchange-invalid-grant",
            Operation::ExchangeCode,
            vec![Reply::json(400, &f("invalid_grant.json"))],
        ),
        case(t, "revoke-ok", Operation::Revoke, vec![ok(b"{}")]),
        case(
            t,
            "profile-scope-then-basic",
            Operation::FetchProfile,
            vec![
                ok(&f("user_info_scope.json")),
                ok(&f("user_info_basic.json")),
            ],
        ),
    ];
    for name in [
        "user_info",
        "user_info_basic",
        "user_info_internal",
        "user_info_rate_limited",
        "user_info_token_invalid",
    ] {
        seeds.push(case(
            t,
            &format!("profile-{name}"),
            Operation::FetchProfile,
            vec![ok(&f(format!("{name}.json").as_str()))],
        ));
    }
    seeds
}

fn instagram() -> Vec<Seed> {
    let t = "instagram_responses";
    let f = |n: &str| fixture("instagram", n);
    let mut seeds = vec![
        case(
            t,
            "exchange-data-then-long-lived",
            Operation::ExchangeCode,
            vec![ok(&f("short_lived_data.json")), ok(&f("long_lived.json"))],
        ),
        case(
            t,
            "exchange-flat-then-long-lived",
            Operation::ExchangeCode,
            vec![ok(&f("short_lived_flat.json")), ok(&f("long_lived.json"))],
        ),
        case(
            t,
            "exchange-legacy-error",
            Operation::ExchangeCode,
            vec![Reply::json(400, &f("legacy_error.json"))],
        ),
        case(
            t,
            "refresh",
            Operation::Refresh,
            vec![ok(&f("refreshed.json"))],
        ),
        case(
            t,
            "profile-me",
            Operation::FetchProfile,
            vec![ok(&f("me.json"))],
        ),
    ];
    for name in [
        "graph_error_190",
        "graph_error_permission",
        "graph_error_throttled",
    ] {
        seeds.push(case(
            t,
            &format!("profile-{name}"),
            Operation::FetchProfile,
            vec![Reply::json(400, &f(format!("{name}.json").as_str()))],
        ));
        seeds.push(case(
            t,
            &format!("refresh-{name}"),
            Operation::Refresh,
            vec![Reply::json(400, &f(format!("{name}.json").as_str())).header("retry-after", "60")],
        ));
    }
    seeds
}

fn onlyfans() -> Vec<Seed> {
    let t = "onlyfans_responses";
    let f = |n: &str| fixture("onlyfans", n);
    vec![
        case(t, "exchange-self", Operation::ExchangeCode, vec![ok(&f("self.json"))]),
        case(t, "profile-self", Operation::FetchProfile, vec![ok(&f("self.json"))]),
        case(
            t,
            "profile-session-expired",
            Operation::FetchProfile,
            vec![Reply::json(401, &f("session_expired.json"))],
        ),
        case(
            t,
            "api-error-session-expired",
            Operation::ApiError,
            vec![Reply::json(401, &f("session_expired.json"))],
        ),
        case(
            t,
            "link-init",
            Operation::AuthorizationUrl,
            vec![ok(
                br#"{"url": "https://link.ofauth.example/l/abc", "expiresAt": "2026-12-01T00:00:00Z"}"#,
            )],
        ),
        case(t, "revoke-ok", Operation::Revoke, vec![ok(b"{}")]),
        case(
            t,
            "revoke-gone",
            Operation::Revoke,
            vec![Reply::json(
                404,
                br#"{"error": "Connection not found", "type": "NOT_FOUND"}"#,
            )],
        ),
    ]
}

/// The token-reply target: each platform's token replies and error bodies.
fn token_replies() -> Vec<Seed> {
    let t = "token_reply";
    let mut seeds = Vec::new();
    for (provider, name, status) in [
        ("reddit", "token.json", 200),
        ("reddit", "refresh.json", 200),
        ("tiktok", "token.json", 200),
        ("tiktok", "refreshed.json", 200),
        ("tiktok", "invalid_grant.json", 400),
        ("instagram", "long_lived.json", 200),
        ("instagram", "short_lived_flat.json", 200),
        ("instagram", "legacy_error.json", 400),
        ("instagram", "graph_error_190.json", 400),
    ] {
        seeds.push(Seed {
            target: t,
            name: format!("{provider}-{}", name.trim_end_matches(".json")),
            bytes: Reply::json(status, &fixture(provider, name))
                .write(Writer::new())
                .finish(),
        });
    }
    seeds.push(Seed {
        target: t,
        name: "numbers-as-strings".into(),
        bytes: Reply::json(
            200,
            br#"{"access_token": "a-token-of-sixteen+", "expires_in": "3600", "refresh_expires_in": 86400.0}"#,
        )
        .write(Writer::new())
        .finish(),
    });
    seeds
}

fn headers() -> Vec<Seed> {
    let t = "rate_limit_headers";
    // 2026-11-30T12:00:00Z.
    let now: u32 = 1_796_040_000;
    let replies = [
        (
            "retry-after-seconds",
            Reply::json(429, b"").header("retry-after", "120"),
        ),
        (
            "retry-after-date",
            Reply::json(503, b"").header("retry-after", "Mon, 30 Nov 2026 12:01:00 GMT"),
        ),
        (
            "reddit-reset",
            Reply::json(429, b"")
                .header("x-ratelimit-reset", "42.5")
                .header("x-ratelimit-used", "600")
                .header("x-ratelimit-remaining", "0.0"),
        ),
        ("ok", Reply::json(200, b"{}")),
    ];
    replies
        .into_iter()
        .map(|(name, reply)| Seed {
            target: t,
            name: name.into(),
            bytes: reply
                .write(
                    Writer::new()
                        .u16((now & 0xffff) as u16)
                        .u16((now >> 16) as u16),
                )
                .finish(),
        })
        .collect()
}

/// Redirects as the platforms document them.
fn callbacks() -> Vec<Seed> {
    [
        ("oauth-code", "code=AQBx-code#_&state=s7ate"),
        (
            "meta-denied",
            "error=access_denied&error_reason=user_denied&error_description=The+user+denied+your+request.&state=s7ate",
        ),
        ("oauth-error", "error=invalid_scope&error_description=bad&state=s7ate"),
        (
            "ofauth-success",
            "status=success&connection_id=conn_abc123&client_reference_id=s7ate",
        ),
        (
            "ofauth-cancelled",
            "status=cancelled&step=login&client_reference_id=s7ate",
        ),
        (
            "ofauth-error",
            "status=error&error_code=LOGIN_FAILED&client_reference_id=s7ate",
        ),
        ("tiktok-code", "?code=CODE%2A123&scopes=user.info.basic&state=s7ate"),
    ]
    .into_iter()
    .map(|(name, query)| Seed {
        target: "callback_params",
        name: name.into(),
        bytes: query.as_bytes().to_vec(),
    })
    .collect()
}

fn key_chunk(w: Writer, byte: u8) -> Writer {
    w.chunk(&[byte; 32])
}

fn sealed() -> Vec<Seed> {
    let base = |mode: u8| {
        let w = key_chunk(key_chunk(Writer::new().byte(mode), 1), 2);
        w.chunk(b"act.first-access-token")
            .chunk(b"tiktok")
            .chunk(b"-000abcOpenId")
            .byte(0)
    };
    let seeds = [
        ("truncated", base(0).u16(40).finish()),
        ("altered", base(1).u16(12).byte(b'A').finish()),
        ("rekeyed", base(2).finish()),
        (
            "moved-row",
            base(3)
                .chunk(b"-000abcOpenIe")
                .chunk(b"tiktok")
                .byte(0)
                .finish(),
        ),
        (
            "spliced",
            base(4)
                .chunk(b"rft.first-refresh-token")
                .chunk(b"-000abcOpenId")
                .byte(1)
                .finish(),
        ),
        (
            "stored-text",
            base(5)
                .raw(b"v1.0a1b2c3d.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
                .finish(),
        ),
        (
            "key-text",
            base(6)
                .chunk(b"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=")
                .chunk(b"AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=, ")
                .finish(),
        ),
    ];
    seeds
        .into_iter()
        .map(|(name, bytes)| Seed {
            target: "sealed_secret",
            name: name.into(),
            bytes,
        })
        .collect()
}

fn session() -> Vec<Seed> {
    let key = |w: Writer| w.chunk(&[7u8; 64]);
    let seeds = [
        (
            "cookie-header",
            key(Writer::new().byte(0))
                .chunk(b"integrations_session=AAAA1; other=x")
                .raw(b"integrations_session=42")
                .finish(),
        ),
        (
            "signed",
            key(Writer::new().byte(1))
                .chunk(&42i64.to_le_bytes())
                .raw(&[9u8; 66])
                .finish(),
        ),
        (
            "tampered",
            key(Writer::new().byte(2))
                .u16(41)
                .u16(30)
                .byte(b'x')
                .finish(),
        ),
    ];
    seeds
        .into_iter()
        .map(|(name, bytes)| Seed {
            target: "session_cookie",
            name: name.into(),
            bytes,
        })
        .collect()
}

fn platform_webhooks() -> Vec<Seed> {
    // choice: provider (0 Instagram, 1 TikTok, 2 OnlyFans) | 0x04 data-deletion route |
    // 0x08 GET | 0x10 signed by the harness; then mode, query, headers, id, body.
    let input =
        |choice: u8, mode: u8, query: &[u8], headers: &[(u8, &[u8])], id: &[u8], body: &[u8]| {
            let mut w = Writer::new()
                .byte(choice)
                .byte(mode)
                .chunk(query)
                .byte(u8::try_from(headers.len()).unwrap_or(0));
            for (name, value) in headers {
                w = w.byte(*name).chunk(value);
            }
            w.chunk(id).raw(body).finish()
        };
    let seeds = [
        (
            "instagram-deauthorize",
            input(0x10, 0, b"", &[], b"",
                br#"{"algorithm":"HMAC-SHA256","issued_at":1764547100,"user_id":"7590000000000001"}"#),
        ),
        (
            "instagram-data-deletion",
            input(0x14, 2, b"", &[], b"",
                br#"{"user_id":"218471","algorithm":"HMAC-SHA256","issued_at":1291836800,"expires":1291840400}"#),
        ),
        (
            "instagram-handshake",
            input(0x08, 0,
                b"hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=FUZZSECRET-verify-2b7c",
                &[], b"", b""),
        ),
        (
            "instagram-graph-comments",
            input(0x10, 1, b"", &[], b"",
                br#"{"object":"instagram","entry":[{"id":"17841405793187218","time":1764547200,"changes":[{"field":"comments","value":{"id":"1","text":"hi"}}]}]}"#),
        ),
        (
            "instagram-unsigned-form",
            input(0x00, 0, b"", &[(0, b"application/x-www-form-urlencoded")], b"",
                b"signed_request=Mf_s6nTb38UYqioBmPqu0Ewm9souPZB9I2fIGwV729U.eyJ1c2VyX2lkIjoiMCIsImFsZ29yaXRobSI6IkhNQUMtU0hBMjU2IiwiaXNzdWVkX2F0IjoxNjI0MjQ0MTU2fQ"),
        ),
        (
            "tiktok-authorization-removed",
            input(0x11, 0, b"", &[], b"",
                br#"{"client_key":"fuzzclientkey","event":"authorization.removed","create_time":1764547200,"user_openid":"-000abc","content":"{\"reason\": 1 }"}"#),
        ),
        (
            "tiktok-unsigned",
            input(0x01, 0, b"", &[(2, b"t=1764547200,s=00")], b"",
                br#"{"client_key":"fuzzclientkey","event":"video.publish.completed","create_time":1764547200,"user_openid":"-000abc","content":"{}"}"#),
        ),
        (
            "ofauth-connection-expired",
            input(0x12, 0, b"", &[], b"msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                br#"{"eventType":"connection.expired","live":false,"data":{"connection":{"id":"conn_abc123","platformUserId":"123456","status":"expired"},"clientReferenceId":null}}"#),
        ),
        (
            "ofauth-connection-updated",
            input(0x12, 2, b"", &[], b"msg_2",
                br#"{"type":"connection.updated","timestamp":"2026-12-01T00:00:00Z","data":{"connection":{"id":"conn_abc123","status":"active","userData":{"id":"123456"}}}}"#),
        ),
        (
            "onlyfansapi-session-expired",
            input(0x12, 1, b"", &[], b"",
                br#"{"event":"accounts.session_expired","account_id":"acct_123","payload":{}}"#),
        ),
    ];
    seeds
        .into_iter()
        .map(|(name, bytes)| Seed {
            target: "platform_webhooks",
            name: name.into(),
            bytes,
        })
        .collect()
}

/// Every seed of every target.
pub fn all() -> Vec<Seed> {
    let mut seeds = Vec::new();
    for part in [
        callbacks(),
        sealed(),
        token_replies(),
        headers(),
        session(),
        reddit(),
        tiktok(),
        instagram(),
        onlyfans(),
        platform_webhooks(),
    ] {
        seeds.extend(part);
    }
    seeds
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Case;

    #[test]
    fn provider_seeds_read_back_as_written() {
        for seed in all().iter().filter(|s| s.target.ends_with("_responses")) {
            let case = Case::read(&seed.bytes);
            assert_eq!(case.write(), seed.bytes, "{}", seed.name);
        }
    }

    /// The checked-in corpus holds every seed (it may hold more: inputs found by fuzzing
    /// and kept on purpose).
    #[test]
    fn corpus_holds_the_seeds() {
        let write = std::env::var("FUZZ_WRITE_SEEDS").is_ok_and(|v| v == "1");
        for seed in all() {
            let dir = root().join("fuzz/corpus").join(seed.target);
            let path = dir.join(format!("seed-{}", seed.name));
            if write {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &seed.bytes).unwrap();
            } else {
                let on_disk = std::fs::read(&path).unwrap_or_default();
                assert_eq!(
                    on_disk,
                    seed.bytes,
                    "{} is stale: run FUZZ_WRITE_SEEDS=1 cargo test in fuzz/",
                    path.display()
                );
            }
        }
    }
}
