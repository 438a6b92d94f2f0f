//! The OAuth 2.0 engine every standard platform runs on.
//!
//! A platform that speaks RFC 6749 (authorization code grant, refresh, optionally PKCE,
//! RFC 7636, and revocation, RFC 7009) differs from the next one mostly in data: what its
//! client parameter is called, how scopes are joined, how the client authenticates, which
//! extra parameters the authorization URL carries, whether refresh tokens rotate, how an
//! error is sent. An [`OAuthDialect`] states that data; an [`OAuthEngine`] runs the
//! authorization URL, the code exchange, the refresh and the revocation for it. Reddit,
//! TikTok and every [generic](crate::generic) provider run on it; what truly differs stays
//! in the provider crate (profile wire types, Instagram's two-step exchange, the
//! OnlyFans gateway).
//!
//! # On the `oauth2` crate
//!
//! The authorization URL and the two token-endpoint calls go through [`oauth2`]: its typed
//! URLs, its client-authentication rules ([`ClientAuth::BasicHeader`] sends RFC 6749
//! §2.3.1 url-encoded Basic credentials, [`ClientAuth::Body`] the client id and secret in
//! the form), `exchange_code(..).set_pkce_verifier(..)` and `exchange_refresh_token(..)`.
//! Where a platform departs from what `oauth2` produces, the engine adapts at its HTTP
//! client seam instead of around the crate:
//!
//! - a renamed client parameter ([`OAuthDialect::client_id_param`], TikTok's `client_key`)
//!   is renamed in the outgoing form and in the authorization URL;
//! - replies are read under the body cap and classified before `oauth2` sees them, first
//!   by the dialect's own [`classify`](OAuthDialect::classify) and then by the standard
//!   rules: 429 (with `Retry-After`) is [`ProviderError::RateLimited`], 5xx
//!   [`ProviderError::Unavailable`], an RFC 6749 `error` object sent with HTTP 200 the
//!   matching error, a non-2xx reply without one a 401 [`ProviderError::InvalidClient`]
//!   or a `Protocol` error with an excerpt;
//! - `oauth2` joins scopes with a space and takes no precomputed PKCE challenge, so
//!   `scope`, `code_challenge` and `code_challenge_method` are added as extra parameters.
//!
//! Every error the engine returns has the secrets of its request (client secret, code,
//! PKCE verifier, tokens) scrubbed out, in case a platform echoes them.
//!
//! Revocation does not use `oauth2`: `oauth2` 5 refuses revocation URLs that are not
//! `https` (ruling out loopback test servers), and some platforms revoke without
//! `token_type_hint`, so the request is built here with the same client-authentication
//! rule ([`RevokeStyle`]).

use crate::client::{ApiClient, scrub_error};
use crate::http::{self, CappedResponse, OAuthErrorBody};
use crate::provider::{PkceChallenge, ProviderError, TokenSet};
use crate::secret::{AccessToken, ClientSecret, PkceVerifier, RefreshToken};
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

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// Client id and secret in the form body (`client_secret_post`).
    Body,
    /// HTTP Basic with the url-encoded client id and secret (`client_secret_basic`).
    #[default]
    BasicHeader,
}

/// Whether a refresh reply's refresh token replaces the stored one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefreshRotation {
    /// Every refresh returns a new refresh token; a reply without one leaves none.
    Rotates,
    /// The refresh token is kept unless a reply carries a new one.
    #[default]
    Keeps,
}

/// How the PKCE challenge is encoded in the authorization URL.
///
/// RFC 7636 specifies `base64url(SHA-256(verifier))`; some platforms' documents (TikTok's
/// desktop flow) show the hex SHA-256 instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PkceEncoding {
    /// `base64url(SHA-256(verifier))`, RFC 7636 (the default).
    #[default]
    Base64Url,
    /// `hex(SHA-256(verifier))`.
    Hex,
}

impl std::str::FromStr for PkceEncoding {
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

impl PkceEncoding {
    fn encode(self, challenge: &PkceChallenge) -> &str {
        match self {
            Self::Base64Url => &challenge.s256_base64url,
            Self::Hex => &challenge.s256_hex,
        }
    }
}

/// How the revocation request names the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RevokeStyle {
    /// RFC 7009: the refresh token when there is one (revoking the grant), else the access
    /// token, with `token_type_hint`. Nothing to revoke is success.
    #[default]
    Rfc7009,
    /// Only the access token, as `token` without a hint (TikTok's `/v2/oauth/revoke/`).
    /// Without an access token the revocation fails with
    /// [`ProviderError::InvalidGrant`].
    AccessTokenOnly,
}

