//! The engine's [`Journal`] and [`Cache`] on PostgreSQL. Every write of a run's progress is
//! fenced by the lease epoch its holder claimed the run with: the statement only takes
//! effect while `runs.lease_epoch` still equals it (the run row is share-locked for the
//! check, so a claim cannot slip in between). A write that finds the epoch moved on means
//! another worker took the run over; the journal then marks itself lost and stops the run.
//!
//! It owns the `steps`, `attempts`, `tasks` and `cache` rows; it must not decide anything.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use jiff::Timestamp;
use serde_json::Value as Json;
use tokio_util::sync::CancellationToken;

use super::Pg;
use crate::contract::{durable, Durable, TaskJournal};
use crate::engine::hooks::{Cache, Journal};
use crate::engine::StepRecord;
use crate::store::StoreError;

/// `WHERE` clause of every fenced write of a run's holder: `$1` is the run id, `$2` the
/// lease epoch.
const RUN_FENCE: &str = "EXISTS (SELECT 1 FROM runs WHERE id = $1 AND lease_epoch = $2 FOR SHARE)";
/// The same for a worker running one attempt of a step for the run's holder: `$2` is the
/// fence of its claim on the job (see `jobs`).
const JOB_FENCE: &str = "EXISTS (SELECT 1 FROM step_jobs WHERE run_id = $1 AND fence = $2 FOR SHARE)";

/// Writes one run's progress while its holder keeps the lease.
pub struct PgJournal {
    pub(crate) pg: Arc<Pg>,
    pub(crate) run_id: String,
    pub(crate) epoch: i64,
    /// Set when a write found the run taken over; cancels `stop`.
    pub(crate) lost: Arc<AtomicBool>,
    pub(crate) stop: CancellationToken,
    fence: &'static str,
    /// Provider tasks recorded through this journal.
    tasks: std::sync::atomic::AtomicU64,
}

fn item_col(item: Option<usize>) -> i64 {
    item.map_or(-1, |i| i as i64)
}

impl PgJournal {
    pub fn new(pg: Arc<Pg>, run_id: &str, epoch: i64, stop: CancellationToken) -> Self {
        PgJournal {
            pg,
            run_id: run_id.to_owned(),
            epoch,
            lost: Arc::new(AtomicBool::new(false)),
            stop,
            fence: RUN_FENCE,
            tasks: Default::default(),
        }
    }

    /// The task journal of one attempt a worker runs for the run's holder, fenced by its
    /// claim on the job rather than by the run's lease (the run may change holders
    /// meanwhile; the attempt goes on).
    pub fn for_job(pg: Arc<Pg>, run_id: &str, fence: i64, stop: CancellationToken) -> Self {
        PgJournal { fence: JOB_FENCE, ..PgJournal::new(pg, run_id, fence, stop) }
    }

    /// How many provider tasks were recorded through this journal.
    pub fn tasks_recorded(&self) -> u64 {
        self.tasks.load(Ordering::SeqCst)
    }

    /// Whether a write found the run held by someone else.
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    fn fenced(&self, what: &str, result: Result<u64, StoreError>) {
        match result {
            Ok(0) => {
                if !self.lost.swap(true, Ordering::SeqCst) && self.fence == RUN_FENCE {
                    eprintln!(
                        "cometflow: run `{}` was taken over by another worker (its lease ran out); \
                         this process stops it and writes nothing more",
                        self.run_id
                    );
                }
                self.stop.cancel();
            }
            Ok(_) => {}
            Err(e) => eprintln!("warning: cannot record {what} for run `{}`: {e}", self.run_id),
        }
    }

    fn write_step(&self, step: &str, item: i64, r: &StepRecord) -> Result<u64, StoreError> {
        let fence = self.fence;
        let outputs = super::paths::store(&r.outputs, &self.pg.artifacts).to_string();
        let attempts = r.attempts as i32;
        let (started, finished) = (r.started_at.map(|t| t.to_string()), r.finished_at.map(|t| t.to_string()));
        self.pg.execute_sync(
            &format!(
                "INSERT INTO steps (run_id, step, item, kind, status, attempts, cached, outputs, error,
                                    started_at, finished_at)
                 SELECT $1, $3, $4::bigint, $5, $6, $7::int, $8::bool, $9, $10, $11, $12 WHERE {fence}
                 ON CONFLICT (run_id, step, item) DO UPDATE SET kind = EXCLUDED.kind, status = EXCLUDED.status,
                    attempts = EXCLUDED.attempts, cached = EXCLUDED.cached, outputs = EXCLUDED.outputs,
                    error = EXCLUDED.error, started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at"
            ),
            &[
                &self.run_id,
                &self.epoch,
                &step,
                &item,
                &r.kind,
                &r.status.as_str(),
                &attempts,
                &r.cached,
                &outputs,
                &r.error,
                &started,
                &finished,
            ],
        )
    }
}

impl TaskJournal for PgJournal {
    fn submit_intent(&self, step: &str, item: Option<usize>, family: &str) -> Durable {
        let fence = self.fence;
        // Money: committed by the server before the request leaves (the submit window).
        let result = self.pg.execute_sync(
            &format!(
                "INSERT INTO submits (run_id, step, item, family, sent_at)
                 SELECT $1, $3, $4::bigint, $5, $6 WHERE {fence}
                 ON CONFLICT (run_id, step, item) DO UPDATE SET family = EXCLUDED.family, sent_at = EXCLUDED.sent_at"
            ),
            &[&self.run_id, &self.epoch, &step, &item_col(item), &family, &Timestamp::now().to_string()],
        );
        self.fenced("a submit about to be sent", result);
        durable()
    }

