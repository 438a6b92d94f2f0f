//! Shared set-up of the example binaries: the four platform providers pointed at the
//! local sandbox, the encryption key file of the embedded default, and following an
//! authorization URL the way a browser would.
//!
//! The binaries are `quickstart` (the whole flow in one command), `server` (the REST API
//! and page), `refresher` (the background refresher over `DATABASE_URL`, which also
//! delivers connection events as signed webhooks) and `webhook_receiver` (a host's
//! endpoint for them).

pub mod config;
pub mod metrics;
pub mod registry;
pub mod server;
pub mod webhooks;

pub use registry::sandbox_providers;

use integrations_core::{CallbackParams, EncryptionKey, TokenCipher};
use std::path::Path;
use url::Url;

/// Errors of the examples' set-up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A provider could not be configured.
    #[error("provider set-up failed: {0}")]
    Provider(#[from] integrations_core::ProviderError),
    /// The key file could not be read or written.
    #[error("key file {path}: {message}")]
    KeyFile {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A variable has a value it cannot have.
    #[error("{0}")]
    Variable(String),
    /// The extra providers' file (`PROVIDERS_FILE`) is unreadable or wrong.
    #[error("providers file: {0}")]
    ProvidersFile(String),
    /// Two providers have the same id.
    #[error("provider `{0}` is registered twice")]
    DuplicateProvider(String),
    /// The local platform sandbox could not start.
    #[error("sandbox: {0}")]
    Sandbox(#[from] integrations_sandbox::Error),
    /// The authorization URL did not redirect back as expected.
    #[error("authorization did not redirect back: {0}")]
    Authorization(String),
}

/// Reads a boolean variable the one way every example binary does: `true`/`false`,
/// `1`/`0`, `yes`/`no`, `on`/`off` in any case; unset or empty is `None`; anything else is
/// an error naming the variable (never a silent `false`).
pub fn env_bool(
    lookup: &dyn Fn(&str) -> Option<String>,
    name: &str,
) -> Result<Option<bool>, SetupError> {
    let Some(value) = lookup(name).filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(Some(true)),
        "false" | "0" | "no" | "off" => Ok(Some(false)),
        _ => Err(SetupError::Variable(format!(
            "{name} must be true or false (or 1/0, yes/no, on/off), got {value:?}"
        ))),
    }
}

/// The User-Agent the examples send (Reddit requires a descriptive one).
pub const USER_AGENT: &str = "rust:integrations-examples:0.1.0 (by /u/integrations-demo)";

/// Loads the cipher: from `TOKEN_ENCRYPTION_KEY` when set, otherwise from `key_file`,
/// creating the file with a fresh random key (mode 0600) on first use. Returns whether a
/// key was generated.
pub fn load_or_create_key(key_file: &Path) -> Result<(TokenCipher, bool), SetupError> {
    if std::env::var_os(integrations_core::crypto::KEY_ENV).is_some() {
        return TokenCipher::from_env()
            .map(|c| (c, false))
            .map_err(|e| SetupError::KeyFile {
                path: integrations_core::crypto::KEY_ENV.to_owned(),
                message: e.to_string(),
            });
    }
    let fail = |message: String| SetupError::KeyFile {
        path: key_file.display().to_string(),
        message,
    };
    match std::fs::read_to_string(key_file) {
        Ok(text) => {
            let key = EncryptionKey::from_base64(&text).map_err(|e| fail(e.to_string()))?;
            Ok((TokenCipher::new(key), false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = EncryptionKey::generate();
            if let Some(dir) = key_file.parent() {
                std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
            }
            write_private(key_file, key.to_base64().as_bytes()).map_err(|e| fail(e.to_string()))?;
            Ok((TokenCipher::new(key), true))
        }
        Err(e) => Err(fail(e.to_string())),
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// Follows an authorization URL the way a browser would, without running anything at the
/// redirect URI: requests it (and any redirect inside the sandbox) until a redirect
/// leaves for the redirect URI, and returns that redirect's query parameters.
pub async fn follow_authorization(
    auth_url: &Url,
    redirect_prefix: &str,
) -> Result<CallbackParams, SetupError> {
    // One client for every call (tests connect thousands of accounts through here).
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let client = match CLIENT.get() {
        Some(c) => c,
        None => {
            let built = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(USER_AGENT)
                .build()
                .map_err(|e| SetupError::Authorization(e.to_string()))?;
            CLIENT.get_or_init(|| built)
        }
    };
    let mut url = auth_url.clone();
    for _ in 0..5 {
        let resp = client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| SetupError::Authorization(format!("request failed: {e}")))?;
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                SetupError::Authorization(format!("HTTP {} without a redirect", resp.status()))
            })?;
        let next = url
            .join(location)
            .map_err(|e| SetupError::Authorization(format!("bad Location: {e}")))?;
        if next.as_str().starts_with(redirect_prefix) {
            return Ok(CallbackParams::from_query(next.query().unwrap_or_default()));
        }
        url = next;
    }
    Err(SetupError::Authorization("too many redirects".into()))
}

/// A short, non-reversible fingerprint of a secret (the first 8 hex digits of its
/// SHA-256), to show that a token changed without printing it.
pub fn fingerprint(secret: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(secret.as_bytes())[..4])
}
