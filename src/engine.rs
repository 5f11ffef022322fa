//! The engine: walks a sealed plan on tokio, starting each step the moment its last
//! dependency finishes, and reports everything it does as events.
//!
//! It knows step kinds only through the step contract (`StepKind` and its spec, whose
//! family `limits:` counts). See `engine/README.md` for the step state diagram.

pub mod events;
pub mod hooks;
mod limits;
pub mod record;
pub mod unit;
pub use crate::model::human_duration;
mod walk;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use indexmap::IndexMap;
use jiff::Timestamp;
use minijinja::value::{Object, Value};
use serde_json::Value as Json;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::contract::{Budget, EventSink};
use crate::model::{Pipeline, Step};
use crate::plan::Plan;
use crate::template::Scope;
use events::EventTx;
use hooks::{Cache, Journal, Prior};
use limits::FamilyLimit;
pub use record::{RunRecord, RunStatus, StepRecord};

/// Everything a run needs besides its plan.
pub struct RunOptions {
    pub run_id: String,
    pub run_dir: PathBuf,
    pub inputs: IndexMap<String, Json>,
    /// Values of the variables the pipeline lists under `env:` (and `COMETFLOW_*`).
    pub env: IndexMap<String, String>,
    pub concurrency: usize,
    pub cancel: CancellationToken,
    /// Where submitted tasks, attempts and finished steps are durably written.
    pub journal: Arc<dyn Journal>,
    /// Earlier results for steps with `cache: true`; `None` runs everything.
    pub cache: Option<Arc<dyn Cache>>,
    /// What this run did before it was interrupted (empty for a new run).
    pub prior: Prior,
    /// This run continues an interrupted one (`--resume`); said so in its record.
    pub resumed: bool,
    /// Family limits counted across a fleet of workers (`None`: in this process only).
    pub fleet: Option<Arc<dyn hooks::FleetSlots>>,
    /// Where attempts of steps with effects run (`None`: here, in this process).
    pub dispatch: Option<Arc<dyn hooks::Dispatch>>,
}

impl RunOptions {
    /// A run that remembers nothing and reuses nothing.
    pub fn new(
        run_id: String,
        run_dir: PathBuf,
        inputs: IndexMap<String, Json>,
        cancel: CancellationToken,
    ) -> Self {
        RunOptions {
            run_id,
            run_dir,
            inputs,
            env: IndexMap::new(),
            concurrency: 8,
            cancel,
            journal: Arc::new(hooks::NoJournal),
            cache: None,
            prior: Prior::default(),
            resumed: false,
            fleet: None,
            dispatch: None,
        }
    }
}

/// State shared by every step of one run.
struct Shared {
    plan: Arc<Plan>,
    run_id: Arc<str>,
    run_dir: Arc<std::path::Path>,
    pipeline_dir: Arc<std::path::Path>,
    scope: Arc<Scope>,
    scope_value: Value,
    results: Arc<Results>,
    slots: Arc<Semaphore>,
    families: HashMap<String, FamilyLimit>,
    budget: Arc<Budget>,
    cancel: CancellationToken,
    events: EventTx,
    /// The same channel, as kinds see it.
    sink: Arc<dyn EventSink>,
    journal: Arc<dyn Journal>,
    cache: Option<Arc<dyn Cache>>,
    prior: Prior,
    fleet: Option<Arc<dyn hooks::FleetSlots>>,
    dispatch: Option<Arc<dyn hooks::Dispatch>>,
}

/// Finished steps as templates see them: `steps.<id>.outputs` and `.status`.
/// Each slot is written once, when its step finishes; reads need no lock.
#[derive(Debug)]
struct Results {
    pipeline: Arc<Pipeline>,
    slots: Vec<OnceLock<Value>>,
}

impl Object for Results {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let idx = *self.pipeline.index.get(key.as_str()?)?;
        self.slots[idx].get().cloned()
    }
}

/// Runs the plan to the end (or until cancelled) and returns its record.
pub async fn execute(plan: Arc<Plan>, opts: RunOptions, events: EventTx) -> RunRecord {
    let started_at = Timestamp::now();
    let pipeline = plan.pipeline.clone();
    let results = Arc::new(Results {
        pipeline: pipeline.clone(),
        slots: (0..pipeline.steps.len()).map(|_| OnceLock::new()).collect(),
    });
    let run_dir_text = opts.run_dir.display().to_string();
    let scope = Arc::new(Scope {
        inputs: Value::from_serialize(&opts.inputs),
        env: Value::from_serialize(&opts.env),
        run: Value::from_serialize(serde_json::json!({
            "id": opts.run_id,
            "dir": run_dir_text,
            "started_at": started_at.to_string(),
        })),
        steps: Value::from_dyn_object(results.clone()),
        item: None,
    });
    let shared = Arc::new(Shared {
        run_id: opts.run_id.as_str().into(),
        run_dir: opts.run_dir.clone().into(),
        pipeline_dir: pipeline.source.dir().to_path_buf().into(),
        scope_value: Value::from_dyn_object(scope.clone()),
        scope,
        results,
        slots: Arc::new(Semaphore::new(opts.concurrency.max(1))),
        families: pipeline.limits.iter().map(|(f, l)| (f.clone(), FamilyLimit::new(l))).collect(),
        budget: Arc::new(Budget::spent(pipeline.budget, opts.prior.paid_calls)),
        cancel: opts.cancel.clone(),
        sink: Arc::new(events.clone()),
        events,
        journal: opts.journal.clone(),
        cache: opts.cache.clone(),
        prior: opts.prior.clone(),
        fleet: opts.fleet.clone(),
        dispatch: opts.dispatch.clone(),
        plan,
    });

    let records = walk::walk(shared.clone()).await;

    let interrupted = shared.cancel.is_cancelled();
    let failed = records
        .iter()
        .zip(&pipeline.steps)
        .any(|(r, s)| r.status == events::Status::Failed && !s.continue_on_error);
    let status = if interrupted {
        RunStatus::Interrupted
    } else if failed {
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    };
    let outputs = pipeline
        .outputs
        .iter()
        .map(|(name, t)| (name.clone(), t.render(&shared.scope_value).unwrap_or(Json::Null)))
        .collect();
    let finished_at = Timestamp::now();
    RunRecord {
        run_id: opts.run_id,
        pipeline: pipeline.name.clone(),
        pipeline_file: std::path::absolute(&pipeline.source.path)
            .unwrap_or_else(|_| pipeline.source.path.clone())
            .display()
            .to_string(),
        status,
        started_at,
        finished_at,
        duration_ms: started_at.duration_until(finished_at).unsigned_abs(),
        run_dir: run_dir_text,
        inputs: opts.inputs,
        outputs,
        steps: pipeline.steps.iter().map(|s| s.id.clone()).zip(records).collect(),
        resumed: opts.resumed,
        paid_calls: shared.budget.used().saturating_sub(opts.prior.paid_calls),
    }
}

/// The ids a step waits for (its `deps` are indices into the pipeline's steps).
fn needs_of(pipeline: &Pipeline, step: &Step) -> Vec<String> {
    step.deps.iter().map(|&d| pipeline.steps[d].id.clone()).collect()
}
