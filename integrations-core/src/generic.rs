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
//! The authorization URL and the two token-endpoint calls (code exchange and refresh) go
//! through the [`oauth2`] crate: its typed `AuthUrl`/`TokenUrl`/`RedirectUrl`, its
//! client-authentication rules (`AuthType::BasicAuth` sends RFC 6749 §2.3.1 url-encoded
//! Basic credentials, `AuthType::RequestBody` sends `client_id`/`client_secret` in the
//! form), `exchange_code(..).set_pkce_verifier(..)` and `exchange_refresh_token(..)`.
//! oauth2 does not take a precomputed PKCE challenge, and joins scopes with a space, so
//! the `scope`, `code_challenge` and `code_challenge_method` parameters of the
//! authorization URL are added as extra parameters.
//!
//! oauth2 is handed a small HTTP client of ours instead of a bare `reqwest::Client`. It
//! uses the shared [`http::client`] (redirects off, timeouts), reads the body with the
//! core's size-capped reader (a 10 MB reply fails with [`ProviderError::Protocol`] before
//! it is buffered), and classifies what oauth2 cannot see once a response is reduced to
//! status and body: 429 (with `Retry-After`) becomes [`ProviderError::RateLimited`], 5xx
//! [`ProviderError::Unavailable`], an RFC 6749 `error` object sent with HTTP 200 the
//! matching error, a non-2xx reply without an `error` object a 401
//! [`ProviderError::InvalidClient`] or a `Protocol` error with an excerpt, and transport
//! failures [`ProviderError::Network`] (with `timeout` set on timeouts). Error objects on
//! 4xx are left to oauth2, whose `ServerResponse` is mapped with [`http::oauth_error`]
//! (`invalid_grant` → [`ProviderError::InvalidGrant`], `invalid_client` →
//! [`ProviderError::InvalidClient`], ...). The token reply is parsed leniently (see
//! [`GenericTokenResponse`]): `token_type` may be missing, `expires_in` may be a string.
//!
//! Revocation does **not** use oauth2: oauth2 5 refuses revocation URLs that are not
//! `https`, which rules out loopback test servers, so the RFC 7009 request is built here
//! with the same client-authentication rule and sent with [`http::send_capped`].
//!
//! The profile is fetched with `Authorization: Bearer` and read with the same cap. The
//! stored [`Profile::metadata`] is a JSON object `{"account_id": "...", "username":
//! "..." (omitted when unknown), "profile": <the whole profile document>}`; the handle is
//! also [`Profile::username`], which the service stores and shows. Integers in the
//! account id or username are rendered as their exact decimal text (any value that fits
//! in 64 bits, including ids above 2^53).

use crate::http::{self, CappedResponse, OAuthErrorBody};
use crate::provider::{
    AuthorizationRequest, Capabilities, CodeExchange, PkceSupport, Profile, Provider,
    ProviderError, ProviderId, RefreshRequest, TokenSet,
};
use crate::secret::{AccessToken, ClientSecret, RefreshToken};
use async_trait::async_trait;
use chrono::Utc;
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AsyncHttpClient, AuthType, AuthUrl, AuthorizationCode, ClientId, CsrfToken, EndpointNotSet,
    EndpointSet, HttpRequest, HttpResponse, PkceCodeVerifier, RedirectUrl, RequestTokenError,
    Scope, StandardRevocableToken, TokenResponse, TokenUrl,
};
use reqwest::StatusCode;
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use url::Url;

/// Authorization parameters the provider sets itself; `extra_authorize_params` may not
/// override them.
const RESERVED_AUTHORIZE_PARAMS: &[&str] = &[
    "response_type",
    "client_id",
    "state",
    "redirect_uri",
    "scope",
    "code_challenge",
    "code_challenge_method",
];

/// How the client authenticates to the token and revocation endpoints (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// `client_id` and `client_secret` in the form body (`"body"`).
    Body,
    /// `Authorization: Basic base64(urlencode(id):urlencode(secret))` (`"basic_header"`);
    /// the default, as every RFC 6749 server must accept it. Without a client secret the
    /// `client_id` goes in the body instead.
    #[default]
    BasicHeader,
}

/// What the platform does with refresh tokens on refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefreshRotation {
    /// Every refresh issues a new refresh token and voids the old one (`"rotates"`). A
    /// refresh reply without a `refresh_token` leaves the [`TokenSet`] without one.
    Rotates,
    /// The refresh token stays valid (`"keeps"`, the default). A refresh reply without a
    /// `refresh_token` keeps the current one in the returned [`TokenSet`].
    #[default]
    Keeps,
}

