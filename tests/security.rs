//! Hostile input as a campaign, not a list: generated scripts, values and pipeline texts
//! (seeded, so a failure replays), checking that no value runs as code, nothing panics and
//! every error names its position; and a run killed with SIGKILL at random moments that
//! still finishes with one submit per task.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::Test;
use crate::paid::Sim;

/// Values that run `touch <marker>` wherever a shell treats them as code.
fn hostile_value(rng: &mut fastrand::Rng, marker: &str) -> String {
    let forms = [
        format!("a[$(touch {marker})]"),
        format!("x[`touch {marker}`]"),
        format!("$(touch {marker})"),
        format!("`touch {marker}`"),
        format!("'; touch {marker}; '"),
        format!("\"; touch {marker}; \""),
        format!("1\nexit_code=0\nstdout=forged\nEOF\ntouch {marker}"),
        format!("$((1))'\"$(touch {marker})"),
        "*".to_owned(),
        "\u{1b}]0;title\u{7}\u{1b}[2J".to_owned(),
    ];
    let mut v = forms[rng.usize(..forms.len())].clone();
    if rng.bool() {
        v = format!("{}{v}{}", forms[rng.usize(..forms.len())], if rng.bool() { "\n" } else { "" });
    }
    v
}

/// A script fragment holding `{{ T }}` somewhere a script may put a value.
fn fragment(rng: &mut fastrand::Rng) -> String {
    let parts = [
        "echo {{ T }}",
        "echo \"x {{ T }} y\"",
        "echo '{{ T }}'",
        "# don't stop {{ T }} it's fine",
        "echo \"$(echo {{ T }})\"",
        "echo `echo {{ T }}`",
        "if [[ {{ T }} -ge 7 ]]; then echo big; fi",
        "[[ \"{{ T }}\" == yes ]] || true",
        "echo $(( {{ T }} + 1 ))",
        "(( {{ T }} > 1 )) || true",
        "a=(1 2); echo ${a[{{ T }}]}",
        "s=abcdef; echo ${s:{{ T }}:1}",
        "let n={{ T }}+1",
        "declare -i m={{ T }}",
        "echo ${u:-{{ T }}}",
        "cat <<EOF\n{{ T }} $(echo {{ T }})\nEOF",
        "cat <<'EOF'\n{{ T }}\nEOF",
        "x=\"{{ T }}\"; echo \"$x\"",
        "echo \"v={{ T }}\" >> \"$COMETFLOW_OUTPUT\"",
        "printf '%s\\n' {{ T }} | wc -l",
    ];
    let n = rng.usize(1..=3);
    (0..n).map(|_| parts[rng.usize(..parts.len())]).collect::<Vec<_>>().join("\n")
}

#[test]
fn generated_scripts_never_run_a_value_as_code() {
    let mut rng = fastrand::Rng::with_seed(12);
    for round in 0..6 {
        let marker = format!("pwned{round}");
        let mut yaml = "name: campaign\ninputs:\n  v: { default: \"\" }\nsteps:\n".to_owned();
        for s in 0..25 {
            let script = fragment(&mut rng).replace("{{ T }}", "{{ inputs.v }}").replace('\n', "\n      ");
            yaml.push_str(&format!("  s{s}:\n    continue_on_error: true\n    run: |\n      {script}\n"));
        }
        let value = hostile_value(&mut rng, &marker);
        let t = Test::new().pipeline(&yaml).args(&[
            "run",
            "pipeline.yaml",
            "--json",
            "-i",
            &format!("v={value}"),
        ]);
        let out = t.run();
        assert_ne!(out.code, 101, "panicked:\n{}", out.stderr);
        assert!(
            !t.path().join(&marker).exists(),
            "round {round}: {value:?} ran as code in\n{yaml}\n{}",
            out.stderr
        );
        assert!(!out.stderr.contains('\u{1b}'), "a raw escape reached the terminal");
        let json = out.json();
        for s in 0..25 {
            let step = &json["steps"][format!("s{s}")];
            assert_ne!(step["outputs"]["stdout"], "forged", "round {round}: s{s}");
            assert!(step["outputs"]["exit_code"].is_i64() || step["status"] == "failed", "{step}");
        }
    }
}

