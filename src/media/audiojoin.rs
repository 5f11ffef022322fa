//! Joins MP3 files end to end without re-encoding: the audio frames of each file, in
//! order, with their ID3v2/ID3v1 tags and Xing/Info header frames left out (a header
//! frame describes one file's length and would make players misreport the whole). The
//! result is a raw `.mp3`, or an `.m4a`/`.mp4` through the remuxer.
//!
//! MP3 frames are self-contained, so joining them is valid exactly when every file has
//! the same MPEG version, sample rate and channel count; anything else is refused with
//! the file that differs. It must not know about steps: it takes paths, returns seconds.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::frames::{ScanError, Window};
use super::mp3::{self, Mp3, Mp3Key};
use super::mux::OutTrack;
use super::output::TempOutput;
use super::MediaError;

/// True when the file starts like an MP3 (an ID3v2 tag or a frame sync), not an mp4.
pub(crate) fn looks_like_mp3(path: &Path) -> bool {
    let mut head = [0u8; 4];
    let n = File::open(path).and_then(|mut f| f.read(&mut head)).unwrap_or(0);
    n >= 3 && (head.starts_with(b"ID3") || (head[0] == 0xff && head[1] & 0xe0 == 0xe0))
}

/// Every file's frames, checked to share one format.
fn read_all(paths: &[PathBuf]) -> Result<(Mp3Key, Vec<Mp3>), MediaError> {
    let mut all: Vec<Mp3> = Vec::with_capacity(paths.len());
    for path in paths {
        let rerr = |source| MediaError::Read { path: path.clone(), source };
        let f = File::open(path).map_err(rerr)?;
        let len = f.metadata().map_err(rerr)?.len();
        if len == 0 {
            return Err(MediaError::Empty { path: path.clone() });
        }
        let mp3 = mp3::read(&mut Window::new(f, len)).map_err(|e| match e {
            ScanError::Io(e) => rerr(e),
            ScanError::Invalid(r) | ScanError::Unsupported(r) => {
                MediaError::Invalid { path: path.clone(), format: "MP3", reason: r }
            }
        })?;
        if let Some(first) = all.first() {
            if first.key != mp3.key {
                return Err(MediaError::AudioMismatch {
                    path: path.clone(),
                    first: paths[0].clone(),
                    reason: format!("{} but the first is {}", describe(mp3.key), describe(first.key)),
                });
            }
        }
        all.push(mp3);
    }
    // The caller passes at least one path (an empty list is refused before).
    let key = all.first().map(|m| m.key).ok_or_else(|| MediaError::NoClips { path: PathBuf::new() })?;
    Ok((key, all))
}

fn describe(k: Mp3Key) -> String {
    let channels = if k.channels == 1 { "mono" } else { "stereo" };
    format!("it is {} Hz {channels}", k.sample_rate)
}

fn seconds(key: Mp3Key, all: &[Mp3]) -> f64 {
    let frames: usize = all.iter().map(|m| m.frames.len()).sum();
    frames as f64 * key.samples_per_frame() as f64 / key.sample_rate as f64
}

/// Joins `paths` into `output`: an mp4 container when it ends in `.m4a`/`.mp4`, else raw
/// MP3. Returns the duration in seconds.
pub(crate) fn join(paths: &[PathBuf], output: &Path) -> Result<f64, MediaError> {
    let (key, all) = read_all(paths)?;
    let ext = output.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    if matches!(ext.as_str(), "m4a" | "mp4" | "m4b") {
        return super::mux::write(paths, &[track(key, &all)], output);
    }
    write_mp3(paths, &all, output)?;
    Ok(seconds(key, &all))
}

/// One audio track whose samples point into every file in turn.
fn track(key: Mp3Key, all: &[Mp3]) -> OutTrack {
    let frames: Vec<(u64, u32)> = all.iter().flat_map(|m| m.frames.iter().copied()).collect();
    let mut t = super::audio::mp3_track(0, &frames, key);
    let sources = all.iter().enumerate().flat_map(|(i, m)| std::iter::repeat_n(i, m.frames.len()));
    t.samples.iter_mut().zip(sources).for_each(|(s, src)| s.src = src);
    t
}

fn write_mp3(paths: &[PathBuf], all: &[Mp3], output: &Path) -> Result<(), MediaError> {
    let tmp = TempOutput::new(output)?;
    let werr = |source| MediaError::Write { path: output.to_path_buf(), source };
    let mut out = BufWriter::with_capacity(1 << 20, tmp.file());
    for (path, mp3) in paths.iter().zip(all) {
        let rerr = |source| MediaError::Read { path: path.clone(), source };
        let mut f = File::open(path).map_err(rerr)?;
        for (off, len) in spans(&mp3.frames) {
            f.seek(SeekFrom::Start(off)).map_err(rerr)?;
            let copied = io::copy(&mut (&mut f).take(len), &mut out).map_err(werr)?;
            if copied != len {
                let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "the file shrank while it was read");
                return Err(rerr(eof));
            }
        }
    }
    out.flush().map_err(werr)?;
    drop(out);
    tmp.finish()
}

/// Frames merged into contiguous byte ranges, so a clean file is one read.
fn spans(frames: &[(u64, u32)]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &(off, size) in frames {
        match out.last_mut() {
            Some((start, len)) if *start + *len == off => *len += size as u64,
            _ => out.push((off, size as u64)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::mp3::tests::frame;
    use super::*;

    fn file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn tagged(frames: usize) -> Vec<u8> {
        let mut data = b"ID3\x03\x00\x00\x00\x00\x00\x0a".to_vec();
        data.extend([0x41; 10]);
        let mut info = frame(false);
        info[36..40].copy_from_slice(b"Info");
        data.extend(info);
        (0..frames).for_each(|i| data.extend(frame(i % 2 == 0)));
        data
    }

    #[test]
    fn frames_are_joined_without_tags_or_info_frames() {
        let dir = tempfile::tempdir().unwrap();
        let a = file(dir.path(), "a.mp3", &tagged(3));
        let b = file(dir.path(), "b.mp3", &tagged(2));
        let out = dir.path().join("out.mp3");
        let seconds = join(&[a, b], &out).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(&bytes[..2], [0xff, 0xfb], "starts with an audio frame, not a tag");
        assert_eq!(bytes.len(), 3 * 417 + 2 + 2 * 417 + 1);
        assert!((seconds - 5.0 * 1152.0 / 44100.0).abs() < 1e-9);
        assert!(!bytes.windows(4).any(|w| w == b"Info"));
    }

    #[test]
    fn different_channel_counts_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = file(dir.path(), "a.mp3", &tagged(3));
        let mut mono = Vec::new();
        (0..3).for_each(|_| {
            let mut f = frame(false);
            f[3] = 0xc0; // channel mode 3: mono
            mono.extend(f)
        });
        let b = file(dir.path(), "b.mp3", &mono);
        let err = join(&[a, b.clone()], &dir.path().join("out.mp3")).unwrap_err().to_string();
        assert!(err.contains(&b.display().to_string()) && err.contains("mono"), "{err}");
    }

    #[test]
    fn contiguous_frames_make_one_span() {
        assert_eq!(spans(&[(10, 5), (15, 5), (30, 2)]), [(10, 10), (30, 2)]);
    }
}