/// The configuration of a [`GenericOAuth2Provider`].
///
/// Deserializable from JSON or TOML (field names as below; `client_auth` is `"body"` or
/// `"basic_header"`, `refresh_token_rotation` `"rotates"` or `"keeps"`, `timeout` is in
/// seconds, `extra_authorize_params` is a map or a list of `[name, value]` pairs), or
/// built with [`GenericOAuth2Config::new`] and field assignment. Nothing is checked until
/// [`GenericOAuth2Provider::new`].
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct GenericOAuth2Config {
    /// The provider id the service registers this provider under.
    pub id: ProviderId,
    /// The OAuth client id.
    pub client_id: String,
    /// The OAuth client secret; `None` for public clients (then use PKCE).
    #[serde(default, deserialize_with = "de_client_secret")]
    pub client_secret: Option<ClientSecret>,
    /// The authorization endpoint. `https`, or `http` on a loopback host.
    pub authorize_url: String,
    /// The token endpoint. `https`, or `http` on a loopback host.
    pub token_url: String,
    /// The RFC 7009 revocation endpoint, if the platform has one.
    #[serde(default)]
    pub revoke_url: Option<String>,
    /// The redirect URI registered with the platform.
    pub redirect_uri: String,
    /// Default scopes, used when the service asks for none.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// How scopes are joined in the authorization URL (default `" "`; some platforms
    /// want `","`).
    #[serde(default = "default_scope_separator")]
    pub scope_separator: String,
    /// How the client authenticates at the token and revocation endpoints.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// Whether to use PKCE (S256). Default `true`.
    #[serde(default = "default_true")]
    pub pkce: bool,
    /// Whether refresh replies carry a new refresh token.
    #[serde(default)]
    pub refresh_token_rotation: RefreshRotation,
    /// The profile endpoint, called with `Authorization: Bearer <access token>`.
    pub profile_url: String,
    /// JSON pointer to the account id in the profile reply (default `/id`). Strings are
    /// used as they are; integers as their decimal text.
    #[serde(default = "default_account_id_pointer")]
    pub account_id_pointer: String,
    /// JSON pointer to the handle in the profile reply, if the platform has one.
    #[serde(default)]
    pub username_pointer: Option<String>,
    /// Extra parameters for the authorization URL (`prompt=consent`, `access_type=offline`).
    #[serde(default, deserialize_with = "de_param_pairs")]
    pub extra_authorize_params: Vec<(String, String)>,
    /// The `User-Agent` sent with every request.
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
    /// Total timeout of each request; seconds (integer or fractional) in data.
    #[serde(default = "default_timeout", deserialize_with = "de_seconds")]
    pub timeout: Duration,
    /// The largest response body accepted, in bytes.
    #[serde(default = "default_body_limit")]
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

fn de_client_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ClientSecret>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(ClientSecret::new))
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

/// The oauth2 client type: authorization and token endpoints set, token replies parsed
/// leniently.
type OAuthClient = oauth2::Client<
    BasicErrorResponse,
    GenericTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// An OAuth 2.0 provider driven entirely by a [`GenericOAuth2Config`].
pub struct GenericOAuth2Provider {
    config: GenericOAuth2Config,
    oauth: OAuthClient,
    http: CappedHttpClient,
    revoke_url: Option<Url>,
    profile_url: Url,
}

