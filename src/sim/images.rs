//! Recraft and Ideogram, marked unavailable in CometAPI's docs: the vendors' own shapes
//! under the Comet-style paths the catalog guesses [I]. Recraft: `POST /recraft/v1/images/generations`
//! (JSON), `/recraft/v1/images/{vectorize,removeBackground,clarityUpscale,generativeUpscale}`
//! (multipart `file`) and `/recraft/v1/styles` (multipart `style`, `file1`..). Ideogram:
//! `/ideogram/v1/ideogram-v3/{generate,remix,reframe,replace-background,edit}`,
//! `/ideogram/v1/describe` and `/ideogram/v1/upscale` (multipart). All synchronous.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::files::file_url;
use super::http::{base_url, comet_error, json_response, now_secs, openai_body, str_field, uuid};
use super::media::{read_form, Form};
use super::state::Sim;

fn bad(message: &str) -> Response {
    comet_error(StatusCode::BAD_REQUEST, "invalid_request", message)
}

/// A new served image's URL.
fn image_url(sim: &Sim, headers: &HeaderMap, name: &str) -> String {
    let id = uuid();
    sim.register_file(&id);
    file_url(&base_url(headers, sim), &id, name)
}

fn need(form: &Form, names: &[&str]) -> Result<(), Response> {
    match names.iter().find(|n| !form.has_file(n) || form.field(n).trim().is_empty() && !form.is_file(n)) {
        Some(missing) => Err(bad(&format!("{missing} is required"))),
        None => Ok(()),
    }
}

/// `POST /recraft/v1/images/generations` `{prompt, n?, …}` -> `{created, data: [{url}]}`.
pub(crate) async fn recraft_generate(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, Response> {
    let body = openai_body(&bytes)?;
    if str_field(&body, "prompt").is_empty() {
        return Err(bad("prompt is required"));
    }
    let n = body.get("n").and_then(Value::as_u64).unwrap_or(1).clamp(1, 6);
    let data: Vec<Value> = (0..n).map(|_| json!({"url": image_url(&sim, &headers, "image.png")})).collect();
    Ok(json_response(StatusCode::OK, json!({"created": now_secs(), "data": data})))
}

/// `POST /recraft/v1/images/{op}` (multipart `file`) -> `{image: {url}}`.
pub(crate) async fn recraft_file(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(op): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, Response> {
    let name = match op.as_str() {
        "vectorize" => "image.svg",
        "removeBackground" | "clarityUpscale" | "generativeUpscale" => "image.png",
        _ => return Err(comet_error(StatusCode::NOT_FOUND, "", &format!("no recraft route {op}"))),
    };
    let form = read_form(multipart).await?;
    need(&form, &["file"])?;
    Ok(json_response(StatusCode::OK, json!({"image": {"url": image_url(&sim, &headers, name)}})))
}

/// `POST /recraft/v1/styles` (multipart `style`, `file1`..`file5`) -> `{id}`.
pub(crate) async fn recraft_style(
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, Response> {
    let form = read_form(multipart).await?;
    need(&form, &["style", "file1"])?;
    Ok(json_response(StatusCode::OK, json!({"id": uuid()})))
}

fn ideogram_images(sim: &Sim, headers: &HeaderMap, prompt: &str) -> Response {
    let url = image_url(sim, headers, "image.png");
    let image = json!({"url": url, "prompt": prompt, "resolution": "1024x1024", "is_image_safe": true,
                       "seed": fastrand::u32(..)});
    json_response(StatusCode::OK, json!({"created": now_secs(), "data": [image]}))
}

/// `POST /ideogram/v1/ideogram-v3/{op}` (multipart) -> `{created, data: [{url, …}]}`.
pub(crate) async fn ideogram_v3(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(op): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, Response> {
    let needs: &[&str] = match op.as_str() {
        "generate" => &["prompt"],
        "remix" | "replace-background" => &["image", "prompt"],
        "reframe" => &["image", "resolution"],
        "edit" => &["image", "mask", "prompt"],
        _ => return Err(comet_error(StatusCode::NOT_FOUND, "", &format!("no ideogram route {op}"))),
    };
    let form = read_form(multipart).await?;
    need(&form, needs)?;
    Ok(ideogram_images(&sim, &headers, form.field("prompt")))
}

/// `POST /ideogram/v1/describe` (multipart `image_file`) -> `{descriptions: [{text}]}`.
pub(crate) async fn ideogram_describe(
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, Response> {
    let form = read_form(multipart).await?;
    need(&form, &["image_file"])?;
    let text = "A simulated picture: one bright shape on a plain background.";
    Ok(json_response(StatusCode::OK, json!({"descriptions": [{"text": text}]})))
}

/// `POST /ideogram/v1/upscale` (multipart `image_file` and an `image_request` JSON part).
pub(crate) async fn ideogram_upscale(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, Response> {
    let form = read_form(multipart).await?;
    need(&form, &["image_file", "image_request"])?;
    let request: Value = serde_json::from_str(form.field("image_request"))
        .map_err(|e| bad(&format!("image_request must be JSON: {e}")))?;
    let prompt = request["prompt"].as_str().unwrap_or_default();
    Ok(ideogram_images(&sim, &headers, prompt))
}
