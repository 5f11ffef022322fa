//! The daemon's memory across restarts: per pipeline, the last fire time it handled
//! (started, queued or skipped) or, before any, when it began watching. Kept as
//! `<state dir>/schedule.json`; written whole via a temporary file and a rename, so a
//! crash never leaves half a record.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use jiff::Timestamp;

/// Pipeline name -> last handled fire time.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FireRecord {
    pub last: BTreeMap<String, Timestamp>,
}

impl FireRecord {
    pub fn path(state: &Path) -> PathBuf {
        state.join("schedule.json")
    }

    /// Reads the record; a missing file is an empty record, a corrupt one an error.
    pub fn load(state: &Path) -> io::Result<FireRecord> {
        let text = match std::fs::read_to_string(Self::path(state)) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(FireRecord::default()),
            Err(e) => return Err(e),
        };
        let last = serde_json::from_str(&text).map_err(io::Error::other)?;
        Ok(FireRecord { last })
    }

    pub fn save(&self, state: &Path) -> io::Result<()> {
        std::fs::create_dir_all(state)?;
        let tmp = state.join(".schedule.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&self.last).map_err(io::Error::other)?)?;
        std::fs::rename(&tmp, Self::path(state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(FireRecord::load(dir.path()).unwrap(), FireRecord::default());
        let mut r = FireRecord::default();
        r.last.insert("daily".into(), "2026-03-29T01:00:00Z".parse().unwrap());
        r.save(dir.path()).unwrap();
        assert_eq!(FireRecord::load(dir.path()).unwrap(), r);
        assert!(!dir.path().join(".schedule.json.tmp").exists());
    }
}
