//! Shared simulator state: tasks and their clocks, served file ids, statistics and fault
//! counters. A task's status is a pure function of the time since its clock started, so
//! nothing runs in the background.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::config::SimConfig;
pub(crate) use super::stats::Family;
use super::stats::Stats;

/// Where a task is in its life. The fractions of `task_time` spent in each phase are
/// fixed so that every family's intermediate states are observable by polling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting for input before its clock starts (a Midjourney MODAL task).
    Waiting,
    NotStart,
    Submitted,
    Queued,
    /// Running, with a progress percentage in 0..=99.
    Running(u8),
    Succeeded,
    Failed,
}

impl Phase {
    /// The phase after `elapsed` of a task that takes `total`: 10% not started, 10%
    /// submitted, 10% queued, 70% running, then terminal.
    pub(crate) fn at(elapsed: Duration, total: Duration, fails: bool) -> Phase {
        if elapsed >= total {
            return if fails { Phase::Failed } else { Phase::Succeeded };
        }
        let fraction = elapsed.as_secs_f64() / total.as_secs_f64();
        match fraction {
            f if f < 0.1 => Phase::NotStart,
            f if f < 0.2 => Phase::Submitted,
            f if f < 0.3 => Phase::Queued,
            // Truncation keeps it within 0..=99 because fraction < 1.
            f => Phase::Running(((f - 0.3) / 0.7 * 100.0) as u8),
        }
    }

