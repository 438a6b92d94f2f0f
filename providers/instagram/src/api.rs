//! Raw calls to Instagram's endpoints and their wire types.

use crate::config::InstagramConfig;
use crate::error::Endpoint;
use integrations_core::ProviderError;
use integrations_core::client::{ApiClient, TokenReply};
use integrations_core::http::wire::lenient_u64;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Fields asked of `GET {graph}/me`.
pub const PROFILE_FIELDS: &str = "id,user_id,username,name,account_type,profile_picture_url,followers_count,follows_count,media_count";

/// An Instagram id sent as a JSON number (possibly above 2^53, so never read as `f64`) or
/// as a string; kept as its decimal text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgId(pub String);

impl<'de> Deserialize<'de> for IgId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = IgId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer id as a JSON number or string")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IgId, E> {
                Ok(IgId(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IgId, E> {
                u64::try_from(v)
                    .map(|v| IgId(v.to_string()))
                    .map_err(|_| E::custom("a negative id"))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<IgId, E> {
                Ok(IgId(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<IgId, E> {
                Err(E::custom(
                    "an id that is not an integer or does not fit 64 bits",
                ))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IgId, E> {
                let v = v.trim();
                if v.is_empty()
                    || v.len() > 64
                    || !v
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                {
                    return Err(E::custom("an id string that is empty or not alphanumeric"));
                }
                Ok(IgId(v.to_owned()))
            }
        }
        deserializer.deserialize_any(IdVisitor)
    }
}

/// `permissions` as a comma-separated string or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Permissions {
    Csv(String),
    List(Vec<String>),
}

impl Permissions {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::Csv(s) => integrations_core::http::split_scopes(&s),
            Self::List(v) => v,
        }
    }
}

#[derive(Deserialize)]
struct ShortLivedItem {
    access_token: String,
    #[serde(default)]
    permissions: Option<Permissions>,
}

/// The code-exchange reply in either documented shape: flat `{access_token, user_id}` or
/// `{data: [{access_token, user_id, permissions}]}`. The account id is taken from `/me`,
/// not from here; the flat shape is recognised by its `user_id`.
#[derive(Deserialize)]
struct ShortLivedReply {
    #[serde(default)]
    data: Option<Vec<ShortLivedItem>>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    user_id: Option<IgId>,
    #[serde(default)]
    permissions: Option<Permissions>,
}

/// The short-lived (1 hour) token from `POST {api}/oauth/access_token`.
#[derive(Debug)]
pub(crate) struct ShortLived {
    pub(crate) access_token: integrations_core::AccessToken,
    pub(crate) permissions: Vec<String>,
}

/// The reply of `GET {graph}/me`.
#[derive(Debug, Deserialize)]
pub(crate) struct MeReply {
    /// The app-scoped user id.
    #[serde(default)]
    pub(crate) id: Option<IgId>,
    #[serde(default)]
    pub(crate) user_id: Option<IgId>,
    #[serde(default)]
    pub(crate) username: Option<String>,
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) account_type: Option<String>,
    #[serde(default)]
    pub(crate) profile_picture_url: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub(crate) followers_count: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub(crate) follows_count: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub(crate) media_count: Option<u64>,
}

/// The metadata stored for an Instagram account (`Profile.metadata`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstagramMetadata {
    /// The Instagram professional account id (`user_id` of `/me`).
    pub ig_business_id: String,
    /// The handle.
    pub username: String,
    /// The profile picture URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_picture_url: Option<String>,
    /// Followers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followers_count: Option<u64>,
    /// The display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `BUSINESS` or `MEDIA_CREATOR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_type: Option<String>,
    /// Accounts followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follows_count: Option<u64>,
    /// Media published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_count: Option<u64>,
    /// The account's other id, the app-scoped user id (`id` of `/me`), stored under
    /// [`ALIASES_KEY`](integrations_core::store::ALIASES_KEY) so that Meta's callbacks,
    /// whichever id they carry, find the account.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platform_aliases: Vec<String>,
}

/// The raw calls, sharing one client.
#[derive(Debug)]
pub(crate) struct Api {
    pub(crate) client: ApiClient,
    pub(crate) config: InstagramConfig,
}

