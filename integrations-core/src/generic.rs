//! A generic OAuth 2.0 provider configured by data ("custom integrations").
//!
//! A user adds a platform that speaks standard OAuth 2.0 (RFC 6749 authorization code
//! grant, optionally with PKCE, RFC 7636, and token revocation, RFC 7009) by writing a
//! [`GenericOAuth2Config`] — in code, or as JSON/TOML — instead of a provider crate. The
//! account id and handle are picked out of the platform's profile reply with JSON
//! pointers (RFC 6901).
//!
//! # Example
//!
//! ```
//! use integrations_core::generic::{GenericOAuth2Config, GenericOAuth2Provider};
//! use integrations_core::{AuthorizationRequest, Provider};
//!
//! let config: GenericOAuth2Config = serde_json::from_str(r#"{
//!     "id": "acme",
//!     "client_id": "my-client",
//!     "client_secret": "my-secret",
//!     "authorize_url": "https://auth.acme.example/oauth/authorize",
//!     "token_url": "https://auth.acme.example/oauth/token",
//!     "revoke_url": "https://auth.acme.example/oauth/revoke",
//!     "redirect_uri": "https://app.example/integrations/acme/callback",
//!     "scopes": ["user.read", "posts.read"],
//!     "scope_separator": ",",
//!     "client_auth": "basic_header",
//!     "pkce": true,
//!     "refresh_token_rotation": "rotates",
//!     "profile_url": "https://api.acme.example/v2/me",
//!     "account_id_pointer": "/data/user/open_id",
//!     "username_pointer": "/data/user/handle",
//!     "extra_authorize_params": {"prompt": "consent"},
//!     "timeout": 10
//! }"#).unwrap();
//! let provider = GenericOAuth2Provider::new(config).unwrap();
//! assert!(provider.capabilities().revoke);
//!
//! let request = AuthorizationRequest {
//!     state: "opaque-state".into(),
//!     pkce_challenge: None,
//!     scopes: Vec::new(), // empty: the configured defaults
//! };
//! let url = futures::executor::block_on(provider.authorization_url(&request)).unwrap();
//! let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
//! assert_eq!(query["state"], "opaque-state");
//! assert_eq!(query["scope"], "user.read,posts.read");
//! assert_eq!(query["response_type"], "code");
//! assert_eq!(query["client_id"], "my-client");
//! assert_eq!(query["prompt"], "consent");
//! ```
//!
//! # Configuration fields
//!
//! See [`GenericOAuth2Config`]. Required: `id`, `client_id`, `authorize_url`, `token_url`,
//! `redirect_uri`, `profile_url`. Everything else has a default: no secret, no revocation,
//! no scopes, separator `" "`, HTTP Basic client authentication, PKCE on, refresh tokens
//! kept when the platform does not send a new one, account id at `/id`, no username,
//! [`http::DEFAULT_TIMEOUT`] (as seconds in data) and [`http::DEFAULT_BODY_LIMIT`].
//!
//! # How the HTTP calls are made
//!
//! The authorization URL, the code exchange, the refresh and the revocation run on the
//! [OAuth engine](crate::engine), which drives the [`oauth2`] crate and classifies what it
//! cannot see (see there). The profile is fetched with `Authorization: Bearer` and read
//! under the same body cap.
//!
//! # Profile data
//!
//! The stored [`Profile::metadata`] is an allow-list, never the whole profile reply (which
//! may carry an e-mail address or other personal data the host did not ask to keep):
//! `{"account_id": "...", "username": "..." (omitted when unknown)}` plus one entry per
//! [`metadata_pointers`](GenericOAuth2Config::metadata_pointers) that the reply has. The
//! handle is also [`Profile::username`], which the service stores and shows. Integers are
//! rendered as their exact decimal text (any value that fits in 64 bits, including ids
//! above 2^53).

