//! Run rows in PostgreSQL: the same questions `store::runs`, `store::history` and
//! `store::resume` answer for SQLite, asked of the shared database.
//!
//! It owns these queries; it must not know how runs execute nor who holds them.

use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use jiff::Timestamp;
use serde_json::Value as Json;
use tokio_postgres::Row;

use super::{paths, Pg};
use crate::engine::events::Status;
use crate::engine::hooks::Prior;
use crate::engine::{RunRecord, StepRecord};
use crate::store::history::{StepRow, TaskRow};
use crate::store::runs::RunRow;
use crate::store::StoreError;

/// A run whose holder's lease ran out is shown `interrupted` (and may be resumed).
const COLUMNS: &str = "id, pipeline, pipeline_file,
    CASE WHEN status = 'running' AND (lease_until IS NULL OR lease_until < now()) THEN 'interrupted' ELSE status END,
    started_at, finished_at, inputs, run_dir, pid,
    resumes, paid_calls, (SELECT COUNT(*) FROM tasks t WHERE t.run_id = runs.id)";

fn row(pg: &Pg, r: &Row) -> RunRow {
    let inputs: String = r.get(6);
    RunRow {
        id: r.get(0),
        pipeline: r.get(1),
        pipeline_file: r.get(2),
        status: r.get(3),
        started_at: r.get(4),
        finished_at: r.get(5),
        inputs: serde_json::from_str(&inputs).unwrap_or_default(),
        run_dir: paths::load_str(r.get(7), &pg.artifacts),
        pid: r.get::<_, Option<i32>>(8).map(|p| p as u32),
        resumes: r.get::<_, i32>(9).max(0) as u32,
        paid_calls: r.get::<_, i64>(10).max(0) as u64,
        tasks: r.get::<_, i64>(11).max(0) as u64,
        shared: true,
    }
}

/// How long a run started by `run` stays its process's without a renewal; renewed every
/// third of it, so a killed `run` shows `interrupted` (and can be resumed) soon after.
const LOCAL_LEASE: Duration = Duration::from_secs(6);

/// Renews the lease on run `id` until `finish`.
fn keep_alive(pg: &Arc<Pg>, id: &str) {
    let (pg2, id2) = (pg.clone(), id.to_owned());
    let task = pg.spawn(async move {
        let secs = LOCAL_LEASE.as_secs_f64();
        loop {
            tokio::time::sleep(LOCAL_LEASE / 3).await;
            let sql = "UPDATE runs SET lease_until = now() + make_interval(secs => $2) WHERE id = $1 AND lease_epoch = 0";
            let _ = pg2.execute(sql, &[&id2, &secs]).await;
        }
    });
    if let Some(old) = pg.keepalive.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_owned(), task) {
        old.abort();
    }
}

fn local_owner() -> String {
    format!("run:{}", std::process::id())
}

pub fn begin(
    pg: &Arc<Pg>,
    id: &str,
    pipeline: &str,
    file: &str,
    inputs: &IndexMap<String, Json>,
    run_dir: &str,
) -> Result<(), StoreError> {
    let inputs = serde_json::to_string(inputs).unwrap_or_else(|_| "{}".into());
    let pid = std::process::id() as i32;
    let run_dir = paths::store_str(run_dir, &pg.artifacts);
    pg.execute_sync(
        "INSERT INTO runs (id, pipeline, pipeline_file, status, started_at, inputs, run_dir, pid, lease_owner,
                           lease_until)
         VALUES ($1, $2, $3, 'running', $4, $5, $6, $7, $8, now() + make_interval(secs => $9))
         ON CONFLICT (id) DO NOTHING",
        &[
            &id,
            &pipeline,
            &file,
            &Timestamp::now().to_string(),
            &inputs,
            &run_dir,
            &pid,
            &local_owner(),
            &LOCAL_LEASE.as_secs_f64(),
        ],
    )?;
    keep_alive(pg, id);
    Ok(())
}

