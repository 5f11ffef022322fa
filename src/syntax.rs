//! The pipeline file as written: serde structures that reject unknown fields.
//!
//! Nothing here interprets values (durations, templates, kinds); `validate` does, with
//! positions from `source`. Only YAML syntax and the shape of the document are checked.
//! The same types derive `JsonSchema`, so `cometflow schema` cannot drift from the parser:
//! doc comments here are the descriptions editors show.

pub(crate) mod shapes;

use std::sync::Arc;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_yaml::Value;

use crate::diag::{did_you_mean, Diagnostic};
use crate::source::{Source, Span};

/// A cometflow pipeline: named steps that call models (or run locally), run as a DAG.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "cometflow pipeline")]
pub struct RawPipeline {
    /// The pipeline's name: a-z, 0-9, `_` and `-`.
    #[schemars(with = "Option<shapes::PipelineName>")]
    pub name: Option<String>,
    /// What the pipeline makes, in a sentence.
    pub description: Option<String>,
    /// Run-time parameters, read as `{{ inputs.NAME }}`; `-i NAME=VALUE` overrides them.
    #[serde(default, deserialize_with = "unique")]
    pub inputs: IndexMap<String, RawInput>,
    /// Applied to every step unless the step overrides them.
    #[serde(default)]
    pub defaults: RawDefaults,
    /// Steps in flight at once (default 8; `--concurrency` overrides).
    #[schemars(with = "Option<shapes::PositiveInteger>")]
    pub concurrency: Option<Value>,
    /// Limits per provider family, as `cometflow kinds` names it (`kling`, `suno`, `openai`, `local`).
    #[serde(default, deserialize_with = "unique")]
    pub limits: IndexMap<String, RawLimit>,
    /// Caps on what one run may spend.
    pub budget: Option<RawBudget>,
    /// Triggers used by `cometflow watch` and `cometflow schedule`.
    pub on: Option<RawTriggers>,
    /// Environment variables templates may read as `{{ env.NAME }}`: a list of names, or names with defaults.
    #[serde(default)]
    pub env: RawEnv,
    /// The steps: a map of step id (a-z, 0-9, `_`) to step. Order does not matter: dependencies do.
    // Each step is boxed: a map of 100,000 of them grows by doubling, and moving whole
    // steps (with their unused fields) made that most of the memory a parse takes.
    #[serde(default, deserialize_with = "unique_opt")]
    #[schemars(with = "Option<shapes::Steps>")]
    pub steps: Option<IndexMap<String, Box<RawStep>>>,
    /// The run's results: names to templates such as `{{ steps.video.outputs.path }}`.
    #[serde(default, deserialize_with = "unique")]
    #[schemars(with = "IndexMap<String, serde_json::Value>")]
    pub outputs: IndexMap<String, Value>,
}

/// One run-time parameter.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawInput {
    /// The value when `-i` does not give one; its type is the input's type unless `type:` says otherwise.
    #[schemars(with = "Option<serde_json::Value>")]
    pub default: Option<Value>,
    /// What the input is for.
    pub description: Option<String>,
    /// The input's type; `-i` values are converted to it.
    #[serde(rename = "type")]
    #[schemars(with = "Option<shapes::InputType>")]
    pub ty: Option<String>,
    /// The run refuses to start without it.
    pub required: Option<bool>,
}

/// Settings every step gets unless it says otherwise.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    /// How failed attempts are retried.
    pub retry: Option<RawRetry>,
    /// Bounds each attempt, e.g. `15m`.
    #[schemars(with = "Option<shapes::Duration>")]
    pub timeout: Option<Value>,
    /// How task kinds poll for their result.
    pub poll: Option<RawPoll>,
    /// Reuse an earlier result when the kind, inputs and input files are unchanged (default for provider steps).
    pub cache: Option<bool>,
}

