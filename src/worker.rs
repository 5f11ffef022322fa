//! `cometflow worker`: a long-running process that claims queued runs from the shared
//! PostgreSQL store, runs them with the engine and records their results, while keeping
//! each claim alive with heartbeats.
//!
//! A run is held under a lease (`--lease`, 30 s by default). Every write of its progress is
//! fenced by the epoch of the claim, so a worker that was paused or cut off past its lease
//! cannot overwrite the worker that took over; that worker resumes the run: finished steps
//! are kept and tasks already submitted are polled by their recorded id, never paid again.
//! Stopping (Ctrl-C, SIGTERM) interrupts what it holds and hands it back to the queue.
//!
//! It owns the claim loop, the heartbeats and a held run's life; the queue's SQL is in
//! `store::pg::queue`, running a pipeline is the engine's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::api::{Api, Endpoint};
use crate::engine::RunOptions;
use crate::error::Failure;
use crate::plan::Plan;
use crate::steps::Registry;
use crate::store::pg::journal::{PgCache, PgJournal};
use crate::store::pg::queue::{self, Claim, Lease};
use crate::store::pg::slots::PgSlots;
use crate::store::pg::{runs, Pg};

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub name: String,
    /// Runs held at once.
    pub concurrency: usize,
    pub lease: Duration,
}

/// Why a held run stops before it ends on its own.
const RUNNING: u8 = 0;
const CANCELLED: u8 = 1;
const HANDED_BACK: u8 = 2;
const LOST: u8 = 3;

/// A run this worker holds.
struct Held {
    epoch: i64,
    stop: CancellationToken,
    why: Arc<AtomicU8>,
}

type HeldRuns = Arc<Mutex<HashMap<String, Held>>>;

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
    let (wake, cancels) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let listener = tokio::spawn(queue::listen(pg.clone(), wake.clone(), cancels.clone()));
    let held: HeldRuns = Arc::default();
    let heartbeat = tokio::spawn(heartbeat(pg.clone(), opts.clone(), held.clone(), cancels));
    // Leases of dead workers run out without a notice: look now and then.
    let fallback = (opts.lease / 2).clamp(Duration::from_millis(200), Duration::from_secs(5));
    let mut running = JoinSet::new();
    while !shutdown.is_cancelled() {
        while running.len() < opts.concurrency && !shutdown.is_cancelled() {
            match queue::claim(&pg, &opts.name, opts.lease).await {
                Ok(Some(claim)) => {
                    let stop = CancellationToken::new();
                    let why = Arc::new(AtomicU8::new(RUNNING));
                    let h = Held { epoch: claim.epoch, stop: stop.clone(), why: why.clone() };
                    held.lock().unwrap_or_else(|p| p.into_inner()).insert(claim.id.clone(), h);
                    let (pg, held, name, lease) = (pg.clone(), held.clone(), opts.name.clone(), opts.lease);
                    running.spawn(async move {
                        let id = claim.id.clone();
                        hold(pg, claim, stop, why, &name, lease).await;
                        held.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                    });
                }
                Ok(None) => break,
                Err(e) => {
                    eprintln!("warning: worker `{}` cannot claim work: {e}", opts.name);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = wake.notified() => {}
            Some(_) = running.join_next(), if !running.is_empty() => {}
            _ = tokio::time::sleep(fallback) => {}
        }
    }
    let holding = held.lock().unwrap_or_else(|p| p.into_inner()).len();
    if holding > 0 {
        eprintln!("cometflow: worker `{}` stopping: handing back {holding} run(s)", opts.name);
    }
    for h in held.lock().unwrap_or_else(|p| p.into_inner()).values() {
        let _ = h.why.compare_exchange(RUNNING, HANDED_BACK, Ordering::SeqCst, Ordering::SeqCst);
        h.stop.cancel();
    }
    while running.join_next().await.is_some() {}
    heartbeat.abort();
    listener.abort();
    let _ = queue::deregister(&pg, &opts.name).await;
    eprintln!("cometflow: worker `{}` stopped", opts.name);
    Ok(())
}

/// Renews the worker's row and the lease of every held run, a third of a lease apart (and
/// at once when a cancellation is announced); stops runs that were cancelled or lost.
async fn heartbeat(pg: Arc<Pg>, opts: WorkerOptions, held: HeldRuns, cancels: Arc<Notify>) {
    let every = opts.lease / 3;
    loop {
        let _ = queue::beat(&pg, &opts.name).await;
        let snapshot: Vec<(String, i64, CancellationToken, Arc<AtomicU8>)> = held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(id, h)| (id.clone(), h.epoch, h.stop.clone(), h.why.clone()))
            .collect();
        for (id, epoch, stop, why) in snapshot {
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
            if why.compare_exchange(RUNNING, verdict, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                if verdict == LOST {
                    eprintln!(
                        "cometflow: worker `{}` lost its lease on run `{id}` to another worker; stopping it",
                        opts.name
                    );
                } else {
                    eprintln!("cometflow: run `{id}` was cancelled; stopping it");
                }
            }
            stop.cancel();
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = cancels.notified() => {}
        }
    }
}

