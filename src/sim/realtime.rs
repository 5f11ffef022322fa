//! `GET /v1/realtime?model=...`: OpenAI's Realtime API over a websocket, as CometAPI serves
//! it. The gate has already checked the key (a refused upgrade answers the JSON envelope);
//! an unknown model is refused before the upgrade too.
//!
//! Events: `session.created` on connect; `session.update` -> `session.updated`;
//! `conversation.item.create` and `input_audio_buffer.append`/`commit` -> the user's turn;
//! `response.create` -> `response.created`, `response.text.delta` (text only) or
//! `response.audio_transcript.delta` + `response.audio.delta` (base64 PCM16, 24 kHz mono),
//! the `*.done` events and `response.done` with `usage`. Mistakes answer an `error` event
//! and the session stays open, as upstream does.
//!
//! Faults: `realtime_error` (or `[sim:error]` in the prompt) answers `response.create` with
//! an `error` event; `realtime_drop=N` drops the first N sessions in the middle of their
//! response; `realtime_drop_early=N` drops the first N sessions before `session.created`.

use std::collections::HashMap;
use std::f32::consts::TAU;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::http::{alnum, check_model_name, tokens};
use super::state::Sim;
use super::text;

const VOICES: &[&str] =
    &["alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"];
/// 24 kHz 16-bit mono: bytes per second.
const BYTES_PER_SECOND: usize = 48_000;
/// Each spoken word lasts this long.
const WORD_SECONDS: f32 = 0.25;

pub(crate) async fn upgrade(
    State(sim): State<Arc<Sim>>,
    Query(query): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Result<Response, Response> {
    let model = check_model_name(query.get("model").map_or("", String::as_str))?;
    let n = sim.next_realtime_session();
    Ok(ws.on_upgrade(move |socket| async move {
        if n <= sim.config.faults.realtime_drop_early {
            sim.count_fault("realtime_dropped_early");
            return; // dropped: no greeting, no close frame
        }
        let drop_midway = n <= sim.config.faults.realtime_drop;
        Session::new(model, &sim, drop_midway).serve(socket).await;
    }))
}

struct Session<'a> {
    sim: &'a Sim,
    id: String,
    config: Map<String, Value>,
    /// What the user said: text, or a description of the audio.
    turns: Vec<String>,
    buffer: Vec<u8>,
    drop_midway: bool,
}

/// Why a session stops serving.
enum End {
    Closed,
    Dropped,
}

impl<'a> Session<'a> {
    fn new(model: String, sim: &'a Sim, drop_midway: bool) -> Self {
        let config = json!({
            "model": model, "object": "realtime.session", "modalities": ["text", "audio"],
            "instructions": "", "voice": "alloy", "input_audio_format": "pcm16",
            "output_audio_format": "pcm16", "turn_detection": {"type": "server_vad"},
            "temperature": 0.8, "max_response_output_tokens": "inf",
        });
        let Value::Object(config) = config else { unreachable!("a literal object") };
        Session {
            sim,
            id: format!("sess_{}", alnum(20)),
            config,
            turns: Vec::new(),
            buffer: Vec::new(),
            drop_midway,
        }
    }

    async fn serve(mut self, mut socket: WebSocket) {
        let mut session = Value::Object(self.config.clone());
        session["id"] = json!(self.id);
        if send(&mut socket, "session.created", json!({"session": session})).await.is_err() {
            return;
        }
        while let Some(Ok(message)) = socket.recv().await {
            let text = match message {
                Message::Text(t) => t,
                Message::Close(_) => break,
                _ => continue,
            };
            let event: Value = match serde_json::from_str(text.as_str()) {
                Ok(v @ Value::Object(_)) => v,
                _ => {
                    let _ = error(
                        &mut socket,
                        "invalid_request_error",
                        "invalid_json",
                        "the event is not a JSON object",
                        None,
                    )
                    .await;
                    continue;
                }
            };
            match self.handle(&mut socket, &event).await {
                Ok(()) => {}
                Err(End::Closed) => return,
                Err(End::Dropped) => {
                    self.sim.count_fault("realtime_dropped");
                    return; // dropped without a close frame
                }
            }
        }
    }

    async fn handle(&mut self, socket: &mut WebSocket, event: &Value) -> Result<(), End> {
        let event_id = event.get("event_id").and_then(Value::as_str).map(str::to_owned);
        let kind = event["type"].as_str().unwrap_or_default();
        let sent = match kind {
            "session.update" => self.update(socket, &event["session"], event_id).await,
            "conversation.item.create" => self.item(socket, &event["item"], event_id).await,
            "input_audio_buffer.append" => {
                match base64::engine::general_purpose::STANDARD
                    .decode(event["audio"].as_str().unwrap_or_default())
                {
                    Ok(bytes) => {
                        self.buffer.extend(bytes);
                        Ok(())
                    }
                    Err(_) => {
                        error(
                            socket,
                            "invalid_request_error",
                            "invalid_value",
                            "audio is not valid base64",
                            event_id,
                        )
                        .await
                    }
                }
            }
            "input_audio_buffer.commit" => self.commit(socket, event_id).await,
            "input_audio_buffer.clear" => {
                self.buffer.clear();
                send(socket, "input_audio_buffer.cleared", json!({})).await
            }
            "response.create" => return self.respond(socket, &event["response"], event_id).await,
            "response.cancel" => Ok(()),
            other => {
                let message = format!("Invalid value: '{other}'. Supported values are: 'session.update', 'input_audio_buffer.append', 'input_audio_buffer.commit', 'input_audio_buffer.clear', 'conversation.item.create', 'response.create' and 'response.cancel'.");
                error(socket, "invalid_request_error", "invalid_value", &message, event_id).await
            }
        };
        sent.map_err(|_| End::Closed)
    }

