//! The walker: one loop that owns the run's bookkeeping. Running steps are futures it
//! drives itself; each one that finishes releases its dependents, and a dependent whose
//! last dependency just finished starts at once. There is no polling tick anywhere.
//!
//! Steps are not spawned as tasks: a step is I/O-bound (its blocking work, such as a
//! media remux, runs on the blocking pool), and driving all of them from one task saves a
//! cross-thread wake-up per step, which is most of the engine's own cost on a long chain.

use std::sync::Arc;

use futures::stream::{FuturesUnordered, StreamExt};
use minijinja::value::Value;

use super::events::{Event, Status};
use super::record::StepRecord;
use super::{needs_of, unit, Shared};
use crate::model::StepIdx;

pub(super) async fn walk(shared: Arc<Shared>) -> Vec<StepRecord> {
    let pipeline = shared.plan.pipeline.clone();
    let n = pipeline.steps.len();
    let mut remaining: Vec<usize> = pipeline.steps.iter().map(|s| s.deps.len()).collect();
    let mut records: Vec<Option<StepRecord>> = vec![None; n];
    let mut running = FuturesUnordered::new();
    // A step's future is boxed when it is first polled, not when it is queued: a wide
    // pipeline queues every ready step at once, and a full future is nearly 2 KB (100,000
    // of them were 186 MB), while a queued one is a few words. A pure step (`value`) does
    // a bounded amount of work and is exempt from tokio's budget, so it finishes in that
    // first poll and frees its box at once instead of waiting, boxed, for a new budget.
    let run_one = |i: StepIdx| {
        let shared: &Shared = &shared;
        let pure = shared.plan.pipeline.steps[i].kind.spec().pure;
        async move {
            let step = Box::pin(unit::run_step(shared, i));
            let record = if pure { tokio::task::unconstrained(step).await } else { step.await };
            (i, record)
        }
    };
    let mut resolved = 0usize;
    let mut ready: Vec<StepIdx> = (0..n).rev().filter(|&i| remaining[i] == 0).collect();
    let mut folders = Folders::new(&shared);

    loop {
        // Start (or settle without running) everything that became ready.
        while let Some(i) = ready.pop() {
            match settle_without_running(&shared, i, &records) {
                Some(record) => {
                    folders.unmake(&shared, i, record.status);
                    finish(&shared, i, record, &mut records, &mut remaining, &mut ready);
                    resolved += 1;
                }
                None => {
                    // What the step reads (and everything before it) is on record first,
                    // so a resume never repeats a step whose dependents ran. A pure step
                    // (`value`) leaves no trace but its own row, which is written after
                    // those it read: the next step with effects flushes them all.
                    if !shared.plan.pipeline.steps[i].kind.spec().pure {
                        shared.journal.flush(false);
                    }
                    folders.make_next(&shared, i, &remaining);
                    running.push(run_one(i));
                }
            }
        }
        if resolved == n {
            break;
        }
        // The walker runs on the run's only thread, and a stretch of pure steps never waits:
        // now and then it lets the rest run (Ctrl-C, progress), as tokio's budget decides.
        tokio::task::consume_budget().await;
        // `None` (nothing running, steps unresolved) happens only when cancelled.
        let Some((i, record)) = running.next().await else { break };
        resolved += 1;
        finish(&shared, i, record, &mut records, &mut remaining, &mut ready);
    }

    // Interrupted: steps that never settled leave no folder made for them.
    for (i, record) in records.iter().enumerate() {
        if record.is_none() {
            folders.unmake(&shared, i, Status::Cancelled);
        }
    }
    pipeline
        .steps
        .iter()
        .zip(records)
        .map(|(s, r)| {
            r.unwrap_or_else(|| StepRecord::not_run(&s.uses, needs_of(&pipeline, s), Status::Cancelled, None))
        })
        .collect()
}

/// Records a finished step, publishes it to templates, and releases its dependents.
fn finish(
    shared: &Shared,
    i: StepIdx,
    record: StepRecord,
    records: &mut [Option<StepRecord>],
    remaining: &mut [usize],
    ready: &mut Vec<StepIdx>,
) {
    // Straight from the record: no intermediate JSON copy of the outputs on this hot path,
    // and no B-tree node per object (`json_value`).
    #[derive(serde::Serialize)]
    struct View {
        outputs: Value,
        status: &'static str,
    }
    let outputs = crate::template::json_value(&record.outputs);
    let view = Value::from_serialize(View { outputs, status: record.status.as_str() });
    let _ = shared.results.slots[i].set(view);
    let _ = shared.events.send(Event::Finished {
        step: i,
        status: record.status,
        duration: record.duration_ms,
        attempts: record.attempts,
        error: record.error.clone(),
    });
    let step = &shared.plan.pipeline.steps[i];
    shared.journal.step_finished(&step.id, &record);
    if step.kind.spec().paid && record.attempts > 0 {
        // A paid result is never left waiting in memory: a resume must not pay for it again.
        shared.journal.flush(false);
    }
    records[i] = Some(record);
    for &d in &shared.plan.dependents[i] {
        remaining[d] -= 1;
        if remaining[d] == 0 {
            ready.push(d);
        }
    }
}

