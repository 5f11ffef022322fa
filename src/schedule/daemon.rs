//! The `schedule` daemon: sleeps until the earliest fire time of the loaded pipelines
//! (never a polling tick), starts runs through `runner::launch` under each entry's
//! overlap policy, catches up on start, reloads edited files, and stops when the
//! `shutdown` future completes: in-flight runs are cancelled through their tokens and
//! awaited. Decisions come from `policy`; this file only wires time, files and runs.

mod book;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::clock;
use super::policy::{self, Action};
use super::record::FireRecord;
use crate::engine::RunRecord;
use crate::error::Failure;
use crate::report::Verbosity;
use crate::runner::Launch;
use crate::steps::Registry;
use crate::watch::events::{normalize, FsEvents};
use book::{load, Loaded, Scheduled};

/// Why the daemon stopped: decides the exit status (`cli::schedule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Terminate,
    Interrupt,
}

pub struct DaemonOptions {
    pub paths: Vec<PathBuf>,
    /// The kinds pipelines may use, calling the API through one client.
    pub registry: Registry,
    /// Which backend answers provider calls, for the cache.
    pub backend: String,
    pub concurrency: Option<usize>,
    pub verbosity: Verbosity,
}

struct Daemon {
    opts: DaemonOptions,
    /// Folders given on the command line: new pipeline files in them get scheduled.
    dirs: Vec<PathBuf>,
    /// Files given on the command line: watched even while invalid or removed.
    named: Vec<PathBuf>,
    pipelines: BTreeMap<PathBuf, Scheduled>,
    record: FireRecord,
    state: PathBuf,
    root: CancellationToken,
    runs: JoinSet<(PathBuf, Result<RunRecord, Failure>)>,
    /// A PostgreSQL store: due runs are queued for the workers (see `queue_due`).
    shared: Option<std::sync::Arc<crate::store::pg::Pg>>,
}

/// Runs until `shutdown` completes and returns its reason. Errs (before scheduling
/// anything) when a path is missing or no pipeline has `on.schedule`.
pub async fn run(opts: DaemonOptions, shutdown: impl Future<Output = Stop>) -> Result<Stop, Failure> {
    let (files, dirs) = expand(&opts.paths).map_err(Failure::Invalid)?;
    let state = crate::store::state_dir();
    let record = FireRecord::load(&state).map_err(|e| {
        Failure::Environment(format!(
            "cannot read `{}`: {e}; fix or delete it",
            FireRecord::path(&state).display()
        ))
    })?;
    let root = CancellationToken::new();
    let named = files.clone();
    let shared = match crate::store::backend::configured() {
        None => None,
        Some(_) => match crate::store::Store::open().map_err(|e| Failure::Environment(e.to_string()))? {
            crate::store::Store::Pg(pg) => Some(pg),
            crate::store::Store::Sqlite(_) => None,
        },
    };
    let runs = JoinSet::new();
    let mut d = Daemon { opts, dirs, named, pipelines: BTreeMap::new(), record, state, root, runs, shared };
    if let Some(pg) = &d.shared {
        // The fleet's memory wins over this machine's: another scheduler may have handled
        // later due times, or this machine may never have run one.
        match marks::load(pg).await {
            Ok(marks) => {
                for (name, at) in marks {
                    let last = d.record.last.entry(name).or_insert(at);
                    *last = (*last).max(at);
                }
            }
            Err(e) => eprintln!(
                "warning: cannot read the fleet's schedule marks ({e}); catching up from this machine's"
            ),
        }
    }
    let now = clock::now();
    for f in files {
        d.reload(&f, now);
    }
    if d.pipelines.is_empty() {
        return Err(Failure::Invalid("nothing to schedule: no valid pipeline has `on.schedule`; add e.g. `on: { schedule: [{ cron: \"0 9 * * *\" }] }`".into()));
    }
    d.catch_up(now);
    let mut fs = FsEvents::new().map_err(Failure::Environment)?;
    fs.set(&d.watched_dirs()).map_err(Failure::Environment)?;
    d.announce();
    tokio::pin!(shutdown);
    loop {
        let wait = d.earliest().map(until);
        tokio::select! {
            stop = &mut shutdown => {
                eprintln!("cometflow: stopping; cancelling {} run(s) in progress", d.runs.len());
                d.root.cancel();
                while let Some(done) = d.runs.join_next().await {
                    if let Ok((file, r)) = done { d.finished(&file, r, false); }
                }
                return Ok(stop);
            }
            _ = sleep(wait) => {
                d.fire_due(clock::now());
                d.announce();
            }
            Some(done) = d.runs.join_next(), if !d.runs.is_empty() => match done {
                Ok((file, r)) => d.finished(&file, r, true),
                Err(e) => eprintln!("error: a run stopped unexpectedly: {e}"),
            },
            batch = fs.batch() => {
                let Some(batch) = batch else { return Err(Failure::Environment("the file watcher stopped; restart the daemon".into())) };
                if d.changed(batch) {
                    if let Err(e) = fs.set(&d.watched_dirs()) { eprintln!("warning: {e}"); }
                    d.announce();
                }
            }
        }
    }
}