/// Retries with exponential backoff and jitter.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    /// Attempts in all, the first included.
    #[schemars(range(min = 1))]
    pub attempts: Option<u32>,
    /// The first wait between attempts, e.g. `2s`.
    #[schemars(with = "Option<shapes::Duration>")]
    pub backoff: Option<Value>,
    /// The longest wait between attempts, e.g. `60s`.
    #[schemars(with = "Option<shapes::Duration>")]
    pub max_backoff: Option<Value>,
}

/// Polling of submit-then-poll task kinds: the wait grows from `interval` to `max_interval`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPoll {
    /// The first wait between polls, e.g. `1s`.
    #[schemars(with = "Option<shapes::Duration>")]
    pub interval: Option<Value>,
    /// The largest wait between polls, e.g. `10s`.
    #[schemars(with = "Option<shapes::Duration>")]
    pub max_interval: Option<Value>,
}

/// Limits for one provider family.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLimit {
    /// Tasks of this family in flight at once.
    #[schemars(range(min = 1))]
    pub concurrency: Option<usize>,
    /// Calls of this family started per minute.
    pub per_minute: Option<u32>,
}

/// What one run may spend.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBudget {
    /// Paid provider calls one run may make; a call past it is refused and its step fails.
    pub calls: Option<u64>,
}

/// When the pipeline runs by itself.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTriggers {
    /// Times `cometflow schedule` starts the pipeline.
    #[serde(default)]
    pub schedule: Vec<RawSchedule>,
    /// Paths or globs whose changes make `cometflow watch` run the pipeline again.
    #[serde(default)]
    pub watch: Vec<String>,
}

/// One schedule entry.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    /// A cron expression: minute hour day-of-month month day-of-week, e.g. `0 9 * * MON-FRI`.
    pub cron: String,
    /// An IANA time zone such as `Europe/Berlin` (default UTC).
    pub timezone: Option<String>,
    /// What to do when the previous run is still going.
    pub overlap: Option<String>,
    /// What to do about times missed while the scheduler was not running.
    pub catch_up: Option<String>,
    /// Inputs for runs started by this entry.
    #[serde(default, deserialize_with = "unique")]
    #[schemars(with = "IndexMap<String, serde_json::Value>")]
    pub inputs: IndexMap<String, Value>,
}

/// `env:` lists the variables templates may read: names, or names with defaults.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawEnv {
    #[default]
    None,
    /// Variable names.
    Names(Vec<String>),
    /// Variable names with a default used when the variable is unset.
    Defaults(#[serde(deserialize_with = "unique")] IndexMap<String, Option<String>>),
}

/// One step: a kind (`uses:`) with its inputs (`with:`), or a shell command (`run:`).
// Fields most steps leave out are boxed: a step is parsed whole, 100,000 at a time, and
// each unboxed one reserved about 750 bytes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    /// The step kind; `cometflow kinds` lists them.
    pub uses: Option<String>,
    /// The kind's inputs; every string in it is a minijinja template.
    #[schemars(with = "Option<serde_json::Value>")]
    pub with: Option<Value>,
    /// A shell command: the same as `uses: shell` with `with: { run: ... }`.
    pub run: Option<String>,
    /// What the step does.
    pub description: Option<String>,
    /// Extra dependencies: a step id or a list of them (references in templates are dependencies already).
    pub needs: Option<OneOrMany>,
    /// A template expression; when false the step is skipped (and the steps that need it).
    #[serde(rename = "if")]
    #[schemars(with = "Option<shapes::Condition>")]
    pub cond: Option<Box<Value>>,
    /// A list, or a template yielding one: the step runs once per item with `item` and `index` in scope.
    #[schemars(with = "Option<shapes::ForEach>")]
    pub for_each: Option<Box<Value>>,
    /// How failed attempts are retried (overrides `defaults.retry`).
    pub retry: Option<Box<RawRetry>>,
    /// Bounds each attempt, e.g. `15m` (overrides `defaults.timeout`).
    #[schemars(with = "Option<shapes::Duration>")]
    pub timeout: Option<Box<Value>>,
    /// How a task kind polls for its result.
    pub poll: Option<Box<RawPoll>>,
    /// Reuse an earlier result when the kind, inputs and input files are unchanged; `false` always runs.
    pub cache: Option<bool>,
    /// The run goes on when this step fails; steps that need it still run and can test its `status`.
    pub continue_on_error: Option<bool>,
}

