//! Gateway configuration: a builder and [`OnlyFansConfig::from_env`].
//!
//! Every wire name of the gateway contract (base URL, header names, callback parameter,
//! paths) is configurable, because the gateway is a third-party product whose API may
//! change or differ between vendors. The defaults follow OFAuth's documented "Link" flow:
//! <https://docs.ofauth.com/api-reference/link/init> (session and redirect parameters),
//! <https://docs.ofauth.com/api-reference/self/get-current-user> (the profile) and
//! <https://docs.ofauth.com/api-reference/account/disconnect-connection> (disconnect).

use integrations_core::ProviderError;
use integrations_core::http::{DEFAULT_BODY_LIMIT, DEFAULT_TIMEOUT};
use integrations_core::secret::ClientSecret;
use reqwest::header::{HeaderName, HeaderValue};
use std::time::Duration;
use url::Url;

/// Default gateway base URL (OFAuth).
pub const DEFAULT_API_BASE_URL: &str = "https://api.ofauth.com";
/// Default header carrying the API key.
pub const DEFAULT_API_KEY_HEADER: &str = "apikey";
/// Default header carrying the connection id on account-scoped calls.
pub const DEFAULT_CONNECTION_ID_HEADER: &str = "x-connection-id";
/// Default callback query parameter holding the connection id.
pub const DEFAULT_CALLBACK_PARAM: &str = "connection_id";
/// Default callback query parameter echoing the state, sent to the gateway as
/// `clientReferenceId` (OFAuth returns no `state` parameter).
pub const DEFAULT_STATE_PARAM: &str = "client_reference_id";
/// Default path that starts a hosted link session.
pub const DEFAULT_LINK_INIT_PATH: &str = "/v2/link/init";
/// Default path of the connected account's profile.
pub const DEFAULT_SELF_PATH: &str = "/v2/access/self";
/// Default path that deletes a connection (OFAuth's
/// `DELETE /v2/account/connections/{connectionId}`); `{connection_id}` is replaced.
pub const DEFAULT_CONNECTION_PATH: &str = "/v2/account/connections/{connection_id}";
/// The placeholder in [`DEFAULT_CONNECTION_PATH`]-like templates.
pub const CONNECTION_ID_PLACEHOLDER: &str = "{connection_id}";

/// Settings for [`OnlyFansProvider`](crate::OnlyFansProvider). `Debug` never prints the
/// API key.
#[derive(Debug, Clone)]
pub struct OnlyFansConfig {
    pub(crate) api_key: ClientSecret,
    pub(crate) redirect_uri: Url,
    pub(crate) api_base_url: String,
    pub(crate) api_key_header: HeaderName,
    pub(crate) connection_id_header: HeaderName,
    pub(crate) callback_param: String,
    pub(crate) state_param: String,
    pub(crate) link_init_path: String,
    pub(crate) self_path: String,
    pub(crate) connection_path: String,
    pub(crate) timeout: Duration,
    pub(crate) body_limit: usize,
}

impl OnlyFansConfig {
    /// An empty builder.
    pub fn builder() -> OnlyFansConfigBuilder {
        OnlyFansConfigBuilder::default()
    }

    /// Reads the configuration from the process environment.
    ///
    /// Required:
    /// - `ONLYFANS_API_KEY`: the gateway API key.
    /// - `ONLYFANS_REDIRECT_URI`: where the gateway sends the user back.
    ///
    /// Optional:
    /// - `ONLYFANS_GATEWAY_URL`: the gateway base URL (default `https://api.ofauth.com`).
    ///
    /// Header names, the callback parameter and paths are set with the builder. A
    /// missing or malformed variable is a [`ProviderError::Config`] naming it.
    pub fn from_env() -> Result<Self, ProviderError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ProviderError> {
        let required = |name: &str| {
            lookup(name).ok_or_else(|| ProviderError::Config(format!("{name} is not set")))
        };
        let mut builder = Self::builder()
            .api_key(ClientSecret::new(required("ONLYFANS_API_KEY")?))
            .redirect_uri(required("ONLYFANS_REDIRECT_URI")?);
        if let Some(url) = lookup("ONLYFANS_GATEWAY_URL") {
            builder = builder.api_base_url(url);
        }
        builder.build()
    }

    /// The redirect URL given to the gateway (`redirectUrl`).
    pub fn redirect_uri(&self) -> &Url {
        &self.redirect_uri
    }

    /// The gateway base URL (no trailing `/`).
    pub fn api_base_url(&self) -> &str {
        &self.api_base_url
    }

    /// The header carrying the API key.
    pub fn api_key_header(&self) -> &HeaderName {
        &self.api_key_header
    }

    /// The header carrying the connection id.
    pub fn connection_id_header(&self) -> &HeaderName {
        &self.connection_id_header
    }