use crate::client::ApiClient;
pub use crate::engine::{ClientAuth, RefreshRotation};
use crate::engine::{OAuthApp, OAuthDialect, OAuthEngine, PkceEncoding};
use crate::http;
use crate::provider::{
    AuthorizationRequest, Capabilities, CodeExchange, PkceSupport, Profile, Provider,
    ProviderError, ProviderId, RefreshRequest, TokenSet,
};
use crate::secret::{AccessToken, ClientSecret, RefreshToken};
use async_trait::async_trait;
use chrono::Utc;
use reqwest::StatusCode;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;
use url::Url;

/// The configuration of a [`GenericOAuth2Provider`].
///
/// Deserializable from JSON or TOML (field names as below; `client_auth` is `"body"` or
/// `"basic_header"`, `refresh_token_rotation` `"rotates"` or `"keeps"`, `timeout` is in
/// seconds, `extra_authorize_params` is a map or a list of `[name, value]` pairs), or
/// built with [`GenericOAuth2Config::new`] and field assignment. An unknown field is an
/// error naming it. Nothing else is checked until [`GenericOAuth2Provider::new`].
///
/// The client secret may be given in the file (`client_secret`) or, better, as the name
/// of an environment variable holding it (`client_secret_env = "ACME_CLIENT_SECRET"`),
/// read when the file is loaded; giving both is an error.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "WireConfig")]
#[non_exhaustive]
pub struct GenericOAuth2Config {
    /// The provider id the service registers this provider under.
    pub id: ProviderId,
    /// The name people read (`"Acme"`); the id when unset.
    pub display_name: Option<String>,
    /// The OAuth client id.
    pub client_id: String,
    /// The OAuth client secret; `None` for public clients (then use PKCE).
    pub client_secret: Option<ClientSecret>,
    /// The authorization endpoint. `https`, or `http` on a loopback host.
    pub authorize_url: String,
    /// The token endpoint. `https`, or `http` on a loopback host.
    pub token_url: String,
    /// The RFC 7009 revocation endpoint, if the platform has one.
    pub revoke_url: Option<String>,
    /// The redirect URI registered with the platform.
    pub redirect_uri: String,
    /// Default scopes, used when the service asks for none.
    pub scopes: Vec<String>,
    /// How scopes are joined in the authorization URL (default `" "`; some platforms
    /// want `","`).
    pub scope_separator: String,
    /// How the client authenticates at the token and revocation endpoints.
    pub client_auth: ClientAuth,
    /// Whether to use PKCE (S256). Default `true`.
    pub pkce: bool,
    /// Whether refresh replies carry a new refresh token.
    pub refresh_token_rotation: RefreshRotation,
    /// The profile endpoint, called with `Authorization: Bearer <access token>`.
    pub profile_url: String,
    /// JSON pointer to the account id in the profile reply (default `/id`). Strings are
    /// used as they are; integers as their decimal text.
    pub account_id_pointer: String,
    /// JSON pointer to the handle in the profile reply, if the platform has one.
    pub username_pointer: Option<String>,
    /// What the platform calls the client id in the authorization URL and token forms
    /// (default `client_id`; TikTok-style platforms say `client_key`).
    pub client_id_param: String,
    /// Extra profile values kept as metadata: metadata key → JSON pointer into the profile
    /// reply. Nothing else of the profile is stored.
    pub metadata_pointers: BTreeMap<String, String>,
    /// Extra parameters for the authorization URL (`prompt=consent`, `access_type=offline`).
    pub extra_authorize_params: Vec<(String, String)>,
    /// The `User-Agent` sent with every request.
    pub user_agent: String,
    /// Total timeout of each request; seconds (integer or fractional) in data.
    pub timeout: Duration,
    /// The largest response body accepted, in bytes.
    pub body_limit: usize,
}

fn default_scope_separator() -> String {
    " ".to_owned()
}
fn default_true() -> bool {
    true
}
fn default_account_id_pointer() -> String {
    "/id".to_owned()
}
fn default_user_agent() -> String {
    concat!("integrations-core/", env!("CARGO_PKG_VERSION")).to_owned()
}
fn default_timeout() -> Duration {
    http::DEFAULT_TIMEOUT
}
fn default_body_limit() -> usize {
    http::DEFAULT_BODY_LIMIT
}

