//! Shared helpers of the example server's tests: start it in-process, sign in, drive the
//! sandbox's authorization redirects like a browser.
#![allow(dead_code, unreachable_pub)]

use integrations_core::{EncryptionKey, TokenCipher};
use integrations_examples::server::{RunningServer, ServerConfig, serve};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

/// Starts a server on a free port with an in-memory SQLite store and a fresh key.
pub async fn start(mut config: ServerConfig) -> RunningServer {
    config.port = 0;
    if config.cipher.is_none() {
        config.cipher = Some(TokenCipher::new(EncryptionKey::generate()));
    }
    serve(config).await.expect("the server starts")
}

/// A client that never follows redirects and carries one session cookie.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub cookie: Option<String>,
}

impl Client {
    pub fn anonymous(server: &RunningServer) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(integrations_examples::USER_AGENT)
                .build()
                .unwrap(),
            base: server.url(),
            cookie: None,
        }
    }

    /// Signs in as `user` through `POST /api/session`.
    pub async fn signed_in(server: &RunningServer, user: i64) -> Self {
        let mut c = Self::anonymous(server);
        let resp = c
            .http
            .post(format!("{}/api/session", c.base))
            .json(&serde_json::json!({ "userId": user }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let set = resp
            .headers()
            .get(SET_COOKIE)
            .expect("a session cookie")
            .to_str()
            .unwrap();
        assert!(set.contains("HttpOnly"), "{set}");
        assert!(set.contains("SameSite=Lax"), "{set}");
        c.cookie = Some(set.split(';').next().unwrap().to_owned());
        c
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{}", self.base, path)
        };
        let mut rb = self.http.request(method, url);
        if let Some(c) = &self.cookie {
            rb = rb.header(COOKIE, c);
        }
        rb
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap()
    }

    /// A `POST` with an empty JSON object, as the page sends it.
    pub async fn post(&self, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::POST, path)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::DELETE, path)
            .send()
            .await
            .unwrap()
    }

    /// `POST /api/integrations/connect/:provider` → the `authUrl`.
    pub async fn start_connect(&self, provider: &str) -> String {
        let resp = self
            .request(
                reqwest::Method::POST,
                &format!("/api/integrations/connect/{provider}"),
            )
            .json(&serde_json::json!({ "redirectUrl": "/integrations" }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "connect {provider}");
        let body: serde_json::Value = resp.json().await.unwrap();
        let auth = body["authUrl"].as_str().expect("authUrl").to_owned();
        let state = body["state"].as_str().expect("state");
        assert!(!state.is_empty());
        if provider != "onlyfans" {
            // The gateway keeps it in its link session instead.
            assert!(auth.contains(state), "the state rides on the URL");
        }
        auth
    }

    /// Follows the platform's redirects (consent decided by `sandbox_auto`) until the
    /// redirect to our callback, and returns that callback URL (not yet requested).
    pub async fn consent(&self, auth_url: &str, sandbox_user: &str, decision: &str) -> String {
        let mut url = reqwest::Url::parse(auth_url).unwrap();
        url.query_pairs_mut()
            .append_pair("sandbox_auto", decision)
            .append_pair("sandbox_user", sandbox_user);
        let callback_prefix = format!("{}/api/integrations/callback/", self.base);
        for _ in 0..5 {
            let resp = self.http.get(url.clone()).send().await.unwrap();
            let location = resp
                .headers()
                .get(LOCATION)
                .unwrap_or_else(|| panic!("HTTP {} without a redirect at {url}", resp.status()))
                .to_str()
                .unwrap()
                .to_owned();
            let next = url.join(&location).unwrap();
            if next.as_str().starts_with(&callback_prefix) {
                return next.to_string();
            }
            url = next;
        }
        panic!("the sandbox never redirected to the callback");
    }

    /// Connects `provider` as `sandbox_user`; returns the callback's `Location`.
    pub async fn connect(&self, provider: &str, sandbox_user: &str) -> String {
        let auth = self.start_connect(provider).await;
        let callback = self.consent(&auth, sandbox_user, "allow").await;
        let resp = self.get(&callback).await;
        assert_eq!(resp.status(), 303, "callback answers 303");
        location(&resp)
    }

    pub async fn status(&self) -> Vec<serde_json::Value> {
        let resp = self.get("/api/integrations/status").await;
        assert_eq!(resp.status(), 200);
        let body: serde_json::Value = resp.json().await.unwrap();
        body["integrations"]
            .as_array()
            .expect("integrations")
            .clone()
    }
}

pub fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get(LOCATION)
        .expect("a Location header")
        .to_str()
        .unwrap()
        .to_owned()
}
