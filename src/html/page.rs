//! The page itself: head (stylesheet, a content security policy that forbids scripts and
//! network), the run's header, the graph, the timeline and a section per step. It only
//! arranges what the sibling modules draw.

use std::fmt::Write;
use std::path::Path;

use serde_json::Value as Json;

use super::escape::escape;
use super::{gantt, json, media, svg};
use crate::engine::{human_duration, RunRecord, StepRecord};

const STYLE: &str = include_str!("style.css");

/// No script may run and nothing may load from the network: only the inline stylesheet
/// and media files beside the report.
const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' file:; media-src 'self' file:";

pub(crate) fn page(record: &RunRecord, report_dir: &Path) -> String {
    let run_dir = Path::new(&record.run_dir);
    let mut out = String::with_capacity(32 * 1024);
    let _ = write!(
        out,
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="color-scheme" content="light dark">
<title>{} · {} · cometflow</title>
<style>{STYLE}</style>
</head>
<body>
"#,
        escape(&record.pipeline),
        escape(record.status.as_str()),
    );
    header(&mut out, record);
    out.push_str("<main>\n");
    io_cards(&mut out, record, run_dir, report_dir);
    let _ = write!(
        out,
        r#"<section id="graph"><h2>Graph</h2><div class="legend">{}</div><div class="scroll">{}</div></section>
<section id="timeline"><h2>Timeline</h2>{}</section>
<section id="steps"><h2>Steps</h2>
"#,
        legend(),
        svg::dag(&record.steps),
        gantt::timeline(record),
    );
    for (id, step) in &record.steps {
        step_section(&mut out, id, step, run_dir, report_dir);
    }
    let _ = write!(
        out,
        "</section>\n</main>\n<footer>cometflow {} · run folder <code>{}</code></footer>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION"),
        escape(&record.run_dir),
    );
    out
}

fn header(out: &mut String, r: &RunRecord) {
    let mut counts = Vec::new();
    for status in ["succeeded", "failed", "skipped", "cancelled"] {
        let n = r.steps.values().filter(|s| s.status.as_str() == status).count();
        if n > 0 {
            counts.push(format!(r#"<span class="count s-{status}"><i></i>{n} {status}</span>"#));
        }
    }
    let _ = write!(
        out,
        r#"<header class="top">
<div class="eyebrow">cometflow run report</div>
<div class="title"><h1>{pipeline}</h1><span class="badge s-{status}">{status}</span></div>
<dl class="facts">
<div><dt>run</dt><dd><code>{run_id}</code></dd></div>
<div><dt>started</dt><dd>{started}</dd></div>
<div><dt>duration</dt><dd>{duration}</dd></div>
<div><dt>steps</dt><dd>{steps} {counts}</dd></div>
<div class="wide"><dt>pipeline file</dt><dd><code>{file}</code></dd></div>
</dl>
</header>
"#,
        pipeline = escape(&r.pipeline),
        status = r.status.as_str(),
        run_id = escape(&r.run_id),
        started = escape(&r.started_at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()),
        duration = human_duration(r.duration_ms),
        steps = r.steps.len(),
        counts = counts.join(" "),
        file = escape(if r.pipeline_file.is_empty() { "(not recorded)" } else { &r.pipeline_file }),
    );
}

fn io_cards(out: &mut String, r: &RunRecord, run_dir: &Path, report_dir: &Path) {
    let inputs = Json::Object(r.inputs.clone().into_iter().collect());
    let outputs = Json::Object(r.outputs.clone().into_iter().collect());
    let _ = writeln!(
        out,
        r#"<section class="io"><div class="card"><h2>Inputs</h2>{}</div><div class="card"><h2>Outputs</h2>{}{}</div></section>"#,
        json::render(&inputs),
        media::players(&media::find(&outputs, run_dir, report_dir)),
        json::render(&outputs),
    );
}

fn legend() -> String {
    ["succeeded", "failed", "skipped", "cancelled"]
        .iter()
        .map(|s| format!(r#"<span class="count s-{s}"><i></i>{s}</span>"#))
        .collect::<Vec<_>>()
        .join(" ")
}

fn step_section(out: &mut String, id: &str, s: &StepRecord, run_dir: &Path, report_dir: &Path) {
    let status = s.status.as_str();
    let mut facts = vec![format!("<code>{}</code>", escape(&s.kind))];
    if s.attempts > 0 {
        facts.push(format!("{} attempt{}", s.attempts, if s.attempts == 1 { "" } else { "s" }));
        facts.push(human_duration(s.duration_ms));
    }
    if s.cached {
        facts.push("cached".to_owned());
    }
    let needs = if s.needs.is_empty() {
        String::new()
    } else {
        let links: Vec<String> =
            s.needs.iter().map(|n| format!(r##"<a href="#step-{0}">{0}</a>"##, escape(n))).collect();
        format!(r#"<div class="needs">needs {}</div>"#, links.join(", "))
    };
    let error = match &s.error {
        Some(e) => format!(r#"<pre class="error">{}</pre>"#, escape(e)),
        None => String::new(),
    };
    let empty = match &s.outputs {
        Json::Object(m) => m.is_empty(),
        Json::Array(a) => a.is_empty(),
        Json::Null => true,
        _ => false,
    };
    let outputs = if empty {
        String::new()
    } else {
        // A big output (a long `for_each`, a raw API answer) starts closed.
        let open = if s.outputs.to_string().len() < 6000 { " open" } else { "" };
        format!(
            r#"<details class="outputs"{open}><summary>outputs</summary>{}</details>"#,
            json::render(&s.outputs)
        )
    };
    let _ = writeln!(
        out,
        r#"<article class="step s-{status}" id="step-{id}"><div class="step-head"><h3><i></i>{id}</h3><span class="badge s-{status}">{status}</span><span class="step-facts">{facts}</span></div>{needs}{error}{media}{outputs}</article>"#,
        id = escape(id),
        facts = facts.join(" · "),
        media = media::players(&media::find(&s.outputs, run_dir, report_dir)),
    );
}
