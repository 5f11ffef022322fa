//! The `runs` table: a row per run, written when it starts (so a killed run is still
//! listed) and when it ends, plus the queries `runs`, `runs show` and `--resume` need.
//!
//! It owns run rows; it must not know how runs execute.

use std::sync::Arc;

use indexmap::IndexMap;
use jiff::Timestamp;
use rusqlite::{params, OptionalExtension, Row};
use serde_json::Value as Json;

use super::db::{Db, StoreError};
use crate::engine::RunRecord;

/// A run as the database holds it.
#[derive(Debug, Clone)]
pub struct RunRow {
    pub id: String,
    pub pipeline: String,
    pub pipeline_file: String,
    /// `running` for a run whose process died without finishing it.
    pub status: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub inputs: IndexMap<String, Json>,
    pub run_dir: String,
    pub pid: Option<u32>,
    pub resumes: u32,
    pub paid_calls: u64,
    pub tasks: u64,
    /// Kept in a shared store, whose `status` is kept up to date by its holder: no local
    /// process check applies.
    pub shared: bool,
}

impl RunRow {
    /// The status to show: a `running` run whose process is gone was interrupted.
    pub fn shown_status(&self) -> &str {
        if self.status == "running" && !self.shared && !self.pid.is_some_and(alive) {
            "interrupted"
        } else {
            &self.status
        }
    }

    /// Whether another live process is running it now.
    pub fn running_elsewhere(&self) -> bool {
        self.status == "running"
            && (self.shared || self.pid.is_some_and(|p| p != std::process::id() && alive(p)))
    }
}

/// Whether a process with this id exists.
fn alive(pid: u32) -> bool {
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

const COLUMNS: &str = "id, pipeline, pipeline_file, status, started_at, finished_at, inputs, run_dir, pid,
    resumes, paid_calls, (SELECT COUNT(*) FROM tasks t WHERE t.run_id = runs.id)";

fn row(r: &Row) -> rusqlite::Result<RunRow> {
    let inputs: String = r.get(6)?;
    Ok(RunRow {
        id: r.get(0)?,
        pipeline: r.get(1)?,
        pipeline_file: r.get(2)?,
        status: r.get(3)?,
        started_at: r.get(4)?,
        finished_at: r.get(5)?,
        inputs: serde_json::from_str(&inputs).unwrap_or_default(),
        run_dir: r.get(7)?,
        pid: r.get(8)?,
        resumes: r.get(9)?,
        paid_calls: r.get::<_, i64>(10)?.max(0) as u64,
        tasks: r.get::<_, i64>(11)?.max(0) as u64,
        shared: false,
    })
}

/// Records a run that is starting.
pub fn begin(
    db: &Db,
    id: &str,
    pipeline: &str,
    file: &str,
    inputs: &IndexMap<String, Json>,
    run_dir: &str,
) -> Result<(), StoreError> {
    let inputs = serde_json::to_string(inputs).unwrap_or_else(|_| "{}".into());
    db.with(|c| {
        c.execute(
            "INSERT INTO runs (id, pipeline, pipeline_file, status, started_at, inputs, run_dir, pid)
             VALUES (?1, ?2, ?3, 'running', ?4, ?5, ?6, ?7)",
            params![id, pipeline, file, Timestamp::now().to_string(), inputs, run_dir, std::process::id()],
        )
        .map(drop)
    })
}

/// Marks a run as running again, in this process.
pub fn resume(db: &Db, id: &str) -> Result<(), StoreError> {
    db.with(|c| {
        c.execute(
            "UPDATE runs SET status = 'running', pid = ?2, resumes = resumes + 1, finished_at = NULL WHERE id = ?1",
            params![id, std::process::id()],
        )
        .map(drop)
    })
}

/// Records how a run ended.
pub fn finish(db: &Db, record: &RunRecord) -> Result<(), StoreError> {
    let outputs = serde_json::to_string(&record.outputs).unwrap_or_else(|_| "{}".into());
    db.with(|c| {
        c.execute(
            "UPDATE runs SET status = ?2, finished_at = ?3, outputs = ?4, pid = NULL,
                paid_calls = paid_calls + ?5 WHERE id = ?1",
            params![
                record.run_id,
                record.status.as_str(),
                record.finished_at.to_string(),
                outputs,
                record.paid_calls as i64
            ],
        )
        .map(drop)
    })
}

/// One run by id.
pub fn find(db: &Arc<Db>, id: &str) -> Result<Option<RunRow>, StoreError> {
    db.with(|c| c.query_row(&format!("SELECT {COLUMNS} FROM runs WHERE id = ?1"), [id], row).optional())
}

/// The latest run, of one pipeline or of any.
pub fn latest(db: &Arc<Db>, pipeline: Option<&str>) -> Result<Option<RunRow>, StoreError> {
    db.with(|c| {
        c.query_row(
            &format!(
                "SELECT {COLUMNS} FROM runs WHERE ?1 IS NULL OR pipeline = ?1
                 ORDER BY rowid DESC LIMIT 1"
            ),
            [pipeline],
            row,
        )
        .optional()
    })
}

/// Every run, newest first.
pub fn list(db: &Arc<Db>, limit: usize) -> Result<Vec<RunRow>, StoreError> {
    db.with(|c| {
        let mut stmt = c.prepare(&format!("SELECT {COLUMNS} FROM runs ORDER BY rowid DESC LIMIT ?1"))?;
        let rows = stmt.query_map([limit as i64], row)?;
        rows.collect()
    })
}
