//! The demo sign-in (feature `demo-session`): pick a user number, get a session.
//!
//! The cookie carries a random session id, signed (HMAC) so it cannot be guessed or
//! altered, `HttpOnly`, `SameSite=Lax`, `Secure` when asked. Sessions live on the server:
//! they expire ([`DemoSessions::ttl`], 12 hours by default) and signing out ends them
//! there, so a copied cookie stops working too. Sign-in refuses cross-site requests (no
//! login CSRF: an attacker cannot sign a victim into the attacker's account). A real host
//! replaces all of this with its own authentication behind [`Authenticate`].

use crate::api::ApiError;
use crate::auth::Authenticate;
use crate::guard::cross_site;
use crate::local_path;
use crate::page::html_headers;
use async_trait::async_trait;
use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::Form;
use axum_extra::extract::cookie::{Cookie, Key, SameSite, SignedCookieJar};
use integrations_core::UserId;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The session cookie's name.
pub const COOKIE: &str = "integrations_session";

const SIGNIN: &str = include_str!("../assets/signin.html");

/// The most live sessions kept; the oldest expiring ones go first beyond it.
const MAX_SESSIONS: usize = 100_000;

struct Session {
    user: UserId,
    expires: Instant,
}

struct Inner {
    key: Key,
    secure: bool,
    ttl: Duration,
    home: String,
    css: String,
    sessions: Mutex<HashMap<String, Session>>,
}

/// The demo sessions: an [`Authenticate`] and the sign-in routes ([`DemoSessions::router`]).
#[derive(Clone)]
pub struct DemoSessions {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DemoSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoSessions")
            .field("secure", &self.inner.secure)
            .field("ttl", &self.inner.ttl)
            .finish_non_exhaustive()
    }
}

impl DemoSessions {
    /// Sessions signed with `secret` (at least 64 bytes), or with a random key (sessions
    /// then end when the process does). `home` is where a signed-in browser goes by
    /// default (the page), `css` the page's stylesheet (for the sign-in page).
    pub fn new(
        secret: Option<&[u8]>,
        home: impl Into<String>,
        css: impl Into<String>,
    ) -> Result<Self, String> {
        let key = match secret {
            Some(s) => {
                Key::try_from(s).map_err(|_| "the session secret must be at least 64 bytes")?
            }
            None => Key::try_generate().ok_or("no randomness for the session key")?,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                key,
                secure: false,
                ttl: Duration::from_secs(12 * 3600),
                home: home.into(),
                css: css.into(),
                sessions: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Marks the cookie `Secure` (behind HTTPS).
    pub fn secure_cookies(self, secure: bool) -> Self {
        self.with(|i| i.secure = secure)
    }

    /// How long a session lives (default 12 hours).
    pub fn ttl(self, ttl: Duration) -> Self {
        self.with(|i| i.ttl = ttl)
    }

    fn with(self, f: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            key: shared.key.clone(),
            secure: shared.secure,
            ttl: shared.ttl,
            home: shared.home.clone(),
            css: shared.css.clone(),
            sessions: Mutex::new(HashMap::new()),
        });
        f(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The live session's user of a cookie jar.
    fn user_of(&self, jar: &SignedCookieJar) -> Option<UserId> {
        let id = jar.get(COOKIE)?.value().to_owned();
        let mut sessions = self.inner.sessions.lock().ok()?;
        match sessions.get(&id) {
            Some(s) if s.expires > Instant::now() => Some(s.user),
            Some(_) => {
                sessions.remove(&id);
                None
            }
            None => None,
        }
    }

    fn start(&self, user: UserId) -> Cookie<'static> {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        if let Ok(mut sessions) = self.inner.sessions.lock() {
            let now = Instant::now();
            sessions.retain(|_, s| s.expires > now);
            if sessions.len() >= MAX_SESSIONS
                && let Some(oldest) = sessions
                    .iter()
                    .min_by_key(|(_, s)| s.expires)
                    .map(|(k, _)| k.clone())
            {
                sessions.remove(&oldest);
            }
            sessions.insert(
                id.clone(),
                Session {
                    user,
                    expires: now + self.inner.ttl,
                },
            );
        }
        Cookie::build((COOKIE, id))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.inner.secure)
            .max_age(self.inner.ttl.try_into().unwrap_or_default())
            .build()
    }

    fn end(&self, jar: &SignedCookieJar) {
        if let (Some(c), Ok(mut sessions)) = (jar.get(COOKIE), self.inner.sessions.lock()) {
            sessions.remove(c.value());
        }
    }

    /// The signed-in user of a request's `Cookie` headers: a session cookie signed with
    /// this key, naming a live session. Anything else (no cookie, a bad or foreign
    /// signature, an unknown, expired or ended session) is `None`.
    pub fn user_from_headers(&self, headers: &HeaderMap) -> Option<UserId> {
        self.user_of(&self.jar(headers))
    }

    /// Starts a session for `user` and returns the `Cookie` header value a browser sends
    /// back after signing in (`integrations_session=<signed id>`), for tests and tools.
    pub fn sign_in_cookie(&self, user: UserId) -> Option<String> {
        let jar = SignedCookieJar::new(self.inner.key.clone()).add(self.start(user));
        let response = (jar, ()).into_response();
        let set = response
            .headers()
            .get(axum::http::header::SET_COOKIE)?
            .to_str()
            .ok()?;
        set.split(';').next().map(str::to_owned)
    }

    fn jar(&self, headers: &HeaderMap) -> SignedCookieJar {
        SignedCookieJar::from_headers(headers, self.inner.key.clone())
    }

    /// The sign-in routes: `GET`/`POST /signin` (the form), `POST /signout`, and
    /// `GET`/`POST`/`DELETE /api/session` (who is signed in; sign in and out as JSON).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/signin", get(signin_page).post(signin_form))
            .route("/signout", post(signout_form))
            .route(
                "/api/session",
                get(whoami).post(signin_json).delete(signout_json),
            )
            .with_state(self.clone())
    }
}

