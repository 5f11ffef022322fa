//! Step kinds: one trait, a registry, and the context a step runs in.
//!
//! The engine drives every kind through `StepKind` and knows nothing of any one of them;
//! provider kinds plug in by registering. A kind describes its `with` fields in a
//! `KindSpec`, which `validate` checks generically (required, type, allowed values) and
//! which `kinds`/`schema` print, so docs and checks cannot drift apart.

pub mod media;
pub mod providers;
pub mod shell;
pub mod subtitle;
pub mod value;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use indexmap::IndexMap;
use serde_json::Value as Json;
use tokio_util::sync::CancellationToken;

use crate::engine::events::{Event, EventTx, Stream};
use crate::engine::hooks::Journal;
use crate::model::{PollPolicy, StepIdx};
use crate::source::KeyPath;
use crate::template::Tmpl;

/// A step kind: what `uses:` names.
pub trait StepKind: Send + Sync + 'static {
    fn spec(&self) -> &KindSpec;

    /// Rewrites `with` once at load time, before references are read from it.
    /// (`shell` turns template expressions in its script into environment variables.)
    fn prepare(&self, with: Tmpl) -> Result<Tmpl, Vec<Problem>> {
        Ok(with)
    }

    /// Checks beyond the spec's field list; paths are relative to `with`.
    fn check(&self, _with: &Tmpl) -> Vec<Problem> {
        Vec::new()
    }

    /// The outputs a step of this kind will have, when known before it runs.
    fn output_names(&self, _with: &Tmpl) -> Option<Vec<String>> {
        let spec = self.spec();
        (!spec.dynamic_outputs).then(|| spec.outputs.iter().map(|(n, _)| n.clone()).collect())
    }

    /// Runs once with the rendered `with`; returns the step's outputs (a JSON object).
    fn execute<'a>(&'a self, ctx: &'a StepCtx, with: Json) -> BoxFuture<'a, Result<Json, StepError>>;
}

/// What a kind takes and gives, as data.
#[derive(Debug, Clone, Default)]
pub struct KindSpec {
    pub name: String,
    pub summary: String,
    pub fields: Vec<FieldSpec>,
    /// Unknown `with` fields pass through to the API instead of being errors.
    pub open: bool,
    pub outputs: Vec<(String, String)>,
    /// Outputs beyond `outputs` appear at run time (shell's `$COMETFLOW_OUTPUT`, value's keys).
    pub dynamic_outputs: bool,
    /// Each execution is a paid provider call: counted by `budget` and `--dry-run`.
    pub paid: bool,
    /// A failed or timed-out attempt may be repeated without paying twice.
    pub idempotent: bool,
}

#[derive(Debug, Clone)]
pub struct FieldSpec {
    pub name: String,
    pub types: Vec<FieldType>,
    pub required: bool,
    /// Allowed values, when the API takes only some.
    pub values: Vec<Json>,
    pub description: String,
}

impl FieldSpec {
    pub fn new(name: &str, types: &[FieldType], description: &str) -> Self {
        FieldSpec {
            name: name.into(),
            types: types.to_vec(),
            required: false,
            values: Vec::new(),
            description: description.into(),
        }
    }

    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    pub fn values(mut self, values: &[Json]) -> Self {
        self.values = values.to_vec();
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    String,
    Integer,
    Number,
    Boolean,
    List,
    Object,
}

impl FieldType {
    pub fn name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Integer => "integer",
            FieldType::Number => "number",
            FieldType::Boolean => "boolean",
            FieldType::List => "list",
            FieldType::Object => "map",
        }
    }

    pub fn accepts(self, v: &Json) -> bool {
        match self {
            FieldType::String => v.is_string(),
            FieldType::Integer => v.is_i64() || v.is_u64(),
            FieldType::Number => v.is_number(),
            FieldType::Boolean => v.is_boolean(),
            FieldType::List => v.is_array(),
            FieldType::Object => v.is_object(),
        }
    }
}

/// A problem a kind found in its `with`, at a path relative to `with`.
#[derive(Debug, Clone)]
pub struct Problem {
    pub path: KeyPath,
    pub message: String,
    pub help: Option<String>,
}

