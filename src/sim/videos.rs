//! Unified video: `POST /v1/videos` (multipart form: prompt, model, seconds, size,
//! input_reference; JSON is accepted too), `GET /v1/videos/{id}` and
//! `GET /v1/videos/{id}/content`. Status `queued` → `in_progress` → `completed` | `failed`;
//! the finished URL is in both `video_url` and `url` because which one CometAPI fills is
//! not pinned down.

use std::sync::Arc;

use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::files::{file_url, serve_bytes, CLIP_MP4};
use super::http::{alnum, base_url, check_model_name, comet_error, json_response, openai_body, str_field};
use super::media::read_form;
use super::state::{Family, NewTask, Phase, Sim, Task};

async fn fields(request: Request) -> Result<Map<String, Value>, Response> {
    let content_type =
        request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type.starts_with("multipart/") {
        let multipart = Multipart::from_request(request, &()).await;
        let form = read_form(multipart).await?;
        let has_reference = form.has_file("input_reference");
        let mut fields = form.into_fields();
        if has_reference {
            fields.insert("input_reference".to_owned(), json!(true));
        }
        return Ok(fields);
    }
    let bytes = axum::body::to_bytes(request.into_body(), usize::MAX)
        .await
        .map_err(|e| comet_error(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string()))?;
    openai_body(&bytes)
}

fn text(fields: &Map<String, Value>, key: &str) -> String {
    match fields.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// `POST /v1/videos`.
pub(crate) async fn submit(State(sim): State<Arc<Sim>>, request: Request) -> Result<Response, Response> {
    let fields = fields(request).await?;
    let model = check_model_name(str_field(&fields, "model"))?;
    let prompt = str_field(&fields, "prompt");
    if prompt.is_empty() {
        return Err(comet_error(StatusCode::BAD_REQUEST, "invalid_request", "prompt is required"));
    }
    let seconds = match text(&fields, "seconds") {
        s if s.is_empty() => "5".to_owned(),
        s => s,
    };
    let size = match text(&fields, "size") {
        s if s.is_empty() => "1280x720".to_owned(),
        s => s,
    };
    let params = json!({"model": model, "seconds": seconds, "size": size, "prompt": prompt});
    let id = sim.submit(NewTask {
        id: format!("task_{}", alnum(24)),
        family: Family::Videos,
        route: "/v1/videos",
        prompt,
        params,
        waiting: false,
    });
    let task =
        sim.task(&id).ok_or_else(|| comet_error(StatusCode::INTERNAL_SERVER_ERROR, "", "task vanished"))?;
    Ok(json_response(StatusCode::OK, render(&sim, &task, "")))
}

fn render(sim: &Sim, task: &Task, base: &str) -> Value {
    let phase = task.phase();
    let p = &task.params;
    let status = match phase {
        Phase::Waiting | Phase::NotStart | Phase::Submitted | Phase::Queued => "queued",
        Phase::Running(_) => "in_progress",
        Phase::Succeeded => "completed",
        Phase::Failed => "failed",
    };
    let status = sim.word(phase, status);
    let mut video = json!({
        "id": task.id, "task_id": task.id, "object": "video", "model": p["model"], "status": status,
        "progress": phase.progress(), "created_at": task.submitted_ms / 1000,
        "seconds": p["seconds"], "size": p["size"],
    });
    match phase {
        Phase::Succeeded => {
            // Sora's own shape names no URL: the file is `GET /v1/videos/{id}/content`.
            if !sim.config.faults.alt_shapes {
                let url = file_url(base, &task.id, "video.mp4");
                video["video_url"] = json!(url);
                video["url"] = json!(url);
            }
            video["completed_at"] = json!(task.finish_ms() / 1000);
            video["expires_at"] = json!(task.finish_ms() / 1000 + 3 * 24 * 3600);
        }
        Phase::Failed => {
            let message = task.failure.clone().unwrap_or_default();
            video["error"] = json!({"code": "content_policy_violation", "message": message});
        }
        _ => {}
    }
    video
}

fn video_task(sim: &Sim, id: &str) -> Result<Task, Response> {
    sim.task(id).filter(|t| t.family == Family::Videos).ok_or_else(|| {
        comet_error(StatusCode::NOT_FOUND, "task_not_exist", &format!("task {id} does not exist"))
    })
}

/// `GET /v1/videos/{id}`.
pub(crate) async fn fetch(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let task = video_task(&sim, &id)?;
    Ok(json_response(StatusCode::OK, render(&sim, &task, &base_url(&headers, &sim))))
}

/// `GET /v1/videos/{id}/content`: the mp4 once completed (Sora-style download).
pub(crate) async fn content(
    State(sim): State<Arc<Sim>>,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let task = video_task(&sim, &id)?;
    if task.phase() != Phase::Succeeded {
        return Err(comet_error(StatusCode::BAD_REQUEST, "invalid_request", "video is not completed"));
    }
    Ok(serve_bytes(&sim, &format!("/v1/videos/{id}/content"), CLIP_MP4, "video/mp4"))
}
