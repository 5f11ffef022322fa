//! The tracks a muxer writes and how their samples are laid out: shared by the chunk
//! planner (`mux`) and the box writer (`moov`), which must not depend on each other.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutSample {
    /// Index into the `sources` given to [`write`].
    pub src: usize,
    pub offset: u64,
    pub size: u32,
    pub duration: u32,
    pub cts: i32,
    pub sync: bool,
    /// 1-based sample entry index.
    pub entry: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Video {
        width: u16,
        height: u16,
    },
    Audio,
    /// Timed text (`tx3g` subtitles).
    Text,
}

#[derive(Debug, Clone)]
pub(crate) struct OutTrack {
    pub kind: Kind,
    pub timescale: u32,
    /// Complete sample entry boxes (avc1, mp4a).
    pub entries: Vec<Vec<u8>>,
    /// In decode order.
    pub samples: Vec<OutSample>,
    /// Media time where presentation starts (edit list media_time).
    pub shift: i64,
    /// Presented duration in the track timescale (edit list segment).
    pub presented: u64,
}

impl OutTrack {
    pub(crate) fn seconds(&self) -> f64 {
        self.presented as f64 / self.timescale as f64
    }
}

/// A run of consecutive samples of one track, stored contiguously in mdat.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Chunk {
    pub track: usize,
    pub first: usize,
    pub count: usize,
    /// Offset from the start of the mdat payload.
    pub offset: u64,
    /// An earlier chunk already wrote these bytes: `offset` points at them
    /// and nothing is copied for this chunk.
    pub shared: bool,
}