    /// The callback query parameter holding the connection id.
    pub fn callback_param(&self) -> &str {
        &self.callback_param
    }

    /// The callback query parameter echoing the state (`clientReferenceId`).
    pub fn state_param(&self) -> &str {
        &self.state_param
    }

    /// Total timeout of one request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Largest response body read, in bytes.
    pub fn body_limit(&self) -> usize {
        self.body_limit
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api_base_url)
    }
}

/// Builder for [`OnlyFansConfig`]. `api_key` and `redirect_uri` are required.
#[derive(Debug, Clone, Default)]
pub struct OnlyFansConfigBuilder {
    api_key: Option<ClientSecret>,
    redirect_uri: Option<String>,
    api_base_url: Option<String>,
    api_key_header: Option<String>,
    connection_id_header: Option<String>,
    callback_param: Option<String>,
    state_param: Option<String>,
    link_init_path: Option<String>,
    self_path: Option<String>,
    connection_path: Option<String>,
    timeout: Option<Duration>,
    body_limit: Option<usize>,
}

impl OnlyFansConfigBuilder {
    /// The gateway API key (required).
    pub fn api_key(mut self, api_key: ClientSecret) -> Self {
        self.api_key = Some(api_key);
        self
    }

    /// Where the gateway sends the user back (required, absolute http(s) URL).
    pub fn redirect_uri(mut self, redirect_uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(redirect_uri.into());
        self
    }

    /// Gateway base URL (default `https://api.ofauth.com`); a path prefix is kept.
    pub fn api_base_url(mut self, url: impl Into<String>) -> Self {
        self.api_base_url = Some(url.into());
        self
    }

    /// Header carrying the API key (default `apikey`).
    pub fn api_key_header(mut self, name: impl Into<String>) -> Self {
        self.api_key_header = Some(name.into());
        self
    }

    /// Header carrying the connection id (default `x-connection-id`).
    pub fn connection_id_header(mut self, name: impl Into<String>) -> Self {
        self.connection_id_header = Some(name.into());
        self
    }

    /// Callback query parameter holding the connection id (default `connection_id`).
    pub fn callback_param(mut self, name: impl Into<String>) -> Self {
        self.callback_param = Some(name.into());
        self
    }

    /// Callback query parameter echoing the state sent as `clientReferenceId` (default
    /// `client_reference_id`).
    pub fn state_param(mut self, name: impl Into<String>) -> Self {
        self.state_param = Some(name.into());
        self
    }

    /// Path starting a link session (default `/v2/link/init`).
    pub fn link_init_path(mut self, path: impl Into<String>) -> Self {
        self.link_init_path = Some(path.into());
        self
    }

    /// Path of the connected account's profile (default `/v2/access/self`).
    pub fn self_path(mut self, path: impl Into<String>) -> Self {
        self.self_path = Some(path.into());
        self
    }

