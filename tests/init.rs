//! `cometflow init` writes starters that validate, never overwrites without `--force`;
//! `cometflow completions` prints scripts for every shell clap_complete knows.

use crate::harness::Test;
use crate::schema::{errors, validator, yaml, EDITOR_LINE};

const PROVIDER_TEMPLATES: [&str; 3] = ["song-to-video", "image-to-video", "podcast"];

#[test]
fn init_writes_a_blank_pipeline_that_validates_and_runs() {
    let t = Test::new().args(&["init"]);
    let out = t.expect(0);
    assert_eq!(
        out.stdout,
        "wrote blank.yaml\nwrote .env.example\n\nnext:\n  cometflow validate blank.yaml\n  \
         cometflow run blank.yaml --simulate\n  cometflow run blank.yaml\n"
    );
    let env = std::fs::read_to_string(t.path().join(".env.example")).unwrap();
    for line in [
        "COMETAPI_KEY=\n",
        "COMETAPI_BASE_URL=https://api.cometapi.com\n",
        "COMETFLOW_STATE_DIR=.cometflow\n",
    ] {
        assert!(env.contains(line), "{env}");
    }
    let text = std::fs::read_to_string(t.path().join("blank.yaml")).unwrap();
    assert_eq!(text.lines().next(), Some(EDITOR_LINE));
    assert_eq!(errors(&validator(), &yaml(&text)), Vec::<String>::new());

    let dir = t.dir;
    let run = |args: &[&str]| {
        let t = Test::new().args(args);
        let mut cmd = t.command();
        cmd.current_dir(dir.path());
        cmd.output().unwrap()
    };
    assert!(run(&["validate", "blank.yaml"]).status.success());
    let out = run(&["run", "blank.yaml", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn init_never_overwrites_without_force() {
    let t = Test::new().file("blank.yaml", "mine\n").args(&["init"]);
    let out = t.expect(2);
    assert_eq!(
        out.stderr,
        "error: `blank.yaml` already exists; pass `--force` to overwrite it, or `--dir` to write somewhere else\n"
    );
    assert_eq!(std::fs::read_to_string(t.path().join("blank.yaml")).unwrap(), "mine\n");

    let t =
        Test::new().file("blank.yaml", "mine\n").file(".env.example", "KEEP=1\n").args(&["init", "--force"]);
    t.expect(0);
    assert!(std::fs::read_to_string(t.path().join("blank.yaml")).unwrap().contains("name: blank"));
}

#[test]
fn init_keeps_an_existing_env_example_and_writes_into_dir() {
    let t = Test::new().file("sub/.env.example", "KEEP=1\n").args(&["init", "podcast", "--dir", "sub"]);
    let out = t.expect(0);
    assert!(
        out.stdout.starts_with("wrote sub/podcast.yaml\nkept sub/.env.example (already there)\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("cometflow validate sub/podcast.yaml"), "{}", out.stdout);
    assert_eq!(std::fs::read_to_string(t.path().join("sub/.env.example")).unwrap(), "KEEP=1\n");
}

#[test]
fn every_template_names_the_schema_on_its_first_line() {
    for name in PROVIDER_TEMPLATES {
        let t = Test::new().args(&["init", name]);
        t.expect(0);
        let text = std::fs::read_to_string(t.path().join(format!("{name}.yaml"))).unwrap();
        assert_eq!(text.lines().next(), Some(EDITOR_LINE), "{name}");
    }
}

#[test]
fn provider_templates_validate() {
    let v = validator();
    for name in PROVIDER_TEMPLATES {
        let t = Test::new().args(&["init", name]);
        t.expect(0);
        let file = format!("{name}.yaml");
        let text = std::fs::read_to_string(t.path().join(&file)).unwrap();
        assert_eq!(errors(&v, &yaml(&text)), Vec::<String>::new(), "{name}");
        let mut cmd = Test::new().args(&["validate", &file]).command();
        let out = cmd.current_dir(t.path()).output().unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn completions_cover_every_shell() {
    let out = Test::new().args(&["completions", "bash"]).expect(0);
    assert!(out.stdout.contains("validate"), "{}", out.stdout);
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let out = Test::new().args(&["completions", shell]).expect(0);
        assert!(out.stdout.contains("cometflow"), "{shell}");
    }
    let out = Test::new().args(&["completions", "tcsh"]).expect(2);
    assert!(out.stderr.contains("invalid value 'tcsh'"), "{}", out.stderr);
}
