//! Loads a song for remuxing: detects the container (MP4/M4A, raw MP3, raw
//! ADTS AAC) and turns it into an audio [`OutTrack`] whose samples point at
//! byte ranges of the song file.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::esds::{self, AudioParams, OTI_AAC, OTI_MP3};
use super::frames::{ScanError, Window};
use super::mp4read::{self, Handler};
use super::mux::{Kind, OutSample, OutTrack};
use super::{adts, mp3, MediaError};

const WANTED: &str = "MP3 or AAC (.mp3, .aac, .m4a)";

fn unsupported(path: &Path, reason: impl Into<String>) -> MediaError {
    MediaError::Unsupported { path: path.to_path_buf(), reason: reason.into(), wanted: WANTED }
}

fn invalid(path: &Path, reason: impl Into<String>) -> MediaError {
    MediaError::Invalid { path: path.to_path_buf(), format: "MP3/AAC audio", reason: reason.into() }
}

/// Reads the song at `path` into a track whose samples come from source `src`.
pub(crate) fn load(path: &Path, src: usize) -> Result<OutTrack, MediaError> {
    let rerr = |source| MediaError::Read { path: path.to_path_buf(), source };
    let mut f = File::open(path).map_err(rerr)?;
    let len = f.metadata().map_err(rerr)?.len();
    if len == 0 {
        return Err(MediaError::Empty { path: path.to_path_buf() });
    }
    let mut head = [0u8; 12];
    let n = f.read(&mut head).map_err(rerr)?;
    let head = &head[..n];
    if mp4read::looks_like_mp4(head) {
        return from_mp4(path, src);
    }
    if let Some(format) = other_format(head) {
        return Err(unsupported(path, format!("it is {format}")));
    }
    let mut w = Window::new(f, len);
    let scan_err = |e: ScanError| match e {
        ScanError::Io(e) => rerr(e),
        ScanError::Invalid(r) => invalid(path, r),
        ScanError::Unsupported(r) => unsupported(path, r),
    };
    let start = super::frames::skip_id3v2(&mut w, 0).map_err(rerr)?;
    let is_adts = w.get(start, 2).map_err(rerr)?.is_some_and(|h| h[0] == 0xff && h[1] & 0xf6 == 0xf0);
    if is_adts {
        let a = adts::read(&mut w).map_err(scan_err)?;
        warn_skipped(path, a.skipped);
        let asc = a.key.audio_specific_config();
        let channels = a.key.channel_config.min(2) as u16;
        Ok(frames_track(src, &a.frames, 1024, a.key.sample_rate(), OTI_AAC, &asc, channels))
    } else {
        let m = mp3::read(&mut w).map_err(scan_err)?;
        warn_skipped(path, m.skipped);
        Ok(mp3_track(src, &m.frames, m.key))
    }
}

/// A track of MP3 frames (all from source `src`; the caller may repoint them).
pub(crate) fn mp3_track(src: usize, frames: &[(u64, u32)], key: mp3::Mp3Key) -> OutTrack {
    // 0x6B is MPEG-1 audio; MPEG-2 (and 2.5) low-rate MP3 is 0x69.
    let oti = if key.mpeg1 { OTI_MP3 } else { 0x69 };
    frames_track(src, frames, key.samples_per_frame(), key.sample_rate, oti, &[], key.channels)
}

fn warn_skipped(path: &Path, skipped: u64) {
    if skipped > 0 {
        tracing::warn!(file = %path.display(), skipped, "skipped bytes that are not audio frames");
    }
}

/// Formats ffmpeg can read but the remuxer cannot carry.
pub(crate) fn other_format(head: &[u8]) -> Option<&'static str> {
    let starts = |m: &[u8]| head.starts_with(m);
    if starts(b"RIFF") {
        Some("a WAV/RIFF file")
    } else if starts(b"fLaC") {
        Some("FLAC")
    } else if starts(b"OggS") {
        Some("Ogg (Vorbis/Opus)")
    } else if starts(&[0x1a, 0x45, 0xdf, 0xa3]) {
        Some("Matroska/WebM")
    } else if starts(b"FORM") {
        Some("AIFF")
    } else {
        None
    }
}

