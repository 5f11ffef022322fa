//! The one description of every CometAPI step kind: its family, summary, `with` fields,
//! outputs, availability, and where to submit, where the task id is, how to poll and where
//! status, progress, failure reason and the family's envelope live. It is `catalog.yaml`,
//! compiled in; `kinds`, `schema`, `validate`, `limits` and `--dry-run` all read it through
//! [`spec`], and [`TaskSpec`] is also what `comet.task` builds from `with`.
//!
//! It owns the shapes as data and dotted-path lookups; it must not send anything.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value as Json;

use crate::contract::{FieldSpec, FieldType, KindSpec};

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

fn no_route() -> Route {
    Route { method: post(), path: String::new() }
}

fn yes() -> bool {
    true
}

/// A family's success marker in every answer (`code == 0` for Kling, ...).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Envelope {
    pub field: String,
    pub ok: Vec<Json>,
    #[serde(default)]
    pub message: Option<String>,
}

/// How one kind of task is submitted and polled. Without `fetch` the call is synchronous:
/// the submit answer is the result.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TaskSpec {
    /// For `task_submitted` and messages: `suno`, `kling`, ...
    pub family: String,
    /// Empty for kinds whose code makes its own requests (`http`, `comet.task`).
    #[serde(default = "no_route")]
    pub submit: Route,
    /// Dotted path(s) of the task id in the submit answer. A URL found there means the
    /// answer already holds the result (Suno's `wav`/`mp4` may answer either way [I]).
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub fetch: Option<Route>,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub success: Vec<String>,
    #[serde(default)]
    pub failure: Vec<String>,
    /// Status words that mean "still running"; any other word is logged once and waited on
    /// until the deadline. Empty: every non-terminal word is taken as running, silently.
    #[serde(default)]
    pub running: Vec<String>,
    /// How long polling may wait for a terminal status when the step sets no `timeout:`
    /// (`30m`, `2h`); [`DEFAULT_DEADLINE`] when absent.
    #[serde(default)]
    pub deadline: Option<String>,
    /// How long after polling starts a `pending_errors` answer still means a young task
    /// ([`DEFAULT_GRACE`] when absent); later it is a failure.
    #[serde(default)]
    pub grace: Option<String>,
    #[serde(default)]
    pub progress: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub envelope: Option<Envelope>,
    #[serde(default)]
    pub pending_errors: Vec<String>,
    /// Extra request headers on every call (Runway's `X-Runway-Version`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `multipart` sends the submit as a form, local files as file parts.
    #[serde(default)]
    pub multipart: bool,
    /// A read after success whose answer lands at `then` in the result (MiniMax's file URL).
    #[serde(default)]
    pub then: Option<Then>,
}

/// Polling's limit for a family that names none (and for `comet.task`).
pub(crate) const DEFAULT_DEADLINE: Duration = Duration::from_secs(3600);
/// How long a young task may answer "not found" when the family names no `grace`.
pub(crate) const DEFAULT_GRACE: Duration = Duration::from_secs(60);

impl TaskSpec {
    /// The family's default polling deadline (a test checks every entry's value parses).
    pub(crate) fn deadline(&self) -> Duration {
        self.deadline
            .as_deref()
            .and_then(|d| crate::model::parse_duration(d).ok())
            .unwrap_or(DEFAULT_DEADLINE)
    }

    pub(crate) fn grace(&self) -> Duration {
        self.grace.as_deref().and_then(|d| crate::model::parse_duration(d).ok()).unwrap_or(DEFAULT_GRACE)
    }
}

/// `GET path` with `{value}` taken from the finished result at `from`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Then {
    pub path: String,
    pub from: String,
}

/// A step kind declared wholly in the catalog: its task plus its `with` fields and outputs.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Entry {
    #[serde(flatten)]
    pub task: TaskSpec,
    #[serde(default)]
    pub summary: String,
    /// The hand-written behaviour in `steps::providers` for a kind that cannot be declared;
    /// `None` for kinds run wholly from this entry.
    #[serde(default)]
    pub code: Option<String>,
    /// Marked temporarily unavailable or removed in CometAPI's docs; built from the documented shapes.
    #[serde(default)]
    pub unavailable: bool,
    /// Each execution is a paid call (counted by `budget` and `--dry-run`).
    #[serde(default = "yes")]
    pub paid: bool,
    /// A failed attempt may be repeated without paying twice.
    #[serde(default)]
    pub idempotent: bool,
    /// Unknown `with` fields pass through to the API (else they are errors).
    #[serde(default = "yes")]
    pub open: bool,
    #[serde(default)]
    pub fields: Vec<FieldDecl>,
    /// For kinds with code, names and descriptions only (their code shapes them).
    #[serde(default)]
    pub outputs: Vec<OutputDecl>,
    /// Body fields set when the step does not set them (dotted keys nest).
    #[serde(default)]
    pub defaults: serde_json::Map<String, Json>,
    /// Moves the whole body under this key (Replicate's `input`).
    #[serde(default)]
    pub nest: Option<String>,
}

