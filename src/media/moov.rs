//! Builds the `moov` box (movie header, one `trak` per track, and each
//! track's sample table) for the remuxer. Chunk offsets are absolute, so the
//! caller builds it once to learn its size, then again with the real base.

use super::boxes::BoxWriter;
use super::track::{Chunk, Kind, OutTrack};

/// Movie timescale: milliseconds, like ffmpeg; track timing keeps its own.
pub(crate) const MOVIE_TIMESCALE: u32 = 1000;

const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// A track's presented duration in movie ticks.
pub(crate) fn movie_ticks(t: &OutTrack) -> u64 {
    (t.presented as u128 * MOVIE_TIMESCALE as u128 / t.timescale as u128) as u64
}

/// The whole moov box. `base` is the file offset of the first mdat payload
/// byte; `wide` selects co64 over stco.
pub(crate) fn build(tracks: &[OutTrack], chunks: &[Chunk], base: u64, wide: bool) -> Vec<u8> {
    let mut w = BoxWriter::new();
    w.open(b"moov");
    let duration = tracks.iter().map(movie_ticks).max().unwrap_or(0);
    let v1 = duration > u32::MAX as u64;
    w.open_full(b"mvhd", v1 as u8, 0);
    times(&mut w, v1, MOVIE_TIMESCALE, duration);
    w.u32(0x0001_0000); // rate 1.0
    w.u16(0x0100); // volume 1.0
    w.zeros(10);
    MATRIX.iter().for_each(|&m| w.u32(m));
    w.zeros(24);
    w.u32(tracks.len() as u32 + 1); // next_track_ID
    w.close();
    for (i, t) in tracks.iter().enumerate() {
        let mine: Vec<&Chunk> = chunks.iter().filter(|c| c.track == i).collect();
        trak(&mut w, i as u32 + 1, t, &mine, base, wide);
    }
    w.close();
    w.buf
}

/// creation/modification time (0: unknown, keeps output reproducible), timescale, duration.
fn times(w: &mut BoxWriter, v1: bool, timescale: u32, duration: u64) {
    if v1 {
        w.zeros(16);
        w.u32(timescale);
        w.u64(duration);
    } else {
        w.zeros(8);
        w.u32(timescale);
        w.u32(duration as u32);
    }
}

fn trak(w: &mut BoxWriter, id: u32, t: &OutTrack, chunks: &[&Chunk], base: u64, wide: bool) {
    let ticks = movie_ticks(t);
    w.open(b"trak");
    let v1 = ticks > u32::MAX as u64;
    w.open_full(b"tkhd", v1 as u8, 3); // enabled | in movie
    if v1 {
        w.zeros(16);
        w.u32(id);
        w.u32(0);
        w.u64(ticks);
    } else {
        w.zeros(8);
        w.u32(id);
        w.u32(0);
        w.u32(ticks as u32);
    }
    w.zeros(8);
    w.u16(0); // layer
    w.u16(0); // alternate_group
    w.u16(if matches!(t.kind, Kind::Audio) { 0x0100 } else { 0 });
    w.u16(0);
    MATRIX.iter().for_each(|&m| w.u32(m));
    let (width, height) = match t.kind {
        Kind::Video { width, height } => (width, height),
        Kind::Audio | Kind::Text => (0, 0),
    };
    w.u32((width as u32) << 16);
    w.u32((height as u32) << 16);
    w.close();

    // One edit: show `presented` ticks starting at media time `shift`
    // (hides B-frame delay / priming, and cuts a looped or trimmed track).
    w.open(b"edts");
    let v1 = ticks > u32::MAX as u64 || t.shift > i32::MAX as i64;
    w.open_full(b"elst", v1 as u8, 0);
    w.u32(1);
    if v1 {
        w.u64(ticks);
        w.u64(t.shift as u64);
    } else {
        w.u32(ticks as u32);
        w.u32(t.shift as u32);
    }
    w.u32(0x0001_0000);
    w.close();
    w.close();

    w.open(b"mdia");
    let media: u64 = t.samples.iter().map(|s| s.duration as u64).sum();
    let v1 = media > u32::MAX as u64;
    w.open_full(b"mdhd", v1 as u8, 0);
    times(w, v1, t.timescale, media);
    w.u16(0x55c4); // language "und"
    w.u16(0);
    w.close();
    let (handler, name): (&[u8; 4], &[u8]) = match t.kind {
        Kind::Video { .. } => (b"vide", b"VideoHandler\0"),
        Kind::Audio => (b"soun", b"SoundHandler\0"),
        // `sbtl` + `tx3g` is what ffmpeg writes for mov_text in mp4, and reads back as a subtitle stream.
        Kind::Text => (b"sbtl", b"SubtitleHandler\0"),
    };
    w.open_full(b"hdlr", 0, 0);
    w.u32(0);
    w.bytes(handler);
    w.zeros(12);
    w.bytes(name);
    w.close();
    w.open(b"minf");
    match t.kind {
        Kind::Video { .. } => {
            w.open_full(b"vmhd", 0, 1);
            w.zeros(8);
        }
        Kind::Audio => {
            w.open_full(b"smhd", 0, 0);
            w.zeros(4);
        }
        Kind::Text => w.open_full(b"nmhd", 0, 0),
    }
    w.close();
    w.open(b"dinf");
    w.open_full(b"dref", 0, 0);
    w.u32(1);
    w.open_full(b"url ", 0, 1); // flag 1: media is in this file
    w.close();
    w.close();
    w.close();
    stbl(w, t, chunks, base, wide);
    w.close(); // minf
    w.close(); // mdia
    w.close(); // trak
}

