//! The step cache: an unchanged provider step is answered from an earlier run, files and
//! all, without a call; `--fresh`, `cache: false` and a changed input file call again.

use crate::paid::Sim;

const TWO: &str = r#"
name: cached
steps:
  song:
    uses: suno.music
    poll: { interval: 50ms, max_interval: 100ms }
    with: { prompt: "la la", tags: pop }
  clip:
    uses: kling.image2video
    poll: { interval: 50ms, max_interval: 100ms }
    with: { image: frame.png, prompt: "the boat drifts" }
"#;

fn run(t: &crate::harness::Test, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["run", "pipeline.yaml", "--json"];
    args.extend_from_slice(extra);
    let out = t.then(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.json()
}

#[test]
fn an_unchanged_rerun_makes_no_call_and_says_cached() {
    let sim = Sim::start("task_time=200ms");
    let t = sim.test(TWO).file("frame.png", "\u{89}PNG first frame");
    let first = run(&t, &[]);
    assert_eq!(first["steps"]["song"]["cached"], false);
    let calls = (sim.submits("suno"), sim.submits("kling"));
    assert_eq!(calls, (1, 1));

    let out = t.then(&["run", "pipeline.yaml", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let second = out.json();
    assert_eq!((sim.submits("suno"), sim.submits("kling")), calls, "no new submit");
    for step in ["song", "clip"] {
        assert_eq!(second["steps"][step]["cached"], true, "{step}");
    }
    assert!(out.stderr.contains("(cached)"), "{}", out.stderr);
    // The files were brought into the new run's folder.
    let audio = second["steps"]["song"]["outputs"]["audio"].as_str().unwrap();
    assert!(audio.contains(second["run_id"].as_str().unwrap()), "{audio}");
    let before = std::fs::read(first["steps"]["song"]["outputs"]["audio"].as_str().unwrap()).unwrap();
    assert_eq!(std::fs::read(audio).unwrap(), before);
    assert_eq!(second["steps"]["song"]["outputs"]["task_id"], first["steps"]["song"]["outputs"]["task_id"]);
}

#[test]
fn fresh_calls_every_step_again() {
    let sim = Sim::start("task_time=200ms");
    let t = sim.test(TWO).file("frame.png", "\u{89}PNG first frame");
    run(&t, &[]);
    let fresh = run(&t, &["--fresh"]);
    assert_eq!((sim.submits("suno"), sim.submits("kling")), (2, 2));
    assert_eq!(fresh["steps"]["song"]["cached"], false);
}

#[test]
fn cache_false_always_calls() {
    let sim = Sim::start("task_time=200ms");
    let yaml = TWO.replace("    uses: suno.music\n", "    uses: suno.music\n    cache: false\n");
    let t = sim.test(&yaml).file("frame.png", "\u{89}PNG first frame");
    run(&t, &[]);
    let again = run(&t, &[]);
    assert_eq!((sim.submits("suno"), sim.submits("kling")), (2, 1));
    assert_eq!(again["steps"]["song"]["cached"], false);
    assert_eq!(again["steps"]["clip"]["cached"], true);
}

#[test]
fn a_changed_input_file_reruns_only_its_step() {
    let sim = Sim::start("task_time=200ms");
    let t = sim.test(TWO).file("frame.png", "\u{89}PNG first frame");
    run(&t, &[]);
    std::fs::write(t.path().join("frame.png"), "\u{89}PNG another frame").unwrap();
    let again = run(&t, &[]);
    assert_eq!((sim.submits("suno"), sim.submits("kling")), (1, 2));
    assert_eq!(again["steps"]["song"]["cached"], true);
    assert_eq!(again["steps"]["clip"]["cached"], false);
}

/// The simulator's answers are never reused for the real API: a run without `--simulate`
/// after a simulated one calls the API (here: fails asking for a key) instead of
/// answering from the simulated cache.
#[test]
fn simulated_results_never_stand_in_for_real_ones() {
    let t = crate::harness::Test::new().pipeline(
        "name: sim-only\nsteps:\n  song:\n    uses: suno.music\n    poll: { interval: 100ms }\n    with: { prompt: la, tags: pop }\n",
    );
    let first = t.then(&["run", "pipeline.yaml", "--simulate", "--json"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let again = t.then(&["run", "pipeline.yaml", "--simulate", "--json"]);
    assert_eq!(again.json()["steps"]["song"]["cached"], true, "simulated runs share their cache");
    let real = t.then(&["run", "pipeline.yaml", "--json"]);
    assert_eq!(real.code, 3, "no key: {}", real.stderr);
    assert!(real.stderr.contains("COMETAPI_KEY"), "{}", real.stderr);
}