impl Api {
    /// `POST {api}/oauth/access_token`: code → short-lived token.
    pub(crate) async fn exchange_code(&self, code: &str) -> Result<ShortLived, ProviderError> {
        let c = &self.config;
        let secret = c.client.client_secret().expose_secret();
        let request = self
            .client
            .post(format!("{}/oauth/access_token", c.api_base_url()))
            .form(&[
                ("client_id", c.client_id()),
                ("client_secret", secret),
                ("grant_type", "authorization_code"),
                ("redirect_uri", c.redirect_uri().as_str()),
                ("code", code),
            ]);
        let response = self
            .client
            .call(request, Endpoint::CodeExchange, &[secret, code])
            .await?;
        let reply: ShortLivedReply = response.json_secret("code-exchange reply")?;
        let item = match reply {
            ShortLivedReply {
                data: Some(items), ..
            } => items
                .into_iter()
                .next()
                .ok_or_else(|| ProviderError::Protocol {
                    message: "the code-exchange reply has an empty `data` array".into(),
                    body: None,
                })?,
            ShortLivedReply {
                access_token: Some(access_token),
                user_id: Some(_),
                permissions,
                ..
            } => ShortLivedItem {
                access_token,
                permissions,
            },
            _ => {
                return Err(ProviderError::Protocol {
                    message: "the code-exchange reply has neither `data` nor `access_token` and `user_id`".into(),
                    body: None,
                });
            }
        };
        if item.access_token.is_empty() {
            return Err(ProviderError::Protocol {
                message: "the code-exchange reply has an empty access token".into(),
                body: None,
            });
        }
        Ok(ShortLived {
            access_token: integrations_core::AccessToken::new(item.access_token),
            permissions: item
                .permissions
                .map(Permissions::into_vec)
                .unwrap_or_default(),
        })
    }

    /// `GET {graph}/access_token?grant_type=ig_exchange_token`: short → long-lived token.
    pub(crate) async fn exchange_long_lived(
        &self,
        short_lived: &str,
    ) -> Result<TokenReply, ProviderError> {
        let c = &self.config;
        let secret = c.client.client_secret().expose_secret();
        let request = self
            .client
            .get(format!("{}/access_token", c.graph_base_url()))
            .query(&[
                ("grant_type", "ig_exchange_token"),
                ("client_secret", secret),
                ("access_token", short_lived),
            ]);
        let response = self
            .client
            .call(request, Endpoint::TokenExchange, &[secret, short_lived])
            .await?;
        TokenReply::parse(&response, "long-lived token reply")
    }

    /// `GET {graph}/refresh_access_token?grant_type=ig_refresh_token`.
    pub(crate) async fn refresh(&self, access_token: &str) -> Result<TokenReply, ProviderError> {
        let request = self
            .client
            .get(format!(
                "{}/refresh_access_token",
                self.config.graph_base_url()
            ))
            .query(&[
                ("grant_type", "ig_refresh_token"),
                ("access_token", access_token),
            ]);
        let response = self
            .client
            .call(request, Endpoint::TokenExchange, &[access_token])
            .await?;
        TokenReply::parse(&response, "refresh reply")
    }

    /// `GET {graph}/me?fields=...`.
    pub(crate) async fn me(&self, access_token: &str) -> Result<MeReply, ProviderError> {
        let request = self
            .client
            .get(format!("{}/me", self.config.graph_base_url()))
            .query(&[("fields", PROFILE_FIELDS), ("access_token", access_token)]);
        let response = self
            .client
            .call(request, Endpoint::Profile, &[access_token])
            .await?;
        response.json_scrubbed("profile reply", &[access_token])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keep_every_digit() {
        let r: ShortLivedReply =
            serde_json::from_str(r#"{"access_token":"a","user_id":17841405793187218}"#).unwrap();
        assert_eq!(r.user_id.unwrap().0, "17841405793187218");
        let r: ShortLivedReply =
            serde_json::from_str(r#"{"access_token":"a","user_id":18446744073709551615}"#).unwrap();
        assert_eq!(r.user_id.unwrap().0, "18446744073709551615");
        let r: ShortLivedReply = serde_json::from_str(
            r#"{"data":[{"access_token":"a","user_id":"17841400000000000","permissions":"a,b"}]}"#,
        )
        .unwrap();
        let item = r.data.unwrap().into_iter().next().unwrap();
        assert_eq!(item.permissions.unwrap().into_vec(), ["a", "b"]);
        assert!(serde_json::from_str::<IgId>("1.5").is_err());
        assert!(serde_json::from_str::<IgId>("1e30").is_err());
        assert!(serde_json::from_str::<IgId>("-3").is_err());
        assert!(serde_json::from_str::<IgId>("\"\"").is_err());
    }

    #[test]
    fn metadata_omits_absent_fields() {
        let m = InstagramMetadata {
            ig_business_id: "1".into(),
            username: "acme".into(),
            profile_picture_url: None,
            followers_count: Some(3),
            name: None,
            account_type: None,
            follows_count: None,
            media_count: None,
            platform_aliases: Vec::new(),
        };
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            serde_json::json!({"ig_business_id": "1", "username": "acme", "followers_count": 3})
        );
        let with_alias = InstagramMetadata {
            platform_aliases: vec!["9001".into()],
            ..m
        };
        assert_eq!(
            serde_json::to_value(&with_alias).unwrap()[integrations_core::store::ALIASES_KEY],
            serde_json::json!(["9001"])
        );
    }
}
