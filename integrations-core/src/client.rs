//! The provider toolkit: what every platform crate builds on.
//!
//! - [`ClientSpec`]: a platform's names and defaults (its variable prefix, what it calls
//!   the client id, its base URLs, default scopes and `User-Agent`), one `static` per crate.
//! - [`ClientConfig`] and [`ClientConfigBuilder`]: the OAuth client settings every platform
//!   has (client id, client secret, redirect URI, scopes, base URLs, timeout, body limit,
//!   `User-Agent`), checked once in [`build`](ClientConfigBuilder::build) and read from the
//!   environment by [`with_env`](ClientConfigBuilder::with_env). A provider's config
//!   embeds one and adds only what its platform adds; [`client_settings!`](crate::client_settings)
//!   gives it the shared setters and getters.
//! - [`ApiClient`]: the provider's one HTTP client. [`ApiClient::call`] sends, reads the body
//!   under the cap, classifies the reply with the crate's [`Classify`] and scrubs the
//!   secrets the request carried out of any error ([`scrub_error`], the only place this
//!   is done).
//!
//! # Variables
//!
//! With `PREFIX` the spec's [`env_prefix`](ClientSpec::env_prefix) (`REDDIT`, ...), every
//! field has the variable `PREFIX_<FIELD>` in upper case:
//!
//! | variable | field | |
//! |---|---|---|
//! | `PREFIX_CLIENT_ID` (the spec's name for it: `TIKTOK_CLIENT_KEY`) | client id | required, unless the platform has none |
//! | `PREFIX_CLIENT_SECRET` (or the spec's name: `ONLYFANS_API_KEY`) | client secret | required; empty only where the spec allows it |
//! | `PREFIX_REDIRECT_URI` | redirect URI | required, absolute http(s) |
//! | `PREFIX_SCOPES` | default scopes, spaces or commas | optional; not read for a platform without scopes |
//! | `PREFIX_<NAME>` for each base URL (`PREFIX_WWW_BASE_URL`, ...) | base URLs | optional |
//! | `PREFIX_TIMEOUT_SECS` | total timeout of a request, seconds (fractions allowed) | optional, default 20 |
//! | `PREFIX_BODY_LIMIT` | largest response body, bytes | optional, default 1 MiB |
//! | `PREFIX_USER_AGENT` | `User-Agent` | required when the spec has no default |
//! | `PREFIX_WEBHOOK_SECRETS` | more secrets the platform's webhooks may be signed with, commas | optional ([`WebhookSettings`]) |
//! | `PREFIX_WEBHOOK_VERIFY_TOKEN` | the webhook subscription handshake's verify token | optional |
//! | `PREFIX_WEBHOOK_TOLERANCE_SECS` | how far a signed webhook timestamp may be from now | optional, default 300 |
//!
//! A variable set to an empty value counts as unset, except the client secret of a
//! platform that allows an empty one.
//!
//! # A platform without client id or scopes
//!
//! A gateway such as OnlyFans' has an API key and no scopes: its spec sets
//! `client_id: None`, `client_secret: "api_key"` (so the variable is `ONLYFANS_API_KEY`)
//! and no default scopes; the builder then asks for neither a client id nor scopes, and
//! [`ClientConfig::client_secret`] is the key.

use crate::http::{self, CappedResponse, DEFAULT_BODY_LIMIT, DEFAULT_TIMEOUT};
use crate::provider::ProviderError;
use crate::secret::ClientSecret;
use reqwest::header::{HeaderMap, HeaderValue, USER_AGENT};
use reqwest::{IntoUrl, RequestBuilder};
use std::fmt::{self, Display};
use std::time::Duration;
use url::Url;

/// A base URL of a platform: its field name and default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseUrl {
    /// The field, such as `"www_base_url"`; its variable is `PREFIX_WWW_BASE_URL`.
    pub name: &'static str,
    /// The real platform's URL.
    pub default: &'static str,
}

impl BaseUrl {
    /// A base URL named `name` (a builder field such as `"www_base_url"`).
    pub const fn new(name: &'static str, default: &'static str) -> Self {
        Self { name, default }
    }
}

/// A platform's names and defaults for its [`ClientConfig`].
#[derive(Debug, Clone, Copy)]
pub struct ClientSpec {
    /// The provider id, prefixed to every configuration error (`"reddit"`).
    pub provider: &'static str,
    /// The variable prefix (`"REDDIT"`).
    pub env_prefix: &'static str,
    /// What the platform calls the client id (`"client_id"`, TikTok's `"client_key"`), or
    /// `None` when it has none.
    pub client_id: Option<&'static str>,
    /// What the platform calls the client secret (`"client_secret"`, or `"api_key"`).
    pub client_secret: &'static str,
    /// Whether the secret may be empty (Reddit's "installed" apps have none).
    pub empty_secret_allowed: bool,
    /// Scopes asked for when none are configured; empty for a platform without scopes.
    pub default_scopes: &'static [&'static str],
    /// Scopes always added, at the front, when missing (Reddit's `identity`).
    pub required_scopes: &'static [&'static str],
    /// The base URLs, in the order [`ClientConfig`] keeps them.
    pub base_urls: &'static [BaseUrl],
    /// The `User-Agent` when none is configured; `None` makes it required.
    pub default_user_agent: Option<&'static str>,
}

impl ClientSpec {
    /// The variable of a field: `PREFIX_FIELD`.
    pub fn var(&self, field: &str) -> String {
        format!("{}_{}", self.env_prefix, field.to_ascii_uppercase())
    }

    /// A [`ProviderError::Config`] prefixed with the provider.
    pub fn error(&self, message: impl Display) -> ProviderError {
        ProviderError::Config(format!("{}: {message}", self.provider))
    }

    /// `field (VARIABLE)`, for messages.
    fn field(&self, field: &str) -> String {
        format!("{field} ({})", self.var(field))
    }

    fn takes_scopes(&self) -> bool {
        !self.default_scopes.is_empty() || !self.required_scopes.is_empty()
    }

    /// `scopes` with the required scopes added at the front when missing.
    fn with_required(&self, mut scopes: Vec<String>) -> Vec<String> {
        for required in self.required_scopes.iter().rev() {
            if !scopes.iter().any(|s| s == required) {
                scopes.insert(0, (*required).to_owned());
            }
        }
        scopes
    }
}

