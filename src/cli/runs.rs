//! `cometflow runs` and `cometflow runs show RUN_ID|last`: run history from the state store.
//!
//! It owns the two tables' layout; it must not write to the store.

mod json;

use clap::{Args, Subcommand};

use crate::error::{Failure, Outcome};
use crate::store::history::{self, StepRow};
use crate::store::runs::RunRow;
use crate::store::Store;

pub const EXAMPLES: &str = "\
Examples:
  cometflow runs                 the latest runs, newest first
  cometflow runs show last       the steps, task ids and outputs of the latest run
  cometflow runs show 20250101-120000-ab12
  cometflow runs --json --pipeline song --status failed --since 2026-01-01T00:00:00Z
  cometflow runs show last --json   the same object `run --json` printed

Exit status: 0 shown, 1 the state database cannot be read, 2 no such run.";

#[derive(Debug, Args)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub show: Option<RunsCommand>,
    /// How many runs to list
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Print a JSON array, newest first
    #[arg(long)]
    pub json: bool,
    /// Only runs of this pipeline (its `name`)
    #[arg(long, value_name = "NAME")]
    pub pipeline: Option<String>,
    /// Only runs with this status: succeeded, failed, interrupted or running
    #[arg(long)]
    pub status: Option<String>,
    /// Only runs started at or after this time (RFC 3339, e.g. 2026-01-02T09:00:00Z)
    #[arg(long, value_name = "RFC3339")]
    pub since: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// One run's steps: status, attempts, cached, task ids, outputs and errors
    Show {
        /// A run id, or `last` for the latest run
        run: String,
        /// Print the run as JSON: the same object `run --json` printed
        #[arg(long)]
        json: bool,
    },
}

pub fn runs(args: RunsArgs) -> Outcome {
    let db = Store::open().map_err(|e| Failure::Environment(e.to_string()))?;
    let filter = json::Filter::new(args.pipeline, args.status, args.since).map_err(Failure::Invalid)?;
    let text = match args.show {
        // Filtered before the limit, so `--limit 5 --status failed` is the last five failures.
        None => db.list(i64::MAX as usize).map(|all| {
            let list: Vec<RunRow> = all.into_iter().filter(|r| filter.keep(r)).take(args.limit).collect();
            match (args.json, list.is_empty() && filter.active()) {
                (true, _) => json::list(&list),
                (false, true) => "no runs match; `cometflow runs` without filters lists them all
"
                .to_owned(),
                (false, false) => list_table(&list),
            }
        }),
        Some(RunsCommand::Show { run, json }) => {
            let found = if run == "last" { db.latest(None) } else { db.find(&run) };
            match found {
                Ok(Some(row)) if json => Ok(json::show(&db, &row).map_err(Failure::Failed)?),
                Ok(Some(row)) => show(&db, &row),
                Ok(None) => {
                    return Err(Failure::Invalid(format!(
                        "there is no run `{run}` in `{}`; list runs with `cometflow runs`",
                        db.describe()
                    )))
                }
                Err(e) => Err(e),
            }
        }
    }
    .map_err(|e| Failure::Failed(e.to_string()))?;
    print!("{text}");
    Ok(())
}

fn duration(run: &RunRow) -> String {
    let (Ok(start), Some(Ok(end))) = (
        run.started_at.parse::<jiff::Timestamp>(),
        run.finished_at.as_deref().map(str::parse::<jiff::Timestamp>),
    ) else {
        return "-".into();
    };
    crate::engine::human_duration(start.duration_until(end).unsigned_abs())
}

/// Seconds precision is enough to tell runs apart by eye.
fn short_time(t: &str) -> String {
    t.parse::<jiff::Timestamp>()
        .map_or_else(|_| t.to_owned(), |ts| ts.strftime("%Y-%m-%d %H:%M:%SZ").to_string())
}

