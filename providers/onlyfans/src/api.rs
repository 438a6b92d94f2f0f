//! Raw gateway calls and their wire types, as OFAuth documents them:
//! <https://docs.ofauth.com/api-reference/link/init>,
//! <https://docs.ofauth.com/api-reference/self/get-current-user>,
//! <https://docs.ofauth.com/api-reference/account/disconnect-connection>.

use crate::config::{CONNECTION_ID_PLACEHOLDER, OnlyFansConfig};
use crate::error::Endpoint;
use integrations_core::ProviderError;
use integrations_core::client::ApiClient;
use reqwest::header::HeaderValue;
use serde::{Deserialize, Serialize};
use url::Url;

/// Longest connection id accepted from a callback.
const MAX_CONNECTION_ID_LEN: usize = 256;

/// Body of `POST /v2/link/init`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct LinkInit<'a> {
    redirect_url: &'a str,
    client_reference_id: &'a str,
}

/// Reply of `POST /v2/link/init` (`expiresAt` is not needed: the pending state has its
/// own expiry).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LinkSession {
    url: String,
}

/// Reply of `GET /v2/access/self` (the fields used here). `id` is documented as a number;
/// a string (as in the webhooks' `userData`) is accepted too.
#[derive(Debug, Deserialize)]
pub(crate) struct SelfProfile {
    id: serde_json::Value,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    avatar: Option<String>,
}

/// The metadata stored for an OnlyFans account (`Profile::metadata`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnlyFansMetadata {
    /// The OnlyFans user id, as the gateway reports it.
    pub account_id: String,
    /// The OnlyFans username (handle).
    pub username: String,
    /// The display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The avatar URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    /// The ids the gateway's webhooks may name the account by, stored under
    /// [`ALIASES_KEY`](integrations_core::store::ALIASES_KEY) (`platform_aliases`): the
    /// [`connection_alias`](crate::connection_alias) of the gateway connection, a digest
    /// (the connection id itself is a credential and is never stored in the clear).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platform_aliases: Vec<String>,
}

impl SelfProfile {
    /// Checks the reply and turns it into metadata.
    pub(crate) fn into_metadata(self) -> Result<OnlyFansMetadata, ProviderError> {
        let account_id = match &self.id {
            serde_json::Value::String(s) => s.trim().to_owned(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        if account_id.is_empty() {
            return Err(ProviderError::Protocol {
                message: "the gateway's profile has no usable `id`".into(),
                body: None,
            });
        }
        let username = self
            .username
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ProviderError::Protocol {
                message: "the gateway's profile has no `username`".into(),
                body: None,
            })?;
        let non_empty =
            |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        Ok(OnlyFansMetadata {
            account_id,
            username,
            display_name: non_empty(self.name),
            avatar_url: non_empty(self.avatar),
            platform_aliases: Vec::new(),
        })
    }
}

/// Checks a connection id from a callback or from storage: 1–256 characters of
/// `A-Z a-z 0-9 _ - .`. It goes into a header and a URL path, so nothing else is let
/// through.
pub(crate) fn check_connection_id(id: &str) -> Result<(), ProviderError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_CONNECTION_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && id != "."
        && id != "..";
    if ok {
        Ok(())
    } else {
        Err(ProviderError::Protocol {
            message: "the connection id is empty, too long or has unexpected characters".into(),
            body: None,
        })
    }
}

/// The raw calls, sharing one client.
#[derive(Debug)]
pub(crate) struct Api {
    pub(crate) client: ApiClient,
    pub(crate) config: OnlyFansConfig,
}

impl Api {
    fn key(&self) -> &str {
        self.config.client.client_secret().expose_secret()
    }

    /// Adds the API key header, and the connection id header when given (both marked
    /// sensitive so they are never printed), and the configured `User-Agent`.
    pub(crate) fn authorize(
        &self,
        request: reqwest::RequestBuilder,
        connection_id: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let mut request = self.client.identify(request);
        let c = &self.config;
        // The builder checked the key, and `check_connection_id` every connection id.
        for (name, value) in [
            (&c.api_key_header, Some(self.key())),
            (&c.connection_id_header, connection_id),
        ] {
            if let Some(Ok(mut v)) = value.map(HeaderValue::from_str) {
                v.set_sensitive(true);
                request = request.header(name.clone(), v);
            }
        }
        request
    }

    /// `POST {link_init_path}`: starts a hosted link session and returns its URL.
    pub(crate) async fn link_init(&self, state: &str) -> Result<Url, ProviderError> {
        let c = &self.config;
        let request = self.client.post(c.url(&c.link_init_path)).json(&LinkInit {
            redirect_url: c.redirect_uri().as_str(),
            client_reference_id: state,
        });
        let secrets = [self.key()];
        let response = self
            .client
            .call(self.authorize(request, None), Endpoint::Api, &secrets)
            .await?;
        let session: LinkSession = response.json_scrubbed("link session", &secrets)?;
        let url = Url::parse(session.url.trim()).map_err(|e| ProviderError::Protocol {
            message: format!("the gateway's link URL is not an absolute URL: {e}"),
            body: None,
        })?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(ProviderError::Protocol {
                message: "the gateway's link URL is not http(s)".into(),
                body: None,
            });
        }
        Ok(url)
    }

    /// `GET {self_path}` for a connection.
    pub(crate) async fn access_self(
        &self,
        connection_id: &str,
    ) -> Result<OnlyFansMetadata, ProviderError> {
        check_connection_id(connection_id)?;
        let request = self.client.get(self.config.url(&self.config.self_path));
        let secrets = [self.key(), connection_id];
        let response = self
            .client
            .call(
                self.authorize(request, Some(connection_id)),
                Endpoint::Api,
                &secrets,
            )
            .await?;
        response
            .json_scrubbed::<SelfProfile>("profile", &secrets)?
            .into_metadata()
    }

    /// `DELETE {connection_path}` (see [`Endpoint::Delete`]).
    pub(crate) async fn delete_connection(&self, connection_id: &str) -> Result<(), ProviderError> {
        check_connection_id(connection_id)?;
        let path = self
            .config
            .connection_path
            .replace(CONNECTION_ID_PLACEHOLDER, connection_id);
        let request = self.authorize(self.client.delete(self.config.url(&path)), None);
        let secrets = [self.key(), connection_id];
        self.client
            .call(request, Endpoint::Delete, &secrets)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_ids() {
        assert!(check_connection_id("conn_abc-123.X").is_ok());
        for bad in ["", "conn/../x", "conn id", "a\nb", "..", &"x".repeat(257)] {
            assert!(check_connection_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn metadata_from_profile() {
        let p: SelfProfile = serde_json::from_str(
            r#"{"id": 123456, "username": "jane", "name": "Jane Doe", "avatar": ""}"#,
        )
        .unwrap();
        let m = p.into_metadata().unwrap();
        assert_eq!(m.account_id, "123456");
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            serde_json::json!({"account_id": "123456", "username": "jane", "display_name": "Jane Doe"})
        );
        let p: SelfProfile = serde_json::from_str(r#"{"id": "1"}"#).unwrap();
        assert!(p.into_metadata().is_err());
        let p: SelfProfile = serde_json::from_str(r#"{"id": null, "username": "x"}"#).unwrap();
        assert!(p.into_metadata().is_err());
    }
}
