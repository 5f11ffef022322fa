//! MP3 (MPEG-1/2/2.5 Layer III) elementary streams: frame headers, the
//! bitrate and sample-rate tables, ID3v2 tags and the Xing/Info/VBRI frame
//! that encoders put first (it holds metadata, not audio).

use std::io::{Read, Seek};

use super::frames::{scan, skip_id3v2, FrameFormat, ScanError, Window};

/// kbit/s by bitrate index, Layer III. Index 0 ("free") and 15 are invalid.
const BITRATE_V1: [u32; 15] = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
const BITRATE_V2: [u32; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mp3Key {
    /// true for MPEG-1, false for MPEG-2 and MPEG-2.5 (half-length frames).
    pub mpeg1: bool,
    pub sample_rate: u32,
    pub channels: u16,
}

impl Mp3Key {
    pub(crate) fn samples_per_frame(&self) -> u32 {
        if self.mpeg1 {
            1152
        } else {
            576
        }
    }
}

pub(crate) struct Mp3Format;

impl FrameFormat for Mp3Format {
    type Key = Mp3Key;
    const HEADER: usize = 4;

    fn parse(h: &[u8]) -> Option<(Mp3Key, usize)> {
        if h[0] != 0xff || h[1] & 0xe0 != 0xe0 {
            return None;
        }
        let version = (h[1] >> 3) & 3; // 0: 2.5, 1: reserved, 2: MPEG-2, 3: MPEG-1
        let layer = (h[1] >> 1) & 3; // 1 = Layer III
        if version == 1 || layer != 1 {
            return None;
        }
        let bitrate_index = (h[2] >> 4) as usize;
        let rate_index = ((h[2] >> 2) & 3) as usize;
        if bitrate_index == 0 || bitrate_index == 15 || rate_index == 3 {
            return None;
        }
        let padding = ((h[2] >> 1) & 1) as usize;
        let mpeg1 = version == 3;
        let base = [44100, 48000, 32000][rate_index];
        let sample_rate = match version {
            3 => base,
            2 => base / 2,
            _ => base / 4,
        };
        let kbps = if mpeg1 { BITRATE_V1 } else { BITRATE_V2 }[bitrate_index];
        let coeff = if mpeg1 { 144 } else { 72 };
        let size = (coeff * kbps * 1000 / sample_rate) as usize + padding;
        let channels = if h[3] >> 6 == 3 { 1 } else { 2 };
        Some((Mp3Key { mpeg1, sample_rate, channels }, size))
    }
}

pub(crate) struct Mp3 {
    pub key: Mp3Key,
    /// (offset, size) of each audio frame, in order.
    pub frames: Vec<(u64, u32)>,
    pub skipped: u64,
}

/// Finds every audio frame of an MP3 file.
pub(crate) fn read<R: Read + Seek>(w: &mut Window<R>) -> Result<Mp3, ScanError> {
    let start = skip_id3v2(w, 0)?;
    let mut s = scan::<Mp3Format, R>(w, start, "MP3")?;
    if let Some(&(off, size)) = s.frames.first() {
        if is_info_frame(w, off, size, s.key)? {
            s.frames.remove(0);
        }
    }
    if s.frames.is_empty() {
        return Err(ScanError::Invalid("no MP3 audio frames found".into()));
    }
    Ok(Mp3 { key: s.key, frames: s.frames, skipped: s.skipped })
}

/// Xing/Info sit right after the side information; VBRI at a fixed 32 bytes.
fn is_info_frame<R: Read + Seek>(
    w: &mut Window<R>,
    off: u64,
    size: u32,
    key: Mp3Key,
) -> std::io::Result<bool> {
    let side = match (key.mpeg1, key.channels) {
        (true, 1) => 17,
        (true, _) => 32,
        (false, 1) => 9,
        (false, _) => 17,
    };
    let Some(frame) = w.get(off, size as usize)? else {
        return Ok(false);
    };
    let at = |o: usize| frame.get(o..o + 4);
    Ok(matches!(at(4 + side), Some(b"Xing" | b"Info")) || at(36) == Some(b"VBRI"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Cursor;

    /// An MPEG-1 Layer III, 44.1 kHz, 128 kbit/s stereo frame: 417 bytes.
    pub(crate) fn frame(padding: bool) -> Vec<u8> {
        let mut f = vec![0xff, 0xfb, 0x90 | if padding { 2 } else { 0 }, 0x00];
        f.resize(if padding { 418 } else { 417 }, 0);
        f
    }

    fn window(data: Vec<u8>) -> Window<Cursor<Vec<u8>>> {
        let len = data.len() as u64;
        Window::new(Cursor::new(data), len)
    }

    fn id3v2(body: usize) -> Vec<u8> {
        let mut t = b"ID3\x03\x00\x00".to_vec();
        t.extend([0, 0, (body >> 7) as u8 & 0x7f, body as u8 & 0x7f]);
        t.resize(10 + body, 0x41);
        t
    }

    #[test]
    fn header_tables_give_frame_sizes_and_rates() {
        assert_eq!(Mp3Format::parse(&[0xff, 0xfb, 0x90, 0x00]).unwrap().1, 417);
        assert_eq!(Mp3Format::parse(&[0xff, 0xfb, 0x92, 0x00]).unwrap().1, 418);
        // MPEG-2, 22.05 kHz, 64 kbit/s, mono: 72 * 64000 / 22050 = 208
        let (key, size) = Mp3Format::parse(&[0xff, 0xf3, 0x80, 0xc0]).unwrap();
        assert_eq!((key.sample_rate, key.channels, key.samples_per_frame(), size), (22050, 1, 576, 208));
        // MPEG-2.5, 8 kHz
        let (key, _) = Mp3Format::parse(&[0xff, 0xe3, 0x18, 0x00]).unwrap();
        assert_eq!(key.sample_rate, 8000);
    }

    #[test]
    fn invalid_headers_are_rejected() {
        assert!(Mp3Format::parse(&[0xff, 0xfb, 0xf0, 0x00]).is_none(), "bitrate index 15");
        assert!(Mp3Format::parse(&[0xff, 0xfb, 0x00, 0x00]).is_none(), "free format");
        assert!(Mp3Format::parse(&[0xff, 0xfb, 0x9c, 0x00]).is_none(), "reserved rate");
        assert!(Mp3Format::parse(&[0xff, 0xfd, 0x90, 0x00]).is_none(), "layer II");
        assert!(Mp3Format::parse(&[0xff, 0xf1, 0x50, 0x80]).is_none(), "ADTS");
    }

    #[test]
    fn id3v2_tags_are_skipped_and_every_frame_found() {
        let mut data = id3v2(300);
        (0..10).for_each(|i| data.extend(frame(i % 3 == 0)));
        let mp3 = read(&mut window(data)).unwrap();
        assert_eq!(mp3.frames.len(), 10);
        assert_eq!(mp3.frames[0], (310, 418));
        assert_eq!(mp3.skipped, 0);
    }

    #[test]
    fn a_xing_info_frame_is_not_audio() {
        let mut info = frame(false);
        info[36..40].copy_from_slice(b"Info");
        let mut data = info;
        (0..5).for_each(|_| data.extend(frame(false)));
        let mp3 = read(&mut window(data)).unwrap();
        assert_eq!(mp3.frames.len(), 5);
        assert_eq!(mp3.frames[0].0, 417);
    }

    #[test]
    fn garbage_in_the_middle_is_skipped_by_resyncing() {
        let mut data = Vec::new();
        (0..4).for_each(|_| data.extend(frame(false)));
        // Garbage that even contains a lone sync word followed by nonsense.
        data.extend([0x13, 0x37, 0xff, 0xfb, 0x90, 0x00, 0x42, 0x99, 0x01]);
        (0..4).for_each(|_| data.extend(frame(false)));
        let mp3 = read(&mut window(data)).unwrap();
        // The frame just before the garbage goes too: it cannot be told
        // apart from a frame the garbage was written into.
        assert_eq!(mp3.frames.len(), 7);
        assert_eq!(mp3.skipped, 417 + 9);
        assert_eq!(mp3.frames[3].0, 4 * 417 + 9);
    }

    #[test]
    fn a_truncated_last_frame_is_dropped() {
        let mut data = Vec::new();
        (0..3).for_each(|_| data.extend(frame(false)));
        data.extend(&frame(false)[..100]);
        assert_eq!(read(&mut window(data)).unwrap().frames.len(), 3);
    }

    #[test]
    fn an_id3v1_tag_at_the_end_is_not_garbage() {
        let mut data = Vec::new();
        (0..3).for_each(|_| data.extend(frame(false)));
        let mut tag = b"TAG".to_vec();
        tag.resize(128, b' ');
        data.extend(tag);
        let mp3 = read(&mut window(data)).unwrap();
        assert_eq!((mp3.frames.len(), mp3.skipped), (3, 0));
    }

    #[test]
    fn garbage_and_empty_input_are_errors_not_panics() {
        let garbage: Vec<u8> = (0..5000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        assert!(read(&mut window(garbage)).is_err());
        assert!(read(&mut window(Vec::new())).is_err());
        assert!(read(&mut window(id3v2(50))).is_err());
    }
}
