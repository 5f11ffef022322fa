//! The synchronous OpenAI-format media kinds: `image` (`/v1/images/generations`; results
//! as `url` or `b64_json`, both saved as files), `speech` (`/v1/audio/speech`; the answer
//! is the audio itself) and `transcription` (`/v1/audio/transcriptions`, multipart).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use reqwest::Method;
use serde_json::{json, Map, Value as Json};

use super::{at, charged_api, field, paid, required_str, I, N, S};
use crate::api::{download, retry::Call};
use crate::steps::{KindSpec, StepCtx, StepError};

pub(super) fn image_spec() -> KindSpec {
    paid(
        "image",
        "Makes images (POST /v1/images/generations); each result is saved as a file.",
        vec![
            field("model", &[S], "e.g. gpt-image-1, dall-e-3").required(),
            field("prompt", &[S], "what to draw").required(),
            field("n", &[I], "how many images (keep 1 for most models)"),
            field("size", &[S], "e.g. 1024x1024"),
            field("quality", &[S], "e.g. low, medium, high"),
            field("response_format", &[S], "url or b64_json (only DALL-E models honour it)")
                .values(&[json!("url"), json!("b64_json")]),
        ],
        &[("image", "local path of the first image"), ("images", "local paths of every image")],
    )
}

pub(super) fn speech_spec() -> KindSpec {
    let voices = ["alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer"];
    let formats = ["mp3", "opus", "aac", "flac", "wav", "pcm"];
    paid(
        "speech",
        "Reads text aloud (POST /v1/audio/speech); the audio is saved as a file.",
        vec![
            field("model", &[S], "e.g. tts-1").required(),
            field("input", &[S], "the text, at most 4096 characters").required(),
            field("voice", &[S], "alloy, nova, ...").values(&voices.map(|v| json!(v))),
            field("response_format", &[S], "the audio format").values(&formats.map(|v| json!(v))),
            field("speed", &[N], "0.25 to 4"),
        ],
        &[("audio", "local path of the audio")],
    )
}

pub(super) fn transcription_spec() -> KindSpec {
    paid(
        "transcription",
        "Turns speech into text (POST /v1/audio/transcriptions, multipart upload).",
        vec![
            field("file", &[S], "the audio file to upload").required(),
            field("model", &[S], "e.g. whisper-1").required(),
            field("language", &[S], "the spoken language, e.g. en"),
            field("prompt", &[S], "context to guide the model"),
            field("response_format", &[S], "json, text, srt, verbose_json or vtt"),
            field("temperature", &[N], "sampling temperature"),
        ],
        &[("text", "the transcript")],
    )
}

pub(super) async fn image(
    ctx: &StepCtx,
    _spec: &KindSpec,
    body: Map<String, Json>,
) -> Result<Json, StepError> {
    let (api, _) = charged_api(ctx)?;
    let answer =
        api.json(Call::Submit, Method::POST, "/v1/images/generations", Some(&Json::Object(body))).await?;
    let items = answer["data"].as_array().cloned().unwrap_or_default();
    let dir = ctx.dir()?;
    let mut images = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let stem = if items.len() == 1 { "image".to_owned() } else { format!("image-{}", i + 1) };
        let path = if let Some(url) = item["url"].as_str().filter(|u| !u.is_empty()) {
            download::fetch(dir, url, &stem).await?
        } else if let Some(b64) = item["b64_json"].as_str() {
            let bytes = base64::engine::general_purpose::STANDARD.decode(b64.trim()).map_err(|e| {
                StepError::fatal(format!("image {} is not valid base64 ({e}); run the step again", i + 1))
            })?;
            let ext = sniff(&bytes).or_else(|| answer["output_format"].as_str()).unwrap_or("png");
            write_file(dir, &format!("{stem}.{ext}"), &bytes)?
        } else {
            continue;
        };
        images.push(path.display().to_string());
    }
    if images.is_empty() {
        return Err(StepError::fatal("the image answer held no `url` or `b64_json`; run the step again"));
    }
    Ok(json!({ "image": images[0], "images": images }))
}

pub(super) async fn speech(
    ctx: &StepCtx,
    _spec: &KindSpec,
    with: Map<String, Json>,
) -> Result<Json, StepError> {
    let body = Json::Object(with);
    let (api, key) = charged_api(ctx)?;
    let url = api.url("/v1/audio/speech");
    let reply = api
        .send(Call::Submit, "`POST /v1/audio/speech`", || {
            api.http.request(Method::POST, &url).bearer_auth(key.expose()).json(&body)
        })
        .await?;
    let content_type =
        reply.headers.get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let ext = match body["response_format"].as_str() {
        Some(f) if !f.is_empty() => f.to_owned(),
        _ => download::extension("", content_type).replace("bin", "mp3"),
    };
    let path = write_file(ctx.dir()?, &format!("speech.{ext}"), &reply.body)?;
    Ok(json!({ "audio": path.display().to_string() }))
}

pub(super) async fn transcription(
    ctx: &StepCtx,
    spec: &KindSpec,
    with: Map<String, Json>,
) -> Result<Json, StepError> {
    let file = ctx.resolve(required_str(spec, &with, "file")?);
    let bytes = std::fs::read(&file).map_err(|e| {
        StepError::fatal(format!(
            "cannot read `file` `{}`: {e}; give the path of an audio file",
            file.display()
        ))
    })?;
    let name = file.file_name().map_or("audio".into(), |n| n.to_string_lossy().into_owned());
    let (api, key) = charged_api(ctx)?;
    let url = api.url("/v1/audio/transcriptions");
    let reply = api
        .send(Call::Submit, "`POST /v1/audio/transcriptions`", || {
            let mut form = reqwest::multipart::Form::new()
                .part("file", reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.clone()));
            for (k, v) in with.iter().filter(|(k, _)| k.as_str() != "file") {
                let text = match v {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                };
                form = form.text(k.clone(), text);
            }
            api.http.request(Method::POST, &url).bearer_auth(key.expose()).multipart(form)
        })
        .await?;
    let body = String::from_utf8_lossy(&reply.body).into_owned();
    let text = match serde_json::from_str::<Json>(&body) {
        Ok(v) if v.is_object() => at(&v, "text"),
        _ => Json::String(body),
    };
    Ok(json!({ "text": text }))
}

/// The image format from its first bytes.
fn sniff(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0x89, b'P', b'N', b'G', ..] => Some("png"),
        [0xFF, 0xD8, ..] => Some("jpg"),
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some("webp"),
        _ => None,
    }
}

/// Writes via a temporary name, so a crash never leaves half a file under the final name.
pub(crate) fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, StepError> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.part"));
    std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, &path)).map_err(|e| {
        StepError::fatal(format!("cannot write `{}`: {e}; check the state folder", path.display()))
    })?;
    Ok(std::path::absolute(&path).unwrap_or(path))
}
