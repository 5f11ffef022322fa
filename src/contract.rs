//! The step contract: what a step kind is, what it is given and what it may answer.
//!
//! Every other part of the core depends on this module and it depends on none of them: the
//! engine drives kinds only through [`StepKind`], the kinds (`steps`) implement it, and the
//! HTTP client (`api`) works inside a [`StepCtx`]. Events, the task journal and the budget
//! are seams here, so a kind can report and record without knowing who listens.
//!
//! It must not import anything else of the crate.

mod budget;
mod ctx;
mod error;
mod events;
pub mod secrets;
mod spec;

pub use budget::Budget;
pub use ctx::{durable, Durable, PollPolicy, StepCtx, StepIdx, TaskJournal, UnknownSubmit};
pub use error::{ErrorKind, StepError};
pub use events::{Event, EventRx, EventSink, EventTx, Status, Stream};
pub use spec::{FieldSpec, FieldType, KindSpec};

use futures::future::BoxFuture;
use serde_json::Value as Json;

/// A step kind at run time: what `uses:` names, as the engine sees it.
pub trait StepKind: Send + Sync + 'static {
    fn spec(&self) -> &KindSpec;

    /// Runs once with the rendered `with` (already checked against [`KindSpec::check`]);
    /// returns the step's outputs (a JSON object).
    fn execute<'a>(&'a self, ctx: &'a StepCtx, with: Json) -> BoxFuture<'a, Result<Json, StepError>>;
}
