//! Grants in bulk, for load tests: [`SandboxHandle::seed_grants`] creates many grants in one
//! call, each as if its user had consented and the client had exchanged the code, with
//! tokens derived from a seed the caller chooses ([`SeedGrants::tokens`]), so a load test
//! can fill its own database with the same tokens without receiving them;
//! [`SandboxHandle::grant_summary`] then says how often each of those grants was
//! refreshed.
//!
//! Seeded grants are ordinary grants: the token, refresh, revoke and profile endpoints treat
//! them exactly like grants made by a consent and a code exchange (the wire is unchanged).
//! Only platforms with refresh tokens are offered (TikTok, Reddit): Instagram refreshes a
//! long-lived token that must first age 24 hours, and the OnlyFans gateway has no refresh.

use crate::state::{Store, TokenKind};
use crate::util::valid_user_name;
use crate::{Error, Platform, Result, SandboxHandle};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use std::fmt;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The most grants one [`SandboxHandle::seed_grants`] call creates (memory: about a
/// kilobyte per grant).
pub const MAX_SEEDED_GRANTS: u64 = 5_000_000;

/// The shortest seed accepted, in characters.
pub const MIN_SEED_LEN: usize = 16;

/// What [`SandboxHandle::seed_grants`] creates: one grant for each of the users
/// `{user_prefix}{first}` … `{user_prefix}{first + count - 1}` (decimal indexes, no padding),
/// issued to the platform's demo client unless `client_id` names another registered one.
///
/// Also the body of `POST /_sandbox/{platform}/grants/seed` (JSON; `first`, `scopes` and
/// `client_id` may be left out).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedGrants {
    /// The users' common prefix; every user name (prefix and index) must be a valid
    /// sandbox user name: 1–30 of `[A-Za-z0-9_.-]`.
    pub user_prefix: String,
    /// The first index.
    #[serde(default)]
    pub first: u64,
    /// How many grants (1 to [`MAX_SEEDED_GRANTS`]).
    pub count: u64,
    /// The secret the tokens derive from (at least [`MIN_SEED_LEN`] characters); a load
    /// test picks a fresh random one per run.
    pub seed: String,
    /// The granted scopes; empty: the platform's basic scope (`user.info.basic`,
    /// `identity`).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The client the grants are issued to; `None`: the platform's demo client.
    #[serde(default)]
    pub client_id: Option<String>,
}

impl fmt::Debug for SeedGrants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeedGrants")
            .field("user_prefix", &self.user_prefix)
            .field("first", &self.first)
            .field("count", &self.count)
            .field("seed", &"[redacted]")
            .field("scopes", &self.scopes)
            .field("client_id", &self.client_id)
            .finish()
    }
}

/// The tokens of one seeded grant, as the sandbox issued them.
#[derive(Clone, PartialEq, Eq)]
pub struct SeededTokens {
    /// The access token.
    pub access_token: String,
    /// The refresh token (valid until the first refresh rotates it, on TikTok).
    pub refresh_token: String,
}

impl fmt::Debug for SeededTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SeededTokens([redacted])")
    }
}

impl SeedGrants {
    /// The user name of index `index`: `{user_prefix}{index}`.
    pub fn user(&self, index: u64) -> String {
        format!("{}{index}", self.user_prefix)
    }

    /// The tokens the sandbox issues to the grant of index `index` on `platform`:
    /// `base64url(HMAC-SHA256(seed, "<platform>\0<access|refresh>\0<user>"))` behind the
    /// platform's token prefix (TikTok `act.` / `rft.`).
    pub fn tokens(&self, platform: Platform, index: u64) -> SeededTokens {
        let user = self.user(index);
        let derive = |kind: &str| {
            // HMAC accepts keys of any length; the fallback is unreachable.
            let Ok(mut mac) = HmacSha256::new_from_slice(self.seed.as_bytes()) else {
                return String::new();
            };
            for part in [platform.as_str(), "\0", kind, "\0", user.as_str()] {
                mac.update(part.as_bytes());
            }
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        };
        let (access, refresh) = match platform {
            Platform::TikTok => ("act.", "rft."),
            _ => ("", ""),
        };
        SeededTokens {
            access_token: format!("{access}{}", derive("access")),
            refresh_token: format!("{refresh}{}", derive("refresh")),
        }
    }

