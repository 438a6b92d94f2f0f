//! temp
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
pub mod clock;
pub mod crypto;
pub mod http;
pub mod oauth;
pub mod provider;
pub mod secret;
pub mod status;
pub mod store;
pub use crypto::{CryptoError, EncryptionKey, SecretContext, TokenCipher};
pub use provider::*;
pub use secret::*;
pub use store::*;
