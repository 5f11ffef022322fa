//! `on:` triggers: each `on.schedule` entry's `cron`, `timezone`, `overlap`, `catch_up`
//! and `inputs`, and each `on.watch` glob, checked where they are written.

use indexmap::IndexMap;

use super::Checker;
use crate::diag::did_you_mean;
use crate::model::{InputSpec, Triggers};
use crate::path;
use crate::schedule::Trigger;

pub(super) fn check(c: &mut Checker, triggers: &Triggers, inputs: &IndexMap<String, InputSpec>) {
    for (i, spec) in triggers.schedule.iter().enumerate() {
        if let Err(problems) = Trigger::check(spec) {
            for p in problems {
                c.error(&path!["on", "schedule", i, p.field], p.message, p.help);
            }
        }
        for (name, value) in &spec.inputs {
            if let Some(input) = inputs.get(name).filter(|i| !i.ty.accepts(value)) {
                c.error(
                    &path!["on", "schedule", i, "inputs", name.as_str()],
                    format!("input `{name}` is of type `{}`", input.ty.name()),
                    "give the schedule a value of the input's `type:`",
                );
            }
            if !inputs.contains_key(name) {
                c.error_at_key(
                    &path!["on", "schedule", i, "inputs", name.as_str()],
                    format!("the pipeline has no input `{name}`"),
                    format!(
                        "{}; a schedule sets only inputs the pipeline declares",
                        did_you_mean(name, inputs.keys().map(String::as_str))
                    ),
                );
            }
        }
    }
    for (i, pattern) in triggers.watch.iter().enumerate() {
        if let Err(e) = globset::Glob::new(pattern) {
            c.error(
                &path!["on", "watch", i],
                format!("`{pattern}` is not a valid glob: {}", e.kind()),
                "write paths relative to the pipeline's folder, e.g. `prompts/*.txt` or `data/**/*.json`",
            );
        }
    }
}
