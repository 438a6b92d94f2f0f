//! The demo sign-in: a signed (HMAC), `HttpOnly`, `SameSite=Lax` cookie carrying the user
//! id. A real host replaces this with its own authentication and keeps the rest.

use super::AppState;
use super::api::ApiError;
use super::cookie::{COOKIE, read_session};
use axum::Json;
use axum::extract::{FromRef, FromRequestParts, Query};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::Form;
use axum_extra::extract::cookie::{Cookie, Key, SameSite, SignedCookieJar};
use integrations_core::UserId;
use serde::{Deserialize, Serialize};

/// The signed-in user, or a 401 JSON error.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionUser(pub(crate) UserId);

impl<S> FromRequestParts<S> for SessionUser
where
    S: Send + Sync,
    Key: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        read_session(&parts.headers, &Key::from_ref(state))
            .map(SessionUser)
            .ok_or_else(ApiError::unauthenticated)
    }
}

fn session_cookie(state: &AppState, user: UserId) -> Cookie<'static> {
    Cookie::build((COOKIE, user.0.to_string()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.secure_cookies)
        .build()
}

fn removal() -> Cookie<'static> {
    Cookie::build(COOKIE).path("/").build()
}

/// The JSON sign-in body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SignInJson {
    user_id: i64,
}

/// The JSON sign-in answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SignedIn {
    user_id: i64,
}

fn valid_user(id: i64) -> Result<UserId, ApiError> {
    if (1..=1_000_000_000).contains(&id) {
        Ok(UserId(id))
    } else {
        Err(ApiError::bad_request(
            "invalid_user",
            "Enter a user number between 1 and 1000000000.",
        ))
    }
}

/// `POST /api/session` `{"userId": 1}`: signs in (demo).
pub(crate) async fn signin_json(
    axum::extract::State(state): axum::extract::State<AppState>,
    jar: SignedCookieJar,
    body: Result<Json<SignInJson>, axum::extract::rejection::JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(body) =
        body.map_err(|_| ApiError::bad_request("invalid_request", "Send {\"userId\": <number>}."))?;
    let user = valid_user(body.user_id)?;
    let jar = jar.add(session_cookie(&state, user));
    Ok((jar, Json(SignedIn { user_id: user.0 })))
}

/// `GET /api/session`: who is signed in (`{"userId": 1}`), or 401.
pub(crate) async fn whoami(SessionUser(user): SessionUser) -> Json<SignedIn> {
    Json(SignedIn { user_id: user.0 })
}

/// `DELETE /api/session`: signs out.
pub(crate) async fn signout_json(jar: SignedCookieJar) -> impl IntoResponse {
    (jar.remove(removal()), StatusCode::NO_CONTENT)
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub(crate) struct SignInForm {
    user: String,
}

/// Where to go after signing in.
#[derive(Debug, Deserialize)]
pub(crate) struct Next {
    next: Option<String>,
}

/// A local path (`/…`, not `//…`), else `/integrations`: never an open redirect.
pub(crate) fn local_path(next: Option<&str>) -> String {
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
        _ => "/integrations".to_owned(),
    }
}

/// `POST /signin` (form `user=<id>`): signs in and goes to `next`.
pub(crate) async fn signin_form(
    axum::extract::State(state): axum::extract::State<AppState>,
    Query(next): Query<Next>,
    jar: SignedCookieJar,
    form: Result<Form<SignInForm>, axum_extra::extract::FormRejection>,
) -> Response {
    let user = form
        .ok()
        .and_then(|Form(f)| f.user.trim().parse::<i64>().ok())
        .and_then(|id| valid_user(id).ok());
    match user {
        Some(user) => {
            let jar = jar.add(session_cookie(&state, user));
            (jar, Redirect::to(&local_path(next.next.as_deref()))).into_response()
        }
        None => Redirect::to("/signin?error=invalid_user").into_response(),
    }
}

/// `POST /signout`: signs out and shows the sign-in page.
pub(crate) async fn signout_form(jar: SignedCookieJar) -> Response {
    (jar.remove(removal()), Redirect::to("/signin")).into_response()
}
