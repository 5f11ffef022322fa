//! `chat` with `stream: true` (the default when stderr is a terminal): the reply is read as
//! server-sent events, its growing tail shown on the step's progress line, and the chunks
//! put back together into the same answer a plain call returns, so the outputs match.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value as Json};

use super::super::charged;
use crate::api::Api;
use crate::contract::{StepCtx, StepError};

/// Whether to stream: `stream:` when given, else whether someone watches stderr.
pub(crate) fn wanted(body: &Map<String, Json>) -> bool {
    match body.get("stream") {
        Some(Json::Bool(b)) => *b,
        _ => std::io::stderr().is_terminal(),
    }
}

/// How often a growing reply updates the progress line: often on a terminal, where it is
/// redrawn in place; rarely elsewhere, where every update is a line of the log.
pub(crate) fn progress_every() -> Duration {
    if std::io::stderr().is_terminal() {
        Duration::from_millis(150)
    } else {
        Duration::from_secs(3)
    }
}

/// The end of a growing text on one line, marked with a leading `…` so the live view keeps
/// its end when the line is too long.
pub(crate) fn tail(text: &str) -> String {
    const KEEP: usize = 120;
    let flat: String = text.chars().map(|c| if c.is_whitespace() { ' ' } else { c }).collect();
    let n = flat.chars().count();
    format!("…{}", flat.chars().skip(n.saturating_sub(KEEP)).collect::<String>())
}

/// The chunks so far, as one answer.
#[derive(Default)]
struct Gathered {
    content: String,
    role: Option<Json>,
    finish: Json,
    usage: Json,
    head: Map<String, Json>,
}

impl Gathered {
    fn add(&mut self, chunk: Json) {
        for key in ["id", "created", "model", "system_fingerprint", "service_tier"] {
            if let Some(v) = chunk.get(key).filter(|v| !v.is_null()) {
                self.head.insert(key.into(), v.clone());
            }
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = usage.clone();
        }
        // The last chunk may carry only `usage`, with `choices` empty.
        let choices = chunk.get("choices").and_then(Json::as_array).cloned().unwrap_or_default();
        for choice in choices.iter().filter(|c| c["index"].as_u64().unwrap_or(0) == 0) {
            let delta = &choice["delta"];
            if let Some(text) = delta["content"].as_str() {
                self.content.push_str(text);
            }
            if let Some(role) = delta.get("role").filter(|r| r.is_string()) {
                self.role = Some(role.clone());
            }
            if !choice["finish_reason"].is_null() {
                self.finish = choice["finish_reason"].clone();
            }
        }
    }

    /// The answer a non-streamed call would have given.
    fn answer(self) -> Json {
        let mut raw = self.head;
        raw.insert("object".into(), json!("chat.completion"));
        let message = json!({"role": self.role.unwrap_or(json!("assistant")), "content": self.content});
        raw.insert("choices".into(), json!([{"index": 0, "message": message, "finish_reason": self.finish}]));
        raw.insert("usage".into(), self.usage);
        Json::Object(raw)
    }
}

/// Streams the call; returns the answer put back together.
pub(crate) async fn call(api: &Api, ctx: &StepCtx, mut body: Map<String, Json>) -> Result<Json, StepError> {
    body.insert("stream".into(), json!(true));
    // The usage arrives in a last chunk only when asked for.
    body.entry("stream_options").or_insert_with(|| json!({"include_usage": true}));
    charged(api, ctx)?;
    let gathered = Mutex::new(Gathered::default());
    let lock = || gathered.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let every = progress_every();
    let mut last: Option<Instant> = None;
    let mut on_chunk = |chunk: Json| {
        let mut g = lock();
        g.add(chunk);
        if last.is_none_or(|t| t.elapsed() >= every) && !g.content.is_empty() {
            last = Some(Instant::now());
            ctx.progress(tail(&g.content));
        }
    };
    let arrived = || format!("{} characters of the reply", lock().content.chars().count());
    api.stream("/v1/chat/completions", &Json::Object(body), &mut on_chunk, &arrived).await?;
    let answer = lock().answer_taken();
    Ok(answer)
}

impl Gathered {
    fn answer_taken(&mut self) -> Json {
        std::mem::take(self).answer()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_become_the_plain_answer_even_when_the_last_has_no_choices() {
        let mut g = Gathered::default();
        let delta = |d: Json, f: Json| json!({"id": "c1", "model": "m-2026", "created": 7, "choices": [{"index": 0, "delta": d, "finish_reason": f}]});
        g.add(delta(json!({"role": "assistant", "content": ""}), Json::Null));
        g.add(delta(json!({"content": "Hello "}), Json::Null));
        g.add(delta(json!({"content": "world"}), Json::Null));
        g.add(delta(json!({}), json!("stop")));
        g.add(json!({"id": "c1", "choices": [], "usage": {"total_tokens": 5}}));
        let raw = g.answer();
        assert_eq!(raw["choices"][0]["message"]["content"], "Hello world");
        assert_eq!(raw["choices"][0]["finish_reason"], "stop");
        assert_eq!(raw["usage"]["total_tokens"], 5);
        assert_eq!(raw["model"], "m-2026");
    }

    #[test]
    fn the_tail_is_one_line_and_marked() {
        assert_eq!(tail("a\nb"), "…a b");
        assert_eq!(tail(&"x".repeat(500)).chars().count(), 121);
    }
}