/// Which engine call a reply answers, for [`OAuthDialect::classify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenCall {
    /// The authorization-code exchange.
    CodeExchange,
    /// A refresh.
    Refresh,
    /// A revocation.
    Revoke,
}

/// A platform's own reading of a token-endpoint reply: the error it stands for, or `None`
/// to apply the standard rules. Secrets need not be removed: the engine scrubs every
/// error.
pub type ClassifyFn = fn(TokenCall, &CappedResponse) -> Option<ProviderError>;

/// What differs between OAuth 2.0 platforms and is data. [`Default`] is plain RFC 6749:
/// `client_id`, scopes joined by a space, Basic client authentication, S256 PKCE,
/// refresh tokens kept, RFC 7009 revocation.
#[derive(Clone)]
pub struct OAuthDialect {
    /// What the client id is called in the authorization URL and a form body
    /// (`client_id`; TikTok's `client_key`).
    pub client_id_param: String,
    /// What joins scopes in the authorization URL (`" "`; TikTok's `","`).
    pub scope_separator: String,
    /// How the client authenticates at the token and revocation endpoints.
    pub client_auth: ClientAuth,
    /// The PKCE challenge's encoding, or `None` when the platform takes no PKCE.
    pub pkce: Option<PkceEncoding>,
    /// Parameters added to every authorization URL (Reddit's `duration=permanent`).
    pub extra_authorize_params: Vec<(String, String)>,
    /// Whether refresh replies rotate the refresh token.
    pub refresh_token_rotation: RefreshRotation,
    /// How revocation names the token.
    pub revoke_style: RevokeStyle,
    /// The platform's own reading of replies, applied before the standard rules.
    pub classify: Option<ClassifyFn>,
}

impl Default for OAuthDialect {
    fn default() -> Self {
        Self {
            client_id_param: "client_id".into(),
            scope_separator: " ".into(),
            client_auth: ClientAuth::default(),
            pkce: Some(PkceEncoding::Base64Url),
            extra_authorize_params: Vec::new(),
            refresh_token_rotation: RefreshRotation::default(),
            revoke_style: RevokeStyle::default(),
            classify: None,
        }
    }
}

impl fmt::Debug for OAuthDialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthDialect")
            .field("client_id_param", &self.client_id_param)
            .field("scope_separator", &self.scope_separator)
            .field("client_auth", &self.client_auth)
            .field("pkce", &self.pkce)
            .field("extra_authorize_params", &self.extra_authorize_params)
            .field("refresh_token_rotation", &self.refresh_token_rotation)
            .field("revoke_style", &self.revoke_style)
            .field("classify", &self.classify.is_some())
            .finish()
    }
}

/// Parameters the engine sets itself; [`OAuthDialect::extra_authorize_params`] may not.
pub const RESERVED_AUTHORIZE_PARAMS: &[&str] = &[
    "response_type",
    "client_id",
    "state",
    "redirect_uri",
    "scope",
    "code_challenge",
    "code_challenge_method",
];

/// A registered OAuth client and the platform's endpoints.
#[derive(Debug, Clone)]
pub struct OAuthApp {
    /// The client id.
    pub client_id: String,
    /// The client secret; `None` for a public client.
    pub client_secret: Option<ClientSecret>,
    /// The registered redirect URI.
    pub redirect_uri: Url,
    /// The authorization endpoint.
    pub authorize_url: Url,
    /// The token endpoint.
    pub token_url: Url,
    /// The revocation endpoint, if the platform has one.
    pub revoke_url: Option<Url>,
}

type OAuthClient = oauth2::Client<
    BasicErrorResponse,
    EngineTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Runs a platform's OAuth 2.0 calls for an [`OAuthApp`] in an [`OAuthDialect`].
/// `Debug` never prints the secret.
pub struct OAuthEngine {
    oauth: OAuthClient,
    api: ApiClient,
    app: OAuthApp,
    dialect: OAuthDialect,
}

impl fmt::Debug for OAuthEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthEngine")
            .field("client_id", &self.app.client_id)
            .field("token_url", &self.app.token_url.as_str())
            .field("dialect", &self.dialect)
            .finish_non_exhaustive()
    }
}

