//! A looped merge plays in a real browser: Debian's headless chromium loads a
//! page with `<video src=out.mp4>`, seeks into a later repetition of the clip
//! (whose chunks point at the first repetition's bytes) and plays from there.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use cometflow::media::{self, Fit, MergeRequest, Method, Tools};

use crate::chromium;

/// The page reports one line, `RESULT ...`, on the console and in its body.
const PAGE: &str = r#"<!doctype html>
<video src="out.mp4" muted preload="auto"></video>
<pre id="result">pending</pre>
<script>
const v = document.querySelector('video');
const SEEK = 60;
let reported = false;
function report(s) {
  if (reported) return;
  reported = true;
  document.getElementById('result').textContent = s;
  console.log('RESULT ' + s);
}
v.addEventListener('error', () => report('error code=' + v.error.code + ' ' + v.error.message));
v.addEventListener('loadedmetadata', () => { v.currentTime = SEEK; });
v.addEventListener('seeked', () => {
  v.play().catch(e => report('error play: ' + e));
});
v.addEventListener('timeupdate', () => {
  if (v.currentTime < SEEK + 1) return;
  const q = v.getVideoPlaybackQuality();
  report('ok readyState=' + v.readyState + ' duration=' + v.duration.toFixed(2) +
    ' time=' + v.currentTime.toFixed(2) + ' frames=' + q.totalVideoFrames + ' error=' + (v.error === null ? 'none' : v.error.code));
});
setTimeout(() => report('timeout readyState=' + v.readyState + ' time=' + v.currentTime), 30000);
</script>
"#;

/// Runs the page in headless chromium and returns its `RESULT` line.
fn play_in_chromium(page: &Path) -> String {
    let (mut child, _profile) = chromium::start(page, &["--autoplay-policy=no-user-gesture-required"]);
    // Chromium keeps running after the page is done: read its log on a thread
    // until the result line, then stop it.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut log = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(i) = line.find("RESULT ") {
                // The console line goes on after the message: `", source: file://...`.
                let message = line[i + 7..].split('"').next().unwrap_or_default();
                let _ = tx.send(Ok(message.to_string()));
                return;
            }
            log.push(line);
        }
        let _ = tx.send(Err(log.join("\n")));
    });
    let result = rx.recv_timeout(Duration::from_secs(90));
    let _ = child.kill();
    let _ = child.wait();
    match result {
        Ok(Ok(line)) => line,
        Ok(Err(log)) => panic!("chromium exited without a result:\n{log}"),
        Err(_) => panic!("chromium gave no result within 90 s"),
    }
}

#[test]
fn a_looped_merge_plays_in_chromium_after_seeking_into_a_later_repetition() {
    chromium::require();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (clip, song) = crate::media::clip_and_long_song(d);
    let req = MergeRequest { video: vec![clip], audio: song, fit: Fit::LoopVideo, output: d.join("out.mp4") };
    let out = media::merge_with(&req, &Tools { ffmpeg: None }).unwrap();
    assert_eq!(out.method, Method::Remux);
    let page = d.join("play.html");
    std::fs::write(&page, PAGE).unwrap();

    let result = play_in_chromium(&page);
    eprintln!("chromium: {result}");
    assert!(result.starts_with("ok "), "chromium could not play {}: {result}", out.path.display());
    assert!(result.contains("readyState=4") || result.contains("readyState=3"), "{result}");
    assert!(result.contains("error=none"), "{result}");
    let frames: u64 =
        result.split(' ').find_map(|kv| kv.strip_prefix("frames=")).and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(frames > 0, "no video frame was decoded after the seek: {result}");
}
