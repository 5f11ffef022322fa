//! The media library as a caller sees it: outputs are checked with ffprobe
//! (streams, codecs, duration) and fully decoded by ffmpeg. These tests need
//! ffmpeg and ffprobe on PATH and fail (not skip) without them: CI installs them.

use std::path::{Path, PathBuf};
use std::process::Command;

use cometflow::media::{self, Fit, MediaError, MergeRequest, Method, Tools};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/media").join(name)
}

fn sim(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sim").join(name)
}

fn tool(name: &str) -> Command {
    let ok = Command::new(name).arg("-version").output().is_ok_and(|o| o.status.success());
    assert!(ok, "these tests need {name} on PATH (apt install ffmpeg)");
    Command::new(name)
}

fn no_ffmpeg() -> Tools {
    Tools { ffmpeg: None }
}

struct Probe {
    /// (codec_type, codec_name) per stream.
    streams: Vec<(String, String)>,
    duration: f64,
    start_times: Vec<f64>,
}

fn probe(path: &Path) -> Probe {
    let out = tool("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name,start_time:format=duration",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "ffprobe failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = |x: &serde_json::Value| x.as_str().unwrap_or("").to_string();
    let streams = v["streams"].as_array().unwrap();
    Probe {
        streams: streams.iter().map(|st| (s(&st["codec_type"]), s(&st["codec_name"]))).collect(),
        start_times: streams.iter().map(|st| s(&st["start_time"]).parse().unwrap_or(f64::NAN)).collect(),
        duration: s(&v["format"]["duration"]).parse().unwrap(),
    }
}

/// ffmpeg decodes every frame of every stream without a single complaint.
fn assert_decodes_cleanly(path: &Path) {
    let out = tool("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "decoding {} complained:\n{stderr}",
        path.display()
    );
}

/// Top-level box types, in file order.
fn top_level_boxes(path: &Path) -> Vec<String> {
    let data = std::fs::read(path).unwrap();
    let mut pos = 0usize;
    let mut kinds = Vec::new();
    while pos + 8 <= data.len() {
        let mut size = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        if size == 1 {
            size = u64::from_be_bytes(data[pos + 8..pos + 16].try_into().unwrap()) as usize;
        }
        kinds.push(String::from_utf8_lossy(&data[pos + 4..pos + 8]).into_owned());
        assert!(size >= 8, "bad box size in {}", path.display());
        pos += size;
    }
    assert_eq!(pos, data.len(), "boxes do not tile {}", path.display());
    kinds
}

fn assert_fast_start(path: &Path) {
    let kinds = top_level_boxes(path);
    let at = |k: &str| kinds.iter().position(|x| x == k).unwrap_or_else(|| panic!("no {k} in {kinds:?}"));
    assert!(at("moov") < at("mdat"), "moov must come before mdat: {kinds:?}");
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!((actual - expected).abs() <= 0.1, "{what}: duration {actual:.3} s, expected {expected:.3} s");
}

/// Checks a finished output against ffprobe and a full decode.
fn check_output(out: &media::MediaOutput, codecs: &[&str], expected: f64) {
    let p = probe(&out.path);
    let names: Vec<&str> = p.streams.iter().map(|s| s.1.as_str()).collect();
    assert_eq!(names, codecs, "streams of {}", out.path.display());
    assert_close(p.duration, expected, "ffprobe");
    assert_close(out.duration, expected, "MediaOutput");
    for t in &p.start_times {
        assert!(t.abs() < 0.05, "streams must start together at 0 (A/V sync), got {:?}", p.start_times);
    }
    assert_fast_start(&out.path);
    assert_decodes_cleanly(&out.path);
}

fn merge_req(dir: &Path, clips: &[PathBuf], song: PathBuf, fit: Fit) -> MergeRequest {
    MergeRequest { video: clips.to_vec(), audio: song, fit, output: dir.join("out.mp4") }
}

/// No stray temporary files: only what the test expects is in `dir`.
fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

const SONG_MP3: f64 = 5.042; // 193 frames of 1152 samples at 44.1 kHz
const SIM_SONG: f64 = 5.042;

#[test]
fn the_simulators_clip_twice_under_its_song_is_a_remux() {
    let dir = tempfile::tempdir().unwrap();
    let clip = sim("clip.mp4");
    let req = merge_req(dir.path(), &[clip.clone(), clip], sim("song.mp3"), Fit::LoopVideo);
    let out = media::merge(&req).unwrap();
    assert_eq!(out.method, Method::Remux);
    check_output(&out, &["h264", "mp3"], SIM_SONG);
    assert_eq!(files_in(dir.path()), ["out.mp4"]);
}

#[test]
fn each_fit_mode_gives_the_documented_length_when_the_song_is_longer() {
    let clips = [fixture("clip_a.mp4"), fixture("clip_b.mp4")]; // 4 s of video
    for (fit, expected) in [(Fit::LoopVideo, SONG_MP3), (Fit::Shortest, 4.0), (Fit::TrimAudio, 4.0)] {
        let dir = tempfile::tempdir().unwrap();
        let out = media::merge(&merge_req(dir.path(), &clips, fixture("song.mp3"), fit)).unwrap();
        assert_eq!(out.method, Method::Remux, "{fit:?}");
        check_output(&out, &["h264", "mp3"], expected);
    }
}

#[test]
fn each_fit_mode_gives_the_documented_length_when_the_video_is_longer() {
    let clips = [fixture("clip_a.mp4"), fixture("clip_b.mp4"), fixture("clip_a.mp4")]; // 6 s
    for (fit, expected) in [(Fit::LoopVideo, SONG_MP3), (Fit::Shortest, SONG_MP3), (Fit::TrimAudio, 6.0)] {
        let dir = tempfile::tempdir().unwrap();
        let out = media::merge(&merge_req(dir.path(), &clips, fixture("song.mp3"), fit)).unwrap();
        assert_eq!(out.method, Method::Remux, "{fit:?}");
        check_output(&out, &["h264", "mp3"], expected);
    }
}

#[test]
fn aac_songs_in_m4a_or_raw_adts_are_remuxed() {
    for (song, expected) in [("song.m4a", 5.0), ("song.aac", 217.0 * 1024.0 / 44100.0)] {
        let dir = tempfile::tempdir().unwrap();
        let req = merge_req(dir.path(), &[fixture("clip_a.mp4")], fixture(song), Fit::LoopVideo);
        let out = media::merge_with(&req, &no_ffmpeg()).unwrap();
        assert_eq!(out.method, Method::Remux, "{song}");
        check_output(&out, &["h264", "aac"], expected);
    }
}

#[test]
fn merging_replaces_the_clips_own_audio_with_the_song() {
    let dir = tempfile::tempdir().unwrap();
    let req = merge_req(dir.path(), &[fixture("clip_with_audio.mp4")], fixture("song.mp3"), Fit::Shortest);
    let out = media::merge(&req).unwrap();
    check_output(&out, &["h264", "mp3"], 2.0);
}

#[test]
fn an_mp3_with_garbage_in_the_middle_still_merges() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = std::fs::read(fixture("song.mp3")).unwrap();
    let mid = data.len() / 2;
    data.splice(mid..mid, (0..777u32).map(|i| (i * 37 % 251) as u8));
    let song = dir.path().join("damaged.mp3");
    std::fs::write(&song, data).unwrap();
    let out = media::merge(&merge_req(dir.path(), &[fixture("clip_a.mp4")], song, Fit::LoopVideo)).unwrap();
    assert_eq!(out.method, Method::Remux);
    // At most the damaged frame and its neighbour are lost.
    let p = probe(&out.path);
    assert!(p.duration > SONG_MP3 - 0.1 && p.duration <= SONG_MP3 + 0.01, "{}", p.duration);
    assert_decodes_cleanly(&out.path);
}

