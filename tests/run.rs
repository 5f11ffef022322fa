//! Running pipelines: concurrency, outputs, types, fan-out, conditions, failures, retries.

use serde_json::json;

use crate::harness::Test;

/// ```text
///   a   b   c      three independent 1 s steps
/// ```
#[test]
fn independent_steps_run_at_the_same_time() {
    let t = Test::new()
        .pipeline(
            "name: parallel
steps:
  a: { run: sleep 1 }
  b: { run: sleep 1 }
  c: { run: sleep 1 }
",
        )
        .args(&["run", "pipeline.yaml", "--json"]);
    let out = t.expect(0);
    let steps = &out.json()["steps"];
    // Every step started before any finished: they overlapped.
    let first_end = ["a", "b", "c"].iter().map(|s| steps[s]["finished_at"].as_str().unwrap()).min().unwrap();
    for s in ["a", "b", "c"] {
        assert!(steps[s]["started_at"].as_str().unwrap() < first_end, "{s} started after another finished");
    }
}

#[test]
fn the_concurrency_flag_limits_steps_in_flight() {
    let t = Test::new()
        .pipeline(
            "name: serial
steps:
  a: { run: sleep 0.3 }
  b: { run: sleep 0.3 }
",
        )
        .args(&["run", "pipeline.yaml", "--json", "--concurrency", "1"]);
    let out = t.expect(0);
    let steps = &out.json()["steps"];
    let (a, b) = (&steps["a"], &steps["b"]);
    let overlap = a["started_at"].as_str() < b["finished_at"].as_str()
        && b["started_at"].as_str() < a["finished_at"].as_str();
    assert!(!overlap, "with --concurrency 1 the steps overlapped: {steps}");
}

/// ```text
///   greet -> shout -> report
/// ```
#[test]
fn outputs_flow_from_step_to_step() {
    let t = Test::new()
        .pipeline(
            r#"name: chain
inputs:
  who: { default: world }
steps:
  greet:
    uses: value
    with: { text: "hello {{ inputs.who }}" }
  shout:
    run: echo "{{ steps.greet.outputs.text | upper }}"
  report:
    uses: value
    with: { said: "{{ steps.shout.outputs.stdout }}" }
outputs:
  said: "{{ steps.report.outputs.said }}"
"#,
        )
        .args(&["run", "pipeline.yaml", "--json", "-i", "who=cometflow"]);
    let out = t.expect(0).json();
    assert_eq!(out["status"], "succeeded");
    assert_eq!(out["outputs"]["said"], "HELLO COMETFLOW");
    assert_eq!(out["steps"]["greet"]["outputs"]["text"], "hello cometflow");
}

#[test]
fn a_single_expression_keeps_its_type() {
    let t = Test::new()
        .pipeline(
            r#"name: types
inputs:
  n: { default: 2 }
steps:
  a:
    uses: value
    with:
      list: "{{ range(inputs.n) | list }}"
      number: "{{ inputs.n * 10 }}"
      map: "{{ {'k': inputs.n} }}"
      flag: "{{ inputs.n > 1 }}"
      text: "n is {{ inputs.n }}"
  b:
    uses: value
    with:
      first: "{{ steps.a.outputs.list[0] }}"
      sum: "{{ steps.a.outputs.number + 1 }}"
"#,
        )
        .args(&["run", "pipeline.yaml", "--json", "-i", "n=3"]);
    let out = t.expect(0).json();
    assert_eq!(
        out["steps"]["a"]["outputs"],
        json!({"list": [0, 1, 2], "number": 30, "map": {"k": 3}, "flag": true, "text": "n is 3"})
    );
    assert_eq!(out["steps"]["b"]["outputs"], json!({"first": 0, "sum": 31}));
}

#[test]
fn for_each_runs_items_concurrently_and_keeps_their_order() {
    // Later items finish first; outputs must still be in item order.
    let t = Test::new()
        .pipeline(
            r#"name: fan
steps:
  clip:
    for_each: [0.6, 0.4, 0.2, 0]
    run: sleep {{ item }}; echo "item {{ index }}"
  joined:
    uses: value
    with: { all: "{{ steps.clip.outputs | map(attribute='stdout') | join(',') }}" }
"#,
        )
        .args(&["run", "pipeline.yaml", "--json"]);
    let out = t.expect(0).json();
    assert_eq!(out["steps"]["joined"]["outputs"]["all"], "item 0,item 1,item 2,item 3");
    assert_eq!(out["steps"]["clip"]["outputs"].as_array().unwrap().len(), 4);
}