/// Folders made ahead for steps that need one (`KindSpec::makes_folder`): when a step
/// starts, a dependent it is the last one waited for by is next, and its folder is made on
/// the blocking pool while this one runs. Making a folder takes about 50 us, and in a chain
/// it would otherwise stand between one step's end and the next one's start.
struct Folders {
    made: Vec<Option<tokio::task::JoinHandle<()>>>,
    /// Off when steps run elsewhere (a fleet's workers), or when nothing needs a folder.
    on: bool,
}

impl Folders {
    fn new(shared: &Shared) -> Self {
        let steps = &shared.plan.pipeline.steps;
        let on = shared.dispatch.is_none() && steps.iter().any(|s| s.kind.spec().makes_folder);
        Folders { made: if on { (0..steps.len()).map(|_| None).collect() } else { Vec::new() }, on }
    }

    /// Step `i` starts: makes the folders of the dependents that wait for it alone.
    fn make_next(&mut self, shared: &Shared, i: StepIdx, remaining: &[usize]) {
        if !self.on {
            return;
        }
        let steps = &shared.plan.pipeline.steps;
        for &d in &shared.plan.dependents[i] {
            let next = &steps[d];
            // A `for_each` step's executions each have a folder of their own, made as they run;
            // a step done in an earlier life of the run keeps the folder it had.
            if remaining[d] != 1
                || !next.kind.spec().makes_folder
                || next.for_each.is_some()
                || shared.prior.steps.contains_key(&next.id)
                || self.made[d].is_some()
            {
                continue;
            }
            let dir = shared.run_dir.join(&next.id);
            self.made[d] = Some(tokio::task::spawn_blocking(move || {
                // The step makes it again if need be, and says so if it cannot.
                let _ = std::fs::create_dir_all(dir);
            }));
        }
    }

    /// Step `i` will not run after all: its folder made ahead goes, if still empty.
    fn unmake(&mut self, shared: &Shared, i: StepIdx, status: Status) {
        let Some(made) = self.made.get_mut(i).and_then(Option::take) else { return };
        if !matches!(status, Status::Skipped | Status::Cancelled) {
            return;
        }
        let dir = shared.run_dir.join(&shared.plan.pipeline.steps[i].id);
        if made.is_finished() {
            let _ = std::fs::remove_dir(dir);
        } else {
            // On the blocking pool, which the runtime waits for even when the run ends now.
            tokio::task::spawn_blocking(move || {
                let _ = futures::executor::block_on(made);
                let _ = std::fs::remove_dir(dir);
            });
        }
    }
}

/// Decides a step that must not run: cancelled, already done before a resume, or skipped
/// because something it needs failed or was skipped.
fn settle_without_running(shared: &Shared, i: StepIdx, records: &[Option<StepRecord>]) -> Option<StepRecord> {
    let step = &shared.plan.pipeline.steps[i];
    let needs = || needs_of(&shared.plan.pipeline, step);
    if shared.cancel.is_cancelled() {
        return Some(StepRecord::not_run(&step.uses, needs(), Status::Cancelled, None));
    }
    // Resuming: a step that succeeded before keeps its outputs and does not run again.
    if let Some(done) = shared.prior.steps.get(&step.id) {
        return Some(StepRecord { needs: needs(), ..done.clone() });
    }
    for &d in &step.deps {
        let Some(dep) = &records[d] else { continue };
        let dep_step = &shared.plan.pipeline.steps[d];
        // An `if` that reads the dependency's status decides for itself.
        if step.status_deps.contains(&d) {
            continue;
        }
        let reason = match dep.status {
            Status::Succeeded => continue,
            Status::Failed if dep_step.continue_on_error => continue,
            Status::Failed => format!("needs `{}`, which failed", dep_step.id),
            Status::Skipped => format!("needs `{}`, which was skipped", dep_step.id),
            Status::Cancelled => {
                return Some(StepRecord::not_run(&step.uses, needs(), Status::Cancelled, None))
            }
        };
        return Some(StepRecord::not_run(&step.uses, needs(), Status::Skipped, Some(reason)));
    }
    None
}
