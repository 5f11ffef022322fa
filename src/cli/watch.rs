//! `cometflow watch FILE`: clap arguments and exit codes around `crate::watch`.

use clap::Args;

use super::{FileArg, OutputArgs};
use crate::error::{Failure, Outcome};
use crate::steps::Registry;
use crate::watch::WatchOptions;

pub const EXAMPLES: &str = "\
Runs the pipeline, then again whenever the pipeline file or a file matching its
`on.watch` globs changes (paths relative to the pipeline's folder):

  on:
    watch: [\"prompts/*.txt\", \"data/**/*.json\"]

Changes within 300 ms count as one. A change during a run cancels it and starts a new
one. An invalid edit prints the problem and waits for the next save.

Examples:
  cometflow watch song.yaml
  cometflow watch song.yaml -i theme=\"a rainy night\"

Exit status (after Ctrl-C): 130 if a run was interrupted, 0 otherwise; 3 when the files
cannot be watched or the simulator cannot start.";

#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub file: FileArg,
    #[command(flatten)]
    pub settings: super::run::RunSettings,
    /// Run against the built-in CometAPI simulator (no key, no network)
    #[arg(long)]
    pub simulate: bool,
}

pub fn watch(args: WatchArgs, output: &OutputArgs) -> Outcome {
    let verbosity = super::verbosity(output);
    let ended = super::runtime()?.block_on(async {
        // The simulator is kept alive while watching.
        let (endpoint, _simulator) = super::endpoint(args.simulate).await?;
        let opts = WatchOptions {
            file: args.file.file,
            registry: Registry::new(std::sync::Arc::new(crate::api::Api::new(endpoint.clone()))),
            backend: endpoint.backend(),
            inputs: args.settings.inputs,
            concurrency: args.settings.concurrency.map(|c| c as usize),
            verbosity,
        };
        crate::watch::run(opts, interrupted()).await
    })?;
    match ended {
        crate::watch::Outcome::Stopped => Ok(()),
        crate::watch::Outcome::Interrupted => Err(Failure::Interrupted),
    }
}

/// Ctrl-C. The handler is installed before the future is returned, so a Ctrl-C right
/// after start is not lost; if it cannot be installed, signals never stop the loop.
fn interrupted() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        let stream = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
        async move {
            match stream {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
