//! Paths in a shared store are recorded relative to `COMETFLOW_ARTIFACTS`: a path under
//! this machine's artifacts folder is stored as `@artifacts/<rest>` and read back under the
//! reader's own, so machines may mount the shared folder at different places.
//!
//! It owns that rewriting; it must not know which values are paths (any string is looked at).

use std::path::Path;

use serde_json::Value as Json;

const MARK: &str = "@artifacts/";

/// A path (or any string) as stored.
pub fn store_str(s: &str, root: &Path) -> String {
    let root = root.to_string_lossy();
    match s.strip_prefix(root.as_ref()).and_then(|rest| rest.strip_prefix('/')) {
        Some(rest) => format!("{MARK}{rest}"),
        None => s.to_owned(),
    }
}

/// A stored string as this machine reads it.
pub fn load_str(s: &str, root: &Path) -> String {
    match s.strip_prefix(MARK) {
        Some(rest) => root.join(rest).display().to_string(),
        None => s.to_owned(),
    }
}

fn map(v: &Json, f: &dyn Fn(&str) -> String) -> Json {
    match v {
        Json::String(s) => Json::String(f(s)),
        Json::Array(list) => Json::Array(list.iter().map(|x| map(x, f)).collect()),
        Json::Object(m) => Json::Object(m.iter().map(|(k, x)| (k.clone(), map(x, f))).collect()),
        other => other.clone(),
    }
}

pub fn store(v: &Json, root: &Path) -> Json {
    map(v, &|s| store_str(s, root))
}

pub fn load(v: &Json, root: &Path) -> Json {
    map(v, &|s| load_str(s, root))
}

/// JSON text as stored -> JSON text as read here.
pub fn load_text(text: &str, root: &Path) -> String {
    if !text.contains(MARK) {
        return text.to_owned();
    }
    serde_json::from_str::<Json>(text).map_or_else(|_| text.to_owned(), |v| load(&v, root).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_under_the_artifacts_folder_travel_between_mount_points() {
        let v = serde_json::json!({ "video": "/mnt/a/r1/clip/v.mp4", "n": 1, "other": "/tmp/x" });
        let stored = store(&v, Path::new("/mnt/a"));
        assert_eq!(stored["video"], "@artifacts/r1/clip/v.mp4");
        assert_eq!(stored["other"], "/tmp/x");
        let read = load(&stored, Path::new("/data/shared"));
        assert_eq!(read["video"], "/data/shared/r1/clip/v.mp4");
        assert_eq!(store_str("/mnt/ab/x", Path::new("/mnt/a")), "/mnt/ab/x");
    }
}
