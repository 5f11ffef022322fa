//! The ffmpeg fallback, for what a remux cannot do: clips of different
//! sizes or codecs are re-encoded to H.264 (and audio to AAC), with
//! `-movflags +faststart`. ffmpeg runs with explicit arguments (no shell)
//! and writes to its own temporary file, renamed only on success.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::mp4read::{self, Handler};
use super::output::TempOutput;
use super::{MediaError, MergeRequest};

/// Size used when no clip's dimensions can be read (e.g. all WebM).
const DEFAULT_SIZE: (u16, u16) = (1280, 720);

/// The first executable `ffmpeg` in the given PATH value.
pub(crate) fn find_on_path(path: Option<&OsStr>) -> Option<PathBuf> {
    std::env::split_paths(path?).map(|dir| dir.join("ffmpeg")).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

/// Merge when the remux alone cannot: make one H.264 video file first (by
/// remux if possible, else by re-encoding), then add the song by remux if it
/// is MP3/AAC, else let ffmpeg encode it to AAC.
pub(crate) fn merge(ff: &Path, req: &MergeRequest) -> Result<f64, MediaError> {
    let video = TempOutput::new(&req.output)?;
    match super::remux_concat(&req.video, video.path(), false) {
        Ok(_) => {}
        Err(e) if e.needs_ffmpeg() => reencode(ff, &req.video, video.path(), false)?,
        Err(e) => return Err(e),
    }
    let staged = MergeRequest { video: vec![video.path().to_path_buf()], ..req.clone() };
    match super::remux_merge(&staged) {
        Err(e) if e.needs_ffmpeg() => add_audio(ff, video.path(), req),
        other => other,
    }
}

/// Joins clips by re-encoding them to one size.
pub(crate) fn concat(ff: &Path, clips: &[PathBuf], output: &Path) -> Result<f64, MediaError> {
    // Keep audio only if every clip has some (the concat filter needs all).
    let with_audio = clips.iter().all(|c| mp4read::read(c).is_ok_and(|m| m.track(Handler::Audio).is_some()));
    let tmp = TempOutput::new(output)?;
    reencode(ff, clips, tmp.path(), with_audio)?;
    let duration = mp4read::read(tmp.path())?.duration;
    tmp.finish()?;
    Ok(duration)
}

/// Re-encodes `clips` (scaled and padded to the first clip's size) into one
/// H.264 file at `out`.
fn reencode(ff: &Path, clips: &[PathBuf], out: &Path, with_audio: bool) -> Result<(), MediaError> {
    let (w, h) = clips
        .iter()
        .filter_map(|c| mp4read::read(c).ok())
        .find_map(|m| m.track(Handler::Video).map(|t| (t.width, t.height)))
        .unwrap_or(DEFAULT_SIZE);
    // libx264 with yuv420p needs even dimensions.
    let (w, h) = ((w & !1).max(2), (h & !1).max(2));
    let mut filter = String::new();
    let mut inputs = String::new();
    for i in 0..clips.len() {
        filter += &format!(
            "[{i}:v:0]scale={w}:{h}:force_original_aspect_ratio=decrease,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv420p[v{i}];"
        );
        inputs += &format!("[v{i}]");
        if with_audio {
            filter += &format!("[{i}:a:0]aformat=sample_rates=48000:channel_layouts=stereo[a{i}];");
            inputs += &format!("[a{i}]");
        }
    }
    let a = with_audio as u8;
    filter +=
        &format!("{inputs}concat=n={}:v=1:a={a}[v]{}", clips.len(), if with_audio { "[a]" } else { "" });

    let mut args = base_args();
    for c in clips {
        args.extend(["-i".into(), c.into()]);
    }
    args.extend(strs(&["-filter_complex", &filter, "-map", "[v]"]));
    if with_audio {
        args.extend(strs(&["-map", "[a]", "-c:a", "aac", "-b:a", "160k"]));
    }
    args.extend(strs(&["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"]));
    args.extend(out_args(out));
    run(ff, &args, out)
}

/// Merges a song ffmpeg must encode (not MP3/AAC): ffmpeg turns only the
/// song into AAC, and the remux does the rest, so every fit mode cuts at
/// exactly the same place as in the pure-Rust path.
fn add_audio(ff: &Path, video: &Path, req: &MergeRequest) -> Result<f64, MediaError> {
    let song = TempOutput::new(&req.output)?;
    let mut args = base_args();
    args.extend(["-i".into(), req.audio.clone().into()]);
    args.extend(strs(&["-map", "0:a:0", "-c:a", "aac", "-b:a", "192k"]));
    args.extend(out_args(song.path()));
    run(ff, &args, &req.output)?;
    super::remux_merge(&MergeRequest {
        video: vec![video.to_path_buf()],
        audio: song.path().to_path_buf(),
        ..req.clone()
    })
}

fn strs(s: &[&str]) -> Vec<OsString> {
    s.iter().map(OsString::from).collect()
}

fn base_args() -> Vec<OsString> {
    strs(&["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
}

fn out_args(out: &Path) -> Vec<OsString> {
    // -f mp4: the temporary name's extension must not decide the format.
    let mut a = strs(&["-movflags", "+faststart", "-f", "mp4"]);
    a.push(out.into());
    a
}

fn run(ff: &Path, args: &[OsString], output: &Path) -> Result<(), MediaError> {
    tracing::debug!(?args, "running ffmpeg");
    let fail =
        |status: String, stderr: String| MediaError::Ffmpeg { path: output.to_path_buf(), status, stderr };
    let out = Command::new(ff)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| fail(format!("could not start {}: {e}", ff.display()), String::new()))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The last lines say what went wrong; keep the message readable.
    let tail: Vec<&str> = stderr.trim().lines().rev().take(6).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(fail(out.status.to_string(), tail.join(" | ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ffmpeg_is_found_only_in_the_given_path() {
        assert_eq!(find_on_path(None), None);
        assert_eq!(find_on_path(Some(OsStr::new("/nonexistent-dir"))), None);
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("ffmpeg");
        std::fs::write(&fake, "#!/bin/sh\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(find_on_path(Some(dir.path().as_os_str())), None, "not executable yet");
            std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        assert_eq!(find_on_path(Some(dir.path().as_os_str())), Some(fake));
    }
}
