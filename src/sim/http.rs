//! Small HTTP helpers shared by every family: ids, clocks, the gateway's error envelope,
//! JSON bodies, the caller-visible base URL and the key check.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

pub(crate) use super::state::now_ms;
use super::state::Sim;

pub(crate) fn now_secs() -> u64 {
    now_ms() / 1000
}

pub(crate) fn digits(n: usize) -> String {
    // First digit non-zero so ids keep their length when read as numbers.
    let mut s = fastrand::u8(1..=9).to_string();
    s.extend((1..n).map(|_| fastrand::digit(10)));
    s
}

pub(crate) fn alnum(n: usize) -> String {
    (0..n).map(|_| fastrand::alphanumeric()).collect()
}

pub(crate) fn hex(n: usize) -> String {
    (0..n).map(|_| fastrand::digit(16)).collect()
}

pub(crate) fn uuid() -> String {
    format!("{}-{}-4{}-a{}-{}", hex(8), hex(4), hex(3), hex(3), hex(12))
}

/// Like the gateway's: a timestamp, digits and letters, e.g. `20260205132859798638387SIHCnxzJ`.
pub(crate) fn request_id() -> String {
    let stamp = jiff::Timestamp::now().strftime("%Y%m%d%H%M%S").to_string();
    format!("{stamp}{}{}", digits(9), alnum(8))
}

pub(crate) fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// The gateway's envelope: `{"error":{"code","message (request id: …)","type":"comet_api_error"}}`.
pub(crate) fn comet_error(status: StatusCode, code: &str, message: &str) -> Response {
    let message = format!("{message} (request id: {})", request_id());
    json_response(
        status,
        json!({"error": {"code": code, "message": message, "type": "comet_api_error", "param": ""}}),
    )
}

pub(crate) fn model_required() -> Response {
    comet_error(StatusCode::BAD_REQUEST, "", "model name is required")
}

/// Missing `model` is a 400; a model named `unknown-*` or `does-not-exist*` has no channel.
pub(crate) fn check_model(body: &Map<String, Value>) -> Result<String, Response> {
    let model = body.get("model").and_then(Value::as_str).unwrap_or_default();
    check_model_name(model)
}

pub(crate) fn check_model_name(model: &str) -> Result<String, Response> {
    if model.is_empty() {
        return Err(model_required());
    }
    if model.starts_with("unknown-") || model.starts_with("does-not-exist") {
        let message = format!("no available channel for group default and model {model} (distributor)");
        return Err(comet_error(StatusCode::SERVICE_UNAVAILABLE, "model_not_found", &message));
    }
    Ok(model.to_owned())
}

/// Reads a JSON object body, or says why not (the caller wraps it in its family's envelope).
pub(crate) fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("request body must be a JSON object".to_owned()),
        Err(e) => Err(format!("invalid JSON body: {e}")),
    }
}

/// `json_object` for OpenAI-format routes.
pub(crate) fn openai_body(bytes: &[u8]) -> Result<Map<String, Value>, Response> {
    json_object(bytes).map_err(|e| comet_error(StatusCode::BAD_REQUEST, "invalid_request", &e))
}

pub(crate) fn str_field<'a>(body: &'a Map<String, Value>, key: &str) -> &'a str {
    body.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The URL the caller used to reach us, so result URLs work through whatever address
/// (127.0.0.1, localhost, a container name) the client was given.
pub(crate) fn base_url(headers: &HeaderMap, sim: &Sim) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|host| format!("http://{host}"))
        .unwrap_or_else(|| sim.fallback_base.clone())
}

/// Bearer key (or Anthropic's `x-api-key`), or `?key=` for the balance route.
pub(crate) fn authorized(sim: &Sim, headers: &HeaderMap, query_key: Option<&str>) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")));
    let anthropic = headers.get("x-api-key").and_then(|h| h.to_str().ok());
    let Some(given) = query_key.or(bearer).or(anthropic).map(str::trim) else {
        return false;
    };
    match &sim.config.key {
        Some(expected) => given == expected,
        None => !given.is_empty(),
    }
}

pub(crate) fn invalid_token() -> Response {
    comet_error(StatusCode::UNAUTHORIZED, "", "invalid token")
}

/// Rough token count: a token per four bytes, at least one for non-empty text.
pub(crate) fn tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}
