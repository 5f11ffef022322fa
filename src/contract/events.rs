//! What a run tells the world: every reporter (human, JSON, state store) listens to these.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::StepIdx;

/// Where events go; the engine's is a channel to its reporters.
pub trait EventSink: Send + Sync {
    fn emit(&self, event: Event);
}

pub type EventTx = tokio::sync::mpsc::UnboundedSender<Event>;
pub type EventRx = tokio::sync::mpsc::UnboundedReceiver<Event>;

impl EventSink for EventTx {
    fn emit(&self, event: Event) {
        // What a kind says is data from outside (a script, a server): never a secret.
        let event = match event {
            Event::Log { step, item, stream, line } => {
                Event::Log { step, item, stream, line: super::secrets::redact(&line).into_owned() }
            }
            Event::Progress { step, item, message } => {
                Event::Progress { step, item, message: super::secrets::redact(&message).into_owned() }
            }
            other => other,
        };
        // A reporter that went away (the run is ending) misses nothing it needed.
        let _ = self.send(event);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Succeeded,
    Failed,
    Skipped,
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone)]
pub enum Event {
    /// A step (or one `for_each` item) began its first attempt.
    Started {
        step: StepIdx,
        item: Option<usize>,
    },
    Log {
        step: StepIdx,
        item: Option<usize>,
        stream: Stream,
        line: String,
    },
    Progress {
        step: StepIdx,
        item: Option<usize>,
        message: String,
    },
    Retrying {
        step: StepIdx,
        item: Option<usize>,
        attempt: u32,
        delay: Duration,
        error: String,
    },
    TaskSubmitted {
        step: StepIdx,
        item: Option<usize>,
        family: String,
        task_id: String,
    },
    Finished {
        step: StepIdx,
        status: Status,
        duration: Duration,
        attempts: u32,
        error: Option<String>,
    },
    /// Ctrl-C was pressed: in-flight steps are being cancelled.
    Interrupting,
}
