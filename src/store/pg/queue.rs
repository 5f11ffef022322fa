//! The queue: submitted runs wait as `queued` rows; a worker claims one with
//! `FOR UPDATE SKIP LOCKED` (two workers never take the same row and never wait on each
//! other), which bumps the run's lease epoch and sets its lease. The holder renews the lease
//! with heartbeats; a run whose lease ran out is claimed again by another worker, which
//! resumes it (finished steps kept, submitted tasks polled by their recorded id). Workers
//! wake on `LISTEN/NOTIFY`, with a slow poll as a fallback for leases that run out.
//!
//! It owns the queue, lease and `workers` rows; it must not know how a run executes.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use indexmap::IndexMap;
use jiff::Timestamp;
use serde_json::Value as Json;
use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, NoTls};

use super::Pg;
use crate::store::StoreError;

/// Channels: new work (a submitted run, a run handed back or ended), and cancellations.
pub const QUEUE: &str = "cometflow_queue";
pub const CANCEL: &str = "cometflow_cancel";

/// A run to queue.
pub struct Submission<'a> {
    pub id: &'a str,
    pub pipeline: &'a str,
    pub file: &'a str,
    pub text: &'a str,
    pub inputs: &'a IndexMap<String, Json>,
    pub run_dir: &'a str,
    pub concurrency: Option<u32>,
    /// For schedulers: the (pipeline, due time) key that makes a second insert a no-op.
    pub due_key: Option<&'a str>,
}

/// Queues a run and wakes the workers. `false` when `due_key` was already queued.
pub async fn submit(pg: &Pg, s: &Submission<'_>) -> Result<bool, StoreError> {
    let inputs = serde_json::to_string(s.inputs).unwrap_or_else(|_| "{}".into());
    let concurrency = s.concurrency.map(|c| c as i32);
    let run_dir = super::paths::store_str(s.run_dir, &pg.artifacts);
    let n = pg
        .execute(
            "INSERT INTO runs (id, pipeline, pipeline_file, status, started_at, inputs, run_dir, pipeline_text,
                               concurrency, due_key)
             VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
            &[
                &s.id,
                &s.pipeline,
                &s.file,
                &Timestamp::now().to_string(),
                &inputs,
                &run_dir,
                &s.text,
                &concurrency,
                &s.due_key,
            ],
        )
        .await?;
    notify(pg, QUEUE, s.id).await?;
    Ok(n > 0)
}

pub async fn notify(pg: &Pg, channel: &str, payload: &str) -> Result<(), StoreError> {
    pg.execute("SELECT pg_notify($1, $2)", &[&channel, &payload]).await.map(drop)
}

/// A run a worker now holds.
#[derive(Debug, Clone)]
pub struct Claim {
    pub id: String,
    pub epoch: i64,
    pub pipeline: String,
    pub file: String,
    pub text: String,
    pub inputs: IndexMap<String, Json>,
    pub run_dir: String,
    pub concurrency: Option<usize>,
    pub cancel_requested: bool,
    /// From queued (or from the lease running out) to claimed.
    pub waited: Duration,
}

/// Claims the oldest queued run, or one whose holder's lease ran out.
pub async fn claim(pg: &Pg, worker: &str, lease: Duration) -> Result<Option<Claim>, StoreError> {
    let secs = lease.as_secs_f64();
    let rows = pg
        .query(
            "UPDATE runs r SET status = 'running', lease_owner = $1, lease_epoch = r.lease_epoch + 1,
                lease_until = now() + make_interval(secs => $2), pid = NULL,
                resumes = r.resumes + CASE WHEN r.lease_epoch > 0 THEN 1 ELSE 0 END,
                queued_at = CASE WHEN r.status = 'queued' THEN r.queued_at ELSE r.lease_until END
             FROM (SELECT id FROM runs
                   WHERE pipeline_text IS NOT NULL AND (status = 'queued'
                      OR (status = 'running' AND lease_owner IS NOT NULL AND lease_until < now()))
                   ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED) c
             WHERE r.id = c.id
             RETURNING r.id, r.lease_epoch, r.pipeline, r.pipeline_file, r.pipeline_text, r.inputs, r.run_dir,
                r.concurrency, r.cancel_requested, GREATEST(0, extract(epoch FROM now() - r.queued_at))::float8",
            &[&worker, &secs],
        )
        .await?;
    Ok(rows.first().map(|r| Claim {
        run_dir: super::paths::load_str(r.get(6), &pg.artifacts),
        id: r.get(0),
        epoch: r.get(1),
        pipeline: r.get(2),
        file: r.get(3),
        text: r.get(4),
        inputs: serde_json::from_str(r.get::<_, &str>(5)).unwrap_or_default(),
        concurrency: r.get::<_, Option<i32>>(7).map(|c| c.max(1) as usize),
        cancel_requested: r.get(8),
        waited: Duration::from_secs_f64(r.get::<_, f64>(9)),
    }))
}

