//! The state directory: `$COMETFLOW_STATE_DIR` (default `.cometflow`), holding one folder
//! per run (`runs/<run id>/`, a folder per step inside), each run's `run.json`, and
//! `state.db`: the SQLite record of runs, steps, attempts, provider tasks, file hashes and
//! the step cache, which `--resume`, the cache and `cometflow runs` read.
//!
//! The engine never sees SQLite: this module implements its `Journal` and `Cache` hooks
//! and hands it a `Prior` when resuming.

pub mod backend;
mod cache;
mod db;
mod hash;
pub mod history;
mod journal;
mod migrations;
pub mod pg;
pub mod prune;
pub mod records;
pub mod resume;
pub mod runs;

pub use backend::Store;
pub use cache::StoreCache;
pub use db::{Db, StoreError};
pub use journal::RunJournal;

use std::io;
use std::path::{Path, PathBuf};

use crate::engine::RunRecord;

/// Where runs are kept.
pub fn state_dir() -> PathBuf {
    let dir = std::env::var_os("COMETFLOW_STATE_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".cometflow"));
    std::path::absolute(&dir).unwrap_or(dir)
}

/// A new run id: sortable by time, unique enough to never collide in one state dir.
pub fn new_run_id() -> String {
    // A timestamp formats in UTC; `Zoned::now()` would first load the system time zone,
    // walking the whole zoneinfo folder on every start.
    let now = jiff::Timestamp::now();
    format!("{}-{:04x}", now.strftime("%Y%m%d-%H%M%S"), fastrand::u16(..))
}

/// Where run folders live: `$COMETFLOW_ARTIFACTS` (a directory every worker mounts, when
/// the store is shared), else `<state>/runs`.
pub fn runs_root(state: &Path) -> PathBuf {
    match std::env::var_os("COMETFLOW_ARTIFACTS").filter(|v| !v.is_empty()).map(PathBuf::from) {
        Some(dir) => std::path::absolute(&dir).unwrap_or(dir),
        None => state.join("runs"),
    }
}

/// Creates `<runs root>/<run id>/` and returns its absolute path.
pub fn create_run_dir(state: &Path, run_id: &str) -> io::Result<PathBuf> {
    let dir = runs_root(state).join(run_id);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Writes `run.json` beside the run's step folders, via a temporary file so a crash
/// never leaves half a record. The JSON streams to the file: the record of 100,000 steps
/// is 30 MB of text, which was built whole in memory first (67 MB with its growth).
pub fn write_record(run_dir: &Path, record: &RunRecord) -> io::Result<PathBuf> {
    let path = run_dir.join("run.json");
    let tmp = run_dir.join(".run.json.tmp");
    let mut out = io::BufWriter::with_capacity(64 << 10, std::fs::File::create(&tmp)?);
    serde_json::to_writer_pretty(&mut out, record).map_err(io::Error::other)?;
    out.into_inner().map_err(io::IntoInnerError::into_error)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}
