//! `cometflow schema`: the JSON Schema (draft-07) of the pipeline language, for editors.
//!
//! The document's shape comes from the parser's own types (`syntax`, deriving
//! `JsonSchema`); each kind's `with` fields come from the registry's `KindSpec`s. Neither is
//! written twice, so the schema cannot drift from what `validate` accepts. Draft-07 because
//! it is what VS Code's YAML extension understands best.

mod kinds;

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::Value as Json;

use crate::steps::Registry;
use crate::syntax::{RawPipeline, RawStep};

/// Where the committed schema is published; examples and templates point editors at it.
pub const SCHEMA_URL: &str =
    "https://raw.githubusercontent.com/cometflow/cometflow/main/schema/pipeline.schema.json";

/// The first line of every example and template: tells the YAML language server the schema.
pub fn editor_line() -> String {
    format!("# yaml-language-server: $schema={SCHEMA_URL}")
}

/// The schema as a JSON value.
pub fn pipeline_schema(registry: &Registry) -> Json {
    let generator = SchemaSettings::draft07().into_generator();
    let mut root = generator.into_root_schema_for::<RawPipeline>().to_value();
    if let Json::Object(obj) = &mut root {
        obj.insert("$id".into(), SCHEMA_URL.into());
        obj.insert("required".into(), serde_json::json!(["name", "steps"]));
    }
    let step_name = RawStep::schema_name();
    if let Some(step) = root.pointer_mut(&format!("/definitions/{step_name}")) {
        kinds::attach(step, registry);
    }
    root
}

/// The schema as `cometflow schema` prints it (and `schema/pipeline.schema.json` holds it).
pub fn pipeline_schema_text(registry: &Registry) -> String {
    // Serialising a `Value` cannot fail: its keys are strings.
    let mut text = serde_json::to_string_pretty(&pipeline_schema(registry)).expect("a Value serialises");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_gets_a_branch_tied_to_its_uses() {
        let schema = pipeline_schema(&crate::steps::Registry::from_env());
        let step = &schema["definitions"][RawStep::schema_name().as_ref()];
        let branches = step["allOf"].as_array().unwrap();
        for kind in crate::steps::Registry::from_env().names() {
            assert!(
                branches.iter().any(|b| b["if"]["properties"]["uses"]["const"] == kind),
                "no `with` schema for `{kind}`"
            );
        }
    }
}
