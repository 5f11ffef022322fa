//! `cometflow schedule FILE_OR_DIR...` (the daemon) and `cometflow schedule next FILE`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use jiff::Timestamp;

use super::OutputArgs;
use crate::error::{Failure, Outcome};
use crate::schedule::daemon::{DaemonOptions, Stop};
use crate::schedule::next_fires;
use crate::steps::Registry;

pub const EXAMPLES: &str = "\
Starts each pipeline at its `on.schedule` times, read in the entry's time zone:

  on:
    schedule:
      - cron: \"0 9 * * MON-FRI\"     # minute hour day-of-month month day-of-week
        timezone: Europe/Berlin     # IANA name; default UTC
        overlap: skip               # skip (default) | queue | allow
        catch_up: latest            # none (default) | latest: run once for a time missed while down
        inputs: { theme: morning }  # over the pipeline's defaults

A time skipped by a daylight-saving change fires once, right after the change; a time
repeated by one fires once, at its first occurrence. Edited files are reloaded; an
invalid edit keeps the previous schedule. Fire times already handled are remembered in
<state dir>/schedule.json.

Examples:
  cometflow schedule pipelines/                   every *.yaml and *.yml in the folder
  cometflow schedule daily.yaml weekly.yaml
  cometflow schedule next daily.yaml --count 3
  cometflow schedule next daily.yaml --after 2026-03-28T00:00:00Z

Exit status: 0 after SIGTERM, 130 after Ctrl-C (runs in flight are cancelled and
recorded as interrupted), 2 when nothing can be scheduled.";

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ScheduleArgs {
    #[command(subcommand)]
    pub command: Option<ScheduleCommand>,
    /// Pipeline files, or folders whose *.yaml and *.yml files to schedule
    #[arg(value_name = "FILE_OR_DIR", required = true)]
    pub paths: Vec<PathBuf>,
    /// Steps in flight at once in each run (overrides the pipelines' `concurrency`)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: Option<u32>,
    /// Run against the built-in CometAPI simulator (no key, no network)
    #[arg(long)]
    pub simulate: bool,
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Print the next fire times of a pipeline's schedules, one RFC 3339 UTC time a line
    #[command(
        after_help = "Example:\n  cometflow schedule next daily.yaml --count 3 --after 2026-03-28T00:00:00Z\n  2026-03-30T07:00:00Z\n  2026-03-31T07:00:00Z\n  2026-04-01T07:00:00Z"
    )]
    Next(NextArgs),
}

#[derive(Debug, Args)]
pub struct NextArgs {
    /// The pipeline's YAML file
    pub file: PathBuf,
    /// How many fire times to print
    #[arg(long, short = 'n', default_value_t = 5, value_name = "N")]
    pub count: usize,
    /// Start after this instant (RFC 3339, e.g. 2026-03-28T00:00:00Z); default now
    #[arg(long, value_name = "RFC3339")]
    pub after: Option<Timestamp>,
}

pub fn schedule(args: ScheduleArgs, output: &OutputArgs) -> Outcome {
    if let Some(ScheduleCommand::Next(next)) = args.command {
        return print_next(next);
    }
    let verbosity = super::verbosity(output);
    let stopped = super::runtime()?.block_on(async {
        // Signal streams need the runtime; they are created inside it, before the daemon starts.
        let stop = signals();
        // The simulator is kept alive while the daemon runs.
        let (endpoint, _simulator) = super::endpoint(args.simulate).await?;
        let opts = DaemonOptions {
            paths: args.paths,
            registry: Registry::new(std::sync::Arc::new(crate::api::Api::new(endpoint.clone()))),
            backend: endpoint.backend(),
            concurrency: args.concurrency.map(|c| c as usize),
            verbosity,
        };
        crate::schedule::daemon::run(opts, stop).await
    })?;
    match stopped {
        Stop::Terminate => Ok(()),
        Stop::Interrupt => Err(Failure::Interrupted),
    }
}

/// Ctrl-C or SIGTERM, whichever comes first. The handlers are installed before the
/// future is returned, so a signal sent as soon as the schedule is printed is not lost.
fn signals() -> impl std::future::Future<Output = Stop> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let streams = signal(SignalKind::interrupt()).and_then(|i| Ok((i, signal(SignalKind::terminate())?)));
        async move {
            match streams {
                Ok((mut int, mut term)) => tokio::select! {
                    _ = int.recv() => Stop::Interrupt,
                    _ = term.recv() => Stop::Terminate,
                },
                Err(_) => std::future::pending().await,
            }
        }
    }
    #[cfg(not(unix))]
    async {
        match tokio::signal::ctrl_c().await {
            Ok(()) => Stop::Interrupt,
            Err(_) => std::future::pending().await,
        }
    }
}

fn print_next(args: NextArgs) -> Outcome {
    let plan = crate::load_plan(&args.file, &super::registry()).map_err(|diags| {
        crate::diag::report(&diags);
        Failure::invalid_reported()
    })?;
    let specs = &plan.pipeline.triggers.schedule;
    if specs.is_empty() {
        return Err(Failure::Invalid(format!(
            "`{}` has no `on.schedule`; add e.g. `on: {{ schedule: [{{ cron: \"0 9 * * *\" }}] }}`",
            args.file.display()
        )));
    }
    let mut out = String::new();
    for t in next_fires(specs, args.after.unwrap_or_else(Timestamp::now), args.count) {
        out.push_str(&format!("{t}\n"));
    }
    print!("{out}");
    Ok(())
}
