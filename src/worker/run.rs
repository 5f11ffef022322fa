//! A run a worker holds: loaded from the text that travelled with it, walked by the engine
//! here, its steps with effects sent to the fleet's step queue, its end recorded under the
//! lease it was claimed with.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::job::Fleet;
use super::{CANCELLED, HANDED_BACK, LOST};
use crate::api::Endpoint;
use crate::engine::RunOptions;
use crate::plan::Plan;
use crate::steps::Registry;
use crate::store::pg::journal::{PgCache, PgJournal};
use crate::store::pg::queue::{self, Claim, Signals};
use crate::store::pg::slots::PgSlots;
use crate::store::pg::{runs, Pg};

/// What holding a run needs of its worker.
pub(super) struct Holder {
    pub pg: Arc<Pg>,
    pub registry: Arc<Registry>,
    pub signals: Arc<Signals>,
    pub worker: Arc<str>,
    pub lease: Duration,
    pub stop: CancellationToken,
    pub why: Arc<AtomicU8>,
}

impl Holder {
    /// Runs one claimed run to its end and records it (unless it was lost or handed back).
    pub(super) async fn hold(self, claim: Claim) {
        let Holder { pg, registry, signals, worker, lease, stop, why } = self;
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
        let backend = Endpoint::from_env().backend();
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
                    paid_calls: runs::paid_so_far(&pg, &id)?,
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
            dispatch: Some(Arc::new(Fleet {
                pg: pg.clone(),
                run_id: id.clone(),
                epoch,
                signals,
                why: why.clone(),
                stop: stop.clone(),
            })),
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
}
