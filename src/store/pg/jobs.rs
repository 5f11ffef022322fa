//! The step queue: attempts of steps with effects that a run's holder hands to the fleet.
//! The holder queues an attempt (one row per run, step, item and attempt, so queueing it
//! again finds the same row: a holder that took the run over collects what its predecessor
//! queued instead of running it twice); any worker claims it with `FOR UPDATE SKIP LOCKED`,
//! runs it under a lease its heartbeats renew, and writes the result, which wakes the holder
//! by `NOTIFY`. A claim whose lease ran out (its worker died) is claimed again, and every
//! write of the claim is fenced by a number drawn afresh at each claim.
//!
//! It owns the `step_jobs` rows; what a job carries and how it runs are the worker's.

use std::time::Duration;

use super::Pg;
use crate::store::StoreError;

/// Channels: a job was queued (workers look for work); a job is done (payload: its id).
pub const JOBS: &str = "cometflow_jobs";
pub const DONE: &str = "cometflow_done";

/// What a holder queues.
pub struct NewJob<'a> {
    pub run_id: &'a str,
    /// The holder's lease epoch on the run: a holder that lost the run queues nothing.
    pub epoch: i64,
    pub step: &'a str,
    pub item: Option<usize>,
    pub attempt: u32,
    pub kind: &'a str,
    /// The job as JSON: the rendered input and what the attempt needs (the worker's format).
    pub job: &'a str,
}

fn item_col(item: Option<usize>) -> i64 {
    item.map_or(-1, |i| i as i64)
}

/// Queues an attempt (or finds the one already queued) and returns its id; `None` when the
/// holder no longer holds the run.
pub async fn enqueue(pg: &Pg, j: &NewJob<'_>) -> Result<Option<i64>, StoreError> {
    let (item, attempt) = (item_col(j.item), j.attempt as i32);
    let rows = pg
        .query(
            "WITH ins AS (
                INSERT INTO step_jobs (run_id, step, item, attempt, kind, job)
                SELECT $1, $3, $4, $5, $6, $7
                WHERE EXISTS (SELECT 1 FROM runs WHERE id = $1 AND lease_epoch = $2)
                ON CONFLICT (run_id, step, item, attempt) DO NOTHING RETURNING id),
             found AS (
                SELECT id FROM ins
                UNION ALL
                SELECT id FROM step_jobs WHERE run_id = $1 AND step = $3 AND item = $4 AND attempt = $5
                  AND EXISTS (SELECT 1 FROM runs WHERE id = $1 AND lease_epoch = $2))
             SELECT id, pg_notify($8, id::text) FROM found LIMIT 1",
            &[&j.run_id, &j.epoch, &j.step, &item, &attempt, &j.kind, &j.job, &JOBS],
        )
        .await?;
    Ok(rows.first().map(|r| r.get(0)))
}

/// A job a worker now runs.
#[derive(Debug, Clone)]
pub struct JobClaim {
    pub id: i64,
    /// Fences every write of this claim.
    pub fence: i64,
    /// Claims whose worker died with it, this one included (a job handed back by a worker
    /// that stopped is not counted again).
    pub claims: i32,
    /// An earlier worker started it (and died, or handed it back): what it recorded is
    /// where this one starts.
    pub resumed: bool,
    pub run_id: String,
    pub step: String,
    pub item: Option<usize>,
    pub attempt: u32,
    pub kind: String,
    pub job: String,
    /// From queued (or from the lease running out) to claimed.
    pub waited: Duration,
    /// The run was cancelled or has ended: the job is not to run.
    pub run_stopped: bool,
}

/// Claims the oldest queued job, or one whose worker's lease ran out.
pub async fn claim(pg: &Pg, worker: &str, lease: Duration) -> Result<Option<JobClaim>, StoreError> {
    let secs = lease.as_secs_f64();
    let rows = pg
        .query(
            "UPDATE step_jobs j SET status = 'running', worker = $1, fence = nextval('step_job_fence'),
                claims = j.claims + CASE WHEN c.handed_back THEN 0 ELSE 1 END,
                lease_until = now() + make_interval(secs => $2),
                claimed_at = clock_timestamp(),
                queued_at = CASE WHEN j.status = 'queued' THEN j.queued_at ELSE j.lease_until END
             FROM (SELECT id, status = 'queued' AND claimed_at IS NOT NULL AS handed_back,
                          claimed_at IS NOT NULL AS started
                   FROM step_jobs
                   WHERE status = 'queued' OR (status = 'running' AND lease_until < now())
                   ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) c
             WHERE j.id = c.id
             RETURNING j.id, j.fence, j.claims, j.run_id, j.step, j.item, j.attempt, j.kind, j.job,
                GREATEST(0, extract(epoch FROM j.claimed_at - j.queued_at))::float8,
                COALESCE((SELECT r.cancel_requested OR r.status NOT IN ('queued', 'running')
                          FROM runs r WHERE r.id = j.run_id), TRUE),
                c.started",
            &[&worker, &secs],
        )
        .await?;
    Ok(rows.first().map(|r| JobClaim {
        id: r.get(0),
        fence: r.get(1),
        claims: r.get(2),
        run_id: r.get(3),
        step: r.get(4),
        item: usize::try_from(r.get::<_, i64>(5)).ok(),
        attempt: r.get::<_, i32>(6).max(1) as u32,
        kind: r.get(7),
        job: r.get(8),
        waited: Duration::from_secs_f64(r.get::<_, f64>(9)),
        run_stopped: r.get(10),
        resumed: r.get(11),
    }))
}

