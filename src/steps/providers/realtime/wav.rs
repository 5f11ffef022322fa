//! WAV in and out for the realtime session, in pure Rust: any PCM or float WAV (8, 16, 24
//! or 32 bits, any rate, any channel count) becomes the session's input format, 24 kHz
//! 16-bit mono little-endian PCM, and the session's output PCM becomes a playable WAV.
//!
//! Channels are averaged; the rate is changed by linear interpolation, which is plenty for
//! speech. Compressed audio (MP3, AAC, FLAC, Ogg) is decoded by `decode` first.

/// The session's sample rate (`pcm16` in OpenAI's Realtime API).
pub(crate) const RATE: u32 = 24_000;

/// `bytes` (a whole WAV file) as 24 kHz 16-bit mono little-endian PCM.
pub(crate) fn to_session_pcm(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let (mono, rate) = if is_wav(bytes) {
        let wav = parse(bytes)?;
        (wav.mono()?, wav.rate)
    } else {
        super::decode::mono(bytes)?
    };
    let resampled = resample(&mono, rate, RATE);
    let mut out = Vec::with_capacity(resampled.len() * 2);
    for s in resampled {
        let v = (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
        out.extend_from_slice(&v.to_le_bytes());
    }
    Ok(out)
}

/// A WAV file holding `pcm` (16-bit mono little-endian at `rate`).
pub(crate) fn wav_file(pcm: &[u8], rate: u32) -> Vec<u8> {
    let data_len = (pcm.len() & !1) as u32;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes()); // bytes per second
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend_from_slice(&pcm[..data_len as usize]);
    out
}

/// Seconds of 16-bit mono PCM at the session's rate.
pub(crate) fn seconds(pcm_len: usize) -> f64 {
    pcm_len as f64 / 2.0 / f64::from(RATE)
}

struct Wav<'a> {
    /// 1 integer PCM, 3 IEEE float.
    format: u16,
    channels: u16,
    rate: u32,
    bits: u16,
    data: &'a [u8],
}

const EXTENSIBLE: u16 = 0xFFFE;

fn is_wav(bytes: &[u8]) -> bool {
    bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WAVE"
}

fn parse(bytes: &[u8]) -> Result<Wav<'_>, String> {
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]) as usize;
        let body_start = at + 8;
        // A streamed WAV may leave the data length unset (0 or 0xFFFFFFFF): take the rest.
        let body_end = body_start.saturating_add(len).min(bytes.len());
        let body = &bytes[body_start..body_end];
        if id == b"fmt " {
            if body.len() < 16 {
                return Err("its `fmt ` chunk is too short".into());
            }
            let u16_at = |i: usize| u16::from_le_bytes([body[i], body[i + 1]]);
            let mut format = u16_at(0);
            if format == EXTENSIBLE && body.len() >= 26 {
                format = u16_at(24); // the sub-format GUID starts with the format tag
            }
            let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
            fmt = Some((format, u16_at(2), rate, u16_at(14)));
        } else if id == b"data" {
            let (format, channels, rate, bits) = fmt.ok_or("its `data` chunk comes before `fmt `")?;
            let data = if len == 0 || len == u32::MAX as usize { &bytes[body_start..] } else { body };
            return check(Wav { format, channels, rate, bits, data });
        }
        at = body_start.saturating_add(len + (len & 1));
    }
    Err("it has no `data` chunk".into())
}

fn check(wav: Wav<'_>) -> Result<Wav<'_>, String> {
    let ok = match wav.format {
        1 => matches!(wav.bits, 8 | 16 | 24 | 32),
        3 => matches!(wav.bits, 32 | 64),
        _ => false,
    };
    if !ok {
        return Err(format!(
            "its encoding (format tag {}, {} bits) is not PCM or float; give a PCM WAV file",
            wav.format, wav.bits
        ));
    }
    if wav.channels == 0 || wav.rate == 0 {
        return Err("its header names no channels or no sample rate".into());
    }
    Ok(wav)
}

impl Wav<'_> {
    /// Samples in -1..1, channels averaged.
    fn mono(&self) -> Result<Vec<f32>, String> {
        let width = usize::from(self.bits / 8);
        let frame = width * usize::from(self.channels);
        let frames = self.data.len() / frame;
        if frames == 0 {
            return Err("it holds no audio".into());
        }
        let mut out = Vec::with_capacity(frames);
        for f in self.data.chunks_exact(frame) {
            let sum: f32 = f.chunks_exact(width).map(|s| self.sample(s)).sum();
            out.push(sum / f32::from(self.channels));
        }
        Ok(out)
    }

    fn sample(&self, s: &[u8]) -> f32 {
        match (self.format, self.bits) {
            (1, 8) => (f32::from(s[0]) - 128.0) / 128.0,
            (1, 16) => f32::from(i16::from_le_bytes([s[0], s[1]])) / 32768.0,
            (1, 24) => (i32::from_le_bytes([0, s[0], s[1], s[2]]) >> 8) as f32 / 8_388_608.0,
            (1, 32) => i32::from_le_bytes([s[0], s[1], s[2], s[3]]) as f32 / 2_147_483_648.0,
            (3, 32) => f32::from_le_bytes([s[0], s[1], s[2], s[3]]),
            (3, 64) => f64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]) as f32,
            // `check` admitted only the formats above.
            _ => 0.0,
        }
    }
}