fn default_client_id_param() -> String {
    "client_id".to_owned()
}

fn de_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let secs = f64::deserialize(d)?;
    Duration::try_from_secs_f64(secs).map_err(|_| {
        serde::de::Error::custom(format!(
            "`timeout` must be a non-negative number of seconds, got {secs}"
        ))
    })
}

fn de_param_pairs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Pairs {
        List(Vec<(String, String)>),
        Map(std::collections::BTreeMap<String, String>),
    }
    Ok(match Pairs::deserialize(d)? {
        Pairs::List(list) => list,
        Pairs::Map(map) => map.into_iter().collect(),
    })
}

/// The configuration as written: the secret inline or named by a variable.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireConfig {
    id: ProviderId,
    #[serde(default)]
    display_name: Option<String>,
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    client_secret_env: Option<String>,
    authorize_url: String,
    token_url: String,
    #[serde(default)]
    revoke_url: Option<String>,
    redirect_uri: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default = "default_scope_separator")]
    scope_separator: String,
    #[serde(default)]
    client_auth: ClientAuth,
    #[serde(default = "default_true")]
    pkce: bool,
    #[serde(default)]
    refresh_token_rotation: RefreshRotation,
    profile_url: String,
    #[serde(default = "default_account_id_pointer")]
    account_id_pointer: String,
    #[serde(default)]
    username_pointer: Option<String>,
    #[serde(default = "default_client_id_param")]
    client_id_param: String,
    #[serde(default)]
    metadata_pointers: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "de_param_pairs")]
    extra_authorize_params: Vec<(String, String)>,
    #[serde(default = "default_user_agent")]
    user_agent: String,
    #[serde(default = "default_timeout", deserialize_with = "de_seconds")]
    timeout: Duration,
    #[serde(default = "default_body_limit")]
    body_limit: usize,
}

impl TryFrom<WireConfig> for GenericOAuth2Config {
    type Error = String;
    fn try_from(w: WireConfig) -> Result<Self, String> {
        let client_secret = match (w.client_secret, w.client_secret_env) {
            (Some(_), Some(_)) => {
                return Err("give `client_secret` or `client_secret_env`, not both".into());
            }
            (Some(secret), None) => Some(ClientSecret::new(secret)),
            (None, Some(var)) => match std::env::var(&var) {
                Ok(secret) if !secret.is_empty() => Some(ClientSecret::new(secret)),
                _ => {
                    return Err(format!(
                        "`client_secret_env` names {var:?}, which is not set or empty"
                    ));
                }
            },
            (None, None) => None,
        };
        Ok(Self {
            client_secret,
            display_name: w.display_name,
            id: w.id,
            client_id: w.client_id,
            authorize_url: w.authorize_url,
            token_url: w.token_url,
            revoke_url: w.revoke_url,
            redirect_uri: w.redirect_uri,
            scopes: w.scopes,
            scope_separator: w.scope_separator,
            client_auth: w.client_auth,
            pkce: w.pkce,
            refresh_token_rotation: w.refresh_token_rotation,
            profile_url: w.profile_url,
            account_id_pointer: w.account_id_pointer,
            username_pointer: w.username_pointer,
            client_id_param: w.client_id_param,
            metadata_pointers: w.metadata_pointers,
            extra_authorize_params: w.extra_authorize_params,
            user_agent: w.user_agent,
            timeout: w.timeout,
            body_limit: w.body_limit,
        })
    }
}

