//! Time-based triggers: an `on.schedule` entry checked into a `Trigger` (cron, zone,
//! overlap and catch-up policies), the merged fire times of a pipeline, and the daemon.
//!
//! The cron evaluator and the daemon's decisions are pure functions of instants, so they
//! are tested without waiting; only `daemon` reads the clock and sleeps.

pub(crate) mod clock;
pub mod cron;
pub mod daemon;
pub mod policy;
pub mod record;

use indexmap::IndexMap;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde_json::Value as Json;

use crate::diag::did_you_mean;
use crate::model::ScheduleSpec;
use cron::Cron;

/// What to do when a fire time comes while the previous run is still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    Skip,
    Queue,
    Allow,
}

/// What to do on start for fire times missed while the daemon was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUp {
    None,
    Latest,
}

/// One checked `on.schedule` entry.
#[derive(Debug, Clone)]
pub struct Trigger {
    pub cron: Cron,
    pub expr: String,
    pub tz: TimeZone,
    pub tz_name: String,
    pub overlap: Overlap,
    pub catch_up: CatchUp,
    pub inputs: IndexMap<String, Json>,
}

/// A problem in one field of a schedule entry (`cron`, `timezone`, ...).
#[derive(Debug, Clone)]
pub struct Problem {
    pub field: &'static str,
    pub message: String,
    pub help: String,
}

impl Trigger {
    /// Checks every field, reporting all problems.
    pub fn check(spec: &ScheduleSpec) -> Result<Trigger, Vec<Problem>> {
        let mut problems = Vec::new();
        let cron = match spec.cron.parse::<Cron>() {
            Ok(c) => Some(c),
            Err(e) => {
                problems.push(Problem { field: "cron", message: e.message, help: e.help });
                None
            }
        };
        let tz_name = spec.timezone.clone().unwrap_or_else(|| "UTC".into());
        let tz = match TimeZone::get(&tz_name) {
            Ok(tz) => Some(tz),
            Err(_) => {
                let names: Vec<String> = jiff::tz::db().available().map(|n| n.as_str().to_owned()).collect();
                let hint =
                    did_you_mean(&tz_name, names.iter().map(String::as_str).filter(|n| n.contains('/')));
                let help = if hint.starts_with("did you mean") {
                    format!("{hint} time zones are IANA names such as `Europe/Berlin` or `UTC`")
                } else {
                    "use an IANA name such as `Europe/Berlin`, `America/New_York` or `UTC`".into()
                };
                problems.push(Problem {
                    field: "timezone",
                    message: format!("unknown time zone `{tz_name}`"),
                    help,
                });
                None
            }
        };
        let overlap = match spec.overlap.as_deref() {
            None | Some("skip") => Overlap::Skip,
            Some("queue") => Overlap::Queue,
            Some("allow") => Overlap::Allow,
            Some(other) => {
                problems.push(Problem {
                    field: "overlap",
                    message: format!("unknown overlap policy `{other}`"),
                    help: format!(
                        "{}; `skip` (default) drops a fire while the last run is going, `queue` starts it after, `allow` runs both",
                        did_you_mean(other, ["skip", "queue", "allow"])
                    ),
                });
                Overlap::Skip
            }
        };
        let catch_up = match spec.catch_up.as_deref() {
            None | Some("none") => CatchUp::None,
            Some("latest") => CatchUp::Latest,
            Some(other) => {
                problems.push(Problem {
                    field: "catch_up",
                    message: format!("unknown catch-up policy `{other}`"),
                    help: format!(
                        "{}; `none` (default) forgets times missed while the daemon was down, `latest` runs once for the latest",
                        did_you_mean(other, ["none", "latest"])
                    ),
                });
                CatchUp::None
            }
        };
        match (cron, tz) {
            (Some(cron), Some(tz)) if problems.is_empty() => {
                if cron.next_after(&tz, Timestamp::now()).is_none() {
                    return Err(vec![Problem {
                        field: "cron",
                        message: format!("`{}` never fires: no calendar date matches it", spec.cron),
                        help: "check the day-of-month and month fields (e.g. February has no 30th)".into(),
                    }]);
                }
                Ok(Trigger {
                    cron,
                    expr: spec.cron.clone(),
                    tz,
                    tz_name,
                    overlap,
                    catch_up,
                    inputs: spec.inputs.clone(),
                })
            }
            _ => Err(problems),
        }
    }

    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        self.cron.next_after(&self.tz, after)
    }
}

/// The next `count` fire times of all `triggers` after `after`, merged in time order;
/// entries firing at the same instant give one time.
pub fn next_fires(triggers: &[Trigger], after: Timestamp, count: usize) -> Vec<Timestamp> {
    let mut heads: Vec<Option<Timestamp>> = triggers.iter().map(|t| t.next_after(after)).collect();
    let mut out: Vec<Timestamp> = Vec::with_capacity(count);
    while out.len() < count {
        let Some(min) = heads.iter().flatten().min().copied() else { break };
        out.push(min);
        for (head, t) in heads.iter_mut().zip(triggers) {
            if *head == Some(min) {
                *head = t.next_after(min);
            }
        }
    }
    out
}
