//! Source text of a pipeline file and the positions of its YAML nodes.
//!
//! serde gives us typed values but forgets where they came from, so errors found after
//! parsing (a bad reference in a template, an unknown step kind) look their position up
//! here by key path. The index is built lazily from a second, event-level parse: a valid
//! pipeline never pays for it.

use rustc_hash::FxHashMap as HashMap;
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
    index: OnceLock<Index>,
    /// Byte offsets where each line starts, for positions in O(log n).
    line_starts: OnceLock<Vec<usize>>,
}

#[derive(Debug)]
/// Spans by key path, and keys given twice in one mapping (path, first key, second key).
struct Index {
    spans: HashMap<KeyPath, NodePos>,
    duplicates: Vec<(KeyPath, Span, Span)>,
}

impl Source {
    /// A leading UTF-8 byte order mark is dropped: editors on Windows write one.
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Arc<Self> {
        let mut text = text.into();
        if text.starts_with('\u{feff}') {
            text.drain(..'\u{feff}'.len_utf8());
        }
        Arc::new(Source { path: path.into(), text, index: OnceLock::new(), line_starts: OnceLock::new() })
    }

    /// Keys written twice in the same mapping: (the mapping's path with the key, the first
    /// key's span, the repeated key's span), in file order.
    pub fn duplicate_keys(&self) -> &[(KeyPath, Span, Span)] {
        &self.index.get_or_init(|| build_index(&self.text)).duplicates
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
        let index = &self.index.get_or_init(|| build_index(&self.text)).spans;
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
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let starts = self.line_starts.get_or_init(|| {
            std::iter::once(0).chain(self.text.match_indices('\n').map(|(i, _)| i + 1)).collect()
        });
        let line = starts.partition_point(|&s| s <= offset);
        let line_start = starts[line - 1];
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
    duplicates: Vec<(KeyPath, Span, Span)>,
}

struct Frame {
    path: KeyPath,
    is_map: bool,
    next_index: usize,
    pending_key: Option<(String, Span)>,
    start: usize,
    /// For mappings: the keys seen so far, to catch one written twice.
    keys: HashMap<String, Span>,
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
                        if let Some(first) = frame.keys.insert(value.clone(), span) {
                            let mut path = frame.path.clone();
                            path.push(Seg::Key(value.clone()));
                            self.duplicates.push((path, first, span));
                        }
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
                self.stack.push(Frame {
                    path,
                    is_map,
                    next_index: 0,
                    pending_key: None,
                    start,
                    keys: HashMap::default(),
                });
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

fn build_index(text: &str) -> Index {
    let mut builder =
        IndexBuilder { text, index: HashMap::default(), stack: Vec::new(), duplicates: Vec::new() };
    let mut parser = Parser::new_from_str(text);
    // A syntax error was already reported by serde; whatever was indexed still helps.
    let _ = parser.load(&mut builder, false);
    Index { spans: builder.index, duplicates: builder.duplicates }
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
    fn keys_written_twice_are_found_with_both_positions() {
        let src = Source::new("p.yaml", "steps:\n  a: 1\n  b: {x: 1, x: 2}\n  a: 3\n");
        let dups: Vec<_> = src
            .duplicate_keys()
            .iter()
            .map(|(p, first, second)| (p.clone(), at(&src, *first), at(&src, *second)))
            .collect();
        assert_eq!(
            dups,
            vec![(path!["steps", "b", "x"], (3, 7), (3, 13)), (path!["steps", "a"], (2, 3), (4, 3))]
        );
    }

    #[test]
    fn a_byte_order_mark_is_dropped() {
        assert_eq!(Source::new("p.yaml", "\u{feff}name: x").text, "name: x");
    }

    #[test]
    fn converts_between_offsets_and_line_columns() {
        let src = Source::new("p.yaml", "ab\ncdé\nf");
        assert_eq!(src.line_col(src.offset_of(2, 3)), (2, 3));
        assert_eq!(src.offset_of(3, 1), 8);
    }
}
