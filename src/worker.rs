//! `cometflow worker`: a long-running process that takes work from the shared PostgreSQL
//! store. Work is of two sorts, both claimed with `FOR UPDATE SKIP LOCKED` and held under a
//! lease its heartbeats renew:
//! - a queued run, which the worker walks: it renders each step's inputs, runs the pure
//!   steps itself, answers from the cache, keeps retries, limits and the budget, and records
//!   every step's result ([`run`]);
//! - a step job: one attempt of a step with effects (a shell command, a media step, a
//!   provider call) that the holder of some run queued, so that the steps of one run spread
//!   over every machine of the fleet ([`job`]).
//!
//! Every write is fenced by the claim it was made under, so a worker that was paused or cut
//! off past its lease cannot overwrite the worker that took over. A run taken over resumes
//! like `--resume` (finished steps kept, attempts still running collected, not run again);
//! a job taken over polls the task its predecessor submitted instead of paying again.
//! Stopping (Ctrl-C, SIGTERM) interrupts what it holds and hands it back to the queue.
//!
//! It owns the claim loop and the heartbeats; the queues' SQL is in `store::pg::{queue,
//! jobs}`, running a pipeline is the engine's.

mod job;
mod run;

pub use job::cancel_queued;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::api::{Api, Endpoint};
use crate::error::Failure;
use crate::steps::Registry;
use crate::store::pg::jobs::{self, JobLease};
use crate::store::pg::queue::{self, Lease, Signals};
use crate::store::pg::Pg;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub name: String,
    /// Step attempts run at once (and runs walked at once).
    pub concurrency: usize,
    pub lease: Duration,
}

/// Why held work stops before it ends on its own.
const RUNNING: u8 = 0;
const CANCELLED: u8 = 1;
const HANDED_BACK: u8 = 2;
const LOST: u8 = 3;

/// A claim this worker holds: a run (by id) or a step job (by its id).
struct Held {
    fence: i64,
    stop: CancellationToken,
    why: Arc<AtomicU8>,
}

impl Held {
    fn new(fence: i64) -> Held {
        Held { fence, stop: CancellationToken::new(), why: Arc::new(AtomicU8::new(RUNNING)) }
    }

    /// Stops it for `why`, unless it already stops for another reason.
    fn stop(&self, why: u8) -> bool {
        let first = self.why.compare_exchange(RUNNING, why, Ordering::SeqCst, Ordering::SeqCst).is_ok();
        self.stop.cancel();
        first
    }
}

#[derive(Default)]
struct Holding {
    runs: HashMap<String, Held>,
    jobs: HashMap<i64, Held>,
}

type Holdings = Arc<Mutex<Holding>>;

fn lock(h: &Holdings) -> std::sync::MutexGuard<'_, Holding> {
    h.lock().unwrap_or_else(|p| p.into_inner())
}

