//! Configuration of the TikTok provider: the shared OAuth client settings
//! ([`ClientConfig`]) with TikTok's names and hosts, plus the PKCE encoding and the
//! user-info fields; a builder and [`TikTokConfig::from_env`].

use integrations_core::ProviderError;
use integrations_core::client::{BaseUrl, ClientConfig, ClientConfigBuilder, ClientSpec};

/// The scope asked for by default.
pub const DEFAULT_SCOPE: &str = "user.info.basic";
/// `https://www.tiktok.com`: the host of the authorization page.
pub const DEFAULT_WWW_BASE_URL: &str = "https://www.tiktok.com";
/// `https://open.tiktokapis.com`: the host of the token, revoke and user-info endpoints.
pub const DEFAULT_API_BASE_URL: &str = "https://open.tiktokapis.com";
/// The `fields` asked of `/v2/user/info/` by default.
pub const DEFAULT_USER_INFO_FIELDS: &str = "open_id,union_id,avatar_url,display_name,username";

/// How the PKCE `code_challenge` is encoded: base64url per RFC 7636 by default, which is
/// what TikTok's web flow accepts; some of TikTok's desktop documentation shows the hex
/// SHA-256 instead (unverified, so offered as an option rather than assumed).
pub use integrations_core::engine::PkceEncoding as PkceChallengeEncoding;

pub(crate) const WWW: BaseUrl = BaseUrl::new("www_base_url", DEFAULT_WWW_BASE_URL);
pub(crate) const API: BaseUrl = BaseUrl::new("api_base_url", DEFAULT_API_BASE_URL);

static SPEC: ClientSpec = ClientSpec {
    provider: "tiktok",
    env_prefix: "TIKTOK",
    client_id: Some("client_key"),
    client_secret: "client_secret",
    empty_secret_allowed: false,
    default_scopes: &[DEFAULT_SCOPE],
    required_scopes: &[],
    base_urls: &[WWW, API],
    default_user_agent: Some(concat!("integrations-tiktok/", env!("CARGO_PKG_VERSION"))),
};

/// Settings for [`TikTokProvider`](crate::TikTokProvider): the shared [`ClientConfig`],
/// the PKCE encoding and the user-info fields.
///
/// Build one with [`TikTokConfig::builder`] or [`TikTokConfig::from_env`]. Base URLs never
/// end with `/`; their path prefix is kept. `Debug` never prints the client secret.
#[derive(Debug, Clone)]
pub struct TikTokConfig {
    pub(crate) client: ClientConfig,
    pub(crate) pkce_encoding: PkceChallengeEncoding,
    pub(crate) user_info_fields: String,
}

/// Builder for [`TikTokConfig`]. `client_key`, `client_secret` and `redirect_uri` are
/// required.
#[derive(Debug, Clone)]
pub struct TikTokConfigBuilder {
    client: ClientConfigBuilder,
    pkce_encoding: Option<PkceChallengeEncoding>,
    user_info_fields: Option<String>,
}

integrations_core::client_settings! {
    /// Reads the configuration from the process environment.
    ///
    /// Required:
    /// - `TIKTOK_CLIENT_KEY`: the app's client key;
    /// - `TIKTOK_CLIENT_SECRET`: the app's client secret;
    /// - `TIKTOK_REDIRECT_URI`: the registered redirect URI, an absolute http(s) URL.
    ///
    /// Optional:
    /// - `TIKTOK_SCOPES`: scopes separated by commas or spaces (default `user.info.basic`);
    /// - `TIKTOK_PKCE_ENCODING`: `base64url` (default) or `hex`;
    /// - `TIKTOK_WWW_BASE_URL`, `TIKTOK_API_BASE_URL` (defaults [`DEFAULT_WWW_BASE_URL`],
    ///   [`DEFAULT_API_BASE_URL`]);
    /// - `TIKTOK_TIMEOUT_SECS` (default 20), `TIKTOK_BODY_LIMIT` (bytes, default 1 MiB),
    ///   `TIKTOK_USER_AGENT` (default `integrations-tiktok/<version>`).
    ///
    /// User-info fields are set with the builder. An empty variable counts as unset. A
    /// missing or malformed variable is a [`ProviderError::Config`] naming it.
    TikTokConfig, TikTokConfigBuilder, client, SPEC;
    id: client_key;
    secret: client_secret;
    scopes: scopes;
    base_urls: { www_base_url => WWW, api_base_url => API };
    extras: { pkce_encoding, user_info_fields };
    env: TikTokConfigBuilder::with_env;
}

impl TikTokConfig {
    /// How the PKCE challenge is encoded (default base64url).
    pub fn pkce_encoding(&self) -> PkceChallengeEncoding {
        self.pkce_encoding
    }

    /// The `fields` of `/v2/user/info/` (default [`DEFAULT_USER_INFO_FIELDS`]); always
    /// includes `open_id`.
    pub fn user_info_fields(&self) -> &str {
        &self.user_info_fields
    }
}

