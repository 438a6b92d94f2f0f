//! In-memory state: registered clients, one-time codes, grants and tokens, per platform.
//!
//! Each platform has its own `Mutex<Store>`; every request takes it once, for a few map
//! operations, and never across an `.await`. All lookups are hash-map lookups.

use crate::faults::FaultSlot;
use crate::{Consent, Platform, SandboxClient, SandboxConfig};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, RwLock};

/// At most this many live access tokens per grant; older ones are dropped when a new one is
/// issued (bounds memory under refresh benchmarks).
pub(crate) const MAX_ACCESS_PER_GRANT: usize = 4;

/// Milliseconds in a second.
pub(crate) const MS: i64 = 1000;

/// A registered OAuth client (or, for the OnlyFans gateway, an API key).
#[derive(Debug, Clone)]
pub(crate) struct RegisteredClient {
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) redirect_uris: Vec<String>,
}

/// An authorization code (or OnlyFans link session) waiting to be exchanged.
#[derive(Debug, Clone)]
pub(crate) struct Code {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) user: String,
    pub(crate) scopes: Vec<String>,
    /// PKCE challenge (method S256).
    pub(crate) challenge: Option<String>,
    pub(crate) expires_at: i64,
    pub(crate) used: bool,
    /// Reddit `duration=permanent` (`OAuth2AuthorizationCode.refreshable`, reddit-archive/reddit
    /// r2/r2/controllers/oauth2.py): only such codes yield a refresh token.
    pub(crate) permanent: bool,
    /// OnlyFans link sessions: the `clientReferenceId`, echoed back as `client_reference_id`.
    pub(crate) state: Option<String>,
}

/// What kind of access token an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// A regular access token.
    Normal,
    /// Instagram short-lived (1 h) token, from the code exchange
    /// (<https://developers.facebook.com/docs/instagram-platform/reference/oauth-access-token>).
    Short,
    /// Instagram long-lived (60 d) token, from `ig_exchange_token` or `ig_refresh_token`
    /// (<https://developers.facebook.com/documentation/instagram-platform/reference/access_token>).
    Long,
}

#[derive(Debug, Clone)]
pub(crate) struct AccessEntry {
    pub(crate) grant: u64,
    pub(crate) issued_at: i64,
    pub(crate) expires_at: i64,
    pub(crate) kind: TokenKind,
}

/// One user's authorization of one client.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub(crate) id: u64,
    pub(crate) client_id: String,
    pub(crate) user: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) refresh_token: Option<String>,
    pub(crate) refresh_expires_at: Option<i64>,
    pub(crate) access_tokens: VecDeque<String>,
    pub(crate) revoked: bool,
    pub(crate) refreshes: u64,
    /// OnlyFans: the link session's `clientReferenceId`, echoed in connection webhooks.
    pub(crate) client_reference_id: Option<String>,
}

/// The result of looking up an access token.
#[derive(Debug, Clone)]
pub(crate) enum AccessCheck {
    Valid {
        entry: AccessEntry,
        user: String,
        client_id: String,
        scopes: Vec<String>,
    },
    Expired {
        client_id: String,
    },
    Revoked,
    Unknown,
}

/// Per-platform token store.
#[derive(Debug, Default)]
pub(crate) struct Store {
    pub(crate) codes: HashMap<String, Code>,
    pub(crate) access: HashMap<String, AccessEntry>,
    pub(crate) refresh: HashMap<String, u64>,
    pub(crate) grants: HashMap<u64, Grant>,
    pub(crate) by_user: HashMap<String, Vec<u64>>,
    next_grant: u64,
    inserts_since_sweep: u32,
}

impl Store {
    /// Stores a fresh code; sweeps long-expired codes now and then (amortised O(1)).
    pub(crate) fn insert_code(&mut self, code: String, c: Code, now: i64) {
        self.inserts_since_sweep += 1;
        if self.inserts_since_sweep >= 4096 {
            self.inserts_since_sweep = 0;
            // keep used/expired codes for an hour after expiry so reuse is still reported
            self.codes.retain(|_, c| c.expires_at + 3_600 * MS > now);
        }
        self.codes.insert(code, c);
    }

    /// Creates a grant for `user`.
    pub(crate) fn new_grant(&mut self, client_id: &str, user: &str, scopes: Vec<String>) -> u64 {
        self.next_grant += 1;
        let id = self.next_grant;
        self.grants.insert(
            id,
            Grant {
                id,
                client_id: client_id.to_owned(),
                user: user.to_owned(),
                scopes,
                refresh_token: None,
                refresh_expires_at: None,
                access_tokens: VecDeque::new(),
                revoked: false,
                refreshes: 0,
                client_reference_id: None,
            },
        );
        self.by_user.entry(user.to_owned()).or_default().push(id);
        id
    }