impl GenericOAuth2Config {
    /// A configuration with the required fields and every other field at its default
    /// (see the [module docs](self)).
    pub fn new(
        id: ProviderId,
        client_id: impl Into<String>,
        authorize_url: impl Into<String>,
        token_url: impl Into<String>,
        redirect_uri: impl Into<String>,
        profile_url: impl Into<String>,
    ) -> Self {
        Self {
            id,
            display_name: None,
            client_id: client_id.into(),
            client_secret: None,
            authorize_url: authorize_url.into(),
            token_url: token_url.into(),
            revoke_url: None,
            redirect_uri: redirect_uri.into(),
            scopes: Vec::new(),
            scope_separator: default_scope_separator(),
            client_auth: ClientAuth::default(),
            pkce: true,
            refresh_token_rotation: RefreshRotation::default(),
            profile_url: profile_url.into(),
            account_id_pointer: default_account_id_pointer(),
            username_pointer: None,
            client_id_param: default_client_id_param(),
            metadata_pointers: BTreeMap::new(),
            extra_authorize_params: Vec::new(),
            user_agent: default_user_agent(),
            timeout: default_timeout(),
            body_limit: default_body_limit(),
        }
    }
}

/// Parses an endpoint URL: absolute, no fragment, `https` (or `http` on a loopback host,
/// for local servers) unless `any_http` allows plain `http` everywhere.
fn parse_url(field: &str, value: &str, any_http: bool) -> Result<Url, ProviderError> {
    let config = |why: String| ProviderError::Config(format!("`{field}` {why}"));
    let url = Url::parse(value).map_err(|e| config(format!("is not a valid URL: {e}")))?;
    if url.fragment().is_some() {
        return Err(config("must not have a fragment".into()));
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if any_http || loopback => Ok(url),
        "http" => Err(config(
            "must use https (plain http is accepted only for loopback hosts)".into(),
        )),
        other => Err(config(format!(
            "must be an http(s) URL, not `{other}:` (got {value:?})"
        ))),
    }
}

fn check_pointer(field: &str, pointer: &str) -> Result<(), ProviderError> {
    if pointer.starts_with('/') {
        Ok(())
    } else {
        Err(ProviderError::Config(format!(
            "`{field}` must be a JSON pointer starting with `/` (such as `/id` or \
             `/data/user/open_id`), got {pointer:?}"
        )))
    }
}

/// An OAuth 2.0 provider driven entirely by a [`GenericOAuth2Config`], on the
/// [OAuth engine](crate::engine).
pub struct GenericOAuth2Provider {
    config: GenericOAuth2Config,
    engine: OAuthEngine,
    api: ApiClient,
    profile_url: Url,
}

impl fmt::Debug for GenericOAuth2Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenericOAuth2Provider")
            .field("id", &self.config.id)
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

impl GenericOAuth2Provider {
    /// Checks the configuration and builds the provider and its HTTP client.
    ///
    /// Fails with [`ProviderError::Config`] when a URL does not parse (or is plain `http`
    /// on a non-loopback host, except the redirect URI), a JSON pointer does not start
    /// with `/`, `client_id` or `scope_separator` is empty, `timeout` or `body_limit` is
    /// zero, or an extra authorization parameter would override one the provider sets.
    pub fn new(config: GenericOAuth2Config) -> Result<Self, ProviderError> {
        let app = OAuthApp {
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            redirect_uri: parse_url("redirect_uri", &config.redirect_uri, true)?,
            authorize_url: parse_url("authorize_url", &config.authorize_url, false)?,
            token_url: parse_url("token_url", &config.token_url, false)?,
            revoke_url: config
                .revoke_url
                .as_deref()
                .map(|u| parse_url("revoke_url", u, false))
                .transpose()?,
        };
        let profile_url = parse_url("profile_url", &config.profile_url, false)?;
        check_pointer("account_id_pointer", &config.account_id_pointer)?;
        if let Some(p) = &config.username_pointer {
            check_pointer("username_pointer", p)?;
        }
        for (key, pointer) in &config.metadata_pointers {
            check_pointer(&format!("metadata_pointers.{key}"), pointer)?;
            if key == "account_id" || key == "username" {
                return Err(ProviderError::Config(format!(
                    "`metadata_pointers` may not set `{key}`; the provider sets it"
                )));
            }
        }
        let dialect = OAuthDialect {
            client_id_param: config.client_id_param.clone(),
            scope_separator: config.scope_separator.clone(),
            client_auth: config.client_auth,
            pkce: config.pkce.then_some(PkceEncoding::Base64Url),
            extra_authorize_params: config.extra_authorize_params.clone(),
            refresh_token_rotation: config.refresh_token_rotation,
            ..OAuthDialect::default()
        };
        let api = ApiClient::with_settings(&config.user_agent, config.timeout, config.body_limit)?;
        let engine = OAuthEngine::new(api.clone(), app, dialect)?;
        Ok(Self {
            config,
            engine,
            api,
            profile_url,
        })
    }

