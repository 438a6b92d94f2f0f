//! The example server's settings: [`ServerConfig`], read from the environment by the
//! binary ([`ServerConfig::from_env`]) or written out by tests, and the errors of starting
//! it ([`ServerError`]).

use crate::registry::{self, PLATFORMS};
use crate::{SetupError, load_or_create_key};
use integrations_core::{Clock, Provider, TokenCipher};
use integrations_sandbox::Consent;
use integrations_storage_diesel::StoreOptions;
use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// Errors of starting the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A setting is missing or malformed.
    #[error("configuration: {0}")]
    Config(String),
    /// Providers, the sandbox or the key could not be set up.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] integrations_storage_diesel::Error),
    /// Binding the port failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// How to run the server. [`ServerConfig::default`] suits tests (any free port, in-memory
/// SQLite, sandbox for every platform, a generated key); [`ServerConfig::from_env`] suits
/// the binary.
pub struct ServerConfig {
    /// Port on 127.0.0.1; `0` picks a free one.
    pub port: u16,
    /// `postgres://…` or `sqlite://path`; `None`: `sqlite://<data_dir>/integrations.db`.
    pub database_url: Option<String>,
    /// Pool size, PostgreSQL schema, migrations (default: migrate, public schema).
    pub store_options: StoreOptions,
    /// Where the default SQLite file and the generated encryption key live.
    pub data_dir: PathBuf,
    /// The token cipher; `None`: `TOKEN_ENCRYPTION_KEY`, else a key file in `data_dir`.
    pub cipher: Option<TokenCipher>,
    /// The session-cookie signing key (at least 64 bytes); `None`: a random one (sessions
    /// end when the server stops).
    pub session_secret: Option<Vec<u8>>,
    /// Platforms switched off (`ENABLE_<PROVIDER>_INTEGRATION=false`): not registered, not
    /// shown.
    pub disabled: BTreeSet<String>,
    /// Build a platform's provider from its `from_env()` when its credentials are set
    /// (`INSTAGRAM_CLIENT_ID`, `TIKTOK_CLIENT_KEY`, `REDDIT_CLIENT_ID`, `ONLYFANS_API_KEY`);
    /// the others use the sandbox.
    pub credentials_from_env: bool,
    /// The service clock (tests inject a `ManualClock`); `None`: the system clock.
    pub clock: Option<Arc<dyn Clock>>,
    /// The sandbox's consent mode; `None` shows its consent pages (the default).
    pub sandbox_auto_consent: Option<Consent>,
    /// Providers beyond the built-in platforms, such as those of a `PROVIDERS_FILE`
    /// ([`registry::load_providers_file`]).
    pub extra_providers: Vec<Arc<dyn Provider>>,
    /// Mark the session cookie `Secure` (behind HTTPS).
    pub secure_cookies: bool,
    /// Serve `GET /metrics` (Prometheus text, no session needed; the connection gauges are
    /// counted at each scrape). The server listens on 127.0.0.1 only; anything exposed
    /// further must keep this route internal.
    pub metrics: bool,
    /// Deliver the store's connection events as signed webhooks, configured by the
    /// `WEBHOOK_*` variables ([`crate::webhooks`]); [`from_env`](Self::from_env) turns it
    /// on when `WEBHOOK_URL` is set.
    pub webhooks_from_env: bool,
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("port", &self.port)
            .field(
                "database_url",
                &self.database_url.as_ref().map(|_| "[configured]"),
            )
            .field("store_options", &self.store_options)
            .field("data_dir", &self.data_dir)
            .field("cipher", &self.cipher)
            .field(
                "session_secret",
                &self.session_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("disabled", &self.disabled)
            .field("credentials_from_env", &self.credentials_from_env)
            .field("clock", &self.clock)
            .field("sandbox_auto_consent", &self.sandbox_auto_consent)
            .field(
                "extra_providers",
                &self
                    .extra_providers
                    .iter()
                    .map(|p| p.id().as_str())
                    .collect::<Vec<_>>(),
            )
            .field("secure_cookies", &self.secure_cookies)
            .field("metrics", &self.metrics)
            .field("webhooks_from_env", &self.webhooks_from_env)
            .finish()
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            port: 0,
            database_url: Some("sqlite::memory:".into()),
            store_options: StoreOptions::default(),
            data_dir: PathBuf::from("server-data"),
            cipher: None,
            session_secret: None,
            disabled: BTreeSet::new(),
            credentials_from_env: false,
            clock: None,
            sandbox_auto_consent: None,
            extra_providers: Vec::new(),
            secure_cookies: false,
            metrics: false,
            webhooks_from_env: false,
        }
    }
}