    /// Issues an access token for a grant (dropping the oldest beyond the per-grant cap).
    pub(crate) fn issue_access(
        &mut self,
        grant: u64,
        token: String,
        now: i64,
        ttl_ms: i64,
        kind: TokenKind,
    ) {
        let Some(g) = self.grants.get_mut(&grant) else {
            return;
        };
        g.access_tokens.push_back(token.clone());
        while g.access_tokens.len() > MAX_ACCESS_PER_GRANT {
            if let Some(old) = g.access_tokens.pop_front() {
                self.access.remove(&old);
            }
        }
        self.access.insert(
            token,
            AccessEntry {
                grant,
                issued_at: now,
                expires_at: now.saturating_add(ttl_ms),
                kind,
            },
        );
    }

    /// Sets (rotating away any previous) refresh token of a grant.
    pub(crate) fn set_refresh(&mut self, grant: u64, token: String, expires_at: Option<i64>) {
        let Some(g) = self.grants.get_mut(&grant) else {
            return;
        };
        if let Some(old) = g.refresh_token.take() {
            self.refresh.remove(&old);
        }
        g.refresh_token = Some(token.clone());
        g.refresh_expires_at = expires_at;
        self.refresh.insert(token, grant);
    }

    /// Looks up an access token.
    pub(crate) fn check_access(&self, token: &str, now: i64) -> AccessCheck {
        let Some(entry) = self.access.get(token) else {
            return AccessCheck::Unknown;
        };
        let Some(g) = self.grants.get(&entry.grant) else {
            return AccessCheck::Unknown;
        };
        if g.revoked {
            return AccessCheck::Revoked;
        }
        if entry.expires_at <= now {
            return AccessCheck::Expired {
                client_id: g.client_id.clone(),
            };
        }
        AccessCheck::Valid {
            entry: entry.clone(),
            user: g.user.clone(),
            client_id: g.client_id.clone(),
            scopes: g.scopes.clone(),
        }
    }

    /// Removes a grant and all its tokens.
    pub(crate) fn remove_grant(&mut self, grant: u64) {
        if let Some(g) = self.grants.get_mut(&grant) {
            g.revoked = true;
            if let Some(rt) = g.refresh_token.take() {
                self.refresh.remove(&rt);
            }
            for t in g.access_tokens.drain(..) {
                self.access.remove(&t);
            }
        }
    }

    /// Grant ids of a user.
    pub(crate) fn user_grants(&self, user: &str) -> Vec<u64> {
        self.by_user.get(user).cloned().unwrap_or_default()
    }
}

/// Per-platform state.
#[derive(Debug)]
pub(crate) struct PlatformState {
    pub(crate) store: Mutex<Store>,
    pub(crate) faults: FaultSlot,
    /// The API quota window (`quota.rs`).
    pub(crate) quota: crate::quota::QuotaSlot,
    pub(crate) refresh_calls: AtomicU64,
    pub(crate) refresh_ok: AtomicU64,
    pub(crate) requests: AtomicU64,
    /// Access-token lifetime (Instagram: the long-lived token; OnlyFans: the connection).
    pub(crate) access_ttl_ms: AtomicI64,
    /// Refresh-token lifetime; `<= 0` means "does not expire".
    pub(crate) refresh_ttl_ms: AtomicI64,
    /// Instagram short-lived token lifetime.
    pub(crate) short_ttl_ms: AtomicI64,
}

impl PlatformState {
    fn new(p: Platform) -> Self {
        let (access, refresh) = crate::default_lifetimes(p);
        Self {
            store: Mutex::new(Store::default()),
            faults: FaultSlot::default(),
            quota: crate::quota::QuotaSlot::new(p),
            refresh_calls: AtomicU64::new(0),
            refresh_ok: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            access_ttl_ms: AtomicI64::new(dur_ms(access)),
            refresh_ttl_ms: AtomicI64::new(refresh.map(dur_ms).unwrap_or(0)),
            short_ttl_ms: AtomicI64::new(3_600 * MS),
        }
    }

    /// Locks the store (a poisoned lock is recovered: the maps stay consistent per operation).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn access_ttl(&self) -> i64 {
        self.access_ttl_ms.load(Ordering::Relaxed)
    }

    pub(crate) fn refresh_expiry(&self, now: i64) -> Option<i64> {
        let t = self.refresh_ttl_ms.load(Ordering::Relaxed);
        (t > 0).then(|| now.saturating_add(t))
    }
}