    async fn update(
        &mut self,
        socket: &mut WebSocket,
        update: &Value,
        event_id: Option<String>,
    ) -> Result<(), axum::Error> {
        let Some(update) = update.as_object() else {
            return error(
                socket,
                "invalid_request_error",
                "missing_required_parameter",
                "Missing required parameter: 'session'.",
                event_id,
            )
            .await;
        };
        if let Some(voice) = update.get("voice").and_then(Value::as_str) {
            if !VOICES.contains(&voice) {
                let message =
                    format!("Invalid value: '{voice}'. Supported values are: {}.", VOICES.join(", "));
                return error(socket, "invalid_request_error", "invalid_value", &message, event_id).await;
            }
        }
        for (k, v) in update {
            self.config.insert(k.clone(), v.clone());
        }
        let mut session = Value::Object(self.config.clone());
        session["id"] = json!(self.id);
        send(socket, "session.updated", json!({"session": session})).await
    }

    async fn item(
        &mut self,
        socket: &mut WebSocket,
        item: &Value,
        event_id: Option<String>,
    ) -> Result<(), axum::Error> {
        let mut said = Vec::new();
        for part in item["content"].as_array().into_iter().flatten() {
            match part["type"].as_str() {
                Some("input_text" | "text") => {
                    said.push(part["text"].as_str().unwrap_or_default().to_owned())
                }
                Some("input_audio") => {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(part["audio"].as_str().unwrap_or_default());
                    said.push(spoken(bytes.map_or(0, |b| b.len())));
                }
                _ => {}
            }
        }
        if said.is_empty() {
            return error(
                socket,
                "invalid_request_error",
                "invalid_value",
                "the item has no input_text or input_audio content",
                event_id,
            )
            .await;
        }
        let id = format!("item_{}", alnum(20));
        self.turns.push(said.join("\n"));
        let item = json!({"id": id, "object": "realtime.item", "type": "message", "role": "user", "status": "completed", "content": item["content"]});
        send(socket, "conversation.item.created", json!({"previous_item_id": null, "item": item})).await
    }

    async fn commit(&mut self, socket: &mut WebSocket, event_id: Option<String>) -> Result<(), axum::Error> {
        if self.buffer.len() < BYTES_PER_SECOND / 10 {
            let message = format!(
                "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but buffer only has {:.2}ms of audio.",
                self.buffer.len() as f64 * 1000.0 / BYTES_PER_SECOND as f64
            );
            return error(
                socket,
                "invalid_request_error",
                "input_audio_buffer_commit_empty",
                &message,
                event_id,
            )
            .await;
        }
        let id = format!("item_{}", alnum(20));
        self.turns.push(spoken(self.buffer.len()));
        self.buffer.clear();
        send(socket, "input_audio_buffer.committed", json!({"previous_item_id": null, "item_id": id}))
            .await?;
        let item = json!({"id": id, "object": "realtime.item", "type": "message", "role": "user", "status": "completed",
                          "content": [{"type": "input_audio", "transcript": null}]});
        send(socket, "conversation.item.created", json!({"previous_item_id": null, "item": item})).await
    }

