//! One integration test binary: every test drives the real `cometflow` binary.

mod child;
mod chromium;
mod harness;
mod paid;
mod pg;

mod api;
mod balance;

mod browser;
mod cache;
mod errors;
mod examples;
mod fleet;
mod history;
mod init;
mod kinds;
mod media;
mod media_browser;
mod progress;
mod realtime;
mod repoll;
mod report;
mod resume;
mod run;
mod runs;
mod schedule;
mod schema;
mod security;
mod shapes;
mod shell;
mod sim;
mod streaming;
mod watch;
mod workflows;
