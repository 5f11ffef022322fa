//! The provider family table: per task kind, where to submit, where the task id is, how to
//! poll and where status, progress, failure reason and the family's envelope live. It is
//! `catalog.yaml`, compiled in; [`TaskSpec`] is also what `comet.task` builds from `with`.
//!
//! It owns the shapes as data and dotted-path lookups; it must not send anything.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value as Json;

const CATALOG: &str = include_str!("catalog.yaml");

/// A method and a path from the host; `{id}` in a fetch path is the task id.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Route {
    #[serde(default = "post")]
    pub method: String,
    pub path: String,
}

fn post() -> String {
    "POST".into()
}

/// A family's success marker in every answer (`code == 0` for Kling, ...).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Envelope {
    pub field: String,
    pub ok: Vec<Json>,
    #[serde(default)]
    pub message: Option<String>,
}

/// How one kind of task is submitted and polled.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TaskSpec {
    /// For `task_submitted` and messages: `suno`, `kling`, ...
    pub family: String,
    pub submit: Route,
    /// Dotted path(s) of the task id in the submit answer.
    pub id: String,
    pub fetch: Route,
    pub status: String,
    pub success: Vec<String>,
    #[serde(default)]
    pub failure: Vec<String>,
    #[serde(default)]
    pub progress: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub envelope: Option<Envelope>,
    #[serde(default)]
    pub pending_errors: Vec<String>,
}

/// The compiled-in entry for `kind`.
pub(crate) fn get(kind: &str) -> Option<&'static TaskSpec> {
    static TABLE: OnceLock<HashMap<String, TaskSpec>> = OnceLock::new();
    TABLE
        .get_or_init(|| {
            // The file is part of the binary and a unit test parses it, so this cannot fail at run time.
            serde_yaml::from_str(CATALOG).expect("catalog.yaml is valid (checked by a test)")
        })
        .get(kind)
}

/// The first of `a|b|c` that is present, not null and not an empty string.
pub(crate) fn pick<'a>(json: &'a Json, paths: &str) -> Option<&'a Json> {
    paths.split('|').find_map(|p| {
        let v = lookup(json, p.trim())?;
        let empty = v.is_null() || v.as_str().is_some_and(str::is_empty);
        (!empty).then_some(v)
    })
}

/// `a.b.0.c` in `json`; an empty path is `json` itself.
pub(crate) fn lookup<'a>(json: &'a Json, path: &str) -> Option<&'a Json> {
    path.split('.').filter(|s| !s.is_empty()).try_fold(json, |v, seg| match v {
        Json::Object(m) => m.get(seg),
        Json::Array(a) => a.get(seg.parse::<usize>().ok()?),
        _ => None,
    })
}

/// A scalar as text (`"5"`, `5` -> `5`); `None` for maps, lists and null.
pub(crate) fn scalar(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_catalog_parses_and_names_every_task_kind() {
        for kind in [
            "suno.music",
            "suno.lyrics",
            "kling.text2video",
            "kling.image2video",
            "midjourney.imagine",
            "midjourney.action",
        ] {
            let spec = get(kind).unwrap_or_else(|| panic!("{kind} missing"));
            assert!(spec.fetch.path.contains("{id}"), "{kind}");
        }
    }

    #[test]
    fn dotted_paths_take_alternatives_and_indexes() {
        let v = json!({"data": {"task_id": "", "list": [{"url": "u"}]}, "id": 7});
        assert_eq!(pick(&v, "data.task_id|id"), Some(&json!(7)));
        assert_eq!(pick(&v, "data.list.0.url"), Some(&json!("u")));
        assert_eq!(pick(&v, "nope"), None);
    }
}
