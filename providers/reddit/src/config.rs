//! Reddit configuration: a builder and [`RedditConfig::from_env`].

use integrations_core::ProviderError;
use integrations_core::http::split_scopes;
use integrations_core::http::{DEFAULT_BODY_LIMIT, DEFAULT_TIMEOUT};
use integrations_core::secret::ClientSecret;
use reqwest::header::HeaderValue;
use std::time::Duration;
use url::Url;

/// The real `www` host: authorize, token and revoke endpoints.
pub const DEFAULT_WWW_BASE_URL: &str = "https://www.reddit.com";
/// The real OAuth API host: `/api/v1/me`.
pub const DEFAULT_OAUTH_BASE_URL: &str = "https://oauth.reddit.com";
/// Scopes asked for when neither the configuration nor the request names any.
pub const DEFAULT_SCOPES: &[&str] = &["identity"];
/// The scope `/api/v1/me` needs; it is always part of the requested scopes.
pub const IDENTITY_SCOPE: &str = "identity";

/// Settings for [`RedditProvider`](crate::RedditProvider).
///
/// Build one with [`RedditConfig::builder`] or [`RedditConfig::from_env`]. `Debug` never
/// prints the client secret.
#[derive(Debug, Clone)]
pub struct RedditConfig {
    pub(crate) client_id: String,
    pub(crate) client_secret: ClientSecret,
    pub(crate) redirect_uri: Url,
    pub(crate) user_agent: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) www_base_url: String,
    pub(crate) oauth_base_url: String,
    pub(crate) timeout: Duration,
    pub(crate) body_limit: usize,
}

impl RedditConfig {
    /// An empty builder.
    pub fn builder() -> RedditConfigBuilder {
        RedditConfigBuilder::default()
    }

    /// Reads the configuration from the process environment.
    ///
    /// Required:
    /// - `REDDIT_CLIENT_ID`: the app's client id.
    /// - `REDDIT_CLIENT_SECRET`: the app's secret (may be set to an empty value for
    ///   "installed" apps, which have none).
    /// - `REDDIT_REDIRECT_URI`: the redirect URI registered for the app, exactly.
    /// - `REDDIT_USER_AGENT`: a descriptive User-Agent,
    ///   `<platform>:<app ID>:<version> (by /u/<username>)`. Must not be empty.
    ///
    /// Optional:
    /// - `REDDIT_SCOPES`: default scopes, separated by spaces or commas (default
    ///   `identity`; `identity` is always added because the profile needs it).
    /// - `REDDIT_WWW_BASE_URL` (default `https://www.reddit.com`) and
    ///   `REDDIT_OAUTH_BASE_URL` (default `https://oauth.reddit.com`).
    ///
    /// A missing or malformed variable is a [`ProviderError::Config`] naming it.
    pub fn from_env() -> Result<Self, ProviderError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ProviderError> {
        let required = |name: &str| {
            lookup(name).ok_or_else(|| ProviderError::Config(format!("{name} is not set")))
        };
        let mut builder = Self::builder()
            .client_id(required("REDDIT_CLIENT_ID")?)
            .client_secret(ClientSecret::new(required("REDDIT_CLIENT_SECRET")?))
            .redirect_uri(required("REDDIT_REDIRECT_URI")?)
            .user_agent(required("REDDIT_USER_AGENT")?);
        if let Some(scopes) = lookup("REDDIT_SCOPES") {
            builder = builder.scopes(split_scopes(&scopes));
        }
        if let Some(url) = lookup("REDDIT_WWW_BASE_URL") {
            builder = builder.www_base_url(url);
        }
        if let Some(url) = lookup("REDDIT_OAUTH_BASE_URL") {
            builder = builder.oauth_base_url(url);
        }
        builder.build()
    }

    /// The app's client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The redirect URI sent at authorize and code exchange.
    pub fn redirect_uri(&self) -> &Url {
        &self.redirect_uri
    }

    /// The User-Agent sent on every request.
    pub fn user_agent(&self) -> &str {
        &self.user_agent
    }

    /// Default scopes (always including `identity`).
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Base URL of the `www` host (no trailing `/`).
    pub fn www_base_url(&self) -> &str {
        &self.www_base_url
    }

