//! `cometflow watch`: runs, then runs again on every change to the pipeline file or a
//! watched glob; an invalid edit waits for the next save; Ctrl-C stops it.

use std::time::Duration;

use crate::child::Running;
use crate::harness::Test;

const PIPELINE: &str = r#"name: watched
on:
  watch: ["prompts/*.txt"]
steps:
  read: { run: "cat prompts/theme.txt" }
"#;

const FIRST_RUN: Duration = Duration::from_secs(30);
/// How long to wait for a re-run before calling it missing (not a latency goal: tests never
/// time anything; the debounce is 300 ms).
const RERUN: Duration = Duration::from_secs(20);
const FINISH: Duration = Duration::from_secs(20);

fn start() -> (Test, Running) {
    let t =
        Test::new().pipeline(PIPELINE).file("prompts/theme.txt", "rain\n").args(&["watch", "pipeline.yaml"]);
    let mut w = Running::start(&t);
    w.expect_line("run ", FIRST_RUN);
    w.expect_line("watching `pipeline.yaml` for changes", FIRST_RUN);
    (t, w)
}

/// Requires a new run to start after an edit, then to finish.
fn expect_rerun(w: &mut Running) {
    w.expect_line("cometflow: running `watched`", RERUN);
    w.expect_line("watching `pipeline.yaml` for changes", FINISH);
}

#[test]
fn reruns_when_a_watched_glob_file_changes() {
    let (t, mut w) = start();
    std::fs::write(t.path().join("prompts/theme.txt"), "snow\n").unwrap();
    let line = w.expect_line("changed; reloading", RERUN);
    assert!(line.contains("`prompts/theme.txt` changed"), "{line}");
    expect_rerun(&mut w);
    assert!(w.seen.iter().any(|l| l.contains("snow")), "{}", w.seen.join("\n"));
    w.signal(libc::SIGINT);
    let (code, _) = w.wait(FINISH);
    assert_eq!(code, 0, "stopped between runs");
}

#[test]
fn reruns_when_the_pipeline_file_changes() {
    let (t, mut w) = start();
    std::fs::write(t.path().join("pipeline.yaml"), PIPELINE.replace("cat ", "cat -n ")).unwrap();
    w.expect_line("`pipeline.yaml` changed; reloading", RERUN);
    expect_rerun(&mut w);
    // A file the globs do not name changes nothing.
    std::fs::write(t.path().join("notes.md"), "x").unwrap();
    w.signal(libc::SIGINT);
    let (code, seen) = w.wait(FINISH);
    assert_eq!(code, 0);
    assert!(!seen.iter().any(|l| l.contains("notes.md")), "{}", seen.join("\n"));
}

#[test]
fn an_invalid_edit_prints_the_diagnostic_and_a_later_save_runs_again() {
    let (t, mut w) = start();
    let file = t.path().join("pipeline.yaml");
    std::fs::write(&file, PIPELINE.replace("run:", "runn:")).unwrap();
    w.expect_line("error: pipeline.yaml:5:", RERUN);
    w.expect_line("fix `pipeline.yaml` and save; watching for changes", RERUN);
    std::fs::write(&file, PIPELINE).unwrap();
    expect_rerun(&mut w);
    w.signal(libc::SIGINT);
    assert_eq!(w.wait(FINISH).0, 0);
}

#[test]
fn ctrl_c_during_a_run_interrupts_it_and_exits_130() {
    let t = Test::new()
        .pipeline("name: slow\nsteps:\n  wait: { run: \"echo started; sleep 30\" }\n")
        .args(&["watch", "pipeline.yaml"]);
    let mut w = Running::start(&t);
    w.expect_line("started", FIRST_RUN);
    w.signal(libc::SIGINT);
    let (code, seen) = w.wait(FINISH);
    assert_eq!(code, 130, "{}", seen.join("\n"));
    assert!(seen.iter().any(|l| l.contains("interrupted")), "{}", seen.join("\n"));
}

#[test]
fn a_change_during_a_run_cancels_it_and_starts_a_new_one() {
    let yaml = "name: slow\nsteps:\n  wait: { run: \"echo started; sleep 30\" }\n";
    let t = Test::new().pipeline(yaml).args(&["watch", "pipeline.yaml"]);
    let mut w = Running::start(&t);
    w.expect_line("started", FIRST_RUN);
    std::fs::write(t.path().join("pipeline.yaml"), yaml.replace("started", "again")).unwrap();
    w.expect_line("cancelling the run in progress", RERUN);
    w.expect_line("interrupted", FINISH);
    w.expect_line("again", FINISH);
    w.signal(libc::SIGINT);
    assert_eq!(w.wait(FINISH).0, 130);
}

/// With `--simulate`, an edit to the last step re-runs it alone: the provider steps
/// before it answer from the cache, so they are not paid for again.
#[test]
fn only_changed_steps_call_the_api_again() {
    let yaml = r#"name: cached
steps:
  song:
    uses: suno.music
    poll: { interval: 100ms, max_interval: 200ms }
    with: { prompt: "la la", tags: pop }
  tell:
    run: echo "song at {{ steps.song.outputs.audio | basename }}"
"#;
    let t = Test::new().pipeline(yaml).env("COMETFLOW_SIM", "task_time=300ms").args(&[
        "watch",
        "pipeline.yaml",
        "--simulate",
    ]);
    let mut w = Running::start(&t);
    w.expect_line("watching `pipeline.yaml` for changes", FIRST_RUN);
    std::fs::write(t.path().join("pipeline.yaml"), yaml.replace("song at", "the song is at")).unwrap();
    w.expect_line("cometflow: running `cached`", RERUN);
    // The summary row of the unchanged provider step says it came from the cache.
    let row = w.expect_line("(cached)", FINISH);
    assert!(row.contains("suno.music"), "{row}");
    w.expect_line("watching `pipeline.yaml` for changes", FINISH);
    w.signal(libc::SIGINT);
    let (code, seen) = w.wait(FINISH);
    assert_eq!(code, 0);
    assert!(seen.iter().any(|l| l.contains("the song is at audio.mp3")), "{}", seen.join("\n"));
}