#[test]
fn concat_joins_video_only_clips_by_remux() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("joined.mp4");
    let out =
        media::concat_with(&[fixture("clip_a.mp4"), fixture("clip_b.mp4")], &output, &no_ffmpeg()).unwrap();
    assert_eq!(out.method, Method::Remux);
    check_output(&out, &["h264"], 4.0);
}

#[test]
fn concat_keeps_audio_when_every_clip_has_a_compatible_track() {
    let dir = tempfile::tempdir().unwrap();
    let clip = fixture("clip_with_audio.mp4");
    let out = media::concat_with(&[clip.clone(), clip], &dir.path().join("j.mp4"), &no_ffmpeg()).unwrap();
    assert_eq!(out.method, Method::Remux);
    check_output(&out, &["h264", "aac"], 4.0);
}

#[test]
fn concat_of_clips_with_and_without_audio_gives_a_silent_clip() {
    let dir = tempfile::tempdir().unwrap();
    let clips = [fixture("clip_with_audio.mp4"), fixture("clip_a.mp4")];
    let out = media::concat_with(&clips, &dir.path().join("j.mp4"), &no_ffmpeg()).unwrap();
    check_output(&out, &["h264"], 4.0);
}

#[test]
fn clips_of_different_sizes_are_reencoded_by_ffmpeg() {
    let dir = tempfile::tempdir().unwrap();
    let clips = [fixture("clip_a.mp4"), fixture("clip_640x360.mp4")]; // 3 s
    let out = media::merge(&merge_req(dir.path(), &clips, fixture("song.mp3"), Fit::TrimAudio)).unwrap();
    assert_eq!(out.method, Method::Ffmpeg);
    check_output(&out, &["h264", "mp3"], 3.0);
    assert_eq!(files_in(dir.path()), ["out.mp4"], "intermediate files are cleaned up");

    let joined = media::concat(&clips, &dir.path().join("joined.mp4")).unwrap();
    assert_eq!(joined.method, Method::Ffmpeg);
    check_output(&joined, &["h264"], 3.0);
}