#[test]
fn a_false_if_skips_the_step_and_the_steps_that_need_it() {
    let t = Test::new()
        .pipeline(
            r#"name: cond
inputs:
  publish: { default: false }
steps:
  build: { uses: value, with: { x: 1 } }
  upload:
    if: "{{ inputs.publish }}"
    run: echo uploading {{ steps.build.outputs.x }}
  announce:
    run: echo "{{ steps.upload.outputs.stdout }}"
  report:
    if: "{{ steps.upload.status == 'skipped' }}"
    run: echo not published
"#,
        )
        .args(&["run", "pipeline.yaml", "--json"]);
    let out = t.expect(0).json();
    assert_eq!(out["steps"]["upload"]["status"], "skipped");
    assert_eq!(out["steps"]["announce"]["status"], "skipped");
    assert_eq!(out["steps"]["report"]["status"], "succeeded");
    assert_eq!(out["steps"]["report"]["outputs"]["stdout"], "not published");

    let out = t.args(&["-i", "publish=true"]).expect(0).json();
    assert_eq!(out["steps"]["upload"]["outputs"]["stdout"], "uploading 1");
    assert_eq!(out["steps"]["report"]["status"], "skipped");
}

#[test]
fn a_failed_step_exits_1_and_skips_its_dependents_but_not_other_branches() {
    let t = Test::new()
        .pipeline(
            r#"name: fail
steps:
  broken: { run: "echo oops >&2; exit 3" }
  after: { run: echo never, needs: [broken] }
  other: { run: echo fine }
"#,
        )
        .args(&["run", "pipeline.yaml", "--json"]);
    let out = t.expect(1);
    let json = out.json();
    assert_eq!(json["status"], "failed");
    assert_eq!(json["steps"]["broken"]["status"], "failed");
    assert_eq!(json["steps"]["broken"]["outputs"]["exit_code"], 3);
    assert!(json["steps"]["broken"]["error"].as_str().unwrap().contains("exit code 3: oops"));
    assert_eq!(json["steps"]["after"]["status"], "skipped");
    assert_eq!(json["steps"]["other"]["status"], "succeeded");
    assert!(out.stderr.contains("broken failed"), "{}", out.stderr);
}

#[test]
fn continue_on_error_lets_dependents_run_and_read_the_status() {
    let t = Test::new()
        .pipeline(
            r#"name: tolerant
steps:
  flaky: { run: exit 1, continue_on_error: true }
  fallback:
    run: echo "flaky was {{ steps.flaky.status }}"
"#,
        )
        .args(&["run", "pipeline.yaml", "--json"]);
    let out = t.expect(0).json();
    assert_eq!(out["steps"]["flaky"]["status"], "failed");
    assert_eq!(out["steps"]["fallback"]["outputs"]["stdout"], "flaky was failed");
}

#[test]
fn failing_attempts_are_retried_with_backoff() {
    let t = Test::new()
        .pipeline(
            r#"name: retry
steps:
  eventually:
    retry: { attempts: 3, backoff: 10ms }
    run: |
      n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count
      [ "$n" -ge 3 ] && echo "ok on $n"
"#,
        )
        .args(&["run", "pipeline.yaml", "--json"]);
    let out = t.expect(0);
    let json = out.json();
    assert_eq!(json["steps"]["eventually"]["attempts"], 3);
    assert_eq!(json["steps"]["eventually"]["outputs"]["stdout"], "ok on 3");
    assert!(out.stderr.contains("attempt 1 failed"), "{}", out.stderr);
}

#[test]
fn a_step_that_outlives_its_timeout_fails() {
    let t = Test::new().pipeline("name: slow\nsteps:\n  nap: { run: sleep 10, timeout: 200ms }\n").args(&[
        "run",
        "pipeline.yaml",
        "--json",
    ]);
    let out = t.expect(1).json();
    assert!(out["steps"]["nap"]["error"].as_str().unwrap().contains("timed out after 200ms"));
}

#[test]
fn the_run_directory_holds_a_folder_per_step_and_run_json() {
    let t = Test::new()
        .pipeline("name: files\nsteps:\n  write: { run: echo hi > \"$COMETFLOW_STEP_DIR/out.txt\" }\n")
        .args(&["run", "pipeline.yaml", "--json"]);
    let out = t.expect(0).json();
    let run_dir = std::path::PathBuf::from(out["run_dir"].as_str().unwrap());
    assert!(run_dir.starts_with(t.state_dir().join("runs")), "{run_dir:?}");
    assert_eq!(std::fs::read_to_string(run_dir.join("write/out.txt")).unwrap(), "hi\n");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(saved["run_id"], out["run_id"]);
}

