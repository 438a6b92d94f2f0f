//! `POST /bulk` over real HTTP: every answer is documented, results come in request order
//! with the single routes' codes, a disconnect removes exactly the listed accounts of the
//! signed-in user, malformed and cross-site requests are refused before anything runs, and
//! no more than `BULK_CONCURRENCY` accounts are worked on at once.

use async_trait::async_trait;
use integrations_axum::{
    Authenticate, BULK_CONCURRENCY, BULK_MAX_ACCOUNTS, IntegrationsRouter, PageConfig, ServeLimits,
    serve_with_shutdown,
};
use integrations_core::testing::ScriptedProvider;
use integrations_core::{
    AccessToken, AuthorizationRequest, CallbackParams, Capabilities, CodeExchange, EncryptionKey,
    Integrations, MemoryStore, Profile, Provider, ProviderError, ProviderId, RefreshRequest,
    RefreshToken, TokenCipher, TokenSet, TokenStore, UserId,
};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The host's authentication: `Authorization: Bearer user-<id>`.
struct Bearer;

#[async_trait]
impl Authenticate for Bearer {
    async fn user(&self, parts: &mut axum::http::request::Parts) -> Option<UserId> {
        let value = parts.headers.get("authorization")?.to_str().ok()?;
        value.strip_prefix("Bearer user-")?.parse().ok().map(UserId)
    }
}

/// A [`ScriptedProvider`] whose refreshes count how many run at once and wait at a gate
/// the test opens.
#[derive(Debug)]
struct Gated {
    inner: ScriptedProvider,
    in_flight: AtomicUsize,
    most: AtomicUsize,
    open: tokio::sync::watch::Sender<bool>,
}

impl Gated {
    fn new(id: &str) -> Self {
        Self {
            inner: ScriptedProvider::new(id),
            in_flight: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
            open: tokio::sync::watch::channel(true).0,
        }
    }
}

#[async_trait]
impl Provider for Gated {
    fn id(&self) -> &ProviderId {
        self.inner.id()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn authorization_url(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<url::Url, ProviderError> {
        self.inner.authorization_url(request).await
    }

    async fn exchange_code(&self, exchange: CodeExchange<'_>) -> Result<TokenSet, ProviderError> {
        self.inner.exchange_code(exchange).await
    }

    async fn refresh(&self, request: RefreshRequest<'_>) -> Result<TokenSet, ProviderError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|open| *open).await;
        let result = self.inner.refresh(request).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    }

    async fn fetch_profile(&self, access_token: &AccessToken) -> Result<Profile, ProviderError> {
        self.inner.fetch_profile(access_token).await
    }

    async fn revoke(
        &self,
        access_token: Option<&AccessToken>,
        refresh_token: Option<&RefreshToken>,
    ) -> Result<(), ProviderError> {
        self.inner.revoke(access_token, refresh_token).await
    }
}

const API: &str = "/settings/integrations/api";

struct Host {
    base: String,
    integrations: Integrations,
    store: Arc<MemoryStore>,
    acme: Arc<Gated>,
    plain: Arc<ScriptedProvider>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// A host with `acme` (refreshes, through the gate) and `plain` (never refreshes).
async fn host() -> Host {
    let acme = Arc::new(Gated::new("acme"));
    let plain = Arc::new(ScriptedProvider::with_capabilities(
        "plain",
        Capabilities {
            refresh: false,
            ..Capabilities::default()
        },
        false,
    ));
    let store = Arc::new(MemoryStore::new());
    let integrations =
        Integrations::builder(store.clone(), TokenCipher::new(EncryptionKey::generate()))
            .provider(acme.clone())
            .provider(plain.clone())
            .build();
    let web = IntegrationsRouter::new(integrations.clone(), Bearer)
        .card("acme", "Acme")
        .card("plain", "Plain")
        .page_config(PageConfig {
            api_base: API.into(),
            page_url: "/settings/integrations".into(),
            ..PageConfig::default()
        });
    let app = axum::Router::new().nest(API, web.api());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}{API}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve_with_shutdown(
        listener,
        app,
        ServeLimits::default(),
        async move {
            let _ = rx.await;
        },
    ));
    Host {
        base,
        integrations,
        store,
        acme,
        plain,
        _stop: tx,
    }
}

impl Host {
    /// Connects `account` on `provider` for `user` (set-up, through the library).
    async fn connect(&self, user: i64, provider: &str, account: &str) {
        let start = self
            .integrations
            .connect(UserId(user), provider, None)
            .await
            .unwrap();
        let params = CallbackParams::from_pairs([("code", account), ("state", &start.state)]);
        self.integrations
            .callback(UserId(user), provider, &params)
            .await
            .unwrap();
    }