#[async_trait]
impl Authenticate for DemoSessions {
    async fn user(&self, parts: &mut Parts) -> Option<UserId> {
        self.user_of(&self.jar(&parts.headers))
    }
}

fn removal() -> Cookie<'static> {
    Cookie::build(COOKIE).path("/").build()
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

fn refuse_cross_site(headers: &HeaderMap) -> Result<(), ApiError> {
    if cross_site(headers) {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_site",
            "This request must come from this site.",
        ))
    } else {
        Ok(())
    }
}

/// The JSON sign-in body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignInJson {
    user_id: i64,
}

/// Who is signed in.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SignedIn {
    user_id: i64,
}

/// `POST /api/session` `{"userId": 1}`.
async fn signin_json(
    State(s): State<DemoSessions>,
    headers: HeaderMap,
    body: Result<Json<SignInJson>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    refuse_cross_site(&headers)?;
    let Json(body) =
        body.map_err(|_| ApiError::bad_request("invalid_request", "Send {\"userId\": <number>}."))?;
    let user = valid_user(body.user_id)?;
    let jar = s.jar(&headers).add(s.start(user));
    Ok((jar, Json(SignedIn { user_id: user.0 })).into_response())
}

/// `GET /api/session`: `{"userId": 1}`, or 401.
async fn whoami(State(s): State<DemoSessions>, headers: HeaderMap) -> Result<Response, ApiError> {
    let user = s
        .user_of(&s.jar(&headers))
        .ok_or_else(ApiError::unauthenticated)?;
    Ok(Json(SignedIn { user_id: user.0 }).into_response())
}

/// `DELETE /api/session`: ends the session on the server too.
async fn signout_json(State(s): State<DemoSessions>, headers: HeaderMap) -> Response {
    let jar = s.jar(&headers);
    s.end(&jar);
    (jar.remove(removal()), StatusCode::NO_CONTENT).into_response()
}

#[derive(Debug, Deserialize)]
struct SignInForm {
    user: String,
}

#[derive(Debug, Deserialize)]
struct Next {
    next: Option<String>,
}

/// `GET /signin`: the demo sign-in form.
async fn signin_page(State(s): State<DemoSessions>, Query(q): Query<Next>) -> Response {
    let next = q
        .next
        .map(|n| local_path(Some(&n)))
        .unwrap_or_else(|| s.inner.home.clone());
    // `next` is a checked local path; encode it for the form's action attribute.
    let action: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
    let body = SIGNIN
        .replace("{{NEXT}}", &action)
        .replace("{{ICON}}", crate::page::ICON)
        .replace("{{CSS}}", &crate::page::escape(&s.inner.css))
        .replace("{{HOME}}", &crate::page::escape(&s.inner.home));
    let mut r = Html(body).into_response();
    html_headers(&mut r);
    r
}

/// `POST /signin` (form `user=<id>`): signs in and goes to `next`.
async fn signin_form(
    State(s): State<DemoSessions>,
    Query(next): Query<Next>,
    headers: HeaderMap,
    form: Result<Form<SignInForm>, axum_extra::extract::FormRejection>,
) -> Response {
    if let Err(e) = refuse_cross_site(&headers) {
        return e.into_response();
    }
    let user = form
        .ok()
        .and_then(|Form(f)| f.user.trim().parse::<i64>().ok())
        .and_then(|id| valid_user(id).ok());
    match user {
        Some(user) => {
            let jar = s.jar(&headers).add(s.start(user));
            let target = next
                .next
                .map(|n| local_path(Some(&n)))
                .unwrap_or_else(|| s.inner.home.clone());
            (jar, Redirect::to(&target)).into_response()
        }
        None => Redirect::to("/signin?error=invalid_user").into_response(),
    }
}

/// `POST /signout`: ends the session and shows the sign-in page.
async fn signout_form(State(s): State<DemoSessions>, headers: HeaderMap) -> Response {
    let jar = s.jar(&headers);
    s.end(&jar);
    (jar.remove(removal()), Redirect::to("/signin")).into_response()
}
