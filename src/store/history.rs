//! Reading a run back for `cometflow runs show`: its steps (and `for_each` items) and the
//! provider tasks they submitted.
//!
//! It owns these read queries; it must not format anything.

use std::sync::Arc;

use rusqlite::params;

use super::db::{Db, StoreError};

/// One step (item `None`) or one `for_each` item of a run.
#[derive(Debug, Clone)]
pub struct StepRow {
    pub step: String,
    pub item: Option<usize>,
    pub kind: String,
    pub status: String,
    pub attempts: u32,
    pub cached: bool,
    pub outputs: String,
    pub error: Option<String>,
}

/// A provider task a run submitted.
#[derive(Debug, Clone)]
pub struct TaskRow {
    pub step: String,
    pub item: Option<usize>,
    pub family: String,
    pub task_id: String,
    pub state: String,
}

/// The run's step rows, in the order they were first written.
pub fn steps(db: &Arc<Db>, run_id: &str) -> Result<Vec<StepRow>, StoreError> {
    db.with(|c| {
        let mut stmt = c.prepare(
            "SELECT step, item, kind, status, attempts, cached, outputs, error FROM steps
             WHERE run_id = ?1 ORDER BY rowid",
        )?;
        let rows = stmt.query_map(params![run_id], |r| {
            Ok(StepRow {
                step: r.get(0)?,
                item: usize::try_from(r.get::<_, i64>(1)?).ok(),
                kind: r.get(2)?,
                status: r.get(3)?,
                attempts: r.get(4)?,
                cached: r.get(5)?,
                outputs: r.get(6)?,
                error: r.get(7)?,
            })
        })?;
        rows.collect()
    })
}

/// The run's provider tasks, in submission order.
pub fn tasks(db: &Arc<Db>, run_id: &str) -> Result<Vec<TaskRow>, StoreError> {
    db.with(|c| {
        let mut stmt = c.prepare(
            "SELECT step, item, family, task_id, state FROM tasks WHERE run_id = ?1 ORDER BY submitted_at, rowid",
        )?;
        let rows = stmt.query_map(params![run_id], |r| {
            Ok(TaskRow {
                step: r.get(0)?,
                item: usize::try_from(r.get::<_, i64>(1)?).ok(),
                family: r.get(2)?,
                task_id: r.get(3)?,
                state: r.get(4)?,
            })
        })?;
        rows.collect()
    })
}
