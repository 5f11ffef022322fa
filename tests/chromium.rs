//! Debian's headless chromium for the tests that need a real browser: the flags that keep
//! it offline and quiet, a throwaway profile, and its log on stderr.

use std::path::Path;
use std::process::{Child, Command, Stdio};

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Fails the test, saying how to install it, when there is no browser to run.
pub fn require() {
    assert!(
        Path::new(CHROMIUM).is_file(),
        "`{CHROMIUM}` is missing: this test needs a real browser; install it with `apt-get install chromium`"
    );
}

/// Starts headless chromium on `page` with `flags` besides the common ones, its stderr
/// (the log, console messages included) piped. The profile must live as long as the child.
pub fn start(page: &Path, flags: &[&str]) -> (Child, tempfile::TempDir) {
    let profile = tempfile::tempdir().unwrap();
    let child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .args(flags)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, profile)
}
