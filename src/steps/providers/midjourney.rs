//! `midjourney.imagine` and `midjourney.action`: submit, poll `/mj/task/{id}/fetch`,
//! download `imageUrl`. An action names a button by its label (`U1`, `V3`) or its
//! `customId`; the `customId` is not stable, so it is always taken from a fresh fetch of
//! the parent task.
//!
//! Hand-written because an action first reads its parent task to find the button; the task
//! shape, fields and outputs are in the catalog.

use reqwest::Method;
use serde_json::{json, Map, Value as Json};

use super::{at, required_str, task_of, url_outputs};
use crate::api::Api;
use crate::api::{retry::Call, task};
use crate::catalog;
use crate::contract::{KindSpec, StepCtx, StepError};

pub(super) async fn imagine(
    api: &Api,
    ctx: &StepCtx,
    spec: &KindSpec,
    body: Map<String, Json>,
) -> Result<Json, StepError> {
    required_str(spec, &body, "prompt")?;
    finish(api, ctx, task_of(spec)?, body).await
}

pub(super) async fn action(
    api: &Api,
    ctx: &StepCtx,
    spec: &KindSpec,
    mut with: Map<String, Json>,
) -> Result<Json, StepError> {
    let parent = required_str(spec, &with, "task_id")?.to_owned();
    let wanted = required_str(spec, &with, "action")?.to_owned();
    api.key()?;
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
    finish(api, ctx, task_of(spec)?, with).await
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
    api: &Api,
    ctx: &StepCtx,
    entry: &catalog::TaskSpec,
    body: Map<String, Json>,
) -> Result<Json, StepError> {
    let done = task::run(api, ctx, entry, &Json::Object(body)).await?;
    let mut out = url_outputs(api, ctx, "image", &at(&done.result, "imageUrl|image_url")).await?;
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
