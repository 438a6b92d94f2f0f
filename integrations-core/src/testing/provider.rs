//! [`ScriptedProvider`] and the provider conformance check.

use crate::provider::{
    AuthorizationRequest, CallbackParams, Capabilities, CodeExchange, PkceSupport, Profile,
    Provider, ProviderError, ProviderId, RefreshRequest, TokenSet,
};
use crate::secret::{AccessToken, RefreshToken};
use async_trait::async_trait;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use url::Url;

/// An in-process [`Provider`] that behaves like a small OAuth platform and counts its
/// calls.
///
/// - `exchange_code` accepts any `code` not yet used; the account id is the code's text
///   (or the one set with [`account_for_code`](Self::account_for_code)); codes are
///   single-use. With PKCE on, a verifier is required.
/// - Tokens are `at-N` / `rt-N` with a fresh `N` per issue; `expires_in` is
///   [`set_expires_in`](Self::set_expires_in) (default one hour).
/// - `refresh` accepts only the account's current refresh token; with rotation (the
///   default) every refresh issues a new one and invalidates the old one.
/// - [`revoke_grant`](Self::revoke_grant) kills an account's grant: refresh then answers
///   `InvalidGrant`. [`fail_next_refresh`](Self::fail_next_refresh),
///   [`fail_next_profile`](Self::fail_next_profile) and
///   [`fail_next_revoke`](Self::fail_next_revoke) queue errors.
/// - `revoke` ends every token of the account (like TikTok's revoke), or, after
///   [`set_revoke_per_grant`](Self::set_revoke_per_grant), only the tokens it is given
///   (like an RFC 7009 revocation).
#[derive(Debug)]
pub struct ScriptedProvider {
    id: ProviderId,
    caps: Capabilities,
    rotate: bool,
    state: Mutex<Script>,
    exchange_calls: AtomicUsize,
    refresh_calls: AtomicUsize,
    refresh_calls_with_access_token: AtomicUsize,
    profile_calls: AtomicUsize,
    revoke_calls: AtomicUsize,
}

#[derive(Debug, Default)]
struct Script {
    next: u64,
    expires_in: Option<Duration>,
    refresh_expires_in: Option<Duration>,
    used_codes: HashSet<String>,
    code_accounts: HashMap<String, String>,
    access: HashMap<String, String>,
    refresh: HashMap<String, String>,
    revoked: HashSet<String>,
    refresh_failures: VecDeque<ProviderError>,
    profile_failures: VecDeque<ProviderError>,
    revoke_failures: VecDeque<ProviderError>,
    revoke_per_grant: bool,
    refresh_delay: Duration,
    metadata: HashMap<String, serde_json::Value>,
}

impl ScriptedProvider {
    /// A provider with this id, PKCE supported, refresh and revoke on, rotating refresh
    /// tokens.
    pub fn new(id: &str) -> Self {
        Self::with_capabilities(id, Capabilities::default(), true)
    }

    /// A provider with explicit capabilities and rotation rule.
    pub fn with_capabilities(id: &str, caps: Capabilities, rotate: bool) -> Self {
        Self {
            id: ProviderId::new(id).unwrap_or_else(|_| ProviderId::new("scripted").expect("valid")),
            caps,
            rotate,
            state: Mutex::new(Script {
                expires_in: Some(Duration::from_secs(3600)),
                refresh_expires_in: None,
                ..Script::default()
            }),
            exchange_calls: AtomicUsize::new(0),
            refresh_calls: AtomicUsize::new(0),
            refresh_calls_with_access_token: AtomicUsize::new(0),
            profile_calls: AtomicUsize::new(0),
            revoke_calls: AtomicUsize::new(0),
        }
    }

    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The code `code` connects account `account`.
    pub fn account_for_code(&self, code: &str, account: &str) {
        self.script()
            .code_accounts
            .insert(code.to_owned(), account.to_owned());
    }

    /// Metadata returned by `fetch_profile` for an account (default:
    /// `{"username": "user_<account>"}`).
    pub fn set_metadata(&self, account: &str, metadata: serde_json::Value) {
        self.script().metadata.insert(account.to_owned(), metadata);
    }

    /// Lifetime of issued access tokens (`None`: no `expires_in`).
    pub fn set_expires_in(&self, expires_in: Option<Duration>) {
        self.script().expires_in = expires_in;
    }

