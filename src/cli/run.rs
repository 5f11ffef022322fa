//! `cometflow run FILE`: validate, plan, execute, report.

use std::sync::Arc;

use clap::Args;
use indexmap::IndexMap;
use serde_json::Value as Json;
use tokio_util::sync::CancellationToken;

use super::{FileArg, OutputArgs};
use crate::api::{Api, Endpoint};
use crate::engine::RunStatus;
use crate::error::{Failure, Outcome};
use crate::plan::Plan;
use crate::report::Verbosity;
use crate::runner::Launch;
use crate::steps::Registry;

pub const EXAMPLES: &str = "\
Examples:
  cometflow run song.yaml
  cometflow run song.yaml -i theme=\"a rainy night\" -i clips=3
  cometflow run song.yaml --json > result.json
  cometflow run song.yaml --dry-run
  cometflow run song.yaml --resume last      finish the latest interrupted run
  cometflow run song.yaml --fresh            call every provider again (ignore the cache)

Exit status: 0 succeeded, 1 a step failed, 2 invalid pipeline or arguments (nothing ran),
3 the environment failed (no API key, unusable state store, the simulator did not start),
130 interrupted.";

/// What every command that starts runs (`run`, `watch`, `submit`) takes besides the file.
#[derive(Debug, Args)]
pub struct RunSettings {
    /// Set an input: -i name=value (converted to the input's type)
    #[arg(short = 'i', long = "input", value_name = "NAME=VALUE", value_parser = parse_input)]
    pub inputs: Vec<(String, String)>,
    /// Steps in flight at once (overrides the pipeline's `concurrency`; default 8)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: Option<u32>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub file: FileArg,
    #[command(flatten)]
    pub settings: RunSettings,
    /// Print the run's result as JSON on stdout (progress stays on stderr)
    #[arg(long)]
    pub json: bool,
    /// Write an HTML report of the run into its folder and print its path
    #[arg(long)]
    pub report: bool,
    /// Validate and print the plan with the paid calls it would make; run nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Run against the built-in CometAPI simulator (no key, no network, nothing paid);
    /// tune it with COMETFLOW_SIM, e.g. task_time=200ms,fail_tasks=true
    #[arg(long)]
    pub simulate: bool,
    /// Finish an interrupted or failed run in its own folder: RUN_ID, or `last` for this
    /// pipeline's latest run. Finished steps are kept; submitted tasks are polled, not paid again
    #[arg(long, value_name = "RUN_ID|last")]
    pub resume: Option<String>,
    /// With --resume: pay again for a step whose submit was sent but whose task id was never
    /// recorded (it may have been charged); without it such a step stops with a message
    #[arg(long, requires = "resume")]
    pub resubmit_unknown: bool,
    /// Do not reuse cached step results (new results are still cached)
    #[arg(long)]
    pub fresh: bool,
}

pub(super) fn parse_input(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("`{s}` is not NAME=VALUE; write e.g. -i theme=\"a rainy night\""))
}

pub fn run(args: RunArgs, output: &OutputArgs) -> Outcome {
    let verbosity = super::verbosity(output);
    let rt = super::run_runtime()?;
    let outcome = rt.block_on(async {
        // The simulator (kept alive for the whole run) answers before any kind is built, so
        // every provider kind is given the client that reaches it.
        let (endpoint, _simulator) = super::endpoint(args.simulate && !args.dry_run).await?;
        let api = Arc::new(Api::new(endpoint.clone()));
        let registry = Registry::new(api);
        let plan = Arc::new(crate::load_plan(&args.file.file, &registry).map_err(invalid)?);
        // Kept to the end of the process, which frees it at once rather than step by step.
        std::mem::forget(plan.clone());
        let mut inputs =
            crate::validate::resolve_inputs(&plan.pipeline, &args.settings.inputs).map_err(invalid)?;
        let resume = match &args.resume {
            None => None,
            Some(spec) => {
                let (id, original) = resumable(spec, &plan, &args.settings.inputs, &inputs)?;
                inputs = original;
                Some(id)
            }
        };
        if args.dry_run {
            print!("{}", dry_run(&plan, &inputs));
            return Ok(());
        }
        execute(plan, inputs, resume, &args, verbosity, &endpoint).await
    });
    // A template still rendering on a blocking thread (an interrupted run) must not hold the
    // exit: its record is already written.
    rt.shutdown_background();
    outcome
}

fn invalid(diags: Vec<crate::diag::Diagnostic>) -> Failure {
    crate::diag::report(&diags);
    Failure::invalid_reported()
}

