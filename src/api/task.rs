//! Submit-then-poll, once for every task family, driven by a [`TaskSpec`]: take a call from
//! the budget, submit, record the task id (or, resuming, take the one recorded), then poll with a growing wait until the task
//! reaches a terminal status, reporting the provider's progress on the way.
//!
//! It owns the task lifecycle; it must not know any family's field names (they are data)
//! nor shape a step's outputs. A poll that fails for good fails the step; it never submits
//! again, since the task may already be paid for.

use reqwest::Method;
use serde_json::Value as Json;

use super::retry::Call;
use super::{errors, Api, ApiError, Payload};
use crate::catalog::{pick, scalar, TaskSpec};
use crate::contract::{StepCtx, StepError};

/// A task that reached a success status.
#[derive(Debug, Clone)]
pub(crate) struct Finished {
    pub task_id: String,
    pub status: String,
    /// The last fetch answer, whole.
    pub result: Json,
}

/// Submits `body` and polls until the task succeeds; a failed task is an error carrying
/// the provider's reason verbatim.
pub(crate) async fn run(
    api: &Api,
    ctx: &StepCtx,
    spec: &TaskSpec,
    body: &Json,
) -> Result<Finished, StepError> {
    run_with(api, ctx, spec, &spec.submit.path, &Payload::Json(body.clone())).await
}

/// [`run`] with the submit path filled in by the caller (`{model}` placeholders) and any payload.
pub(crate) async fn run_with(
    api: &Api,
    ctx: &StepCtx,
    spec: &TaskSpec,
    path: &str,
    payload: &Payload,
) -> Result<Finished, StepError> {
    api.key()?;
    let (task_id, answer) = match ctx.resumed_task() {
        // Submitted before the run was interrupted: poll it, neither charged nor paid again.
        Some(id) => {
            ctx.progress(format!("resuming task {id}"));
            (id.to_owned(), Json::Null)
        }
        // Never submit (and pay) once the run is being interrupted.
        None if ctx.cancel.is_cancelled() => return Err(StepError::fatal("cancelled before submitting")),
        None => submit(api, ctx, spec, path, payload).await?,
    };
    let mut done = match &spec.fetch {
        // Synchronous, or the answer already holds the result's URL.
        _ if is_url(&task_id) => Finished { task_id: String::new(), status: String::new(), result: answer },
        None => Finished { task_id, status: String::new(), result: answer },
        Some(_) => poll(api, ctx, spec, &task_id).await?,
    };
    if let Some(then) = &spec.then {
        let value = pick(&done.result, &then.from).and_then(scalar).unwrap_or_default();
        let path = then.path.replace("{value}", &value);
        let answer = api
            .call(Call::Read, Method::GET, &path, &headers(spec), &Payload::None)
            .await
            .map_err(|e| poll_failed(spec, &done.task_id, &e))?;
        if let Json::Object(m) = &mut done.result {
            m.insert("then".into(), answer);
        }
    }
    Ok(done)
}

fn is_url(text: &str) -> bool {
    text.starts_with("http://") || text.starts_with("https://")
}

