//! One integration test binary: every test drives the real `cometflow` binary.

mod harness;

mod api;

mod browser;
mod errors;
mod examples;
mod media;
mod report;
mod run;
mod shell;
mod sim;