/// Takes a run over in this process. Epoch 0 fences out any worker that held it, and a
/// run resumed by hand is no longer the workers' to claim.
pub fn resume(pg: &Arc<Pg>, id: &str) -> Result<(), StoreError> {
    let pid = std::process::id() as i32;
    pg.execute_sync(
        "UPDATE runs SET status = 'running', pid = $2, resumes = resumes + 1, finished_at = NULL,
            lease_owner = $3, lease_until = now() + make_interval(secs => $4), lease_epoch = 0, pipeline_text = NULL
         WHERE id = $1",
        &[&id, &pid, &local_owner(), &LOCAL_LEASE.as_secs_f64()],
    )?;
    keep_alive(pg, id);
    Ok(())
}

/// Records how a run ended, unless another holder took the run over (`epoch` fences it).
/// Returns whether the row was written.
pub fn finish(pg: &Pg, record: &RunRecord, status: &str, epoch: i64) -> Result<bool, StoreError> {
    if let Some(task) = pg.keepalive.lock().unwrap_or_else(|p| p.into_inner()).remove(&record.run_id) {
        task.abort();
    }
    let outputs =
        paths::store(&serde_json::to_value(&record.outputs).unwrap_or_default(), &pg.artifacts).to_string();
    let mut json = paths::store(&serde_json::to_value(record).unwrap_or_default(), &pg.artifacts);
    json["status"] = Json::from(status);
    let paid = record.paid_calls as i64;
    let n = pg.execute_sync(
        "UPDATE runs SET status = $2, finished_at = $3, outputs = $4, pid = NULL, record = $5,
            paid_calls = paid_calls + $6, lease_owner = NULL, lease_until = NULL
         WHERE id = $1 AND lease_epoch = $7",
        &[
            &record.run_id,
            &status,
            &record.finished_at.to_string(),
            &outputs,
            &json.to_string(),
            &paid,
            &epoch,
        ],
    )?;
    Ok(n > 0)
}

pub fn find(pg: &Pg, id: &str) -> Result<Option<RunRow>, StoreError> {
    let rows = pg.query_sync(&format!("SELECT {COLUMNS} FROM runs WHERE id = $1"), &[&id])?;
    Ok(rows.first().map(|r| row(pg, r)))
}

pub fn latest(pg: &Pg, pipeline: Option<&str>) -> Result<Option<RunRow>, StoreError> {
    let rows = pg.query_sync(
        &format!(
            "SELECT {COLUMNS} FROM runs WHERE $1::text IS NULL OR pipeline = $1 ORDER BY seq DESC LIMIT 1"
        ),
        &[&pipeline],
    )?;
    Ok(rows.first().map(|r| row(pg, r)))
}

pub fn list(pg: &Pg, limit: usize) -> Result<Vec<RunRow>, StoreError> {
    let limit = limit as i64;
    let rows = pg.query_sync(&format!("SELECT {COLUMNS} FROM runs ORDER BY seq DESC LIMIT $1"), &[&limit])?;
    Ok(rows.iter().map(|r| row(pg, r)).collect())
}

/// The finished run's record (what `run --json` printed), once it has ended.
pub fn record(pg: &Pg, id: &str) -> Result<Option<Json>, StoreError> {
    let rows = pg.query_sync("SELECT record FROM runs WHERE id = $1", &[&id])?;
    let text = rows.first().and_then(|r| r.get::<_, Option<String>>(0));
    Ok(text.and_then(|s| serde_json::from_str(&s).ok()).map(|v| paths::load(&v, &pg.artifacts)))
}

pub fn steps(pg: &Pg, run_id: &str) -> Result<Vec<StepRow>, StoreError> {
    let rows = pg.query_sync(
        "SELECT step, item, kind, status, attempts, cached, outputs, error FROM steps
         WHERE run_id = $1 ORDER BY seq",
        &[&run_id],
    )?;
    Ok(rows
        .iter()
        .map(|r| StepRow {
            step: r.get(0),
            item: usize::try_from(r.get::<_, i64>(1)).ok(),
            kind: r.get(2),
            status: r.get(3),
            attempts: r.get::<_, i32>(4).max(0) as u32,
            cached: r.get(5),
            outputs: paths::load_text(r.get(6), &pg.artifacts),
            error: r.get(7),
        })
        .collect())
}