/// `needs: a` or `needs: [a, b]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One step id.
    One(#[schemars(with = "shapes::StepId")] String),
    /// Step ids.
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
    let blank = source.text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
    if blank {
        let what = if source.text.trim().is_empty() { "is empty" } else { "holds only comments" };
        return Err(Diagnostic::new(format!("`{}` {what}", source.name()))
            .help("a pipeline needs at least `name:` and `steps:`; `cometflow init` writes a starter"));
    }
    if let Some((offset, c)) = source.text.char_indices().find(|&(_, c)| forbidden(c)) {
        let (line, col) = source.line_col(offset);
        return Err(Diagnostic::new(format!(
            "a control character (U+{:04X}) at line {line}, column {col}: YAML text cannot hold it",
            c as u32
        ))
        .with_span(source, Span { offset, len: c.len_utf8() })
        .help("remove it, or write it as an escape inside a double-quoted string, e.g. \"\\0\""));
    }
    serde_yaml::from_str(&source.text).map_err(|e| yaml_error(source, &e))
}

/// Characters YAML does not allow in a file: C0 and C1 controls except tab, newlines and NEL.
fn forbidden(c: char) -> bool {
    (c < ' ' && !matches!(c, '\t' | '\n' | '\r'))
        || c == '\u{7f}'
        || ('\u{80}'..='\u{9f}').contains(&c) && c != '\u{85}'
}

/// Parses pipeline text, refusing keys written twice. The parse itself refuses them (the
/// maps here, struct fields and YAML values all do), so a valid file is parsed once; only
/// when it fails are duplicates looked for, and then they are what is reported, each
/// naming both places.
pub fn parse_unique(source: &Arc<Source>) -> Result<RawPipeline, Vec<Diagnostic>> {
    parse(source).map_err(|d| {
        let duplicates = duplicate_keys(source);
        if duplicates.is_empty() {
            vec![d]
        } else {
            duplicates
        }
    })
}

/// A map of names that fails on a name written twice (YAML would keep the last silently);
/// `parse_unique` then reports where.
fn unique<'de, D, V>(d: D) -> Result<IndexMap<String, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Unique<V>(std::marker::PhantomData<V>);

    impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Unique<V> {
        type Value = IndexMap<String, V>;

        // The words `IndexMap` itself uses, so shape errors read as before.
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a map")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = IndexMap::with_capacity(map.size_hint().unwrap_or(0).min(4096));
            while let Some(key) = map.next_key::<String>()? {
                match out.entry(key) {
                    indexmap::map::Entry::Occupied(e) => {
                        return Err(serde::de::Error::custom(format_args!("duplicate key `{}`", e.key())))
                    }
                    indexmap::map::Entry::Vacant(e) => {
                        e.insert(map.next_value()?);
                    }
                }
            }
            Ok(out)
        }
    }

    d.deserialize_map(Unique(std::marker::PhantomData))
}

fn unique_opt<'de, D, V>(d: D) -> Result<Option<IndexMap<String, V>>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Map<V>(IndexMap<String, V>);

    impl<'de, V: Deserialize<'de>> Deserialize<'de> for Map<V> {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            unique(d).map(Map)
        }
    }

    Ok(Option::<Map<V>>::deserialize(d)?.map(|m| m.0))
}

/// Keys written twice in one mapping (two steps with one id, an input declared twice): YAML
/// keeps the last silently, so each is an error naming both places. A quick pass finds
/// whether there are any; only then is the position index built.
pub fn duplicate_keys(source: &Arc<Source>) -> Vec<Diagnostic> {
    if serde_yaml::from_str::<NoDuplicates>(&source.text).is_ok() {
        return Vec::new();
    }
    source
        .duplicate_keys()
        .iter()
        .map(|(path, first, second)| {
            let key = match path.last() {
                Some(crate::source::Seg::Key(k)) => k.clone(),
                _ => String::new(),
            };
            let (line, col) = source.line_col(first.offset);
            let under = crate::template::display_path(&path[..path.len() - 1]);
            let under = if under.is_empty() { "the top level".to_owned() } else { format!("`{under}`") };
            Diagnostic::new(format!(
                "`{key}` is written twice under {under}: first at line {line}, column {col}"
            ))
            .with_span(source, *second)
            .label("again here")
            .help("keep one of them (YAML would silently use the last), or rename one")
        })
        .collect()
}