/// The OAuth client settings of a provider, checked. `Debug` never prints the secret.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    spec: &'static ClientSpec,
    client_id: String,
    client_secret: ClientSecret,
    redirect_uri: Url,
    scopes: Vec<String>,
    base_urls: Vec<String>,
    timeout: Duration,
    body_limit: usize,
    user_agent: String,
    webhooks: WebhookSettings,
}

/// How a provider checks its platform's webhooks (see
/// [`platform_webhooks`](crate::platform_webhooks)); part of [`ClientConfig`].
#[derive(Clone, Default)]
pub struct WebhookSettings {
    /// Secrets the platform signs its webhooks with, besides any the provider takes
    /// from its client settings (Instagram and TikTok sign with the client secret): the
    /// Meta app secret, a gateway's signing secret, an old secret during a rotation.
    pub secrets: Vec<ClientSecret>,
    /// The verify token of a subscription handshake (Meta's `hub.verify_token`).
    pub verify_token: Option<ClientSecret>,
    /// How far a signed timestamp may be from now (default
    /// [`DEFAULT_TOLERANCE`](crate::platform_webhooks::DEFAULT_TOLERANCE), 5 minutes).
    pub tolerance: Option<Duration>,
}

impl fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("secrets", &self.secrets.len())
            .field(
                "verify_token",
                &self.verify_token.as_ref().map(|_| "[redacted]"),
            )
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

impl WebhookSettings {
    /// The tolerance, or the default.
    pub fn tolerance(&self) -> Duration {
        self.tolerance
            .unwrap_or(crate::platform_webhooks::DEFAULT_TOLERANCE)
    }
}

impl ClientConfig {
    /// How the platform's webhooks are checked.
    pub fn webhooks(&self) -> &WebhookSettings {
        &self.webhooks
    }

