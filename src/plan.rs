//! `Pipeline` -> `Plan`: the sealed dependency graph the engine walks.
//!
//! Edges come from `needs` and from template references (resolved by `validate`). A cycle
//! is reported with the steps on it, in order. Once built, a plan is immutable.

mod render;

use std::sync::Arc;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

pub use render::Format;

use crate::diag::Diagnostic;
use crate::model::{Pipeline, StepIdx};
use crate::path;

#[derive(Debug)]
pub struct Plan {
    pub pipeline: Arc<Pipeline>,
    /// Node `i` is step `i`; an edge runs from a dependency to its dependent.
    pub graph: DiGraph<StepIdx, ()>,
    pub dependents: Vec<Vec<StepIdx>>,
    /// A topological order: every step after all of its dependencies.
    pub order: Vec<StepIdx>,
}

impl Plan {
    pub fn build(pipeline: Pipeline) -> Result<Plan, Diagnostic> {
        let n = pipeline.steps.len();
        let mut graph = DiGraph::with_capacity(n, n);
        for i in 0..n {
            graph.add_node(i);
        }
        let mut dependents = vec![Vec::new(); n];
        for (i, step) in pipeline.steps.iter().enumerate() {
            for &d in &step.deps {
                graph.add_edge(NodeIndex::new(d), NodeIndex::new(i), ());
                dependents[d].push(i);
            }
        }
        let order = topo_order(&pipeline, &dependents).ok_or_else(|| cycle_error(&pipeline, &graph))?;
        Ok(Plan { pipeline: Arc::new(pipeline), graph, dependents, order })
    }

    pub fn render(&self, format: Format) -> String {
        render::render(self, format)
    }
}

/// Kahn's algorithm, keeping file order among steps that are ready together.
fn topo_order(p: &Pipeline, dependents: &[Vec<StepIdx>]) -> Option<Vec<StepIdx>> {
    let mut remaining: Vec<usize> = p.steps.iter().map(|s| s.deps.len()).collect();
    let mut ready: std::collections::VecDeque<StepIdx> =
        (0..p.steps.len()).filter(|&i| remaining[i] == 0).collect();
    let mut order = Vec::with_capacity(p.steps.len());
    while let Some(i) = ready.pop_front() {
        order.push(i);
        for &d in &dependents[i] {
            remaining[d] -= 1;
            if remaining[d] == 0 {
                ready.push_back(d);
            }
        }
    }
    (order.len() == p.steps.len()).then_some(order)
}

/// Names the steps of one cycle in order, pointing at where the first one depends on the next.
fn cycle_error(p: &Pipeline, graph: &DiGraph<StepIdx, ()>) -> Diagnostic {
    let scc = tarjan_scc(graph).into_iter().find(|c| c.len() > 1).unwrap_or_default();
    let members: std::collections::HashSet<usize> = scc.iter().map(|n| n.index()).collect();
    // Walk dependencies inside the component until a step repeats: that loop is the cycle.
    let start = scc.iter().map(|n| n.index()).min().unwrap_or(0);
    let mut path = vec![start];
    let mut cur = start;
    loop {
        let next = p.steps[cur].deps.iter().copied().find(|d| members.contains(d));
        let Some(next) = next else { break };
        if let Some(pos) = path.iter().position(|&s| s == next) {
            path.drain(..pos);
            path.push(next);
            break;
        }
        path.push(next);
        cur = next;
    }
    // `path` follows "depends on" edges; show it in run order ("a -> b": b needs a).
    path.reverse();
    let names: Vec<&str> = path.iter().map(|&i| p.steps[i].id.as_str()).collect();
    let first = &p.steps[path[1.min(path.len() - 1)]];
    let dep = &p.steps[path[0]];
    let at = if first.needs.iter().any(|n| n == &dep.id) {
        path!["steps", first.id.as_str(), "needs"]
    } else {
        path!["steps", first.id.as_str()]
    };
    Diagnostic::at_key(&p.source, &at, format!("dependency cycle: {}", names.join(" -> ")))
        .label(format!("`{}` waits for `{}`", first.id, dep.id))
        .help("a step cannot wait, directly or through others, for itself: remove one of these `needs` or `steps.<id>` references")
}