pub fn tasks(pg: &Pg, run_id: &str) -> Result<Vec<TaskRow>, StoreError> {
    let rows = pg.query_sync(
        "SELECT step, item, family, task_id, state FROM tasks WHERE run_id = $1 ORDER BY seq",
        &[&run_id],
    )?;
    Ok(rows
        .iter()
        .map(|r| TaskRow {
            step: r.get(0),
            item: usize::try_from(r.get::<_, i64>(1)).ok(),
            family: r.get(2),
            task_id: r.get(3),
            state: r.get(4),
        })
        .collect())
}

/// What run `id` already did: succeeded steps and items, and tasks to poll again.
pub fn prior(pg: &Pg, id: &str) -> Result<Prior, StoreError> {
    let mut prior = Prior::default();
    let rows = pg.query_sync(
        "SELECT step, item, kind, attempts, cached, outputs, error, started_at, finished_at
         FROM steps WHERE run_id = $1 AND status = 'succeeded'",
        &[&id],
    )?;
    let time = |s: Option<String>| s.and_then(|s| s.parse::<Timestamp>().ok());
    for r in &rows {
        let (started_at, finished_at) = (time(r.get(7)), time(r.get(8)));
        let outputs: String = r.get(5);
        let record = StepRecord {
            status: Status::Succeeded,
            kind: r.get(2),
            attempts: r.get::<_, i32>(3).max(0) as u32,
            cached: r.get(4),
            started_at,
            finished_at,
            duration_ms: match (started_at, finished_at) {
                (Some(s), Some(f)) => s.duration_until(f).unsigned_abs(),
                _ => Duration::ZERO,
            },
            outputs: paths::load(&serde_json::from_str(&outputs).unwrap_or_default(), &pg.artifacts),
            error: r.get(6),
            needs: Vec::new(),
            environment: false,
        };
        let (step, item): (String, i64) = (r.get(0), r.get(1));
        if item < 0 {
            prior.steps.insert(step.clone(), record.clone());
        }
        prior.units.insert((step, usize::try_from(item).ok()), record);
    }
    let tasks = pg.query_sync(
        "SELECT step, item, task_id FROM tasks WHERE run_id = $1 AND state IN ('submitted', 'succeeded') ORDER BY seq",
        &[&id],
    )?;
    for r in &tasks {
        prior.tasks.insert((r.get(0), usize::try_from(r.get::<_, i64>(1)).ok()), r.get(2));
    }
    for u in unknown_submits(pg, id)? {
        prior.unknown.insert((u.step, u.item), u.sent_at);
    }
    Ok(prior)
}

/// What the earlier holders of run `id` paid: the provider tasks it submitted (each is
/// recorded before its first poll) and the paid calls that left no task (counted when their
/// step's result was written). The worker taking the run over charges it to `budget.calls`.
pub fn paid_so_far(pg: &Pg, id: &str) -> Result<u64, StoreError> {
    let rows = pg.query_sync(
        "SELECT (SELECT COUNT(*) FROM tasks WHERE run_id = $1)
              + COALESCE((SELECT paid_so_far FROM runs WHERE id = $1), 0)",
        &[&id],
    )?;
    Ok(rows.first().and_then(|r| r.get::<_, Option<i64>>(0)).unwrap_or(0).max(0) as u64)
}

/// Run `id`'s submits whose fate is unknown (sent, no task id on record), oldest first.
pub fn unknown_submits(pg: &Pg, id: &str) -> Result<Vec<crate::store::resume::UnknownSubmit>, StoreError> {
    let rows = pg.query_sync(
        "SELECT step, item, family, sent_at FROM submits WHERE run_id = $1 ORDER BY sent_at, step, item",
        &[&id],
    )?;
    Ok(rows
        .iter()
        .map(|r| crate::store::resume::UnknownSubmit {
            step: r.get(0),
            item: usize::try_from(r.get::<_, i64>(1)).ok(),
            family: r.get(2),
            sent_at: r.get(3),
        })
        .collect())
}
