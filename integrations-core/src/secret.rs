//! Secret newtypes: plaintext credentials and their sealed (encrypted) form.
//!
//! Plaintext secrets ([`AccessToken`], [`RefreshToken`], [`PkceVerifier`],
//! [`ClientSecret`]) print as `AccessToken([redacted])`, have no `Display`, are zeroized
//! on drop and are read only through an explicit `expose_secret()`.
//!
//! [`SealedSecret`] is the only form a [`TokenStore`](crate::TokenStore) ever sees. It is
//! produced by [`TokenCipher::seal`](crate::TokenCipher::seal); there is no conversion from
//! a plaintext secret to a `SealedSecret` that skips the cipher.

use secrecy::{ExposeSecret, SecretString};
use std::fmt;

macro_rules! secret_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct $name(SecretString);

        impl $name {
            /// Wraps a plaintext secret.
            pub fn new(secret: impl Into<String>) -> Self {
                Self(SecretString::from(secret.into()))
            }

            /// The plaintext. Every call site that reads a secret says so by name.
            pub fn expose_secret(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self::new(value)
            }
        }
    };
}

secret_type!(
    /// An OAuth access token (or, for gateway providers, the credential that stands in
    /// for one).
    AccessToken
);
secret_type!(
    /// An OAuth refresh token.
    RefreshToken
);
secret_type!(
    /// A PKCE code verifier (RFC 7636). Used once, at the code exchange.
    PkceVerifier
);
secret_type!(
    /// An OAuth client secret or a gateway API key.
    ClientSecret
);

/// A secret sealed by [`TokenCipher`](crate::TokenCipher): `v1.<key id>.<base64url(nonce ‖
/// ciphertext ‖ tag)>`.
///
/// It reveals nothing without the key, yet its `Debug` still prints only the key id and
/// length. Stores persist [`SealedSecret::as_str`] and rebuild the value with
/// [`SealedSecret::from_stored`].
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret(String);

impl SealedSecret {
    pub(crate) fn from_sealed(value: String) -> Self {
        Self(value)
    }

    /// Rebuilds a sealed value read back from storage. Nothing is checked here; a
    /// malformed or tampered value fails when it is opened.
    pub fn from_stored(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The text to persist.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key id this value was sealed with, if the value is well-formed.
    pub fn key_id(&self) -> Option<&str> {
        let mut parts = self.0.splitn(3, '.');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("v1"), Some(kid), Some(_)) => Some(kid),
            _ => None,
        }
    }
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedSecret")
            .field("key_id", &self.key_id())
            .field("len", &self.0.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let t = AccessToken::new("IGAA-very-secret");
        assert_eq!(format!("{t:?}"), "AccessToken([redacted])");
        assert_eq!(t.expose_secret(), "IGAA-very-secret");
        let r = RefreshToken::new("rft.secret");
        assert_eq!(format!("{r:?}"), "RefreshToken([redacted])");
        let s = SealedSecret::from_stored("v1.k1.c2VjcmV0");
        let d = format!("{s:?}");
        assert!(!d.contains("c2VjcmV0"), "{d}");
        assert_eq!(d, r#"SealedSecret { key_id: Some("k1"), len: 14 }"#);
        assert_eq!(s.key_id(), Some("k1"));
    }
}
