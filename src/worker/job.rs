//! One attempt of a step, carried between the worker that holds a run and the worker that
//! runs the attempt: the wire format of a step job, the holder's side (`Fleet`, the engine's
//! `Dispatch`) and the runner's (`run_job`).
//!
//! The holder queues the attempt with the rendered input and all the attempt needs, then
//! waits for its result. Any worker claims it, runs the kind under its own lease, timeout
//! and the run's cancellation, and writes the result back. Paid calls are charged to the
//! run's `budget.calls` by the holder, which reserves one call before the attempt leaves
//! and settles with what was really paid; a submitted task is recorded under the job's own
//! fence, so a worker that takes the job over polls it instead of paying again.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use tokio_util::sync::CancellationToken;

use super::{CANCELLED, HANDED_BACK, LOST, RUNNING};
use crate::contract::{
    secrets, Budget, ErrorKind, Event, EventSink, PollPolicy, StepCtx, StepError, StepKind, UnknownSubmit,
};
use crate::engine::hooks::Dispatch;
use crate::engine::unit::{attempt_here, CANCEL_GRACE};
use crate::steps::Registry;
use crate::store::pg::jobs::{self, JobClaim, NewJob};
use crate::store::pg::journal::PgJournal;
use crate::store::pg::paths;
use crate::store::pg::queue::Signals;
use crate::store::pg::Pg;

/// What a step job carries besides its kind: everything the attempt needs on another machine.
/// Paths under the artifacts folder are stored relative to it (machines mount it anywhere).
#[derive(Debug, Serialize, Deserialize)]
struct Job {
    input: Json,
    pipeline_dir: String,
    step_dir: String,
    run_dir: String,
    timeout_ms: Option<u64>,
    poll_ms: (u64, u64),
    /// `budget.calls` of the run, and how many calls this attempt may make (0 or 1).
    budget: Option<(u64, u64)>,
    resumed_task: Option<String>,
    unknown_submit: Option<(String, bool)>,
}

/// How an attempt ended, as its runner writes it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "end", rename_all = "snake_case")]
enum Answer {
    Succeeded {
        outputs: Json,
        paid: u64,
    },
    Failed {
        message: String,
        kind: ErrorKind,
        retryable: bool,
        retry_after_ms: Option<u64>,
        outputs: Option<Json>,
        paid: u64,
    },
    /// The run was cancelled or ended while the attempt ran.
    Cancelled {
        paid: u64,
    },
}

/// The holder's side: sends attempts of steps with effects to the fleet's step queue.
pub(super) struct Fleet {
    pub pg: Arc<Pg>,
    pub run_id: String,
    pub epoch: i64,
    pub signals: Arc<Signals>,
    /// Why the held run stops (see the worker's constants): only a cancelled run waits for
    /// its attempts to stop; a run handed back or lost leaves them to its next holder.
    pub why: Arc<AtomicU8>,
    pub stop: CancellationToken,
}

/// How often a holder looks at a job it waits for, should a notice be missed.
const LOOK_AGAIN: Duration = Duration::from_secs(5);

