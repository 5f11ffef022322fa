//! `cometflow report RUN_ID [-o FILE]`: reads a finished run's `run.json` from the state
//! directory and writes its HTML report (see `html`). `last` picks the newest run.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::engine::RunRecord;
use crate::error::{Failure, Outcome};

pub const EXAMPLES: &str = "\
Examples:
  cometflow report last                      the newest run; prints the report's path
  cometflow report 20250101-120000-ab12 -o report.html

Exit status: 0 written, 1 the file could not be written, 2 no such run.";

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run's id (its folder under `<state dir>/runs/`), or `last` for the newest run
    #[arg(value_name = "RUN_ID")]
    pub run_id: String,
    /// Where to write the report (default: `report.html` in the run's folder)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn report(args: ReportArgs) -> Outcome {
    let runs = crate::store::runs_root(&crate::store::state_dir());
    let record = find_run(&runs, &args.run_id).and_then(|dir| read_record(&dir)).map_err(Failure::Invalid)?;
    let path = args.output.unwrap_or_else(|| crate::html::default_path(&record));
    let path = write_report(&record, &path).map_err(Failure::Failed)?;
    println!("{}", path.display());
    Ok(())
}

/// Writes the report, with an error message that says what to do.
pub(crate) fn write_report(record: &RunRecord, path: &Path) -> Result<PathBuf, String> {
    crate::html::write(record, path).map_err(|e| {
        format!("cannot write the report to `{}`: {e}; choose a writable path with `-o FILE`", path.display())
    })
}

/// The folder of run `id` under `runs`, or of the newest run for `last`.
fn find_run(runs: &Path, id: &str) -> Result<PathBuf, String> {
    if id == "last" {
        return newest_run(runs).ok_or_else(|| {
            format!("no runs in `{}`; run a pipeline first, or set COMETFLOW_STATE_DIR", runs.display())
        });
    }
    let dir = runs.join(id);
    // A run id is one folder name: anything else would read outside the state directory.
    let plain = !id.is_empty() && Path::new(id).file_name().is_some_and(|n| n == id);
    if plain && dir.join("run.json").is_file() {
        Ok(dir)
    } else {
        Err(format!("no run `{id}` in `{}`; pass a run id from there, or `last`", runs.display()))
    }
}

/// Run ids start with their UTC start time, to the second; within one second the
/// later-written record wins.
fn newest_run(runs: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(runs).ok()?;
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter_map(|dir| {
            let modified = dir.join("run.json").metadata().and_then(|m| m.modified()).ok()?;
            let name = dir.file_name()?.to_string_lossy().get(..15)?.to_owned();
            Some((name, modified, dir))
        })
        .max_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)))
        .map(|(_, _, dir)| dir)
}

fn read_record(dir: &Path) -> Result<RunRecord, String> {
    let path = dir.join("run.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read `{}`: {e}; check the run folder's permissions", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        format!("`{}` is not a run record ({e}); it may come from another cometflow version", path.display())
    })
}