/// The time left until `t`, rounded up so the wake-up is never before it.
fn until(t: Timestamp) -> Duration {
    let nanos = t.as_nanosecond() - clock::now().as_nanosecond();
    clock::real(Duration::from_nanos(u64::try_from(nanos.max(0)).unwrap_or(u64::MAX)))
}

async fn sleep(wait: Option<Duration>) {
    match wait {
        Some(w) => tokio::time::sleep(w).await,
        None => std::future::pending().await,
    }
}

/// Files named on the command line, plus the `*.yaml`/`*.yml` files of named folders.
fn expand(paths: &[PathBuf]) -> Result<(Vec<PathBuf>, Vec<PathBuf>), String> {
    let (mut files, mut dirs) = (Vec::new(), Vec::new());
    for p in paths {
        if p.is_dir() {
            let entries = std::fs::read_dir(p)
                .map_err(|e| format!("cannot list `{}`: {e}; check the path", p.display()))?;
            let mut found: Vec<PathBuf> =
                entries.flatten().map(|e| e.path()).filter(|f| is_pipeline_file(f)).collect();
            found.sort();
            files.extend(found.iter().map(|f| normalize(f)));
            dirs.push(normalize(p));
        } else if p.is_file() {
            files.push(normalize(p));
        } else {
            return Err(format!("`{}` does not exist; give pipeline files or folders of them", p.display()));
        }
    }
    Ok((files, dirs))
}

/// `file` relative to the current folder when it is under it: how users named it.
fn relative(file: &Path) -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|d| std::fs::canonicalize(d).ok())
        .and_then(|d| file.strip_prefix(d).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| file.to_path_buf())
}

fn is_pipeline_file(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "yaml" || e == "yml")
}

impl Daemon {
    fn earliest(&self) -> Option<Timestamp> {
        self.pipelines.values().filter_map(Scheduled::earliest).min()
    }

    fn watched_dirs(&self) -> Vec<(PathBuf, bool)> {
        let mut dirs: BTreeSet<PathBuf> = self.dirs.iter().cloned().collect();
        let files = self.pipelines.keys().chain(&self.named);
        dirs.extend(files.filter_map(|f| f.parent().map(Path::to_path_buf)));
        dirs.into_iter().map(|d| (d, false)).collect()
    }

    /// Prints the next fire time of each pipeline.
    fn announce(&self) {
        for p in self.pipelines.values() {
            match p.earliest() {
                Some(t) => eprintln!("cometflow: next run of `{}` at {t}", p.name()),
                None => eprintln!("cometflow: `{}` has no future fire time", p.name()),
            }
        }
    }

    /// Loads or reloads one file; says what it kept, added or dropped.
    fn reload(&mut self, file: &Path, now: Timestamp) {
        let rel = relative(file);
        let shown = rel.display();
        if !file.exists() {
            if let Some(old) = self.pipelines.remove(file) {
                eprintln!("cometflow: `{shown}` was removed; dropped the schedule of `{}`", old.name());
            }
            return;
        }
        match load(&rel, &self.opts.registry) {
            Loaded::Schedule(plan, triggers) => {
                let mut s = Scheduled::new(plan, triggers, now);
                let verb = match self.pipelines.remove(file) {
                    Some(old) => {
                        (s.running, s.queued) =
                            (old.running, old.queued.filter(|(i, _)| *i < s.triggers.len()));
                        "reloaded"
                    }
                    None => "scheduled",
                };
                for t in &s.triggers {
                    eprintln!("cometflow: {verb} `{}` ({shown}): `{}` in {}", s.name(), t.expr, t.tz_name);
                }
                self.record.last.entry(s.name().to_owned()).or_insert(now);
                self.pipelines.insert(file.to_path_buf(), s);
            }
            Loaded::NoSchedule => match self.pipelines.remove(file) {
                Some(old) => eprintln!(
                    "cometflow: `{shown}` no longer has `on.schedule`; dropped the schedule of `{}`",
                    old.name()
                ),
                None => eprintln!("cometflow: `{shown}` has no `on.schedule`; not scheduled"),
            },
            Loaded::Invalid(diags) => {
                crate::diag::report(&diags);
                match self.pipelines.get(file) {
                    Some(old) => eprintln!("cometflow: `{shown}` is invalid; keeping the previous schedule of `{}` until it is fixed", old.name()),
                    None => eprintln!("cometflow: `{shown}` is invalid; not scheduled until it is fixed"),
                }
            }
        }
    }

