//! The four real providers, configured through their documented variables against the
//! in-process [`Server`], and one fuzz case: an operation and the replies the platform
//! sends to it.

use crate::input::{Reader, Writer};
use crate::reply::Reply;
use crate::secrets;
use crate::server::Server;
use chrono::{TimeDelta, Utc};
use integrations_core::{
    AccessToken, AuthorizationRequest, CallbackParams, CodeExchange, PkceVerifier, Provider,
    ProviderError, RefreshRequest, RefreshToken,
};
use std::sync::Arc;
use tokio::runtime::Runtime;

/// A platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// `integrations-reddit`.
    Reddit,
    /// `integrations-tiktok`.
    TikTok,
    /// `integrations-instagram`.
    Instagram,
    /// `integrations-onlyfans`.
    OnlyFans,
}

/// What the library's environment lookup answers for `name`, with every base URL the
/// in-process server. Only the documented variables are used, so the set-up survives
/// changes inside the provider crates.
fn lookup(base: &str, name: &str) -> Option<String> {
    let value = if name.ends_with("_BASE_URL") || name == "ONLYFANS_GATEWAY_URL" {
        base
    } else if name.ends_with("_CLIENT_ID") || name.ends_with("_CLIENT_KEY") {
        "fuzz-client-id"
    } else if name.ends_with("_CLIENT_SECRET") || name.ends_with("_API_KEY") {
        secrets::CLIENT_SECRET
    } else if name.ends_with("_REDIRECT_URI") {
        "https://app.example/integrations/callback"
    } else if name.ends_with("_USER_AGENT") {
        "fuzz:integrations-fuzz:0.0.0 (by /u/integrations-fuzz)"
    } else if name.ends_with("_TIMEOUT_SECS") {
        "5"
    } else {
        return None;
    };
    Some(value.to_owned())
}

/// Builds the provider of `platform` against `base`.
///
/// # Panics
///
/// When the documented variables no longer configure it.
pub fn provider(platform: Platform, base: &str) -> Arc<dyn Provider> {
    let l = |name: &str| lookup(base, name);
    let built: Result<Arc<dyn Provider>, ProviderError> = match platform {
        Platform::Reddit => integrations_reddit::RedditConfig::from_lookup(l)
            .and_then(integrations_reddit::RedditProvider::new)
            .map(|p| Arc::new(p) as Arc<dyn Provider>),
        Platform::TikTok => integrations_tiktok::TikTokConfig::from_lookup(l)
            .and_then(integrations_tiktok::TikTokProvider::new)
            .map(|p| Arc::new(p) as Arc<dyn Provider>),
        Platform::Instagram => integrations_instagram::InstagramConfig::from_lookup(l)
            .and_then(integrations_instagram::InstagramProvider::new)
            .map(|p| Arc::new(p) as Arc<dyn Provider>),
        Platform::OnlyFans => integrations_onlyfans::OnlyFansConfig::from_lookup(l)
            .and_then(integrations_onlyfans::OnlyFansProvider::new)
            .map(|p| Arc::new(p) as Arc<dyn Provider>),
    };
    built.unwrap_or_else(|e| panic!("{platform:?} is configured by its variables: {e}"))
}

/// All four providers, for targets that need no server.
pub fn all_providers() -> Vec<Arc<dyn Provider>> {
    [
        Platform::Reddit,
        Platform::TikTok,
        Platform::Instagram,
        Platform::OnlyFans,
    ]
    .into_iter()
    .map(|p| provider(p, "http://127.0.0.1:9"))
    .collect()
}

/// The provider call a case makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `exchange_code` with a code (and, for OnlyFans, a connection id) and a verifier.
    ExchangeCode,
    /// `refresh` of a two-day-old token with a refresh token.
    Refresh,
    /// `fetch_profile`.
    FetchProfile,
    /// `revoke` of both tokens.
    Revoke,
    /// `authorization_url` (a request only for the OnlyFans gateway's link session).
    AuthorizationUrl,
    /// `api_error` on the first reply (no request).
    ApiError,
}