impl fmt::Debug for GenericOAuth2Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenericOAuth2Provider")
            .field("id", &self.config.id)
            .field("token_url", &self.config.token_url)
            .field("client_auth", &self.config.client_auth)
            .field("pkce", &self.config.pkce)
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
        if config.client_id.is_empty() {
            return Err(ProviderError::Config("`client_id` is empty".into()));
        }
        if config.scope_separator.is_empty() {
            return Err(ProviderError::Config("`scope_separator` is empty".into()));
        }
        if config.timeout.is_zero() {
            return Err(ProviderError::Config("`timeout` must be positive".into()));
        }
        if config.body_limit == 0 {
            return Err(ProviderError::Config(
                "`body_limit` must be positive".into(),
            ));
        }
        let authorize_url = parse_url("authorize_url", &config.authorize_url, false)?;
        let token_url = parse_url("token_url", &config.token_url, false)?;
        let redirect_uri = parse_url("redirect_uri", &config.redirect_uri, true)?;
        let profile_url = parse_url("profile_url", &config.profile_url, false)?;
        let revoke_url = config
            .revoke_url
            .as_deref()
            .map(|u| parse_url("revoke_url", u, false))
            .transpose()?;
        check_pointer("account_id_pointer", &config.account_id_pointer)?;
        if let Some(p) = &config.username_pointer {
            check_pointer("username_pointer", p)?;
        }
        if let Some((name, _)) = config
            .extra_authorize_params
            .iter()
            .find(|(name, _)| RESERVED_AUTHORIZE_PARAMS.contains(&name.as_str()))
        {
            return Err(ProviderError::Config(format!(
                "`extra_authorize_params` may not set `{name}`; the provider sets it"
            )));
        }

        let auth_type = match config.client_auth {
            ClientAuth::Body => AuthType::RequestBody,
            ClientAuth::BasicHeader => AuthType::BasicAuth,
        };
        let oauth = oauth2::Client::new(ClientId::new(config.client_id.clone()))
            .set_auth_uri(AuthUrl::from_url(authorize_url))
            .set_token_uri(TokenUrl::from_url(token_url))
            .set_redirect_uri(RedirectUrl::from_url(redirect_uri))
            .set_auth_type(auth_type);
        let oauth = match &config.client_secret {
            Some(secret) => oauth
                .set_client_secret(oauth2::ClientSecret::new(secret.expose_secret().to_owned())),
            None => oauth,
        };
        let http = CappedHttpClient {
            client: http::client(&config.user_agent, config.timeout)?,
            limit: config.body_limit,
        };
        Ok(Self {
            config,
            oauth,
            http,
            revoke_url,
            profile_url,
        })
    }

    /// The configuration the provider was built from.
    pub fn config(&self) -> &GenericOAuth2Config {
        &self.config
    }

    fn token_set(&self, reply: GenericTokenResponse) -> TokenSet {
        TokenSet {
            access_token: AccessToken::new(reply.access_token.into_secret()),
            refresh_token: reply
                .refresh_token
                .map(|t| RefreshToken::new(t.into_secret())),
            expires_in: reply.expires_in.map(Duration::from_secs),
            refresh_expires_in: reply.refresh_expires_in.map(Duration::from_secs),
            token_type: reply.token_type_raw,
            scopes: reply
                .scopes
                .unwrap_or_default()
                .into_iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

#[async_trait]
impl Provider for GenericOAuth2Provider {
    fn id(&self) -> &ProviderId {
        &self.config.id
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            pkce: if self.config.pkce {
                PkceSupport::Supported
            } else {
                PkceSupport::Unsupported
            },
            refresh: true,
            revoke: self.revoke_url.is_some(),
            min_token_age_for_refresh: None,
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
        let mut auth = self
            .oauth
            .authorize_url(|| CsrfToken::new(request.state.clone()));
        if !scopes.is_empty() {
            auth = auth.add_extra_param("scope", scopes.join(&self.config.scope_separator));
        }
        if self.config.pkce
            && let Some(challenge) = &request.pkce_challenge
        {
            auth = auth
                .add_extra_param("code_challenge", challenge.s256_base64url.as_str())
                .add_extra_param("code_challenge_method", "S256");
        }
        for (name, value) in &self.config.extra_authorize_params {
            auth = auth.add_extra_param(name.as_str(), value.as_str());
        }
        Ok(auth.url().0)
    }

    /// `grant_type=authorization_code`, `code`, `redirect_uri`, the client credentials
    /// and, when PKCE is on and a verifier is supplied, `code_verifier`. (A callback's
    /// `error` never gets here: [`Provider::read_callback`] reads it first.)
    async fn exchange_code(&self, exchange: CodeExchange<'_>) -> Result<TokenSet, ProviderError> {
        let code = exchange.params.require("code")?;
        let mut request = self
            .oauth
            .exchange_code(AuthorizationCode::new(code.to_owned()));
        if self.config.pkce
            && let Some(verifier) = exchange.pkce_verifier
        {
            request = request
                .set_pkce_verifier(PkceCodeVerifier::new(verifier.expose_secret().to_owned()));
        }
        let reply = request
            .request_async(&self.http)
            .await
            .map_err(map_token_error)?;
        Ok(self.token_set(reply))
    }

    /// `grant_type=refresh_token` with the current refresh token. Without a stored refresh
    /// token the result is [`ProviderError::InvalidGrant`] (the user must reconnect).
    /// When the reply has no `scope`, the current scopes are kept; when it has no
    /// `refresh_token`, [`RefreshRotation`] decides.
    async fn refresh(&self, request: RefreshRequest<'_>) -> Result<TokenSet, ProviderError> {
        let current = request
            .refresh_token
            .ok_or_else(|| ProviderError::InvalidGrant {
                description: Some("no refresh token is stored for this account".into()),
            })?;
        let refresh_token = oauth2::RefreshToken::new(current.expose_secret().to_owned());
        let reply = self
            .oauth
            .exchange_refresh_token(&refresh_token)
            .request_async(&self.http)
            .await
            .map_err(map_token_error)?;
        let mut tokens = self.token_set(reply);
        if tokens.refresh_token.is_none()
            && self.config.refresh_token_rotation == RefreshRotation::Keeps
        {
            tokens.refresh_token = Some(current.clone());
        }
        if tokens.scopes.is_empty() {
            tokens.scopes = request.scopes.to_vec();
        }
        Ok(tokens)
    }

    /// `GET profile_url` with the bearer token. 401/403 → [`ProviderError::InvalidGrant`]
    /// (the token no longer works), 429/5xx as usual, other non-2xx → `Protocol`. The
    /// account id must be present (a string or an integer); a missing or `null` username
    /// gives `None`. The metadata is `{"account_id", "username" (when known), "profile":
    /// <the whole profile document>}`.
    async fn fetch_profile(&self, access_token: &AccessToken) -> Result<Profile, ProviderError> {
        let request = self.authorize_request(
            self.http
                .client
                .get(self.profile_url.clone())
                .header(reqwest::header::ACCEPT, "application/json"),
            access_token,
        );
        let response = http::send_capped(request, self.http.limit).await?;
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
            return Err(ProviderError::Protocol {
                message: format!(
                    "unexpected HTTP {} from the profile endpoint",
                    response.status.as_u16()
                ),
                body: Some(response.excerpt()),
            });
        }
        let document: serde_json::Value = response.json()?;
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
        metadata.insert("profile".into(), document);
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
        let Some(url) = &self.revoke_url else {
            return Err(ProviderError::Unsupported {
                operation: "revoke",
            });
        };
        let (token, hint) = match (refresh_token, access_token) {
            (Some(r), _) => (r.expose_secret(), "refresh_token"),
            (None, Some(a)) => (a.expose_secret(), "access_token"),
            (None, None) => return Ok(()),
        };
        let mut form: Vec<(&str, &str)> = vec![("token", token), ("token_type_hint", hint)];
        let mut request = self
            .http
            .client
            .post(url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        match (self.config.client_auth, &self.config.client_secret) {
            (ClientAuth::BasicHeader, Some(secret)) => {
                // RFC 6749 §2.3.1: each part is form-url-encoded before Basic encoding.
                let encode = |s: &str| -> String {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
                };
                request = request.basic_auth(
                    encode(&self.config.client_id),
                    Some(encode(secret.expose_secret())),
                );
            }
            (_, secret) => {
                form.push(("client_id", &self.config.client_id));
                if let Some(secret) = secret {
                    form.push(("client_secret", secret.expose_secret()));
                }
            }
        }
        let response = http::send_capped(request.form(&form), self.http.limit).await?;
        http::check_token_response(&response, Utc::now())
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

/// A token-endpoint reply, parsed leniently for the platforms a generic provider meets.
///
/// `access_token` is required. `token_type` may be missing (it is kept as sent, and
/// reported to oauth2 as `bearer` unless it says otherwise). `expires_in` and
/// `refresh_expires_in` may be numbers or numeric strings. `scope` may be a string
/// separated by spaces or commas, or an array of strings.
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "WireTokenResponse", into = "WireTokenResponse")]
pub struct GenericTokenResponse {
    access_token: oauth2::AccessToken,
    token_type: BasicTokenType,
    token_type_raw: Option<String>,
    expires_in: Option<u64>,
    refresh_token: Option<oauth2::RefreshToken>,
    refresh_expires_in: Option<u64>,
    scopes: Option<Vec<Scope>>,
}

impl fmt::Debug for GenericTokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenericTokenResponse")
            .field("token_type", &self.token_type_raw)
            .field("expires_in", &self.expires_in)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("refresh_expires_in", &self.refresh_expires_in)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl TokenResponse for GenericTokenResponse {
    type TokenType = BasicTokenType;

    fn access_token(&self) -> &oauth2::AccessToken {
        &self.access_token
    }
    fn token_type(&self) -> &BasicTokenType {
        &self.token_type
    }
    fn expires_in(&self) -> Option<Duration> {
        self.expires_in.map(Duration::from_secs)
    }
    fn refresh_token(&self) -> Option<&oauth2::RefreshToken> {
        self.refresh_token.as_ref()
    }
    fn scopes(&self) -> Option<&Vec<Scope>> {
        self.scopes.as_ref()
    }
}

/// The reply as it is on the wire.
#[derive(Clone, Serialize, Deserialize)]
struct WireTokenResponse {
    access_token: oauth2::AccessToken,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_type: Option<String>,
    #[serde(
        default,
        deserialize_with = "de_lenient_secs",
        skip_serializing_if = "Option::is_none"
    )]
    expires_in: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<oauth2::RefreshToken>,
    #[serde(
        default,
        deserialize_with = "de_lenient_secs",
        skip_serializing_if = "Option::is_none"
    )]
    refresh_expires_in: Option<u64>,
    #[serde(
        default,
        deserialize_with = "de_scope",
        skip_serializing_if = "Option::is_none"
    )]
    scope: Option<Vec<String>>,
}

