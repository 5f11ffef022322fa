//! `cometflow validate FILE...`

use std::path::PathBuf;

use clap::Args;

use super::{exit, report_diagnostics};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Pipeline files to check
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub fn validate(args: ValidateArgs) -> i32 {
    let registry = crate::registry();
    let mut ok = true;
    for file in &args.files {
        match crate::load_plan(file, &registry) {
            Ok(plan) => eprintln!("{}: ok ({} steps)", file.display(), plan.pipeline.steps.len()),
            Err(diags) => {
                ok = false;
                report_diagnostics(&diags);
            }
        }
    }
    if ok {
        exit::OK
    } else {
        exit::INVALID
    }
}
