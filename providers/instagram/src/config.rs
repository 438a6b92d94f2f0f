//! Configuration of the Instagram provider: credentials, redirect URI, scopes, hosts and
//! HTTP limits; a builder and [`InstagramConfig::from_env`].

use integrations_core::http::split_scopes;
use integrations_core::http::{DEFAULT_BODY_LIMIT, DEFAULT_TIMEOUT};
use integrations_core::{ClientSecret, ProviderError};
use reqwest::header::HeaderValue;
use std::time::Duration;
use url::Url;

/// The scope every Instagram Login app needs.
pub const DEFAULT_SCOPE: &str = "instagram_business_basic";
/// `https://www.instagram.com`: the host of the authorization dialog.
pub const DEFAULT_WWW_BASE_URL: &str = "https://www.instagram.com";
/// `https://api.instagram.com`: the host of the code exchange.
pub const DEFAULT_API_BASE_URL: &str = "https://api.instagram.com";
/// `https://graph.instagram.com`: the host of the long-lived token, refresh and profile
/// endpoints.
pub const DEFAULT_GRAPH_BASE_URL: &str = "https://graph.instagram.com";

/// The `User-Agent` sent when none is configured.
const DEFAULT_USER_AGENT: &str = concat!("integrations-instagram/", env!("CARGO_PKG_VERSION"));

/// Settings for [`InstagramProvider`](crate::InstagramProvider).
///
/// Build one with [`InstagramConfig::builder`] or [`InstagramConfig::from_env`]. Base URLs
/// never end with `/` (a trailing slash is removed); their path prefix is kept, so a
/// sandbox can serve the API under `http://127.0.0.1:PORT/instagram/api`. `Debug` never
/// prints the client secret.
#[derive(Debug, Clone)]
pub struct InstagramConfig {
    pub(crate) client_id: String,
    pub(crate) client_secret: ClientSecret,
    pub(crate) redirect_uri: Url,
    pub(crate) scopes: Vec<String>,
    pub(crate) www_base_url: String,
    pub(crate) api_base_url: String,
    pub(crate) graph_base_url: String,
    pub(crate) timeout: Duration,
    pub(crate) body_limit: usize,
    pub(crate) user_agent: String,
}

impl InstagramConfig {
    /// An empty builder.
    pub fn builder() -> InstagramConfigBuilder {
        InstagramConfigBuilder::default()
    }

