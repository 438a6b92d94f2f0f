//! Sealed secrets as the store gives them back: `v1.<key id>.<base64>` values sealed
//! with one key, then truncated, altered, opened under another key, moved to another row
//! or column, spliced with another value's data, or replaced by any text; and key text
//! as the environment gives it.
//!
//! Properties: open(seal(x)) == x; a value sealed under a previous key opens through the
//! ring and re-seals under the current one; every altered, moved, spliced or foreign
//! value fails to open (with `Authentication`, `UnknownKey` or `Malformed`); no error
//! carries the plaintext.
#![no_main]

use integrations_core::{CryptoError, EncryptionKey, SealedSecret, SecretContext, TokenCipher};
use integrations_fuzz::input::Reader;
use libfuzzer_sys::fuzz_target;

fn key(r: &mut Reader<'_>) -> EncryptionKey {
    let mut bytes = [0u8; 32];
    for (b, v) in bytes.iter_mut().zip(r.chunk()) {
        *b = *v;
    }
    EncryptionKey::from_bytes(bytes)
}

fn context<'a>(which: u8, provider: &'a str, row: &'a str) -> SecretContext<'a> {
    match which % 3 {
        0 => SecretContext::access_token(provider, row),
        1 => SecretContext::refresh_token(provider, row),
        _ => SecretContext::pkce_verifier(provider, row),
    }
}

/// Ends every plaintext, so that a plaintext in an error is seen whatever the fuzzer
/// chose (no error message has this character of its own).
const MARK: &str = "\u{2603}plaintext";

fn no_plaintext(err: &CryptoError) {
    let text = format!("{err} {err:?}");
    assert!(!text.contains(MARK), "an error shows the plaintext: {text}");
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    let mode = r.byte();
    let current = key(&mut r);
    let other = key(&mut r);
    let plaintext = r.text() + MARK;
    let provider = r.text();
    let row = r.text();
    let which = r.byte();
    let at = context(which, &provider, &row);
    let cipher = TokenCipher::new(current.clone());
    let sealed = cipher.seal(at, &plaintext).expect("sealing never fails");
    assert_eq!(&*cipher.open(at, &sealed).expect("opens"), &plaintext);
    assert!(!cipher.needs_reseal(&sealed));
    assert_eq!(sealed.key_id(), Some(current.id()));
    assert!(!format!("{sealed:?}").contains(MARK));
    let text = sealed.as_str().to_owned();

    match mode % 7 {
        // Truncated.
        0 => {
            let cut = usize::from(r.u16()) % text.len();
            let err = cipher
                .open(at, &SealedSecret::from_stored(&text[..cut]))
                .expect_err("a truncated value never opens");
            no_plaintext(&err);
        }
        // One character replaced.
        1 => {
            let at_pos = usize::from(r.u16()) % text.len();
            let with = char::from(r.byte() & 0x7f);
            let mut altered: Vec<char> = text.chars().collect();
            altered[at_pos] = with;
            let altered: String = altered.into_iter().collect();
            if altered != text {
                let err = cipher
                    .open(at, &SealedSecret::from_stored(altered))
                    .expect_err("an altered value never opens");
                no_plaintext(&err);
            }
        }
        // Opened under another key, then through a ring that still has the old one.
        2 => {
            let foreign = TokenCipher::new(other.clone());
            if other.id() != current.id() {
                assert!(matches!(
                    foreign.open(at, &sealed),
                    Err(CryptoError::UnknownKey { .. })
                ));
                let ring = TokenCipher::new(other.clone()).with_previous(current.clone());
                assert_eq!(
                    &*ring.open(at, &sealed).expect("the ring opens"),
                    &plaintext
                );
                assert!(ring.needs_reseal(&sealed));
                let resealed = ring.reseal(at, &sealed).expect("re-seals");
                assert_eq!(resealed.key_id(), Some(other.id()));
                assert!(!ring.needs_reseal(&resealed));
                assert_eq!(&*ring.open(at, &resealed).expect("opens"), &plaintext);
            }
        }
        // Moved to another row, column or provider.
        3 => {
            let row2 = r.text();
            let provider2 = r.text();
            let moved = context(r.byte(), &provider2, &row2);
            if moved != at {
                assert_eq!(
                    cipher
                        .open(moved, &sealed)
                        .expect_err("a moved value never opens"),
                    CryptoError::Authentication
                );
            }
        }
        // Another value's data under this value's header.
        4 => {
            let other_plain = r.text();
            let row2 = r.text();
            let there = context(r.byte(), &provider, &row2);
            let second = cipher.seal(there, &other_plain).expect("seals");
            let data = second.as_str().rsplit('.').next().unwrap_or_default();
            let spliced = format!("v1.{}.{data}", current.id());
            let opened = cipher.open(at, &SealedSecret::from_stored(spliced));
            if there == at {
                assert_eq!(&*opened.expect("same place opens"), &other_plain);
            } else {
                assert_eq!(opened.expect_err("spliced"), CryptoError::Authentication);
            }
        }
        // Any text from the store.
        5 => {
            let stored = SealedSecret::from_stored(String::from_utf8_lossy(r.rest()));
            let _ = stored.key_id();
            let _ = format!("{stored:?}");
            if let Err(CryptoError::UnknownKey { key_id }) = cipher.open(at, &stored) {
                assert!(key_id.chars().count() <= 16);
            }
            let _ = cipher.needs_reseal(&stored);
        }
        // Key text from the environment.
        _ => {
            let current_text = r.text();
            let previous_text = r.text();
            let loaded = TokenCipher::from_lookup(|name| match name {
                "TOKEN_ENCRYPTION_KEY" => Some(current_text.clone()),
                "TOKEN_ENCRYPTION_KEY_PREVIOUS" => Some(previous_text.clone()),
                _ => None,
            });
            match loaded {
                Ok(c) => {
                    let s = c.seal(at, &plaintext).expect("seals");
                    assert_eq!(&*c.open(at, &s).expect("opens"), &plaintext);
                }
                Err(e) => {
                    let text = format!("{e} {e:?}");
                    // The same failure from other key text: when its message is the same,
                    // the message holds nothing of the key (key text can be a piece of
                    // the fixed wording by chance, which the fuzzer finds).
                    let other = |t: &String| format!("!{t}!");
                    let again = TokenCipher::from_lookup(|name| match name {
                        "TOKEN_ENCRYPTION_KEY" => Some(other(&current_text)),
                        "TOKEN_ENCRYPTION_KEY_PREVIOUS" => Some(other(&previous_text)),
                        _ => None,
                    })
                    .err()
                    .map(|e2| format!("{e2} {e2:?}"));
                    for key_text in [&current_text, &previous_text] {
                        let key_text = key_text.trim();
                        // A key is 43 or 44 characters of base64; shorter text could
                        // be part of a message by chance.
                        assert!(
                            key_text.len() < 40
                                || !text.contains(key_text)
                                || again.as_deref() == Some(text.as_str()),
                            "a key error shows the key text: {text}"
                        );
                    }
                }
            }
        }
    }
});
