//! `--resume`: a run killed (SIGKILL) or interrupted (Ctrl-C) while its provider tasks are
//! being polled is finished in the same run id, and no task is ever submitted twice.

use std::process::Stdio;
use std::time::Duration;

use crate::harness::Output;
use crate::paid::Sim;

/// A song and two clips; one Kling task at a time, so when two tasks exist the song and
/// the first clip are being polled and the second clip is not yet submitted.
const PAID: &str = r#"
name: paid
limits:
  kling: { concurrency: 1 }
steps:
  song:
    uses: suno.music
    poll: { interval: 100ms, max_interval: 200ms }
    with: { prompt: "la la", tags: pop }
  clip:
    uses: kling.text2video
    for_each: [1, 2]
    poll: { interval: 100ms, max_interval: 200ms }
    with: { prompt: "shot {{ item }}" }
"#;

/// Starts `run`, waits until two tasks were submitted, sends `signal`, returns its end.
fn interrupt(sim: &Sim, t: &crate::harness::Test, signal: i32) -> Output {
    let child = t
        .command()
        .args(["run", "pipeline.yaml", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    sim.wait_for_tasks(2, Duration::from_secs(20));
    // SAFETY: kill(2) on our own child's pid has no memory effects.
    unsafe { libc::kill(child.id() as i32, signal) };
    let out = child.wait_with_output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Resumes the latest run and checks that it paid for nothing twice.
fn resume_pays_nothing_twice(sim: &Sim, t: &crate::harness::Test) {
    let out = t.then(&["run", "pipeline.yaml", "--resume", "last", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let json = out.json();
    assert_eq!(json["status"], "succeeded");
    assert_eq!(json["resumed"], true);
    // One Suno task and one Kling task per clip, each submitted exactly once.
    assert_eq!(sim.submits("suno"), 1, "{}", sim.stats());
    assert_eq!(sim.submits("kling"), 2, "{}", sim.stats());
    let mut ids = sim.task_ids();
    assert_eq!(ids.len(), 3);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "a task id was handed out twice");
    // The outputs carry exactly the tasks the simulator saw, and the files are there.
    let mut used = vec![json["steps"]["song"]["outputs"]["task_id"].as_str().unwrap().to_owned()];
    for clip in json["steps"]["clip"]["outputs"].as_array().unwrap() {
        used.push(clip["task_id"].as_str().unwrap().to_owned());
        assert!(std::path::Path::new(clip["video"].as_str().unwrap()).is_file());
    }
    used.sort();
    assert_eq!(used, ids);
    // The resumed run is the interrupted one: same id, same folder.
    let runs = t.then(&["runs"]);
    assert_eq!(runs.stdout.lines().filter(|l| l.contains("paid")).count(), 1, "{}", runs.stdout);
    let show = t.then(&["runs", "show", "last"]);
    for id in &ids {
        assert!(show.stdout.contains(id.as_str()), "{}", show.stdout);
    }
}

#[test]
fn a_run_killed_while_polling_resumes_without_submitting_again() {
    let sim = Sim::start("task_time=3s");
    let t = sim.test(PAID);
    let killed = interrupt(&sim, &t, libc::SIGKILL);
    assert_eq!(killed.code, -1, "killed by a signal");
    resume_pays_nothing_twice(&sim, &t);
}

#[test]
fn two_resumes_started_together_pay_once_and_the_loser_says_why() {
    let sim = Sim::start("task_time=2s");
    let t = sim.test(PAID);
    let killed = interrupt(&sim, &t, libc::SIGKILL);
    assert_eq!(killed.code, -1, "killed by a signal");
    let spawn = || {
        t.command()
            .args(["run", "pipeline.yaml", "--resume", "last", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let codes: Vec<i32> = outs.iter().map(|o| o.status.code().unwrap_or(-1)).collect();
    let winners = codes.iter().filter(|&&c| c == 0).count();
    let stderr: Vec<String> = outs.iter().map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).collect();
    assert_eq!(winners, 1, "exactly one resume runs: {codes:?}\n{stderr:?}");
    let loser = &stderr[codes.iter().position(|&c| c != 0).unwrap()];
    // Together, the claim decides; a moment later, the check before it already sees the winner.
    let told = loser.contains("was just claimed by process") && loser.contains("nothing was run")
        || loser.contains("is still running (process");
    assert!(told, "{loser}");
    assert_eq!(sim.submits("suno"), 1, "{}", sim.stats());
    assert_eq!(sim.submits("kling"), 2, "{}", sim.stats());
}

#[test]
fn a_run_interrupted_with_ctrl_c_exits_130_and_resumes() {
    let sim = Sim::start("task_time=3s");
    let t = sim.test(PAID);
    let stopped = interrupt(&sim, &t, libc::SIGINT);
    assert_eq!(stopped.code, 130, "{}", stopped.stderr);
    assert_eq!(stopped.json()["status"], "interrupted");
    resume_pays_nothing_twice(&sim, &t);
}

#[test]
fn resuming_keeps_the_original_inputs_and_refuses_other_ones() {
    let yaml = "name: ins\ninputs:\n  word: { default: a }\nsteps:\n  fail:\n    run: \"test {{ inputs.word }} = b\"\n";
    let t = crate::harness::Test::new().pipeline(yaml);
    assert_eq!(t.then(&["run", "pipeline.yaml"]).code, 1);
    let out = t.then(&["run", "pipeline.yaml", "--resume", "last", "-i", "word=b"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("a resumed run keeps its inputs"), "{}", out.stderr);
    let out = t.then(&["run", "pipeline.yaml", "--resume", "last", "--json"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.json()["inputs"]["word"], "a");
}

#[test]
fn a_succeeded_run_or_an_unknown_id_cannot_be_resumed() {
    let t = crate::harness::Test::new().pipeline("name: ok\nsteps:\n  a:\n    run: \"true\"\n");
    assert_eq!(t.then(&["run", "pipeline.yaml"]).code, 0);
    let out = t.then(&["run", "pipeline.yaml", "--resume", "last"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("already succeeded, so there is nothing to resume"), "{}", out.stderr);
    let out = t.then(&["run", "pipeline.yaml", "--resume", "nope"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("there is no run `nope`"), "{}", out.stderr);
}

/// ```text
/// first ──► crash (SIGKILLs the cometflow running it, the first time)
/// ```
/// `first` notes each time it runs. Its result is on record before `crash`, which reads
/// it, starts; so the resumed run keeps it and does not run `first` again.
#[test]
fn a_result_is_on_record_before_the_step_reading_it_starts() {
    let yaml = r#"
name: barrier
steps:
  first:
    run: echo ran >> ran.txt && echo "n=1" >> "$COMETFLOW_OUTPUT"
  crash:
    run: |
      if [ ! -e crashed ]; then touch crashed; kill -9 $PPID; exit 1; fi
      echo "{{ steps.first.outputs.n }}"
"#;
    let t = crate::harness::Test::new().pipeline(yaml);
    let killed = t.then(&["run", "pipeline.yaml"]);
    assert_eq!(killed.code, -1, "cometflow was to be killed: {}", killed.stderr);
    let out = t.then(&["run", "pipeline.yaml", "--resume", "last", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["steps"]["crash"]["outputs"]["stdout"], "1");
    assert_eq!(std::fs::read_to_string(t.path().join("ran.txt")).unwrap(), "ran\n", "`first` ran again");
}
