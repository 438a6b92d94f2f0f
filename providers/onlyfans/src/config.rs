//! Gateway configuration: the shared client settings ([`ClientConfig`]) with the gateway's
//! names (an API key, no client id, no scopes) plus the gateway's wire names; a builder
//! and [`OnlyFansConfig::from_env`].
//!
//! Every wire name of the gateway contract (base URL, header names, callback parameters,
//! paths) is configurable, because the gateway is a third-party product whose API may
//! change or differ between vendors. The defaults follow OFAuth's documented "Link" flow:
//! <https://docs.ofauth.com/api-reference/link/init> (session and redirect parameters),
//! <https://docs.ofauth.com/api-reference/self/get-current-user> (the profile) and
//! <https://docs.ofauth.com/api-reference/account/disconnect-connection> (disconnect).

use integrations_core::ProviderError;
use integrations_core::client::{BaseUrl, ClientConfig, ClientConfigBuilder, ClientSpec};
use reqwest::header::{HeaderName, HeaderValue};

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
/// The former name of `ONLYFANS_API_BASE_URL`, still read when that one is unset.
pub const LEGACY_GATEWAY_URL_VAR: &str = "ONLYFANS_GATEWAY_URL";

pub(crate) const API: BaseUrl = BaseUrl::new("api_base_url", DEFAULT_API_BASE_URL);

static SPEC: ClientSpec = ClientSpec {
    provider: "onlyfans",
    env_prefix: "ONLYFANS",
    client_id: None,
    client_secret: "api_key",
    empty_secret_allowed: false,
    default_scopes: &[],
    required_scopes: &[],
    base_urls: &[API],
    default_user_agent: Some(concat!("integrations-onlyfans/", env!("CARGO_PKG_VERSION"))),
};

/// Settings for [`OnlyFansProvider`](crate::OnlyFansProvider): the shared
/// [`ClientConfig`] (its secret is the API key) and the gateway's wire names. `Debug`
/// never prints the API key.
#[derive(Debug, Clone)]
pub struct OnlyFansConfig {
    pub(crate) client: ClientConfig,
    pub(crate) api_key_header: HeaderName,
    pub(crate) connection_id_header: HeaderName,
    pub(crate) callback_param: String,
    pub(crate) state_param: String,
    pub(crate) link_init_path: String,
    pub(crate) self_path: String,
    pub(crate) connection_path: String,
}

/// Builder for [`OnlyFansConfig`]. `api_key` and `redirect_uri` are required.
#[derive(Debug, Clone)]
pub struct OnlyFansConfigBuilder {
    client: ClientConfigBuilder,
    api_key_header: Option<String>,
    connection_id_header: Option<String>,
    callback_param: Option<String>,
    state_param: Option<String>,
    link_init_path: Option<String>,
    self_path: Option<String>,
    connection_path: Option<String>,
}

integrations_core::client_settings! {
    /// Reads the configuration from the process environment.
    ///
    /// Required:
    /// - `ONLYFANS_API_KEY`: the gateway API key;
    /// - `ONLYFANS_REDIRECT_URI`: where the gateway sends the user back.
    ///
    /// Optional:
    /// - `ONLYFANS_API_BASE_URL`: the gateway base URL (default [`DEFAULT_API_BASE_URL`];
    ///   the former name `ONLYFANS_GATEWAY_URL` is read when it is unset);
    /// - `ONLYFANS_TIMEOUT_SECS` (default 20), `ONLYFANS_BODY_LIMIT` (bytes, default
    ///   1 MiB), `ONLYFANS_USER_AGENT` (default `integrations-onlyfans/<version>`).
    ///
    /// Header names, the callback parameters and paths are set with the builder. An empty
    /// variable counts as unset. A missing or malformed variable is a
    /// [`ProviderError::Config`] naming it.
    OnlyFansConfig, OnlyFansConfigBuilder, client, SPEC;
    secret: api_key;
    base_urls: { api_base_url => API };
    extras: {
        api_key_header, connection_id_header, callback_param, state_param,
        link_init_path, self_path, connection_path,
    };
    env: OnlyFansConfigBuilder::with_legacy_env;
}

/// Getters and setters of the gateway's wire names.
macro_rules! wire_names {
    ($($name:ident: $ty:ty, $doc:literal, $get:expr;)*) => {
        impl OnlyFansConfig {
            $(
                #[doc = $doc]
                pub fn $name(&self) -> &$ty {
                    $get(&self.$name)
                }
            )*
        }
        impl OnlyFansConfigBuilder {
            $(
                #[doc = $doc]
                pub fn $name(mut self, value: impl Into<String>) -> Self {
                    self.$name = Some(value.into());
                    self
                }
            )*
        }
    };
}

wire_names! {
    api_key_header: HeaderName, "The header carrying the API key (default `apikey`).", |h| h;
    connection_id_header: HeaderName,
        "The header carrying the connection id (default `x-connection-id`).", |h| h;
    callback_param: str,
        "The callback query parameter holding the connection id (default `connection_id`).",
        String::as_str;
    state_param: str,
        "The callback query parameter echoing the state sent as `clientReferenceId` \
         (default `client_reference_id`).", String::as_str;
    link_init_path: str, "The path starting a link session (default `/v2/link/init`).",
        String::as_str;
    self_path: str, "The path of the connected account's profile (default `/v2/access/self`).",
        String::as_str;
    connection_path: str,
        "The path template deleting a connection; it contains `{connection_id}` (default \
         `/v2/account/connections/{connection_id}`).", String::as_str;
}