impl OAuthEngine {
    /// An engine sending with `api` (its timeout, body cap and `User-Agent`).
    ///
    /// Fails with [`ProviderError::Config`] on an empty client id or scope separator, or
    /// extra authorization parameters the engine sets itself.
    pub fn new(
        api: ApiClient,
        app: OAuthApp,
        dialect: OAuthDialect,
    ) -> Result<Self, ProviderError> {
        if app.client_id.is_empty() {
            return Err(ProviderError::Config("`client_id` is empty".into()));
        }
        if dialect.scope_separator.is_empty() {
            return Err(ProviderError::Config("`scope_separator` is empty".into()));
        }
        if dialect.client_id_param.is_empty() {
            return Err(ProviderError::Config("`client_id_param` is empty".into()));
        }
        if let Some((name, _)) = dialect.extra_authorize_params.iter().find(|(name, _)| {
            RESERVED_AUTHORIZE_PARAMS.contains(&name.as_str()) || *name == dialect.client_id_param
        }) {
            return Err(ProviderError::Config(format!(
                "`extra_authorize_params` may not set `{name}`; the provider sets it"
            )));
        }
        let auth_type = match dialect.client_auth {
            ClientAuth::Body => AuthType::RequestBody,
            ClientAuth::BasicHeader => AuthType::BasicAuth,
        };
        let oauth = oauth2::Client::new(ClientId::new(app.client_id.clone()))
            .set_auth_uri(AuthUrl::from_url(app.authorize_url.clone()))
            .set_token_uri(TokenUrl::from_url(app.token_url.clone()))
            .set_redirect_uri(RedirectUrl::from_url(app.redirect_uri.clone()))
            .set_auth_type(auth_type);
        let oauth = match &app.client_secret {
            Some(secret) => oauth
                .set_client_secret(oauth2::ClientSecret::new(secret.expose_secret().to_owned())),
            None => oauth,
        };
        Ok(Self {
            oauth,
            api,
            app,
            dialect,
        })
    }

    /// The client and endpoints.
    pub fn app(&self) -> &OAuthApp {
        &self.app
    }

    /// The dialect.
    pub fn dialect(&self) -> &OAuthDialect {
        &self.dialect
    }

    /// The authorization URL for `state` and `scopes` (joined with the dialect's
    /// separator; omitted when empty), with the PKCE challenge when the dialect takes one.
    pub fn authorization_url(
        &self,
        state: &str,
        scopes: &[String],
        pkce: Option<&PkceChallenge>,
    ) -> Url {
        let mut auth = self
            .oauth
            .authorize_url(|| CsrfToken::new(state.to_owned()));
        if !scopes.is_empty() {
            auth = auth.add_extra_param("scope", scopes.join(&self.dialect.scope_separator));
        }
        if let (Some(encoding), Some(challenge)) = (self.dialect.pkce, pkce) {
            auth = auth
                .add_extra_param("code_challenge", encoding.encode(challenge))
                .add_extra_param("code_challenge_method", "S256");
        }
        for (name, value) in &self.dialect.extra_authorize_params {
            auth = auth.add_extra_param(name.as_str(), value.as_str());
        }
        let url = auth.url().0;
        self.renamed(url)
    }

    fn renamed(&self, mut url: Url) -> Url {
        let name = self.dialect.client_id_param.as_str();
        if name == "client_id" {
            return url;
        }
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        url.query_pairs_mut().clear().extend_pairs(
            pairs
                .iter()
                .map(|(k, v)| (if k == "client_id" { name } else { k.as_str() }, v)),
        );
        url
    }

    /// Exchanges an authorization code (with the PKCE verifier, when the dialect takes
    /// PKCE and one was made).
    pub async fn exchange_code(
        &self,
        code: &str,
        verifier: Option<&PkceVerifier>,
    ) -> Result<TokenSet, ProviderError> {
        let mut request = self
            .oauth
            .exchange_code(AuthorizationCode::new(code.to_owned()));
        let verifier = verifier.filter(|_| self.dialect.pkce.is_some());
        if let Some(v) = verifier {
            request =
                request.set_pkce_verifier(PkceCodeVerifier::new(v.expose_secret().to_owned()));
        }
        let secrets = [code, verifier.map_or("", |v| v.expose_secret())];
        let seam = self.seam(TokenCall::CodeExchange, &secrets);
        let reply = request.request_async(&seam).await;
        self.token_set(reply, &secrets, None, &[])
    }