    fn bulk(&self, user: i64) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .post(format!("{}/bulk", self.base))
            .header("authorization", format!("Bearer user-{user}"))
    }

    /// `(provider, account)` of every connection of `user`, from `GET /status`.
    async fn status(&self, user: i64) -> BTreeSet<(String, String)> {
        let body: Value = reqwest::Client::new()
            .get(format!("{}/status", self.base))
            .header("authorization", format!("Bearer user-{user}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["integrations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["provider"].as_str().unwrap().to_owned(),
                    i["providerAccountId"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// The same, read from the store itself.
    async fn stored(&self, user: i64) -> BTreeSet<(String, String)> {
        self.store
            .list_accounts(UserId(user))
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.provider.as_str().to_owned(), r.provider_account_id))
            .collect()
    }
}

fn pairs(list: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    list.iter()
        .map(|(p, a)| ((*p).to_owned(), (*a).to_owned()))
        .collect()
}

fn body(action: &str, accounts: &[(&str, &str)]) -> Value {
    json!({
        "action": action,
        "accounts": accounts
            .iter()
            .map(|(p, a)| json!({"provider": p, "accountId": a}))
            .collect::<Vec<_>>(),
    })
}

fn document() -> Value {
    serde_json::to_value(IntegrationsRouter::openapi()).unwrap()
}

/// Sends `request`, expects `status`, and checks that the document lists it for
/// `POST /bulk`, with the body it names.
async fn send(request: reqwest::RequestBuilder, status: u16) -> Value {
    let resp = request.send().await.unwrap();
    let got = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = resp.text().await.unwrap();
    assert_eq!(got, status, "{text}");
    let doc = document();
    let answer = &doc["paths"]["/bulk"]["post"]["responses"][status.to_string()];
    assert!(
        answer.is_object(),
        "{status} is not documented for POST /bulk"
    );
    assert_eq!(content_type.as_deref(), Some("application/json"));
    let body: Value = serde_json::from_str(&text).unwrap();
    let schema = answer["content"]["application/json"]["schema"]["$ref"]
        .as_str()
        .unwrap();
    if schema.ends_with("/ApiError") {
        let keys: BTreeSet<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(keys, BTreeSet::from(["success", "code", "message"]));
        assert_eq!(body["success"], false);
    } else {
        assert!(schema.ends_with("/BulkAnswer"), "{schema}");
        let keys: BTreeSet<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(keys, BTreeSet::from(["success", "results"]));
        for item in body["results"].as_array().unwrap() {
            let keys: BTreeSet<&str> = item
                .as_object()
                .unwrap()
                .keys()
                .map(|k| k.as_str())
                .collect();
            assert_eq!(
                keys,
                BTreeSet::from(["provider", "accountId", "result", "code", "message"])
            );
            assert_eq!(item["code"].is_null(), item["result"] == "ok", "{item}");
        }
    }
    body
}

/// `(provider, accountId, result, code)` of each result, in order.
fn outcomes(body: &Value) -> Vec<(String, String, String, Value)> {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["provider"].as_str().unwrap().to_owned(),
                r["accountId"].as_str().unwrap().to_owned(),
                r["result"].as_str().unwrap().to_owned(),
                r["code"].clone(),
            )
        })
        .collect()
}

fn row(p: &str, a: &str, result: &str, code: Value) -> (String, String, String, Value) {
    (p.to_owned(), a.to_owned(), result.to_owned(), code)
}

#[tokio::test]
async fn every_account_ok_is_200_in_request_order_with_duplicates_collapsed() {
    let h = host().await;
    for a in ["a1", "a2", "a3"] {
        h.connect(7, "acme", a).await;
    }
    let before = h.acme.inner.refresh_calls();
    let answer = send(
        h.bulk(7).json(&body(
            "refresh",
            &[
                ("acme", "a3"),
                ("acme", "a1"),
                ("acme", "a3"),
                ("acme", "a2"),
            ],
        )),
        200,
    )
    .await;
    assert_eq!(answer["success"], true);
    assert_eq!(
        outcomes(&answer),
        vec![
            row("acme", "a3", "ok", Value::Null),
            row("acme", "a1", "ok", Value::Null),
            row("acme", "a2", "ok", Value::Null),
        ]
    );
    assert_eq!(
        answer["results"][0]["message"],
        "Acme connection refreshed."
    );
    assert_eq!(h.acme.inner.refresh_calls(), before + 3, "a3 once");
}

