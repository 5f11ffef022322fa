//! Where the client points and with which key: `COMETAPI_BASE_URL` (host form, a trailing
//! `/v1` or `/` dropped so task routes like `/suno/...` derive from the host), and
//! `COMETAPI_KEY`, each from the environment or else a `.env` file in the current directory.
//! `--simulate` points a client at the in-process simulator instead.
//!
//! It owns the key's only copy in memory ([`Secret`]); it must not know about HTTP.

use std::fmt;

pub(crate) const DEFAULT_BASE_URL: &str = "https://api.cometapi.com";

/// The API key; its `Debug`/`Display` never show it, so it cannot leak through a log line.
#[derive(Clone)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A base URL and, when one was found, the key to send to it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `scheme://host[:port]`, no trailing slash, no `/v1`.
    pub(crate) base: String,
    pub(crate) key: Option<Secret>,
    /// The in-process simulator answers (`--simulate`).
    pub(crate) simulated: bool,
}

impl Endpoint {
    /// CometAPI as the environment (or `.env`) configures it.
    pub fn from_env() -> Self {
        let base = from_env_or_dotenv("COMETAPI_BASE_URL").unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        let key = from_env_or_dotenv("COMETAPI_KEY");
        if let Some(k) = &key {
            crate::contract::secrets::register(k);
        }
        Endpoint { base: normalize_base(&base), key: key.map(Secret), simulated: false }
    }

    /// The in-process simulator at `base`, with its own key.
    pub fn simulator(base: &str, key: &str) -> Self {
        crate::contract::secrets::register(key);
        Endpoint { base: normalize_base(base), key: Some(Secret(key.to_owned())), simulated: true }
    }

    /// Which backend answers, for keying cached results: the simulator's answers must
    /// never stand in for the real API's.
    pub fn backend(&self) -> String {
        if self.simulated {
            "simulator".to_owned()
        } else {
            self.base.clone()
        }
    }

    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }
}

/// `https://api.cometapi.com/v1/` -> `https://api.cometapi.com`; a bare host gets `https://`.
pub(crate) fn normalize_base(raw: &str) -> String {
    let mut s = raw.trim().trim_end_matches('/');
    if let Some(stripped) = s.strip_suffix("/v1") {
        s = stripped.trim_end_matches('/');
    }
    if s.contains("://") {
        s.to_owned()
    } else {
        format!("https://{s}")
    }
}

/// The origin (scheme, host, port) of a URL as reqwest parses it, the parser that sends the
/// request: deciding with another parser is how `http://a\\@b/` once sent the key to `a`.
pub(crate) fn origin_of(url: &str) -> Option<(String, String, u16)> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let host = parsed.host_str()?.to_ascii_lowercase();
    Some((parsed.scheme().to_owned(), host, parsed.port_or_known_default()?))
}

/// `host[:port]` of a URL, lowercased, for messages.
pub(crate) fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next()?;
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// The environment wins over `.env` in the current directory.
fn from_env_or_dotenv(name: &str) -> Option<String> {
    if let Some(v) = std::env::var(name).ok().filter(|v| !v.trim().is_empty()) {
        return Some(v.trim().to_owned());
    }
    let text = std::fs::read_to_string(".env").ok()?;
    dotenv_value(&text, name)
}

/// The value of `name` in `.env` text: `NAME=value`, optional `export `, quotes, comments.
pub(crate) fn dotenv_value(text: &str, name: &str) -> Option<String> {
    text.lines().rev().find_map(|line| {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (k, v) = line.split_once('=')?;
        if k.trim() != name {
            return None;
        }
        let v = v.trim();
        let v = if v.len() >= 2
            && (v.starts_with('"') && v.ends_with('"') || v.starts_with('\'') && v.ends_with('\''))
        {
            &v[1..v.len() - 1]
        } else {
            v.split(" #").next().unwrap_or(v).trim()
        };
        (!v.is_empty()).then(|| v.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_url_drops_a_trailing_v1_and_slashes() {
        assert_eq!(normalize_base("https://api.cometapi.com/v1/"), "https://api.cometapi.com");
        assert_eq!(normalize_base("https://api.cometapi.com/"), "https://api.cometapi.com");
        assert_eq!(normalize_base("http://127.0.0.1:9/v1"), "http://127.0.0.1:9");
        assert_eq!(normalize_base("api.cometapi.com/v1"), "https://api.cometapi.com");
    }

    #[test]
    fn dotenv_lines_are_read_with_quotes_and_export() {
        let text = "# keys\nOTHER=1\nexport COMETAPI_KEY=\"sk-abc\"\n";
        assert_eq!(dotenv_value(text, "COMETAPI_KEY").as_deref(), Some("sk-abc"));
        assert_eq!(dotenv_value("COMETAPI_KEY=sk-x # mine", "COMETAPI_KEY").as_deref(), Some("sk-x"));
        assert_eq!(dotenv_value("COMETAPI_KEY=", "COMETAPI_KEY"), None);
    }

    #[test]
    fn origins_are_what_reqwest_would_connect_to() {
        let o = |u: &str| origin_of(u).map(|(s, h, p)| format!("{s}://{h}:{p}"));
        assert_eq!(o("https://API.cometapi.com/x").as_deref(), Some("https://api.cometapi.com:443"));
        assert_eq!(o("http://127.0.0.1:9/a?b").as_deref(), Some("http://127.0.0.1:9"));
        // A backslash ends the authority for http(s): the request goes to `localhost:18411`.
        assert_eq!(o("http://localhost:18411\\@127.0.0.1:18401/").as_deref(), Some("http://localhost:18411"));
        assert_eq!(o("http://user@127.0.0.1:18401/").as_deref(), Some("http://127.0.0.1:18401"));
        assert_eq!(o("not a url"), None);
    }

    #[test]
    fn hosts_compare_without_paths() {
        assert_eq!(host_of("http://127.0.0.1:9/a?b").as_deref(), Some("127.0.0.1:9"));
        assert_eq!(host_of("https://API.cometapi.com").as_deref(), Some("api.cometapi.com"));
    }
}
