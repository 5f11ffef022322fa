//! The one HTTP client every provider step uses: base URL and key (`config`), error
//! wording (`errors`), the money-safe retry policy (`retry`), the data-driven
//! submit-then-poll driver (`task`, `catalog`) and result downloads (`download`).
//!
//! It owns all talk with CometAPI and the key's handling: the key goes only to the
//! configured host as `Authorization: Bearer`, never into a message, a log line or a file.
//! It must not know about pipelines or the engine, only `StepCtx`'s small surface.

pub mod config;
pub(crate) mod download;
pub(crate) mod errors;
pub(crate) mod quota;
pub(crate) mod realtime;
pub(crate) mod retry;
pub(crate) mod sse;
pub(crate) mod task;

use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Bytes;
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value as Json;

use crate::contract::{ErrorKind, StepError};
pub use config::Endpoint;
use config::Secret;
use retry::{Backoff, Call, Verdict};

/// The client every provider step uses and where it points: built once per process (or per
/// test) and handed to the kinds, never looked up from global state.
pub struct Api {
    http: OnceLock<Result<reqwest::Client, String>>,
    /// For requests that carry no key (result downloads, `http` to other hosts).
    plain: OnceLock<Result<reqwest::Client, String>>,
    pub(crate) endpoint: Endpoint,
    pub(crate) backoff: Backoff,
    pub(crate) limits: Limits,
}

/// How long a request may take and how large an answer may be (see the README's limits).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The whole of one API request, answer included (`COMETFLOW_HTTP_TIMEOUT`).
    pub deadline: Duration,
    /// The whole of one download (`COMETFLOW_DOWNLOAD_TIMEOUT`).
    pub download_deadline: Duration,
    /// The largest API answer read into memory (`COMETFLOW_MAX_ANSWER_BYTES`).
    pub max_answer: u64,
    /// The largest downloaded file (`COMETFLOW_MAX_DOWNLOAD_BYTES`).
    pub max_download: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: Duration::from_secs(600),
            download_deadline: Duration::from_secs(1800),
            max_answer: 64 << 20,
            max_download: 2 << 30,
        }
    }
}

impl Limits {
    /// The defaults, overridden by the environment; a setting that does not parse is reported.
    pub(crate) fn from_env() -> Result<Self, String> {
        let d = Limits::default();
        let duration = |name: &str, default: Duration| match std::env::var(name) {
            Ok(v) => crate::model::parse_duration(&v).map_err(|e| format!("`{name}`: {e}")).and_then(|t| {
                if t.is_zero() {
                    Err(format!("`{name}` must be more than 0"))
                } else {
                    Ok(t)
                }
            }),
            Err(_) => Ok(default),
        };
        let bytes = |name: &str, default: u64| match std::env::var(name) {
            Ok(v) => v.trim().parse::<u64>().ok().filter(|&n| n > 0).ok_or_else(|| {
                format!("`{name}`=`{v}` is not a positive number of bytes; write e.g. `{name}=67108864`")
            }),
            Err(_) => Ok(default),
        };
        Ok(Limits {
            deadline: duration("COMETFLOW_HTTP_TIMEOUT", d.deadline)?,
            download_deadline: duration("COMETFLOW_DOWNLOAD_TIMEOUT", d.download_deadline)?,
            max_answer: bytes("COMETFLOW_MAX_ANSWER_BYTES", d.max_answer)?,
            max_download: bytes("COMETFLOW_MAX_DOWNLOAD_BYTES", d.max_download)?,
        })
    }
}

/// A request body: none, JSON, or a multipart form (rebuilt per try: forms cannot be cloned).
#[derive(Debug, Clone)]
pub(crate) enum Payload {
    None,
    Json(Json),
    Multipart { text: Vec<(String, String)>, files: Vec<FilePart> },
}

/// One uploaded file of a multipart form.
#[derive(Debug, Clone)]
pub(crate) struct FilePart {
    pub field: String,
    pub file_name: String,
    pub bytes: Vec<u8>,
}

impl Payload {
    fn attach(&self, req: RequestBuilder) -> RequestBuilder {
        match self {
            Payload::None => req,
            Payload::Json(b) => req.json(b),
            Payload::Multipart { text, files } => {
                let mut form = reqwest::multipart::Form::new();
                for (k, v) in text {
                    form = form.text(k.clone(), v.clone());
                }
                for f in files {
                    let part =
                        reqwest::multipart::Part::bytes(f.bytes.clone()).file_name(f.file_name.clone());
                    form = form.part(f.field.clone(), part);
                }
                req.multipart(form)
            }
        }
    }
}

