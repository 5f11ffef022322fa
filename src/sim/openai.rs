//! OpenAI-format text routes: chat completions (plain and SSE), responses, Anthropic
//! messages, models and embeddings. Errors use the gateway envelope (`comet_error`).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{json, Map, Value};

use super::http::{alnum, check_model, comet_error, json_response, now_secs, openai_body, tokens};
use super::state::Sim;
use super::text;

/// What the model "says": `sim_reply` verbatim if given, else JSON when asked (the example
/// object the prompt shows, or one fitting the schema), else text.
fn content_for(body: &Map<String, Value>, prompt: &str, format: Option<&Value>) -> String {
    if let Some(scripted) = body.get("sim_reply").and_then(Value::as_str) {
        return scripted.to_owned();
    }
    match format.and_then(|f| f.get("type")).and_then(Value::as_str) {
        Some("json_object") => {
            // Real callers show the model the shape they want; echo the first example given.
            let all = body.get("messages").and_then(Value::as_array).map(|m| text::all_text(m));
            text::example_json(all.as_deref().unwrap_or(prompt))
                .unwrap_or_else(|| text::json_reply(None, prompt))
        }
        Some("json_schema") => {
            let format = format.unwrap_or(&Value::Null);
            // Chat nests it under `json_schema.schema`; Responses puts `schema` beside `type`.
            let schema = format.pointer("/json_schema/schema").or_else(|| format.get("schema"));
            text::json_reply(schema.or(Some(&json!({"type": "object"}))), prompt)
        }
        _ => text::reply(prompt),
    }
}

fn messages_of(body: &Map<String, Value>) -> Result<&Vec<Value>, Response> {
    body.get("messages").and_then(Value::as_array).ok_or_else(|| {
        comet_error(StatusCode::INTERNAL_SERVER_ERROR, "invalid_request", "field messages is required")
    })
}

/// `POST /v1/chat/completions`.
pub(crate) async fn chat(State(sim): State<Arc<Sim>>, bytes: Bytes) -> Result<Response, Response> {
    let body = openai_body(&bytes)?;
    let model = check_model(&body)?;
    let messages = messages_of(&body)?;
    let prompt = text::last_user_text(messages);
    let content = content_for(&body, &prompt, body.get("response_format"));
    let usage = {
        let (p, c) = (tokens(&text::all_text(messages)), tokens(&content));
        json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c})
    };
    let id = format!("chatcmpl-{}", alnum(24));
    let created = now_secs();
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        let cut = sim.next_stream() <= sim.config.faults.cut_streams;
        if cut {
            sim.count_fault("cut_streams");
        }
        return Ok(stream_chat(&id, created, &model, &content, usage, cut));
    }
    Ok(json_response(
        StatusCode::OK,
        json!({
            "id": id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "logprobs": null, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content,
                                     "refusal": null, "annotations": []}}],
            "usage": usage, "service_tier": "default", "system_fingerprint": null,
        }),
    ))
}

/// SSE like the live gateway: a role chunk, content chunks, a finish chunk, a usage chunk
/// with empty `choices`, then `data: [DONE]`. A `cut` stream breaks off after half its chunks.
fn stream_chat(id: &str, created: u64, model: &str, content: &str, usage: Value, cut: bool) -> Response {
    let chunk = |choices: Value, usage: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
               "choices": choices, "usage": usage, "obfuscation": "sim"})
    };
    let delta = |delta: Value, finish: Value| json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]);
    let mut events =
        vec![chunk(delta(json!({"role": "assistant", "content": ""}), Value::Null), Value::Null)];
    for piece in content.split_inclusive(' ') {
        events.push(chunk(delta(json!({"content": piece}), Value::Null), Value::Null));
    }
    events.push(chunk(delta(json!({}), json!("stop")), Value::Null));
    events.push(chunk(json!([]), usage));
    let headers = [(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")];
    if cut {
        let half: String = events[..events.len() / 2].iter().map(|e| format!("data: {e}\n\n")).collect();
        // The first half reaches the client before the connection breaks.
        let first = futures::stream::iter([Ok::<_, std::io::Error>(half)]);
        let broken = futures::stream::once(async {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "sim: stream cut"))
        });
        return (headers, Body::from_stream(first.chain(broken))).into_response();
    }
    let mut sse: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    sse.push_str("data: [DONE]\n\n");
    (headers, sse).into_response()
}

