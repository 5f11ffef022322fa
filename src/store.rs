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

/// A new run id: sortable by time, then 32 random bits. (16 bits collided: a script
/// starting a few hundred short runs a second drew the same id twice within seconds.)
pub fn new_run_id() -> String {
    // A timestamp formats in UTC; `Zoned::now()` would first load the system time zone,
    // walking the whole zoneinfo folder on every start.
    let now = jiff::Timestamp::now();
    format!("{}-{:08x}", now.strftime("%Y%m%d-%H%M%S"), fastrand::u32(..))
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

/// A new run's id and folder. The folder is created exclusively, so two processes that
/// drew the same id never share one: the second draws again.
pub fn create_new_run_dir(state: &Path) -> io::Result<(String, PathBuf)> {
    create_new_in(&runs_root(state), new_run_id)
}

fn create_new_in(root: &Path, mut draw: impl FnMut() -> String) -> io::Result<(String, PathBuf)> {
    std::fs::create_dir_all(root)?;
    let mut tries = 0;
    loop {
        let id = draw();
        let dir = root.join(&id);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok((id, dir)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 8 => tries += 1,
            Err(e) => return Err(e),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_run_never_shares_a_folder_an_id_already_taken_is_drawn_again() {
        let root = tempfile::tempdir().unwrap();
        let mut ids = ["same", "same", "other"].into_iter().map(str::to_owned);
        let (first, _) = create_new_in(root.path(), || ids.next().unwrap()).unwrap();
        let (second, dir) = create_new_in(root.path(), || ids.next().unwrap()).unwrap();
        assert_eq!((first.as_str(), second.as_str()), ("same", "other"));
        assert!(dir.is_dir());
        // A generator that only repeats itself ends with an error, not a loop.
        let err = create_new_in(root.path(), || "same".to_owned()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    }

    #[test]
    fn run_ids_sort_by_time_and_carry_32_random_bits() {
        let id = new_run_id();
        let (stamp, random) = id.rsplit_once('-').unwrap();
        assert_eq!(stamp.len(), "20261205-083423".len());
        assert!(random.len() == 8 && random.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
    }
}