/// One `with` field: its check, and how a local file in it is sent.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct FieldDecl {
    pub name: String,
    #[serde(rename = "type")]
    pub types: OneOrMany,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub values: Vec<Json>,
    #[serde(default)]
    pub desc: String,
    /// How a local file is sent: `base64` (bare), `data_uri`, or `multipart` (a file part).
    #[serde(default)]
    pub file: Option<String>,
    /// Where the value goes in the body (dotted; default the field's name).
    #[serde(default)]
    pub to: Option<String>,
    /// Where the value goes when it is a URL (Midjourney's `link`).
    #[serde(default)]
    pub url_to: Option<String>,
    /// Each list item becomes `{wrap: item}` (Kling's `image_list`).
    #[serde(default)]
    pub wrap: Option<String>,
    /// Set to `file` or `url` by what was given (Kling's `audio_type`).
    #[serde(default)]
    pub mark: Option<String>,
    /// Numbers are sent as strings (Kling's `"5"`).
    #[serde(default)]
    pub stringify: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(crate) fn names(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// One output: a value at `path` of the result, or with `file` the URL(s) or base64 there,
/// downloaded into the step folder (the output is the local path; `url` names the URL output).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct OutputDecl {
    pub name: String,
    /// Where it is in the final answer (declared kinds only).
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub desc: String,
    /// The file name's stem; a list gets `-1`, `-2`, ...
    #[serde(default)]
    pub file: Option<String>,
    /// The name of the output holding the file's URL (default `<name>_url`).
    #[serde(default)]
    pub url: Option<String>,
    /// `path` has a `*`: the output is a list.
    #[serde(default)]
    pub list: bool,
    /// May be missing without failing the step.
    #[serde(default)]
    pub optional: bool,
    /// When `path` finds no URL, the file is this path on the API's own host, read with
    /// the key (`/v1/videos/{id}/content`; `{id}` is the task id).
    #[serde(default)]
    pub content: Option<String>,
    /// A number the answer may give as text (`"5.2"`) is read as a number.
    #[serde(default)]
    pub number: bool,
}

impl OutputDecl {
    pub(crate) fn url_name(&self) -> String {
        self.url.clone().unwrap_or_else(|| format!("{}_url{}", self.name, if self.list { "s" } else { "" }))
    }
}

fn table() -> &'static IndexMap<String, Entry> {
    static TABLE: OnceLock<IndexMap<String, Entry>> = OnceLock::new();
    TABLE.get_or_init(|| {
        // The file is part of the binary and a unit test parses it, so this cannot fail at run time.
        let mut value: serde_yaml::Value = serde_yaml::from_str(CATALOG).expect("catalog.yaml is YAML");
        // `<<: *kling` shares a family's envelope and statuses between its entries.
        value.apply_merge().expect("catalog.yaml's merge keys are valid");
        let mut table: IndexMap<String, Entry> =
            serde_yaml::from_value(value).expect("catalog.yaml is valid (checked by a test)");
        // `_name` entries only hold shared parts.
        table.retain(|name, _| !name.starts_with('_'));
        table
    })
}

/// The kind an entry describes, as the engine, `validate`, `kinds` and `schema` see it.
pub(crate) fn spec(name: &str, entry: &Entry) -> KindSpec {
    let fields = entry
        .fields
        .iter()
        .map(|d| {
            let types: Vec<FieldType> = d.types.names().into_iter().filter_map(field_type).collect();
            let mut f = FieldSpec::new(&d.name, &types, &d.desc).values(&d.values);
            f.required = d.required;
            f
        })
        .collect();
    let mut outputs: Vec<(String, String)> = Vec::new();
    for o in &entry.outputs {
        outputs.push((o.name.clone(), o.desc.clone()));
        if entry.code.is_none() && o.file.is_some() {
            outputs.push((o.url_name(), format!("the URL of `{}`, when the API gave one", o.name)));
        }
    }
    if entry.code.is_none() {
        if entry.task.fetch.is_some() {
            outputs.push(("task_id".into(), "the provider's task id".into()));
        }
        outputs.push(("raw".into(), "the last answer, whole".into()));
    }
    KindSpec {
        name: name.to_owned(),
        family: entry.task.family.clone(),
        summary: entry.summary.clone(),
        fields,
        open: entry.open,
        outputs,
        dynamic_outputs: false,
        paid: entry.paid,
        idempotent: entry.idempotent,
        unavailable: entry.unavailable,
        pure: false,
        makes_folder: false,
    }
}

