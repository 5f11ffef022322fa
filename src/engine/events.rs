//! What the engine tells the world. The event types belong to the step contract (kinds
//! emit them too); they are named here for the reporters that listen to the engine.

pub use crate::contract::{Event, EventRx, EventTx, Status, Stream};
