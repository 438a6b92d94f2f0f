//! The sandbox in a child process of the benchmark binary, so that the platform's CPU
//! and memory are not counted as the pipeline's, and every call crosses loopback TCP.
//!
//! The binary re-runs itself with [`SERVE_FLAG`]; the child starts an
//! `integrations-sandbox` with automatic consent, prints one JSON line (base URL and the
//! TikTok demo client) and serves until its stdin closes, which happens when the parent
//! drops the [`SandboxProcess`] or exits.

use crate::Result;
use integrations_sandbox::{Consent, Platform, Sandbox, SandboxClient, SandboxConfig};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The argument that makes the benchmark binary serve the sandbox.
pub const SERVE_FLAG: &str = "--serve-sandbox";

/// What the child announces.
#[derive(Clone, Serialize, Deserialize)]
pub struct SandboxInfo {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The TikTok demo client.
    pub tiktok: SandboxClient,
}

impl std::fmt::Debug for SandboxInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxInfo")
            .field("base_url", &self.base_url)
            .field("tiktok", &self.tiktok)
            .finish()
    }
}

impl SandboxInfo {
    /// TikTok `www_base_url`.
    pub fn tiktok_www(&self) -> String {
        format!("{}/tiktok/www", self.base_url)
    }
    /// TikTok `api_base_url`.
    pub fn tiktok_open(&self) -> String {
        format!("{}/tiktok/open", self.base_url)
    }
}

/// The child's side: serves until stdin closes. Runs on the caller's runtime.
pub async fn serve() -> Result<()> {
    let sandbox = Sandbox::start_with(SandboxConfig {
        auto_consent: Some(Consent::Allow),
        ..SandboxConfig::default()
    })
    .await?;
    let info = SandboxInfo {
        base_url: sandbox.base_url().to_owned(),
        tiktok: sandbox.client(Platform::TikTok),
    };
    println!("{}", serde_json::to_string(&info)?);
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let stdin = std::io::stdin();
        while stdin.lock().read_line(&mut line).is_ok_and(|n| n > 0) {
            line.clear();
        }
    })
    .await?;
    sandbox.shutdown().await;
    Ok(())
}

/// The parent's side: a running child sandbox.
#[derive(Debug)]
pub struct SandboxProcess {
    child: Child,
    /// Where it listens and its TikTok client.
    pub info: SandboxInfo,
}

impl SandboxProcess {
    /// Starts `current_exe() --serve-sandbox` and reads its announcement.
    pub fn spawn() -> Result<Self> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .arg(SERVE_FLAG)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or("the sandbox child has no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let info: SandboxInfo = match serde_json::from_str(line.trim()) {
            Ok(info) => info,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("the sandbox child did not announce itself: {e}").into());
            }
        };
        Ok(Self { child, info })
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        // Closing stdin makes the child shut down; then reap it.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}
