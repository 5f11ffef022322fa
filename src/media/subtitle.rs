//! Soft subtitles: a 3GPP timed-text (`tx3g`, ffmpeg's `mov_text`) track added to an mp4
//! beside its video and audio, which are copied as they are (no re-encoding), plus the
//! same cues as SubRip text. Players show the track when subtitles are switched on.
//!
//! A tx3g sample is a 16-bit length and UTF-8 text; the track covers the whole timeline,
//! so the gaps between cues are empty samples. Cue payloads are written to a temporary
//! file beside the output so the muxer can stream them like any other source.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::boxes::BoxWriter;
use super::mp4read::{self, Handler};
use super::mux::{Kind, OutSample, OutTrack};
use super::MediaError;

/// One subtitle: shown from `start` to `end` seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// Text timing in milliseconds.
const TIMESCALE: u32 = 1000;

/// Cues sorted, clipped to `[0, limit]`, overlaps trimmed, empty ones dropped.
pub(crate) fn tidy(mut cues: Vec<Cue>, limit: f64) -> Vec<Cue> {
    cues.sort_by(|a, b| a.start.total_cmp(&b.start));
    let mut out: Vec<Cue> = Vec::new();
    for mut c in cues {
        c.start = c.start.max(out.last().map_or(0.0, |p| p.end)).max(0.0);
        c.end = c.end.min(limit);
        if c.end > c.start && !c.text.trim().is_empty() {
            out.push(c);
        }
    }
    out
}

/// The cues as SubRip (`.srt`) text.
pub fn to_srt(cues: &[Cue]) -> String {
    let stamp = |t: f64| {
        let ms = (t * 1000.0).round() as u64;
        format!("{:02}:{:02}:{:02},{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
    };
    cues.iter()
        .enumerate()
        .map(|(i, c)| format!("{}\n{} --> {}\n{}\n\n", i + 1, stamp(c.start), stamp(c.end), c.text.trim()))
        .collect()
}

/// Reads SubRip text: numbered blocks of `HH:MM:SS,mmm --> HH:MM:SS,mmm` and text lines.
pub fn parse_srt(text: &str) -> Result<Vec<Cue>, String> {
    let time = |s: &str| -> Option<f64> {
        let s = s.trim().replace(',', ".");
        let parts: Vec<&str> = s.split(':').collect();
        let [h, m, sec] = parts.as_slice() else { return None };
        Some(h.parse::<f64>().ok()? * 3600.0 + m.parse::<f64>().ok()? * 60.0 + sec.parse::<f64>().ok()?)
    };
    let mut cues = Vec::new();
    for block in text.replace("\r\n", "\n").split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut lines = block.trim().lines().skip_while(|l| !l.contains("-->"));
        let Some(timing) = lines.next() else { return Err(format!("no `-->` timing line in: {block}")) };
        let (a, b) = timing.split_once("-->").unwrap_or_default();
        let (start, end) = time(a).zip(time(b)).ok_or_else(|| format!("bad timing line `{timing}`"))?;
        cues.push(Cue { start, end, text: lines.collect::<Vec<_>>().join("\n") });
    }
    Ok(cues)
}

/// The `tx3g` sample entry: centred at the bottom, white text, one default font.
fn tx3g_entry() -> Vec<u8> {
    let mut w = BoxWriter::new();
    w.open(b"tx3g");
    w.zeros(6);
    w.u16(1); // data_reference_index
    w.u32(0); // display flags
    w.u8(1); // horizontal justification: centre
    w.u8(0xff); // vertical justification: bottom (-1)
    w.u32(0); // background colour, transparent
    w.zeros(8); // default text box: top, left, bottom, right
    w.u16(0); // style record: start char
    w.u16(0); // end char
    w.u16(1); // font id
    w.u8(0); // face style
    w.u8(18); // font size
    w.u32(0xffff_ffff); // text colour, opaque white
    w.open(b"ftab");
    w.u16(1);
    w.u16(1);
    w.u8(5);
    w.bytes(b"Serif");
    w.close();
    w.close();
    w.buf
}