    /// Reads the configuration from the process environment.
    ///
    /// Required:
    /// - `INSTAGRAM_CLIENT_ID`: the Instagram App ID;
    /// - `INSTAGRAM_CLIENT_SECRET`: the Instagram App secret;
    /// - `INSTAGRAM_REDIRECT_URI`: the redirect URI registered for the app, an absolute
    ///   http(s) URL.
    ///
    /// Optional:
    /// - `INSTAGRAM_SCOPES`: scopes separated by commas or spaces, replacing the default
    ///   `instagram_business_basic`.
    ///
    /// Hosts, timeout, body limit and `User-Agent` are set with the builder. A missing or
    /// malformed variable is a [`ProviderError::Config`] naming it.
    pub fn from_env() -> Result<Self, ProviderError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ProviderError> {
        let required = |name: &str| -> Result<String, ProviderError> {
            match lookup(name) {
                Some(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
                _ => Err(ProviderError::Config(format!("{name} is not set"))),
            }
        };
        let mut builder = Self::builder()
            .client_id(required("INSTAGRAM_CLIENT_ID")?)
            .client_secret(ClientSecret::new(required("INSTAGRAM_CLIENT_SECRET")?))
            .redirect_uri(required("INSTAGRAM_REDIRECT_URI")?);
        if let Some(scopes) = lookup("INSTAGRAM_SCOPES") {
            let scopes = split_scopes(&scopes);
            if scopes.is_empty() {
                return Err(ProviderError::Config(
                    "INSTAGRAM_SCOPES is set but names no scope".into(),
                ));
            }
            builder = builder.scopes(scopes);
        }
        builder.build()
    }

    /// The Instagram App ID (`client_id`).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The redirect URI registered for the app; sent at authorize and at the code
    /// exchange.
    pub fn redirect_uri(&self) -> &Url {
        &self.redirect_uri
    }

    /// Scopes asked for when the service passes none (default `instagram_business_basic`).
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Host of `/oauth/authorize` (default [`DEFAULT_WWW_BASE_URL`]; no trailing `/`).
    pub fn www_base_url(&self) -> &str {
        &self.www_base_url
    }

    /// Host of `/oauth/access_token` (default [`DEFAULT_API_BASE_URL`]; no trailing `/`).
    pub fn api_base_url(&self) -> &str {
        &self.api_base_url
    }

    /// Host of `/access_token`, `/refresh_access_token` and `/me` (default
    /// [`DEFAULT_GRAPH_BASE_URL`]; no trailing `/`).
    pub fn graph_base_url(&self) -> &str {
        &self.graph_base_url
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

    /// The `User-Agent` header sent on every request.
    pub fn user_agent(&self) -> &str {
        &self.user_agent
    }
}

/// Builder for [`InstagramConfig`]. `client_id`, `client_secret` and `redirect_uri` are
/// required.
#[derive(Debug, Clone, Default)]
pub struct InstagramConfigBuilder {
    client_id: Option<String>,
    client_secret: Option<ClientSecret>,
    redirect_uri: Option<String>,
    scopes: Option<Vec<String>>,
    www_base_url: Option<String>,
    api_base_url: Option<String>,
    graph_base_url: Option<String>,
    timeout: Option<Duration>,
    body_limit: Option<usize>,
    user_agent: Option<String>,
}

impl InstagramConfigBuilder {
    /// The Instagram App ID (required).
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// The Instagram App secret (required, non-empty).
    pub fn client_secret(mut self, client_secret: ClientSecret) -> Self {
        self.client_secret = Some(client_secret);
        self
    }

    /// The registered redirect URI (required, absolute http(s) URL; it must match the
    /// app's setting exactly).
    pub fn redirect_uri(mut self, redirect_uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(redirect_uri.into());
        self
    }

    /// Default scopes (default `instagram_business_basic`); each non-empty and without a
    /// comma. An empty list keeps the default.
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// Host of the authorization dialog (default `https://www.instagram.com`); a path
    /// prefix is kept, for a sandbox or a proxy.
    pub fn www_base_url(mut self, url: impl Into<String>) -> Self {
        self.www_base_url = Some(url.into());
        self
    }

    /// Host of the code exchange (default `https://api.instagram.com`); a path prefix is
    /// kept.
    pub fn api_base_url(mut self, url: impl Into<String>) -> Self {
        self.api_base_url = Some(url.into());
        self
    }

    /// Host of the long-lived token, refresh and profile endpoints (default
    /// `https://graph.instagram.com`); a path prefix is kept.
    pub fn graph_base_url(mut self, url: impl Into<String>) -> Self {
        self.graph_base_url = Some(url.into());
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

    /// The `User-Agent` header (default `integrations-instagram/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Checks every value and builds the configuration. Base URLs lose any trailing `/`.
    pub fn build(self) -> Result<InstagramConfig, ProviderError> {
        let client_id = self
            .client_id
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| config_err("client_id (INSTAGRAM_CLIENT_ID) is missing or empty"))?;
        let client_secret = self
            .client_secret
            .filter(|s| !s.expose_secret().is_empty())
            .ok_or_else(|| {
                config_err("client_secret (INSTAGRAM_CLIENT_SECRET) is missing or empty")
            })?;
        let redirect_uri = self
            .redirect_uri
            .ok_or_else(|| config_err("redirect_uri (INSTAGRAM_REDIRECT_URI) is missing"))?;
        let redirect_uri = integrations_core::http::config_url(
            "instagram",
            &redirect_uri,
            "redirect_uri (INSTAGRAM_REDIRECT_URI)",
        )?;
        let scopes: Vec<String> = match self.scopes {
            Some(s) if !s.is_empty() => s,
            _ => vec![DEFAULT_SCOPE.to_owned()],
        };
        for s in &scopes {
            if s.trim().is_empty() || s.contains(',') {
                return Err(config_err(&format!(
                    "scope {s:?} (INSTAGRAM_SCOPES) is empty or contains a comma"
                )));
            }
        }
        let www_base_url = integrations_core::http::config_base_url(
            "instagram",
            self.www_base_url.as_deref().unwrap_or(DEFAULT_WWW_BASE_URL),
            "www_base_url",
        )?;
        let api_base_url = integrations_core::http::config_base_url(
            "instagram",
            self.api_base_url.as_deref().unwrap_or(DEFAULT_API_BASE_URL),
            "api_base_url",
        )?;
        let graph_base_url = integrations_core::http::config_base_url(
            "instagram",
            self.graph_base_url
                .as_deref()
                .unwrap_or(DEFAULT_GRAPH_BASE_URL),
            "graph_base_url",
        )?;
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() {
            return Err(config_err("timeout must be greater than zero"));
        }
        let body_limit = self.body_limit.unwrap_or(DEFAULT_BODY_LIMIT);
        if body_limit == 0 {
            return Err(config_err("body_limit must be greater than zero"));
        }
        let user_agent = self
            .user_agent
            .unwrap_or_else(|| DEFAULT_USER_AGENT.to_owned());
        if HeaderValue::from_str(&user_agent).is_err() {
            return Err(config_err(
                "user_agent contains characters not allowed in a header",
            ));
        }
        Ok(InstagramConfig {
            client_id,
            client_secret,
            redirect_uri,
            scopes,
            www_base_url,
            api_base_url,
            graph_base_url,
            timeout,
            body_limit,
            user_agent,
        })
    }
}

fn config_err(message: &str) -> ProviderError {
    ProviderError::Config(format!("instagram: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn from_lookup_reads_every_variable() {
        let c = InstagramConfig::from_lookup(env(&[
            ("INSTAGRAM_CLIENT_ID", "123"),
            ("INSTAGRAM_CLIENT_SECRET", "shh"),
            ("INSTAGRAM_REDIRECT_URI", "https://app.example/cb"),
            (
                "INSTAGRAM_SCOPES",
                "instagram_business_basic, instagram_business_content_publish",
            ),
        ]))
        .unwrap();
        assert_eq!(c.client_id(), "123");
        assert_eq!(c.client_secret.expose_secret(), "shh");
        assert_eq!(c.redirect_uri().as_str(), "https://app.example/cb");
        assert_eq!(
            c.scopes(),
            [
                "instagram_business_basic",
                "instagram_business_content_publish"
            ]
        );
        assert!(!format!("{c:?}").contains("shh"));
    }

    #[test]
    fn missing_variables_are_named() {
        for missing in [
            "INSTAGRAM_CLIENT_ID",
            "INSTAGRAM_CLIENT_SECRET",
            "INSTAGRAM_REDIRECT_URI",
        ] {
            let all = [
                ("INSTAGRAM_CLIENT_ID", "123"),
                ("INSTAGRAM_CLIENT_SECRET", "shh"),
                ("INSTAGRAM_REDIRECT_URI", "https://app.example/cb"),
            ];
            let vars: Vec<_> = all.into_iter().filter(|(k, _)| *k != missing).collect();
            let err = InstagramConfig::from_lookup(env(&vars)).unwrap_err();
            assert!(err.to_string().contains(missing), "{err}");
        }
        let err = InstagramConfig::from_lookup(env(&[
            ("INSTAGRAM_CLIENT_ID", "123"),
            ("INSTAGRAM_CLIENT_SECRET", "shh"),
            ("INSTAGRAM_REDIRECT_URI", "not a url"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("INSTAGRAM_REDIRECT_URI"), "{err}");
    }

    fn minimal() -> InstagramConfigBuilder {
        InstagramConfig::builder()
            .client_id("1")
            .client_secret(ClientSecret::new("s3cr3t-value"))
            .redirect_uri("https://a.example/cb")
    }

    #[test]
    fn defaults() {
        let c = minimal().build().unwrap();
        assert_eq!(c.client_id(), "1");
        assert_eq!(c.redirect_uri().as_str(), "https://a.example/cb");
        assert_eq!(c.scopes(), [DEFAULT_SCOPE]);
        assert_eq!(c.www_base_url(), DEFAULT_WWW_BASE_URL);
        assert_eq!(c.api_base_url(), DEFAULT_API_BASE_URL);
        assert_eq!(c.graph_base_url(), DEFAULT_GRAPH_BASE_URL);
        assert_eq!(c.timeout(), DEFAULT_TIMEOUT);
        assert_eq!(c.body_limit(), DEFAULT_BODY_LIMIT);
        assert_eq!(
            c.user_agent(),
            concat!("integrations-instagram/", env!("CARGO_PKG_VERSION"))
        );
        let c = minimal().scopes(Vec::<String>::new()).build().unwrap();
        assert_eq!(c.scopes(), [DEFAULT_SCOPE]);
    }

    #[test]
    fn builder_sets_every_field() {
        let c = minimal()
            .scopes([
                "instagram_business_basic",
                "instagram_business_manage_comments",
            ])
            .timeout(Duration::from_secs(3))
            .body_limit(4096)
            .user_agent("ua/1")
            .build()
            .unwrap();
        assert_eq!(
            c.scopes(),
            [
                "instagram_business_basic",
                "instagram_business_manage_comments"
            ]
        );
        assert_eq!(c.timeout(), Duration::from_secs(3));
        assert_eq!(c.body_limit(), 4096);
        assert_eq!(c.user_agent(), "ua/1");
    }

    #[test]
    fn missing_required_fields_are_named() {
        let cases = [
            (
                InstagramConfig::builder()
                    .client_secret(ClientSecret::new("s"))
                    .redirect_uri("https://a.example/cb"),
                "client_id",
            ),
            (
                InstagramConfig::builder()
                    .client_id(" ")
                    .client_secret(ClientSecret::new("s"))
                    .redirect_uri("https://a.example/cb"),
                "client_id",
            ),
            (
                InstagramConfig::builder()
                    .client_id("1")
                    .redirect_uri("https://a.example/cb"),
                "client_secret",
            ),
            (
                InstagramConfig::builder()
                    .client_id("1")
                    .client_secret(ClientSecret::new(""))
                    .redirect_uri("https://a.example/cb"),
                "client_secret",
            ),
            (
                InstagramConfig::builder()
                    .client_id("1")
                    .client_secret(ClientSecret::new("s")),
                "redirect_uri",
            ),
        ];
        for (builder, field) in cases {
            let err = builder.build().unwrap_err();
            assert!(
                matches!(&err, ProviderError::Config(m) if m.contains(field)),
                "{field}: {err}"
            );
        }
        let err = InstagramConfig::builder().build().unwrap_err();
        assert!(matches!(&err, ProviderError::Config(m) if m.contains("client_id")));
    }

    #[test]
    fn bad_redirect_uri_is_a_config_error() {
        for uri in ["not a url", "/relative/cb", "ftp://a.example/cb", ""] {
            let err = minimal().redirect_uri(uri).build().unwrap_err();
            assert!(
                matches!(&err, ProviderError::Config(m) if m.contains("redirect_uri")),
                "{uri:?}: {err}"
            );
        }
    }

    #[test]
    fn malformed_values_are_rejected() {
        for bad in [
            minimal().scopes(["instagram_business_basic,other"]),
            minimal().scopes([" "]),
            minimal().timeout(Duration::ZERO),
            minimal().body_limit(0),
            minimal().user_agent("bad\nagent"),
            minimal().graph_base_url("https://x.example/?q=1"),
            minimal().api_base_url("not a url"),
        ] {
            let err = bad.build().unwrap_err();
            assert!(matches!(err, ProviderError::Config(_)), "{err}");
        }
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let builder = minimal();
        assert!(!format!("{builder:?}").contains("s3cr3t-value"));
        let c = builder.build().unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t-value"));
    }

    #[test]
    fn base_urls_are_normalised() {
        let c = minimal()
            .www_base_url("http://127.0.0.1:1/instagram/www/")
            .api_base_url("http://127.0.0.1:1/instagram/api")
            .graph_base_url("http://127.0.0.1:1/instagram/graph//")
            .build()
            .unwrap();
        assert_eq!(c.www_base_url(), "http://127.0.0.1:1/instagram/www");
        assert_eq!(c.api_base_url(), "http://127.0.0.1:1/instagram/api");
        assert_eq!(c.graph_base_url(), "http://127.0.0.1:1/instagram/graph");
        let bad = minimal()
            .www_base_url("ftp://x")
            .api_base_url("http://x")
            .graph_base_url("http://x")
            .build();
        assert!(matches!(bad, Err(ProviderError::Config(_))));
    }
}
