//! What an interrupted run already did, read back for `--resume`: succeeded steps and
//! `for_each` items with their outputs, provider tasks not reported failed by the provider
//! (polled again, never resubmitted), and submits sent whose answer was never recorded
//! (not sent again unless `--resubmit-unknown`).
//!
//! It owns turning rows into the engine's [`Prior`]; it must not decide which run to resume
//! (the runner does) nor how the engine uses it.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::params;

use super::db::{Db, StoreError};
use crate::engine::events::Status;
use crate::engine::hooks::Prior;
use crate::engine::StepRecord;

fn item_of(col: i64) -> Option<usize> {
    usize::try_from(col).ok()
}

/// The prior work of run `id`.
pub fn prior(db: &Arc<Db>, id: &str) -> Result<Prior, StoreError> {
    let mut prior = Prior::default();
    let steps = db.with(|c| {
        let mut stmt = c.prepare(
            "SELECT step, item, kind, attempts, cached, outputs, error, started_at, finished_at
             FROM steps WHERE run_id = ?1 AND status = 'succeeded'",
        )?;
        let rows = stmt.query_map(params![id], |r| {
            let outputs: String = r.get(5)?;
            let time = |s: Option<String>| s.and_then(|s| s.parse::<Timestamp>().ok());
            let record = StepRecord {
                status: Status::Succeeded,
                kind: r.get(2)?,
                attempts: r.get(3)?,
                cached: r.get(4)?,
                started_at: time(r.get(7)?),
                finished_at: time(r.get(8)?),
                duration_ms: Duration::ZERO,
                outputs: serde_json::from_str(&outputs).unwrap_or_default(),
                error: r.get(6)?,
                needs: Vec::new(),
                environment: false,
            };
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, record))
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
    })?;
    for (step, item, mut record) in steps {
        if let (Some(s), Some(f)) = (record.started_at, record.finished_at) {
            record.duration_ms = s.duration_until(f).unsigned_abs();
        }
        if item < 0 {
            prior.steps.insert(step.clone(), record.clone());
        }
        prior.units.insert((step, item_of(item)), record);
    }
    let tasks = db.with(|c| {
        let mut stmt = c.prepare(
            "SELECT step, item, task_id FROM tasks WHERE run_id = ?1 AND state IN ('submitted', 'succeeded') ORDER BY submitted_at",
        )?;
        let rows = stmt.query_map(params![id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get(2)?)))?;
        rows.collect::<rusqlite::Result<Vec<(String, i64, String)>>>()
    })?;
    for (step, item, task_id) in tasks {
        prior.tasks.insert((step, item_of(item)), task_id);
    }
    for u in unknown_submits(db, id)? {
        prior.unknown.insert((u.step, u.item), u.sent_at);
    }
    Ok(prior)
}

/// A submit that was sent and never answered on record: its task may exist and be charged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSubmit {
    pub step: String,
    pub item: Option<usize>,
    pub family: String,
    pub sent_at: String,
}

/// Run `id`'s submits whose fate is unknown, oldest first.
pub fn unknown_submits(db: &Arc<Db>, id: &str) -> Result<Vec<UnknownSubmit>, StoreError> {
    db.with(|c| {
        let mut stmt = c.prepare(
            "SELECT step, item, family, sent_at FROM submits WHERE run_id = ?1 ORDER BY sent_at, step, item",
        )?;
        let rows = stmt.query_map(params![id], |r| {
            Ok(UnknownSubmit {
                step: r.get(0)?,
                item: item_of(r.get(1)?),
                family: r.get(2)?,
                sent_at: r.get(3)?,
            })
        })?;
        rows.collect()
    })
}

/// The run `--resume SPEC` names: a run id, or `last` (this pipeline's latest run). Refuses
/// a run of another pipeline, one that already succeeded, and one still running elsewhere.
pub fn resolve(store: &super::Store, spec: &str, pipeline: &str) -> Result<super::runs::RunRow, String> {
    let found = if spec == "last" {
        store
            .latest(Some(pipeline))
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("`{pipeline}` has no run to resume; run it without `--resume` first"))?
    } else {
        store.find(spec).map_err(|e| e.to_string())?.ok_or_else(|| {
            format!("there is no run `{spec}` in `{}`; list runs with `cometflow runs`", store.describe())
        })?
    };
    if found.pipeline != pipeline {
        return Err(format!(
            "run `{}` is of pipeline `{}`, not `{pipeline}`; resume it with its own file `{}`",
            found.id, found.pipeline, found.pipeline_file
        ));
    }
    if found.status == "succeeded" {
        return Err(format!(
            "run `{}` already succeeded, so there is nothing to resume; run without `--resume` \
             (unchanged steps come from the cache)",
            found.id
        ));
    }
    if found.running_elsewhere() {
        return Err(format!(
            "run `{}` is still running ({}); wait for it or stop it before resuming",
            found.id,
            found.pid.map_or_else(|| "held by a worker".to_owned(), |p| format!("process {p}"))
        ));
    }
    Ok(found)
}
