//! The Instagram provider against a platform that answers anything: every public call
//! (code exchange, refresh, profile, revoke, authorization URL, `api_error`) on replies
//! with any status, rate-limit headers and body. See `Harness::run` for the properties.
#![no_main]

use integrations_fuzz::providers::{Case, Harness, Platform};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static HARNESS: OnceLock<Harness> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let harness = HARNESS.get_or_init(|| Harness::new(Platform::Instagram));
    harness.run(&Case::read(data));
});
