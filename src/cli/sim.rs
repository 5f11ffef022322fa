//! `cometflow sim`: serves the built-in CometAPI simulator until Ctrl-C.

use super::exit;
use crate::sim::SimArgs;

pub fn sim(args: SimArgs) -> i32 {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::FAILED;
        }
    };
    let port = args.port;
    match runtime.block_on(crate::sim::run_cli(args)) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!(
                "error: cannot serve the simulator on 127.0.0.1:{port}: {e}; pick another port with `--port`"
            );
            exit::FAILED
        }
    }
}
