//! Shell steps: values from templates are data, never shell code.

use crate::harness::Test;

#[test]
fn a_value_holding_shell_syntax_is_printed_not_run() {
    let nasty = r#"$(touch pwned) `touch pwned2` "quoted" 'single' ; touch pwned3 && $HOME"#;
    let t = Test::new()
        .pipeline(
            r#"name: inject
inputs:
  text: { default: "" }
steps:
  model:
    uses: value
    with: { text: "{{ inputs.text }}" }
  echo_double:
    run: echo "{{ steps.model.outputs.text }}"
  echo_bare:
    run: echo {{ steps.model.outputs.text }}
  heredoc:
    run: |
      cat <<EOF
      {{ steps.model.outputs.text }}
      EOF
"#,
        )
        .args(&["run", "pipeline.yaml", "--json", "-i", &format!("text={nasty}")]);
    let out = t.expect(0).json();
    for step in ["echo_double", "echo_bare", "heredoc"] {
        assert_eq!(out["steps"][step]["outputs"]["stdout"], nasty, "{step}");
    }
    for f in ["pwned", "pwned2", "pwned3"] {
        assert!(!t.path().join(f).exists(), "`{f}` was created: a value ran as code");
    }
}

#[test]
fn inside_single_quotes_a_value_is_not_expanded() {
    let t = Test::new().pipeline("name: q\nsteps:\n  a: { run: \"echo '{{ run.id }}'\" }\n").args(&[
        "run",
        "pipeline.yaml",
        "--json",
    ]);
    let out = t.expect(0).json();
    assert_eq!(out["steps"]["a"]["outputs"]["stdout"], "${CF_1}");
}

#[test]
fn lines_appended_to_cometflow_output_become_outputs() {
    let t = Test::new()
        .pipeline(
            r#"name: out
steps:
  measure:
    run: |
      echo "width=640" >> "$COMETFLOW_OUTPUT"
      { echo "notes<<END"; echo "line one"; echo "line two"; echo "END"; } >> "$COMETFLOW_OUTPUT"
  use:
    uses: value
    with: { w: "{{ steps.measure.outputs.width }}", n: "{{ steps.measure.outputs.notes }}" }
"#,
        )
        .args(&["run", "pipeline.yaml", "--json"]);
    let out = t.expect(0).json();
    assert_eq!(out["steps"]["use"]["outputs"]["w"], "640");
    assert_eq!(out["steps"]["use"]["outputs"]["n"], "line one\nline two");
}

#[test]
fn env_and_cwd_are_honoured_and_the_api_key_is_withheld() {
    let t = Test::new()
        .file("sub/data.txt", "from sub\n")
        .pipeline(
            r#"name: env
steps:
  a:
    uses: shell
    with:
      run: 'cat data.txt; echo "$GREETING"; echo "key=${COMETAPI_KEY:-none}"'
      cwd: sub
      env: { GREETING: "hi {{ run.id | length > 0 }}" }
"#,
        )
        .env("COMETAPI_KEY", "sk-secret-test-key")
        .args(&["run", "pipeline.yaml", "--json"]);
    let out = t.expect(0);
    assert_eq!(out.json()["steps"]["a"]["outputs"]["stdout"], "from sub\nhi True\nkey=none");
    assert!(!out.stdout.contains("sk-secret") && !out.stderr.contains("sk-secret"));
}

#[test]
fn stdout_and_stderr_stream_to_the_log() {
    let t = Test::new()
        .pipeline("name: log\nsteps:\n  talk: { run: 'echo to-out; echo to-err >&2' }\n")
        .args(&["run", "pipeline.yaml"]);
    let out = t.expect(0);
    assert!(out.stderr.contains("talk │ to-out"), "{}", out.stderr);
    assert!(out.stderr.contains("talk │ to-err"), "{}", out.stderr);
}

#[test]
fn a_plain_command_runs_without_a_shell_and_a_missing_one_fails_as_in_the_shell() {
    let yaml = r#"name: plain
steps:
  here:
    uses: shell
    with: { run: printenv PWD COMETFLOW_STEP_DIR, cwd: sub }
  missing: { run: no-such-program-for-cometflow --flag, continue_on_error: true }
"#;
    let t = Test::new().file("sub/keep", "").pipeline(yaml).args(&["run", "pipeline.yaml", "--json"]);
    let out = t.expect(0).json();
    let printed = out["steps"]["here"]["outputs"]["stdout"].as_str().unwrap().to_owned();
    let mut lines = printed.lines();
    // The folder it runs in, as the shell would have said, and its own existing folder.
    assert!(lines.next().unwrap().ends_with("/sub"), "{printed}");
    assert!(std::path::Path::new(lines.next().unwrap()).is_dir(), "{printed}");
    assert_eq!(out["steps"]["missing"]["outputs"]["exit_code"], 127);
    assert!(out["steps"]["missing"]["error"].as_str().unwrap().contains("not found"), "{out}");
}