/// What a heartbeat learned about a held run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    Held,
    /// `cometflow cancel` asked for it to stop.
    CancelRequested,
    /// Another worker holds it now.
    Lost,
}

/// Extends the lease on a run this worker holds (fenced by `epoch`).
pub async fn renew(pg: &Pg, id: &str, epoch: i64, lease: Duration) -> Result<Lease, StoreError> {
    let secs = lease.as_secs_f64();
    let rows = pg
        .query(
            "UPDATE runs SET lease_until = now() + make_interval(secs => $3)
             WHERE id = $1 AND lease_epoch = $2 AND status = 'running' RETURNING cancel_requested",
            &[&id, &epoch, &secs],
        )
        .await?;
    Ok(match rows.first().map(|r| r.get::<_, bool>(0)) {
        None => Lease::Lost,
        Some(true) => Lease::CancelRequested,
        Some(false) => Lease::Held,
    })
}

/// Gives a run back to the queue (a worker stopping): the next worker resumes it at once.
pub async fn hand_back(pg: &Pg, id: &str, epoch: i64) -> Result<bool, StoreError> {
    let n = pg
        .execute(
            "UPDATE runs SET status = 'queued', lease_owner = NULL, lease_until = NULL, queued_at = now()
             WHERE id = $1 AND lease_epoch = $2",
            &[&id, &epoch],
        )
        .await?;
    notify(pg, QUEUE, id).await?;
    Ok(n > 0)
}

/// Ends a held run without running it (its pipeline no longer loads), fenced by `epoch`.
pub async fn fail(pg: &Pg, id: &str, epoch: i64, status: &str, error: &str) -> Result<(), StoreError> {
    let record = serde_json::json!({ "run_id": id, "status": status, "error": error }).to_string();
    pg.execute(
        "UPDATE runs SET status = $3, finished_at = $4, record = $5, lease_owner = NULL, lease_until = NULL
         WHERE id = $1 AND lease_epoch = $2",
        &[&id, &epoch, &status, &Timestamp::now().to_string(), &record],
    )
    .await
    .map(drop)
}

/// How `cancel` went.
#[derive(Debug, PartialEq, Eq)]
pub enum Cancelled {
    /// It was queued: it ends `cancelled` now.
    Queued,
    /// A worker holds it: it stops at the worker's next look.
    Asked,
    /// It had already ended, with this status.
    Ended(String),
    NoSuchRun,
}

pub async fn cancel(pg: &Pg, id: &str) -> Result<Cancelled, StoreError> {
    let rows = pg
        .query(
            "UPDATE runs SET cancel_requested = TRUE,
                finished_at = CASE WHEN status = 'queued' THEN $2 ELSE finished_at END,
                status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END
             WHERE id = $1 AND status IN ('queued', 'running') RETURNING status",
            &[&id, &Timestamp::now().to_string()],
        )
        .await?;
    if let Some(r) = rows.first() {
        notify(pg, CANCEL, id).await?;
        return Ok(if r.get::<_, &str>(0) == "cancelled" { Cancelled::Queued } else { Cancelled::Asked });
    }
    let rows = pg.query("SELECT status FROM runs WHERE id = $1", &[&id]).await?;
    Ok(rows.first().map_or(Cancelled::NoSuchRun, |r| Cancelled::Ended(r.get(0))))
}

/// The status and (once ended) record of a run, for `submit --wait`.
pub async fn state(pg: &Pg, id: &str) -> Result<Option<(String, Option<String>)>, StoreError> {
    let rows = pg.query("SELECT status, record FROM runs WHERE id = $1", &[&id]).await?;
    let load = |t: String| super::paths::load_text(&t, &pg.artifacts);
    Ok(rows.first().map(|r| (r.get(0), r.get::<_, Option<String>>(1).map(load))))
}

pub async fn register(pg: &Pg, name: &str, concurrency: usize, lease: Duration) -> Result<(), StoreError> {
    let host = hostname();
    let (pid, concurrency, lease_ms) =
        (std::process::id() as i32, concurrency as i32, lease.as_millis() as i64);
    pg.execute(
        "INSERT INTO workers (name, host, pid, concurrency, lease_ms) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (name) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid,
            concurrency = EXCLUDED.concurrency, lease_ms = EXCLUDED.lease_ms, started_at = now(), heartbeat_at = now()",
        &[&name, &host, &pid, &concurrency, &lease_ms],
    )
    .await
    .map(drop)
}

pub async fn beat(pg: &Pg, name: &str) -> Result<(), StoreError> {
    pg.execute("UPDATE workers SET heartbeat_at = now() WHERE name = $1", &[&name]).await.map(drop)
}

