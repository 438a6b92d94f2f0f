//! HTTP control endpoints under `/_sandbox` (the same controls as [`crate::SandboxHandle`]).

use crate::pages::page;
use crate::state::Inner;
use crate::util::html_escape;
use crate::{
    Consent, Failure, Faults, Platform, PlatformHealth, QuotaSettings, SandboxHandle, SeedGrants,
};
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

type St = State<Arc<Inner>>;

fn handle(inner: &Arc<Inner>) -> SandboxHandle {
    SandboxHandle {
        inner: inner.clone(),
    }
}

fn bad(msg: &str) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(json!({ "error": msg }))).into_response()
}

fn platform(s: &str) -> Result<Platform, Response> {
    s.parse::<Platform>().map_err(|_| {
        (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": format!("unknown platform {s}")})),
        )
            .into_response()
    })
}

fn parse_json<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Response> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| bad(&format!("invalid JSON body: {e}")))
}

pub(crate) fn router() -> Router<Arc<Inner>> {
    Router::new()
        .route("/_sandbox", get(index))
        .route("/_sandbox/", get(index))
        .route("/_sandbox/clients", get(clients).post(register))
        .route("/_sandbox/counters", get(all_counters))
        .route("/_sandbox/counters/reset", post(reset_counters))
        .route("/_sandbox/clock/advance", post(advance))
        .route("/_sandbox/consent", put(consent))
        .route(
            "/_sandbox/faults",
            put(set_faults_all).delete(clear_faults_all),
        )
        .route("/_sandbox/fail-next", post(fail_next_all))
        .route("/_sandbox/avatar/{platform}/{file}", get(avatar))
        .route("/_sandbox/{platform}/counters", get(counters))
        .route("/_sandbox/{platform}/lifetime", post(lifetime))
        .route(
            "/_sandbox/{platform}/faults",
            get(get_faults).put(set_faults).delete(clear_faults),
        )
        .route("/_sandbox/{platform}/fail-next", post(fail_next))
        .route(
            "/_sandbox/{platform}/quota",
            get(get_quota).put(put_quota).post(put_quota),
        )
        .route("/_sandbox/{platform}/quota/exhaust", post(exhaust_quota))
        .route("/_sandbox/{platform}/quota/reset", post(reset_quota))
        .route("/_sandbox/{platform}/health/{state}", post(set_health))
        .route("/_sandbox/{platform}/grants/seed", post(seed_grants))
        .route("/_sandbox/{platform}/grants/summary", get(grant_summary))
        .route("/_sandbox/{platform}/users/{user}", get(user))
        .route("/_sandbox/{platform}/users/{user}/expire", post(expire))
        .route("/_sandbox/{platform}/users/{user}/revoke", post(revoke))
}

