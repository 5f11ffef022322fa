//! One integration test binary: every test drives the real `cometflow` binary.

mod harness;

mod errors;
mod examples;
mod media;
mod run;
mod schema;
mod shell;
mod sim;
