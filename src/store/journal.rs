//! The engine's [`Journal`], written to the state database by group commit: each call only
//! queues its row, and one transaction writes everything queued. A transaction costs tens
//! of microseconds whatever it holds, so one per step was most of a `value` step's cost.
//!
//! What is durable when:
//! - a submitted task id: committed and synced to disk before `task_submitted` returns,
//!   so it is on record before the task is first polled (a resume polls it, never pays
//!   again);
//! - a step's result: committed before any step that reads it starts (the engine calls
//!   [`Journal::flush`] before starting a step) and right after a paid execution;
//! - everything else (results nothing waits for yet, attempts): committed by the store
//!   thread within [`GATHER`], or by the next flush, whichever comes first.
//!
//! Results and task ids are committed in the order they were queued: a step's row is
//! never on disk without the rows of the steps it read. The database is in WAL mode with
//! `synchronous=NORMAL`, so a commit survives a killed process; only task ids are also
//! synced against a power cut.
//!
//! It owns the `steps`, `attempts` and `tasks` rows of one run; it must not decide anything
//! about the run (that is the engine's and the runner's).

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::{params, Connection};

use super::db::Db;
use crate::contract::{Durable, TaskJournal};
use crate::engine::hooks::Journal;
use crate::engine::StepRecord;

/// How long the store thread lets rows gather before committing them.
const GATHER: Duration = Duration::from_millis(5);

/// Writes one run's progress.
pub struct RunJournal {
    queue: Arc<Queue>,
    run_id: String,
    /// The store thread, joined by [`RunJournal::close`].
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Rows waiting for their transaction, shared with the store thread.
struct Queue {
    db: Arc<Db>,
    run_id: String,
    rows: Mutex<Rows>,
    /// Wakes the store thread when the first row of a batch arrives, or on close.
    wake: Condvar,
}

#[derive(Default)]
struct Rows {
    /// Step results, in the order they were queued: what a flush must commit.
    rows: Vec<Row>,
    /// Attempts and task ends: nothing waits for them, so they ride along with the next
    /// commit of the store thread (or a synced one) instead of lengthening every flush.
    free: Vec<Row>,
    /// Callers waiting for their rows to be synced to disk (task ids, submit intents): one
    /// synced commit answers them all.
    synced: Vec<tokio::sync::oneshot::Sender<bool>>,
    closed: bool,
}

/// One queued write.
enum Row {
    Step {
        step: String,
        item: i64,
        kind: String,
        status: &'static str,
        attempts: u32,
        cached: bool,
        outputs: String,
        error: Option<String>,
        started_at: Option<Timestamp>,
        finished_at: Option<Timestamp>,
    },
    Attempt {
        step: String,
        item: i64,
        attempt: u32,
        at: Timestamp,
        error: Option<String>,
    },
    Task {
        step: String,
        item: i64,
        family: String,
        task_id: String,
        at: Timestamp,
    },
    TaskEnded {
        step: String,
        item: i64,
        task_id: String,
        state: &'static str,
    },
    /// A submit is about to be sent (the submit window: see `TaskJournal::submit_intent`).
    Intent {
        step: String,
        item: i64,
        family: String,
        at: Timestamp,
    },
    /// The submit's fate is known: its task id is on record, or it was refused.
    IntentSettled {
        step: String,
        item: i64,
    },
}

/// `item` as stored: `-1` for a whole step (or a step without `for_each`).
pub(crate) fn item_col(item: Option<usize>) -> i64 {
    item.map_or(-1, |i| i as i64)
}

impl RunJournal {
    /// A journal for run `run_id`, with its store thread.
    pub fn new(db: Arc<Db>, run_id: String) -> Self {
        let queue = Arc::new(Queue {
            db,
            run_id: run_id.clone(),
            rows: Mutex::new(Rows::default()),
            wake: Condvar::new(),
        });
        let worker = queue.clone();
        let spawned =
            std::thread::Builder::new().name("cometflow-store".into()).spawn(move || worker.serve());
        let thread = spawned
            .map_err(|e| {
                // Without the thread, rows are still committed by every flush and at the end.
                tracing::warn!("cannot start the state store thread: {e}");
            })
            .ok();
        RunJournal { queue, run_id, thread: Mutex::new(thread) }
    }

