//! The command line: clap types, one file per command, and the exit codes.

mod balance;
mod cache;
mod cancel;
mod completions;
mod graph;
mod init;
mod kinds;
mod report;
mod run;
mod runs;
mod schedule;
mod schema;
mod sim;
mod submit;
mod validate;
mod watch;
mod worker;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::api::Endpoint;
use crate::error::{Failure, Outcome};
use crate::steps::Registry;

const ABOUT: &str = "Run YAML pipelines of generative-AI calls (CometAPI) as a concurrent DAG";

const LONG_ABOUT: &str = "\
cometflow runs pipelines written in YAML: each step calls a model through CometAPI
(chat, Suno, Kling, Midjourney, ...) or runs locally (shell, value, media), and
every step whose inputs are ready runs at once.

A step reads earlier steps' outputs with templates such as
  prompt: \"{{ steps.lyrics.outputs.text }}\"
which also make it wait for those steps.";

const EXAMPLES: &str = "\
Examples:
  cometflow validate pipeline.yaml            check a pipeline without running it
  cometflow run pipeline.yaml -i theme=rain   run it with an input
  cometflow run pipeline.yaml --dry-run       show the plan and the paid calls it would make
  cometflow graph pipeline.yaml --format mermaid
  cometflow watch pipeline.yaml               run again on every save
  cometflow schedule pipelines/              start pipelines at their `on.schedule` times

Environment:
  COMETAPI_KEY          your CometAPI key (also read from .env)
  COMETAPI_BASE_URL     default https://api.cometapi.com
  COMETAPI_QUOTA_URL    where `balance` and `budget:` read the balance (default https://query.cometapi.com/user/quota)
  COMETFLOW_SIM         simulator settings for --simulate, e.g. task_time=200ms,fail_tasks=true
  COMETFLOW_STATE_DIR   where runs are kept (default .cometflow)
  COMETFLOW_STORE       postgres://... to keep runs in PostgreSQL, shared by workers (or --store)
  COMETFLOW_ARTIFACTS   where run folders go (default <state dir>/runs); shared by all workers
  RUST_LOG              tracing filter, e.g. cometflow=debug";

#[derive(Debug, Parser)]
#[command(name = "cometflow", version, about = ABOUT, long_about = LONG_ABOUT, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Where runs, results and the cache live: postgres://user:pass@host/db (shared by
    /// every machine); unset = SQLite in the state directory
    #[arg(long, global = true, value_name = "URL", env = "COMETFLOW_STORE", hide_env_values = true)]
    pub store: Option<String>,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// More detail: -v shows task ids and debug logs, -vv traces everything
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors and the final result
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline
    #[command(after_help = run::EXAMPLES)]
    Run(run::RunArgs),
    /// Check pipeline files without running or calling anything
    #[command(after_help = "Exit status: 0 when every file is valid, 2 otherwise.")]
    Validate(validate::ValidateArgs),
    /// Print a pipeline's dependency graph
    Graph(graph::GraphArgs),
    /// Serve the built-in CometAPI simulator on 127.0.0.1 (for offline runs and tests)
    Sim(crate::sim::SimArgs),
    /// Write a self-contained HTML report of a run
    #[command(after_help = report::EXAMPLES)]
    Report(report::ReportArgs),
    /// Run a pipeline, then again whenever its file or its `on.watch` files change
    #[command(after_help = watch::EXAMPLES)]
    Watch(watch::WatchArgs),
    /// Start pipelines at their `on.schedule` times (a foreground daemon), or print them with `next`
    #[command(after_help = schedule::EXAMPLES)]
    Schedule(schedule::ScheduleArgs),
    /// List past runs, newest first, or show one with `runs show RUN_ID|last`
    #[command(after_help = runs::EXAMPLES)]
    Runs(runs::RunsArgs),
    /// List the step cache's entries with size and age, or prune them with `cache prune`
    #[command(after_help = cache::EXAMPLES)]
    Cache(cache::CacheArgs),
    /// List step kinds with their family, fields and outputs
    Kinds(kinds::KindsArgs),
    /// Print the JSON Schema of the pipeline language, for editors
    #[command(after_help = schema::AFTER_HELP)]
    Schema,
    /// Write a starter pipeline and a `.env.example`
    #[command(after_help = "Templates: blank (default), song-to-video, image-to-video, podcast.")]
    Init(init::InitArgs),
    /// Print the account balance, spending and per-key quota
    #[command(after_help = balance::AFTER_HELP)]
    Balance(balance::BalanceArgs),
    /// Claim queued runs and ready steps of any run from the shared store and run them until
    /// stopped (PostgreSQL store)
    #[command(after_help = worker::EXAMPLES)]
    Worker(worker::WorkerArgs),
    /// Queue a run for the workers and print its id (PostgreSQL store)
    #[command(after_help = submit::EXAMPLES)]
    Submit(submit::SubmitArgs),
    /// Stop a queued or running run; it ends `cancelled` (PostgreSQL store)
    Cancel(cancel::CancelArgs),
    /// List live workers, their last heartbeat and the runs they hold (PostgreSQL store)
    Workers,
    /// Print a shell completion script
    #[command(after_help = completions::AFTER_HELP)]
    Completions(completions::CompletionsArgs),
}

