//! Configuration of the Instagram provider: credentials, redirect URI, scopes, hosts and
//! HTTP limits.

use integrations_core::http::split_scopes;
use integrations_core::http::{DEFAULT_BODY_LIMIT, DEFAULT_TIMEOUT};
use integrations_core::{ClientSecret, ProviderError};
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

/// Settings of [`Instagram`](crate::Instagram).
///
/// Build one with [`InstagramConfig::new`] and the `with_*` methods, or read it from the
/// environment with [`InstagramConfig::from_env`]. Base URLs never end with `/` (a trailing
/// slash is removed); their path prefix is kept, so a sandbox can serve the API under
/// `http://127.0.0.1:PORT/instagram/api`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InstagramConfig {
    /// The Instagram App ID (`client_id`).
    pub client_id: String,
    /// The Instagram App secret.
    pub client_secret: ClientSecret,
    /// The redirect URI registered for the app; sent at authorize and at the code exchange.
    pub redirect_uri: Url,
    /// Scopes asked for when the service passes none (default `instagram_business_basic`).
    pub scopes: Vec<String>,
    /// Host of `/oauth/authorize` (default [`DEFAULT_WWW_BASE_URL`]).
    pub www_base_url: String,
    /// Host of `/oauth/access_token` (default [`DEFAULT_API_BASE_URL`]).
    pub api_base_url: String,
    /// Host of `/access_token`, `/refresh_access_token` and `/me` (default
    /// [`DEFAULT_GRAPH_BASE_URL`]).
    pub graph_base_url: String,
    /// Total timeout of one HTTP request (default 20 s).
    pub timeout: Duration,
    /// Largest response body read, in bytes (default 1 MiB); larger replies fail with
    /// `Protocol` without being buffered.
    pub body_limit: usize,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl InstagramConfig {
    /// A configuration with the default scope, the real hosts and default limits.
    pub fn new(
        client_id: impl Into<String>,
        client_secret: ClientSecret,
        redirect_uri: Url,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret,
            redirect_uri,
            scopes: vec![DEFAULT_SCOPE.to_owned()],
            www_base_url: DEFAULT_WWW_BASE_URL.to_owned(),
            api_base_url: DEFAULT_API_BASE_URL.to_owned(),
            graph_base_url: DEFAULT_GRAPH_BASE_URL.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            body_limit: DEFAULT_BODY_LIMIT,
            user_agent: concat!("integrations-instagram/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }

    /// Reads the configuration from the process environment.
    ///
    /// Variables:
    /// - `INSTAGRAM_CLIENT_ID` (required): the Instagram App ID;
    /// - `INSTAGRAM_CLIENT_SECRET` (required): the Instagram App secret;
    /// - `INSTAGRAM_REDIRECT_URI` (required): an absolute URL;
    /// - `INSTAGRAM_SCOPES` (optional): scopes separated by commas or spaces, replacing
    ///   the default `instagram_business_basic`.
    ///
    /// A missing or malformed variable is a [`ProviderError::Config`] naming it.
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
        let client_id = required("INSTAGRAM_CLIENT_ID")?;
        let client_secret = ClientSecret::new(required("INSTAGRAM_CLIENT_SECRET")?);
        let redirect = required("INSTAGRAM_REDIRECT_URI")?;
        let redirect_uri = Url::parse(&redirect).map_err(|e| {
            ProviderError::Config(format!(
                "INSTAGRAM_REDIRECT_URI is not an absolute URL: {e}"
            ))
        })?;
        let mut config = Self::new(client_id, client_secret, redirect_uri);
        if let Some(scopes) = lookup("INSTAGRAM_SCOPES") {
            let scopes = split_scopes(&scopes);
            if scopes.is_empty() {
                return Err(ProviderError::Config(
                    "INSTAGRAM_SCOPES is set but names no scope".into(),
                ));
            }
            config.scopes = scopes;
        }
        Ok(config)
    }

    /// Replaces the default scopes.
    pub fn with_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Replaces the three hosts (for a sandbox or a proxy).
    pub fn with_base_urls(
        mut self,
        www: impl Into<String>,
        api: impl Into<String>,
        graph: impl Into<String>,
    ) -> Self {
        self.www_base_url = www.into();
        self.api_base_url = api.into();
        self.graph_base_url = graph.into();
        self
    }

    /// Sets the per-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the response body cap, in bytes.
    pub fn with_body_limit(mut self, limit: usize) -> Self {
        self.body_limit = limit;
        self
    }

    /// Sets the `User-Agent` header.
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Checks the values and normalises the base URLs (no trailing `/`).
    pub(crate) fn validated(mut self) -> Result<Self, ProviderError> {
        if self.client_id.trim().is_empty() {
            return Err(ProviderError::Config(
                "the Instagram client_id is empty".into(),
            ));
        }
        if self.client_secret.expose_secret().is_empty() {
            return Err(ProviderError::Config(
                "the Instagram client_secret is empty".into(),
            ));
        }
        if self
            .scopes
            .iter()
            .any(|s| s.trim().is_empty() || s.contains(','))
        {
            return Err(ProviderError::Config(
                "Instagram scopes must be non-empty and contain no comma".into(),
            ));
        }
        if self.body_limit == 0 || self.timeout.is_zero() {
            return Err(ProviderError::Config(
                "the body limit and the timeout must be positive".into(),
            ));
        }
        for (name, base) in [
            ("www_base_url", &mut self.www_base_url),
            ("api_base_url", &mut self.api_base_url),
            ("graph_base_url", &mut self.graph_base_url),
        ] {
            *base = integrations_core::http::config_base_url("instagram", base, name)?;
        }
        Ok(self)
    }
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
        assert_eq!(c.client_id, "123");
        assert_eq!(c.client_secret.expose_secret(), "shh");
        assert_eq!(c.redirect_uri.as_str(), "https://app.example/cb");
        assert_eq!(
            c.scopes,
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

    #[test]
    fn base_urls_are_normalised() {
        let c = InstagramConfig::new(
            "1",
            ClientSecret::new("s"),
            Url::parse("https://a.example/cb").unwrap(),
        )
        .with_base_urls(
            "http://127.0.0.1:1/instagram/www/",
            "http://127.0.0.1:1/instagram/api",
            "http://127.0.0.1:1/instagram/graph//",
        )
        .validated()
        .unwrap();
        assert_eq!(c.www_base_url, "http://127.0.0.1:1/instagram/www");
        assert_eq!(c.graph_base_url, "http://127.0.0.1:1/instagram/graph");
        let bad = InstagramConfig::new(
            "1",
            ClientSecret::new("s"),
            Url::parse("https://a.example/cb").unwrap(),
        )
        .with_base_urls("ftp://x", "http://x", "http://x")
        .validated();
        assert!(matches!(bad, Err(ProviderError::Config(_))));
    }
}