/// Runs one claimed run to its end and records it (unless it was lost or handed back).
async fn hold(
    pg: Arc<Pg>,
    claim: Claim,
    stop: CancellationToken,
    why: Arc<AtomicU8>,
    worker: &str,
    lease: Duration,
) {
    let (id, epoch) = (claim.id.clone(), claim.epoch);
    let resumed = epoch > 1;
    eprintln!(
        "cometflow: worker `{worker}` {} run `{id}` of `{}` (waited {} ms)",
        if resumed { "took over" } else { "claimed" },
        claim.pipeline,
        claim.waited.as_millis()
    );
    if claim.cancel_requested {
        let _ = queue::fail(&pg, &id, epoch, "cancelled", "cancelled while its worker was gone").await;
        return;
    }
    let endpoint = Endpoint::from_env();
    let backend = endpoint.backend();
    let registry = Registry::new(Arc::new(Api::new(endpoint)));
    let plan = match crate::validate::load_text(Path::new(&claim.file), claim.text.clone(), &registry)
        .and_then(|p| Plan::build(p).map_err(|d| vec![d]))
    {
        Ok(plan) => Arc::new(plan),
        Err(diags) => {
            let message = diags.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n");
            eprintln!("cometflow: run `{id}` cannot start: {message}");
            let _ = queue::fail(&pg, &id, epoch, "failed", &message).await;
            return;
        }
    };
    let run_dir = PathBuf::from(&claim.run_dir);
    if let Err(e) = std::fs::create_dir_all(&run_dir) {
        let message = format!("cannot create the run folder `{}`: {e}", run_dir.display());
        eprintln!("cometflow: run `{id}` cannot start: {message}; check COMETFLOW_ARTIFACTS");
        let _ = queue::fail(&pg, &id, epoch, "failed", &message).await;
        return;
    }
    let prior = match resumed
        .then(|| {
            Ok::<_, crate::store::StoreError>(crate::engine::hooks::Prior {
                paid_calls: runs::tasks_submitted(&pg, &id)?,
                ..runs::prior(&pg, &id)?
            })
        })
        .transpose()
    {
        Ok(p) => p.unwrap_or_default(),
        Err(e) => {
            eprintln!("warning: cannot read what run `{id}` already did ({e}); handing it back");
            let _ = queue::hand_back(&pg, &id, epoch).await;
            return;
        }
    };
    let journal = Arc::new(PgJournal::new(pg.clone(), &id, epoch, stop.clone()));
    let cache = Arc::new(PgCache { pg: pg.clone(), run_id: id.clone(), read: true, backend });
    let concurrency = claim.concurrency.or(plan.pipeline.concurrency).unwrap_or(8);
    let options = RunOptions {
        env: crate::runner::template_env(&plan.pipeline.env),
        concurrency,
        journal: journal.clone(),
        cache: Some(cache),
        resumed,
        prior,
        fleet: Some(Arc::new(PgSlots { pg: pg.clone(), holder: format!("{id}#{epoch}"), lease })),
        ..RunOptions::new(id.clone(), run_dir.clone(), claim.inputs.clone(), stop.clone())
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let started = Instant::now();
    let seed = options.prior.paid_calls;
    let mut record = crate::engine::execute(plan, options, tx).await;
    // The run's paid calls, the earlier holders' included.
    record.paid_calls += seed;
    let _ = drain.await;
    let reason = if journal.lost() { LOST } else { why.load(Ordering::SeqCst) };
    match reason {
        LOST => {
            eprintln!("cometflow: run `{id}` belongs to another worker now; nothing more written");
            return;
        }
        HANDED_BACK => {
            match queue::hand_back(&pg, &id, epoch).await {
                Ok(true) => eprintln!("cometflow: handed back run `{id}`"),
                _ => eprintln!("warning: cannot hand back run `{id}`; another worker takes it over when its lease runs out"),
            }
            return;
        }
        _ => {}
    }
    let status = if reason == CANCELLED { "cancelled" } else { record.status.as_str() };
    if let Err(e) = crate::store::write_record(&run_dir, &record) {
        eprintln!("warning: cannot write run.json in `{}`: {e}", run_dir.display());
    }
    match runs::finish(&pg, &record, status, epoch) {
        Ok(true) => {
            let _ = queue::notify(&pg, queue::QUEUE, &id).await;
            eprintln!(
                "cometflow: run `{id}` {status} in {}",
                crate::engine::human_duration(started.elapsed())
            );
        }
        Ok(false) => {
            eprintln!("cometflow: run `{id}` belongs to another worker now; its end is theirs to record")
        }
        Err(e) => eprintln!("warning: cannot record the end of run `{id}`: {e}"),
    }
}