#[tokio::test]
async fn a_partial_outcome_is_207_with_each_accounts_code() {
    let h = host().await;
    h.connect(7, "acme", "a1").await;
    h.connect(7, "plain", "p1").await;
    h.connect(8, "acme", "b1").await;
    let theirs = h.acme.inner.refresh_calls();
    let answer = send(
        h.bulk(7).json(&body(
            "refresh",
            &[
                ("acme", "a1"),
                ("acme", "nobody"),
                ("acme", "b1"),
                ("plain", "p1"),
                ("ghost", "g1"),
            ],
        )),
        207,
    )
    .await;
    assert_eq!(answer["success"], false);
    assert_eq!(
        outcomes(&answer),
        vec![
            row("acme", "a1", "ok", Value::Null),
            row("acme", "nobody", "not_found", json!("not_found")),
            // Another user's account answers exactly like one that does not exist.
            row("acme", "b1", "not_found", json!("not_found")),
            row("plain", "p1", "error", json!("unsupported")),
            row("ghost", "g1", "not_found", json!("unknown_provider")),
        ]
    );
    assert_eq!(answer["results"][1]["message"], "Integration not found.");
    assert_eq!(
        answer["results"][3]["message"],
        "This platform keeps the connection without refreshing it."
    );
    assert_eq!(
        h.acme.inner.refresh_calls(),
        theirs + 1,
        "only a1 refreshed"
    );
    assert_eq!(h.plain.refresh_calls(), 0);

    // Nothing done at all is a 207 too.
    let answer = send(
        h.bulk(7)
            .json(&body("disconnect", &[("acme", "b1"), ("acme", "nobody")])),
        207,
    )
    .await;
    assert_eq!(answer["success"], false);
    assert!(
        outcomes(&answer)
            .iter()
            .all(|(_, _, result, _)| result == "not_found")
    );
    assert_eq!(h.status(8).await, pairs(&[("acme", "b1")]));
}

#[tokio::test]
async fn a_disconnect_removes_exactly_the_listed_accounts() {
    let h = host().await;
    for a in ["a1", "a2", "a3"] {
        h.connect(7, "acme", a).await;
    }
    h.connect(7, "plain", "p1").await;
    h.connect(8, "acme", "b1").await;
    h.connect(8, "plain", "p2").await;

    let answer = send(
        h.bulk(7).json(&body(
            "disconnect",
            &[
                ("acme", "a1"),
                ("plain", "p1"),
                ("acme", "b1"),
                ("acme", "a3"),
            ],
        )),
        207,
    )
    .await;
    assert_eq!(
        outcomes(&answer),
        vec![
            row("acme", "a1", "ok", Value::Null),
            row("plain", "p1", "ok", Value::Null),
            row("acme", "b1", "not_found", json!("not_found")),
            row("acme", "a3", "ok", Value::Null),
        ]
    );
    assert_eq!(answer["results"][1]["message"], "Plain disconnected.");
    let left = pairs(&[("acme", "a2")]);
    assert_eq!(h.status(7).await, left);
    assert_eq!(h.stored(7).await, left);
    let theirs = pairs(&[("acme", "b1"), ("plain", "p2")]);
    assert_eq!(h.status(8).await, theirs, "the other user keeps everything");
    assert_eq!(h.stored(8).await, theirs);

    let answer = send(h.bulk(7).json(&body("disconnect", &[("acme", "a2")])), 200).await;
    assert_eq!(answer["success"], true);
    assert_eq!(answer["results"][0]["message"], "Acme disconnected.");
    assert!(h.stored(7).await.is_empty());
    assert_eq!(h.stored(8).await, theirs);
}

