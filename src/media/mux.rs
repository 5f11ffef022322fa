//! The MP4 writer: lays out interleaved chunks, writes a fast-start file
//! (ftyp, moov, then mdat) and streams every sample's bytes from its source
//! file by byte range, so memory stays flat however long the media is.
//! The file is written under a temporary name next to the output and renamed
//! only once complete.
//!
//! Repeated material is stored once: a chunk whose samples are the same
//! source byte ranges as an already written chunk (a looped clip's later
//! repetitions, the same clip concatenated twice) points its chunk offset at
//! those bytes instead of copying them again. ISO BMFF allows chunk offsets
//! to reference the same data; it keeps a 3-minute loop of a 10 s clip about
//! one clip's size instead of eighteen.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::moov::{self, MOVIE_TIMESCALE};
pub(crate) use super::track::{Chunk, Kind, OutSample, OutTrack};
use super::MediaError;

/// Chunks hold about this much time: small enough that players reading A/V
/// in step seek little, large enough to keep the tables short.
const CHUNK_SECONDS: f64 = 0.5;

/// Interleaves the tracks' samples into chunks in time order and lays them
/// out in mdat, sharing repeated chunks (see the module doc). `source_ids`
/// maps each source index to one id per distinct file. Returns the chunks
/// and the mdat payload size.
pub(crate) fn plan_chunks(tracks: &[OutTrack], source_ids: &[usize]) -> (Vec<Chunk>, u64) {
    let mut next = vec![0usize; tracks.len()];
    let mut dts = vec![0u64; tracks.len()];
    let mut chunks = Vec::new();
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
        while next[i] < t.samples.len()
            && (next[i] == first
                || (dts[i] < limit && !starts_over(&t.samples[next[i] - 1], &t.samples[next[i]])))
            && t.samples[next[i]].entry == entry
        {
            dts[i] += t.samples[next[i]].duration as u64;
            next[i] += 1;
        }
        chunks.push(Chunk { track: i, first, count: next[i] - first, offset: 0, shared: false });
    }
    let payload = share_and_place(tracks, &mut chunks, source_ids);
    (chunks, payload)
}

/// True when `s` does not continue on from `prev` in the source (another
/// file, or back to an earlier position: a repetition starts). Breaking the
/// chunk there makes every repetition chunk the same way from its start, so
/// its chunks match the first repetition's and can share their bytes.
fn starts_over(prev: &OutSample, s: &OutSample) -> bool {
    s.src != prev.src || s.offset < prev.offset + prev.size as u64
}

/// Sets each chunk's mdat offset: a chunk whose samples are the same source
/// ranges as (a prefix of) an earlier written chunk reuses that chunk's
/// offset; every other chunk is appended. Returns the payload size.
fn share_and_place(tracks: &[OutTrack], chunks: &mut [Chunk], source_ids: &[usize]) -> u64 {
    let samples = |c: &Chunk| &tracks[c.track].samples[c.first..c.first + c.count];
    let same = |a: &OutSample, b: &OutSample| {
        source_ids[a.src] == source_ids[b.src] && a.offset == b.offset && a.size == b.size
    };
    // (source id, source offset of the first sample) -> a written chunk.
    // One entry per written chunk, so it grows with the output's size only.
    let mut written: HashMap<(usize, u64), usize> = HashMap::new();
    let mut payload = 0u64;
    for k in 0..chunks.len() {
        let mine = samples(&chunks[k]);
        let key = (source_ids[mine[0].src], mine[0].offset);
        let earlier = written.get(&key).map(|&w| chunks[w]).filter(|e| {
            let theirs = samples(e);
            mine.len() <= theirs.len() && mine.iter().zip(theirs).all(|(a, b)| same(a, b))
        });
        match earlier {
            Some(e) => {
                chunks[k].offset = e.offset;
                chunks[k].shared = true;
            }
            None => {
                chunks[k].offset = payload;
                payload += mine.iter().map(|s| s.size as u64).sum::<u64>();
                written.insert(key, k);
            }
        }
    }
    payload
}

/// One id per distinct source file, so a clip listed twice (concat of the
/// same clip) is recognised as the same bytes.
fn source_ids(sources: &[PathBuf]) -> Vec<usize> {
    // A path that cannot be canonicalised is compared as given: at worst its
    // bytes are copied again.
    let keys: Vec<PathBuf> =
        sources.iter().map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())).collect();
    (0..keys.len()).map(|i| keys.iter().position(|k| *k == keys[i]).unwrap_or(i)).collect()
}

