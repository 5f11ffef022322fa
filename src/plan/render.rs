//! Draws a plan as text, Mermaid or Graphviz dot.

use std::fmt::Write;

use super::Plan;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per step in run order, with what it waits for
    Text,
    /// A Mermaid flowchart (paste into Markdown on GitHub)
    Mermaid,
    /// Graphviz dot (`| dot -Tsvg > graph.svg`)
    Dot,
}

pub(super) fn render(plan: &Plan, format: Format) -> String {
    match format {
        Format::Text => text(plan),
        Format::Mermaid => mermaid(plan),
        Format::Dot => dot(plan),
    }
}

fn annotations(plan: &Plan, i: usize) -> String {
    let s = &plan.pipeline.steps[i];
    let mut notes = Vec::new();
    if s.for_each.is_some() {
        notes.push("for_each");
    }
    if s.cond.is_some() {
        notes.push("if");
    }
    if s.continue_on_error {
        notes.push("continue_on_error");
    }
    if notes.is_empty() {
        String::new()
    } else {
        format!(" [{}]", notes.join(", "))
    }
}

fn text(plan: &Plan) -> String {
    let p = &plan.pipeline;
    let mut out =
        format!("{} ({} step{})\n", p.name, p.steps.len(), if p.steps.len() == 1 { "" } else { "s" });
    let id_w = p.steps.iter().map(|s| s.id.len()).max().unwrap_or(0);
    let kind_w = p.steps.iter().map(|s| s.uses.len()).max().unwrap_or(0);
    for &i in &plan.order {
        let s = &p.steps[i];
        let deps: Vec<&str> = s.deps.iter().map(|&d| p.steps[d].id.as_str()).collect();
        let after = if deps.is_empty() { String::new() } else { format!("  <- {}", deps.join(", ")) };
        let line = format!("  {:id_w$}  {:kind_w$}{}{after}", s.id, s.uses, annotations(plan, i));
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

fn mermaid(plan: &Plan) -> String {
    let p = &plan.pipeline;
    let mut out = String::from("flowchart TD\n");
    for s in &p.steps {
        let _ = writeln!(out, "  {}[\"{}<br/><small>{}</small>\"]", s.id, s.id, s.uses);
    }
    for (i, s) in p.steps.iter().enumerate() {
        for &d in &s.deps {
            let _ = writeln!(out, "  {} --> {}", p.steps[d].id, p.steps[i].id);
        }
    }
    out
}

fn dot(plan: &Plan) -> String {
    let p = &plan.pipeline;
    let mut out = format!("digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box, style=rounded];\n", p.name);
    for s in &p.steps {
        let _ = writeln!(out, "  \"{}\" [label=\"{}\\n{}\"];", s.id, s.id, s.uses);
    }
    for (i, s) in p.steps.iter().enumerate() {
        for &d in &s.deps {
            let _ = writeln!(out, "  \"{}\" -> \"{}\";", p.steps[d].id, p.steps[i].id);
        }
    }
    out.push_str("}\n");
    out
}
