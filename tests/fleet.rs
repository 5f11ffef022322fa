//! Many machines: a PostgreSQL store, `submit`, `worker`, `cancel`, `workers`, end to end
//! with real processes against a real (throwaway) PostgreSQL and the counting simulator.
//! Each test starts its own cluster (see `pg.rs`) and skips when PostgreSQL is missing.

use std::time::{Duration, Instant};

use crate::child::Running;
use crate::harness::Test;
use crate::paid::Sim;
use crate::pg::Postgres;

/// One Kling clip, polled quickly.
const CLIP: &str = r#"
name: clip
inputs:
  shot: { default: "1" }
steps:
  words:
    uses: value
    with: { text: "a fox" }
  clip:
    uses: kling.text2video
    poll: { interval: 100ms, max_interval: 200ms }
    with: { prompt: "{{ steps.words.outputs.text }}, shot {{ inputs.shot }}" }
outputs:
  video: "{{ steps.clip.outputs.video }}"
"#;

/// Everything one machine of the fleet shares: the store, the artifacts folder, the API.
struct Fleet {
    pg: Postgres,
    sim: Sim,
    artifacts: tempfile::TempDir,
}

impl Fleet {
    fn start(sim: &str) -> Option<Fleet> {
        let pg = Postgres::start()?;
        Some(Fleet { pg, sim: Sim::start(sim), artifacts: tempfile::tempdir().unwrap() })
    }

    /// A machine: its own folder and state directory, the fleet's store and artifacts.
    fn machine(&self, yaml: &str) -> Test {
        self.sim
            .test(yaml)
            .env("COMETFLOW_STORE", &self.pg.url)
            .env("COMETFLOW_ARTIFACTS", self.artifacts.path().to_str().unwrap())
    }

    fn worker(&self, name: &str, lease: &str) -> Running {
        self.worker_with(name, lease, &[])
    }

    fn worker_with(&self, name: &str, lease: &str, extra: &[&str]) -> Running {
        let args = ["worker", "--name", name, "--lease", lease];
        let mut w = Running::start(&self.machine("").args(&args).args(extra));
        w.expect_line("started", Duration::from_secs(30));
        w
    }

    /// `cometflow schedule` of `yaml` on a machine of its own, on the test clock `clock` (see
    /// [`fast_clock`]); the machine keeps its folder for as long as the scheduler runs.
    fn scheduler(&self, yaml: &str, clock: &str) -> (Test, Running) {
        let t = self.machine(yaml).env("COMETFLOW_TEST_CLOCK", clock).args(&["schedule", "pipeline.yaml"]);
        let s = Running::start(&t);
        (t, s)
    }

