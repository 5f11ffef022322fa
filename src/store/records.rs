//! A run's record rebuilt from the state database, for a run that has no `run.json` (its
//! process was killed before writing it): `runs show RUN_ID --json` then still prints the
//! object `run --json` would have, with the status `interrupted`.
//!
//! It owns this read; it must not format anything.

use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use jiff::Timestamp;
use serde_json::Value as Json;

use super::db::{Db, StoreError};
use super::runs::RunRow;
use crate::engine::events::Status;
use crate::engine::{RunRecord, RunStatus, StepRecord};

pub fn rebuild(db: &Arc<Db>, run: &RunRow) -> Result<RunRecord, StoreError> {
    let rows = db.with(|c| {
        let mut stmt = c.prepare(
            "SELECT step, kind, status, attempts, cached, outputs, error, started_at, finished_at
             FROM steps WHERE run_id = ?1 AND item = -1 ORDER BY rowid",
        )?;
        let rows = stmt.query_map([&run.id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, u32>(3)?,
                r.get::<_, bool>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, Option<String>>(7)?,
                r.get::<_, Option<String>>(8)?,
            ))
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
    })?;
    Ok(assemble(run, rows))
}

/// The record of a run in a shared store that has none yet (queued or running), from its
/// step rows as `runs show` lists them.
pub fn from_rows(run: &RunRow, rows: &[super::history::StepRow]) -> RunRecord {
    let rows = rows
        .iter()
        .filter(|r| r.item.is_none())
        .map(|r| {
            let s = r.clone();
            (s.step, s.kind, s.status, s.attempts, s.cached, s.outputs, s.error, None, None)
        })
        .collect();
    assemble(run, rows)
}

type Row = (String, String, String, u32, bool, String, Option<String>, Option<String>, Option<String>);

fn assemble(run: &RunRow, rows: Vec<Row>) -> RunRecord {
    let time = |t: Option<String>| t.and_then(|t| t.parse::<Timestamp>().ok());
    let mut steps = IndexMap::new();
    for (step, kind, status, attempts, cached, outputs, error, started, finished) in rows {
        let status = match status.as_str() {
            "succeeded" => Status::Succeeded,
            "failed" => Status::Failed,
            "skipped" => Status::Skipped,
            _ => Status::Cancelled,
        };
        let (started_at, finished_at) = (time(started), time(finished));
        let duration_ms = match (started_at, finished_at) {
            (Some(s), Some(f)) => s.duration_until(f).unsigned_abs(),
            _ => Duration::ZERO,
        };
        let outputs = serde_json::from_str(&outputs).unwrap_or(Json::Object(Default::default()));
        let record = StepRecord {
            status,
            kind,
            attempts,
            cached,
            started_at,
            finished_at,
            duration_ms,
            outputs,
            error,
            needs: Vec::new(),
            environment: false,
        };
        steps.insert(step, record);
    }
    let started_at = run.started_at.parse::<Timestamp>().unwrap_or(Timestamp::UNIX_EPOCH);
    let finished_at = steps.values().filter_map(|s| s.finished_at).max().unwrap_or(started_at);
    let status = match run.shown_status() {
        "succeeded" => RunStatus::Succeeded,
        "failed" => RunStatus::Failed,
        _ => RunStatus::Interrupted,
    };
    RunRecord {
        run_id: run.id.clone(),
        pipeline: run.pipeline.clone(),
        pipeline_file: run.pipeline_file.clone(),
        status,
        started_at,
        finished_at,
        duration_ms: started_at.duration_until(finished_at).unsigned_abs(),
        run_dir: run.run_dir.clone(),
        inputs: run.inputs.clone(),
        outputs: IndexMap::new(),
        steps,
        resumed: run.resumes > 0,
        paid_calls: run.paid_calls,
    }
}