    /// Base URL of the OAuth API host (no trailing `/`).
    pub fn oauth_base_url(&self) -> &str {
        &self.oauth_base_url
    }

    /// Total timeout of one request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Largest response body read, in bytes.
    pub fn body_limit(&self) -> usize {
        self.body_limit
    }
}

/// Builder for [`RedditConfig`]. `client_id`, `client_secret`, `redirect_uri` and
/// `user_agent` are required.
#[derive(Debug, Clone, Default)]
pub struct RedditConfigBuilder {
    client_id: Option<String>,
    client_secret: Option<ClientSecret>,
    redirect_uri: Option<String>,
    user_agent: Option<String>,
    scopes: Option<Vec<String>>,
    www_base_url: Option<String>,
    oauth_base_url: Option<String>,
    timeout: Option<Duration>,
    body_limit: Option<usize>,
}

impl RedditConfigBuilder {
    /// The app's client id (required).
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// The app's secret (required; empty for "installed" apps, which have none).
    pub fn client_secret(mut self, client_secret: ClientSecret) -> Self {
        self.client_secret = Some(client_secret);
        self
    }

    /// The registered redirect URI (required, absolute).
    pub fn redirect_uri(mut self, redirect_uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(redirect_uri.into());
        self
    }

    /// The User-Agent sent on every request (required, non-empty). Reddit asks for
    /// `<platform>:<app ID>:<version> (by /u/<username>)` and throttles generic ones.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Default scopes (default `identity`; `identity` is added when missing).
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// Base URL of the `www` host (default `https://www.reddit.com`).
    pub fn www_base_url(mut self, url: impl Into<String>) -> Self {
        self.www_base_url = Some(url.into());
        self
    }

    /// Base URL of the OAuth API host (default `https://oauth.reddit.com`).
    pub fn oauth_base_url(mut self, url: impl Into<String>) -> Self {
        self.oauth_base_url = Some(url.into());
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

    /// Checks every value and builds the configuration.
    pub fn build(self) -> Result<RedditConfig, ProviderError> {
        let client_id = self
            .client_id
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| config_err("client_id (REDDIT_CLIENT_ID) is missing or empty"))?;
        let client_secret = self
            .client_secret
            .ok_or_else(|| config_err("client_secret (REDDIT_CLIENT_SECRET) is missing"))?;
        let redirect_uri = self
            .redirect_uri
            .ok_or_else(|| config_err("redirect_uri (REDDIT_REDIRECT_URI) is missing"))?;
        let redirect_uri = integrations_core::http::config_url(
            "reddit",
            &redirect_uri,
            "redirect_uri (REDDIT_REDIRECT_URI)",
        )?;
        let user_agent = self
            .user_agent
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| config_err("user_agent (REDDIT_USER_AGENT) is missing or empty"))?;
        if HeaderValue::from_str(&user_agent).is_err() {
            return Err(config_err(
                "user_agent (REDDIT_USER_AGENT) contains characters not allowed in a header",
            ));
        }
        let mut scopes: Vec<String> = match self.scopes {
            Some(s) if !s.is_empty() => s,
            _ => DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        };
        for s in &scopes {
            if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c == ',') {
                return Err(config_err(&format!(
                    "scope {s:?} (REDDIT_SCOPES) is empty or contains a separator"
                )));
            }
        }
        if !scopes.iter().any(|s| s == IDENTITY_SCOPE) {
            scopes.insert(0, IDENTITY_SCOPE.to_owned());
        }
        let www_base_url = integrations_core::http::config_base_url(
            "reddit",
            self.www_base_url.as_deref().unwrap_or(DEFAULT_WWW_BASE_URL),
            "www_base_url (REDDIT_WWW_BASE_URL)",
        )?;
        let oauth_base_url = integrations_core::http::config_base_url(
            "reddit",
            self.oauth_base_url
                .as_deref()
                .unwrap_or(DEFAULT_OAUTH_BASE_URL),
            "oauth_base_url (REDDIT_OAUTH_BASE_URL)",
        )?;
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() {
            return Err(config_err("timeout must be greater than zero"));
        }
        let body_limit = self.body_limit.unwrap_or(DEFAULT_BODY_LIMIT);
        if body_limit == 0 {
            return Err(config_err("body_limit must be greater than zero"));
        }
        Ok(RedditConfig {
            client_id,
            client_secret,
            redirect_uri,
            user_agent,
            scopes,
            www_base_url,
            oauth_base_url,
            timeout,
            body_limit,
        })
    }
}

