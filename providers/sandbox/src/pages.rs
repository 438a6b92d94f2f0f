//! Authorize / consent pages shared by Instagram, TikTok and Reddit, and the OnlyFans
//! gateway's hosted link page.

use crate::state::{Code, Inner, TokenKind};
use crate::util::{html_escape, parse_pairs, random_token, valid_user_name};
use crate::{Consent, Platform};
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use std::sync::Arc;

/// The development-only banner shown on every HTML page.
pub(crate) const BANNER: &str = "integrations-sandbox — development only. This is NOT the real platform; nothing you enter here leaves this machine.";

/// A complete HTML page with the sandbox banner.
pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{t} · integrations-sandbox</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font-family:system-ui,sans-serif;margin:0;background:#f6f6f6;color:#222}}
.banner{{background:#b00020;color:#fff;padding:.6em 1em;font-weight:600;text-align:center}}
main{{max-width:34em;margin:2em auto;background:#fff;padding:1.5em 2em;border-radius:8px;box-shadow:0 1px 4px #0002}}
button{{font-size:1em;padding:.5em 1.4em;margin-right:.6em;border-radius:4px;border:1px solid #888;cursor:pointer}}
button.allow{{background:#1a7f37;color:#fff;border-color:#1a7f37}}
code{{background:#eee;padding:0 .3em;border-radius:3px}}
input[type=text]{{font-size:1em;padding:.3em}}
</style></head>
<body><div class="banner" role="alert">⚠ {banner}</div>
<main>{body}</main></body></html>"#,
        t = html_escape(title),
        banner = html_escape(BANNER),
    )
}

/// An error page with no redirect (what Reddit/Meta/TikTok show for a bad client or redirect URI).
pub(crate) fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    (
        status,
        Html(page(
            title,
            &format!(
                "<h1>{}</h1><p>{}</p>",
                html_escape(title),
                html_escape(message)
            ),
        )),
    )
        .into_response()
}

fn redirect(location: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location.to_owned())]).into_response()
}

/// A validated authorize request.
#[derive(Debug, Clone)]
struct AuthorizeReq {
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
    scopes: Vec<String>,
    challenge: Option<String>,
    permanent: bool,
}

/// Instagram Login scopes: the four `instagram_business_*` values of the Business Login guide
/// (<https://developers.facebook.com/docs/instagram-platform/instagram-api-with-instagram-login/business-login>;
/// the old `business_*` values were deprecated on 2025-01-27) plus
/// `instagram_business_manage_insights` [S].
const IG_SCOPES: &[&str] = &[
    "instagram_business_basic",
    "instagram_business_content_publish",
    "instagram_business_manage_messages",
    "instagram_business_manage_comments",
    "instagram_business_manage_insights",
];
/// TikTok scopes used by Login Kit / Display API / Content Posting
/// (<https://developers.tiktok.com/doc/tiktok-api-scopes>) [S: subset].
const TIKTOK_SCOPES: &[&str] = &[
    "user.info.basic",
    "user.info.profile",
    "user.info.stats",
    "video.list",
    "video.publish",
    "video.upload",
];
/// Reddit scopes (<https://www.reddit.com/api/v1/scopes>, listed in
/// reddit-archive/reddit `r2/r2/models/token.py` `OAuth2Scope.scope_info`), plus `*`.
const REDDIT_SCOPES: &[&str] = &[
    "*",
    "account",
    "creddits",
    "edit",
    "flair",
    "history",
    "identity",
    "livemanage",
    "modconfig",
    "modcontributors",
    "modflair",
    "modlog",
    "modmail",
    "modothers",
    "modposts",
    "modself",
    "modtraffic",
    "modwiki",
    "mysubreddits",
    "privatemessages",
    "read",
    "report",
    "save",
    "structuredstyles",
    "submit",
    "subscribe",
    "vote",
    "wikiedit",
    "wikiread",
];

fn get<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Validates an authorize request the way the platform does; `Err` is an error page.
///
/// - Instagram (<https://developers.facebook.com/documentation/instagram-platform/reference/oauth-authorize>):
///   `client_id`, `redirect_uri` (exact match), `response_type=code`, `scope` (comma- or
///   space-separated), optional `state`. That a bad client/redirect/scope shows a page instead
///   of redirecting is RFC 6749 §4.1.2.1 behaviour, not documented by Meta [U].
/// - TikTok (<https://developers.tiktok.com/doc/login-kit-web>): `client_key` (not
///   `client_id`), comma-separated `scope`, `response_type=code`, registered `redirect_uri`,
///   `state`, optional `code_challenge` + `code_challenge_method=S256`
///   (<https://developers.tiktok.com/doc/login-kit-desktop>; arctic `src/providers/tiktok.ts`).
/// - Reddit (reddit-archive/reddit `r2/r2/controllers/oauth2.py` `GET_authorize`):
///   `client_id`, exact `redirect_uri`, `response_type`, `scope`, `state` (`VRequired`),
///   `duration=temporary|permanent` (default temporary); "All errors will show a 400 error
///   page". The implicit flow (`response_type=token`) is not emulated.
fn validate(inner: &Inner, p: Platform, q: &[(String, String)]) -> Result<AuthorizeReq, Response> {
    let bad = |msg: &str| error_page(StatusCode::BAD_REQUEST, "Invalid request", msg);
    let id_param = if p == Platform::TikTok {
        "client_key"
    } else {
        "client_id"
    };
    let client_id = get(q, id_param).unwrap_or_default();
    let Some(client) = inner.client(p, client_id) else {
        return Err(bad(&format!(
            "Invalid {id_param}: the app is not registered."
        )));
    };
    let redirect_uri = get(q, "redirect_uri").unwrap_or_default();
    if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
        return Err(bad(
            "Invalid redirect_uri parameter: it does not match a redirect URI registered for this app.",
        ));
    }
    if get(q, "response_type") != Some("code") {
        return Err(bad(
            "Invalid response_type: the sandbox supports the authorization code flow (response_type=code) only.",
        ));
    }
    let scope = get(q, "scope").unwrap_or_default();
    let seps: &[char] = match p {
        Platform::TikTok => &[','],
        _ => &[',', ' '],
    };
    let scopes: Vec<String> = scope
        .split(seps)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if scopes.is_empty() {
        return Err(bad(
            "Invalid scope: the scope parameter is missing or empty.",
        ));
    }
    let known = match p {
        Platform::Instagram => IG_SCOPES,
        Platform::TikTok => TIKTOK_SCOPES,
        _ => REDDIT_SCOPES,
    };
    if let Some(s) = scopes.iter().find(|s| !known.contains(&s.as_str())) {
        return Err(bad(&format!("Invalid scope: {s}")));
    }
    let state = get(q, "state").map(str::to_owned);
    let mut permanent = false;
    let mut challenge = None;
    match p {
        Platform::Reddit => {
            if state.as_deref().unwrap_or_default().is_empty() {
                return Err(bad("Missing state: the state parameter is required."));
            }
            match get(q, "duration").unwrap_or("temporary") {
                "temporary" => {}
                "permanent" => permanent = true,
                _ => return Err(bad("Invalid duration: use temporary or permanent.")),
            }
        }
        Platform::TikTok => {
            if let Some(c) = get(q, "code_challenge") {
                if get(q, "code_challenge_method").unwrap_or("S256") != "S256" {
                    return Err(bad(
                        "Invalid code_challenge_method: only S256 is supported.",
                    ));
                }
                challenge = Some(c.to_owned());
            }
        }
        _ => {}
    }
    Ok(AuthorizeReq {
        client_id: client.client_id,
        redirect_uri: redirect_uri.to_owned(),
        state,
        scopes,
        challenge,
        permanent,
    })
}

fn platform_title(p: Platform) -> &'static str {
    match p {
        Platform::Instagram => "Instagram",
        Platform::TikTok => "TikTok",
        Platform::Reddit => "Reddit",
        Platform::OnlyFans => "OnlyFans (gateway)",
    }
}

fn consent_from(v: Option<&str>) -> Option<Consent> {
    match v {
        Some("allow") => Some(Consent::Allow),
        Some("deny") => Some(Consent::Deny),
        _ => None,
    }
}

/// Builds the redirect back to the client for a decision.
///
/// - Instagram: `?code=...&state=...#_` ("we #_ append to the end of the redirect URI",
///   <https://developers.facebook.com/documentation/instagram-platform/reference/oauth-authorize>).
///   Deny: `error=access_denied&error_reason=user_denied&error_description=...&state=...`
///   [S: the Facebook/Instagram dialog's historical parameters; Meta's current pages do not
///   show the denial redirect]. The description is "Permissions error", as seen from the
///   current Business Login dialog; older docs show "The user denied your request.".
/// - TikTok: `?code=...&scopes=<granted, comma-separated>&state=...`; deny
///   `?error=access_denied&error_description=...&state=...`
///   (callback parameters of <https://developers.tiktok.com/doc/login-kit-web>; not
///   re-read in full, confirmed by third-party callback handlers) [S].
/// - Reddit: `?code=...&state=...`; deny `?error=access_denied&state=...`
///   (reddit-archive/reddit `r2/r2/controllers/oauth2.py` `POST_authorize` /
///   `_error_response`).
fn decide(
    inner: &Inner,
    p: Platform,
    req: &AuthorizeReq,
    user: &str,
    consent: Consent,
) -> Response {
    let Ok(mut url) = url::Url::parse(&req.redirect_uri) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "The redirect URI is not an absolute URL.",
        );
    };
    {
        let mut qp = url.query_pairs_mut();
        match consent {
            Consent::Allow => {
                // Code looks: Instagram `AQ...` (reference page samples), others opaque.
                let code = match p {
                    Platform::Instagram => random_token("AQ", 48),
                    Platform::Reddit => random_token("", 22),
                    _ => random_token("", 48),
                };
                let now = inner.now_ms();
                inner.platform(p).lock().insert_code(
                    code.clone(),
                    Code {
                        client_id: req.client_id.clone(),
                        redirect_uri: req.redirect_uri.clone(),
                        user: user.to_owned(),
                        scopes: req.scopes.clone(),
                        challenge: req.challenge.clone(),
                        expires_at: now.saturating_add(inner.code_ttl()),
                        used: false,
                        permanent: req.permanent,
                        state: None,
                    },
                    now,
                );
                if p == Platform::Reddit {
                    if let Some(s) = &req.state {
                        qp.append_pair("state", s);
                    }
                    qp.append_pair("code", &code);
                } else {
                    qp.append_pair("code", &code);
                    if p == Platform::TikTok {
                        qp.append_pair("scopes", &req.scopes.join(","));
                    }
                    if let Some(s) = &req.state {
                        qp.append_pair("state", s);
                    }
                }
            }
            Consent::Deny => {
                qp.append_pair("error", "access_denied");
                match p {
                    Platform::Instagram => {
                        qp.append_pair("error_reason", "user_denied");
                        qp.append_pair("error_description", "Permissions error");
                    }
                    Platform::TikTok => {
                        qp.append_pair(
                            "error_description",
                            "The user denied the authorization request.",
                        );
                    }
                    _ => {}
                }
                if let Some(s) = &req.state {
                    qp.append_pair("state", s);
                }
            }
        }
    }
    if p == Platform::Instagram {
        url.set_fragment(Some("_"));
    }
    redirect(url.as_str())
}

