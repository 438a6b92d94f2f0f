//! The design's REST API, with its JSON shapes, and the mapping of
//! [`integrations_core::Error`] to HTTP.

use crate::Card;
use crate::auth::{Authenticate, CurrentUser, HasAuth};
use axum::Json;
use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post};
use chrono::{DateTime, Utc};
use integrations_core::{
    CallbackParams, Error, IntegrationView, Integrations, Provider, ProviderError,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// What the API handlers share.
#[derive(Clone)]
pub(crate) struct ApiState {
    pub(crate) integrations: Integrations,
    pub(crate) auth: Arc<dyn Authenticate>,
    pub(crate) cards: Arc<Vec<Card>>,
    /// Where the page is: the redirect after a callback by default.
    pub(crate) home: Arc<str>,
    /// The OpenAPI document served at `GET /openapi.json`, serialized once.
    pub(crate) openapi: Option<axum::body::Bytes>,
    /// Where the API is mounted (absolute URLs given to platforms).
    pub(crate) api_base: Arc<str>,
    /// The app's public origin (`https://app.example.com`), when configured.
    pub(crate) public_origin: Option<Arc<str>>,
}

impl HasAuth for ApiState {
    fn auth(&self) -> &Arc<dyn Authenticate> {
        &self.auth
    }
}

impl ApiState {
    /// The name people read of a platform: its card's, else the provider's own.
    pub(crate) fn name(&self, p: &dyn Provider) -> String {
        match self.cards.iter().find(|c| c.id == p.id().as_str()) {
            Some(c) => c.name.clone(),
            None => p.display_name().to_owned(),
        }
    }

    fn order(&self, id: &str) -> usize {
        self.cards
            .iter()
            .position(|c| c.id == id)
            .unwrap_or(self.cards.len())
    }
}

pub(crate) fn router(state: ApiState) -> Router {
    let mut router = Router::new();
    if state.openapi.is_some() {
        router = router.route("/openapi.json", get(openapi_json));
    }
    router
        .route("/providers", get(providers))
        .route("/status", get(status))
        .route("/health", get(crate::health::health))
        .route("/connect/{provider}", post(connect))
        .route("/callback/{provider}", get(callback))
        .route("/disconnect/{provider}/{account_id}", delete(disconnect))
        .route("/refresh/{provider}/{account_id}", post(refresh))
        .route("/bulk", post(crate::bulk::bulk))
        // Only for the methods a route takes: another method is a 405 whatever its
        // content type or origin.
        .route_layer(axum::middleware::from_fn(crate::guard::same_site_json))
        // Platforms call these, signed, without a session, cross-site and in their own
        // content types: the guard above does not apply.
        .route(
            "/webhooks/{provider}",
            get(crate::platform::events).post(crate::platform::events),
        )
        .route(
            "/data-deletion/{provider}",
            get(crate::platform::deletion_status).post(crate::platform::data_deletion),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(crate::guard::json_errors))
        .with_state(state)
}

/// Path parameters, refused as a JSON 400 (axum's own rejection is text naming internal
/// parameters).
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| ApiPath(v))
            .map_err(|_: PathRejection| {
                ApiError::bad_request("invalid_request", "The address is not valid.")
            })
    }
}

/// The message of `401`.
pub(crate) const MSG_SIGN_IN: &str = "Please sign in.";
/// The message of a refresh asked for too early (Instagram's 24-hour rule).
pub(crate) const MSG_TOO_EARLY: &str =
    "This connection was renewed recently. It will be refreshed automatically later.";
/// The message of an action the platform does not offer.
pub(crate) const MSG_UNSUPPORTED: &str =
    "This platform keeps the connection without refreshing it.";
/// The message of an unknown route.
pub(crate) const MSG_NO_ROUTE: &str = "There is nothing here.";
/// The message of a method a route does not take.
pub(crate) const MSG_METHOD: &str = "This address does not take that method.";

/// An error answer: `{"success": false, "code": "...", "message": "..."}`; never internal
/// detail.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: &'static str,
    retry_after: Option<u64>,
}

