//! The `refresher` binary: configuration errors name what is missing and exit non-zero;
//! in sandbox mode it refreshes, and on SIGTERM it finishes the pass and exits 0.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_refresher");

/// The binary with an empty environment (but `PATH`) and `vars`.
fn refresher(vars: &[(&str, &str)], args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear().args(args).stdin(Stdio::null());
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd
}

fn run(vars: &[(&str, &str)], args: &[&str]) -> Output {
    refresher(vars, args).output().expect("run the refresher")
}

/// A plain HTTP/1.1 GET; the whole response, head and body.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const TIKTOK: [(&str, &str); 3] = [
    ("TIKTOK_CLIENT_KEY", "key"),
    ("TIKTOK_CLIENT_SECRET", "not-a-real-secret"),
    ("TIKTOK_REDIRECT_URI", "https://app.example/callback/tiktok"),
];

#[test]
fn missing_database_url_is_named() {
    let out = run(&[("TOKEN_ENCRYPTION_KEY", KEY)], &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("DATABASE_URL is not set"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn missing_key_and_missing_providers_are_named() {
    let db = ("DATABASE_URL", "postgres://127.0.0.1:1/nothing");
    let out = run(&[db], &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("TOKEN_ENCRYPTION_KEY"),
        "{}",
        stderr(&out)
    );

    let out = run(&[db, ("TOKEN_ENCRYPTION_KEY", KEY)], &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no provider is configured"),
        "{}",
        stderr(&out)
    );

    // Present but switched off counts as absent.
    let mut vars = vec![db, ("TOKEN_ENCRYPTION_KEY", KEY)];
    vars.extend(TIKTOK);
    vars.push(("ENABLE_TIKTOK_INTEGRATION", "false"));
    let out = run(&vars, &[]);
    assert!(
        stderr(&out).contains("no provider is configured"),
        "{}",
        stderr(&out)
    );

    // An incomplete set names the missing variable.
    let mut vars = vec![db, ("TOKEN_ENCRYPTION_KEY", KEY)];
    vars.extend(&TIKTOK[..2]);
    let out = run(&vars, &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("TIKTOK_REDIRECT_URI"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_flags_and_values_are_usage_errors() {
    let out = run(&[("REFRESH_INTERVAL_SECS", "soon")], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("REFRESH_INTERVAL_SECS"),
        "{}",
        stderr(&out)
    );
    let out = run(&[], &["--frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--frobnicate"), "{}", stderr(&out));
    let out = run(&[], &["--help"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("usage: refresher"));
}

#[test]
fn sandbox_once_refreshes_the_demo_accounts() {
    let out = run(&[], &["--sandbox", "--once"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", stderr(&out));
    // TikTok and Reddit are refreshed; Instagram's token is not due (60 days), the
    // OnlyFans gateway has no refresh.
    assert!(
        stdout.contains("pass 1: claimed 2 refreshed 2 needs_reconnect 0 failed_transient 0"),
        "{stdout}"
    );
    for secret in ["sandbox-tiktok-secret-0001", "sandbox-reddit-secret-0001"] {
        assert!(!stdout.contains(secret) && !stderr(&out).contains(secret));
    }
}

#[cfg(unix)]
#[test]
fn sigterm_finishes_the_pass_and_exits_zero() {
    let mut child = refresher(
        &[],
        &[
            "--sandbox",
            "--interval-secs",
            "2",
            "--jitter-secs",
            "0",
            "--metrics-addr",
            "127.0.0.1:0",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start the refresher");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Wait (bounded) for two passes.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut lines = Vec::new();
    while lines
        .iter()
        .filter(|l: &&String| l.contains(": pass "))
        .count()
        < 2
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("no two passes within 60 s: {lines:#?}");
            }
        }
    }
    // The metrics listener: refresh outcomes and the connection gauges, after a pass.
    let addr = lines
        .iter()
        .find_map(|l| l.strip_prefix("refresher: metrics on http://"))
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("no metrics address printed: {lines:#?}"))
        .to_owned();
    let metrics = http_get(&addr, "/metrics");
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    for series in [
        r#"integrations_refresh_total{provider="tiktok",outcome="refreshed"}"#,
        r#"integrations_connections{provider="tiktok",status="active"} 1"#,
        r#"integrations_connections{provider="reddit",status="active"} 1"#,
    ] {
        assert!(metrics.contains(series), "no {series} in:\n{metrics}");
    }
    assert!(!metrics.contains("sandbox-tiktok-secret"), "{metrics}");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(killed.success());
    let status = child.wait().expect("wait");
    lines.extend(rx.try_iter());
    assert!(status.success(), "{status:?}: {lines:#?}");
    let text = lines.join("\n");
    assert!(
        text.contains("refresher: SIGTERM: finishing the running pass"),
        "{text}"
    );
    assert!(text.contains("refresher: stopped; totals:"), "{text}");
    // Every pass refreshes the two short-lived sandbox tokens (the interval is longer
    // than `refresh_coalesce`, 2 s, which would otherwise reuse the first result).
    assert!(text.contains("pass 2: claimed 2 refreshed 2"), "{text}");
}
