//! Submit-then-poll, once for every task family, driven by a [`TaskSpec`]: take a call from
//! the budget, submit, record the task id (or, resuming, take the one recorded), then poll with a growing wait until the task
//! reaches a terminal status, reporting the provider's progress on the way.
//!
//! It owns the task lifecycle; it must not know any family's field names (they are data)
//! nor shape a step's outputs. A poll that fails for good fails the step; it never submits
//! again, since the task may already be paid for.
//!
//! The submit window: the intent is recorded before a submit leaves, and cleared only when
//! the answer proves what happened (a task id, or a refusal that created nothing). A submit
//! left in between (the process died, the answer was lost) is not sent again on resume
//! unless the user says so (`--resubmit-unknown`): it may have been charged.
//!
//! No task is polled forever: the step's `timeout:` or the family's `deadline` (catalog)
//! bounds the wait, and the message then names the task, its last status and how to resume.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value as Json;
use tokio::time::Instant;

use super::retry::Call;
use super::{errors, Api, ApiError, Payload};
use crate::catalog::{pick, scalar, TaskSpec};
use crate::contract::{ErrorKind, StepCtx, StepError, Stream};

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
    let began = Instant::now();
    let (task_id, answer) = match ctx.resumed_task() {
        // Submitted before the run was interrupted: poll it, neither charged nor paid again.
        Some(id) => {
            ctx.progress(format!("resuming task {id}"));
            (id.to_owned(), Json::Null)
        }
        // Never submit (and pay) once the run is being interrupted.
        None if ctx.cancel.is_cancelled() => return Err(StepError::fatal("cancelled before submitting")),
        // Sent before an interruption, its answer never recorded: it may have been paid for.
        None if spec.fetch.is_some() && ctx.unknown_submit.as_ref().is_some_and(|u| !u.resubmit) => {
            return Err(unknown_submit(ctx, spec));
        }
        None => submit(api, ctx, spec, path, payload).await?,
    };
    let mut done = match &spec.fetch {
        // Synchronous, or the answer already holds the result's URL.
        _ if is_url(&task_id) => Finished { task_id: String::new(), status: String::new(), result: answer },
        None => Finished { task_id, status: String::new(), result: answer },
        Some(_) => poll(api, ctx, spec, &task_id, deadline(ctx, spec, began)).await?,
    };
    // A follow-up read, when the answer names what to read (a wrapped answer may already
    // hold the result itself).
    let then = spec.then.as_ref().and_then(|t| Some((t, pick(&done.result, &t.from).and_then(scalar)?)));
    if let Some((then, value)) = then {
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
    let tracked = spec.fetch.is_some();
    if tracked {
        // Durable before the request leaves: a crash from here on leaves the intent to see.
        ctx.submit_intent(&spec.family).await;
        // Recording it may have found the run taken over or interrupted: then never pay.
        if ctx.cancel.is_cancelled() {
            ctx.submit_settled();
            return Err(StepError::fatal("cancelled before submitting"));
        }
    }
    let answer = match api.call(Call::Submit, method, path, &headers(spec), payload).await {
        Ok(answer) => answer,
        Err(e) => {
            if tracked && !e.maybe_created {
                // Refused before it was accepted: nothing was created, nothing is pending.
                ctx.submit_settled();
            }
            return Err(e.into());
        }
    };
    if let Some(message) = envelope_error(spec, &answer) {
        if tracked {
            ctx.submit_settled();
        }
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
    // Without an id the intent stays: the task may exist, and a resume must not pay again silently.
    let id = pick(&answer, &spec.id).and_then(scalar).ok_or_else(|| {
        StepError::fatal(format!(
            "the answer of `{}` has no task id at `{}`: {}; the task may exist, check your CometAPI logs",
            super::path_of(path),
            spec.id,
            errors::snippet(answer.to_string().as_bytes())
        ))
    })?;
    // A URL is the result itself (Suno's `wav`/`mp4` [I]): no task to resume.
    if is_url(&id) {
        ctx.submit_settled();
    } else {
        ctx.task_submitted(&spec.family, &id).await;
    }
    Ok((id, answer))
}

/// Polls `spec.fetch` for `task_id` until a terminal status, or until `deadline`.
pub(crate) async fn poll(
    api: &Api,
    ctx: &StepCtx,
    spec: &TaskSpec,
    task_id: &str,
    deadline: (Instant, Duration),
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
    // A young task the provider has not registered yet answers "not found" for a while.
    let young_until = Instant::now() + spec.grace();
    let mut watch = Watch {
        api,
        ctx,
        spec,
        task_id,
        limit: deadline.1,
        progress: String::new(),
        status: String::from("none yet"),
        unknown_said: false,
    };
    loop {
        let left = deadline.0.saturating_duration_since(Instant::now());
        // An interrupted run stops polling here; the task id is already on record, so a
        // resume picks the task up again without paying twice.
        tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => {
                return Err(StepError::fatal(format!("cancelled while waiting for task {task_id}")));
            }
            _ = tokio::time::sleep(wait.min(left)) => {}
        }
        wait = wait.mul_f64(1.5).min(max);
        let young = Instant::now() < young_until;
        match api.call(Call::Read, method.clone(), &path, &headers, &Payload::None).await {
            Ok(answer) => {
                if let Some(end) = watch.read(answer, young) {
                    return end;
                }
            }
            Err(e) if young && is_pending(spec, &e) => {}
            Err(e) => return Err(poll_failed(spec, task_id, &e)),
        }
        if Instant::now() >= deadline.0 {
            return Err(deadline_passed(ctx, spec, task_id, &watch.status, deadline.1));
        }
    }
}