    /// The platform's names and defaults.
    pub fn spec(&self) -> &'static ClientSpec {
        self.spec
    }

    /// The client id (empty when the platform has none).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The client secret (or API key).
    pub fn client_secret(&self) -> &ClientSecret {
        &self.client_secret
    }

    /// The registered redirect URI.
    pub fn redirect_uri(&self) -> &Url {
        &self.redirect_uri
    }

    /// Scopes asked for when the service passes none.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// A base URL of the spec, without a trailing `/` (its default if `which` is not one
    /// of the spec's).
    pub fn base_url(&self, which: &BaseUrl) -> &str {
        self.spec
            .base_urls
            .iter()
            .position(|b| b.name == which.name)
            .map_or(which.default, |i| &self.base_urls[i])
    }

    /// The scopes to ask for: the configured ones when `requested` is empty, otherwise
    /// `requested` with the spec's required scopes added.
    pub fn scopes_for(&self, requested: &[String]) -> Vec<String> {
        if requested.is_empty() {
            return self.scopes.clone();
        }
        self.spec.with_required(requested.to_vec())
    }

    /// `<base URL><path>?<query>`, such as the authorization page's URL.
    pub fn url(
        &self,
        which: &BaseUrl,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Url, ProviderError> {
        let mut url = Url::parse(&format!("{}{path}", self.base_url(which)))
            .map_err(|e| self.spec.error(format_args!("bad {}: {e}", which.name)))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// The [`OAuthApp`](crate::engine::OAuthApp) of these settings for the
    /// [engine](crate::engine): the client, the redirect URI and the endpoints, each a
    /// path under one of the base URLs.
    pub fn oauth_app(
        &self,
        authorize: (&BaseUrl, &str),
        token: (&BaseUrl, &str),
        revoke: Option<(&BaseUrl, &str)>,
    ) -> Result<crate::engine::OAuthApp, ProviderError> {
        let at = |(which, path): (&BaseUrl, &str)| self.url(which, path, &[]);
        Ok(crate::engine::OAuthApp {
            client_id: self.client_id.clone(),
            client_secret: Some(self.client_secret.clone()),
            redirect_uri: self.redirect_uri.clone(),
            authorize_url: at(authorize)?,
            token_url: at(token)?,
            revoke_url: revoke.map(at).transpose()?,
        })
    }

    /// Total timeout of one HTTP request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Largest response body read, in bytes; larger replies fail with `Protocol` without
    /// being buffered.
    pub fn body_limit(&self) -> usize {
        self.body_limit
    }

    /// The `User-Agent` sent on every request.
    pub fn user_agent(&self) -> &str {
        &self.user_agent
    }
}

/// Builder of a [`ClientConfig`]; every check happens in [`build`](Self::build).
#[derive(Debug, Clone)]
pub struct ClientConfigBuilder {
    spec: &'static ClientSpec,
    client_id: Option<String>,
    client_secret: Option<ClientSecret>,
    redirect_uri: Option<String>,
    scopes: Option<Vec<String>>,
    base_urls: Vec<(&'static str, String)>,
    timeout: Option<Duration>,
    body_limit: Option<usize>,
    user_agent: Option<String>,
    webhooks: WebhookSettings,
}

impl ClientConfigBuilder {
    /// An empty builder for a platform.
    pub fn new(spec: &'static ClientSpec) -> Self {
        Self {
            spec,
            client_id: None,
            client_secret: None,
            redirect_uri: None,
            scopes: None,
            base_urls: Vec::new(),
            timeout: None,
            body_limit: None,
            user_agent: None,
            webhooks: WebhookSettings::default(),
        }
    }

    /// Adds a secret the platform's webhooks may be signed with (see
    /// [`WebhookSettings::secrets`]).
    pub fn webhook_secret(mut self, secret: ClientSecret) -> Self {
        self.webhooks.secrets.push(secret);
        self
    }

    /// The verify token of the platform's webhook subscription handshake.
    pub fn webhook_verify_token(mut self, token: ClientSecret) -> Self {
        self.webhooks.verify_token = Some(token);
        self
    }

    /// How far a webhook's signed timestamp may be from now (default 5 minutes).
    pub fn webhook_tolerance(mut self, tolerance: Duration) -> Self {
        self.webhooks.tolerance = Some(tolerance);
        self
    }

    /// The client id (required when the spec names one).
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// The client secret (required; empty only if the spec allows it).
    pub fn client_secret(mut self, client_secret: ClientSecret) -> Self {
        self.client_secret = Some(client_secret);
        self
    }

    /// The registered redirect URI (required, absolute http(s) URL).
    pub fn redirect_uri(mut self, redirect_uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(redirect_uri.into());
        self
    }

    /// Default scopes; each non-empty, without spaces or commas. An empty list keeps the
    /// spec's default.
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// A base URL (absolute http(s), no query or fragment; a path prefix is kept, a
    /// trailing `/` dropped).
    pub fn base_url(mut self, which: &BaseUrl, url: impl Into<String>) -> Self {
        self.base_urls.retain(|(name, _)| *name != which.name);
        self.base_urls.push((which.name, url.into()));
        self
    }

    /// Total timeout of one request (default 20 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Largest response body read, in bytes (default 1 MiB).
    pub fn body_limit(mut self, limit: usize) -> Self {
        self.body_limit = Some(limit);
        self
    }

    /// The `User-Agent` header.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Sets every field whose variable `lookup` finds (the [module docs](self) list them);
    /// a required variable that is missing is an error naming it. Values are checked by
    /// [`build`](Self::build).
    pub fn with_env(
        mut self,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ProviderError> {
        let spec = self.spec;
        let raw = |field: &str| lookup(&spec.var(field)).map(|v| v.trim().to_owned());
        let get = |field: &str| raw(field).filter(|v| !v.is_empty());
        let not_set = |field: &str| spec.error(format_args!("{} is not set", spec.var(field)));
        let required = |field: &str| get(field).ok_or_else(|| not_set(field));
        if let Some(id) = spec.client_id {
            self.client_id = Some(required(id)?);
        }
        let secret = if spec.empty_secret_allowed {
            raw(spec.client_secret)
        } else {
            get(spec.client_secret)
        };
        self.client_secret = Some(ClientSecret::new(
            secret.ok_or_else(|| not_set(spec.client_secret))?,
        ));
        self.redirect_uri = Some(required("redirect_uri")?);
        if let Some(scopes) = get("scopes").filter(|_| spec.takes_scopes()) {
            let scopes = http::split_scopes(&scopes);
            if scopes.is_empty() {
                return Err(spec.error(format_args!(
                    "{} is set but names no scope",
                    spec.var("scopes")
                )));
            }
            self.scopes = Some(scopes);
        }
        for which in spec.base_urls {
            if let Some(url) = get(which.name) {
                self = self.base_url(which, url);
            }
        }
        if let Some(secs) = get("timeout_secs") {
            let secs = secs
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
                .ok_or_else(|| {
                    spec.error(format_args!(
                        "{} must be a positive number of seconds",
                        spec.var("timeout_secs")
                    ))
                })?;
            self.timeout = Some(Duration::from_secs_f64(secs));
        }
        if let Some(limit) = get("body_limit") {
            self.body_limit = Some(limit.parse().map_err(|_| {
                spec.error(format_args!(
                    "{} must be a number of bytes",
                    spec.var("body_limit")
                ))
            })?);
        }
        if let Some(secrets) = get("webhook_secrets") {
            self.webhooks.secrets.extend(
                secrets
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(ClientSecret::new),
            );
        }
        if let Some(token) = get("webhook_verify_token") {
            self.webhooks.verify_token = Some(ClientSecret::new(token));
        }
        if let Some(secs) = get("webhook_tolerance_secs") {
            let secs: u64 = secs.parse().map_err(|_| {
                spec.error(format_args!(
                    "{} must be a whole number of seconds",
                    spec.var("webhook_tolerance_secs")
                ))
            })?;
            self.webhooks.tolerance = Some(Duration::from_secs(secs));
        }
        self.user_agent = match get("user_agent") {
            None if spec.default_user_agent.is_none() => return Err(not_set("user_agent")),
            ua => ua.or(self.user_agent),
        };
        Ok(self)
    }

    /// Checks every value and builds the settings. Errors are [`ProviderError::Config`]
    /// naming the field and its variable.
    pub fn build(self) -> Result<ClientConfig, ProviderError> {
        let spec = self.spec;
        let client_id = match spec.client_id {
            Some(name) => self
                .client_id
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    spec.error(format_args!("{} is missing or empty", spec.field(name)))
                })?,
            None => String::new(),
        };
        let client_secret = self
            .client_secret
            .filter(|s| spec.empty_secret_allowed || !s.expose_secret().is_empty())
            .ok_or_else(|| {
                spec.error(format_args!(
                    "{} is missing{}",
                    spec.field(spec.client_secret),
                    if spec.empty_secret_allowed {
                        ""
                    } else {
                        " or empty"
                    }
                ))
            })?;
        let redirect_uri = self
            .redirect_uri
            .ok_or_else(|| spec.error(format_args!("{} is missing", spec.field("redirect_uri"))))?;
        let redirect_uri =
            http::config_url(spec.provider, &redirect_uri, &spec.field("redirect_uri"))?;
        let scopes = match self.scopes {
            Some(s) if !s.is_empty() => s,
            _ => spec
                .default_scopes
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        };
        if let Some(bad) = scopes
            .iter()
            .find(|s| s.is_empty() || s.chars().any(|c| c.is_whitespace() || c == ','))
        {
            return Err(spec.error(format_args!(
                "scope {bad:?} ({}) is empty or contains a space or comma",
                spec.var("scopes")
            )));
        }
        let scopes = spec.with_required(scopes);
        if let Some((name, _)) = self
            .base_urls
            .iter()
            .find(|(name, _)| !spec.base_urls.iter().any(|b| b.name == *name))
        {
            return Err(spec.error(format_args!("{name} is not a base URL of this platform")));
        }
        let base_urls = spec
            .base_urls
            .iter()
            .map(|b| {
                let set = self.base_urls.iter().find(|(name, _)| *name == b.name);
                let url = set.map_or(b.default, |(_, url)| url.as_str());
                http::config_base_url(spec.provider, url, &spec.field(b.name))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() {
            return Err(spec.error("timeout must be greater than zero"));
        }
        let body_limit = self.body_limit.unwrap_or(DEFAULT_BODY_LIMIT);
        if body_limit == 0 {
            return Err(spec.error("body_limit must be greater than zero"));
        }
        let user_agent = self
            .user_agent
            .or_else(|| spec.default_user_agent.map(str::to_owned))
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                spec.error(format_args!(
                    "{} is missing or empty",
                    spec.field("user_agent")
                ))
            })?;
        if HeaderValue::from_str(&user_agent).is_err() {
            return Err(spec.error(format_args!(
                "{} contains characters not allowed in a header",
                spec.field("user_agent")
            )));
        }
        Ok(ClientConfig {
            spec,
            client_id,
            client_secret,
            redirect_uri,
            scopes,
            base_urls,
            timeout,
            body_limit,
            user_agent,
            webhooks: self.webhooks,
        })
    }
}

/// Gives a provider's config and builder, which hold a [`ClientConfig`] and a
/// [`ClientConfigBuilder`] in a field, what every provider config has:
///
/// - `Config::builder()`, `Config::from_env()` (documented by the doc comment given
///   first, which lists the variables) and `Config::from_lookup(lookup)`, which reads the
///   shared variables, then calls the `env:` function, if any, for the platform's own;
/// - getters: the client id under the platform's name (`id:`, left out for a platform
///   without one), `redirect_uri`, `scopes` (with `scopes:`, left out for a platform
///   without scopes), `timeout`, `body_limit`, `user_agent`, `client()` and one per base
///   URL;
/// - builder setters for the same, and for the secret under the platform's name
///   (`secret:`, such as `client_secret` or `api_key`); `Default` for the builder, with
///   the `extras:` fields (all `Option`s) unset.
///
/// The crate writes the structs and `Builder::build`.
///
/// ```ignore
/// integrations_core::client_settings! {
///     /// Reads the configuration from the process environment: ...
///     InstagramConfig, InstagramConfigBuilder, client, SPEC;
///     id: client_id;
///     secret: client_secret;
///     scopes: scopes;
///     base_urls: { www_base_url => WWW, api_base_url => API, graph_base_url => GRAPH };
///     extras: {};
/// }
/// ```
#[macro_export]
macro_rules! client_settings {
    ($(#[$from_env_doc:meta])*
     $config:ident, $builder:ident, $field:ident, $spec:path;
     $(id: $id:ident;)?
     secret: $secret:ident;
     $(scopes: $scopes:ident;)?
     base_urls: { $($url:ident => $which:path),* $(,)? };
     extras: { $($extra:ident),* $(,)? };
     $(env: $env:path;)?) => {
        impl $config {
            /// An empty builder.
            pub fn builder() -> $builder {
                $builder::default()
            }

            $(#[$from_env_doc])*
            pub fn from_env() -> Result<Self, $crate::ProviderError> {
                Self::from_lookup(|name| std::env::var(name).ok())
            }

            /// Like [`from_env`](Self::from_env), reading variables through `lookup`.
            pub fn from_lookup(
                lookup: impl Fn(&str) -> Option<String>,
            ) -> Result<Self, $crate::ProviderError> {
                let mut builder = Self::builder();
                builder.$field = builder.$field.with_env(&lookup)?;
                $(builder = $env(builder, &lookup)?;)?
                builder.build()
            }

            $(
                #[doc = concat!("The app's `", stringify!($id), "`.")]
                pub fn $id(&self) -> &str {
                    self.$field.client_id()
                }
            )?
            /// The registered redirect URI; sent at authorize and at the code exchange.
            pub fn redirect_uri(&self) -> &url::Url {
                self.$field.redirect_uri()
            }
            $(
                /// Scopes asked for when the service passes none.
                pub fn $scopes(&self) -> &[String] {
                    self.$field.scopes()
                }
            )?
            /// Total timeout of one HTTP request.
            pub fn timeout(&self) -> std::time::Duration {
                self.$field.timeout()
            }
            /// Largest response body read, in bytes.
            pub fn body_limit(&self) -> usize {
                self.$field.body_limit()
            }
            /// The `User-Agent` header sent on every request.
            pub fn user_agent(&self) -> &str {
                self.$field.user_agent()
            }
            /// The shared OAuth client settings.
            pub fn client(&self) -> &$crate::client::ClientConfig {
                &self.$field
            }
            $(
                #[doc = concat!("The `", stringify!($url), "` (no trailing `/`).")]
                pub fn $url(&self) -> &str {
                    self.$field.base_url(&$which)
                }
            )*
        }

        impl Default for $builder {
            fn default() -> Self {
                Self {
                    $field: $crate::client::ClientConfigBuilder::new(&$spec),
                    $($extra: None,)*
                }
            }
        }

        impl $builder {
            $(
                #[doc = concat!("The app's `", stringify!($id), "` (required).")]
                pub fn $id(mut self, value: impl Into<String>) -> Self {
                    self.$field = self.$field.client_id(value);
                    self
                }
            )?
            #[doc = concat!("The app's `", stringify!($secret), "` (required).")]
            pub fn $secret(mut self, secret: $crate::ClientSecret) -> Self {
                self.$field = self.$field.client_secret(secret);
                self
            }
            /// The registered redirect URI (required, absolute http(s) URL, matching the
            /// app's setting exactly).
            pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
                self.$field = self.$field.redirect_uri(uri);
                self
            }
            $(
                /// Default scopes; each non-empty, without spaces or commas. An empty list
                /// keeps the default.
                pub fn $scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
                    self.$field = self.$field.scopes(scopes);
                    self
                }
            )?
            /// Total timeout of one request (default 20 s).
            pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
                self.$field = self.$field.timeout(timeout);
                self
            }
            /// Largest response body read, in bytes (default 1 MiB).
            pub fn body_limit(mut self, limit: usize) -> Self {
                self.$field = self.$field.body_limit(limit);
                self
            }
            /// The `User-Agent` header sent on every request.
            pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
                self.$field = self.$field.user_agent(user_agent);
                self
            }
            /// Adds a secret the platform's webhooks may be signed with, besides any the
            /// provider takes from its client settings (`<PLATFORM>_WEBHOOK_SECRETS`,
            /// comma-separated).
            pub fn webhook_secret(mut self, secret: $crate::ClientSecret) -> Self {
                self.$field = self.$field.webhook_secret(secret);
                self
            }
            /// The verify token of the platform's webhook subscription handshake
            /// (`<PLATFORM>_WEBHOOK_VERIFY_TOKEN`).
            pub fn webhook_verify_token(mut self, token: $crate::ClientSecret) -> Self {
                self.$field = self.$field.webhook_verify_token(token);
                self
            }
            /// How far a webhook's signed timestamp may be from now (default 5 minutes;
            /// `<PLATFORM>_WEBHOOK_TOLERANCE_SECS`).
            pub fn webhook_tolerance(mut self, tolerance: std::time::Duration) -> Self {
                self.$field = self.$field.webhook_tolerance(tolerance);
                self
            }
            $(
                #[doc = concat!("Sets `", stringify!($url), "`: absolute http(s), a path prefix is kept, a trailing `/` dropped.")]
                pub fn $url(mut self, url: impl Into<String>) -> Self {
                    self.$field = self.$field.base_url(&$which, url);
                    self
                }
            )*
        }
    };
}

