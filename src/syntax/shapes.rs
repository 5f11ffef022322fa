//! Schemas for the fields whose Rust type is looser than the language: durations, names,
//! conditions and templates are YAML values the validator interprets, so their shape for
//! editors is written here, beside the serde types that point at them with
//! `#[schemars(with = ...)]`; `schema` assembles them.

use std::borrow::Cow;

use indexmap::IndexMap;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};

use crate::syntax::RawStep;

/// A string holding a minijinja expression or statement: `{{ ... }}` or `{% ... %}`.
pub(crate) const TEMPLATE_PATTERN: &str = r"\{[{%]";

/// Step ids read as template attributes (`steps.<id>`), hence no `-`.
pub(crate) const STEP_ID_PATTERN: &str = "^[a-z0-9_]+$";

pub(crate) const PIPELINE_NAME_PATTERN: &str = "^[a-z0-9_-]+$";

/// What `model::parse_duration` accepts: numbers with units, or plain seconds.
pub(crate) const DURATION_PATTERN: &str =
    r"^\s*(([0-9]+(\.[0-9]+)?\s*(ms|s|secs?|m|mins?|h|hrs?|d)\s*)+|[0-9]+(\.[0-9]+)?)\s*$";

pub(crate) fn template() -> serde_json::Value {
    serde_json::json!({ "type": "string", "pattern": TEMPLATE_PATTERN, "description": "a template, e.g. `{{ inputs.count }}`" })
}

/// A stand-in type whose schema is written out, for `#[schemars(with = "Option<...>")]`
/// (so the field stays optional) on fields the parser reads as loose YAML values.
macro_rules! shape {
    ($name:ident, inline = $inline:expr, $schema:tt) => {
        pub(crate) struct $name;

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn inline_schema() -> bool {
                $inline
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

shape!(Duration, inline = false, {
    "description": "a duration such as `500ms`, `2s`, `15m` or `1h` (a bare number is seconds)",
    "anyOf": [
        { "type": "string", "pattern": DURATION_PATTERN },
        { "type": "number", "minimum": 0 }
    ]
});

shape!(PipelineName, inline = true, { "type": "string", "pattern": PIPELINE_NAME_PATTERN });

shape!(StepId, inline = true, { "type": "string", "pattern": STEP_ID_PATTERN });

shape!(PositiveInteger, inline = true, { "type": "integer", "minimum": 1 });

shape!(InputType, inline = true, { "type": "string", "enum": crate::model::InputType::NAMES });

shape!(Condition, inline = true, {
    "description": "a template expression, e.g. `{{ inputs.publish }}`; false skips the step",
    "type": ["boolean", "string"]
});

shape!(ForEach, inline = true, {
    "description": "a list, or a template yielding one, e.g. `{{ range(inputs.clips) }}`",
    "anyOf": [{ "type": "array" }, template()]
});

/// The `steps:` map: step ids to steps, at least one.
pub(crate) struct Steps;

impl JsonSchema for Steps {
    fn schema_name() -> Cow<'static, str> {
        "Steps".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = generator.subschema_for::<IndexMap<String, RawStep>>();
        schema.insert("propertyNames".into(), serde_json::json!({ "pattern": STEP_ID_PATTERN }));
        schema.insert("minProperties".into(), 1.into());
        schema
    }
}