impl OnlyFansConfig {
    /// `<api base URL><path>`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api_base_url())
    }
}

impl OnlyFansConfigBuilder {
    /// Reads [`LEGACY_GATEWAY_URL_VAR`] when `ONLYFANS_API_BASE_URL` is unset.
    fn with_legacy_env(
        self,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ProviderError> {
        let set = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        Ok(
            match (set(&SPEC.var(API.name)), set(LEGACY_GATEWAY_URL_VAR)) {
                (None, Some(url)) => self.api_base_url(url),
                _ => self,
            },
        )
    }

    /// Checks every value and builds the configuration.
    pub fn build(self) -> Result<OnlyFansConfig, ProviderError> {
        let client = self.client.build()?;
        let error = |message: String| client.spec().error(message);
        if HeaderValue::from_str(client.client_secret().expose_secret()).is_err() {
            return Err(error(
                "api_key (ONLYFANS_API_KEY) contains characters not allowed in a header".into(),
            ));
        }
        let header = |value: Option<String>, default: &str, what: &str| {
            let value = value.unwrap_or_else(|| default.to_owned());
            HeaderName::from_bytes(value.trim().as_bytes())
                .map_err(|_| error(format!("{what} {value:?} is not a valid header name")))
        };
        let path = |value: Option<String>, default: &str, what: &str| {
            let p = value.unwrap_or_else(|| default.to_owned());
            if !p.starts_with('/') || p.contains(['?', '#']) || p.chars().any(char::is_whitespace) {
                return Err(error(format!(
                    "{what} {p:?} must start with `/` and have no query, fragment or spaces"
                )));
            }
            Ok(p)
        };
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
                return Err(error(format!(
                    "{what} must be non-empty and not `status`, `error_code` or `step`"
                )));
            }
        }
        if callback_param == state_param {
            return Err(error("callback_param and state_param must differ".into()));
        }
        let connection_path = path(
            self.connection_path,
            DEFAULT_CONNECTION_PATH,
            "connection_path",
        )?;
        if !connection_path.contains(CONNECTION_ID_PLACEHOLDER) {
            return Err(error(
                "connection_path must contain the `{connection_id}` placeholder".into(),
            ));
        }
        Ok(OnlyFansConfig {
            api_key_header: header(
                self.api_key_header,
                DEFAULT_API_KEY_HEADER,
                "api_key_header",
            )?,
            connection_id_header: header(
                self.connection_id_header,
                DEFAULT_CONNECTION_ID_HEADER,
                "connection_id_header",
            )?,
            callback_param,
            state_param,
            link_init_path: path(
                self.link_init_path,
                DEFAULT_LINK_INIT_PATH,
                "link_init_path",
            )?,
            self_path: path(self.self_path, DEFAULT_SELF_PATH, "self_path")?,
            connection_path,
            client,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use integrations_core::ClientSecret;
    use integrations_core::testing::{assert_each_required_variable_named, env_lookup as env};

    const FULL: &[(&str, &str)] = &[
        ("ONLYFANS_API_KEY", "key-123"),
        ("ONLYFANS_REDIRECT_URI", "https://app.example/of/cb"),
    ];

    #[test]
    fn from_lookup_defaults_and_base_url() {
        let c = OnlyFansConfig::from_lookup(env(FULL)).unwrap();
        assert_eq!(c.api_base_url(), DEFAULT_API_BASE_URL);
        assert_eq!(c.api_key_header().as_str(), "apikey");
        assert_eq!(c.connection_id_header().as_str(), "x-connection-id");
        assert_eq!(c.callback_param(), "connection_id");
        assert_eq!(c.state_param(), "client_reference_id");
        assert_eq!(
            c.connection_path(),
            "/v2/account/connections/{connection_id}"
        );
        assert!(c.user_agent().starts_with("integrations-onlyfans/"));
        assert!(!format!("{c:?}").contains("key-123"));
        // The documented name, the former name, and the documented one winning.
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = FULL.to_vec();
            pairs.extend_from_slice(extra);
            OnlyFansConfig::from_lookup(env(&pairs)).unwrap()
        };
        let new = ("ONLYFANS_API_BASE_URL", "http://127.0.0.1:1/of/api/");
        let old = ("ONLYFANS_GATEWAY_URL", "http://127.0.0.1:2/of/gateway/");
        assert_eq!(with(&[new]).api_base_url(), "http://127.0.0.1:1/of/api");
        assert_eq!(with(&[old]).api_base_url(), "http://127.0.0.1:2/of/gateway");
        assert_eq!(
            with(&[new, old]).api_base_url(),
            "http://127.0.0.1:1/of/api"
        );
        let c = with(&[("ONLYFANS_TIMEOUT_SECS", "2.5")]);
        assert_eq!(c.timeout(), std::time::Duration::from_millis(2500));
    }

    #[test]
    fn each_missing_variable_is_named() {
        assert_each_required_variable_named(FULL, |l| OnlyFansConfig::from_lookup(l));
    }

    #[test]
    fn malformed_values_are_rejected() {
        let base = || {
            OnlyFansConfig::builder()
                .api_key(ClientSecret::new("k"))
                .redirect_uri("https://app.example/cb")
        };
        assert!(base().build().is_ok());
        assert!(base().api_key(ClientSecret::new("")).build().is_err());
        assert!(base().api_key(ClientSecret::new("a\nb")).build().is_err());
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