/// How a crate reads its platform's replies: one implementation per provider crate, on
/// its enum of endpoints.
pub trait Classify: Copy {
    /// The error a reply stands for, or `None` when the caller may parse it. Secrets need
    /// not be removed here: [`check`] scrubs every error.
    fn classify(self, response: &CappedResponse) -> Option<ProviderError>;
}

/// Classifies a reply with `endpoint` and scrubs `secrets` out of the error.
pub fn check<E: Classify>(
    response: CappedResponse,
    endpoint: E,
    secrets: &[&str],
) -> Result<CappedResponse, ProviderError> {
    match endpoint.classify(&response) {
        Some(e) => Err(scrub_error(e, secrets)),
        None => Ok(response),
    }
}

/// Replaces the given secrets (8 characters or more) in every text of `err` with
/// `[redacted]`, in case a platform echoes what it was sent.
pub fn scrub_error(err: ProviderError, secrets: &[&str]) -> ProviderError {
    let s = |text: String| http::scrub(&text, secrets);
    let o = |text: Option<String>| text.map(s);
    match err {
        ProviderError::AccessDenied { description } => ProviderError::AccessDenied {
            description: o(description),
        },
        ProviderError::InvalidGrant { description } => ProviderError::InvalidGrant {
            description: o(description),
        },
        ProviderError::InvalidClient { description } => ProviderError::InvalidClient {
            description: o(description),
        },
        ProviderError::Protocol { message, body } => ProviderError::Protocol {
            message: s(message),
            body: o(body),
        },
        ProviderError::Network { message, timeout } => ProviderError::Network {
            message: s(message),
            timeout,
        },
        ProviderError::Config(message) => ProviderError::Config(s(message)),
        other => other,
    }
}