#[test]
fn without_ffmpeg_the_remux_works_and_different_sizes_say_what_is_needed() {
    let dir = tempfile::tempdir().unwrap();
    let req = merge_req(
        dir.path(),
        &[fixture("clip_a.mp4"), fixture("clip_b.mp4")],
        fixture("song.mp3"),
        Fit::LoopVideo,
    );
    assert_eq!(media::merge_with(&req, &no_ffmpeg()).unwrap().method, Method::Remux);

    let big = fixture("clip_640x360.mp4");
    let req =
        merge_req(dir.path(), &[fixture("clip_a.mp4"), big.clone()], fixture("song.mp3"), Fit::LoopVideo);
    std::fs::remove_file(&req.output).unwrap();
    let err = media::merge_with(&req, &no_ffmpeg()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, MediaError::Incompatible { .. }), "{err:?}");
    assert_eq!(err.path(), big);
    for needle in [
        "clips differ in resolution",
        "clip_a.mp4 is 320x180",
        "clip_640x360.mp4 is 640x360",
        "needs ffmpeg on PATH",
        "apt install ffmpeg",
    ] {
        assert!(msg.contains(needle), "{needle:?} missing from: {msg}");
    }
    assert!(files_in(dir.path()).is_empty(), "a failure leaves no file behind");

    let err = media::concat_with(&[fixture("clip_a.mp4"), big], &dir.path().join("j.mp4"), &no_ffmpeg())
        .unwrap_err();
    assert!(err.to_string().contains("needs ffmpeg"), "{err}");
}

#[test]
fn a_song_in_another_codec_needs_ffmpeg_and_uses_it_when_present() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("song.wav");
    let made = tool("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i", "sine=frequency=330:sample_rate=22050:duration=3"])
        .arg(&wav)
        .status()
        .unwrap();
    assert!(made.success());
    let req = merge_req(dir.path(), &[fixture("clip_a.mp4")], wav.clone(), Fit::LoopVideo);
    let err = media::merge_with(&req, &no_ffmpeg()).unwrap_err();
    assert!(matches!(err, MediaError::Unsupported { .. }) && err.path() == wav, "{err:?}");
    assert!(err.to_string().contains("WAV"), "{err}");

    let out = media::merge(&req).unwrap();
    assert_eq!(out.method, Method::Ffmpeg);
    check_output(&out, &["h264", "aac"], 3.0);
}

#[test]
fn bad_inputs_give_errors_that_name_the_file_and_leave_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    let clip = std::fs::read(fixture("clip_a.mp4")).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty.mp4", vec![]),
        ("garbage.mp4", (0..4000u32).map(|i| (i.wrapping_mul(2654435761) >> 11) as u8).collect()),
        ("truncated.mp4", clip[..clip.len() / 2].to_vec()),
        ("header-only.mp4", clip[..20].to_vec()),
    ];
    for (name, bytes) in cases {
        let bad = inputs.join(name);
        std::fs::write(&bad, bytes).unwrap();
        let out_dir = dir.path().join(format!("out-{name}"));
        std::fs::create_dir(&out_dir).unwrap();
        for tools in [no_ffmpeg(), Tools::from_env()] {
            let req = merge_req(
                &out_dir,
                &[fixture("clip_a.mp4"), bad.clone()],
                fixture("song.mp3"),
                Fit::LoopVideo,
            );
            let err = media::merge_with(&req, &tools).unwrap_err();
            assert!(err.to_string().contains(name), "{name}: {err}");
            assert!(files_in(&out_dir).is_empty(), "{name}: left {:?}", files_in(&out_dir));
        }
        // The same file as the song.
        let req = merge_req(&out_dir, &[fixture("clip_a.mp4")], bad.clone(), Fit::LoopVideo);
        let err = media::merge_with(&req, &no_ffmpeg()).unwrap_err();
        assert!(err.to_string().contains(name), "{name} as song: {err}");
    }
    let missing = media::merge(&merge_req(
        dir.path(),
        &[dir.path().join("nope.mp4")],
        fixture("song.mp3"),
        Fit::LoopVideo,
    ))
    .unwrap_err();
    assert!(missing.to_string().contains("nope.mp4"), "{missing}");
    let none = media::merge(&merge_req(dir.path(), &[], fixture("song.mp3"), Fit::LoopVideo)).unwrap_err();
    assert!(matches!(none, MediaError::NoClips { .. }), "{none}");
}

