//! Source text of a pipeline file and the positions of its YAML nodes.
//!
//! serde gives us typed values but forgets where they came from, so errors found after
//! parsing (a bad reference in a template, an unknown step kind) look their position up
//! here by key path. The index is built lazily from a second, event-level parse: a valid
//! pipeline never pays for it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// One segment of a path into the YAML document: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

impl From<&str> for Seg {
    fn from(s: &str) -> Self {
        Seg::Key(s.to_owned())
    }
}

impl From<usize> for Seg {
    fn from(i: usize) -> Self {
        Seg::Index(i)
    }
}

/// A path into the YAML document, such as `steps.song.with.prompt`.
pub type KeyPath = Vec<Seg>;

/// Builds a key path from segments: `path!["steps", id.as_str(), "with"]`.
#[macro_export]
macro_rules! path {
    ($($seg:expr),* $(,)?) => { ::std::vec::Vec::<$crate::source::Seg>::from([$($crate::source::Seg::from($seg)),*]) };
}

/// Byte span in the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub offset: usize,
    pub len: usize,
}

/// Where a node sits: its key (for mapping values) and its value.
#[derive(Debug, Clone, Copy)]
struct NodePos {
    key: Option<Span>,
    value: Span,
}

/// A pipeline file's text, shared by every diagnostic that points into it.
#[derive(Debug)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
    index: OnceLock<HashMap<KeyPath, NodePos>>,
}

impl Source {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Arc<Self> {
        Arc::new(Source { path: path.into(), text: text.into(), index: OnceLock::new() })
    }

    /// The name shown in diagnostics: the path as the user gave it.
    pub fn name(&self) -> String {
        self.path.display().to_string()
    }

    pub fn dir(&self) -> &Path {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }

    /// The span of the value at `path`, or of its nearest ancestor that exists.
    pub fn value_span(&self, path: &[Seg]) -> Span {
        self.lookup(path, false)
    }

    /// The span of the key that introduces `path` (falls back to the value).
    pub fn key_span(&self, path: &[Seg]) -> Span {
        self.lookup(path, true)
    }

    fn lookup(&self, path: &[Seg], want_key: bool) -> Span {
        let index = self.index.get_or_init(|| build_index(&self.text));
        for len in (0..=path.len()).rev() {
            if let Some(pos) = index.get(&path[..len]) {
                return match (want_key, pos.key) {
                    (true, Some(k)) => k,
                    _ => pos.value,
                };
            }
        }
        Span::default()
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = self.text[line_start..offset].chars().count() + 1;
        (line, col)
    }

    /// Byte offset of a 1-based line and column (as YAML parsers report them).
    pub fn offset_of(&self, line: usize, col: usize) -> usize {
        let mut start = 0;
        for _ in 1..line {
            match self.text[start..].find('\n') {
                Some(i) => start += i + 1,
                None => return self.text.len(),
            }
        }
        let line_text = &self.text[start..];
        let line_end = line_text.find('\n').unwrap_or(line_text.len());
        start + line_text[..line_end].char_indices().nth(col.saturating_sub(1)).map_or(line_end, |(i, _)| i)
    }
}

/// Walks YAML events, remembering the span of every key and value by key path.
struct IndexBuilder<'a> {
    text: &'a str,
    index: HashMap<KeyPath, NodePos>,
    /// One frame per open collection: its path, and for mappings the pending key.
    stack: Vec<Frame>,
}

struct Frame {
    path: KeyPath,
    is_map: bool,
    next_index: usize,
    pending_key: Option<(String, Span)>,
    start: usize,
}

impl IndexBuilder<'_> {
    /// Where the next value goes, and the span of its key if it is a mapping value.
    fn next_slot(&mut self) -> Option<(KeyPath, Option<Span>)> {
        let frame = self.stack.last_mut()?;
        let mut path = frame.path.clone();
        if frame.is_map {
            let (key, span) = frame.pending_key.take()?;
            path.push(Seg::Key(key));
            Some((path, Some(span)))
        } else {
            path.push(Seg::Index(frame.next_index));
            frame.next_index += 1;
            Some((path, None))
        }
    }

    fn scalar_span(&self, value: &str, mark: Marker) -> Span {
        // Plain scalars span their text; quoted or block ones at least start here.
        let offset = mark.index().min(self.text.len());
        let rest = &self.text[offset..];
        let len = if rest.starts_with(value) && !value.is_empty() {
            value.len()
        } else {
            rest.find('\n').unwrap_or(rest.len()).max(1)
        };
        Span { offset, len }
    }
}

impl MarkedEventReceiver for IndexBuilder<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(value, ..) => {
                let span = self.scalar_span(&value, mark);
                let is_key = matches!(self.stack.last(), Some(f) if f.is_map && f.pending_key.is_none());
                if is_key {
                    if let Some(frame) = self.stack.last_mut() {
                        frame.pending_key = Some((value, span));
                    }
                } else if let Some((path, key)) = self.next_slot() {
                    self.index.insert(path, NodePos { key, value: span });
                } else {
                    self.index.insert(Vec::new(), NodePos { key: None, value: span });
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_map = matches!(ev, Event::MappingStart(..));
                let (path, key) = self.next_slot().unwrap_or((Vec::new(), None));
                let start = mark.index();
                // Record the collection now; its end is filled in when it closes.
                self.index.insert(path.clone(), NodePos { key, value: Span { offset: start, len: 1 } });
                self.stack.push(Frame { path, is_map, next_index: 0, pending_key: None, start });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                if let Some(frame) = self.stack.pop() {
                    if let Some(pos) = self.index.get_mut(&frame.path) {
                        // A collection's span is its first line: enough to point at it.
                        let rest = &self.text[frame.start.min(self.text.len())..];
                        pos.value.len = rest.find('\n').unwrap_or(rest.len()).max(1);
                    }
                }
            }
            Event::Alias(_) => {
                let _ = self.next_slot();
            }
            _ => {}
        }
    }
}

fn build_index(text: &str) -> HashMap<KeyPath, NodePos> {
    let mut builder = IndexBuilder { text, index: HashMap::new(), stack: Vec::new() };
    let mut parser = Parser::new_from_str(text);
    // A syntax error was already reported by serde; whatever was indexed still helps.
    let _ = parser.load(&mut builder, false);
    builder.index
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "name: demo\nsteps:\n  a:\n    uses: value\n    with:\n      x: \"{{ inputs.y }}\"\n  b:\n    needs: [a, c]\n";

    fn at(src: &Source, span: Span) -> (usize, usize) {
        src.line_col(span.offset)
    }

    #[test]
    fn finds_values_and_keys_by_path() {
        let src = Source::new("p.yaml", TEXT);
        assert_eq!(at(&src, src.value_span(&path!["name"])), (1, 7));
        assert_eq!(at(&src, src.key_span(&path!["steps", "a", "uses"])), (4, 5));
        assert_eq!(at(&src, src.value_span(&path!["steps", "a", "with", "x"])), (6, 10));
        assert_eq!(at(&src, src.value_span(&path!["steps", "b", "needs", 1usize])), (8, 16));
    }

    #[test]
    fn missing_paths_fall_back_to_the_nearest_ancestor() {
        let src = Source::new("p.yaml", TEXT);
        assert_eq!(at(&src, src.key_span(&path!["steps", "b", "if"])), (7, 3));
    }

    #[test]
    fn converts_between_offsets_and_line_columns() {
        let src = Source::new("p.yaml", "ab\ncdé\nf");
        assert_eq!(src.line_col(src.offset_of(2, 3)), (2, 3));
        assert_eq!(src.offset_of(3, 1), 8);
    }
}
