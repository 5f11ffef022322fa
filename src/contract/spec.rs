//! What a kind takes and gives, as data: read by `validate` (before a run), by the engine
//! (each rendered `with`, before the kind sees it), and by `kinds` and `schema`.

use serde_json::Value as Json;

use super::{ErrorKind, StepError};

#[derive(Debug, Clone, Default)]
pub struct KindSpec {
    pub name: String,
    /// The provider family (`openai`, `suno`, `kling`, ...), as `limits:` names it; `local`
    /// for kinds that call no provider, `any` for the generic ones (`http`, `comet.task`).
    pub family: String,
    pub summary: String,
    pub fields: Vec<FieldSpec>,
    /// Unknown `with` fields pass through to the API instead of being errors.
    pub open: bool,
    pub outputs: Vec<(String, String)>,
    /// Outputs beyond `outputs` appear at run time (shell's `$COMETFLOW_OUTPUT`, value's keys).
    pub dynamic_outputs: bool,
    /// Each execution is a paid provider call: counted by `budget` and `--dry-run`.
    pub paid: bool,
    /// A failed or timed-out attempt may be repeated without paying twice.
    pub idempotent: bool,
    /// Running it has no effect beyond its outputs (`value`): if the process dies, running
    /// it again changes nothing, so it need not wait for what it reads to reach the disk.
    pub pure: bool,
    /// Marked removed or unavailable in CometAPI's docs (built from the documented shapes).
    pub unavailable: bool,
    /// Each execution needs its folder before it starts (`shell`: `$COMETFLOW_STEP_DIR`
    /// must exist for whatever the command runs). The engine makes it ahead, while the
    /// step it waits for runs, so a chain does not wait for the file system.
    pub makes_folder: bool,
}