impl Problem {
    pub fn new(path: KeyPath, message: impl Into<String>) -> Self {
        Problem { path, message: message.into(), help: None }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// A failed attempt. `retryable` says whether trying again is safe and may help.
#[derive(Debug, Clone)]
pub struct StepError {
    pub message: String,
    pub retryable: bool,
    /// What the step produced before failing (a shell step's stdout and exit code).
    pub outputs: Option<Json>,
}

impl StepError {
    pub fn fatal(message: impl Into<String>) -> Self {
        StepError { message: message.into(), retryable: false, outputs: None }
    }

    pub fn retryable(message: impl Into<String>) -> Self {
        StepError { message: message.into(), retryable: true, outputs: None }
    }
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Counts paid provider calls against the pipeline's `budget.calls`.
#[derive(Debug, Default)]
pub struct Budget {
    pub limit: Option<u64>,
    used: AtomicU64,
}

impl Budget {
    pub fn new(limit: Option<u64>) -> Self {
        Budget { limit, used: AtomicU64::new(0) }
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Takes one call from the budget, or refuses without taking anything.
    pub fn charge(&self) -> Result<(), StepError> {
        let Some(limit) = self.limit else {
            self.used.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        };
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| (u < limit).then_some(u + 1))
            .map(|_| ())
            .map_err(|_| {
                StepError::fatal(format!(
                    "budget exceeded: this run already made {limit} paid calls, the pipeline's `budget.calls`; \
                     the call was not made. Raise `budget.calls` if the run needs more"
                ))
            })
    }
}

/// Where and how one execution of a step runs.
pub struct StepCtx {
    pub run_id: Arc<str>,
    pub step: StepIdx,
    pub step_id: Arc<str>,
    pub item: Option<usize>,
    pub attempt: u32,
    /// The pipeline file's directory: relative paths in `with` are relative to it.
    pub pipeline_dir: Arc<Path>,
    /// `<run dir>/<step id>[/<item>]`; created on first use.
    pub step_dir: PathBuf,
    pub run_dir: Arc<Path>,
    pub cancel: CancellationToken,
    pub poll: PollPolicy,
    pub timeout: Option<Duration>,
    pub(crate) events: EventTx,
    pub(crate) budget: Arc<Budget>,
    /// Durable record of submitted tasks (the state store's, during a real run).
    pub(crate) journal: Arc<dyn Journal>,
    /// The task this execution submitted before the run was interrupted (`--resume`).
    pub(crate) resumed_task: Option<String>,
}

impl StepCtx {
    /// The step's own folder in the run directory, created if needed.
    pub fn dir(&self) -> Result<&Path, StepError> {
        std::fs::create_dir_all(&self.step_dir).map_err(|e| {
            StepError::fatal(format!("cannot create the step folder `{}`: {e}", self.step_dir.display()))
        })?;
        Ok(&self.step_dir)
    }

    /// A line of the step's own output, for the log.
    pub fn log(&self, stream: Stream, line: impl Into<String>) {
        let _ = self.events.send(Event::Log { step: self.step, item: self.item, stream, line: line.into() });
    }

    /// The provider's progress, e.g. `40%` or `processing`.
    pub fn progress(&self, message: impl Into<String>) {
        let _ =
            self.events.send(Event::Progress { step: self.step, item: self.item, message: message.into() });
    }

    /// Takes one paid call from the run's budget; call it right before submitting.
    pub fn charge_call(&self) -> Result<(), StepError> {
        self.budget.charge()
    }

    /// Records a submitted provider task before it is polled: a durable write, done before
    /// returning, so that a crash right after still leaves the id to resume from.
    pub fn task_submitted(&self, family: &str, task_id: &str) {
        self.journal.task_submitted(&self.step_id, self.item, family, task_id);
        let _ = self.events.send(Event::TaskSubmitted {
            step: self.step,
            item: self.item,
            family: family.into(),
            task_id: task_id.into(),
        });
    }

    /// Records how the provider says a task ended (see `Journal::task_ended`).
    pub fn task_ended(&self, task_id: &str, succeeded: bool) {
        self.journal.task_ended(&self.step_id, self.item, task_id, succeeded);
    }

    /// The task to poll instead of submitting a new one: this execution submitted it before
    /// the run was interrupted, and it may already be paid for.
    pub fn resumed_task(&self) -> Option<&str> {
        self.resumed_task.as_deref()
    }

    /// Resolves a path from `with` against the pipeline's directory.
    pub fn resolve(&self, path: &str) -> PathBuf {
        let p = Path::new(path);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.pipeline_dir.join(p)
        }
    }
}

/// The kinds `uses:` can name.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: IndexMap<String, Arc<dyn StepKind>>,
}

impl Registry {
    /// The local kinds, which need no network.
    pub fn builtin() -> Self {
        let mut r = Registry::default();
        r.add(Arc::new(value::Value::new()));
        r.add(Arc::new(shell::Shell::new()));
        r.add(Arc::new(media::Merge::new()));
        r.add(Arc::new(media::Concat::new()));
        r.add(Arc::new(subtitle::Subtitle::new()));
        r
    }

    pub fn add(&mut self, kind: Arc<dyn StepKind>) {
        self.kinds.insert(kind.spec().name.clone(), kind);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn StepKind>> {
        self.kinds.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> + Clone {
        self.kinds.keys().map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn StepKind>> {
        self.kinds.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refuses_the_call_past_its_limit() {
        let b = Budget::new(Some(2));
        assert!(b.charge().is_ok());
        assert!(b.charge().is_ok());
        let err = b.charge().unwrap_err();
        assert!(err.message.contains("budget exceeded"));
        assert_eq!(b.used(), 2);
    }
}