    fn check(&self, platform: Platform) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidSeed(m));
        if !matches!(platform, Platform::TikTok | Platform::Reddit) {
            return bad(format!(
                "{platform}: seeded grants are offered for platforms with refresh tokens \
                 (tiktok, reddit)"
            ));
        }
        if self.count == 0 || self.count > MAX_SEEDED_GRANTS {
            return bad(format!(
                "count must be between 1 and {MAX_SEEDED_GRANTS}, not {}",
                self.count
            ));
        }
        if self.seed.chars().count() < MIN_SEED_LEN {
            return bad(format!(
                "the seed must have at least {MIN_SEED_LEN} characters"
            ));
        }
        let Some(last) = self.first.checked_add(self.count - 1) else {
            return bad("first + count overflows".to_owned());
        };
        for index in [self.first, last] {
            let user = self.user(index);
            if !valid_user_name(&user) {
                return bad(format!(
                    "user name {user:?} is not 1-30 of [A-Za-z0-9_.-] (shorten the prefix)"
                ));
            }
        }
        if self.scopes.iter().any(|s| s.trim().is_empty()) {
            return bad("a scope is empty".to_owned());
        }
        Ok(())
    }
}

/// What [`SandboxHandle::seed_grants`] made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeededGrants {
    /// The platform.
    pub platform: Platform,
    /// Grants created.
    pub created: u64,
    /// The first user (`{user_prefix}{first}`).
    pub first_user: String,
    /// The last user.
    pub last_user: String,
}

/// How often the grants of users sharing a prefix were refreshed
/// ([`SandboxHandle::grant_summary`]): a load test that refreshed each of them once expects
/// `refreshed_once == grants` and nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantSummary {
    /// The platform.
    pub platform: Platform,
    /// The prefix counted.
    pub user_prefix: String,
    /// Grants of users whose name starts with the prefix.
    pub grants: u64,
    /// Never refreshed.
    pub never_refreshed: u64,
    /// Refreshed exactly once.
    pub refreshed_once: u64,
    /// Refreshed twice or more.
    pub refreshed_more: u64,
    /// Revoked (by the client, the controls or a removal of the app), whatever their
    /// refresh count.
    pub revoked: u64,
    /// Successful refreshes of all of them.
    pub refreshes: u64,
    /// The most refreshes of one grant.
    pub max_refreshes: u64,
}

fn default_scopes(platform: Platform) -> Vec<String> {
    let scope = match platform {
        Platform::Reddit => "identity",
        _ => "user.info.basic",
    };
    vec![scope.to_owned()]
}

impl SandboxHandle {
    /// Creates the grants `seed` describes on `platform` in one call (see [`SeedGrants`]):
    /// each has the access token and refresh token [`SeedGrants::tokens`] derives, issued
    /// now with the platform's current lifetimes, and counts as a new authorization of the
    /// client by that user. Refused with [`Error::InvalidSeed`] when the platform has no
    /// refresh tokens, the count, seed, names or scopes are invalid, the client is not
    /// registered, or one of the users already has a grant on the platform (seed a fresh
    /// prefix, or start a fresh sandbox).
    pub fn seed_grants(&self, platform: Platform, seed: &SeedGrants) -> Result<SeededGrants> {
        seed.check(platform)?;
        let client_id = match &seed.client_id {
            Some(id) => self
                .inner
                .client(platform, id)
                .map(|c| c.client_id)
                .ok_or_else(|| Error::InvalidSeed(format!("no {platform} client {id:?}")))?,
            None => self.client(platform).client_id,
        };
        let scopes = if seed.scopes.is_empty() {
            default_scopes(platform)
        } else {
            seed.scopes.clone()
        };
        // Derive outside the lock: the HMACs are the costly part.
        let tokens: Vec<(String, SeededTokens)> = (seed.first..seed.first + seed.count)
            .map(|i| (seed.user(i), seed.tokens(platform, i)))
            .collect();
        let ps = self.inner.platform(platform);
        let now = self.inner.now_ms();
        let access_ttl = ps.access_ttl();
        let refresh_exp = ps.refresh_expiry(now);
        let mut store = ps.lock();
        if let Some((user, _)) = tokens.iter().find(|(u, _)| store.by_user.contains_key(u)) {
            return Err(Error::InvalidSeed(format!(
                "{user} already has a {platform} grant"
            )));
        }
        reserve(&mut store, tokens.len());
        for (user, t) in tokens {
            let grant = store.new_grant(&client_id, &user, scopes.clone());
            store.issue_access(grant, t.access_token, now, access_ttl, TokenKind::Normal);
            store.set_refresh(grant, t.refresh_token, refresh_exp);
        }
        Ok(SeededGrants {
            platform,
            created: seed.count,
            first_user: seed.user(seed.first),
            last_user: seed.user(seed.first + seed.count - 1),
        })
    }