/// The JSON of every error answer.
#[derive(Serialize, ToSchema)]
#[schema(as = ApiError, example = json!({
    "success": false, "code": "not_found", "message": "Integration not found."
}))]
pub(crate) struct ErrorBody {
    /// Always `false`.
    success: bool,
    /// A stable, machine-readable code (`unauthenticated`, `not_found`, `rate_limited`,
    /// ...; each answer lists the codes it can carry).
    code: &'static str,
    /// The message to show the user; never internal detail.
    message: &'static str,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: &'static str) -> Self {
        Self {
            status,
            code,
            message,
            retry_after: None,
        }
    }

    pub(crate) fn unauthenticated() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", MSG_SIGN_IN)
    }

    pub(crate) fn bad_request(code: &'static str, message: &'static str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// Maps a service error, logging what the user does not see. The status is the
    /// library's own, [`Error::http_status`]: the table in `docs/http-api.md`.
    pub(crate) fn from_service(e: &Error, now: DateTime<Utc>) -> Self {
        let status = e.http_status();
        let message = match e {
            Error::Provider(ProviderError::RefreshNotYetAllowed { .. }) => MSG_TOO_EARLY,
            Error::Provider(ProviderError::Unsupported { .. }) => MSG_UNSUPPORTED,
            other => other.user_message(),
        };
        let retry_after = match e {
            Error::ConnectRateLimited { retry_at } => {
                Some((*retry_at - now).num_seconds().max(1).unsigned_abs())
            }
            Error::Provider(ProviderError::RateLimited { retry_after }) => {
                Some(retry_after.map_or(60, |d| d.as_secs().max(1)))
            }
            Error::Busy => Some(1),
            _ => None,
        };
        // `?` (Debug) escapes what came from the request (a callback's `error`, a path
        // segment): no forged log lines, no terminal escape codes.
        let detail = e.to_string();
        if status.is_server_error() {
            tracing::error!(code = e.code(), error = ?detail, "integrations request failed");
        } else {
            tracing::info!(code = e.code(), error = ?detail, "integrations request refused");
        }
        Self {
            status,
            code: e.code(),
            message,
            retry_after,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(ErrorBody {
                success: false,
                code: self.code,
                message: self.message,
            }),
        )
            .into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

fn fail(state: &ApiState) -> impl Fn(Error) -> ApiError + '_ {
    move |e| ApiError::from_service(&e, state.integrations.now())
}

/// Fallback for unknown routes: a JSON 404.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", MSG_NO_ROUTE)
}

/// A known route asked with another method: a JSON 405.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        MSG_METHOD,
    )
}

/// This API's OpenAPI 3.1 document. No sign-in needed.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "documentation",
    responses(
        (status = 200, description = "The OpenAPI document of this API.",
            body = Object, content_type = "application/json"),
    )
)]
pub(crate) async fn openapi_json(State(state): State<ApiState>) -> Response {
    match state.openapi {
        Some(doc) => ([(header::CONTENT_TYPE, "application/json")], doc).into_response(),
        None => not_found().await.into_response(),
    }
}

/// One enabled platform.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProviderInfo {
    /// The provider id used in the routes' paths.
    #[schema(pattern = "^[a-z0-9_-]{1,50}$", example = "reddit")]
    id: String,
    /// The name people read.
    #[schema(example = "Reddit")]
    name: String,
    /// Whether `POST /refresh/{provider}/{account_id}` can refresh its connections.
    can_refresh: bool,
}

/// The enabled platforms, in page order.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProvidersBody {
    providers: Vec<ProviderInfo>,
}

