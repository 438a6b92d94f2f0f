//! [`TokenCipher`]: XChaCha20-Poly1305 sealing of secrets at rest, with a key ring and
//! associated data that binds each ciphertext to its row and column.

use crate::secret::SealedSecret;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::Zeroizing;

/// The environment variable holding the current key (base64 of 32 bytes).
pub const KEY_ENV: &str = "TOKEN_ENCRYPTION_KEY";
/// The environment variable holding older keys that still open (comma-separated base64).
pub const PREVIOUS_KEYS_ENV: &str = "TOKEN_ENCRYPTION_KEY_PREVIOUS";

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// Errors of key loading and sealing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// A key variable is not set.
    #[error("{variable} is not set: it must hold the base64 of 32 random bytes")]
    MissingKey {
        /// The variable.
        variable: &'static str,
    },
    /// A key is not valid base64.
    #[error("{variable} is not valid base64: it must hold the base64 of 32 random bytes")]
    KeyNotBase64 {
        /// The variable (or `"key"` when given in code).
        variable: &'static str,
    },
    /// A key decodes to the wrong number of bytes.
    #[error("{variable} decodes to {len} bytes; it must be exactly 32")]
    KeyWrongLength {
        /// The variable (or `"key"` when given in code).
        variable: &'static str,
        /// The decoded length.
        len: usize,
    },
    /// The sealed value is not in the `v1.<kid>.<data>` form.
    #[error("the sealed value is malformed")]
    Malformed,
    /// No key in the ring has the value's key id.
    #[error("no key with id {key_id} is loaded")]
    UnknownKey {
        /// The key id of the value.
        key_id: String,
    },
    /// Authentication failed: wrong key, tampered data, or a ciphertext moved to another
    /// row or column.
    #[error(
        "the sealed value failed authentication (tampered, or moved from another row or column)"
    )]
    Authentication,
    /// The plaintext is not UTF-8.
    #[error("the opened value is not UTF-8")]
    NotUtf8,
}

/// Table name used in the associated data of sealed account tokens.
pub const ACCOUNTS_TABLE: &str = "oauth_accounts";
/// Table name used in the associated data of sealed PKCE verifiers.
pub const PENDING_TABLE: &str = "oauth_pending_authorizations";

/// Where a sealed value lives; it is authenticated as associated data, so a ciphertext
/// copied to another row or column fails to open.
///
/// Made by its named constructors, one per kind of stored secret, so that the sealing and
/// the opening of a value always describe it alike:
///
/// ```
/// use integrations_core::SecretContext;
/// let at = SecretContext::access_token("reddit", "1w72");
/// assert_eq!((at.table, at.column), ("oauth_accounts", "access_token"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecretContext<'a> {
    /// Table name (`oauth_accounts`).
    pub table: &'a str,
    /// Provider id.
    pub provider: &'a str,
    /// The row's natural key (provider account id, or the state hash for pending rows).
    pub row: &'a str,
    /// Column name (`access_token`).
    pub column: &'a str,
}

impl<'a> SecretContext<'a> {
    /// The access token of the account `account` (its `provider_account_id`) of `provider`.
    pub const fn access_token(provider: &'a str, account: &'a str) -> Self {
        Self::account_column(provider, account, "access_token")
    }

    /// The refresh token of the account `account` of `provider`.
    pub const fn refresh_token(provider: &'a str, account: &'a str) -> Self {
        Self::account_column(provider, account, "refresh_token")
    }

    /// The PKCE verifier of the pending authorization whose state hash is `state_hash_hex`
    /// ([`StateHash::to_hex`](crate::StateHash::to_hex)).
    pub const fn pkce_verifier(provider: &'a str, state_hash_hex: &'a str) -> Self {
        Self {
            table: PENDING_TABLE,
            provider,
            row: state_hash_hex,
            column: "pkce_verifier",
        }
    }

    const fn account_column(provider: &'a str, account: &'a str, column: &'a str) -> Self {
        Self {
            table: ACCOUNTS_TABLE,
            provider,
            row: account,
            column,
        }
    }

