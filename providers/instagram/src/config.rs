//! Configuration of the Instagram provider: the shared OAuth client settings
//! ([`ClientConfig`]) with Instagram's names and hosts; a builder and
//! [`InstagramConfig::from_env`].

use integrations_core::ProviderError;
use integrations_core::client::{BaseUrl, ClientConfig, ClientConfigBuilder, ClientSpec};

/// The scope every Instagram Login app needs.
pub const DEFAULT_SCOPE: &str = "instagram_business_basic";
/// `https://www.instagram.com`: the host of the authorization dialog.
pub const DEFAULT_WWW_BASE_URL: &str = "https://www.instagram.com";
/// `https://api.instagram.com`: the host of the code exchange.
pub const DEFAULT_API_BASE_URL: &str = "https://api.instagram.com";
/// `https://graph.instagram.com`: the host of the long-lived token, refresh and profile
/// endpoints.
pub const DEFAULT_GRAPH_BASE_URL: &str = "https://graph.instagram.com";

pub(crate) const WWW: BaseUrl = BaseUrl::new("www_base_url", DEFAULT_WWW_BASE_URL);
pub(crate) const API: BaseUrl = BaseUrl::new("api_base_url", DEFAULT_API_BASE_URL);
pub(crate) const GRAPH: BaseUrl = BaseUrl::new("graph_base_url", DEFAULT_GRAPH_BASE_URL);

static SPEC: ClientSpec = ClientSpec {
    provider: "instagram",
    env_prefix: "INSTAGRAM",
    client_id: Some("client_id"),
    client_secret: "client_secret",
    empty_secret_allowed: false,
    default_scopes: &[DEFAULT_SCOPE],
    required_scopes: &[],
    base_urls: &[WWW, API, GRAPH],
    default_user_agent: Some(concat!(
        "integrations-instagram/",
        env!("CARGO_PKG_VERSION")
    )),
};

/// Settings for [`InstagramProvider`](crate::InstagramProvider): the shared
/// [`ClientConfig`] and nothing more.
///
/// Build one with [`InstagramConfig::builder`] or [`InstagramConfig::from_env`]. Base URLs
/// never end with `/`; their path prefix is kept, so a sandbox can serve the API under
/// `http://127.0.0.1:PORT/instagram/api`. `Debug` never prints the client secret.
#[derive(Debug, Clone)]
pub struct InstagramConfig {
    pub(crate) client: ClientConfig,
}

/// Builder for [`InstagramConfig`]. `client_id`, `client_secret` and `redirect_uri` are
/// required.
#[derive(Debug, Clone)]
pub struct InstagramConfigBuilder {
    client: ClientConfigBuilder,
}

integrations_core::client_settings! {
    /// Reads the configuration from the process environment.
    ///
    /// Required:
    /// - `INSTAGRAM_CLIENT_ID`: the Instagram App ID;
    /// - `INSTAGRAM_CLIENT_SECRET`: the Instagram App secret;
    /// - `INSTAGRAM_REDIRECT_URI`: the redirect URI registered for the app, an absolute
    ///   http(s) URL.
    ///
    /// Optional:
    /// - `INSTAGRAM_SCOPES`: scopes separated by commas or spaces (default
    ///   `instagram_business_basic`);
    /// - `INSTAGRAM_WWW_BASE_URL`, `INSTAGRAM_API_BASE_URL`, `INSTAGRAM_GRAPH_BASE_URL`
    ///   (defaults [`DEFAULT_WWW_BASE_URL`], [`DEFAULT_API_BASE_URL`],
    ///   [`DEFAULT_GRAPH_BASE_URL`]);
    /// - `INSTAGRAM_TIMEOUT_SECS` (default 20), `INSTAGRAM_BODY_LIMIT` (bytes, default
    ///   1 MiB), `INSTAGRAM_USER_AGENT` (default `integrations-instagram/<version>`).
    ///
    /// An empty variable counts as unset. A missing or malformed variable is a
    /// [`ProviderError::Config`] naming it.
    InstagramConfig, InstagramConfigBuilder, client, SPEC;
    id: client_id;
    secret: client_secret;
    scopes: scopes;
    base_urls: { www_base_url => WWW, api_base_url => API, graph_base_url => GRAPH };
    extras: {};
}

impl InstagramConfigBuilder {
    /// Checks every value and builds the configuration.
    pub fn build(self) -> Result<InstagramConfig, ProviderError> {
        Ok(InstagramConfig {
            client: self.client.build()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use integrations_core::testing::{assert_each_required_variable_named, env_lookup};

    const REQUIRED: &[(&str, &str)] = &[
        ("INSTAGRAM_CLIENT_ID", "123"),
        ("INSTAGRAM_CLIENT_SECRET", "shh"),
        ("INSTAGRAM_REDIRECT_URI", "https://app.example/cb"),
    ];

    #[test]
    fn from_lookup_reads_instagram_variables() {
        assert_each_required_variable_named(REQUIRED, |l| InstagramConfig::from_lookup(l));
        let mut vars = REQUIRED.to_vec();
        vars.push((
            "INSTAGRAM_SCOPES",
            "instagram_business_basic, instagram_business_content_publish",
        ));
        vars.push((
            "INSTAGRAM_GRAPH_BASE_URL",
            "http://127.0.0.1:1/instagram/graph/",
        ));
        let c = InstagramConfig::from_lookup(env_lookup(&vars)).unwrap();
        assert_eq!(c.client_id(), "123");
        assert_eq!(c.client.client_secret().expose_secret(), "shh");
        assert_eq!(
            c.scopes(),
            [
                "instagram_business_basic",
                "instagram_business_content_publish"
            ]
        );
        assert_eq!(c.graph_base_url(), "http://127.0.0.1:1/instagram/graph");
        assert_eq!(c.www_base_url(), DEFAULT_WWW_BASE_URL);
        assert!(!format!("{c:?}").contains("shh"));
        let c = InstagramConfig::from_lookup(env_lookup(REQUIRED)).unwrap();
        assert_eq!(c.scopes(), [DEFAULT_SCOPE]);
        assert_eq!(c.api_base_url(), DEFAULT_API_BASE_URL);
        assert_eq!(
            c.user_agent(),
            concat!("integrations-instagram/", env!("CARGO_PKG_VERSION"))
        );
    }
}