    fn submit_settled(&self, step: &str, item: Option<usize>) {
        let fence = self.fence;
        let result = self.pg.execute_sync(
            &format!("DELETE FROM submits WHERE run_id = $1 AND step = $3 AND item = $4::bigint AND {fence}"),
            &[&self.run_id, &self.epoch, &step, &item_col(item)],
        );
        if let Err(e) = result {
            eprintln!("warning: cannot record a settled submit for run `{}`: {e}", self.run_id);
        }
    }

    fn task_submitted(&self, step: &str, item: Option<usize>, family: &str, task_id: &str) -> Durable {
        let fence = self.fence;
        let result = self.pg.execute_sync(
            &format!(
                "INSERT INTO tasks (run_id, step, item, family, task_id, submitted_at, state)
                 SELECT $1, $3, $4::bigint, $5, $6, $7, 'submitted' WHERE {fence}
                 ON CONFLICT DO NOTHING"
            ),
            &[
                &self.run_id,
                &self.epoch,
                &step,
                &item_col(item),
                &family,
                &task_id,
                &Timestamp::now().to_string(),
            ],
        );
        if result.is_ok() {
            self.tasks.fetch_add(1, Ordering::SeqCst);
        }
        // No row written is either a task already recorded or a lost lease, which the
        // holder's heartbeat finds: only a failure to write is reported here.
        if let Err(e) = result {
            eprintln!(
                "warning: {family} task `{task_id}` of step `{step}` is not recorded ({e}); \
                 a resume would submit it again"
            );
        }
        // Written (committed by the server) before returning.
        durable()
    }

    fn task_ended(&self, step: &str, item: Option<usize>, task_id: &str, succeeded: bool) {
        let fence = self.fence;
        let state = if succeeded { "succeeded" } else { "failed" };
        let result = self.pg.execute_sync(
            &format!(
                "UPDATE tasks SET state = $6 WHERE run_id = $1 AND step = $3 AND item = $4 AND task_id = $5
                 AND {fence}"
            ),
            &[&self.run_id, &self.epoch, &step, &item_col(item), &task_id, &state],
        );
        // A task recorded by no one (its id was lost) updates no row: not a lost lease.
        if let Err(e) = result {
            eprintln!("warning: cannot record a task's end for run `{}`: {e}", self.run_id);
        }
    }
}

impl Journal for PgJournal {
    fn attempt_finished(&self, step: &str, item: Option<usize>, attempt: u32, error: Option<&str>) {
        let fence = self.fence;
        let attempt = attempt as i32;
        let result = self.pg.execute_sync(
            &format!(
                "INSERT INTO attempts (run_id, step, item, attempt, finished_at, error)
                 SELECT $1, $3, $4::bigint, $5::int, $6, $7 WHERE {fence}
                 ON CONFLICT (run_id, step, item, attempt) DO UPDATE SET finished_at = EXCLUDED.finished_at,
                    error = EXCLUDED.error"
            ),
            &[
                &self.run_id,
                &self.epoch,
                &step,
                &item_col(item),
                &attempt,
                &Timestamp::now().to_string(),
                &error,
            ],
        );
        self.fenced("an attempt", result);
    }

    fn unit_finished(&self, step: &str, item: Option<usize>, record: &StepRecord) {
        self.fenced("a finished step", self.write_step(step, item_col(item), record));
    }

    fn step_finished(&self, step: &str, record: &StepRecord) {
        self.fenced("a finished step", self.write_step(step, -1, record));
    }
}

/// The step cache in the shared database. Files are hashed afresh (no per-machine memo).
pub struct PgCache {
    pub(crate) pg: Arc<Pg>,
    pub(crate) run_id: String,
    pub(crate) read: bool,
    pub(crate) backend: String,
}

impl Cache for PgCache {
    fn key(&self, kind: &str, with: &Json, base: &Path) -> Option<String> {
        Some(crate::store::cache::key_of(&self.backend, kind, with, base, &crate::store::hash::read_sha256))
    }

    fn lookup(&self, key: &str, step_dir: &Path) -> Option<Json> {
        if !self.read {
            return None;
        }
        let rows = self.pg.query_sync("SELECT step_dir, outputs FROM cache WHERE key = $1", &[&key]).ok()?;
        let r = rows.first()?;
        let (old_dir, outputs): (String, String) = (r.get(0), r.get(1));
        let old_dir = super::paths::load_str(&old_dir, &self.pg.artifacts);
        let outputs = super::paths::load(&serde_json::from_str(&outputs).ok()?, &self.pg.artifacts);
        crate::store::cache::relocate(&outputs, Path::new(&old_dir), step_dir)
    }

    fn store(&self, key: &str, kind: &str, step_dir: &Path, outputs: &Json) {
        let result = self.pg.execute_sync(
            "INSERT INTO cache (key, kind, run_id, step_dir, outputs, created_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (key) DO UPDATE SET kind = EXCLUDED.kind, run_id = EXCLUDED.run_id,
                step_dir = EXCLUDED.step_dir, outputs = EXCLUDED.outputs, created_at = EXCLUDED.created_at",
            &[
                &key,
                &kind,
                &self.run_id,
                &super::paths::store_str(&step_dir.display().to_string(), &self.pg.artifacts),
                &super::paths::store(outputs, &self.pg.artifacts).to_string(),
                &Timestamp::now().to_string(),
            ],
        );
        if let Err(e) = result {
            tracing::warn!("cannot remember a step's result for the cache: {e}");
        }
    }
}
