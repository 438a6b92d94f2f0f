//! Raw Reddit calls and their wire types.

use crate::config::RedditConfig;
use crate::error;
use integrations_core::ProviderError;
use integrations_core::client::ApiClient;
use integrations_core::engine::OAuthEngine;
use integrations_core::secret::AccessToken;
use reqwest::header::AUTHORIZATION;
use serde::{Deserialize, Serialize};

/// Path of the authorization page on the `www` host.
pub(crate) const AUTHORIZE_PATH: &str = "/api/v1/authorize";
/// Path of the token endpoint on the `www` host.
pub(crate) const TOKEN_PATH: &str = "/api/v1/access_token";
/// Path of the revocation endpoint on the `www` host.
pub(crate) const REVOKE_PATH: &str = "/api/v1/revoke_token";
/// Path of the identity endpoint on the OAuth host.
pub(crate) const ME_PATH: &str = "/api/v1/me";

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

/// The raw calls, sharing one client.
#[derive(Debug)]
pub(crate) struct Api {
    pub(crate) client: ApiClient,
    pub(crate) config: RedditConfig,
    pub(crate) engine: OAuthEngine,
}

impl Api {
    pub(crate) async fn me(&self, access_token: &AccessToken) -> Result<Me, ProviderError> {
        let url = format!("{}{ME_PATH}", self.config.oauth_base_url());
        let request = self.authorize(self.client.get(url), access_token);
        let secrets = [access_token.expose_secret()];
        self.client
            .call(request, error::Api, &secrets)
            .await?
            .json_scrubbed("/api/v1/me reply", &secrets)
    }

    /// Adds `Authorization: bearer <token>` (Reddit's documented spelling) and the
    /// configured `User-Agent`, which Reddit requires on every request.
    pub(crate) fn authorize(
        &self,
        request: reqwest::RequestBuilder,
        access_token: &AccessToken,
    ) -> reqwest::RequestBuilder {
        self.client.identify(request).header(
            AUTHORIZATION,
            format!("bearer {}", access_token.expose_secret()),
        )
    }
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
}
