//! Configuration of the TikTok provider: credentials, redirect URI, scopes, PKCE
//! encoding, hosts and HTTP limits.

use integrations_core::http::split_scopes;
use integrations_core::http::{DEFAULT_BODY_LIMIT, DEFAULT_TIMEOUT};
use integrations_core::{ClientSecret, ProviderError};
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

/// Settings of [`TikTok`](crate::TikTok).
///
/// Build one with [`TikTokConfig::new`] and the `with_*` methods, or read it from the
/// environment with [`TikTokConfig::from_env`]. Base URLs never end with `/` (a trailing
/// slash is removed); their path prefix is kept.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TikTokConfig {
    /// The app's client key (TikTok's name for the client id).
    pub client_key: String,
    /// The app's client secret.
    pub client_secret: ClientSecret,
    /// The registered redirect URI; sent at authorize and at the code exchange.
    pub redirect_uri: Url,
    /// Scopes asked for when the service passes none (default `user.info.basic`).
    pub scopes: Vec<String>,
    /// How the PKCE challenge is encoded (default base64url).
    pub pkce_encoding: PkceChallengeEncoding,
    /// The `fields` of `/v2/user/info/` (default [`DEFAULT_USER_INFO_FIELDS`]). `username`
    /// belongs to the `user.info.profile` scope: when TikTok answers
    /// `scope_not_authorized`, the request is repeated with only the `user.info.basic`
    /// fields of this list. Drop `username` here to save that request when the app never
    /// asks for `user.info.profile`.
    pub user_info_fields: String,
    /// Host of `/v2/auth/authorize/` (default [`DEFAULT_WWW_BASE_URL`]).
    pub www_base_url: String,
    /// Host of `/v2/oauth/token/`, `/v2/oauth/revoke/`, `/v2/user/info/` (default
    /// [`DEFAULT_API_BASE_URL`]).
    pub api_base_url: String,
    /// Total timeout of one HTTP request (default 20 s).
    pub timeout: Duration,
    /// Largest response body read, in bytes (default 1 MiB); larger replies fail with
    /// `Protocol` without being buffered.
    pub body_limit: usize,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl TikTokConfig {
    /// A configuration with the default scope, base64url PKCE, the real hosts and default
    /// limits.
    pub fn new(
        client_key: impl Into<String>,
        client_secret: ClientSecret,
        redirect_uri: Url,
    ) -> Self {
        Self {
            client_key: client_key.into(),
            client_secret,
            redirect_uri,
            scopes: vec![DEFAULT_SCOPE.to_owned()],
            pkce_encoding: PkceChallengeEncoding::Base64Url,
            user_info_fields: DEFAULT_USER_INFO_FIELDS.to_owned(),
            www_base_url: DEFAULT_WWW_BASE_URL.to_owned(),
            api_base_url: DEFAULT_API_BASE_URL.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            body_limit: DEFAULT_BODY_LIMIT,
            user_agent: concat!("integrations-tiktok/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }

    /// Reads the configuration from the process environment.
    ///
    /// Variables:
    /// - `TIKTOK_CLIENT_KEY` (required): the app's client key;
    /// - `TIKTOK_CLIENT_SECRET` (required): the app's client secret;
    /// - `TIKTOK_REDIRECT_URI` (required): an absolute URL;
    /// - `TIKTOK_SCOPES` (optional): scopes separated by commas or spaces, replacing the
    ///   default `user.info.basic`;
    /// - `TIKTOK_PKCE_ENCODING` (optional): `base64url` (default) or `hex`.
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
        let client_key = required("TIKTOK_CLIENT_KEY")?;
        let client_secret = ClientSecret::new(required("TIKTOK_CLIENT_SECRET")?);
        let redirect = required("TIKTOK_REDIRECT_URI")?;
        let redirect_uri = Url::parse(&redirect).map_err(|e| {
            ProviderError::Config(format!("TIKTOK_REDIRECT_URI is not an absolute URL: {e}"))
        })?;
        let mut config = Self::new(client_key, client_secret, redirect_uri);
        if let Some(scopes) = lookup("TIKTOK_SCOPES") {
            let scopes = split_scopes(&scopes);
            if scopes.is_empty() {
                return Err(ProviderError::Config(
                    "TIKTOK_SCOPES is set but names no scope".into(),
                ));
            }
            config.scopes = scopes;
        }
        if let Some(encoding) = lookup("TIKTOK_PKCE_ENCODING") {
            config.pkce_encoding = encoding
                .parse()
                .map_err(|e| ProviderError::Config(format!("TIKTOK_PKCE_ENCODING: {e}")))?;
        }
        Ok(config)
    }

    /// Replaces the default scopes.
    pub fn with_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the PKCE challenge encoding.
    pub fn with_pkce_encoding(mut self, encoding: PkceChallengeEncoding) -> Self {
        self.pkce_encoding = encoding;
        self
    }

    /// Sets the `fields` of the user-info request.
    pub fn with_user_info_fields(mut self, fields: impl Into<String>) -> Self {
        self.user_info_fields = fields.into();
        self
    }

    /// Replaces the two hosts (for a sandbox or a proxy).
    pub fn with_base_urls(mut self, www: impl Into<String>, api: impl Into<String>) -> Self {
        self.www_base_url = www.into();
        self.api_base_url = api.into();
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
        if self.client_key.trim().is_empty() {
            return Err(ProviderError::Config(
                "the TikTok client_key is empty".into(),
            ));
        }
        if self.client_secret.expose_secret().is_empty() {
            return Err(ProviderError::Config(
                "the TikTok client_secret is empty".into(),
            ));
        }
        if self
            .scopes
            .iter()
            .any(|s| s.trim().is_empty() || s.contains(','))
        {
            return Err(ProviderError::Config(
                "TikTok scopes must be non-empty and contain no comma".into(),
            ));
        }
        if !self
            .user_info_fields
            .split(',')
            .any(|f| f.trim() == "open_id")
        {
            return Err(ProviderError::Config(
                "TikTok user_info_fields must include open_id".into(),
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
        ] {
            *base = integrations_core::http::config_base_url("tiktok", base, name)?;
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
        assert_eq!(c.client_key, "awkey");
        assert_eq!(c.client_secret.expose_secret(), "shh-secret");
        assert_eq!(c.redirect_uri.as_str(), "https://app.example/cb");
        assert_eq!(c.scopes, ["user.info.basic", "user.info.profile"]);
        assert_eq!(c.pkce_encoding, PkceChallengeEncoding::Hex);
        assert!(!format!("{c:?}").contains("shh-secret"));
        let c = TikTokConfig::from_lookup(env(&BASE)).unwrap();
        assert_eq!(c.scopes, ["user.info.basic"]);
        assert_eq!(c.pkce_encoding, PkceChallengeEncoding::Base64Url);
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

    #[test]
    fn base_urls_are_normalised() {
        let c = TikTokConfig::new(
            "k",
            ClientSecret::new("s"),
            Url::parse("https://a.example/cb").unwrap(),
        )
        .with_base_urls(
            "http://127.0.0.1:1/tiktok/www/",
            "http://127.0.0.1:1/tiktok/open",
        )
        .validated()
        .unwrap();
        assert_eq!(c.www_base_url, "http://127.0.0.1:1/tiktok/www");
        assert_eq!(c.api_base_url, "http://127.0.0.1:1/tiktok/open");
    }
}
