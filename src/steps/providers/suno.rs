//! `suno.lyrics` and `suno.music`: submit, poll `/suno/fetch/{id}` (shapes in the catalog),
//! then read the clips. A clip's URLs are trusted only once its status is `complete`
//! (while `streaming` the audio URL is a live stream, not the file).
//!
//! Hand-written because the outputs depend on each clip's own status and the lyrics come
//! in two shapes; the task shape, fields and outputs are in the catalog.

use serde_json::{json, Map, Value as Json};

use super::{at, entry_of, number, required_str, task_of, url_outputs};
use crate::api::task;
use crate::api::Api;
use crate::contract::{KindSpec, StepCtx, StepError};

pub(super) async fn lyrics(
    api: &Api,
    ctx: &StepCtx,
    spec: &KindSpec,
    body: Map<String, Json>,
) -> Result<Json, StepError> {
    required_str(spec, &body, "prompt")?;
    let done = task::run(api, ctx, task_of(spec)?, &Json::Object(body)).await?;
    // Where the text and title are is catalog data: every shape the gateway gives is listed.
    let read = |name: &str| {
        let entry = entry_of(spec).ok()?;
        let decl = entry.outputs.iter().find(|o| o.name == name)?;
        crate::catalog::pick(&done.result, &decl.path).cloned()
    };
    let text = read("text").filter(|t| t.as_str().is_some_and(|s| !s.trim().is_empty())).ok_or_else(|| {
        StepError::fatal(format!(
            "suno lyrics task {} finished without any lyrics text; run the step again, perhaps with another prompt",
            done.task_id
        ))
    })?;
    Ok(json!({
        "text": text,
        "title": read("title").unwrap_or(Json::Null),
        "task_id": done.task_id,
    }))
}

pub(super) async fn music(
    api: &Api,
    ctx: &StepCtx,
    spec: &KindSpec,
    body: Map<String, Json>,
) -> Result<Json, StepError> {
    let has = |k: &str| body.get(k).and_then(Json::as_str).is_some_and(|s| !s.trim().is_empty());
    if !has("prompt") && !has("gpt_description_prompt") && !has("tags") {
        return Err(StepError::fatal(
            "`suno.music` needs `prompt` (lyrics), `gpt_description_prompt` or `tags`; add one under `with:`",
        ));
    }
    let done = task::run(api, ctx, task_of(spec)?, &Json::Object(body)).await?;
    let clips: Vec<Json> = match at(&done.result, "data.data") {
        Json::Array(list) => list.iter().map(clip).collect(),
        _ => Vec::new(),
    };
    let first = clips.iter().find(|c| c["audio_url"].is_string()).ok_or_else(|| {
        StepError::fatal(format!(
            "suno task {} succeeded but no clip is complete with an audio URL; run the step again",
            done.task_id
        ))
    })?;
    let mut out = url_outputs(api, ctx, "audio", &first["audio_url"]).await?;
    out.insert("clips".into(), json!(clips));
    out.insert("task_id".into(), json!(done.task_id));
    Ok(Json::Object(out))
}

/// One clip's public shape; URLs are null unless the clip is `complete`.
fn clip(raw: &Json) -> Json {
    let complete = raw["status"].as_str().is_some_and(|s| s.eq_ignore_ascii_case("complete"));
    let url = |k: &str| if complete { at(raw, k) } else { Json::Null };
    json!({
        "id": at(raw, "id"),
        "title": at(raw, "title"),
        "status": at(raw, "status"),
        "audio_url": url("audio_url"),
        "image_url": url("image_url"),
        "video_url": url("video_url"),
        "duration": number(at(raw, "metadata.duration|duration")),
    })
}
