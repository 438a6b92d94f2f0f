//! `GET /health`: every platform's health for the people who run the app (see
//! [`integrations_core::health`]). Signed-in users only; it shows no account of anyone
//! (counts, error codes and messages, never a token).

use crate::api::{ApiError, ApiState};
use crate::auth::CurrentUser;
use axum::Json;
use axum::extract::State;
use serde_json::Value;

/// The answer: [`HealthOverview`](integrations_core::HealthOverview) with each platform's
/// display name added as `name`.
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
