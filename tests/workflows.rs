//! Every pipeline in `workflows/` is one people would really run: it declares its schema,
//! says what it does, documents its inputs, and runs offline with `--simulate`, leaving
//! files that ffprobe reads as real, playable media.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;

use crate::harness::Test;

const SCHEMA_LINE: &str = "# yaml-language-server: $schema=https://raw.githubusercontent.com/cometflow/cometflow/main/schema/pipeline.schema.json";

fn workflow(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("workflows").join(format!("{name}.yaml"))
}

fn workflow_names() -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("workflows");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str()?.strip_suffix(".yaml").map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// Runs a workflow with `--simulate --json`: the run's JSON, and the test folder that
/// holds its files (they go when it is dropped).
fn simulate(name: &str) -> (Json, Test) {
    let t = Test::new().args(&["run", workflow(name).to_str().unwrap(), "--simulate", "--json"]);
    let out = t.run();
    assert_eq!(out.code, 0, "{name}\nstderr:\n{}", out.stderr);
    let json = out.json();
    assert_eq!(json["status"], "succeeded", "{name}: {json:#}");
    (json, t)
}

/// What ffprobe says of a file: each stream's codec type and the container's duration.
struct Probe {
    streams: Vec<String>,
    duration: f64,
}

fn probe(path: &Path) -> Probe {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_type:format=duration", "-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe is installed");
    assert!(out.status.success(), "ffprobe {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    let json: Json = serde_json::from_slice(&out.stdout).unwrap();
    let streams = json["streams"].as_array().unwrap();
    Probe {
        streams: streams.iter().map(|s| s["codec_type"].as_str().unwrap().to_owned()).collect(),
        duration: json["format"]["duration"].as_str().unwrap_or("0").parse().unwrap(),
    }
}

/// The file must exist, decode without errors, and hold the given stream types.
fn playable(path: &Json, kinds: &[&str]) -> Probe {
    let path = Path::new(path.as_str().unwrap_or_else(|| panic!("not a path: {path}")));
    assert!(path.is_file(), "{} does not exist", path.display());
    let p = probe(path);
    for kind in kinds {
        assert!(
            p.streams.iter().any(|s| s == kind),
            "{}: no {kind} stream in {:?}",
            path.display(),
            p.streams
        );
    }
    assert!(p.duration > 0.5, "{}: {} s", path.display(), p.duration);
    let decode = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    let errors = String::from_utf8_lossy(&decode.stderr);
    assert!(decode.status.success() && errors.trim().is_empty(), "{}: {errors}", path.display());
    p
}

#[test]
fn every_workflow_declares_its_schema_description_and_documented_inputs() {
    let names = workflow_names();
    for expected in ["daily-song", "image-to-video", "lyric-video", "podcast", "song-to-video", "storyboard"]
    {
        assert!(names.iter().any(|n| n == expected), "workflows/{expected}.yaml is missing");
    }
    for name in &names {
        let text = std::fs::read_to_string(workflow(name)).unwrap();
        assert!(text.starts_with(SCHEMA_LINE), "{name}: first line must be the schema comment");
        let yaml: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(yaml["name"].as_str(), Some(name.as_str()), "{name}: `name` must match the file");
        assert!(yaml["description"].as_str().is_some_and(|d| d.len() > 20), "{name}: needs a description");
        assert!(
            text.contains(&format!("cometflow run workflows/{name}.yaml --simulate")),
            "{name}: say how to try it"
        );
        let inputs = yaml["inputs"].as_mapping().unwrap_or_else(|| panic!("{name}: needs inputs"));
        for (input, spec) in inputs {
            assert!(spec["description"].as_str().is_some(), "{name}: input {input:?} needs a description");
        }
    }
    let mut args = vec!["validate".to_owned()];
    args.extend(names.iter().map(|n| workflow(n).display().to_string()));
    Test::new().args(&args.iter().map(String::as_str).collect::<Vec<_>>()).expect(0);
}

#[test]
fn image_to_video_animates_the_upscaled_still() {
    let (run, _files) = simulate("image-to-video");
    let image = Path::new(run["outputs"]["image"].as_str().unwrap());
    assert!(std::fs::read(image).unwrap().starts_with(b"\x89PNG"), "{}", image.display());
    playable(&run["outputs"]["video"], &["video"]);
    assert_eq!(run["steps"]["upscale"]["status"], "succeeded");
}

#[test]
fn storyboard_renders_one_clip_per_planned_shot_and_joins_them() {
    let (run, _files) = simulate("storyboard");
    let shots = run["outputs"]["shots"].as_array().unwrap();
    assert_eq!(shots.len(), 3, "the default asks for 3 shots: {run:#}");
    assert_eq!(run["steps"]["clip"]["outputs"].as_array().unwrap().len(), 3);
    let film = playable(&run["outputs"]["video"], &["video"]);
    let clip = playable(&run["steps"]["clip"]["outputs"][0]["video"], &["video"]);
    assert!((film.duration - 3.0 * clip.duration).abs() < 0.2, "{} vs 3 x {}", film.duration, clip.duration);
}

#[test]
fn podcast_voices_each_line_and_joins_them_into_one_mp3() {
    let (run, _files) = simulate("podcast");
    let lines = run["steps"]["voice"]["outputs"].as_array().unwrap();
    assert!(lines.len() >= 2, "{run:#}");
    let episode = playable(&run["outputs"]["audio"], &["audio"]);
    let line = playable(&lines[0]["audio"], &["audio"]);
    let expected = line.duration * lines.len() as f64;
    assert!((episode.duration - expected).abs() < 0.2, "{} vs {expected}", episode.duration);
    assert!(run["outputs"]["audio"].as_str().unwrap().ends_with(".mp3"));
    let bytes = std::fs::read(run["outputs"]["audio"].as_str().unwrap()).unwrap();
    assert!(!bytes.starts_with(b"ID3"), "tags are stripped, frames come first");
}

#[test]
fn song_to_video_lays_the_song_under_the_clips() {
    let (run, _files) = simulate("song-to-video");
    playable(&run["outputs"]["video"], &["video", "audio"]);
}

#[test]
fn daily_song_reads_its_theme_from_the_prompt_file_and_makes_the_video() {
    let (run, _files) = simulate("daily-song");
    let file = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("workflows/prompts/daily.txt"),
    )
    .unwrap();
    assert_eq!(run["outputs"]["theme"], file.trim());
    playable(&run["outputs"]["video"], &["video", "audio"]);

    let out = Test::new()
        .args(&["schedule", "next", workflow("daily-song").to_str().unwrap(), "--count", "2"])
        .args(&["--after", "2026-01-02T12:00:00Z"])
        .expect(0);
    // Friday noon -> Monday and Tuesday 07:00 in Berlin (UTC+1 in winter).
    assert_eq!(out.stdout, "2026-01-05T06:00:00Z\n2026-01-06T06:00:00Z\n");
}

