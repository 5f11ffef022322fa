//! Suno: `POST /suno/submit/music` (two clips per task), `POST /suno/submit/lyrics`,
//! `GET /suno/fetch/{id}`, `POST /suno/fetch` and `GET /suno/act/timing/{clip_id}`. Envelope `{"code","message","data"}`,
//! success when `code == "success"`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use jiff::Timestamp;
use serde_json::{json, Map, Value};

use super::files::{file_url, SONG_SECONDS};
use super::http::{base_url, json_object, json_response, str_field, uuid};
use super::state::{Family, NewTask, Phase, Sim, Task};
use super::{suno_act, text};

pub(crate) fn success(data: Value) -> Response {
    json_response(StatusCode::OK, json!({"code": "success", "message": "", "data": data}))
}

/// Suno's error envelope: `code` other than "success", `data` null.
pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(status, json!({"code": code, "message": message, "data": null}))
}

pub(crate) fn body(bytes: &[u8]) -> Result<Map<String, Value>, Response> {
    json_object(bytes).map_err(|e| error(StatusCode::BAD_REQUEST, "invalid_request", &e))
}

/// `POST /suno/submit/music`: needs some prompt (lyrics, description or style).
pub(crate) async fn submit_music(State(sim): State<Arc<Sim>>, bytes: Bytes) -> Result<Response, Response> {
    let body = body(&bytes)?;
    let (prompt, description) = (str_field(&body, "prompt"), str_field(&body, "gpt_description_prompt"));
    let tags = str_field(&body, "tags");
    let extra = suno_act::music_extras(&sim, &body)
        .map_err(|m| error(StatusCode::BAD_REQUEST, "invalid_request", &m))?;
    let stems = str_field(&body, "task") == "gen_stem";
    if prompt.is_empty() && description.is_empty() && tags.is_empty() && !stems {
        let message = "prompt, gpt_description_prompt or tags is required";
        return Err(error(StatusCode::BAD_REQUEST, "invalid_request", message));
    }
    let mv = match str_field(&body, "mv") {
        "" => "chirp-auk",
        mv => mv,
    };
    let seed = if description.is_empty() { prompt } else { description };
    let title = match str_field(&body, "title") {
        "" => text::title(seed),
        title => title.to_owned(),
    };
    let lyrics = match body.get("make_instrumental").and_then(Value::as_bool) {
        Some(true) => "[Instrumental]".to_owned(),
        _ if !prompt.is_empty() => prompt.to_owned(),
        _ => text::lyrics(seed),
    };
    let clips = [uuid(), uuid()];
    for clip in &clips {
        sim.register_file(clip);
    }
    let mut params = json!({"action": "MUSIC", "mv": mv, "title": title, "tags": tags,
                        "prompt": lyrics, "gpt_description_prompt": description,
                        "notify_hook": str_field(&body, "notify_hook"), "clips": clips});
    if stems {
        params["titles"] = json!([format!("{title} (Vocals)"), format!("{title} (Instrumental)")]);
    }
    params["extra"] = extra;
    let id = sim.submit(NewTask {
        id: uuid(),
        family: Family::Suno,
        route: "/suno/submit/music",
        prompt: &format!("{prompt} {description} {tags}"),
        params,
        waiting: false,
    });
    Ok(success(json!(id)))
}

/// `POST /suno/submit/lyrics`: `{"prompt"}` to lyrics text and a title.
pub(crate) async fn submit_lyrics(State(sim): State<Arc<Sim>>, bytes: Bytes) -> Result<Response, Response> {
    let body = body(&bytes)?;
    let prompt = str_field(&body, "prompt");
    if prompt.is_empty() {
        return Err(error(StatusCode::BAD_REQUEST, "invalid_request", "prompt is required"));
    }
    let params = json!({"action": "LYRICS", "title": text::title(prompt), "text": text::lyrics(prompt),
                        "notify_hook": str_field(&body, "notify_hook")});
    let id = sim.submit(NewTask {
        id: uuid(),
        family: Family::Suno,
        route: "/suno/submit/lyrics",
        prompt,
        params,
        waiting: false,
    });
    Ok(success(json!(id)))
}

fn task_status(phase: Phase) -> &'static str {
    match phase {
        Phase::Waiting | Phase::NotStart => "NOT_START",
        Phase::Submitted => "SUBMITTED",
        Phase::Queued => "QUEUED",
        Phase::Running(_) => "IN_PROGRESS",
        Phase::Succeeded => "SUCCESS",
        Phase::Failed => "FAILURE",
    }
}

fn iso(ms: u64) -> String {
    Timestamp::from_millisecond(ms as i64).map(|t| t.to_string()).unwrap_or_default()
}

/// One clip as Suno reports it: URLs are only final once `status` is "complete".
fn clip(task: &Task, base: &str, id: &str, phase: Phase) -> Value {
    let p = &task.params;
    let status = match phase {
        Phase::Waiting | Phase::NotStart | Phase::Submitted => "submitted",
        Phase::Queued => "queued",
        Phase::Running(_) => "streaming",
        Phase::Succeeded => "complete",
        Phase::Failed => "error",
    };
    let (audio, video, image, duration) = match phase {
        Phase::Running(_) => {
            (file_url(base, id, "stream.mp3"), String::new(), file_url(base, id, "image.png"), Value::Null)
        }
        Phase::Succeeded => (
            file_url(base, id, "audio.mp3"),
            file_url(base, id, "video.mp4"),
            file_url(base, id, "image.png"),
            json!(SONG_SECONDS),
        ),
        _ => (String::new(), String::new(), String::new(), Value::Null),
    };
    let (error_type, error_message) = match (&task.failure, phase) {
        (Some(reason), Phase::Failed) => (json!("content_moderation"), json!(reason)),
        _ => (Value::Null, Value::Null),
    };
    // Stems are named per clip; songs share the task's title.
    let index = p["clips"].as_array().and_then(|c| c.iter().position(|c| c == id)).unwrap_or(0);
    let title = p["titles"].get(index).unwrap_or(&p["title"]);
    json!({
        "id": id, "status": status, "title": title, "model_name": p["mv"],
        "audio_url": audio, "video_url": video, "image_url": image,
        "image_large_url": if image.is_empty() { String::new() } else { file_url(base, id, "image_large.png") },
        "created_at": iso(task.submitted_ms),
        "metadata": {"tags": p["tags"], "prompt": p["prompt"],
                     "gpt_description_prompt": p["gpt_description_prompt"], "type": "gen",
                     "duration": duration, "error_type": error_type, "error_message": error_message,
                     "extra": p["extra"]},
    })
}

