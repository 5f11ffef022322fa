//! Midjourney: `POST /mj/submit/{imagine|action|blend|describe|modal}` and
//! `GET /mj/task/{id}/fetch`. Submits answer HTTP 200 with `code` 1 (submitted),
//! 21 (a modal awaits `/mj/submit/modal`) or 4 (parameter error, `description` says why).
//! Finished grids carry 9 buttons (U1–U4, reroll, V1–V4); upscales carry their own.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::http::{base_url, digits, json_object, json_response, now_ms, str_field, uuid};
use super::state::{Family, NewTask, Phase, Sim, Task};

fn submit_answer(code: u32, description: &str, result: Value) -> Response {
    json_response(
        StatusCode::OK,
        json!({"code": code, "description": description, "result": result,
               "properties": {"discordChannelId": "sim", "discordInstanceId": "sim", "numberOfQueues": 0}}),
    )
}

/// MJ reports parameter errors as HTTP 200 with `code: 4`; only `code` tells.
fn param_error(description: &str) -> Response {
    submit_answer(4, description, Value::Null)
}

fn body(bytes: &[u8]) -> Result<Map<String, Value>, Response> {
    json_object(bytes).map_err(|e| param_error(&e))
}

/// Which buttons a finished task shows.
#[derive(Clone, Copy)]
enum Buttons {
    Grid,
    Upscale,
    None,
}

fn button(custom_id: String, label: &str, emoji: &str) -> Value {
    json!({"customId": custom_id, "emoji": emoji, "label": label, "type": 2, "style": 2})
}

fn buttons(kind: Buttons, hash: &str) -> Vec<Value> {
    match kind {
        Buttons::Grid => {
            let mut list: Vec<Value> = (1..=4)
                .map(|i| button(format!("MJ::JOB::upsample::{i}::{hash}"), &format!("U{i}"), ""))
                .collect();
            list.push(button(format!("MJ::JOB::reroll::0::{hash}::SOLO"), "", "🔄"));
            list.extend(
                (1..=4).map(|i| button(format!("MJ::JOB::variation::{i}::{hash}"), &format!("V{i}"), "")),
            );
            list
        }
        Buttons::Upscale => vec![
            button(format!("MJ::JOB::upsample_v6_2x_subtle::1::{hash}::SOLO"), "Upscale (Subtle)", ""),
            button(format!("MJ::JOB::upsample_v6_2x_creative::1::{hash}::SOLO"), "Upscale (Creative)", ""),
            button(format!("MJ::JOB::low_variation::1::{hash}::SOLO"), "Vary (Subtle)", "🪄"),
            button(format!("MJ::JOB::high_variation::1::{hash}::SOLO"), "Vary (Strong)", "🪄"),
            button(format!("MJ::Inpaint::1::{hash}::SOLO"), "Vary (Region)", "🖌️"),
            button(format!("MJ::Outpaint::50::1::{hash}::SOLO"), "Zoom Out 2x", "🔍"),
            button(format!("MJ::Outpaint::75::1::{hash}::SOLO"), "Zoom Out 1.5x", "🔍"),
            button(format!("MJ::CustomZoom::{hash}"), "Custom Zoom", "🔍"),
            button(format!("MJ::JOB::pan_left::1::{hash}::SOLO"), "", "⬅️"),
            button(format!("MJ::JOB::pan_right::1::{hash}::SOLO"), "", "➡️"),
            button(format!("MJ::JOB::pan_up::1::{hash}::SOLO"), "", "⬆️"),
            button(format!("MJ::JOB::pan_down::1::{hash}::SOLO"), "", "⬇️"),
        ],
        Buttons::None => Vec::new(),
    }
}

fn buttons_kind(params: &Value) -> Buttons {
    match params["buttons"].as_str() {
        Some("grid") => Buttons::Grid,
        Some("upscale") => Buttons::Upscale,
        _ => Buttons::None,
    }
}

/// What pressing a button does: (action, buttons of the result, needs a modal first).
fn press(custom_id: &str) -> (&'static str, &'static str, bool) {
    let has = |s: &str| custom_id.contains(s);
    if has("::Inpaint::") {
        ("INPAINT", "grid", true)
    } else if has("::CustomZoom::") {
        ("ZOOM", "grid", true)
    } else if has("::upsample") {
        ("UPSCALE", "upscale", false)
    } else if has("variation::") {
        ("VARIATION", "grid", false)
    } else if has("::reroll::") {
        ("REROLL", "grid", false)
    } else if has("::Outpaint::") {
        ("ZOOM", "grid", false)
    } else if has("::pan_") {
        ("PAN", "grid", false)
    } else {
        ("ACTION", "grid", false)
    }
}

