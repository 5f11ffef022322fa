//! The engine specified in-process: a fake kind whose behaviour each step's `with` sets,
//! driven on paused tokio time, so retries, backoff, timeouts and limits are exact and
//! never depend on how busy the machine is.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use indexmap::IndexMap;
use serde_json::{json, Value as Json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{execute, RunOptions, RunRecord, RunStatus};
use crate::contract::{ErrorKind, FieldSpec, FieldType, KindSpec, Status, StepCtx, StepError, StepKind};
use crate::plan::Plan;
use crate::source::Source;
use crate::steps::{Kind, Registry};

/// What the fake kind did: each attempt's step, item, start and end (virtual time since
/// the run began), and the most attempts in flight at once.
#[derive(Default)]
struct Log {
    attempts: Vec<(String, Option<usize>, Duration, Duration)>,
    in_flight: usize,
    most_in_flight: usize,
}

/// `with`: `sleep` (seconds), `fail` (attempts that fail, retryably, before one succeeds),
/// `fatal` (fails for good), `retry_after` (seconds the failure asks to wait), `panic`,
/// `stubborn` (ignores cancellation), `no_key` (the environment cannot run it), `out` (its
/// output `value`).
struct Fake {
    spec: KindSpec,
    start: Instant,
    log: Arc<Mutex<Log>>,
}

impl Kind for Fake {}

impl StepKind for Fake {
    fn spec(&self) -> &KindSpec {
        &self.spec
    }

    fn execute<'a>(&'a self, ctx: &'a StepCtx, with: Json) -> BoxFuture<'a, Result<Json, StepError>> {
        Box::pin(async move {
            if self.spec.paid {
                ctx.charge_call()?;
            }
            let began = self.start.elapsed();
            {
                let mut log = self.log.lock().unwrap();
                log.in_flight += 1;
                log.most_in_flight = log.most_in_flight.max(log.in_flight);
            }
            let sleep = tokio::time::sleep(Duration::from_secs_f64(with["sleep"].as_f64().unwrap_or(0.0)));
            let stubborn = with["stubborn"].as_bool().unwrap_or(false);
            tokio::select! {
                _ = sleep => {}
                _ = ctx.cancel.cancelled(), if !stubborn => {}
            }
            let mut log = self.log.lock().unwrap();
            log.in_flight -= 1;
            log.attempts.push((ctx.step_id.to_string(), ctx.item, began, self.start.elapsed()));
            drop(log);
            if ctx.cancel.is_cancelled() {
                return Err(StepError::fatal("stopped: the run is being interrupted"));
            }
            if with["panic"].as_bool().unwrap_or(false) {
                panic!("the fake kind was told to panic");
            }
            if with["no_key"].as_bool().unwrap_or(false) {
                return Err(StepError::fatal("no key").kind(ErrorKind::Environment));
            }
            if with["fatal"].as_bool().unwrap_or(false) {
                return Err(StepError::fatal("told to fail"));
            }
            if u64::from(ctx.attempt) <= with["fail"].as_u64().unwrap_or(0) {
                let wait = with["retry_after"].as_f64().map(Duration::from_secs_f64);
                return Err(StepError::retryable(format!("attempt {} fails", ctx.attempt)).retry_after(wait));
            }
            Ok(json!({ "value": with["out"].clone() }))
        })
    }
}

struct Harness {
    registry: Registry,
    log: Arc<Mutex<Log>>,
    dir: tempfile::TempDir,
}

impl Harness {
    fn new() -> Self {
        let log = Arc::new(Mutex::new(Log::default()));
        let start = Instant::now();
        let mut registry = Registry::local();
        for (name, paid) in [("fake", false), ("fake.paid", true)] {
            let spec = KindSpec {
                name: name.into(),
                family: "fake".into(),
                fields: vec![
                    FieldSpec::new("list", &[FieldType::List], "a list that must not be empty").required()
                ],
                open: true,
                outputs: vec![("value".into(), "`out`".into())],
                paid,
                idempotent: true,
                ..KindSpec::default()
            };
            registry.add(Arc::new(Fake { spec, start, log: log.clone() }));
        }
        Harness { registry, log, dir: tempfile::tempdir().unwrap() }
    }

    fn plan(&self, yaml: &str) -> Arc<Plan> {
        let src = Source::new(self.dir.path().join("p.yaml"), yaml);
        let raw = crate::syntax::parse(&src).unwrap();
        let pipeline = crate::validate::check(raw, &src, &self.registry).unwrap_or_else(|d| panic!("{d:?}"));
        Arc::new(Plan::build(pipeline).unwrap())
    }

    async fn run(&self, yaml: &str) -> RunRecord {
        self.run_with(yaml, CancellationToken::new()).await
    }

    async fn run_with(&self, yaml: &str, cancel: CancellationToken) -> RunRecord {
        self.run_journaled(yaml, cancel, Arc::new(super::hooks::NoJournal)).await
    }

    async fn run_journaled(
        &self,
        yaml: &str,
        cancel: CancellationToken,
        journal: Arc<dyn super::hooks::Journal>,
    ) -> RunRecord {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let mut opts = RunOptions::new("r".into(), self.dir.path().join("run"), IndexMap::new(), cancel);
        opts.journal = journal;
        execute(self.plan(yaml), opts, tx).await
    }

    /// The attempts of `step`: (start, end) since the harness began.
    fn attempts(&self, step: &str) -> Vec<(Duration, Duration)> {
        let log = self.log.lock().unwrap();
        log.attempts.iter().filter(|a| a.0 == step).map(|a| (a.2, a.3)).collect()
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[tokio::test(start_paused = true)]
async fn a_failed_attempt_waits_an_exponential_backoff_with_jitter_before_the_next() {
    let h = Harness::new();
    let record = h
        .run(
            "name: p\nsteps:\n  a:\n    uses: fake\n    retry: { attempts: 3, backoff: 2s, max_backoff: 60s }\n    \
             with: { list: [1], fail: 2, out: done }\n",
        )
        .await;
    assert_eq!(record.status, RunStatus::Succeeded);
    assert_eq!(record.steps["a"].attempts, 3);
    assert_eq!(record.steps["a"].outputs, json!({ "value": "done" }));
    let a = h.attempts("a");
    // Half fixed, half random: the n-th wait is within [b*2^(n-1)/2, b*2^(n-1)].
    let first = a[1].0 - a[0].1;
    let second = a[2].0 - a[1].1;
    assert!(first >= secs(1.0) && first <= secs(2.0), "{first:?}");
    assert!(second >= secs(2.0) && second <= secs(4.0), "{second:?}");
}

#[tokio::test(start_paused = true)]
async fn a_server_retry_after_wins_over_the_backoff() {
    let h = Harness::new();
    h.run(
        "name: p\nsteps:\n  a:\n    uses: fake\n    retry: { attempts: 2, backoff: 1s }\n    \
         with: { list: [1], fail: 1, retry_after: 7 }\n",
    )
    .await;
    let a = h.attempts("a");
    assert_eq!(a[1].0 - a[0].1, secs(7.0));
}

#[tokio::test(start_paused = true)]
async fn an_attempt_past_its_timeout_fails_and_an_idempotent_kind_tries_again() {
    let h = Harness::new();
    let record = h
        .run(
            "name: p\nsteps:\n  a:\n    uses: fake\n    timeout: 1s\n    retry: { attempts: 2, backoff: 1s }\n    \
             with: { list: [1], sleep: 10 }\n",
        )
        .await;
    let a = &record.steps["a"];
    assert_eq!((a.status, a.attempts), (Status::Failed, 2));
    assert_eq!(a.error.as_deref(), Some("timed out after 1.0s (after 2 attempts)"));
    // Neither attempt finished: the kind was dropped at its timeout.
    assert!(h.attempts("a").is_empty());
}

#[tokio::test(start_paused = true)]
async fn cancelling_stops_cooperative_steps_at_once_and_drops_stubborn_ones_after_the_grace() {
    let h = Harness::new();
    let cancel = CancellationToken::new();
    let later = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(secs(1.0)).await;
        later.cancel();
    });
    let record = h
        .run_with(
            "name: p\nsteps:\n  polite: { uses: fake, with: { list: [1], sleep: 100 } }\n  \
             stubborn: { uses: fake, with: { list: [1], sleep: 100, stubborn: true } }\n  \
             after: { uses: fake, needs: polite, with: { list: [1] } }\n",
            cancel,
        )
        .await;
    assert_eq!(record.status, RunStatus::Interrupted);
    for step in ["polite", "stubborn", "after"] {
        assert_eq!(record.steps[step].status, Status::Cancelled, "{step}");
    }
    // The polite step saw the cancellation at 1 s; the stubborn one never finished.
    assert_eq!(h.attempts("polite"), vec![(secs(0.0), secs(1.0))]);
    assert!(h.attempts("stubborn").is_empty());
    assert!(h.attempts("after").is_empty(), "nothing starts once interrupted");
}

/// ```text
///   broken ──> skipped ──> also_skipped
///        └──> reads_status (its `if` reads broken's status)
/// ```
#[tokio::test(start_paused = true)]
async fn a_failure_skips_what_needs_it_unless_an_if_reads_its_status() {
    let h = Harness::new();
    let record = h
        .run(
            "name: p\nsteps:\n  broken: { uses: fake, with: { list: [1], fatal: true } }\n  \
             skipped: { uses: fake, needs: broken, with: { list: [1] } }\n  \
             also_skipped: { uses: fake, needs: skipped, with: { list: [1] } }\n  \
             reads_status: { uses: fake, if: \"steps.broken.status == 'failed'\", with: { list: [1] } }\n",
        )
        .await;
    assert_eq!(record.status, RunStatus::Failed);
    assert_eq!(record.steps["skipped"].status, Status::Skipped);
    assert_eq!(record.steps["skipped"].error.as_deref(), Some("needs `broken`, which failed"));
    assert_eq!(record.steps["also_skipped"].error.as_deref(), Some("needs `skipped`, which was skipped"));
    assert_eq!(record.steps["reads_status"].status, Status::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn continue_on_error_lets_the_run_succeed_and_its_dependents_run() {
    let h = Harness::new();
    let record = h
        .run(
            "name: p\nsteps:\n  flaky: { uses: fake, continue_on_error: true, with: { list: [1], fatal: true } }\n  \
             next: { uses: fake, needs: flaky, with: { list: [1] } }\n",
        )
        .await;
    assert_eq!(record.status, RunStatus::Succeeded);
    assert_eq!(record.steps["flaky"].status, Status::Failed);
    assert_eq!(record.steps["next"].status, Status::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn a_family_limit_caps_its_steps_in_flight() {
    let h = Harness::new();
    let record = h
        .run(
            "name: p\nconcurrency: 8\nlimits: { fake: { concurrency: 2 } }\nsteps:\n  \
             many: { uses: fake, for_each: [1, 2, 3, 4, 5], with: { list: [1], sleep: 1 } }\n",
        )
        .await;
    assert_eq!(record.status, RunStatus::Succeeded);
    assert_eq!(h.log.lock().unwrap().most_in_flight, 2);
    let last_end = h.attempts("many").iter().map(|a| a.1).max().unwrap();
    assert_eq!(last_end, secs(3.0), "five 1 s items two at a time take three rounds");
}

#[tokio::test(start_paused = true)]
async fn for_each_outputs_keep_item_order_whatever_order_items_finish_in() {
    let h = Harness::new();
    let record = h
        .run(
            "name: p\nsteps:\n  fan:\n    uses: fake\n    for_each: [3, 1, 2]\n    \
             with: { list: [1], sleep: \"{{ item }}\", out: \"{{ index }}\" }\n",
        )
        .await;
    let outputs = &record.steps["fan"].outputs;
    assert_eq!(outputs, &json!([{ "value": 0 }, { "value": 1 }, { "value": 2 }]));
    let ends: Vec<_> = h.attempts("fan").iter().map(|a| a.1).collect();
    assert_eq!(ends, vec![secs(1.0), secs(2.0), secs(3.0)], "they finished in another order");
}

#[tokio::test(start_paused = true)]
async fn the_budget_refuses_the_paid_call_past_its_limit() {
    let h = Harness::new();
    let record = h
        .run(
            "name: p\nbudget: { calls: 2 }\nsteps:\n  \
             paid: { uses: fake.paid, for_each: [1, 2, 3], with: { list: [1] } }\n",
        )
        .await;
    assert_eq!(record.steps["paid"].status, Status::Failed);
    assert_eq!(record.paid_calls, 2);
    let error = record.steps["paid"].error.clone().unwrap();
    assert!(error.contains("budget exceeded") && error.contains("the call was not made"), "{error}");
    assert_eq!(h.attempts("paid").len(), 2, "the third call was never made");
}

#[tokio::test(start_paused = true)]
async fn a_rendered_value_its_kind_refuses_fails_that_step_by_name_before_it_runs() {
    let h = Harness::new();
    let record = h
        .run(
            "name: p\nsteps:\n  empty: { uses: value, with: { items: [] } }\n  \
             reads: { uses: fake, with: { list: \"{{ steps.empty.outputs.items }}\" } }\n",
        )
        .await;
    let step = &record.steps["reads"];
    assert_eq!(step.status, Status::Failed);
    assert_eq!(
        step.error.as_deref(),
        Some(
            "`with.list` rendered to an empty list, but at least one item is needed; \
             fix the template or the step it reads"
        )
    );
    assert!(h.attempts("reads").is_empty(), "the kind never saw it");
}

#[tokio::test(start_paused = true)]
async fn a_kind_that_panics_fails_its_step_and_the_run_still_ends_with_a_record() {
    let h = Harness::new();
    let record = h
        .run(
            "name: p\nsteps:\n  boom: { uses: fake, with: { list: [1], panic: true } }\n  \
             fine: { uses: fake, with: { list: [1], out: ok } }\n",
        )
        .await;
    assert_eq!(record.status, RunStatus::Failed);
    let error = record.steps["boom"].error.clone().unwrap();
    assert!(error.contains("internal error (the fake kind was told to panic)"), "{error}");
    assert_eq!(record.steps["fine"].outputs, json!({ "value": "ok" }));
}

#[tokio::test(start_paused = true)]
async fn a_step_the_environment_could_not_run_is_told_apart_from_a_failing_step() {
    let h = Harness::new();
    let own = h.run("name: p\nsteps:\n  a: { uses: fake, with: { list: [1], fatal: true } }\n").await;
    assert!(!own.environment_failed());
    let env = h.run("name: p\nsteps:\n  a: { uses: fake, with: { list: [1], no_key: true } }\n").await;
    assert_eq!(env.status, RunStatus::Failed);
    assert!(env.environment_failed(), "the run exits 3, not 1");
}

/// Counts what reaches the journal, in order: `done:<step>` rows and `flush`es.
#[derive(Default)]
struct Counting(Mutex<Vec<String>>);

impl crate::contract::TaskJournal for Counting {
    fn task_submitted(&self, _: &str, _: Option<usize>, _: &str, _: &str) -> crate::contract::Durable {
        crate::contract::durable()
    }
}

impl super::hooks::Journal for Counting {
    fn attempt_finished(&self, _: &str, _: Option<usize>, _: u32, _: Option<&str>) {}
    fn unit_finished(&self, _: &str, _: Option<usize>, _: &super::StepRecord) {}
    fn step_finished(&self, step: &str, _: &super::StepRecord) {
        self.0.lock().unwrap().push(format!("done:{step}"));
    }
    fn flush(&self, _sync: bool) {
        self.0.lock().unwrap().push("flush".into());
    }
}

/// ```text
///   a ──> b ──> c ──> effect      (a, b, c: `value`; effect: a kind with effects)
/// ```
#[tokio::test(start_paused = true)]
async fn what_a_step_with_effects_reads_is_flushed_before_it_starts_and_pure_steps_wait_for_nothing() {
    let h = Harness::new();
    let journal = Arc::new(Counting::default());
    h.run_journaled(
        "name: p\nsteps:\n  a: { uses: value, with: { x: 1 } }\n  b: { uses: value, with: { x: \"{{ steps.a.outputs.x }}\" } }\n  \
         c: { uses: value, with: { x: \"{{ steps.b.outputs.x }}\" } }\n  \
         effect: { uses: fake, with: { list: [1], out: \"{{ steps.c.outputs.x }}\" } }\n",
        CancellationToken::new(),
        journal.clone(),
    )
    .await;
    let seen = journal.0.lock().unwrap().clone();
    // No flush before the pure steps; one before `effect`, after every row it depends on.
    assert_eq!(seen, ["done:a", "done:b", "done:c", "flush", "done:effect"], "{seen:?}");
}
