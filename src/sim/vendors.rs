//! The smaller task vendors, one table-driven handler each way: Runway's official format
//! (`/runwayml/v1/*`, `X-Runway-Version` required, first poll `task_not_exist`), Luma
//! (`/dream-machine/v1/generations`), Replicate (`/replicate/v1/models/{owner}/{name}/predictions`)
//! and MiniMax (`/v1/video_generation`, `/v1/query/video_generation?task_id=`,
//! `/v1/files/retrieve?file_id=`). Shapes follow the shared notes; [I] ones as the vendors'.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::files::file_url;
use super::http::{base_url, comet_error, json_object, json_response, str_field, uuid};
use super::state::{Family, NewTask, Phase, Sim, Task};

fn bad(message: &str) -> Response {
    comet_error(StatusCode::BAD_REQUEST, "invalid_request", message)
}

fn new_task(sim: &Sim, vendor: &str, route: &str, prompt: &str, file: &str) -> String {
    sim.submit(NewTask {
        id: uuid(),
        family: Family::Other,
        route,
        prompt,
        params: json!({"vendor": vendor, "file": file}),
        waiting: false,
    })
}

fn vendor_task(sim: &Sim, id: &str, vendor: &str) -> Option<Task> {
    sim.task(id).filter(|t| t.params["vendor"] == vendor)
}

/// `POST /runwayml/v1/{route}`: needs the version header; `promptImage` for video routes.
pub(crate) async fn runway_submit(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(route): Path<String>,
    bytes: Bytes,
) -> Result<Response, Response> {
    if headers.get("x-runway-version").and_then(|v| v.to_str().ok()) != Some("2024-11-06") {
        return Err(bad("X-Runway-Version header must be 2024-11-06"));
    }
    let body = json_object(&bytes).map_err(|e| bad(&e))?;
    let needs = match route.as_str() {
        "image_to_video" => "promptImage",
        "video_to_video" | "video_upscale" => "videoUri",
        "text_to_image" => "promptText",
        "character_performance" => "character",
        _ => return Err(comet_error(StatusCode::NOT_FOUND, "", &format!("no runway route {route}"))),
    };
    if body.get(needs).is_none_or(Value::is_null) {
        return Err(bad(&format!("{needs} is required")));
    }
    let file = if route == "text_to_image" { "image.png" } else { "video.mp4" };
    let id = new_task(&sim, "runway", &format!("/runwayml/v1/{route}"), str_field(&body, "promptText"), file);
    Ok(json_response(StatusCode::OK, json!({"id": id})))
}

/// `GET /runwayml/v1/tasks/{id}`.
pub(crate) async fn runway_fetch(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let task = vendor_task(&sim, &id, "runway")
        .ok_or_else(|| comet_error(StatusCode::BAD_REQUEST, "task_not_exist", "task_not_exist"))?;
    let phase = task.phase();
    let status = match phase {
        Phase::Succeeded => "SUCCEEDED",
        Phase::Failed => "FAILED",
        Phase::Running(_) => "RUNNING",
        _ => "PENDING",
    };
    let status = sim.word(phase, status);
    let mut answer = json!({"id": id, "status": status, "progress": f64::from(phase.progress()) / 100.0});
    if phase == Phase::Succeeded {
        let file = task.params["file"].as_str().unwrap_or("video.mp4");
        answer["output"] = json!([file_url(&base_url(&headers, &sim), &id, file)]);
    }
    if phase == Phase::Failed {
        answer["failure"] = json!(task.failure.clone().unwrap_or_default());
    }
    if sim.config.faults.alt_shapes {
        // CometAPI's own live check: the task wrapped like its reverse-format routes.
        let outer = match phase {
            Phase::Succeeded => "SUCCESS",
            Phase::Failed => "FAILURE",
            Phase::Running(_) => "IN_PROGRESS",
            _ => "QUEUED",
        };
        answer = json!({"code": "success", "message": "", "data": {
            "task_id": id, "action": "IMAGE_TO_VIDEO", "status": sim.word(phase, outer),
            "progress": format!("{}%", phase.progress()),
            "fail_reason": task.failure.clone().filter(|_| phase == Phase::Failed).unwrap_or_default(),
            "data": answer}});
    }
    Ok(json_response(StatusCode::OK, answer))
}

/// `POST /dream-machine/v1/generations` (`prompt` required).
pub(crate) async fn luma_submit(State(sim): State<Arc<Sim>>, bytes: Bytes) -> Result<Response, Response> {
    let body = json_object(&bytes).map_err(|e| bad(&e))?;
    let prompt = str_field(&body, "prompt");
    if prompt.is_empty() {
        return Err(bad("prompt is required"));
    }
    let id = new_task(&sim, "luma", "/dream-machine/v1/generations", prompt, "video.mp4");
    Ok(json_response(StatusCode::OK, json!({"id": id, "state": "queued"})))
}

/// `GET /dream-machine/v1/generations/{id}`.
pub(crate) async fn luma_fetch(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let task = vendor_task(&sim, &id, "luma")
        .ok_or_else(|| comet_error(StatusCode::NOT_FOUND, "task_not_exist", "no such generation"))?;
    let phase = task.phase();
    let state = match phase {
        Phase::Succeeded => "completed",
        Phase::Failed => "failed",
        Phase::Running(_) => "dreaming",
        _ => "queued",
    };
    let state = sim.word(phase, state);
    let mut answer = json!({"id": id, "state": state, "failure_reason": task.failure});
    if phase == Phase::Succeeded {
        let url = file_url(&base_url(&headers, &sim), &id, "video.mp4");
        answer["video"] = json!({"url": url, "download_url": url, "width": 1280, "height": 720});
    }
    Ok(json_response(StatusCode::OK, answer))
}

