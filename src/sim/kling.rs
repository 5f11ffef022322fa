//! Kling: `POST /kling/v1/videos/{text2video|image2video|multi-image2video}`,
//! `POST /kling/v1/images/generations` and the query `GET /kling/v1/{action}/{action2}/{id}`.
//! Envelope `{"code":0,"message","request_id","data"}`; errors are HTTP 4xx with `code != 0`
//! (Kling's numbers: 1201 bad parameter, 1203 no such resource).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::files::file_url;
use super::http::{base_url, digits, json_object, json_response, request_id, str_field};
use super::state::{Family, NewTask, Phase, Sim, Task};

const VIDEO_ACTIONS: &[&str] = &[
    "text2video",
    "image2video",
    "multi-image2video",
    "video-extend",
    "lip-sync",
    "effects",
    "multi-elements",
];

fn envelope(data: Value) -> Response {
    json_response(
        StatusCode::OK,
        json!({"code": 0, "message": "SUCCEED", "request_id": request_id(), "data": data}),
    )
}

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    json_response(status, json!({"code": code, "message": message, "request_id": request_id(), "data": null}))
}

fn invalid(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, 1201, message)
}

/// `mode` is std|pro; `duration` "5"|"10" (numbers accepted too), normalised to a string.
fn check_common(body: &Map<String, Value>) -> Result<(String, String), Response> {
    let mode = match body.get("mode") {
        None | Some(Value::Null) => "std".to_owned(),
        Some(Value::String(m)) if m == "std" || m == "pro" => m.clone(),
        Some(other) => return Err(invalid(&format!("mode must be std or pro, got {other}"))),
    };
    let duration = match body.get("duration") {
        None | Some(Value::Null) => "5".to_owned(),
        Some(Value::String(d)) if d == "5" || d == "10" => d.clone(),
        Some(Value::Number(n)) if n.as_f64() == Some(5.0) || n.as_f64() == Some(10.0) => {
            n.as_f64().map_or_else(String::new, |d| (d as u64).to_string())
        }
        Some(other) => return Err(invalid(&format!("duration must be \"5\" or \"10\", got {other}"))),
    };
    Ok((mode, duration))
}

fn submitted(sim: &Sim, route: String, body: &Map<String, Value>, params: Value) -> Response {
    let id = sim.submit(NewTask {
        id: digits(19),
        family: Family::Kling,
        route: &route,
        prompt: str_field(body, "prompt"),
        params,
        waiting: false,
    });
    let task_info = match str_field(body, "external_task_id") {
        "" => json!({}),
        external => json!({"external_task_id": external}),
    };
    let now = super::http::now_ms();
    envelope(json!({"task_id": id, "task_status": "submitted", "task_info": task_info,
                    "created_at": now, "updated_at": now}))
}

/// `POST /kling/v1/videos/{action2}`.
pub(crate) async fn submit_video(
    State(sim): State<Arc<Sim>>,
    Path(action2): Path<String>,
    bytes: Bytes,
) -> Result<Response, Response> {
    if !VIDEO_ACTIONS.contains(&action2.as_str()) {
        return Err(error(StatusCode::NOT_FOUND, 1203, &format!("unsupported video action {action2}")));
    }
    let body = json_object(&bytes).map_err(|e| invalid(&e))?;
    let (mode, duration) = check_common(&body)?;
    match action2.as_str() {
        "text2video" if str_field(&body, "prompt").is_empty() => return Err(invalid("prompt is required")),
        "image2video" if str_field(&body, "image").is_empty() => return Err(invalid("image is required")),
        "multi-image2video" => {
            let count = body.get("image_list").and_then(Value::as_array).map_or(0, Vec::len);
            if !(2..=4).contains(&count) {
                return Err(invalid("image_list must hold 2 to 4 images"));
            }
        }
        "video-extend" if str_field(&body, "video_id").is_empty() => {
            return Err(invalid("video_id is required"))
        }
        "lip-sync" if body.get("input").and_then(Value::as_object).is_none() => {
            return Err(invalid("input is required"))
        }
        "effects" if str_field(&body, "effect_scene").is_empty() => {
            return Err(invalid("effect_scene is required"))
        }
        _ => {}
    }
    let params = json!({"action": "videos", "action2": action2, "mode": mode, "duration": duration,
                        "model_name": str_field(&body, "model_name")});
    Ok(submitted(&sim, format!("/kling/v1/videos/{action2}"), &body, params))
}

