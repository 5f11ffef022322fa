//! Suno's routes around a finished clip [I paths, the family's]: `POST /suno/uploads/audio`
//! (a URL or data URI to a clip id), `POST /suno/submit/concat`, `POST /suno/persona/create`,
//! `GET /suno/act/wav/{clip_id}` (answers the file's URL at once) and
//! `GET /suno/act/mp4/{clip_id}` (answers a task id to poll), so both answers the client
//! must accept are exercised. Also the checks of `suno.music`'s extension, persona and
//! stem fields.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::files::file_url;
use super::http::{base_url, str_field, uuid};
use super::state::{Family, NewTask, Sim};
use super::suno::{body, error, render, success, suno_task};

fn bad(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_request", message)
}

fn no_clip(id: &str) -> Response {
    error(StatusCode::NOT_FOUND, "clip_not_exist", &format!("clip {id} not found"))
}

/// Checks `continue_clip_id`/`continue_at`, `persona_id` and `task: gen_stem` of a music
/// submit; what was asked, for the clips' metadata.
pub(crate) fn music_extras(sim: &Sim, body: &Map<String, Value>) -> Result<Value, String> {
    let clip = str_field(body, "continue_clip_id");
    if !clip.is_empty() && !sim.has_file(clip) {
        return Err(format!("continue_clip_id {clip} not found"));
    }
    let at = body.get("continue_at");
    if let Some(at) = at.filter(|v| !v.is_null()) {
        if !at.as_f64().is_some_and(|s| s >= 0.0) {
            return Err("continue_at must be a number of seconds".into());
        }
        if clip.is_empty() {
            return Err("continue_at needs continue_clip_id".into());
        }
    }
    let persona = str_field(body, "persona_id");
    if !persona.is_empty() && !sim.has_file(persona) {
        return Err(format!("persona_id {persona} not found"));
    }
    let task = str_field(body, "task");
    if task == "gen_stem" && clip.is_empty() {
        return Err("task gen_stem needs continue_clip_id".into());
    }
    Ok(json!({"continue_clip_id": clip, "continue_at": at, "persona_id": persona, "task": task,
              "make_instrumental": body.get("make_instrumental")}))
}

/// `POST /suno/uploads/audio` `{"url": "https://…" | "data:audio/…;base64,…"}` -> `{clip_id}`.
pub(crate) async fn upload(State(sim): State<Arc<Sim>>, bytes: Bytes) -> Result<Response, Response> {
    let body = body(&bytes)?;
    let url = str_field(&body, "url");
    if !(url.starts_with("http://") || url.starts_with("https://") || url.starts_with("data:audio/")) {
        return Err(bad("url is required: an audio URL or a data:audio/… URI"));
    }
    let clip = uuid();
    sim.register_file(&clip);
    Ok(success(json!({"clip_id": clip})))
}

fn clip_task(sim: &Sim, route: &str, title: &str, clips: &[String]) -> String {
    let params = json!({"action": "MUSIC", "mv": "chirp-auk", "title": title, "tags": "", "prompt": "",
                        "gpt_description_prompt": "", "notify_hook": "", "clips": clips, "route": route});
    sim.submit(NewTask { id: uuid(), family: Family::Suno, route, prompt: title, params, waiting: false })
}

/// `POST /suno/submit/concat` `{"clip_id", "is_infill"}`: one whole-song clip.
pub(crate) async fn concat(State(sim): State<Arc<Sim>>, bytes: Bytes) -> Result<Response, Response> {
    let body = body(&bytes)?;
    let clip = str_field(&body, "clip_id");
    if clip.is_empty() {
        return Err(bad("clip_id is required"));
    }
    if !sim.has_file(clip) {
        return Err(no_clip(clip));
    }
    if body.get("is_infill").is_some_and(|v| !v.is_boolean()) {
        return Err(bad("is_infill must be a boolean"));
    }
    let whole = uuid();
    sim.register_file(&whole);
    Ok(success(json!(clip_task(&sim, "/suno/submit/concat", "Full song", &[whole]))))
}

/// `POST /suno/persona/create` `{"root_clip_id", "name", …}` -> `{persona_id}`.
pub(crate) async fn persona(State(sim): State<Arc<Sim>>, bytes: Bytes) -> Result<Response, Response> {
    let body = body(&bytes)?;
    let (clip, name) = (str_field(&body, "root_clip_id"), str_field(&body, "name"));
    if clip.is_empty() || name.is_empty() {
        return Err(bad("root_clip_id and name are required"));
    }
    if !sim.has_file(clip) {
        return Err(no_clip(clip));
    }
    let id = format!("persona-{}", uuid());
    // Known ids live in the files set; a persona id is checked there by `music_extras`.
    sim.register_file(&id);
    Ok(success(json!({"persona_id": id, "name": name})))
}

/// `GET /suno/act/wav/{clip_id}`: the WAV's URL, at once.
pub(crate) async fn wav(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(clip): Path<String>,
) -> Response {
    if !sim.has_file(&clip) {
        return no_clip(&clip);
    }
    success(json!(file_url(&base_url(&headers, &sim), &clip, "audio.wav")))
}

/// `GET /suno/act/mp4/{clip_id}`: a task id; the task's clip carries the `video_url`.
pub(crate) async fn mp4(State(sim): State<Arc<Sim>>, Path(clip): Path<String>) -> Response {
    if !sim.has_file(&clip) {
        return no_clip(&clip);
    }
    success(json!(clip_task(&sim, "/suno/act/mp4", "Music video", &[clip])))
}

/// `POST /udio/submit/music` `{prompt, …}`: a task on Suno's conventions [I], two songs.
pub(crate) async fn udio_submit(State(sim): State<Arc<Sim>>, bytes: Bytes) -> Result<Response, Response> {
    let body = body(&bytes)?;
    let prompt = str_field(&body, "prompt");
    if prompt.is_empty() {
        return Err(bad("prompt is required"));
    }
    let songs = [uuid(), uuid()];
    for song in &songs {
        sim.register_file(song);
    }
    Ok(success(json!(clip_task(&sim, "/udio/submit/music", prompt, &songs))))
}

/// `GET /udio/fetch/{id}`: the task as Suno's fetch renders it.
pub(crate) async fn udio_fetch(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match suno_task(&sim, &id).filter(|t| t.params["route"] == "/udio/submit/music") {
        Some(task) => success(render(&sim, &task, &base_url(&headers, &sim))),
        None => error(StatusCode::NOT_FOUND, "task_not_exist", "task_not_exist"),
    }
}
