//! The daemon's per-pipeline bookkeeping: the loaded plan and triggers, each trigger's
//! next fire time, the runs in flight and a queued fire. Loading and input merging live
//! here so the loop in `daemon` reads as decisions.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use jiff::Timestamp;
use serde_json::Value as Json;

use crate::plan::Plan;
use crate::schedule::Trigger;

/// One scheduled pipeline file.
pub(crate) struct Scheduled {
    pub file: PathBuf,
    pub plan: Arc<Plan>,
    pub triggers: Vec<Trigger>,
    pub next: Vec<Option<Timestamp>>,
    pub running: usize,
    /// A fire waiting for the runs in flight to end (`overlap: queue`): trigger index, time.
    pub queued: Option<(usize, Timestamp)>,
}

/// What loading a file gave.
pub(crate) enum Loaded {
    Schedule(Arc<Plan>, Vec<Trigger>),
    NoSchedule,
    Invalid(Vec<crate::diag::Diagnostic>),
}

pub(crate) fn load(file: &Path, registry: &crate::steps::Registry) -> Loaded {
    let plan = match crate::load_plan(file, registry) {
        Ok(p) => p,
        Err(d) => return Loaded::Invalid(d),
    };
    let mut triggers = Vec::new();
    for spec in &plan.pipeline.triggers.schedule {
        match Trigger::check(spec) {
            Ok(t) => triggers.push(t),
            // `validate` already ran `Trigger::check`; this only guards a future change there.
            Err(p) => {
                let d = p.into_iter().map(|p| crate::diag::Diagnostic::new(p.message).help(p.help)).collect();
                return Loaded::Invalid(d);
            }
        }
    }
    if triggers.is_empty() {
        Loaded::NoSchedule
    } else {
        Loaded::Schedule(Arc::new(plan), triggers)
    }
}

impl Scheduled {
    pub fn new(file: PathBuf, plan: Arc<Plan>, triggers: Vec<Trigger>, now: Timestamp) -> Scheduled {
        let next = triggers.iter().map(|t| t.next_after(now)).collect();
        Scheduled { file, plan, triggers, next, running: 0, queued: None }
    }

    pub fn name(&self) -> &str {
        &self.plan.pipeline.name
    }

    pub fn earliest(&self) -> Option<Timestamp> {
        self.next.iter().flatten().min().copied()
    }

    /// The trigger due at the earliest instant `<= now`, advancing every trigger due then.
    /// Triggers that fire at the same instant start one run (the first entry's).
    pub fn take_due(&mut self, now: Timestamp) -> Option<(usize, Timestamp)> {
        let at = self.earliest().filter(|t| *t <= now)?;
        let mut first = None;
        for (i, next) in self.next.iter_mut().enumerate() {
            if *next == Some(at) {
                first.get_or_insert(i);
                // From `now`, not `at`: after a long stall, fires in between are dropped.
                *next = self.triggers[i].next_after(at.max(now));
            }
        }
        first.map(|i| (i, at))
    }

    /// The pipeline's defaults with the trigger's `inputs` over them.
    pub fn inputs(&self, trigger: usize) -> Result<IndexMap<String, Json>, String> {
        let set = &self.triggers[trigger].inputs;
        let mut values = IndexMap::new();
        for (name, spec) in &self.plan.pipeline.inputs {
            let v = match (set.get(name), &spec.default) {
                (Some(v), _) if !spec.ty.accepts(v) => {
                    return Err(format!(
                        "schedule input `{name}` is not of type `{}`; fix `on.schedule` in `{}`",
                        spec.ty.name(),
                        self.file.display()
                    ))
                }
                (Some(v), _) | (None, Some(v)) => v.clone(),
                (None, None) if spec.required => {
                    return Err(format!(
                        "input `{name}` is required and has no default; set it under the entry's `inputs:` in `{}`",
                        self.file.display()
                    ))
                }
                (None, None) => Json::Null,
            };
            values.insert(name.clone(), v);
        }
        Ok(values)
    }
}
