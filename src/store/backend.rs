//! Which store holds runs: SQLite in the state directory (the default), or PostgreSQL when
//! `COMETFLOW_STORE` (or `--store URL`) is a `postgres://` URL. The runner, `runs`,
//! `--resume` and the cache ask [`Store`] and never which one it is.
//!
//! It owns choosing and dispatching; the queries live in each backend's files.

use std::path::PathBuf;
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::Value as Json;

use super::history::{StepRow, TaskRow};
use super::runs::RunRow;
use super::{Db, StoreError};
use crate::engine::hooks::{Cache, Journal, Prior};
use crate::engine::RunRecord;

pub use super::pg::Pg;

/// The open store.
#[derive(Clone)]
pub enum Store {
    Sqlite(Arc<Db>),
    Pg(Arc<Pg>),
}

/// `COMETFLOW_STORE`, when set.
pub fn configured() -> Option<String> {
    std::env::var("COMETFLOW_STORE").ok().filter(|v| !v.trim().is_empty())
}

impl Store {
    /// The configured store, its schema brought up to date.
    pub fn open() -> Result<Store, StoreError> {
        match configured() {
            None => Ok(Store::Sqlite(Db::open(&super::state_dir())?)),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(Store::Pg(Pg::open(&url)?))
            }
            Some(url) if url.starts_with("sqlite:") => {
                let path = PathBuf::from(url.trim_start_matches("sqlite://").trim_start_matches("sqlite:"));
                Ok(Store::Sqlite(Db::open(&path)?))
            }
            Some(url) => Err(StoreError(format!(
                "COMETFLOW_STORE `{}` is not a store URL; use postgres://user:pass@host/db, or unset it \
                 for SQLite in the state directory",
                super::pg::redact(&url)
            ))),
        }
    }

    /// The PostgreSQL store, or a message saying that `what` needs one.
    pub fn shared(self, what: &str) -> Result<Arc<Pg>, StoreError> {
        match self {
            Store::Pg(pg) => Ok(pg),
            Store::Sqlite(_) => Err(StoreError(format!(
                "`{what}` needs a PostgreSQL store shared by the workers; set COMETFLOW_STORE=postgres://... \
                 (or pass --store URL)"
            ))),
        }
    }

    /// Where it is, for messages (no password).
    pub fn describe(&self) -> String {
        match self {
            Store::Sqlite(db) => db.path().display().to_string(),
            Store::Pg(pg) => pg.display(),
        }
    }

    pub fn begin(
        &self,
        id: &str,
        pipeline: &str,
        file: &str,
        inputs: &IndexMap<String, Json>,
        run_dir: &str,
    ) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(db) => super::runs::begin(db, id, pipeline, file, inputs, run_dir),
            Store::Pg(pg) => super::pg::runs::begin(pg, id, pipeline, file, inputs, run_dir),
        }
    }

    /// Takes run `id` for a resume by this process, atomically: of two resumes started
    /// together, one gets it (on PostgreSQL, the run's lease decides).
    pub fn claim(&self, id: &str) -> Result<super::runs::Claim, StoreError> {
        match self {
            Store::Sqlite(db) => super::runs::claim(db, id),
            Store::Pg(pg) => super::pg::runs::resume(pg, id).map(|()| super::runs::Claim::Ours),
        }
    }

    pub fn finish(&self, record: &RunRecord) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(db) => super::runs::finish(db, record),
            // A run started by `run` (not a worker) holds no lease: epoch 0.
            Store::Pg(pg) => super::pg::runs::finish(pg, record, record.status.as_str(), 0).map(drop),
        }
    }

    pub fn find(&self, id: &str) -> Result<Option<RunRow>, StoreError> {
        match self {
            Store::Sqlite(db) => super::runs::find(db, id),
            Store::Pg(pg) => super::pg::runs::find(pg, id),
        }
    }

    pub fn latest(&self, pipeline: Option<&str>) -> Result<Option<RunRow>, StoreError> {
        match self {
            Store::Sqlite(db) => super::runs::latest(db, pipeline),
            Store::Pg(pg) => super::pg::runs::latest(pg, pipeline),
        }
    }

    pub fn list(&self, limit: usize) -> Result<Vec<RunRow>, StoreError> {
        match self {
            Store::Sqlite(db) => super::runs::list(db, limit),
            Store::Pg(pg) => super::pg::runs::list(pg, limit),
        }
    }

    pub fn steps(&self, run_id: &str) -> Result<Vec<StepRow>, StoreError> {
        match self {
            Store::Sqlite(db) => super::history::steps(db, run_id),
            Store::Pg(pg) => super::pg::runs::steps(pg, run_id),
        }
    }

    pub fn tasks(&self, run_id: &str) -> Result<Vec<TaskRow>, StoreError> {
        match self {
            Store::Sqlite(db) => super::history::tasks(db, run_id),
            Store::Pg(pg) => super::pg::runs::tasks(pg, run_id),
        }
    }

    pub fn prior(&self, id: &str) -> Result<Prior, StoreError> {
        match self {
            Store::Sqlite(db) => super::resume::prior(db, id),
            Store::Pg(pg) => super::pg::runs::prior(pg, id),
        }
    }

    /// The finished run's record, when the store keeps it (PostgreSQL does).
    pub fn record(&self, id: &str) -> Result<Option<Json>, StoreError> {
        match self {
            Store::Sqlite(_) => Ok(None),
            Store::Pg(pg) => super::pg::runs::record(pg, id),
        }
    }

    /// The journal of a run started by this process (`run`, `watch`, `schedule`).
    /// `stop` is the run's own cancellation: a shared store cancels it when a write finds
    /// the run taken over by another holder, so this process stops paying for it.
    pub fn journal(&self, run_id: &str, stop: tokio_util::sync::CancellationToken) -> Arc<dyn Journal> {
        match self {
            Store::Sqlite(db) => Arc::new(super::RunJournal::new(db.clone(), run_id.to_owned())),
            Store::Pg(pg) => Arc::new(super::pg::journal::PgJournal::new(pg.clone(), run_id, 0, stop)),
        }
    }

    pub fn cache(&self, run_id: &str, read: bool, backend: String) -> Arc<dyn Cache> {
        let run_id = run_id.to_owned();
        match self {
            Store::Sqlite(db) => Arc::new(super::StoreCache { db: db.clone(), run_id, read, backend }),
            Store::Pg(pg) => Arc::new(super::pg::journal::PgCache { pg: pg.clone(), run_id, read, backend }),
        }
    }
}
