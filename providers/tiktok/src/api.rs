//! Raw calls to TikTok's Open API v2 and their wire types.

use crate::config::TikTokConfig;
use crate::error::{Endpoint, api_error_code};
use integrations_core::ProviderError;
use integrations_core::client::{ApiClient, check};
use integrations_core::engine::OAuthEngine;
use integrations_core::http::CappedResponse;
use serde::{Deserialize, Serialize};

/// The reply of `/v2/oauth/token/` (code exchange and refresh): the standard fields
/// (`open_id` is not read here: the account id comes from the profile).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct User {
    #[serde(default)]
    pub(crate) open_id: Option<String>,
    #[serde(default)]
    pub(crate) avatar_url: Option<String>,
    #[serde(default)]
    pub(crate) display_name: Option<String>,
    #[serde(default)]
    pub(crate) username: Option<String>,
}

#[derive(Debug, Deserialize)]
struct UserData {
    #[serde(default)]
    user: Option<User>,
}

#[derive(Debug, Deserialize)]
struct UserInfoReply {
    #[serde(default)]
    data: Option<UserData>,
}

/// The metadata stored for a TikTok account (`Profile.metadata`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TikTokMetadata {
    /// The user's id for this app (`open_id`).
    pub open_id: String,
    /// The `username` field, or `display_name` when the reply has no `username` (the
    /// `username` field needs the `user.info.profile` scope).
    pub username: String,
    /// The display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The avatar URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
}

/// The raw calls, sharing one client.
#[derive(Debug)]
pub(crate) struct Api {
    pub(crate) client: ApiClient,
    pub(crate) config: TikTokConfig,
    pub(crate) engine: OAuthEngine,
}

impl Api {
    pub(crate) async fn user_info(&self, access_token: &str) -> Result<User, ProviderError> {
        let fields = self.config.user_info_fields.as_str();
        let mut response = self.get_user_info(access_token, fields).await?;
        if api_error_code(&response).as_deref() == Some("scope_not_authorized") {
            let basic = basic_fields(fields);
            if basic != fields {
                response = self.get_user_info(access_token, &basic).await?;
            }
        }
        let response = check(response, Endpoint::Data, &[access_token])?;
        let reply: UserInfoReply = response.json_scrubbed("user-info reply", &[access_token])?;
        reply
            .data
            .and_then(|d| d.user)
            .ok_or_else(|| ProviderError::Protocol {
                message: "the user-info reply has no `data.user`".into(),
                body: None,
            })
    }

    async fn get_user_info(
        &self,
        access_token: &str,
        fields: &str,
    ) -> Result<CappedResponse, ProviderError> {
        let request = self
            .client
            .get(format!("{}/v2/user/info/", self.config.api_base_url()))
            .query(&[("fields", fields)])
            .bearer_auth(access_token);
        self.client.send(request).await
    }
}

/// Fields of the `user.info.basic` scope.
pub const BASIC_USER_FIELDS: [&str; 6] = [
    "open_id",
    "union_id",
    "avatar_url",
    "avatar_url_100",
    "avatar_large_url",
    "display_name",
];

/// The `user.info.basic` fields of a comma-separated field list, in order.
pub(crate) fn basic_fields(fields: &str) -> String {
    fields
        .split(',')
        .map(str::trim)
        .filter(|f| BASIC_USER_FIELDS.contains(f))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_omits_absent_fields() {
        let m = TikTokMetadata {
            open_id: "-000abc".into(),
            username: "Jane".into(),
            display_name: Some("Jane".into()),
            avatar_url: None,
        };
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            serde_json::json!({"open_id": "-000abc", "username": "Jane", "display_name": "Jane"})
        );
    }

    #[test]
    fn basic_subset() {
        assert_eq!(
            basic_fields("open_id,union_id,avatar_url,display_name,username"),
            "open_id,union_id,avatar_url,display_name"
        );
        assert_eq!(basic_fields("open_id, bio_description"), "open_id");
    }
}
