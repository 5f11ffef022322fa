//! The MP4 writer: lays out interleaved chunks, writes a fast-start file
//! (ftyp, moov, then mdat) and streams every sample's bytes from its source
//! file by byte range, so memory stays flat however long the media is.
//! The file is written under a temporary name next to the output and renamed
//! only once complete.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::moov::{self, MOVIE_TIMESCALE};
use super::MediaError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutSample {
    /// Index into the `sources` given to [`write`].
    pub src: usize,
    pub offset: u64,
    pub size: u32,
    pub duration: u32,
    pub cts: i32,
    pub sync: bool,
    /// 1-based sample entry index.
    pub entry: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Video {
        width: u16,
        height: u16,
    },
    Audio,
    /// Timed text (`tx3g` subtitles).
    Text,
}

#[derive(Debug, Clone)]
pub(crate) struct OutTrack {
    pub kind: Kind,
    pub timescale: u32,
    /// Complete sample entry boxes (avc1, mp4a).
    pub entries: Vec<Vec<u8>>,
    /// In decode order.
    pub samples: Vec<OutSample>,
    /// Media time where presentation starts (edit list media_time).
    pub shift: i64,
    /// Presented duration in the track timescale (edit list segment).
    pub presented: u64,
}

impl OutTrack {
    pub(crate) fn seconds(&self) -> f64 {
        self.presented as f64 / self.timescale as f64
    }
}

/// A run of consecutive samples of one track, stored contiguously in mdat.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Chunk {
    pub track: usize,
    pub first: usize,
    pub count: usize,
    /// Offset from the start of the mdat payload.
    pub offset: u64,
}

/// Chunks hold about this much time: small enough that players reading A/V
/// in step seek little, large enough to keep the tables short.
const CHUNK_SECONDS: f64 = 0.5;

/// Interleaves the tracks' samples into chunks in time order.
pub(crate) fn plan_chunks(tracks: &[OutTrack]) -> Vec<Chunk> {
    let mut next = vec![0usize; tracks.len()];
    let mut dts = vec![0u64; tracks.len()];
    let mut chunks = Vec::new();
    let mut offset = 0u64;
    loop {
        // The track whose next sample is earliest goes next.
        let pick = (0..tracks.len()).filter(|&i| next[i] < tracks[i].samples.len()).min_by(|&a, &b| {
            let ta = dts[a] as f64 / tracks[a].timescale as f64;
            let tb = dts[b] as f64 / tracks[b].timescale as f64;
            ta.total_cmp(&tb)
        });
        let Some(i) = pick else { break };
        let t = &tracks[i];
        let first = next[i];
        let limit = dts[i] + (CHUNK_SECONDS * t.timescale as f64) as u64;
        let entry = t.samples[first].entry;
        let mut bytes = 0u64;
        while next[i] < t.samples.len()
            && (next[i] == first || dts[i] < limit)
            && t.samples[next[i]].entry == entry
        {
            let s = &t.samples[next[i]];
            bytes += s.size as u64;
            dts[i] += s.duration as u64;
            next[i] += 1;
        }
        chunks.push(Chunk { track: i, first, count: next[i] - first, offset });
        offset += bytes;
    }
    chunks
}

/// Writes the tracks to `output`; returns the file's duration in seconds.
pub(crate) fn write(sources: &[PathBuf], tracks: &[OutTrack], output: &Path) -> Result<f64, MediaError> {
    let chunks = plan_chunks(tracks);
    let payload: u64 = tracks.iter().flat_map(|t| &t.samples).map(|s| s.size as u64).sum();
    let ftyp = ftyp();
    // Chunk offsets must be known before mdat is written (fast start): size
    // the moov with offsets relative to 0, then rebuild it with the real base.
    // The second build has the same size because the offset width is fixed.
    let probe = moov::build(tracks, &chunks, 0, true);
    let wide = ftyp.len() as u64 + probe.len() as u64 + 16 + payload > u32::MAX as u64;
    let probe_len = moov::build(tracks, &chunks, 0, wide).len() as u64;
    let mdat_header: u64 = if payload + 8 > u32::MAX as u64 { 16 } else { 8 };
    let base = ftyp.len() as u64 + probe_len + mdat_header;
    let moov = moov::build(tracks, &chunks, base, wide);
    debug_assert_eq!(moov.len() as u64, probe_len);

    let mut opened = Vec::with_capacity(sources.len());
    for p in sources {
        opened.push(File::open(p).map_err(|source| MediaError::Read { path: p.clone(), source })?);
    }
    let tmp = super::output::TempOutput::new(output)?;
    let werr = |source| MediaError::Write { path: output.to_path_buf(), source };
    let mut out = BufWriter::with_capacity(1 << 20, tmp.file());
    out.write_all(&ftyp).map_err(werr)?;
    out.write_all(&moov).map_err(werr)?;
    if mdat_header == 16 {
        out.write_all(&1u32.to_be_bytes()).map_err(werr)?;
        out.write_all(b"mdat").map_err(werr)?;
        out.write_all(&(payload + 16).to_be_bytes()).map_err(werr)?;
    } else {
        out.write_all(&(payload as u32 + 8).to_be_bytes()).map_err(werr)?;
        out.write_all(b"mdat").map_err(werr)?;
    }
    copy_samples(&chunks, tracks, sources, &mut opened, &mut out, output)?;
    out.flush().map_err(werr)?;
    drop(out);
    tmp.finish()?;
    let ticks = tracks.iter().map(moov::movie_ticks).max().unwrap_or(0);
    Ok(ticks as f64 / MOVIE_TIMESCALE as f64)
}

