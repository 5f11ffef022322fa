//! The video side of a remux: reading clips, deciding whether they can be
//! joined without re-encoding, and building one continuous H.264 track from
//! them (in order, optionally looped and cut at a given time).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::boxes::fourcc;
use super::mp4read::{self, Handler, Mp4, Track};
use super::mux::{Kind, OutSample, OutTrack};
use super::MediaError;

/// Reads every clip's structure; formats other than MP4 need ffmpeg.
pub(crate) fn read_clips(paths: &[PathBuf]) -> Result<Vec<Mp4>, MediaError> {
    paths.iter().map(|p| read_clip(p)).collect()
}

fn read_clip(path: &Path) -> Result<Mp4, MediaError> {
    let mut head = [0u8; 12];
    let n = File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|source| MediaError::Read { path: path.to_path_buf(), source })?;
    let other = super::audio::other_format(&head[..n]);
    if let Some(format) = other.filter(|_| !mp4read::looks_like_mp4(&head[..n])) {
        return Err(MediaError::Unsupported {
            path: path.to_path_buf(),
            reason: format!("it is {format}, not MP4"),
            wanted: "H.264 mp4",
        });
    }
    mp4read::read(path)
}

fn name(p: &Path) -> String {
    p.display().to_string()
}

/// The clips' video tracks, if they can be joined by remuxing (same size and
/// identical SPS/PPS, as clips from one generator are). Errors that
/// re-encoding would fix are `Unsupported`/`Incompatible` (see `needs_ffmpeg`).
pub(crate) fn check(clips: &[Mp4]) -> Result<Vec<&Track>, MediaError> {
    let mut tracks = Vec::with_capacity(clips.len());
    for c in clips {
        let invalid =
            |reason: &str| MediaError::Invalid { path: c.path.clone(), format: "mp4", reason: reason.into() };
        let t = c.track(Handler::Video).ok_or_else(|| invalid("it has no video track"))?;
        if !matches!(&t.codec, b"avc1" | b"avc3") {
            return Err(MediaError::Unsupported {
                path: c.path.clone(),
                reason: format!("its video codec is '{}', not H.264", fourcc(t.codec)),
                wanted: "H.264 mp4",
            });
        }
        match t.samples.first() {
            None => return Err(invalid("its video track has no frames")),
            Some(s) if !s.sync => {
                return Err(MediaError::Unsupported {
                    path: c.path.clone(),
                    reason: "its video does not start with a keyframe".into(),
                    wanted: "H.264 mp4 starting with a keyframe",
                })
            }
            Some(_) => {}
        }
        tracks.push(t);
    }
    // merge_with/concat_with refuse an empty clip list before getting here.
    let Some(&first) = tracks.first() else {
        return Ok(tracks);
    };
    let a = &clips[0].path;
    for (t, c) in tracks.iter().zip(clips).skip(1) {
        if (t.width, t.height) != (first.width, first.height) {
            return Err(MediaError::Incompatible {
                path: c.path.clone(),
                reason: format!(
                    "clips differ in resolution ({} is {}x{}, {} is {}x{})",
                    name(a),
                    first.width,
                    first.height,
                    name(&c.path),
                    t.width,
                    t.height
                ),
                hint: "use clips of one size".into(),
            });
        }
        // Decoders (ffmpeg's included) do not reliably switch SPS/PPS between
        // sample descriptions mid-track, so differing parameter sets need a
        // re-encode rather than a second avc1 entry.
        if t.avcc != first.avcc {
            return Err(MediaError::Incompatible {
                path: c.path.clone(),
                reason: format!(
                    "clips were encoded with different H.264 settings ({} and {} have different SPS/PPS)",
                    name(a),
                    name(&c.path)
                ),
                hint: "use clips encoded with the same settings".into(),
            });
        }
    }
    Ok(tracks)
}

/// Total media length of the clips, in seconds.
pub(crate) fn seconds(tracks: &[&Track]) -> f64 {
    tracks.iter().map(|t| t.media_duration() as f64 / t.timescale as f64).sum()
}

/// `v` ticks of timescale `from` in timescale `to`, rounded to nearest.
fn rescale(v: i64, from: u32, to: u32) -> i64 {
    if from == to {
        return v;
    }
    let (from, to) = (from as i128, to as i128);
    let n = v as i128 * to;
    let r = if n >= 0 { (2 * n + from) / (2 * from) } else { -((-2 * n + from) / (2 * from)) };
    r as i64
}

