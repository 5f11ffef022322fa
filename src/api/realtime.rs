//! One Realtime session over a websocket (`ws(s)://<host>/v1/realtime?model=...`): wait for
//! `session.created`, send `session.update`, the user's text or audio and `response.create`,
//! then gather `response.*` deltas until `response.done`.
//!
//! The socket goes only to the configured host, with the key as `Authorization: Bearer`.
//! A session is started again only when that cannot have been billed: it failed before
//! `response.create` was sent (refused connection, a 429/5xx upgrade answer, a drop before
//! the server's greeting). A server `error` event, a refused upgrade (401, unknown model)
//! and anything that goes wrong once a response was asked for are final.

use std::time::Duration;

use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value as Json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;

use super::retry::{self, Call, Verdict};
use super::{errors, Api, ApiError};

/// What the session is asked.
pub(crate) struct Ask {
    pub model: String,
    /// The `session` object of `session.update` (modalities, voice, instructions, ...).
    pub session: Json,
    pub input: Input,
    /// `response.create`'s `response` object.
    pub response: Json,
}

pub(crate) enum Input {
    Text(String),
    /// 24 kHz 16-bit mono little-endian PCM.
    Audio(Vec<u8>),
}

/// What came back, so far or in the end.
#[derive(Debug, Default, Clone)]
pub(crate) struct Reply {
    pub text: String,
    pub transcript: String,
    /// 24 kHz 16-bit mono little-endian PCM.
    pub audio: Vec<u8>,
    /// `response.done`'s `response` (status, usage, output items).
    pub response: Json,
}

/// Audio is sent in pieces of this many bytes (a second of session audio).
const CHUNK: usize = 48_000;

/// A failed session and whether starting it again is free.
struct Failure {
    error: ApiError,
    unbilled: bool,
}