    /// A batch of file changes: reloads the pipeline files among them. True if any was.
    fn changed(&mut self, batch: BTreeSet<PathBuf>) -> bool {
        let now = clock::now();
        let mut any = false;
        for path in batch.iter().map(|p| normalize(p)) {
            let known = self.pipelines.contains_key(&path) || self.named.contains(&path);
            let in_dir =
                path.parent().is_some_and(|p| self.dirs.iter().any(|d| d == p)) && is_pipeline_file(&path);
            if known || in_dir {
                self.reload(&path, now);
                any = true;
            }
        }
        any
    }

    /// On start: one run per pipeline for the latest fire missed while the daemon was
    /// down (entries with `catch_up: latest`), then remember that everything up to now
    /// has been handled.
    fn catch_up(&mut self, now: Timestamp) {
        let missed: Vec<(PathBuf, usize, Timestamp)> = self
            .pipelines
            .iter()
            .filter_map(|(f, p)| {
                let last = self.record.last.get(p.name()).copied();
                policy::catch_up(&p.triggers, last, now).map(|(i, at)| (f.clone(), i, at))
            })
            .collect();
        for (file, i, at) in missed {
            eprintln!("cometflow: catching up the run of {at} missed while the daemon was down");
            self.start(&file, i, at);
        }
        let names: Vec<String> = self.pipelines.values().map(|p| p.name().to_owned()).collect();
        for n in names {
            let last = self.record.last.entry(n).or_insert(now);
            *last = (*last).max(now);
        }
        self.save_record();
    }

    fn fire_due(&mut self, now: Timestamp) {
        let files: Vec<PathBuf> = self.pipelines.keys().cloned().collect();
        for file in files {
            while let Some((i, at)) = self.pipelines.get_mut(&file).and_then(|p| p.take_due(now)) {
                let Some(p) = self.pipelines.get_mut(&file) else { break };
                let name = p.name().to_owned();
                match policy::on_fire(p.triggers[i].overlap, p.running) {
                    Action::Start => self.start(&file, i, at),
                    Action::Skip => eprintln!("cometflow: skipped `{name}` at {at}: its previous run is still going (overlap: skip)"),
                    Action::Queue => {
                        p.queued = Some((i, at));
                        eprintln!("cometflow: queued `{name}` at {at}: it starts when the previous run ends (overlap: queue)");
                    }
                }
                self.record.last.insert(name, at);
            }
        }
        self.save_record();
    }

    fn start(&mut self, file: &Path, trigger: usize, at: Timestamp) {
        let Some(p) = self.pipelines.get_mut(file) else { return };
        let inputs = p.inputs(trigger);
        if let Some(pg) = self.shared.clone() {
            let skip_if_busy = p.triggers[trigger].overlap == crate::schedule::Overlap::Skip;
            queue_due(pg, p, inputs, at, &self.state, self.opts.concurrency, skip_if_busy);
            return;
        }
        p.running += 1;
        eprintln!("cometflow: starting `{}` for {at}", p.name());
        let launch = Launch {
            plan: p.plan.clone(),
            inputs,
            concurrency: self.opts.concurrency,
            verbosity: self.opts.verbosity,
            cancel: self.root.child_token(),
            resume: None,
            fresh: false,
            resubmit_unknown: false,
            backend: self.opts.backend.clone(),
        };
        let file = file.to_path_buf();
        self.runs.spawn(async move { (file, crate::runner::launch(launch).await) });
    }