fn config_err(message: &str) -> ProviderError {
    ProviderError::Config(format!("reddit: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const FULL: &[(&str, &str)] = &[
        ("REDDIT_CLIENT_ID", "cid"),
        ("REDDIT_CLIENT_SECRET", "csecret"),
        ("REDDIT_REDIRECT_URI", "https://app.example/cb"),
        ("REDDIT_USER_AGENT", "web:com.example:v1 (by /u/example)"),
    ];

    #[test]
    fn from_lookup_reads_everything() {
        let mut pairs = FULL.to_vec();
        pairs.push(("REDDIT_SCOPES", "read, history"));
        pairs.push(("REDDIT_WWW_BASE_URL", "http://127.0.0.1:9/reddit/www/"));
        let c = RedditConfig::from_lookup(env(&pairs)).unwrap();
        assert_eq!(c.client_id(), "cid");
        assert_eq!(c.user_agent(), "web:com.example:v1 (by /u/example)");
        assert_eq!(c.scopes(), ["identity", "read", "history"]);
        assert_eq!(c.www_base_url(), "http://127.0.0.1:9/reddit/www");
        assert_eq!(c.oauth_base_url(), DEFAULT_OAUTH_BASE_URL);
        assert!(!format!("{c:?}").contains("csecret"));
    }

    #[test]
    fn each_missing_variable_is_named() {
        for (missing, _) in FULL {
            let pairs: Vec<_> = FULL.iter().copied().filter(|(k, _)| k != missing).collect();
            let err = RedditConfig::from_lookup(env(&pairs)).unwrap_err();
            assert!(
                matches!(&err, ProviderError::Config(m) if m.contains(missing)),
                "{missing}: {err}"
            );
        }
    }

    #[test]
    fn empty_user_agent_is_a_config_error() {
        for ua in ["", "   "] {
            let mut pairs: Vec<_> = FULL
                .iter()
                .copied()
                .filter(|(k, _)| *k != "REDDIT_USER_AGENT")
                .collect();
            pairs.push(("REDDIT_USER_AGENT", ua));
            let err = RedditConfig::from_lookup(env(&pairs)).unwrap_err();
            assert!(
                matches!(&err, ProviderError::Config(m) if m.contains("REDDIT_USER_AGENT")),
                "{err}"
            );
        }
        let err = RedditConfig::builder()
            .client_id("a")
            .client_secret(ClientSecret::new("b"))
            .redirect_uri("https://x.example/cb")
            .build()
            .unwrap_err();
        assert!(matches!(err, ProviderError::Config(m) if m.contains("user_agent")));
        let err = RedditConfig::builder()
            .client_id("a")
            .client_secret(ClientSecret::new("b"))
            .redirect_uri("https://x.example/cb")
            .user_agent("bad\nagent")
            .build()
            .unwrap_err();
        assert!(matches!(err, ProviderError::Config(_)));
    }

    #[test]
    fn malformed_values_are_rejected() {
        let base = || {
            RedditConfig::builder()
                .client_id("a")
                .client_secret(ClientSecret::new("b"))
                .user_agent("ua")
        };
        assert!(base().redirect_uri("not a url").build().is_err());
        assert!(base().redirect_uri("ftp://x.example/cb").build().is_err());
        assert!(
            base()
                .redirect_uri("https://x.example/cb")
                .scopes(["identity read"])
                .build()
                .is_err()
        );
        assert!(
            base()
                .redirect_uri("https://x.example/cb")
                .www_base_url("https://x.example/?q=1")
                .build()
                .is_err()
        );
        assert!(
            base()
                .redirect_uri("https://x.example/cb")
                .timeout(Duration::ZERO)
                .build()
                .is_err()
        );
        let ok = base().redirect_uri("https://x.example/cb").build().unwrap();
        assert_eq!(ok.scopes(), ["identity"]);
    }
}
