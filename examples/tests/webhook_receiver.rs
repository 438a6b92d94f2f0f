//! The `webhook_receiver` example: accepts a signed event once, refuses a forged one.

use integrations_core::webhooks::{WebhookSecret, signature_header};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

fn post(addr: &str, headers: &[(&str, String)], body: &str) -> u16 {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    let mut req = format!(
        "POST /hooks/integrations HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).expect("write");
    let mut resp = String::new();
    stream.read_to_string(&mut resp).expect("read");
    resp[9..12].parse().expect("status")
}

#[test]
fn accepts_signed_events_once_and_refuses_forged_ones() {
    let (secret, shown) = WebhookSecret::generate();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_webhook_receiver"))
        .env("WEBHOOK_SECRET", &shown)
        .env("WEBHOOK_RECEIVER_ADDR", &addr)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a line").expect("utf-8");
    assert!(first.contains("listening"), "{first}");

    let body = r#"{"type":"connection.needs_reconnect","timestamp":"2026-11-30T21:00:00.000Z","data":{"id":"evt_1","position":7,"user_id":42,"provider":"instagram","provider_account_id":"1784","payload":{"status":"needs_reconnect"}}}"#;
    let ts = chrono::Utc::now().timestamp();
    let signed = |id: &str, body: &str, secret: &WebhookSecret| {
        vec![
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", ts.to_string()),
            (
                "webhook-signature",
                signature_header(std::slice::from_ref(secret), id, ts, body.as_bytes()),
            ),
        ]
    };
    assert_eq!(post(&addr, &signed("evt_1", body, &secret), body), 204);
    // A retry of the same id is acknowledged and not handled again.
    assert_eq!(post(&addr, &signed("evt_1", body, &secret), body), 204);
    let (other, _) = WebhookSecret::generate();
    assert_eq!(
        post(&addr, &signed("evt_2", body, &other), body),
        401,
        "wrong secret"
    );
    let tampered = body.replace("42", "43");
    assert_eq!(
        post(&addr, &signed("evt_3", body, &secret), &tampered),
        401,
        "body changed after signing"
    );
    // A marker event, so that the output read below is complete.
    let marker = body.replace("evt_1", "evt_9");
    assert_eq!(
        post(&addr, &signed("evt_9", &marker, &secret), &marker),
        204
    );
    let _ = child.kill();
    let mut handled = Vec::new();
    for line in lines.map_while(Result::ok) {
        handled.push(line.clone());
        if line.starts_with("evt_9") {
            break;
        }
    }
    let _ = child.wait();
    assert_eq!(handled.len(), 2, "{handled:#?}");
    assert!(handled[0].starts_with("evt_1 connection.needs_reconnect user 42 instagram:1784"));
}
