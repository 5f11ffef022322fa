//! Expands an `stbl` (stts, ctts, stss, stsz, stsc, stco/co64) into one
//! [`Sample`] per sample, validating counts and byte ranges on the way.

use super::boxes::{find, need, BoxRef, ParseResult, Rd};

/// One sample of a track, as read from its sample tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sample {
    pub offset: u64,
    pub size: u32,
    pub duration: u32,
    /// Composition offset (pts - dts), in the track timescale.
    pub cts: i32,
    pub sync: bool,
    /// 1-based index into the track's sample entries.
    pub entry: u32,
}

/// Expands the sample table; `file_len` bounds every sample's byte range and
/// `n_entries` bounds the sample-description indices.
pub(crate) fn expand(stbl: &[BoxRef<'_>], file_len: u64, n_entries: u32) -> ParseResult<Vec<Sample>> {
    let sizes = read_stsz(need(stbl, b"stsz").or_else(|_| need(stbl, b"stz2"))?, file_len)?;
    let count = sizes.len();
    let durations = read_runs(need(stbl, b"stts")?.body, "stts", count)?;
    let cts = match find(stbl, b"ctts") {
        Some(b) => read_runs(b.body, "ctts", count)?,
        None => vec![0; count],
    };
    let sync = match find(stbl, b"stss") {
        Some(b) => Some(read_stss(b.body, count)?),
        None => None,
    };
    let chunks = match find(stbl, b"stco") {
        Some(b) => read_offsets(b.body, false)?,
        None => read_offsets(need(stbl, b"co64")?.body, true)?,
    };
    let stsc = read_stsc(need(stbl, b"stsc")?.body)?;

    let mut samples = Vec::with_capacity(count);
    let mut next = 0usize;
    for (ci, &chunk_off) in chunks.iter().enumerate() {
        let chunk_no = ci as u32 + 1;
        // The last stsc entry whose first_chunk <= this chunk applies.
        let Some(&(_, per_chunk, entry)) = stsc.iter().rev().find(|e| e.0 <= chunk_no) else {
            return Err("stsc does not cover the first chunk".into());
        };
        if entry == 0 || entry > n_entries {
            return Err(format!("stsc refers to sample description {entry} of {n_entries}"));
        }
        let mut off = chunk_off;
        for _ in 0..per_chunk {
            if next >= count {
                break;
            }
            let size = sizes[next];
            let end = off.checked_add(size as u64).ok_or("sample offset overflows")?;
            if end > file_len {
                return Err(format!(
                    "file is truncated: sample {} needs bytes up to {end} but the file ends at {file_len}",
                    next + 1
                ));
            }
            samples.push(Sample {
                offset: off,
                size,
                duration: durations[next] as u32,
                cts: cts[next],
                sync: sync.as_ref().is_none_or(|s| s[next]),
                entry,
            });
            off = end;
            next += 1;
        }
    }
    if next != count {
        return Err(format!("chunks hold {next} samples but stsz lists {count}"));
    }
    Ok(samples)
}

fn read_stsz(b: BoxRef<'_>, file_len: u64) -> ParseResult<Vec<u32>> {
    let mut r = Rd::new(b.body, "stsz");
    r.full_header()?;
    if &b.kind == b"stz2" {
        r.skip(3)?;
        let bits = r.u8()?;
        let n = r.u32()? as usize;
        let mut out = Vec::with_capacity(n.min(r.remaining() * 2));
        match bits {
            8 => (0..n).try_for_each(|_| r.u8().map(|v| out.push(v as u32)))?,
            16 => (0..n).try_for_each(|_| r.u16().map(|v| out.push(v as u32)))?,
            4 => {
                for i in 0..n {
                    let byte = if i % 2 == 0 { r.u8()? } else { out[i - 1] as u8 };
                    out.push(if i % 2 == 0 { (byte >> 4) as u32 } else { (byte & 15) as u32 });
                }
            }
            _ => return Err(format!("stz2 field size {bits} is invalid")),
        }
        return Ok(out);
    }
    let fixed = r.u32()?;
    let n = r.u32()? as usize;
    if fixed != 0 {
        // Without a table, a corrupt count could ask for billions of samples.
        if (n as u64).saturating_mul(fixed as u64) > file_len {
            return Err(format!("stsz lists {n} samples of {fixed} bytes, more than the file holds"));
        }
        return Ok(vec![fixed; n]);
    }
    if r.remaining() < n.saturating_mul(4) {
        return Err("stsz box is truncated".into());
    }
    (0..n).map(|_| r.u32()).collect()
}

/// Reads a run-length table (stts or ctts) into one value per sample.
fn read_runs(body: &[u8], what: &'static str, count: usize) -> ParseResult<Vec<i32>> {
    let mut r = Rd::new(body, what);
    r.full_header()?;
    let n = r.u32()?;
    let mut out = Vec::with_capacity(count);
    for _ in 0..n {
        let run = r.u32()? as usize;
        // ctts v0 is unsigned but writers store negative offsets in it too.
        let value = r.u32()? as i32;
        if out.len() + run > count {
            return Err(format!("{what} describes more samples than stsz ({count})"));
        }
        out.resize(out.len() + run, value);
    }
    if out.len() != count {
        return Err(format!("{what} describes {} samples but stsz lists {count}", out.len()));
    }
    Ok(out)
}

fn read_stss(body: &[u8], count: usize) -> ParseResult<Vec<bool>> {
    let mut r = Rd::new(body, "stss");
    r.full_header()?;
    let n = r.u32()?;
    let mut sync = vec![false; count];
    for _ in 0..n {
        let i = r.u32()? as usize;
        if i == 0 || i > count {
            return Err(format!("stss names sample {i} of {count}"));
        }
        sync[i - 1] = true;
    }
    Ok(sync)
}

fn read_offsets(body: &[u8], wide: bool) -> ParseResult<Vec<u64>> {
    let mut r = Rd::new(body, if wide { "co64" } else { "stco" });
    r.full_header()?;
    let n = r.u32()? as usize;
    if r.remaining() < n.saturating_mul(if wide { 8 } else { 4 }) {
        return Err("chunk offset box is truncated".into());
    }
    (0..n).map(|_| if wide { r.u64() } else { r.u32().map(u64::from) }).collect()
}

fn read_stsc(body: &[u8]) -> ParseResult<Vec<(u32, u32, u32)>> {
    let mut r = Rd::new(body, "stsc");
    r.full_header()?;
    let n = r.u32()? as usize;
    if r.remaining() < n.saturating_mul(12) {
        return Err("stsc box is truncated".into());
    }
    (0..n).map(|_| Ok((r.u32()?, r.u32()?, r.u32()?))).collect()
}

#[cfg(test)]
mod tests {
    use super::super::boxes::{children, BoxWriter};
    use super::*;

    fn table(kind: &[u8; 4], entries: &[u32]) -> Vec<u8> {
        let mut w = BoxWriter::new();
        w.open_full(kind, 0, 0);
        entries.iter().for_each(|&v| w.u32(v));
        w.close();
        w.buf
    }

    fn stbl(parts: &[Vec<u8>]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn samples_get_offsets_from_chunks_and_timing_from_runs() {
        let data = stbl(&[
            table(b"stts", &[1, 3, 512]),
            table(b"ctts", &[2, 2, 1024, 1, 0]),
            table(b"stss", &[1, 1]),
            table(b"stsz", &[0, 3, 10, 20, 30]),
            table(b"stsc", &[1, 1, 2, 1]),
            table(b"stco", &[2, 100, 500]),
        ]);
        let boxes = children(&data).unwrap();
        let s = expand(&boxes, 1000, 1).unwrap();
        let offsets: Vec<u64> = s.iter().map(|s| s.offset).collect();
        assert_eq!(offsets, [100, 110, 500]);
        assert_eq!(s.iter().map(|s| s.cts).collect::<Vec<_>>(), [1024, 1024, 0]);
        assert_eq!(s.iter().map(|s| s.sync).collect::<Vec<_>>(), [true, false, false]);
        assert!(s.iter().all(|s| s.duration == 512));
    }

    #[test]
    fn a_sample_past_the_end_of_the_file_reports_truncation() {
        let data = stbl(&[
            table(b"stts", &[1, 1, 512]),
            table(b"stsz", &[0, 1, 400]),
            table(b"stsc", &[1, 1, 1, 1]),
            table(b"stco", &[1, 100]),
        ]);
        let err = expand(&children(&data).unwrap(), 300, 1).unwrap_err();
        assert!(err.contains("truncated"), "{err}");
    }

    #[test]
    fn inconsistent_counts_are_an_error() {
        let data = stbl(&[
            table(b"stts", &[1, 5, 512]),
            table(b"stsz", &[0, 1, 4]),
            table(b"stsc", &[1, 1, 1, 1]),
            table(b"stco", &[1, 0]),
        ]);
        assert!(expand(&children(&data).unwrap(), 300, 1).is_err());
    }

    #[test]
    fn a_huge_constant_size_count_is_refused_without_allocating() {
        let data = stbl(&[table(b"stsz", &[1000, u32::MAX])]);
        let boxes = children(&data).unwrap();
        assert!(read_stsz(boxes[0], 5000).is_err());
    }
}
