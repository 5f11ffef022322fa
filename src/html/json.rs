//! Step outputs and run inputs as pretty, coloured JSON in HTML. Long or multi-line strings
//! fold into a `<details>` showing their start, so a 20 kB `raw` answer stays one line
//! until asked for. Every key and value is escaped: they come from models.

use std::fmt::Write;

use serde_json::Value as Json;

use super::escape::escape;

/// Strings longer than this (or with more lines than `FOLD_LINES`) are folded.
const FOLD_CHARS: usize = 160;
const FOLD_LINES: usize = 4;
const PREVIEW_CHARS: usize = 72;

pub(crate) fn render(value: &Json) -> String {
    let mut out = String::from(r#"<div class="json">"#);
    write_value(&mut out, value);
    out.push_str("</div>");
    out
}

fn write_value(out: &mut String, value: &Json) {
    match value {
        Json::Null => out.push_str(r#"<span class="j-lit">null</span>"#),
        Json::Bool(b) => {
            let _ = write!(out, r#"<span class="j-lit">{b}</span>"#);
        }
        Json::Number(n) => {
            let _ = write!(out, r#"<span class="j-num">{n}</span>"#);
        }
        Json::String(s) => write_string(out, s),
        Json::Array(items) if items.is_empty() => out.push_str("[]"),
        Json::Object(map) if map.is_empty() => out.push_str("{}"),
        Json::Array(items) => {
            out.push_str(r#"[<div class="j-in">"#);
            for (i, item) in items.iter().enumerate() {
                out.push_str("<div>");
                write_value(out, item);
                if i + 1 < items.len() {
                    out.push(',');
                }
                out.push_str("</div>");
            }
            out.push_str("</div>]");
        }
        Json::Object(map) => {
            out.push_str(r#"{<div class="j-in">"#);
            for (i, (k, v)) in map.iter().enumerate() {
                let _ = write!(out, r#"<div><span class="j-key">{}</span>: "#, escape(&quote(k)));
                write_value(out, v);
                if i + 1 < map.len() {
                    out.push(',');
                }
                out.push_str("</div>");
            }
            out.push_str("</div>}");
        }
    }
}

fn write_string(out: &mut String, s: &str) {
    let lines = s.lines().count();
    let chars = s.chars().count();
    if chars <= FOLD_CHARS && lines <= FOLD_LINES {
        let _ = write!(out, r#"<span class="j-str">{}</span>"#, escape(&quote(s)));
        return;
    }
    let first_line = s.lines().next().unwrap_or("");
    let mut preview: String = first_line.chars().take(PREVIEW_CHARS).collect();
    preview.push('…');
    let _ = write!(
        out,
        r#"<details class="fold"><summary><span class="j-str">{}</span> <span class="j-size">{chars} chars, {lines} line{}</span></summary><pre class="j-long">{}</pre></details>"#,
        escape(&quote(&preview)),
        if lines == 1 { "" } else { "s" },
        escape(s)
    );
}

/// A string as JSON writes it, quotes and escapes included.
fn quote(s: &str) -> String {
    Json::String(s.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keys_and_values_are_escaped() {
        let html = render(&json!({ "<b>": "<script>alert(1)</script>" }));
        assert!(!html.contains("<script>") && !html.contains("<b>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    #[test]
    fn long_strings_fold_and_short_ones_do_not() {
        let long = "word ".repeat(100);
        let html = render(&json!({ "short": "hi", "long": long }));
        assert_eq!(html.matches("<details").count(), 1);
        assert!(html.contains("500 chars, 1 line"));
        assert!(html.contains(r#"<span class="j-str">&quot;hi&quot;</span>"#));
        let many = render(&json!("a\nb\nc\nd\ne"));
        assert!(many.contains("5 lines"));
    }

    #[test]
    fn nesting_shows_every_value() {
        let html = render(&json!([{ "n": 1, "ok": true, "none": null }, []]));
        for part in [">1<", ">true<", ">null<", "[]"] {
            assert!(html.contains(part), "{part} missing in {html}");
        }
    }
}
