//! Benchmark: a 10 s H.264 clip looped under a 3-minute MP3 song.
//! Times the pure-Rust remux (median of N runs) and its peak memory, next to
//! `ffmpeg -c copy` doing the same merge. Inputs are generated with ffmpeg
//! into a temporary directory at start. Run: `cargo bench --bench merge`.
//!
//! Measured on the shared 2-core dev machine (ffmpeg 5.1, Debian 12), with
//! repeated chunks stored once (the clip's bytes once, later repetitions'
//! chunk offsets pointing at them):
//!
//! | merge                | median time | peak memory                  | output   |
//! |----------------------|-------------|------------------------------|----------|
//! | remux (pure Rust)    | 17.4 ms     | 3.1 MB RSS (+0.8 MB merging) | 10.7 MB  |
//! | `ffmpeg -c copy`     | 427.4 ms    | 100.6 MB RSS                 | 141.7 MB |
//!
//! Before sharing, the remux wrote every repetition (~18 copies, 141 MB) and
//! took ~160 ms. Times vary with the machine's load (remux min 6.3, max
//! 19.6 ms over 21 runs).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use cometflow::media::{self, Fit, MergeRequest, Method, Tools};

const RUNS: usize = 21;
const FFMPEG_RUNS: usize = 7;

fn ffmpeg(args: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .status()
        .expect("the benchmark needs ffmpeg on PATH (apt install ffmpeg)");
    assert!(status.success(), "ffmpeg {args:?} failed");
}

/// Peak resident set size of this process so far (VmHWM), in KiB.
fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Largest peak RSS of any waited-for child process, in KiB.
fn children_maxrss_kib() -> u64 {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru);
        ru.ru_maxrss as u64
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let clip = d.join("clip.mp4");
    let song = d.join("song.mp3");
    let p = |p: &Path| p.to_str().expect("temp paths are UTF-8").to_string();
    eprintln!("generating a 10 s 1280x720 clip and a 3-minute song...");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=1280x720:rate=24:duration=10",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-bf",
        "2",
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        &p(&clip),
    ]);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=44100:duration=180",
        "-ac",
        "2",
        "-c:a",
        "libmp3lame",
        "-b:a",
        "128k",
        &p(&song),
    ]);
    let size = |f: &Path| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    println!("inputs: clip {:.1} MB (10 s), song {:.1} MB (180 s)", size(&clip), size(&song));

    let req = MergeRequest {
        video: vec![clip.clone()],
        audio: song.clone(),
        fit: Fit::LoopVideo,
        output: d.join("remux.mp4"),
    };
    let tools = Tools { ffmpeg: None };
    let hwm_before = vm_hwm_kib();
    let mut times = Vec::with_capacity(RUNS);
    let mut last = None;
    for _ in 0..RUNS {
        let t = Instant::now();
        let out = media::merge_with(&req, &tools).expect("remux merge");
        times.push(t.elapsed());
        last = Some(out);
    }
    let hwm_after = vm_hwm_kib();
    let out = last.expect("RUNS > 0");
    assert_eq!(out.method, Method::Remux);
    let remux = median(times.clone());
    println!(
        "remux:          median {:.1} ms (min {:.1}, max {:.1}) over {RUNS} runs; output {:.1} MB, {:.2} s",
        ms(remux),
        ms(*times.iter().min().expect("RUNS > 0")),
        ms(*times.iter().max().expect("RUNS > 0")),
        size(&out.path),
        out.duration
    );
    println!(
        "remux output: {:.1} MB, about the clip + the song: the ~18 repetitions share the clip's bytes",
        size(&out.path)
    );
    println!(
        "remux memory:   peak RSS (VmHWM) {:.1} MB for the whole bench process; grew {:.1} MB during the merges (goal: independent of song length)",
        hwm_after as f64 / 1024.0,
        hwm_after.saturating_sub(hwm_before) as f64 / 1024.0
    );

    let out_ff = p(&d.join("ffmpeg.mp4"));
    let mut ff_times = Vec::with_capacity(FFMPEG_RUNS);
    for _ in 0..FFMPEG_RUNS {
        let t = Instant::now();
        ffmpeg(&[
            "-stream_loop",
            "-1",
            "-i",
            &p(&clip),
            "-i",
            &p(&song),
            "-map",
            "0:v:0",
            "-map",
            "1:a:0",
            "-c",
            "copy",
            "-shortest",
            "-movflags",
            "+faststart",
            &out_ff,
        ]);
        ff_times.push(t.elapsed());
    }
    let ff = median(ff_times);
    println!(
        "ffmpeg -c copy: median {:.1} ms over {FFMPEG_RUNS} runs; peak RSS {:.1} MB; output {:.1} MB",
        ms(ff),
        children_maxrss_kib() as f64 / 1024.0,
        size(&d.join("ffmpeg.mp4"))
    );
    println!("remux is {:.0}x faster than ffmpeg -c copy (goal: remux < 50 ms)", ms(ff) / ms(remux));
}