/// One video track playing `tracks` in order (clip i reads source i). With
/// `looping`, the clips repeat until `cut`; with `cut`, presentation ends
/// there and the samples after the last frame shown are dropped.
pub(crate) fn build(tracks: &[&Track], cut_secs: Option<f64>, looping: bool) -> OutTrack {
    // Precondition: at least one clip (merge_with/concat_with check it).
    debug_assert!(!tracks.is_empty());
    let ts = tracks[0].timescale;
    let shifts: Vec<i64> = tracks.iter().map(|t| rescale(t.shift.max(0), t.timescale, ts)).collect();
    // All clips share the largest B-frame delay: composition offsets are
    // raised per clip so each one still starts presenting at its first dts.
    let delay = shifts.iter().copied().max().unwrap_or(0);

    let mut entries: Vec<Vec<u8>> = Vec::new();
    let entry_map: Vec<Vec<u32>> = tracks
        .iter()
        .map(|t| {
            t.entries
                .iter()
                .map(|e| match entries.iter().position(|x| x == e) {
                    Some(i) => i as u32 + 1,
                    None => {
                        entries.push(e.clone());
                        entries.len() as u32
                    }
                })
                .collect()
        })
        .collect();

    let cut = cut_secs.map(|s| (s * ts as f64).round().max(0.0) as u64);
    let looping = looping && cut.is_some();
    let mut samples = Vec::new();
    let mut t = 0u64;
    'reps: loop {
        for (i, tr) in tracks.iter().enumerate() {
            if cut.is_some_and(|c| t >= c) {
                break 'reps;
            }
            let start = t;
            let mut acc = 0i64;
            for s in &tr.samples {
                acc += s.duration as i64;
                // Cumulative rescaling: rounding never drifts across samples.
                let end = start + rescale(acc, tr.timescale, ts) as u64;
                samples.push(OutSample {
                    src: i,
                    offset: s.offset,
                    size: s.size,
                    duration: (end - t) as u32,
                    cts: (rescale(s.cts as i64, tr.timescale, ts) - shifts[i] + delay) as i32,
                    sync: s.sync,
                    entry: entry_map[i][(s.entry - 1) as usize],
                });
                t = end;
            }
        }
        // t == 0 would loop forever on clips of zero length.
        if !looping || t == 0 {
            break;
        }
    }
    let presented = cut.map_or(t, |c| c.min(t));
    if cut.is_some_and(|c| c < t) {
        // Keep the decode-order prefix up to the last frame shown before the
        // cut: every kept frame's references are kept, and the edit list
        // hides anything after the cut.
        let mut dts = 0i64;
        let mut last = 0;
        for (i, s) in samples.iter().enumerate() {
            if dts + s.cts as i64 - delay < presented as i64 {
                last = i;
            }
            dts += s.duration as i64;
        }
        samples.truncate(last + 1);
    }
    OutTrack {
        kind: Kind::Video { width: tracks[0].width, height: tracks[0].height },
        timescale: ts,
        entries,
        samples,
        shift: delay,
        presented,
    }
}

#[cfg(test)]
mod tests {
    use super::super::mp4read::{Sample, Track};
    use super::*;

    /// I P B B ... at 512 ticks per frame with a 2-frame B delay, like x264.
    fn clip(frames: usize) -> Track {
        let cts = [1024, 2560, 512, 1024];
        Track {
            handler: Handler::Video,
            timescale: 12288,
            entries: vec![b"avc1-entry".to_vec()],
            codec: *b"avc1",
            width: 320,
            height: 180,
            avcc: None,
            audio: None,
            shift: 1024,
            presented: frames as u64 * 512,
            samples: (0..frames)
                .map(|i| Sample {
                    offset: 1000 + i as u64 * 10,
                    size: 10,
                    duration: 512,
                    cts: cts[i % 4],
                    sync: i % 24 == 0,
                    entry: 1,
                })
                .collect(),
        }
    }

    #[test]
    fn clips_play_in_order_and_share_one_sample_description() {
        let (a, b) = (clip(48), clip(24));
        let t = build(&[&a, &b], None, false);
        assert_eq!(t.samples.len(), 72);
        assert_eq!(t.entries.len(), 1);
        assert_eq!((t.samples[47].src, t.samples[48].src), (0, 1));
        assert_eq!(t.presented, 72 * 512);
        assert_eq!(t.shift, 1024);
    }

    #[test]
    fn looping_repeats_the_clips_until_the_cut_and_presents_exactly_to_it() {
        let a = clip(48); // 2 s
        let t = build(&[&a], Some(5.0), true);
        assert_eq!(t.presented, 5 * 12288);
        // 2.5 repetitions = 120 frames, plus the P frame decoded before the
        // last B frames it anchors (decode-order prefix).
        assert!(t.samples.len() >= 120 && t.samples.len() <= 122, "{}", t.samples.len());
        assert!(t.samples[48].sync && t.samples[96].sync);
    }

    #[test]
    fn different_timescales_are_rescaled_without_drift() {
        let a = clip(48);
        let mut b = clip(48);
        b.timescale = 24000;
        b.samples.iter_mut().for_each(|s| s.duration = 1000);
        b.shift = 2000;
        let t = build(&[&a, &b], None, false);
        let total: u64 = t.samples.iter().map(|s| s.duration as u64).sum();
        assert_eq!(total, 2 * 2 * 12288);
    }

    #[test]
    fn rescale_rounds_to_nearest_both_signs() {
        assert_eq!(rescale(1000, 24000, 12288), 512);
        assert_eq!(rescale(-1000, 24000, 12288), -512);
        assert_eq!(rescale(1, 3, 2), 1);
    }
}
