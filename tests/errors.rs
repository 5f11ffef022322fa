//! Invalid pipelines: exit 2, nothing run, and an error naming file, line, column and a fix.

use crate::harness::{Output, Test};

fn validate(yaml: &str) -> Output {
    Test::new().pipeline(yaml).args(&["validate", "pipeline.yaml"]).expect(2)
}

#[test]
fn a_cycle_names_the_steps_on_it() {
    let out = validate(
        "name: loop
steps:
  a: { run: echo, needs: [c] }
  b: { run: echo, needs: [a] }
  c:
    run: echo {{ steps.b.outputs.stdout }}
  d: { run: echo, needs: [a] }
",
    );
    assert!(out.stderr.contains("dependency cycle: a -> b -> c -> a"), "{}", out.stderr);
    assert!(out.stderr.contains("pipeline.yaml:4:19:"), "{}", out.stderr);
}

#[test]
fn unknown_step_references_suggest_the_nearest_id() {
    let out = validate(
        r#"name: refs
steps:
  lyrics: { uses: value, with: { text: hi } }
  song:
    uses: value
    with:
      prompt: "Sing {{ steps.lyric.outputs.text }}"
"#,
    );
    assert!(out.stderr.contains("error: pipeline.yaml:7:24: unknown step `lyric`"), "{}", out.stderr);
    assert!(out.stderr.contains("did you mean `lyrics`?"), "{}", out.stderr);
    assert!(out.stderr.contains(r#"prompt: "Sing {{ steps.lyric.outputs.text }}""#), "{}", out.stderr);
}

#[test]
fn unknown_inputs_and_outputs_are_found_before_running() {
    let out = validate(
        r#"name: refs
inputs:
  theme: { default: rain }
steps:
  a: { uses: value, with: { text: "{{ inputs.them }}" } }
  b: { uses: value, with: { t: "{{ steps.a.outputs.txt }}" } }
  c: { run: "echo {{ item }}" }
"#,
    );
    assert!(out.stderr.contains("pipeline.yaml:5:39: unknown input `them`"), "{}", out.stderr);
    assert!(out.stderr.contains("did you mean `theme`?"), "{}", out.stderr);
    assert!(out.stderr.contains("step `a` (value) has no output `txt`"), "{}", out.stderr);
    assert!(out.stderr.contains("`item` exists only inside a `for_each` step"), "{}", out.stderr);
    assert!(out.stderr.contains("3 problems found; nothing was run"), "{}", out.stderr);
}

#[test]
fn yaml_syntax_errors_have_positions() {
    let out = validate("name: bad\nsteps:\n  a:\n    run: echo\n   uses: value\n");
    assert!(out.stderr.contains("error: pipeline.yaml:5:"), "{}", out.stderr);
    assert!(out.stderr.contains("YAML syntax error"), "{}", out.stderr);
}

#[test]
fn unknown_fields_and_kinds_suggest_valid_names() {
    let out = validate("name: typo\nsteps:\n  a:\n    uses: value\n    nedds: [b]\n");
    assert!(out.stderr.contains("pipeline.yaml:5:5: steps.a: unknown field `nedds`"), "{}", out.stderr);
    assert!(out.stderr.contains("did you mean `needs`?"), "{}", out.stderr);

    let out = validate("name: typo\nsteps:\n  a:\n    uses: shel\n");
    assert!(out.stderr.contains("pipeline.yaml:4:11: unknown step kind `shel`"), "{}", out.stderr);
    assert!(out.stderr.contains("did you mean `shell`?"), "{}", out.stderr);
}

#[test]
fn template_syntax_errors_are_found_by_validate() {
    let out = validate("name: t\nsteps:\n  a: { uses: value, with: { x: \"{{ inputs. }}\" } }\n");
    assert!(out.stderr.contains("error: pipeline.yaml:3:32: template syntax error"), "{}", out.stderr);
}

#[test]
fn bad_needs_durations_and_ids_are_all_reported() {
    let out = validate(
        "name: many
steps:
  My-Step: { run: echo }
  b: { run: echo, needs: [nope], timeout: soon }
",
    );
    assert!(out.stderr.contains("step id `My-Step` may use only a-z, 0-9 and `_`"), "{}", out.stderr);
    assert!(out.stderr.contains("`soon` is not a duration"), "{}", out.stderr);
}

#[test]
fn run_validates_first_and_runs_nothing_when_invalid() {
    let t = Test::new()
        .pipeline("name: v\nsteps:\n  a: { run: touch ran }\n  b: { run: 'echo {{ steps.zz.outputs.x }}' }\n")
        .args(&["run", "pipeline.yaml"]);
    t.expect(2);
    assert!(!t.path().join("ran").exists());
}

#[test]
fn command_line_inputs_are_converted_to_the_declared_type() {
    let t = Test::new()
        .pipeline("name: i\ninputs:\n  clips: { default: 2 }\nsteps:\n  a: { uses: value, with: { n: \"{{ inputs.clips + 1 }}\" } }\n");
    let out = t.args(&["run", "pipeline.yaml", "--json", "-i", "clips=4"]).expect(0);
    assert_eq!(out.json()["steps"]["a"]["outputs"]["n"], 5);

    let t = Test::new()
        .pipeline(
            "name: i\ninputs:\n  clips: { type: integer }\nsteps:\n  a: { uses: value, with: { n: 1 } }\n",
        )
        .args(&["run", "pipeline.yaml", "-i", "clips=many"]);
    let out = t.expect(2);
    assert!(out.stderr.contains("`-i clips=...`: `many` is not an integer"), "{}", out.stderr);

    let t = Test::new()
        .pipeline(
            "name: i\ninputs:\n  clips: { type: integer }\nsteps:\n  a: { uses: value, with: { n: 1 } }\n",
        )
        .args(&["run", "pipeline.yaml"]);
    let out = t.expect(2);
    assert!(out.stderr.contains("input `clips` is required and has no default"), "{}", out.stderr);
}

/// The errors a first run hits: wrong path, a folder, an empty file, a file that is not a map.
mod first_errors {
    use crate::harness::Test;

    fn stderr_of(t: Test) -> String {
        t.expect(2).stderr
    }

    #[test]
    fn a_missing_file_suggests_a_near_name_or_init() {
        let out = stderr_of(Test::new().file("song.yaml", "x").args(&["validate", "sogn.yaml"]));
        assert_eq!(out, "error: `sogn.yaml` does not exist\n  help: did you mean `song.yaml`?\n\n");

        let out = stderr_of(Test::new().args(&["run", "nothing.yaml"]));
        assert_eq!(
            out,
            "error: `nothing.yaml` does not exist\n  help: check the path (relative paths start at the \
             current folder); `cometflow init` writes a starter pipeline\n\n"
        );
    }

    #[test]
    fn a_folder_names_the_pipelines_in_it() {
        let out = stderr_of(
            Test::new().file("flows/a.yaml", "x").file("flows/b.yml", "x").args(&["validate", "flows"]),
        );
        assert_eq!(
            out,
            "error: `flows` is a folder, not a pipeline file\n  help: pass one pipeline file, e.g. \
             `cometflow validate flows/a.yaml` (2 in that folder: `a.yaml`, `b.yml`)\n\n"
        );
        let out = stderr_of(Test::new().file("empty/readme.txt", "x").args(&["graph", "empty"]));
        assert!(out.contains("that folder holds none, and `cometflow init` writes a starter"), "{out}");
    }

    #[test]
    fn an_empty_or_comment_only_file_says_what_a_pipeline_needs() {
        let out = stderr_of(Test::new().pipeline("\n  \n").args(&["validate", "pipeline.yaml"]));
        assert_eq!(
            out,
            "error: `pipeline.yaml` is empty\n  help: a pipeline needs at least `name:` and `steps:`; \
             `cometflow init` writes a starter\n\n"
        );
        let out = stderr_of(Test::new().pipeline("# todo\n").args(&["validate", "pipeline.yaml"]));
        assert!(out.starts_with("error: `pipeline.yaml` holds only comments\n"), "{out}");
    }

    #[test]
    fn a_file_that_is_not_a_map_says_so() {
        let out =
            stderr_of(Test::new().pipeline("- name: x\n- steps: {}\n").args(&["validate", "pipeline.yaml"]));
        assert!(
            out.starts_with(
                "error: pipeline.yaml:1:1: `pipeline.yaml` is a list, but a pipeline is a map of fields \
                 such as `name:` and `steps:`\n"
            ),
            "{out}"
        );
        assert!(out.contains("without a leading `-`"), "{out}");

        let out = stderr_of(Test::new().pipeline("hello\n").args(&["validate", "pipeline.yaml"]));
        assert!(out.contains("`pipeline.yaml` is the text `hello`, but a pipeline is a map"), "{out}");
    }

    #[test]
    fn a_field_of_the_wrong_shape_names_both_shapes() {
        let out =
            stderr_of(Test::new().pipeline("name: x\nsteps: [a, b]\n").args(&["validate", "pipeline.yaml"]));
        assert!(
            out.starts_with(
                "error: pipeline.yaml:2:8: `steps` must be a map of `key: value` lines, not a list\n"
            ),
            "{out}"
        );
        assert!(out.contains("without `-`"), "{out}");
    }
}

#[test]
fn field_and_reference_problems_are_reported_in_one_pass() {
    let out = validate(
        r#"name: one-pass
steps:
  lyrics:
    uses: chat
    with: { model: gpt-4o-mini, messages: [{ role: user, content: "hi" }] }
  clip:
    uses: kling.text2video
    with:
      prompt: "{{ steps.lyric.outputs.text }}"
      mode: turbo
      duration: 7
"#,
    );
    assert!(out.stderr.contains("pipeline.yaml:10:13: `turbo` is not a valid `mode`"), "{}", out.stderr);
    assert!(out.stderr.contains("allowed: `std`, `pro`"), "{}", out.stderr);
    assert!(out.stderr.contains("allowed: `5`, `10`\n"), "{}", out.stderr);
    assert!(out.stderr.contains("unknown step `lyric`"), "{}", out.stderr);
    assert!(out.stderr.contains("3 problems found; nothing was run"), "{}", out.stderr);
}