fn yaml_error(source: &Arc<Source>, err: &serde_yaml::Error) -> Diagnostic {
    let full = err.to_string();
    // serde_yaml appends "at line L column C"; we draw the position ourselves.
    let message = match full.rfind(" at line ") {
        Some(i) => full[..i].to_string(),
        None => full.clone(),
    };
    let (message, help) = explain(&message, &source.name());
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
fn explain(message: &str, file: &str) -> (String, Option<String>) {
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
    if let Some(rest) = body.strip_prefix("invalid type: ") {
        return wrong_shape(prefix.trim_end_matches([':', ' ']), rest, file);
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

/// `invalid type: sequence, expected a map` in words: what is there, what belongs there.
fn wrong_shape(path: &str, rest: &str, file: &str) -> (String, Option<String>) {
    let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, "something else"));
    let found = match found {
        "sequence" => "a list".to_string(),
        "map" => "a map".to_string(),
        "unit value" => "empty".to_string(),
        other => match other.split_once(' ') {
            Some(("string", text)) => format!("the text {}", text.replace('"', "`")),
            Some((kind, value)) => format!("the {kind} {value}"),
            None => other.to_string(),
        },
    };
    if path.is_empty() && expected.starts_with("struct RawPipeline") {
        let how = if found == "a list" { "without a leading `-`" } else { "as `field: value` lines" };
        return (
            format!("`{file}` is {found}, but a pipeline is a map of fields such as `name:` and `steps:`"),
            Some(format!("write the fields at the top level, {how}; `cometflow init` writes a starter")),
        );
    }
    let expected = match expected {
        e if e.starts_with("struct ") || e == "a map" => "a map of `key: value` lines",
        "a sequence" => "a list",
        "a boolean" => "`true` or `false`",
        e if e.starts_with('u') || e.starts_with('i') => "a whole number",
        e => e,
    };
    let help = if path == "steps" {
        "write each step as `id:` on its own indented line, without `-`, e.g. `  hello: { run: echo hi }`"
            .to_string()
    } else {
        "`cometflow schema` describes every field; an editor with the YAML extension shows it as you type"
            .into()
    };
    (format!("`{path}` must be {expected}, not {found}"), Some(help))
}

/// Walks a YAML document and fails on a key written twice in one mapping; builds nothing.
struct NoDuplicates;

impl<'de> Deserialize<'de> for NoDuplicates {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicatesVisitor)
    }
}

struct NoDuplicatesVisitor;

impl<'de> serde::de::Visitor<'de> for NoDuplicatesVisitor {
    type Value = NoDuplicates;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_i64<E>(self, _: i64) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_i128<E>(self, _: i128) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_u64<E>(self, _: u64) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_u128<E>(self, _: u128) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_f64<E>(self, _: f64) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_str<E>(self, _: &str) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_unit<E>(self) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_none<E>(self) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<NoDuplicates, D::Error> {
        NoDuplicates::deserialize(d)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<NoDuplicates, A::Error> {
        while seq.next_element::<NoDuplicates>()?.is_some() {}
        Ok(NoDuplicates)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<NoDuplicates, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<Value>()? {
            if !seen.insert(key) {
                return Err(serde::de::Error::custom("duplicate key"));
            }
            map.next_value::<NoDuplicates>()?;
        }
        Ok(NoDuplicates)
    }
    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<NoDuplicates, A::Error> {
        use serde::de::VariantAccess;
        let (_, variant) = data.variant::<serde::de::IgnoredAny>()?;
        variant.newtype_variant::<NoDuplicates>()
    }
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
