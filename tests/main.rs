//! One integration test binary: every test drives the real `cometflow` binary.

mod harness;

mod api;

mod errors;
mod examples;
mod media;
mod run;
mod shell;
mod sim;
