//! No token, key or verifier text appears in the `Debug` of any public error or record.

use integrations_core::testing::ScriptedProvider;
use integrations_core::{
    AccessToken, CallbackParams, ClientSecret, CodeExchange, EncryptionKey, Error, Integrations,
    MemoryStore, PkceVerifier, Provider, ProviderError, RefreshRequest, RefreshToken,
    SecretContext, TokenCipher, TokenStore, UserId,
};
use std::sync::Arc;

#[tokio::test]
async fn debug_output_never_contains_secrets() {
    let key = EncryptionKey::generate();
    let key_text = key.to_base64().to_string();
    let cipher = TokenCipher::new(key.clone());
    let store = Arc::new(MemoryStore::new());
    let provider = Arc::new(ScriptedProvider::new("tiktok"));
    let integrations = Integrations::builder(store.clone(), cipher.clone())
        .provider(provider.clone())
        .build();

    let start = integrations
        .connect(UserId(1), "tiktok", None)
        .await
        .unwrap();
    let params =
        CallbackParams::from_pairs([("code", "the-code-123"), ("state", start.state.as_str())]);
    let connection = integrations
        .callback(UserId(1), "tiktok", &params)
        .await
        .unwrap();
    let token = integrations
        .access_token(UserId(1), "tiktok", "the-code-123")
        .await
        .unwrap();
    let refresh_text = provider.current_refresh_token("the-code-123").unwrap();
    let records = store.list_accounts(UserId(1)).await.unwrap();
    let audit = store.list_audit(UserId(1), 10).await.unwrap();
    let verifier = PkceVerifier::new("verifier-secret-text-0123456789-abcdefghijkl");
    let sealed = cipher
        .seal(SecretContext::access_token("p", "r"), "sealed-plaintext")
        .unwrap();

    let tokens = provider
        .refresh(RefreshRequest {
            access_token: Some(&token),
            refresh_token: Some(&RefreshToken::new(refresh_text.clone())),
            issued_at: chrono::Utc::now(),
            now: chrono::Utc::now(),
            scopes: &[],
        })
        .await
        .unwrap();

    let errors: Vec<Error> = vec![
        Error::Cancelled,
        Error::InvalidState,
        Error::Provider(ProviderError::InvalidGrant {
            description: Some("expired".into()),
        }),
        Error::Provider(ProviderError::Protocol {
            message: "bad".into(),
            body: Some("{}".into()),
        }),
        Error::Crypto(
            cipher
                .open(SecretContext::refresh_token("p", "r"), &sealed)
                .unwrap_err(),
        ),
        provider
            .exchange_code(CodeExchange {
                params: &params,
                pkce_verifier: Some(&verifier),
            })
            .await
            .unwrap_err()
            .into(),
    ];

    let everything = format!(
        "{connection:?}{token:?}{records:?}{audit:?}{verifier:?}{sealed:?}{tokens:?}{errors:?}{params:?}{integrations:?}{cipher:?}{key:?}{:?}{:?}{:?}",
        ClientSecret::new("client-secret-text"),
        AccessToken::new("access-text"),
        start,
    );
    let display: String = errors
        .iter()
        .map(|e| format!("{e} {}", e.user_message()))
        .collect();
    for secret in [
        token.expose_secret(),
        refresh_text.as_str(),
        tokens.access_token.expose_secret(),
        key_text.as_str(),
        verifier.expose_secret(),
        "sealed-plaintext",
        "client-secret-text",
        "access-text",
        "the-code-123-never",
    ] {
        assert!(
            !everything.contains(secret),
            "Debug output leaks {secret:?}"
        );
        assert!(!display.contains(secret), "Display output leaks {secret:?}");
    }
    // The callback code is a one-time credential: redacted in CallbackParams' Debug.
    assert!(!format!("{params:?}").contains("the-code-123"));
    // Sealed values at rest never contain the plaintext.
    for r in &records {
        assert!(
            !r.access_token
                .as_ref()
                .unwrap()
                .as_str()
                .contains(token.expose_secret())
        );
    }
}

#[test]
fn public_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Integrations>();
    check::<TokenCipher>();
    check::<MemoryStore>();
    check::<Error>();
    check::<ProviderError>();
    check::<AccessToken>();
    check::<Arc<dyn Provider>>();
    check::<Arc<dyn TokenStore>>();
}
