//! `on:` triggers: each `on.schedule` entry's `cron`, `timezone`, `overlap`, `catch_up`
//! and `inputs`, and each `on.watch` glob, checked where they are written and kept
//! compiled in the model.

use indexmap::IndexMap;
use serde_json::Value as Json;

use super::Checker;
use crate::diag::did_you_mean;
use crate::model::{InputSpec, Triggers};
use crate::path;
use crate::syntax::RawTriggers;
use crate::trigger::{Spec, Trigger};

pub(super) fn check(
    c: &mut Checker,
    on: Option<RawTriggers>,
    inputs: &IndexMap<String, InputSpec>,
) -> Triggers {
    let Some(on) = on else { return Triggers::default() };
    let mut triggers = Triggers::default();
    for (i, raw) in on.schedule.iter().enumerate() {
        let set: IndexMap<String, Json> =
            raw.inputs.iter().map(|(k, v)| (k.clone(), super::yaml_to_json(v))).collect();
        let values = fire_inputs(c, i, &set, inputs);
        let spec = Spec {
            cron: &raw.cron,
            timezone: raw.timezone.as_deref(),
            overlap: raw.overlap.as_deref(),
            catch_up: raw.catch_up.as_deref(),
        };
        match Trigger::check(&spec, values) {
            Ok(t) => triggers.schedule.push(t),
            Err(problems) => {
                for p in problems {
                    c.error(&path!["on", "schedule", i, p.field], p.message, p.help);
                }
            }
        }
    }
    for (i, pattern) in on.watch.iter().enumerate() {
        // `*` stops at `/`, as in a shell: `prompts/*.txt` does not reach `prompts/a/b.txt`.
        match globset::GlobBuilder::new(pattern).literal_separator(true).build() {
            Ok(glob) => triggers.watch.push(glob),
            Err(e) => c.error(
                &path!["on", "watch", i],
                format!("`{pattern}` is not a valid glob: {}", e.kind()),
                "write paths relative to the pipeline's folder, e.g. `prompts/*.txt` or `data/**/*.json`",
            ),
        }
    }
    triggers
}

/// The inputs a run started by schedule entry `i` gets: the pipeline's defaults with the
/// entry's own over them, each of its declared type; every required one set.
fn fire_inputs(
    c: &mut Checker,
    i: usize,
    set: &IndexMap<String, Json>,
    inputs: &IndexMap<String, InputSpec>,
) -> IndexMap<String, Json> {
    for (name, value) in set {
        match inputs.get(name) {
            Some(input) if !input.ty.accepts(value) => c.error(
                &path!["on", "schedule", i, "inputs", name.as_str()],
                format!("input `{name}` is of type `{}`", input.ty.name()),
                "give the schedule a value of the input's `type:`",
            ),
            Some(_) => {}
            None => c.error_at_key(
                &path!["on", "schedule", i, "inputs", name.as_str()],
                format!("the pipeline has no input `{name}`"),
                format!(
                    "{}; a schedule sets only inputs the pipeline declares",
                    did_you_mean(name, inputs.keys().map(String::as_str))
                ),
            ),
        }
    }
    let mut values = IndexMap::new();
    for (name, spec) in inputs {
        let v = match (set.get(name), &spec.default) {
            (Some(v), _) | (None, Some(v)) => v.clone(),
            (None, None) if spec.required => {
                c.error(
                    &path!["on", "schedule", i],
                    format!(
                        "input `{name}` is required and has no default, and this schedule does not set it"
                    ),
                    format!("set it under the entry's `inputs:`, e.g. `inputs: {{ {name}: ... }}`"),
                );
                Json::Null
            }
            (None, None) => Json::Null,
        };
        values.insert(name.clone(), v);
    }
    values
}
