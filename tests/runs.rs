//! `cometflow runs` and `runs show`, and what happens when the state database is broken.

use crate::harness::Test;

#[test]
fn runs_lists_newest_first_and_show_has_the_task_ids() {
    let t = Test::new()
        .pipeline("name: hist\nsteps:\n  song:\n    uses: suno.music\n    with: { tags: pop }\n")
        .env("COMETFLOW_SIM", "task_time=100ms");
    let first = t.then(&["run", "pipeline.yaml", "--simulate", "--json", "--fresh"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let second = t.then(&["run", "pipeline.yaml", "--simulate", "--json", "--fresh"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let (a, b) = (
        first.json()["run_id"].as_str().unwrap().to_owned(),
        second.json()["run_id"].as_str().unwrap().to_owned(),
    );

    let list = t.then(&["runs"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    let at = |id: &str| list.stdout.find(id).unwrap_or_else(|| panic!("{id} missing:\n{}", list.stdout));
    assert!(at(&b) < at(&a), "newest first:\n{}", list.stdout);
    assert!(list.stdout.lines().next().unwrap().starts_with("RUN ID"));

    let show = t.then(&["runs", "show", "last"]);
    assert_eq!(show.code, 0, "{}", show.stderr);
    let task = second.json()["steps"]["song"]["outputs"]["task_id"].as_str().unwrap().to_owned();
    assert!(show.stdout.contains(&format!("run {b}")), "{}", show.stdout);
    assert!(show.stdout.contains(&format!("task suno {task} (succeeded)")), "{}", show.stdout);
    assert_eq!(t.then(&["runs", "show", "nope"]).code, 2);
}

#[test]
fn a_garbage_state_db_is_named_with_what_to_do_and_exits_with_the_environment_code() {
    let t = Test::new().pipeline("name: g\nsteps:\n  a:\n    run: \"true\"\n");
    std::fs::create_dir_all(t.state_dir()).unwrap();
    let db = t.state_dir().join("state.db");
    std::fs::write(&db, "this is not a database, just some text that is long enough".repeat(100)).unwrap();
    for args in [&["run", "pipeline.yaml"][..], &["runs"][..]] {
        let out = t.then(args);
        assert_eq!(out.code, 3, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains(&format!("`{}` is not a readable SQLite database", db.display())),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("move it aside"), "{}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
    // Nothing was overwritten.
    assert!(std::fs::read_to_string(&db).unwrap().starts_with("this is not a database"));
}

#[test]
fn two_runs_at_once_share_the_state_dir() {
    let t = Test::new()
        .pipeline("name: both\nsteps:\n  a:\n    run: \"sleep 0.3\"\n  b:\n    run: \"sleep 0.3\"\n");
    let children: Vec<_> =
        (0..3).map(|_| t.command().args(["run", "pipeline.yaml"]).output_async()).collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let list = t.then(&["runs"]);
    assert_eq!(list.stdout.lines().filter(|l| l.contains("succeeded")).count(), 3, "{}", list.stdout);
}

trait Spawn {
    fn output_async(&mut self) -> std::process::Child;
}

impl Spawn for std::process::Command {
    fn output_async(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap()
    }
}
