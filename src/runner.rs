//! One run of a planned pipeline: its run directory and state-store rows, the human
//! reporter, the engine (given the store's journal, cache and, resuming, prior work) and
//! the saved record. `run`, `watch` and `schedule` all start runs through `launch`.

use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::Value as Json;
use tokio_util::sync::CancellationToken;

use crate::engine::events::Event;
use crate::engine::{RunOptions, RunRecord};
use crate::error::Failure;
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
    /// Finish this earlier run (already checked by `store::resume::resolve`) in its folder.
    pub resume: Option<String>,
    /// Do not reuse cached results (still store new ones).
    pub fresh: bool,
    /// Resuming, pay again for submits sent whose task id was never recorded.
    pub resubmit_unknown: bool,
    /// Which backend answers provider calls (`Endpoint::backend`): part of every cache key.
    pub backend: String,
}

/// Runs to the end and returns the record, already saved as `run.json` in its folder.
/// Errs only when the run could not start (the state store is unusable).
pub async fn launch(l: Launch) -> Result<RunRecord, Failure> {
    let pipeline = l.plan.pipeline.clone();
    let state = crate::store::state_dir();
    let store_err = |e: crate::store::StoreError| Failure::Environment(e.to_string());
    let store = crate::store::Store::open().map_err(store_err)?;
    let (run_id, run_dir, prior) = match &l.resume {
        Some(id) => {
            match store.claim(id).map_err(store_err)? {
                crate::store::runs::Claim::Ours => {}
                crate::store::runs::Claim::Taken(pid) => {
                    return Err(Failure::Invalid(format!(
                        "run `{id}` was just claimed by process {pid} (another `--resume`); nothing was \
                         run or paid here: wait for that process to finish, then resume again if needed"
                    )))
                }
                crate::store::runs::Claim::Succeeded => {
                    return Err(Failure::Invalid(format!(
                        "run `{id}` was just finished by another `--resume`; nothing was run or paid here"
                    )))
                }
            }
            let mut prior = store.prior(id).map_err(store_err)?;
            prior.resubmit_unknown = l.resubmit_unknown;
            let dir = crate::store::create_run_dir(&state, id).map_err(|e| unwritable(&state, &e))?;
            (id.clone(), dir, Some(prior))
        }
        None => {
            let (id, dir) = crate::store::create_new_run_dir(&state).map_err(|e| unwritable(&state, &e))?;
            let file =
                std::path::absolute(&pipeline.source.path).unwrap_or_else(|_| pipeline.source.path.clone());
            let file = file.display().to_string();
            let dir_text = dir.display().to_string();
            store.begin(&id, &pipeline.name, &file, &l.inputs, &dir_text).map_err(store_err)?;
            (id, dir, None)
        }
    };
    let concurrency = l.concurrency.or(pipeline.concurrency).unwrap_or(8);
    if l.verbosity != Verbosity::Quiet {
        let verb = if prior.is_some() { "resuming" } else { "running" };
        eprintln!("cometflow: {verb} `{}` ({} steps, run {run_id})", pipeline.name, pipeline.steps.len());
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
    let journal = store.journal(&run_id, l.cancel.clone());
    let options = RunOptions {
        env: template_env(&pipeline.env),
        concurrency,
        journal: journal.clone(),
        cache: Some(store.cache(&run_id, !l.fresh, l.backend)),
        resumed: prior.is_some(),
        prior: prior.unwrap_or_default(),
        ..RunOptions::new(run_id, run_dir.clone(), l.inputs, l.cancel)
    };
    let record = crate::engine::execute(l.plan, options, tx).await;
    // Every row is written before the run is marked finished.
    journal.flush(true);
    drop(journal);
    if let Err(e) = store.finish(&record) {
        eprintln!("warning: cannot record the end of run `{}`: {e}", record.run_id);
    }
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

fn unwritable(state: &std::path::Path, e: &std::io::Error) -> Failure {
    Failure::Environment(format!(
        "cannot create the run directory under `{}`: {e}; set COMETFLOW_STATE_DIR to a writable folder",
        state.display()
    ))
}

/// `env.NAME` for the names the pipeline lists, plus every `COMETFLOW_*` variable.
pub(crate) fn template_env(listed: &IndexMap<String, Option<String>>) -> IndexMap<String, String> {
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