impl From<WireTokenResponse> for GenericTokenResponse {
    fn from(w: WireTokenResponse) -> Self {
        let token_type = match w.token_type.as_deref() {
            None => BasicTokenType::Bearer,
            Some(t) if t.eq_ignore_ascii_case("bearer") => BasicTokenType::Bearer,
            Some(t) if t.eq_ignore_ascii_case("mac") => BasicTokenType::Mac,
            Some(t) => BasicTokenType::Extension(t.to_owned()),
        };
        Self {
            access_token: w.access_token,
            token_type,
            token_type_raw: w.token_type,
            expires_in: w.expires_in,
            refresh_token: w.refresh_token,
            refresh_expires_in: w.refresh_expires_in,
            scopes: w.scope.map(|s| s.into_iter().map(Scope::new).collect()),
        }
    }
}

impl From<GenericTokenResponse> for WireTokenResponse {
    fn from(r: GenericTokenResponse) -> Self {
        Self {
            access_token: r.access_token,
            token_type: r.token_type_raw,
            expires_in: r.expires_in,
            refresh_token: r.refresh_token,
            refresh_expires_in: r.refresh_expires_in,
            scope: r
                .scopes
                .map(|s| s.into_iter().map(|s| s.to_string()).collect()),
        }
    }
}

fn de_lenient_secs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    use serde::de::Error;
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::Number(n) => match (n.as_u64(), n.as_f64()) {
            (Some(v), _) => Ok(Some(v)),
            (None, Some(f)) if f.is_finite() && f >= 0.0 => Ok(Some(f as u64)),
            _ => Err(D::Error::custom(format!(
                "expected a non-negative number of seconds, got {n}"
            ))),
        },
        serde_json::Value::String(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("expected a number of seconds, got {s:?}"))),
        other => Err(D::Error::custom(format!(
            "expected a number of seconds, got {other}"
        ))),
    }
}