const OPERATIONS: [Operation; 6] = [
    Operation::ExchangeCode,
    Operation::Refresh,
    Operation::FetchProfile,
    Operation::Revoke,
    Operation::AuthorizationUrl,
    Operation::ApiError,
];

/// One case: the operation and the platform's replies, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// The call.
    pub operation: Operation,
    /// What the platform answers (503 once they are used up).
    pub replies: Vec<Reply>,
}

impl Case {
    /// Reads a case: the operation byte, the reply count byte (at most 3), the replies.
    pub fn read(data: &[u8]) -> Self {
        let mut r = Reader::new(data);
        let operation = OPERATIONS[usize::from(r.byte()) % OPERATIONS.len()];
        let count = r.byte() % 4;
        let replies = (0..count).map(|_| Reply::read(&mut r)).collect();
        Self { operation, replies }
    }

    /// Writes the case in the format [`read`](Self::read) reads.
    ///
    /// # Panics
    ///
    /// With more than 3 replies.
    pub fn write(&self) -> Vec<u8> {
        assert!(self.replies.len() <= 3, "at most 3 replies");
        let op = OPERATIONS
            .iter()
            .position(|o| *o == self.operation)
            .unwrap_or_default();
        let mut w = Writer::new()
            .byte(u8::try_from(op).unwrap_or_default())
            .byte(u8::try_from(self.replies.len()).unwrap_or_default());
        for reply in &self.replies {
            w = reply.write(w);
        }
        w.finish()
    }
}

/// A provider with its server and runtime, built once per fuzzing process.
#[derive(Debug)]
pub struct Harness {
    platform: Platform,
    runtime: Runtime,
    server: Server,
    provider: Arc<dyn Provider>,
}