pub async fn deregister(pg: &Pg, name: &str) -> Result<(), StoreError> {
    pg.execute("DELETE FROM workers WHERE name = $1", &[&name]).await.map(drop)
}

/// A live worker, for `cometflow workers`.
#[derive(Debug, Clone)]
pub struct WorkerRow {
    pub name: String,
    pub host: String,
    pub pid: i32,
    pub concurrency: i32,
    pub heartbeat_at: String,
    pub heartbeat_age: Duration,
    pub runs: Vec<String>,
    /// Steps it runs now, as `run id: step[item]`.
    pub steps: Vec<String>,
}

/// Workers whose last heartbeat is younger than their lease.
pub async fn workers(pg: &Pg) -> Result<Vec<WorkerRow>, StoreError> {
    let rows = pg
        .query(
            "SELECT w.name, w.host, w.pid, w.concurrency,
                to_char(w.heartbeat_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                GREATEST(0, extract(epoch FROM now() - w.heartbeat_at))::float8,
                COALESCE((SELECT array_agg(r.id || ' (' || r.pipeline || ')' ORDER BY r.seq) FROM runs r
                          WHERE r.lease_owner = w.name AND r.status = 'running'), '{}'),
                COALESCE((SELECT array_agg(j.run_id || ': ' || j.step
                                  || CASE WHEN j.item >= 0 THEN '[' || j.item || ']' ELSE '' END ORDER BY j.id)
                          FROM step_jobs j WHERE j.worker = w.name AND j.status = 'running'), '{}')
             FROM workers w
             WHERE w.heartbeat_at > now() - make_interval(secs => (w.lease_ms / 1000.0)::float8)
             ORDER BY w.name",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| WorkerRow {
            name: r.get(0),
            host: r.get(1),
            pid: r.get(2),
            concurrency: r.get(3),
            heartbeat_at: r.get(4),
            heartbeat_age: Duration::from_secs_f64(r.get::<_, f64>(5)),
            runs: r.get(6),
            steps: r.get(7),
        })
        .collect())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// What the listener wakes.
#[derive(Default)]
pub struct Signals {
    /// A run was queued or handed back.
    pub runs: Notify,
    /// A step was queued or handed back.
    pub steps: Notify,
    /// A run was cancelled.
    pub cancels: Notify,
    /// Holders waiting for the result of a job, by job id.
    done: std::sync::Mutex<std::collections::HashMap<i64, Arc<Notify>>>,
}

impl Signals {
    /// Wakes the returned handle when job `id` is done (a notice before the first wait is
    /// kept). Call [`Signals::forget`] once the result is in.
    pub fn watch(&self, id: i64) -> Arc<Notify> {
        self.done.lock().unwrap_or_else(|p| p.into_inner()).entry(id).or_default().clone()
    }

    pub fn forget(&self, id: i64) {
        self.done.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }

    fn job_done(&self, payload: &str) {
        let Ok(id) = payload.parse::<i64>() else { return };
        if let Some(n) = self.done.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
            n.notify_one();
        }
    }

    /// After a reconnection: notices may have been missed, so everyone looks again.
    fn wake_all(&self) {
        self.runs.notify_one();
        self.steps.notify_one();
        self.cancels.notify_one();
        for n in self.done.lock().unwrap_or_else(|p| p.into_inner()).values() {
            n.notify_one();
        }
    }
}

/// Listens on [`QUEUE`], [`CANCEL`] and the step queue's channels on a connection of its
/// own, waking workers, heartbeats and holders waiting for results; reconnects with backoff
/// (and wakes everyone, since a notice may have been missed).
pub async fn listen(pg: Arc<Pg>, signals: Arc<Signals>) {
    use super::jobs::{DONE, JOBS};
    let mut wait = Duration::from_millis(100);
    loop {
        match tokio_postgres::connect(&pg.url, NoTls).await {
            Ok((client, mut conn)) => {
                wait = Duration::from_millis(100);
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
                let driver = tokio::spawn(async move {
                    let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
                    while let Some(Ok(m)) = messages.next().await {
                        if let AsyncMessage::Notification(n) = m {
                            if tx.send((n.channel().to_owned(), n.payload().to_owned())).is_err() {
                                break;
                            }
                        }
                    }
                });
                let listen = format!("LISTEN {QUEUE}; LISTEN {CANCEL}; LISTEN {JOBS}; LISTEN {DONE}");
                if client.batch_execute(&listen).await.is_ok() {
                    signals.wake_all();
                    while let Some((channel, payload)) = rx.recv().await {
                        match channel.as_str() {
                            CANCEL => signals.cancels.notify_one(),
                            DONE => signals.job_done(&payload),
                            JOBS => signals.steps.notify_one(),
                            _ => signals.runs.notify_one(),
                        }
                    }
                }
                driver.abort();
            }
            Err(e) => tracing::debug!("cannot listen on PostgreSQL ({e}); retrying"),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(2));
    }
}
