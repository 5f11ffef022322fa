//! `suno.timing`: a clip's lyrics timeline (`GET /suno/act/timing/{clip_id}`), read as
//! words and as subtitle lines `{start, end, text}` in seconds.
//!
//! Hand-written because words are grouped into lines, which no output path can declare.
//!
//! [I] The answer's shape is not pinned by CometAPI's docs; this accepts what Suno's own
//! aligned-lyrics answer and the gateways around it use: `data` (or the top level) as a
//! list, or an object holding `aligned_words`/`words`/`lines`/`aligned_lyrics`; each item
//! `word|text|line|lyric` with `start_s|start|startTime|begin` and `end_s|end|endTime|stop`.

use reqwest::Method;
use serde_json::{json, Map, Value as Json};

use super::{at, charged, required_str};
use crate::api::retry::Call;
use crate::api::Api;
use crate::contract::{KindSpec, StepCtx, StepError};

/// A line ends at a newline in a word, after a pause this long, or past this many chars.
const PAUSE_SECONDS: f64 = 1.0;
const LINE_CHARS: usize = 42;

pub(super) async fn run(
    api: &Api,
    ctx: &StepCtx,
    spec: &KindSpec,
    body: Map<String, Json>,
) -> Result<Json, StepError> {
    let clip = required_str(spec, &body, "clip_id")?;
    charged(api, ctx)?;
    let path = format!("/suno/act/timing/{clip}");
    let raw = api.json(Call::Read, Method::GET, &path, None).await?;
    if let Some(code) = raw.get("code").filter(|c| c.as_str() != Some("success") && !c.is_null()) {
        let message = at(&raw, "message");
        return Err(StepError::fatal(format!(
            "`GET {path}` answered code {code} ({message}); check that `clip_id` is a finished clip's id"
        )));
    }
    let items = timed_items(&raw);
    if items.is_empty() {
        return Err(StepError::fatal(format!(
            "`GET {path}` held no timed lyrics (the clip may be instrumental or not finished); \
             check the clip, or give `media.subtitle` its `subtitles` yourself"
        )));
    }
    let words: Vec<Json> =
        items.iter().map(|(s, e, t)| json!({"start": s, "end": e, "text": t.trim()})).collect();
    Ok(json!({ "lines": lines(&items), "words": words, "raw": raw }))
}

/// (start, end, text) of every timed item, wherever the answer keeps them.
fn timed_items(raw: &Json) -> Vec<(f64, f64, String)> {
    let data = raw.get("data").filter(|d| !d.is_null()).unwrap_or(raw);
    let list = match data {
        Json::Array(list) => list.clone(),
        Json::Object(_) => ["aligned_words", "words", "lines", "aligned_lyrics", "timing", "data"]
            .iter()
            .find_map(|k| data.get(*k).and_then(Json::as_array).cloned())
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    list.iter()
        .filter_map(|item| {
            let text = at(item, "word|text|line|lyric");
            let start = seconds(&at(item, "start_s|start|startTime|begin|start_time"))?;
            let end = seconds(&at(item, "end_s|end|endTime|stop|end_time"))?;
            Some((start, end.max(start), text.as_str()?.to_owned()))
        })
        .collect()
}

fn seconds(v: &Json) -> Option<f64> {
    match v {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Words grouped into subtitle lines; section markers like `[Chorus]` are not sung.
fn lines(items: &[(f64, f64, String)]) -> Vec<Json> {
    let mut out = Vec::new();
    let mut cur: Option<(f64, f64, String)> = None;
    let mut flush = |cur: &mut Option<(f64, f64, String)>| {
        if let Some((s, e, t)) = cur.take() {
            let t = t.split_whitespace().collect::<Vec<_>>().join(" ");
            if !t.is_empty() {
                out.push(json!({"start": s, "end": e, "text": t}));
            }
        }
    };
    for (start, end, text) in items {
        let sung_len = strip_markers(text).len();
        if let Some((_, last_end, t)) = &cur {
            if start - last_end > PAUSE_SECONDS || t.len() + sung_len > LINE_CHARS {
                flush(&mut cur);
            }
        }
        // A newline inside a word breaks the line there ("[Verse]\nHello", "night\n").
        for (k, segment) in text.split('\n').enumerate() {
            if k > 0 {
                flush(&mut cur);
            }
            let sung = strip_markers(segment);
            if !sung.is_empty() {
                let entry = cur.get_or_insert((*start, *end, String::new()));
                entry.1 = *end;
                entry.2.push_str(&sung);
                entry.2.push(' ');
            }
        }
    }
    flush(&mut cur);
    out
}

fn strip_markers(text: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in text.chars() {
        match c {
            '[' => depth += 1,
            ']' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suno_aligned_words_become_lines_without_section_markers() {
        let raw = json!({"code": "success", "data": {"aligned_words": [
            {"word": "[Verse]\nHello ", "start_s": 0.5, "end_s": 0.9},
            {"word": "rainy ", "start_s": 0.9, "end_s": 1.2},
            {"word": "night\n", "start_s": 1.2, "end_s": 1.8},
            {"word": "Neon ", "start_s": 2.0, "end_s": 2.4},
            {"word": "glow", "start_s": "2.4", "end_s": "3.0"}]}});
        let items = timed_items(&raw);
        assert_eq!(items.len(), 5);
        assert_eq!(
            lines(&items),
            [
                json!({"start": 0.5, "end": 1.8, "text": "Hello rainy night"}),
                json!({"start": 2.0, "end": 3.0, "text": "Neon glow"})
            ]
        );
    }

    #[test]
    fn line_shaped_answers_are_read_too() {
        let raw = json!({"data": [{"text": "First line", "start": 0, "end": 2},
                                  {"text": "Second line", "startTime": 4, "endTime": 6}]});
        let got = lines(&timed_items(&raw));
        assert_eq!(got.len(), 2, "a pause splits lines: {got:?}");
        assert_eq!(got[1]["text"], "Second line");
    }
}