pub(crate) fn dur_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Everything the server shares.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: SandboxConfig,
    pub(crate) base_url: OnceLock<String>,
    pub(crate) clock_offset_ms: AtomicI64,
    /// 0 = interactive, 1 = allow, 2 = deny.
    pub(crate) auto_consent: AtomicU8,
    pub(crate) code_ttl_ms: AtomicI64,
    clients: RwLock<HashMap<(Platform, String), RegisteredClient>>,
    /// OnlyFans API key → client id.
    api_keys: RwLock<HashMap<String, String>>,
    demo: Vec<SandboxClient>,
    platforms: [PlatformState; 4],
    /// Webhook targets, signing secret and delivery logs.
    pub(crate) hooks: crate::webhooks::Hooks,
}

impl Inner {
    pub(crate) fn new(config: SandboxConfig) -> Self {
        let auto = match config.auto_consent {
            None => 0,
            Some(Consent::Allow) => 1,
            Some(Consent::Deny) => 2,
        };
        let code_ttl = dur_ms(config.code_ttl);
        let mut inner = Self {
            base_url: OnceLock::new(),
            clock_offset_ms: AtomicI64::new(0),
            auto_consent: AtomicU8::new(auto),
            code_ttl_ms: AtomicI64::new(code_ttl),
            clients: RwLock::new(HashMap::new()),
            api_keys: RwLock::new(HashMap::new()),
            demo: Vec::new(),
            platforms: Platform::ALL.map(PlatformState::new),
            hooks: crate::webhooks::Hooks::new(),
            config,
        };
        let mut demo = Vec::new();
        for p in Platform::ALL {
            let uris: Vec<String> = inner
                .config
                .redirect_uris
                .iter()
                .map(|u| u.replace("{platform}", p.as_str()))
                .collect();
            let (id, secret) = crate::demo_credentials(p);
            inner.insert_client(
                p,
                RegisteredClient {
                    client_id: id.to_owned(),
                    client_secret: secret.to_owned(),
                    redirect_uris: uris.clone(),
                },
            );
            demo.push(SandboxClient {
                platform: p,
                client_id: id.to_owned(),
                client_secret: secret.to_owned(),
                redirect_uri: uris.first().cloned().unwrap_or_default(),
            });
        }
        inner.demo = demo;
        inner
    }

    pub(crate) fn insert_client(&self, p: Platform, c: RegisteredClient) {
        if p == Platform::OnlyFans {
            self.api_keys
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(c.client_secret.clone(), c.client_id.clone());
        }
        self.clients
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert((p, c.client_id.clone()), c);
    }

    pub(crate) fn client(&self, p: Platform, client_id: &str) -> Option<RegisteredClient> {
        self.clients
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(p, client_id.to_owned()))
            .cloned()
    }

    /// Checks a client id + secret pair; `None` when unknown or wrong.
    pub(crate) fn authenticate(
        &self,
        p: Platform,
        client_id: &str,
        secret: &str,
    ) -> Option<RegisteredClient> {
        self.client(p, client_id)
            .filter(|c| constant_time_eq(c.client_secret.as_bytes(), secret.as_bytes()))
    }

    /// The client id an OnlyFans API key belongs to.
    pub(crate) fn api_key_client(&self, key: &str) -> Option<String> {
        self.api_keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    pub(crate) fn demo_client(&self, p: Platform) -> SandboxClient {
        self.demo
            .iter()
            .find(|c| c.platform == p)
            .cloned()
            .unwrap_or_else(|| SandboxClient {
                platform: p,
                client_id: String::new(),
                client_secret: String::new(),
                redirect_uri: String::new(),
            })
    }

    pub(crate) fn all_clients(&self) -> Vec<SandboxClient> {
        let map = self.clients.read().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<SandboxClient> = map
            .iter()
            .map(|((p, _), c)| SandboxClient {
                platform: *p,
                client_id: c.client_id.clone(),
                client_secret: c.client_secret.clone(),
                redirect_uri: c.redirect_uris.first().cloned().unwrap_or_default(),
            })
            .collect();
        v.sort_by(|a, b| (a.platform, &a.client_id).cmp(&(b.platform, &b.client_id)));
        v
    }

    pub(crate) fn platform(&self, p: Platform) -> &PlatformState {
        &self.platforms[p.index()]
    }

    /// The sandbox clock in milliseconds since the Unix epoch (system time + offset).
    pub(crate) fn now_ms(&self) -> i64 {
        let sys = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        sys.saturating_add(self.clock_offset_ms.load(Ordering::Relaxed))
    }

    pub(crate) fn code_ttl(&self) -> i64 {
        self.code_ttl_ms.load(Ordering::Relaxed)
    }

    pub(crate) fn auto_consent(&self) -> Option<Consent> {
        match self.auto_consent.load(Ordering::Relaxed) {
            1 => Some(Consent::Allow),
            2 => Some(Consent::Deny),
            _ => None,
        }
    }

    pub(crate) fn base_url(&self) -> &str {
        self.base_url.get().map(String::as_str).unwrap_or("")
    }
}

/// Compares secrets without an early exit.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