    /// Commits every row still queued and stops the store thread. The runner calls it
    /// before marking the run finished; dropping the journal does it too.
    pub fn close(&self) {
        self.queue.lock().closed = true;
        self.queue.wake.notify_one();
        let thread = self.thread.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
        // Rows queued after the thread stopped (none in a finished run), or without a thread.
        self.warn("the run's progress", self.queue.commit(true, false));
    }

    fn push(&self, row: Row) {
        self.queue.push(row);
    }

    /// Completes once everything queued so far is committed and synced. Many callers share
    /// one sync: while one is on disk, the next gathers.
    fn synced(&self) -> futures::future::BoxFuture<'static, bool> {
        let has_thread = self.thread.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).is_some();
        if !has_thread {
            return Box::pin(std::future::ready(self.queue.commit(true, true).is_ok()));
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut rows = self.queue.lock();
        let first = rows.synced.is_empty();
        rows.synced.push(tx);
        drop(rows);
        if first {
            self.queue.wake.notify_one();
        }
        // A store thread gone (it ends only on close) has committed and synced at close.
        Box::pin(async move { rx.await.unwrap_or(true) })
    }

    fn warn(&self, what: &str, result: Result<(), super::StoreError>) {
        if let Err(e) = result {
            eprintln!("warning: cannot record {what} for run `{}`: {e}", self.run_id);
        }
    }

    fn step_row(step: &str, item: i64, r: &StepRecord) -> Row {
        Row::Step {
            step: step.to_owned(),
            item,
            kind: r.kind.clone(),
            status: r.status.as_str(),
            attempts: r.attempts,
            cached: r.cached,
            outputs: r.outputs.to_string(),
            error: r.error.clone(),
            started_at: r.started_at,
            finished_at: r.finished_at,
        }
    }
}

impl Drop for RunJournal {
    fn drop(&mut self) {
        self.close();
    }
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Rows> {
        // A panic while holding the lock leaves a list of rows, still fine to write.
        self.rows.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn push(&self, row: Row) {
        let mut rows = self.lock();
        let first = rows.rows.is_empty() && rows.free.is_empty();
        match row {
            Row::Attempt { .. } | Row::TaskEnded { .. } => rows.free.push(row),
            _ => rows.rows.push(row),
        }
        drop(rows);
        if first {
            self.wake.notify_one();
        }
    }

    /// Commits the queued results in one transaction, with the free rows too when `all`
    /// (synced to disk when `sync`).
    fn commit(&self, all: bool, sync: bool) -> Result<(), super::StoreError> {
        // The database lock is taken before the rows, so batches reach the database in
        // the order they were queued.
        self.db.with(|c| {
            let (mut rows, free) = {
                let mut queued = self.lock();
                let free = if all { std::mem::take(&mut queued.free) } else { Vec::new() };
                (std::mem::take(&mut queued.rows), free)
            };
            if rows.is_empty() && free.is_empty() && !sync {
                return Ok(());
            }
            rows.extend(free);
            write(c, &self.run_id, &rows, sync)
        })
    }

    /// The store thread: once a row arrives, lets more gather for [`GATHER`] (or until the
    /// journal closes), then commits them all; on close, commits what is left and ends.
    fn serve(&self) {
        let mut rows = self.lock();
        loop {
            while rows.rows.is_empty() && rows.free.is_empty() && rows.synced.is_empty() && !rows.closed {
                rows = self.wake.wait(rows).unwrap_or_else(|poisoned| poisoned.into_inner());
            }
            let closed = rows.closed;
            // Someone waits for a sync: no gathering, the next sync gathers whoever arrives
            // meanwhile.
            if !closed && rows.synced.is_empty() {
                rows = match self.wake.wait_timeout_while(rows, GATHER, |r| !r.closed && r.synced.is_empty())
                {
                    Ok((rows, _)) => rows,
                    Err(poisoned) => poisoned.into_inner().0,
                };
            }
            // Every waiter's rows were queued before it waited, so this commit holds them.
            let waiters = std::mem::take(&mut rows.synced);
            drop(rows);
            let result = self.commit(true, !waiters.is_empty());
            if let Err(e) = &result {
                eprintln!("warning: cannot record the run's progress: {e}");
            }
            for w in waiters {
                let _ = w.send(result.is_ok());
            }
            if closed {
                return;
            }
            rows = self.lock();
        }
    }
}

/// One transaction for `rows`; with `sync`, its commit is synced to disk before returning.
fn write(c: &mut Connection, run_id: &str, rows: &[Row], sync: bool) -> rusqlite::Result<()> {
    if sync {
        c.pragma_update(None, "synchronous", "FULL")?;
    }
    let result = (|| {
        let tx = c.transaction()?;
        // Each statement is taken from the cache once per transaction, not once per row:
        // finding it hashes its text, and a batch of a wide run holds thousands of rows.
        let mut statements = Statements::default();
        for row in rows {
            write_row(&tx, &mut statements, run_id, row)?;
        }
        drop(statements);
        tx.commit()
    })();
    if sync {
        c.pragma_update(None, "synchronous", "NORMAL")?;
    }
    result
}

/// The statements of one transaction, each prepared (from the cache) at its first use.
#[derive(Default)]
struct Statements<'c> {
    step: Option<rusqlite::CachedStatement<'c>>,
    attempt: Option<rusqlite::CachedStatement<'c>>,
}

