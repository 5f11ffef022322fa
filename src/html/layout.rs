//! A layered layout of the run's DAG, as plain numbers: each step gets a layer (its longest
//! chain of dependencies) and a row inside that layer, ordered to keep edges short. Drawing
//! is `svg.rs`'s job; this module knows nothing about pixels.

/// Where each node sits: `pos[i] = (layer, row)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    pub pos: Vec<(usize, usize)>,
    /// How many nodes each layer holds.
    pub layer_sizes: Vec<usize>,
}

/// Lays out nodes `0..deps.len()`, where `deps[i]` lists the nodes `i` depends on.
/// Dependencies always sit in an earlier layer. Should the graph hold a cycle (a record
/// edited by hand), the nodes on it go to layer 0 rather than looping forever.
pub(crate) fn layered(deps: &[Vec<usize>]) -> Layout {
    let n = deps.len();
    let layer = layers(deps);
    let depth = layer.iter().max().map_or(0, |m| m + 1);
    let mut by_layer: Vec<Vec<usize>> = vec![Vec::new(); depth];
    for i in 0..n {
        by_layer[layer[i]].push(i);
    }
    // Barycentre sweeps: order each layer by the mean row of its dependencies, so that
    // children sit beside their parents. Ties keep file order, so the result is stable.
    let mut row = vec![0usize; n];
    fn place(layer: &[usize], row: &mut [usize]) {
        for (r, &i) in layer.iter().enumerate() {
            row[i] = r;
        }
    }
    for l in &by_layer {
        place(l, &mut row);
    }
    for _ in 0..4 {
        for (l, members) in by_layer.iter_mut().enumerate().skip(1) {
            let key = |i: usize| -> f64 {
                let ds: Vec<usize> = deps[i].iter().copied().filter(|&d| d < n && layer[d] < l).collect();
                if ds.is_empty() {
                    row[i] as f64
                } else {
                    ds.iter().map(|&d| row[d] as f64).sum::<f64>() / ds.len() as f64
                }
            };
            let mut keyed: Vec<(f64, usize, usize)> = members.iter().map(|&i| (key(i), row[i], i)).collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            *members = keyed.into_iter().map(|(_, _, i)| i).collect();
            place(members, &mut row);
        }
    }
    Layout {
        pos: (0..n).map(|i| (layer[i], row[i])).collect(),
        layer_sizes: by_layer.iter().map(Vec::len).collect(),
    }
}

/// Longest-path layering by Kahn's algorithm over the dependency edges.
fn layers(deps: &[Vec<usize>]) -> Vec<usize> {
    let n = deps.len();
    let mut dependents = vec![Vec::new(); n];
    let mut remaining = vec![0usize; n];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds.iter().filter(|&&d| d < n && d != i) {
            dependents[d].push(i);
            remaining[i] += 1;
        }
    }
    let mut layer = vec![0usize; n];
    let mut ready: Vec<usize> = (0..n).filter(|&i| remaining[i] == 0).collect();
    while let Some(i) = ready.pop() {
        for &c in &dependents[i] {
            layer[c] = layer[c].max(layer[i] + 1);
            remaining[c] -= 1;
            if remaining[c] == 0 {
                ready.push(c);
            }
        }
    }
    // Nodes left with `remaining > 0` sit on a cycle; they keep the layer reached so far.
    layer
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ```text
    ///   a ─┬─> b ──> d
    ///      └─> c ──┘
    /// ```
    #[test]
    fn a_diamond_takes_three_layers() {
        let l = layered(&[vec![], vec![0], vec![0], vec![1, 2]]);
        assert_eq!(l.pos, vec![(0, 0), (1, 0), (1, 1), (2, 0)]);
        assert_eq!(l.layer_sizes, vec![1, 2, 1]);
    }

    /// ```text
    ///   a ──> b ──> c
    ///   └──────────> d      d waits on a and c: it goes after c, not beside b
    /// ```
    #[test]
    fn a_step_sits_after_its_longest_chain() {
        let l = layered(&[vec![], vec![0], vec![1], vec![0, 2]]);
        assert_eq!(l.pos[3].0, 3);
    }

    /// ```text
    ///   x     y
    ///   │     │
    ///   v     v
    ///   y2    x2     declared in this order, drawn uncrossed
    /// ```
    #[test]
    fn children_are_ordered_beside_their_parents() {
        let l = layered(&[vec![], vec![], vec![1], vec![0]]);
        assert_eq!(l.pos[3], (1, 0), "x's child goes first");
        assert_eq!(l.pos[2], (1, 1));
    }

    #[test]
    fn independent_steps_share_the_first_layer() {
        let l = layered(&[vec![], vec![], vec![]]);
        assert_eq!(l.layer_sizes, vec![3]);
    }

    #[test]
    fn a_cycle_or_a_bad_index_does_not_hang() {
        let l = layered(&[vec![1], vec![0], vec![9, 2]]);
        assert_eq!(l.pos.len(), 3);
        assert_eq!(layered(&[]).layer_sizes, Vec::<usize>::new());
    }
}