impl Harness {
    /// Starts the server and builds the provider against it.
    ///
    /// # Panics
    ///
    /// When the runtime cannot start.
    pub fn new(platform: Platform) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let server = Server::start(&runtime);
        let provider = provider(platform, server.base_url());
        Self {
            platform,
            runtime,
            server,
            provider,
        }
    }

    /// The secrets a call sends the platform (what the provider must scrub from any
    /// error, in case the platform echoes it), as each crate documents its requests.
    fn sent(&self, operation: Operation) -> Vec<&'static str> {
        use Operation as O;
        use Platform as P;
        use secrets::{ACCESS, CLIENT_SECRET, CODE, REFRESH, VERIFIER};
        match (self.platform, operation) {
            // Basic auth with the client secret; Reddit revokes the refresh token.
            (P::Reddit, O::ExchangeCode) => vec![CLIENT_SECRET, CODE],
            (P::Reddit, O::Refresh | O::Revoke) => vec![CLIENT_SECRET, REFRESH],
            // TikTok's form carries the client secret, and the PKCE verifier.
            (P::TikTok, O::ExchangeCode) => vec![CLIENT_SECRET, CODE, VERIFIER],
            (P::TikTok, O::Refresh) => vec![CLIENT_SECRET, REFRESH],
            (P::TikTok, O::Revoke) => vec![CLIENT_SECRET, ACCESS],
            // Instagram refreshes the access token itself, with no client secret; its
            // second exchange step sends the first step's token (a reply token).
            (P::Instagram, O::ExchangeCode) => vec![CLIENT_SECRET, CODE],
            (P::Instagram, O::Refresh) => vec![ACCESS],
            // The gateway: the API key on every request, the connection id (the
            // callback's "code", then the access token) on account calls.
            (P::OnlyFans, O::ExchangeCode | O::FetchProfile | O::Revoke | O::Refresh) => {
                vec![CLIENT_SECRET, ACCESS]
            }
            (P::OnlyFans, O::AuthorizationUrl | O::ApiError) => vec![CLIENT_SECRET],
            (_, O::FetchProfile) => vec![ACCESS],
            (_, O::Revoke | O::AuthorizationUrl | O::ApiError) => vec![],
        }
    }

    /// Runs one case and checks its properties: the call ends in a typed value or a
    /// typed error (never a panic, never a hang); a value is sane (a non-empty token, a
    /// non-empty account id and object metadata); an error carries none of the secrets
    /// the call sent, none of the tokens a success reply carried, and a bounded text.
    ///
    /// # Panics
    ///
    /// When a property does not hold.
    pub fn run(&self, case: &Case) {
        let p = &*self.provider;
        let now = Utc::now();
        if case.operation == Operation::ApiError {
            if let Some(reply) = case.replies.first()
                && let Some(err) = p.api_error(&reply.capped())
                && let Some(problem) = crate::error_problem(&err, &self.sent(Operation::ApiError))
            {
                panic!("api_error: {problem}\nreply: {reply:?}");
            }
            return;
        }
        self.server.script(case.replies.clone());
        let access = AccessToken::new(secrets::ACCESS);
        let refresh = RefreshToken::new(secrets::REFRESH);
        let verifier = PkceVerifier::new(secrets::VERIFIER);
        let params = if self.platform == Platform::OnlyFans {
            CallbackParams::from_pairs([
                ("status", "success"),
                ("connection_id", secrets::ACCESS),
                ("client_reference_id", "fuzz-state"),
            ])
        } else {
            CallbackParams::from_pairs([("code", secrets::CODE), ("state", "fuzz-state")])
        };
        let scopes = vec!["fuzz.scope".to_owned()];
        let outcome: Result<(), ProviderError> = self.runtime.block_on(async {
            match case.operation {
                Operation::ExchangeCode => {
                    let tokens = p
                        .exchange_code(CodeExchange {
                            params: &params,
                            pkce_verifier: Some(&verifier),
                        })
                        .await?;
                    assert!(
                        !tokens.access_token.expose_secret().is_empty(),
                        "an exchange gave an empty access token"
                    );
                }
                Operation::Refresh => {
                    let tokens = p
                        .refresh(RefreshRequest {
                            access_token: Some(&access),
                            refresh_token: Some(&refresh),
                            issued_at: now - TimeDelta::days(2),
                            now,
                            scopes: &scopes,
                        })
                        .await?;
                    assert!(
                        !tokens.access_token.expose_secret().is_empty(),
                        "a refresh gave an empty access token"
                    );
                }
                Operation::FetchProfile => {
                    let profile = p.fetch_profile(&access).await?;
                    assert!(
                        !profile.account_id.is_empty(),
                        "a profile without an account id: {profile:?}"
                    );
                    assert!(
                        profile.metadata.is_object(),
                        "profile metadata that is not an object: {profile:?}"
                    );
                }
                Operation::Revoke => p.revoke(Some(&access), Some(&refresh)).await?,
                Operation::AuthorizationUrl => {
                    let url = p
                        .authorization_url(&AuthorizationRequest {
                            state: "fuzz-state".into(),
                            pkce_challenge: Some(integrations_core::oauth::pkce_challenge(
                                &verifier,
                            )),
                            scopes: Vec::new(),
                        })
                        .await?;
                    assert!(
                        matches!(url.scheme(), "http" | "https"),
                        "an authorization URL that is not http(s): {url}"
                    );
                }
                Operation::ApiError => {}
            }
            Ok(())
        });
        if let Err(err) = outcome {
            let served = self.server.served();
            let mut sent = self.sent(case.operation);
            // Instagram's second exchange step sends no code: an error from its reply
            // cannot echo one.
            if self.platform == Platform::Instagram && served.len() > 1 {
                sent.retain(|s| *s != secrets::CODE);
            }
            let mut forbidden: Vec<String> = sent.into_iter().map(str::to_owned).collect();
            if matches!(case.operation, Operation::ExchangeCode | Operation::Refresh) {
                for reply in &served {
                    if (200..300).contains(&reply.status) {
                        forbidden.extend(crate::reply_tokens(&reply.body));
                    }
                }
            }
            let forbidden: Vec<&str> = forbidden.iter().map(String::as_str).collect();
            if let Some(problem) = crate::error_problem(&err, &forbidden) {
                panic!(
                    "{:?}: {problem}\nserved: {:?}",
                    case.operation,
                    served
                        .iter()
                        .map(|r| (r.status, String::from_utf8_lossy(&r.body).into_owned()))
                        .collect::<Vec<_>>()
                );
            }
        }
    }
}
