//! Escaping for everything the report takes from a run: HTML text and attributes, and
//! relative file paths turned into URL paths. Run data is model-produced, so nothing from
//! it reaches the page without passing through here.

use std::fmt::Write;
use std::path::{Component, Path};

/// Escapes text for HTML content and for quoted attribute values alike.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A relative path as a URL path: each segment percent-encoded (so `#`, `?`, `%` and
/// spaces in file names stay part of the name), joined with `/`. Not yet HTML-escaped.
pub(crate) fn url_path(rel: &Path) -> String {
    let mut segments = Vec::new();
    for c in rel.components() {
        match c {
            Component::ParentDir => segments.push("..".to_owned()),
            Component::CurDir => {}
            Component::Normal(s) => segments.push(percent_encode(&s.to_string_lossy())),
            // A relative path has no root or prefix; keep whatever else comes as a plain name.
            other => segments.push(percent_encode(&other.as_os_str().to_string_lossy())),
        }
    }
    if segments.is_empty() {
        ".".to_owned()
    } else {
        segments.join("/")
    }
}

fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_run_data_becomes_text() {
        assert_eq!(escape("<script>alert(1)</script>"), "&lt;script&gt;alert(1)&lt;/script&gt;");
        assert_eq!(escape(r#"a "b" & 'c'"#), "a &quot;b&quot; &amp; &#39;c&#39;");
        assert_eq!(escape("plain ünïcode"), "plain ünïcode");
    }

    #[test]
    fn url_paths_keep_odd_file_names_whole() {
        assert_eq!(url_path(Path::new("final/out.mp4")), "final/out.mp4");
        assert_eq!(url_path(Path::new("../x/a b#1?.png")), "../x/a%20b%231%3F.png");
        assert_eq!(url_path(Path::new("\"><img>.png")), "%22%3E%3Cimg%3E.png");
        assert_eq!(url_path(Path::new("")), ".");
    }
}