    pub(crate) fn is_terminal(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed)
    }

    pub(crate) fn progress(self) -> u8 {
        match self {
            Phase::Running(p) => p,
            Phase::Succeeded | Phase::Failed => 100,
            _ => 0,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Task {
    pub(crate) id: String,
    pub(crate) family: Family,
    pub(crate) submitted_ms: u64,
    /// When the clock started (instant, unix ms); `None` while waiting for input.
    clock: Option<(Instant, u64)>,
    duration: Duration,
    pub(crate) failure: Option<String>,
    /// Whatever the family needs to render the task.
    pub(crate) params: Value,
}

impl Task {
    pub(crate) fn phase(&self) -> Phase {
        match self.clock {
            None => Phase::Waiting,
            Some((start, _)) => Phase::at(start.elapsed(), self.duration, self.failure.is_some()),
        }
    }

    /// Unix ms when it started running (0 before), as the families report it.
    pub(crate) fn start_ms(&self) -> u64 {
        match (self.clock, self.phase()) {
            (Some((_, ms)), Phase::Running(_) | Phase::Succeeded | Phase::Failed) => {
                ms + (self.duration.as_millis() as u64) * 3 / 10
            }
            _ => 0,
        }
    }

    /// Unix ms when it reached its terminal state (0 before).
    pub(crate) fn finish_ms(&self) -> u64 {
        match self.clock {
            Some((_, ms)) if self.phase().is_terminal() => ms + self.duration.as_millis() as u64,
            _ => 0,
        }
    }
}

/// What a submission needs to describe.
pub(crate) struct NewTask<'a> {
    pub(crate) id: String,
    pub(crate) family: Family,
    pub(crate) route: &'a str,
    /// The prompt; `[sim:fail]` in it fails just this task.
    pub(crate) prompt: &'a str,
    pub(crate) params: Value,
    /// Start in [`Phase::Waiting`] until [`Sim::start_clock`].
    pub(crate) waiting: bool,
}

#[derive(Default)]
struct Inner {
    tasks: HashMap<String, Task>,
    files: HashSet<String>,
    stats: Stats,
    api_requests: u64,
    server_errors: u64,
    downloads: HashMap<String, u64>,
    realtime_sessions: u64,
    streams: u64,
    /// Tasks fetched at least once (for `alt_shapes`' young-task `task_no_found`).
    fetched: HashSet<String>,
}

/// How long a `stuck_status` task takes: longer than any test or demo.
const STUCK: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

pub(crate) struct Sim {
    pub(crate) config: SimConfig,
    /// Used for result URLs when a request carries no Host header.
    pub(crate) fallback_base: String,
    inner: Mutex<Inner>,
}

impl Sim {
    pub(crate) fn new(config: SimConfig, fallback_base: String) -> Self {
        Sim { config, fallback_base, inner: Mutex::default() }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain counters behind; keep serving.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records a submission and returns its id. Tasks fail when `fail_tasks` is on or
    /// the prompt contains `[sim:fail]`.
    pub(crate) fn submit(&self, new: NewTask<'_>) -> String {
        let faults = &self.config.faults;
        let failure =
            (faults.fail_tasks || new.prompt.contains("[sim:fail]")).then(|| faults.fail_reason.clone());
        let now = Instant::now();
        let ms = now_ms();
        // `stuck_status`: a task that never ends (a century is never, for a test).
        let duration = if faults.stuck_status.is_empty() { self.config.task_time } else { STUCK };
        let task = Task {
            id: new.id.clone(),
            family: new.family,
            submitted_ms: ms,
            clock: (!new.waiting).then_some((now, ms)),
            duration,
            failure,
            params: new.params,
        };
        let mut inner = self.lock();
        let ends = now + self.config.task_time;
        inner.stats.record_submit(&new.id, new.family, new.route, ms, now, ends);
        inner.tasks.insert(new.id.clone(), task);
        new.id
    }

    pub(crate) fn task(&self, id: &str) -> Option<Task> {
        self.lock().tasks.get(id).cloned()
    }

    /// True the first time task `id` is fetched.
    pub(crate) fn first_fetch(&self, id: &str) -> bool {
        self.lock().fetched.insert(id.to_owned())
    }

    /// A family's status word for `phase`, or `stuck_status` while a stuck task runs.
    pub(crate) fn word<'a>(&'a self, phase: Phase, normal: &'a str) -> &'a str {
        let stuck = &self.config.faults.stuck_status;
        if stuck.is_empty() || phase.is_terminal() {
            normal
        } else {
            stuck
        }
    }

    /// Starts a waiting task's clock; false if it was not waiting.
    pub(crate) fn start_clock(&self, id: &str, params: impl FnOnce(&mut Value)) -> bool {
        let mut inner = self.lock();
        match inner.tasks.get_mut(id) {
            Some(task) if task.clock.is_none() => {
                task.clock = Some((Instant::now(), now_ms()));
                params(&mut task.params);
                true
            }
            _ => false,
        }
    }

    /// Makes `/_sim/files/{id}/...` answer for this id.
    pub(crate) fn register_file(&self, id: &str) {
        self.lock().files.insert(id.to_owned());
    }

    pub(crate) fn has_file(&self, id: &str) -> bool {
        let inner = self.lock();
        inner.files.contains(id) || inner.tasks.contains_key(id)
    }

    /// Counts a request and tracks concurrency until the guard drops.
    pub(crate) fn begin_request(&self, family: Family) -> RequestGuard<'_> {
        self.lock().stats.begin_request(family);
        RequestGuard { sim: self, family }
    }

    /// The 1-based arrival number of an authorised API request, for the `*_every` faults.
    pub(crate) fn next_api_request(&self) -> u64 {
        let mut inner = self.lock();
        inner.api_requests += 1;
        inner.api_requests
    }

    /// The 1-based number of the server error being injected (500 and 503 alternate).
    pub(crate) fn next_server_error(&self) -> u64 {
        let mut inner = self.lock();
        inner.server_errors += 1;
        inner.server_errors
    }

    /// The 1-based number of this realtime session, for the `realtime_drop*` faults.
    pub(crate) fn next_realtime_session(&self) -> u64 {
        let mut inner = self.lock();
        inner.realtime_sessions += 1;
        inner.realtime_sessions
    }

    /// The 1-based number of this streamed answer, for the `cut_streams` fault.
    pub(crate) fn next_stream(&self) -> u64 {
        let mut inner = self.lock();
        inner.streams += 1;
        inner.streams
    }

    /// The 1-based number of this download of `path`.
    pub(crate) fn next_download(&self, path: &str) -> u64 {
        let mut inner = self.lock();
        let n = inner.downloads.entry(path.to_owned()).or_default();
        *n += 1;
        *n
    }

    pub(crate) fn count_fault(&self, kind: &'static str) {
        self.lock().stats.count_fault(kind);
    }

    pub(crate) fn log_request(&self, entry: Value) {
        self.lock().stats.log_request(entry);
    }

    /// Clears statistics and fault counters; tasks stay pollable.
    pub(crate) fn reset(&self) {
        let mut inner = self.lock();
        inner.stats = Stats::default();
        inner.api_requests = 0;
        inner.server_errors = 0;
        inner.downloads.clear();
        inner.realtime_sessions = 0;
        inner.streams = 0;
    }

    pub(crate) fn stats_json(&self) -> Value {
        self.lock().stats.to_json()
    }
}

pub(crate) struct RequestGuard<'a> {
    sim: &'a Sim,
    family: Family,
}