#[test]
fn a_retried_step_keeps_only_the_outputs_of_its_last_attempt() {
    let yaml = r#"name: retry
steps:
  flaky:
    retry: { attempts: 2, backoff: 10ms }
    run: |
      if [ ! -e tried ]; then touch tried; echo "stale=1" >> "$COMETFLOW_OUTPUT"; exit 1; fi
      echo "fresh=1" >> "$COMETFLOW_OUTPUT"
"#;
    let out = Test::new().pipeline(yaml).args(&["run", "pipeline.yaml", "--json"]).expect(0).json();
    let outputs = &out["steps"]["flaky"]["outputs"];
    assert_eq!(outputs["fresh"], "1");
    assert!(outputs.get("stale").is_none(), "{outputs}");
}

/// Every position a `{{ }}` can take in a script, fed values that would run `touch` if the
/// shell ever treated them as code: arithmetic contexts refuse them, all others print them.
#[test]
fn no_value_executes_in_any_position_of_a_script() {
    let positions = [
        r#"if [[ {{ inputs.v }} -ge 7 ]]; then echo big; fi"#,
        r#"[[ "{{ inputs.v }}" -eq 1 ]] || true"#,
        r#"echo $(( {{ inputs.v }} + 1 ))"#,
        r#"echo "$(( {{ inputs.v }} ))""#,
        r#"(( {{ inputs.v }} > 2 )) || true"#,
        r#"a=(1 2); echo ${a[{{ inputs.v }}]}"#,
        r#"a[{{ inputs.v }}]=1"#,
        r#"s=hello; echo ${s:{{ inputs.v }}:2}"#,
        r#"let n={{ inputs.v }}+1"#,
        r#"declare -i n={{ inputs.v }}"#,
        "# don't quote me\necho {{ inputs.v }} {{ inputs.v }}",
        r#"echo "$(echo {{ inputs.v }})" `echo {{ inputs.v }}`"#,
        r#"echo ${unset:-{{ inputs.v }}}"#,
        "cat <<EOF\n{{ inputs.v }} $(( 1 )) $(echo {{ inputs.v }})\nEOF",
        r#"x='{{ inputs.v }}'; echo "$x""#,
        r#"echo "v={{ inputs.v }}" >> "$COMETFLOW_OUTPUT""#,
    ];
    let values = [
        "a[$(touch m1)]",
        "x[`touch m2`]",
        "$(touch m3)",
        "'; touch m4; '",
        "\"; touch m5; \"",
        "1\nexit_code=0\nstdout=forged",
        "*",
    ];
    let mut yaml = "name: hostile\ninputs:\n  v: { default: \"\" }\nsteps:\n".to_owned();
    for (i, p) in positions.iter().enumerate() {
        let script = p.replace('\n', "\n      ");
        yaml.push_str(&format!("  p{i}:\n    continue_on_error: true\n    run: |\n      {script}\n"));
    }
    for v in values {
        let t =
            Test::new().pipeline(&yaml).args(&["run", "pipeline.yaml", "--json", "-i", &format!("v={v}")]);
        let out = t.run();
        let json = out.json();
        for m in 1..=5 {
            assert!(!t.path().join(format!("m{m}")).exists(), "value {v:?} ran as code\n{}", out.stderr);
        }
        for (i, _) in positions.iter().enumerate() {
            let step = &json["steps"][format!("p{i}")];
            assert_ne!(step["outputs"]["stdout"], "forged", "{v:?} forged an output of p{i}");
            if step["status"] == "failed" {
                let error = step["error"].as_str().unwrap_or_default();
                assert!(
                    error.contains("not a plain number") || error.contains("the command failed"),
                    "p{i} with {v:?}: {error}"
                );
            }
        }
    }
    // A number still works where the shell computes with it.
    let t = Test::new().pipeline(&yaml).args(&["run", "pipeline.yaml", "--json", "-i", "v=8"]);
    let json = t.run().json();
    assert_eq!(json["steps"]["p0"]["outputs"]["stdout"], "big");
    assert_eq!(json["steps"]["p2"]["outputs"]["stdout"], "9");
    assert_eq!(json["steps"]["p10"]["outputs"]["stdout"], "8 8");
}
