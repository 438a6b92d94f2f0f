//! `POST /bulk`: one action (refresh or disconnect) on several accounts of the signed-in
//! user at once, with a result per account.
//!
//! Each account goes through the same library call as its single route
//! ([`Integrations::refresh`](integrations_core::Integrations::refresh),
//! [`Integrations::disconnect`](integrations_core::Integrations::disconnect)), at most
//! [`BULK_CONCURRENCY`] at a time; a failure of one account never stops the others.

use crate::api::{ApiError, ApiState, ErrorBody};
use crate::auth::CurrentUser;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use integrations_core::UserId;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use utoipa::ToSchema;

/// The most accounts one `POST /bulk` request may list (more is a `400 invalid_request`).
/// The limit applies to the list as sent, before duplicates are collapsed.
pub const BULK_MAX_ACCOUNTS: usize = 50;

/// How many accounts of one `POST /bulk` request are worked on at the same time: the
/// others wait for a free slot, so one request never sends more than this many calls to
/// the platforms and the store at once.
pub const BULK_CONCURRENCY: usize = 4;

/// The message of a body that is not a bulk request.
const MSG_SHAPE: &str = "Send {\"action\": \"refresh\" or \"disconnect\", \"accounts\": \
                         [{\"provider\": \"…\", \"accountId\": \"…\"}]}.";
/// The message of an action the route does not know.
const MSG_ACTION: &str = "The action must be \"refresh\" or \"disconnect\".";
/// The message of an empty list.
const MSG_EMPTY: &str = "Name at least one account.";
/// The message of a list over [`BULK_MAX_ACCOUNTS`].
const MSG_TOO_MANY: &str = "Send at most 50 accounts at once.";

/// What to do with every listed account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum BulkAction {
    /// `POST /refresh/{provider}/{account_id}` on each.
    Refresh,
    /// `DELETE /disconnect/{provider}/{account_id}` on each.
    Disconnect,
}

impl BulkAction {
    fn parse(action: &str) -> Option<Self> {
        match action {
            "refresh" => Some(Self::Refresh),
            "disconnect" => Some(Self::Disconnect),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Refresh => "refresh",
            Self::Disconnect => "disconnect",
        }
    }
}

/// One account of the signed-in user.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BulkAccount {
    /// The provider id.
    #[schema(pattern = "^[a-z0-9_-]{1,50}$", example = "reddit")]
    provider: String,
    /// The platform's account id (`providerAccountId` in `GET /status`).
    #[schema(min_length = 1, example = "t2_1w72")]
    account_id: String,
}

/// An action on several accounts.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct BulkRequest {
    /// `refresh` or `disconnect`.
    #[schema(value_type = BulkAction)]
    action: String,
    /// The accounts: 1 to 50 as sent; an account listed twice is worked on once.
    #[schema(min_items = 1, max_items = 50)]
    accounts: Vec<BulkAccount>,
}

/// What became of one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum BulkOutcome {
    /// Done.
    Ok,
    /// No such account for this user (including another user's), or no such platform.
    NotFound,
    /// The action failed; `code` says why, as the single route would have.
    Error,
}

/// The result of one account, in the order of the request.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BulkItemResult {
    /// The provider id, as sent.
    #[schema(example = "reddit")]
    provider: String,
    /// The account id, as sent.
    #[schema(example = "t2_1w72")]
    account_id: String,
    /// `ok`, `not_found` or `error`.
    result: BulkOutcome,
    /// The error code of a `not_found` or `error` result (`not_found`,
    /// `unknown_provider`, `unsupported`, `needs_reconnect`, ...: the codes of the single
    /// route); `null` when `ok`.
    #[schema(required = true, example = json!(null))]
    code: Option<&'static str>,
    /// What to tell the user about this account.
    #[schema(example = "Reddit disconnected.")]
    message: String,
}

/// The results of a bulk action.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BulkAnswer {
    /// Whether every account is `ok`.
    success: bool,
    /// One result per distinct account, in the order of the request.
    results: Vec<BulkItemResult>,
}

