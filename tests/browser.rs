//! The report in a real browser: Debian's headless chromium loads it from disk with no
//! network, logs no console message (a CSP violation, a blocked script or load would
//! show as one), and leaves a screenshot in `target/test-artifacts/report.png` to look at.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::chromium;
use crate::report::{check_report, report, showcase};

#[test]
fn the_report_renders_in_headless_chromium_without_console_errors() {
    chromium::require();
    let t = showcase().args(&["run", "pipeline.yaml"]);
    t.expect(1);
    let page = report(&t, &["last"]);
    check_report(&page);

    let artifacts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("report.png");
    let _ = std::fs::remove_file(&shot);
    let shot_flag = format!("--screenshot={}", shot.display());
    let (mut child, _profile) =
        chromium::start(&page, &["--hide-scrollbars", "--window-size=1280,2000", &shot_flag]);
    // Read stderr on a thread so a chatty browser cannot block on a full pipe.
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).unwrap();
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = reader.join().unwrap();
    assert!(status.success(), "chromium failed ({status}):\n{log}");

    // Chromium logs every console message, CSP violations included, as `...:CONSOLE...`.
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "the page logged to the console:\n{}", console.join("\n"));
    let png =
        std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot at {}: {e}\n{log}", shot.display()));
    assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000, "the screenshot looks empty");
}
