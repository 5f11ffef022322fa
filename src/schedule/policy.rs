//! The daemon's decisions as pure functions: what a fire does given the runs in flight
//! (overlap), and which missed fire to run on start (catch-up). No clock, no I/O.

use jiff::Timestamp;

use super::{CatchUp, Overlap, Trigger};

/// What to do with a fire time that has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    /// Drop it: the previous run of the pipeline is still going (`overlap: skip`).
    Skip,
    /// Start it when the runs in flight end (`overlap: queue`); fires that come while
    /// one is already queued merge into it.
    Queue,
}

pub fn on_fire(overlap: Overlap, running: usize) -> Action {
    match (overlap, running) {
        (_, 0) | (Overlap::Allow, _) => Action::Start,
        (Overlap::Skip, _) => Action::Skip,
        (Overlap::Queue, _) => Action::Queue,
    }
}

/// The one missed fire to run on start: the latest, over the entries with
/// `catch_up: latest`, between the last handled fire and now. Returns the entry's index.
pub fn catch_up(triggers: &[Trigger], last: Option<Timestamp>, now: Timestamp) -> Option<(usize, Timestamp)> {
    let last = last?;
    triggers
        .iter()
        .enumerate()
        .filter(|(_, t)| t.catch_up == CatchUp::Latest)
        .filter_map(|(i, t)| t.cron.latest_between(&t.tz, last, now).map(|at| (i, at)))
        .max_by_key(|&(_, at)| at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigger::Spec;

    fn trigger(cron: &str, catch_up: Option<&str>) -> Trigger {
        let spec = Spec { cron, timezone: Some("Europe/Berlin"), catch_up, ..Spec::default() };
        Trigger::check(&spec, Default::default()).unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn overlap_decides_only_when_a_run_is_in_flight() {
        for o in [Overlap::Skip, Overlap::Queue, Overlap::Allow] {
            assert_eq!(on_fire(o, 0), Action::Start);
        }
        assert_eq!(on_fire(Overlap::Skip, 1), Action::Skip);
        assert_eq!(on_fire(Overlap::Queue, 1), Action::Queue);
        assert_eq!(on_fire(Overlap::Allow, 2), Action::Start);
    }

    #[test]
    fn catch_up_runs_the_latest_missed_fire_once() {
        let ts_ = [trigger("0 9 * * *", None), trigger("0 18 * * *", Some("latest"))];
        let (last, now) = (ts("2026-03-01T00:00:00Z"), ts("2026-03-05T10:00:00Z"));
        // 18:00 Berlin (CET) is 17:00Z; the 9:00 entry does not catch up.
        assert_eq!(catch_up(&ts_, Some(last), now), Some((1, ts("2026-03-04T17:00:00Z"))));
        assert_eq!(catch_up(&ts_[..1], Some(last), now), None);
        assert_eq!(catch_up(&ts_, None, now), None, "nothing is known missed without a record");
        assert_eq!(catch_up(&ts_, Some(ts("2026-03-04T17:00:00Z")), now), None, "already handled");
    }
}
