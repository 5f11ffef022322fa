//! The media library: joins generated video clips and songs into one MP4.
//!
//! It owns everything about media files: reading MP4/MP3/ADTS structure,
//! remuxing H.264 + MP3/AAC into a fast-start MP4 in pure Rust (no
//! re-encoding, sample bytes streamed from the inputs), and falling back to
//! an `ffmpeg` found on PATH only when a remux cannot do it (different
//! resolutions, other codecs). It must not know about pipelines, steps, the
//! engine or the CLI: callers hand it paths and get back a path, a duration
//! and how the file was made. Calls are synchronous and blocking; async
//! callers run them in `spawn_blocking`.

use std::path::{Path, PathBuf};
use std::str::FromStr;

mod adts;
mod audio;
mod audiojoin;
mod boxes;
mod esds;
mod ffmpeg;
mod frames;
mod moov;
mod mp3;
mod mp4read;
mod mux;
mod output;
mod stbl;
mod subtitle;
mod track;
mod video;

/// How to reconcile clips and a song of different lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fit {
    /// Repeat the clips in order until the song ends (cut at its end).
    #[default]
    LoopVideo,
    /// End with whichever of video and song is shorter.
    Shortest,
    /// Cut the song to the clips' total length.
    TrimAudio,
}

/// A `fit` value that is not one of the known names.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("unknown fit '{given}'; use one of loop-video, shortest, trim-audio (loop-video, the default, repeats the clips until the song ends)")]
pub struct ParseFitError {
    pub given: String,
}

impl FromStr for Fit {
    type Err = ParseFitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "loop-video" => Ok(Fit::LoopVideo),
            "shortest" => Ok(Fit::Shortest),
            "trim-audio" => Ok(Fit::TrimAudio),
            _ => Err(ParseFitError { given: s.to_string() }),
        }
    }
}

/// Put `audio` under the `video` clips (played in order) into `output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeRequest {
    pub video: Vec<PathBuf>,
    pub audio: PathBuf,
    pub fit: Fit,
    pub output: PathBuf,
}

/// How an output was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Pure-Rust stream copy: no re-encoding, no external tool.
    Remux,
    /// ffmpeg was needed (re-encoding or an unsupported input format).
    Ffmpeg,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MediaOutput {
    pub path: PathBuf,
    /// The output file's duration, in seconds.
    pub duration: f64,
    pub method: Method,
}

/// External tools the library may use. `Tools::from_env()` looks on PATH;
/// tests pass `Tools { ffmpeg: None }` to see the pure-Rust behaviour.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tools {
    pub ffmpeg: Option<PathBuf>,
}

impl Tools {
    /// Finds `ffmpeg` on the PATH of this process.
    pub fn from_env() -> Self {
        Tools { ffmpeg: ffmpeg::find_on_path(std::env::var_os("PATH").as_deref()) }
    }
}

#[derive(thiserror::Error, Debug)]
pub enum MediaError {
    #[error("cannot read {}: {source}; check that the file exists and is readable", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}; check that its directory exists, is writable and has free space", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is empty; re-download or re-generate it", path.display())]
    Empty { path: PathBuf },
    #[error("{} is not a valid {format} file ({reason}); re-download or re-generate it", path.display())]
    Invalid { path: PathBuf, format: &'static str, reason: String },
    #[error("{} cannot be remuxed because {reason}: converting it needs re-encoding, which needs ffmpeg on PATH; install ffmpeg (apt install ffmpeg) or provide {wanted}", path.display())]
    Unsupported { path: PathBuf, reason: String, wanted: &'static str },
    #[error("{reason}: joining them needs re-encoding, which needs ffmpeg on PATH; install ffmpeg (apt install ffmpeg) or {hint}")]
    Incompatible {
        /// The clip that does not match the first one.
        path: PathBuf,
        reason: String,
        hint: String,
    },
    #[error("ffmpeg failed to make {} ({status}): {stderr}; check that the inputs play (ffplay FILE) and that this ffmpeg has libx264", path.display())]
    Ffmpeg { path: PathBuf, status: String, stderr: String },
    #[error("no video clips given for {}; pass at least one clip", path.display())]
    NoClips { path: PathBuf },
    #[error("{} cannot be joined to {} without re-encoding: {reason}; make every file with the same settings (e.g. the same `speech` model and `response_format`)", path.display(), first.display())]
    AudioMismatch { path: PathBuf, first: PathBuf, reason: String },
}

impl MediaError {
    /// True when re-encoding with ffmpeg would get past this error.
    pub fn needs_ffmpeg(&self) -> bool {
        matches!(self, MediaError::Unsupported { .. } | MediaError::Incompatible { .. })
    }

    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            MediaError::Read { path, .. }
            | MediaError::Write { path, .. }
            | MediaError::Empty { path }
            | MediaError::Invalid { path, .. }
            | MediaError::Unsupported { path, .. }
            | MediaError::Incompatible { path, .. }
            | MediaError::Ffmpeg { path, .. }
            | MediaError::NoClips { path }
            | MediaError::AudioMismatch { path, .. } => path,
        }
    }
}

