//! Media in a run's outputs: every string (at any depth, so `for_each` lists of output maps
//! too) that names an existing file with an audio, video or image extension becomes a
//! player. Files are linked by a path relative to the report, never copied or inlined, so
//! the report stays small and keeps working when the run folder is moved or served.

use std::collections::HashSet;
use std::fmt::Write;
use std::path::{Component, Path, PathBuf};

use serde_json::Value as Json;

use super::escape::{escape, url_path};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Audio,
    Video,
    Image,
}

/// One playable file: where it appeared in the outputs and its URL from the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Media {
    pub label: String,
    pub kind: Kind,
    pub src: String,
    /// The file's name as shown (`src` is percent-encoded).
    pub name: String,
}

pub(crate) fn kind_of(path: &str) -> Option<Kind> {
    let ext = Path::new(path).extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "mp3" | "wav" | "m4a" | "aac" | "ogg" | "flac" => Some(Kind::Audio),
        "mp4" | "webm" | "mov" => Some(Kind::Video),
        "png" | "jpg" | "jpeg" | "webp" | "gif" => Some(Kind::Image),
        _ => None,
    }
}

/// Finds the media in `value`. Relative paths are taken from the run folder; each file
/// shows once, at its first mention.
pub(crate) fn find(value: &Json, run_dir: &Path, report_dir: &Path) -> Vec<Media> {
    let mut found = Vec::new();
    let mut seen = HashSet::new();
    let report_dir = canonical(report_dir);
    walk(value, String::new(), &mut |label, s| {
        let Some(kind) = kind_of(s) else { return };
        let path = run_dir.join(s); // an absolute `s` replaces `run_dir`
        if !path.is_file() {
            return;
        }
        let path = canonical(&path);
        if seen.insert(path.clone()) {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            found.push(Media { label, kind, src: url_path(&relative(&report_dir, &path)), name });
        }
    });
    found
}

fn walk(value: &Json, label: String, visit: &mut impl FnMut(String, &str)) {
    match value {
        Json::String(s) => visit(label, s),
        Json::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, format!("{label}[{i}]"), visit);
            }
        }
        Json::Object(map) => {
            for (k, v) in map {
                let label = if label.is_empty() { k.clone() } else { format!("{label}.{k}") };
                walk(v, label, visit);
            }
        }
        _ => {}
    }
}

/// Resolves symlinks (a temp dir under `/tmp` may really be elsewhere) so both ends of a
/// relative path agree; a path that cannot be resolved is used as given.
fn canonical(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

/// The path from directory `from` to `to`, both absolute.
pub(crate) fn relative(from: &Path, to: &Path) -> PathBuf {
    let a: Vec<Component> = from.components().collect();
    let b: Vec<Component> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut rel = PathBuf::new();
    for _ in common..a.len() {
        rel.push("..");
    }
    for c in &b[common..] {
        rel.push(c.as_os_str());
    }
    rel
}

/// The players for a list of media, as a grid of captioned figures.
pub(crate) fn players(media: &[Media]) -> String {
    if media.is_empty() {
        return String::new();
    }
    let mut out = String::from(r#"<div class="media">"#);
    for m in media {
        let src = escape(&m.src);
        let player = match m.kind {
            Kind::Audio => format!(r#"<audio controls preload="metadata" src="{src}"></audio>"#),
            // `#t=0.1` makes the browser seek and paint a frame instead of a black box.
            Kind::Video => format!(r#"<video controls preload="metadata" src="{src}#t=0.1"></video>"#),
            Kind::Image => {
                format!(r#"<a href="{src}"><img loading="lazy" src="{src}" alt="{}"></a>"#, escape(&m.label))
            }
        };
        let _ = write!(
            out,
            r#"<figure class="m-{kind}">{player}<figcaption><code>{label}</code> <a href="{src}">{file}</a></figcaption></figure>"#,
            kind = match m.kind {
                Kind::Audio => "audio",
                Kind::Video => "video",
                Kind::Image => "image",
            },
            label = escape(&m.label),
            file = escape(&m.name),
        );
    }
    out.push_str("</div>");
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn relative_paths_climb_only_as_far_as_needed() {
        let rel = |a: &str, b: &str| relative(Path::new(a), Path::new(b)).display().to_string();
        assert_eq!(rel("/s/runs/r1", "/s/runs/r1/final/out.mp4"), "final/out.mp4");
        assert_eq!(rel("/home/me/reports", "/s/runs/r1/a.png"), "../../../s/runs/r1/a.png");
        assert_eq!(rel("/s/runs/r1/x", "/s/runs/r1/y/a.png"), "../y/a.png");
    }

    #[test]
    fn only_existing_files_with_media_extensions_count() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir_all(run.join("shot/0")).unwrap();
        std::fs::write(run.join("shot/0/a.PNG"), b"png").unwrap();
        std::fs::write(run.join("song.mp3"), b"mp3").unwrap();
        std::fs::write(run.join("notes.txt"), b"txt").unwrap();
        let outputs = json!([
            { "image": run.join("shot/0/a.PNG"), "again": "shot/0/a.PNG" },
            { "audio": "song.mp3", "text": "notes.txt", "missing": "gone.mp4", "n": 3 }
        ]);
        let found = find(&outputs, &run, &run);
        assert_eq!(
            found,
            vec![
                Media {
                    label: "[0].image".into(),
                    kind: Kind::Image,
                    src: "shot/0/a.PNG".into(),
                    name: "a.PNG".into()
                },
                Media {
                    label: "[1].audio".into(),
                    kind: Kind::Audio,
                    src: "song.mp3".into(),
                    name: "song.mp3".into()
                },
            ]
        );
        let html = players(&found);
        assert!(html.contains(r#"<img loading="lazy" src="shot/0/a.PNG""#));
        assert!(html.contains(r#"<audio controls preload="metadata" src="song.mp3">"#));
    }
}