#[test]
fn fit_parses_from_its_documented_names_with_a_helpful_error() {
    assert_eq!("loop-video".parse::<Fit>().unwrap(), Fit::LoopVideo);
    assert_eq!("shortest".parse::<Fit>().unwrap(), Fit::Shortest);
    assert_eq!("trim-audio".parse::<Fit>().unwrap(), Fit::TrimAudio);
    assert_eq!(Fit::default(), Fit::LoopVideo);
    let err = "loop".parse::<Fit>().unwrap_err().to_string();
    assert!(err.contains("'loop'") && err.contains("loop-video, shortest, trim-audio"), "{err}");
}

#[test]
fn clips_of_one_size_with_different_sps_are_reencoded_not_remuxed() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("refs4.mp4");
    let made = tool("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=24:duration=1"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "medium",
            "-refs",
            "4",
            "-profile:v",
            "main",
            "-bf",
            "3",
            "-crf",
            "40",
            "-pix_fmt",
            "yuv420p",
        ])
        .arg(&other)
        .status()
        .unwrap();
    assert!(made.success());
    let clips = [fixture("clip_a.mp4"), other.clone()];
    let output = dir.path().join("j.mp4");
    let err = media::concat_with(&clips, &output, &no_ffmpeg()).unwrap_err();
    assert!(err.to_string().contains("different SPS/PPS") && err.path() == other, "{err}");

    let out = media::concat(&clips, &output).unwrap();
    assert_eq!(out.method, Method::Ffmpeg);
    check_output(&out, &["h264"], 3.0);
}

/// ffmpeg decodes `secs` seconds from `at` (a seek, then decoding from the keyframe before it) without complaint.
fn assert_seek_decodes(path: &Path, at: f64, secs: f64) {
    let out = tool("ffmpeg")
        .args(["-nostdin", "-v", "error", "-ss", &at.to_string(), "-i"])
        .arg(path)
        .args(["-t", &secs.to_string(), "-f", "null", "-"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "decoding {} from {at} s complained:\n{stderr}",
        path.display()
    );
}

/// An `ffmpeg` made input in `dir`: `args` go between the lavfi source and the output name.
fn make(dir: &Path, name: &str, source: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let made = tool("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", source])
        .args(args)
        .arg(&path)
        .status()
        .unwrap();
    assert!(made.success(), "making {name}");
    path
}

/// A 2 s 320x180 clip with B-frames and a keyframe every second, and a 70 s MP3 song.
pub(crate) fn clip_and_long_song(dir: &Path) -> (PathBuf, PathBuf) {
    let x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-bf", "2", "-g", "24", "-pix_fmt", "yuv420p"];
    let clip = make(dir, "clip.mp4", "testsrc2=size=320x180:rate=24:duration=2", &x264);
    let song = make(
        dir,
        "song.mp3",
        "sine=frequency=440:sample_rate=44100:duration=70",
        &["-ac", "2", "-c:a", "libmp3lame", "-b:a", "32k"],
    );
    (clip, song)
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

#[test]
fn a_long_loop_stores_the_clip_once_and_still_plays_and_seeks_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let (clip, song) = clip_and_long_song(dir.path());
    let out = media::merge_with(
        &merge_req(dir.path(), std::slice::from_ref(&clip), song.clone(), Fit::LoopVideo),
        &no_ffmpeg(),
    )
    .unwrap();
    assert_eq!(out.method, Method::Remux);
    // 35 repetitions of the clip, but its bytes once: about one clip plus the song.
    let expected = size(&clip) + size(&song);
    let actual = size(&out.path);
    assert!(
        actual < expected + expected / 10,
        "output is {actual} bytes, expected about one clip + the song = {expected}"
    );
    let song_secs = probe(&song).duration;
    check_output(&out, &["h264", "mp3"], song_secs);
    // Later repetitions read the shared bytes: seeking into them decodes too.
    for at in [2.0, 33.5, 60.0, song_secs - 1.5] {
        assert_seek_decodes(&out.path, at, 1.0);
    }
    assert_eq!(files_in(dir.path()), ["clip.mp4", "out.mp4", "song.mp3"]);
}

#[test]
fn concat_of_one_clip_repeated_stores_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let clip = fixture("clip_with_audio.mp4");
    let out = media::concat_with(
        &[clip.clone(), clip.clone(), clip.clone()],
        &dir.path().join("j.mp4"),
        &no_ffmpeg(),
    )
    .unwrap();
    assert_eq!(out.method, Method::Remux);
    assert!(size(&out.path) < size(&clip) * 3 / 2, "{} bytes for 3 x {}", size(&out.path), size(&clip));
    check_output(&out, &["h264", "aac"], 6.0);
    assert_seek_decodes(&out.path, 4.5, 1.0);
}