async fn index(State(inner): St, RawQuery(query): RawQuery) -> Html<String> {
    let h = handle(&inner);
    let flash = crate::util::parse_form(query.unwrap_or_default().as_bytes())
        .get("error")
        .map(|e| format!(r#"<p id="flash" role="alert">{}</p>"#, html_escape(e)))
        .unwrap_or_default();
    let mut rows = String::new();
    for c in h.clients() {
        rows.push_str(&format!(
            "<tr><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            c.platform,
            html_escape(&c.client_id),
            html_escape(&c.client_secret),
            html_escape(&c.redirect_uri)
        ));
    }
    let urls = h.urls();
    let body = format!(
        r#"<h1>integrations-sandbox</h1>
<p>Base URL <code>{base}</code>. Point each provider's base URLs at:</p>
<ul><li>Instagram: www <code>{iw}</code>, api <code>{ia}</code>, graph <code>{ig}</code></li>
<li>TikTok: www <code>{tw}</code>, api <code>{to}</code></li>
<li>Reddit: www <code>{rw}</code>, oauth <code>{ro}</code></li>
<li>OnlyFans gateway: <code>{of}</code></li></ul>
<h2>Clients</h2><table><tr><th>platform</th><th>client id</th><th>secret / API key</th><th>redirect URI</th></tr>{rows}</table>
<h2>Controls</h2><p>JSON endpoints: <code>GET /_sandbox/counters</code>, <code>POST /_sandbox/{{platform}}/users/{{user}}/expire</code>,
<code>POST /_sandbox/{{platform}}/users/{{user}}/revoke</code>, <code>PUT /_sandbox/{{platform}}/faults</code>,
<code>POST /_sandbox/{{platform}}/fail-next</code>, <code>POST /_sandbox/clock/advance</code>, <code>PUT /_sandbox/{{platform}}/webhooks</code>,
<code>GET|PUT /_sandbox/{{platform}}/quota</code>, <code>POST /_sandbox/{{platform}}/quota/exhaust</code>, <code>POST /_sandbox/{{platform}}/quota/reset</code>,
<code>POST /_sandbox/{{platform}}/health/{{operational|degraded|throttled|failing}}</code>,
<code>POST /_sandbox/{{platform}}/grants/seed</code>, <code>GET /_sandbox/{{platform}}/grants/summary</code> — see docs/sandbox.md.</p>
{flash}{health}
<h2>Apps pages (remove the app, platform webhooks)</h2>
<ul id="apps"><li><a href="/_sandbox/instagram/apps">Instagram</a></li><li><a href="/_sandbox/tiktok/apps">TikTok</a></li>
<li><a href="/_sandbox/reddit/apps">Reddit</a></li><li><a href="/_sandbox/onlyfans/apps">OnlyFans gateway</a></li></ul>"#,
        base = html_escape(&urls.base),
        iw = html_escape(&urls.instagram_www),
        ia = html_escape(&urls.instagram_api),
        ig = html_escape(&urls.instagram_graph),
        tw = html_escape(&urls.tiktok_www),
        to = html_escape(&urls.tiktok_open),
        rw = html_escape(&urls.reddit_www),
        ro = html_escape(&urls.reddit_oauth),
        of = html_escape(&urls.onlyfans_gateway),
        health = health_section(&h),
    );
    Html(page("Sandbox", &body))
}

async fn clients(State(inner): St) -> Response {
    axum::Json(handle(&inner).clients()).into_response()
}

#[derive(Deserialize)]
struct RegisterReq {
    platform: Platform,
    redirect_uri: String,
}

async fn register(State(inner): St, body: axum::body::Bytes) -> Response {
    let req: RegisterReq = match parse_json(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    match handle(&inner).register_client(req.platform, &req.redirect_uri) {
        Ok(c) => (StatusCode::CREATED, axum::Json(c)).into_response(),
        Err(e) => bad(&e.to_string()),
    }
}

async fn all_counters(State(inner): St) -> Response {
    let h = handle(&inner);
    let all: serde_json::Map<String, serde_json::Value> = Platform::ALL
        .iter()
        .map(|p| {
            (
                p.as_str().to_owned(),
                serde_json::to_value(h.counters(*p)).unwrap_or_default(),
            )
        })
        .collect();
    axum::Json(all).into_response()
}

async fn counters(State(inner): St, Path(p): Path<String>) -> Response {
    match platform(&p) {
        Ok(p) => axum::Json(handle(&inner).counters(p)).into_response(),
        Err(e) => e,
    }
}

async fn reset_counters(State(inner): St) -> Response {
    handle(&inner).reset_counters();
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct AdvanceReq {
    secs: u64,
}

async fn advance(State(inner): St, body: axum::body::Bytes) -> Response {
    let req: AdvanceReq = match parse_json(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let h = handle(&inner);
    h.advance_clock(Duration::from_secs(req.secs));
    axum::Json(json!({"now": h.now().to_rfc3339()})).into_response()
}

#[derive(Deserialize)]
struct ConsentReq {
    auto: Option<Consent>,
}

async fn consent(State(inner): St, body: axum::body::Bytes) -> Response {
    let req: ConsentReq = match parse_json(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    handle(&inner).set_auto_consent(req.auto);
    StatusCode::NO_CONTENT.into_response()
}

async fn set_faults_all(State(inner): St, body: axum::body::Bytes) -> Response {
    let f: Faults = match parse_json(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    handle(&inner).set_faults(None, f);
    StatusCode::NO_CONTENT.into_response()
}

async fn clear_faults_all(State(inner): St) -> Response {
    handle(&inner).clear_faults(None);
    StatusCode::NO_CONTENT.into_response()
}

async fn get_faults(State(inner): St, Path(p): Path<String>) -> Response {
    match platform(&p) {
        Ok(p) => axum::Json(handle(&inner).faults(p)).into_response(),
        Err(e) => e,
    }
}

async fn set_faults(State(inner): St, Path(p): Path<String>, body: axum::body::Bytes) -> Response {
    let p = match platform(&p) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let f: Faults = match parse_json(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    handle(&inner).set_faults(Some(p), f);
    StatusCode::NO_CONTENT.into_response()
}

async fn clear_faults(State(inner): St, Path(p): Path<String>) -> Response {
    match platform(&p) {
        Ok(p) => {
            handle(&inner).clear_faults(Some(p));
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => e,
    }
}

#[derive(Deserialize)]
struct FailNextReq {
    #[serde(default = "one")]
    count: usize,
    #[serde(flatten)]
    failure: Failure,
}

fn one() -> usize {
    1
}

async fn fail_next_all(State(inner): St, body: axum::body::Bytes) -> Response {
    let req: FailNextReq = match parse_json(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    handle(&inner).fail_next(None, req.count, req.failure);
    StatusCode::NO_CONTENT.into_response()
}

async fn fail_next(State(inner): St, Path(p): Path<String>, body: axum::body::Bytes) -> Response {
    let p = match platform(&p) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let req: FailNextReq = match parse_json(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    handle(&inner).fail_next(Some(p), req.count, req.failure);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct LifetimeReq {
    access_token_secs: Option<u64>,
    /// `0` = never expires.
    refresh_token_secs: Option<u64>,
}

async fn lifetime(State(inner): St, Path(p): Path<String>, body: axum::body::Bytes) -> Response {
    let p = match platform(&p) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let req: LifetimeReq = match parse_json(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let h = handle(&inner);
    if let Some(s) = req.access_token_secs {
        h.set_token_lifetime(p, Duration::from_secs(s));
    }
    if let Some(s) = req.refresh_token_secs {
        h.set_refresh_token_lifetime(p, (s > 0).then(|| Duration::from_secs(s)));
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /_sandbox/{platform}/grants/seed` with a [`SeedGrants`] body: 201 and the
/// [`crate::SeededGrants`], or 400 with the reason.
async fn seed_grants(State(inner): St, Path(p): Path<String>, body: axum::body::Bytes) -> Response {
    let p = match platform(&p) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let req: SeedGrants = match parse_json(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    // Seeding a million grants takes seconds of CPU: off the async workers.
    let h = handle(&inner);
    match tokio::task::spawn_blocking(move || h.seed_grants(p, &req)).await {
        Ok(Ok(seeded)) => (StatusCode::CREATED, axum::Json(seeded)).into_response(),
        Ok(Err(e)) => bad(&e.to_string()),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"error": "seeding stopped"})),
        )
            .into_response(),
    }
}

/// `GET /_sandbox/{platform}/grants/summary?user_prefix=P`: the [`crate::GrantSummary`] of
/// the users starting with `P` (every user when it is missing).
async fn grant_summary(
    State(inner): St,
    Path(p): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let p = match platform(&p) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let q = crate::util::parse_form(query.unwrap_or_default().as_bytes());
    let prefix = q.get("user_prefix").cloned().unwrap_or_default();
    let h = handle(&inner);
    match tokio::task::spawn_blocking(move || h.grant_summary(p, &prefix)).await {
        Ok(summary) => axum::Json(summary).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"error": "counting stopped"})),
        )
            .into_response(),
    }
}

async fn user(State(inner): St, Path((p, user)): Path<(String, String)>) -> Response {
    let p = match platform(&p) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let h = handle(&inner);
    let mut v = serde_json::to_value(h.user_info(p, &user)).unwrap_or_default();
    v["refreshes"] = json!(h.refresh_count(p, &user));
    axum::Json(v).into_response()
}

async fn expire(State(inner): St, Path((p, user)): Path<(String, String)>) -> Response {
    match platform(&p) {
        Ok(p) => {
            axum::Json(json!({"expired": handle(&inner).expire_tokens(p, &user)})).into_response()
        }
        Err(e) => e,
    }
}

async fn revoke(State(inner): St, Path((p, user)): Path<(String, String)>) -> Response {
    match platform(&p) {
        Ok(p) => {
            axum::Json(json!({"revoked": handle(&inner).revoke_grants(p, &user)})).into_response()
        }
        Err(e) => e,
    }
}

async fn avatar(Path((p, file)): Path<(String, String)>) -> Response {
    let p = match platform(&p) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let user = file.strip_suffix(".svg").unwrap_or(&file);
    if !crate::util::valid_user_name(user) {
        return StatusCode::NOT_FOUND.into_response();
    }
    (
        [(header::CONTENT_TYPE, "image/svg+xml")],
        crate::users::avatar_svg(p, user),
    )
        .into_response()
}

/// Whether a request was posted by an HTML form (the `/_sandbox` page's buttons).
fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// A failed quota or health action: status and message.
type ActionError = (StatusCode, String);

fn action_platform(s: &str) -> Result<Platform, ActionError> {
    s.parse::<Platform>()
        .map_err(|_| (StatusCode::NOT_FOUND, format!("unknown platform {s}")))
}

/// Answers a quota or health action: JSON, or for a form post a `303 See Other` back to the
/// `/_sandbox` page (with `?error=<text>` on failure).
fn answer_action(headers: &HeaderMap, result: Result<serde_json::Value, ActionError>) -> Response {
    if is_form(headers) {
        let location = match &result {
            Ok(_) => "/_sandbox#health".to_owned(),
            Err((_, msg)) => format!(
                "/_sandbox?error={}#health",
                url::form_urlencoded::byte_serialize(msg.as_bytes()).collect::<String>()
            ),
        };
        return (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
    }
    match result {
        Ok(v) => axum::Json(v).into_response(),
        Err((status, msg)) => (status, axum::Json(json!({ "error": msg }))).into_response(),
    }
}

fn quota_json(q: &crate::QuotaState) -> serde_json::Value {
    serde_json::to_value(q).unwrap_or_default()
}

async fn get_quota(State(inner): St, Path(p): Path<String>) -> Response {
    match platform(&p) {
        Ok(p) => axum::Json(handle(&inner).quota(p)).into_response(),
        Err(e) => e,
    }
}

/// The `PUT /_sandbox/{platform}/quota` body (JSON, or the page's form): every field is
/// optional; a missing one keeps its current value (`used` capped at the new limit).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct QuotaReq {
    limit: Option<u64>,
    window_secs: Option<u64>,
    used: Option<u64>,
}

fn quota_req(headers: &HeaderMap, body: &[u8]) -> Result<QuotaReq, ActionError> {
    if !is_form(headers) {
        let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            body
        };
        return serde_json::from_slice(body)
            .map_err(|e| (StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")));
    }
    let form = crate::util::parse_form(body);
    let num = |k: &str| -> Result<Option<u64>, ActionError> {
        match form.get(k).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v.parse::<u64>().map(Some).map_err(|_| {
                (
                    StatusCode::BAD_REQUEST,
                    format!("{k} must be a whole number"),
                )
            }),
        }
    };
    Ok(QuotaReq {
        limit: num("limit")?,
        window_secs: num("window_secs")?,
        used: num("used")?,
    })
}

async fn put_quota(
    State(inner): St,
    Path(p): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let result = (|| {
        let p = action_platform(&p)?;
        let req = quota_req(&headers, &body)?;
        let h = handle(&inner);
        let cur = h.quota(p);
        let limit = req.limit.unwrap_or(cur.limit);
        let settings = QuotaSettings {
            limit,
            window: Duration::from_secs(req.window_secs.unwrap_or(cur.window_secs)),
            used: req.used.unwrap_or(cur.used.min(limit)),
        };
        h.set_quota(p, settings)
            .map(|q| quota_json(&q))
            .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))
    })();
    answer_action(&headers, result)
}

async fn exhaust_quota(State(inner): St, Path(p): Path<String>, headers: HeaderMap) -> Response {
    let result = action_platform(&p).map(|p| quota_json(&handle(&inner).exhaust_quota(p)));
    answer_action(&headers, result)
}

async fn reset_quota(State(inner): St, Path(p): Path<String>, headers: HeaderMap) -> Response {
    let result = action_platform(&p).map(|p| quota_json(&handle(&inner).reset_quota(p)));
    answer_action(&headers, result)
}

async fn set_health(
    State(inner): St,
    Path((p, state)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let result = (|| {
        let p = action_platform(&p)?;
        let health = state.parse::<PlatformHealth>().map_err(|_| {
            (
                StatusCode::NOT_FOUND,
                format!(
                    "unknown health state {state}: operational, degraded, throttled or failing"
                ),
            )
        })?;
        let h = handle(&inner);
        let quota = h.set_health(p, health);
        Ok(json!({
            "platform": p,
            "health": health,
            "faults": h.faults(p),
            "quota": quota,
        }))
    })();
    answer_action(&headers, result)
}

/// The "Health and quotas" section of the `/_sandbox` page: per platform, the quota and
/// standing faults, and form buttons for the health presets and the quota controls.
fn health_section(h: &SandboxHandle) -> String {
    let mut rows = String::new();
    for p in Platform::ALL {
        let q = h.quota(p);
        let f = h.faults(p);
        let latency_ms = f.latency.as_millis();
        let mut buttons = String::new();
        for health in PlatformHealth::ALL {
            buttons.push_str(&format!(
                r#"<form method="post" action="/_sandbox/{p}/health/{health}"><button type="submit" data-testid="health-{p}-{health}">{label}</button></form>"#,
                label = match health {
                    PlatformHealth::Operational => "Operational",
                    PlatformHealth::Degraded => "Degraded",
                    PlatformHealth::Throttled => "Throttled",
                    PlatformHealth::Failing => "Failing",
                },
            ));
        }
        rows.push_str(&format!(
            r#"<tr data-testid="health-{p}" data-platform="{p}" data-used="{used}" data-limit="{limit}" data-remaining="{remaining}" data-window-secs="{window}" data-reset-at="{reset_at}" data-exhausted="{exhausted}" data-server-error-rate="{rate}" data-latency-ms="{latency_ms}">
<th scope="row">{p}</th>
<td><span class="quota">{used} / {limit}</span> per {window} s, resets in {reset_in} s</td>
<td>5xx rate {rate}, latency {latency_ms} ms</td>
<td>{buttons}
<form method="post" action="/_sandbox/{p}/quota/exhaust"><button type="submit" data-testid="quota-{p}-exhaust">Exhaust quota</button></form>
<form method="post" action="/_sandbox/{p}/quota/reset"><button type="submit" data-testid="quota-{p}-reset">Reset quota</button></form>
<form method="post" action="/_sandbox/{p}/quota" data-testid="quota-{p}-form">
<label>limit <input type="number" min="0" name="limit" value="{limit}" data-testid="quota-{p}-limit"></label>
<label>window (s) <input type="number" min="1" name="window_secs" value="{window}" data-testid="quota-{p}-window"></label>
<label>used <input type="number" min="0" name="used" value="{used}" data-testid="quota-{p}-used"></label>
<button type="submit" data-testid="quota-{p}-set">Set quota</button></form></td></tr>"#,
            used = q.used,
            limit = q.limit,
            remaining = q.remaining,
            window = q.window_secs,
            reset_at = q.reset_at,
            reset_in = q.reset_in_secs,
            exhausted = q.exhausted,
            rate = f.server_error_rate,
        ));
    }
    format!(
        r#"<h2 id="health">Health and quotas</h2>
<p>Operational: no faults, quota usage reset. Degraded: 30% of API calls answer 5xx, each 800 ms slower. Throttled: quota exhausted. Failing: every API call answers 5xx.</p>
<table id="health-table"><tr><th scope="col">platform</th><th scope="col">quota</th><th scope="col">faults</th><th scope="col">controls</th></tr>{rows}</table>"#
    )
}