    /// Refreshes with the stored refresh token. Without a new refresh token in the reply
    /// the current one is kept when the dialect says so; without `scope` the reply is
    /// taken to grant `scopes`.
    pub async fn refresh(
        &self,
        refresh_token: Option<&RefreshToken>,
        scopes: &[String],
    ) -> Result<TokenSet, ProviderError> {
        let current = refresh_token.ok_or_else(|| ProviderError::InvalidGrant {
            description: Some("no refresh token is stored for this account".into()),
        })?;
        let secrets = [current.expose_secret()];
        let token = oauth2::RefreshToken::new(current.expose_secret().to_owned());
        let seam = self.seam(TokenCall::Refresh, &secrets);
        let reply = self
            .oauth
            .exchange_refresh_token(&token)
            .request_async(&seam)
            .await;
        let kept =
            (self.dialect.refresh_token_rotation == RefreshRotation::Keeps).then_some(current);
        self.token_set(reply, &secrets, kept, scopes)
    }

    /// Revokes the grant at the revocation endpoint (see [`RevokeStyle`]).
    /// [`ProviderError::Unsupported`] when the platform has none.
    pub async fn revoke(
        &self,
        access_token: Option<&AccessToken>,
        refresh_token: Option<&RefreshToken>,
    ) -> Result<(), ProviderError> {
        let Some(url) = &self.app.revoke_url else {
            return Err(ProviderError::Unsupported {
                operation: "revoke",
            });
        };
        let (token, hint) = match (self.dialect.revoke_style, refresh_token, access_token) {
            (RevokeStyle::AccessTokenOnly, _, Some(a)) => (a.expose_secret(), None),
            (RevokeStyle::AccessTokenOnly, _, None) => {
                return Err(ProviderError::InvalidGrant {
                    description: Some(
                        "the platform revokes by access token and there is none".into(),
                    ),
                });
            }
            (_, Some(r), _) => (r.expose_secret(), Some("refresh_token")),
            (_, None, Some(a)) => (a.expose_secret(), Some("access_token")),
            (_, None, None) => return Ok(()),
        };
        let secret = self.app.client_secret.as_ref().map(|s| s.expose_secret());
        let mut form: Vec<(&str, &str)> = Vec::with_capacity(4);
        let mut request = self
            .api
            .post(url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        match (self.dialect.client_auth, secret) {
            (ClientAuth::BasicHeader, Some(secret)) => {
                // RFC 6749 §2.3.1: each part is form-url-encoded before Basic encoding.
                let encode = |s: &str| -> String {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
                };
                request = request.basic_auth(encode(&self.app.client_id), Some(encode(secret)));
            }
            (_, secret) => {
                form.push((&self.dialect.client_id_param, &self.app.client_id));
                if let Some(secret) = secret {
                    form.push(("client_secret", secret));
                }
            }
        }
        form.push(("token", token));
        if let Some(hint) = hint {
            form.push(("token_type_hint", hint));
        }
        let secrets = [token, secret.unwrap_or_default()];
        let result = async {
            let response = self.api.send(request.form(&form)).await?;
            if let Some(e) = self.classify(TokenCall::Revoke, &response) {
                return Err(e);
            }
            http::check_token_response(&response, Utc::now())
        };
        result.await.map_err(|e| scrub_error(e, &secrets))
    }

    fn classify(&self, call: TokenCall, response: &CappedResponse) -> Option<ProviderError> {
        self.dialect.classify.and_then(|f| f(call, response))
    }

    fn seam<'a>(&'a self, call: TokenCall, secrets: &'a [&'a str]) -> Seam<'a> {
        Seam {
            engine: self,
            call,
            secrets,
        }
    }

    fn token_set(
        &self,
        reply: Result<EngineTokenResponse, RequestTokenError<HttpFailure, BasicErrorResponse>>,
        secrets: &[&str],
        kept: Option<&RefreshToken>,
        scopes: &[String],
    ) -> Result<TokenSet, ProviderError> {
        let mut all = secrets.to_vec();
        let secret = self.app.client_secret.as_ref().map(|s| s.expose_secret());
        all.extend(secret);
        let reply = reply.map_err(|e| scrub_error(map_token_error(e), &all))?;
        if reply.access_token.secret().is_empty() {
            return Err(ProviderError::Protocol {
                message: "the token reply has an empty access token".into(),
                body: None,
            });
        }
        let granted: Vec<String> = reply
            .scopes
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.to_string())
            .collect();
        Ok(TokenSet {
            access_token: AccessToken::new(reply.access_token.into_secret()),
            refresh_token: reply
                .refresh_token
                .map(|t| t.into_secret())
                .filter(|t| !t.is_empty())
                .map(RefreshToken::new)
                .or_else(|| kept.cloned()),
            expires_in: reply.expires_in.map(Duration::from_secs),
            refresh_expires_in: reply.refresh_expires_in.map(Duration::from_secs),
            token_type: reply.token_type_raw,
            scopes: if granted.is_empty() {
                scopes.to_vec()
            } else {
                granted
            },
        })
    }
}

