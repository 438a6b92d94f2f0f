//! Raw gateway calls and their wire types, as OFAuth documents them:
//! <https://docs.ofauth.com/api-reference/link/init>,
//! <https://docs.ofauth.com/api-reference/self/get-current-user>,
//! <https://docs.ofauth.com/api-reference/account/disconnect-connection>.

use crate::config::{CONNECTION_ID_PLACEHOLDER, OnlyFansConfig};
use crate::error;
use integrations_core::ProviderError;
use integrations_core::http::send_capped;
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

/// The API key header value, marked sensitive so it is never printed.
fn api_key_value(config: &OnlyFansConfig) -> Result<HeaderValue, ProviderError> {
    let mut v = HeaderValue::from_str(config.api_key.expose_secret())
        .map_err(|_| ProviderError::Config("onlyfans: the API key is not a valid header".into()))?;
    v.set_sensitive(true);
    Ok(v)
}

/// Adds the API key header, and the connection id header when given.
pub(crate) fn authorize(
    config: &OnlyFansConfig,
    request: reqwest::RequestBuilder,
    connection_id: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut request = match api_key_value(config) {
        Ok(v) => request.header(config.api_key_header.clone(), v),
        // The builder already checked the key; an invalid value cannot get here.
        Err(_) => request,
    };
    if let Some(Ok(mut v)) = connection_id.map(HeaderValue::from_str) {
        v.set_sensitive(true);
        request = request.header(config.connection_id_header.clone(), v);
    }
    request
}

/// `POST {link_init_path}`: starts a hosted link session and returns its URL.
pub(crate) async fn link_init(
    client: &reqwest::Client,
    config: &OnlyFansConfig,
    state: &str,
) -> Result<Url, ProviderError> {
    let request = authorize(
        config,
        client
            .post(config.url(&config.link_init_path))
            .json(&LinkInit {
                redirect_url: config.redirect_uri.as_str(),
                client_reference_id: state,
            }),
        None,
    );
    let secrets = [config.api_key.expose_secret()];
    let response = send_capped(request, config.body_limit).await?;
    error::check(&response, &secrets)?;
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
    client: &reqwest::Client,
    config: &OnlyFansConfig,
    connection_id: &str,
) -> Result<OnlyFansMetadata, ProviderError> {
    check_connection_id(connection_id)?;
    let request = authorize(
        config,
        client.get(config.url(&config.self_path)),
        Some(connection_id),
    );
    let secrets = [config.api_key.expose_secret(), connection_id];
    let response = send_capped(request, config.body_limit).await?;
    error::check(&response, &secrets)?;
    response
        .json_scrubbed::<SelfProfile>("profile", &secrets)?
        .into_metadata()
}

/// `DELETE {connection_path}`. A connection the gateway no longer has
/// (`RESOURCE_NOT_FOUND`) is already disconnected; any other refusal, including a 404 for
/// an unknown route, is an error.
pub(crate) async fn delete_connection(
    client: &reqwest::Client,
    config: &OnlyFansConfig,
    connection_id: &str,
) -> Result<(), ProviderError> {
    check_connection_id(connection_id)?;
    let path = config
        .connection_path
        .replace(CONNECTION_ID_PLACEHOLDER, connection_id);
    let request = authorize(config, client.delete(config.url(&path)), None);
    let secrets = [config.api_key.expose_secret(), connection_id];
    let response = send_capped(request, config.body_limit).await?;
    let gone = response.status == reqwest::StatusCode::NOT_FOUND
        && error::gateway_error(&response.body)
            .is_some_and(|e| e.kind.as_deref() == Some("RESOURCE_NOT_FOUND"));
    if gone {
        return Ok(());
    }
    error::check(&response, &secrets)
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