impl KindSpec {
    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Checks a rendered `with` against the fields: a wrong type, a value the API does not
    /// take, an empty list where one is needed, or a missing required field. The message
    /// names the field, what it got and what was expected.
    pub fn check(&self, with: &Json) -> Result<(), StepError> {
        let empty = serde_json::Map::new();
        let map = match with {
            Json::Object(map) => map,
            Json::Null => &empty,
            _ if self.fields.is_empty() => return Ok(()),
            _ => return Err(input(format!("`with` rendered to {}, not a map of fields", shape(with)))),
        };
        for f in &self.fields {
            match map.get(&f.name) {
                None | Some(Json::Null) if f.required => {
                    return Err(input(format!(
                        "`with.{}` is required ({}), but it is missing",
                        f.name,
                        f.expected()
                    )));
                }
                None | Some(Json::Null) => {}
                Some(v) => f.check(v)?,
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct FieldSpec {
    pub name: String,
    pub types: Vec<FieldType>,
    pub required: bool,
    /// Allowed values, when the API takes only some.
    pub values: Vec<Json>,
    pub description: String,
}

impl FieldSpec {
    pub fn new(name: &str, types: &[FieldType], description: &str) -> Self {
        FieldSpec {
            name: name.into(),
            types: types.to_vec(),
            required: false,
            values: Vec::new(),
            description: description.into(),
        }
    }

    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    pub fn values(mut self, values: &[Json]) -> Self {
        self.values = values.to_vec();
        self
    }

    /// `string or list`, for messages.
    pub fn expected(&self) -> String {
        let names: Vec<&str> = self.types.iter().map(|t| t.name()).collect();
        if names.is_empty() {
            "any value".to_owned()
        } else {
            names.join(" or ")
        }
    }

    fn check(&self, v: &Json) -> Result<(), StepError> {
        if !self.types.is_empty() && !self.types.iter().any(|t| t.accepts(v)) {
            return Err(input(format!(
                "`with.{}` must be a {}, but it rendered to {}",
                self.name,
                self.expected(),
                shape(v)
            )));
        }
        if self.required && v.as_array().is_some_and(Vec::is_empty) {
            return Err(input(format!(
                "`with.{}` rendered to an empty list, but at least one item is needed",
                self.name
            )));
        }
        let allowed = |v: &Json| self.values.is_empty() || self.values.iter().any(|a| same(a, v));
        if !allowed(v) {
            let list: Vec<String> = self.values.iter().map(ToString::to_string).collect();
            return Err(input(format!(
                "`with.{}` is {}, which is not one of {}",
                self.name,
                short(v),
                list.join(", ")
            )));
        }
        Ok(())
    }
}

/// Values compare as text too: `5` and `"5"` name the same choice.
fn same(a: &Json, b: &Json) -> bool {
    a == b || (a.is_string() != b.is_string() && text(a) == text(b))
}

fn text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn input(message: String) -> StepError {
    StepError::fatal(message).kind(ErrorKind::Input)
}

/// What a value is, with a glimpse of it: `an empty list`, `a string "..."`.
fn shape(v: &Json) -> String {
    match v {
        Json::Null => "null".to_owned(),
        Json::Bool(_) | Json::Number(_) => format!("the {} {}", FieldType::of(v).name(), v),
        Json::String(_) => format!("the string {}", short(v)),
        Json::Array(a) if a.is_empty() => "an empty list".to_owned(),
        Json::Array(a) => format!("a list of {} items", a.len()),
        Json::Object(_) => "a map".to_owned(),
    }
}

fn short(v: &Json) -> String {
    let s = v.to_string();
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    String,
    Integer,
    Number,
    Boolean,
    List,
    Object,
}

impl FieldType {
    pub fn name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Integer => "integer",
            FieldType::Number => "number",
            FieldType::Boolean => "boolean",
            FieldType::List => "list",
            FieldType::Object => "map",
        }
    }

    pub fn accepts(self, v: &Json) -> bool {
        match self {
            FieldType::String => v.is_string(),
            FieldType::Integer => v.is_i64() || v.is_u64(),
            FieldType::Number => v.is_number(),
            FieldType::Boolean => v.is_boolean(),
            FieldType::List => v.is_array(),
            FieldType::Object => v.is_object(),
        }
    }

    fn of(v: &Json) -> FieldType {
        match v {
            Json::Bool(_) => FieldType::Boolean,
            Json::Number(n) if n.is_i64() || n.is_u64() => FieldType::Integer,
            Json::Number(_) => FieldType::Number,
            Json::Array(_) => FieldType::List,
            Json::Object(_) => FieldType::Object,
            _ => FieldType::String,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn merge() -> KindSpec {
        KindSpec {
            name: "media.merge".into(),
            fields: vec![
                FieldSpec::new("video", &[FieldType::String, FieldType::List], "clips").required(),
                FieldSpec::new("audio", &[FieldType::String, FieldType::List], "track").required(),
                FieldSpec::new("fit", &[FieldType::String], "how").values(&[json!("loop-video")]),
            ],
            ..KindSpec::default()
        }
    }

    #[test]
    fn a_required_list_that_renders_empty_is_refused_by_name() {
        let err = merge().check(&json!({"video": "a.mp4", "audio": []})).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Input);
        assert!(err.message.contains("`with.audio` rendered to an empty list"), "{}", err.message);
    }

    #[test]
    fn a_wrong_type_names_what_it_got_and_what_was_expected() {
        let err = merge().check(&json!({"video": 3, "audio": "a.mp3"})).unwrap_err();
        assert!(
            err.message.contains("must be a string or list, but it rendered to the integer 3"),
            "{}",
            err.message
        );
    }

    #[test]
    fn missing_fields_and_disallowed_values_are_refused() {
        let err = merge().check(&json!({"video": "a.mp4"})).unwrap_err();
        assert!(err.message.contains("`with.audio` is required"), "{}", err.message);
        let err = merge().check(&json!({"video": "a", "audio": "b", "fit": "stretch"})).unwrap_err();
        assert!(err.message.contains("not one of \"loop-video\""), "{}", err.message);
        assert!(merge().check(&json!({"video": ["a"], "audio": "b", "fit": "loop-video"})).is_ok());
    }
}
