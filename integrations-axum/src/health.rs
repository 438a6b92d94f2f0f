//! `GET /health`: every platform's health for the people who run the app (see
//! [`integrations_core::health`]). Signed-in users only; it shows no account of anyone
//! (counts, error codes and messages, never a token).

use crate::api::{ApiError, ApiState, ErrorBody};
use crate::auth::CurrentUser;
use axum::Json;
use axum::extract::State;
use serde_json::Value;

/// Every platform's health over the last 24 hours, from every process sharing the store:
/// its state (`operational`, `degraded`, `throttled`, `failing`) with the reason, calls,
/// success rate, error classes and p50/p99 latency over 15 minutes, 1 hour and 24 hours,
/// the newest quota signal (used, remaining, reset), accounts by status, the refresh
/// backlog, a 60-minute series and the most recent errors. `docs/health.md` describes
/// each field and the state rule.
///
/// The answer is [`HealthOverview`](integrations_core::HealthOverview) with each
/// platform's display name added as `name`.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    tag = "operations",
    security(("session" = [])),
    responses(
        (status = 200, description = "Every registered platform's health, by id.",
            body = Object, content_type = "application/json",
            example = json!({"generatedAt": "2026-12-01T12:30:30Z", "platforms": [{
                "provider": "reddit", "name": "Reddit", "state": "throttled",
                "reason": "the quota is used up until 12:40:00 UTC",
                "last15m": {"calls": 6, "ok": 5, "successRate": 0.8333,
                    "errors": {"rate_limited": 1}, "kinds": {"send": 4, "token": 1, "profile": 1},
                    "p50Ms": 20, "p99Ms": 150},
                "quota": {"used_percent": 100.0, "remaining": 0.0, "limit": 1000.0,
                    "reset_at": "2026-12-01T12:40:00Z", "source": "x-ratelimit",
                    "at": "2026-12-01T12:30:29Z"},
                "accounts": {"active": 1}, "refreshBacklog": 0}]})),
        (status = 401, description = "`unauthenticated`: not signed in.", body = ErrorBody),
        (status = 500, description = "`store`: anything else.", body = ErrorBody),
        (status = 503, description = "`store_unavailable`: the database is down.",
            body = ErrorBody),
    )
)]
pub(crate) async fn health(
    CurrentUser(_): CurrentUser,
    State(state): State<ApiState>,
) -> Result<Json<Value>, ApiError> {
    let integrations = &state.integrations;
    let overview = integrations
        .health()
        .await
        .map_err(|e| ApiError::from_service(&e, integrations.now()))?;
    let mut value = serde_json::to_value(&overview).unwrap_or_default();
    if let Some(platforms) = value.get_mut("platforms").and_then(Value::as_array_mut) {
        for p in platforms {
            let id = p
                .get("provider")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let name = integrations
                .provider(id)
                .map(|provider| state.name(provider.as_ref()))
                .unwrap_or_else(|_| id.to_owned());
            if let Some(map) = p.as_object_mut() {
                map.insert("name".into(), Value::String(name));
            }
        }
    }
    Ok(Json(value))
}
