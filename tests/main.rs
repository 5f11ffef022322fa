//! One integration test binary: every test drives the real `cometflow` binary.

mod child;
mod harness;

mod api;

mod browser;
mod errors;
mod examples;
mod init;
mod kinds;
mod media;
mod progress;
mod report;
mod run;
mod schedule;
mod schema;
mod shell;
mod sim;
mod watch;
