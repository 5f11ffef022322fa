//! Every pipeline in `examples/` validates and runs: they are the language's living docs.

use std::path::PathBuf;

use crate::harness::Test;

fn example_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no examples in {dir:?}");
    files
}

#[test]
fn every_example_validates() {
    let files = example_files();
    let mut args = vec!["validate".to_string()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Test::new().args(&args).expect(0);
}

#[test]
fn every_example_runs() {
    for file in example_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        // An example may say how it is expected to end: `# expect-exit: 1`.
        let code = text
            .lines()
            .find_map(|l| l.strip_prefix("# expect-exit: "))
            .map_or(0, |c| c.trim().parse().unwrap());
        let mut args = vec!["run", file.to_str().unwrap(), "--json"];
        if text.contains("# needs: --simulate") {
            args.push("--simulate");
        }
        let out = Test::new().args(&args).run();
        assert_eq!(out.code, code, "{}\nstderr:\n{}", file.display(), out.stderr);
    }
}