/// The enabled platforms.
///
/// In page order: the host's cards first, then the other registered providers by id. Not
/// in the design; the page needs it to draw a card per platform, connected or not.
#[utoipa::path(
    get,
    path = "/providers",
    operation_id = "providers",
    tag = "integrations",
    security(("session" = [])),
    responses(
        (status = 200, description = "The enabled platforms.", body = ProvidersBody),
    )
)]
pub(crate) async fn providers(
    CurrentUser(_): CurrentUser,
    State(state): State<ApiState>,
) -> Json<ProvidersBody> {
    let mut providers: Vec<ProviderInfo> = state
        .integrations
        .provider_ids()
        .into_iter()
        .filter_map(|id| state.integrations.provider(id.as_str()).ok())
        .map(|p| ProviderInfo {
            name: state.name(p.as_ref()),
            id: p.id().as_str().to_owned(),
            can_refresh: p.capabilities().refresh,
        })
        .collect();
    providers.sort_by_key(|p| (state.order(&p.id), p.id.clone()));
    Json(ProvidersBody { providers })
}

/// Every connection of the signed-in user.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StatusBody {
    #[schema(value_type = Vec<crate::openapi::IntegrationViewSchema>)]
    integrations: Vec<IntegrationView>,
}

/// Every connection of the signed-in user.
///
/// Statuses, metadata and dates; never a token. `status` is computed at every call from
/// the stored row and the clock.
#[utoipa::path(
    get,
    path = "/status",
    operation_id = "status",
    tag = "integrations",
    security(("session" = [])),
    responses(
        (status = 200, description = "The user's connections.", body = StatusBody),
        (status = 500, description = "`store`, `crypto`: anything else.", body = ErrorBody),
        (status = 503, description = "`store_unavailable`: the database is down.",
            body = ErrorBody),
    )
)]
pub(crate) async fn status(
    CurrentUser(user): CurrentUser,
    State(state): State<ApiState>,
) -> Result<Json<StatusBody>, ApiError> {
    let integrations = state
        .integrations
        .status(user)
        .await
        .map_err(fail(&state))?;
    Ok(Json(StatusBody { integrations }))
}

/// Where the callback sends the browser back to.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConnectBody {
    /// A local path (`/…`, not `//…`); anything else, or none, is the page.
    #[schema(example = "/integrations")]
    redirect_url: Option<String>,
}

/// Where to send the browser to consent.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConnectAnswer {
    /// The platform's consent page.
    #[schema(format = Uri)]
    auth_url: String,
    /// The OAuth `state` of this attempt (also in `authUrl`): used once, for 10 minutes.
    state: String,
}

/// Starts connecting an account.
///
/// The browser goes to `authUrl`; the platform sends it back to `GET /callback/{provider}`.
/// The state is stored hashed with the user, the platform and (TikTok) the sealed PKCE
/// verifier; it lives 10 minutes and is used once.
#[utoipa::path(
    post,
    path = "/connect/{provider}",
    operation_id = "connect",
    tag = "integrations",
    security(("session" = [])),
    params(
        ("provider" = String, Path, description = "The provider id.", example = "reddit",
            min_length = 1),
    ),
    request_body(
        content = ConnectBody,
        content_type = "application/json",
        description = "An empty body counts as `{}` (the `Content-Type` is still required).",
    ),
    responses(
        (status = 200, description = "Started.", body = ConnectAnswer),
        (status = 400, description = "`invalid_request`: the body is not JSON of that shape, \
            or the path is not valid.", body = ErrorBody),
        (status = 404, description = "`unknown_provider`: an unknown or disabled platform.",
            body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over 2 MB.",
            body = ErrorBody),
        (status = 429, description = "`rate_limited`: more than 10 starts per user in 5 \
            minutes.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 500, description = "`store`, `crypto`, `provider_config`: anything else.",
            body = ErrorBody),
        (status = 502, description = "`network`, `provider_protocol`, `invalid_client`: the \
            platform could not be reached or answered nonsense.", body = ErrorBody),
        (status = 503, description = "`provider_unavailable`, `store_unavailable`: the \
            platform or the database is down.", body = ErrorBody),
    )
)]
pub(crate) async fn connect(
    CurrentUser(user): CurrentUser,
    State(state): State<ApiState>,
    ApiPath(provider): ApiPath<String>,
    body: axum::body::Bytes,
) -> Result<Json<ConnectAnswer>, ApiError> {
    // An empty body is fine: the redirect then defaults to the page.
    let body: ConnectBody = json_body(
        &body,
        "Send {\"redirectUrl\": \"/integrations\"} or no body.",
    )?;
    let redirect = local_path_or(body.redirect_url.as_deref(), &state.home);
    let start = state
        .integrations
        .connect(user, &provider, Some(redirect))
        .await
        .map_err(fail(&state))?;
    Ok(Json(ConnectAnswer {
        auth_url: start.auth_url.to_string(),
        state: start.state,
    }))
}

