//! One step from start to record: `if`, `for_each` fan-out, rendering, limits, retries
//! with backoff, timeouts and cancellation. The kind itself only sees `execute`.

use std::time::{Duration, Instant};

use futures::future::join_all;
use jiff::Timestamp;
use minijinja::value::Value;
use serde_json::Value as Json;

use super::events::{Event, Status};
use super::record::StepRecord;
use super::Shared;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;

use crate::contract::{secrets, ErrorKind, StepCtx, StepError, StepKind, UnknownSubmit};
use crate::model::{human_duration, Cond, Step, StepIdx};
use crate::template::eval_condition;

/// The end of one execution (one step, or one `for_each` item).
struct Outcome {
    status: Status,
    outputs: Json,
    error: Option<String>,
    attempts: u32,
    /// When the first attempt got its slot: waiting for a slot is not running.
    started: Option<(Timestamp, Instant)>,
    /// Answered from the cache: no call was made.
    cached: bool,
    /// It failed because the environment could not run it (no key, an unwritable folder).
    environment: bool,
}

impl Outcome {
    fn failed(message: String) -> Self {
        Outcome {
            status: Status::Failed,
            outputs: Json::Object(Default::default()),
            error: Some(secrets::redact(&message).into_owned()),
            attempts: 0,
            started: None,
            cached: false,
            environment: false,
        }
    }

    fn at(mut self, started: Option<(Timestamp, Instant)>) -> Self {
        self.started = started;
        self
    }
}

pub(super) async fn run_step(shared: &Shared, idx: StepIdx) -> StepRecord {
    let step = &shared.plan.pipeline.steps[idx];
    let outcome = run(shared, idx, step).await;
    record_of(shared, step, &outcome)
}

fn record_of(shared: &Shared, step: &Step, outcome: &Outcome) -> StepRecord {
    let finished_at = Timestamp::now();
    let (started_at, clock) = match outcome.started {
        Some((at, clock)) => (Some(at), clock.elapsed()),
        None => (None, Duration::ZERO),
    };
    StepRecord {
        status: outcome.status,
        kind: step.uses.clone(),
        attempts: outcome.attempts,
        cached: outcome.cached,
        started_at: started_at.or(Some(finished_at)),
        finished_at: Some(finished_at),
        duration_ms: clock,
        outputs: outcome.outputs.clone(),
        error: outcome.error.clone(),
        needs: super::needs_of(&shared.plan.pipeline, step),
        environment: outcome.environment,
    }
}

async fn run(shared: &Shared, idx: StepIdx, step: &Step) -> Outcome {
    match &step.cond {
        Some(Cond::Const(false)) => return skipped("`if` is false"),
        Some(Cond::Expr(expr)) => match eval_condition(expr, &shared.scope_value) {
            Ok(true) => {}
            Ok(false) => return skipped(&format!("`if: {expr}` is false")),
            Err(e) => return Outcome::failed(format!("`if`: {e}")),
        },
        _ => {}
    }
    let Some(for_each) = &step.for_each else {
        return run_unit(shared, idx, step, None, shared.scope_value.clone()).await;
    };
    let items = match for_each.render(&shared.scope_value) {
        Ok(Json::Array(items)) => items,
        Ok(other) => return Outcome::failed(format!("`for_each` must give a list, but gave {other}")),
        Err(e) => return Outcome::failed(format!("`for_each`: {e}")),
    };
    let units = items.iter().enumerate().map(|(i, item)| {
        let scope = shared.scope.with_item(item, i);
        run_unit(shared, idx, step, Some(i), scope)
    });
    let results = join_all(units).await;
    let attempts = results.iter().map(|o| o.attempts).max().unwrap_or(0);
    let started = results.iter().filter_map(|o| o.started).min_by_key(|(_, clock)| *clock);
    let cached = !results.is_empty() && results.iter().all(|o| o.cached);
    let environment = results.iter().any(|o| o.environment);
    let failures: Vec<String> = results
        .iter()
        .enumerate()
        .filter_map(|(i, o)| {
            o.error.as_ref().filter(|_| o.status != Status::Succeeded).map(|e| format!("item {i}: {e}"))
        })
        .collect();
    let status = if results.iter().any(|o| o.status == Status::Cancelled) {
        Status::Cancelled
    } else if failures.is_empty() {
        Status::Succeeded
    } else {
        Status::Failed
    };
    Outcome {
        status,
        outputs: Json::Array(results.into_iter().map(|o| o.outputs).collect()),
        error: (!failures.is_empty()).then(|| failures.join("; ")),
        attempts,
        started,
        cached,
        environment,
    }
}

fn skipped(reason: &str) -> Outcome {
    Outcome {
        status: Status::Skipped,
        outputs: Json::Object(Default::default()),
        error: Some(reason.into()),
        attempts: 0,
        started: None,
        cached: false,
        environment: false,
    }
}

