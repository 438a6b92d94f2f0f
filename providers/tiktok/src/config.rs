//! Configuration of the TikTok provider: credentials, redirect URI, scopes, PKCE
//! encoding, hosts and HTTP limits; a builder and [`TikTokConfig::from_env`].

use integrations_core::http::split_scopes;
use integrations_core::http::{DEFAULT_BODY_LIMIT, DEFAULT_TIMEOUT};
use integrations_core::{ClientSecret, ProviderError};
use reqwest::header::HeaderValue;
use std::time::Duration;
use url::Url;

/// The scope asked for by default.
pub const DEFAULT_SCOPE: &str = "user.info.basic";
/// `https://www.tiktok.com`: the host of the authorization page.
pub const DEFAULT_WWW_BASE_URL: &str = "https://www.tiktok.com";
/// `https://open.tiktokapis.com`: the host of the token, revoke and user-info endpoints.
pub const DEFAULT_API_BASE_URL: &str = "https://open.tiktokapis.com";
/// The `fields` asked of `/v2/user/info/` by default.
pub const DEFAULT_USER_INFO_FIELDS: &str = "open_id,union_id,avatar_url,display_name,username";

/// How the PKCE `code_challenge` is encoded.
///
/// RFC 7636 specifies base64url (without padding) of the SHA-256 of the verifier, and that
/// is what TikTok's web flow accepts. Some of TikTok's desktop documentation computes the
/// challenge as the **hex** SHA-256 instead; that variant is unverified, so it is offered
/// as an option rather than assumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PkceChallengeEncoding {
    /// `base64url(SHA-256(verifier))`, RFC 7636 (the default).
    #[default]
    Base64Url,
    /// `hex(SHA-256(verifier))`, as some TikTok desktop documents show.
    Hex,
}

impl std::str::FromStr for PkceChallengeEncoding {
    type Err = ProviderError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "base64url" | "base64" | "rfc7636" => Ok(Self::Base64Url),
            "hex" => Ok(Self::Hex),
            other => Err(ProviderError::Config(format!(
                "unknown PKCE challenge encoding {other:?} (use `base64url` or `hex`)"
            ))),
        }
    }
}

/// The `User-Agent` sent when none is configured.
const DEFAULT_USER_AGENT: &str = concat!("integrations-tiktok/", env!("CARGO_PKG_VERSION"));

/// Settings for [`TikTokProvider`](crate::TikTokProvider).
///
/// Build one with [`TikTokConfig::builder`] or [`TikTokConfig::from_env`]. Base URLs never
/// end with `/` (a trailing slash is removed); their path prefix is kept. `Debug` never
/// prints the client secret.
#[derive(Debug, Clone)]
pub struct TikTokConfig {
    pub(crate) client_key: String,
    pub(crate) client_secret: ClientSecret,
    pub(crate) redirect_uri: Url,
    pub(crate) scopes: Vec<String>,
    pub(crate) pkce_encoding: PkceChallengeEncoding,
    pub(crate) user_info_fields: String,
    pub(crate) www_base_url: String,
    pub(crate) api_base_url: String,
    pub(crate) timeout: Duration,
    pub(crate) body_limit: usize,
    pub(crate) user_agent: String,
}

impl TikTokConfig {
    /// An empty builder.
    pub fn builder() -> TikTokConfigBuilder {
        TikTokConfigBuilder::default()
    }