/// Works until `shutdown`, then hands back what it holds.
pub async fn work(pg: Arc<Pg>, opts: WorkerOptions, shutdown: CancellationToken) -> Result<(), Failure> {
    let env = |e: crate::store::StoreError| Failure::Environment(e.to_string());
    queue::register(&pg, &opts.name, opts.concurrency, opts.lease).await.map_err(env)?;
    eprintln!(
        "cometflow: worker `{}` started (concurrency {}, lease {}) on {}",
        opts.name,
        opts.concurrency,
        crate::engine::human_duration(opts.lease),
        pg.display()
    );
    let signals = Arc::new(Signals::default());
    let listener = tokio::spawn(queue::listen(pg.clone(), signals.clone()));
    let holding: Holdings = Arc::default();
    let heartbeat = tokio::spawn(heartbeat(pg.clone(), opts.clone(), holding.clone(), signals.clone()));
    let registry = Arc::new(Registry::new(Arc::new(Api::new(Endpoint::from_env()))));
    // Leases of dead workers run out without a notice: look now and then.
    let fallback = (opts.lease / 2).clamp(Duration::from_millis(200), Duration::from_secs(5));
    let (mut runs, mut steps) = (JoinSet::new(), JoinSet::new());
    let name: Arc<str> = opts.name.as_str().into();
    // What to look for: a notice of a queued step need not cost a look for runs too.
    let (mut want_steps, mut want_runs) = (true, true);
    while !shutdown.is_cancelled() {
        // Steps first: holders of runs (here and elsewhere) wait on them.
        while want_steps && steps.len() < opts.concurrency && !shutdown.is_cancelled() {
            match jobs::claim(&pg, &opts.name, opts.lease).await {
                Ok(Some(claim)) => {
                    let held = Held::new(claim.fence);
                    let (stop, why) = (held.stop.clone(), held.why.clone());
                    lock(&holding).jobs.insert(claim.id, held);
                    let (pg, registry, holding, name) =
                        (pg.clone(), registry.clone(), holding.clone(), name.clone());
                    steps.spawn(async move {
                        let id = claim.id;
                        job::run_job(pg, registry, claim, stop, why, &name).await;
                        lock(&holding).jobs.remove(&id);
                    });
                }
                Ok(None) => break,
                Err(e) => {
                    claim_failed(&opts.name, e).await;
                    break;
                }
            }
        }
        while want_runs && runs.len() < opts.concurrency && !shutdown.is_cancelled() {
            match queue::claim(&pg, &opts.name, opts.lease).await {
                Ok(Some(claim)) => {
                    let held = Held::new(claim.epoch);
                    let (stop, why) = (held.stop.clone(), held.why.clone());
                    lock(&holding).runs.insert(claim.id.clone(), held);
                    let ctx = run::Holder {
                        pg: pg.clone(),
                        registry: registry.clone(),
                        signals: signals.clone(),
                        worker: name.clone(),
                        lease: opts.lease,
                        stop,
                        why,
                    };
                    let holding = holding.clone();
                    runs.spawn(async move {
                        let id = claim.id.clone();
                        ctx.hold(claim).await;
                        lock(&holding).runs.remove(&id);
                    });
                }
                Ok(None) => break,
                Err(e) => {
                    claim_failed(&opts.name, e).await;
                    break;
                }
            }
        }
        (want_steps, want_runs) = tokio::select! {
            _ = shutdown.cancelled() => (false, false),
            _ = signals.steps.notified() => (true, false),
            _ = signals.runs.notified() => (false, true),
            // A slot came free.
            Some(_) = steps.join_next(), if !steps.is_empty() => (true, false),
            Some(_) = runs.join_next(), if !runs.is_empty() => (false, true),
            _ = tokio::time::sleep(fallback) => (true, true),
        };
    }
    {
        let h = lock(&holding);
        let (r, j) = (h.runs.len(), h.jobs.len());
        if r + j > 0 {
            eprintln!("cometflow: worker `{}` stopping: handing back {r} run(s) and {j} step(s)", opts.name);
        }
        for held in h.runs.values().chain(h.jobs.values()) {
            held.stop(HANDED_BACK);
        }
    }
    while steps.join_next().await.is_some() {}
    while runs.join_next().await.is_some() {}
    heartbeat.abort();
    listener.abort();
    let _ = queue::deregister(&pg, &opts.name).await;
    eprintln!("cometflow: worker `{}` stopped", opts.name);
    Ok(())
}

/// A claim failed (the database is unreachable): says so and pauses before the next look.
async fn claim_failed(worker: &str, e: crate::store::StoreError) {
    eprintln!("warning: worker `{worker}` cannot claim work: {e}");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Renews the worker's row and the lease of everything it holds, a third of a lease apart
/// (and at once when a cancellation is announced); stops what was cancelled or lost.
async fn heartbeat(pg: Arc<Pg>, opts: WorkerOptions, holding: Holdings, signals: Arc<Signals>) {
    let every = opts.lease / 3;
    loop {
        let _ = queue::beat(&pg, &opts.name).await;
        let (runs, steps): (Vec<_>, Vec<_>) = {
            let h = lock(&holding);
            (
                h.runs.iter().map(|(id, held)| (id.clone(), held.fence)).collect(),
                h.jobs.iter().map(|(id, held)| (*id, held.fence)).collect(),
            )
        };
        for (id, epoch) in runs {
            let verdict = match queue::renew(&pg, &id, epoch, opts.lease).await {
                Ok(Lease::Held) => continue,
                Ok(Lease::CancelRequested) => CANCELLED,
                Ok(Lease::Lost) => LOST,
                // The database is unreachable: keep going; the lease says who wins.
                Err(e) => {
                    tracing::warn!("cannot renew the lease on run `{id}`: {e}");
                    continue;
                }
            };
            if lock(&holding).runs.get(&id).is_some_and(|h| h.stop(verdict)) {
                if verdict == LOST {
                    eprintln!(
                        "cometflow: worker `{}` lost its lease on run `{id}` to another worker; stopping it",
                        opts.name
                    );
                } else {
                    eprintln!("cometflow: run `{id}` was cancelled; stopping it");
                }
            }
        }
        for (id, fence) in steps {
            let verdict = match jobs::renew(&pg, id, fence, opts.lease).await {
                Ok(JobLease::Held) => continue,
                Ok(JobLease::RunStopped) => CANCELLED,
                Ok(JobLease::Lost) => LOST,
                Err(e) => {
                    tracing::warn!("cannot renew the lease on a step: {e}");
                    continue;
                }
            };
            if lock(&holding).jobs.get(&id).is_some_and(|h| h.stop(verdict)) && verdict == LOST {
                eprintln!(
                    "cometflow: worker `{}` lost its lease on a step to another worker; stopping it",
                    opts.name
                );
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = signals.cancels.notified() => {}
        }
    }
}
