//! The webhook controls under `/_sandbox/{platform}/…` and the per-platform apps page
//! (`GET /_sandbox/{platform}/apps`), where a user "removes the app" the way they would in
//! the platform's settings.
//!
//! The action routes answer JSON, or, when posted as an HTML form
//! (`application/x-www-form-urlencoded`, as the apps page does), a `303 See Other` back to
//! the apps page (with `?error=<text>` when the action failed).

use crate::pages::page;
use crate::state::Inner;
use crate::util::{html_escape, parse_form, valid_user_name};
use crate::webhooks::{RemoveAppOptions, SignedRequestUserId, WebhookDelivery, WebhookTargets};
use crate::{Error, Platform, SandboxHandle, users};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

type St = State<Arc<Inner>>;

fn handle(inner: &Arc<Inner>) -> SandboxHandle {
    SandboxHandle {
        inner: inner.clone(),
    }
}

pub(crate) fn router() -> Router<Arc<Inner>> {
    Router::new()
        .route("/_sandbox/{platform}/apps", get(apps_page))
        .route(
            "/_sandbox/{platform}/webhooks",
            get(get_targets).put(put_targets),
        )
        .route("/_sandbox/{platform}/webhooks/log", get(log))
        .route("/_sandbox/{platform}/webhooks/forged", post(forged))
        .route("/_sandbox/{platform}/webhooks/replay", post(replay))
        .route("/_sandbox/{platform}/webhooks/verify", post(verify))
        .route("/_sandbox/{platform}/webhooks/event", post(graph_event))
        .route(
            "/_sandbox/{platform}/users/{user}/remove-app",
            post(remove_app),
        )
        .route(
            "/_sandbox/{platform}/users/{user}/request-deletion",
            post(request_deletion),
        )
        .route(
            "/_sandbox/{platform}/users/{user}/reconnect",
            post(reconnect),
        )
}

fn error_json(status: StatusCode, msg: &str) -> Response {
    (status, axum::Json(json!({ "error": msg }))).into_response()
}

fn error_status(e: &Error) -> StatusCode {
    match e {
        Error::NoWebhookTarget { .. } => StatusCode::CONFLICT,
        Error::NoLiveGrant { .. }
        | Error::NothingToReplay(_)
        | Error::WebhooksUnsupported(_)
        | Error::UnknownPlatform(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    }
}

fn platform(s: &str) -> Result<Platform, Response> {
    s.parse::<Platform>()
        .map_err(|_| error_json(StatusCode::NOT_FOUND, &format!("unknown platform {s}")))
}

/// Whether a request was posted by an HTML form.
fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// The form's fields, or the JSON body's top-level string/number fields.
fn fields(headers: &HeaderMap, body: &[u8]) -> Result<BTreeMap<String, String>, Error> {
    if is_form(headers) {
        return Ok(parse_form(body).into_iter().collect());
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(BTreeMap::new());
    }
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| Error::InvalidWebhookTarget(format!("invalid JSON body: {e}")))?;
    let Some(obj) = v.as_object() else {
        return Err(Error::InvalidWebhookTarget(
            "the body must be a JSON object".to_owned(),
        ));
    };
    Ok(obj
        .iter()
        .filter_map(|(k, v)| {
            let s = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((k.clone(), s))
        })
        .collect())
}