fn list_table(list: &[RunRow]) -> String {
    if list.is_empty() {
        return "no runs yet; start one with `cometflow run FILE`\n".into();
    }
    let id_w = list.iter().map(|r| r.id.len()).max().unwrap_or(6).max(6);
    let p_w = list.iter().map(|r| r.pipeline.len()).max().unwrap_or(8).max(8);
    let mut out = format!(
        "{:id_w$}  {:p_w$}  {:11}  {:20}  {:>8}  {:>5}  {:>5}\n",
        "RUN ID", "PIPELINE", "STATUS", "STARTED", "DURATION", "CALLS", "TASKS"
    );
    for r in list {
        let status =
            if r.resumes > 0 { format!("{}*", r.shown_status()) } else { r.shown_status().to_owned() };
        out.push_str(&format!(
            "{:id_w$}  {:p_w$}  {:11}  {:20}  {:>8}  {:>5}  {:>5}\n",
            r.id,
            r.pipeline,
            status,
            short_time(&r.started_at),
            duration(r),
            r.paid_calls,
            r.tasks
        ));
    }
    if list.iter().any(|r| r.resumes > 0) {
        out.push_str("* resumed\n");
    }
    out
}

fn abbreviate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max).collect();
    format!("{cut}…")
}

fn label(step: &str, item: Option<usize>) -> String {
    match item {
        Some(i) => format!("{step}[{i}]"),
        None => step.to_owned(),
    }
}

fn show(db: &Store, run: &RunRow) -> Result<String, crate::store::StoreError> {
    let steps = db.steps(&run.id)?;
    let tasks = db.tasks(&run.id)?;
    let mut out = format!("run {}  pipeline `{}`  {}\n", run.id, run.pipeline, run.shown_status());
    out.push_str(&format!(
        "  started {}, took {}, {} paid calls, {} tasks{}\n  file {}\n  folder {}\n  inputs {}\n\n",
        short_time(&run.started_at),
        duration(run),
        run.paid_calls,
        run.tasks,
        if run.resumes > 0 { format!(", resumed {} time(s)", run.resumes) } else { String::new() },
        run.pipeline_file,
        run.run_dir,
        serde_json::to_string(&run.inputs).unwrap_or_default(),
    ));
    for s in steps
        .iter()
        .filter(|s| s.item.is_none() || !steps.iter().any(|o| o.step == s.step && o.item.is_none()))
    {
        out.push_str(&step_block(s, &steps, &tasks));
    }
    let unknown = match db {
        Store::Sqlite(d) => crate::store::resume::unknown_submits(d, &run.id)?,
        Store::Pg(pg) => crate::store::pg::runs::unknown_submits(pg, &run.id)?,
    };
    out.push_str(&unknown_block(&run.id, &unknown));
    Ok(out)
}

/// Submits sent whose answer was never recorded: tasks that may exist and be charged.
fn unknown_block(run_id: &str, unknown: &[crate::store::resume::UnknownSubmit]) -> String {
    if unknown.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "\nsubmits sent without a recorded task id (they may have been charged; look for them in your \
         CometAPI logs, or pay again with `cometflow run PIPELINE --resume {run_id} --resubmit-unknown`):\n"
    );
    for u in unknown {
        out.push_str(&format!(
            "  {}  {} submit sent {}\n",
            label(&u.step, u.item),
            u.family,
            short_time(&u.sent_at)
        ));
    }
    out
}

fn step_block(s: &StepRow, all: &[StepRow], tasks: &[history::TaskRow]) -> String {
    let mut out = format!(
        "{}  {}  {}  attempts {}{}\n",
        label(&s.step, s.item),
        s.kind,
        s.status,
        s.attempts,
        if s.cached { "  (cached)" } else { "" }
    );
    for t in tasks.iter().filter(|t| t.step == s.step) {
        out.push_str(&format!(
            "  task {} {} ({}){}\n",
            t.family,
            t.task_id,
            t.state,
            t.item.map_or(String::new(), |i| format!(" item {i}"))
        ));
    }
    for item in all.iter().filter(|o| o.step == s.step && o.item.is_some()) {
        out.push_str(&format!(
            "  item {}  {}  attempts {}{}\n",
            item.item.unwrap_or_default(),
            item.status,
            item.attempts,
            if item.cached { "  (cached)" } else { "" }
        ));
    }
    if s.outputs != "{}" && s.outputs != "[]" {
        out.push_str(&format!("  outputs {}\n", abbreviate(&s.outputs, 160)));
    }
    if let Some(e) = &s.error {
        out.push_str(&format!("  error {e}\n"));
    }
    out
}