/// A JSON body of a POST (the guard let only `Content-Type: application/json` through):
/// `T`, or its default when the body is empty; else a 400 saying `expected`.
fn json_body<T: DeserializeOwned + Default>(
    body: &[u8],
    expected: &'static str,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|_| ApiError::bad_request("invalid_request", expected))
}

/// A local path (`/…`, not `//…`), else `/integrations`: never an open redirect.
pub fn local_path(next: Option<&str>) -> String {
    local_path_or(next, "/integrations")
}

/// A local path (`/…`, not `//…`), else `default`.
pub(crate) fn local_path_or(next: Option<&str>, default: &str) -> String {
    match next {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && p.len() < 512
                && !p.chars().any(char::is_control) =>
        {
            p.to_owned()
        }
        _ => default.to_owned(),
    }
}

/// Adds `key=value` pairs to a local path.
fn with_query(path: &str, pairs: &[(&str, &str)]) -> String {
    let base = path.split('#').next().unwrap_or(path);
    let mut out = String::from(base);
    let mut sep = if base.contains('?') { '&' } else { '?' };
    for (k, v) in pairs {
        out.push(sep);
        out.push_str(k);
        out.push('=');
        out.push_str(&url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>());
        sep = '&';
    }
    out
}

/// The platforms' redirect URI: completes the connection.
///
/// Query: what the platform sends (`code`, `state`, `error`, ...). Answers 303 to the
/// page: `?connected=<provider>&account=<providerAccountId>` added to the `redirectUrl`
/// given to `connect` (or the page), or `?provider=<provider>&error=<code>` on the page
/// (`cancelled`, `invalid_state`, `state_mismatch`, `state_expired`,
/// `authorization_failed`, `invalid_grant`, `invalid_client`,
/// `account_owned_by_another_user`, `provider_unavailable`, `network`,
/// `provider_rate_limited`, ...: every error code of the library arrives this way).
#[utoipa::path(
    get,
    path = "/callback/{provider}",
    operation_id = "callback",
    tag = "integrations",
    security(("session" = [])),
    params(
        ("provider" = String, Path, description = "The provider id.", example = "reddit",
            min_length = 1),
        ("code" = Option<String>, Query, description = "The authorization code."),
        ("state" = Option<String>, Query, description = "The state `connect` issued."),
        ("error" = Option<String>, Query,
            description = "The platform's error (`access_denied`: the user said no)."),
        ("error_description" = Option<String>, Query,
            description = "The platform's explanation of `error`."),
    ),
    responses(
        (status = 303, description = "Back to the page, with the outcome in the query.",
            headers(("Location" = String,
                description = "A local path: the page with `connected` and `account`, \
                    or `provider` and `error`."))),
        (status = 400, description = "`invalid_request`: the path is not valid.",
            body = ErrorBody),
        (status = 404, description = "`unknown_provider`: an unknown or disabled platform.",
            body = ErrorBody),
    )
)]
pub(crate) async fn callback(
    CurrentUser(user): CurrentUser,
    State(state): State<ApiState>,
    ApiPath(provider): ApiPath<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    // An unknown or disabled platform is a JSON 404, like every other route.
    if let Err(e) = state.integrations.provider(&provider) {
        return Err(ApiError::from_service(&e, state.integrations.now()));
    }
    let params = CallbackParams::from_query(query.as_deref().unwrap_or_default());
    match state.integrations.callback(user, &provider, &params).await {
        Ok(connection) => {
            let target = local_path_or(connection.redirect_url.as_deref(), &state.home);
            let account = connection.account.provider_account_id.as_str();
            Ok(Redirect::to(&with_query(
                &target,
                &[("connected", provider.as_str()), ("account", account)],
            ))
            .into_response())
        }
        Err(e) => {
            // Log it like any API error; the browser gets the code, the page the message.
            let mapped = ApiError::from_service(&e, state.integrations.now());
            Ok(Redirect::to(&with_query(
                &state.home,
                &[("provider", provider.as_str()), ("error", mapped.code)],
            ))
            .into_response())
        }
    }
}

