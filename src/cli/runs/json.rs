//! Scriptable history: the `runs` filters (`--pipeline`, `--status`, `--since`) and the JSON
//! forms, `runs --json` (an array, newest first) and `runs show RUN_ID --json` (the very
//! object `run --json` printed, read back from the run's `run.json`).

use std::path::Path;

use jiff::Timestamp;
use serde_json::{json, Value as Json};

use crate::engine::RunRecord;
use crate::store::runs::RunRow;
use crate::store::Store;

/// The statuses `--status` takes (`interrupted` includes runs whose process died).
pub(super) const STATUSES: &[&str] = &["succeeded", "failed", "interrupted", "running"];

/// Which runs to list.
#[derive(Debug, Default)]
pub(super) struct Filter {
    pub pipeline: Option<String>,
    pub status: Option<String>,
    pub since: Option<Timestamp>,
}

impl Filter {
    /// Checks the flags' values; the message says what is accepted.
    pub(super) fn new(
        pipeline: Option<String>,
        status: Option<String>,
        since: Option<String>,
    ) -> Result<Self, String> {
        if let Some(s) = &status {
            if !STATUSES.contains(&s.as_str()) {
                return Err(format!(
                    "`--status {s}` is not a run status; use one of {}",
                    STATUSES.join(", ")
                ));
            }
        }
        let since = match since {
            None => None,
            Some(text) => Some(text.trim().parse::<Timestamp>().map_err(|e| {
                format!("`--since {text}` is not an RFC 3339 time ({e}); write e.g. 2026-01-02T09:00:00Z")
            })?),
        };
        Ok(Filter { pipeline, status, since })
    }

    pub(super) fn active(&self) -> bool {
        self.pipeline.is_some() || self.status.is_some() || self.since.is_some()
    }

    pub(super) fn keep(&self, run: &RunRow) -> bool {
        self.pipeline.as_ref().is_none_or(|p| *p == run.pipeline)
            && self.status.as_ref().is_none_or(|s| s == run.shown_status())
            && self.since.is_none_or(|since| run.started_at.parse::<Timestamp>().is_ok_and(|t| t >= since))
    }
}

/// One run of `runs --json`: the fields `run --json` has at its top level, minus `steps`.
fn summary(run: &RunRow) -> Json {
    let started = run.started_at.parse::<Timestamp>().ok();
    let finished = run.finished_at.as_deref().and_then(|t| t.parse::<Timestamp>().ok());
    let duration_ms = match (started, finished) {
        (Some(s), Some(f)) => json!(s.duration_until(f).unsigned_abs().as_millis() as u64),
        _ => Json::Null,
    };
    json!({
        "run_id": run.id,
        "pipeline": run.pipeline,
        "pipeline_file": run.pipeline_file,
        "status": run.shown_status(),
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_ms": duration_ms,
        "run_dir": run.run_dir,
        "inputs": run.inputs,
        "paid_calls": run.paid_calls,
        "tasks": run.tasks,
        "resumes": run.resumes,
    })
}

pub(super) fn list(runs: &[RunRow]) -> String {
    let all: Vec<Json> = runs.iter().map(summary).collect();
    format!("{}\n", serde_json::to_string_pretty(&all).unwrap_or_else(|_| "[]".into()))
}

/// The run's record as `run --json` printed it; a run that never finished (its process was
/// killed) has no `run.json`, so its record is rebuilt from the state database.
pub(super) fn show(db: &Store, run: &RunRow) -> Result<String, String> {
    let path = Path::new(&run.run_dir).join("run.json");
    let parse = |text: &str, from: &dyn std::fmt::Display| -> Result<RunRecord, String> {
        serde_json::from_str(text).map_err(|e| {
            format!("`{from}` is not a run record ({e}); it may come from another cometflow version")
        })
    };
    let record: RunRecord = match std::fs::read_to_string(&path) {
        Ok(text) if run.shown_status() != "running" => parse(&text, &path.display())?,
        // A shared store keeps the finished record itself; a queued or running one, and
        // one whose process was killed, is rebuilt from the rows.
        _ => match db {
            Store::Sqlite(d) => crate::store::records::rebuild(d, run).map_err(|e| e.to_string())?,
            Store::Pg(_) => match db.record(&run.id).map_err(|e| e.to_string())? {
                Some(json) => parse(&json.to_string(), &format!("run {}", run.id))?,
                None => {
                    // Queued or running: what is known so far, with its own status.
                    let rows = db.steps(&run.id).map_err(|e| e.to_string())?;
                    let mut value = serde_json::to_value(crate::store::records::from_rows(run, &rows))
                        .map_err(|e| format!("cannot print the run as JSON: {e}"))?;
                    value["status"] = serde_json::json!(run.shown_status());
                    return serde_json::to_string_pretty(&value)
                        .map(|s| format!("{s}\n"))
                        .map_err(|e| format!("cannot print the run as JSON: {e}"));
                }
            },
        },
    };
    serde_json::to_string_pretty(&record)
        .map(|s| format!("{s}\n"))
        .map_err(|e| format!("cannot print the run as JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pipeline: &str, status: &str, started: &str) -> RunRow {
        RunRow {
            id: "r".into(),
            pipeline: pipeline.into(),
            pipeline_file: String::new(),
            status: status.into(),
            started_at: started.into(),
            finished_at: None,
            inputs: Default::default(),
            run_dir: String::new(),
            pid: None,
            resumes: 0,
            paid_calls: 0,
            tasks: 0,
            shared: false,
        }
    }

    #[test]
    fn filters_combine_and_a_dead_running_run_counts_as_interrupted() {
        let f =
            Filter::new(Some("a".into()), Some("interrupted".into()), Some("2026-01-01T00:00:00Z".into()))
                .unwrap();
        assert!(f.keep(&row("a", "running", "2026-02-01T00:00:00Z")));
        assert!(!f.keep(&row("b", "interrupted", "2026-02-01T00:00:00Z")));
        assert!(!f.keep(&row("a", "failed", "2026-02-01T00:00:00Z")));
        assert!(!f.keep(&row("a", "interrupted", "2025-12-31T23:59:59Z")));
    }

    #[test]
    fn bad_flag_values_say_what_is_accepted() {
        let e = Filter::new(None, Some("done".into()), None).unwrap_err();
        assert!(e.contains("use one of succeeded, failed, interrupted, running"), "{e}");
        let e = Filter::new(None, None, Some("yesterday".into())).unwrap_err();
        assert!(e.contains("is not an RFC 3339 time"), "{e}");
    }
}