    /// Counts the refreshes of the grants of every user whose name starts with
    /// `user_prefix` on `platform` (one walk over the platform's grants under its lock: a
    /// few milliseconds per 100,000 grants).
    pub fn grant_summary(&self, platform: Platform, user_prefix: &str) -> GrantSummary {
        let store = self.inner.platform(platform).lock();
        let mut s = GrantSummary {
            platform,
            user_prefix: user_prefix.to_owned(),
            grants: 0,
            never_refreshed: 0,
            refreshed_once: 0,
            refreshed_more: 0,
            revoked: 0,
            refreshes: 0,
            max_refreshes: 0,
        };
        for g in store
            .grants
            .values()
            .filter(|g| g.user.starts_with(user_prefix))
        {
            s.grants += 1;
            match g.refreshes {
                0 => s.never_refreshed += 1,
                1 => s.refreshed_once += 1,
                _ => s.refreshed_more += 1,
            }
            s.revoked += u64::from(g.revoked);
            s.refreshes += g.refreshes;
            s.max_refreshes = s.max_refreshes.max(g.refreshes);
        }
        s
    }
}

fn reserve(store: &mut Store, n: usize) {
    store.grants.reserve(n);
    store.by_user.reserve(n);
    store.access.reserve(n);
    store.refresh.reserve(n);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> SeedGrants {
        SeedGrants {
            user_prefix: "load-".into(),
            first: 0,
            count: 3,
            seed: "0123456789abcdef0123".into(),
            scopes: Vec::new(),
            client_id: None,
        }
    }

    #[test]
    fn tokens_are_stable_distinct_and_never_in_debug() {
        let s = seed();
        let a = s.tokens(Platform::TikTok, 1);
        assert_eq!(a, s.tokens(Platform::TikTok, 1));
        assert_ne!(a, s.tokens(Platform::TikTok, 2));
        assert_ne!(a.access_token, a.refresh_token);
        assert!(a.access_token.starts_with("act.") && a.refresh_token.starts_with("rft."));
        let other = SeedGrants {
            seed: "another-seed-0123456".into(),
            ..seed()
        };
        assert_ne!(a, other.tokens(Platform::TikTok, 1));
        let shown = format!("{a:?} {s:?}");
        assert!(!shown.contains(&a.access_token[4..]), "{shown}");
        assert!(!shown.contains(&s.seed), "{shown}");
    }

    #[test]
    fn bad_requests_are_refused_with_the_reason() {
        let cases: [(Platform, SeedGrants, &str); 5] = [
            (Platform::Instagram, seed(), "refresh tokens"),
            (Platform::TikTok, SeedGrants { count: 0, ..seed() }, "count"),
            (
                Platform::TikTok,
                SeedGrants {
                    seed: "short".into(),
                    ..seed()
                },
                "seed",
            ),
            (
                Platform::TikTok,
                SeedGrants {
                    user_prefix: "a prefix with spaces".into(),
                    ..seed()
                },
                "user name",
            ),
            (
                Platform::TikTok,
                SeedGrants {
                    user_prefix: "x".repeat(29),
                    first: 9,
                    count: 2,
                    ..seed()
                },
                "shorten the prefix",
            ),
        ];
        for (platform, s, expected) in cases {
            let err = s.check(platform).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
    }
}