/// Merges clips and a song into one MP4, by remux when possible.
pub fn merge(req: &MergeRequest) -> Result<MediaOutput, MediaError> {
    merge_with(req, &Tools::from_env())
}

/// [`merge`] with explicit tools (e.g. `Tools { ffmpeg: None }`).
pub fn merge_with(req: &MergeRequest, tools: &Tools) -> Result<MediaOutput, MediaError> {
    if req.video.is_empty() {
        return Err(MediaError::NoClips { path: req.output.clone() });
    }
    let done = |duration, method| MediaOutput { path: req.output.clone(), duration, method };
    match remux_merge(req) {
        Ok(d) => Ok(done(d, Method::Remux)),
        Err(e) if e.needs_ffmpeg() => match &tools.ffmpeg {
            Some(ff) => ffmpeg::merge(ff, req).map(|d| done(d, Method::Ffmpeg)),
            None => Err(e),
        },
        Err(e) => Err(e),
    }
}

pub use subtitle::{parse_srt, to_srt, Cue};

/// Copies `video` into `output` (no re-encoding) with `cues` as a soft subtitle track.
pub fn add_subtitles(video: &Path, cues: &[Cue], output: &Path) -> Result<MediaOutput, MediaError> {
    let duration = subtitle::add(video, cues, output)?;
    Ok(MediaOutput { path: output.to_path_buf(), duration, method: Method::Remux })
}

/// True when `path` is an MP3 file (what `concat` joins as audio rather than as clips).
pub fn is_mp3(path: &Path) -> bool {
    audiojoin::looks_like_mp3(path)
}

/// Joins clips end to end into one MP4, by remux when possible. MP3 files join into one
/// `.mp3` (or `.m4a` when `output` says so), frames copied as they are.
pub fn concat(clips: &[PathBuf], output: &Path) -> Result<MediaOutput, MediaError> {
    concat_with(clips, output, &Tools::from_env())
}

/// [`concat`] with explicit tools.
pub fn concat_with(clips: &[PathBuf], output: &Path, tools: &Tools) -> Result<MediaOutput, MediaError> {
    if clips.is_empty() {
        return Err(MediaError::NoClips { path: output.to_path_buf() });
    }
    let done = |duration, method| MediaOutput { path: output.to_path_buf(), duration, method };
    if clips.iter().all(|c| is_mp3(c)) {
        return audiojoin::join(clips, output).map(|d| done(d, Method::Remux));
    }
    match remux_concat(clips, output, true) {
        Ok(d) => Ok(done(d, Method::Remux)),
        Err(e) if e.needs_ffmpeg() => match &tools.ffmpeg {
            Some(ff) => ffmpeg::concat(ff, clips, output).map(|d| done(d, Method::Ffmpeg)),
            None => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// Pure-Rust merge; returns the output duration.
fn remux_merge(req: &MergeRequest) -> Result<f64, MediaError> {
    let clips = video::read_clips(&req.video)?;
    let tracks = video::check(&clips)?;
    let mut song = audio::load(&req.audio, clips.len())?;
    let (v, a) = (video::seconds(&tracks), song.seconds());
    let (cut, looping) = match req.fit {
        Fit::LoopVideo => (a, true),
        Fit::Shortest => (v.min(a), false),
        Fit::TrimAudio => (v, false),
    };
    let video = video::build(&tracks, Some(cut), looping);
    let audio_cut = (cut * song.timescale as f64).round() as u64;
    audio::cut(&mut song, audio_cut);
    let mut sources = req.video.clone();
    sources.push(req.audio.clone());
    mux::write(&sources, &[video, song], &req.output)
}

/// Pure-Rust concat; `with_audio` keeps the clips' audio when they all have
/// a compatible track.
fn remux_concat(clips: &[PathBuf], output: &Path, with_audio: bool) -> Result<f64, MediaError> {
    let mp4s = video::read_clips(clips)?;
    let tracks = video::check(&mp4s)?;
    let mut out = vec![video::build(&tracks, None, false)];
    if with_audio {
        out.extend(audio::join_clip_audio(&mp4s)?);
    }
    mux::write(clips, &out, output)
}