    /// Lifetime of issued refresh tokens (default `None`: no `refresh_expires_in`).
    pub fn set_refresh_expires_in(&self, refresh_expires_in: Option<Duration>) {
        self.script().refresh_expires_in = refresh_expires_in;
    }

    /// Makes every refresh wait this long before answering (to widen races).
    pub fn set_refresh_delay(&self, delay: Duration) {
        self.script().refresh_delay = delay;
    }

    /// Queues an error for the next refresh call.
    pub fn fail_next_refresh(&self, error: ProviderError) {
        self.script().refresh_failures.push_back(error);
    }

    /// Queues an error for the next `fetch_profile` call.
    pub fn fail_next_profile(&self, error: ProviderError) {
        self.script().profile_failures.push_back(error);
    }

    /// Queues an error for the next `revoke` call (the tokens then stay live).
    pub fn fail_next_revoke(&self, error: ProviderError) {
        self.script().revoke_failures.push_back(error);
    }

    /// Whether `revoke` ends only the tokens it is given (`true`) or every token of their
    /// account (`false`, the default); [`Provider::revoke_is_per_grant`] answers this.
    pub fn set_revoke_per_grant(&self, per_grant: bool) {
        self.script().revoke_per_grant = per_grant;
    }

    /// Kills an account's grant: its refresh answers `InvalidGrant` from now on.
    pub fn revoke_grant(&self, account: &str) {
        self.script().revoked.insert(account.to_owned());
    }

    /// The account's current refresh token, if any.
    pub fn current_refresh_token(&self, account: &str) -> Option<String> {
        self.script()
            .refresh
            .iter()
            .find(|(_, a)| a.as_str() == account)
            .map(|(t, _)| t.clone())
    }

    /// Whether `token` is a live access token.
    pub fn is_live_access_token(&self, token: &str) -> bool {
        self.script().access.contains_key(token)
    }

    /// Calls of `exchange_code`.
    pub fn exchange_calls(&self) -> usize {
        self.exchange_calls.load(Ordering::SeqCst)
    }
    /// Calls of `refresh`.
    pub fn refresh_calls(&self) -> usize {
        self.refresh_calls.load(Ordering::SeqCst)
    }

    /// Refresh calls whose request carried an access token.
    pub fn refresh_calls_with_access_token(&self) -> usize {
        self.refresh_calls_with_access_token.load(Ordering::SeqCst)
    }
    /// Calls of `fetch_profile`.
    pub fn profile_calls(&self) -> usize {
        self.profile_calls.load(Ordering::SeqCst)
    }
    /// Calls of `revoke`.
    pub fn revoke_calls(&self) -> usize {
        self.revoke_calls.load(Ordering::SeqCst)
    }

    fn issue(&self, s: &mut Script, account: &str, with_refresh: bool) -> TokenSet {
        s.next += 1;
        let access = format!("at-{}", s.next);
        s.access.insert(access.clone(), account.to_owned());
        let refresh = with_refresh.then(|| {
            let r = format!("rt-{}", s.next);
            s.refresh.retain(|_, a| a != account);
            s.refresh.insert(r.clone(), account.to_owned());
            RefreshToken::new(r)
        });
        TokenSet {
            access_token: AccessToken::new(access),
            refresh_token: refresh,
            expires_in: s.expires_in,
            refresh_expires_in: s.refresh_expires_in,
            token_type: Some("bearer".into()),
            scopes: vec!["read".into()],
        }
    }
}

#[async_trait]
impl Provider for ScriptedProvider {
    fn id(&self) -> &ProviderId {
        &self.id
    }

    fn capabilities(&self) -> Capabilities {
        self.caps.clone()
    }

    async fn authorization_url(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<Url, ProviderError> {
        let mut url = Url::parse("https://scripted.example/authorize").expect("static URL");
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", "scripted-client")
                .append_pair("redirect_uri", "https://app.example/callback")
                .append_pair("response_type", "code")
                .append_pair("scope", "read")
                .append_pair("state", &request.state);
            if let Some(c) = &request.pkce_challenge {
                q.append_pair("code_challenge", &c.s256_base64url)
                    .append_pair("code_challenge_method", "S256");
            }
        }
        Ok(url)
    }

