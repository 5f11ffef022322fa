//! A failed attempt, typed so the engine can decide what to do without reading prose.

use std::time::Duration;

use serde_json::Value as Json;

/// Why an attempt failed, for callers that branch on it (the message is for people).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The kind's own failure: a provider refused or failed the task, a command exited non-zero.
    #[default]
    Failed,
    /// The rendered `with` does not fit the kind's fields.
    Input,
    /// The run's `budget.calls` refused the call.
    Budget,
    /// The attempt ran past the step's `timeout:`.
    Timeout,
    /// The environment is unusable for this kind (no API key, an unwritable folder).
    Environment,
}

/// A failed attempt. `retryable` says whether trying again is safe and may help.
#[derive(Debug, Clone)]
pub struct StepError {
    pub kind: ErrorKind,
    pub message: String,
    pub retryable: bool,
    /// The server asked to wait this long before trying again (`Retry-After`).
    pub retry_after: Option<Duration>,
    /// What the step produced before failing (a shell step's stdout and exit code).
    pub outputs: Option<Json>,
}

impl StepError {
    pub fn fatal(message: impl Into<String>) -> Self {
        StepError {
            kind: ErrorKind::Failed,
            message: message.into(),
            retryable: false,
            retry_after: None,
            outputs: None,
        }
    }

    pub fn retryable(message: impl Into<String>) -> Self {
        StepError { retryable: true, ..StepError::fatal(message) }
    }

    pub fn kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    pub fn retry_after(mut self, wait: Option<Duration>) -> Self {
        self.retry_after = wait;
        self
    }

    pub fn with_outputs(mut self, outputs: Json) -> Self {
        self.outputs = Some(outputs);
        self
    }
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StepError {}
