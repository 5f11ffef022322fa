//! The cache seen and kept in bounds: its entries with the files they hold, and pruning by
//! age and total size. A pruned entry's files are deleted only when nothing else points at
//! them: no run's step outputs or run outputs, and no entry that stays.
//!
//! It owns these reads and deletions of `cache` rows; it must not format anything.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value as Json;

use super::db::{Db, StoreError};

/// One cached step result.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: String,
    pub kind: String,
    pub run_id: String,
    pub step_dir: String,
    pub created_at: Timestamp,
    /// The files its outputs name (inside its step folder) that still exist.
    pub files: Vec<PathBuf>,
    pub bytes: u64,
}

/// What a prune removed, or would remove.
#[derive(Debug, Default)]
pub struct Pruned {
    pub entries: Vec<Entry>,
    /// Files only the removed entries held.
    pub deleted: Vec<PathBuf>,
    pub freed: u64,
    /// Files of removed entries kept because a run (or a kept entry) points at them.
    pub kept: usize,
}

/// Every entry, newest first.
pub fn entries(db: &Arc<Db>) -> Result<Vec<Entry>, StoreError> {
    let rows = db.with(|c| {
        let mut stmt = c.prepare(
            "SELECT key, kind, run_id, step_dir, outputs, created_at FROM cache ORDER BY created_at DESC",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get::<_, String>(4)?, r.get::<_, String>(5)?))
        })?;
        rows.collect::<rusqlite::Result<Vec<(String, String, String, String, String, String)>>>()
    })?;
    Ok(rows
        .into_iter()
        .map(|(key, kind, run_id, step_dir, outputs, created)| {
            let outputs: Json = serde_json::from_str(&outputs).unwrap_or(Json::Null);
            let mut files = Vec::new();
            paths(&outputs, &mut |p| {
                if Path::new(p).starts_with(&step_dir) && Path::new(p).is_file() {
                    files.push(PathBuf::from(p));
                }
            });
            files.sort();
            files.dedup();
            let bytes = files.iter().filter_map(|f| f.metadata().ok()).map(|m| m.len()).sum();
            let created_at = created.parse().unwrap_or(Timestamp::UNIX_EPOCH);
            Entry { key, kind, run_id, step_dir, created_at, files, bytes }
        })
        .collect())
}

/// Removes the entries older than `older_than`, then the oldest until the rest hold at
/// most `max_bytes`; with `dry_run`, only says what it would remove.
pub fn prune(
    db: &Arc<Db>,
    older_than: Option<Duration>,
    max_bytes: Option<u64>,
    now: Timestamp,
    dry_run: bool,
) -> Result<Pruned, StoreError> {
    let mut keep = entries(db)?;
    let mut gone = Vec::new();
    if let Some(age) = older_than {
        let (old, young): (Vec<Entry>, Vec<Entry>) =
            keep.into_iter().partition(|e| now.duration_since(e.created_at).unsigned_abs() > age);
        gone.extend(old);
        keep = young;
    }
    if let Some(max) = max_bytes {
        let mut total: u64 = keep.iter().map(|e| e.bytes).sum();
        // Newest first, so the oldest are at the end.
        while total > max {
            let Some(oldest) = keep.pop() else { break };
            total -= oldest.bytes;
            gone.push(oldest);
        }
    }
    let used = used_files(db, &keep)?;
    let mut pruned = Pruned::default();
    for file in gone.iter().flat_map(|e| &e.files) {
        if used.contains(&canonical(file)) {
            pruned.kept += 1;
        } else if !pruned.deleted.contains(file) {
            pruned.freed += file.metadata().map_or(0, |m| m.len());
            pruned.deleted.push(file.clone());
        }
    }
    if !dry_run {
        db.with(|c| {
            let tx = c.transaction()?;
            for e in &gone {
                tx.execute("DELETE FROM cache WHERE key = ?1", [&e.key])?;
            }
            tx.commit()
        })?;
        for file in &pruned.deleted {
            if let Err(e) = std::fs::remove_file(file) {
                tracing::warn!(file = %file.display(), "cannot delete a pruned cache file: {e}");
            }
        }
        for e in &gone {
            // Only an emptied step folder goes; `remove_dir` leaves one with files alone.
            let _ = std::fs::remove_dir(&e.step_dir);
        }
    }
    pruned.entries = gone;
    Ok(pruned)
}

/// Every file a run's step outputs or run outputs name, and every file of `kept` entries.
fn used_files(db: &Arc<Db>, kept: &[Entry]) -> Result<HashSet<PathBuf>, StoreError> {
    let texts = db.with(|c| {
        let mut stmt = c.prepare(
            "SELECT outputs FROM steps UNION ALL SELECT outputs FROM runs WHERE outputs IS NOT NULL",
        )?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
    })?;
    let mut used = HashSet::new();
    for text in texts {
        let json: Json = serde_json::from_str(&text).unwrap_or(Json::Null);
        paths(&json, &mut |p| {
            if Path::new(p).is_absolute() {
                used.insert(canonical(Path::new(p)));
            }
        });
    }
    used.extend(kept.iter().flat_map(|e| &e.files).map(|f| canonical(f)));
    Ok(used)
}

/// The file's real path, so a path through a symlink matches; itself when it is gone.
fn canonical(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

/// Calls `f` with every string in `v` that could be a path.
fn paths(v: &Json, f: &mut dyn FnMut(&str)) {
    match v {
        Json::String(s) if !s.is_empty() && s.len() < 4096 && !s.contains('\n') => f(s),
        Json::Array(list) => list.iter().for_each(|x| paths(x, f)),
        Json::Object(map) => map.values().for_each(|x| paths(x, f)),
        _ => {}
    }
}
