//! Which paths count as a change for `watch`: the pipeline file itself and files matching
//! its `on.watch` globs (relative to the pipeline's folder), never the state directory.
//! Also which folders must be watched to see them.

use std::path::{Component, Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::events::normalize;

pub struct Targets {
    file: PathBuf,
    base: PathBuf,
    state: PathBuf,
    globs: GlobSet,
    /// Literal folder prefix of each glob, relative to `base` (empty: `base` itself).
    roots: Vec<PathBuf>,
    deep: bool,
}

impl Targets {
    pub fn new(file: &Path, patterns: &[Glob]) -> Result<Targets, String> {
        let file = normalize(file);
        let base = file.parent().map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
        let mut set = GlobSetBuilder::new();
        let (mut roots, mut deep) = (Vec::new(), false);
        for glob in patterns {
            let p = glob.glob();
            set.add(glob.clone());
            let root = literal_prefix(p);
            deep |= p.contains('/') || p.contains("**");
            roots.push(root);
        }
        let globs = set.build().map_err(|e| format!("`on.watch` patterns: {e}; fix them in the pipeline"))?;
        let state = normalize(&crate::store::state_dir());
        Ok(Targets { file, base, state, globs, roots, deep })
    }

    /// Folders to watch, each with whether to watch it recursively.
    pub fn dirs(&self) -> Vec<(PathBuf, bool)> {
        let mut dirs = vec![(self.base.clone(), false)];
        for root in &self.roots {
            let dir = self.base.join(root);
            if root.as_os_str().is_empty() || !dir.is_dir() {
                // A glob into a folder that does not exist yet: watch from the base down.
                dirs[0].1 |= self.deep;
            } else if !dirs.iter().any(|(d, _)| d == &dir) {
                dirs.push((dir, true));
            }
        }
        if dirs[0].1 {
            dirs.truncate(1);
        }
        dirs
    }

    pub fn is_relevant(&self, path: &Path) -> bool {
        let path = normalize(path);
        if path == self.file {
            return true;
        }
        if path.starts_with(&self.state) {
            return false;
        }
        path.strip_prefix(&self.base).is_ok_and(|rel| self.globs.is_match(rel))
    }

    /// `path` relative to the pipeline's folder, for messages.
    pub fn display(&self, path: &Path) -> String {
        let path = normalize(path);
        path.strip_prefix(&self.base).unwrap_or(&path).display().to_string()
    }
}

/// The folders of a glob before its first wildcard: `prompts/*.txt` -> `prompts`.
fn literal_prefix(pattern: &str) -> PathBuf {
    let mut prefix = PathBuf::new();
    let parts: Vec<Component> = Path::new(pattern).components().collect();
    for (i, c) in parts.iter().enumerate() {
        let s = c.as_os_str().to_string_lossy();
        if i + 1 == parts.len() || s.contains(['*', '?', '[', '{']) {
            break;
        }
        prefix.push(c);
    }
    prefix
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_stop_at_the_first_wildcard() {
        assert_eq!(literal_prefix("prompts/*.txt"), PathBuf::from("prompts"));
        assert_eq!(literal_prefix("a/b/**/*.json"), PathBuf::from("a/b"));
        assert_eq!(literal_prefix("*.txt"), PathBuf::new());
        assert_eq!(literal_prefix("notes.md"), PathBuf::new());
    }

    #[test]
    fn matches_the_file_and_globs_but_not_the_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pipeline.yaml");
        let t = Targets::new(
            &file,
            &[globset::GlobBuilder::new("prompts/*.txt").literal_separator(true).build().unwrap()],
        )
        .unwrap();
        assert!(t.is_relevant(&file));
        assert!(t.is_relevant(&dir.path().join("prompts/a.txt")));
        assert!(!t.is_relevant(&dir.path().join("prompts/deep/a.txt")));
        assert!(!t.is_relevant(&dir.path().join("other.yaml")));
    }
}