#[tokio::test]
async fn malformed_empty_oversized_and_cross_site_requests_are_refused_before_anything_runs() {
    let h = host().await;
    h.connect(7, "acme", "a1").await;
    let everything = pairs(&[("acme", "a1")]);
    let one = [("acme", "a1")];
    let over: Vec<(&str, &str)> = vec![("acme", "a1"); BULK_MAX_ACCOUNTS + 1];
    let raw = |text: &'static str| {
        h.bulk(7)
            .header("content-type", "application/json")
            .body(text)
    };
    for (request, status, what) in [
        (h.bulk(7).json(&body("disconnect", &[])), 400, "empty"),
        (
            h.bulk(7).json(&body("disconnect", &over)),
            400,
            "over the maximum",
        ),
        (h.bulk(7).json(&body("delete", &one)), 400, "unknown action"),
        (raw("{\"action\": \"disconnect\", "), 400, "malformed JSON"),
        (raw(""), 400, "no body"),
        (raw("[]"), 400, "not an object"),
        (
            raw("{\"action\": \"disconnect\", \"accounts\": [{\"provider\": \"acme\"}]}"),
            400,
            "an account without its id",
        ),
        (
            h.bulk(7)
                .header("content-type", "text/plain")
                .body(body("disconnect", &one).to_string()),
            415,
            "not JSON",
        ),
        (
            h.bulk(7)
                .header("sec-fetch-site", "cross-site")
                .json(&body("disconnect", &one)),
            403,
            "cross-site",
        ),
        (
            h.bulk(7)
                .header("origin", "https://evil.example")
                .json(&body("disconnect", &one)),
            403,
            "another origin",
        ),
        (
            reqwest::Client::new()
                .post(format!("{}/bulk", h.base))
                .json(&body("disconnect", &one)),
            401,
            "signed out",
        ),
    ] {
        let answer = send(request, status).await;
        let code = match status {
            400 => "invalid_request",
            401 => "unauthenticated",
            403 => "cross_site",
            _ => "unsupported_media_type",
        };
        assert_eq!(answer["code"], code, "{what}");
        assert_eq!(
            h.stored(7).await,
            everything,
            "{what}: nothing disconnected"
        );
    }
    assert_eq!(
        send(h.bulk(7).json(&body("delete", &one)), 400).await["message"],
        "The action must be \"refresh\" or \"disconnect\"."
    );
    assert_eq!(
        send(h.bulk(7).json(&body("disconnect", &over)), 400).await["message"],
        format!("Send at most {BULK_MAX_ACCOUNTS} accounts at once.")
    );
    let get = reqwest::Client::new()
        .get(format!("{}/bulk", h.base))
        .header("authorization", "Bearer user-7")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    // The maximum itself is taken.
    let most: Vec<(&str, &str)> = vec![("acme", "a1"); BULK_MAX_ACCOUNTS];
    send(h.bulk(7).json(&body("refresh", &most)), 200).await;
}

#[tokio::test]
async fn no_more_than_bulk_concurrency_accounts_are_worked_on_at_once() {
    let h = host().await;
    // Nine accounts: two full rounds of four and one more (the per-user limit on starting
    // connections is ten in five minutes).
    let accounts: Vec<String> = (1..=9).map(|i| format!("a{i}")).collect();
    for a in &accounts {
        h.connect(7, "acme", a).await;
    }
    assert!(accounts.len() > BULK_CONCURRENCY);
    h.acme.open.send_replace(false);
    let list: Vec<(&str, &str)> = accounts.iter().map(|a| ("acme", a.as_str())).collect();
    let request = h.bulk(7).json(&body("refresh", &list));
    let answer = tokio::spawn(async move { send(request, 200).await });

    // The refreshes wait at the gate: as many as the bound start, and no more.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while h.acme.in_flight.load(Ordering::SeqCst) < BULK_CONCURRENCY {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} refreshes started",
            h.acme.in_flight.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.acme.in_flight.load(Ordering::SeqCst), BULK_CONCURRENCY);
    assert_eq!(h.acme.inner.refresh_calls(), 0, "none got past the gate");

    h.acme.open.send_replace(true);
    let answer = answer.await.unwrap();
    assert_eq!(answer["results"].as_array().unwrap().len(), accounts.len());
    assert_eq!(h.acme.most.load(Ordering::SeqCst), BULK_CONCURRENCY);
    assert_eq!(h.acme.in_flight.load(Ordering::SeqCst), 0);
    assert_eq!(h.acme.inner.refresh_calls(), accounts.len());
}