fn failure(message: String, unbilled: bool) -> Failure {
    Failure { error: ApiError::new(message), unbilled }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl Api {
    /// `ws(s)://<host>/v1/realtime?model=<model>`, on the configured host only.
    pub(crate) fn realtime_url(&self, model: &str) -> String {
        let base = &self.endpoint.base;
        let ws = match base.split_once("://") {
            Some(("http", rest)) => format!("ws://{rest}"),
            Some((_, rest)) => format!("wss://{rest}"),
            None => format!("wss://{base}"),
        };
        let model: String = model
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect();
        format!("{ws}/v1/realtime?model={model}")
    }

    /// Runs one session to `response.done`, starting it again while that is free;
    /// `progress` sees the reply as it grows.
    pub(crate) async fn realtime(
        &self,
        ask: &Ask,
        cancel: &CancellationToken,
        progress: &mut (dyn FnMut(&Reply) + Send),
    ) -> Result<Reply, ApiError> {
        let mut last = ApiError::new("the realtime session was not started");
        for attempt in 1..=self.backoff.tries {
            match self.session(ask, cancel, progress).await {
                Ok(reply) => return Ok(reply),
                Err(Failure { error, unbilled: false }) => return Err(error),
                Err(Failure { error, unbilled: true }) => last = error,
            }
            if cancel.is_cancelled() {
                return Err(ApiError::new("cancelled"));
            }
            if attempt < self.backoff.tries {
                tracing::debug!(attempt, "starting the realtime session again: {}", last.message);
                tokio::time::sleep(self.backoff.delay(attempt + 1)).await;
            }
        }
        last.message = format!("{} (gave up after {} tries)", last.message, self.backoff.tries);
        Err(last)
    }

    async fn session(
        &self,
        ask: &Ask,
        cancel: &CancellationToken,
        progress: &mut (dyn FnMut(&Reply) + Send),
    ) -> Result<Reply, Failure> {
        let mut ws = tokio::select! {
            ws = self.open(&ask.model) => ws?,
            _ = cancel.cancelled() => return Err(failure("cancelled".into(), false)),
        };
        let idle = read_timeout();
        let mut asked = false;
        let mut reply = Reply::default();
        loop {
            let next = tokio::select! {
                next = tokio::time::timeout(idle, ws.next()) => next,
                _ = cancel.cancelled() => {
                    if asked {
                        let _ = send(&mut ws, json!({"type": "response.cancel"})).await;
                    }
                    let _ = ws.close(None).await;
                    return Err(failure("cancelled".into(), false));
                }
            };
            let text = match next {
                Err(_) => {
                    let message = format!("the realtime session sent nothing for {}", human(idle));
                    return Err(self.cut(message, asked, &reply));
                }
                Ok(None) => return Err(self.cut("the realtime session closed".into(), asked, &reply)),
                Ok(Some(Err(e))) => {
                    let message = format!("the realtime connection broke ({e})");
                    return Err(self.cut(message, asked, &reply));
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    let why =
                        frame.map(|f| format!(" ({} {})", u16::from(f.code), f.reason)).unwrap_or_default();
                    return Err(self.cut(
                        format!("the server closed the realtime session{why}"),
                        asked,
                        &reply,
                    ));
                }
                Ok(Some(Ok(Message::Text(t)))) => t,
                Ok(Some(Ok(_))) => continue,
            };
            let event: Json = match serde_json::from_str(text.as_str()) {
                Ok(v) => v,
                Err(e) => {
                    let message = format!("the realtime session sent an event that is not JSON ({e})");
                    return Err(self.cut(message, asked, &reply));
                }
            };
            match event["type"].as_str().unwrap_or_default() {
                "session.created" if !asked => {
                    // From here on the response may be billed: nothing is started again.
                    self.ask(&mut ws, ask).await.map_err(|e| self.cut(e, false, &reply))?;
                    asked = true;
                }
                "response.text.delta" | "response.output_text.delta" => {
                    reply.text.push_str(event["delta"].as_str().unwrap_or_default());
                    progress(&reply);
                }
                "response.audio_transcript.delta" | "response.output_audio_transcript.delta" => {
                    reply.transcript.push_str(event["delta"].as_str().unwrap_or_default());
                    progress(&reply);
                }
                "response.audio.delta" | "response.output_audio.delta" => {
                    let delta = event["delta"].as_str().unwrap_or_default();
                    let pcm = base64::engine::general_purpose::STANDARD.decode(delta).map_err(|e| {
                        failure(format!("the realtime session sent audio that is not base64 ({e})"), false)
                    })?;
                    reply.audio.extend_from_slice(&pcm);
                    progress(&reply);
                }
                "response.done" => {
                    reply.response = event["response"].clone();
                    let _ = ws.close(None).await;
                    return finished(reply).map_err(|m| failure(self.redact(&m), false));
                }
                "error" => {
                    let _ = ws.close(None).await;
                    return Err(failure(self.redact(&server_error(&event)), false));
                }
                _ => {}
            }
        }
    }

    /// Opens the socket; a refused upgrade is described like any failed HTTP answer.
    async fn open(&self, model: &str) -> Result<Socket, Failure> {
        let key = self.key().map_err(|e| failure(e.message, false))?.clone();
        let url = self.realtime_url(model);
        let what = "`GET /v1/realtime`";
        let mut request = url.as_str().into_client_request().map_err(|e| {
            failure(format!("cannot build the realtime request for `{}`: {e}", self.endpoint.base), false)
        })?;
        let bearer = format!("Bearer {}", key.expose()).parse().map_err(|_| {
            failure(
                "the CometAPI key holds characters a header cannot carry; check `COMETAPI_KEY`".into(),
                false,
            )
        })?;
        request.headers_mut().insert(reqwest::header::AUTHORIZATION, bearer);
        request.headers_mut().insert("OpenAI-Beta", reqwest::header::HeaderValue::from_static("realtime=v1"));
        let connect = tokio_tungstenite::connect_async(request);
        let timeout = Duration::from_secs(30);
        match tokio::time::timeout(timeout, connect).await {
            Err(_) => Err(failure(format!("{what} got no answer in {}", human(timeout)), true)),
            Ok(Ok((ws, _))) => Ok(ws),
            Ok(Err(tungstenite::Error::Http(response))) => {
                let status = response.status();
                let body = response.body().clone().unwrap_or_default();
                let said = errors::read(&body);
                let verdict = retry::on_status(
                    Call::Submit,
                    status,
                    said.as_ref(),
                    retry::retry_after(response.headers()),
                );
                let message = self.redact(&errors::describe(status, &body, what));
                Err(Failure {
                    error: ApiError { message, said, maybe_created: false },
                    unbilled: verdict != Verdict::Final,
                })
            }
            Ok(Err(tungstenite::Error::Io(e))) if e.kind() == std::io::ErrorKind::ConnectionRefused => Err(
                failure(self.redact(&errors::unreachable(what, &self.endpoint.base, &e.to_string())), true),
            ),
            // Nothing was asked yet, so trying again costs nothing.
            Ok(Err(e)) => Err(failure(
                self.redact(&format!("{what} failed: {e}; check your network and `COMETAPI_BASE_URL`")),
                true,
            )),
        }
    }

    /// `session.update`, the user's turn and `response.create`.
    async fn ask(&self, ws: &mut Socket, ask: &Ask) -> Result<(), String> {
        let broke = |e: tungstenite::Error| format!("the realtime connection broke while asking ({e})");
        send(ws, json!({"type": "session.update", "session": ask.session})).await.map_err(broke)?;
        match &ask.input {
            Input::Text(text) => {
                let item = json!({"type": "message", "role": "user",
                                  "content": [{"type": "input_text", "text": text}]});
                send(ws, json!({"type": "conversation.item.create", "item": item})).await.map_err(broke)?;
            }
            Input::Audio(pcm) => {
                let b64 = base64::engine::general_purpose::STANDARD;
                for chunk in pcm.chunks(CHUNK) {
                    let event = json!({"type": "input_audio_buffer.append", "audio": b64.encode(chunk)});
                    send(ws, event).await.map_err(broke)?;
                }
                send(ws, json!({"type": "input_audio_buffer.commit"})).await.map_err(broke)?;
            }
        }
        send(ws, json!({"type": "response.create", "response": ask.response})).await.map_err(broke)
    }

    /// A session that ended without `response.done`: free to start again only if nothing
    /// was asked; otherwise the message says what had arrived.
    fn cut(&self, what: String, asked: bool, reply: &Reply) -> Failure {
        if !asked {
            return failure(self.redact(&format!("{what} before it was ready")), true);
        }
        let got = arrived(reply);
        failure(
            self.redact(&format!(
                "{what} before `response.done`, after {got} had arrived; it was not started again, \
                 since the response may have been billed: run the step again to ask anew"
            )),
            false,
        )
    }
}

async fn send(ws: &mut Socket, event: Json) -> Result<(), tungstenite::Error> {
    ws.send(Message::text(event.to_string())).await
}

/// A finished response: `completed` or `incomplete` (cut by a token limit) keep what came;
/// `failed` and `cancelled` say why.
fn finished(reply: Reply) -> Result<Reply, String> {
    let status = reply.response["status"].as_str().unwrap_or("completed");
    match status {
        "failed" | "cancelled" => {
            let details = &reply.response["status_details"];
            let why = details["error"]["message"]
                .as_str()
                .or_else(|| details["reason"].as_str())
                .unwrap_or("no reason given");
            Err(format!("the realtime response {status}: {why}"))
        }
        _ => Ok(reply),
    }
}

/// `{"type":"error","error":{"type","code","message"}}`, said plainly.
fn server_error(event: &Json) -> String {
    let e = &event["error"];
    let message = e["message"].as_str().unwrap_or("no message");
    let mut detail = Vec::new();
    for (name, key) in [("type", "type"), ("code", "code")] {
        if let Some(v) = e[key].as_str().filter(|v| !v.is_empty()) {
            detail.push(format!("{name} `{v}`"));
        }
    }
    let detail = if detail.is_empty() { String::new() } else { format!(" ({})", detail.join(", ")) };
    format!("the realtime session reported an error: {message}{detail}")
}

/// "12 characters of text and 1.5 s of audio", or "nothing".
fn arrived(reply: &Reply) -> String {
    let chars = reply.text.chars().count().max(reply.transcript.chars().count());
    let secs = reply.audio.len() as f64 / 48_000.0;
    match (chars, reply.audio.is_empty()) {
        (0, true) => "nothing".to_owned(),
        (n, true) => format!("{n} characters of text"),
        (0, false) => format!("{secs:.1} s of audio"),
        (n, false) => format!("{n} characters of text and {secs:.1} s of audio"),
    }
}

fn read_timeout() -> Duration {
    std::env::var("COMETFLOW_HTTP_READ_TIMEOUT")
        .ok()
        .and_then(|v| crate::model::parse_duration(&v).ok())
        .unwrap_or(Duration::from_secs(120))
}

fn human(d: Duration) -> String {
    crate::model::human_duration(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_are_said_plainly() {
        let e = json!({"type": "error", "error": {"type": "invalid_request_error", "code": "bad_voice", "message": "voice `x` is not supported"}});
        assert_eq!(
            server_error(&e),
            "the realtime session reported an error: voice `x` is not supported (type `invalid_request_error`, code `bad_voice`)"
        );
    }

    #[test]
    fn what_arrived_is_counted() {
        let mut r = Reply::default();
        assert_eq!(arrived(&r), "nothing");
        r.transcript = "hello".into();
        r.audio = vec![0; 72_000];
        assert_eq!(arrived(&r), "5 characters of text and 1.5 s of audio");
    }

    #[test]
    fn a_failed_response_says_why_and_an_incomplete_one_keeps_its_text() {
        let failed = Reply {
            response: json!({"status": "failed", "status_details": {"error": {"message": "upstream busy"}}}),
            ..Reply::default()
        };
        assert_eq!(finished(failed).unwrap_err(), "the realtime response failed: upstream busy");
        let cut = Reply { text: "hi".into(), response: json!({"status": "incomplete"}), ..Reply::default() };
        assert_eq!(finished(cut).unwrap().text, "hi");
    }
}