/// Mutations of a valid pipeline: each must validate or fail with `file:line:col`, never panic.
#[test]
fn generated_pipeline_texts_fail_with_positions_and_never_panic() {
    let base = "name: p\ninputs:\n  n: { default: 1 }\nsteps:\n  a:\n    run: echo {{ inputs.n }}\n    timeout: 5s\n  b:\n    uses: value\n    needs: [a]\n    retry: { attempts: 2, backoff: 1s }\n    with: { x: \"{{ steps.a.outputs.stdout }}\" }\noutputs:\n  o: \"{{ steps.b.outputs.x }}\"\n";
    let inserts = [
        "\0",
        "\u{feff}",
        "\u{1b}[31m",
        "timeout: 1e20",
        "99999999999999999999s",
        "{{",
        "}}",
        "{% for i in range(10) %}",
        "  a:\n    run: echo dup\n",
        "\n  n: { default: 2 }",
        ": :",
        "- [",
        "\t",
        "'",
        "\"",
        "&anchor",
        "*anchor",
        "!!binary x",
        "{{ steps.nope.outputs.x }}",
        "1e25",
        "-1s",
        "env: [COMETAPI_KEY]\n",
    ];
    let mut rng = fastrand::Rng::with_seed(7);
    let t = Test::new();
    for case in 0..60 {
        let mut text = base.to_owned();
        for _ in 0..rng.usize(1..=3) {
            let mut at = rng.usize(..=text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text.insert_str(at, inserts[rng.usize(..inserts.len())]);
        }
        let file = format!("case{case}.yaml");
        std::fs::write(t.path().join(&file), &text).unwrap();
        let out = t.then(&["validate", &file]);
        assert_ne!(out.code, 101, "case {case} panicked:\n{text}\n{}", out.stderr);
        assert!(out.code == 0 || out.code == 2, "case {case}: exit {}\n{}", out.code, out.stderr);
        if out.code == 2 {
            let first = out.stderr.lines().next().unwrap_or_default();
            let positioned = first.starts_with(&format!("error: {file}:"));
            assert!(positioned, "case {case}: no position in `{first}`\n{text:?}\n{}", out.stderr);
        }
    }
}

#[test]
fn hostile_inputs_are_refused_with_their_positions() {
    let cases = [
        (
            "name: k\nenv: [HOME, COMETAPI_KEY]\nsteps:\n  a: { run: echo }\n",
            "p.yaml:2:13: `COMETAPI_KEY` cannot be listed",
        ),
        ("name: d\nsteps:\n  a: { run: echo, timeout: 1e20 }\n", "p.yaml:3:28: `1e20` is longer than"),
        (
            "name: d\nsteps:\n  a: { run: echo }\n  a: { run: echo 2 }\n",
            "p.yaml:4:3: `a` is written twice under `steps`: first at line 3, column 3",
        ),
        (
            "name: d\nsteps:\n  a:\n    run: \"echo \0\"\n",
            "p.yaml:4:16: a control character (U+0000) at line 4, column 16",
        ),
    ];
    for (yaml, expected) in cases {
        let out = Test::new().file("p.yaml", yaml).args(&["validate", "p.yaml"]).run();
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert!(out.stderr.contains(expected), "expected `{expected}` in\n{}", out.stderr);
    }
    let bom = Test::new()
        .file("p.yaml", "\u{feff}name: b\nsteps:\n  a: { run: echo }\n")
        .args(&["validate", "p.yaml"]);
    assert_eq!(bom.run().code, 0);
}

#[test]
fn validating_many_bad_steps_stays_fast() {
    let mut yaml = "name: big\nsteps:\n".to_owned();
    for i in 0..20_000 {
        yaml.push_str(&format!(
            "  s{i}: {{ uses: value, with: {{ x: \"{{{{ steps.nope{i}.outputs.y }}}}\" }} }}\n"
        ));
    }
    let t = Test::new().pipeline(&yaml).args(&["validate", "pipeline.yaml"]);
    let started = Instant::now();
    let out = t.run();
    // Quadratic, this took minutes; linear, a debug build needs a few seconds.
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    assert!(
        out.stderr.contains("20000 problems found"),
        "{}",
        &out.stderr[out.stderr.len().saturating_sub(300)..]
    );
}

#[test]
fn escapes_in_outputs_are_shown_not_sent_to_the_terminal() {
    let t = Test::new()
        .pipeline("name: esc\nsteps:\n  a:\n    run: printf 'hi \\033]0;owned\\007 \\033[2J\\n'; exit 1\n")
        .args(&["run", "pipeline.yaml"]);
    let out = t.run();
    assert!(!out.stderr.contains('\u{1b}') && !out.stderr.contains('\u{7}'), "{:?}", out.stderr);
    assert!(out.stderr.contains("\\u{1b}]0;owned\\u{7}"), "{}", out.stderr);
}

#[test]
fn a_runaway_template_fails_its_step_and_the_run_ends() {
    let t = Test::new()
        .pipeline("name: r\nsteps:\n  a:\n    uses: value\n    with: { x: \"{% for a in range(100000) %}{% for b in range(100000) %}.{% endfor %}{% endfor %}\" }\n  b: { run: echo ok }\n")
        .args(&["run", "pipeline.yaml", "--json"]);
    let started = Instant::now();
    let out = t.run();
    assert!(started.elapsed() < Duration::from_secs(30));
    let json = out.json();
    assert!(json["steps"]["a"]["error"].as_str().unwrap_or_default().contains("out of fuel"), "{json}");
    assert_eq!(json["steps"]["b"]["status"], "succeeded");
}

const PAID: &str = r#"
name: crash
steps:
  song:
    uses: suno.music
    poll: { interval: 50ms, max_interval: 100ms }
    with: { prompt: "la la", tags: pop }
  clip:
    uses: kling.text2video
    for_each: [1, 2, 3]
    poll: { interval: 50ms, max_interval: 100ms }
    with: { prompt: "shot {{ item }}" }
  video:
    uses: media.merge
    with:
      video: "{{ steps.clip.outputs | map(attribute='video') | list }}"
      audio: "{{ steps.song.outputs.audio }}"
  note:
    needs: [video]
    run: echo "done=yes" >> "$COMETFLOW_OUTPUT"
"#;

/// SIGKILL at random moments (submitting, polling, downloading, merging, writing the
/// store), resume, and again: no task is ever submitted twice and every file reads. The run
/// ends succeeded, or, when a kill fell between a submit leaving and its task id being
/// recorded, with that step stopped and saying it may have been charged (the submit window).
#[test]
fn a_run_killed_at_random_moments_finishes_with_one_submit_per_task() {
    // Tasks outlast most kills, so a kill lands while submitting, polling, downloading or
    // merging, and each resume gets a little further.
    let sim = Sim::start("task_time=1500ms");
    let t = sim.test(PAID);
    let mut rng = fastrand::Rng::with_seed(20);
    let mut kills = 0;
    for _ in 0..20 {
        let mut args = vec!["run", "pipeline.yaml", "--json"];
        // Killed before it was recorded, a run starts afresh (it paid nothing yet).
        if t.then(&["runs"]).stdout.contains("crash") {
            args.extend(["--resume", "last"]);
        }
        let mut child = t.command().args(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(rng.u64(5..250)));
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let status = child.wait().unwrap();
        if status.success() {
            break;
        }
        kills += 1;
    }
    assert!(kills >= 10, "the run was killed only {kills} times: the moments are not random enough");
    let out = t.then(&["run", "pipeline.yaml", "--resume", "last", "--json"]);
    // A run that already succeeded cannot be resumed: either way it must have succeeded.
    let succeeded = out.code == 0 || out.stderr.contains("already succeeded");
    if succeeded {
        assert_eq!(sim.submits("suno"), 1, "{}", sim.stats());
        assert_eq!(sim.submits("kling"), 3, "{}", sim.stats());
        let video =
            t.then(&["runs", "show", "last", "--json"]).json()["steps"]["video"]["outputs"]["path"].clone();
        assert!(video.as_str().is_some_and(|p| std::path::Path::new(p).is_file()), "{video}");
    } else {
        assert!(out.stderr.contains("may have been charged"), "{}", out.stderr);
        assert!(sim.submits("suno") <= 1 && sim.submits("kling") <= 3, "{}", sim.stats());
    }
    let state = t.state_dir();
    for f in crate::api::files_under(&state) {
        if f.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&f).unwrap();
            assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok(), "corrupt {}", f.display());
        }
        assert!(!f.to_string_lossy().ends_with(".part") || !f.exists(), "{}", f.display());
    }
    let show = t.then(&["runs", "show", "last"]);
    assert_eq!(show.code, 0, "{}", show.stderr);
}

/// With the fuel raised out of reach, a runaway template still cannot hold the run: it
/// renders off the engine's threads and the first Ctrl-C ends the process at once.
#[test]
fn ctrl_c_ends_a_run_whose_template_is_still_rendering() {
    let t = Test::new()
        .pipeline("name: r\nsteps:\n  a:\n    uses: value\n    with: { x: \"{% for a in range(100000) %}{% for b in range(100000) %}.{% endfor %}{% endfor %}\" }\n  b: { run: echo started; sleep 20 }\n")
        .env("COMETFLOW_TEMPLATE_FUEL", "100000000000000");
    let child = t
        .command()
        .args(["run", "pipeline.yaml", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: kill(2) on our own child's pid has no memory effects.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
}
