//! An in-process HTTP/1.1 server that answers each request with the next scripted
//! [`Reply`], so that the real providers parse the fuzzer's replies through their whole
//! public path (request, capped read, classification, parsing).

use crate::reply::Reply;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

#[derive(Debug, Default)]
struct Script {
    replies: VecDeque<Reply>,
    served: Vec<Reply>,
}

/// The server; it runs on the runtime it was started on, while that runtime is driven.
#[derive(Debug)]
pub struct Server {
    base_url: String,
    script: Arc<Mutex<Script>>,
}

/// The answer once the script is used up.
fn exhausted() -> Reply {
    Reply {
        status: 503,
        headers: Vec::new(),
        body: b"no scripted reply".to_vec(),
    }
}

impl Server {
    /// Binds a free loopback port and serves on `runtime`.
    ///
    /// # Panics
    ///
    /// When no port can be bound.
    pub fn start(runtime: &Runtime) -> Self {
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("a loopback port");
        let addr = listener.local_addr().expect("the bound address");
        let script = Arc::new(Mutex::new(Script::default()));
        let shared = script.clone();
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        Self {
            base_url: format!("http://{addr}"),
            script,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Replaces the script: the next requests get `replies` in order, then 503s.
    pub fn script(&self, replies: Vec<Reply>) {
        let mut s = self.script.lock().unwrap_or_else(PoisonError::into_inner);
        s.replies = replies.into();
        s.served.clear();
    }

    /// The replies served since the last [`script`](Self::script).
    pub fn served(&self) -> Vec<Reply> {
        self.script
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .served
            .clone()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The `Content-Length` of a request head (0 without one).
fn content_length(head: &[u8]) -> usize {
    String::from_utf8_lossy(head)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

async fn serve(mut stream: TcpStream, script: Arc<Mutex<Script>>) {
    let mut buf = Vec::with_capacity(4096);
    loop {
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        let total = head_end + content_length(&buf[..head_end]);
        while buf.len() < total {
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        buf.drain(..total);
        let reply = {
            let mut s = script.lock().unwrap_or_else(PoisonError::into_inner);
            let reply = s.replies.pop_front().unwrap_or_else(exhausted);
            s.served.push(reply.clone());
            reply
        };
        if stream.write_all(&reply.to_http()).await.is_err() {
            return;
        }
    }
}
