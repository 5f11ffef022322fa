//! One integration test binary: every test drives the real `cometflow` binary.

mod harness;

mod errors;
mod examples;
mod init;
mod media;
mod report;
mod run;
mod schema;
mod shell;
mod sim;
