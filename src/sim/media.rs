//! Synchronous OpenAI-format media routes: image generation and edits, speech, and
//! transcription/translation. Images come back as `url` (DALL·E and others when asked)
//! or `b64_json` (GPT image models, always).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::files::{base64, file_url, IMAGE_PNG, SONG_MP3};
use super::http::{
    base_url, check_model, check_model_name, comet_error, json_response, now_secs, openai_body, str_field,
    uuid,
};
use super::state::Sim;

fn bad_request(message: &str) -> Response {
    comet_error(StatusCode::BAD_REQUEST, "invalid_request", message)
}

/// One image result in the shape the model family uses.
fn image_data(sim: &Sim, base: &str, model: &str, prompt: &str, format: &str) -> Value {
    if model.starts_with("gpt-image") || format == "b64_json" {
        return json!({"b64_json": base64(IMAGE_PNG)});
    }
    let id = format!("img-{}", uuid());
    sim.register_file(&id);
    let mut item = json!({"url": file_url(base, &id, "image.png")});
    if model == "dall-e-3" {
        item["revised_prompt"] = json!(format!("A detailed rendering of: {prompt}"));
    }
    item
}

fn images_answer(sim: &Sim, base: &str, body: &Map<String, Value>, model: &str, prompt: &str) -> Response {
    let n = body.get("n").and_then(Value::as_u64).unwrap_or(1).clamp(1, 10);
    let format = str_field(body, "response_format");
    let data: Vec<Value> = (0..n).map(|_| image_data(sim, base, model, prompt, format)).collect();
    let mut answer = json!({"created": now_secs(), "data": data});
    if model.starts_with("gpt-image") {
        let size = match str_field(body, "size") {
            "" | "auto" => "1024x1024",
            size => size,
        };
        let quality = match str_field(body, "quality") {
            "" | "auto" => "low",
            quality => quality,
        };
        let text_tokens = prompt.len().div_ceil(4);
        answer["background"] = json!("opaque");
        answer["output_format"] = json!("png");
        answer["quality"] = json!(quality);
        answer["size"] = json!(size);
        answer["usage"] = json!({
            "input_tokens": text_tokens,
            "input_tokens_details": {"image_tokens": 0, "text_tokens": text_tokens},
            "output_tokens": 208, "total_tokens": text_tokens + 208,
        });
    }
    json_response(StatusCode::OK, answer)
}

/// `POST /v1/images/generations`.
pub(crate) async fn generations(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, Response> {
    let body = openai_body(&bytes)?;
    let model = check_model(&body)?;
    let prompt = str_field(&body, "prompt");
    if prompt.is_empty() {
        return Err(bad_request("prompt is required"));
    }
    Ok(images_answer(&sim, &base_url(&headers, &sim), &body, &model, prompt))
}

/// A multipart form read into text fields plus the names of the file fields present.
pub(crate) struct Form {
    fields: Map<String, Value>,
    files: HashMap<String, usize>,
}

pub(crate) async fn read_form(multipart: Result<Multipart, MultipartRejection>) -> Result<Form, Response> {
    let mut multipart = multipart.map_err(|e| bad_request(&format!("expected multipart/form-data: {e}")))?;
    let mut form = Form { fields: Map::new(), files: HashMap::new() };
    while let Some(field) =
        multipart.next_field().await.map_err(|e| bad_request(&format!("bad multipart body: {e}")))?
    {
        // OpenAI SDKs send repeated files as `image[]`; count them under `image`.
        let name = field.name().unwrap_or_default().trim_end_matches("[]").to_owned();
        let is_file = field.file_name().is_some();
        let data = field.bytes().await.map_err(|e| bad_request(&format!("bad multipart body: {e}")))?;
        if is_file {
            *form.files.entry(name).or_default() += data.len();
        } else {
            form.fields.insert(name, json!(String::from_utf8_lossy(&data)));
        }
    }
    Ok(form)
}

impl Form {
    pub(crate) fn has_file(&self, name: &str) -> bool {
        self.files.contains_key(name) || self.fields.contains_key(name)
    }

    /// Sent as a file part (not as text).
    pub(crate) fn is_file(&self, name: &str) -> bool {
        self.files.contains_key(name)
    }

    pub(crate) fn field(&self, name: &str) -> &str {
        str_field(&self.fields, name)
    }

    pub(crate) fn into_fields(self) -> Map<String, Value> {
        self.fields
    }
}

/// `POST /v1/images/edits` (multipart: `image` and `prompt` required; `model` defaults to gpt-image-1).
pub(crate) async fn edits(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, Response> {
    let form = read_form(multipart).await?;
    if !form.has_file("image") {
        return Err(bad_request("image is required"));
    }
    let prompt = form.field("prompt").to_owned();
    if prompt.is_empty() {
        return Err(bad_request("prompt is required"));
    }
    let model = match form.field("model") {
        "" => "gpt-image-1".to_owned(),
        model => check_model_name(model)?,
    };
    let body = form.into_fields();
    Ok(images_answer(&sim, &base_url(&headers, &sim), &body, &model, &prompt))
}

/// `POST /v1/audio/speech`: binary mp3 whatever `response_format` asks.
pub(crate) async fn speech(bytes: Bytes) -> Result<Response, Response> {
    let body = openai_body(&bytes)?;
    check_model(&body)?;
    if str_field(&body, "input").is_empty() {
        return Err(bad_request("input is required"));
    }
    Ok(([(header::CONTENT_TYPE, "audio/mpeg")], SONG_MP3).into_response())
}

/// `POST /v1/audio/transcriptions` and `/v1/audio/translations` (multipart `file`, `model`).
pub(crate) async fn transcribe(
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, Response> {
    let form = read_form(multipart).await?;
    check_model_name(form.field("model"))?;
    if !form.has_file("file") {
        return Err(bad_request("file is required"));
    }
    let text = "This is a simulated transcription of the uploaded audio.";
    Ok(match form.field("response_format") {
        "text" | "srt" | "vtt" => {
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
        }
        "verbose_json" => json_response(
            StatusCode::OK,
            json!({"task": "transcribe", "language": "english", "duration": 5.0, "text": text,
                   "segments": [{"id": 0, "start": 0.0, "end": 5.0, "text": text}]}),
        ),
        _ => json_response(StatusCode::OK, json!({"text": text})),
    })
}
