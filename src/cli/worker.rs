//! `cometflow worker`: claims and runs queued runs from the shared store until stopped.

use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::error::{Failure, Outcome};
use crate::store::Store;
use crate::worker::WorkerOptions;

pub const EXAMPLES: &str = "\
Examples:
  COMETFLOW_STORE=postgres://cometflow@db/cometflow cometflow worker
  cometflow worker --concurrency 4 --name gpu-box-1 --lease 1m

Every worker needs the same COMETFLOW_STORE, COMETAPI_KEY and a COMETFLOW_ARTIFACTS
directory that all of them mount. Ctrl-C or SIGTERM hands back the runs and steps it holds.";

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Steps this worker runs at once, of any run (it also walks up to as many runs, whose
    /// steps go to whichever workers are free)
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,
    /// The name shown by `cometflow workers` (default: host-pid)
    #[arg(long)]
    pub name: Option<String>,
    /// How long a held run stays this worker's without a heartbeat; after that another
    /// worker takes it over
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::model::parse_duration)]
    pub lease: std::time::Duration,
}

pub fn worker(args: WorkerArgs) -> Outcome {
    super::runtime()?.block_on(async {
        let pg = Store::open().and_then(|s| s.shared("cometflow worker")).map_err(env)?;
        let lease = args.lease.max(std::time::Duration::from_millis(300));
        let name = args.name.unwrap_or_else(|| format!("{}-{}", host(), std::process::id()));
        let opts = WorkerOptions { name, concurrency: args.concurrency as usize, lease };
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        crate::worker::work(pg, opts, shutdown).await
    })
}

fn env(e: crate::store::StoreError) -> Failure {
    Failure::Environment(e.to_string())
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "worker".into())
}

/// Ctrl-C or SIGTERM: stop claiming and hand back; a second one quits at once.
async fn stop_on_signal(shutdown: CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    shutdown.cancel();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("stopped again: quitting without handing back (the leases run out instead)");
    std::process::exit(crate::error::code::INTERRUPTED);
}
