//! Reads the structure of an MP4 file: tracks, sample entries and the full
//! sample table (where each sample's bytes are, its timing and sync flag).
//!
//! Only `moov` is loaded into memory; sample data stays on disk and is later
//! copied by byte range. Every offset is checked against the file length so a
//! truncated download is reported here instead of producing a broken output.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::boxes::{children, find, fourcc, need, path, BoxRef, ParseResult, Rd};
pub(crate) use super::stbl::Sample;
use super::MediaError;

/// moov boxes beyond this are not something a generated clip ever has;
/// refusing them keeps a corrupt size field from allocating gigabytes.
const MAX_MOOV: u64 = 256 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handler {
    Video,
    Audio,
    Other,
}

/// Codec facts from an `mp4a` sample entry's `esds`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AudioEntry {
    /// MPEG-4 objectTypeIndication: 0x40 AAC, 0x6B MP3, ...
    pub oti: u8,
    /// DecoderSpecificInfo (the AudioSpecificConfig for AAC).
    pub dsi: Vec<u8>,
    pub channels: u16,
}

#[derive(Debug, Clone)]
pub(crate) struct Track {
    pub handler: Handler,
    pub timescale: u32,
    /// Sample entries exactly as stored (e.g. a whole `avc1` box with `avcC`).
    pub entries: Vec<Vec<u8>>,
    /// Fourcc of the first sample entry (`avc1`, `mp4a`, `hvc1`, ...).
    pub codec: [u8; 4],
    pub width: u16,
    pub height: u16,
    /// Body of the first entry's `avcC` (SPS/PPS), for compatibility checks.
    pub avcc: Option<Vec<u8>>,
    pub audio: Option<AudioEntry>,
    /// media_time of the first non-empty edit: how much of the media start
    /// is hidden (B-frame delay, AAC priming).
    pub shift: i64,
    /// Presented duration in the track timescale: the edit's segment
    /// duration when there is an edit list, else the media duration.
    pub presented: u64,
    pub samples: Vec<Sample>,
}