fn de_scope<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ScopeField {
        Text(String),
        List(Vec<String>),
    }
    Ok(match Option::<ScopeField>::deserialize(d)? {
        None => None,
        Some(ScopeField::Text(s)) => Some(
            s.split(|c: char| c == ',' || c.is_ascii_whitespace())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        Some(ScopeField::List(list)) => Some(list),
    })
}

/// The HTTP client handed to oauth2: core's hardened `reqwest::Client`, capped body reads
/// and status classification (see the module docs).
#[derive(Debug, Clone)]
struct CappedHttpClient {
    client: reqwest::Client,
    limit: usize,
}

/// A [`ProviderError`] carried through oauth2's `RequestTokenError::Request`.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct HttpFailure(ProviderError);

impl From<ProviderError> for HttpFailure {
    fn from(e: ProviderError) -> Self {
        Self(e)
    }
}

impl<'c> AsyncHttpClient<'c> for CappedHttpClient {
    type Error = HttpFailure;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpFailure>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request).map_err(|_| {
                ProviderError::Config("the token request could not be built".into())
            })?;
            let response = self
                .client
                .execute(request)
                .await
                .map_err(http::network_error)?;
            let response = http::read_capped(response, self.limit).await?;
            triage_token_response(response)
        })
    }
}

/// Decides what oauth2 sees of a token-endpoint reply. Errors oauth2 cannot classify from
/// a status and a body are returned here; 4xx error objects and 2xx bodies are passed on
/// (2xx as 200, which is all oauth2 accepts, without `Content-Type`, which oauth2 would
/// otherwise insist is JSON — the body is parsed as JSON either way).
fn triage_token_response(response: CappedResponse) -> Result<HttpResponse, HttpFailure> {
    if let Some(e) = http::classify_status(&response, Utc::now()) {
        return Err(e.into());
    }
    let error_object = serde_json::from_slice::<OAuthErrorBody>(&response.body).is_ok();
    let status = match (response.status.is_success(), error_object) {
        // Some platforms send RFC 6749 errors with 200; oauth2 would try them as tokens.
        (true, true) => {
            return Err(http::check_token_response(&response, Utc::now())
                .err()
                .unwrap_or_else(|| protocol("an error object with HTTP 200", &response.body))
                .into());
        }
        (true, false) => StatusCode::OK,
        (false, true) => response.status,
        (false, false) => {
            return Err(http::check_token_response(&response, Utc::now())
                .err()
                .unwrap_or_else(|| protocol("an unexpected reply", &response.body))
                .into());
        }
    };
    let mut builder = oauth2::http::Response::builder().status(status);
    for (name, value) in &response.headers {
        if name != reqwest::header::CONTENT_TYPE {
            builder = builder.header(name, value);
        }
    }
    builder
        .body(response.body)
        .map_err(|_| protocol("a reply that could not be passed on", &[]).into())
}

