//! The engine's [`Journal`], written to the state database: each call is one small
//! committed transaction, done before it returns, so a killed process leaves every task id
//! it had been given and every execution it had finished.
//!
//! It owns the `steps`, `attempts` and `tasks` rows of one run; it must not decide anything
//! about the run (that is the engine's and the runner's).

use std::sync::Arc;

use jiff::Timestamp;
use rusqlite::params;

use super::db::Db;
use crate::contract::TaskJournal;
use crate::engine::hooks::Journal;
use crate::engine::StepRecord;

/// Writes one run's progress.
pub struct RunJournal {
    pub(crate) db: Arc<Db>,
    pub(crate) run_id: String,
}

/// `item` as stored: `-1` for a whole step (or a step without `for_each`).
pub(crate) fn item_col(item: Option<usize>) -> i64 {
    item.map_or(-1, |i| i as i64)
}

impl RunJournal {
    fn warn(&self, what: &str, result: Result<(), super::StoreError>) {
        if let Err(e) = result {
            eprintln!("warning: cannot record {what} for run `{}`: {e}", self.run_id);
        }
    }

    fn write_step(&self, step: &str, item: i64, r: &StepRecord) -> Result<(), super::StoreError> {
        let outputs = r.outputs.to_string();
        self.db.with(|c| {
            c.execute(
                "INSERT INTO steps (run_id, step, item, kind, status, attempts, cached, outputs, error,
                                    started_at, finished_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (run_id, step, item) DO UPDATE SET kind = ?4, status = ?5, attempts = ?6,
                    cached = ?7, outputs = ?8, error = ?9, started_at = ?10, finished_at = ?11",
                params![
                    self.run_id,
                    step,
                    item,
                    r.kind,
                    r.status.as_str(),
                    r.attempts,
                    r.cached,
                    outputs,
                    r.error,
                    r.started_at.map(|t| t.to_string()),
                    r.finished_at.map(|t| t.to_string()),
                ],
            )
            .map(drop)
        })
    }
}

impl TaskJournal for RunJournal {
    fn submit_intent(&self, step: &str, item: Option<usize>, family: &str) {
        let result = self.db.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO submits (run_id, step, item, family, sent_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![self.run_id, step, item_col(item), family, Timestamp::now().to_string()],
            )
            .map(drop)
        });
        self.warn("a submit about to be sent", result);
    }

    fn submit_settled(&self, step: &str, item: Option<usize>) {
        self.warn(
            "a settled submit",
            super::resume::clear_intent(&self.db, &self.run_id, step, item_col(item)),
        );
    }

    fn task_submitted(&self, step: &str, item: Option<usize>, family: &str, task_id: &str) {
        let result = self.db.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO tasks (run_id, step, item, family, task_id, submitted_at, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'submitted')",
                params![self.run_id, step, item_col(item), family, task_id, Timestamp::now().to_string()],
            )
            .map(drop)
        });
        // The id is on record, so the submit's fate is known.
        let result =
            result.and_then(|()| super::resume::clear_intent(&self.db, &self.run_id, step, item_col(item)));
        if result.is_err() {
            // Losing this id means a resume would pay again: say which task it was.
            eprintln!("warning: {family} task `{task_id}` of step `{step}` is not recorded; a resume would submit it again");
        }
        self.warn("a submitted task", result);
    }

    fn task_ended(&self, step: &str, item: Option<usize>, task_id: &str, succeeded: bool) {
        let state = if succeeded { "succeeded" } else { "failed" };
        let result = self.db.with(|c| {
            c.execute(
                "UPDATE tasks SET state = ?5 WHERE run_id = ?1 AND step = ?2 AND item = ?3 AND task_id = ?4",
                params![self.run_id, step, item_col(item), task_id, state],
            )
            .map(drop)
        });
        self.warn("a task's end", result);
    }
}

impl Journal for RunJournal {
    fn attempt_finished(&self, step: &str, item: Option<usize>, attempt: u32, error: Option<&str>) {
        let result = self.db.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO attempts (run_id, step, item, attempt, finished_at, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![self.run_id, step, item_col(item), attempt, Timestamp::now().to_string(), error],
            )
            .map(drop)
        });
        self.warn("an attempt", result);
    }

    fn unit_finished(&self, step: &str, item: Option<usize>, record: &StepRecord) {
        // Task states come from the provider (`task_ended`), not from how the step ended: a
        // step that failed while polling or downloading leaves its task to be polled again.
        self.warn("a finished step", self.write_step(step, item_col(item), record));
    }

    fn step_finished(&self, step: &str, record: &StepRecord) {
        self.warn("a finished step", self.write_step(step, -1, record));
    }
}
