//! Raw AAC in ADTS framing (.aac files): headers, and the AudioSpecificConfig
//! that MP4 needs instead of per-frame headers. In MP4 each sample is the raw
//! AAC frame, so the 7 (or 9, with CRC) header bytes are left out.

use std::io::{Read, Seek};

use super::frames::{scan, skip_id3v2, FrameFormat, ScanError, Window};

const RATES: [u32; 13] =
    [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AdtsKey {
    /// Audio object type minus one (1 = AAC LC).
    pub profile: u8,
    pub rate_index: u8,
    pub channel_config: u8,
    /// Header length: 7, or 9 when a CRC follows it.
    pub header_len: u8,
    /// More than one raw data block per frame (rare; not remuxable).
    pub multi_block: bool,
}

impl AdtsKey {
    pub(crate) fn sample_rate(&self) -> u32 {
        RATES[self.rate_index as usize]
    }

    /// The 2-byte AudioSpecificConfig: object type, rate index, channels.
    pub(crate) fn audio_specific_config(&self) -> [u8; 2] {
        let v = ((self.profile as u16 + 1) << 11)
            | (self.rate_index as u16) << 7
            | (self.channel_config as u16) << 3;
        v.to_be_bytes()
    }
}

pub(crate) struct AdtsFormat;

impl FrameFormat for AdtsFormat {
    type Key = AdtsKey;
    const HEADER: usize = 7;

    fn parse(h: &[u8]) -> Option<(AdtsKey, usize)> {
        if h[0] != 0xff || h[1] & 0xf6 != 0xf0 {
            return None; // sync 0xFFF and layer 00
        }
        let header_len = if h[1] & 1 == 1 { 7 } else { 9 };
        let rate_index = (h[2] >> 2) & 0xf;
        if rate_index as usize >= RATES.len() {
            return None;
        }
        let size = ((h[3] as usize & 3) << 11) | (h[4] as usize) << 3 | (h[5] as usize) >> 5;
        if size <= header_len as usize {
            return None;
        }
        let key = AdtsKey {
            profile: h[2] >> 6,
            rate_index,
            channel_config: ((h[2] & 1) << 2) | (h[3] >> 6),
            header_len,
            multi_block: h[6] & 3 != 0,
        };
        Some((key, size))
    }
}

pub(crate) struct Adts {
    pub key: AdtsKey,
    /// (offset, size) of each raw AAC frame, ADTS header excluded.
    pub frames: Vec<(u64, u32)>,
    pub skipped: u64,
}

/// Finds every AAC frame of an ADTS file.
pub(crate) fn read<R: Read + Seek>(w: &mut Window<R>) -> Result<Adts, ScanError> {
    let start = skip_id3v2(w, 0)?;
    let s = scan::<AdtsFormat, R>(w, start, "ADTS AAC")?;
    if s.key.multi_block {
        return Err(ScanError::Unsupported("ADTS frames carry several AAC blocks each".into()));
    }
    if s.key.channel_config == 0 {
        return Err(ScanError::Unsupported(
            "the channel layout is given in-stream (channel config 0)".into(),
        ));
    }
    let h = s.key.header_len as u64;
    let frames = s.frames.iter().map(|&(off, size)| (off + h, size - h as u32)).collect();
    Ok(Adts { key: s.key, frames, skipped: s.skipped })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// An AAC-LC 44.1 kHz stereo ADTS frame of `size` bytes, no CRC.
    fn frame(size: usize) -> Vec<u8> {
        let mut f = vec![
            0xff,
            0xf1,
            (1 << 6) | (4 << 2),
            (2 << 6) | ((size >> 11) & 3) as u8,
            (size >> 3) as u8,
            ((size & 7) << 5) as u8 | 0x1f,
            0xfc,
        ];
        f.resize(size, 0x21);
        f
    }

    fn read_bytes(data: Vec<u8>) -> Result<Adts, ScanError> {
        let len = data.len() as u64;
        read(&mut Window::new(Cursor::new(data), len))
    }

    #[test]
    fn frames_are_found_and_headers_left_out() {
        let mut data = Vec::new();
        [100, 200, 150].iter().for_each(|&n| data.extend(frame(n)));
        let adts = read_bytes(data).ok().unwrap();
        assert_eq!(adts.frames, [(7, 93), (107, 193), (307, 143)]);
        assert_eq!(adts.key.sample_rate(), 44100);
        // AAC LC (2), 44.1 kHz (4), stereo (2): 0x1210, what every encoder writes.
        assert_eq!(adts.key.audio_specific_config(), [0x12, 0x10]);
    }

    #[test]
    fn garbage_between_frames_is_skipped() {
        let mut data = frame(100);
        data.extend(frame(110));
        data.extend([1, 2, 3, 0xff, 0xf1, 9]);
        data.extend(frame(120));
        data.extend(frame(130));
        let adts = read_bytes(data).ok().unwrap();
        assert_eq!((adts.frames.len(), adts.skipped), (3, 110 + 6));
    }

    #[test]
    fn mp3_and_garbage_are_not_adts() {
        let mut mp3 = Vec::new();
        (0..3).for_each(|_| mp3.extend(super::super::mp3::tests::frame(false)));
        assert!(read_bytes(mp3).is_err());
        assert!(read_bytes(vec![0u8; 1000]).is_err());
        assert!(read_bytes(Vec::new()).is_err());
    }
}