impl ServerConfig {
    /// Reads the binary's settings from the environment:
    ///
    /// - `PORT` (default 3000);
    /// - `DATABASE_URL` (`postgres://…` or `sqlite://path`; default the SQLite file
    ///   `<dir>/integrations.db`);
    /// - `INTEGRATIONS_SERVER_DIR` (default `./server-data`): the SQLite file and, unless
    ///   `TOKEN_ENCRYPTION_KEY` is set, a generated key file;
    /// - `SESSION_SECRET`: at least 64 bytes signing the session cookie (default: random
    ///   per start);
    /// - `ENABLE_<PROVIDER>_INTEGRATION=false` switches a platform off;
    /// - real platform credentials (`INSTAGRAM_CLIENT_ID`, `TIKTOK_CLIENT_KEY`,
    ///   `REDDIT_CLIENT_ID`, `ONLYFANS_API_KEY` and the rest each provider's `from_env`
    ///   lists) replace the sandbox for that platform;
    /// - `PROVIDERS_FILE`: extra OAuth 2.0 providers
    ///   ([`registry::providers_file_from_env`]);
    /// - `SECURE_COOKIES=true` marks the cookie `Secure`;
    /// - `METRICS=false` turns `GET /metrics` off (on by default);
    /// - `WEBHOOK_URL`, `WEBHOOK_SECRET` and the rest of [`crate::webhooks`]: deliver the
    ///   connection events to that endpoint as signed webhooks (`docs/events.md`).
    ///
    /// Booleans read `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off` in any case; any other
    /// value is an error at start ([`env_bool`](crate::env_bool)).
    pub fn from_env() -> Result<Self, ServerError> {
        let lookup = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let port = match lookup("PORT") {
            Some(p) => p
                .trim()
                .parse()
                .map_err(|_| ServerError::Config("PORT must be a port number".into()))?,
            None => 3000,
        };
        let session_secret = lookup("SESSION_SECRET").map(String::into_bytes);
        if session_secret.as_ref().is_some_and(|s| s.len() < 64) {
            return Err(ServerError::Config(
                "SESSION_SECRET must be at least 64 bytes".into(),
            ));
        }
        Ok(Self {
            port,
            database_url: lookup("DATABASE_URL"),
            store_options: StoreOptions::default(),
            data_dir: lookup("INTEGRATIONS_SERVER_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("server-data")),
            cipher: None,
            session_secret,
            disabled: PLATFORMS
                .iter()
                .map(|p| Ok((p.id, p.enabled(&lookup)?)))
                .collect::<Result<Vec<_>, SetupError>>()?
                .into_iter()
                .filter(|(_, on)| !on)
                .map(|(id, _)| id.to_owned())
                .collect(),
            credentials_from_env: true,
            clock: None,
            sandbox_auto_consent: None,
            extra_providers: registry::providers_file_from_env(&lookup)?,
            secure_cookies: crate::env_bool(&lookup, "SECURE_COOKIES")?.unwrap_or(false),
            metrics: crate::env_bool(&lookup, "METRICS")?.unwrap_or(true),
            webhooks_from_env: lookup("WEBHOOK_URL").is_some(),
        })
    }

    /// The store's URL: [`database_url`](Self::database_url), else the SQLite file
    /// `<data_dir>/integrations.db` (creating `data_dir`).
    pub fn store_url(&self) -> std::io::Result<String> {
        if let Some(url) = &self.database_url {
            return Ok(url.clone());
        }
        std::fs::create_dir_all(&self.data_dir)?;
        let file = self.data_dir.join("integrations.db");
        Ok(format!("sqlite://{}", file.display()))
    }

    /// The token cipher: [`cipher`](Self::cipher), else `TOKEN_ENCRYPTION_KEY`, else the
    /// key file `<data_dir>/server.key`, generated on first use with a warning that
    /// production keys do not belong there ([`load_or_create_key`]).
    pub fn token_cipher(&self) -> Result<TokenCipher, SetupError> {
        if let Some(cipher) = &self.cipher {
            return Ok(cipher.clone());
        }
        let path = self.data_dir.join("server.key");
        let (cipher, created) = load_or_create_key(&path)?;
        if created {
            tracing::warn!(
                path = %path.display(),
                "generated a new token encryption key; production keys belong in TOKEN_ENCRYPTION_KEY, never next to the database"
            );
        }
        Ok(cipher)
    }
}
