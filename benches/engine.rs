//! Engine overhead on this machine: validate+plan of a 10,000-step pipeline, and running
//! 10,000 `value` steps as a wide DAG (one root, everything else reading it) and as a
//! long chain (each step reading the one before). Prints medians and peak memory.
//!
//!     cargo bench --bench engine

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cometflow::engine::{self, RunOptions};
use cometflow::plan::Plan;
use tokio_util::sync::CancellationToken;

const STEPS: usize = 10_000;

fn wide() -> String {
    let mut y = String::from("name: wide\nsteps:\n  root:\n    uses: value\n    with: { x: 1 }\n");
    for i in 1..STEPS {
        y.push_str(&format!(
            "  s{i}:\n    uses: value\n    with: {{ x: \"{{{{ steps.root.outputs.x + {i} }}}}\" }}\n"
        ));
    }
    y
}

fn chain() -> String {
    let mut y = String::from("name: chain\nsteps:\n  s0:\n    uses: value\n    with: { x: 0 }\n");
    for i in 1..STEPS {
        y.push_str(&format!(
            "  s{i}:\n    uses: value\n    with: {{ x: \"{{{{ steps.s{}.outputs.x + 1 }}}}\" }}\n",
            i - 1
        ));
    }
    y
}

/// Resets the kernel's peak-RSS mark so each phase reports its own peak.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn load(path: &Path) -> Plan {
    cometflow::load_plan(path, &cometflow::steps::Registry::from_env())
        .unwrap_or_else(|d| panic!("invalid bench pipeline: {d:?}"))
}

async fn run(plan: Arc<Plan>, dir: &Path) -> Duration {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let options =
        RunOptions::new("bench".into(), dir.join("run"), Default::default(), CancellationToken::new());
    let started = Instant::now();
    let record = engine::execute(plan, options, tx).await;
    let took = started.elapsed();
    drain.await.unwrap();
    assert_eq!(record.status, engine::RunStatus::Succeeded);
    took
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    println!(
        "cometflow engine benchmark: {STEPS} steps, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for (name, yaml) in [("wide", wide()), ("chain", chain())] {
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, &yaml).unwrap();

        reset_peak();
        let times: Vec<Duration> = (0..5)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(load(&path));
                t.elapsed()
            })
            .collect();
        let validate_mb = peak_mb();

        let plan = Arc::new(load(&path));
        reset_peak();
        let runs: Vec<Duration> = (0..5).map(|_| rt.block_on(run(plan.clone(), dir.path()))).collect();
        let run_mb = peak_mb();
        let run = median(runs);
        println!(
            "{name:5}: validate+plan {:7.1} ms (peak {validate_mb:5.1} MB) | run {:7.1} ms = {:5.1} us/step (peak {run_mb:5.1} MB)",
            median(times).as_secs_f64() * 1e3,
            run.as_secs_f64() * 1e3,
            run.as_secs_f64() * 1e6 / STEPS as f64,
        );
    }
}