/// A token endpoint's success reply (RFC 6749 §5.1), lenient about numbers sent as
/// strings. `Debug` never prints the tokens.
#[derive(serde::Deserialize)]
pub struct TokenReply {
    /// The access token (never empty once [`parse`](Self::parse)d).
    pub access_token: String,
    /// `token_type`.
    #[serde(default)]
    pub token_type: Option<String>,
    /// Seconds until the access token expires.
    #[serde(default, deserialize_with = "http::wire::lenient_u64")]
    pub expires_in: Option<u64>,
    /// A new refresh token, if the reply has one.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Seconds until the refresh token expires (TikTok).
    #[serde(default, deserialize_with = "http::wire::lenient_u64")]
    pub refresh_expires_in: Option<u64>,
    /// Granted scopes, separated by spaces or commas.
    #[serde(default)]
    pub scope: Option<String>,
}

impl std::fmt::Debug for TokenReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenReply")
            .field("access_token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("refresh_expires_in", &self.refresh_expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl TokenReply {
    /// Parses a success body as `T` (a `TokenReply`, or a platform's reply embedding one
    /// with `#[serde(flatten)]`): errors keep neither the body nor serde's message.
    pub fn parse<T: serde::de::DeserializeOwned + AsRef<TokenReply>>(
        response: &CappedResponse,
        what: &str,
    ) -> Result<T, ProviderError> {
        // serde reads a struct from a JSON array too, field by field: a reply that is not
        // an object is no token reply, whatever its first string says.
        if response.body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ProviderError::Protocol {
                message: format!(
                    "the {what} is not a JSON object (HTTP {})",
                    response.status.as_u16()
                ),
                body: None,
            });
        }
        let reply: T = response.json_secret(what)?;
        if reply.as_ref().access_token.is_empty() {
            return Err(ProviderError::Protocol {
                message: format!("the {what} has an empty access token"),
                body: None,
            });
        }
        Ok(reply)
    }

    /// The [`TokenSet`](crate::TokenSet): without a new refresh token the `kept` one is
    /// returned (platforms that do not rotate it); without `scope`, `scopes`.
    pub fn into_token_set(
        self,
        kept: Option<&crate::RefreshToken>,
        scopes: &[String],
    ) -> crate::TokenSet {
        let granted = self.scope.as_deref().map(http::split_scopes);
        crate::TokenSet {
            access_token: crate::AccessToken::new(self.access_token),
            refresh_token: self
                .refresh_token
                .filter(|r| !r.is_empty())
                .map(crate::RefreshToken::new)
                .or_else(|| kept.cloned()),
            expires_in: self.expires_in.map(Duration::from_secs),
            refresh_expires_in: self.refresh_expires_in.map(Duration::from_secs),
            token_type: self.token_type,
            scopes: granted
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| scopes.to_vec()),
        }
    }
}

impl AsRef<TokenReply> for TokenReply {
    fn as_ref(&self) -> &TokenReply {
        self
    }
}

/// A profile's metadata as JSON, for `Profile::metadata`.
pub fn metadata_json<T: serde::Serialize>(
    metadata: &T,
) -> Result<serde_json::Value, ProviderError> {
    serde_json::to_value(metadata).map_err(|e| ProviderError::Protocol {
        message: format!("cannot encode the metadata: {e}"),
        body: None,
    })
}

/// A provider's one HTTP client: redirects off, the configured timeout, `User-Agent`
/// and body cap.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    user_agent: HeaderValue,
    body_limit: usize,
}

