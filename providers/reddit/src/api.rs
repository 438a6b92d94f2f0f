//! Raw Reddit calls and their wire types.

use crate::config::RedditConfig;
use crate::error;
use integrations_core::http::{CappedResponse, send_capped};
use integrations_core::secret::{AccessToken, RefreshToken};
use integrations_core::{ProviderError, TokenSet};
use reqwest::header::AUTHORIZATION;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Path of the authorization page on the `www` host.
pub(crate) const AUTHORIZE_PATH: &str = "/api/v1/authorize";
/// Path of the token endpoint on the `www` host.
pub(crate) const TOKEN_PATH: &str = "/api/v1/access_token";
/// Path of the revocation endpoint on the `www` host.
pub(crate) const REVOKE_PATH: &str = "/api/v1/revoke_token";
/// Path of the identity endpoint on the OAuth host.
pub(crate) const ME_PATH: &str = "/api/v1/me";

/// Which grant a token request carries; refresh errors are classified differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grant {
    AuthorizationCode,
    RefreshToken,
}

/// The token endpoint's success body.
#[derive(Debug, Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// `GET /api/v1/me` (the fields used here).
#[derive(Debug, Deserialize)]
pub(crate) struct Me {
    pub(crate) id: String,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) icon_img: Option<String>,
    #[serde(default)]
    pub(crate) total_karma: Option<i64>,
    #[serde(default)]
    pub(crate) link_karma: Option<i64>,
    #[serde(default)]
    pub(crate) comment_karma: Option<i64>,
}

/// The metadata stored for a Reddit account (`Profile::metadata`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedditMetadata {
    /// The username (`name`), without `u/`.
    pub username: String,
    /// The avatar URL, with HTML entities (`&amp;`) decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon_img: Option<String>,
    /// `total_karma`, or `link_karma + comment_karma` when the total is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub karma: Option<i64>,
}

impl Me {
    /// The stable account id: `id` without a `t2_` prefix, should one appear.
    pub(crate) fn account_id(&self) -> &str {
        self.id.strip_prefix("t2_").unwrap_or(&self.id)
    }

    pub(crate) fn metadata(&self) -> RedditMetadata {
        let karma = self
            .total_karma
            .or(match (self.link_karma, self.comment_karma) {
                (None, None) => None,
                (l, c) => Some(l.unwrap_or(0).saturating_add(c.unwrap_or(0))),
            });
        RedditMetadata {
            username: self.name.clone(),
            icon_img: self
                .icon_img
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(html_unescape),
            karma,
        }
    }
}

