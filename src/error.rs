//! How a command ends when it does not succeed, typed, and the one mapping from that to
//! the process's exit status. Commands return [`Outcome`]; only [`exit_code`] turns it
//! into a number, so the same failure exits the same way from every command.

use std::fmt;

/// Exit statuses, documented in the README and `--help`.
pub mod code {
    pub const OK: i32 = 0;
    /// A step failed (the run is recorded and can be resumed), or a command's own work
    /// failed: a report could not be written, the balance could not be read.
    pub const FAILED: i32 = 1;
    /// The pipeline or the command line is invalid; nothing was run.
    pub const INVALID: i32 = 2;
    /// The environment cannot run it: no API key, an unusable state store, the simulator
    /// or the file watcher could not start. Nothing was run (or the daemon stopped).
    pub const ENVIRONMENT: i32 = 3;
    /// Interrupted (Ctrl-C); the run can be resumed.
    pub const INTERRUPTED: i32 = 130;
}

/// Why a command did not succeed. The message (when there is one) is printed once, by the
/// caller of [`exit_code`]; an empty one means the command already said everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Failed(String),
    Invalid(String),
    Environment(String),
    Interrupted,
}

impl Failure {
    /// The command already printed why (diagnostics, a run summary).
    pub fn invalid_reported() -> Self {
        Failure::Invalid(String::new())
    }

    pub fn failed_reported() -> Self {
        Failure::Failed(String::new())
    }

    pub fn message(&self) -> &str {
        match self {
            Failure::Failed(m) | Failure::Invalid(m) | Failure::Environment(m) => m,
            Failure::Interrupted => "",
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Failure {}

pub type Outcome = Result<(), Failure>;

/// The exit status of a command's outcome: decided here and nowhere else.
pub fn exit_code(outcome: &Outcome) -> i32 {
    match outcome {
        Ok(()) => code::OK,
        Err(Failure::Failed(_)) => code::FAILED,
        Err(Failure::Invalid(_)) => code::INVALID,
        Err(Failure::Environment(_)) => code::ENVIRONMENT,
        Err(Failure::Interrupted) => code::INTERRUPTED,
    }
}

/// Prints a failure's message as `error: ...` (unless the command already reported it).
pub fn report(outcome: &Outcome) {
    if let Err(f) = outcome {
        let m = f.message();
        if !m.is_empty() {
            if m.starts_with("error:") || m.starts_with("warning:") {
                eprintln!("{m}");
            } else {
                eprintln!("error: {m}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_one_exit_status() {
        assert_eq!(exit_code(&Ok(())), 0);
        assert_eq!(exit_code(&Err(Failure::Failed("x".into()))), 1);
        assert_eq!(exit_code(&Err(Failure::invalid_reported())), 2);
        assert_eq!(exit_code(&Err(Failure::Environment("no key".into()))), 3);
        assert_eq!(exit_code(&Err(Failure::Interrupted)), 130);
    }
}
