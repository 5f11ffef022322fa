//! Compressed audio (MP3, AAC/M4A, FLAC, Ogg Vorbis) decoded in pure Rust (symphonia) to
//! mono samples, so what a `speech` step made can be spoken to a realtime model without
//! ffmpeg. Decoding stops at [`MAX_SECONDS`]: a session takes minutes, not hours, and a
//! hostile file must not fill memory.

use std::io::Cursor;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::DecoderOptions;
use symphonia::core::errors::Error;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// The longest input decoded; longer audio is refused with a message.
pub(crate) const MAX_SECONDS: u64 = 15 * 60;

/// Mono samples in -1..1 and their rate.
pub(crate) fn mono(bytes: &[u8]) -> Result<(Vec<f32>, u32), String> {
    let source = MediaSourceStream::new(Box::new(Cursor::new(bytes.to_vec())), Default::default());
    let probed = symphonia::default::get_probe()
        .format(&Hint::new(), source, &FormatOptions::default(), &MetadataOptions::default())
        .map_err(|e| {
            format!("it is neither WAV nor audio cometflow can decode (MP3, AAC, FLAC, Ogg): {e}")
        })?;
    let mut format = probed.format;
    let track = format.default_track().ok_or("it holds no audio track")?;
    let id = track.id;
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|e| format!("its audio codec cannot be decoded: {e}"))?;
    let mut rate = track.codec_params.sample_rate.unwrap_or(0);
    let mut out: Vec<f32> = Vec::new();
    let mut buffer: Option<SampleBuffer<f32>> = None;
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(Error::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(Error::ResetRequired) => break,
            Err(e) => return Err(format!("it is damaged: {e}")),
        };
        if packet.track_id() != id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            // A damaged frame is skipped, as players do.
            Err(Error::DecodeError(_)) => continue,
            Err(e) => return Err(format!("it cannot be decoded: {e}")),
        };
        let spec = *decoded.spec();
        rate = spec.rate;
        let channels = spec.channels.count().max(1);
        let buf = match &mut buffer {
            Some(b) if b.capacity() >= decoded.capacity() * channels => b,
            _ => buffer.insert(SampleBuffer::new(decoded.capacity() as u64, spec)),
        };
        buf.copy_interleaved_ref(decoded);
        out.extend(buf.samples().chunks_exact(channels).map(|f| f.iter().sum::<f32>() / channels as f32));
        if rate > 0 && out.len() as u64 > MAX_SECONDS * u64::from(rate) {
            return Err(format!("it is longer than {} minutes; give a shorter clip", MAX_SECONDS / 60));
        }
    }
    if out.is_empty() || rate == 0 {
        return Err("it holds no audio".into());
    }
    Ok((out, rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_mp3_decodes_to_mono_samples_of_its_length() {
        let mp3 = include_bytes!("../../../../assets/sim/song.mp3");
        let (samples, rate) = mono(mp3).unwrap();
        assert!(rate == 44_100 || rate == 48_000 || rate == 22_050 || rate == 24_000, "{rate}");
        let seconds = samples.len() as f64 / f64::from(rate);
        assert!(seconds > 1.0, "{seconds}");
        assert!(samples.iter().any(|s| s.abs() > 0.01), "not silence");
    }

    #[test]
    fn text_that_is_no_audio_says_so() {
        let err = mono(b"ID3\x04\0\0\0\0\0\0 not really an mp3").unwrap_err();
        assert!(err.contains("neither WAV nor audio") || err.contains("no audio"), "{err}");
    }
}