/// Refreshes or disconnects several accounts at once.
///
/// The accounts are worked on 4 at a time, each as its single route would
/// (`POST /refresh/{provider}/{account_id}`, `DELETE /disconnect/{provider}/{account_id}`);
/// one account failing does not stop the others. Duplicates are collapsed. The answer
/// lists a result per account in the order of the request: `200` when every one is `ok`,
/// `207` otherwise (some or all failed).
#[utoipa::path(
    post,
    path = "/bulk",
    operation_id = "bulk",
    tag = "integrations",
    security(("session" = [])),
    request_body(
        content = BulkRequest,
        content_type = "application/json",
        description = "The action and 1 to 50 accounts of the signed-in user.",
        example = json!({
            "action": "disconnect",
            "accounts": [
                {"provider": "reddit", "accountId": "t2_1w72"},
                {"provider": "tiktok", "accountId": "act.demo"}
            ]
        }),
    ),
    responses(
        (status = 200, description = "Every account is `ok`.", body = BulkAnswer,
            example = json!({
                "success": true,
                "results": [
                    {"provider": "reddit", "accountId": "t2_1w72", "result": "ok",
                        "code": null, "message": "Reddit disconnected."},
                    {"provider": "tiktok", "accountId": "act.demo", "result": "ok",
                        "code": null, "message": "TikTok disconnected."}
                ]
            })),
        (status = 207, description = "Multi-Status: at least one account is not `ok` (some \
            or all); each result says what became of its account.", body = BulkAnswer,
            example = json!({
                "success": false,
                "results": [
                    {"provider": "reddit", "accountId": "t2_1w72", "result": "ok",
                        "code": null, "message": "Reddit connection refreshed."},
                    {"provider": "reddit", "accountId": "t2_gone", "result": "not_found",
                        "code": "not_found", "message": "Integration not found."},
                    {"provider": "onlyfans", "accountId": "of_1", "result": "error",
                        "code": "unsupported",
                        "message": "This platform keeps the connection without refreshing it."}
                ]
            })),
        (status = 400, description = "`invalid_request`: the body is not a bulk request, the \
            action is neither `refresh` nor `disconnect`, the list is empty or has more than \
            50 accounts.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over 2 MB.",
            body = ErrorBody),
    )
)]
pub(crate) async fn bulk(
    CurrentUser(user): CurrentUser,
    State(state): State<ApiState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let (action, accounts) = parse(&body)?;
    let results = run(&state, user, action, accounts).await;
    let success = results.iter().all(|r| r.result == BulkOutcome::Ok);
    tracing::info!(
        user = user.0,
        action = action.as_str(),
        accounts = results.len(),
        ok = results
            .iter()
            .filter(|r| r.result == BulkOutcome::Ok)
            .count(),
        "bulk request"
    );
    let status = if success {
        StatusCode::OK
    } else {
        StatusCode::MULTI_STATUS
    };
    Ok((status, Json(BulkAnswer { success, results })).into_response())
}

/// The action and the distinct accounts of a body, or the 400 it deserves.
fn parse(body: &[u8]) -> Result<(BulkAction, Vec<BulkAccount>), ApiError> {
    let request: BulkRequest = serde_json::from_slice(body)
        .map_err(|_| ApiError::bad_request("invalid_request", MSG_SHAPE))?;
    let action = BulkAction::parse(&request.action)
        .ok_or_else(|| ApiError::bad_request("invalid_request", MSG_ACTION))?;
    if request.accounts.is_empty() {
        return Err(ApiError::bad_request("invalid_request", MSG_EMPTY));
    }
    if request.accounts.len() > BULK_MAX_ACCOUNTS {
        return Err(ApiError::bad_request("invalid_request", MSG_TOO_MANY));
    }
    let mut accounts = request.accounts;
    let mut seen = HashSet::new();
    accounts.retain(|a| seen.insert((a.provider.clone(), a.account_id.clone())));
    Ok((action, accounts))
}

/// Runs `action` on every account, [`BULK_CONCURRENCY`] at a time: that many workers take
/// the next account until none is left. The results are in the order of `accounts`.
async fn run(
    state: &ApiState,
    user: UserId,
    action: BulkAction,
    accounts: Vec<BulkAccount>,
) -> Vec<BulkItemResult> {
    let accounts: Arc<[BulkAccount]> = accounts.into();
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..BULK_CONCURRENCY.min(accounts.len()) {
        let (state, accounts, next) = (state.clone(), accounts.clone(), next.clone());
        workers.spawn(async move {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(account) = accounts.get(i) else {
                    break;
                };
                done.push((i, one(&state, user, action, account).await));
            }
            done
        });
    }
    let mut results: Vec<Option<BulkItemResult>> = accounts.iter().map(|_| None).collect();
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(done) => {
                for (i, result) in done {
                    results[i] = Some(result);
                }
            }
            Err(e) => tracing::error!(error = %e, "a bulk worker failed"),
        }
    }
    // A worker that panicked lost the results it held: those accounts failed.
    results
        .into_iter()
        .zip(accounts.iter())
        .map(|(result, account)| {
            result.unwrap_or_else(|| BulkItemResult {
                provider: account.provider.clone(),
                account_id: account.account_id.clone(),
                result: BulkOutcome::Error,
                code: Some("internal"),
                message: integrations_core::error::MSG_INTERNAL.to_owned(),
            })
        })
        .collect()
}