/// One execution, journaled when it ends whatever the end.
async fn run_unit(shared: &Shared, idx: StepIdx, step: &Step, item: Option<usize>, scope: Value) -> Outcome {
    let key = (step.id.clone(), item);
    if let Some(done) = shared.prior.units.get(&key) {
        // Resuming: this execution succeeded before the interruption.
        return Outcome {
            status: Status::Succeeded,
            outputs: done.outputs.clone(),
            error: None,
            attempts: done.attempts,
            started: None,
            cached: done.cached,
            environment: false,
        };
    }
    let outcome = execute_unit(shared, idx, step, item, scope).await;
    shared.journal.unit_finished(&step.id, item, &record_of(shared, step, &outcome));
    if item.is_some() && step.kind.spec().paid && outcome.attempts > 0 {
        // A paid result is never left waiting in memory (a whole step's is flushed when
        // the walker records it).
        shared.journal.flush(false);
    }
    outcome
}

/// Renders `with`, answers from the cache when it can, else attempts the kind until it
/// succeeds, fails for good, or is cancelled.
async fn execute_unit(
    shared: &Shared,
    idx: StepIdx,
    step: &Step,
    item: Option<usize>,
    scope: Value,
) -> Outcome {
    let rendered = if step.with.has_blocks() {
        // A loop may run until its fuel is spent: not on the engine's threads, and Ctrl-C
        // does not wait for it.
        let (tmpl, scope) = (step.with.clone(), scope.clone());
        let job = tokio::task::spawn_blocking(move || tmpl.render(&scope));
        tokio::select! {
            r = job => r.unwrap_or_else(|e| Err(crate::template::RenderError {
                path: Vec::new(),
                message: format!("rendering stopped: {e}"),
            })),
            _ = shared.cancel.cancelled() => return cancelled(0),
        }
    } else {
        step.with.render(&scope)
    };
    let mut with = match rendered {
        Ok(w) => w,
        Err(e) => return Outcome::failed(format!("with.{e}")),
    };
    // What a template rendered is checked like what was written: the kind never sees a
    // value its spec refuses.
    if let Err(e) = step.kind.spec().check(&with) {
        return Outcome::failed(format!("{}; fix the template or the step it reads", e.message));
    }
    let step_dir = match item {
        Some(i) => shared.run_dir.join(&step.id).join(i.to_string()),
        None => shared.run_dir.join(&step.id),
    };
    let cache = shared.cache.as_ref().filter(|_| step.cache);
    let cache_key = cache.and_then(|c| c.key(&step.uses, &with, &shared.pipeline_dir));
    if let (Some(cache), Some(k)) = (cache, &cache_key) {
        if let Some(outputs) = cache.lookup(k, &step_dir) {
            let _ = shared.events.send(Event::Started { step: idx, item });
            let started = Some((Timestamp::now(), Instant::now()));
            return Outcome {
                status: Status::Succeeded,
                outputs,
                error: None,
                attempts: 0,
                started,
                cached: true,
                environment: false,
            };
        }
    }
    let resumed_task = shared.prior.tasks.get(&(step.id.clone(), item)).cloned();
    let unknown_submit = shared
        .prior
        .unknown
        .get(&(step.id.clone(), item))
        .map(|sent_at| UnknownSubmit { sent_at: sent_at.clone(), resubmit: shared.prior.resubmit_unknown });
    let family = shared.families.get(step.family());
    let fleet_limit = shared.plan.pipeline.limits.get(step.family()).and_then(|l| l.concurrency);
    let mut started = None;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let permits = tokio::select! {
            // Cancellation first: once interrupted, no new attempt may start (and pay).
            biased;
            _ = shared.cancel.cancelled() => return cancelled(attempt - 1).at(started),
            p = async {
                let family_permit = match family { Some(f) => f.acquire().await, None => None };
                let fleet_slot = match (&shared.fleet, fleet_limit) {
                    (Some(fleet), Some(n)) => fleet.acquire(step.family(), n).await,
                    _ => None,
                };
                // The run's semaphore is never closed, so acquiring cannot fail.
                let slot = shared.slots.clone().acquire_owned().await.ok();
                (family_permit, fleet_slot, slot)
            } => p,
        };
        if started.is_none() {
            started = Some((Timestamp::now(), Instant::now()));
            let _ = shared.events.send(Event::Started { step: idx, item });
        }
        let ctx = StepCtx {
            run_id: shared.run_id.clone(),
            step: idx,
            step_id: step.id.as_str().into(),
            item,
            attempt,
            pipeline_dir: shared.pipeline_dir.clone(),
            step_dir: step_dir.clone(),
            run_dir: shared.run_dir.clone(),
            cancel: shared.cancel.child_token(),
            poll: step.poll,
            timeout: step.timeout,
            events: shared.sink.clone(),
            budget: shared.budget.clone(),
            journal: shared.journal.clone(),
            resumed_task: resumed_task.clone(),
            unknown_submit: unknown_submit.clone(),
        };
        // The last attempt can have the rendered input itself; earlier ones need a copy.
        let input = if attempt < step.retry.attempts { with.clone() } else { std::mem::take(&mut with) };
        let result = attempt_once(shared, step, &ctx, input).await;
        drop(permits);
        let err = match result {
            Ok(outputs) => {
                shared.journal.attempt_finished(&step.id, item, attempt, None);
                if let (Some(cache), Some(k)) = (cache, &cache_key) {
                    cache.store(k, &step.uses, &step_dir, &outputs);
                }
                return Outcome {
                    status: Status::Succeeded,
                    outputs,
                    error: None,
                    attempts: attempt,
                    started,
                    cached: false,
                    environment: false,
                };
            }
            Err(Attempt::Cancelled) => {
                shared.journal.attempt_finished(&step.id, item, attempt, Some("cancelled"));
                return cancelled(attempt).at(started);
            }
            Err(Attempt::Failed(e)) => e,
        };
        shared.journal.attempt_finished(&step.id, item, attempt, Some(&err.message));
        if !err.retryable || attempt >= step.retry.attempts {
            let outputs = err.outputs.unwrap_or_else(|| Json::Object(Default::default()));
            let message =
                if attempt > 1 { format!("{} (after {attempt} attempts)", err.message) } else { err.message };
            return Outcome {
                status: Status::Failed,
                outputs,
                error: Some(message),
                attempts: attempt,
                started,
                cached: false,
                environment: err.kind == ErrorKind::Environment,
            };
        }
        // A server's `Retry-After` wins over the step's own backoff.
        let delay = err.retry_after.unwrap_or_else(|| step.retry.delay(attempt));
        let _ = shared.events.send(Event::Retrying { step: idx, item, attempt, delay, error: err.message });
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shared.cancel.cancelled() => return cancelled(attempt).at(started),
        }
    }
}

