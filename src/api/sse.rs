//! Server-sent events from an OpenAI-format route (`stream: true`): `data: {chunk}` lines
//! ending with `data: [DONE]`, each chunk handed over as it arrives.
//!
//! Until the answer's status line arrives nothing was streamed, so 429s and gateway 5xx are
//! retried as for any submit. Once the stream has begun it is never asked again: a stream
//! that breaks or ends without `[DONE]` is an error that says how much had arrived.

use futures::StreamExt;
use reqwest::Method;
use serde_json::Value as Json;

use super::retry::{self, Call, Verdict};
use super::{errors, Api, ApiError};

/// How much of a stream arrived: for the progress line and for a cut stream's message.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Received {
    pub chunks: usize,
    pub bytes: usize,
}

impl Api {
    /// POSTs `body` to `path` and calls `on_chunk` with every `data:` JSON until `[DONE]`.
    /// `arrived` describes what the caller has gathered, for the cut-stream message.
    pub(crate) async fn stream(
        &self,
        path: &str,
        body: &Json,
        on_chunk: &mut (dyn FnMut(Json) + Send),
        arrived: &(dyn Fn() -> String + Send + Sync),
    ) -> Result<Received, ApiError> {
        let key = self.key().map_err(|e| ApiError::new(e.message))?.clone();
        let url = self.url(path);
        let what = format!("`POST {}`", super::path_of(&url));
        let mut last = ApiError::new(format!("{what} was not sent"));
        let http = self.http()?;
        let mut response = None;
        for attempt in 1..=self.backoff.tries {
            let sent = http
                .request(Method::POST, &url)
                .bearer_auth(key.expose())
                .header(reqwest::header::ACCEPT, "text/event-stream")
                .json(body)
                .send()
                .await;
            let wait = match sent {
                Ok(r) if r.status().is_success() => {
                    response = Some(r);
                    break;
                }
                Ok(r) => {
                    let (status, headers) = (r.status(), r.headers().clone());
                    let bytes = r.bytes().await.unwrap_or_default();
                    let said = errors::read(&bytes);
                    let verdict =
                        retry::on_status(Call::Submit, status, said.as_ref(), retry::retry_after(&headers));
                    last = ApiError {
                        message: self.redact(&errors::describe(status, &bytes, &what)),
                        said,
                        maybe_created: false,
                    };
                    match verdict {
                        Verdict::Final => return Err(last),
                        Verdict::Retry(wait) => wait,
                    }
                }
                Err(e) => {
                    let verdict = retry::on_transport(Call::Submit, &e);
                    last = self.transport_error(Call::Submit, &what, &e, verdict);
                    match verdict {
                        Verdict::Final => return Err(last),
                        Verdict::Retry(wait) => wait,
                    }
                }
            };
            if attempt < self.backoff.tries {
                tokio::time::sleep(wait.unwrap_or_else(|| self.backoff.delay(attempt + 1))).await;
            }
        }
        let Some(response) = response else {
            last.message = format!("{} (gave up after {} tries)", last.message, self.backoff.tries);
            return Err(last);
        };
        let mut received = Received::default();
        let mut lines = Lines::default();
        let mut body = response.bytes_stream();
        let cut = |why: String, received: &Received| {
            ApiError::new(self.redact(&format!(
                "{what}: the answer stream {why} after {} chunks ({}) had arrived, without `data: [DONE]`; \
                 it was not asked again, since the call may have been paid for: run the step again to ask anew",
                received.chunks,
                arrived()
            )))
        };
        while let Some(piece) = body.next().await {
            let piece = piece.map_err(|e| cut(format!("broke ({})", super::error_chain(&e)), &received))?;
            received.bytes += piece.len();
            for line in lines.push(&piece) {
                match data(&line) {
                    None => {}
                    Some("[DONE]") => return Ok(received),
                    Some(json) => {
                        let chunk: Json = serde_json::from_str(json)
                            .map_err(|e| cut(format!("sent a chunk that is not JSON ({e})"), &received))?;
                        if let Some(error) = chunk.get("error").filter(|e| e.is_object()) {
                            let message = errors::text(&error["message"]);
                            return Err(ApiError::new(
                                self.redact(&format!("{what}: the stream reported an error: {message}")),
                            ));
                        }
                        received.chunks += 1;
                        on_chunk(chunk);
                    }
                }
            }
        }
        Err(cut("ended".into(), &received))
    }
}

/// The payload of a `data:` line; comments, `event:` and blank lines carry none.
fn data(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("data:")?;
    Some(rest.strip_prefix(' ').unwrap_or(rest).trim_end())
}

/// Splits a byte stream into lines, keeping a partial last line for the next piece.
#[derive(Default)]
struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    fn push(&mut self, piece: &[u8]) -> Vec<String> {
        self.partial.extend_from_slice(piece);
        let mut lines = Vec::new();
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            lines.push(line.trim_end_matches(['\n', '\r']).to_owned());
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_joined_across_pieces_and_data_is_read() {
        let mut l = Lines::default();
        assert!(l.push(b"data: {\"a\"").is_empty());
        assert_eq!(l.push(b":1}\r\n\r\ndata: [DONE]\n"), ["data: {\"a\":1}", "", "data: [DONE]"]);
        assert_eq!(data("data: {\"a\":1}"), Some("{\"a\":1}"));
        assert_eq!(data("data:[DONE]"), Some("[DONE]"));
        assert_eq!(data(": keep-alive"), None);
        assert_eq!(data("event: message"), None);
    }
}
