//! The pipeline file as written: serde structures that reject unknown fields.
//!
//! Nothing here interprets values (durations, templates, kinds); `validate` does, with
//! positions from `source`. Only YAML syntax and the shape of the document are checked.

use std::sync::Arc;

use indexmap::IndexMap;
use serde::Deserialize;
use serde_yaml::Value;

use crate::diag::{did_you_mean, Diagnostic};
use crate::source::{Source, Span};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPipeline {
    pub name: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub inputs: IndexMap<String, RawInput>,
    #[serde(default)]
    pub defaults: RawDefaults,
    pub concurrency: Option<Value>,
    #[serde(default)]
    pub limits: IndexMap<String, RawLimit>,
    pub budget: Option<RawBudget>,
    pub on: Option<RawTriggers>,
    #[serde(default)]
    pub env: RawEnv,
    pub steps: Option<IndexMap<String, RawStep>>,
    #[serde(default)]
    pub outputs: IndexMap<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInput {
    pub default: Option<Value>,
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub ty: Option<String>,
    pub required: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    pub retry: Option<RawRetry>,
    pub timeout: Option<Value>,
    pub poll: Option<RawPoll>,
    pub cache: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    pub attempts: Option<u32>,
    pub backoff: Option<Value>,
    pub max_backoff: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPoll {
    pub interval: Option<Value>,
    pub max_interval: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimit {
    pub concurrency: Option<usize>,
    pub per_minute: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBudget {
    pub calls: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTriggers {
    #[serde(default)]
    pub schedule: Vec<RawSchedule>,
    #[serde(default)]
    pub watch: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    pub cron: String,
    pub timezone: Option<String>,
    pub overlap: Option<String>,
    pub catch_up: Option<String>,
    #[serde(default)]
    pub inputs: IndexMap<String, Value>,
}

/// `env:` lists the variables templates may read: names, or names with defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
pub enum RawEnv {
    #[default]
    None,
    Names(Vec<String>),
    Defaults(IndexMap<String, Option<String>>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub uses: Option<String>,
    pub with: Option<Value>,
    pub run: Option<String>,
    pub description: Option<String>,
    pub needs: Option<OneOrMany>,
    #[serde(rename = "if")]
    pub cond: Option<Value>,
    pub for_each: Option<Value>,
    pub retry: Option<RawRetry>,
    pub timeout: Option<Value>,
    pub poll: Option<RawPoll>,
    pub cache: Option<bool>,
    pub continue_on_error: Option<bool>,
}

/// `needs: a` or `needs: [a, b]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// Parses pipeline text; a syntax or shape error becomes a diagnostic at its position.
pub fn parse(source: &Arc<Source>) -> Result<RawPipeline, Diagnostic> {
    if source.text.trim().is_empty() {
        return Err(Diagnostic::new(format!("`{}` is empty", source.name()))
            .help("a pipeline needs at least `name:` and `steps:`; `cometflow init` writes a starter"));
    }
    serde_yaml::from_str(&source.text).map_err(|e| yaml_error(source, &e))
}

fn yaml_error(source: &Arc<Source>, err: &serde_yaml::Error) -> Diagnostic {
    let full = err.to_string();
    // serde_yaml appends "at line L column C"; we draw the position ourselves.
    let message = match full.rfind(" at line ") {
        Some(i) => full[..i].to_string(),
        None => full.clone(),
    };
    let (message, help) = explain(&message);
    let mut diag = Diagnostic::new(message);
    if let Some(help) = help {
        diag = diag.help(help);
    }
    if let Some(loc) = err.location() {
        let offset = source.offset_of(loc.line(), loc.column());
        let rest = &source.text[offset..];
        let len = rest.find([':', '\n']).unwrap_or(rest.len()).max(1);
        diag = diag.with_span(source, Span { offset, len });
    }
    diag
}

/// Rewrites serde's wording into ours, with a suggestion where one helps.
fn explain(message: &str) -> (String, Option<String>) {
    let (prefix, body) = match message.find(": ") {
        Some(i) if !message[..i].contains(' ') => (&message[..i + 2], &message[i + 2..]),
        _ => ("", message),
    };
    if let Some(rest) = body.strip_prefix("unknown field `") {
        if let Some(end) = rest.find('`') {
            let field = &rest[..end];
            let expected: Vec<&str> = rest[end..].split('`').skip(2).step_by(2).collect();
            return (format!("{prefix}unknown field `{field}`"), Some(did_you_mean(field, expected)));
        }
    }
    if body.starts_with("missing field `") {
        return (
            format!("{prefix}{body}"),
            Some("add the field; see `cometflow run --help` and the README".into()),
        );
    }
    if body.starts_with("did not find expected")
        || body.starts_with("mapping values are not allowed")
        || body.starts_with("found ")
        || body.starts_with("while ")
    {
        return (
            format!("YAML syntax error: {body}"),
            Some("check the indentation and quoting on this line or the one before it; a value holding `: ` or starting with `{` or `*` needs quotes".into()),
        );
    }
    (format!("{prefix}{body}"), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_name_the_nearest_valid_field() {
        let src = Source::new("p.yaml", "name: x\nsteps:\n  a:\n    uses: value\n    nedds: [b]\n");
        let d = parse(&src).unwrap_err();
        assert!(d.message.contains("unknown field `nedds`"), "{}", d.message);
        assert!(d.help.as_deref().unwrap().contains("did you mean `needs`?"));
        assert_eq!(d.location().unwrap(), "p.yaml:5:5");
    }

    #[test]
    fn syntax_errors_point_at_the_line() {
        let src = Source::new("p.yaml", "name: x\nsteps:\n  a:\n    uses: value\n   with: [\n");
        let d = parse(&src).unwrap_err();
        assert!(d.location().unwrap().starts_with("p.yaml:"), "{d:?}");
    }

    #[test]
    fn needs_accepts_one_name_or_a_list() {
        let src = Source::new(
            "p.yaml",
            "name: x\nsteps:\n  a: { run: 'true', needs: b }\n  b: { run: 'true', needs: [a] }\n",
        );
        let p = parse(&src).unwrap();
        let steps = p.steps.unwrap();
        assert_eq!(steps["a"].needs.as_ref().map(|_| ()), Some(()));
    }
}