/// Disconnected.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DisconnectAnswer {
    /// Always `true`.
    success: bool,
    /// What to tell the user.
    #[schema(example = "Reddit disconnected.")]
    message: String,
}

/// Disconnects an account.
///
/// Revokes the grant at the platform where it has a revocation endpoint (a failure there
/// does not keep the credentials, except where the platform must confirm it, such as a
/// billing connection gateway), then deletes the connection and its tokens.
#[utoipa::path(
    delete,
    path = "/disconnect/{provider}/{account_id}",
    operation_id = "disconnect",
    tag = "integrations",
    security(("session" = [])),
    params(
        ("provider" = String, Path, description = "The provider id.", example = "reddit",
            min_length = 1),
        ("account_id" = String, Path, min_length = 1,
            description = "The platform's account id (`providerAccountId`)."),
    ),
    responses(
        (status = 200, description = "Disconnected.", body = DisconnectAnswer),
        (status = 400, description = "`invalid_request`: the path is not valid; \
            `unsupported`: the platform cannot revoke and must.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such account for this user (including \
            another user's); `unknown_provider`: an unknown or disabled platform.",
            body = ErrorBody),
        (status = 429, description = "`provider_rate_limited`: the platform rate-limited the \
            revoke it must confirm; the connection is kept.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 500, description = "`store`, `crypto`, `provider_config`: anything else.",
            body = ErrorBody),
        (status = 502, description = "`network`, `provider_protocol`, `invalid_client`: the \
            revoke the platform must confirm failed; the connection is kept.",
            body = ErrorBody),
        (status = 503, description = "`provider_unavailable`, `store_unavailable`: the \
            platform or the database is down; the connection is kept.", body = ErrorBody),
    )
)]
pub(crate) async fn disconnect(
    CurrentUser(user): CurrentUser,
    State(state): State<ApiState>,
    ApiPath((provider, account)): ApiPath<(String, String)>,
) -> Result<Json<DisconnectAnswer>, ApiError> {
    state
        .integrations
        .disconnect(user, &provider, &account)
        .await
        .map_err(fail(&state))?;
    let name = state
        .integrations
        .provider(&provider)
        .map_or_else(|_| provider.clone(), |p| state.name(p.as_ref()));
    Ok(Json(DisconnectAnswer {
        success: true,
        message: format!("{name} disconnected."),
    }))
}

/// Refreshed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RefreshAnswer {
    /// Always `true`.
    success: bool,
    /// When the new access token expires; `null` when it does not.
    #[schema(required = true)]
    expires_at: Option<DateTime<Utc>>,
}