fn headers(spec: &TaskSpec) -> Vec<(String, String)> {
    spec.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn method(name: &str) -> Result<Method, StepError> {
    Method::from_bytes(name.trim().to_ascii_uppercase().as_bytes())
        .map_err(|_| StepError::fatal(format!("`{name}` is not an HTTP method; write e.g. `method: POST`")))
}

async fn submit(
    api: &Api,
    ctx: &StepCtx,
    spec: &TaskSpec,
    path: &str,
    payload: &Payload,
) -> Result<(String, Json), StepError> {
    let method = method(&spec.submit.method)?;
    ctx.charge_call()?;
    let payload = if method == Method::GET { &Payload::None } else { payload };
    let answer = api.call(Call::Submit, method, path, &headers(spec), payload).await?;
    if let Some(message) = envelope_error(spec, &answer) {
        return Err(StepError::fatal(format!(
            "{} refused the task at `{}`: {}; fix the step's `with` fields",
            spec.family,
            super::path_of(path),
            api.redact(&message)
        )));
    }
    if spec.fetch.is_none() {
        let id = pick(&answer, &spec.id).and_then(scalar).unwrap_or_default();
        return Ok((id, answer));
    }
    let id = pick(&answer, &spec.id).and_then(scalar).ok_or_else(|| {
        StepError::fatal(format!(
            "the answer of `{}` has no task id at `{}`: {}; the task may exist, check your CometAPI logs",
            super::path_of(path),
            spec.id,
            errors::snippet(answer.to_string().as_bytes())
        ))
    })?;
    // A URL is the result itself (Suno's `wav`/`mp4` [I]): no task to resume.
    if !is_url(&id) {
        ctx.task_submitted(&spec.family, &id);
    }
    Ok((id, answer))
}

/// Polls `spec.fetch` for `task_id` until a terminal status.
pub(crate) async fn poll(
    api: &Api,
    ctx: &StepCtx,
    spec: &TaskSpec,
    task_id: &str,
) -> Result<Finished, StepError> {
    let Some(fetch) = &spec.fetch else {
        return Err(StepError::fatal(format!(
            "{} tasks cannot be polled; this is a cometflow bug",
            spec.family
        )));
    };
    let method = method(&fetch.method)?;
    let path = fetch.path.replace("{id}", task_id);
    let headers = headers(spec);
    let (first, max) = (ctx.poll.interval, ctx.poll.max_interval.max(ctx.poll.interval));
    let mut wait = first;
    let mut unseen = 0u32;
    let mut last_progress = String::new();
    loop {
        // An interrupted run stops polling here; the task id is already on record, so a
        // resume picks the task up again without paying twice.
        tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => {
                return Err(StepError::fatal(format!("cancelled while waiting for task {task_id}")));
            }
            _ = tokio::time::sleep(wait) => {}
        }
        wait = wait.mul_f64(1.5).min(max);
        let answer = match api.call(Call::Read, method.clone(), &path, &headers, &Payload::None).await {
            Ok(answer) => answer,
            // A young task the provider has not registered yet: still pending.
            Err(e) if unseen < 10 && is_pending(spec, &e) => {
                unseen += 1;
                continue;
            }
            Err(e) => return Err(poll_failed(spec, task_id, &e)),
        };
        if let Some(message) = envelope_error(spec, &answer) {
            if unseen < 10 && spec.pending_errors.iter().any(|p| message.contains(p.as_str())) {
                unseen += 1;
                continue;
            }
            let e = ApiError { message: api.redact(&message), said: None };
            return Err(poll_failed(spec, task_id, &e));
        }
        let status = pick(&answer, &spec.status).and_then(scalar).unwrap_or_default();
        let progress = spec.progress.as_deref().and_then(|p| pick(&answer, p)).and_then(scalar);
        let shown = match progress {
            Some(p) if !p.is_empty() => format!("{status} {p}"),
            _ => status.clone(),
        };
        if !shown.is_empty() && shown != last_progress {
            ctx.progress(shown.clone());
            last_progress = shown;
        }
        if one_of(&spec.success, &status) {
            ctx.task_ended(task_id, true);
            return Ok(Finished { task_id: task_id.to_owned(), status, result: answer });
        }
        if one_of(&spec.failure, &status) {
            // Only now is the task known to be lost: a resume may submit a new one.
            ctx.task_ended(task_id, false);
            let reason = spec
                .error
                .as_deref()
                .and_then(|p| pick(&answer, p))
                .and_then(scalar)
                .unwrap_or_else(|| "no reason given".to_owned());
            return Err(StepError::fatal(format!(
                "{} task {task_id} failed ({status}): {}; change the step's inputs (e.g. the prompt) and run again",
                spec.family,
                api.redact(&reason)
            )));
        }
    }
}

fn one_of(values: &[String], status: &str) -> bool {
    values.iter().any(|v| v.eq_ignore_ascii_case(status))
}

fn is_pending(spec: &TaskSpec, e: &ApiError) -> bool {
    let said = e.said.as_ref();
    spec.pending_errors.iter().any(|p| {
        said.is_some_and(|s| s.code == *p || s.message.contains(p.as_str())) || e.message.contains(p.as_str())
    })
}

fn poll_failed(spec: &TaskSpec, task_id: &str, e: &ApiError) -> StepError {
    StepError::fatal(format!(
        "polling {} task {task_id} failed: {}; the task was not submitted again since it may be paid for: \
         look it up by its id in your CometAPI logs before re-running",
        spec.family, e.message
    ))
}

/// The family envelope's complaint, when an answer carries the marker with a bad value.
pub(crate) fn envelope_error(spec: &TaskSpec, answer: &Json) -> Option<String> {
    let env = spec.envelope.as_ref()?;
    let value = crate::catalog::lookup(answer, &env.field)?;
    let ok = env
        .ok
        .iter()
        .any(|ok| ok == value || scalar(ok).is_some_and(|o| scalar(value).as_deref() == Some(o.as_str())));
    if ok {
        return None;
    }
    let message = env.message.as_deref().and_then(|m| pick(answer, m)).and_then(scalar).unwrap_or_default();
    Some(format!("{message} (`{}` = {value})", env.field))
}
