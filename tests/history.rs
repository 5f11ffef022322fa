//! History you can script: `runs --json`, `runs show RUN_ID --json` (the object `run --json`
//! printed), the `runs` filters, and the cache: `cache` lists it, `cache prune` keeps it in
//! bounds without ever deleting a file a run points at.

use serde_json::Value as Json;

use crate::harness::Test;

const PIPE: &str = "\
name: hist
inputs:
  topic: { default: sea }
steps:
  voice:
    uses: speech
    with: { model: tts-1, input: \"About the {{ inputs.topic }}\", voice: nova }
";

fn run(t: &Test, extra: &[&str]) -> Json {
    let mut args = vec!["run", "pipeline.yaml", "--simulate", "--json"];
    args.extend(extra);
    let out = t.then(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.json()
}

#[test]
fn runs_json_is_newest_first_filters_and_show_is_the_run_json_object() {
    let t = Test::new().pipeline(PIPE).file("other.yaml", "name: other\nsteps:\n  a: { run: \"exit 3\" }\n");
    let first = run(&t, &[]);
    assert_eq!(t.then(&["run", "other.yaml"]).code, 1);
    let second = run(&t, &["-i", "topic=sky"]);

    let list: Json = serde_json::from_str(&t.then(&["runs", "--json"]).stdout).unwrap();
    let ids: Vec<&str> = list.as_array().unwrap().iter().map(|r| r["run_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[0], second["run_id"]);
    assert_eq!(ids[2], first["run_id"]);
    assert_eq!(list[0]["inputs"]["topic"], "sky");
    assert_eq!(list[0]["paid_calls"], 1);
    assert_eq!(list[1]["status"], "failed");

    let only = |args: &[&str]| -> Vec<String> {
        let out = t.then(&[&["runs", "--json"][..], args].concat());
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.json().as_array().unwrap().iter().map(|r| r["run_id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(only(&["--pipeline", "hist"]), [ids[0], ids[2]]);
    assert_eq!(only(&["--status", "failed"]), [ids[1]]);
    assert_eq!(only(&["--pipeline", "hist", "--limit", "1"]), [ids[0]]);
    assert!(only(&["--since", "2999-01-01T00:00:00Z"]).is_empty());
    assert_eq!(only(&["--since", "2000-01-01T00:00:00Z"]).len(), 3);
    let table = t.then(&["runs", "--status", "interrupted"]);
    assert!(table.stdout.starts_with("no runs match"), "{}", table.stdout);

    for (spec, record) in [(second["run_id"].as_str().unwrap(), &second), ("last", &second), (ids[2], &first)]
    {
        let out = t.then(&["runs", "show", spec, "--json"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(&out.json(), record, "`runs show {spec} --json` is what `run --json` printed");
    }
    assert_eq!(t.then(&["runs", "show", "nope", "--json"]).code, 2);
    let bad = t.then(&["runs", "--status", "done"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("use one of succeeded, failed, interrupted, running"), "{}", bad.stderr);
    assert_eq!(t.then(&["runs", "--since", "yesterday"]).code, 2);
}

#[test]
fn cache_lists_entries_and_prune_never_deletes_what_a_run_points_at() {
    let t = Test::new().pipeline(PIPE);
    let first = run(&t, &[]);
    let audio = first["steps"]["voice"]["outputs"]["audio"].as_str().unwrap().to_owned();
    let second = run(&t, &[]);
    assert_eq!(second["steps"]["voice"]["cached"], true);

    let list = t.then(&["cache"]);
    assert!(list.stdout.starts_with("KEY"), "{}", list.stdout);
    assert!(list.stdout.contains("speech"), "{}", list.stdout);
    assert!(list.stdout.contains("1 entries, "), "{}", list.stdout);
    let entries = t.then(&["cache", "--json"]).json();
    assert_eq!(entries[0]["kind"], "speech");
    assert_eq!(entries[0]["run_id"], first["run_id"]);
    assert!(entries[0]["bytes"].as_u64().unwrap() > 0);
    assert_eq!(entries[0]["files"][0], audio.as_str());

    let dry = t.then(&["cache", "prune", "--older-than", "0s", "--dry-run"]);
    assert!(dry.stdout.starts_with("would remove 1 cache entries"), "{}", dry.stdout);
    assert_eq!(t.then(&["cache", "--json"]).json().as_array().unwrap().len(), 1);

    let kept = t.then(&["cache", "prune", "--older-than", "30d"]);
    assert!(kept.stdout.starts_with("removed 0 cache entries"), "{}", kept.stdout);
    let pruned = t.then(&["cache", "prune", "--older-than", "0s"]);
    assert!(pruned.stdout.contains("removed 1 cache entries"), "{}", pruned.stdout);
    assert!(pruned.stdout.contains("deleted 0 files"), "{}", pruned.stdout);
    assert!(pruned.stdout.contains("1 files stay because runs point at them"), "{}", pruned.stdout);
    assert!(std::path::Path::new(&audio).is_file(), "a file the first run points at was deleted");
    assert_eq!(t.then(&["cache", "--json"]).json(), Json::Array(vec![]));
    assert_eq!(run(&t, &[])["steps"]["voice"]["cached"], false, "a pruned entry is a miss");
}

#[test]
fn prune_deletes_a_file_only_the_cache_held_and_max_size_keeps_the_newest() {
    let t = Test::new().pipeline(PIPE);
    let first = run(&t, &[]);
    let audio = first["steps"]["voice"]["outputs"]["audio"].as_str().unwrap().to_owned();
    run(&t, &["-i", "topic=sky"]);
    // The first run is forgotten by the store (as if removed by hand): only its cache entry
    // still points at its file.
    let db = rusqlite::Connection::open(t.state_dir().join("state.db")).unwrap();
    db.execute("DELETE FROM runs WHERE id = ?1", [first["run_id"].as_str().unwrap()]).unwrap();
    db.execute("DELETE FROM steps WHERE run_id = ?1", [first["run_id"].as_str().unwrap()]).unwrap();
    drop(db);

    let entries = t.then(&["cache", "--json"]).json();
    let newest = entries[0]["bytes"].as_u64().unwrap();
    let out = t.then(&["cache", "prune", "--max-size", &newest.to_string()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with("removed 1 cache entries"), "{}", out.stdout);
    assert!(out.stdout.contains("deleted 1 files"), "{}", out.stdout);
    assert!(!std::path::Path::new(&audio).exists(), "the file only the pruned entry held is gone");
    let left = t.then(&["cache", "--json"]).json();
    assert_eq!(left.as_array().unwrap().len(), 1);
    assert_eq!(left[0]["key"], entries[0]["key"], "the newest entry is kept");
    let bad = t.then(&["cache", "prune"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("needs `--older-than DURATION` or `--max-size SIZE`"), "{}", bad.stderr);
}
