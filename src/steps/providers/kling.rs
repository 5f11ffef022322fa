//! `kling.text2video` and `kling.image2video`: submit, poll the matching query route
//! (catalog), download `data.task_result.videos[0].url`. A local `image` file is sent as
//! base64 without a `data:` prefix, as Kling wants; a URL is sent as is.

use base64::Engine as _;
use serde_json::{json, Map, Value as Json};

use super::{at, field, number, paid, task_of, url_outputs, I, N, O, S};
use crate::api::task;
use crate::steps::{KindSpec, StepCtx, StepError};

pub(super) fn spec(name: &str) -> KindSpec {
    let image2video = name == "kling.image2video";
    let mut prompt = field("prompt", &[S], "what happens in the clip (at most 500 characters)");
    let mut fields = Vec::new();
    if image2video {
        fields.push(field("image", &[S], "the first frame: a local file or a URL").required());
        fields.push(field("image_tail", &[S], "the last frame: a local file or a URL"));
    } else {
        prompt = prompt.required();
    }
    fields.extend([
        prompt,
        field("negative_prompt", &[S], "what to avoid (at most 200 characters)"),
        field("model_name", &[S], "e.g. kling-v1-6, kling-v2-master"),
        field("mode", &[S], "std or pro").values(&[json!("std"), json!("pro")]),
        field("duration", &[I, S], "seconds: 5 or 10").values(&[
            json!(5),
            json!(10),
            json!("5"),
            json!("10"),
        ]),
        field("cfg_scale", &[N], "prompt adherence, 0 to 1"),
        field("camera_control", &[O], "camera movement"),
    ]);
    if !image2video {
        let ratios = ["16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3"].map(|r| json!(r));
        fields.push(field("aspect_ratio", &[S], "the frame's shape").values(&ratios));
    }
    let summary = if image2video {
        "Animates an image with Kling (POST /kling/v1/videos/image2video, then polls)."
    } else {
        "Makes a video from text with Kling (POST /kling/v1/videos/text2video, then polls)."
    };
    paid(
        name,
        summary,
        fields,
        &[
            ("video", "local path of the video"),
            ("video_url", "the video's URL"),
            ("duration", "seconds"),
            ("task_id", "Kling's task id"),
        ],
    )
}

pub(super) async fn run(
    ctx: &StepCtx,
    spec: &KindSpec,
    mut body: Map<String, Json>,
) -> Result<Json, StepError> {
    normalize_duration(&mut body);
    for key in ["image", "image_tail"] {
        if let Some(Json::String(v)) = body.get(key) {
            let encoded = image_value(ctx, key, v)?;
            body.insert(key.into(), Json::String(encoded));
        }
    }
    let done = task::run(ctx, task_of(spec)?, &Json::Object(body)).await?;
    let url = at(&done.result, "data.task_result.videos.0.url");
    if !url.is_string() {
        return Err(StepError::fatal(format!(
            "kling task {} succeeded without a video URL; run the step again",
            done.task_id
        )));
    }
    let mut out = url_outputs(ctx, "video", &url).await?;
    out.insert("duration".into(), number(at(&done.result, "data.task_result.videos.0.duration")));
    out.insert("task_id".into(), json!(done.task_id));
    Ok(Json::Object(out))
}

/// Kling's own API takes `duration` as a string ("5"); [I] whether Comet insists, so send that.
fn normalize_duration(body: &mut Map<String, Json>) {
    if let Some(d) = body.get("duration").and_then(Json::as_u64) {
        body.insert("duration".into(), Json::String(d.to_string()));
    }
}

/// A URL as is; `data:...;base64,` without its prefix; a local file as bare base64.
pub(crate) fn image_value(ctx: &StepCtx, key: &str, v: &str) -> Result<String, StepError> {
    if v.starts_with("http://") || v.starts_with("https://") {
        return Ok(v.to_owned());
    }
    if let Some((_, data)) = v.strip_prefix("data:").and_then(|r| r.split_once(";base64,")) {
        return Ok(data.to_owned());
    }
    let path = ctx.resolve(v);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(base64::engine::general_purpose::STANDARD.encode(bytes)),
        // Long text that is no file is taken as base64 already.
        Err(_) if v.len() > 256 => Ok(v.to_owned()),
        Err(e) => Err(StepError::fatal(format!(
            "cannot read `{key}` file `{}`: {e}; give an existing image file or an https URL",
            path.display()
        ))),
    }
}