/// The text track over `[0, duration]` and the payload bytes its samples point into.
fn text_track(cues: &[Cue], duration: f64, src: usize) -> (OutTrack, Vec<u8>) {
    let ms = |t: f64| (t * TIMESCALE as f64).round() as u64;
    let total = ms(duration);
    let mut payload = Vec::new();
    let mut samples = Vec::new();
    let mut push = |text: &str, from: u64, to: u64, payload: &mut Vec<u8>| {
        if to <= from {
            return;
        }
        let offset = payload.len() as u64;
        let bytes = text.as_bytes();
        let len = bytes.len().min(u16::MAX as usize);
        payload.extend((len as u16).to_be_bytes());
        payload.extend(&bytes[..len]);
        let size = 2 + len as u32;
        samples.push(OutSample {
            src,
            offset,
            size,
            duration: (to - from) as u32,
            cts: 0,
            sync: true,
            entry: 1,
        });
    };
    let mut t = 0u64;
    for c in cues {
        let (a, b) = (ms(c.start).max(t), ms(c.end).min(total));
        push("", t, a, &mut payload);
        push(c.text.trim(), a.max(t), b, &mut payload);
        t = t.max(b);
    }
    push("", t, total, &mut payload);
    let track = OutTrack {
        kind: Kind::Text,
        timescale: TIMESCALE,
        entries: vec![tx3g_entry()],
        samples,
        shift: 0,
        presented: total,
    };
    (track, payload)
}

/// Copies `video`'s video and audio tracks into `output` with `cues` as a soft subtitle
/// track; returns the duration in seconds.
pub(crate) fn add(video: &Path, cues: &[Cue], output: &Path) -> Result<f64, MediaError> {
    let mp4 = mp4read::read(video)?;
    let mut tracks = Vec::new();
    for t in &mp4.tracks {
        let kind = match t.handler {
            Handler::Video => Kind::Video { width: t.width, height: t.height },
            Handler::Audio => Kind::Audio,
            Handler::Other => continue,
        };
        tracks.push(super::audio::track_from_mp4(t, 0, kind));
    }
    if !tracks.iter().any(|t| matches!(t.kind, Kind::Video { .. })) {
        return Err(MediaError::Invalid {
            path: video.to_path_buf(),
            format: "mp4 video",
            reason: "it has no video track".into(),
        });
    }
    let duration = tracks.iter().map(OutTrack::seconds).fold(0.0, f64::max);
    let cues = tidy(cues.to_vec(), duration);
    let (text, payload) = text_track(&cues, duration, 1);
    tracks.push(text);
    let dir = output.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let werr = |source| MediaError::Write { path: output.to_path_buf(), source };
    let mut cue_file = tempfile::Builder::new().prefix(".cometflow-cues-").tempfile_in(dir).map_err(werr)?;
    cue_file.write_all(&payload).map_err(werr)?;
    cue_file.flush().map_err(werr)?;
    let sources: Vec<PathBuf> = vec![video.to_path_buf(), cue_file.path().to_path_buf()];
    super::mux::write(&sources, &tracks, output)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cue(start: f64, end: f64, text: &str) -> Cue {
        Cue { start, end, text: text.into() }
    }

    #[test]
    fn srt_round_trips() {
        let cues = vec![cue(0.5, 1.8, "Hello rainy night"), cue(62.0, 3725.25, "Neon\nglow")];
        let srt = to_srt(&cues);
        assert!(
            srt.starts_with("1\n00:00:00,500 --> 00:00:01,800\nHello rainy night\n\n2\n00:01:02,000"),
            "{srt}"
        );
        assert!(srt.contains("01:02:05,250"), "{srt}");
        assert_eq!(parse_srt(&srt).unwrap(), cues);
        assert!(parse_srt("1\nno timing here\n").is_err());
    }

    #[test]
    fn cues_are_sorted_clipped_and_never_overlap() {
        let got = tidy(vec![cue(3.0, 9.0, "late"), cue(0.0, 4.0, "early"), cue(1.0, 2.0, " ")], 5.0);
        assert_eq!(got, [cue(0.0, 4.0, "early"), cue(4.0, 5.0, "late")]);
    }

    #[test]
    fn the_text_track_fills_gaps_with_empty_samples() {
        let (t, payload) = text_track(&[cue(1.0, 2.0, "hi")], 3.0, 1);
        let durations: Vec<u32> = t.samples.iter().map(|s| s.duration).collect();
        assert_eq!(durations, [1000, 1000, 1000]);
        assert_eq!(payload, [0, 0, 0, 2, b'h', b'i', 0, 0]);
        assert_eq!(t.presented, 3000);
    }
}
