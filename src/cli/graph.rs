//! `cometflow graph FILE --format text|mermaid|dot`

use clap::Args;

use super::{exit, report_diagnostics, FileArg};
use crate::plan::Format;

#[derive(Debug, Args)]
pub struct GraphArgs {
    #[command(flatten)]
    pub file: FileArg,
    /// How to draw it
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn graph(args: GraphArgs) -> i32 {
    match crate::load_plan(&args.file.file, &crate::registry()) {
        Ok(plan) => {
            print!("{}", plan.render(args.format));
            exit::OK
        }
        Err(diags) => {
            report_diagnostics(&diags);
            exit::INVALID
        }
    }
}