/// What a heartbeat learned about a job a worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobLease {
    Held,
    /// Its run was cancelled or has ended: stop the attempt.
    RunStopped,
    /// Another worker runs it now.
    Lost,
}

/// Extends the lease of a job (fenced by its claim).
pub async fn renew(pg: &Pg, id: i64, fence: i64, lease: Duration) -> Result<JobLease, StoreError> {
    let secs = lease.as_secs_f64();
    let rows = pg
        .query(
            "UPDATE step_jobs j SET lease_until = now() + make_interval(secs => $3)
             WHERE id = $1 AND fence = $2 AND status = 'running'
             RETURNING COALESCE((SELECT r.cancel_requested OR r.status NOT IN ('queued', 'running')
                                 FROM runs r WHERE r.id = j.run_id), TRUE)",
            &[&id, &fence, &secs],
        )
        .await?;
    Ok(match rows.first().map(|r| r.get::<_, bool>(0)) {
        None => JobLease::Lost,
        Some(true) => JobLease::RunStopped,
        Some(false) => JobLease::Held,
    })
}

/// Writes a job's result (fenced by its claim) and wakes its holder. `untasked`: paid calls
/// it made that left no provider task (a chat answer), added to its run's count in the same
/// statement, so that each is counted once whoever holds the run (tasks are counted from
/// `tasks`). `false`: the claim was lost, nothing was written.
pub async fn complete(pg: &Pg, id: i64, fence: i64, result: &str, untasked: u64) -> Result<bool, StoreError> {
    let untasked = untasked as i64;
    let rows = pg
        .query(
            "WITH done AS (
                UPDATE step_jobs SET status = 'done', result = $3, finished_at = clock_timestamp(),
                    lease_until = NULL
                WHERE id = $1 AND fence = $2 AND status = 'running' RETURNING id, run_id),
             counted AS (
                UPDATE runs SET paid_so_far = paid_so_far + $5::bigint FROM done WHERE runs.id = done.run_id AND $5::bigint > 0)
             SELECT pg_notify($4, id::text) FROM done",
            &[&id, &fence, &result, &DONE, &untasked],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Ends the queued (unclaimed) jobs of run `run_id` with `result` and wakes their holder:
/// a cancelled run's steps that no worker took yet need not wait for one.
pub async fn end_queued(pg: &Pg, run_id: &str, result: &str) -> Result<u64, StoreError> {
    let rows = pg
        .query(
            "WITH ended AS (
                UPDATE step_jobs SET status = 'done', result = $2, finished_at = clock_timestamp()
                WHERE run_id = $1 AND status = 'queued' RETURNING id)
             SELECT pg_notify($3, id::text) FROM ended",
            &[&run_id, &result, &DONE],
        )
        .await?;
    Ok(rows.len() as u64)
}

/// Gives a job back to the queue (its worker is stopping): another worker runs it at once.
pub async fn hand_back(pg: &Pg, id: i64, fence: i64) -> Result<bool, StoreError> {
    let rows = pg
        .query(
            "WITH back AS (
                UPDATE step_jobs SET status = 'queued', worker = NULL, lease_until = NULL,
                    queued_at = clock_timestamp()
                WHERE id = $1 AND fence = $2 AND status = 'running' RETURNING id)
             SELECT pg_notify($3, id::text) FROM back",
            &[&id, &fence, &JOBS],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// The result of job `id`, once it is done.
pub async fn result(pg: &Pg, id: i64) -> Result<Option<String>, StoreError> {
    let rows = pg.query("SELECT result FROM step_jobs WHERE id = $1 AND status = 'done'", &[&id]).await?;
    Ok(rows.first().and_then(|r| r.get(0)))
}

/// A task an earlier claim of this job submitted and never saw end, and a submit it sent
/// whose answer never came (with when it was sent): what a worker taking the job over
/// resumes from.
pub async fn left_behind(
    pg: &Pg,
    run_id: &str,
    step: &str,
    item: Option<usize>,
) -> Result<(Option<String>, Option<String>), StoreError> {
    let item = item_col(item);
    let task = pg
        .query(
            "SELECT task_id FROM tasks WHERE run_id = $1 AND step = $2 AND item = $3
               AND state IN ('submitted', 'succeeded') ORDER BY seq DESC LIMIT 1",
            &[&run_id, &step, &item],
        )
        .await?;
    let sent = pg
        .query(
            "SELECT sent_at FROM submits WHERE run_id = $1 AND step = $2 AND item = $3",
            &[&run_id, &step, &item],
        )
        .await?;
    Ok((task.first().map(|r| r.get(0)), sent.first().map(|r| r.get(0))))
}
