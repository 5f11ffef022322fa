//! `cometflow sim`: serves the built-in CometAPI simulator until Ctrl-C.

use crate::error::{Failure, Outcome};
use crate::sim::SimArgs;

pub fn sim(args: SimArgs) -> Outcome {
    let port = args.port;
    super::runtime()?.block_on(crate::sim::run_cli(args)).map_err(|e| {
        Failure::Environment(format!(
            "cannot serve the simulator on 127.0.0.1:{port}: {e}; pick another port with `--port`"
        ))
    })
}