fn consent_page(
    p: Platform,
    action: &str,
    app: &str,
    scopes: &[String],
    user: &str,
    hidden: &[(String, String)],
) -> Response {
    let mut fields = String::new();
    for (k, v) in hidden {
        if k.starts_with("sandbox_") {
            continue;
        }
        fields.push_str(&format!(
            r#"<input type="hidden" name="{}" value="{}">"#,
            html_escape(k),
            html_escape(v)
        ));
    }
    let scope_list: String = scopes
        .iter()
        .map(|s| format!("<li><code>{}</code></li>", html_escape(s)))
        .collect();
    let body = format!(
        r#"<h1>{title} (sandbox)</h1>
<p>The app <code>{app}</code> asks to access your {title} account.</p>
{scope_block}
<form method="post" action="{action}">{fields}
<p><label>Sign in as sandbox user: <input type="text" name="sandbox_user" value="{user}" pattern="[A-Za-z0-9_.\-]{{1,30}}"></label></p>
<p><button class="allow" type="submit" name="sandbox_decision" value="allow">Allow</button>
<button type="submit" name="sandbox_decision" value="deny">Deny</button></p>
</form>"#,
        title = platform_title(p),
        app = html_escape(app),
        scope_block = if scopes.is_empty() {
            String::new()
        } else {
            format!("<p>Requested permissions:</p><ul>{scope_list}</ul>")
        },
        action = html_escape(action),
        user = html_escape(user),
    );
    Html(page(&format!("{} — authorize", platform_title(p)), &body)).into_response()
}