impl ApiClient {
    /// Builds the client for these settings.
    pub fn new(config: &ClientConfig) -> Result<Self, ProviderError> {
        Self::with_settings(&config.user_agent, config.timeout, config.body_limit).map_err(|e| {
            match e {
                ProviderError::Config(message) => config.spec.error(message),
                other => other,
            }
        })
    }

    /// Builds a client from its three settings, for a provider without a [`ClientConfig`]
    /// (the [generic](crate::generic) one).
    pub fn with_settings(
        user_agent: &str,
        timeout: Duration,
        body_limit: usize,
    ) -> Result<Self, ProviderError> {
        if timeout.is_zero() {
            return Err(ProviderError::Config("`timeout` must be positive".into()));
        }
        if body_limit == 0 {
            return Err(ProviderError::Config(
                "`body_limit` must be positive".into(),
            ));
        }
        Ok(Self {
            http: http::client(user_agent, timeout)?,
            user_agent: HeaderValue::from_str(user_agent).map_err(|_| {
                ProviderError::Config("`user_agent` is not a valid header value".into())
            })?,
            body_limit,
        })
    }

    /// A `GET` request.
    pub fn get(&self, url: impl IntoUrl) -> RequestBuilder {
        self.http.get(url)
    }

    /// A `POST` request.
    pub fn post(&self, url: impl IntoUrl) -> RequestBuilder {
        self.http.post(url)
    }

    /// A `DELETE` request.
    pub fn delete(&self, url: impl IntoUrl) -> RequestBuilder {
        self.http.delete(url)
    }

    /// Sends and reads the body under the cap, without classifying.
    pub async fn send(&self, request: RequestBuilder) -> Result<CappedResponse, ProviderError> {
        http::send_capped(request, self.body_limit).await
    }

    /// Sends a built request and reads the body under the cap, without classifying.
    pub(crate) async fn execute(
        &self,
        request: reqwest::Request,
    ) -> Result<CappedResponse, ProviderError> {
        let response = self
            .http
            .execute(request)
            .await
            .map_err(http::network_error)?;
        http::read_capped(response, self.body_limit).await
    }

    /// Sends, reads the body under the cap and [`check`]s the reply: the one entry every
    /// provider call goes through.
    pub async fn call<E: Classify>(
        &self,
        request: RequestBuilder,
        endpoint: E,
        secrets: &[&str],
    ) -> Result<CappedResponse, ProviderError> {
        check(self.send(request).await?, endpoint, secrets)
    }