struct Submit<'a> {
    route: &'a str,
    action: &'a str,
    prompt: &'a str,
    buttons: &'a str,
    extra: Value,
    waiting: bool,
}

fn submit(sim: &Sim, body: &Map<String, Value>, s: Submit<'_>) -> String {
    let mut params = json!({"action": s.action, "prompt": s.prompt, "buttons": s.buttons, "hash": uuid(),
                            "botType": match str_field(body, "botType") { "" => "MID_JOURNEY", b => b },
                            "state": str_field(body, "state")});
    if let (Some(params), Value::Object(extra)) = (params.as_object_mut(), s.extra) {
        params.extend(extra);
    }
    // Millisecond timestamp plus digits, like MJ proxies' 16-digit ids.
    let id = format!("{}{}", now_ms(), digits(3));
    sim.submit(NewTask {
        id,
        family: Family::Midjourney,
        route: s.route,
        prompt: s.prompt,
        params,
        waiting: s.waiting,
    })
}

/// `POST /mj/submit/imagine` (`prompt` required).
pub(crate) async fn imagine(State(sim): State<Arc<Sim>>, bytes: Bytes) -> Result<Response, Response> {
    let body = body(&bytes)?;
    let prompt = str_field(&body, "prompt");
    if prompt.trim().is_empty() {
        return Err(param_error("prompt is required"));
    }
    let route = "/mj/submit/imagine";
    let id = submit(
        &sim,
        &body,
        Submit { route, action: "IMAGINE", prompt, buttons: "grid", extra: json!({}), waiting: false },
    );
    if sim.config.faults.alt_shapes {
        // "Task exists": charged, and its id is the one to poll [F].
        return Ok(submit_answer(21, "任务已存在", json!(id)));
    }
    Ok(submit_answer(1, "提交成功", json!(id)))
}

/// `POST /mj/submit/action`: `customId` must be one of the finished parent's buttons.
pub(crate) async fn action(State(sim): State<Arc<Sim>>, bytes: Bytes) -> Result<Response, Response> {
    let body = body(&bytes)?;
    let (custom_id, task_id) = (str_field(&body, "customId"), str_field(&body, "taskId"));
    if custom_id.is_empty() || task_id.is_empty() {
        return Err(param_error("customId and taskId are required"));
    }
    let parent = sim.task(task_id).filter(|t| t.family == Family::Midjourney);
    let Some(parent) = parent else {
        return Err(param_error("task not found"));
    };
    if parent.phase() != Phase::Succeeded {
        return Err(param_error("the parent task has not succeeded"));
    }
    let hash = parent.params["hash"].as_str().unwrap_or_default();
    let offered = buttons(buttons_kind(&parent.params), hash);
    if !offered.iter().any(|b| b["customId"] == custom_id) {
        return Err(param_error("customId is not one of the task's buttons; take it from the latest fetch"));
    }
    let (action, result_buttons, modal) = press(custom_id);
    let prompt = parent.params["prompt"].as_str().unwrap_or_default().to_owned();
    let extra = json!({"customId": custom_id, "parentId": task_id});
    let submit_spec = Submit {
        route: "/mj/submit/action",
        action,
        prompt: &prompt,
        buttons: result_buttons,
        extra,
        waiting: modal,
    };
    let id = submit(&sim, &body, submit_spec);
    Ok(if modal {
        submit_answer(21, "窗口等待确认", json!(id))
    } else {
        submit_answer(1, "提交成功", json!(id))
    })
}

/// `POST /mj/submit/modal` `{"taskId", "prompt"?, "maskBase64"?}`: starts a MODAL task.
pub(crate) async fn modal(State(sim): State<Arc<Sim>>, bytes: Bytes) -> Result<Response, Response> {
    let body = body(&bytes)?;
    let task_id = str_field(&body, "taskId");
    let prompt = str_field(&body, "prompt").to_owned();
    let started = sim.start_clock(task_id, |params| {
        if !prompt.is_empty() {
            params["prompt"] = json!(prompt);
        }
    });
    if !started {
        return Err(param_error("taskId is not a task waiting for a modal"));
    }
    Ok(submit_answer(1, "提交成功", json!(task_id)))
}

/// `POST /mj/submit/blend` (`base64Array` of 2–5 data URIs).
pub(crate) async fn blend(State(sim): State<Arc<Sim>>, bytes: Bytes) -> Result<Response, Response> {
    let body = body(&bytes)?;
    let count = body.get("base64Array").and_then(Value::as_array).map_or(0, Vec::len);
    if !(2..=5).contains(&count) {
        return Err(param_error("base64Array must hold 2 to 5 images"));
    }
    let route = "/mj/submit/blend";
    let id = submit(
        &sim,
        &body,
        Submit { route, action: "BLEND", prompt: "", buttons: "grid", extra: json!({}), waiting: false },
    );
    Ok(submit_answer(1, "提交成功", json!(id)))
}