/// The run `--resume` names and its original inputs. A resumed run keeps its inputs: `-i`
/// values that differ are refused, since finished steps were made from the old ones.
fn resumable(
    spec: &str,
    plan: &Plan,
    given: &[(String, String)],
    resolved: &IndexMap<String, Json>,
) -> Result<(String, IndexMap<String, Json>), Failure> {
    let store = crate::store::Store::open().map_err(|e| Failure::Environment(e.to_string()))?;
    let run = crate::store::resume::resolve(&store, spec, &plan.pipeline.name).map_err(Failure::Invalid)?;
    for (name, _) in given {
        if resolved.get(name) != run.inputs.get(name) {
            return Err(Failure::Invalid(format!(
                "`-i {name}` differs from run `{}`, which used {}; a resumed run keeps its inputs: \
                 drop `-i`, or start a new run without `--resume`",
                run.id,
                run.inputs.get(name).map_or("no value".to_owned(), |v| v.to_string())
            )));
        }
    }
    Ok((run.id, run.inputs))
}

async fn execute(
    plan: Arc<Plan>,
    inputs: IndexMap<String, Json>,
    resume: Option<String>,
    args: &RunArgs,
    verbosity: Verbosity,
    endpoint: &Endpoint,
) -> Outcome {
    if plan.pipeline.budget.is_some() {
        check_balance(endpoint).await?;
    }
    let cancel = CancellationToken::new();
    let interrupt = tokio::spawn(watch_ctrl_c(cancel.clone()));
    let concurrency = args.settings.concurrency.map(|c| c as usize);
    let backend = endpoint.backend();
    let launch = Launch {
        plan,
        inputs,
        concurrency,
        verbosity,
        cancel,
        resume,
        fresh: args.fresh,
        resubmit_unknown: args.resubmit_unknown,
        backend,
    };
    let record = crate::runner::launch(launch).await?;
    interrupt.abort();
    if args.report {
        // Stdout may hold `--json`, so the path goes to stderr with the progress.
        match super::report::write_report(&record, &crate::html::default_path(&record)) {
            Ok(path) => eprintln!("report: {}", path.display()),
            Err(message) => eprintln!("error: {message}"),
        }
    }
    if args.json {
        match serde_json::to_string_pretty(&record) {
            Ok(json) => println!("{json}"),
            Err(e) => eprintln!("error: cannot print the result as JSON: {e}"),
        }
    }
    let outcome = match record.status {
        RunStatus::Succeeded => Ok(()),
        // A step that could not run for want of a key or a usable folder: the environment.
        RunStatus::Failed if record.environment_failed() => Err(Failure::Environment(String::new())),
        RunStatus::Failed => Err(Failure::failed_reported()),
        RunStatus::Interrupted => Err(Failure::Interrupted),
    };
    // The process ends right after: the record (every step's outputs) is left to it rather
    // than freed value by value.
    std::mem::forget(record);
    outcome
}

/// A pipeline with `budget:` first reads the balance (with a key, or the simulator): an
/// exhausted account refuses the run before any paid call; a balance that cannot be read
/// (offline, a 4xx) only warns, since the run may still succeed.
async fn check_balance(endpoint: &Endpoint) -> Outcome {
    if !endpoint.has_key() {
        return Ok(());
    }
    match crate::api::quota::fetch(endpoint).await {
        Ok(balance) if balance.exhausted() => Err(Failure::Failed(format!(
            "the CometAPI balance is {} (exhausted), so nothing was run; \
             top up at https://www.cometapi.com, then run again",
            crate::api::quota::usd(balance.total_quota)
        ))),
        Ok(_) => Ok(()),
        Err(message) => {
            eprintln!("warning: cannot read the balance before the run ({message}); running anyway");
            Ok(())
        }
    }
}

/// First Ctrl-C: cancel in-flight steps cleanly. Second: leave at once.
async fn watch_ctrl_c(cancel: CancellationToken) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    cancel.cancel();
    if tokio::signal::ctrl_c().await.is_ok() {
        eprintln!("interrupted again: quitting without waiting");
        // The one exit outside `error::exit_code`: a second Ctrl-C must not wait for anything.
        std::process::exit(crate::error::code::INTERRUPTED);
    }
}

/// The plan, and how many paid provider calls it would make.
fn dry_run(plan: &Plan, inputs: &IndexMap<String, Json>) -> String {
    let mut out = plan.render(crate::plan::Format::Text);
    let scope = minijinja::Value::from_serialize(
        serde_json::json!({ "inputs": inputs, "env": {}, "run": {}, "steps": {} }),
    );
    let mut calls = 0u64;
    let mut unknown = Vec::new();
    for s in &plan.pipeline.steps {
        if !s.kind.spec().paid {
            continue;
        }
        match &s.for_each {
            None => calls += 1,
            Some(fe) => match fe.render(&scope) {
                Ok(Json::Array(items)) => calls += items.len() as u64,
                _ => unknown.push(s.id.as_str()),
            },
        }
    }
    out.push_str(&format!("\npaid calls: {calls}"));
    if !unknown.is_empty() {
        out.push_str(&format!(" plus one per item of {} (known only at run time)", unknown.join(", ")));
    }
    if let Some(b) = plan.pipeline.budget {
        out.push_str(&format!("; budget allows {b}"));
    }
    out.push_str("\nnothing was run (--dry-run)\n");
    out
}