#[test]
fn chained_steps_each_find_their_folder_and_a_step_that_never_runs_leaves_none() {
    // Each step's folder exists when its command starts, and one step's files never reach
    // the next one's folder.
    let t = Test::new()
        .pipeline(
            r#"name: folders
steps:
  a: { run: test -d "$COMETFLOW_STEP_DIR" && touch "$COMETFLOW_STEP_DIR/a" }
  b: { run: test -d "$COMETFLOW_STEP_DIR" && ls -A "$COMETFLOW_STEP_DIR", needs: [a] }
  c: { run: exit 3, needs: [b] }
  d: { run: "true", needs: [c] }
  e: { run: "true", needs: [d] }
"#,
        )
        .args(&["run", "pipeline.yaml", "--json"]);
    let out = t.expect(1).json();
    assert_eq!(out["steps"]["b"]["status"], "succeeded", "{out}");
    assert_eq!(out["steps"]["b"]["outputs"]["stdout"], "");
    assert_eq!(out["steps"]["d"]["status"], "skipped");
    let run_dir = std::path::PathBuf::from(out["run_dir"].as_str().unwrap());
    for ran in ["a", "b", "c"] {
        assert!(run_dir.join(ran).is_dir(), "{ran}");
    }
    for skipped in ["d", "e"] {
        assert!(!run_dir.join(skipped).exists(), "{skipped} was skipped but has a folder");
    }
}

#[test]
fn dry_run_prints_the_plan_and_runs_nothing() {
    let t = Test::new()
        .pipeline(
            "name: dry\nsteps:\n  touch: { run: touch touched }\n  after: { run: 'true', needs: touch }\n",
        )
        .args(&["run", "pipeline.yaml", "--dry-run"]);
    let out = t.expect(0);
    assert!(out.stdout.contains("after  shell  <- touch"), "{}", out.stdout);
    assert!(out.stdout.contains("paid calls: 0"), "{}", out.stdout);
    assert!(!t.path().join("touched").exists());
}

/// Starts the test's command, sends it SIGINT once `ready` holds (checked every 5 ms, for
/// at most a minute), and returns its `--json` record after checking it exited 130.
fn interrupt_when(t: &Test, ready: impl Fn() -> bool) -> serde_json::Value {
    let child = t
        .command()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !ready() {
        assert!(std::time::Instant::now() < deadline, "the run never got ready to interrupt");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // SAFETY: sending SIGINT to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["status"], "interrupted");
    json
}

#[test]
fn ctrl_c_cancels_running_steps_kills_their_processes_and_exits_130() {
    let t = Test::new()
        .pipeline("name: long\nsteps:\n  nap: { run: 'echo $$ > pid; sleep 30' }\n  later: { run: 'true', needs: nap }\n")
        .args(&["run", "pipeline.yaml", "--json"]);
    let pid_file = t.path().join("pid");
    let json = interrupt_when(&t, || std::fs::read_to_string(&pid_file).is_ok_and(|p| !p.trim().is_empty()));
    assert_eq!(json["steps"]["nap"]["status"], "cancelled");
    assert_eq!(json["steps"]["later"]["status"], "cancelled");
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    // SAFETY: signal 0 only asks whether the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    assert!(!alive, "the step's process {pid} survived the interrupt");
}

#[test]
fn ctrl_c_stops_a_long_stretch_of_value_steps() {
    // Value steps never wait for anything, so a chain of them keeps the run's thread busy:
    // the interrupt must still be heard before the chain ends.
    let mut yaml = String::from("name: stretch\nsteps:\n  mark: { run: touch started }\n");
    yaml.push_str("  v0: { uses: value, with: { x: 0 }, needs: [mark] }\n");
    for i in 1..30_000 {
        yaml.push_str(&format!(
            "  v{i}: {{ uses: value, with: {{ x: \"{{{{ steps.v{}.outputs.x }}}}\" }} }}\n",
            i - 1
        ));
    }
    let t = Test::new().pipeline(&yaml).args(&["run", "pipeline.yaml", "--json"]);
    let json = interrupt_when(&t, || t.path().join("started").exists());
    assert_eq!(json["steps"]["v29999"]["status"], "cancelled");
}

#[test]
fn a_value_rendered_into_the_wrong_shape_fails_that_step_by_name_and_the_run_is_still_recorded() {
    let t = Test::new()
        .pipeline(
            "name: shapes
steps:
  none: { uses: value, with: { list: [] } }
  merge:
    uses: media.merge
    with: { video: clip.mp4, audio: \"{{ steps.none.outputs.list }}\" }
",
        )
        .args(&["run", "pipeline.yaml", "--json"]);
    let out = t.expect(1);
    let json = out.json();
    assert_eq!(
        json["steps"]["merge"]["error"],
        "`with.audio` must be a string, but it rendered to an empty list; \
         fix the template or the step it reads"
    );
    let record = std::path::Path::new(json["run_dir"].as_str().unwrap()).join("run.json");
    let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(record).unwrap()).unwrap();
    assert_eq!(saved["steps"]["merge"]["status"], "failed");
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}