fn stbl(w: &mut BoxWriter, t: &OutTrack, chunks: &[&Chunk], base: u64, wide: bool) {
    w.open(b"stbl");
    w.open_full(b"stsd", 0, 0);
    w.u32(t.entries.len() as u32);
    t.entries.iter().for_each(|e| w.bytes(e));
    w.close();

    let runs = |f: &dyn Fn(usize) -> u32| {
        let mut out: Vec<(u32, u32)> = Vec::new();
        for i in 0..t.samples.len() {
            let v = f(i);
            match out.last_mut() {
                Some((n, last)) if *last == v => *n += 1,
                _ => out.push((1, v)),
            }
        }
        out
    };
    let stts = runs(&|i| t.samples[i].duration);
    w.open_full(b"stts", 0, 0);
    w.u32(stts.len() as u32);
    stts.iter().for_each(|&(n, d)| {
        w.u32(n);
        w.u32(d);
    });
    w.close();

    if t.samples.iter().any(|s| s.cts != 0) {
        let ctts = runs(&|i| t.samples[i].cts as u32);
        // Version 1 declares the offsets signed; only needed when one is negative.
        let v1 = t.samples.iter().any(|s| s.cts < 0);
        w.open_full(b"ctts", v1 as u8, 0);
        w.u32(ctts.len() as u32);
        ctts.iter().for_each(|&(n, c)| {
            w.u32(n);
            w.u32(c);
        });
        w.close();
    }

    if t.samples.iter().any(|s| !s.sync) {
        let sync: Vec<u32> =
            (0..t.samples.len()).filter(|&i| t.samples[i].sync).map(|i| i as u32 + 1).collect();
        w.open_full(b"stss", 0, 0);
        w.u32(sync.len() as u32);
        sync.iter().for_each(|&i| w.u32(i));
        w.close();
    }

    let mut stsc: Vec<(u32, u32, u32)> = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        let entry = t.samples[c.first].entry;
        if stsc.last().is_none_or(|&(_, n, e)| n != c.count as u32 || e != entry) {
            stsc.push((i as u32 + 1, c.count as u32, entry));
        }
    }
    w.open_full(b"stsc", 0, 0);
    w.u32(stsc.len() as u32);
    stsc.iter().for_each(|&(f, n, e)| {
        w.u32(f);
        w.u32(n);
        w.u32(e);
    });
    w.close();

    w.open_full(b"stsz", 0, 0);
    let first = t.samples.first().map_or(0, |s| s.size);
    if t.samples.iter().all(|s| s.size == first) {
        w.u32(first);
        w.u32(t.samples.len() as u32);
    } else {
        w.u32(0);
        w.u32(t.samples.len() as u32);
        t.samples.iter().for_each(|s| w.u32(s.size));
    }
    w.close();

    w.open_full(if wide { b"co64" } else { b"stco" }, 0, 0);
    w.u32(chunks.len() as u32);
    for c in chunks {
        if wide {
            w.u64(base + c.offset);
        } else {
            // The caller picks co64 whenever an offset could exceed 32 bits.
            w.u32((base + c.offset) as u32);
        }
    }
    w.close();
    w.close();
}