/// Writes the tracks to `output`; returns the file's duration in seconds.
pub(crate) fn write(sources: &[PathBuf], tracks: &[OutTrack], output: &Path) -> Result<f64, MediaError> {
    let (chunks, payload) = plan_chunks(tracks, &source_ids(sources));
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
    let samples = chunks
        .iter()
        .filter(|c| !c.shared)
        .flat_map(|c| tracks[c.track].samples[c.first..c.first + c.count].iter());
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

    /// `n` samples of 10 bytes from source `src`, stored back to back.
    fn track(src: usize, timescale: u32, n: usize, duration: u32) -> OutTrack {
        OutTrack {
            kind: Kind::Audio,
            timescale,
            entries: vec![],
            samples: (0..n)
                .map(|i| OutSample {
                    src,
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

    /// `track` played `reps` times over, then `extra` more samples of it.
    fn looped(src: usize, timescale: u32, n: usize, duration: u32, reps: usize, extra: usize) -> OutTrack {
        let mut t = track(src, timescale, n, duration);
        let once = t.samples.clone();
        t.samples = once.iter().cycle().take(n * reps + extra).copied().collect();
        t.presented = t.samples.len() as u64 * duration as u64;
        t
    }

    fn written(chunks: &[Chunk], tracks: &[OutTrack]) -> u64 {
        let bytes = |c: &Chunk| tracks[c.track].samples[c.first..c.first + c.count].iter();
        chunks.iter().filter(|c| !c.shared).flat_map(bytes).map(|s| s.size as u64).sum()
    }

    #[test]
    fn chunks_interleave_tracks_about_every_half_second_in_time_order() {
        // 2 s of 24 fps video and 2 s of 1152-sample MP3 frames at 44.1 kHz.
        let tracks = [track(0, 12288, 48, 512), track(1, 44100, 77, 1152)];
        let (chunks, payload) = plan_chunks(&tracks, &[0, 1]);
        let order: Vec<usize> = chunks.iter().map(|c| c.track).collect();
        assert_eq!(&order[..4], [0, 1, 0, 1]);
        for (i, t) in tracks.iter().enumerate() {
            let total: usize = chunks.iter().filter(|c| c.track == i).map(|c| c.count).sum();
            assert_eq!(total, t.samples.len());
        }
        // Nothing repeats, so offsets are cumulative over the mdat payload.
        assert!(chunks.iter().all(|c| !c.shared));
        assert_eq!(chunks[1].offset, chunks[0].count as u64 * 10);
        assert_eq!(payload, (48 + 77) * 10);
    }

    #[test]
    fn a_looped_clip_is_stored_once_and_its_repetitions_point_at_it() {
        // A 2 s clip looped 5.5 times under 11 s of audio.
        let tracks = [looped(0, 12288, 48, 512, 5, 24), track(1, 44100, 421, 1152)];
        let (chunks, payload) = plan_chunks(&tracks, &[0, 1]);
        assert_eq!(payload, 48 * 10 + 421 * 10, "one clip plus the audio");
        assert_eq!(written(&chunks, &tracks), payload);
        let video: Vec<&Chunk> = chunks.iter().filter(|c| c.track == 0).collect();
        // Every repetition starts a chunk, and is chunked like the first one.
        let starts: Vec<usize> = video.iter().map(|c| c.first).collect();
        for rep in 0..=5 {
            assert!(starts.contains(&(rep * 48)), "repetition {rep} starts a chunk: {starts:?}");
        }
        let per_rep = video.iter().filter(|c| c.first < 48).count();
        for c in &video[per_rep..] {
            let twin = video[..per_rep].iter().find(|f| f.first == c.first % 48).expect("same boundary");
            assert!(c.shared && c.offset == twin.offset, "{c:?} shares {twin:?}");
        }
        // The audio never repeats, so none of it is shared.
        assert!(chunks.iter().filter(|c| c.track == 1).all(|c| !c.shared));
    }

    #[test]
    fn the_same_file_listed_twice_is_stored_once_but_different_files_are_not() {
        let clip = || track(0, 12288, 48, 512);
        let mut again = clip();
        again.samples.extend(track(1, 12288, 48, 512).samples);
        let tracks = [again];
        let (_, same_file) = plan_chunks(&tracks, &[0, 0]);
        let (_, two_files) = plan_chunks(&tracks, &[0, 1]);
        assert_eq!((same_file, two_files), (48 * 10, 96 * 10));
    }

    #[test]
    fn a_chunk_that_differs_from_an_earlier_one_after_the_same_start_is_written() {
        // The second repetition's last sample is a different size: not the same bytes.
        let mut t = looped(0, 12288, 4, 512, 2, 0);
        t.samples[7].size = 11;
        let (chunks, payload) = plan_chunks(&[t], &[0]);
        assert_eq!(chunks.len(), 2);
        assert!(!chunks[1].shared);
        assert_eq!(payload, 40 + 41);
    }
}