    async fn exchange_code(&self, exchange: CodeExchange<'_>) -> Result<TokenSet, ProviderError> {
        self.exchange_calls.fetch_add(1, Ordering::SeqCst);
        let code = exchange.params.require("code")?.to_owned();
        if self.caps.pkce == PkceSupport::Required && exchange.pkce_verifier.is_none() {
            return Err(ProviderError::InvalidGrant {
                description: Some("code_verifier required".into()),
            });
        }
        let mut s = self.script();
        if !s.used_codes.insert(code.clone()) {
            return Err(ProviderError::InvalidGrant {
                description: Some("code already used".into()),
            });
        }
        let account = s.code_accounts.get(&code).cloned().unwrap_or(code);
        s.revoked.remove(&account);
        Ok(self.issue(&mut s, &account, self.caps.refresh))
    }

    async fn refresh(&self, request: RefreshRequest<'_>) -> Result<TokenSet, ProviderError> {
        self.refresh_calls.fetch_add(1, Ordering::SeqCst);
        if request.access_token.is_some() {
            self.refresh_calls_with_access_token
                .fetch_add(1, Ordering::SeqCst);
        }
        let delay = self.script().refresh_delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let mut s = self.script();
        if let Some(e) = s.refresh_failures.pop_front() {
            return Err(e);
        }
        let token = request
            .refresh_token
            .ok_or(ProviderError::InvalidGrant {
                description: Some("no refresh token".into()),
            })?
            .expose_secret()
            .to_owned();
        let Some(account) = s.refresh.get(&token).cloned() else {
            return Err(ProviderError::InvalidGrant {
                description: Some("unknown or rotated refresh token".into()),
            });
        };
        if s.revoked.contains(&account) {
            return Err(ProviderError::InvalidGrant {
                description: Some("grant revoked".into()),
            });
        }
        if self.rotate {
            Ok(self.issue(&mut s, &account, true))
        } else {
            let mut t = self.issue(&mut s, &account, false);
            t.refresh_token = None;
            Ok(t)
        }
    }

    async fn fetch_profile(&self, access_token: &AccessToken) -> Result<Profile, ProviderError> {
        self.profile_calls.fetch_add(1, Ordering::SeqCst);
        let mut s = self.script();
        if let Some(e) = s.profile_failures.pop_front() {
            return Err(e);
        }
        let account = s.access.get(access_token.expose_secret()).cloned().ok_or(
            ProviderError::InvalidGrant {
                description: Some("unknown access token".into()),
            },
        )?;
        let metadata = s
            .metadata
            .get(&account)
            .cloned()
            .unwrap_or_else(|| serde_json::json!({ "username": format!("user_{account}") }));
        Ok(Profile {
            username: metadata
                .get("username")
                .and_then(|u| u.as_str())
                .map(str::to_owned),
            account_id: account,
            metadata,
        })
    }

    async fn revoke(
        &self,
        access_token: Option<&AccessToken>,
        refresh_token: Option<&RefreshToken>,
    ) -> Result<(), ProviderError> {
        self.revoke_calls.fetch_add(1, Ordering::SeqCst);
        if !self.caps.revoke {
            return Err(ProviderError::Unsupported {
                operation: "revoke",
            });
        }
        let mut s = self.script();
        if let Some(e) = s.revoke_failures.pop_front() {
            return Err(e);
        }
        if s.revoke_per_grant {
            if let Some(t) = access_token {
                s.access.remove(t.expose_secret());
            }
            if let Some(t) = refresh_token {
                s.refresh.remove(t.expose_secret());
            }
            return Ok(());
        }
        let account = access_token
            .and_then(|t| s.access.get(t.expose_secret()).cloned())
            .or_else(|| refresh_token.and_then(|t| s.refresh.get(t.expose_secret()).cloned()));
        if let Some(account) = account {
            s.access.retain(|_, a| *a != account);
            s.refresh.retain(|_, a| *a != account);
        }
        Ok(())
    }

    fn revoke_is_per_grant(&self) -> bool {
        self.script().revoke_per_grant
    }
}