impl Dispatch for Fleet {
    fn attempt<'a>(
        &'a self,
        kind: &'a dyn StepKind,
        uses: &'a str,
        ctx: &'a StepCtx,
        input: Json,
    ) -> BoxFuture<'a, Result<Json, StepError>> {
        Box::pin(async move {
            let root = &self.pg.artifacts;
            // One call is taken from the budget before the attempt leaves, and settled with
            // what it really paid: attempts on many machines never overspend together.
            let limit = ctx.budget.limit;
            let reserved = u64::from(kind.spec().paid && limit.is_some() && ctx.budget.charge().is_ok());
            let job = Job {
                input: paths::store(&input, root),
                pipeline_dir: ctx.pipeline_dir.display().to_string(),
                step_dir: paths::store_str(&ctx.step_dir.display().to_string(), root),
                run_dir: paths::store_str(&ctx.run_dir.display().to_string(), root),
                timeout_ms: ctx.timeout.map(|t| t.as_millis() as u64),
                poll_ms: (ctx.poll.interval.as_millis() as u64, ctx.poll.max_interval.as_millis() as u64),
                budget: limit.map(|l| (l, reserved)),
                resumed_task: ctx.resumed_task.clone(),
                unknown_submit: ctx.unknown_submit.as_ref().map(|u| (u.sent_at.clone(), u.resubmit)),
            };
            let job = serde_json::to_string(&job).unwrap_or_default();
            let new = NewJob {
                run_id: &self.run_id,
                epoch: self.epoch,
                step: &ctx.step_id,
                item: ctx.item,
                attempt: ctx.attempt,
                kind: uses,
                job: &job,
            };
            let id = match jobs::enqueue(&self.pg, &new).await {
                Ok(Some(id)) => id,
                Ok(None) => {
                    ctx.budget.settle(reserved, 0);
                    let _ = self.why.compare_exchange(RUNNING, LOST, Ordering::SeqCst, Ordering::SeqCst);
                    self.stop.cancel();
                    return Err(StepError::fatal("this worker no longer holds the run"));
                }
                Err(e) => {
                    ctx.budget.settle(reserved, 0);
                    return Err(StepError::retryable(format!("cannot queue the step for the workers: {e}"))
                        .kind(ErrorKind::Environment));
                }
            };
            let done = self.signals.watch(id);
            let mut waiting_for_stop = false;
            let text = loop {
                match jobs::result(&self.pg, id).await {
                    Ok(Some(text)) => break text,
                    Ok(None) => {}
                    Err(e) => tracing::warn!("cannot read the result of step `{}`: {e}", ctx.step_id),
                }
                tokio::select! {
                    _ = done.notified() => {}
                    _ = tokio::time::sleep(LOOK_AGAIN) => {}
                    _ = ctx.cancel.cancelled(), if !waiting_for_stop => {
                        if self.why.load(Ordering::SeqCst) != CANCELLED {
                            // Handed back or lost: the attempt goes on, and the run's next
                            // holder collects it (the reserved call stays charged: it is
                            // the next holder's to count).
                            self.signals.forget(id);
                            return Err(StepError::fatal("cancelled"));
                        }
                        // Cancelled: its runner stops it; wait for what it says.
                        waiting_for_stop = true;
                    }
                }
            };
            self.signals.forget(id);
            let answer: Answer = serde_json::from_str(&text).map_err(|e| {
                StepError::fatal(format!(
                    "the step's result is unreadable ({e}); was it written by another cometflow version?"
                ))
            })?;
            let paid = match &answer {
                Answer::Succeeded { paid, .. } | Answer::Failed { paid, .. } | Answer::Cancelled { paid } => {
                    *paid
                }
            };
            ctx.budget.settle(reserved, paid);
            match answer {
                Answer::Succeeded { outputs, .. } => Ok(paths::load(&outputs, root)),
                Answer::Failed { message, kind, retryable, retry_after_ms, outputs, .. } => Err(StepError {
                    kind,
                    message,
                    retryable,
                    retry_after: retry_after_ms.map(Duration::from_millis),
                    outputs: outputs.map(|o| paths::load(&o, root)),
                }),
                Answer::Cancelled { .. } => Err(StepError::fatal("cancelled")),
            }
        })
    }
}

/// How many times a step may be claimed: a worker that takes over a step whose workers died
/// (or could not write its result) this often fails it rather than start it again. A step
/// handed back by a worker that was stopped (a deploy) does not count.
const MAX_CLAIMS: i32 = 3;

/// Ends the steps of a cancelled run that no worker has taken yet.
pub async fn cancel_queued(pg: &Pg, run_id: &str) -> Result<u64, crate::store::StoreError> {
    let answer = serde_json::to_string(&Answer::Cancelled { paid: 0 }).unwrap_or_default();
    jobs::end_queued(pg, run_id, &answer).await
}