    fn aad(&self) -> Vec<u8> {
        // Length-prefixed so no two contexts encode alike.
        let mut out = Vec::with_capacity(64);
        for part in [self.table, self.provider, self.row, self.column] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out
    }
}

/// One 256-bit key with its id (the first 8 hex digits of SHA-256 of the key).
#[derive(Clone)]
pub struct EncryptionKey {
    id: String,
    key: Zeroizing<[u8; 32]>,
}

impl EncryptionKey {
    /// A key from 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let id = hex::encode(&Sha256::digest(bytes)[..4]);
        Self {
            id,
            key: Zeroizing::new(bytes),
        }
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::fill(&mut bytes[..]);
        Self::from_bytes(*bytes)
    }

    /// A key from base64 (standard or URL-safe alphabet, padding optional).
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        Self::parse(text, "key")
    }

    fn parse(text: &str, variable: &'static str) -> Result<Self, CryptoError> {
        let text = text.trim();
        let decoded = Zeroizing::new(
            STANDARD
                .decode(text)
                .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
                .map_err(|_| CryptoError::KeyNotBase64 { variable })?,
        );
        let bytes: [u8; 32] =
            decoded
                .as_slice()
                .try_into()
                .map_err(|_| CryptoError::KeyWrongLength {
                    variable,
                    len: decoded.len(),
                })?;
        Ok(Self::from_bytes(bytes))
    }

    /// The key as standard base64 (to save a generated key).
    pub fn to_base64(&self) -> zeroize::Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(*self.key))
    }

    /// The key id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptionKey(id={}, [redacted])", self.id)
    }
}

/// Seals and opens secrets. Cheap to clone.
///
/// ```
/// use integrations_core::{EncryptionKey, SecretContext, TokenCipher};
/// let cipher = TokenCipher::new(EncryptionKey::generate());
/// let at = SecretContext::access_token("reddit", "1w72");
/// let sealed = cipher.seal(at, "token-text").unwrap();
/// assert_eq!(&*cipher.open(at, &sealed).unwrap(), "token-text");
/// let moved = SecretContext::refresh_token("reddit", "1w72");
/// assert!(cipher.open(moved, &sealed).is_err());
/// ```
#[derive(Clone)]
pub struct TokenCipher {
    current: EncryptionKey,
    previous: Vec<EncryptionKey>,
}

