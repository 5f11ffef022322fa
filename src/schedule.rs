//! The scheduler: starts pipelines at the fire times of their checked triggers
//! (`crate::trigger`). Its decisions are pure functions of instants, tested without
//! waiting; only `daemon` reads the clock and sleeps.

pub(crate) mod clock;
pub mod daemon;
pub mod policy;
pub mod record;

pub use crate::trigger::{cron, next_fires, CatchUp, Overlap, Trigger};
