//! The daemon's per-pipeline bookkeeping: the loaded plan and triggers, each trigger's
//! next fire time, the runs in flight and a queued fire. Loading and input merging live
//! here so the loop in `daemon` reads as decisions.

use std::path::Path;
use std::sync::Arc;

use indexmap::IndexMap;
use jiff::Timestamp;
use serde_json::Value as Json;

use crate::plan::Plan;
use crate::schedule::Trigger;

/// One scheduled pipeline file.
pub(crate) struct Scheduled {
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
    // `validate` compiled them; the model keeps them checked.
    let triggers = plan.pipeline.triggers.schedule.clone();
    if triggers.is_empty() {
        Loaded::NoSchedule
    } else {
        Loaded::Schedule(Arc::new(plan), triggers)
    }
}

impl Scheduled {
    pub fn new(plan: Arc<Plan>, triggers: Vec<Trigger>, now: Timestamp) -> Scheduled {
        let next = triggers.iter().map(|t| t.next_after(now)).collect();
        Scheduled { plan, triggers, next, running: 0, queued: None }
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

    /// The inputs a run of `trigger` gets (checked by `validate`).
    pub fn inputs(&self, trigger: usize) -> IndexMap<String, Json> {
        self.triggers[trigger].inputs.clone()
    }
}