/// Answers an action: JSON, or a 303 back to the apps page for a form post.
fn answer(p: Platform, headers: &HeaderMap, result: Result<serde_json::Value, Error>) -> Response {
    if is_form(headers) {
        let mut location = format!("/_sandbox/{p}/apps");
        if let Err(e) = &result {
            location.push_str("?error=");
            location.push_str(
                &url::form_urlencoded::byte_serialize(e.to_string().as_bytes()).collect::<String>(),
            );
        }
        return (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
    }
    match result {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => error_json(error_status(&e), &e.to_string()),
    }
}

fn delivery_json(d: Result<WebhookDelivery, Error>) -> Result<serde_json::Value, Error> {
    d.map(|d| serde_json::to_value(d).unwrap_or_default())
}

/// `GET /_sandbox/{platform}/webhooks`: the targets; `verify_token` is replaced by
/// `verify_token_set`; the OnlyFans gateway adds its signing `secret`.
async fn get_targets(State(inner): St, Path(p): Path<String>) -> Response {
    let p = match platform(&p) {
        Ok(p) => p,
        Err(e) => return e,
    };
    if p == Platform::Reddit {
        let e = Error::WebhooksUnsupported(p);
        return error_json(error_status(&e), &e.to_string());
    }
    let h = handle(&inner);
    let t = h.webhook_targets(p);
    let mut v = json!({
        "platform": p,
        "callback_url": t.callback_url,
    });
    if p == Platform::Instagram {
        v["deauthorize_url"] = json!(t.deauthorize_url);
        v["data_deletion_url"] = json!(t.data_deletion_url);
        v["verify_token_set"] = json!(t.verify_token.is_some());
        v["signed_request_user_id"] = json!(t.signed_request_user_id);
    }
    if p == Platform::OnlyFans {
        v["secret"] = json!(h.onlyfans_webhook_secret());
    }
    axum::Json(v).into_response()
}

/// The `PUT /_sandbox/{platform}/webhooks` body: [`WebhookTargets`] plus, for the OnlyFans
/// gateway, an optional `secret` (`whsec_…`) replacing the generated one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutTargets {
    #[serde(default)]
    deauthorize_url: Option<String>,
    #[serde(default)]
    data_deletion_url: Option<String>,
    #[serde(default, alias = "webhook_url", alias = "url")]
    callback_url: Option<String>,
    #[serde(default)]
    verify_token: Option<String>,
    #[serde(default)]
    signed_request_user_id: SignedRequestUserId,
    #[serde(default)]
    secret: Option<String>,
}

async fn put_targets(State(inner): St, Path(p): Path<String>, body: Bytes) -> Response {
    let p = match platform(&p) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &body
    };
    let req: PutTargets = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return error_json(StatusCode::BAD_REQUEST, &format!("invalid JSON body: {e}"));
        }
    };
    let h = handle(&inner);
    let targets = WebhookTargets {
        deauthorize_url: req.deauthorize_url,
        data_deletion_url: req.data_deletion_url,
        callback_url: req.callback_url,
        verify_token: req.verify_token,
        signed_request_user_id: req.signed_request_user_id,
    };
    let mut result = h.set_webhook_targets(p, targets);
    if let (Ok(()), Some(secret)) = (&result, &req.secret) {
        result = if p == Platform::OnlyFans {
            h.set_onlyfans_webhook_secret(secret)
        } else {
            Err(Error::InvalidWebhookTarget(
                "secret applies to onlyfans only (the others sign with the client secret)"
                    .to_owned(),
            ))
        };
    }
    match result {
        Ok(()) => get_targets(State(inner), Path(p.as_str().to_owned())).await,
        Err(e) => error_json(error_status(&e), &e.to_string()),
    }
}

/// `GET /_sandbox/{platform}/webhooks/log`: the deliveries, oldest first.
async fn log(State(inner): St, Path(p): Path<String>) -> Response {
    match platform(&p) {
        Ok(p) => axum::Json(handle(&inner).webhook_log(p)).into_response(),
        Err(e) => e,
    }
}

async fn forged(
    State(inner): St,
    Path(p): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = match platform(&p) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let result = async {
        let f = fields(&headers, &body)?;
        let user = f
            .get("user")
            .cloned()
            .unwrap_or_else(|| inner.config.default_user.clone());
        if !valid_user_name(&user) {
            return Err(Error::InvalidWebhookTarget(format!("invalid user {user}")));
        }
        delivery_json(handle(&inner).send_forged_webhook(p, &user).await)
    }
    .await;
    answer(p, &headers, result)
}

async fn replay(State(inner): St, Path(p): Path<String>, headers: HeaderMap) -> Response {
    let p = match platform(&p) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let result = delivery_json(handle(&inner).replay_last_webhook(p).await);
    answer(p, &headers, result)
}

fn instagram_only(p: Platform, what: &str) -> Result<(), Error> {
    if p == Platform::Instagram {
        Ok(())
    } else {
        Err(Error::InvalidWebhookTarget(format!(
            "{what} is an instagram control"
        )))
    }
}

