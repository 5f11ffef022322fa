//! `cometflow schema`: prints the pipeline language's JSON Schema on stdout.

use crate::error::Outcome;

pub const AFTER_HELP: &str = "\
Editors: VS Code's YAML extension (and any yaml-language-server client) reads a first line
  # yaml-language-server: $schema=<url or path of this schema>
Regenerate the committed copy with:
  cometflow schema > schema/pipeline.schema.json";

pub fn schema() -> Outcome {
    print!("{}", crate::schema::pipeline_schema_text(&super::registry()));
    Ok(())
}
