//! `cometflow submit FILE`: queues a run for the workers (the pipeline's text travels with
//! it) and prints its id; `--wait` waits for its end and prints what `run` prints.

use std::time::Duration;

use clap::Args;

use super::FileArg;
use crate::error::{Failure, Outcome};
use crate::store::pg::queue::{self, Submission};
use crate::store::Store;

pub const EXAMPLES: &str = "\
Examples:
  cometflow submit song.yaml -i theme=\"a rainy night\"
  cometflow submit song.yaml --wait --json > result.json

Exit status: 0 queued (with --wait: succeeded), 1 a step failed or the run was cancelled,
2 invalid pipeline or arguments, 3 the store cannot be reached.";

#[derive(Debug, Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub file: FileArg,
    #[command(flatten)]
    pub settings: super::run::RunSettings,
    /// Wait for the run to end and print its result
    #[arg(long)]
    pub wait: bool,
    /// With --wait: print the run's result as JSON (the object `run --json` prints)
    #[arg(long)]
    pub json: bool,
}

pub fn submit(args: SubmitArgs) -> Outcome {
    let registry = super::registry();
    let plan = crate::load_plan(&args.file.file, &registry).map_err(|d| {
        crate::diag::report(&d);
        Failure::invalid_reported()
    })?;
    let inputs = crate::validate::resolve_inputs(&plan.pipeline, &args.settings.inputs).map_err(|d| {
        crate::diag::report(&d);
        Failure::invalid_reported()
    })?;
    let text = std::fs::read_to_string(&args.file.file)
        .map_err(|e| Failure::Invalid(format!("cannot read `{}`: {e}", args.file.file.display())))?;
    let file = std::path::absolute(&args.file.file).unwrap_or_else(|_| args.file.file.clone());
    super::runtime()?.block_on(async {
        let pg = Store::open().and_then(|s| s.shared("cometflow submit")).map_err(env)?;
        let id = crate::store::new_run_id();
        let run_dir = crate::store::runs_root(&crate::store::state_dir()).join(&id);
        let submission = Submission {
            id: &id,
            pipeline: &plan.pipeline.name,
            file: &file.display().to_string(),
            text: &text,
            inputs: &inputs,
            run_dir: &run_dir.display().to_string(),
            concurrency: args.settings.concurrency,
            due_key: None,
        };
        queue::submit(&pg, &submission).await.map_err(env)?;
        if !args.wait {
            println!("{id}");
            return Ok(());
        }
        eprintln!("cometflow: queued run {id} of `{}`; waiting for a worker", plan.pipeline.name);
        wait(&pg, &id, args.json).await
    })
}

fn env(e: crate::store::StoreError) -> Failure {
    Failure::Environment(e.to_string())
}

/// Polls the run's row until it ends, then prints its record.
async fn wait(pg: &crate::store::pg::Pg, id: &str, json: bool) -> Outcome {
    let (status, record) = loop {
        match queue::state(pg, id).await.map_err(env)? {
            Some((status, record)) if !matches!(status.as_str(), "queued" | "running") => {
                break (status, record)
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            None => return Err(Failure::Failed(format!("run `{id}` disappeared from the store"))),
        }
    };
    let record: serde_json::Value = record.and_then(|r| serde_json::from_str(&r).ok()).unwrap_or_default();
    if json {
        println!("{}", serde_json::to_string_pretty(&record).unwrap_or_default());
    } else if let Ok(r) = serde_json::from_value::<crate::engine::RunRecord>(record.clone()) {
        eprint!("{}", crate::report::summary(&r, crate::diag::color_stderr()));
    } else if let Some(e) = record.get("error").and_then(|e| e.as_str()) {
        eprintln!("{e}");
    }
    match status.as_str() {
        "succeeded" => Ok(()),
        "cancelled" => Err(Failure::Failed(format!("run `{id}` was cancelled"))),
        "interrupted" => Err(Failure::Interrupted),
        _ => Err(Failure::failed_reported()),
    }
}
