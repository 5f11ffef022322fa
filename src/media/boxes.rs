//! Byte-level helpers for ISO-BMFF boxes: a bounds-checked reader over a
//! byte slice, a child-box iterator, and a writer that back-patches sizes.
//!
//! Everything here works on in-memory slices: only `moov` (a few KB to a few
//! hundred KB) is ever loaded; `mdat` is streamed elsewhere.

/// Why a structure could not be parsed; the caller adds the file name.
pub(crate) type ParseResult<T> = Result<T, String>;

/// A bounds-checked big-endian reader: running off the end is an error, never a panic.
pub(crate) struct Rd<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Rd<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Rd { buf, pos: 0, what }
    }

    pub(crate) fn bytes(&mut self, n: usize) -> ParseResult<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(format!("{} box is truncated", self.what)),
        }
    }

    pub(crate) fn skip(&mut self, n: usize) -> ParseResult<()> {
        self.bytes(n).map(|_| ())
    }

    pub(crate) fn u8(&mut self) -> ParseResult<u8> {
        Ok(self.bytes(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> ParseResult<u16> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self) -> ParseResult<u32> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self) -> ParseResult<u64> {
        let hi = self.u32()? as u64;
        Ok(hi << 32 | self.u32()? as u64)
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Reads a full-box header: (version, flags).
    pub(crate) fn full_header(&mut self) -> ParseResult<(u8, u32)> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00ff_ffff))
    }
}

/// One box inside a parent's body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BoxRef<'a> {
    pub kind: [u8; 4],
    /// The whole box, header included (for copying sample entries verbatim).
    pub raw: &'a [u8],
    pub body: &'a [u8],
}

/// Splits a box body into its child boxes, checking every size.
pub(crate) fn children(data: &[u8]) -> ParseResult<Vec<BoxRef<'_>>> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        let rest = &data[pos..];
        // A few muxers pad with zero bytes after the last child; tolerate < 8.
        if rest.len() < 8 {
            if rest.iter().all(|&b| b == 0) {
                break;
            }
            return Err("a box header is truncated".into());
        }
        let (header, size) = box_header(rest)?;
        let size = match size {
            0 => rest.len(),
            s => usize::try_from(s).map_err(|_| "a box size is too large".to_string())?,
        };
        if size < header || size > rest.len() {
            return Err(format!(
                "box '{}' claims {} bytes but only {} remain",
                fourcc(rest[4..8].try_into().unwrap_or([b'?'; 4])),
                size,
                rest.len()
            ));
        }
        let mut kind = [0u8; 4];
        kind.copy_from_slice(&rest[4..8]);
        out.push(BoxRef { kind, raw: &rest[..size], body: &rest[header..size] });
        pos += size;
    }
    Ok(out)
}

/// Parses a box header: (header length, declared size; 0 = "to end of file").
pub(crate) fn box_header(b: &[u8]) -> ParseResult<(usize, u64)> {
    let mut r = Rd::new(b, "box header");
    let size = r.u32()?;
    r.skip(4)?;
    match size {
        1 => Ok((16, r.u64()?)),
        0 => Ok((8, 0)),
        s => Ok((8, s as u64)),
    }
}

/// The first child of the given kind.
pub(crate) fn find<'a>(boxes: &[BoxRef<'a>], kind: &[u8; 4]) -> Option<BoxRef<'a>> {
    boxes.iter().find(|b| &b.kind == kind).copied()
}

/// Like [`find`], but a missing box is a parse error.
pub(crate) fn need<'a>(boxes: &[BoxRef<'a>], kind: &[u8; 4]) -> ParseResult<BoxRef<'a>> {
    find(boxes, kind).ok_or_else(|| format!("missing '{}' box", fourcc(*kind)))
}

/// Follows a path of box kinds from a body, e.g. `[b"mdia", b"minf"]`.
pub(crate) fn path<'a>(body: &'a [u8], kinds: &[&[u8; 4]]) -> ParseResult<&'a [u8]> {
    let mut cur = body;
    for k in kinds {
        cur = need(&children(cur)?, k)?.body;
    }
    Ok(cur)
}

pub(crate) fn fourcc(k: [u8; 4]) -> String {
    k.iter().map(|&c| if c.is_ascii_graphic() || c == b' ' { c as char } else { '?' }).collect()
}

/// Builds boxes in memory; sizes are patched in when a box is closed.
#[derive(Default)]
pub(crate) struct BoxWriter {
    pub buf: Vec<u8>,
    open: Vec<usize>,
}

impl BoxWriter {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn open(&mut self, kind: &[u8; 4]) {
        self.open.push(self.buf.len());
        self.u32(0);
        self.buf.extend_from_slice(kind);
    }

    pub(crate) fn open_full(&mut self, kind: &[u8; 4], version: u8, flags: u32) {
        self.open(kind);
        self.u32((version as u32) << 24 | (flags & 0x00ff_ffff));
    }

    /// Closes the innermost open box. Boxes built here stay far below 4 GiB
    /// (mdat is never built in memory), so a 32-bit size always fits.
    pub(crate) fn close(&mut self) {
        if let Some(start) = self.open.pop() {
            let size = (self.buf.len() - start) as u32;
            self.buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
        }
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
    pub(crate) fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_patches_nested_sizes_and_children_reads_them_back() {
        let mut w = BoxWriter::new();
        w.open(b"moov");
        w.open_full(b"mvhd", 0, 0);
        w.u32(7);
        w.close();
        w.open(b"free");
        w.close();
        w.close();
        let top = children(&w.buf).unwrap();
        assert_eq!(top.len(), 1);
        assert_eq!(&top[0].kind, b"moov");
        let kids = children(top[0].body).unwrap();
        assert_eq!(kids.len(), 2);
        assert_eq!(kids[0].body, &[0, 0, 0, 0, 0, 0, 0, 7]);
        assert_eq!(kids[1].raw.len(), 8);
    }

    #[test]
    fn a_box_larger_than_its_parent_is_an_error_not_a_panic() {
        let data = [0, 0, 0, 100, b'f', b'r', b'e', b'e', 1, 2, 3];
        let err = children(&data).unwrap_err();
        assert!(err.contains("claims 100 bytes"), "{err}");
    }

    #[test]
    fn a_box_smaller_than_its_header_is_an_error() {
        let data = [0, 0, 0, 3, b'f', b'r', b'e', b'e'];
        assert!(children(&data).is_err());
    }

    #[test]
    fn reading_past_the_end_is_an_error() {
        let mut r = Rd::new(&[1, 2, 3], "test");
        assert_eq!(r.u16().unwrap(), 0x0102);
        assert!(r.u32().is_err());
    }

    #[test]
    fn trailing_zero_padding_is_tolerated() {
        let data = [0, 0, 0, 8, b'f', b'r', b'e', b'e', 0, 0, 0];
        assert_eq!(children(&data).unwrap().len(), 1);
    }
}
