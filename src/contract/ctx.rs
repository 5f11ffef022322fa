//! Where and how one execution of a step runs, and the durable record of provider tasks.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::{Budget, ErrorKind, Event, EventSink, StepError, Stream};

/// A step's position in the pipeline's steps; also its node in the plan's graph.
pub type StepIdx = usize;

/// For task kinds: the first and the largest wait between polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollPolicy {
    pub interval: Duration,
    pub max_interval: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy { interval: Duration::from_secs(1), max_interval: Duration::from_secs(10) }
    }
}

/// A fact on its way to disk: it is durable once this completes. Journals sync many such
/// facts at once (group commit), so a hundred submits pay for one disk sync, not a hundred.
pub type Durable = BoxFuture<'static, ()>;

/// Already durable (or nothing to record).
pub fn durable() -> Durable {
    Box::pin(std::future::ready(()))
}

/// Durable facts about paid provider tasks: a crash once the returned [`Durable`] has
/// completed still leaves the fact on disk. Failures are the journal's to report.
pub trait TaskJournal: Send + Sync {
    /// A submit is about to be sent: if the process dies before its answer is recorded,
    /// a task may exist and be paid for. Awaited before the request leaves.
    fn submit_intent(&self, _step: &str, _item: Option<usize>, _family: &str) -> Durable {
        durable()
    }
    /// The submit's answer settled its fate without a task to resume (refused before it
    /// was accepted, or the answer was the result itself): the intent is cleared.
    /// `task_submitted` clears it too.
    fn submit_settled(&self, _step: &str, _item: Option<usize>) {}
    /// A provider task exists and is (or will be) paid for; awaited before polling it.
    fn task_submitted(&self, step: &str, item: Option<usize>, family: &str, task_id: &str) -> Durable;
    /// The provider said how a task ended. Only a provider-reported failure makes the task
    /// one to submit again on resume; a task whose polling merely broke off is polled.
    fn task_ended(&self, _step: &str, _item: Option<usize>, _task_id: &str, _succeeded: bool) {}
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
    pub events: Arc<dyn EventSink>,
    pub budget: Arc<Budget>,
    /// Durable record of submitted tasks (the state store's, during a real run).
    pub journal: Arc<dyn TaskJournal>,
    /// The task this execution submitted before the run was interrupted (`--resume`).
    pub resumed_task: Option<String>,
    /// A submit of this execution was sent before an interruption and its task id never
    /// came back: the task may exist. See [`UnknownSubmit`].
    pub unknown_submit: Option<UnknownSubmit>,
}

/// A submit sent in an earlier life of the run whose answer was never recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSubmit {
    /// When it was sent (RFC 3339), for the message.
    pub sent_at: String,
    /// Paying again is allowed (`--resubmit-unknown`); otherwise the step stops.
    pub resubmit: bool,
}

impl StepCtx {
    /// The step's own folder in the run directory, created if needed.
    pub fn dir(&self) -> Result<&Path, StepError> {
        std::fs::create_dir_all(&self.step_dir).map_err(|e| {
            StepError::fatal(format!("cannot create the step folder `{}`: {e}", self.step_dir.display()))
                .kind(ErrorKind::Environment)
        })?;
        Ok(&self.step_dir)
    }

    /// A line of the step's own output, for the log.
    pub fn log(&self, stream: Stream, line: impl Into<String>) {
        self.events.emit(Event::Log { step: self.step, item: self.item, stream, line: line.into() });
    }

    /// The provider's progress, e.g. `40%` or `processing`.
    pub fn progress(&self, message: impl Into<String>) {
        self.events.emit(Event::Progress { step: self.step, item: self.item, message: message.into() });
    }

    /// Takes one paid call from the run's budget; call it right before submitting.
    pub fn charge_call(&self) -> Result<(), StepError> {
        self.budget.charge()
    }

    /// Records that a submit is about to be sent (see [`TaskJournal::submit_intent`]);
    /// returns once that is on disk.
    pub async fn submit_intent(&self, family: &str) {
        self.journal.submit_intent(&self.step_id, self.item, family).await;
    }

    /// Clears the submit intent: the answer left no task to resume (see [`TaskJournal::submit_settled`]).
    pub fn submit_settled(&self) {
        self.journal.submit_settled(&self.step_id, self.item);
    }

    /// Records a submitted provider task before it is polled: returns once it is on disk,
    /// so that a crash right after still leaves the id to resume from.
    pub async fn task_submitted(&self, family: &str, task_id: &str) {
        self.journal.task_submitted(&self.step_id, self.item, family, task_id).await;
        self.events.emit(Event::TaskSubmitted {
            step: self.step,
            item: self.item,
            family: family.into(),
            task_id: task_id.into(),
        });
    }

    /// Records how the provider says a task ended (see [`TaskJournal::task_ended`]).
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