/// Decodes the HTML entities Reddit leaves in URLs (`&amp;`, `&lt;`, `&gt;`, `&quot;`,
/// `&#39;`), in one pass so `&amp;lt;` becomes `&lt;`, not `<`.
pub(crate) fn html_unescape(s: &str) -> String {
    const ENTITIES: &[(&str, char)] = &[
        ("&amp;", '&'),
        ("&lt;", '<'),
        ("&gt;", '>'),
        ("&quot;", '"'),
        ("&#39;", '\''),
        ("&#x27;", '\''),
    ];
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        match ENTITIES.iter().find(|(e, _)| rest.starts_with(e)) {
            Some((e, c)) => {
                out.push(*c);
                rest = &rest[e.len()..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// POSTs a grant to the token endpoint with HTTP Basic client authentication.
pub(crate) async fn token_request(
    client: &reqwest::Client,
    config: &RedditConfig,
    grant: Grant,
    form: &[(&str, &str)],
) -> Result<TokenSet, ProviderError> {
    let request = client
        .post(format!("{}{TOKEN_PATH}", config.www_base_url))
        .basic_auth(
            &config.client_id,
            Some(config.client_secret.expose_secret()),
        )
        .header(reqwest::header::ACCEPT, "application/json")
        .form(form);
    let response = send_capped(request, config.body_limit).await?;
    error::check_token(&response, grant)?;
    parse_token_set(&response)
}

/// Parses a token success body. Parse errors never carry the body: it holds tokens.
fn parse_token_set(response: &CappedResponse) -> Result<TokenSet, ProviderError> {
    let body: TokenResponse =
        serde_json::from_slice(&response.body).map_err(|e| ProviderError::Protocol {
            message: format!(
                "malformed token response (HTTP {}, {:?} error at line {} column {})",
                response.status.as_u16(),
                e.classify(),
                e.line(),
                e.column()
            ),
            body: None,
        })?;
    if body.access_token.is_empty() {
        return Err(ProviderError::Protocol {
            message: "the token response has an empty access_token".into(),
            body: None,
        });
    }
    let expires_in = match &body.expires_in {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(parse_seconds(v).ok_or_else(|| ProviderError::Protocol {
            message: "the token response has a malformed expires_in".into(),
            body: None,
        })?),
    };
    Ok(TokenSet {
        access_token: AccessToken::new(body.access_token),
        refresh_token: body
            .refresh_token
            .filter(|t| !t.is_empty())
            .map(RefreshToken::new),
        expires_in,
        refresh_expires_in: None,
        token_type: body.token_type,
        scopes: body
            .scope
            .as_deref()
            .map(integrations_core::http::split_scopes)
            .unwrap_or_default(),
    })
}

/// Seconds as a JSON number (integer or float) or a numeric string.
fn parse_seconds(v: &serde_json::Value) -> Option<Duration> {
    let secs = match v {
        serde_json::Value::Number(n) => n.as_f64()?,
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e10)))
}

/// `POST /api/v1/revoke_token`.
pub(crate) async fn revoke(
    client: &reqwest::Client,
    config: &RedditConfig,
    token: &str,
    token_type_hint: &str,
) -> Result<(), ProviderError> {
    let request = client
        .post(format!("{}{REVOKE_PATH}", config.www_base_url))
        .basic_auth(
            &config.client_id,
            Some(config.client_secret.expose_secret()),
        )
        .form(&[("token", token), ("token_type_hint", token_type_hint)]);
    let response = send_capped(request, config.body_limit).await?;
    error::check_revoke(&response)
}

/// `GET /api/v1/me` with `Authorization: bearer <token>`.
pub(crate) async fn me(
    client: &reqwest::Client,
    config: &RedditConfig,
    access_token: &AccessToken,
) -> Result<Me, ProviderError> {
    let request = authorize(
        client.get(format!("{}{ME_PATH}", config.oauth_base_url)),
        access_token,
    );
    let response = send_capped(request, config.body_limit).await?;
    error::check_api(&response)?;
    response.json()
}

/// Adds `Authorization: bearer <token>` (Reddit's documented spelling).
pub(crate) fn authorize(
    request: reqwest::RequestBuilder,
    access_token: &AccessToken,
) -> reqwest::RequestBuilder {
    request.header(
        AUTHORIZATION,
        format!("bearer {}", access_token.expose_secret()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_is_single_pass() {
        assert_eq!(
            html_unescape("https://x/a.png?width=256&amp;s=abc"),
            "https://x/a.png?width=256&s=abc"
        );
        assert_eq!(html_unescape("a&amp;lt;b"), "a&lt;b");
        assert_eq!(html_unescape("&&amp;&unknown;"), "&&&unknown;");
        assert_eq!(html_unescape("plain"), "plain");
    }

    #[test]
    fn karma_falls_back_to_link_plus_comment() {
        let me: Me = serde_json::from_str(
            r#"{"id":"t2_abc","name":"n","link_karma":10,"comment_karma":5,"icon_img":""}"#,
        )
        .unwrap();
        assert_eq!(me.account_id(), "abc");
        let m = me.metadata();
        assert_eq!(m.karma, Some(15));
        assert_eq!(m.icon_img, None);
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            serde_json::json!({"username": "n", "karma": 15})
        );
        let me: Me = serde_json::from_str(r#"{"id":"abc","name":"n"}"#).unwrap();
        assert_eq!(me.metadata().karma, None);
    }

    #[test]
    fn seconds_accept_numbers_and_strings() {
        assert_eq!(
            parse_seconds(&serde_json::json!(3600)),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            parse_seconds(&serde_json::json!("3600")),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(parse_seconds(&serde_json::json!(-1)), None);
        assert_eq!(parse_seconds(&serde_json::json!(true)), None);
    }
}