/// Kinds report progress to the run's holder only through the job's result.
struct Quiet;

impl EventSink for Quiet {
    fn emit(&self, _: Event) {}
}

/// The runner's side: runs one claimed attempt and writes its result (or hands it back, or
/// writes nothing when the claim was lost).
pub(super) async fn run_job(
    pg: Arc<Pg>,
    registry: Arc<Registry>,
    claim: JobClaim,
    stop: CancellationToken,
    why: Arc<AtomicU8>,
    worker: &str,
) {
    let unit = match claim.item {
        Some(i) => format!("`{}[{i}]`", claim.step),
        None => format!("`{}`", claim.step),
    };
    let finish = |answer: Answer, untasked: u64| {
        let pg = pg.clone();
        let unit = unit.clone();
        let run = claim.run_id.clone();
        async move {
            let text = serde_json::to_string(&answer).unwrap_or_default();
            match jobs::complete(&pg, claim.id, claim.fence, &text, untasked).await {
                Ok(true) => {}
                Ok(false) => eprintln!("cometflow: step {unit} of run `{run}` belongs to another worker now; nothing written"),
                Err(e) => eprintln!("warning: cannot record step {unit} of run `{run}` ({e}); another worker runs it again when the lease runs out"),
            }
        }
    };
    if claim.run_stopped {
        return finish(Answer::Cancelled { paid: 0 }, 0).await;
    }
    let job: Job = match serde_json::from_str(&claim.job) {
        Ok(j) => j,
        Err(e) => {
            return finish(
                failed(format!(
                    "the queued step is unreadable ({e}); was it queued by another cometflow version?"
                )),
                0,
            )
            .await
        }
    };
    let Some(kind) = registry.get(&claim.kind).cloned() else {
        return finish(failed(format!(
            "worker `{worker}` does not know the step kind `{}`; run the same cometflow version on every worker",
            claim.kind
        )), 0)
        .await;
    };
    if claim.claims > MAX_CLAIMS {
        // Workers keep dying on it (or cannot write its result): running it again could
        // pay again and again.
        eprintln!(
            "cometflow: step {unit} of run `{}` was started {MAX_CLAIMS} times without a result; failing it",
            claim.run_id
        );
        return finish(
            failed(format!(
                "{MAX_CLAIMS} workers started this step and stopped without a result (they died, or could not \
                 write it); it is not started again. Look at the workers' logs, then `cometflow run --resume`"
            )),
            0,
        )
        .await;
    }
    let took_over = claim.resumed;
    eprintln!(
        "cometflow: worker `{worker}` {} step {unit} of run `{}` (attempt {}, waited {} ms)",
        if took_over { "took over" } else { "runs" },
        claim.run_id,
        claim.attempt,
        claim.waited.as_millis()
    );
    let mut resumed_task = job.resumed_task;
    let resubmit = job.unknown_submit.as_ref().is_some_and(|u| u.1);
    let mut unknown_submit =
        job.unknown_submit.map(|(sent_at, resubmit)| UnknownSubmit { sent_at, resubmit });
    // Paid by the worker that died running it: the task it submitted (polled now, not paid
    // again) or the submit it sent.
    let mut paid_before = 0;
    if took_over {
        match jobs::left_behind(&pg, &claim.run_id, &claim.step, claim.item).await {
            Ok((task, sent)) => {
                if task.is_some() {
                    resumed_task = task;
                    unknown_submit = None;
                    paid_before = 1;
                } else if let Some(sent_at) = sent {
                    unknown_submit = Some(UnknownSubmit { sent_at, resubmit });
                    paid_before = 1;
                }
            }
            Err(e) => {
                eprintln!("warning: cannot read what step {unit} already did ({e}); handing it back");
                let _ = jobs::hand_back(&pg, claim.id, claim.fence).await;
                return;
            }
        }
    }
    let budget = Arc::new(match job.budget {
        Some((limit, allowed)) => Budget::spent(Some(limit), limit.saturating_sub(allowed)),
        None => Budget::new(None),
    });
    let used_before = budget.used();
    let journal = Arc::new(PgJournal::for_job(pg.clone(), &claim.run_id, claim.fence, stop.clone()));
    let root = &pg.artifacts;
    let run_dir = PathBuf::from(paths::load_str(&job.run_dir, root));
    // The pipeline's folder is where it was submitted from, which this machine may not
    // have: its commands then run in the run's folder, which every worker shares.
    let mut pipeline_dir = PathBuf::from(&job.pipeline_dir);
    if !pipeline_dir.is_dir() {
        tracing::info!(
            "`{}` is not on this machine; step {unit} runs in the run's folder",
            pipeline_dir.display()
        );
        pipeline_dir = run_dir.clone();
    }
    let ctx = StepCtx {
        run_id: claim.run_id.as_str().into(),
        step: 0,
        step_id: claim.step.as_str().into(),
        item: claim.item,
        attempt: claim.attempt,
        pipeline_dir: pipeline_dir.into(),
        step_dir: PathBuf::from(paths::load_str(&job.step_dir, root)),
        run_dir: run_dir.into(),
        cancel: stop.child_token(),
        poll: PollPolicy {
            interval: Duration::from_millis(job.poll_ms.0),
            max_interval: Duration::from_millis(job.poll_ms.1),
        },
        timeout: job.timeout_ms.map(Duration::from_millis),
        events: Arc::new(Quiet),
        budget: budget.clone(),
        journal: journal.clone(),
        resumed_task,
        unknown_submit,
    };
    let input = paths::load(&job.input, root);
    let attempt = attempt_here(kind.as_ref(), &claim.kind, &ctx, input);
    tokio::pin!(attempt);
    let result = tokio::select! {
        biased;
        r = &mut attempt => Some(r),
        // Stopping: the kind sees `ctx.cancel` and stops at its next safe point (a submit on
        // the wire is let finish, so its task id is recorded for whoever runs it next).
        _ = stop.cancelled() => tokio::time::timeout(CANCEL_GRACE, &mut attempt).await.ok(),
    };
    let paid_here = budget.used().saturating_sub(used_before);
    let paid = paid_before + paid_here;
    let untasked = paid_here.saturating_sub(journal.tasks_recorded());
    let reason = if journal.lost() { LOST } else { why.load(Ordering::SeqCst) };
    if reason == LOST {
        eprintln!(
            "cometflow: step {unit} of run `{}` belongs to another worker now; nothing written",
            claim.run_id
        );
        return;
    }
    if reason == HANDED_BACK && !matches!(result, Some(Ok(_))) {
        match jobs::hand_back(&pg, claim.id, claim.fence).await {
            Ok(true) => eprintln!("cometflow: handed back step {unit} of run `{}`", claim.run_id),
            _ => eprintln!(
                "warning: cannot hand back step {unit} of run `{}`; another worker takes it over when its lease runs out",
                claim.run_id
            ),
        }
        return;
    }
    let answer = match result {
        Some(Ok(mut outputs)) => {
            secrets::redact_json(&mut outputs);
            Answer::Succeeded { outputs: paths::store(&outputs, root), paid }
        }
        Some(Err(_)) | None if stop.is_cancelled() => Answer::Cancelled { paid },
        None => Answer::Cancelled { paid },
        Some(Err(e)) => {
            let outputs = e.outputs.map(|mut o| {
                secrets::redact_json(&mut o);
                paths::store(&o, root)
            });
            Answer::Failed {
                message: secrets::redact(&e.message).into_owned(),
                kind: e.kind,
                retryable: e.retryable,
                retry_after_ms: e.retry_after.map(|d| d.as_millis() as u64),
                outputs,
                paid,
            }
        }
    };
    finish(answer, untasked).await
}

fn failed(message: String) -> Answer {
    Answer::Failed {
        message,
        kind: ErrorKind::Environment,
        retryable: false,
        retry_after_ms: None,
        outputs: None,
        paid: 0,
    }
}