/// `POST /replicate/v1/models/{owner}/{name}/predictions` (`input` required).
pub(crate) async fn replicate_submit(
    State(sim): State<Arc<Sim>>,
    Path((owner, name)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Response, Response> {
    let body = json_object(&bytes).map_err(|e| bad(&e))?;
    let Some(input) = body.get("input").and_then(Value::as_object) else {
        return Err(bad("input is required"));
    };
    let prompt = input.get("prompt").and_then(Value::as_str).unwrap_or_default();
    let file = if name.contains("3d") || name.contains("hunyuan") { "model.glb" } else { "image.png" };
    let id = new_task(&sim, "replicate", "/replicate/v1/predictions", prompt, file);
    let model = format!("{owner}/{name}");
    Ok(json_response(
        StatusCode::CREATED,
        json!({"id": id, "model": model, "version": "hidden", "input": input, "status": "starting", "output": null}),
    ))
}

/// `GET /replicate/v1/predictions/{id}`.
pub(crate) async fn replicate_fetch(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let task = vendor_task(&sim, &id, "replicate")
        .ok_or_else(|| comet_error(StatusCode::NOT_FOUND, "task_not_exist", "no such prediction"))?;
    let phase = task.phase();
    let status = match phase {
        Phase::Succeeded => "succeeded",
        Phase::Failed => "failed",
        Phase::Running(_) => "processing",
        _ => "starting",
    };
    let status = sim.word(phase, status);
    let file = task.params["file"].as_str().unwrap_or("image.png");
    let output = (phase == Phase::Succeeded).then(|| json!([file_url(&base_url(&headers, &sim), &id, file)]));
    Ok(json_response(
        StatusCode::OK,
        json!({"id": id, "status": status, "output": output, "error": task.failure}),
    ))
}

/// `POST /v1/video_generation` (MiniMax official shape [I]).
pub(crate) async fn minimax_submit(State(sim): State<Arc<Sim>>, bytes: Bytes) -> Result<Response, Response> {
    let body = json_object(&bytes).map_err(|e| bad(&e))?;
    let prompt = str_field(&body, "prompt");
    if prompt.is_empty() && str_field(&body, "first_frame_image").is_empty() {
        return Err(bad("prompt is required"));
    }
    let id = new_task(&sim, "minimax", "/v1/video_generation", prompt, "video.mp4");
    if sim.config.faults.alt_shapes {
        return Ok(json_response(StatusCode::OK, json!({"code": "success", "message": "", "data": id})));
    }
    Ok(json_response(
        StatusCode::OK,
        json!({"task_id": id, "base_resp": {"status_code": 0, "status_msg": "success"}}),
    ))
}

/// `GET /v1/query/video_generation?task_id=`: `file_id` once `Success`.
pub(crate) async fn minimax_query(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let id = q.get("task_id").cloned().unwrap_or_default();
    let task = vendor_task(&sim, &id, "minimax")
        .ok_or_else(|| comet_error(StatusCode::NOT_FOUND, "task_not_exist", "no such task"))?;
    let phase = task.phase();
    let status = match phase {
        Phase::Succeeded => "Success",
        Phase::Failed => "Fail",
        Phase::Running(_) => "Processing",
        Phase::Queued => "Queueing",
        _ => "Preparing",
    };
    let status = sim.word(phase, status);
    if sim.config.faults.alt_shapes {
        return Ok(json_response(StatusCode::OK, minimax_wrapped(&sim, &headers, &task, status)));
    }
    let file_id = if phase == Phase::Succeeded { format!("file-{id}") } else { String::new() };
    Ok(json_response(
        StatusCode::OK,
        json!({"task_id": id, "status": status, "file_id": file_id,
               "base_resp": {"status_code": 0, "status_msg": task.failure.clone().unwrap_or_else(|| "success".into())}}),
    ))
}

/// The peers' wrapped query answer [F]: `data.status` SUCCESS/FAILURE, the vendor's answer
/// inside with the file's URL at `data.data.file.download_url` (no files/retrieve needed).
fn minimax_wrapped(sim: &Sim, headers: &HeaderMap, task: &Task, vendor_status: &str) -> Value {
    let phase = task.phase();
    let outer = match phase {
        Phase::Succeeded => "SUCCESS",
        Phase::Failed => "FAILURE",
        Phase::Running(_) => "IN_PROGRESS",
        _ => "QUEUED",
    };
    let failure = task.failure.clone().filter(|_| phase == Phase::Failed).unwrap_or_default();
    let mut inner = json!({"task_id": task.id, "status": vendor_status,
                           "base_resp": {"status_code": 0, "status_msg": "success"}});
    if phase == Phase::Succeeded {
        let url = file_url(&base_url(headers, sim), &task.id, "video.mp4");
        inner["file"] = json!({"file_id": format!("file-{}", task.id), "download_url": url});
    }
    json!({"code": "success", "message": "", "data": {
        "task_id": task.id, "action": "VIDEO", "status": sim.word(phase, outer),
        "progress": format!("{}%", phase.progress()), "fail_reason": failure, "data": inner}})
}

/// `GET /v1/files/retrieve?file_id=`: the download URL.
pub(crate) async fn minimax_file(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let file_id = q.get("file_id").cloned().unwrap_or_default();
    let id = file_id.strip_prefix("file-").unwrap_or_default();
    vendor_task(&sim, id, "minimax").ok_or_else(|| bad("no such file"))?;
    let url = file_url(&base_url(&headers, &sim), id, "video.mp4");
    Ok(json_response(
        StatusCode::OK,
        json!({"file": {"file_id": file_id, "filename": "output.mp4", "download_url": url},
               "base_resp": {"status_code": 0, "status_msg": "success"}}),
    ))
}