/// Polling one task, and what it has seen: the progress last shown, the last status word
/// (for the deadline's message) and whether an unknown word was already logged.
struct Watch<'a> {
    api: &'a Api,
    ctx: &'a StepCtx,
    spec: &'a TaskSpec,
    task_id: &'a str,
    limit: Duration,
    progress: String,
    status: String,
    unknown_said: bool,
}

impl Watch<'_> {
    /// Reads one fetch answer: `Some` when polling is over (the task ended, or the answer
    /// is an error), `None` to keep polling.
    fn read(&mut self, answer: Json, young: bool) -> Option<Result<Finished, StepError>> {
        let (api, ctx, spec, task_id) = (self.api, self.ctx, self.spec, self.task_id);
        if let Some(message) = envelope_error(spec, &answer) {
            if young && spec.pending_errors.iter().any(|p| message.contains(p.as_str())) {
                return None;
            }
            let e = ApiError { message: api.redact(&message), said: None, maybe_created: false };
            return Some(Err(poll_failed(spec, task_id, &e)));
        }
        let status = pick(&answer, &spec.status).and_then(scalar).unwrap_or_default();
        let progress = spec.progress.as_deref().and_then(|p| pick(&answer, p)).and_then(scalar);
        let shown = match progress {
            Some(p) if !p.is_empty() => format!("{status} {p}"),
            _ => status.clone(),
        };
        if !shown.is_empty() && shown != self.progress {
            ctx.progress(shown.clone());
            self.progress = shown;
        }
        if one_of(&spec.success, &status) {
            ctx.task_ended(task_id, true);
            return Some(Ok(Finished { task_id: task_id.to_owned(), status, result: answer }));
        }
        if one_of(&spec.failure, &status) {
            // Only now is the task known to be lost: a resume may submit a new one.
            ctx.task_ended(task_id, false);
            return Some(Err(task_failed(api, spec, task_id, &status, &answer)));
        }
        if !self.unknown_said && !spec.running.is_empty() && !one_of(&spec.running, &status) {
            // Not a word this family is known to use: keep waiting, say so once.
            self.unknown_said = true;
            let said = if status.is_empty() { "no status".to_owned() } else { format!("status `{status}`") };
            ctx.log(
                Stream::Stderr,
                format!(
                    "{} task {task_id} answered {said}, which cometflow does not know; treating it as \
                     still running until the deadline ({})",
                    spec.family,
                    crate::engine::human_duration(self.limit)
                ),
            );
        }
        if !status.is_empty() {
            self.status = status;
        }
        None
    }
}

/// When polling must give up: the step's `timeout:` (a moment before the engine's own
/// timer, so this message with the task id is the one reported), else the family's default.
fn deadline(ctx: &StepCtx, spec: &TaskSpec, began: Instant) -> (Instant, Duration) {
    match ctx.timeout {
        Some(limit) => {
            let margin = (limit / 20).min(Duration::from_secs(1));
            (began + limit.saturating_sub(margin), limit)
        }
        None => {
            let limit = spec.deadline();
            (Instant::now() + limit, limit)
        }
    }
}

fn deadline_passed(
    ctx: &StepCtx,
    spec: &TaskSpec,
    task_id: &str,
    status: &str,
    limit: Duration,
) -> StepError {
    StepError::fatal(format!(
        "{} task {task_id} did not finish within {} (last status: {status}); it may still finish and is \
         paid for, so it is kept: resume with `cometflow run PIPELINE --resume {}` to keep polling it, or \
         look it up by its id in your CometAPI logs; set the step's `timeout:` to wait longer",
        spec.family,
        crate::engine::human_duration(limit),
        ctx.run_id
    ))
    .kind(ErrorKind::Timeout)
}

fn task_failed(api: &Api, spec: &TaskSpec, task_id: &str, status: &str, answer: &Json) -> StepError {
    let reason = spec
        .error
        .as_deref()
        .and_then(|p| pick(answer, p))
        .and_then(scalar)
        .unwrap_or_else(|| "no reason given".to_owned());
    StepError::fatal(format!(
        "{} task {task_id} failed ({status}): {}; change the step's inputs (e.g. the prompt) and run again",
        spec.family,
        api.redact(&reason)
    ))
}

/// The step stops rather than paying again for a submit whose fate is unknown.
fn unknown_submit(ctx: &StepCtx, spec: &TaskSpec) -> StepError {
    let when = ctx.unknown_submit.as_ref().map_or("", |u| u.sent_at.as_str());
    StepError::fatal(format!(
        "step `{}` sent a {} submit at {when} but its task id was never recorded (the run was interrupted \
         before the answer came); the task may exist and may have been charged, so it was not sent again: \
         look for it in your CometAPI logs, then resume with `cometflow run PIPELINE --resume {} \
         --resubmit-unknown` to pay for a new one",
        ctx.step_id, spec.family, ctx.run_id
    ))
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