    /// A run ended: report it and start a queued fire if this was the last one in flight.
    fn finished(&mut self, file: &Path, result: Result<RunRecord, Failure>, start_queued: bool) {
        let name = match &result {
            Ok(r) => {
                eprintln!("cometflow: run {} of `{}` {}", r.run_id, r.pipeline, r.status.as_str());
                r.pipeline.clone()
            }
            Err(e) => {
                eprintln!("error: {e}");
                String::new()
            }
        };
        let Some(p) = self.pipelines.get_mut(file) else { return };
        p.running = p.running.saturating_sub(1);
        if p.running == 0 && start_queued {
            if let Some((i, at)) = p.queued.take() {
                eprintln!("cometflow: starting the queued run of `{name}`");
                self.start(file, i, at);
            }
        }
    }

    fn save_record(&self) {
        if let Some(pg) = self.shared.clone() {
            let last = self.record.last.clone();
            tokio::spawn(async move {
                if let Err(e) = marks::save(&pg, &last).await {
                    eprintln!("warning: cannot record the due times handled in the shared store: {e}");
                }
            });
        }
        if let Err(e) = self.record.save(&self.state) {
            eprintln!(
                "warning: cannot write `{}`: {e}; missed runs may not be caught up after a restart",
                FireRecord::path(&self.state).display()
            );
        }
    }
}

/// With a PostgreSQL store, a due run is queued for the workers under the key (pipeline,
/// due time): every scheduler running queues every due time, and the database keeps the
/// first, so a time is queued exactly once while any scheduler is alive. With `overlap:
/// skip` (the default), a due time is not queued while a run of the pipeline is still
/// queued or running anywhere in the fleet; `queue` and `allow` queue it (workers start it
/// when one is free).
#[allow(clippy::too_many_arguments)]
fn queue_due(
    pg: std::sync::Arc<crate::store::pg::Pg>,
    p: &Scheduled,
    inputs: indexmap::IndexMap<String, serde_json::Value>,
    at: Timestamp,
    state: &Path,
    concurrency: Option<usize>,
    skip_if_busy: bool,
) {
    let (name, text) = (p.name().to_owned(), p.plan.pipeline.source.text.clone());
    let source = &p.plan.pipeline.source.path;
    let file = std::path::absolute(source).unwrap_or_else(|_| source.clone()).display().to_string();
    let id = crate::store::new_run_id();
    let run_dir = crate::store::runs_root(state).join(&id).display().to_string();
    tokio::spawn(async move {
        if skip_if_busy {
            let busy = pg
                .query(
                    "SELECT 1 FROM runs WHERE pipeline = $1 AND status IN ('queued', 'running') LIMIT 1",
                    &[&name],
                )
                .await;
            if busy.as_ref().is_ok_and(|rows| !rows.is_empty()) {
                eprintln!(
                    "cometflow: skipping `{name}` for {at}: its last run is still going (overlap: skip)"
                );
                return;
            }
        }
        let due = format!("{name}@{at}");
        let submission = crate::store::pg::queue::Submission {
            id: &id,
            pipeline: &name,
            file: &file,
            text: &text,
            inputs: &inputs,
            run_dir: &run_dir,
            concurrency: concurrency.map(|c| c as u32),
            due_key: Some(&due),
        };
        match crate::store::pg::queue::submit(&pg, &submission).await {
            Ok(true) => eprintln!("cometflow: queued `{name}` for {at} as run {id}"),
            Ok(false) => eprintln!("cometflow: `{name}` for {at} was already queued by another scheduler"),
            Err(e) => eprintln!("error: cannot queue `{name}` for {at}: {e}"),
        }
    });
}

/// The last due time handled per pipeline, shared by every scheduler of a fleet.
mod marks {
    use std::collections::BTreeMap;

    use jiff::Timestamp;

    use crate::store::pg::Pg;
    use crate::store::StoreError;

    pub async fn load(pg: &Pg) -> Result<Vec<(String, Timestamp)>, StoreError> {
        let rows = pg
            .query(
                "SELECT pipeline, to_char(last_due AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')
                 FROM schedule_marks",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| Some((r.get::<_, String>(0), r.get::<_, String>(1).parse().ok()?)))
            .collect())
    }

    /// Moves each mark forward (never back: a scheduler behind the others changes nothing).
    pub async fn save(pg: &Pg, last: &BTreeMap<String, Timestamp>) -> Result<(), StoreError> {
        for (name, at) in last {
            pg.execute(
                "INSERT INTO schedule_marks (pipeline, last_due) VALUES ($1, ($2::text)::timestamptz)
                 ON CONFLICT (pipeline) DO UPDATE SET last_due = GREATEST(schedule_marks.last_due, EXCLUDED.last_due)",
                &[&name, &at.to_string()],
            )
            .await?;
        }
        Ok(())
    }
}
