//! `cometflow schema`: a valid draft-07 schema that accepts every shipped pipeline and
//! rejects what `validate` rejects for shape; the committed copy is the command's output.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::harness::Test;

pub const EDITOR_LINE: &str = "# yaml-language-server: $schema=https://raw.githubusercontent.com/cometflow/cometflow/main/schema/pipeline.schema.json";

fn schema_text() -> String {
    Test::new().args(&["schema"]).expect(0).stdout
}

pub fn validator() -> jsonschema::Validator {
    let schema: Json = serde_json::from_str(&schema_text()).unwrap();
    jsonschema::draft7::new(&schema).unwrap()
}

pub fn yaml(text: &str) -> Json {
    serde_yaml::from_str(text).unwrap()
}

pub fn errors(v: &jsonschema::Validator, doc: &Json) -> Vec<String> {
    v.iter_errors(doc).map(|e| format!("{}: {e}", e.instance_path())).collect()
}

/// Pipelines we ship: `examples/` and, once it exists, `workflows/`. (`templates/` are
/// checked through `init`, since most need the provider kinds.)
pub fn shipped_pipelines() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["examples", "workflows"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else { continue };
        files.extend(
            entries
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml")),
        );
    }
    files.sort();
    files
}

#[test]
fn the_schema_is_valid_draft_07() {
    let schema: Json = serde_json::from_str(&schema_text()).unwrap();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    jsonschema::meta::validate(&schema).unwrap();
}

#[test]
fn every_shipped_pipeline_validates_against_the_schema() {
    let v = validator();
    let files = shipped_pipelines();
    assert!(files.len() >= 10, "{files:?}");
    for file in files {
        let doc = yaml(&std::fs::read_to_string(&file).unwrap());
        let errs = errors(&v, &doc);
        assert!(errs.is_empty(), "{}:\n{}", file.display(), errs.join("\n"));
    }
}

#[test]
fn every_shipped_pipeline_names_the_schema_on_its_first_line() {
    for file in shipped_pipelines() {
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(text.lines().next(), Some(EDITOR_LINE), "{}", file.display());
    }
}

#[test]
fn the_committed_schema_is_the_commands_output() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/pipeline.schema.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == schema_text(),
        "schema/pipeline.schema.json is stale; regenerate it with\n  \
         cargo run -- schema > schema/pipeline.schema.json"
    );
}

#[test]
fn the_schema_rejects_what_the_parser_rejects() {
    let v = validator();
    let cases = [
        ("unknown step field", "name: x\nsteps:\n  a:\n    uses: value\n    nedds: [b]\n"),
        ("unknown top-level field", "name: x\nstep:\n  a: { run: echo }\n"),
        ("unknown `with` field", "name: x\nsteps:\n  a:\n    uses: media.concat\n    with: { clip: [a.mp4] }\n"),
        ("missing required field", "name: x\nsteps:\n  a:\n    uses: media.merge\n    with: { video: a.mp4 }\n"),
        ("value not allowed", "name: x\nsteps:\n  a:\n    uses: media.merge\n    with: { video: a.mp4, audio: b.mp3, fit: stretch }\n"),
        ("unknown kind", "name: x\nsteps:\n  a: { uses: shel }\n"),
        ("neither uses nor run", "name: x\nsteps:\n  a: { with: { x: 1 } }\n"),
        ("run with another kind", "name: x\nsteps:\n  a: { uses: value, run: echo }\n"),
        ("bad step id", "name: x\nsteps:\n  Make-Video: { run: echo }\n"),
        ("bad pipeline name", "name: My Pipeline\nsteps:\n  a: { run: echo }\n"),
        ("bad duration", "name: x\nsteps:\n  a: { run: echo, timeout: soon }\n"),
        ("no steps", "name: x\n"),
    ];
    for (what, text) in cases {
        assert!(!errors(&v, &yaml(text)).is_empty(), "{what} passed:\n{text}");
    }
}

#[test]
fn templates_stand_in_for_any_typed_value() {
    let v = validator();
    let doc = yaml(
        "name: x\ninputs:\n  fit: { default: shortest }\nsteps:\n  a:\n    uses: media.merge\n    timeout: 1h 30m\n    \
         with:\n      video: \"{{ inputs.fit }}\"\n      audio: b.mp3\n      fit: \"{{ inputs.fit }}\"\n",
    );
    assert_eq!(errors(&v, &doc), Vec::<String>::new());
}