/// `POST /v1/responses`: OpenAI Responses shape with `output` and `output_text`.
pub(crate) async fn responses(bytes: Bytes) -> Result<Response, Response> {
    let body = openai_body(&bytes)?;
    let model = check_model(&body)?;
    let prompt = match body.get("input") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => text::last_user_text(items),
        _ => {
            let (status, code) = (StatusCode::INTERNAL_SERVER_ERROR, "invalid_request");
            return Err(comet_error(status, code, "field input is required"));
        }
    };
    let content = content_for(&body, &prompt, body.get("text").and_then(|t| t.get("format")));
    let (input_tokens, output_tokens) = (tokens(&prompt), tokens(&content));
    Ok(json_response(
        StatusCode::OK,
        json!({
            "id": format!("resp_{}", alnum(24)), "object": "response", "created_at": now_secs(),
            "status": "completed", "model": model,
            "output": [{"id": format!("msg_{}", alnum(24)), "type": "message", "role": "assistant",
                        "status": "completed",
                        "content": [{"type": "output_text", "text": content, "annotations": []}]}],
            "output_text": content,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                      "total_tokens": input_tokens + output_tokens},
        }),
    ))
}

/// `POST /v1/messages`: Anthropic Messages shape.
pub(crate) async fn messages(bytes: Bytes) -> Result<Response, Response> {
    let body = openai_body(&bytes)?;
    let model = check_model(&body)?;
    let messages = messages_of(&body)?;
    let prompt = text::last_user_text(messages);
    let content = content_for(&body, &prompt, None);
    Ok(json_response(
        StatusCode::OK,
        json!({
            "id": format!("msg_{}", alnum(24)), "type": "message", "role": "assistant",
            "model": model, "content": [{"type": "text", "text": content}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": tokens(&text::all_text(messages)),
                      "output_tokens": tokens(&content)},
        }),
    ))
}

/// Models the simulator claims to serve (any other name works too, except `unknown-*`).
const MODELS: &[(&str, &str)] = &[
    ("gpt-4o-mini", "openai"),
    ("gpt-5-mini", "openai"),
    ("claude-sonnet-4-5", "anthropic"),
    ("text-embedding-3-small", "openai"),
    ("dall-e-3", "openai"),
    ("gpt-image-1", "openai"),
    ("tts-1", "openai"),
    ("whisper-1", "openai"),
    ("chirp-auk", "suno"),
    ("kling-v2-master", "kling"),
    ("midjourney", "midjourney"),
    ("veo3-fast", "google"),
    ("sora-2", "openai"),
];

/// `GET /v1/models`.
pub(crate) async fn models() -> Response {
    let data: Vec<Value> = MODELS
        .iter()
        .map(|(id, owner)| json!({"id": id, "object": "model", "created": 1_700_000_000, "owned_by": owner}))
        .collect();
    json_response(StatusCode::OK, json!({"object": "list", "data": data}))
}

/// `POST /v1/embeddings`: `input` string or array; `dimensions` (default 64) per vector.
pub(crate) async fn embeddings(bytes: Bytes) -> Result<Response, Response> {
    let body = openai_body(&bytes)?;
    let model = check_model(&body)?;
    let inputs: Vec<String> = match body.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => {
            items.iter().map(|v| v.as_str().unwrap_or_default().to_owned()).collect()
        }
        _ => return Err(comet_error(StatusCode::BAD_REQUEST, "invalid_request", "field input is required")),
    };
    let dimensions = body.get("dimensions").and_then(Value::as_u64).unwrap_or(64).clamp(1, 4096) as usize;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            json!({"object": "embedding", "index": index, "embedding": text::embedding(input, dimensions)})
        })
        .collect();
    let prompt_tokens: u64 = inputs.iter().map(|i| tokens(i)).sum();
    Ok(json_response(
        StatusCode::OK,
        json!({"object": "list", "model": model, "data": data,
               "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}}),
    ))
}
