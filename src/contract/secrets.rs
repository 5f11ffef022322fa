//! Secrets that nothing cometflow stores or prints may contain: the API key, registered when
//! the client's endpoint is made. Every value that enters the engine from a kind (outputs,
//! errors, log lines) passes through [`redact_json`] or [`redact`], whatever its origin: a
//! server that echoes the key, a script that prints it.
//!
//! Process-wide on purpose: a secret learnt once must be hidden from every run, reporter and
//! store of the process, and hiding too much is harmless.

use std::borrow::Cow;
use std::sync::RwLock;

use serde_json::Value as Json;

/// What replaces a secret.
pub const MASK: &str = "***";

/// Shorter values are not secrets worth hiding (masking `ab` would garble every output).
const MIN_LEN: usize = 6;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Hides `secret` from now on.
pub fn register(secret: &str) {
    let secret = secret.trim();
    if secret.len() < MIN_LEN {
        return;
    }
    let mut all = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    if !all.iter().any(|s| s == secret) {
        all.push(secret.to_owned());
    }
}

/// `text` with every secret masked; borrowed when it holds none.
pub fn redact(text: &str) -> Cow<'_, str> {
    let all = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    let mut out = Cow::Borrowed(text);
    for s in all.iter() {
        if out.contains(s.as_str()) {
            out = Cow::Owned(out.replace(s.as_str(), MASK));
        }
    }
    out
}

/// Masks every secret in a JSON value's strings and keys, in place.
pub fn redact_json(value: &mut Json) {
    if SECRETS.read().unwrap_or_else(|e| e.into_inner()).is_empty() {
        return;
    }
    walk(value);
}

fn walk(value: &mut Json) {
    match value {
        Json::String(s) => {
            if let Cow::Owned(r) = redact(s) {
                *s = r;
            }
        }
        Json::Array(items) => items.iter_mut().for_each(walk),
        Json::Object(map) => {
            if map.keys().any(|k| matches!(redact(k), Cow::Owned(_))) {
                let old = std::mem::take(map);
                *map = old.into_iter().map(|(k, v)| (redact(&k).into_owned(), v)).collect();
            }
            map.values_mut().for_each(walk);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registered_secret_is_masked_in_text_and_json() {
        register("sk-redact-unit-test");
        register("ab"); // too short to be a secret
        assert_eq!(redact("key sk-redact-unit-test!"), "key ***!");
        assert_eq!(redact("ab"), "ab");
        let mut v = serde_json::json!({"a": ["x sk-redact-unit-test"], "sk-redact-unit-test": 1});
        redact_json(&mut v);
        assert_eq!(v, serde_json::json!({"a": ["x ***"], "***": 1}));
    }
}