/// Copies sample bytes in mdat order, merging runs that are contiguous in
/// the source into one read.
fn copy_samples(
    chunks: &[Chunk],
    tracks: &[OutTrack],
    sources: &[PathBuf],
    files: &mut [File],
    out: &mut impl Write,
    output: &Path,
) -> Result<(), MediaError> {
    let mut span: Option<(usize, u64, u64)> = None;
    let samples = chunks.iter().flat_map(|c| tracks[c.track].samples[c.first..c.first + c.count].iter());
    for s in samples {
        match &mut span {
            Some((src, off, len)) if *src == s.src && *off + *len == s.offset => *len += s.size as u64,
            _ => {
                if let Some(sp) = span.take() {
                    copy_span(sp, sources, files, out, output)?;
                }
                span = Some((s.src, s.offset, s.size as u64));
            }
        }
    }
    if let Some(sp) = span {
        copy_span(sp, sources, files, out, output)?;
    }
    Ok(())
}

fn copy_span(
    (src, off, len): (usize, u64, u64),
    sources: &[PathBuf],
    files: &mut [File],
    out: &mut impl Write,
    output: &Path,
) -> Result<(), MediaError> {
    let rerr = |source| MediaError::Read { path: sources[src].clone(), source };
    let f = &mut files[src];
    f.seek(SeekFrom::Start(off)).map_err(rerr)?;
    let copied = io::copy(&mut f.take(len), out).map_err(|e| {
        // io::copy cannot tell which side failed; a write error is far more
        // likely (disk full), and the read side was validated when parsed.
        MediaError::Write { path: output.to_path_buf(), source: e }
    })?;
    if copied != len {
        return Err(rerr(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the file shrank while it was being read",
        )));
    }
    Ok(())
}

fn ftyp() -> Vec<u8> {
    let mut w = super::boxes::BoxWriter::new();
    w.open(b"ftyp");
    w.bytes(b"isom");
    w.u32(0x200);
    for brand in [b"isom", b"iso2", b"avc1", b"mp41"] {
        w.bytes(brand);
    }
    w.close();
    w.buf
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(timescale: u32, n: usize, duration: u32) -> OutTrack {
        OutTrack {
            kind: Kind::Audio,
            timescale,
            entries: vec![],
            samples: (0..n)
                .map(|i| OutSample {
                    src: 0,
                    offset: i as u64 * 10,
                    size: 10,
                    duration,
                    cts: 0,
                    sync: true,
                    entry: 1,
                })
                .collect(),
            shift: 0,
            presented: n as u64 * duration as u64,
        }
    }

    #[test]
    fn chunks_interleave_tracks_about_every_half_second_in_time_order() {
        // 2 s of 24 fps video and 2 s of 1152-sample MP3 frames at 44.1 kHz.
        let tracks = [track(12288, 48, 512), track(44100, 77, 1152)];
        let chunks = plan_chunks(&tracks);
        let order: Vec<usize> = chunks.iter().map(|c| c.track).collect();
        assert_eq!(&order[..4], [0, 1, 0, 1]);
        for (i, t) in tracks.iter().enumerate() {
            let total: usize = chunks.iter().filter(|c| c.track == i).map(|c| c.count).sum();
            assert_eq!(total, t.samples.len());
        }
        // Offsets are cumulative over the mdat payload.
        assert_eq!(chunks[1].offset, chunks[0].count as u64 * 10);
    }
}
