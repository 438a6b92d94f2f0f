//! The callback's query string, as the user's browser brings it back: parsed by
//! `CallbackParams::from_query`, read by the OAuth reading and by every provider's
//! `read_callback`.
//!
//! Properties: the state read is one of the parameters (the OAuth reading: `state`
//! itself); a failure code is 1 to 64 characters; `access_denied` is a cancellation;
//! the parameters survive a form-encoding round trip; `Debug` never shows the code.
#![no_main]

use integrations_core::{CallbackOutcome, CallbackParams, CallbackReply, Provider};
use integrations_fuzz::providers::all_providers;
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

static PROVIDERS: OnceLock<Vec<Arc<dyn Provider>>> = OnceLock::new();

fn check_outcome(outcome: &CallbackOutcome) {
    if let CallbackOutcome::Failed { error } = outcome {
        let n = error.chars().count();
        assert!((1..=64).contains(&n), "a failure code of {n} characters");
    }
}

fuzz_target!(|data: &[u8]| {
    let query = String::from_utf8_lossy(data);
    let params = CallbackParams::from_query(&query);

    let reply = CallbackReply::oauth2(&params);
    assert_eq!(reply.state, params.state());
    check_outcome(&reply.outcome);
    match params.error() {
        None => assert_eq!(reply.outcome, CallbackOutcome::Authorized),
        Some("access_denied") => assert_eq!(reply.outcome, CallbackOutcome::Cancelled),
        Some(_) => assert_ne!(reply.outcome, CallbackOutcome::Authorized),
    }

    for provider in PROVIDERS.get_or_init(all_providers) {
        let read = provider.read_callback(&params);
        check_outcome(&read.outcome);
        if let Some(state) = read.state {
            assert!(
                params.0.values().any(|v| v == state),
                "{}: a state that is no parameter",
                provider.id()
            );
        }
    }

    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&params.0)
        .finish();
    assert_eq!(CallbackParams::from_query(&encoded), params);

    if let Some(code) = params.get("code") {
        let shown = format!("{code:?}");
        let shown = &shown[1..shown.len() - 1];
        let mut rest = params.clone();
        rest.0.remove("code");
        let elsewhere = format!("{rest:?} [redacted] \"code\"");
        if shown.len() >= 8 && !elsewhere.contains(shown) {
            assert!(
                !format!("{params:?}").contains(shown),
                "Debug shows the code"
            );
        }
    }
});
