//! The step cache: the engine's [`Cache`], kept in the `cache` table. A key is the sha256
//! of the step's kind and its rendered `with` (object keys sorted), where every string
//! naming an existing file is replaced by the file's content hash: the same request on
//! the same bytes is the same key, wherever the file lives. A hit brings the earlier
//! outputs' files into the new step folder (a hard link, or a copy across file systems)
//! and rewrites their paths; a hit whose files are gone is a miss.
//!
//! It owns keys and the `cache` rows; it must not know which kinds are paid nor when the
//! engine consults it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use rusqlite::{params, OptionalExtension};
use serde_json::{Map, Value as Json};

use super::db::Db;
use super::hash::{file_sha256, sha256};
use crate::engine::hooks::Cache;

/// Strings longer than this are text, not paths.
const MAX_PATH: usize = 4096;

pub struct StoreCache {
    pub(crate) db: Arc<Db>,
    pub(crate) run_id: String,
    /// `false` with `--fresh`: results are stored but never reused.
    pub(crate) read: bool,
    /// The API base URL, or `simulator`: results are reused only from the same backend.
    pub(crate) backend: String,
}

/// `with`, keys sorted, each existing file replaced by its content hash (from `hash`).
pub(crate) fn canonical(v: &Json, base: &Path, hash: &dyn Fn(&Path) -> Option<String>) -> Json {
    match v {
        Json::String(s) if !s.is_empty() && s.len() < MAX_PATH && !s.contains('\n') => {
            let p = Path::new(s);
            let path = if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
            match path.is_file().then(|| hash(&path)).flatten() {
                Some(digest) => serde_json::json!({ "file_sha256": digest }),
                None => v.clone(),
            }
        }
        Json::Array(list) => Json::Array(list.iter().map(|x| canonical(x, base, hash)).collect()),
        Json::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let sorted: Map<String, Json> =
                keys.into_iter().map(|k| (k.clone(), canonical(&map[k], base, hash))).collect();
            Json::Object(sorted)
        }
        other => other.clone(),
    }
}

/// The cache key of `kind` run with `with` against `backend`.
pub(crate) fn key_of(
    backend: &str,
    kind: &str,
    with: &Json,
    base: &Path,
    hash: &dyn Fn(&Path) -> Option<String>,
) -> String {
    let canonical =
        serde_json::json!({ "v": 1, "backend": backend, "kind": kind, "with": canonical(with, base, hash) });
    sha256(canonical.to_string().as_bytes())
}

impl Cache for StoreCache {
    fn key(&self, kind: &str, with: &Json, base: &Path) -> Option<String> {
        Some(key_of(&self.backend, kind, with, base, &|p| file_sha256(&self.db, p)))
    }

    fn lookup(&self, key: &str, step_dir: &Path) -> Option<Json> {
        if !self.read {
            return None;
        }
        let (old_dir, outputs): (String, String) = self
            .db
            .with(|c| {
                c.query_row("SELECT step_dir, outputs FROM cache WHERE key = ?1", [key], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
            })
            .ok()
            .flatten()?;
        let outputs: Json = serde_json::from_str(&outputs).ok()?;
        relocate(&outputs, Path::new(&old_dir), step_dir)
    }

    fn store(&self, key: &str, kind: &str, step_dir: &Path, outputs: &Json) {
        let result = self.db.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO cache (key, kind, run_id, step_dir, outputs, created_at)
                 VALUES (?1, ?6, ?2, ?3, ?4, ?5)",
                params![
                    key,
                    self.run_id,
                    step_dir.display().to_string(),
                    outputs.to_string(),
                    Timestamp::now().to_string(),
                    kind
                ],
            )
        });
        if let Err(e) = result {
            tracing::warn!("cannot remember a step's result for the cache: {e}");
        }
    }
}

/// `outputs` with every path under `old` brought to (and rewritten as) the same place
/// under `new`; `None` when one of those files is gone.
pub(crate) fn relocate(outputs: &Json, old: &Path, new: &Path) -> Option<Json> {
    Some(match outputs {
        Json::String(s) => match Path::new(s).strip_prefix(old) {
            Ok(rel) if !rel.as_os_str().is_empty() => {
                let to = new.join(rel);
                bring(&PathBuf::from(s), &to)?;
                Json::String(to.display().to_string())
            }
            _ => outputs.clone(),
        },
        Json::Array(list) => Json::Array(list.iter().map(|x| relocate(x, old, new)).collect::<Option<_>>()?),
        Json::Object(map) => Json::Object(
            map.iter().map(|(k, v)| Some((k.clone(), relocate(v, old, new)?))).collect::<Option<_>>()?,
        ),
        other => other.clone(),
    })
}

/// Hard-links `from` to `to` (copies when linking is not possible).
fn bring(from: &Path, to: &Path) -> Option<()> {
    if !from.is_file() {
        return None;
    }
    if from == to {
        return Some(());
    }
    std::fs::create_dir_all(to.parent()?).ok()?;
    let _ = std::fs::remove_file(to);
    std::fs::hard_link(from, to).or_else(|_| std::fs::copy(from, to).map(drop)).ok()
}