/// Inputs of [`provider_conformance`].
#[derive(Debug)]
pub struct ProviderConformance<'a> {
    /// The provider under test, pointed at a local server.
    pub provider: &'a dyn Provider,
    /// The redirect URI the provider is configured with.
    pub redirect_uri: &'a str,
    /// Scopes that must appear in the authorization URL's `scope` parameter.
    pub scopes: Vec<String>,
    /// Whether the authorization URL carries the OAuth query (`state`, `redirect_uri`,
    /// `scope`); `false` for gateway providers whose hosted link URL does not.
    pub oauth_query: bool,
    /// Callback parameters (without `state`) the local server accepts.
    pub good_callback: CallbackParams,
    /// Callback parameters the local server refuses with `invalid_grant`.
    pub bad_callback: CallbackParams,
}

/// Checks that a provider meets the `Provider` contract against its local server: the
/// authorization URL carries state, redirect URI, scopes (and the PKCE challenge when
/// supported); the exchange and the refresh give usable token sets; the profile names
/// an account; a refused code gives `InvalidGrant`; no token appears in `Debug`.
pub async fn provider_conformance(c: ProviderConformance<'_>) {
    let p = c.provider;
    let caps = p.capabilities();
    let state = crate::oauth::generate_state();
    let verifier =
        (caps.pkce != PkceSupport::Unsupported).then(crate::oauth::generate_pkce_verifier);
    let challenge = verifier.as_ref().map(crate::oauth::pkce_challenge);
    let url = p
        .authorization_url(&AuthorizationRequest {
            state: state.clone(),
            pkce_challenge: challenge.clone(),
            scopes: Vec::new(),
        })
        .await
        .expect("authorization_url");
    if c.oauth_query {
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(
            q.get("state"),
            Some(&state),
            "the URL must carry the state: {url}"
        );
        assert_eq!(
            q.get("redirect_uri").map(String::as_str),
            Some(c.redirect_uri),
            "the URL must carry the redirect URI"
        );
        let scope = q.get("scope").cloned().unwrap_or_default();
        let granted: HashSet<&str> = scope.split([',', ' ']).collect();
        for s in &c.scopes {
            assert!(
                granted.contains(s.as_str()),
                "scope {s} missing from {scope:?}"
            );
        }
        if let Some(ch) = &challenge {
            let sent = q.get("code_challenge").cloned().unwrap_or_default();
            assert!(
                sent == ch.s256_base64url || sent == ch.s256_hex,
                "the URL must carry the PKCE challenge"
            );
            assert_eq!(
                q.get("code_challenge_method").map(String::as_str),
                Some("S256")
            );
        }
    }

    let mut good = c.good_callback.clone();
    good.0.insert("state".into(), state.clone());
    let tokens = p
        .exchange_code(CodeExchange {
            params: &good,
            pkce_verifier: verifier.as_ref(),
        })
        .await
        .expect("exchange_code with the good callback");
    assert!(
        !tokens.access_token.expose_secret().is_empty(),
        "empty access token"
    );
    let debug = format!("{tokens:?}");
    assert!(
        !debug.contains(tokens.access_token.expose_secret()),
        "Debug of TokenSet leaks the access token"
    );
    if let Some(r) = &tokens.refresh_token {
        assert!(
            !debug.contains(r.expose_secret()),
            "Debug leaks the refresh token"
        );
    }
    let profile = p
        .fetch_profile(&tokens.access_token)
        .await
        .expect("fetch_profile");
    assert!(
        !profile.account_id.is_empty(),
        "the profile names no account"
    );
    assert!(
        profile.metadata.is_object(),
        "metadata must be a JSON object"
    );

    if caps.refresh {
        let now = chrono::Utc::now();
        let refreshed = p
            .refresh(RefreshRequest {
                access_token: Some(&tokens.access_token),
                refresh_token: tokens.refresh_token.as_ref(),
                issued_at: now - chrono::Duration::days(30),
                now,
                scopes: &tokens.scopes,
            })
            .await
            .expect("refresh");
        assert!(!refreshed.access_token.expose_secret().is_empty());
    }

    let mut bad = c.bad_callback.clone();
    bad.0.insert("state".into(), state);
    let err = p
        .exchange_code(CodeExchange {
            params: &bad,
            pkce_verifier: verifier.as_ref(),
        })
        .await
        .expect_err("the bad callback must fail");
    assert!(
        matches!(err, ProviderError::InvalidGrant { .. }),
        "a refused code must be InvalidGrant, got {err:?}"
    );
}