fn cached<'c, 's>(
    c: &'c Connection,
    slot: &'s mut Option<rusqlite::CachedStatement<'c>>,
    sql: &str,
) -> rusqlite::Result<&'s mut rusqlite::CachedStatement<'c>> {
    if slot.is_none() {
        *slot = Some(c.prepare_cached(sql)?);
    }
    Ok(slot.as_mut().expect("just prepared"))
}

fn write_row<'c>(c: &'c Connection, s: &mut Statements<'c>, run_id: &str, row: &Row) -> rusqlite::Result<()> {
    match row {
        Row::Step {
            step,
            item,
            kind,
            status,
            attempts,
            cached: hit,
            outputs,
            error,
            started_at,
            finished_at,
        } => {
            cached(
                c,
                &mut s.step,
                "INSERT INTO steps (run_id, step, item, kind, status, attempts, cached, outputs, error,
                                    started_at, finished_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (run_id, step, item) DO UPDATE SET kind = ?4, status = ?5, attempts = ?6,
                    cached = ?7, outputs = ?8, error = ?9, started_at = ?10, finished_at = ?11",
            )?
            .execute(params![
                run_id,
                step,
                item,
                kind,
                status,
                attempts,
                hit,
                outputs,
                error,
                started_at.map(|t| t.to_string()),
                finished_at.map(|t| t.to_string()),
            ])?;
        }
        Row::Attempt { step, item, attempt, at, error } => {
            cached(
                c,
                &mut s.attempt,
                "INSERT OR REPLACE INTO attempts (run_id, step, item, attempt, finished_at, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![run_id, step, item, attempt, at.to_string(), error])?;
        }
        Row::Task { step, item, family, task_id, at } => {
            c.prepare_cached(
                "INSERT OR IGNORE INTO tasks (run_id, step, item, family, task_id, submitted_at, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'submitted')",
            )?
            .execute(params![run_id, step, item, family, task_id, at.to_string()])?;
        }
        Row::TaskEnded { step, item, task_id, state } => {
            c.prepare_cached(
                "UPDATE tasks SET state = ?5 WHERE run_id = ?1 AND step = ?2 AND item = ?3 AND task_id = ?4",
            )?
            .execute(params![run_id, step, item, task_id, state])?;
        }
        Row::Intent { step, item, family, at } => {
            c.prepare_cached(
                "INSERT OR REPLACE INTO submits (run_id, step, item, family, sent_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![run_id, step, item, family, at.to_string()])?;
        }
        Row::IntentSettled { step, item } => {
            c.prepare_cached("DELETE FROM submits WHERE run_id = ?1 AND step = ?2 AND item = ?3")?
                .execute(params![run_id, step, item])?;
        }
    }
    Ok(())
}

impl TaskJournal for RunJournal {
    fn submit_intent(&self, step: &str, item: Option<usize>, family: &str) -> Durable {
        self.push(Row::Intent {
            step: step.to_owned(),
            item: item_col(item),
            family: family.to_owned(),
            at: Timestamp::now(),
        });
        // Money: on disk before the request leaves, with everything queued before it.
        let done = self.synced();
        Box::pin(async move {
            done.await;
        })
    }

    fn submit_settled(&self, step: &str, item: Option<usize>) {
        self.push(Row::IntentSettled { step: step.to_owned(), item: item_col(item) });
        self.warn("a settled submit", self.queue.commit(true, false));
    }

    fn task_submitted(&self, step: &str, item: Option<usize>, family: &str, task_id: &str) -> Durable {
        self.push(Row::Task {
            step: step.to_owned(),
            item: item_col(item),
            family: family.to_owned(),
            task_id: task_id.to_owned(),
            at: Timestamp::now(),
        });
        // The id is on record, so the submit's fate is known: both in one synced commit,
        // before the task is first polled.
        self.push(Row::IntentSettled { step: step.to_owned(), item: item_col(item) });
        let done = self.synced();
        let lost = format!(
            "warning: {family} task `{task_id}` of step `{step}` is not recorded; a resume would submit it again"
        );
        Box::pin(async move {
            if !done.await {
                // Losing this id means a resume would pay again: say which task it was.
                eprintln!("{lost}");
            }
        })
    }

    fn task_ended(&self, step: &str, item: Option<usize>, task_id: &str, succeeded: bool) {
        let state = if succeeded { "succeeded" } else { "failed" };
        self.push(Row::TaskEnded {
            step: step.to_owned(),
            item: item_col(item),
            task_id: task_id.to_owned(),
            state,
        });
    }
}

impl Journal for RunJournal {
    fn attempt_finished(&self, step: &str, item: Option<usize>, attempt: u32, error: Option<&str>) {
        self.push(Row::Attempt {
            step: step.to_owned(),
            item: item_col(item),
            attempt,
            at: Timestamp::now(),
            error: error.map(str::to_owned),
        });
    }

    fn unit_finished(&self, step: &str, item: Option<usize>, record: &StepRecord) {
        // Task states come from the provider (`task_ended`), not from how the step ended: a
        // step that failed while polling or downloading leaves its task to be polled again.
        // The execution of a step without `for_each` is the whole step: the engine calls
        // `step_finished` with the same record next, in the same turn, and that row is
        // the one kept.
        if item.is_some() {
            self.push(Self::step_row(step, item_col(item), record));
        }
    }

    fn step_finished(&self, step: &str, record: &StepRecord) {
        self.push(Self::step_row(step, -1, record));
    }

    fn flush(&self, sync: bool) {
        if sync || !self.queue.lock().rows.is_empty() {
            self.warn("the run's progress", self.queue.commit(sync, sync));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::events::Status;

    fn count(db: &Db, table: &str) -> i64 {
        db.with(|c| c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))).unwrap()
    }

    #[test]
    fn a_task_id_is_on_record_at_once_results_after_a_flush_and_the_rest_on_close() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        super::super::runs::begin(&db, "r", "p", "/p.yaml", &Default::default(), "/d").unwrap();
        let journal = RunJournal::new(db.clone(), "r".into());
        futures::executor::block_on(journal.task_submitted("a", None, "kling", "T1"));
        assert_eq!(count(&db, "tasks"), 1);
        let record = StepRecord::not_run("value", Vec::new(), Status::Succeeded, None);
        journal.attempt_finished("b", None, 1, None);
        journal.step_finished("b", &record);
        journal.flush(false);
        assert_eq!(count(&db, "steps"), 1);
        journal.unit_finished("c", Some(0), &record);
        journal.close();
        assert_eq!((count(&db, "steps"), count(&db, "attempts")), (2, 1));
    }
}