enum Attempt {
    Failed(StepError),
    Cancelled,
}

/// One attempt, its outputs and error cleared of secrets: the one door through which what a
/// kind produced reaches the cache, the store, templates, reporters and `run.json`.
async fn attempt_once(shared: &Shared, step: &Step, ctx: &StepCtx, input: Json) -> Result<Json, Attempt> {
    match attempt_raw(shared, step, ctx, input).await {
        Ok(mut outputs) => {
            secrets::redact_json(&mut outputs);
            Ok(outputs)
        }
        Err(Attempt::Failed(mut e)) => {
            e.message = secrets::redact(&e.message).into_owned();
            if let Some(o) = e.outputs.as_mut() {
                secrets::redact_json(o);
            }
            Err(Attempt::Failed(e))
        }
        Err(Attempt::Cancelled) => Err(Attempt::Cancelled),
    }
}

async fn attempt_raw(shared: &Shared, step: &Step, ctx: &StepCtx, input: Json) -> Result<Json, Attempt> {
    let timed = async {
        match &shared.dispatch {
            // Pure steps stay with the walk: sending them away would cost more than they do.
            Some(dispatch) if !step.kind.spec().pure => {
                dispatch.attempt(step.kind.as_ref(), &step.uses, ctx, input).await
            }
            _ => attempt_here(step.kind.as_ref(), &step.uses, ctx, input).await,
        }
    };
    tokio::pin!(timed);
    tokio::select! {
        biased;
        // A kind that stopped because the run was interrupted was cancelled, not failed.
        r = &mut timed => r.map_err(|e| if shared.cancel.is_cancelled() { Attempt::Cancelled } else { Attempt::Failed(e) }),
        _ = shared.cancel.cancelled() => {
            // The kind sees the same cancellation through `ctx.cancel` and stops at its next
            // safe point; a provider submit already on the wire is let finish, so its task
            // id is recorded and a resume polls it instead of paying again. Only a kind that
            // does not stop within the grace period is dropped.
            match tokio::time::timeout(CANCEL_GRACE, &mut timed).await {
                Ok(Ok(outputs)) => Ok(outputs),
                _ => Err(Attempt::Cancelled),
            }
        }
    }
}

/// One attempt of `kind` in this process, under `ctx.timeout`. A kind that panics fails
/// its step; the run goes on and its record is still written.
pub async fn attempt_here(
    kind: &dyn StepKind,
    uses: &str,
    ctx: &StepCtx,
    input: Json,
) -> Result<Json, StepError> {
    let run = AssertUnwindSafe(kind.execute(ctx, input)).catch_unwind().map(|r| {
        r.unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(StepError::fatal(format!(
                "the `{uses}` step stopped on an internal error ({what}); this is a cometflow bug, please report it"
            )))
        })
    });
    match ctx.timeout {
        Some(limit) => tokio::time::timeout(limit, run).await.unwrap_or_else(|_| {
            Err(StepError {
                retryable: kind.spec().idempotent,
                ..StepError::fatal(format!("timed out after {}", human_duration(limit)))
                    .kind(ErrorKind::Timeout)
            })
        }),
        None => run.await,
    }
}

/// How long an interrupted step may take to stop by itself before it is dropped.
pub const CANCEL_GRACE: Duration = Duration::from_secs(15);

fn cancelled(attempts: u32) -> Outcome {
    Outcome {
        status: Status::Cancelled,
        outputs: Json::Object(Default::default()),
        error: Some("cancelled".into()),
        attempts,
        started: None,
        cached: false,
        environment: false,
    }
}