/// One account, through the library call of its single route.
async fn one(
    state: &ApiState,
    user: UserId,
    action: BulkAction,
    account: &BulkAccount,
) -> BulkItemResult {
    let (provider, id) = (account.provider.as_str(), account.account_id.as_str());
    let outcome = match action {
        BulkAction::Refresh => state
            .integrations
            .refresh(user, provider, id)
            .await
            .map(|_| ()),
        BulkAction::Disconnect => state.integrations.disconnect(user, provider, id).await,
    };
    let (result, code, message) = match outcome {
        Ok(()) => {
            let name = state
                .integrations
                .provider(provider)
                .map_or_else(|_| provider.to_owned(), |p| state.name(p.as_ref()));
            let message = match action {
                BulkAction::Refresh => format!("{name} connection refreshed."),
                BulkAction::Disconnect => format!("{name} disconnected."),
            };
            (BulkOutcome::Ok, None, message)
        }
        Err(e) => {
            // Mapped (and logged) as the single route maps it.
            let mapped = ApiError::from_service(&e, state.integrations.now());
            let result = if mapped.status == StatusCode::NOT_FOUND {
                BulkOutcome::NotFound
            } else {
                BulkOutcome::Error
            };
            (result, Some(mapped.code), mapped.message.to_owned())
        }
    };
    BulkItemResult {
        provider: account.provider.clone(),
        account_id: account.account_id.clone(),
        result,
        code,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(body: &str) -> ApiError {
        parse(body.as_bytes()).expect_err(body)
    }

    #[test]
    fn the_messages_name_the_limit_and_the_actions() {
        assert!(MSG_TOO_MANY.contains(&BULK_MAX_ACCOUNTS.to_string()));
        for action in [BulkAction::Refresh, BulkAction::Disconnect] {
            assert_eq!(BulkAction::parse(action.as_str()), Some(action));
            assert!(MSG_ACTION.contains(action.as_str()));
            assert_eq!(
                serde_json::to_value(action).unwrap(),
                serde_json::json!(action.as_str())
            );
        }
    }

    #[test]
    fn the_document_states_the_limits() {
        let doc = crate::IntegrationsRouter::openapi();
        let json = serde_json::to_value(&doc).unwrap();
        let op = &json["paths"]["/bulk"]["post"];
        let description = op["description"].as_str().unwrap();
        assert!(description.contains(&format!("{BULK_CONCURRENCY} at a time")));
        let schema = &json["components"]["schemas"]["BulkRequest"]["properties"]["accounts"];
        assert_eq!(schema["maxItems"], BULK_MAX_ACCOUNTS);
        assert_eq!(schema["minItems"], 1);
    }

    #[test]
    fn bodies_are_checked_and_duplicates_collapsed() {
        for (body, message) in [
            ("", MSG_SHAPE),
            ("{", MSG_SHAPE),
            ("[]", MSG_SHAPE),
            (r#"{"action": "refresh"}"#, MSG_SHAPE),
            (r#"{"action": 1, "accounts": []}"#, MSG_SHAPE),
            (
                r#"{"action": "refresh", "accounts": [{"provider": "x"}]}"#,
                MSG_SHAPE,
            ),
            (r#"{"action": "delete", "accounts": []}"#, MSG_ACTION),
            (r#"{"action": "refresh", "accounts": []}"#, MSG_EMPTY),
        ] {
            let e = refused(body);
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(e.code, "invalid_request");
            assert_eq!(e.message, message, "{body}");
        }
        let item = serde_json::json!({"provider": "x", "accountId": "1"});
        let over = serde_json::json!({
            "action": "disconnect",
            "accounts": vec![item.clone(); BULK_MAX_ACCOUNTS + 1],
        });
        assert_eq!(refused(&over.to_string()).message, MSG_TOO_MANY);
        let at_most = serde_json::json!({
            "action": "disconnect",
            "accounts": vec![item; BULK_MAX_ACCOUNTS],
        });
        let (action, accounts) = parse(at_most.to_string().as_bytes()).unwrap();
        assert_eq!(action, BulkAction::Disconnect);
        assert_eq!(accounts.len(), 1, "duplicates count once");
    }
}
