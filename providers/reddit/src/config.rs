//! Reddit configuration: the shared OAuth client settings ([`ClientConfig`]) with Reddit's
//! hosts, a required descriptive `User-Agent` and the `identity` scope always asked; a
//! builder and [`RedditConfig::from_env`].

use integrations_core::ProviderError;
use integrations_core::client::{BaseUrl, ClientConfig, ClientConfigBuilder, ClientSpec};

/// The real `www` host: authorize, token and revoke endpoints.
pub const DEFAULT_WWW_BASE_URL: &str = "https://www.reddit.com";
/// The real OAuth API host: `/api/v1/me`.
pub const DEFAULT_OAUTH_BASE_URL: &str = "https://oauth.reddit.com";
/// Scopes asked for when neither the configuration nor the request names any.
pub const DEFAULT_SCOPES: &[&str] = &["identity"];
/// The scope `/api/v1/me` needs; it is always part of the requested scopes.
pub const IDENTITY_SCOPE: &str = "identity";

pub(crate) const WWW: BaseUrl = BaseUrl::new("www_base_url", DEFAULT_WWW_BASE_URL);
pub(crate) const OAUTH: BaseUrl = BaseUrl::new("oauth_base_url", DEFAULT_OAUTH_BASE_URL);

static SPEC: ClientSpec = ClientSpec {
    provider: "reddit",
    env_prefix: "REDDIT",
    client_id: Some("client_id"),
    client_secret: "client_secret",
    empty_secret_allowed: true,
    default_scopes: DEFAULT_SCOPES,
    required_scopes: &[IDENTITY_SCOPE],
    base_urls: &[WWW, OAUTH],
    default_user_agent: None,
};

/// Settings for [`RedditProvider`](crate::RedditProvider): the shared [`ClientConfig`].
///
/// Build one with [`RedditConfig::builder`] or [`RedditConfig::from_env`]. The client
/// secret may be empty ("installed" apps have none); the `User-Agent` is required, since
/// Reddit throttles generic ones; `identity` is always among the scopes. `Debug` never
/// prints the client secret.
#[derive(Debug, Clone)]
pub struct RedditConfig {
    pub(crate) client: ClientConfig,
}

/// Builder for [`RedditConfig`]. `client_id`, `client_secret`, `redirect_uri` and
/// `user_agent` are required; `user_agent` should read
/// `<platform>:<app ID>:<version> (by /u/<username>)`.
#[derive(Debug, Clone)]
pub struct RedditConfigBuilder {
    client: ClientConfigBuilder,
}

integrations_core::client_settings! {
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
    /// - `REDDIT_TIMEOUT_SECS` (default 20) and `REDDIT_BODY_LIMIT` (bytes, default 1 MiB).
    ///
    /// An empty variable counts as unset, except `REDDIT_CLIENT_SECRET`. A missing or
    /// malformed variable is a [`ProviderError::Config`] naming it.
    RedditConfig, RedditConfigBuilder, client, SPEC;
    id: client_id;
    secret: client_secret;
    scopes: scopes;
    base_urls: { www_base_url => WWW, oauth_base_url => OAUTH };
    extras: {};
}

impl RedditConfigBuilder {
    /// Checks every value and builds the configuration.
    pub fn build(self) -> Result<RedditConfig, ProviderError> {
        Ok(RedditConfig {
            client: self.client.build()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use integrations_core::testing::{assert_each_required_variable_named, env_lookup};

    const FULL: &[(&str, &str)] = &[
        ("REDDIT_CLIENT_ID", "cid"),
        ("REDDIT_CLIENT_SECRET", ""),
        ("REDDIT_REDIRECT_URI", "https://app.example/cb"),
        ("REDDIT_USER_AGENT", "web:com.example:v1 (by /u/example)"),
    ];

    #[test]
    fn from_lookup_reads_reddit_variables() {
        assert_each_required_variable_named(FULL, |l| RedditConfig::from_lookup(l));
        let mut pairs = FULL.to_vec();
        pairs.push(("REDDIT_SCOPES", "read, history"));
        pairs.push(("REDDIT_WWW_BASE_URL", "http://127.0.0.1:9/reddit/www/"));
        let c = RedditConfig::from_lookup(env_lookup(&pairs)).unwrap();
        assert_eq!(c.client_id(), "cid");
        assert_eq!(c.user_agent(), "web:com.example:v1 (by /u/example)");
        assert_eq!(c.scopes(), ["identity", "read", "history"]);
        assert_eq!(c.www_base_url(), "http://127.0.0.1:9/reddit/www");
        assert_eq!(c.oauth_base_url(), DEFAULT_OAUTH_BASE_URL);
    }

    #[test]
    fn empty_user_agent_is_a_config_error() {
        for ua in ["", "   "] {
            let mut pairs: Vec<_> = FULL[..3].to_vec();
            pairs.push(("REDDIT_USER_AGENT", ua));
            let err = RedditConfig::from_lookup(env_lookup(&pairs)).unwrap_err();
            assert!(
                matches!(&err, ProviderError::Config(m) if m.contains("REDDIT_USER_AGENT")),
                "{err}"
            );
        }
    }
}