impl TikTokConfigBuilder {
    /// Reads `TIKTOK_PKCE_ENCODING`.
    fn with_env(self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ProviderError> {
        match lookup("TIKTOK_PKCE_ENCODING") {
            None => Ok(self),
            Some(encoding) => Ok(self.pkce_encoding(
                encoding
                    .parse()
                    .map_err(|e| ProviderError::Config(format!("TIKTOK_PKCE_ENCODING: {e}")))?,
            )),
        }
    }

    /// How the PKCE challenge is encoded (default [`PkceChallengeEncoding::Base64Url`]).
    pub fn pkce_encoding(mut self, encoding: PkceChallengeEncoding) -> Self {
        self.pkce_encoding = Some(encoding);
        self
    }

    /// The `fields` of `/v2/user/info/`, comma-separated (default
    /// [`DEFAULT_USER_INFO_FIELDS`]); must include `open_id`. `username` belongs to the
    /// `user.info.profile` scope: when TikTok answers `scope_not_authorized`, the request
    /// is repeated with only the `user.info.basic` fields of this list. Drop `username`
    /// here to save that request when the app never asks for `user.info.profile`.
    pub fn user_info_fields(mut self, fields: impl Into<String>) -> Self {
        self.user_info_fields = Some(fields.into());
        self
    }

    /// Checks every value and builds the configuration.
    pub fn build(self) -> Result<TikTokConfig, ProviderError> {
        let client = self.client.build()?;
        let user_info_fields = self
            .user_info_fields
            .unwrap_or_else(|| DEFAULT_USER_INFO_FIELDS.to_owned());
        if !user_info_fields.split(',').any(|f| f.trim() == "open_id") {
            return Err(client.spec().error("user_info_fields must include open_id"));
        }
        Ok(TikTokConfig {
            client,
            pkce_encoding: self.pkce_encoding.unwrap_or_default(),
            user_info_fields,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use integrations_core::ClientSecret;
    use integrations_core::testing::{assert_each_required_variable_named, env_lookup};

    const BASE: [(&str, &str); 3] = [
        ("TIKTOK_CLIENT_KEY", "awkey"),
        ("TIKTOK_CLIENT_SECRET", "shh-secret"),
        ("TIKTOK_REDIRECT_URI", "https://app.example/cb"),
    ];

    #[test]
    fn from_lookup_reads_tiktok_variables() {
        assert_each_required_variable_named(&BASE, |l| TikTokConfig::from_lookup(l));
        let mut vars = BASE.to_vec();
        vars.push(("TIKTOK_SCOPES", "user.info.basic,user.info.profile"));
        vars.push(("TIKTOK_PKCE_ENCODING", "hex"));
        vars.push(("TIKTOK_API_BASE_URL", "http://127.0.0.1:1/tiktok/open/"));
        let c = TikTokConfig::from_lookup(env_lookup(&vars)).unwrap();
        assert_eq!(c.client_key(), "awkey");
        assert_eq!(c.scopes(), ["user.info.basic", "user.info.profile"]);
        assert_eq!(c.pkce_encoding(), PkceChallengeEncoding::Hex);
        assert_eq!(c.api_base_url(), "http://127.0.0.1:1/tiktok/open");
        assert!(!format!("{c:?}").contains("shh-secret"));
        let c = TikTokConfig::from_lookup(env_lookup(&BASE)).unwrap();
        assert_eq!(c.scopes(), [DEFAULT_SCOPE]);
        assert_eq!(c.pkce_encoding(), PkceChallengeEncoding::Base64Url);
        assert_eq!(c.user_info_fields(), DEFAULT_USER_INFO_FIELDS);
        vars[4].1 = "plain";
        let err = TikTokConfig::from_lookup(env_lookup(&vars)).unwrap_err();
        assert!(err.to_string().contains("TIKTOK_PKCE_ENCODING"), "{err}");
    }

    #[test]
    fn extras_and_names() {
        let minimal = || {
            TikTokConfig::builder()
                .client_key("k")
                .client_secret(ClientSecret::new("s3cr3t-value"))
                .redirect_uri("https://a.example/cb")
        };
        let c = minimal()
            .pkce_encoding(PkceChallengeEncoding::Hex)
            .user_info_fields("open_id,display_name")
            .build()
            .unwrap();
        assert_eq!(c.pkce_encoding(), PkceChallengeEncoding::Hex);
        assert_eq!(c.user_info_fields(), "open_id,display_name");
        assert_eq!(
            c.user_agent(),
            concat!("integrations-tiktok/", env!("CARGO_PKG_VERSION"))
        );
        let err = minimal()
            .user_info_fields("display_name,username")
            .build()
            .unwrap_err();
        assert!(matches!(&err, ProviderError::Config(m) if m.contains("open_id")));
    }
}
