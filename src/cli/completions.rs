//! `cometflow completions SHELL`: shell completion scripts generated from the clap types.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::Cli;
use crate::error::Outcome;

pub const AFTER_HELP: &str = "\
Install, for example:
  bash:  cometflow completions bash > ~/.local/share/bash-completion/completions/cometflow
  zsh:   cometflow completions zsh > ~/.zfunc/_cometflow   (with fpath+=~/.zfunc before compinit)
  fish:  cometflow completions fish > ~/.config/fish/completions/cometflow.fish";

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn completions(args: CompletionsArgs) -> Outcome {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "cometflow", &mut std::io::stdout());
    Ok(())
}