/// What counts as a usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Any 2xx.
    Success,
    /// A 2xx whose body is JSON.
    Json,
    /// Any status that is not worth retrying (the `http` kind reports it).
    AnyStatus,
}

/// A complete answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A failed call: the message to show, and what the server said when it answered.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub message: String,
    pub said: Option<errors::Said>,
    /// A submit that may have created (and been charged for) a task: it was sent and its
    /// answer was lost or unreadable. False when the failure proves nothing was created.
    pub maybe_created: bool,
}

impl ApiError {
    fn new(message: impl Into<String>) -> Self {
        ApiError { message: message.into(), said: None, maybe_created: false }
    }
}

impl From<ApiError> for StepError {
    /// Never `retryable`: the client already retried what was safe, and a provider step
    /// repeated by the engine could pay twice.
    fn from(e: ApiError) -> Self {
        StepError::fatal(e.message)
    }
}

impl Api {
    /// A client for `endpoint`; the HTTP connection pool itself is made on first use, so
    /// commands that never call (validate, kinds) pay nothing for it.
    pub fn new(endpoint: Endpoint) -> Self {
        let limits = Limits::from_env().unwrap_or_else(|e| {
            tracing::warn!("{e}; using the default limits");
            Limits::default()
        });
        Api { http: OnceLock::new(), plain: OnceLock::new(), endpoint, backoff: Backoff::from_env(), limits }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The pooled HTTP client for CometAPI: a redirect never leaves the configured origin, so a
    /// paid body (a 307 re-sends it) and the key go nowhere else, and no other host answers.
    pub(crate) fn http(&self) -> Result<&reqwest::Client, ApiError> {
        let base = config::origin_of(&self.endpoint.base);
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 10 {
                attempt.error("too many redirects")
            } else if config::origin_of(attempt.url().as_str()) != base {
                attempt.stop()
            } else {
                attempt.follow()
            }
        });
        self.client(&self.http, policy, self.limits.deadline)
    }

    /// The client for requests without the key (downloads): redirects are followed anywhere.
    pub(crate) fn plain_http(&self) -> Result<&reqwest::Client, ApiError> {
        self.client(&self.plain, reqwest::redirect::Policy::limited(10), self.limits.download_deadline)
    }

    fn client<'a>(
        &self,
        cell: &'a OnceLock<Result<reqwest::Client, String>>,
        policy: reqwest::redirect::Policy,
        deadline: Duration,
    ) -> Result<&'a reqwest::Client, ApiError> {
        cell.get_or_init(|| {
            let read_timeout = std::env::var("COMETFLOW_HTTP_READ_TIMEOUT")
                .ok()
                .and_then(|v| crate::model::parse_duration(&v).ok())
                .unwrap_or(Duration::from_secs(120));
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .read_timeout(read_timeout)
                // A server that trickles one byte at a time never trips the read timeout.
                .timeout(deadline)
                .redirect(policy)
                .user_agent(concat!("cometflow/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| format!("cannot set up the HTTP client: {e}"))
        })
        .as_ref()
        .map_err(|e| ApiError::new(e.clone()))
    }

    /// The key, or the message that says how to provide one. Checked before any request.
    pub(crate) fn key(&self) -> Result<&Secret, StepError> {
        self.endpoint.key.as_ref().ok_or_else(|| {
            StepError::fatal(
                "no CometAPI key: set `COMETAPI_KEY` in the environment (export COMETAPI_KEY=sk-...) \
                 or in a `.env` file in the current folder; `cometflow run --simulate` needs no key",
            )
            .kind(ErrorKind::Environment)
        })
    }

    /// `path` (from the host, e.g. `/suno/fetch/1`) as a full URL; full URLs pass through.
    pub(crate) fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else if path.starts_with('/') {
            format!("{}{path}", self.endpoint.base)
        } else {
            format!("{}/{path}", self.endpoint.base)
        }
    }

    /// Whether `url` is on the configured origin, the only one that may see the key: the same
    /// scheme (no key in clear text to an `https` base's host), host and port, as reqwest
    /// parses them.
    pub(crate) fn is_comet(&self, url: &str) -> bool {
        config::origin_of(url).is_some_and(|o| Some(o) == config::origin_of(&self.endpoint.base))
    }

    /// Removes the key from text that may echo a request (server messages, URLs).
    pub(crate) fn redact(&self, text: &str) -> String {
        match &self.endpoint.key {
            Some(k) if !k.expose().is_empty() => text.replace(k.expose(), "***"),
            _ => text.to_owned(),
        }
    }

    /// A JSON call to CometAPI with the key: `body` as JSON, the answer parsed as JSON.
    pub(crate) async fn json(
        &self,
        call: Call,
        method: Method,
        path: &str,
        body: Option<&Json>,
    ) -> Result<Json, ApiError> {
        let payload = body.map_or(Payload::None, |b| Payload::Json(b.clone()));
        self.call(call, method, path, &[], &payload).await
    }

    /// A call to CometAPI with the key, extra `headers` (Runway's `X-Runway-Version`) and a
    /// JSON or multipart `payload`; the answer parsed as JSON.
    pub(crate) async fn call(
        &self,
        call: Call,
        method: Method,
        path: &str,
        headers: &[(String, String)],
        payload: &Payload,
    ) -> Result<Json, ApiError> {
        let key = self.key().map_err(|e| ApiError::new(e.message))?.clone();
        let url = self.url(path);
        let what = format!("`{method} {}`", path_of(&url));
        if !self.is_comet(&url) {
            return Err(ApiError::new(self.redact(&format!(
                "{what} is not on `COMETAPI_BASE_URL` ({}), so the key is not sent there; \
                 use a path such as `/v1/...` or a URL on that host",
                self.endpoint.base
            ))));
        }
        let http = self.http()?;
        let reply = self
            .send_with(call, &what, Expect::Json, || {
                let mut req = http.request(method.clone(), &url).bearer_auth(key.expose());
                for (k, v) in headers {
                    req = req.header(k.as_str(), v.as_str());
                }
                payload.attach(req)
            })
            .await?;
        self.parse(call, &what, &reply)
    }

    /// Parses a 2xx JSON answer; an unreadable one is an error the caller may retry.
    pub(crate) fn parse(&self, call: Call, what: &str, reply: &Reply) -> Result<Json, ApiError> {
        serde_json::from_slice(&reply.body).map_err(|e| {
            let after = match call {
                Call::Read => "",
                Call::Submit => "; it may have created a task, so it was not sent again: check your CometAPI logs before re-running",
            };
            ApiError::new(self.redact(&format!(
                "{what} answered with a body that is not JSON ({e}): {}{after}",
                errors::snippet(&reply.body)
            )))
        })
    }

    /// Sends what `build` makes, retrying per [`retry`]; a non-2xx final answer is an error.
    /// `build` is called once per try (multipart bodies cannot be cloned).
    pub(crate) async fn send(
        &self,
        call: Call,
        what: &str,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Reply, ApiError> {
        self.send_with(call, what, Expect::Success, build).await
    }

    /// Like [`Api::send`], but a final non-2xx answer is returned rather than an error.
    pub(crate) async fn send_any(
        &self,
        call: Call,
        what: &str,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Reply, ApiError> {
        self.send_with(call, what, Expect::AnyStatus, build).await
    }

    async fn send_with(
        &self,
        call: Call,
        what: &str,
        expect: Expect,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Reply, ApiError> {
        let mut last = ApiError::new(format!("{what} was not sent"));
        for attempt in 1..=self.backoff.tries {
            if attempt > 1 {
                tracing::debug!(what, attempt, "retrying: {}", last.message);
            }
            let wait = match self.try_once(call, what, expect, &build).await {
                Ok(reply) => return Ok(reply),
                Err((error, Verdict::Final)) => return Err(error),
                Err((error, Verdict::Retry(wait))) => {
                    last = error;
                    wait
                }
            };
            if attempt < self.backoff.tries {
                tokio::time::sleep(wait.unwrap_or_else(|| self.backoff.delay(attempt + 1))).await;
            }
        }
        last.message = format!("{} (gave up after {} tries)", last.message, self.backoff.tries);
        Err(last)
    }

    async fn try_once(
        &self,
        call: Call,
        what: &str,
        expect: Expect,
        build: &impl Fn() -> RequestBuilder,
    ) -> Result<Reply, (ApiError, Verdict)> {
        let response = match build().send().await {
            Ok(r) => r,
            Err(e) => {
                let verdict = retry::on_transport(call, &e);
                return Err((self.transport_error(call, what, &e, verdict), verdict));
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        let body = match read_capped(response, self.limits.max_answer).await {
            Ok(b) => b,
            Err(Capped::TooLarge) => {
                let message = format!(
                    "{what} answered with more than {} bytes, the limit for an answer; \
                     raise `COMETFLOW_MAX_ANSWER_BYTES` if the answer is expected to be this large",
                    self.limits.max_answer
                );
                return Err((ApiError::new(message), Verdict::Final));
            }
            Err(Capped::Transport(e)) => {
                let verdict = if call == Call::Read { Verdict::Retry(None) } else { Verdict::Final };
                return Err((self.transport_error(call, what, &e, verdict), verdict));
            }
        };
        if status.is_success() {
            let reply = Reply { status, headers, body };
            if expect == Expect::Json {
                if let Err(e) = self.parse(call, what, &reply) {
                    // A cut or garbled answer: free to ask again for a read, ambiguous for a submit.
                    let verdict = if call == Call::Read { Verdict::Retry(None) } else { Verdict::Final };
                    return Err((ApiError { maybe_created: call == Call::Submit, ..e }, verdict));
                }
            }
            return Ok(reply);
        }
        let said = errors::read(&body);
        let verdict = retry::on_status(call, status, said.as_ref(), retry::retry_after(&headers));
        if expect == Expect::AnyStatus && verdict == Verdict::Final {
            return Ok(Reply { status, headers, body });
        }
        let message = self.redact(&errors::describe(status, &body, what));
        // A 5xx without the gateway's own envelope may come from behind it, after the task was made.
        let maybe_created =
            call == Call::Submit && status.is_server_error() && !said.as_ref().is_some_and(|s| s.gateway);
        Err((ApiError { message, said, maybe_created }, verdict))
    }

    fn transport_error(&self, call: Call, what: &str, e: &reqwest::Error, verdict: Verdict) -> ApiError {
        let cause = error_chain(e);
        let message = match (call, verdict) {
            (Call::Submit, Verdict::Final) => format!(
                "{what} failed after the request was sent ({cause}); it may have created a task \
                 (and been paid for), so it was not sent again: check your CometAPI logs before re-running"
            ),
            // Only CometAPI's own host is worth blaming COMETAPI_BASE_URL for (not a result host).
            _ if e.is_connect() && e.url().is_none_or(|u| self.is_comet(u.as_str())) => {
                errors::unreachable(what, &self.endpoint.base, &cause)
            }
            _ => format!("{what} failed: {cause}; check your network and `COMETAPI_BASE_URL`"),
        };
        let refused = e.is_connect() && !e.is_timeout();
        ApiError { maybe_created: call == Call::Submit && !refused, ..ApiError::new(self.redact(&message)) }
    }
}

enum Capped {
    TooLarge,
    Transport(reqwest::Error),
}

/// The body, refused as soon as it passes `max` bytes (or announces it will).
async fn read_capped(mut response: reqwest::Response, max: u64) -> Result<Bytes, Capped> {
    if response.content_length().is_some_and(|n| n > max) {
        return Err(Capped::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Capped::Transport)? {
        if (body.len() + chunk.len()) as u64 > max {
            return Err(Capped::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// The path part of a URL, for messages (never the query, which could carry a secret).
pub(crate) fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    path.split('?').next().unwrap_or(path)
}

/// A reqwest error with its causes ("error sending request ...: connection refused").
fn error_chain(e: &reqwest::Error) -> String {
    let mut parts = vec![if e.is_timeout() { "timed out".to_owned() } else { e.to_string() }];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(base: &str) -> Api {
        Api::new(Endpoint { base: config::normalize_base(base), key: None, simulated: false })
    }

    #[test]
    fn the_key_belongs_to_the_exact_scheme_host_and_port_of_the_base() {
        let a = api("https://api.example.test/v1");
        assert!(a.is_comet("https://api.example.test/suno/x"));
        assert!(a.is_comet("https://API.example.test:443/x"));
        assert!(!a.is_comet("http://api.example.test/x"), "clear text to an https base");
        assert!(!a.is_comet("https://api.example.test:8443/x"));
        assert!(!a.is_comet("https://api.example.test.evil.test/x"));
        assert!(!a.is_comet("https://evil.test\\@api.example.test/x"));
        assert!(!a.is_comet("https://evil.test#@api.example.test/x"));
        assert!(!a.is_comet("/relative"));
    }
}
