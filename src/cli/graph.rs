//! `cometflow graph FILE --format text|mermaid|dot`

use clap::Args;

use super::FileArg;
use crate::error::{Failure, Outcome};
use crate::plan::Format;

#[derive(Debug, Args)]
pub struct GraphArgs {
    #[command(flatten)]
    pub file: FileArg,
    /// How to draw it
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn graph(args: GraphArgs) -> Outcome {
    let plan = crate::load_plan(&args.file.file, &super::registry()).map_err(|diags| {
        crate::diag::report(&diags);
        Failure::invalid_reported()
    })?;
    print!("{}", plan.render(args.format));
    Ok(())
}
