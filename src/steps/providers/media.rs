//! The synchronous OpenAI-format media kinds: `image` (`/v1/images/generations`; results
//! as `url` or `b64_json`, both saved as files), `speech` (`/v1/audio/speech`; the answer
//! is the audio itself) and `transcription` (`/v1/audio/transcriptions`, multipart).
//!
//! Hand-written because their answers are not JSON fields to pick: binary audio named by
//! its content type, images as URLs or base64 in one list, an uploaded file.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use reqwest::Method;
use serde_json::{json, Map, Value as Json};

use super::{at, charged, required_str};
use crate::api::Api;
use crate::api::{download, retry::Call};
use crate::contract::{KindSpec, StepCtx, StepError};

pub(super) async fn image(
    api: &Api,
    ctx: &StepCtx,
    _spec: &KindSpec,
    body: Map<String, Json>,
) -> Result<Json, StepError> {
    charged(api, ctx)?;
    let answer =
        api.json(Call::Submit, Method::POST, "/v1/images/generations", Some(&Json::Object(body))).await?;
    let items = answer["data"].as_array().cloned().unwrap_or_default();
    let dir = ctx.dir()?;
    let mut images = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let stem = if items.len() == 1 { "image".to_owned() } else { format!("image-{}", i + 1) };
        let path = if let Some(url) = item["url"].as_str().filter(|u| !u.is_empty()) {
            download::fetch(api, dir, url, &stem).await?
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
    api: &Api,
    ctx: &StepCtx,
    _spec: &KindSpec,
    with: Map<String, Json>,
) -> Result<Json, StepError> {
    let body = Json::Object(with);
    let key = charged(api, ctx)?;
    let http = api.http()?;
    let url = api.url("/v1/audio/speech");
    let reply = api
        .send(Call::Submit, "`POST /v1/audio/speech`", || {
            http.request(Method::POST, &url).bearer_auth(key.expose()).json(&body)
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
    api: &Api,
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
    let key = charged(api, ctx)?;
    let http = api.http()?;
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
            http.request(Method::POST, &url).bearer_auth(key.expose()).multipart(form)
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
