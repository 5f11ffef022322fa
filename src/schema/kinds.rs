//! Per-kind `with` schemas, from the registry's `KindSpec`s, tied to `uses` with `if`/`then`
//! so an editor completes and checks `with:` fields for the kind the step names.

use serde_json::{json, Map, Value as Json};

use crate::contract::{FieldSpec, FieldType, KindSpec};
use crate::steps::Registry;
use crate::syntax::shapes;

/// The kind whose main field a step may write directly (`run:` for `shell`).
const SHORTHAND: (&str, &str) = ("shell", "run");

/// Adds `uses` choices, one `if`/`then` per kind, the `run:` shorthand and "uses or run"
/// to the step's schema.
pub(super) fn attach(step: &mut Json, registry: &Registry) {
    let Json::Object(step) = step else { return };
    let choices: Vec<Json> =
        registry.iter().map(|k| json!({ "const": k.spec().name, "description": k.spec().summary })).collect();
    if let Some(Json::Object(uses)) = step.get_mut("properties").and_then(|p| p.get_mut("uses")) {
        uses.insert("anyOf".into(), Json::Array(choices));
    }
    let mut branches: Vec<Json> = registry.iter().map(|k| branch(k.spec())).collect();
    branches.push(json!({
        "if": { "required": ["run"] },
        "then": { "properties": { "uses": { "const": SHORTHAND.0 } } }
    }));
    step.insert("allOf".into(), Json::Array(branches));
    step.insert("anyOf".into(), json!([{ "required": ["uses"] }, { "required": ["run"] }]));
}

/// `if uses == kind then with: <the kind's fields>`.
fn branch(spec: &KindSpec) -> Json {
    let shorthand = (spec.name == SHORTHAND.0).then_some(SHORTHAND.1);
    let required: Vec<&str> = spec
        .fields
        .iter()
        .filter(|f| f.required && Some(f.name.as_str()) != shorthand)
        .map(|f| f.name.as_str())
        .collect();
    let properties: Map<String, Json> = spec.fields.iter().map(|f| (f.name.clone(), field(f))).collect();
    let mut map = json!({
        "type": "object",
        "properties": properties,
        "additionalProperties": spec.open,
    });
    if !required.is_empty() {
        map["required"] = json!(required);
    }
    let with = json!({ "description": describe(spec), "anyOf": [map, shapes::template()] });
    let mut then = json!({ "properties": { "with": with } });
    if !required.is_empty() {
        then["required"] = json!(["with"]);
    }
    json!({
        "if": { "properties": { "uses": { "const": spec.name } }, "required": ["uses"] },
        "then": then
    })
}

fn describe(spec: &KindSpec) -> String {
    let outputs: Vec<&str> = spec.outputs.iter().map(|(n, _)| n.as_str()).collect();
    if outputs.is_empty() {
        format!("`{}`: {}", spec.name, spec.summary)
    } else {
        format!("`{}`: {}\n\noutputs: {}", spec.name, spec.summary, outputs.join(", "))
    }
}

/// A field's types and allowed values; any field may instead hold a template, which is
/// checked when it renders.
fn field(f: &FieldSpec) -> Json {
    let types: Vec<&str> = f.types.iter().map(|t| json_type(*t)).collect();
    let mut exact = Map::new();
    match types.as_slice() {
        [] => {}
        [one] => {
            exact.insert("type".into(), json!(one));
        }
        many => {
            exact.insert("type".into(), json!(many));
        }
    }
    if !f.values.is_empty() {
        exact.insert("enum".into(), json!(f.values));
    }
    let takes_any_string = types.is_empty() || (types.contains(&"string") && f.values.is_empty());
    let mut schema = if takes_any_string {
        exact
    } else {
        let mut m = Map::new();
        m.insert("anyOf".into(), json!([Json::Object(exact), shapes::template()]));
        m
    };
    schema.insert("description".into(), f.description.clone().into());
    Json::Object(schema)
}

fn json_type(t: FieldType) -> &'static str {
    match t {
        FieldType::String => "string",
        FieldType::Integer => "integer",
        FieldType::Number => "number",
        FieldType::Boolean => "boolean",
        FieldType::List => "array",
        FieldType::Object => "object",
    }
}