fn field_type(name: &str) -> Option<FieldType> {
    Some(match name {
        "string" => FieldType::String,
        "integer" => FieldType::Integer,
        "number" => FieldType::Number,
        "boolean" => FieldType::Boolean,
        "list" => FieldType::List,
        "map" => FieldType::Object,
        _ => return None,
    })
}

/// The compiled-in entry for `kind`.
pub(crate) fn get(kind: &str) -> Option<&'static TaskSpec> {
    entry(kind).map(|e| &e.task)
}

/// The whole compiled-in entry for `kind`.
pub(crate) fn entry(kind: &str) -> Option<&'static Entry> {
    table().get(kind)
}

/// Every entry, in the file's order.
pub(crate) fn entries() -> impl Iterator<Item = (&'static str, &'static Entry)> {
    table().iter().map(|(k, v)| (k.as_str(), v))
}

/// Every value at `a.*.b` (a `*` takes each item of a list), for the first alternative of
/// `a|b` that yields any.
pub(crate) fn pick_all<'a>(json: &'a Json, paths: &str) -> Vec<&'a Json> {
    for p in paths.split('|') {
        let mut found = vec![json];
        for seg in p.trim().split('.').filter(|s| !s.is_empty()) {
            found = found
                .into_iter()
                .flat_map(|v| match (seg, v) {
                    ("*", Json::Array(a)) => a.iter().collect::<Vec<_>>(),
                    (_, Json::Object(m)) => m.get(seg).into_iter().collect(),
                    (_, Json::Array(a)) => {
                        seg.parse::<usize>().ok().and_then(|i| a.get(i)).into_iter().collect()
                    }
                    _ => Vec::new(),
                })
                .collect();
        }
        found.retain(|v| !v.is_null() && !v.as_str().is_some_and(str::is_empty));
        if !found.is_empty() {
            return found;
        }
    }
    Vec::new()
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
            assert!(spec.fetch.as_ref().is_some_and(|f| f.path.contains("{id}")), "{kind}");
        }
    }

    #[test]
    fn every_entry_names_a_family_and_declares_what_it_runs() {
        for (name, entry) in entries() {
            assert!(!entry.task.family.is_empty(), "{name} has no family");
            assert!(!entry.outputs.is_empty(), "{name} declares no outputs");
            let spec = spec(name, entry);
            for f in &entry.fields {
                assert!(!f.types.names().is_empty(), "{name}.{}", f.name);
                assert!(
                    f.types.names().into_iter().all(|t| field_type(t).is_some()),
                    "{name}.{}: bad type",
                    f.name
                );
            }
            if entry.code.is_none() {
                assert!(!entry.task.submit.path.is_empty(), "{name} has no submit path and no code");
                assert!(entry.outputs.iter().all(|o| !o.path.is_empty()), "{name}: an output without a path");
            }
            assert_eq!(spec.name, name);
            for d in [&entry.task.deadline, &entry.task.grace].into_iter().flatten() {
                assert!(crate::model::parse_duration(d).is_ok(), "{name}: `{d}` is not a duration");
            }
            if entry.task.fetch.is_some() && entry.code.as_deref() != Some("comet.task") {
                assert!(entry.task.deadline.is_some(), "{name} polls without a default deadline");
                assert!(!entry.task.running.is_empty(), "{name} polls without its running words");
            }
        }
    }

    /// README's deadline table names every polled family with the catalog's own value.
    #[test]
    fn the_readme_lists_every_familys_deadline() {
        let readme = include_str!("../README.md");
        let table =
            readme.split("<!-- deadlines:start").nth(1).and_then(|t| t.split("<!-- deadlines:end").next());
        let table = table.expect("README has the deadlines table");
        let rows: Vec<(&str, &str)> = table
            .lines()
            .filter_map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                (cells.len() == 4 && !cells[1].starts_with("--")).then(|| (cells[1], cells[2]))
            })
            .collect();
        for (name, entry) in entries().filter(|(_, e)| e.task.fetch.is_some()) {
            let Some(deadline) = &entry.task.deadline else { continue };
            let family = entry.task.family.as_str();
            let listed = rows.iter().find(|(families, _)| {
                families.split(|c: char| c == ',' || c.is_whitespace()).any(|f| f == family)
            });
            assert_eq!(listed.map(|r| r.1), Some(deadline.as_str()), "{name}: family `{family}` in README");
        }
        let any = rows.iter().find(|r| r.0.contains("comet.task")).map(|r| r.1);
        assert_eq!(any.map(crate::model::parse_duration), Some(Ok(DEFAULT_DEADLINE)));
    }

    #[test]
    fn dotted_paths_take_alternatives_and_indexes() {
        let v = json!({"data": {"task_id": "", "list": [{"url": "u"}]}, "id": 7});
        assert_eq!(pick(&v, "data.task_id|id"), Some(&json!(7)));
        assert_eq!(pick(&v, "data.list.0.url"), Some(&json!("u")));
        assert_eq!(pick(&v, "nope"), None);
    }
}