/// The task object of `GET /suno/fetch/{id}` (and each element of the batch answer).
pub(crate) fn render(sim: &Sim, task: &Task, base: &str) -> Value {
    let phase = task.phase();
    let p = &task.params;
    let action = p["action"].as_str().unwrap_or("MUSIC");
    let data = if action == "LYRICS" && sim.config.faults.alt_shapes {
        // The newer shape [F]: a list, the lyrics in `prompt`, `state` instead of `status`.
        let done = phase == Phase::Succeeded;
        let state = match phase {
            Phase::Succeeded => "succeeded",
            Phase::Failed => "failed",
            _ => "running",
        };
        json!([{"title": if done { p["title"].clone() } else { json!("") }, "tags": "",
                "prompt": if done { p["text"].clone() } else { json!("") }, "state": state}])
    } else if action == "LYRICS" {
        let done = phase == Phase::Succeeded;
        let status = match phase {
            Phase::Succeeded => "complete",
            Phase::Failed => "error",
            _ => "running",
        };
        json!({"id": task.id, "status": status,
               "text": if done { p["text"].clone() } else { json!("") },
               "title": if done { p["title"].clone() } else { json!("") }})
    } else {
        let clips = p["clips"].as_array().map(Vec::as_slice).unwrap_or_default();
        let ids = clips.iter().filter_map(Value::as_str);
        json!(ids.map(|id| clip(task, base, id, phase)).collect::<Vec<_>>())
    };
    json!({
        "task_id": task.id, "notify_hook": p["notify_hook"], "action": action,
        "status": sim.word(phase, task_status(phase)),
        "fail_reason": if phase == Phase::Failed { task.failure.clone().unwrap_or_default() } else { String::new() },
        "submit_time": task.submitted_ms / 1000, "start_time": task.start_ms() / 1000,
        "finish_time": task.finish_ms() / 1000, "progress": format!("{}%", phase.progress()),
        "data": data,
    })
}

pub(crate) fn suno_task(sim: &Sim, id: &str) -> Option<Task> {
    sim.task(id).filter(|t| t.family == Family::Suno)
}

/// `GET /suno/fetch/{id}`; an unknown id is a 404 with `code: "task_not_exist"`.
pub(crate) async fn fetch(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match suno_task(&sim, &id) {
        Some(task) => success(render(&sim, &task, &base_url(&headers, &sim))),
        None => error(StatusCode::NOT_FOUND, "task_not_exist", "task_not_exist"),
    }
}

/// `POST /suno/fetch` `{"ids":[…],"action":"MUSIC"|"LYRICS"}`: known ids, in request order.
pub(crate) async fn fetch_batch(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, Response> {
    let body = body(&bytes)?;
    if !matches!(str_field(&body, "action"), "MUSIC" | "LYRICS") {
        let message = "action is required: MUSIC or LYRICS";
        return Err(error(StatusCode::BAD_REQUEST, "invalid_request", message));
    }
    let Some(ids) = body.get("ids").and_then(Value::as_array) else {
        return Err(error(StatusCode::BAD_REQUEST, "invalid_request", "ids is required"));
    };
    let base = base_url(&headers, &sim);
    let tasks: Vec<Value> = ids
        .iter()
        .filter_map(Value::as_str)
        .filter_map(|id| suno_task(&sim, id))
        .map(|task| render(&sim, &task, &base))
        .collect();
    Ok(success(json!(tasks)))
}

/// `GET /suno/act/timing/{clip_id}`: the sim's lyrics, word by word, spread over the song
/// in Suno's aligned-words shape (`word` with a trailing newline at a line's end).
pub(crate) async fn timing(State(sim): State<Arc<Sim>>, Path(clip_id): Path<String>) -> Response {
    if !sim.has_file(&clip_id) {
        return error(StatusCode::NOT_FOUND, "clip_not_exist", "clip not found");
    }
    let lyrics = text::lyrics("");
    let sung: Vec<&str> = lyrics.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('[')).collect();
    let per_line = SONG_SECONDS / sung.len().max(1) as f64;
    let mut words = Vec::new();
    for (i, line) in sung.iter().enumerate() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        // Sung in the first 80% of the line's slot; the rest is a breath.
        let step = per_line * 0.8 / parts.len().max(1) as f64;
        for (j, word) in parts.iter().enumerate() {
            let start = i as f64 * per_line + j as f64 * step;
            let last = j + 1 == parts.len();
            let round = |t: f64| (t * 1000.0).round() / 1000.0;
            words.push(json!({"word": if last { format!("{word}\n") } else { format!("{word} ") },
                              "start_s": round(start), "end_s": round(start + step),
                              "success": true, "p_align": 1.0}));
        }
    }
    success(json!({"aligned_words": words, "waveform_data": [], "hoot_cer": 0.0, "is_streamed": false}))
}