/// A track of fixed-duration frames (raw MP3 or ADTS).
fn frames_track(
    src: usize,
    frames: &[(u64, u32)],
    per_frame: u32,
    rate: u32,
    oti: u8,
    dsi: &[u8],
    channels: u16,
) -> OutTrack {
    let bytes: u64 = frames.iter().map(|f| f.1 as u64).sum();
    let samples = frames.len() as u64 * per_frame as u64;
    let avg_bitrate = (bytes * 8 * rate as u64 / samples.max(1)).min(u32::MAX as u64) as u32;
    let entry = esds::mp4a_entry(&AudioParams {
        oti,
        dsi,
        sample_rate: rate,
        channels,
        avg_bitrate,
        max_sample_size: frames.iter().map(|f| f.1).max().unwrap_or(0),
    });
    OutTrack {
        kind: Kind::Audio,
        timescale: rate,
        entries: vec![entry],
        samples: frames
            .iter()
            .map(|&(offset, size)| OutSample {
                src,
                offset,
                size,
                duration: per_frame,
                cts: 0,
                sync: true,
                entry: 1,
            })
            .collect(),
        shift: 0,
        presented: samples,
    }
}

fn from_mp4(path: &Path, src: usize) -> Result<OutTrack, MediaError> {
    let mp4 = mp4read::read(path)?;
    let t = mp4.track(Handler::Audio).ok_or_else(|| invalid(path, "the mp4 file has no audio track"))?;
    match &t.audio {
        Some(a) if esds::remuxable(a.oti) => {}
        Some(a) => {
            return Err(unsupported(
                path,
                format!("its audio codec (MPEG-4 object type 0x{:02x}) is not MP3 or AAC", a.oti),
            ))
        }
        None => {
            let codec = super::boxes::fourcc(t.codec);
            return Err(unsupported(path, format!("its audio codec '{codec}' is not MP3 or AAC")));
        }
    }
    Ok(track_from_mp4(t, src, Kind::Audio))
}

/// Copies an mp4 track's samples as they are (entries, timing, edit shift).
pub(crate) fn track_from_mp4(t: &mp4read::Track, src: usize, kind: Kind) -> OutTrack {
    OutTrack {
        kind,
        timescale: t.timescale,
        entries: t.entries.clone(),
        samples: t
            .samples
            .iter()
            .map(|s| OutSample {
                src,
                offset: s.offset,
                size: s.size,
                duration: s.duration,
                cts: s.cts,
                sync: s.sync,
                entry: s.entry,
            })
            .collect(),
        shift: t.shift.max(0),
        presented: t.presented,
    }
}

/// Keeps the samples that start before `cut` (track ticks) and presents
/// exactly `cut` when the track is longer.
pub(crate) fn cut(track: &mut OutTrack, cut: u64) {
    let mut t = 0u64;
    let shift = track.shift.max(0) as u64;
    let keep = track
        .samples
        .iter()
        .take_while(|s| {
            let start = t;
            t += s.duration as u64;
            start < cut + shift
        })
        .count();
    track.samples.truncate(keep);
    track.presented = track.presented.min(cut);
}

/// The clips' audio tracks joined end to end, if every clip has one and they
/// share a format. Clips without audio give a silent (video-only) result;
/// audio in different formats needs re-encoding.
pub(crate) fn join_clip_audio(clips: &[mp4read::Mp4]) -> Result<Option<OutTrack>, MediaError> {
    let tracks: Vec<Option<&mp4read::Track>> = clips.iter().map(|c| c.track(Handler::Audio)).collect();
    if tracks.iter().all(Option::is_none) {
        return Ok(None);
    }
    if tracks.iter().any(Option::is_none) {
        tracing::warn!("some clips have no audio track; the joined clip will have no audio");
        return Ok(None);
    }
    // Checked just above: every clip has an audio track.
    let tracks: Vec<&mp4read::Track> = tracks.into_iter().flatten().collect();
    // Non-empty: an empty clip list returned early (all tracks absent).
    let first = tracks[0];
    for (t, c) in tracks.iter().zip(clips) {
        let remuxable = t.audio.as_ref().is_some_and(|a| esds::remuxable(a.oti));
        if !remuxable {
            return Err(unsupported(&c.path, "its audio is not MP3 or AAC"));
        }
        if t.audio != first.audio || t.timescale != first.timescale {
            return Err(MediaError::Incompatible {
                path: c.path.clone(),
                reason: format!(
                    "clips have audio in different formats ({} and {})",
                    clips[0].path.display(),
                    c.path.display()
                ),
                hint: "use clips whose audio was encoded the same way".into(),
            });
        }
    }
    let mut joined = track_from_mp4(first, 0, Kind::Audio);
    joined.entries.truncate(1);
    joined.samples.iter_mut().for_each(|s| s.entry = 1);
    for (i, t) in tracks.iter().enumerate().skip(1) {
        let more = track_from_mp4(t, i, Kind::Audio);
        joined.samples.extend(more.samples.into_iter().map(|s| OutSample { entry: 1, ..s }));
    }
    let media: u64 = joined.samples.iter().map(|s| s.duration as u64).sum();
    joined.presented = media.saturating_sub(joined.shift as u64);
    Ok(Some(joined))
}