fn pick_user(inner: &Inner, v: Option<&str>) -> Result<String, Response> {
    let user = v
        .filter(|u| !u.is_empty())
        .unwrap_or(&inner.config.default_user);
    if valid_user_name(user) {
        Ok(user.to_owned())
    } else {
        Err(error_page(
            StatusCode::BAD_REQUEST,
            "Invalid sandbox user",
            "sandbox_user must be 1–30 characters of A–Z, a–z, 0–9, '_', '.', '-'.",
        ))
    }
}

/// `GET` authorize for Instagram, TikTok and Reddit.
pub(crate) fn authorize_get(
    inner: &Inner,
    p: Platform,
    path: &str,
    query: Option<&str>,
) -> Response {
    let pairs = parse_pairs(query.unwrap_or_default().as_bytes());
    let req = match validate(inner, p, &pairs) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let user = match pick_user(inner, get(&pairs, "sandbox_user")) {
        Ok(u) => u,
        Err(e) => return e,
    };
    let auto = consent_from(get(&pairs, "sandbox_auto")).or(inner.auto_consent());
    match auto {
        Some(c) => decide(inner, p, &req, &user, c),
        None => consent_page(p, path, &req.client_id, &req.scopes, &user, &pairs),
    }
}

/// `POST` from the consent form.
pub(crate) fn authorize_post(inner: &Inner, p: Platform, body: &[u8]) -> Response {
    let pairs = parse_pairs(body);
    let req = match validate(inner, p, &pairs) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let user = match pick_user(inner, get(&pairs, "sandbox_user")) {
        Ok(u) => u,
        Err(e) => return e,
    };
    match consent_from(get(&pairs, "sandbox_decision")) {
        Some(c) => decide(inner, p, &req, &user, c),
        None => error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "sandbox_decision must be allow or deny.",
        ),
    }
}

