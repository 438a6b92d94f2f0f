//! OAuth helpers: state and PKCE generation.

use crate::provider::PkceChallenge;
use crate::secret::PkceVerifier;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Bytes of randomness in a state (256 bits).
pub const STATE_BYTES: usize = 32;

/// A fresh random state: 256 bits, base64url without padding (43 characters).
pub fn generate_state() -> String {
    let mut b = [0u8; STATE_BYTES];
    rand::fill(&mut b[..]);
    URL_SAFE_NO_PAD.encode(b)
}

/// A fresh PKCE verifier: 32 random bytes, base64url (43 characters, within RFC 7636's
/// 43–128).
pub fn generate_pkce_verifier() -> PkceVerifier {
    let mut b = zeroize::Zeroizing::new([0u8; 32]);
    rand::fill(&mut b[..]);
    PkceVerifier::new(URL_SAFE_NO_PAD.encode(*b))
}

/// The S256 challenge of a verifier, in both encodings.
pub fn pkce_challenge(verifier: &PkceVerifier) -> PkceChallenge {
    let digest = Sha256::digest(verifier.expose_secret().as_bytes());
    PkceChallenge {
        s256_base64url: URL_SAFE_NO_PAD.encode(digest),
        s256_hex: hex::encode(digest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_vector() {
        let v = PkceVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(
            pkce_challenge(&v).s256_base64url,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn states_are_long_and_distinct() {
        let a = generate_state();
        assert_eq!(a.len(), 43);
        assert_ne!(a, generate_state());
        assert_eq!(generate_pkce_verifier().expose_secret().len(), 43);
    }
}