impl fmt::Debug for TokenCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCipher")
            .field("current", &self.current.id)
            .field(
                "previous",
                &self.previous.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl TokenCipher {
    /// A cipher with one key.
    pub fn new(current: EncryptionKey) -> Self {
        Self {
            current,
            previous: Vec::new(),
        }
    }

    /// Adds an older key that still opens values sealed under it.
    pub fn with_previous(mut self, key: EncryptionKey) -> Self {
        if key.id != self.current.id {
            self.previous.push(key);
        }
        self
    }

    /// Reads `TOKEN_ENCRYPTION_KEY` (required) and `TOKEN_ENCRYPTION_KEY_PREVIOUS`
    /// (optional, comma-separated). Errors name the variable.
    pub fn from_env() -> Result<Self, CryptoError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env) with a custom variable lookup.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, CryptoError> {
        let current = lookup(KEY_ENV)
            .filter(|v| !v.trim().is_empty())
            .ok_or(CryptoError::MissingKey { variable: KEY_ENV })?;
        let mut cipher = Self::new(EncryptionKey::parse(&current, KEY_ENV)?);
        if let Some(prev) = lookup(PREVIOUS_KEYS_ENV) {
            for part in prev.split(',').filter(|p| !p.trim().is_empty()) {
                cipher = cipher.with_previous(EncryptionKey::parse(part, PREVIOUS_KEYS_ENV)?);
            }
        }
        Ok(cipher)
    }

    /// The id of the key new values are sealed with.
    pub fn current_key_id(&self) -> &str {
        &self.current.id
    }

    /// Seals `plaintext` for `context` under the current key with a fresh random nonce.
    pub fn seal(
        &self,
        context: SecretContext<'_>,
        plaintext: &str,
    ) -> Result<SealedSecret, CryptoError> {
        let aead = XChaCha20Poly1305::new(&Key::from(*self.current.key));
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce[..]);
        let aad = context.aad();
        let ct = aead
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::Authentication)?;
        let mut blob = Vec::with_capacity(NONCE_LEN + ct.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ct);
        Ok(SealedSecret::from_sealed(format!(
            "v1.{}.{}",
            self.current.id,
            URL_SAFE_NO_PAD.encode(blob)
        )))
    }

    /// Opens a sealed value for `context`, with whichever loaded key sealed it.
    pub fn open(
        &self,
        context: SecretContext<'_>,
        sealed: &SealedSecret,
    ) -> Result<Zeroizing<String>, CryptoError> {
        let mut parts = sealed.as_str().splitn(3, '.');
        let (Some("v1"), Some(kid), Some(data)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CryptoError::Malformed);
        };
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == kid)
            .ok_or_else(|| CryptoError::UnknownKey {
                key_id: kid.chars().take(16).collect(),
            })?;
        let blob = URL_SAFE_NO_PAD
            .decode(data)
            .map_err(|_| CryptoError::Malformed)?;
        if blob.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Malformed);
        }
        let (nonce, ct) = blob.split_at(NONCE_LEN);
        let aead = XChaCha20Poly1305::new(&Key::from(*key.key));
        let aad = context.aad();
        let pt = Zeroizing::new(
            aead.decrypt(
                &XNonce::try_from(nonce).map_err(|_| CryptoError::Malformed)?,
                Payload { msg: ct, aad: &aad },
            )
            .map_err(|_| CryptoError::Authentication)?,
        );
        let text = std::str::from_utf8(&pt).map_err(|_| CryptoError::NotUtf8)?;
        Ok(Zeroizing::new(text.to_owned()))
    }

    /// Whether a value was sealed under an older key and should be re-sealed.
    pub fn needs_reseal(&self, sealed: &SealedSecret) -> bool {
        sealed.key_id() != Some(self.current.id.as_str())
    }

    /// Opens with any loaded key and seals again under the current key.
    pub fn reseal(
        &self,
        context: SecretContext<'_>,
        sealed: &SealedSecret,
    ) -> Result<SealedSecret, CryptoError> {
        let plain = self.open(context, sealed)?;
        self.seal(context, &plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: SecretContext<'static> = SecretContext::access_token("tiktok", "-000abc");

    #[test]
    fn seal_open_round_trip_with_fresh_nonces() {
        let c = TokenCipher::new(EncryptionKey::generate());
        let a = c.seal(AT, "act.secret").unwrap();
        let b = c.seal(AT, "act.secret").unwrap();
        assert_ne!(a, b, "nonces must differ");
        assert!(!a.as_str().contains("act.secret"));
        assert_eq!(&*c.open(AT, &a).unwrap(), "act.secret");
    }

    #[test]
    fn moved_ciphertext_fails() {
        let c = TokenCipher::new(EncryptionKey::generate());
        let s = c.seal(AT, "x").unwrap();
        for moved in [
            SecretContext::refresh_token("tiktok", "-000abc"),
            SecretContext::access_token("tiktok", "-000abd"),
            SecretContext::access_token("reddit", "-000abc"),
            SecretContext::pkce_verifier("tiktok", "-000abc"),
            // Same provider, row and column, another table.
            SecretContext {
                table: "other",
                ..AT
            },
        ] {
            assert_eq!(c.open(moved, &s).unwrap_err(), CryptoError::Authentication);
        }
    }

    #[test]
    fn tampered_and_malformed_fail() {
        let c = TokenCipher::new(EncryptionKey::generate());
        let s = c.seal(AT, "hello").unwrap();
        let mut text = s.as_str().to_owned();
        let last = text.pop().unwrap();
        text.push(if last == 'A' { 'B' } else { 'A' });
        assert!(c.open(AT, &SealedSecret::from_stored(text)).is_err());
        assert_eq!(
            c.open(AT, &SealedSecret::from_stored("garbage"))
                .unwrap_err(),
            CryptoError::Malformed
        );
        assert_eq!(
            c.open(
                AT,
                &SealedSecret::from_stored(format!("v1.{}.AAAA", c.current_key_id()))
            )
            .unwrap_err(),
            CryptoError::Malformed
        );
    }

    #[test]
    fn key_ring_rotation() {
        let old = EncryptionKey::generate();
        let new = EncryptionKey::generate();
        let c_old = TokenCipher::new(old.clone());
        let sealed = c_old.seal(AT, "v").unwrap();
        let c_new = TokenCipher::new(new.clone());
        assert!(matches!(
            c_new.open(AT, &sealed),
            Err(CryptoError::UnknownKey { .. })
        ));
        let ring = TokenCipher::new(new).with_previous(old);
        assert!(ring.needs_reseal(&sealed));
        let resealed = ring.reseal(AT, &sealed).unwrap();
        assert!(!ring.needs_reseal(&resealed));
        assert_eq!(&*ring.open(AT, &resealed).unwrap(), "v");
    }

    #[test]
    fn env_errors_name_the_variable() {
        let none = TokenCipher::from_lookup(|_| None).unwrap_err();
        assert!(none.to_string().contains(KEY_ENV));
        let bad = TokenCipher::from_lookup(|_| Some("%%%".into())).unwrap_err();
        assert_eq!(bad, CryptoError::KeyNotBase64 { variable: KEY_ENV });
        assert!(bad.to_string().contains(KEY_ENV));
        let short = TokenCipher::from_lookup(|_| Some(STANDARD.encode([1u8; 16]))).unwrap_err();
        assert_eq!(
            short,
            CryptoError::KeyWrongLength {
                variable: KEY_ENV,
                len: 16
            }
        );
        let key = EncryptionKey::generate();
        let k = key.to_base64();
        let prev = EncryptionKey::generate().to_base64();
        let c = TokenCipher::from_lookup(|n| match n {
            KEY_ENV => Some(k.to_string()),
            PREVIOUS_KEYS_ENV => Some(format!("{},  ", &*prev)),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.current_key_id(), key.id());
        assert_eq!(c.previous.len(), 1);
        let bad_prev = TokenCipher::from_lookup(|n| match n {
            KEY_ENV => Some(k.to_string()),
            _ => Some("nope!".into()),
        })
        .unwrap_err();
        assert!(bad_prev.to_string().contains(PREVIOUS_KEYS_ENV));
    }

    #[test]
    fn blobs_shorter_than_a_nonce_and_a_tag_are_malformed_and_an_empty_secret_opens() {
        let c = TokenCipher::new(EncryptionKey::generate());
        for len in 0..NONCE_LEN + TAG_LEN {
            let data = URL_SAFE_NO_PAD.encode(vec![7u8; len]);
            let sealed = SealedSecret::from_stored(format!("v1.{}.{data}", c.current_key_id()));
            assert_eq!(
                c.open(AT, &sealed),
                Err(CryptoError::Malformed),
                "{len} bytes"
            );
        }
        // The shortest real blob: a nonce and the tag of an empty secret.
        let empty = c.seal(AT, "").unwrap();
        assert_eq!(c.open(AT, &empty).unwrap().as_str(), "");
    }

    #[test]
    fn debug_hides_key_material() {
        let k = EncryptionKey::generate();
        let b64 = k.to_base64();
        let c = TokenCipher::new(k.clone());
        assert!(!format!("{k:?}{c:?}").contains(b64.as_str()));
        // What `Debug` is for: telling keys apart by their public id.
        assert_eq!(
            format!("{k:?}"),
            format!("EncryptionKey(id={}, [redacted])", k.id())
        );
        let old = EncryptionKey::generate();
        let c = TokenCipher::new(k.clone()).with_previous(old.clone());
        let shown = format!("{c:?}");
        assert!(
            shown.starts_with("TokenCipher") && shown.contains(k.id()) && shown.contains(old.id()),
            "{shown}"
        );
    }
}