/// A token endpoint's success reply as `oauth2` sees it, lenient where platforms are:
/// `token_type` may be missing, `expires_in` may be a string, `scope` may be separated
/// by spaces or commas (or be a list). `Debug` never prints the tokens.
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "WireTokenResponse", into = "WireTokenResponse")]
pub struct EngineTokenResponse {
    access_token: oauth2::AccessToken,
    token_type: BasicTokenType,
    token_type_raw: Option<String>,
    expires_in: Option<u64>,
    refresh_token: Option<oauth2::RefreshToken>,
    refresh_expires_in: Option<u64>,
    scopes: Option<Vec<Scope>>,
}

impl fmt::Debug for EngineTokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineTokenResponse")
            .field("token_type", &self.token_type_raw)
            .field("expires_in", &self.expires_in)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("refresh_expires_in", &self.refresh_expires_in)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl TokenResponse for EngineTokenResponse {
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

#[derive(Clone, Serialize, Deserialize)]
struct WireTokenResponse {
    access_token: oauth2::AccessToken,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_type: Option<String>,
    #[serde(
        default,
        deserialize_with = "http::wire::lenient_u64",
        skip_serializing_if = "Option::is_none"
    )]
    expires_in: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<oauth2::RefreshToken>,
    #[serde(
        default,
        deserialize_with = "http::wire::lenient_u64",
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

impl From<WireTokenResponse> for EngineTokenResponse {
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

impl From<EngineTokenResponse> for WireTokenResponse {
    fn from(r: EngineTokenResponse) -> Self {
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

fn de_scope<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ScopeField {
        Text(String),
        List(Vec<String>),
    }
    Ok(match Option::<ScopeField>::deserialize(d)? {
        None => None,
        Some(ScopeField::Text(s)) => Some(http::split_scopes(&s)),
        Some(ScopeField::List(list)) => Some(list),
    })
}

/// The engine's HTTP client for one `oauth2` call: renames the client parameter, reads
/// under the cap and classifies before `oauth2` parses.
struct Seam<'a> {
    engine: &'a OAuthEngine,
    call: TokenCall,
    secrets: &'a [&'a str],
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct HttpFailure(ProviderError);

impl From<ProviderError> for HttpFailure {
    fn from(e: ProviderError) -> Self {
        Self(e)
    }
}

impl<'c> AsyncHttpClient<'c> for Seam<'_> {
    type Error = HttpFailure;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpFailure>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = self.rename_client_param(request);
            let request = reqwest::Request::try_from(request).map_err(|_| {
                ProviderError::Config("the token request could not be built".into())
            })?;
            let response = self.engine.api.execute(request).await?;
            if let Some(e) = self.engine.classify(self.call, &response) {
                return Err(scrub_error(e, self.secrets).into());
            }
            triage(response).map_err(|e| scrub_error(e, self.secrets).into())
        })
    }
}

impl Seam<'_> {
    fn rename_client_param(&self, mut request: HttpRequest) -> HttpRequest {
        let name = self.engine.dialect.client_id_param.as_str();
        if name == "client_id" {
            return request;
        }
        let body = rename_form_key(request.body(), "client_id", name);
        *request.body_mut() = body;
        request
    }
}

/// `body` (`application/x-www-form-urlencoded`) with every pair whose key is `from`
/// given the key `to`; values and the other pairs are kept byte for byte. Keys are
/// compared in their encoded form, which for a name made of unreserved characters (such
/// as `client_id`) is the name itself: the body is split on `&` and `=`, which an
/// encoded key or value never contains.
fn rename_form_key(body: &[u8], from: &str, to: &str) -> Vec<u8> {
    let encoded_to: String = url::form_urlencoded::byte_serialize(to.as_bytes()).collect();
    let mut out = Vec::with_capacity(body.len() + encoded_to.len());
    for (i, pair) in body.split(|b| *b == b'&').enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        let key_len = pair.iter().position(|b| *b == b'=').unwrap_or(pair.len());
        if &pair[..key_len] == from.as_bytes() {
            out.extend_from_slice(encoded_to.as_bytes());
            out.extend_from_slice(&pair[key_len..]);
        } else {
            out.extend_from_slice(pair);
        }
    }
    out
}

