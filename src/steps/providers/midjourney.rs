//! `midjourney.imagine` and `midjourney.action`: submit, poll `/mj/task/{id}/fetch`,
//! download `imageUrl`. An action names a button by its label (`U1`, `V3`) or its
//! `customId`; the `customId` is not stable, so it is always taken from a fresh fetch of
//! the parent task.

use reqwest::Method;
use serde_json::{json, Map, Value as Json};

use super::{at, field, keyed_api, paid, required_str, task_of, url_outputs, O, S};
use crate::api::{catalog, retry::Call, task};
use crate::steps::{KindSpec, StepCtx, StepError};

const OUTPUTS: &[(&str, &str)] = &[
    ("image", "local path of the image"),
    ("image_url", "the image's URL"),
    ("buttons", "the finished task's buttons (label, customId)"),
    ("task_id", "Midjourney's task id"),
];

pub(super) fn imagine_spec() -> KindSpec {
    paid(
        "midjourney.imagine",
        "Makes a 2x2 image grid with Midjourney (POST /mj/submit/imagine, then polls).",
        vec![
            field("prompt", &[S], "the prompt, with flags like --ar 16:9").required(),
            field("botType", &[S], "MID_JOURNEY or NIJI_JOURNEY")
                .values(&[json!("MID_JOURNEY"), json!("NIJI_JOURNEY")]),
            field("accountFilter", &[O], "which accounts may run it"),
        ],
        OUTPUTS,
    )
}

pub(super) fn action_spec() -> KindSpec {
    paid(
        "midjourney.action",
        "Presses a button of a finished Midjourney task (U1-U4 upscale, V1-V4 vary, ...).",
        vec![
            field("task_id", &[S], "the parent task, e.g. steps.grid.outputs.task_id").required(),
            field(
                "action",
                &[S],
                "a button label (U1-U4 upscale, V1-V4 vary, Zoom Out 2x), its emoji, its customId, or reroll / pan_left / pan_right / pan_up / pan_down",
            )
            .required(),
        ],
        OUTPUTS,
    )
}

pub(super) async fn imagine(
    ctx: &StepCtx,
    spec: &KindSpec,
    body: Map<String, Json>,
) -> Result<Json, StepError> {
    required_str(spec, &body, "prompt")?;
    finish(ctx, task_of(spec)?, body).await
}

pub(super) async fn action(
    ctx: &StepCtx,
    spec: &KindSpec,
    mut with: Map<String, Json>,
) -> Result<Json, StepError> {
    let parent = required_str(spec, &with, "task_id")?.to_owned();
    let wanted = required_str(spec, &with, "action")?.to_owned();
    let (api, _) = keyed_api()?;
    let fetched = api.json(Call::Read, Method::GET, &format!("/mj/task/{parent}/fetch"), None).await?;
    let custom_id = choose(&fetched["buttons"], &wanted).ok_or_else(|| {
        let labels: Vec<String> = fetched["buttons"]
            .as_array()
            .map(|b| b.iter().filter_map(|b| b["label"].as_str().filter(|l| !l.is_empty())).map(str::to_owned).collect())
            .unwrap_or_default();
        StepError::fatal(format!(
            "midjourney task {parent} has no button `{wanted}` (it has: {}); use one of those labels or a customId",
            if labels.is_empty() { "none".to_owned() } else { labels.join(", ") }
        ))
    })?;
    with.remove("task_id");
    with.remove("action");
    with.insert("customId".into(), json!(custom_id));
    with.insert("taskId".into(), json!(parent));
    finish(ctx, task_of(spec)?, with).await
}

/// The `customId` of the button whose customId, label or emoji is `wanted`.
fn choose(buttons: &Json, wanted: &str) -> Option<String> {
    let list = buttons.as_array()?;
    let by = |key: &str| {
        list.iter()
            .find(|b| b[key].as_str().is_some_and(|v| !v.is_empty() && v.eq_ignore_ascii_case(wanted)))
            .and_then(|b| b["customId"].as_str())
            .map(str::to_owned)
    };
    // Buttons without a label (reroll, pan) by what their customId says: `reroll`, `pan_left`.
    let by_part = || {
        let part = wanted.to_ascii_lowercase();
        list.iter()
            .find(|b| {
                b["customId"].as_str().is_some_and(|c| c.to_ascii_lowercase().contains(&format!("::{part}")))
            })
            .and_then(|b| b["customId"].as_str())
            .map(str::to_owned)
    };
    by("customId").or_else(|| by("label")).or_else(|| by("emoji")).or_else(by_part)
}

async fn finish(
    ctx: &StepCtx,
    entry: &catalog::TaskSpec,
    body: Map<String, Json>,
) -> Result<Json, StepError> {
    let done = task::run(ctx, entry, &Json::Object(body)).await?;
    let mut out = url_outputs(ctx, "image", &at(&done.result, "imageUrl|image_url")).await?;
    out.insert("buttons".into(), at(&done.result, "buttons"));
    out.insert("task_id".into(), json!(done.task_id));
    Ok(Json::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buttons_are_chosen_by_label_or_custom_id() {
        let b = json!([{"customId": "MJ::JOB::upsample::1::h", "label": "U1"}, {"customId": "MJ::r", "label": "", "emoji": "🔄"}]);
        assert_eq!(choose(&b, "u1").as_deref(), Some("MJ::JOB::upsample::1::h"));
        assert_eq!(choose(&b, "MJ::r").as_deref(), Some("MJ::r"));
        assert_eq!(choose(&b, "🔄").as_deref(), Some("MJ::r"));
        assert_eq!(choose(&b, "V9"), None);
        let pan = json!([{"customId": "MJ::JOB::pan_left::1::h::SOLO", "label": "", "emoji": "⬅️"}]);
        assert_eq!(choose(&pan, "pan_left").as_deref(), Some("MJ::JOB::pan_left::1::h::SOLO"));
    }
}
