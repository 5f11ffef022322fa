//! The account balance: `GET https://query.cometapi.com/user/quota?key=<key>` (another
//! host, the key in the query string, not a Bearer header). `COMETAPI_QUOTA_URL` points it
//! elsewhere (tests); under `--simulate` it is the simulator's `/user/quota`.
//!
//! It owns reading and judging the balance; it must never let the key into a message.

use std::time::Duration;

use serde::Deserialize;

use super::config;

const DEFAULT_QUOTA_URL: &str = "https://query.cometapi.com/user/quota";

/// What `/user/quota` answers; amounts are USD, `-1` means unlimited.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Balance {
    #[serde(default)]
    pub total_quota: f64,
    #[serde(default)]
    pub total_used_quota: f64,
    #[serde(default)]
    pub request_count: u64,
    #[serde(default)]
    pub keys: Vec<KeyQuota>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct KeyQuota {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub remain_quota: f64,
    #[serde(default)]
    pub used_quota: f64,
}

impl Balance {
    /// Nothing left to spend: at most zero, and not the `-1` of an unlimited account.
    pub(crate) fn exhausted(&self) -> bool {
        self.total_quota <= 0.0 && !unlimited(self.total_quota)
    }
}

pub(crate) fn unlimited(amount: f64) -> bool {
    amount == -1.0
}

/// `$12.34`, or `unlimited` for `-1`.
pub(crate) fn usd(amount: f64) -> String {
    if unlimited(amount) {
        "unlimited".to_owned()
    } else {
        format!("${amount:.2}")
    }
}

/// Where to ask: the simulator's route under `--simulate`, else `COMETAPI_QUOTA_URL`, else
/// CometAPI's query host.
fn quota_url(endpoint: &config::Endpoint) -> String {
    if endpoint.simulated {
        return format!("{}/user/quota", endpoint.base);
    }
    std::env::var("COMETAPI_QUOTA_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_QUOTA_URL.to_owned())
}

/// Reads the balance with the configured key. Errors are worded for the user, key removed.
pub(crate) async fn fetch(endpoint: &config::Endpoint) -> Result<Balance, String> {
    let Some(key) = endpoint.key.clone() else {
        return Err("no CometAPI key: set `COMETAPI_KEY` (or put it in `.env`)".to_owned());
    };
    let redact = |text: String| text.replace(key.expose(), "***");
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("cometflow/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
    let url = quota_url(endpoint);
    let reply = http
        .get(&url)
        .query(&[("key", key.expose())])
        .send()
        .await
        // reqwest's message names the URL, key included: redacted.
        .map_err(|e| redact(format!("cannot reach `{url}`: {e}")))?;
    let status = reply.status();
    let body = reply.text().await.map_err(|e| redact(format!("cannot read the answer of `{url}`: {e}")))?;
    if !status.is_success() {
        let said = super::errors::snippet(body.as_bytes());
        return Err(redact(format!("`{url}` answered {status}: {said}")));
    }
    serde_json::from_str(&body)
        .map_err(|e| redact(format!("`{url}` answered something else than a balance: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_account_is_exhausted_and_minus_one_is_unlimited() {
        let b = |t: f64| Balance { total_quota: t, total_used_quota: 0.0, request_count: 0, keys: vec![] };
        assert!(b(0.0).exhausted() && b(-0.5).exhausted());
        assert!(!b(-1.0).exhausted() && !b(0.01).exhausted());
        assert_eq!(usd(-1.0), "unlimited");
        assert_eq!(usd(2105.234088), "$2105.23");
    }
}
