//! `cometflow runs` and `cometflow runs show RUN_ID|last`: run history from the state store.
//!
//! It owns the two tables' layout; it must not write to the store.

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

Exit status: 0 shown, 1 the state database cannot be read, 2 no such run.";

#[derive(Debug, Args)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub show: Option<RunsCommand>,
    /// How many runs to list
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// One run's steps: status, attempts, cached, task ids, outputs and errors
    Show {
        /// A run id, or `last` for the latest run
        run: String,
    },
}

pub fn runs(args: RunsArgs) -> Outcome {
    let db = Store::open().map_err(|e| Failure::Environment(e.to_string()))?;
    let text = match args.show {
        None => db.list(args.limit).map(|list| list_table(&list)),
        Some(RunsCommand::Show { run }) => {
            let found = if run == "last" { db.latest(None) } else { db.find(&run) };
            match found {
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
    Ok(out)
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
