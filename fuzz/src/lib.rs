//! Support for the fuzz targets in `fuzz_targets/`: a small input format built on
//! [`arbitrary::Unstructured`] (with the writer the seed corpus is made with), HTTP
//! replies as the platforms could send them, an in-process HTTP server that answers the
//! real providers with them, and the properties every target checks.
//!
//! Every target goes through the library's public surface only: `Provider` methods,
//! `integrations_core::http` and `client::TokenReply`, `TokenCipher`, and the example
//! server's session cookie functions.

pub mod input;
pub mod providers;
pub mod reply;
pub mod seeds;
pub mod server;

/// Secrets the fuzzed providers are configured with or are handed: no error may ever
/// carry one of them. Each is distinctive, and in the targets' dictionary, so that the
/// fuzzer can make a platform echo it.
pub mod secrets {
    /// The client secret (and OnlyFans' API key).
    pub const CLIENT_SECRET: &str = "FUZZSECRET-client-7q2v";
    /// The authorization code of the callback.
    pub const CODE: &str = "FUZZSECRET-code-3k9z";
    /// The PKCE verifier (43 characters or more, as RFC 7636 asks).
    pub const VERIFIER: &str = "FUZZSECRET-verifier-0123456789abcdefghijklmnop";
    /// The access token (for OnlyFans: the connection id).
    pub const ACCESS: &str = "FUZZSECRET-access-8m1w";
    /// The refresh token.
    pub const REFRESH: &str = "FUZZSECRET-refresh-5x4t";
    /// All of them.
    pub const ALL: [&str; 5] = [CLIENT_SECRET, CODE, VERIFIER, ACCESS, REFRESH];
}

/// How much text an error may carry: the body excerpt core keeps (512 characters, each
/// at most 4 bytes once decoded) plus a generous allowance for the message around it.
pub const MAX_ERROR_TEXT: usize = 512 * 4 + 1024;

/// What is wrong with an error's text, if anything: a secret of `secrets` (8 characters
/// or more) in its `Display` or `Debug`, or a `Display` longer than [`MAX_ERROR_TEXT`].
pub fn error_problem(
    err: &(impl std::fmt::Display + std::fmt::Debug),
    secrets: &[&str],
) -> Option<String> {
    let display = err.to_string();
    if display.len() > MAX_ERROR_TEXT {
        return Some(format!(
            "an error's text is {} bytes long: {}…",
            display.len(),
            display.chars().take(200).collect::<String>()
        ));
    }
    let text = format!("{display}\n{err:?}");
    secrets
        .iter()
        .find(|s| s.len() >= 8 && text.contains(**s))
        .map(|s| format!("a secret ({s:?}) is in the error text: {text}"))
}

/// Checks an error's text: no secret, and bounded.
///
/// # Panics
///
/// When [`error_problem`] finds something.
pub fn check_error(err: &(impl std::fmt::Display + std::fmt::Debug), secrets: &[&str]) {
    if let Some(problem) = error_problem(err, secrets) {
        panic!("{problem}");
    }
}

/// The string values of `access_token` and `refresh_token` anywhere in a JSON body: the
/// credentials a platform's reply carried, which no error may repeat. Only values of 16
/// characters or more that occur once in the body are returned (a shorter or repeated
/// value can legitimately appear in a message for another reason).
pub fn reply_tokens(body: &[u8]) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    if let ("access_token" | "refresh_token", serde_json::Value::String(s)) =
                        (k.as_str(), v)
                    {
                        out.push(s.clone());
                    }
                    walk(v, out);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    walk(&value, &mut out);
    let text = String::from_utf8_lossy(body);
    out.retain(|s| s.len() >= 16 && text.matches(s.as_str()).count() == 1);
    out
}
