//! The run's DAG as inline SVG: boxes placed by `layout.rs`, left to right in run order,
//! coloured by status (the colours live in the stylesheet), each linking to its step's
//! section below. No script, no external fonts: it draws the same offline.

use std::fmt::Write;

use indexmap::IndexMap;

use super::escape::escape;
use super::layout::layered;
use crate::engine::StepRecord;

const NODE_W: f64 = 176.0;
const NODE_H: f64 = 46.0;
const GAP_X: f64 = 64.0;
const GAP_Y: f64 = 18.0;
const PAD: f64 = 12.0;

/// Draws the steps and the edges between them (from `needs`).
pub(crate) fn dag(steps: &IndexMap<String, StepRecord>) -> String {
    let deps: Vec<Vec<usize>> =
        steps.values().map(|s| s.needs.iter().filter_map(|id| steps.get_index_of(id)).collect()).collect();
    let layout = layered(&deps);
    let tallest = layout.layer_sizes.iter().copied().max().unwrap_or(0) as f64;
    let layers = layout.layer_sizes.len() as f64;
    let width = PAD * 2.0 + layers * NODE_W + (layers - 1.0).max(0.0) * GAP_X;
    let height = PAD * 2.0 + tallest * NODE_H + (tallest - 1.0).max(0.0) * GAP_Y;
    // Top-left corner of each node; short layers are centred against the tallest one.
    let corner = |i: usize| -> (f64, f64) {
        let (layer, row) = layout.pos[i];
        let offset = (tallest - layout.layer_sizes[layer] as f64) * (NODE_H + GAP_Y) / 2.0;
        (PAD + layer as f64 * (NODE_W + GAP_X), PAD + offset + row as f64 * (NODE_H + GAP_Y))
    };

    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="dag" role="img" aria-label="step graph" viewBox="0 0 {width} {height}" width="{width}" height="{height}">"#
    );
    out.push_str(
        r#"<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path class="arrow" d="M0,0 L10,5 L0,10 z"/></marker></defs>"#,
    );
    // The top of every node, per layer, so a long edge can pass between them.
    let mut tops: Vec<Vec<f64>> = vec![Vec::new(); layout.layer_sizes.len()];
    for i in 0..steps.len() {
        tops[layout.pos[i].0].push(corner(i).1);
    }
    for t in &mut tops {
        t.sort_by(f64::total_cmp);
    }
    for (i, ds) in deps.iter().enumerate() {
        let (tx, ty) = corner(i);
        for &d in ds {
            let (sx, sy) = corner(d);
            let mut points = vec![(sx + NODE_W, sy + NODE_H / 2.0)];
            let (from, to) = (layout.pos[d].0, layout.pos[i].0);
            // An edge that skips layers crosses each one in the gap nearest its course.
            for (layer, column) in tops.iter().enumerate().take(to).skip(from + 1) {
                let share = (layer - from) as f64 / (to - from) as f64;
                let want = sy + (ty - sy) * share + NODE_H / 2.0;
                let y = gap_near(column, want);
                let x = PAD + layer as f64 * (NODE_W + GAP_X);
                points.push((x, y));
                points.push((x + NODE_W, y));
            }
            points.push((tx - 2.0, ty + NODE_H / 2.0));
            out.push_str(&edge(&points));
        }
    }
    for (i, (id, step)) in steps.iter().enumerate() {
        let (x, y) = corner(i);
        let status = step.status.as_str();
        let _ = write!(
            out,
            r##"<a href="#step-{anchor}"><g class="node s-{status}"><title>{id_full} ({kind_full}): {status}</title><rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="9"/><circle class="dot" cx="{}" cy="{}" r="4.5"/><text class="id" x="{}" y="{}">{}</text><text class="kind" x="{}" y="{}">{}</text></g></a>"##,
            x + 15.0,
            y + NODE_H / 2.0,
            x + 28.0,
            y + 19.0,
            escape(&clip(id, 19)),
            x + 28.0,
            y + 35.0,
            escape(&clip(&step.kind, 23)),
            anchor = escape(id),
            id_full = escape(id),
            kind_full = escape(&step.kind),
        );
    }
    out.push_str("</svg>");
    out
}

/// The y of the free horizontal lane nearest `want` in a layer whose nodes start at `tops`.
fn gap_near(tops: &[f64], want: f64) -> f64 {
    let mut lanes = vec![tops.first().map_or(want, |t| t - GAP_Y / 2.0)];
    lanes.extend(tops.iter().map(|t| t + NODE_H + GAP_Y / 2.0));
    lanes.into_iter().min_by(|a, b| (a - want).abs().total_cmp(&(b - want).abs())).unwrap_or(want)
}

/// A smooth path through `points`, leaving and entering each one horizontally.
fn edge(points: &[(f64, f64)]) -> String {
    let mut d = String::new();
    for (n, pair) in points.windows(2).enumerate() {
        let ((x1, y1), (x2, y2)) = (pair[0], pair[1]);
        if n == 0 {
            let _ = write!(d, "M{x1},{y1}");
        }
        if y1 == y2 {
            let _ = write!(d, " L{x2},{y2}");
        } else {
            let bend = ((x2 - x1) / 2.0).max(24.0);
            let _ = write!(d, " C{},{y1} {},{y2} {x2},{y2}", x1 + bend, x2 - bend);
        }
    }
    format!(r#"<path class="edge" d="{d}" marker-end="url(#arrow)"/>"#)
}

/// Shortens a label to fit its box; the full text stays in the node's tooltip.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::events::Status;

    fn step(needs: &[&str]) -> StepRecord {
        StepRecord::not_run("shell", needs.iter().map(|s| s.to_string()).collect(), Status::Skipped, None)
    }

    /// ```text
    ///   a ──> b
    /// ```
    #[test]
    fn draws_one_box_per_step_and_one_edge_per_need() {
        let steps: IndexMap<String, StepRecord> =
            [("a".to_string(), step(&[])), ("b".to_string(), step(&["a", "gone"]))].into_iter().collect();
        let svg = dag(&steps);
        assert_eq!(svg.matches("<rect").count(), 2);
        assert_eq!(svg.matches(r#"class="edge""#).count(), 1, "an unknown need draws nothing");
        assert!(svg.contains(r##"href="#step-b""##));
        assert!(svg.contains(r#"class="node s-skipped""#));
    }

    /// ```text
    ///   a ──> b ──> c
    ///   └──────────> c      a's edge to c must not cut through b
    /// ```
    #[test]
    fn an_edge_that_skips_a_layer_runs_beside_the_nodes_there() {
        let steps: IndexMap<String, StepRecord> =
            [("a", step(&[])), ("b", step(&["a"])), ("c", step(&["b", "a"]))]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        let svg = dag(&steps);
        // b's box spans y 12..58; the long edge crosses its layer in the lane above or below.
        let lane = gap_near(&[12.0], 35.0);
        assert!(lane == 3.0 || lane == 67.0, "{lane}");
        assert!(svg.contains(&format!(" L{},{lane}", PAD + 2.0 * NODE_W + GAP_X)), "{svg}");
    }

    #[test]
    fn long_names_are_clipped_but_kept_in_the_tooltip() {
        let long = "a_really_long_step_name_that_overflows";
        let steps: IndexMap<String, StepRecord> = [(long.to_string(), step(&[]))].into_iter().collect();
        let svg = dag(&steps);
        assert!(svg.contains("a_really_long_step…"));
        assert!(svg.contains(&format!("<title>{long} (shell)")));
    }
}