impl Drop for RequestGuard<'_> {
    fn drop(&mut self) {
        self.sim.lock().stats.end_request(self.family);
    }
}

pub(crate) fn now_ms() -> u64 {
    // Before 1970 only on a broken clock; 0 is harmless there.
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOTAL: Duration = Duration::from_secs(10);

    fn at(secs: f64, fails: bool) -> Phase {
        Phase::at(Duration::from_secs_f64(secs), TOTAL, fails)
    }

    #[test]
    fn a_task_walks_through_every_state_in_order() {
        assert_eq!(at(0.0, false), Phase::NotStart);
        assert_eq!(at(1.5, false), Phase::Submitted);
        assert_eq!(at(2.5, false), Phase::Queued);
        assert_eq!(at(3.0, false), Phase::Running(0));
        assert_eq!(at(6.5, false), Phase::Running(50));
        assert_eq!(at(9.99, false), Phase::Running(99));
        assert_eq!(at(10.0, false), Phase::Succeeded);
        assert_eq!(at(1000.0, false), Phase::Succeeded);
    }

    #[test]
    fn a_failing_task_fails_exactly_when_it_would_have_succeeded() {
        assert_eq!(at(9.0, true), Phase::Running(85));
        assert_eq!(at(10.0, true), Phase::Failed);
    }

    #[test]
    fn a_zero_task_time_is_done_at_once() {
        assert_eq!(Phase::at(Duration::ZERO, Duration::ZERO, false), Phase::Succeeded);
    }

    #[test]
    fn progress_only_moves_forward() {
        let mut last = 0;
        for tenth in 0..=100 {
            let p = at(tenth as f64 / 10.0, false).progress();
            assert!(p >= last, "progress went back at {tenth}");
            last = p;
        }
        assert_eq!(last, 100);
    }

    #[test]
    fn stats_count_tasks_alive_at_once() {
        let sim = Sim::new(SimConfig { task_time: TOTAL, ..SimConfig::default() }, String::new());
        for n in 0..3 {
            sim.submit(NewTask {
                id: format!("t{n}"),
                family: Family::Suno,
                route: "/suno/submit/music",
                prompt: "",
                params: Value::Null,
                waiting: false,
            });
        }
        let stats = sim.stats_json();
        assert_eq!(stats["families"]["suno"]["submits"], 3);
        assert_eq!(stats["families"]["suno"]["max_in_flight"], 3);
        assert_eq!(stats["tasks"].as_array().unwrap().len(), 3);
        sim.reset();
        assert_eq!(sim.stats_json()["families"]["suno"]["submits"], 0);
        assert!(sim.task("t1").is_some(), "a reset keeps tasks pollable");
    }
}
