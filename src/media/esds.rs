//! The `esds` box (MPEG-4 elementary stream descriptor) and the `mp4a`
//! sample entry around it: how MP4 says "this track is AAC" or "this track
//! is MP3" (objectTypeIndication 0x40 vs 0x6B).

use super::boxes::{BoxWriter, ParseResult, Rd};

/// MPEG-4 Audio (AAC); the DecoderSpecificInfo is an AudioSpecificConfig.
pub(crate) const OTI_AAC: u8 = 0x40;
/// MPEG-1 Audio (MP3 is Layer III); no DecoderSpecificInfo.
pub(crate) const OTI_MP3: u8 = 0x6B;

/// Whether an objectTypeIndication is a codec the remuxer can carry.
pub(crate) fn remuxable(oti: u8) -> bool {
    // 0x66-0x68: MPEG-2 AAC profiles; 0x69: MPEG-2 audio (MP3 at low rates).
    matches!(oti, OTI_AAC | 0x66..=0x68 | 0x69 | OTI_MP3)
}

/// Parses an esds body: (objectTypeIndication, DecoderSpecificInfo bytes).
pub(crate) fn parse(body: &[u8]) -> ParseResult<(u8, Vec<u8>)> {
    let mut r = Rd::new(body, "esds");
    r.full_header()?;
    let (tag, len) = descriptor(&mut r)?;
    if tag != 0x03 {
        return Err(format!("esds starts with descriptor tag {tag}, not ES_Descriptor"));
    }
    let mut es = Rd::new(r.bytes(len)?, "ES_Descriptor");
    es.skip(2)?;
    let flags = es.u8()?;
    if flags & 0x80 != 0 {
        es.skip(2)?; // dependsOn_ES_ID
    }
    if flags & 0x40 != 0 {
        let n = es.u8()? as usize;
        es.skip(n)?; // URL
    }
    if flags & 0x20 != 0 {
        es.skip(2)?; // OCR_ES_ID
    }
    let (tag, len) = descriptor(&mut es)?;
    if tag != 0x04 {
        return Err(format!("ES_Descriptor holds tag {tag}, not DecoderConfigDescriptor"));
    }
    let mut dc = Rd::new(es.bytes(len)?, "DecoderConfigDescriptor");
    let oti = dc.u8()?;
    dc.skip(12)?;
    let mut dsi = Vec::new();
    if dc.remaining() > 0 {
        let (tag, len) = descriptor(&mut dc)?;
        if tag == 0x05 {
            dsi = dc.bytes(len)?.to_vec();
        }
    }
    Ok((oti, dsi))
}

/// Reads a descriptor tag and its 1-4 byte "expandable" length.
fn descriptor(r: &mut Rd<'_>) -> ParseResult<(u8, usize)> {
    let tag = r.u8()?;
    let mut len = 0usize;
    for _ in 0..4 {
        let b = r.u8()?;
        len = len << 7 | (b & 0x7f) as usize;
        if b & 0x80 == 0 {
            return Ok((tag, len));
        }
    }
    Err("descriptor length is longer than 4 bytes".into())
}

fn write_descriptor(w: &mut BoxWriter, tag: u8, payload: &[u8]) {
    w.u8(tag);
    // Descriptor payloads here are tiny; lengths < 128 fit one byte, and the
    // 4-byte form covers anything else (up to 256 MiB).
    if payload.len() < 0x80 {
        w.u8(payload.len() as u8);
    } else {
        let n = payload.len() as u32;
        w.bytes(&[
            0x80 | (n >> 21) as u8 & 0x7f,
            0x80 | (n >> 14) as u8 & 0x7f,
            0x80 | (n >> 7) as u8 & 0x7f,
            n as u8 & 0x7f,
        ]);
    }
    w.bytes(payload);
}

/// What an audio sample entry needs to describe a stream.
pub(crate) struct AudioParams<'a> {
    pub oti: u8,
    pub dsi: &'a [u8],
    pub sample_rate: u32,
    pub channels: u16,
    pub avg_bitrate: u32,
    pub max_sample_size: u32,
}

/// Builds a complete `mp4a` sample entry box with its `esds`.
pub(crate) fn mp4a_entry(p: &AudioParams<'_>) -> Vec<u8> {
    let mut dc = BoxWriter::new();
    dc.u8(p.oti);
    dc.u8(0x15); // streamType 5 (audio) << 2 | reserved bit 1
    let buf = p.max_sample_size.min(0xff_ffff);
    dc.bytes(&buf.to_be_bytes()[1..]);
    dc.u32(p.avg_bitrate);
    dc.u32(p.avg_bitrate);
    if !p.dsi.is_empty() {
        write_descriptor(&mut dc, 0x05, p.dsi);
    }
    let mut es = BoxWriter::new();
    es.u16(0); // ES_ID: 0 inside MP4 files
    es.u8(0);
    write_descriptor(&mut es, 0x04, &dc.buf);
    write_descriptor(&mut es, 0x06, &[0x02]); // SLConfig: predefined MP4

    let mut w = BoxWriter::new();
    w.open(b"mp4a");
    w.zeros(6);
    w.u16(1); // data_reference_index
    w.zeros(8);
    w.u16(p.channels);
    w.u16(16);
    w.u32(0);
    // 16.16 fixed point; rates above 65535 Hz do not occur for MP3/AAC-LC.
    w.u32(p.sample_rate.min(0xffff) << 16);
    w.open_full(b"esds", 0, 0);
    write_descriptor(&mut w, 0x03, &es.buf);
    w.close();
    w.close();
    w.buf
}

#[cfg(test)]
mod tests {
    use super::super::boxes::children;
    use super::*;

    #[test]
    fn an_mp3_entry_says_0x6b_and_has_no_decoder_info() {
        let entry = mp4a_entry(&AudioParams {
            oti: OTI_MP3,
            dsi: &[],
            sample_rate: 44100,
            channels: 2,
            avg_bitrate: 128_000,
            max_sample_size: 1044,
        });
        let top = children(&entry).unwrap();
        assert_eq!(&top[0].kind, b"mp4a");
        let esds = children(&top[0].body[28..]).unwrap();
        assert_eq!(parse(esds[0].body).unwrap(), (OTI_MP3, vec![]));
    }

    #[test]
    fn an_aac_entry_round_trips_its_audio_specific_config() {
        let asc = [0x12, 0x10];
        let entry = mp4a_entry(&AudioParams {
            oti: OTI_AAC,
            dsi: &asc,
            sample_rate: 44100,
            channels: 2,
            avg_bitrate: 0,
            max_sample_size: 800,
        });
        let top = children(&entry).unwrap();
        let esds = children(&top[0].body[28..]).unwrap();
        assert_eq!(parse(esds[0].body).unwrap(), (OTI_AAC, asc.to_vec()));
    }

    #[test]
    fn garbage_esds_is_an_error() {
        assert!(parse(&[0, 0, 0, 0, 0x03, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(parse(&[0, 0, 0, 0, 0x07, 1, 0]).is_err());
    }
}
