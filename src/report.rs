//! Human output on stderr: each step's start and end as it happens, then a summary table.
//! (The JSON result goes to stdout from `cli::run`; both read the same events and record.)
//!
//! On a terminal the running steps are drawn as a live block (`live`); elsewhere, with
//! `--quiet` or under `CI`, every event is one plain line, which logs and tests can read.

mod live;

use std::io::Write;
use std::sync::Arc;

use crate::engine::events::{Event, EventRx, Status, Stream};
use crate::engine::record::RunRecord;
use crate::engine::RunStatus;
use crate::model::Pipeline;

/// How much the human reporter says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

pub struct Human {
    pipeline: Arc<Pipeline>,
    verbosity: Verbosity,
    color: bool,
}

pub(crate) struct Paint(pub(crate) bool);

impl Paint {
    fn wrap(&self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    pub(crate) fn green(&self, t: &str) -> String {
        self.wrap("32", t)
    }
    pub(crate) fn red(&self, t: &str) -> String {
        self.wrap("31", t)
    }
    pub(crate) fn yellow(&self, t: &str) -> String {
        self.wrap("33", t)
    }
    pub(crate) fn dim(&self, t: &str) -> String {
        self.wrap("2", t)
    }
    pub(crate) fn bold(&self, t: &str) -> String {
        self.wrap("1", t)
    }
}

impl Human {
    pub fn new(pipeline: Arc<Pipeline>, verbosity: Verbosity) -> Self {
        Human { pipeline, verbosity, color: crate::diag::color_stderr() }
    }

    fn label(&self, step: usize, item: Option<usize>) -> String {
        let id = &self.pipeline.steps[step].id;
        match item {
            Some(i) => format!("{id}[{i}]"),
            None => id.clone(),
        }
    }

    /// Whether to draw the live block: stderr is a terminal, not `--quiet`, not under `CI`.
    fn live(&self) -> bool {
        use std::io::IsTerminal;
        self.verbosity != Verbosity::Quiet
            && std::io::stderr().is_terminal()
            && std::env::var_os("CI").is_none_or(|v| v.is_empty())
    }

    /// Prints events until the engine drops its sender.
    pub async fn consume(self, mut rx: EventRx) {
        if self.live() {
            return live::consume(self, rx).await;
        }
        let stderr = std::io::stderr();
        while let Some(ev) = rx.recv().await {
            if let Some(line) = self.line(terminal_safe_event(ev)) {
                let _ = writeln!(stderr.lock(), "{line}");
            }
        }
    }

