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

/// Who holds a run after [`claim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This process: it may resume the run.
    Ours,
    /// Another live process got it first (two `--resume` started together).
    Taken(u32),
    /// It succeeded meanwhile (another resume finished it).
    Succeeded,
}

/// Marks a run as running again in this process, unless another live process holds it. The
/// check and the update are one write transaction, so of two processes claiming together
/// exactly one wins; the other must not run (and pay) anything.
pub fn claim(db: &Db, id: &str) -> Result<Claim, StoreError> {
    let me = std::process::id();
    db.with(|c| {
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let holder: Option<(String, Option<u32>)> = tx
            .query_row("SELECT status, pid FROM runs WHERE id = ?1", params![id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match holder.as_ref().map(|(s, p)| (s.as_str(), *p)) {
            Some(("running", Some(pid))) if pid != me && alive(pid) => return Ok(Claim::Taken(pid)),
            Some(("succeeded", _)) => return Ok(Claim::Succeeded),
            _ => {}
        }
        tx.execute(
            "UPDATE runs SET status = 'running', pid = ?2, resumes = resumes + 1, finished_at = NULL WHERE id = ?1",
            params![id, me],
        )?;
        tx.commit()?;
        Ok(Claim::Ours)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_held_by_another_live_process_cannot_be_claimed() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        begin(&db, "r1", "p", "/p.yaml", &IndexMap::new(), "/runs/r1").unwrap();
        // Our parent is alive and is not us: it holds the run.
        let parent = std::os::unix::process::parent_id();
        db.with(|c| {
            c.execute("UPDATE runs SET status = 'running', pid = ?1 WHERE id = 'r1'", [parent]).map(drop)
        })
        .unwrap();
        assert_eq!(claim(&db, "r1").unwrap(), Claim::Taken(parent));
        // A holder that died (a SIGKILLed run) leaves it free; then it is ours.
        db.with(|c| c.execute("UPDATE runs SET pid = 999999999 WHERE id = 'r1'", []).map(drop)).unwrap();
        assert_eq!(claim(&db, "r1").unwrap(), Claim::Ours);
        assert_eq!(find(&db, "r1").unwrap().unwrap().pid, Some(std::process::id()));
        db.with(|c| c.execute("UPDATE runs SET status = 'succeeded' WHERE id = 'r1'", []).map(drop)).unwrap();
        assert_eq!(claim(&db, "r1").unwrap(), Claim::Succeeded);
    }
}
