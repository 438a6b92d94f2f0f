//! The design's REST API under `/api/integrations`, with its JSON shapes, and the mapping
//! of [`integrations_core::Error`] to HTTP.

use super::AppState;
use super::session::{SessionUser, local_path};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use integrations_core::{CallbackParams, Error, IntegrationView, ProviderError};
use serde::{Deserialize, Serialize};

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

/// An error answer: `{"success": false, "code": "...", "message": "..."}`; never internal
/// detail.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: &'static str,
    retry_after: Option<u64>,
}

#[derive(Serialize)]
struct ErrorBody {
    success: bool,
    code: &'static str,
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
            Error::RateLimited { retry_at } => {
                Some((*retry_at - now).num_seconds().max(1).unsigned_abs())
            }
            Error::Provider(ProviderError::RateLimited { retry_after }) => {
                Some(retry_after.map_or(60, |d| d.as_secs().max(1)))
            }
            Error::Busy => Some(1),
            _ => None,
        };
        if status.is_server_error() {
            tracing::error!(code = e.code(), error = %e, "integrations request failed");
        } else {
            tracing::info!(code = e.code(), error = %e, "integrations request refused");
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

fn fail(state: &AppState) -> impl Fn(Error) -> ApiError + '_ {
    move |e| ApiError::from_service(&e, state.clock.now())
}

/// Fallback for unknown routes: a JSON 404.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", MSG_NO_ROUTE)
}

/// `GET /metrics`: the process's metrics in the Prometheus text format, with the
/// connection gauges counted from the store first. A 404 like any unknown route when
/// metrics are off.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let Some(handle) = &state.metrics else {
        return not_found().await.into_response();
    };
    if let Err(e) = state.integrations.record_connection_gauges().await {
        tracing::warn!(error = %e, "could not count connections for /metrics");
    }
    crate::metrics::response(handle)
}

/// One enabled platform.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProviderInfo {
    id: String,
    name: &'static str,
    can_refresh: bool,
}

/// `GET /api/integrations/providers`.
#[derive(Debug, Serialize)]
pub(crate) struct ProvidersBody {
    providers: Vec<ProviderInfo>,
}

pub(crate) async fn providers(
    SessionUser(_): SessionUser,
    State(state): State<AppState>,
) -> Json<ProvidersBody> {
    let mut providers: Vec<ProviderInfo> = state
        .integrations
        .provider_ids()
        .into_iter()
        .map(|id| {
            let can_refresh = state
                .integrations
                .provider(id.as_str())
                .is_ok_and(|p| p.capabilities().refresh);
            ProviderInfo {
                name: super::display_name(id.as_str()),
                id: id.as_str().to_owned(),
                can_refresh,
            }
        })
        .collect();
    providers.sort_by_key(|p| super::PLATFORMS.iter().position(|x| *x == p.id));
    Json(ProvidersBody { providers })
}

/// `GET /api/integrations/status`: `{"integrations": [...]}`.
#[derive(Debug, Serialize)]
pub(crate) struct StatusBody {
    integrations: Vec<IntegrationView>,
}

pub(crate) async fn status(
    SessionUser(user): SessionUser,
    State(state): State<AppState>,
) -> Result<Json<StatusBody>, ApiError> {
    let integrations = state
        .integrations
        .status(user)
        .await
        .map_err(fail(&state))?;
    Ok(Json(StatusBody { integrations }))
}

/// The connect body: `{"redirectUrl": "/integrations"}` (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConnectBody {
    redirect_url: Option<String>,
}

/// `POST /api/integrations/connect/:provider`: `{"authUrl", "state"}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConnectAnswer {
    auth_url: String,
    state: String,
}

pub(crate) async fn connect(
    SessionUser(user): SessionUser,
    State(state): State<AppState>,
    Path(provider): Path<String>,
    body: Result<Json<ConnectBody>, JsonRejection>,
) -> Result<Json<ConnectAnswer>, ApiError> {
    let body = match body {
        Ok(Json(b)) => b,
        // No body (or not JSON) is fine: the redirect defaults to the page.
        Err(JsonRejection::MissingJsonContentType(_)) => ConnectBody::default(),
        Err(_) => {
            return Err(ApiError::bad_request(
                "invalid_request",
                "Send {\"redirectUrl\": \"/integrations\"} or no body.",
            ));
        }
    };
    let redirect = local_path(body.redirect_url.as_deref());
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

/// `GET /api/integrations/callback/:provider`: completes the connection and 303-redirects
/// to the page with `?connected=<provider>` or `?provider=<provider>&error=<code>`.
pub(crate) async fn callback(
    SessionUser(user): SessionUser,
    State(state): State<AppState>,
    Path(provider): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    // An unknown or disabled platform is a JSON 404, like every other route.
    if let Err(e) = state.integrations.provider(&provider) {
        return Err(ApiError::from_service(&e, state.clock.now()));
    }
    let params = CallbackParams::from_query(query.as_deref().unwrap_or_default());
    match state.integrations.callback(user, &provider, &params).await {
        Ok(connection) => {
            let target = local_path(connection.redirect_url.as_deref());
            let account = connection.account.provider_account_id.as_str();
            Ok(Redirect::to(&with_query(
                &target,
                &[("connected", provider.as_str()), ("account", account)],
            ))
            .into_response())
        }
        Err(e) => {
            // Log it like any API error; the browser gets the code, the page the message.
            let mapped = ApiError::from_service(&e, state.clock.now());
            Ok(Redirect::to(&with_query(
                "/integrations",
                &[("provider", provider.as_str()), ("error", mapped.code)],
            ))
            .into_response())
        }
    }
}

/// `{"success": true, "message": "..."}`.
#[derive(Debug, Serialize)]
pub(crate) struct DisconnectAnswer {
    success: bool,
    message: String,
}

pub(crate) async fn disconnect(
    SessionUser(user): SessionUser,
    State(state): State<AppState>,
    Path((provider, account)): Path<(String, String)>,
) -> Result<Json<DisconnectAnswer>, ApiError> {
    state
        .integrations
        .disconnect(user, &provider, &account)
        .await
        .map_err(fail(&state))?;
    Ok(Json(DisconnectAnswer {
        success: true,
        message: format!("{} disconnected.", super::display_name(&provider)),
    }))
}

/// `{"success": true, "expiresAt": "..."}` (`null` when the new token does not expire).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RefreshAnswer {
    success: bool,
    expires_at: Option<DateTime<Utc>>,
}

pub(crate) async fn refresh(
    SessionUser(user): SessionUser,
    State(state): State<AppState>,
    Path((provider, account)): Path<(String, String)>,
) -> Result<Json<RefreshAnswer>, ApiError> {
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
        let e = Error::RateLimited {
            retry_at: now + chrono::Duration::seconds(90),
        };
        let api = ApiError::from_service(&e, now);
        assert_eq!(api.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(api.retry_after, Some(90));
    }
}