    /// `cometflow workers`, one line per worker, waiting until `ready` holds of it.
    fn workers_until(
        &self,
        ready: impl Fn(&[String]) -> bool,
        within: Duration,
        mut context: impl FnMut() -> String,
    ) -> Vec<String> {
        let deadline = Instant::now() + within;
        loop {
            let out = self.machine("").then(&["workers"]);
            let lines: Vec<String> = out.stdout.lines().skip(1).map(str::to_owned).collect();
            if ready(&lines) {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "`cometflow workers` never showed that:\n{}\n{}",
                out.stdout,
                context()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn submit(&self, yaml: &str) -> String {
        self.submit_with(yaml, &[])
    }

    fn submit_with(&self, yaml: &str, extra: &[&str]) -> String {
        let out = self.machine(yaml).args(&["submit", "pipeline.yaml"]).args(extra).expect(0);
        out.stdout.trim().to_owned()
    }

    /// The run's status as `runs show` prints it, read from another machine.
    fn status(&self, id: &str) -> String {
        let out = self.machine("").then(&["runs", "show", id]);
        out.stdout.lines().next().and_then(|l| l.split_whitespace().last()).unwrap_or_default().to_owned()
    }

    fn wait_status(&self, id: &str, want: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let status = self.status(id);
            if status == want {
                return;
            }
            assert!(Instant::now() < deadline, "run {id} is `{status}`, not `{want}`, after {within:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A test clock that reads 2030-01-01T00:00:00Z now and runs 20 times faster (a cron
/// minute every 3 s), with the real time (ms) it started at.
fn fast_clock() -> (i64, String) {
    let anchor = jiff::Timestamp::now().as_millisecond();
    (anchor, format!("{anchor},2030-01-01T00:00:00Z,20"))
}

/// Sleeps until `ms` after `anchor` (real time).
fn until(anchor: i64, ms: i64) {
    let left = anchor + ms - jiff::Timestamp::now().as_millisecond();
    std::thread::sleep(Duration::from_millis(left.max(0) as u64));
}

fn kill(w: &Running, sig: i32) {
    w.signal(sig);
}

#[test]
fn two_workers_finish_submitted_runs_and_submit_wait_prints_the_run() {
    let Some(fleet) = Fleet::start("task_time=300ms") else { return };
    let ids: Vec<String> = (0..3).map(|i| fleet.submit_with(CLIP, &["-i", &format!("shot={i}")])).collect();
    assert!(ids.iter().all(|id| fleet.status(id) == "queued"), "{ids:?}");
    let _w1 = fleet.worker("w1", "5s");
    let _w2 = fleet.worker("w2", "5s");
    for id in &ids {
        fleet.wait_status(id, "succeeded", Duration::from_secs(60));
    }
    // This machine mounts the shared folder elsewhere: paths are stored relative to it.
    let mount = tempfile::tempdir().unwrap();
    let link = mount.path().join("shared");
    std::os::unix::fs::symlink(fleet.artifacts.path(), &link).unwrap();
    let out = fleet
        .machine(CLIP)
        .env("COMETFLOW_ARTIFACTS", link.to_str().unwrap())
        .args(&["submit", "pipeline.yaml", "-i", "shot=9", "--wait", "--json"])
        .expect(0);
    let record = out.json();
    assert_eq!(record["status"], "succeeded", "{}", out.stdout);
    assert_eq!(record["steps"]["clip"]["status"], "succeeded");
    let video = record["outputs"]["video"].as_str().unwrap();
    assert!(video.starts_with(link.to_str().unwrap()), "{video}");
    assert!(std::path::Path::new(video).is_file(), "{video}");
    assert_eq!(fleet.sim.submits("kling"), 4);
    let list = fleet.machine("").then(&["runs"]);
    assert_eq!(list.stdout.matches("succeeded").count(), 4, "{}", list.stdout);
    let workers = fleet.machine("").then(&["workers"]);
    assert!(workers.stdout.contains("w1") && workers.stdout.contains("w2"), "{}", workers.stdout);
}

#[test]
fn a_worker_killed_mid_task_is_taken_over_and_the_task_is_not_submitted_again() {
    let Some(fleet) = Fleet::start("task_time=3s") else { return };
    let id = fleet.submit(CLIP);
    let w1 = fleet.worker("w1", "2s");
    fleet.sim.wait_for_tasks(1, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    kill(&w1, libc::SIGKILL);
    let mut w2 = fleet.worker("w2", "2s");
    w2.expect_line(&format!("took over run `{id}`"), Duration::from_secs(30));
    fleet.wait_status(&id, "succeeded", Duration::from_secs(30));
    assert_eq!(fleet.sim.submits("kling"), 1, "{}", fleet.sim.stats());
    let show = fleet.machine("").then(&["runs", "show", &id]);
    assert!(show.stdout.contains("resumed 1 time(s)"), "{}", show.stdout);
}

/// The submit window across machines: a worker dies after its submit was sent and before
/// the task id came back; the worker that takes over does not pay again, and says why.
#[test]
fn a_submit_sent_by_a_dead_worker_with_no_task_id_is_not_sent_again_by_the_next() {
    let Some(fleet) = Fleet::start("task_time=2s,hang_submits") else { return };
    let id = fleet.submit(CLIP);
    let w1 = fleet.worker("w1", "2s");
    fleet.sim.wait_for_tasks(1, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    kill(&w1, libc::SIGKILL);
    let mut w2 = fleet.worker("w2", "2s");
    w2.expect_line(&format!("took over run `{id}`"), Duration::from_secs(30));
    fleet.wait_status(&id, "failed", Duration::from_secs(30));
    assert_eq!(fleet.sim.submits("kling"), 1, "{}", fleet.sim.stats());
    let show = fleet.machine("").then(&["runs", "show", &id]);
    let text = format!("{}{}", show.stdout, show.stderr);
    assert!(text.contains("may have been charged"), "{text}");
}

#[test]
fn a_paused_worker_that_lost_its_lease_writes_nothing_over_the_new_holder() {
    let Some(fleet) = Fleet::start("task_time=2s") else { return };
    let id = fleet.submit(CLIP);
    let mut w1 = fleet.worker("w1", "1s");
    fleet.sim.wait_for_tasks(1, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    kill(&w1, libc::SIGSTOP);
    let mut w2 = fleet.worker("w2", "1s");
    w2.expect_line(&format!("run `{id}` succeeded"), Duration::from_secs(30));
    let before = fleet.machine("").then(&["runs", "show", &id]).stdout;
    kill(&w1, libc::SIGCONT);
    w1.expect_line("another worker", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(500));
    let after = fleet.machine("").then(&["runs", "show", &id]).stdout;
    assert_eq!(before, after, "the stale worker changed the run");
    assert_eq!(fleet.status(&id), "succeeded");
    assert_eq!(fleet.sim.submits("kling"), 1, "{}", fleet.sim.stats());
}

#[test]
fn workers_reconnect_when_postgres_restarts_mid_run() {
    let Some(fleet) = Fleet::start("task_time=3s") else { return };
    let id = fleet.submit(CLIP);
    let _w1 = fleet.worker("w1", "10s");
    fleet.sim.wait_for_tasks(1, Duration::from_secs(30));
    fleet.pg.restart();
    fleet.wait_status(&id, "succeeded", Duration::from_secs(60));
    assert_eq!(fleet.sim.submits("kling"), 1, "{}", fleet.sim.stats());
}

#[test]
fn a_stopped_worker_hands_its_run_back_and_another_finishes_it_at_once() {
    let Some(fleet) = Fleet::start("task_time=2s") else { return };
    let id = fleet.submit(CLIP);
    let mut w1 = fleet.worker("w1", "60s");
    fleet.sim.wait_for_tasks(1, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    kill(&w1, libc::SIGTERM);
    w1.expect_line(&format!("handed back run `{id}`"), Duration::from_secs(20));
    let (code, _) = w1.wait(Duration::from_secs(20));
    assert_eq!(code, 0);
    // A 60 s lease: only the hand-back lets w2 start before a minute has passed.
    let mut w2 = fleet.worker("w2", "60s");
    w2.expect_line(&format!("run `{id}` succeeded"), Duration::from_secs(30));
    assert_eq!(fleet.sim.submits("kling"), 1, "{}", fleet.sim.stats());
}

#[test]
fn cancel_stops_a_queued_or_running_run() {
    let Some(fleet) = Fleet::start("task_time=30s") else { return };
    let queued = fleet.submit(CLIP);
    // A queued run shows too, as the object `run --json` prints, with its own status.
    let show = fleet.machine("").then(&["runs", "show", &queued, "--json"]);
    assert_eq!(show.code, 0, "{}", show.stderr);
    let json: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!((json["run_id"].as_str(), json["status"].as_str()), (Some(queued.as_str()), Some("queued")));
    let out = fleet.machine("").then(&["cancel", &queued]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(fleet.status(&queued), "cancelled");
    let running = fleet.submit(CLIP);
    let _w1 = fleet.worker("w1", "5s");
    fleet.sim.wait_for_tasks(1, Duration::from_secs(30));
    let out = fleet.machine("").then(&["cancel", &running]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    fleet.wait_status(&running, "cancelled", Duration::from_secs(10));
    let again = fleet.machine("").then(&["cancel", &running]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(again.stderr.contains("already ended (cancelled)"), "{}", again.stderr);
}

#[test]
fn run_runs_and_resume_work_on_a_postgres_store() {
    let Some(fleet) = Fleet::start("task_time=200ms") else { return };
    let t = fleet.machine(CLIP);
    let first = t.then(&["run", "pipeline.yaml", "--json"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    // The same request again comes from the shared cache: no second submit.
    let second = t.then(&["run", "pipeline.yaml", "--json"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(second.json()["steps"]["clip"]["cached"], true);
    assert_eq!(fleet.sim.submits("kling"), 1);
    let list = t.then(&["runs"]);
    assert_eq!(list.stdout.matches("succeeded").count(), 2, "{}", list.stdout);
    let id = first.json()["run_id"].as_str().unwrap().to_owned();
    let show = t.then(&["runs", "show", &id]);
    assert!(show.stdout.contains("task kling"), "{}", show.stdout);
    let resumed = t.then(&["run", "pipeline.yaml", "--resume", &id]);
    assert_eq!(resumed.code, 2, "{}", resumed.stderr);
    assert!(resumed.stderr.contains("already succeeded"), "{}", resumed.stderr);
}

/// Two schedulers over one pipeline due every minute, on a test clock that runs 20 times
/// faster (a cron minute every 3 s): each due time is queued once, and killing one
/// scheduler leaves the other queuing the next one.
#[test]
fn two_schedulers_queue_each_due_time_once_and_survive_one_dying() {
    let Some(fleet) = Fleet::start("") else { return };
    let yaml = r#"
name: minutely
on:
  schedule:
    - cron: "* * * * *"
      timezone: UTC
steps:
  a:
    uses: value
    with: { x: 1 }
"#;
    // Virtual 00:00:00 now; due at 00:01, 00:02, 00:03 = real +3 s, +6 s, +9 s. Only one
    // scheduler needs to be up by the first.
    let (anchor, clock) = fast_clock();
    let scheduler = || {
        let (t, mut s) = fleet.scheduler(yaml, &clock);
        s.expect_line("next run of `minutely`", Duration::from_secs(20));
        (t, s)
    };
    let (_ta, a) = scheduler();
    let (_tb, mut b) = scheduler();
    let _w = fleet.worker("w1", "5s");
    until(anchor, 7_500);
    kill(&a, libc::SIGKILL);
    b.expect_line("2030-01-01T00:03:00Z", Duration::from_secs(10));
    until(anchor, 10_500);
    kill(&b, libc::SIGKILL);
    std::thread::sleep(Duration::from_millis(500));
    let list = fleet.machine("").then(&["runs", "--limit", "50"]);
    assert_eq!(list.stdout.matches("minutely").count(), 3, "{}", list.stdout);
}

/// `limits: kling: { concurrency: 1 }` across three workers each holding a run: one Kling
/// task in flight at a time in the whole fleet.
#[test]
fn family_limits_hold_across_the_fleet() {
    let Some(fleet) = Fleet::start("task_time=700ms") else { return };
    let yaml = CLIP.replace("name: clip\n", "name: clip\nlimits:\n  kling: { concurrency: 1 }\n");
    let ids: Vec<String> = (0..3).map(|i| fleet.submit_with(&yaml, &["-i", &format!("shot={i}")])).collect();
    let _workers: Vec<Running> = ["w1", "w2", "w3"].iter().map(|n| fleet.worker(n, "5s")).collect();
    for id in &ids {
        fleet.wait_status(id, "succeeded", Duration::from_secs(60));
    }
    let stats = fleet.sim.stats();
    assert_eq!(stats["families"]["kling"]["submits"], 3, "{stats}");
    assert_eq!(stats["families"]["kling"]["max_in_flight"], 1, "{stats}");
}

/// `run` on a PostgreSQL store holds its run under a short lease: killed, the run shows
/// `interrupted` soon after and `--resume last` finishes it without paying twice.
#[test]
fn a_killed_run_on_postgres_is_interrupted_and_resumes_without_paying_twice() {
    let Some(fleet) = Fleet::start("task_time=2s") else { return };
    let t = fleet.machine(CLIP).args(&["run", "pipeline.yaml"]);
    let run = Running::start(&t);
    fleet.sim.wait_for_tasks(1, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    let live = t.then(&["runs", "show", "last"]);
    assert!(live.stdout.lines().next().unwrap_or_default().ends_with("running"), "{}", live.stdout);
    let refused = t.then(&["run", "pipeline.yaml", "--resume", "last"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    run.signal(libc::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !t
        .then(&["runs", "show", "last"])
        .stdout
        .lines()
        .next()
        .unwrap_or_default()
        .ends_with("interrupted")
    {
        assert!(Instant::now() < deadline, "the killed run never showed `interrupted`");
        std::thread::sleep(Duration::from_millis(200));
    }
    let resumed = t.then(&["run", "pipeline.yaml", "--resume", "last"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_eq!(fleet.sim.submits("kling"), 1, "{}", fleet.sim.stats());
    let show = t.then(&["runs", "show", "last"]);
    assert!(show.stdout.lines().next().unwrap_or_default().ends_with("succeeded"), "{}", show.stdout);
}

/// `budget.calls: 1` and two Kling steps, the first killed mid-task with its worker: the
/// worker taking over polls the first task (no new call) and refuses the second call, as
/// one worker would have.
#[test]
fn the_call_budget_counts_what_a_dead_worker_paid() {
    let Some(fleet) = Fleet::start("task_time=2s") else { return };
    let yaml = r#"
name: budgeted
budget:
  calls: 1
steps:
  first:
    uses: kling.text2video
    poll: { interval: 100ms, max_interval: 200ms }
    with: { prompt: "one" }
  second:
    uses: kling.text2video
    needs: [first]
    poll: { interval: 100ms, max_interval: 200ms }
    with: { prompt: "two" }
"#;
    let id = fleet.submit(yaml);
    let w1 = fleet.worker("w1", "1s");
    fleet.sim.wait_for_tasks(1, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    kill(&w1, libc::SIGKILL);
    let _w2 = fleet.worker("w2", "1s");
    fleet.wait_status(&id, "failed", Duration::from_secs(30));
    let show = fleet.machine("").then(&["runs", "show", &id]);
    assert!(show.stdout.contains("budget exceeded"), "{}", show.stdout);
    assert_eq!(fleet.sim.submits("kling"), 1, "{}", fleet.sim.stats());
}

/// The steps of one run are claimed one by one by whichever workers are free, not by the
/// worker that holds the run: four items on two workers that run two steps each. The
/// submitter's folder is gone (another machine): commands run in the run's shared folder.
#[test]
fn the_steps_of_one_run_spread_over_the_workers_and_workers_shows_them() {
    let Some(fleet) = Fleet::start("") else { return };
    let yaml = r#"
name: fan
steps:
  fan:
    for_each: [1, 2, 3, 4]
    run: |
      echo "worker=$PPID" >> "$COMETFLOW_OUTPUT"
      sleep 6
"#;
    // Queued from a machine whose folder is gone before any worker looks at it.
    let id = fleet.submit(yaml);
    let start = |name: &str| {
        let args = ["worker", "--name", name, "--lease", "5s", "--concurrency", "2"];
        Running::start(&fleet.machine("").args(&args))
    };
    let (mut w1, mut w2) = (start("w1"), start("w2"));
    w1.expect_line("started", Duration::from_secs(30));
    w2.expect_line("started", Duration::from_secs(30));
    let busy =
        |l: &[String]| l.len() == 2 && l.iter().all(|w| w.contains("steps 2/2") && w.contains(": fan["));
    let lines = fleet.workers_until(busy, Duration::from_secs(30), || {
        let show = fleet.machine("").then(&["runs", "show", &id]);
        format!(
            "{}{}\nw1:\n{}\nw2:\n{}",
            show.stdout,
            show.stderr,
            w1.seen().join("\n"),
            w2.seen().join("\n")
        )
    });
    assert_eq!(lines.iter().filter(|l| l.contains(&format!("runs 1: {id}"))).count(), 1, "{lines:?}");
    fleet.wait_status(&id, "succeeded", Duration::from_secs(30));
    let record = fleet.machine("").then(&["runs", "show", &id, "--json"]).json();
    let items = record["steps"]["fan"]["outputs"].as_array().unwrap().clone();
    let mut pids: Vec<&str> = items.iter().map(|o| o["worker"].as_str().unwrap()).collect();
    pids.sort();
    pids.dedup();
    assert_eq!(pids.len(), 2, "{items:?}");
}

/// A worker dies while it runs a paid step of a run another worker holds: the step's lease
/// runs out, the surviving worker takes the step over and polls the recorded task.
#[test]
fn a_worker_killed_while_running_a_step_of_anothers_run_is_replaced_and_nothing_is_paid_twice() {
    let Some(fleet) = Fleet::start("task_time=3s") else { return };
    let yaml = r#"
name: clips
steps:
  clips:
    for_each: ["a", "b"]
    uses: kling.text2video
    poll: { interval: 100ms, max_interval: 200ms }
    with: { prompt: "shot {{ item }}" }
"#;
    let mut w1 = fleet.worker_with("w1", "2s", &["--concurrency", "1"]);
    let mut w2 = fleet.worker_with("w2", "2s", &["--concurrency", "1"]);
    let id = fleet.submit(yaml);
    fleet.sim.wait_for_tasks(2, Duration::from_secs(30));
    // Each worker runs one step (one step at a time each); one of them holds the run.
    let both = |l: &[String]| l.len() == 2 && l.iter().all(|w| w.contains("steps 1/1"));
    let lines = fleet.workers_until(both, Duration::from_secs(30), String::new);
    let holder = lines.iter().find(|l| l.contains(&format!("runs 1: {id}"))).expect("a holder");
    let (survivor, victim) = if holder.starts_with("w1") { (&mut w1, &w2) } else { (&mut w2, &w1) };
    kill(victim, libc::SIGKILL);
    survivor.expect_line("took over step `clips[", Duration::from_secs(30));
    fleet.wait_status(&id, "succeeded", Duration::from_secs(30));
    assert_eq!(fleet.sim.submits("kling"), 2, "{}", fleet.sim.stats());
    let show = fleet.machine("").then(&["runs", "show", &id]);
    assert!(!show.stdout.contains("resumed"), "the run kept its holder:\n{}", show.stdout);
}

/// Steps of one run on several workers share the run's `budget.calls`: the holder reserves
/// a call before a paid step leaves, so workers never overspend together.
#[test]
fn the_call_budget_holds_when_one_runs_paid_steps_run_on_several_workers() {
    let Some(fleet) = Fleet::start("task_time=500ms") else { return };
    let yaml = r#"
name: clips
budget: { calls: 2 }
steps:
  clips:
    for_each: ["a", "b", "c", "d"]
    uses: kling.text2video
    continue_on_error: true
    poll: { interval: 100ms, max_interval: 200ms }
    with: { prompt: "shot {{ item }}" }
"#;
    let _w1 = fleet.worker_with("w1", "5s", &["--concurrency", "2"]);
    let _w2 = fleet.worker_with("w2", "5s", &["--concurrency", "2"]);
    let id = fleet.submit(yaml);
    fleet.wait_status(&id, "succeeded", Duration::from_secs(60));
    assert_eq!(fleet.sim.submits("kling"), 2, "{}", fleet.sim.stats());
    let record = fleet.machine("").then(&["runs", "show", &id, "--json"]).json();
    let error = record["steps"]["clips"]["error"].as_str().unwrap_or_default().to_owned();
    assert_eq!(error.matches("budget exceeded").count(), 2, "{error}");
}

/// `cancel` reaches a step that runs on a worker other than the run's holder.
#[test]
fn cancel_stops_the_steps_a_run_has_on_other_workers() {
    let Some(fleet) = Fleet::start("task_time=60s") else { return };
    let yaml = r#"
name: clips
steps:
  clips:
    for_each: ["a", "b"]
    uses: kling.text2video
    poll: { interval: 100ms, max_interval: 200ms }
    with: { prompt: "shot {{ item }}" }
"#;
    let _w1 = fleet.worker_with("w1", "5s", &["--concurrency", "1"]);
    let _w2 = fleet.worker_with("w2", "5s", &["--concurrency", "1"]);
    let id = fleet.submit(yaml);
    fleet.sim.wait_for_tasks(2, Duration::from_secs(30));
    let out = fleet.machine("").then(&["cancel", &id]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    fleet.wait_status(&id, "cancelled", Duration::from_secs(15));
    let idle =
        |l: &[String]| l.len() == 2 && l.iter().all(|w| w.contains("steps 0/1") && w.contains("runs 0"));
    fleet.workers_until(idle, Duration::from_secs(15), String::new);
    assert_eq!(fleet.sim.submits("kling"), 2, "{}", fleet.sim.stats());
}

/// Every scheduler was down over two due times; one starts again on a machine that never
/// ran one: it catches up the latest missed time (`catch_up: latest`) from the fleet's
/// record, once.
#[test]
fn a_scheduler_on_a_new_machine_catches_up_what_the_fleet_missed() {
    let Some(fleet) = Fleet::start("") else { return };
    let yaml = r#"
name: minutely
on:
  schedule:
    - cron: "* * * * *"
      timezone: UTC
      catch_up: latest
steps:
  a:
    uses: value
    with: { x: 1 }
"#;
    // Virtual 00:00:00 now, a minute every 3 s: due at 00:01 (+3 s), 00:02 (+6 s), ...
    let (anchor, clock) = fast_clock();
    let _w = fleet.worker("w1", "5s");
    let (_ta, mut a) = fleet.scheduler(yaml, &clock);
    a.expect_line("queued `minutely` for 2030-01-01T00:01:00Z", Duration::from_secs(20));
    kill(&a, libc::SIGKILL);
    until(anchor, 7_500);
    let (_tb, mut b) = fleet.scheduler(yaml, &clock);
    let line = b.expect_line("catching up the run of", Duration::from_secs(20));
    assert!(line.contains("2030-01-01T00:0"), "{line}");
    b.expect_line("queued `minutely`", Duration::from_secs(10));
    kill(&b, libc::SIGKILL);
    let list = fleet.machine("").then(&["runs", "--limit", "50"]);
    assert_eq!(list.stdout.matches("minutely").count(), 2, "{}", list.stdout);
}

/// A paid call that leaves no task (a chat answer) counts too when a run changes hands:
/// the worker taking over knows of the chat call and the task, and refuses a third call.
#[test]
fn the_call_budget_counts_a_dead_workers_calls_that_left_no_task() {
    let Some(fleet) = Fleet::start("task_time=300ms") else { return };
    let yaml = r#"
name: budgeted
budget:
  calls: 2
steps:
  words:
    uses: chat
    with:
      model: gpt-4o-mini
      messages: [{ role: user, content: "a fox" }]
  clip:
    uses: kling.text2video
    poll: { interval: 100ms, max_interval: 200ms }
    with: { prompt: "{{ steps.words.outputs.text }}" }
  pause:
    needs: [clip]
    run: sleep 3
  more:
    uses: chat
    needs: [pause]
    with:
      model: gpt-4o-mini
      messages: [{ role: user, content: "again" }]
"#;
    let id = fleet.submit(yaml);
    let w1 = fleet.worker("w1", "1s");
    // The chat call and the task are paid and on record; the run waits in `pause`.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let record = fleet.machine("").then(&["runs", "show", &id, "--json"]).json();
        if record["steps"]["clip"]["status"] == "succeeded" {
            break;
        }
        assert!(Instant::now() < deadline, "{record}");
        std::thread::sleep(Duration::from_millis(100));
    }
    kill(&w1, libc::SIGKILL);
    let _w2 = fleet.worker("w2", "1s");
    fleet.wait_status(&id, "failed", Duration::from_secs(30));
    let record = fleet.machine("").then(&["runs", "show", &id, "--json"]).json();
    let error = record["steps"]["more"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("budget exceeded"), "{record}");
    assert_eq!(fleet.sim.submits("kling"), 1, "{}", fleet.sim.stats());
    assert_eq!(fleet.sim.stats()["families"]["chat"]["requests"], 1, "{}", fleet.sim.stats());
}

/// Machines that start together on a new database create its schema once, without tripping
/// over each other.
#[test]
fn processes_starting_together_on_a_new_database_all_start() {
    let Some(fleet) = Fleet::start("") else { return };
    let codes: Vec<i32> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..4).map(|_| s.spawn(|| fleet.machine("").then(&["runs"]))).collect();
        runs.into_iter()
            .map(|h| h.join().unwrap())
            .map(|o| if o.code == 0 { 0 } else { panic!("{}", o.stderr) })
            .collect()
    });
    assert_eq!(codes, vec![0; 4]);
}

/// A rolling deploy: workers stopped one after another hand a long paid step along; each
/// next one polls the same task, and the step is never given up for having been claimed
/// often (only workers that die count toward that).
#[test]
fn a_step_handed_along_by_stopping_workers_finishes_paid_once() {
    let Some(fleet) = Fleet::start("task_time=8s") else { return };
    let id = fleet.submit(CLIP);
    let mut w = fleet.worker("w0", "60s");
    fleet.sim.wait_for_tasks(1, Duration::from_secs(30));
    for n in 1..=4 {
        std::thread::sleep(Duration::from_millis(300));
        kill(&w, libc::SIGTERM);
        w.expect_line("handed back step `clip`", Duration::from_secs(20));
        let (code, _) = w.wait(Duration::from_secs(20));
        assert_eq!(code, 0);
        w = fleet.worker(&format!("w{n}"), "60s");
        w.expect_line("took over step `clip`", Duration::from_secs(20));
    }
    fleet.wait_status(&id, "succeeded", Duration::from_secs(30));
    assert_eq!(fleet.sim.submits("kling"), 1, "{}", fleet.sim.stats());
}

/// A cancelled run's step that no worker had a free slot for ends at once, rather than when
/// a slot frees (here a minute later), and is never submitted.
#[test]
fn cancel_ends_at_once_a_step_no_worker_has_taken_yet() {
    let Some(fleet) = Fleet::start("task_time=60s") else { return };
    let busy = r#"
name: busy
steps:
  clips:
    for_each: ["a", "b"]
    uses: kling.text2video
    poll: { interval: 100ms, max_interval: 200ms }
    with: { prompt: "shot {{ item }}" }
"#;
    let _w = fleet.worker_with("w1", "5s", &["--concurrency", "2"]);
    let busy = fleet.submit(busy);
    fleet.sim.wait_for_tasks(2, Duration::from_secs(30));
    let waiting = fleet.submit(CLIP);
    fleet.wait_status(&waiting, "running", Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(500));
    let out = fleet.machine("").then(&["cancel", &waiting]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    fleet.wait_status(&waiting, "cancelled", Duration::from_secs(8));
    assert_eq!(fleet.status(&busy), "running");
    assert_eq!(fleet.sim.submits("kling"), 2, "{}", fleet.sim.stats());
}
