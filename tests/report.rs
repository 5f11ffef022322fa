//! `cometflow report` and `run --report`: one HTML file that needs no network, links the
//! run's media by relative paths that resolve, and shows model output as text, never markup.

use std::path::{Path, PathBuf};

use crate::harness::Test;

/// ```text
///   thumbs (for_each, 3 pngs) ──> broken (fails) ──> after_broken (skipped)
///   narrate (mp3, prints <script>) ──────────────────┘
///   clip (media.merge: mp4)        summary (value, long text)
/// ```
pub const SHOWCASE: &str = r#"name: showcase
description: Every part of the report at once.
inputs:
  shots: { default: 3, type: integer }
steps:
  thumbs:
    for_each: "{{ range(inputs.shots) }}"
    run: |
      mkdir -p "{{ run.dir }}/thumbs"
      cp "ASSETS/image.png" "{{ run.dir }}/thumbs/shot {{ index }}.png"
      echo "image={{ run.dir }}/thumbs/shot {{ index }}.png" >> "$COMETFLOW_OUTPUT"
  narrate:
    run: |
      cp "ASSETS/song.mp3" "{{ run.dir }}/narration.mp3"
      echo "audio={{ run.dir }}/narration.mp3" >> "$COMETFLOW_OUTPUT"
      echo '<script>alert(1)</script>'
  clip:
    uses: media.merge
    with:
      video: ["ASSETS/clip.mp4"]
      audio: "ASSETS/song.mp3"
      fit: loop-video
  broken:
    needs: [thumbs]
    run: echo "model returned nothing" >&2; exit 1
  after_broken:
    needs: [broken, narrate]
    run: echo never runs
  summary:
    uses: value
    with:
      said: "{{ steps.narrate.outputs.stdout }}"
      long: "{{ 'lorem ipsum dolor sit amet ' * 30 }}"
outputs:
  video: "{{ steps.clip.outputs.path }}"
  said: "{{ steps.summary.outputs.said }}"
"#;

pub fn showcase() -> Test {
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sim");
    Test::new().pipeline(&SHOWCASE.replace("ASSETS", assets.to_str().unwrap()))
}

/// Runs `cometflow report ARGS...` beside `t`'s runs and returns the written file's path.
pub fn report(t: &Test, args: &[&str]) -> PathBuf {
    let mut all = vec!["report"];
    all.extend_from_slice(args);
    let out = t.then(&all);
    assert_eq!(out.code, 0, "report failed:\n{}", out.stderr);
    let path = PathBuf::from(out.stdout.trim());
    assert!(path.is_file(), "report printed `{}`, which is not a file", path.display());
    path
}

/// The `src` of every `<tag ...>` in the page, decoded back to a relative file path.
fn sources(html: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag} ");
    html.match_indices(&open)
        .map(|(at, _)| {
            let rest = &html[at..];
            let end = rest.find('>').unwrap();
            let attrs = &rest[..end];
            let src = attrs.split("src=\"").nth(1).unwrap_or_else(|| panic!("no src in {attrs}"));
            let src = &src[..src.find('"').unwrap()];
            // A media fragment (`#t=0.1`) is not part of the file name.
            let src = src.split('#').next().unwrap();
            percent_decode(&src.replace("&amp;", "&"))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Checks what every report must hold; returns how many video, audio and image players it has.
pub fn check_report(path: &Path) -> (usize, usize, usize) {
    let html = std::fs::read_to_string(path).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    for scheme in ["http://", "https://", "//cdn", "<link", "<script"] {
        assert!(
            !html.contains(scheme),
            "the report holds `{scheme}`: it must work offline and run no script"
        );
    }
    let dir = path.parent().unwrap();
    let mut counts = [0; 3];
    for (n, tag) in ["video", "audio", "img"].iter().enumerate() {
        for src in sources(&html, tag) {
            assert!(!src.starts_with('/'), "<{tag}> links `{src}` by an absolute path; it must be relative");
            assert!(dir.join(&src).is_file(), "<{tag} src=\"{src}\"> does not exist beside the report");
            counts[n] += 1;
        }
    }
    (counts[0], counts[1], counts[2])
}

#[test]
fn run_report_writes_the_report_into_the_run_folder() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/media-merge.yaml");
    let t = Test::new().args(&["run", example.to_str().unwrap(), "--report"]);
    let out = t.expect(0);
    let line =
        out.stderr.lines().find_map(|l| l.strip_prefix("report: ")).expect("run --report prints the path");
    let path = PathBuf::from(line);
    assert_eq!(path.file_name().unwrap(), "report.html");
    assert_eq!(path.parent().unwrap().parent().unwrap(), t.state_dir().join("runs"));
    let (videos, _, _) = check_report(&path);
    assert_eq!(videos, 2, "the merged mp4 plays in the outputs card and in its step");
}

#[test]
fn report_last_draws_the_newest_run_with_its_media_failures_and_skips() {
    let t = showcase().args(&["run", "pipeline.yaml"]);
    t.expect(1);
    let path = report(&t, &["last"]);
    let (videos, audios, images) = check_report(&path);
    assert_eq!((videos, audios, images), (2, 1, 3), "players for the mp4, the mp3 and each for_each png");
    let html = std::fs::read_to_string(&path).unwrap();
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "the model's markup shows as text");
    for id in ["thumbs", "narrate", "clip", "broken", "after_broken", "summary"] {
        assert!(html.contains(&format!(r#"id="step-{id}""#)), "no section for `{id}`");
    }
    assert!(html.contains(r#"<g class="node s-failed">"#) && html.contains(r#"<g class="node s-skipped">"#));
    // thumbs->broken, broken->after_broken, narrate->after_broken, narrate->summary
    assert_eq!(html.matches(r#"class="edge""#).count(), 4);
    assert!(html.contains("needs `broken`, which failed"));
    assert!(html.contains("model returned nothing"));
    assert!(html.contains(r#"<details class="fold">"#), "the long string is folded");
}

#[test]
fn a_report_written_elsewhere_links_back_into_the_run_folder() {
    let t = showcase().args(&["run", "pipeline.yaml", "--json"]);
    let result = t.expect(1).json();
    // The record carries the DAG (needs in file order) and where the pipeline came from.
    assert_eq!(result["steps"]["after_broken"]["needs"], serde_json::json!(["narrate", "broken"]));
    assert_eq!(result["steps"]["thumbs"]["needs"], serde_json::json!([]));
    let file = result["pipeline_file"].as_str().unwrap();
    assert!(Path::new(file).is_absolute() && file.ends_with("pipeline.yaml"), "{file}");
    let run_id = result["run_id"].as_str().unwrap().to_owned();
    let path = report(&t, &[&run_id, "-o", "out/deep/report.html"]);
    assert_eq!(path, t.path().canonicalize().unwrap().join("out/deep/report.html"));
    let (videos, audios, images) = check_report(&path);
    assert_eq!((videos, audios, images), (2, 1, 3));
    let html = std::fs::read_to_string(&path).unwrap();
    assert!(html.contains(r#"src="../../state/runs/"#), "media links climb out of `out/deep`");
}

#[test]
fn report_names_a_missing_run_and_says_what_to_do() {
    let t = Test::new().args(&["report", "last"]);
    let out = t.expect(2);
    assert!(
        out.stderr.contains("no runs in `")
            && out.stderr.ends_with("run a pipeline first, or set COMETFLOW_STATE_DIR\n"),
        "{}",
        out.stderr
    );
    let out = Test::new().args(&["report", "../../etc"]).expect(2);
    assert!(out.stderr.starts_with("error: no run `../../etc` in `"), "{}", out.stderr);
}