fn protocol(what: &str, body: &[u8]) -> ProviderError {
    ProviderError::Protocol {
        message: format!("the token endpoint sent {what}"),
        body: redacted_excerpt(body),
    }
}

/// An excerpt of a token-endpoint body that cannot leak issued credentials: in a JSON
/// object the token fields are masked; a body that is not JSON yet mentions a token
/// field is not kept at all.
fn redacted_excerpt(body: &[u8]) -> Option<String> {
    const SECRET_FIELDS: &[&str] = &["access_token", "refresh_token", "id_token"];
    if body.is_empty() {
        return None;
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(mut map)) => {
            for field in SECRET_FIELDS {
                if let Some(v) = map.get_mut(*field) {
                    *v = serde_json::Value::String("[redacted]".into());
                }
            }
            Some(http::body_excerpt(
                serde_json::Value::Object(map).to_string().as_bytes(),
            ))
        }
        Ok(other) => Some(http::body_excerpt(other.to_string().as_bytes())),
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            (!SECRET_FIELDS.iter().any(|f| text.contains(f))).then(|| http::body_excerpt(body))
        }
    }
}

/// Maps oauth2's error for a token-endpoint call.
fn map_token_error(e: RequestTokenError<HttpFailure, BasicErrorResponse>) -> ProviderError {
    match e {
        RequestTokenError::ServerResponse(body) => {
            match serde_json::to_value(&body).and_then(serde_json::from_value::<OAuthErrorBody>) {
                Ok(b) => http::oauth_error(&b.error, b.error_description),
                Err(_) => ProviderError::Protocol {
                    message: format!("the token endpoint answered an error: {body}"),
                    body: None,
                },
            }
        }
        RequestTokenError::Request(HttpFailure(e)) => e,
        RequestTokenError::Parse(e, body) => ProviderError::Protocol {
            message: format!("malformed token response: {e}"),
            body: redacted_excerpt(&body),
        },
        RequestTokenError::Other(message) => ProviderError::Protocol {
            message: format!("unexpected token response: {message}"),
            body: None,
        },
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
    }

    #[test]
    fn lenient_token_reply() {
        let r: GenericTokenResponse =
            serde_json::from_str(r#"{"access_token":"a","expires_in":"3600","scope":"x,y z"}"#)
                .unwrap();
        assert_eq!(r.expires_in, Some(3600));
        assert_eq!(r.token_type, BasicTokenType::Bearer);
        assert_eq!(r.scopes.as_ref().map(Vec::len), Some(3));
        assert!(!format!("{r:?}").contains("\"a\""));
    }

    #[test]
    fn excerpts_hide_tokens() {
        let e = redacted_excerpt(br#"{"access_token":"sekrit","expires_in":[]}"#).unwrap();
        assert!(!e.contains("sekrit"), "{e}");
        assert_eq!(redacted_excerpt(br#"{"access_token":"sekrit""#), None);
        assert_eq!(redacted_excerpt(b"<html>").as_deref(), Some("<html>"));
    }
}
