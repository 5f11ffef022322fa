//! cometflow: run YAML pipelines of generative-AI calls as a concurrent DAG.
//!
//! The stages, each returning a new type: YAML text -> `syntax::RawPipeline` ->
//! `validate` -> `model::Pipeline` -> `plan::Plan` -> `engine::execute` -> `RunRecord`.

pub mod api;
pub mod catalog;
pub mod cli;
pub mod contract;
pub mod diag;
pub mod engine;
pub mod error;
mod html;
pub mod media;
pub mod model;
pub mod plan;
pub mod report;
pub mod runner;
pub mod schedule;
pub mod schema;
pub mod sim;
pub mod source;
pub mod steps;
pub mod store;
pub mod syntax;
pub mod template;
pub mod trigger;
pub mod validate;
pub mod watch;
pub mod worker;

use std::path::Path;

use clap::Parser;

use crate::diag::Diagnostic;
use crate::plan::Plan;
use crate::steps::Registry;

/// Reads, validates and plans a pipeline file.
pub fn load_plan(path: &Path, registry: &Registry) -> Result<Plan, Vec<Diagnostic>> {
    let pipeline = validate::load(path, registry)?;
    Plan::build(pipeline).map_err(|d| vec![d])
}

/// The whole program: parse arguments, set up logging, run the command, return the exit code.
pub fn run() -> i32 {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { error::code::INVALID } else { error::code::OK };
        }
    };
    init_logging(cli.output.verbose);
    let outcome = cli::dispatch(cli);
    error::report(&outcome);
    error::exit_code(&outcome)
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "cometflow=debug,warn",
        _ => "cometflow=trace,info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
}
