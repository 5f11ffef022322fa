//! Atomic output: everything is written to a hidden temporary file in the
//! output's own directory (so the final rename never crosses filesystems)
//! and renamed over `output` only when complete. Dropping an unfinished
//! [`TempOutput`] deletes the temporary file, so failures leave nothing.

use std::fs::File;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use super::MediaError;

pub(crate) struct TempOutput {
    tmp: NamedTempFile,
    output: PathBuf,
}

impl TempOutput {
    pub(crate) fn new(output: &Path) -> Result<Self, MediaError> {
        let dir = match output.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".cometflow-")
            .suffix(".part.mp4")
            .tempfile_in(dir)
            .map_err(|source| MediaError::Write { path: output.to_path_buf(), source })?;
        Ok(TempOutput { tmp, output: output.to_path_buf() })
    }

    pub(crate) fn file(&self) -> &File {
        self.tmp.as_file()
    }

    /// Where the data is being written (for ffmpeg, which opens it by name).
    pub(crate) fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// Renames the finished file to the output path. No fsync: outputs are
    /// re-creatable and a sync would dominate the remux time.
    pub(crate) fn finish(self) -> Result<(), MediaError> {
        self.tmp
            .persist(&self.output)
            .map(|_| ())
            .map_err(|e| MediaError::Write { path: self.output, source: e.error })
    }
}
