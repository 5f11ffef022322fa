//! `comet.task`: any CometAPI submit-then-poll endpoint, declared in the step. Its `with`
//! becomes the same `TaskSpec` the catalog holds, so it runs through the same driver.
//!
//! Hand-written because the task shape comes from the step, not from the catalog.

use serde_json::{json, Map, Value as Json};

use super::{at, save};
use crate::api::task;
use crate::api::Api;
use crate::catalog::{scalar, Route, TaskSpec};
use crate::contract::{KindSpec, StepCtx, StepError};

fn text_list(v: Option<&Json>) -> Vec<String> {
    match v {
        Some(Json::Array(items)) => items.iter().filter_map(scalar).collect(),
        Some(other) => scalar(other).into_iter().collect(),
        None => Vec::new(),
    }
}

fn route(
    spec: &KindSpec,
    with: &Map<String, Json>,
    key: &str,
    default_method: &str,
) -> Result<Route, StepError> {
    let r = &with[key];
    let path = r["path"].as_str().filter(|p| !p.is_empty()).ok_or_else(|| {
        StepError::fatal(format!(
            "`{}` needs `{key}.path`, e.g. `{key}: {{ path: /suno/submit/music }}`",
            spec.name
        ))
    })?;
    let method = r["method"].as_str().unwrap_or(default_method).to_owned();
    Ok(Route { method, path: path.to_owned() })
}

pub(super) async fn run(
    api: &Api,
    ctx: &StepCtx,
    spec: &KindSpec,
    with: Map<String, Json>,
) -> Result<Json, StepError> {
    let task_spec = TaskSpec {
        family: "comet".into(),
        submit: route(spec, &with, "submit", "POST")?,
        id: with.get("id").and_then(scalar).unwrap_or_else(|| "id".into()),
        fetch: Some(route(spec, &with, "fetch", "GET")?),
        status: with.get("status").and_then(scalar).unwrap_or_else(|| "status".into()),
        success: text_list(with.get("success")),
        failure: text_list(with.get("failure")),
        running: Vec::new(),
        deadline: None,
        grace: None,
        progress: with.get("progress").and_then(scalar),
        error: with.get("error").and_then(scalar),
        envelope: None,
        pending_errors: vec!["task_not_exist".into()],
        headers: Default::default(),
        multipart: false,
        then: None,
    };
    let body = with["submit"].get("body").cloned().unwrap_or_else(|| json!({}));
    let done = task::run(api, ctx, &task_spec, &body).await?;
    let mut files = Vec::new();
    for (i, path) in text_list(with.get("files")).iter().enumerate() {
        let Some(url) = at(&done.result, path).as_str().map(str::to_owned) else {
            return Err(StepError::fatal(format!(
                "`files` path `{path}` holds no URL in the final answer of task {}; fix the path",
                done.task_id
            )));
        };
        let stem = format!("file-{}", i + 1);
        files.push(save(api, ctx, &url, &stem).await?);
    }
    Ok(json!({ "task_id": done.task_id, "status": done.status, "result": done.result, "files": files }))
}