    /// Path template deleting a connection; must contain `{connection_id}` (default
    /// `/v2/account/connections/{connection_id}`).
    pub fn connection_path(mut self, path: impl Into<String>) -> Self {
        self.connection_path = Some(path.into());
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
    pub fn build(self) -> Result<OnlyFansConfig, ProviderError> {
        let api_key = self
            .api_key
            .filter(|k| !k.expose_secret().trim().is_empty())
            .ok_or_else(|| config_err("api_key (ONLYFANS_API_KEY) is missing or empty"))?;
        if HeaderValue::from_str(api_key.expose_secret()).is_err() {
            return Err(config_err(
                "api_key (ONLYFANS_API_KEY) contains characters not allowed in a header",
            ));
        }
        let redirect_uri = self
            .redirect_uri
            .ok_or_else(|| config_err("redirect_uri (ONLYFANS_REDIRECT_URI) is missing"))?;
        let redirect_uri = integrations_core::http::config_url(
            "onlyfans",
            &redirect_uri,
            "redirect_uri (ONLYFANS_REDIRECT_URI)",
        )?;
        let api_base_url = integrations_core::http::config_base_url(
            "onlyfans",
            self.api_base_url.as_deref().unwrap_or(DEFAULT_API_BASE_URL),
            "api_base_url (ONLYFANS_GATEWAY_URL)",
        )?;
        let api_key_header = header_name(
            self.api_key_header
                .as_deref()
                .unwrap_or(DEFAULT_API_KEY_HEADER),
            "api_key_header",
        )?;
        let connection_id_header = header_name(
            self.connection_id_header
                .as_deref()
                .unwrap_or(DEFAULT_CONNECTION_ID_HEADER),
            "connection_id_header",
        )?;
        let callback_param = self
            .callback_param
            .unwrap_or_else(|| DEFAULT_CALLBACK_PARAM.to_owned());
        let state_param = self
            .state_param
            .unwrap_or_else(|| DEFAULT_STATE_PARAM.to_owned());
        for (name, what) in [
            (&callback_param, "callback_param"),
            (&state_param, "state_param"),
        ] {
            if name.is_empty() || ["status", "error_code", "step"].contains(&name.as_str()) {
                return Err(config_err(&format!(
                    "{what} must be non-empty and not `status`, `error_code` or `step`"
                )));
            }
        }
        if callback_param == state_param {
            return Err(config_err("callback_param and state_param must differ"));
        }
        let link_init_path = path(
            self.link_init_path,
            DEFAULT_LINK_INIT_PATH,
            "link_init_path",
        )?;
        let self_path = path(self.self_path, DEFAULT_SELF_PATH, "self_path")?;
        let connection_path = path(
            self.connection_path,
            DEFAULT_CONNECTION_PATH,
            "connection_path",
        )?;
        if !connection_path.contains(CONNECTION_ID_PLACEHOLDER) {
            return Err(config_err(
                "connection_path must contain the `{connection_id}` placeholder",
            ));
        }
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() {
            return Err(config_err("timeout must be greater than zero"));
        }
        let body_limit = self.body_limit.unwrap_or(DEFAULT_BODY_LIMIT);
        if body_limit == 0 {
            return Err(config_err("body_limit must be greater than zero"));
        }
        Ok(OnlyFansConfig {
            api_key,
            redirect_uri,
            api_base_url,
            api_key_header,
            connection_id_header,
            callback_param,
            state_param,
            link_init_path,
            self_path,
            connection_path,
            timeout,
            body_limit,
        })
    }
}

fn config_err(message: &str) -> ProviderError {
    ProviderError::Config(format!("onlyfans: {message}"))
}

fn header_name(value: &str, what: &str) -> Result<HeaderName, ProviderError> {
    HeaderName::from_bytes(value.trim().as_bytes())
        .map_err(|_| config_err(&format!("{what} {value:?} is not a valid header name")))
}

fn path(value: Option<String>, default: &str, what: &str) -> Result<String, ProviderError> {
    let p = value.unwrap_or_else(|| default.to_owned());
    if !p.starts_with('/') || p.contains(['?', '#']) || p.chars().any(char::is_whitespace) {
        return Err(config_err(&format!(
            "{what} {p:?} must start with `/` and have no query, fragment or spaces"
        )));
    }
    Ok(p)
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
        ("ONLYFANS_API_KEY", "key-123"),
        ("ONLYFANS_REDIRECT_URI", "https://app.example/of/cb"),
    ];

    #[test]
    fn from_lookup_defaults_and_gateway_url() {
        let c = OnlyFansConfig::from_lookup(env(FULL)).unwrap();
        assert_eq!(c.api_base_url(), DEFAULT_API_BASE_URL);
        assert_eq!(c.api_key_header().as_str(), "apikey");
        assert_eq!(c.connection_id_header().as_str(), "x-connection-id");
        assert_eq!(c.callback_param(), "connection_id");
        assert_eq!(c.state_param(), "client_reference_id");
        assert_eq!(c.connection_path, "/v2/account/connections/{connection_id}");
        assert!(!format!("{c:?}").contains("key-123"));
        let mut pairs = FULL.to_vec();
        pairs.push((
            "ONLYFANS_GATEWAY_URL",
            "http://127.0.0.1:1/onlyfans/gateway/",
        ));
        let c = OnlyFansConfig::from_lookup(env(&pairs)).unwrap();
        assert_eq!(c.api_base_url(), "http://127.0.0.1:1/onlyfans/gateway");
    }

    #[test]
    fn each_missing_variable_is_named() {
        for (missing, _) in FULL {
            let pairs: Vec<_> = FULL.iter().copied().filter(|(k, _)| k != missing).collect();
            let err = OnlyFansConfig::from_lookup(env(&pairs)).unwrap_err();
            assert!(
                matches!(&err, ProviderError::Config(m) if m.contains(missing)),
                "{missing}: {err}"
            );
        }
    }

    #[test]
    fn malformed_values_are_rejected() {
        let base = || {
            OnlyFansConfig::builder()
                .api_key(ClientSecret::new("k"))
                .redirect_uri("https://app.example/cb")
        };
        assert!(base().build().is_ok());
        assert!(base().api_key(ClientSecret::new(" ")).build().is_err());
        assert!(base().api_key_header("bad header").build().is_err());
        assert!(base().connection_path("/v2/connections").build().is_err());
        assert!(base().self_path("v2/self").build().is_err());
        assert!(base().callback_param("status").build().is_err());
        assert!(base().state_param("").build().is_err());
        assert!(base().state_param("connection_id").build().is_err());
        assert!(base().api_base_url("not a url").build().is_err());
        assert!(base().redirect_uri("/relative").build().is_err());
    }
}