    /// Sets the configured `User-Agent` on a request built with another client (such as
    /// the one of `Integrations::send`), replacing any it carries: for use in
    /// `Provider::authorize_request`.
    pub fn identify(&self, request: RequestBuilder) -> RequestBuilder {
        let mut headers = HeaderMap::new();
        headers.insert(USER_AGENT, self.user_agent.clone());
        request.headers(headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `token_reply` fuzz target: `["expires_in"]` was read as a reply whose
    /// access token is `"expires_in"`.
    #[test]
    fn a_token_reply_that_is_not_a_json_object_is_refused() {
        for body in [
            r#"["expires_in"]"#,
            r#"  ["a-token", "bearer"]"#,
            "\"token\"",
            "7",
        ] {
            let r = crate::http::CappedResponse::new(200, &[], body);
            let err = TokenReply::parse::<TokenReply>(&r, "token reply").unwrap_err();
            assert!(
                matches!(&err, ProviderError::Protocol { message, body: None } if message.contains("not a JSON object")),
                "{body}: {err:?}"
            );
        }
        let ok = crate::http::CappedResponse::new(200, &[], r#" {"access_token":"at-1"}"#);
        assert_eq!(
            TokenReply::parse::<TokenReply>(&ok, "token reply")
                .unwrap()
                .access_token,
            "at-1"
        );
    }
    use reqwest::StatusCode;

    const WWW: BaseUrl = BaseUrl {
        name: "www_base_url",
        default: "https://www.example.com",
    };
    const API: BaseUrl = BaseUrl {
        name: "api_base_url",
        default: "https://api.example.com/v1/",
    };
    static SPEC: ClientSpec = ClientSpec {
        provider: "example",
        env_prefix: "EXAMPLE",
        client_id: Some("client_key"),
        client_secret: "client_secret",
        empty_secret_allowed: false,
        default_scopes: &["basic"],
        required_scopes: &[],
        base_urls: &[WWW, API],
        default_user_agent: Some("example/1"),
    };
    static STRICT: ClientSpec = ClientSpec {
        provider: "strict",
        env_prefix: "STRICT",
        client_id: Some("client_id"),
        empty_secret_allowed: true,
        required_scopes: &["identity"],
        default_user_agent: None,
        ..SPEC
    };
    static KEYED: ClientSpec = ClientSpec {
        provider: "keyed",
        env_prefix: "KEYED",
        client_id: None,
        client_secret: "api_key",
        default_scopes: &[],
        base_urls: &[API],
        ..SPEC
    };

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    const BASE: [(&str, &str); 3] = [
        ("EXAMPLE_CLIENT_KEY", "key"),
        ("EXAMPLE_CLIENT_SECRET", "s3cr3t-value"),
        ("EXAMPLE_REDIRECT_URI", "https://app.example/cb"),
    ];

    fn minimal() -> ClientConfigBuilder {
        ClientConfigBuilder::new(&SPEC)
            .client_id("key")
            .client_secret(ClientSecret::new("s3cr3t-value"))
            .redirect_uri("https://a.example/cb")
    }

    fn config_error(result: Result<ClientConfig, ProviderError>) -> String {
        match result {
            Err(ProviderError::Config(m)) => m,
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }

    #[test]
    fn from_lookup_reads_every_variable() {
        let mut vars = BASE.to_vec();
        vars.extend([
            ("EXAMPLE_SCOPES", "basic, profile"),
            ("EXAMPLE_WWW_BASE_URL", "http://127.0.0.1:9/www/"),
            ("EXAMPLE_API_BASE_URL", "http://127.0.0.1:9/api"),
            ("EXAMPLE_TIMEOUT_SECS", "2.5"),
            ("EXAMPLE_BODY_LIMIT", "4096"),
            ("EXAMPLE_USER_AGENT", "ua/2"),
        ]);
        let c = ClientConfigBuilder::new(&SPEC)
            .with_env(&env(&vars))
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(c.client_id(), "key");
        assert_eq!(c.client_secret().expose_secret(), "s3cr3t-value");
        assert_eq!(c.redirect_uri().as_str(), "https://app.example/cb");
        assert_eq!(c.scopes(), ["basic", "profile"]);
        assert_eq!(c.base_url(&WWW), "http://127.0.0.1:9/www");
        assert_eq!(c.base_url(&API), "http://127.0.0.1:9/api");
        assert_eq!(c.timeout(), Duration::from_millis(2500));
        assert_eq!(c.body_limit(), 4096);
        assert_eq!(c.user_agent(), "ua/2");
        assert!(!format!("{c:?}").contains("s3cr3t-value"));
    }

    #[test]
    fn defaults() {
        let c = minimal().build().unwrap();
        assert_eq!(c.scopes(), ["basic"]);
        assert_eq!(c.base_url(&WWW), "https://www.example.com");
        assert_eq!(c.base_url(&API), "https://api.example.com/v1");
        assert_eq!(c.timeout(), DEFAULT_TIMEOUT);
        assert_eq!(c.body_limit(), DEFAULT_BODY_LIMIT);
        assert_eq!(c.user_agent(), "example/1");
        let c = minimal().scopes(Vec::<String>::new()).build().unwrap();
        assert_eq!(c.scopes(), ["basic"]);
        let c = ClientConfigBuilder::new(&SPEC)
            .with_env(&env(&BASE))
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(c.scopes(), ["basic"]);
        assert_eq!(c.user_agent(), "example/1");
    }

    #[test]
    fn missing_or_bad_variables_are_named() {
        for missing in BASE.map(|(k, _)| k) {
            let vars: Vec<_> = BASE.into_iter().filter(|(k, _)| *k != missing).collect();
            let err = ClientConfigBuilder::new(&SPEC)
                .with_env(&env(&vars))
                .unwrap_err();
            assert!(err.to_string().contains(missing), "{err}");
            let mut blank = BASE.to_vec();
            blank.retain(|(k, _)| *k != missing);
            blank.push((missing, "  "));
            let err = ClientConfigBuilder::new(&SPEC)
                .with_env(&env(&blank))
                .unwrap_err();
            assert!(err.to_string().contains(missing), "{err}");
        }
        for (name, value) in [
            ("EXAMPLE_SCOPES", ", ,"),
            ("EXAMPLE_TIMEOUT_SECS", "0"),
            ("EXAMPLE_TIMEOUT_SECS", "soon"),
            ("EXAMPLE_BODY_LIMIT", "-1"),
            ("EXAMPLE_REDIRECT_URI", "not a url"),
            ("EXAMPLE_WWW_BASE_URL", "ftp://x"),
        ] {
            let mut vars = BASE.to_vec();
            vars.retain(|(k, _)| *k != name);
            vars.push((name, value));
            let err = ClientConfigBuilder::new(&SPEC)
                .with_env(&env(&vars))
                .and_then(ClientConfigBuilder::build)
                .unwrap_err();
            assert!(err.to_string().contains(name), "{name}={value}: {err}");
        }
    }

    #[test]
    fn missing_required_fields_are_named() {
        let b = || ClientConfigBuilder::new(&SPEC);
        let s = || ClientSecret::new("s");
        let uri = "https://a.example/cb";
        for (builder, field) in [
            (b().client_secret(s()).redirect_uri(uri), "client_key"),
            (
                b().client_id(" ").client_secret(s()).redirect_uri(uri),
                "client_key",
            ),
            (b().client_id("k").redirect_uri(uri), "client_secret"),
            (
                b().client_id("k")
                    .client_secret(ClientSecret::new(""))
                    .redirect_uri(uri),
                "client_secret",
            ),
            (b().client_id("k").client_secret(s()), "redirect_uri"),
            (b(), "client_key"),
        ] {
            let m = config_error(builder.build());
            assert!(
                m.starts_with("example: ") && m.contains(field),
                "{field}: {m}"
            );
        }
    }

    #[test]
    fn malformed_values_are_rejected() {
        for uri in ["not a url", "/relative/cb", "ftp://a.example/cb", ""] {
            let m = config_error(minimal().redirect_uri(uri).build());
            assert!(
                m.contains("redirect_uri (EXAMPLE_REDIRECT_URI)"),
                "{uri:?}: {m}"
            );
        }
        for (bad, what) in [
            (minimal().scopes(["basic,other"]), "EXAMPLE_SCOPES"),
            (minimal().scopes([" "]), "EXAMPLE_SCOPES"),
            (minimal().scopes(["basic profile"]), "EXAMPLE_SCOPES"),
            (minimal().timeout(Duration::ZERO), "timeout"),
            (minimal().body_limit(0), "body_limit"),
            (minimal().user_agent("bad\nagent"), "EXAMPLE_USER_AGENT"),
            (minimal().user_agent(" "), "EXAMPLE_USER_AGENT"),
            (
                minimal().base_url(&API, "https://x.example/?q=1"),
                "EXAMPLE_API_BASE_URL",
            ),
            (
                minimal().base_url(&API, "https://x.example/#f"),
                "EXAMPLE_API_BASE_URL",
            ),
            (
                minimal().base_url(&WWW, "not a url"),
                "EXAMPLE_WWW_BASE_URL",
            ),
        ] {
            let m = config_error(bad.build());
            assert!(m.contains(what), "{what}: {m}");
        }
        let other = BaseUrl {
            name: "graph_base_url",
            default: "https://graph.example",
        };
        let m = config_error(minimal().base_url(&other, "https://x.example").build());
        assert!(m.contains("graph_base_url"), "{m}");
    }

    #[test]
    fn base_urls_are_normalised_and_replaced() {
        let c = minimal()
            .base_url(&WWW, "http://127.0.0.1:1/a/")
            .base_url(&WWW, "http://127.0.0.1:1/www//")
            .build()
            .unwrap();
        assert_eq!(c.base_url(&WWW), "http://127.0.0.1:1/www");
    }

    #[test]
    fn required_user_agent_empty_secret_and_required_scopes() {
        let vars = [
            ("STRICT_CLIENT_ID", "id"),
            ("STRICT_CLIENT_SECRET", ""),
            ("STRICT_REDIRECT_URI", "https://app.example/cb"),
            ("STRICT_SCOPES", "read history"),
        ];
        let err = ClientConfigBuilder::new(&STRICT)
            .with_env(&env(&vars))
            .unwrap_err();
        assert!(err.to_string().contains("STRICT_USER_AGENT"), "{err}");
        let mut with_ua = vars.to_vec();
        with_ua.push(("STRICT_USER_AGENT", "web:x:v1 (by /u/x)"));
        let c = ClientConfigBuilder::new(&STRICT)
            .with_env(&env(&with_ua))
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(c.client_secret().expose_secret(), "");
        assert_eq!(c.scopes(), ["identity", "read", "history"]);
        assert_eq!(c.scopes_for(&[]), ["identity", "read", "history"]);
        assert_eq!(c.scopes_for(&["read".into()]), ["identity", "read"]);
        let url = c
            .url(&WWW, "/auth", &[("scope", "a b"), ("state", "s")])
            .unwrap();
        assert_eq!(
            url.as_str(),
            "https://www.example.com/auth?scope=a+b&state=s"
        );
        let missing: Vec<_> = with_ua
            .iter()
            .copied()
            .filter(|(k, _)| *k != "STRICT_CLIENT_SECRET")
            .collect();
        let err = ClientConfigBuilder::new(&STRICT)
            .with_env(&env(&missing))
            .unwrap_err();
        assert!(err.to_string().contains("STRICT_CLIENT_SECRET"), "{err}");
        let m = config_error(
            ClientConfigBuilder::new(&STRICT)
                .client_id("id")
                .client_secret(ClientSecret::new(""))
                .redirect_uri("https://a.example/cb")
                .build(),
        );
        assert!(m.contains("user_agent (STRICT_USER_AGENT)"), "{m}");
    }

    #[test]
    fn a_platform_with_an_api_key_and_no_scopes() {
        let vars = [
            ("KEYED_API_KEY", "the-api-key"),
            ("KEYED_REDIRECT_URI", "https://app.example/cb"),
            ("KEYED_SCOPES", "ignored"),
            ("KEYED_API_BASE_URL", "http://127.0.0.1:9/gw"),
        ];
        let c = ClientConfigBuilder::new(&KEYED)
            .with_env(&env(&vars))
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(c.client_id(), "");
        assert_eq!(c.client_secret().expose_secret(), "the-api-key");
        assert!(c.scopes().is_empty());
        assert_eq!(c.base_url(&API), "http://127.0.0.1:9/gw");
        let err = ClientConfigBuilder::new(&KEYED)
            .with_env(&env(&vars[1..]))
            .unwrap_err();
        assert!(err.to_string().contains("KEYED_API_KEY"), "{err}");
    }

    #[derive(Clone, Copy)]
    struct Echo;
    impl Classify for Echo {
        fn classify(self, response: &CappedResponse) -> Option<ProviderError> {
            let text = response.excerpt();
            (!response.status.is_success()).then(|| ProviderError::Protocol {
                message: format!("refused: {text}"),
                body: Some(text.clone()),
            })
        }
    }

    #[test]
    fn check_scrubs_every_text_of_the_error() {
        let resp = |status: u16, body: &str| CappedResponse {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        };
        let err = check(
            resp(400, "bad token tok-123456789"),
            Echo,
            &["tok-123456789"],
        )
        .unwrap_err();
        assert!(!format!("{err:?}").contains("tok-123456789"), "{err:?}");
        assert!(check(resp(200, "fine tok-123456789"), Echo, &["tok-123456789"]).is_ok());
        for err in [
            ProviderError::AccessDenied {
                description: Some("x secret-value-1".into()),
            },
            ProviderError::InvalidGrant {
                description: Some("x secret-value-1".into()),
            },
            ProviderError::InvalidClient {
                description: Some("x secret-value-1".into()),
            },
            ProviderError::Network {
                message: "x secret-value-1".into(),
                timeout: false,
            },
            ProviderError::Config("x secret-value-1".into()),
        ] {
            let scrubbed = scrub_error(err, &["secret-value-1"]);
            assert!(
                !format!("{scrubbed:?}").contains("secret-value-1"),
                "{scrubbed:?}"
            );
        }
    }

    #[test]
    fn token_replies() {
        let resp = |body: &str| CappedResponse {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        };
        let r: TokenReply = TokenReply::parse(
            &resp(r#"{"access_token":"at-secret","expires_in":"7200","refresh_expires_in":15552000,"scope":"a,b"}"#),
            "token reply",
        )
        .unwrap();
        assert!(!format!("{r:?}").contains("at-secret"));
        let kept = crate::RefreshToken::new("old");
        let set = r.into_token_set(Some(&kept), &["x".into()]);
        assert_eq!(set.expires_in, Some(Duration::from_secs(7200)));
        assert_eq!(
            set.refresh_expires_in,
            Some(Duration::from_secs(15_552_000))
        );
        assert_eq!(set.refresh_token.unwrap().expose_secret(), "old");
        assert_eq!(set.scopes, ["a", "b"]);
        let r: TokenReply =
            TokenReply::parse(&resp(r#"{"access_token":"a","refresh_token":"new"}"#), "t").unwrap();
        let set = r.into_token_set(Some(&kept), &["x".into()]);
        assert_eq!(set.refresh_token.unwrap().expose_secret(), "new");
        assert_eq!(set.scopes, ["x"]);
        for bad in [r#"{"access_token":""}"#, r#"{"access_token":"at-secret","#] {
            let e = TokenReply::parse::<TokenReply>(&resp(bad), "t").unwrap_err();
            assert!(
                matches!(&e, ProviderError::Protocol { body: None, .. })
                    && !format!("{e:?}").contains("at-secret")
            );
        }
    }

    #[tokio::test]
    async fn identify_replaces_the_user_agent() {
        let config = minimal().user_agent("mine/1").build().unwrap();
        let api = ApiClient::new(&config).unwrap();
        let other = reqwest::Client::new();
        let request = api
            .identify(
                other
                    .get("http://127.0.0.1:1/x")
                    .header(USER_AGENT, "theirs"),
            )
            .build()
            .unwrap();
        let values: Vec<_> = request.headers().get_all(USER_AGENT).iter().collect();
        assert_eq!(values, ["mine/1"]);
    }
}
