//! The timeline: one row per step, a bar from its `started_at` to its `finished_at` on an
//! axis that spans the run. Plain HTML with percentages, so it stretches with the page.

use std::fmt::Write;
use std::time::Duration;

use jiff::Timestamp;

use super::escape::escape;
use crate::engine::{human_duration, RunRecord, StepRecord};

/// Ticks at a round interval, about six across the run.
const STEPS_MS: [u64; 22] = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000,
    300_000, 600_000, 900_000, 1_800_000, 3_600_000,
];

pub(crate) fn timeline(record: &RunRecord) -> String {
    let origin = record.started_at;
    let end = record.steps.values().filter_map(|s| s.finished_at).fold(record.finished_at, Timestamp::max);
    let total = millis_between(origin, end).max(1) as f64;
    let pct = |t: Timestamp| (millis_between(origin, t) as f64 / total * 100.0).clamp(0.0, 100.0);

    let mut rows: Vec<(&String, &StepRecord)> = record.steps.iter().collect();
    // Steps that never ran have no start; they go last, in file order (the sort is stable).
    rows.sort_by_key(|(_, s)| {
        ran(s).then_some(s.started_at).flatten().map_or(i128::MAX, |t| t.as_nanosecond())
    });

    let mut out = String::from(r#"<div class="gantt">"#);
    out.push_str(&axis(total as u64));
    for (id, s) in rows {
        let status = s.status.as_str();
        let (bar, took) = match (ran(s), s.started_at, s.finished_at) {
            (true, Some(start), Some(finish)) => {
                let (left, right) = (pct(start), pct(finish));
                let tip = format!("{id}: {status}, {}", human_duration(s.duration_ms));
                (
                    format!(
                        r#"<div class="g-bar" style="left:{left:.3}%;width:{:.3}%" title="{}"></div>"#,
                        right - left,
                        escape(&tip)
                    ),
                    human_duration(s.duration_ms),
                )
            }
            _ => (r#"<div class="g-none"></div>"#.to_owned(), status.to_owned()),
        };
        let _ = write!(
            out,
            r##"<div class="g-row s-{status}"><a class="g-label" href="#step-{id}">{id}</a><div class="g-track">{bar}</div><span class="g-took">{took}</span></div>"##,
            id = escape(id),
        );
    }
    out.push_str("</div>");
    out
}

/// A step ran when it made at least one attempt; skipped and unreached steps did not.
fn ran(s: &StepRecord) -> bool {
    s.attempts > 0
}

fn millis_between(a: Timestamp, b: Timestamp) -> u64 {
    let ns = b.as_nanosecond() - a.as_nanosecond();
    (ns.max(0) / 1_000_000) as u64
}

fn axis(total_ms: u64) -> String {
    let step = STEPS_MS.iter().copied().find(|&s| s * 6 >= total_ms).unwrap_or(total_ms.div_ceil(6).max(1));
    let mut out = String::from(r#"<div class="g-row g-axis"><span></span><div class="g-track">"#);
    let mut t = 0;
    while t <= total_ms {
        let left = t as f64 / total_ms as f64 * 100.0;
        let _ = write!(out, r#"<span class="g-tick" style="left:{left:.3}%">{}</span>"#, tick_label(t));
        t += step;
    }
    out.push_str("</div><span></span></div>");
    out
}

fn tick_label(ms: u64) -> String {
    match ms {
        0 => "0".to_owned(),
        ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => human_duration(Duration::from_millis(ms)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_fall_on_round_times() {
        assert_eq!(tick_label(0), "0");
        assert_eq!(tick_label(2000), "2s");
        assert_eq!(tick_label(120_000), "2m");
        assert_eq!(tick_label(250), "250ms");
        let a = axis(3000);
        assert!(a.contains(">500ms<") && a.contains(">3s<"), "{a}");
        assert_eq!(a.matches("g-tick").count(), 7);
    }
}