#[test]
fn daily_song_treats_the_prompt_file_as_data_never_as_shell_code() {
    let yaml = std::fs::read_to_string(workflow("daily-song")).unwrap();
    let t = Test::new()
        .file("daily-song.yaml", &yaml)
        .file("prompts/daily.txt", "rain $(touch pwned) `touch pwned2` \"; touch pwned3")
        .args(&["run", "daily-song.yaml", "--simulate", "--json"]);
    let out = t.expect(0);
    assert_eq!(out.json()["outputs"]["theme"], "rain $(touch pwned) `touch pwned2` \"; touch pwned3");
    for name in ["pwned", "pwned2", "pwned3"] {
        assert!(!t.path().join(name).exists(), "{name} was created: the theme ran as code");
    }
}

#[test]
fn lyric_video_carries_the_sung_lines_as_a_soft_subtitle_track_and_an_srt() {
    let (run, _files) = simulate("lyric-video");
    let video = playable(&run["outputs"]["video"], &["video", "audio", "subtitle"]);
    assert!(video.duration > 4.0, "{}", video.duration);
    let lines = run["steps"]["timing"]["outputs"]["lines"].as_array().unwrap();
    assert!(lines.len() >= 4, "{run:#}");
    assert_eq!(run["outputs"]["lines"], lines.len());

    // ffmpeg reads the track back as SubRip: every sung line is there, in order.
    let mp4 = run["outputs"]["video"].as_str().unwrap();
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i", mp4, "-map", "0:s", "-f", "srt", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let extracted = String::from_utf8(out.stdout).unwrap();
    let srt = std::fs::read_to_string(run["outputs"]["srt"].as_str().unwrap()).unwrap();
    assert!(srt.starts_with("1\n00:00:00,000 --> "), "{srt}");
    let mut from = 0;
    for line in lines {
        let text = line["text"].as_str().unwrap();
        assert!(srt.contains(text), "{text} missing from the .srt:\n{srt}");
        let at = extracted[from..]
            .find(text)
            .unwrap_or_else(|| panic!("{text} missing from the track:\n{extracted}"));
        from += at + text.len();
    }
}

#[test]
fn spoken_answer_lays_the_realtime_reply_under_the_animated_still() {
    let (run, _files) = simulate("spoken-answer");
    let video = playable(&run["outputs"]["video"], &["video", "audio"]);
    let answer = playable(&run["outputs"]["audio"], &["audio"]);
    assert!((video.duration - answer.duration).abs() < 0.2, "{} vs {}", video.duration, answer.duration);
    assert_eq!(run["outputs"]["transcript"], "Simulated reply to: Why do cats purr?");
    // The caption turn heard the answer's WAV, converted back to session audio.
    let caption = run["outputs"]["caption"].as_str().unwrap();
    assert_eq!(caption, format!("Simulated reply to: (spoken question of {:.1} s)", answer.duration));
}