async fn verify(State(inner): St, Path(p): Path<String>, headers: HeaderMap) -> Response {
    let p = match platform(&p) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let result = match instagram_only(p, "verify") {
        Ok(()) => delivery_json(handle(&inner).verify_instagram_webhooks().await),
        Err(e) => Err(e),
    };
    answer(p, &headers, result)
}

/// `POST /_sandbox/instagram/webhooks/event`: the raw body is forwarded unchanged, signed.
async fn graph_event(
    State(inner): St,
    Path(p): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = match platform(&p) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let result = match (instagram_only(p, "event"), std::str::from_utf8(&body)) {
        (Err(e), _) => Err(e),
        (Ok(()), Err(_)) => Err(Error::InvalidWebhookTarget(
            "the event body must be UTF-8 JSON".to_owned(),
        )),
        (Ok(()), Ok(text)) => {
            if serde_json::from_str::<serde_json::Value>(text).is_err() {
                Err(Error::InvalidWebhookTarget(
                    "the event body must be JSON".to_owned(),
                ))
            } else {
                delivery_json(handle(&inner).send_instagram_event(text).await)
            }
        }
    };
    answer(p, &headers, result)
}

async fn remove_app(
    State(inner): St,
    Path((p, user)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = match platform(&p) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let result = async {
        let f = fields(&headers, &body)?;
        let reason = match f.get("reason") {
            None => 1,
            Some(r) => r.parse::<u8>().map_err(|_| {
                Error::InvalidWebhookTarget("the TikTok reason must be 0 to 5".to_owned())
            })?,
        };
        let opts = RemoveAppOptions {
            client_id: f.get("client_id").filter(|c| !c.is_empty()).cloned(),
            tiktok_reason: reason,
            data_deletion: false,
        };
        let r = handle(&inner).remove_app_with(p, &user, opts).await?;
        Ok(serde_json::to_value(r).unwrap_or_default())
    }
    .await;
    answer(p, &headers, result)
}

async fn request_deletion(
    State(inner): St,
    Path((p, user)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let p = match platform(&p) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let result = match instagram_only(p, "request-deletion") {
        Ok(()) => handle(&inner)
            .request_data_deletion(&user)
            .await
            .map(|r| serde_json::to_value(r).unwrap_or_default()),
        Err(e) => Err(e),
    };
    answer(p, &headers, result)
}

async fn reconnect(
    State(inner): St,
    Path((p, user)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let p = match platform(&p) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let result = if p == Platform::OnlyFans {
        delivery_json(handle(&inner).onlyfans_reconnect(&user).await)
    } else {
        Err(Error::InvalidWebhookTarget(
            "reconnect is an onlyfans control".to_owned(),
        ))
    };
    answer(p, &headers, result)
}

fn button(p: Platform, path: &str, testid: &str, label: &str, extra: &str) -> String {
    format!(
        r#"<form method="post" action="/_sandbox/{p}/{path}">{extra}<button type="submit" data-testid="{t}">{l}</button></form>"#,
        path = html_escape(path),
        t = html_escape(testid),
        l = html_escape(label),
    )
}

/// One row per sandbox user with grants: (live client ids, any grant).
fn user_rows(inner: &Inner, p: Platform) -> BTreeMap<String, (Vec<String>, usize)> {
    let store = inner.platform(p).lock();
    let mut rows: BTreeMap<String, (Vec<String>, usize)> = BTreeMap::new();
    for g in store.grants.values() {
        let e = rows.entry(g.user.clone()).or_default();
        if !g.revoked {
            e.1 += 1;
            if !e.0.contains(&g.client_id) {
                e.0.push(g.client_id.clone());
            }
        }
    }
    for (clients, _) in rows.values_mut() {
        clients.sort();
    }
    rows
}

/// `GET /_sandbox/{platform}/apps`.
async fn apps_page(State(inner): St, Path(p): Path<String>, RawQuery(q): RawQuery) -> Response {
    let p = match platform(&p) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let h = handle(&inner);
    let title = match p {
        Platform::Instagram => "Instagram",
        Platform::TikTok => "TikTok",
        Platform::Reddit => "Reddit",
        Platform::OnlyFans => "OnlyFans (gateway)",
    };
    let mut body = format!(
        "<style>main{{max-width:60em}}form{{display:inline}}td,th{{text-align:left;padding:.2em .5em;vertical-align:top}}pre{{white-space:pre-wrap;word-break:break-all;background:#eee;padding:.3em;margin:.2em 0}}button{{margin:.1em}}</style>\n<h1>{} — apps with access (sandbox)</h1>\n",
        html_escape(title)
    );
    let flash = parse_form(q.unwrap_or_default().as_bytes())
        .remove("error")
        .unwrap_or_default();
    if !flash.is_empty() {
        body.push_str(&format!(
            r#"<p id="flash" role="alert"><strong>Error:</strong> {}</p>"#,
            html_escape(&flash)
        ));
    }

    // Targets.
    let t = h.webhook_targets(p);
    let show = |v: &Option<String>| match v {
        Some(u) => format!("<code>{}</code>", html_escape(u)),
        None => "<em>not set</em>".to_owned(),
    };
    body.push_str("<h2>Webhook targets</h2><dl id=\"targets\">");
    match p {
        Platform::Instagram => {
            body.push_str(&format!(
                "<dt>Deauthorize callback URL</dt><dd data-testid=\"target-deauthorize\">{}</dd>\
                 <dt>Data deletion request URL</dt><dd data-testid=\"target-data-deletion\">{}</dd>\
                 <dt>Webhooks callback URL</dt><dd data-testid=\"target-callback\">{}</dd>\
                 <dt>signed_request user_id</dt><dd data-testid=\"target-user-id\">{}</dd>\
                 <dt>Signing secret</dt><dd>the client secret of the app</dd>",
                show(&t.deauthorize_url),
                show(&t.data_deletion_url),
                show(&t.callback_url),
                match t.signed_request_user_id {
                    SignedRequestUserId::AppScoped => "app-scoped id (/me id)",
                    SignedRequestUserId::Professional => "professional account id (/me user_id)",
                },
            ));
        }
        Platform::TikTok => body.push_str(&format!(
            "<dt>Callback URL</dt><dd data-testid=\"target-callback\">{}</dd>\
             <dt>Signing secret</dt><dd>the client secret of the app</dd>",
            show(&t.callback_url)
        )),
        Platform::OnlyFans => body.push_str(&format!(
            "<dt>Webhook URL</dt><dd data-testid=\"target-callback\">{}</dd>\
             <dt>Signing secret</dt><dd><code id=\"webhook-secret\">{}</code></dd>",
            show(&t.callback_url),
            html_escape(&h.onlyfans_webhook_secret())
        )),
        Platform::Reddit => body.push_str(
            "<dt>none</dt><dd>Reddit has no deauthorization webhook; removing the app only revokes its tokens.</dd>",
        ),
    }
    body.push_str(&format!(
        "</dl><p>Set them with <code>PUT /_sandbox/{p}/webhooks</code> (JSON, see docs/sandbox.md).</p>"
    ));

    // Grants.
    body.push_str("<h2>Connected accounts</h2><table id=\"grants\"><tr><th>user</th><th>account id</th><th>app (client id)</th><th>status</th><th>actions</th></tr>");
    let rows = user_rows(&inner, p);
    if rows.is_empty() {
        body.push_str("<tr><td colspan=\"5\"><em>no grants yet</em></td></tr>");
    }
    for (user, (clients, live)) in &rows {
        let info = users::user_info(inner.base_url(), p, user);
        let mut ids = format!("<code>{}</code>", html_escape(&info.account_id));
        if p == Platform::Instagram {
            ids.push_str(&format!(
                "<br>app-scoped <code>{}</code>",
                html_escape(&users::instagram_app_scoped_id(user))
            ));
        }
        let status = if *live > 0 { "connected" } else { "removed" };
        let u = html_escape(user);
        let mut actions = String::new();
        if *live > 0 {
            let extra = if p == Platform::TikTok {
                r#"<select name="reason" aria-label="reason"><option value="0">0 unknown</option><option value="1" selected>1 user disconnected</option><option value="2">2 account deleted</option><option value="3">3 age changed</option><option value="4">4 account banned</option><option value="5">5 developer revoked</option></select>"#
            } else {
                ""
            };
            actions.push_str(&button(
                p,
                &format!("users/{user}/remove-app"),
                &format!("remove-{user}"),
                "Remove app",
                extra,
            ));
            if p == Platform::Instagram {
                actions.push_str(&button(
                    p,
                    &format!("users/{user}/request-deletion"),
                    &format!("delete-{user}"),
                    "Remove app and request data deletion",
                    "",
                ));
            }
        }
        if p == Platform::OnlyFans {
            actions.push_str(&button(
                p,
                &format!("users/{user}/reconnect"),
                &format!("reconnect-{user}"),
                "Reconnect",
                "",
            ));
        }
        if p != Platform::Reddit {
            actions.push_str(&button(
                p,
                "webhooks/forged",
                &format!("forged-{user}"),
                "Send forged",
                &format!(r#"<input type="hidden" name="user" value="{u}">"#),
            ));
        }
        body.push_str(&format!(
            r#"<tr data-testid="grant-{u}" data-user="{u}" data-account-id="{aid}" data-status="{status}"><td>{u}</td><td>{ids}</td><td><code>{clients}</code></td><td class="status">{status}</td><td>{actions}</td></tr>"#,
            aid = html_escape(&info.account_id),
            clients = html_escape(&clients.join(", ")),
        ));
    }
    body.push_str("</table>");

    // Global controls.
    if p != Platform::Reddit {
        body.push_str("<p id=\"controls\">");
        body.push_str(&button(p, "webhooks/replay", "replay", "Replay last", ""));
        if p == Platform::Instagram {
            body.push_str(&button(
                p,
                "webhooks/verify",
                "verify",
                "Verify webhooks callback",
                "",
            ));
        }
        body.push_str("</p>");
    }

    // Log, latest first.
    body.push_str("<h2>Deliveries</h2><ol id=\"log\" reversed>");
    let log = h.webhook_log(p);
    if log.is_empty() {
        body.push_str("<li class=\"empty\"><em>nothing sent yet</em></li>");
    }
    for d in log.iter().rev() {
        let status = d
            .status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "error".to_owned());
        let mut notes = String::new();
        if d.forged {
            notes.push_str(" <strong>forged</strong>");
        }
        if let Some(r) = d.replay_of {
            notes.push_str(&format!(" (replay of #{r})"));
        }
        if let Some(ok) = d.challenge_ok {
            notes.push_str(if ok {
                " challenge echoed"
            } else {
                " <strong>challenge not echoed</strong>"
            });
        }
        if let Some(e) = &d.error {
            notes.push_str(&format!(" <span class=\"error\">{}</span>", html_escape(e)));
        }
        let code_attr = d
            .confirmation_code
            .as_ref()
            .map(|c| format!(r#" data-confirmation-code="{}""#, html_escape(c)))
            .unwrap_or_default();
        let code_line = match (&d.confirmation_code, &d.status_url) {
            (None, None) => String::new(),
            (c, u) => format!(
                r#"<div>confirmation code <code class="confirmation-code">{}</code>, status URL <code class="status-url">{}</code></div>"#,
                html_escape(c.as_deref().unwrap_or_default()),
                html_escape(u.as_deref().unwrap_or_default())
            ),
        };
        body.push_str(&format!(
            r#"<li data-testid="delivery-{id}" data-id="{id}" data-event="{ev}" data-status="{status}" data-forged="{forged}"{code_attr}><strong class="event">{ev}</strong>{user} {method} <code class="target">{url}</code> → <span class="status">{status}</span>{notes}{code_line}<pre class="response">{resp}</pre></li>"#,
            id = d.id,
            ev = html_escape(&d.event),
            user = d
                .user
                .as_ref()
                .map(|u| format!(" ({})", html_escape(u)))
                .unwrap_or_default(),
            method = html_escape(&d.method),
            url = html_escape(&d.url),
            forged = d.forged,
            resp = html_escape(&d.response_body),
        ));
    }
    body.push_str("</ol>");
    Html(page(&format!("{title} — apps"), &body)).into_response()
}