    async fn respond(
        &mut self,
        socket: &mut WebSocket,
        asked: &Value,
        event_id: Option<String>,
    ) -> Result<(), End> {
        let closed = |_| End::Closed;
        let prompt = self.turns.last().cloned().unwrap_or_default();
        if self.sim.config.faults.realtime_error || prompt.contains("[sim:error]") {
            self.sim.count_fault("realtime_error");
            let message = "The server had an error while processing your request. Sorry about that!";
            return error(socket, "server_error", "server_error", message, event_id).await.map_err(closed);
        }
        let modalities = asked
            .get("modalities")
            .or_else(|| self.config.get("modalities"))
            .cloned()
            .unwrap_or(json!(["text"]));
        let audio = modalities.as_array().is_some_and(|m| m.iter().any(|x| x == "audio"));
        let reply = text::reply(&prompt);
        let (response_id, item_id) = (format!("resp_{}", alnum(20)), format!("item_{}", alnum(20)));
        let mut response = json!({"id": response_id, "object": "realtime.response", "status": "in_progress",
                                  "status_details": null, "output": [], "usage": null, "modalities": modalities});
        send(socket, "response.created", json!({"response": response})).await.map_err(closed)?;
        let item = json!({"id": item_id, "object": "realtime.item", "type": "message", "role": "assistant", "status": "in_progress", "content": []});
        send(
            socket,
            "response.output_item.added",
            json!({"response_id": response_id, "output_index": 0, "item": item}),
        )
        .await
        .map_err(closed)?;
        let at =
            json!({"response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0});
        let with = |extra: Value| {
            let mut v = at.clone();
            for (k, x) in extra.as_object().into_iter().flatten() {
                v[k] = x.clone();
            }
            v
        };
        let words: Vec<&str> = reply.split_inclusive(' ').collect();
        let mut pcm_len = 0;
        for (i, word) in words.iter().enumerate() {
            if self.drop_midway && i == words.len().div_ceil(2) {
                return Err(End::Dropped);
            }
            if audio {
                send(socket, "response.audio_transcript.delta", with(json!({"delta": word})))
                    .await
                    .map_err(closed)?;
                let pcm = tone(i);
                pcm_len += pcm.len();
                let b64 = base64::engine::general_purpose::STANDARD.encode(&pcm);
                send(socket, "response.audio.delta", with(json!({"delta": b64}))).await.map_err(closed)?;
            } else {
                send(socket, "response.text.delta", with(json!({"delta": word}))).await.map_err(closed)?;
            }
        }
        let part = if audio {
            send(socket, "response.audio.done", with(json!({}))).await.map_err(closed)?;
            send(socket, "response.audio_transcript.done", with(json!({"transcript": reply})))
                .await
                .map_err(closed)?;
            json!({"type": "audio", "transcript": reply})
        } else {
            send(socket, "response.text.done", with(json!({"text": reply}))).await.map_err(closed)?;
            json!({"type": "text", "text": reply})
        };
        send(socket, "response.content_part.done", with(json!({"part": part}))).await.map_err(closed)?;
        let item = json!({"id": item_id, "object": "realtime.item", "type": "message", "role": "assistant", "status": "completed", "content": [part]});
        send(
            socket,
            "response.output_item.done",
            json!({"response_id": response_id, "output_index": 0, "item": item}),
        )
        .await
        .map_err(closed)?;
        let (text_in, audio_in) =
            if prompt.starts_with("(spoken") { (0, audio_tokens(&prompt)) } else { (tokens(&prompt), 0) };
        let text_in =
            text_in + tokens(self.config.get("instructions").and_then(Value::as_str).unwrap_or_default());
        let text_out = tokens(&reply);
        let audio_out = (pcm_len as u64).div_ceil(BYTES_PER_SECOND as u64 / 10);
        response["status"] = json!("completed");
        response["output"] = json!([item]);
        response["usage"] = json!({
            "total_tokens": text_in + audio_in + text_out + audio_out,
            "input_tokens": text_in + audio_in, "output_tokens": text_out + audio_out,
            "input_token_details": {"cached_tokens": 0, "text_tokens": text_in, "audio_tokens": audio_in},
            "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
        });
        send(socket, "response.done", json!({"response": response})).await.map_err(closed)
    }
}

/// The user's turn when it was audio: the simulator does not listen, it only measures.
fn spoken(bytes: usize) -> String {
    format!("(spoken question of {:.1} s)", bytes as f64 / BYTES_PER_SECOND as f64)
}

/// Ten audio tokens a second, read back from `spoken`'s text.
fn audio_tokens(prompt: &str) -> u64 {
    let secs: f64 = prompt.split_whitespace().nth(3).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    (secs * 10.0).ceil() as u64
}

/// A quarter second of a soft tone for word `i`: a simple melody, so the WAV is audible.
fn tone(i: usize) -> Vec<u8> {
    const PITCHES: [f32; 5] = [220.0, 247.0, 262.0, 294.0, 330.0];
    let hz = PITCHES[i % PITCHES.len()];
    let n = (WORD_SECONDS * BYTES_PER_SECOND as f32 / 2.0) as usize;
    (0..n)
        .flat_map(|k| {
            let t = k as f32 / (BYTES_PER_SECOND / 2) as f32;
            let fade = (k.min(n - k) as f32 / 600.0).min(1.0);
            let sample = ((TAU * hz * t).sin() * 0.25 * fade * 32767.0) as i16;
            sample.to_le_bytes()
        })
        .collect()
}

async fn send(socket: &mut WebSocket, kind: &str, fields: Value) -> Result<(), axum::Error> {
    let mut event = json!({"type": kind, "event_id": format!("event_{}", alnum(20))});
    for (k, v) in fields.as_object().into_iter().flatten() {
        event[k] = v.clone();
    }
    socket.send(Message::Text(event.to_string().into())).await
}

/// `{"type":"error","error":{"type","code","message","param","event_id"}}`.
async fn error(
    socket: &mut WebSocket,
    kind: &str,
    code: &str,
    message: &str,
    event_id: Option<String>,
) -> Result<(), axum::Error> {
    let error = json!({"type": kind, "code": code, "message": message, "param": null, "event_id": event_id});
    send(socket, "error", json!({"error": error})).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_is_a_quarter_second_of_pcm16() {
        assert_eq!(tone(0).len(), BYTES_PER_SECOND / 4);
        assert_eq!(audio_tokens(&spoken(BYTES_PER_SECOND * 2)), 20);
    }
}
