//! What the engine asks of whoever keeps its state, as three small seams: a [`Journal`] that
//! durably writes what happened (a submitted task id the moment it exists, each attempt,
//! each finished step), a [`Cache`] that can answer a step from an earlier result, and a
//! [`Prior`] (plain data) saying what an interrupted run already did.
//!
//! It owns these contracts only; it must not know how or where they are stored (the state
//! store implements them with SQLite, tests and `--dry-run` use [`NoJournal`]).

use std::collections::HashMap;
use std::path::Path;

use futures::future::BoxFuture;
use serde_json::Value as Json;

use super::record::StepRecord;
use crate::contract::{durable, Durable, StepCtx, StepError, StepKind, TaskJournal};

/// Durable writes. A submitted task is on disk when `task_submitted` returns (the task
/// facts a kind records itself are the contract's [`TaskJournal`]); other facts are
/// durable once [`Journal::flush`] returns, which the engine calls before anything depends
/// on them. Failures are the journal's to report; the run goes on.
pub trait Journal: TaskJournal {
    /// One attempt ended; `error` is `None` when it succeeded.
    fn attempt_finished(&self, step: &str, item: Option<usize>, attempt: u32, error: Option<&str>);
    /// One execution (a step, or one `for_each` item) ended.
    fn unit_finished(&self, step: &str, item: Option<usize>, record: &StepRecord);
    /// A whole step ended (its `for_each` items gathered).
    fn step_finished(&self, step: &str, record: &StepRecord);
    /// Makes everything written so far durable before returning: committed, and with
    /// `sync` on disk too (surviving a power cut). A journal may gather free results and
    /// write them in groups; the engine calls this before starting a step (so what it
    /// reads is on record first) and after a paid execution. Writing through, as
    /// [`NoJournal`] does, needs nothing here.
    fn flush(&self, _sync: bool) {}
}

/// Remembers nothing.
pub struct NoJournal;

impl TaskJournal for NoJournal {
    fn task_submitted(&self, _: &str, _: Option<usize>, _: &str, _: &str) -> Durable {
        durable()
    }
}

impl Journal for NoJournal {
    fn attempt_finished(&self, _: &str, _: Option<usize>, _: u32, _: Option<&str>) {}
    fn unit_finished(&self, _: &str, _: Option<usize>, _: &StepRecord) {}
    fn step_finished(&self, _: &str, _: &StepRecord) {}
}

/// Earlier results of identical executions. The key is opaque to the engine.
pub trait Cache: Send + Sync {
    /// The key of an execution of `kind` with this rendered `with`; relative paths in it
    /// are relative to `base`. `None` when no key can be made (the step then just runs).
    fn key(&self, kind: &str, with: &Json, base: &Path) -> Option<String>;
    /// The outputs stored under `key`, with their files brought into `step_dir`.
    fn lookup(&self, key: &str, step_dir: &Path) -> Option<Json>;
    /// Remembers a successful execution's outputs (whose files live in `step_dir`).
    fn store(&self, key: &str, kind: &str, step_dir: &Path, outputs: &Json);
}

/// What an interrupted run already did, for `--resume`.
#[derive(Debug, Default, Clone)]
pub struct Prior {
    /// Steps that succeeded: kept as they are, not run again.
    pub steps: HashMap<String, StepRecord>,
    /// Executions (step, item) that succeeded, with their outputs.
    pub units: HashMap<(String, Option<usize>), StepRecord>,
    /// Provider tasks submitted but never seen to finish: polled, not submitted again.
    pub tasks: HashMap<(String, Option<usize>), String>,
    /// Submits sent whose task id never came back, with when they were sent: the task may
    /// exist, so they are not sent again unless `resubmit_unknown`.
    pub unknown: HashMap<(String, Option<usize>), String>,
    /// The user chose to pay again for those (`--resubmit-unknown`).
    pub resubmit_unknown: bool,
    /// Paid calls already charged to `budget.calls` by an earlier holder of the run (a
    /// worker that died); this run may make only what is left.
    pub paid_calls: u64,
}

/// `limits:` concurrency shared beyond this process: with a fleet of workers, at most N of
/// a family's steps run at once across all of them, not in each.
pub trait FleetSlots: Send + Sync {
    /// Waits for one of `limit` slots of `family`; the slot is free again when the returned
    /// guard drops. `None` when the slots cannot be had (the step then runs on local limits).
    fn acquire<'a>(&'a self, family: &'a str, limit: usize) -> BoxFuture<'a, Option<Box<dyn Send + Sync>>>;
}

/// Somewhere else to run an attempt: with a fleet of workers, an attempt of a step with
/// effects (a shell command, a provider call) may run on any machine, while the run's walk,
/// its pure steps, retries, cache and journal stay with the run's holder.
pub trait Dispatch: Send + Sync {
    /// Runs one attempt of the execution `ctx` describes with `kind` (named `uses`) on this
    /// rendered input, and returns what the kind returned. The executor applies
    /// `ctx.timeout`, stops when the run is cancelled, and charges paid calls to
    /// `ctx.budget`. When `ctx.cancel` fires for another reason (the run is handed back or
    /// lost), the attempt may be left running for the run's next holder to collect.
    fn attempt<'a>(
        &'a self,
        kind: &'a dyn StepKind,
        uses: &'a str,
        ctx: &'a StepCtx,
        input: Json,
    ) -> BoxFuture<'a, Result<Json, StepError>>;
}