/// `POST /mj/submit/describe` (`base64` or `link`); the prompts land in `promptEn`.
pub(crate) async fn describe(State(sim): State<Arc<Sim>>, bytes: Bytes) -> Result<Response, Response> {
    let body = body(&bytes)?;
    if str_field(&body, "base64").is_empty() && str_field(&body, "link").is_empty() {
        return Err(param_error("base64 or link is required"));
    }
    let described = "1️⃣ a paper boat on a calm lake at dawn, soft light --ar 1:1\n\n\
                     2️⃣ minimalist origami boat, pastel palette --ar 1:1\n\n\
                     3️⃣ a small boat drifting in mist, watercolor --ar 1:1\n\n\
                     4️⃣ folded paper vessel, studio photo --ar 1:1";
    let route = "/mj/submit/describe";
    let extra = json!({"promptEn": described});
    let id = submit(
        &sim,
        &body,
        Submit { route, action: "DESCRIBE", prompt: "", buttons: "none", extra, waiting: false },
    );
    Ok(submit_answer(1, "提交成功", json!(id)))
}

/// `POST /mj/submit/video` [I] (`image` data URI or URL, `prompt`, `motion` low|high): the
/// finished task has `videoUrl`.
pub(crate) async fn video(State(sim): State<Arc<Sim>>, bytes: Bytes) -> Result<Response, Response> {
    let body = body(&bytes)?;
    if str_field(&body, "image").is_empty() && str_field(&body, "prompt").is_empty() {
        return Err(param_error("image or prompt is required"));
    }
    if !matches!(str_field(&body, "motion"), "" | "low" | "high") {
        return Err(param_error("motion must be low or high"));
    }
    let route = "/mj/submit/video";
    let prompt = str_field(&body, "prompt");
    let id = submit(
        &sim,
        &body,
        Submit { route, action: "VIDEO", prompt, buttons: "none", extra: json!({}), waiting: false },
    );
    Ok(submit_answer(1, "提交成功", json!(id)))
}

fn render(sim: &Sim, task: &Task, base: &str) -> Value {
    let phase = task.phase();
    let p = &task.params;
    let status = match phase {
        Phase::Waiting => "MODAL",
        Phase::NotStart => "NOT_START",
        Phase::Submitted | Phase::Queued => "SUBMITTED",
        Phase::Running(_) => "IN_PROGRESS",
        Phase::Succeeded => "SUCCESS",
        Phase::Failed => "FAILURE",
    };
    let status = sim.word(phase, status);
    let done = phase == Phase::Succeeded;
    let hash = p["hash"].as_str().unwrap_or_default();
    let prompt_en = if p["action"] == "DESCRIBE" {
        if done {
            p["promptEn"].clone()
        } else {
            json!("")
        }
    } else {
        p["prompt"].clone()
    };
    json!({
        "id": task.id, "action": p["action"], "customId": p["customId"].as_str().unwrap_or_default(),
        "botType": p["botType"], "prompt": if p["action"] == "DESCRIBE" { prompt_en.clone() } else { p["prompt"].clone() },
        "promptEn": prompt_en, "description": "提交成功", "state": p["state"],
        "submitTime": task.submitted_ms, "startTime": task.start_ms(), "finishTime": task.finish_ms(),
        "imageUrl": if done { format!("{base}/mj/image/{}", task.id) } else { String::new() },
        "videoUrl": if done && p["action"] == "VIDEO" { super::files::file_url(base, &task.id, "video.mp4") } else { String::new() },
        "status": status, "progress": format!("{}%", phase.progress()),
        "failReason": if phase == Phase::Failed { task.failure.clone().unwrap_or_default() } else { String::new() },
        "buttons": if done { buttons(buttons_kind(p), hash) } else { Vec::new() },
        "maskBase64": "", "properties": {"finalPrompt": p["prompt"], "finalZhPrompt": ""},
    })
}

/// `GET /mj/task/{id}/fetch`; an unknown id is HTTP 404 with `code: 4`.
pub(crate) async fn fetch(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let task = sim.task(&id).filter(|t| t.family == Family::Midjourney);
    // A brand-new id is not found yet on its first fetch [F].
    let young = task.is_some() && sim.config.faults.alt_shapes && sim.first_fetch(&id);
    match task.filter(|_| !young) {
        Some(task) => json_response(StatusCode::OK, render(&sim, &task, &base_url(&headers, &sim))),
        None => json_response(
            StatusCode::NOT_FOUND,
            json!({"code": 4, "description": "task_not_found", "result": null}),
        ),
    }
}
