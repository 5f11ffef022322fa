//! `cometflow cancel RUN_ID`: stops a queued or running run of the shared store; it ends
//! `cancelled`. `cometflow workers`: the live workers and what they hold.

use clap::Args;

use crate::error::{Failure, Outcome};
use crate::store::pg::queue::{self, Cancelled};
use crate::store::Store;

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The run to stop
    #[arg(value_name = "RUN_ID")]
    pub run: String,
}

pub fn cancel(args: CancelArgs) -> Outcome {
    super::runtime()?.block_on(async {
        let pg = Store::open().and_then(|s| s.shared("cometflow cancel")).map_err(env)?;
        let id = &args.run;
        match queue::cancel(&pg, id).await.map_err(env)? {
            Cancelled::Queued => println!("cancelled run {id} (it had not started)"),
            Cancelled::Asked => {
                // Its steps that no worker took yet end now; running ones stop at their workers.
                if let Err(e) = crate::worker::cancel_queued(&pg, id).await {
                    eprintln!("warning: cannot end the run's waiting steps ({e}); their workers end them");
                }
                println!("cancelling run {id}: its workers stop it now")
            }
            Cancelled::Ended(status) => {
                return Err(Failure::Invalid(format!(
                    "run `{id}` already ended ({status}); nothing to cancel"
                )))
            }
            Cancelled::NoSuchRun => {
                return Err(Failure::Invalid(format!(
                    "there is no run `{id}` in `{}`; list runs with `cometflow runs`",
                    pg.display()
                )))
            }
        }
        Ok(())
    })
}

pub fn workers() -> Outcome {
    super::runtime()?.block_on(async {
        let pg = Store::open().and_then(|s| s.shared("cometflow workers")).map_err(env)?;
        let list = queue::workers(&pg).await.map_err(env)?;
        if list.is_empty() {
            println!("no live workers; start one with `cometflow worker`");
            return Ok(());
        }
        let w = list.iter().map(|w| w.name.len()).max().unwrap_or(4).max(6);
        // RUNS: the runs it holds (walks, and records); STEPS: the steps it runs now, of
        // any run, out of its `--concurrency`.
        println!(
            "{:w$}  {:20}  {:>8}  {:>9}  {:22}  STEPS / RUNS",
            "WORKER", "HOST", "PID", "HEARTBEAT", "AT"
        );
        let list_of = |v: &[String]| if v.is_empty() { "-".to_owned() } else { v.join(", ") };
        for row in list {
            println!(
                "{:w$}  {:20}  {:>8}  {:>8.1}s  {:22}  steps {}/{}: {} / runs {}: {}",
                row.name,
                row.host,
                row.pid,
                row.heartbeat_age.as_secs_f64(),
                row.heartbeat_at,
                row.steps.len(),
                row.concurrency,
                list_of(&row.steps),
                row.runs.len(),
                list_of(&row.runs),
            );
        }
        Ok(())
    })
}

fn env(e: crate::store::StoreError) -> Failure {
    Failure::Environment(e.to_string())
}