impl Track {
    /// Sum of sample durations, in the track timescale.
    pub(crate) fn media_duration(&self) -> u64 {
        self.samples.iter().map(|s| s.duration as u64).sum()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Mp4 {
    pub path: PathBuf,
    /// mvhd duration in seconds.
    pub duration: f64,
    pub tracks: Vec<Track>,
}

impl Mp4 {
    pub(crate) fn track(&self, handler: Handler) -> Option<&Track> {
        self.tracks.iter().find(|t| t.handler == handler)
    }
}

/// True when the first bytes look like an ISO-BMFF box (ftyp, moov, ...).
pub(crate) fn looks_like_mp4(head: &[u8]) -> bool {
    head.len() >= 8
        && matches!(&head[4..8], b"ftyp" | b"moov" | b"mdat" | b"free" | b"skip" | b"wide" | b"styp")
}

fn invalid(path: &Path, reason: impl Into<String>) -> MediaError {
    MediaError::Invalid { path: path.to_path_buf(), format: "mp4", reason: reason.into() }
}

/// Reads an MP4 file's structure (not its sample data).
pub(crate) fn read(path: &Path) -> Result<Mp4, MediaError> {
    let io = |source| MediaError::Read { path: path.to_path_buf(), source };
    let mut f = File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    if len == 0 {
        return Err(MediaError::Empty { path: path.to_path_buf() });
    }
    let moov = read_moov(&mut f, len).map_err(|e| match e {
        Ok(reason) => invalid(path, reason),
        Err(e) => io(e),
    })?;
    parse_moov(&moov, len)
        .map(|(duration, tracks)| Mp4 { path: path.to_path_buf(), duration, tracks })
        .map_err(|reason| invalid(path, reason))
}

/// Walks the top-level boxes by seeking; returns the moov body.
/// Error: Ok(reason) for a malformed file, Err(io) for an I/O failure.
fn read_moov(f: &mut File, len: u64) -> Result<Vec<u8>, Result<String, std::io::Error>> {
    let mut pos = 0u64;
    let mut moov = None;
    while pos < len {
        let mut head = [0u8; 16];
        let n = (len - pos).min(16) as usize;
        f.seek(SeekFrom::Start(pos)).map_err(Err)?;
        f.read_exact(&mut head[..n]).map_err(Err)?;
        if n < 8 {
            return Err(Ok(format!("truncated box header at byte {pos}")));
        }
        if pos == 0 && !looks_like_mp4(&head) {
            return Err(Ok("it does not start with an mp4 box".into()));
        }
        let (hlen, size) = super::boxes::box_header(&head[..n]).map_err(Ok)?;
        let size = if size == 0 { len - pos } else { size };
        let kind: [u8; 4] = [head[4], head[5], head[6], head[7]];
        if size < hlen as u64 {
            return Err(Ok(format!("box '{}' has an impossible size {size}", fourcc(kind))));
        }
        if pos + size > len {
            return Err(Ok(format!(
                "file is truncated: box '{}' at byte {pos} needs {size} bytes but the file ends at {len}",
                fourcc(kind)
            )));
        }
        if &kind == b"moov" {
            if size > MAX_MOOV {
                return Err(Ok(format!("moov box of {size} bytes is implausibly large")));
            }
            let mut body = vec![0u8; (size - hlen as u64) as usize];
            f.seek(SeekFrom::Start(pos + hlen as u64)).map_err(Err)?;
            f.read_exact(&mut body).map_err(Err)?;
            moov = Some(body);
        }
        pos += size;
    }
    moov.ok_or_else(|| Ok("no moov box (an unfinished download or recording?)".to_string()))
}

fn parse_moov(moov: &[u8], file_len: u64) -> ParseResult<(f64, Vec<Track>)> {
    let kids = children(moov)?;
    let mut r = Rd::new(need(&kids, b"mvhd")?.body, "mvhd");
    let (v, _) = r.full_header()?;
    let (ts, dur) = if v == 1 {
        r.skip(16)?;
        (r.u32()?, r.u64()?)
    } else {
        r.skip(8)?;
        (r.u32()?, r.u32()? as u64)
    };
    let duration = if ts == 0 { 0.0 } else { dur as f64 / ts as f64 };
    let mut tracks = Vec::new();
    for trak in kids.iter().filter(|b| &b.kind == b"trak") {
        tracks.push(parse_trak(trak.body, file_len, ts)?);
    }
    Ok((duration, tracks))
}

fn parse_trak(trak: &[u8], file_len: u64, movie_timescale: u32) -> ParseResult<Track> {
    let kids = children(trak)?;
    let mdia = children(need(&kids, b"mdia")?.body)?;
    let mut r = Rd::new(need(&mdia, b"mdhd")?.body, "mdhd");
    let (v, _) = r.full_header()?;
    r.skip(if v == 1 { 16 } else { 8 })?;
    let timescale = r.u32()?;
    if timescale == 0 {
        return Err("a track has timescale 0".into());
    }
    let mut r = Rd::new(need(&mdia, b"hdlr")?.body, "hdlr");
    r.skip(8)?;
    let handler = match r.bytes(4)? {
        b"vide" => Handler::Video,
        b"soun" => Handler::Audio,
        _ => Handler::Other,
    };
    let edit = match find(&kids, b"edts") {
        Some(edts) => first_edit(edts.body)?,
        None => None,
    };
    let stbl = children(path(need(&mdia, b"minf")?.body, &[b"stbl"])?)?;
    let entries = sample_entries(need(&stbl, b"stsd")?.body)?;
    let first = entries.first().ok_or("stsd has no sample entry")?;
    let mut track = Track {
        handler,
        timescale,
        codec: first.kind,
        width: 0,
        height: 0,
        avcc: None,
        audio: None,
        shift: edit.map_or(0, |e| e.0),
        presented: 0,
        entries: entries.iter().map(|e| e.raw.to_vec()).collect(),
        samples: Vec::new(),
    };
    match handler {
        Handler::Video => read_visual_entry(first.body, &mut track)?,
        Handler::Audio if &first.kind == b"mp4a" => {
            track.audio = Some(read_mp4a_entry(first.body)?);
        }
        _ => {}
    }
    track.samples = super::stbl::expand(&stbl, file_len, entries.len() as u32)?;
    let media = track.media_duration();
    track.presented = match edit {
        Some((_, segment)) if movie_timescale > 0 && segment > 0 => {
            (segment as u128 * timescale as u128 / movie_timescale as u128) as u64
        }
        _ => media,
    };
    Ok(track)
}

/// (media_time, segment_duration in movie ticks) of the first non-empty edit.
fn first_edit(edts: &[u8]) -> ParseResult<Option<(i64, u64)>> {
    let kids = children(edts)?;
    let Some(elst) = find(&kids, b"elst") else {
        return Ok(None);
    };
    let mut r = Rd::new(elst.body, "elst");
    let (v, _) = r.full_header()?;
    let n = r.u32()?;
    for _ in 0..n {
        let (segment, media_time) =
            if v == 1 { (r.u64()?, r.u64()? as i64) } else { (r.u32()? as u64, r.u32()? as i32 as i64) };
        r.skip(4)?;
        // -1 marks an empty edit (a delay before the media starts).
        if media_time >= 0 {
            return Ok(Some((media_time, segment)));
        }
    }
    Ok(None)
}

fn sample_entries(stsd: &[u8]) -> ParseResult<Vec<BoxRef<'_>>> {
    let mut r = Rd::new(stsd, "stsd");
    r.full_header()?;
    let n = r.u32()? as usize;
    let entries = children(r.rest())?;
    if entries.len() < n {
        return Err(format!("stsd declares {n} entries but holds {}", entries.len()));
    }
    Ok(entries.into_iter().take(n).collect())
}

fn read_visual_entry(body: &[u8], track: &mut Track) -> ParseResult<()> {
    let mut r = Rd::new(body, "visual sample entry");
    r.skip(24)?;
    track.width = r.u16()?;
    track.height = r.u16()?;
    r.skip(50)?;
    let kids = children(r.rest())?;
    track.avcc = find(&kids, b"avcC").map(|b| b.body.to_vec());
    Ok(())
}

fn read_mp4a_entry(body: &[u8]) -> ParseResult<AudioEntry> {
    let mut r = Rd::new(body, "mp4a");
    r.skip(8)?;
    let version = r.u16()?;
    r.skip(6)?;
    let channels = r.u16()?;
    r.skip(10)?;
    // QuickTime sound entries v1/v2 carry extra fields before the children.
    r.skip(match version {
        1 => 16,
        2 => 36,
        _ => 0,
    })?;
    let kids = children(r.rest())?;
    let esds = find(&kids, b"esds").ok_or("mp4a entry has no esds")?;
    let (oti, dsi) = super::esds::parse(esds.body)?;
    Ok(AudioEntry { oti, dsi, channels })
}
