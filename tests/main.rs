//! One integration test binary: every test drives the real `cometflow` binary.

mod child;
mod harness;

mod api;

mod browser;
mod errors;
mod examples;
mod media;
mod report;
mod run;
mod schedule;
mod shell;
mod sim;
mod watch;
