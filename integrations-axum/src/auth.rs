//! The one seam to the host's authentication: who is signed in.

use crate::api::ApiError;
use async_trait::async_trait;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use integrations_core::UserId;
use std::sync::Arc;

/// Tells the router who makes a request. The host implements it over its own
/// authentication (a session, a bearer token, a proxy header); the demo cookie sign-in
/// (feature `demo-session`) is one implementation.
///
/// ```
/// use integrations_axum::Authenticate;
/// use integrations_core::UserId;
///
/// /// `Authorization: Bearer user-<id>`: a stand-in for a real token check.
/// struct Bearer;
///
/// #[async_trait::async_trait]
/// impl Authenticate for Bearer {
///     async fn user(&self, parts: &mut axum::http::request::Parts) -> Option<UserId> {
///         let value = parts.headers.get("authorization")?.to_str().ok()?;
///         value.strip_prefix("Bearer user-")?.parse().ok().map(UserId)
///     }
/// }
/// ```
#[async_trait]
pub trait Authenticate: Send + Sync + 'static {
    /// The signed-in user, or `None`: the API answers 401 `unauthenticated`, the page sends
    /// the browser to [`PageConfig::sign_in_url`](crate::PageConfig::sign_in_url).
    async fn user(&self, parts: &mut Parts) -> Option<UserId>;
}

/// What the handlers need of the host: the authenticator.
pub(crate) trait HasAuth {
    fn auth(&self) -> &Arc<dyn Authenticate>;
}

/// The signed-in user, or a 401 JSON error.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CurrentUser(pub(crate) UserId);

impl<S: HasAuth + Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let auth = state.auth().clone();
        auth.user(parts)
            .await
            .map(CurrentUser)
            .ok_or_else(ApiError::unauthenticated)
    }
}