/// A pipeline file argument.
#[derive(Debug, Clone, Args)]
pub struct FileArg {
    /// The pipeline's YAML file
    pub file: PathBuf,
}

/// Every kind, with a client configured from the environment (used only if a step runs).
pub(crate) fn registry() -> Registry {
    Registry::from_env()
}

/// The reporter's detail level from `-q` / `-v`.
pub(crate) fn verbosity(output: &OutputArgs) -> crate::report::Verbosity {
    use crate::report::Verbosity;
    if output.quiet {
        Verbosity::Quiet
    } else if output.verbose > 0 {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    }
}

/// The async runtime for a command.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    build_runtime(tokio::runtime::Builder::new_multi_thread())
}

/// The runtime for one run: a single thread. The engine drives every step from one task
/// anyway (blocking work goes to the blocking pool), so more threads only add a wake-up of
/// another thread to each event: a process that ended, a reply, a timer.
pub(crate) fn run_runtime() -> Result<tokio::runtime::Runtime, Failure> {
    build_runtime(tokio::runtime::Builder::new_current_thread())
}

fn build_runtime(mut builder: tokio::runtime::Builder) -> Result<tokio::runtime::Runtime, Failure> {
    builder
        .enable_all()
        .build()
        .map_err(|e| Failure::Environment(format!("cannot start the async runtime: {e}")))
}

pub fn dispatch(cli: Cli) -> Outcome {
    if let Some(url) = &cli.store {
        // Read once by `store::Store::open`; set before any thread starts.
        std::env::set_var("COMETFLOW_STORE", url);
    }
    match cli.command {
        Command::Run(args) => run::run(args, &cli.output),
        Command::Validate(args) => validate::validate(args),
        Command::Graph(args) => graph::graph(args),
        Command::Sim(args) => sim::sim(args),
        Command::Report(args) => report::report(args),
        Command::Watch(args) => watch::watch(args, &cli.output),
        Command::Schedule(args) => schedule::schedule(args, &cli.output),
        Command::Runs(args) => runs::runs(args),
        Command::Cache(args) => cache::cache(args),
        Command::Kinds(args) => kinds::kinds(args),
        Command::Schema => schema::schema(),
        Command::Init(args) => init::init(args),
        Command::Balance(args) => balance::balance(args),
        Command::Completions(args) => completions::completions(args),
        Command::Worker(args) => worker::worker(args),
        Command::Submit(args) => submit::submit(args),
        Command::Cancel(args) => cancel::cancel(args),
        Command::Workers => cancel::workers(),
    }
}

/// The simulator, kept alive while this is, and the endpoint that reaches it.
pub(crate) struct Simulator {
    /// Dropping it stops the simulator.
    _stop: tokio::sync::oneshot::Sender<()>,
    pub endpoint: Endpoint,
}

/// Starts the simulator in this process when asked. Tasks take 1 s unless `COMETFLOW_SIM`
/// says otherwise, so demos are quick. It serves from a thread of its own, as a remote
/// server would: a run's runtime has one thread, which stays the engine's.
pub(crate) async fn start_simulator() -> Result<Simulator, Failure> {
    let spec = std::env::var("COMETFLOW_SIM").unwrap_or_default();
    let config: crate::sim::SimConfig = format!("task_time=1s,{spec}")
        .parse()
        .map_err(|e| Failure::Invalid(format!("`COMETFLOW_SIM`: {e}")))?;
    let key = config.key.clone().unwrap_or_else(|| "sk-simulated".to_owned());
    let (started_tx, started) = tokio::sync::oneshot::channel::<String>();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let failed = |e: std::io::Error| {
        Failure::Environment(format!(
            "cannot start the simulator on 127.0.0.1: {e}; check that local ports can be opened"
        ))
    };
    let thread = std::thread::Builder::new()
        .name("cometflow-sim".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async move {
                let handle = crate::sim::start(config).await?;
                let _ = started_tx.send(handle.base_url.clone());
                // Until the run drops its `Simulator` (or the process ends).
                let _ = stopped.await;
                drop(handle);
                Ok::<_, std::io::Error>(())
            })
        })
        .map_err(failed)?;
    let Ok(base_url) = started.await else {
        // It ended before saying where it listens: its error says why.
        let e = thread.join().ok().and_then(Result::err);
        return Err(failed(e.unwrap_or_else(|| std::io::Error::other("the simulator thread ended"))));
    };
    tracing::debug!(base = %base_url, "simulator started");
    let endpoint = Endpoint::simulator(&base_url, &key);
    Ok(Simulator { _stop: stop, endpoint })
}

/// The endpoint a command calls: the simulator when `simulate`, else the environment's.
pub(crate) async fn endpoint(simulate: bool) -> Result<(Endpoint, Option<Simulator>), Failure> {
    if simulate {
        let sim = start_simulator().await?;
        Ok((sim.endpoint.clone(), Some(sim)))
    } else {
        Ok((Endpoint::from_env(), None))
    }
}