    /// Reads the configuration from the process environment.
    ///
    /// Required:
    /// - `TIKTOK_CLIENT_KEY`: the app's client key;
    /// - `TIKTOK_CLIENT_SECRET`: the app's client secret;
    /// - `TIKTOK_REDIRECT_URI`: the registered redirect URI, an absolute http(s) URL.
    ///
    /// Optional:
    /// - `TIKTOK_SCOPES`: scopes separated by commas or spaces, replacing the default
    ///   `user.info.basic`;
    /// - `TIKTOK_PKCE_ENCODING`: `base64url` (default) or `hex`.
    ///
    /// User-info fields, hosts, timeout, body limit and `User-Agent` are set with the
    /// builder. A missing or malformed variable is a [`ProviderError::Config`] naming it.
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
            .client_key(required("TIKTOK_CLIENT_KEY")?)
            .client_secret(ClientSecret::new(required("TIKTOK_CLIENT_SECRET")?))
            .redirect_uri(required("TIKTOK_REDIRECT_URI")?);
        if let Some(scopes) = lookup("TIKTOK_SCOPES") {
            let scopes = split_scopes(&scopes);
            if scopes.is_empty() {
                return Err(ProviderError::Config(
                    "TIKTOK_SCOPES is set but names no scope".into(),
                ));
            }
            builder = builder.scopes(scopes);
        }
        if let Some(encoding) = lookup("TIKTOK_PKCE_ENCODING") {
            builder = builder.pkce_encoding(
                encoding
                    .parse()
                    .map_err(|e| ProviderError::Config(format!("TIKTOK_PKCE_ENCODING: {e}")))?,
            );
        }
        builder.build()
    }

    /// The app's client key (TikTok's name for the client id).
    pub fn client_key(&self) -> &str {
        &self.client_key
    }

    /// The registered redirect URI; sent at authorize and at the code exchange.
    pub fn redirect_uri(&self) -> &Url {
        &self.redirect_uri
    }

    /// Scopes asked for when the service passes none (default `user.info.basic`).
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// How the PKCE challenge is encoded (default base64url).
    pub fn pkce_encoding(&self) -> PkceChallengeEncoding {
        self.pkce_encoding
    }

    /// The `fields` of `/v2/user/info/` (default [`DEFAULT_USER_INFO_FIELDS`]); always
    /// includes `open_id`.
    pub fn user_info_fields(&self) -> &str {
        &self.user_info_fields
    }

    /// Host of `/v2/auth/authorize/` (default [`DEFAULT_WWW_BASE_URL`]; no trailing `/`).
    pub fn www_base_url(&self) -> &str {
        &self.www_base_url
    }

    /// Host of `/v2/oauth/token/`, `/v2/oauth/revoke/`, `/v2/user/info/` (default
    /// [`DEFAULT_API_BASE_URL`]; no trailing `/`).
    pub fn api_base_url(&self) -> &str {
        &self.api_base_url
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

/// Builder for [`TikTokConfig`]. `client_key`, `client_secret` and `redirect_uri` are
/// required.
#[derive(Debug, Clone, Default)]
pub struct TikTokConfigBuilder {
    client_key: Option<String>,
    client_secret: Option<ClientSecret>,
    redirect_uri: Option<String>,
    scopes: Option<Vec<String>>,
    pkce_encoding: Option<PkceChallengeEncoding>,
    user_info_fields: Option<String>,
    www_base_url: Option<String>,
    api_base_url: Option<String>,
    timeout: Option<Duration>,
    body_limit: Option<usize>,
    user_agent: Option<String>,
}

impl TikTokConfigBuilder {
    /// The app's client key (required; TikTok's name for the client id).
    pub fn client_key(mut self, client_key: impl Into<String>) -> Self {
        self.client_key = Some(client_key.into());
        self
    }

    /// The app's client secret (required, non-empty).
    pub fn client_secret(mut self, client_secret: ClientSecret) -> Self {
        self.client_secret = Some(client_secret);
        self
    }

    /// The registered redirect URI (required, absolute http(s) URL; TikTok wants https,
    /// registered, under 512 characters).
    pub fn redirect_uri(mut self, redirect_uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(redirect_uri.into());
        self
    }

    /// Default scopes (default `user.info.basic`); each non-empty and without a comma.
    /// An empty list keeps the default.
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
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

    /// Host of the authorization page (default `https://www.tiktok.com`); a path prefix
    /// is kept, for a sandbox or a proxy.
    pub fn www_base_url(mut self, url: impl Into<String>) -> Self {
        self.www_base_url = Some(url.into());
        self
    }

    /// Host of the token, revoke and user-info endpoints (default
    /// `https://open.tiktokapis.com`); a path prefix is kept.
    pub fn api_base_url(mut self, url: impl Into<String>) -> Self {
        self.api_base_url = Some(url.into());
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

    /// The `User-Agent` header (default `integrations-tiktok/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Checks every value and builds the configuration. Base URLs lose any trailing `/`.
    pub fn build(self) -> Result<TikTokConfig, ProviderError> {
        let client_key = self
            .client_key
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| config_err("client_key (TIKTOK_CLIENT_KEY) is missing or empty"))?;
        let client_secret = self
            .client_secret
            .filter(|s| !s.expose_secret().is_empty())
            .ok_or_else(|| {
                config_err("client_secret (TIKTOK_CLIENT_SECRET) is missing or empty")
            })?;
        let redirect_uri = self
            .redirect_uri
            .ok_or_else(|| config_err("redirect_uri (TIKTOK_REDIRECT_URI) is missing"))?;
        let redirect_uri = integrations_core::http::config_url(
            "tiktok",
            &redirect_uri,
            "redirect_uri (TIKTOK_REDIRECT_URI)",
        )?;
        let scopes: Vec<String> = match self.scopes {
            Some(s) if !s.is_empty() => s,
            _ => vec![DEFAULT_SCOPE.to_owned()],
        };
        for s in &scopes {
            if s.trim().is_empty() || s.contains(',') {
                return Err(config_err(&format!(
                    "scope {s:?} (TIKTOK_SCOPES) is empty or contains a comma"
                )));
            }
        }
        let pkce_encoding = self.pkce_encoding.unwrap_or_default();
        let user_info_fields = self
            .user_info_fields
            .unwrap_or_else(|| DEFAULT_USER_INFO_FIELDS.to_owned());
        if !user_info_fields.split(',').any(|f| f.trim() == "open_id") {
            return Err(config_err("user_info_fields must include open_id"));
        }
        let www_base_url = integrations_core::http::config_base_url(
            "tiktok",
            self.www_base_url.as_deref().unwrap_or(DEFAULT_WWW_BASE_URL),
            "www_base_url",
        )?;
        let api_base_url = integrations_core::http::config_base_url(
            "tiktok",
            self.api_base_url.as_deref().unwrap_or(DEFAULT_API_BASE_URL),
            "api_base_url",
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
        Ok(TikTokConfig {
            client_key,
            client_secret,
            redirect_uri,
            scopes,
            pkce_encoding,
            user_info_fields,
            www_base_url,
            api_base_url,
            timeout,
            body_limit,
            user_agent,
        })
    }
}

fn config_err(message: &str) -> ProviderError {
    ProviderError::Config(format!("tiktok: {message}"))
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

    const BASE: [(&str, &str); 3] = [
        ("TIKTOK_CLIENT_KEY", "awkey"),
        ("TIKTOK_CLIENT_SECRET", "shh-secret"),
        ("TIKTOK_REDIRECT_URI", "https://app.example/cb"),
    ];

    #[test]
    fn from_lookup_reads_every_variable() {
        let mut vars = BASE.to_vec();
        vars.push(("TIKTOK_SCOPES", "user.info.basic,user.info.profile"));
        vars.push(("TIKTOK_PKCE_ENCODING", "hex"));
        let c = TikTokConfig::from_lookup(env(&vars)).unwrap();
        assert_eq!(c.client_key(), "awkey");
        assert_eq!(c.client_secret.expose_secret(), "shh-secret");
        assert_eq!(c.redirect_uri().as_str(), "https://app.example/cb");
        assert_eq!(c.scopes(), ["user.info.basic", "user.info.profile"]);
        assert_eq!(c.pkce_encoding(), PkceChallengeEncoding::Hex);
        assert!(!format!("{c:?}").contains("shh-secret"));
        let c = TikTokConfig::from_lookup(env(&BASE)).unwrap();
        assert_eq!(c.scopes(), ["user.info.basic"]);
        assert_eq!(c.pkce_encoding(), PkceChallengeEncoding::Base64Url);
    }

    #[test]
    fn missing_or_bad_variables_are_named() {
        for missing in [
            "TIKTOK_CLIENT_KEY",
            "TIKTOK_CLIENT_SECRET",
            "TIKTOK_REDIRECT_URI",
        ] {
            let vars: Vec<_> = BASE.into_iter().filter(|(k, _)| *k != missing).collect();
            let err = TikTokConfig::from_lookup(env(&vars)).unwrap_err();
            assert!(err.to_string().contains(missing), "{err}");
        }
        let mut vars = BASE.to_vec();
        vars.push(("TIKTOK_PKCE_ENCODING", "plain"));
        let err = TikTokConfig::from_lookup(env(&vars)).unwrap_err();
        assert!(err.to_string().contains("TIKTOK_PKCE_ENCODING"), "{err}");
    }

    fn minimal() -> TikTokConfigBuilder {
        TikTokConfig::builder()
            .client_key("k")
            .client_secret(ClientSecret::new("s3cr3t-value"))
            .redirect_uri("https://a.example/cb")
    }

    #[test]
    fn defaults() {
        let c = minimal().build().unwrap();
        assert_eq!(c.client_key(), "k");
        assert_eq!(c.redirect_uri().as_str(), "https://a.example/cb");
        assert_eq!(c.scopes(), [DEFAULT_SCOPE]);
        assert_eq!(c.pkce_encoding(), PkceChallengeEncoding::Base64Url);
        assert_eq!(c.user_info_fields(), DEFAULT_USER_INFO_FIELDS);
        assert_eq!(c.www_base_url(), DEFAULT_WWW_BASE_URL);
        assert_eq!(c.api_base_url(), DEFAULT_API_BASE_URL);
        assert_eq!(c.timeout(), DEFAULT_TIMEOUT);
        assert_eq!(c.body_limit(), DEFAULT_BODY_LIMIT);
        assert_eq!(
            c.user_agent(),
            concat!("integrations-tiktok/", env!("CARGO_PKG_VERSION"))
        );
        let c = minimal().scopes(Vec::<String>::new()).build().unwrap();
        assert_eq!(c.scopes(), [DEFAULT_SCOPE]);
    }

    #[test]
    fn builder_sets_every_field() {
        let c = minimal()
            .scopes(["user.info.basic", "user.info.profile"])
            .pkce_encoding(PkceChallengeEncoding::Hex)
            .user_info_fields("open_id,display_name")
            .timeout(Duration::from_secs(3))
            .body_limit(4096)
            .user_agent("ua/1")
            .build()
            .unwrap();
        assert_eq!(c.scopes(), ["user.info.basic", "user.info.profile"]);
        assert_eq!(c.pkce_encoding(), PkceChallengeEncoding::Hex);
        assert_eq!(c.user_info_fields(), "open_id,display_name");
        assert_eq!(c.timeout(), Duration::from_secs(3));
        assert_eq!(c.body_limit(), 4096);
        assert_eq!(c.user_agent(), "ua/1");
    }

    #[test]
    fn missing_required_fields_are_named() {
        let cases = [
            (
                TikTokConfig::builder()
                    .client_secret(ClientSecret::new("s"))
                    .redirect_uri("https://a.example/cb"),
                "client_key",
            ),
            (
                TikTokConfig::builder()
                    .client_key(" ")
                    .client_secret(ClientSecret::new("s"))
                    .redirect_uri("https://a.example/cb"),
                "client_key",
            ),
            (
                TikTokConfig::builder()
                    .client_key("k")
                    .redirect_uri("https://a.example/cb"),
                "client_secret",
            ),
            (
                TikTokConfig::builder()
                    .client_key("k")
                    .client_secret(ClientSecret::new(""))
                    .redirect_uri("https://a.example/cb"),
                "client_secret",
            ),
            (
                TikTokConfig::builder()
                    .client_key("k")
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
        let err = TikTokConfig::builder().build().unwrap_err();
        assert!(matches!(&err, ProviderError::Config(m) if m.contains("client_key")));
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
            minimal().scopes(["user.info.basic,user.info.profile"]),
            minimal().scopes([""]),
            minimal().user_info_fields("display_name,username"),
            minimal().timeout(Duration::ZERO),
            minimal().body_limit(0),
            minimal().user_agent("bad\nagent"),
            minimal().api_base_url("https://x.example/#frag"),
            minimal().www_base_url("not a url"),
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
            .www_base_url("http://127.0.0.1:1/tiktok/www/")
            .api_base_url("http://127.0.0.1:1/tiktok/open")
            .build()
            .unwrap();
        assert_eq!(c.www_base_url(), "http://127.0.0.1:1/tiktok/www");
        assert_eq!(c.api_base_url(), "http://127.0.0.1:1/tiktok/open");
        let bad = minimal().www_base_url("ftp://x").build();
        assert!(matches!(bad, Err(ProviderError::Config(_))));
    }
}