/// The standard rules: what `oauth2` would misread becomes an error here; a token or an
/// RFC 6749 error object with a 4xx is passed on.
fn triage(response: CappedResponse) -> Result<HttpResponse, ProviderError> {
    if let Some(e) = http::classify_status(&response, Utc::now()) {
        return Err(e);
    }
    let error_object = http::has_error_member(&response.body)
        && serde_json::from_slice::<OAuthErrorBody>(&response.body).is_ok();
    let status = match (response.status.is_success(), error_object) {
        // Some platforms send RFC 6749 errors with 200; oauth2 would try them as tokens.
        (true, true) => {
            return Err(http::check_token_response(&response, Utc::now())
                .err()
                .unwrap_or_else(|| protocol("an error object with HTTP 200", &response.body)));
        }
        (true, false) => StatusCode::OK,
        (false, true) => response.status,
        (false, false) => {
            return Err(http::check_token_response(&response, Utc::now())
                .err()
                .unwrap_or_else(|| protocol("an unexpected reply", &response.body)));
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
        .map_err(|_| protocol("a reply that could not be passed on", &[]))
}

fn protocol(what: &str, body: &[u8]) -> ProviderError {
    ProviderError::Protocol {
        message: format!("the token endpoint sent {what}"),
        body: redacted_excerpt(body),
    }
}

/// An excerpt of a token reply with its token fields replaced; `None` for an empty body
/// or one that is not JSON yet names a token field.
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

    #[test]
    fn renaming_a_form_key_keeps_every_other_byte() {
        let rename = |body: &str| {
            String::from_utf8(rename_form_key(body.as_bytes(), "client_id", "client_key")).unwrap()
        };
        assert_eq!(
            rename("grant_type=refresh_token&client_id=abc%26d&refresh_token=r%3D1"),
            "grant_type=refresh_token&client_key=abc%26d&refresh_token=r%3D1"
        );
        assert_eq!(rename("client_id=x"), "client_key=x");
        // Only the whole key: a longer key, a value equal to the name, an empty pair.
        assert_eq!(
            rename("client_idx=1&a=client_id&&client_id"),
            "client_idx=1&a=client_id&&client_key"
        );
        assert_eq!(rename(""), "");
        // The new name is encoded as a form key.
        assert_eq!(
            String::from_utf8(rename_form_key(b"client_id=1", "client_id", "a b&c")).unwrap(),
            "a+b%26c=1"
        );
    }

    #[test]
    fn lenient_token_reply() {
        let r: EngineTokenResponse =
            serde_json::from_str(r#"{"access_token":"a","expires_in":"3600","scope":"x,y z"}"#)
                .unwrap();
        assert_eq!(r.expires_in, Some(3600));
        assert_eq!(r.token_type, BasicTokenType::Bearer);
        assert_eq!(r.scopes.as_ref().map(Vec::len), Some(3));
        assert!(!format!("{r:?}").contains("\"a\""));
        let r: EngineTokenResponse =
            serde_json::from_str(r#"{"access_token":"a","refresh_expires_in":15552000}"#).unwrap();
        assert_eq!(r.refresh_expires_in, Some(15_552_000));
    }

    #[test]
    fn excerpts_hide_tokens() {
        let e = redacted_excerpt(br#"{"access_token":"sekrit","expires_in":[]}"#).unwrap();
        assert!(!e.contains("sekrit"), "{e}");
        assert_eq!(redacted_excerpt(br#"{"access_token":"sekrit""#), None);
        assert_eq!(redacted_excerpt(b"<html>").as_deref(), Some("<html>"));
    }

    #[test]
    fn pkce_encodings_parse() {
        assert_eq!("HEX".parse::<PkceEncoding>().unwrap(), PkceEncoding::Hex);
        assert_eq!(
            "rfc7636".parse::<PkceEncoding>().unwrap(),
            PkceEncoding::Base64Url
        );
        assert!("plain".parse::<PkceEncoding>().is_err());
    }
}
