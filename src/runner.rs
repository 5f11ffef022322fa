//! One run of a planned pipeline: its run directory, the human reporter, the engine and
//! the saved record. `run`, `watch` and `schedule` all start runs through `launch`.

use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::Value as Json;
use tokio_util::sync::CancellationToken;

use crate::engine::events::Event;
use crate::engine::{RunOptions, RunRecord};
use crate::plan::Plan;
use crate::report::{summary, Human, Verbosity};

/// What to run and how.
pub struct Launch {
    pub plan: Arc<Plan>,
    pub inputs: IndexMap<String, Json>,
    /// Overrides the pipeline's `concurrency` (default 8).
    pub concurrency: Option<usize>,
    pub verbosity: Verbosity,
    /// Cancelling it interrupts the run: in-flight steps are cancelled, the record kept.
    pub cancel: CancellationToken,
}

/// Runs to the end and returns the record, already saved as `run.json` in its folder.
/// Errs only when the run could not start (the state directory is not writable).
pub async fn launch(l: Launch) -> Result<RunRecord, String> {
    let pipeline = l.plan.pipeline.clone();
    let run_id = crate::store::new_run_id();
    let state = crate::store::state_dir();
    let run_dir = crate::store::create_run_dir(&state, &run_id).map_err(|e| {
        format!(
            "cannot create the run directory under `{}`: {e}; set COMETFLOW_STATE_DIR to a writable folder",
            state.display()
        )
    })?;
    let concurrency = l.concurrency.or(pipeline.concurrency).unwrap_or(8);
    if l.verbosity != Verbosity::Quiet {
        eprintln!("cometflow: running `{}` ({} steps, run {run_id})", pipeline.name, pipeline.steps.len());
    }

    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let reporter = tokio::spawn(Human::new(pipeline.clone(), l.verbosity).consume(rx));
    let announce = {
        let (cancel, tx) = (l.cancel.clone(), tx.clone());
        tokio::spawn(async move {
            cancel.cancelled().await;
            let _ = tx.send(Event::Interrupting);
        })
    };
    let options = RunOptions {
        run_id,
        run_dir: run_dir.clone(),
        inputs: l.inputs,
        env: template_env(&pipeline.env),
        concurrency,
        cancel: l.cancel,
    };
    let record = crate::engine::execute(l.plan, options, tx).await;
    announce.abort();
    let _ = reporter.await;

    if let Err(e) = crate::store::write_record(&run_dir, &record) {
        eprintln!("warning: cannot write run.json in `{}`: {e}", run_dir.display());
    }
    if l.verbosity != Verbosity::Quiet {
        eprint!("{}", summary(&record, crate::diag::color_stderr()));
    }
    Ok(record)
}

/// `env.NAME` for the names the pipeline lists, plus every `COMETFLOW_*` variable.
fn template_env(listed: &IndexMap<String, Option<String>>) -> IndexMap<String, String> {
    let mut env = IndexMap::new();
    for (name, default) in listed {
        if let Some(v) = std::env::var(name).ok().or_else(|| default.clone()) {
            env.insert(name.clone(), v);
        }
    }
    for (k, v) in std::env::vars() {
        if k.starts_with("COMETFLOW_") {
            env.insert(k, v);
        }
    }
    env
}
