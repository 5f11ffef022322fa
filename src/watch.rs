//! `watch`: run a pipeline, then run it again whenever its file or a file matching its
//! `on.watch` globs changes. A change during a run cancels that run (through its token)
//! before the next starts; an invalid edit is reported and the loop waits for the next
//! save. It knows nothing of clap or signals: the caller passes the shutdown future.

pub mod events;
mod targets;

use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::engine::RunRecord;
use crate::error::Failure;
use crate::report::Verbosity;
use crate::runner::Launch;
use crate::steps::Registry;
use events::FsEvents;
use targets::Targets;

pub struct WatchOptions {
    pub file: PathBuf,
    /// The kinds pipelines may use, calling the API through one client.
    pub registry: Registry,
    /// Which backend answers provider calls, for the cache.
    pub backend: String,
    pub inputs: Vec<(String, String)>,
    pub concurrency: Option<usize>,
    pub verbosity: Verbosity,
}

/// How the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Stopped between runs.
    Stopped,
    /// Stopped while a run was going; that run was cancelled and recorded as interrupted.
    Interrupted,
}

struct Running {
    cancel: CancellationToken,
    handle: JoinHandle<Result<RunRecord, Failure>>,
}

impl Running {
    async fn stop(self) {
        self.cancel.cancel();
        let _ = self.handle.await;
    }
}

enum Wake {
    Shutdown,
    /// The run ended; an error means it could not start.
    Finished(Result<(), Failure>),
    Changed(BTreeSet<PathBuf>),
    WatcherGone,
}

/// Runs until `shutdown` completes. Errs only when files cannot be watched at all.
pub async fn run(opts: WatchOptions, shutdown: impl Future<Output = ()>) -> Result<Outcome, Failure> {
    let mut fs = FsEvents::new().map_err(Failure::Environment)?;
    let mut targets = Targets::new(&opts.file, &[]).map_err(Failure::Invalid)?;
    fs.set(&targets.dirs()).map_err(Failure::Environment)?;
    tokio::pin!(shutdown);
    let mut current: Option<Running> = None;
    let mut reload = true;
    loop {
        if reload {
            reload = false;
            if let Some(launch) = load(&opts) {
                match Targets::new(&opts.file, &launch.plan.pipeline.triggers.watch) {
                    Ok(t) => targets = t,
                    Err(e) => eprintln!("warning: {e}"),
                }
                if let Err(e) = fs.set(&targets.dirs()) {
                    eprintln!("warning: {e}");
                }
                let cancel = launch.cancel.clone();
                current = Some(Running { cancel, handle: tokio::spawn(crate::runner::launch(launch)) });
            }
        }
        let wake = tokio::select! {
            _ = &mut shutdown => Wake::Shutdown,
            r = finished(&mut current) => Wake::Finished(r.map(drop)),
            b = fs.batch() => b.map_or(Wake::WatcherGone, Wake::Changed),
        };
        match wake {
            Wake::Shutdown => {
                return Ok(match current.take() {
                    Some(r) => {
                        r.stop().await;
                        Outcome::Interrupted
                    }
                    None => Outcome::Stopped,
                });
            }
            Wake::Finished(r) => {
                current = None;
                if let Err(e) = r {
                    crate::error::report(&Err(e));
                }
                eprintln!("cometflow: watching `{}` for changes (Ctrl-C to stop)", opts.file.display());
            }
            Wake::Changed(paths) => {
                let Some(first) = paths.iter().find(|p| targets.is_relevant(p)) else { continue };
                eprintln!("cometflow: `{}` changed; reloading", targets.display(first));
                if let Some(r) = current.take() {
                    eprintln!("cometflow: cancelling the run in progress");
                    r.stop().await;
                }
                reload = true;
            }
            Wake::WatcherGone => {
                return Err(Failure::Environment(
                    "the file watcher stopped; restart `cometflow watch`".into(),
                ))
            }
        }
    }
}

async fn finished(current: &mut Option<Running>) -> Result<RunRecord, Failure> {
    match current {
        Some(r) => (&mut r.handle)
            .await
            .unwrap_or_else(|e| Err(Failure::Failed(format!("the run stopped unexpectedly: {e}")))),
        None => std::future::pending().await,
    }
}

/// Loads the pipeline and its inputs, or reports why not and returns `None`.
fn load(opts: &WatchOptions) -> Option<Launch> {
    let loaded = crate::load_plan(&opts.file, &opts.registry).and_then(|plan| {
        let inputs = crate::validate::resolve_inputs(&plan.pipeline, &opts.inputs)?;
        Ok((plan, inputs))
    });
    match loaded {
        Ok((plan, inputs)) => Some(Launch {
            plan: Arc::new(plan),
            inputs,
            concurrency: opts.concurrency,
            verbosity: opts.verbosity,
            cancel: CancellationToken::new(),
            resume: None,
            fresh: false,
            resubmit_unknown: false,
            backend: opts.backend.clone(),
        }),
        Err(diags) => {
            crate::diag::report(&diags);
            eprintln!("cometflow: fix `{}` and save; watching for changes", opts.file.display());
            None
        }
    }
}