/// `GET /onlyfans/gateway/link/{session}`: the hosted link page.
pub(crate) async fn link_get(
    State(inner): State<Arc<Inner>>,
    Path(session): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = parse_pairs(query.unwrap_or_default().as_bytes());
    let user = match pick_user(&inner, get(&pairs, "sandbox_user")) {
        Ok(u) => u,
        Err(e) => return e,
    };
    if let Err(e) = check_link(&inner, &session) {
        return e;
    }
    // `sandbox_link_error=<code>` makes the link fail the way OFAuth reports a failure.
    if let Some(code) = get(&pairs, "sandbox_link_error") {
        return link_finish(&inner, &session, &user, LinkEnd::Error(code));
    }
    let auto = consent_from(get(&pairs, "sandbox_auto")).or(inner.auto_consent());
    match auto {
        Some(c) => link_decide(&inner, &session, &user, c),
        None => {
            let action = format!("/onlyfans/gateway/link/{session}");
            consent_page(Platform::OnlyFans, &action, "gateway link", &[], &user, &[])
        }
    }
}

/// `POST /onlyfans/gateway/link/{session}` from the link page's form.
pub(crate) async fn link_post(
    State(inner): State<Arc<Inner>>,
    Path(session): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let pairs = parse_pairs(&body);
    let user = match pick_user(&inner, get(&pairs, "sandbox_user")) {
        Ok(u) => u,
        Err(e) => return e,
    };
    match consent_from(get(&pairs, "sandbox_decision")) {
        Some(c) => link_decide(&inner, &session, &user, c),
        None => error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "sandbox_decision must be allow or deny.",
        ),
    }
}

