//! File-system events as batches: notify watches folders (editors replace files on save,
//! which would orphan a watch on the file itself) and a batch is every changed path seen
//! in a short window after the first, so one save is handled once.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// How long to gather events after the first one of a batch.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// Watched folders and the changes under them.
pub struct FsEvents {
    watcher: RecommendedWatcher,
    rx: mpsc::UnboundedReceiver<Vec<PathBuf>>,
    watched: Vec<(PathBuf, bool)>,
}

impl FsEvents {
    pub fn new() -> Result<FsEvents, String> {
        let (tx, rx) = mpsc::unbounded_channel();
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            // Reads (ours included) are not changes; a closed receiver means we are exiting.
            if let Ok(ev) = res {
                if !matches!(ev.kind, EventKind::Access(_)) {
                    let _ = tx.send(ev.paths);
                }
            }
        })
        .map_err(|e| format!("cannot watch files: {e}; check the system's inotify limits"))?;
        Ok(FsEvents { watcher, rx, watched: Vec::new() })
    }

    /// Watches exactly `dirs` from now on (recursively when asked). Watches that stay are
    /// left alone: re-creating them would lose the events in between.
    pub fn set(&mut self, dirs: &[(PathBuf, bool)]) -> Result<(), String> {
        for old in &self.watched {
            if !dirs.contains(old) {
                let _ = self.watcher.unwatch(&old.0);
            }
        }
        self.watched.retain(|w| dirs.contains(w));
        for (dir, recursive) in dirs {
            if self.watched.iter().any(|w| w == &(dir.clone(), *recursive)) {
                continue;
            }
            let mode = if *recursive { RecursiveMode::Recursive } else { RecursiveMode::NonRecursive };
            self.watcher.watch(dir, mode).map_err(|e| {
                format!("cannot watch `{}`: {e}; check that the folder exists", dir.display())
            })?;
            self.watched.push((dir.clone(), *recursive));
        }
        Ok(())
    }

    /// Waits for a change, then returns every path changed within `DEBOUNCE` of it.
    /// `None` when the watcher has stopped.
    pub async fn batch(&mut self) -> Option<BTreeSet<PathBuf>> {
        let mut paths: BTreeSet<PathBuf> = self.rx.recv().await?.into_iter().collect();
        let deadline = tokio::time::Instant::now() + DEBOUNCE;
        while let Ok(Some(more)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            paths.extend(more);
        }
        Some(paths)
    }
}

/// An absolute, symlink-free form of `path` for comparing with event paths: the parent
/// is canonicalized (it exists) and the file name kept (the file may be mid-replace).
pub fn normalize(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match (abs.parent(), abs.file_name()) {
        (Some(dir), Some(name)) => std::fs::canonicalize(dir).map(|d| d.join(name)).unwrap_or(abs),
        _ => abs,
    }
}
