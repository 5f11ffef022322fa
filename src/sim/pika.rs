//! Pika [I]: `POST /pika/generate` -> `{"code":"success","data":{"task_id"}}`, then
//! `GET /pika/fetch/{id}` -> `data.status` (`queued`, `processing`, `SUCCESS`/`FAILURE`)
//! with the video at `data.video_url`. No CometAPI page documents these routes; they follow
//! the gateway's task convention so cometflow's `pika.generate` can be exercised offline.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::files::file_url;
use super::http::{base_url, comet_error, json_object, json_response, str_field, uuid};
use super::state::{Family, NewTask, Phase, Sim};

/// `POST /pika/generate` (`promptText` required; `image` and `video` optional references).
pub(crate) async fn submit(State(sim): State<Arc<Sim>>, bytes: Bytes) -> Result<Response, Response> {
    let body =
        json_object(&bytes).map_err(|e| comet_error(StatusCode::BAD_REQUEST, "invalid_request", &e))?;
    let prompt = str_field(&body, "promptText");
    if prompt.is_empty() {
        return Err(comet_error(StatusCode::BAD_REQUEST, "invalid_request", "promptText is required"));
    }
    let id = sim.submit(NewTask {
        id: uuid(),
        family: Family::Other,
        route: "/pika/generate",
        prompt,
        params: json!({"vendor": "pika", "file": "video.mp4"}),
        waiting: false,
    });
    Ok(json_response(StatusCode::OK, json!({"code": "success", "message": "", "data": {"task_id": id}})))
}

/// `GET /pika/fetch/{id}`.
pub(crate) async fn fetch(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let task = sim
        .task(&id)
        .filter(|t| t.params["vendor"] == "pika")
        .ok_or_else(|| comet_error(StatusCode::NOT_FOUND, "task_not_exist", "no such pika task"))?;
    let phase = task.phase();
    let (status, progress) = match phase {
        Phase::Succeeded => ("SUCCESS", 100),
        Phase::Failed => ("FAILURE", 100),
        Phase::Running(p) => ("processing", u32::from(p)),
        _ => ("queued", 0),
    };
    let status = sim.word(phase, status);
    let mut data = json!({"task_id": id, "status": status, "progress": format!("{progress}%")});
    match phase {
        Phase::Succeeded => data["video_url"] = json!(file_url(&base_url(&headers, &sim), &id, "video.mp4")),
        Phase::Failed => data["fail_reason"] = json!(task.failure.clone().unwrap_or_default()),
        _ => {}
    }
    Ok(json_response(StatusCode::OK, json!({"code": "success", "message": "", "data": data})))
}
