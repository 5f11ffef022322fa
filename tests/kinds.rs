//! `cometflow kinds`: every kind is listed with its fields, `docs/families.md` is the
//! command's output, and every provider kind is used by an example run in CI.

use std::path::Path;

use crate::harness::Test;

fn kind_names() -> Vec<String> {
    let out = Test::new().args(&["kinds"]).expect(0).stdout;
    out.lines()
        .filter(|l| !l.starts_with(' ') && !l.is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn kinds_lists_every_family_kind_with_fields_and_outputs() {
    let names = kind_names();
    for kind in [
        "chat",
        "responses",
        "embeddings",
        "image",
        "image.edit",
        "speech",
        "transcription",
        "translation",
        "models",
        "anthropic.messages",
    ] {
        assert!(names.iter().any(|n| n == kind), "`{kind}` missing from {names:?}");
    }
    let one = Test::new().args(&["kinds", "image.edit"]).expect(0).stdout;
    assert!(one.contains("image (string|list, required)"), "{one}");
    assert!(one.contains("outputs:\n    image: local path"), "{one}");
}

#[test]
fn an_unknown_kind_is_named() {
    let out = Test::new().args(&["kinds", "nope"]).run();
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("no step kind `nope`"), "{}", out.stderr);
}

#[test]
fn the_families_doc_is_the_commands_output() {
    let generated = Test::new().args(&["kinds", "--families"]).expect(0).stdout;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/families.md");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/families.md is stale: run `cargo run -q -- kinds --families > docs/families.md`"
    );
}

#[test]
fn every_provider_kind_has_a_simulated_example() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut text = String::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let file = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        if file.contains("# needs: --simulate") {
            text.push_str(&file);
        }
    }
    let missing: Vec<String> = kind_names()
        .into_iter()
        .filter(|k| {
            !["value", "shell", "media.merge", "media.concat", "comet.task", "http"].contains(&k.as_str())
        })
        .filter(|k| !text.contains(&format!("uses: {k}\n")) && !text.contains(&format!("uses: {k} ")))
        .collect();
    assert!(missing.is_empty(), "kinds without a `# needs: --simulate` example: {missing:?}");
}

#[test]
fn the_readme_table_of_families_is_the_commands_output() {
    let generated = Test::new().args(&["kinds", "--families"]).expect(0).stdout;
    let table = &generated[generated.find("| family |").unwrap()..];
    let table = table.replace("](../examples/", "](examples/");
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme.find("<!-- families:start").expect("README has the families block");
    let body = &readme
        [readme[start..].find('\n').unwrap() + start + 1..readme.find("<!-- families:end -->").unwrap()];
    assert_eq!(body, table, "README's families table is stale: copy `cometflow kinds --families` into it");
}

#[test]
fn limits_take_exactly_the_families_kinds_shows() {
    let out = Test::new().args(&["kinds"]).expect(0).stdout;
    let mut families: Vec<String> = out
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.is_empty())
        .filter_map(|l| Some(l.split_once('[')?.1.split(';').next()?.to_owned()))
        .collect();
    families.sort();
    families.dedup();
    assert!(
        families.contains(&"openai".to_owned()) && families.contains(&"local".to_owned()),
        "{families:?}"
    );
    for family in &families {
        let yaml =
            format!("name: l\nlimits:\n  {family}: {{ concurrency: 1 }}\nsteps:\n  a: {{ run: echo }}\n");
        Test::new().pipeline(&yaml).args(&["validate", "pipeline.yaml"]).expect(0);
    }
    // A kind's name is not a family; the message names the one to write.
    let out = Test::new()
        .pipeline("name: l\nlimits:\n  chat: { concurrency: 1 }\nsteps:\n  a: { run: echo }\n")
        .args(&["validate", "pipeline.yaml"])
        .expect(2);
    assert!(out.stderr.contains("pipeline.yaml:3:3: `chat` is not a provider family"), "{}", out.stderr);
    let flat = out.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("`chat` is a kind of the `openai` family: write `openai`"), "{flat}");
}
