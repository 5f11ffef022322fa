//! `suno.lyrics` and `suno.music`: submit, poll `/suno/fetch/{id}` (shapes in the catalog),
//! then read the clips. A clip's URLs are trusted only once its status is `complete`
//! (while `streaming` the audio URL is a live stream, not the file).

use serde_json::{json, Map, Value as Json};

use super::{at, field, number, paid, required_str, task_of, url_outputs, B, N, S};
use crate::api::task;
use crate::steps::{KindSpec, StepCtx, StepError};

const MV: &[&str] = &["chirp-v3-5", "chirp-v4", "chirp-auk", "chirp-bluejay", "chirp-crow", "chirp-fenix"];

pub(super) fn lyrics_spec() -> KindSpec {
    paid(
        "suno.lyrics",
        "Writes song lyrics with Suno (POST /suno/submit/lyrics).",
        vec![field("prompt", &[S], "what the song is about").required()],
        &[("text", "the lyrics"), ("title", "the song's title"), ("task_id", "Suno's task id")],
    )
}

pub(super) fn music_spec() -> KindSpec {
    let mut mv = field("mv", &[S], "the Suno model: chirp-crow (v5), chirp-auk (v4.5), chirp-v4, ...");
    mv.description.push_str(&format!(" (known: {})", MV.join(", ")));
    paid(
        "suno.music",
        "Makes a song with Suno (POST /suno/submit/music, then polls); two clips per task.",
        vec![
            field("prompt", &[S], "lyrics (custom mode)"),
            field("gpt_description_prompt", &[S], "a description, when Suno writes the lyrics"),
            field("tags", &[S], "the style, e.g. lo-fi city pop"),
            field("negative_tags", &[S], "styles to avoid"),
            field("title", &[S], "the song's title"),
            mv,
            field("make_instrumental", &[B], "no vocals"),
            field("continue_clip_id", &[S], "a clip to extend"),
            field("continue_at", &[N], "where to extend from, in seconds (needs continue_clip_id)"),
            field("persona_id", &[S], "a persona's voice and style, from suno.persona"),
            field("task", &[S], "upload_extend to extend a suno.upload clip; gen_stem is suno.stems"),
        ],
        &[
            ("audio", "local path of the first clip's audio"),
            ("audio_url", "the first clip's audio URL"),
            ("clips", "every clip: id, title, audio_url, image_url, video_url, duration"),
            ("task_id", "Suno's task id"),
        ],
    )
}

pub(super) async fn lyrics(
    ctx: &StepCtx,
    spec: &KindSpec,
    body: Map<String, Json>,
) -> Result<Json, StepError> {
    required_str(spec, &body, "prompt")?;
    let done = task::run(ctx, task_of(spec)?, &Json::Object(body)).await?;
    // [I] the lyrics result is `data.data` as an object; some gateways wrap it in a list.
    let result = match at(&done.result, "data.data") {
        Json::Array(list) => list.into_iter().next().unwrap_or(Json::Null),
        other => other,
    };
    Ok(json!({
        "text": at(&result, "text|lyrics"),
        "title": at(&result, "title"),
        "task_id": done.task_id,
    }))
}

pub(super) async fn music(
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
    let done = task::run(ctx, task_of(spec)?, &Json::Object(body)).await?;
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
    let mut out = url_outputs(ctx, "audio", &first["audio_url"]).await?;
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