    /// The configuration the provider was built from.
    pub fn config(&self) -> &GenericOAuth2Config {
        &self.config
    }
}

#[async_trait]
impl Provider for GenericOAuth2Provider {
    fn id(&self) -> &ProviderId {
        &self.config.id
    }

    fn display_name(&self) -> &str {
        self.config
            .display_name
            .as_deref()
            .unwrap_or(self.config.id.as_str())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            pkce: if self.config.pkce {
                PkceSupport::Supported
            } else {
                PkceSupport::Unsupported
            },
            refresh: true,
            revoke: self.engine.app().revoke_url.is_some(),
            min_token_age_for_refresh: None,
            // RFC 6749 §6: the refresh token alone.
            refresh_uses_access_token: false,
        }
    }

    /// `response_type=code`, `client_id`, `state`, `redirect_uri`, `scope` (joined with
    /// `scope_separator`; omitted when there are none), the S256 challenge when PKCE is on
    /// and the service supplied one, then `extra_authorize_params`.
    async fn authorization_url(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<Url, ProviderError> {
        let scopes = if request.scopes.is_empty() {
            &self.config.scopes
        } else {
            &request.scopes
        };
        Ok(self
            .engine
            .authorization_url(&request.state, scopes, request.pkce_challenge.as_ref()))
    }

    /// `grant_type=authorization_code`, `code`, `redirect_uri`, the client credentials
    /// and, when PKCE is on and a verifier is supplied, `code_verifier`. (A callback's
    /// `error` never gets here: [`Provider::read_callback`] reads it first.)
    async fn exchange_code(&self, exchange: CodeExchange<'_>) -> Result<TokenSet, ProviderError> {
        let code = exchange.params.require("code")?;
        self.engine
            .exchange_code(code, exchange.pkce_verifier)
            .await
    }

    /// `grant_type=refresh_token` with the current refresh token. Without a stored refresh
    /// token the result is [`ProviderError::InvalidGrant`] (the user must reconnect).
    /// When the reply has no `scope`, the current scopes are kept; when it has no
    /// `refresh_token`, [`RefreshRotation`] decides.
    async fn refresh(&self, request: RefreshRequest<'_>) -> Result<TokenSet, ProviderError> {
        self.engine
            .refresh(request.refresh_token, request.scopes)
            .await
    }

    /// `GET profile_url` with the bearer token. 401/403 → [`ProviderError::InvalidGrant`]
    /// (the token no longer works), 429/5xx as usual, other non-2xx → `Protocol`. The
    /// account id must be present (a string or an integer); a missing or `null` username
    /// gives `None`. The metadata is the allow-list of the [module docs](self).
    async fn fetch_profile(&self, access_token: &AccessToken) -> Result<Profile, ProviderError> {
        let request = self.authorize_request(
            self.api
                .get(self.profile_url.clone())
                .header(reqwest::header::ACCEPT, "application/json"),
            access_token,
        );
        let response = self.api.send(request).await?;
        let secrets = [access_token.expose_secret()];
        let scrub = |e| crate::client::scrub_error(e, &secrets);
        if let Some(e) = http::classify_status(&response, Utc::now()) {
            return Err(e);
        }
        if matches!(
            response.status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            return Err(ProviderError::InvalidGrant {
                description: Some(format!(
                    "the profile endpoint answered HTTP {}",
                    response.status.as_u16()
                )),
            });
        }
        if !response.status.is_success() {
            // The platform may echo the token: the excerpt is scrubbed.
            return Err(scrub(ProviderError::Protocol {
                message: format!(
                    "unexpected HTTP {} from the profile endpoint",
                    response.status.as_u16()
                ),
                body: Some(response.excerpt()),
            }));
        }
        let document: serde_json::Value = response.json_scrubbed("profile", &secrets)?;
        let pointer = &self.config.account_id_pointer;
        let account_id = match document.pointer(pointer) {
            None | Some(serde_json::Value::Null) => None,
            Some(value) => Some(scalar_text(value).ok_or_else(|| ProviderError::Protocol {
                message: format!("the profile value at `{pointer}` is not a string or an integer"),
                body: Some(response.excerpt()),
            })?),
        }
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ProviderError::Protocol {
            message: format!("the profile has no account id at `{pointer}`"),
            body: Some(response.excerpt()),
        })?;
        let username = self
            .config
            .username_pointer
            .as_deref()
            .and_then(|p| document.pointer(p))
            .and_then(scalar_text)
            .filter(|u| !u.is_empty());
        let mut metadata = serde_json::Map::new();
        metadata.insert("account_id".into(), account_id.clone().into());
        if let Some(u) = &username {
            metadata.insert("username".into(), u.clone().into());
        }
        for (key, pointer) in &self.config.metadata_pointers {
            if let Some(value) = document.pointer(pointer).filter(|v| !v.is_null()) {
                let value = scalar_text(value).map_or_else(|| value.clone(), Into::into);
                metadata.insert(key.clone(), value);
            }
        }
        Ok(Profile {
            account_id,
            username,
            metadata: metadata.into(),
        })
    }

    /// RFC 7009: `POST revoke_url` with `token` and `token_type_hint` — the refresh token
    /// when there is one (revoking it ends the grant), else the access token — and the
    /// configured client authentication. Nothing to revoke is a success.
    async fn revoke(
        &self,
        access_token: Option<&AccessToken>,
        refresh_token: Option<&RefreshToken>,
    ) -> Result<(), ProviderError> {
        self.engine.revoke(access_token, refresh_token).await
    }
}