/// Refreshes an account's tokens now.
///
/// Single-flight with any other refresh of the account; on a failure the old tokens are
/// kept.
#[utoipa::path(
    post,
    path = "/refresh/{provider}/{account_id}",
    operation_id = "refresh",
    tag = "integrations",
    security(("session" = [])),
    params(
        ("provider" = String, Path, description = "The provider id.", example = "reddit",
            min_length = 1),
        ("account_id" = String, Path, min_length = 1,
            description = "The platform's account id (`providerAccountId`)."),
    ),
    request_body(
        content = Object,
        content_type = "application/json",
        description = "`{}` (its members are ignored; an empty body will do, the \
            `Content-Type` is still required).",
        example = json!({}),
    ),
    responses(
        (status = 200, description = "Refreshed.", body = RefreshAnswer),
        (status = 400, description = "`unsupported`: the platform has no refresh; \
            `invalid_request`: the body is not a JSON object, or the path is not valid.",
            body = ErrorBody),
        (status = 404, description = "`not_found`: no such account for this user (including \
            another user's); `unknown_provider`: an unknown or disabled platform.",
            body = ErrorBody),
        (status = 409, description = "`needs_reconnect`: the platform refused the grant, now \
            or before, and the user must reconnect; `refresh_not_yet_allowed`: the platform \
            refreshes only older tokens (Instagram: 24 hours).", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over 2 MB.",
            body = ErrorBody),
        (status = 429, description = "`provider_rate_limited`: the platform rate-limited the \
            call.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 500, description = "`store`, `crypto`, `provider_config`: anything else.",
            body = ErrorBody),
        (status = 502, description = "`network`, `provider_protocol`, `invalid_client`: the \
            platform could not be reached or answered nonsense.", body = ErrorBody),
        (status = 503, description = "`provider_unavailable`, `store_unavailable`: the \
            platform or the database is down; `busy`: another refresh of the account is \
            running (with `Retry-After`). The old tokens are kept.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait (`busy` only)."))),
    )
)]
pub(crate) async fn refresh(
    CurrentUser(user): CurrentUser,
    State(state): State<ApiState>,
    ApiPath((provider, account)): ApiPath<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<RefreshAnswer>, ApiError> {
    // Nothing is read from it, but it must be what the route takes.
    let _: serde_json::Map<String, serde_json::Value> = json_body(&body, "Send {} or no body.")?;
    let view = state
        .integrations
        .refresh(user, &provider, &account)
        .await
        .map_err(fail(&state))?;
    Ok(Json(RefreshAnswer {
        success: true,
        expires_at: view.expires_at,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use integrations_core::StoreError;

    #[test]
    fn with_query_appends_and_encodes() {
        assert_eq!(
            with_query("/integrations", &[("error", "a b&c")]),
            "/integrations?error=a+b%26c"
        );
        assert_eq!(
            with_query("/integrations?x=1#frag", &[("connected", "reddit")]),
            "/integrations?x=1&connected=reddit"
        );
    }

    #[test]
    fn internal_detail_never_reaches_the_body() {
        let e = Error::Provider(ProviderError::Protocol {
            message: "secret-ish upstream detail".into(),
            body: Some("raw".into()),
        });
        let api = ApiError::from_service(&e, Utc::now());
        assert_eq!(api.status, StatusCode::BAD_GATEWAY);
        assert_eq!(api.code, "provider_protocol");
        assert!(!api.message.contains("upstream"));
    }

    #[test]
    fn every_error_answers_the_librarys_status() {
        let errors = [
            Error::UnknownProvider("x".into()),
            Error::Cancelled,
            Error::InvalidState,
            Error::AccountOwnedByAnotherUser,
            Error::NotFound,
            Error::NeedsReconnect,
            Error::Busy,
            Error::Provider(ProviderError::RefreshNotYetAllowed {
                not_before: Utc::now(),
            }),
            Error::Provider(ProviderError::Unsupported {
                operation: "refresh",
            }),
            Error::Provider(ProviderError::Network {
                message: "reset".into(),
                timeout: true,
            }),
            Error::Provider(ProviderError::Unavailable { status: 502 }),
            Error::Provider(ProviderError::Config("X".into())),
            Error::Store(StoreError::Unavailable {
                message: "down".into(),
                source: None,
            }),
            Error::Store(StoreError::VersionConflict),
        ];
        for e in errors {
            let api = ApiError::from_service(&e, Utc::now());
            assert_eq!(api.status, e.http_status(), "{e:?}");
            assert_eq!(api.code, e.code());
        }
    }

    #[test]
    fn rate_limit_sets_retry_after() {
        let now = Utc::now();
        let e = Error::ConnectRateLimited {
            retry_at: now + chrono::Duration::seconds(90),
        };
        let api = ApiError::from_service(&e, now);
        assert_eq!(api.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(api.retry_after, Some(90));
    }
}