/// Linear interpolation from `from` Hz to `to` Hz.
fn resample(input: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || input.is_empty() {
        return input.to_vec();
    }
    let out_len = (input.len() as u64 * u64::from(to) / u64::from(from)).max(1) as usize;
    let step = f64::from(from) / f64::from(to);
    (0..out_len)
        .map(|i| {
            let pos = i as f64 * step;
            let j = pos.floor() as usize;
            let frac = (pos - j as f64) as f32;
            let a = input[j.min(input.len() - 1)];
            let b = input[(j + 1).min(input.len() - 1)];
            a + (b - a) * frac
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAV with the given header fields around `data`.
    fn wav(format: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
        let mut out = b"RIFF\0\0\0\0WAVE".to_vec();
        out.extend_from_slice(b"LIST\x04\0\0\0abcd"); // a chunk to skip
        out.extend_from_slice(b"fmt \x10\0\0\0");
        out.extend_from_slice(&format.to_le_bytes());
        out.extend_from_slice(&channels.to_le_bytes());
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&(rate * u32::from(channels * bits / 8)).to_le_bytes());
        out.extend_from_slice(&(channels * bits / 8).to_le_bytes());
        out.extend_from_slice(&bits.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        out
    }

    fn samples(pcm: &[u8]) -> Vec<i16> {
        pcm.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect()
    }

    #[test]
    fn a_session_rate_mono_wav_passes_through_unchanged() {
        let data: Vec<u8> = [0i16, 1000, -1000, 32767].iter().flat_map(|s| s.to_le_bytes()).collect();
        assert_eq!(to_session_pcm(&wav(1, 1, 24_000, 16, &data)).unwrap(), data);
    }

    #[test]
    fn stereo_48k_becomes_mono_24k_with_channels_averaged() {
        // 4 stereo frames at 48 kHz: left 0.5, right 0 -> mono 0.25, half as many frames.
        let frame: Vec<u8> = [16384i16, 0].iter().flat_map(|s| s.to_le_bytes()).collect();
        let data = frame.repeat(4);
        let out = samples(&to_session_pcm(&wav(1, 2, 48_000, 16, &data)).unwrap());
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|&s| (s - 8192).abs() <= 1), "{out:?}");
    }

    #[test]
    fn eight_bit_24_bit_and_float_samples_are_read() {
        let out = samples(&to_session_pcm(&wav(1, 1, 24_000, 8, &[128, 255, 0])).unwrap());
        assert_eq!(out[0], 0);
        assert!(out[1] > 32000 && out[2] == -32768, "{out:?}");
        let out = samples(&to_session_pcm(&wav(1, 1, 24_000, 24, &[0, 0, 0x40])).unwrap());
        assert!((out[0] - 16384).abs() <= 1, "{out:?}");
        let out = samples(&to_session_pcm(&wav(3, 1, 24_000, 32, &(-0.5f32).to_le_bytes())).unwrap());
        assert!((out[0] + 16384).abs() <= 1, "{out:?}");
    }

    #[test]
    fn eight_khz_is_upsampled_threefold() {
        let data: Vec<u8> = [0i16, 3000].iter().flat_map(|s| s.to_le_bytes()).collect();
        let out = samples(&to_session_pcm(&wav(1, 1, 8_000, 16, &data)).unwrap());
        assert_eq!(out.len(), 6);
        assert_eq!(out, [0, 1000, 2000, 3000, 3000, 3000]);
    }

    #[test]
    fn what_is_not_pcm_wav_is_refused_with_what_to_do() {
        let err = to_session_pcm(b"ID3\x04\0\0\0\0\0\0").unwrap_err();
        assert!(err.contains("neither WAV nor audio cometflow can decode"), "{err}");
        let err = to_session_pcm(&wav(2, 1, 8000, 4, &[0; 8])).unwrap_err();
        assert!(err.contains("not PCM or float"), "{err}");
        assert!(to_session_pcm(&wav(1, 1, 8000, 16, &[])).unwrap_err().contains("no audio"));
    }

    #[test]
    fn the_written_wav_reads_back() {
        let pcm: Vec<u8> = (0..480i16).flat_map(|s| (s * 10).to_le_bytes()).collect();
        let file = wav_file(&pcm, RATE);
        assert_eq!(&file[..4], b"RIFF");
        assert_eq!(file.len(), 44 + pcm.len());
        assert_eq!(to_session_pcm(&file).unwrap(), pcm);
        assert!((seconds(pcm.len()) - 0.02).abs() < 1e-9);
    }
}
