//! The retry policy, safe with money.
//!
//! - **Reads** (task polls, GETs, downloads) are repeated on connection errors, timeouts,
//!   bodies cut short, 429 (waiting `Retry-After` seconds when given), 5xx and malformed JSON.
//! - A **submit** (any paid call: task submits, chat, images, audio) is repeated only when
//!   the failure proves no task was created: the connection was refused before the request
//!   went out, a 429, or a 5xx whose body is the gateway's own `{"error":…}` envelope.
//!   Anything ambiguous (a timeout after sending, a reset mid-answer, an unreadable 2xx, a
//!   bare 5xx) is reported, never resubmitted: it may have been paid for.
//! - **Final**, never repeated: 400, 401, 403, 404, 500 `invalid_request`, 503
//!   `model_not_found` and every other 4xx.
//! - Waits grow exponentially with full jitter: base 1 s (`COMETFLOW_HTTP_BACKOFF`), x2,
//!   capped at 30 s, at most 5 tries in all. A poll that fails for good fails the step; the
//!   task is never resubmitted because a poll failed.
//!
//! It owns the decision and the waits; it must not know any family or step.

use std::time::Duration;

use reqwest::StatusCode;

use super::errors::Said;

/// Whether repeating a call can cost money.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    /// Polls, GETs and downloads: repeating them is free.
    Read,
    /// A paid call: repeated only when it provably did not happen.
    Submit,
}

/// What to do after a failed try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Try again, after this wait if the server named one.
    Retry(Option<Duration>),
    Final,
}

/// Exponential backoff with full jitter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    pub tries: u32,
}

impl Backoff {
    /// Base 1 s, or `COMETFLOW_HTTP_BACKOFF` (e.g. `10ms`, for tests).
    pub(crate) fn from_env() -> Self {
        let base = std::env::var("COMETFLOW_HTTP_BACKOFF")
            .ok()
            .and_then(|v| crate::model::parse_duration(&v).ok())
            .unwrap_or(Duration::from_secs(1));
        Backoff { base, cap: Duration::from_secs(30), tries: 5 }
    }

    /// The wait before try `next` (2, 3, ...): uniform in `0..=min(cap, base * 2^(next-2))`.
    pub(crate) fn delay(&self, next: u32) -> Duration {
        let exp = next.saturating_sub(2).min(16);
        let ceiling = self.base.saturating_mul(1 << exp).min(self.cap);
        let ms = ceiling.as_millis().min(u128::from(u64::MAX)) as u64;
        Duration::from_millis(fastrand::u64(0..=ms))
    }
}

/// The verdict on an HTTP error status, given what its body said.
pub(crate) fn on_status(
    call: Call,
    status: StatusCode,
    said: Option<&Said>,
    retry_after: Option<Duration>,
) -> Verdict {
    let code = said.map(|s| s.code.as_str()).unwrap_or_default();
    // An empty balance stays empty: asking again only delays the message.
    if super::errors::is_quota(status, said) {
        return Verdict::Final;
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Verdict::Retry(retry_after);
    }
    if !status.is_server_error() || code == "invalid_request" || code == "model_not_found" {
        return Verdict::Final;
    }
    match call {
        Call::Read => Verdict::Retry(retry_after),
        // The gateway answered with its own envelope: it refused the call, nothing was created.
        Call::Submit if said.is_some_and(|s| s.gateway) => Verdict::Retry(retry_after),
        Call::Submit => Verdict::Final,
    }
}

/// The verdict on a transport error (no complete answer).
pub(crate) fn on_transport(call: Call, error: &reqwest::Error) -> Verdict {
    // A refused connection means the request never left: safe for submits too.
    if error.is_connect() && !error.is_timeout() {
        return Verdict::Retry(None);
    }
    match call {
        Call::Read => Verdict::Retry(None),
        Call::Submit => Verdict::Final,
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare on APIs and ignored), capped at 5 min.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs: f64 = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    (secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(300.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(code: &str, gateway: bool) -> Said {
        Said { code: code.into(), message: String::new(), gateway }
    }

    #[test]
    fn final_statuses_are_never_retried() {
        for s in [400, 401, 403, 404] {
            let s = StatusCode::from_u16(s).unwrap();
            assert_eq!(on_status(Call::Read, s, None, None), Verdict::Final);
        }
        let s500 = StatusCode::INTERNAL_SERVER_ERROR;
        assert_eq!(on_status(Call::Read, s500, Some(&said("invalid_request", true)), None), Verdict::Final);
        let s503 = StatusCode::SERVICE_UNAVAILABLE;
        assert_eq!(on_status(Call::Read, s503, Some(&said("model_not_found", true)), None), Verdict::Final);
    }

    #[test]
    fn a_submit_is_retried_only_when_nothing_was_created() {
        let s502 = StatusCode::BAD_GATEWAY;
        assert_eq!(on_status(Call::Submit, s502, None, None), Verdict::Final);
        assert_eq!(on_status(Call::Submit, s502, Some(&said("", true)), None), Verdict::Retry(None));
        assert_eq!(on_status(Call::Read, s502, None, None), Verdict::Retry(None));
        let wait = Some(Duration::from_secs(2));
        assert_eq!(on_status(Call::Submit, StatusCode::TOO_MANY_REQUESTS, None, wait), Verdict::Retry(wait));
    }

    #[test]
    fn backoff_stays_under_its_cap() {
        let b = Backoff { base: Duration::from_secs(1), cap: Duration::from_secs(30), tries: 5 };
        for next in 2..20 {
            assert!(b.delay(next) <= Duration::from_secs(30));
        }
        assert!(b.delay(2) <= Duration::from_secs(1));
    }
}