    /// The plain line for an event, if this verbosity shows it.
    fn line(&self, ev: Event) -> Option<String> {
        let p = Paint(self.color);
        match ev {
            _ if self.verbosity == Verbosity::Quiet => match ev {
                Event::Finished { step, status: Status::Failed, error, .. } => Some(format!(
                    "{} {} failed: {}",
                    p.red("✗"),
                    self.label(step, None),
                    error.unwrap_or_default()
                )),
                _ => None,
            },
            Event::Started { step, item } => Some(format!(
                "{} {} {}",
                p.dim("▶"),
                self.label(step, item),
                p.dim(&self.pipeline.steps[step].uses)
            )),
            Event::Log { step, item, stream, line } => {
                let bar = if stream == Stream::Stderr { p.yellow("│") } else { p.dim("│") };
                Some(format!("  {} {bar} {line}", p.dim(&self.label(step, item))))
            }
            Event::Progress { step, item, message } => {
                Some(format!("  {} {}", self.label(step, item), p.dim(&message)))
            }
            Event::Retrying { step, item, attempt, delay, error } => Some(format!(
                "{} {} attempt {attempt} failed: {error}; retrying in {}",
                p.yellow("↻"),
                self.label(step, item),
                crate::engine::human_duration(delay)
            )),
            Event::TaskSubmitted { step, item, family, task_id } => (self.verbosity == Verbosity::Verbose)
                .then(|| format!("  {} submitted {family} task {task_id}", self.label(step, item))),
            Event::Finished { step, status, duration, error, .. } => {
                let label = self.label(step, None);
                let took = crate::engine::human_duration(duration);
                Some(match status {
                    Status::Succeeded => format!("{} {label} succeeded in {took}", p.green("✓")),
                    Status::Failed => {
                        format!("{} {label} failed in {took}: {}", p.red("✗"), error.unwrap_or_default())
                    }
                    Status::Skipped => {
                        format!("{} {label} skipped: {}", p.dim("↷"), error.unwrap_or_default())
                    }
                    Status::Cancelled => format!("{} {label} cancelled", p.yellow("■")),
                })
            }
            Event::Interrupting => Some(format!(
                "{} interrupting: cancelling running steps (press Ctrl-C again to quit at once)",
                p.yellow("■")
            )),
        }
    }
}

/// Text from outside (a model, a script, a server) made safe to print on a terminal: control
/// characters (ANSI and OSC escapes, carriage returns, bells) and bidirectional overrides are
/// shown as `\u{1b}`-style escapes, so output cannot retitle the terminal, hide lines or
/// write links. Tabs pass.
pub fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        (c.is_control() && c != '\t')
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    };
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// An event with its outside text made [`terminal_safe`].
pub(crate) fn terminal_safe_event(ev: Event) -> Event {
    let safe = |s: String| terminal_safe(&s).into_owned();
    match ev {
        Event::Log { step, item, stream, line } => Event::Log { step, item, stream, line: safe(line) },
        Event::Progress { step, item, message } => Event::Progress { step, item, message: safe(message) },
        Event::Retrying { step, item, attempt, delay, error } => {
            Event::Retrying { step, item, attempt, delay, error: safe(error) }
        }
        Event::Finished { step, status, duration, attempts, error } => {
            Event::Finished { step, status, duration, attempts, error: error.map(safe) }
        }
        Event::TaskSubmitted { step, item, family, task_id } => {
            Event::TaskSubmitted { step, item, family, task_id: safe(task_id) }
        }
        other => other,
    }
}

/// The closing table: one row per step, then the run's status.
pub fn summary(record: &RunRecord, color: bool) -> String {
    let p = Paint(color);
    let id_w = record.steps.keys().map(String::len).max().unwrap_or(4).max(4);
    let kind_w = record.steps.values().map(|s| s.kind.len()).max().unwrap_or(4).max(4);
    let mut out = String::new();
    out.push_str(&format!(
        "\n  {:id_w$}  {:kind_w$}  {:9}  {:>8}  {:>8}\n",
        "step", "kind", "status", "attempts", "time"
    ));
    for (id, s) in &record.steps {
        let status = format!("{:9}", s.status.as_str());
        let status = match s.status {
            Status::Succeeded => p.green(&status),
            Status::Failed => p.red(&status),
            Status::Skipped => p.dim(&status),
            Status::Cancelled => p.yellow(&status),
        };
        let cached = if s.cached { " (cached)" } else { "" };
        out.push_str(&format!(
            "  {id:id_w$}  {:kind_w$}  {status}  {:>8}  {:>8}{cached}\n",
            s.kind,
            s.attempts,
            crate::engine::human_duration(s.duration_ms)
        ));
    }
    let took = crate::engine::human_duration(record.duration_ms);
    let verdict = match record.status {
        RunStatus::Succeeded => p.green("succeeded"),
        RunStatus::Failed => p.red("failed"),
        RunStatus::Interrupted => p.yellow("was interrupted"),
    };
    out.push_str(&format!("\n{} {} {verdict} in {took}\n", p.bold("run"), record.run_id));
    for (name, value) in &record.outputs {
        let text = match value {
            serde_json::Value::String(s) => terminal_safe(s).into_owned(),
            other => other.to_string(),
        };
        out.push_str(&format!("  {name}: {text}\n"));
    }
    out.push_str(&format!("  {}\n", p.dim(&format!("files: {}", record.run_dir))));
    out
}