/// `POST /kling/v1/images/{generations|multi-image2image|kolors-virtual-try-on}` (`n` images, default 1).
pub(crate) async fn submit_image(
    State(sim): State<Arc<Sim>>,
    Path(action2): Path<String>,
    bytes: Bytes,
) -> Result<Response, Response> {
    let body = json_object(&bytes).map_err(|e| invalid(&e))?;
    match action2.as_str() {
        "generations" if str_field(&body, "prompt").is_empty() => return Err(invalid("prompt is required")),
        "multi-image2image" if body.get("subject_image_list").and_then(Value::as_array).is_none() => {
            return Err(invalid("subject_image_list is required"))
        }
        "kolors-virtual-try-on"
            if str_field(&body, "human_image").is_empty() || str_field(&body, "cloth_image").is_empty() =>
        {
            return Err(invalid("human_image and cloth_image are required"))
        }
        "generations" | "multi-image2image" | "kolors-virtual-try-on" => {}
        other => {
            return Err(error(StatusCode::NOT_FOUND, 1203, &format!("unsupported image action {other}")))
        }
    }
    let n = body.get("n").and_then(Value::as_u64).unwrap_or(1);
    if !(1..=9).contains(&n) {
        return Err(invalid("n must be between 1 and 9"));
    }
    let params = json!({"action": "images", "action2": action2, "n": n});
    Ok(submitted(&sim, format!("/kling/v1/images/{action2}"), &body, params))
}

/// `POST /kling/v1/audio/{text-to-audio|video-to-audio}` [I shapes, Kling's official ones].
pub(crate) async fn submit_audio(
    State(sim): State<Arc<Sim>>,
    Path(action2): Path<String>,
    bytes: Bytes,
) -> Result<Response, Response> {
    let body = json_object(&bytes).map_err(|e| invalid(&e))?;
    match action2.as_str() {
        "text-to-audio" if str_field(&body, "prompt").is_empty() => {
            return Err(invalid("prompt is required"))
        }
        "video-to-audio"
            if str_field(&body, "video_id").is_empty() && str_field(&body, "video_url").is_empty() =>
        {
            return Err(invalid("video_id or video_url is required"))
        }
        "text-to-audio" | "video-to-audio" => {}
        other => {
            return Err(error(StatusCode::NOT_FOUND, 1203, &format!("unsupported audio action {other}")))
        }
    }
    let params = json!({"action": "audio", "action2": action2, "duration": "5"});
    Ok(submitted(&sim, format!("/kling/v1/audio/{action2}"), &body, params))
}

fn render(sim: &Sim, task: &Task, base: &str) -> Value {
    let phase = task.phase();
    let p = &task.params;
    let status = match phase {
        Phase::Waiting | Phase::NotStart | Phase::Submitted => "submitted",
        Phase::Queued | Phase::Running(_) => "processing",
        Phase::Succeeded => "succeed",
        Phase::Failed => "failed",
    };
    let status = sim.word(phase, status);
    let result = match phase {
        Phase::Succeeded if p["action"] == "images" => {
            let n = p["n"].as_u64().unwrap_or(1);
            let images: Vec<Value> = (0..n)
                .map(|i| json!({"index": i, "url": file_url(base, &task.id, &format!("image-{i}.png"))}))
                .collect();
            json!({"images": images})
        }
        Phase::Succeeded if p["action"] == "audio" => {
            let audios = json!([{"id": format!("{}-audio", task.id), "url_mp3": file_url(base, &task.id, "audio.mp3"),
                                 "duration_mp3": "5"}]);
            if p["action2"] == "video-to-audio" {
                json!({"audios": audios, "videos": [{"id": format!("{}-video", task.id),
                       "url": file_url(base, &task.id, "video.mp4"), "duration": "5"}]})
            } else {
                json!({"audios": audios})
            }
        }
        Phase::Succeeded => json!({"videos": [{"id": format!("{}-video", task.id),
                                               "url": file_url(base, &task.id, "video.mp4"),
                                               "duration": p["duration"]}]}),
        _ => json!({}),
    };
    let updated = match task.finish_ms() {
        0 => task.start_ms().max(task.submitted_ms),
        finished => finished,
    };
    json!({
        "task_id": task.id,
        "task_status": status,
        "task_status_msg": if phase == Phase::Failed { task.failure.clone().unwrap_or_default() } else { String::new() },
        "task_info": {},
        "task_result": result,
        "created_at": task.submitted_ms,
        "updated_at": updated,
    })
}

/// `GET /kling/v1/{action}/{action2}/{task_id}`: the path must match how the task was
/// submitted, so a client building the wrong query path finds out.
pub(crate) async fn query(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((action, action2, id)): Path<(String, String, String)>,
) -> Response {
    let task = sim.task(&id).filter(|t| {
        t.family == Family::Kling
            && t.params["action"] == action.as_str()
            && t.params["action2"] == action2.as_str()
    });
    match task {
        Some(task) => envelope(render(&sim, &task, &base_url(&headers, &sim))),
        None => error(StatusCode::NOT_FOUND, 1203, &format!("task {id} not found for {action}/{action2}")),
    }
}
