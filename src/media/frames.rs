//! Finding frames in raw elementary streams (MP3, ADTS AAC): a buffered
//! random-access window over the file and a scanner that walks frame
//! headers, confirms a sync with the following header, and resyncs past
//! garbage instead of giving up.
//!
//! The scanner keeps only (offset, size) per frame: memory is a few bytes per
//! frame, never the audio itself.

use std::io::{self, Read, Seek, SeekFrom};

const BLOCK: usize = 64 * 1024;

#[derive(Debug)]
pub(crate) enum ScanError {
    Io(io::Error),
    /// The stream is broken or not this format.
    Invalid(String),
    /// Valid, but a variant the remuxer cannot carry.
    Unsupported(String),
}

impl From<io::Error> for ScanError {
    fn from(e: io::Error) -> Self {
        ScanError::Io(e)
    }
}

/// A read cache over a seekable source, so scanning 4-byte headers does not
/// cost a syscall each.
pub(crate) struct Window<R> {
    src: R,
    len: u64,
    buf: Vec<u8>,
    start: u64,
}

impl<R: Read + Seek> Window<R> {
    pub(crate) fn new(src: R, len: u64) -> Self {
        Window { src, len, buf: Vec::new(), start: 0 }
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// `n` bytes at `off`, or None when they run past the end of the source.
    pub(crate) fn get(&mut self, off: u64, n: usize) -> io::Result<Option<&[u8]>> {
        if off.saturating_add(n as u64) > self.len {
            return Ok(None);
        }
        let have = off >= self.start && off + n as u64 <= self.start + self.buf.len() as u64;
        if !have {
            let want = (self.len - off).min(n.max(BLOCK) as u64) as usize;
            self.buf.resize(want, 0);
            self.src.seek(SeekFrom::Start(off))?;
            self.src.read_exact(&mut self.buf)?;
            self.start = off;
        }
        let at = (off - self.start) as usize;
        Ok(Some(&self.buf[at..at + n]))
    }
}

/// A frame-based format: how to read one header.
pub(crate) trait FrameFormat {
    /// Stream parameters every frame must share (rate, channels, ...).
    type Key: PartialEq + Copy;
    /// Bytes needed to parse a header.
    const HEADER: usize;
    /// (key, whole frame size in bytes) if `h` starts a valid header.
    fn parse(h: &[u8]) -> Option<(Self::Key, usize)>;
}

pub(crate) struct Scan<K> {
    pub key: K,
    /// (offset, size) of every whole frame, headers included.
    pub frames: Vec<(u64, u32)>,
    /// Bytes skipped while resyncing (garbage, tags).
    pub skipped: u64,
}

/// Walks frames from `start` to the end of the source.
pub(crate) fn scan<F: FrameFormat, R: Read + Seek>(
    w: &mut Window<R>,
    start: u64,
    name: &str,
) -> Result<Scan<F::Key>, ScanError> {
    let len = w.len();
    let mut pos = start;
    let mut key: Option<F::Key> = None;
    let mut frames = Vec::new();
    let mut skipped = 0u64;
    loop {
        match frame_at::<F, R>(w, pos, key)? {
            // Every frame must be followed by another (or the end): a frame
            // followed by garbage may have had the garbage written into it,
            // and a damaged frame makes decoders complain, so it is dropped.
            Some((k, size)) if confirmed::<F, R>(w, pos, k, size)? => {
                key = Some(k);
                frames.push((pos, size as u32));
                pos += size as u64;
            }
            _ => {
                if len - pos < F::HEADER as u64 || is_trailing_tag(w, pos)? {
                    break;
                }
                let Some(found) = resync::<F, R>(w, pos + 1, key)? else {
                    break;
                };
                skipped += found - pos;
                pos = found;
            }
        }
    }
    match key {
        Some(key) => Ok(Scan { key, frames, skipped }),
        None => Err(ScanError::Invalid(format!("no {name} frames found"))),
    }
}

/// A valid header at `pos` whose frame fits in the file and matches `key`.
fn frame_at<F: FrameFormat, R: Read + Seek>(
    w: &mut Window<R>,
    pos: u64,
    key: Option<F::Key>,
) -> io::Result<Option<(F::Key, usize)>> {
    let len = w.len();
    let Some(h) = w.get(pos, F::HEADER)? else {
        return Ok(None);
    };
    Ok(F::parse(h).filter(|&(k, size)| key.is_none_or(|key| key == k) && pos + size as u64 <= len))
}

/// A frame is trusted only if another matching header follows it (or the
/// file or a trailing tag starts there): random bytes often look like one
/// header, and a frame cut short by garbage still has a valid header.
fn confirmed<F: FrameFormat, R: Read + Seek>(
    w: &mut Window<R>,
    pos: u64,
    k: F::Key,
    size: usize,
) -> io::Result<bool> {
    let next = pos + size as u64;
    if next == w.len() || is_trailing_tag(w, next)? {
        return Ok(true);
    }
    // The next frame may be cut off by the end of the file; its header still counts.
    Ok(w.get(next, F::HEADER)?.and_then(F::parse).is_some_and(|(nk, _)| nk == k))
}

fn resync<F: FrameFormat, R: Read + Seek>(
    w: &mut Window<R>,
    from: u64,
    key: Option<F::Key>,
) -> io::Result<Option<u64>> {
    let mut pos = from;
    while pos + F::HEADER as u64 <= w.len() {
        if let Some((k, size)) = frame_at::<F, R>(w, pos, key)? {
            if confirmed::<F, R>(w, pos, k, size)? {
                return Ok(Some(pos));
            }
        }
        pos += 1;
    }
    Ok(None)
}

/// ID3v1 ("TAG", 128 bytes) or APE tags end many MP3 files.
fn is_trailing_tag<R: Read + Seek>(w: &mut Window<R>, pos: u64) -> io::Result<bool> {
    let rest = w.len() - pos;
    if rest == 128 {
        if let Some(b) = w.get(pos, 3)? {
            return Ok(b == b"TAG");
        }
    }
    Ok(w.get(pos, 8)?.is_some_and(|b| b == b"APETAGEX"))
}

/// Skips ID3v2 tags (there may be several) at `pos`; returns the first byte after them.
pub(crate) fn skip_id3v2<R: Read + Seek>(w: &mut Window<R>, mut pos: u64) -> io::Result<u64> {
    while let Some(h) = w.get(pos, 10)? {
        if &h[..3] != b"ID3" || h[6..10].iter().any(|&b| b >= 0x80) {
            break;
        }
        // Tag size is "syncsafe": 4 x 7 bits, excluding the 10-byte header.
        let size = h[6..10].iter().fold(0u64, |acc, &b| acc << 7 | b as u64);
        let footer = if h[5] & 0x10 != 0 { 10 } else { 0 };
        pos += 10 + size + footer;
    }
    Ok(pos)
}