/// A JSON string as it is, an integer as its exact decimal text.
fn scalar_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> GenericOAuth2Config {
        GenericOAuth2Config::new(
            ProviderId::new("acme").unwrap(),
            "cid",
            "https://a.example/authorize",
            "https://a.example/token",
            "http://app.example/cb",
            "https://api.a.example/me",
        )
    }

    #[test]
    fn validation() {
        assert!(GenericOAuth2Provider::new(config()).is_ok());
        let mut c = config();
        c.account_id_pointer = "id".into();
        assert!(matches!(
            GenericOAuth2Provider::new(c),
            Err(ProviderError::Config(m)) if m.contains("account_id_pointer")
        ));
        let mut c = config();
        c.username_pointer = Some("data.user".into());
        assert!(GenericOAuth2Provider::new(c).is_err());
        let mut c = config();
        c.token_url = "not a url".into();
        assert!(matches!(
            GenericOAuth2Provider::new(c),
            Err(ProviderError::Config(m)) if m.contains("token_url")
        ));
        let mut c = config();
        c.token_url = "http://a.example/token".into();
        assert!(GenericOAuth2Provider::new(c).is_err());
        let mut c = config();
        c.token_url = "http://127.0.0.1:8080/token".into();
        assert!(GenericOAuth2Provider::new(c).is_ok());
        let mut c = config();
        c.revoke_url = Some("ftp://a.example/revoke".into());
        assert!(GenericOAuth2Provider::new(c).is_err());
        let mut c = config();
        c.extra_authorize_params = vec![("state".into(), "x".into())];
        assert!(GenericOAuth2Provider::new(c).is_err());
        let mut c = config();
        c.metadata_pointers.insert("email".into(), "email".into());
        assert!(matches!(
            GenericOAuth2Provider::new(c),
            Err(ProviderError::Config(m)) if m.contains("metadata_pointers.email")
        ));
    }
}
