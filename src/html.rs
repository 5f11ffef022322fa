//! The self-contained HTML report of one run (`cometflow report`, `run --report`): a single
//! file with its stylesheet inline, the DAG drawn as SVG, a timeline, and each step's
//! outputs with players for the media it produced. It reads only the `RunRecord` and the
//! files the record names; it must never load anything from the network.

mod escape;
mod gantt;
mod json;
mod layout;
mod media;
mod page;
mod svg;

use std::io;
use std::path::{Path, PathBuf};

use crate::engine::RunRecord;

/// Where a run's report goes unless told otherwise: `report.html` in its run folder.
pub(crate) fn default_path(record: &RunRecord) -> PathBuf {
    Path::new(&record.run_dir).join("report.html")
}

/// The report as HTML, with media linked relative to `report_dir` (the folder the file
/// will be written to).
pub(crate) fn render(record: &RunRecord, report_dir: &Path) -> String {
    page::page(record, report_dir)
}

/// Writes the report to `path` and returns its absolute path.
pub(crate) fn write(record: &RunRecord, path: &Path) -> io::Result<PathBuf> {
    let path = std::path::absolute(path)?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir)?;
    std::fs::write(&path, render(record, dir))?;
    Ok(path)
}