fn check_link(inner: &Inner, session: &str) -> Result<(), Response> {
    let now = inner.now_ms();
    let store = inner.platform(Platform::OnlyFans).lock();
    match store.codes.get(session) {
        None => Err(error_page(
            StatusCode::NOT_FOUND,
            "Link not found",
            "This link session does not exist.",
        )),
        Some(c) if c.used => Err(error_page(
            StatusCode::GONE,
            "Link already used",
            "This link session has already been completed. Start a new one.",
        )),
        Some(c) if c.expires_at <= now => Err(error_page(
            StatusCode::GONE,
            "Link expired",
            "This link session has expired. Start a new one.",
        )),
        Some(_) => Ok(()),
    }
}

fn link_decide(inner: &Inner, session: &str, user: &str, consent: Consent) -> Response {
    let end = match consent {
        Consent::Allow => LinkEnd::Success,
        Consent::Deny => LinkEnd::Cancelled,
    };
    link_finish(inner, session, user, end)
}

/// How a link session ends.
enum LinkEnd<'a> {
    Success,
    Cancelled,
    Error(&'a str),
}

/// Ends a link session and redirects back the way OFAuth documents it
/// (<https://docs.ofauth.com/api-reference/link/init>, "Redirect Query Parameters"):
/// `status=success&connection_id=conn_…`, `status=cancelled&step=authorization` or
/// `status=error&error_code=<code>`, each followed by `client_reference_id` when the
/// session was opened with one. There is no `state` parameter.
fn link_finish(inner: &Inner, session: &str, user: &str, end: LinkEnd<'_>) -> Response {
    if let Err(e) = check_link(inner, session) {
        return e;
    }
    let now = inner.now_ms();
    let ps = inner.platform(Platform::OnlyFans);
    let ttl = ps.access_ttl();
    let (redirect_uri, reference, conn) = {
        let mut store = ps.lock();
        let Some(code) = store.codes.get_mut(session) else {
            return error_page(StatusCode::NOT_FOUND, "Link not found", "Unknown session.");
        };
        code.used = true;
        let code = code.clone();
        let conn = match end {
            LinkEnd::Success => {
                let grant = store.new_grant(&code.client_id, user, Vec::new());
                if let Some(g) = store.grants.get_mut(&grant) {
                    g.client_reference_id = code.state.clone();
                }
                let conn = format!("conn_{}", crate::util::random_hex(12));
                store.issue_access(grant, conn.clone(), now, ttl, TokenKind::Normal);
                Some(conn)
            }
            LinkEnd::Cancelled | LinkEnd::Error(_) => None,
        };
        (code.redirect_uri, code.state, conn)
    };
    let Ok(mut url) = url::Url::parse(&redirect_uri) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "Bad redirectUrl.",
        );
    };
    {
        let mut qp = url.query_pairs_mut();
        match (&end, &conn) {
            (LinkEnd::Success, Some(c)) => qp
                .append_pair("status", "success")
                .append_pair("connection_id", c),
            (LinkEnd::Error(code), _) => qp
                .append_pair("status", "error")
                .append_pair("error_code", code),
            _ => qp
                .append_pair("status", "cancelled")
                .append_pair("step", "authorization"),
        };
        if let Some(r) = &reference {
            qp.append_pair("client_reference_id", r);
        }
    }
    redirect(url.as_str())
}
