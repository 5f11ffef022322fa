//! The human reporter off a terminal (pipes, `CI`, `--quiet`): plain lines, no cursor codes.

use crate::harness::Test;

const PIPELINE: &str = "name: plain
steps:
  first:
    run: echo hello
  second:
    run: echo oops >&2; exit 3
";

#[test]
fn off_a_terminal_each_event_is_one_plain_line() {
    let out = Test::new().pipeline(PIPELINE).args(&["run", "pipeline.yaml"]).env("CI", "").expect(1);
    assert!(!out.stderr.contains('\x1b'), "{:?}", out.stderr);
    for line in [
        "▶ first shell",
        "  first │ hello",
        "✓ first succeeded in ",
        "  second │ oops",
        "✗ second failed in ",
    ] {
        assert!(out.stderr.lines().any(|l| l.starts_with(line)), "no `{line}` in\n{}", out.stderr);
    }
}

#[test]
fn quiet_says_only_what_failed() {
    let out = Test::new().pipeline(PIPELINE).args(&["run", "pipeline.yaml", "--quiet"]).expect(1);
    assert_eq!(out.stderr, "✗ second failed: the command failed with exit code 3: oops\n");
}
