//! The PostgreSQL store (`COMETFLOW_STORE=postgres://...`): one connection, shared by every
//! caller, re-established with backoff when the server goes away (a restart, a network cut),
//! and the statement retried. The connection lives on a small runtime of its own, so the
//! engine's synchronous hooks can wait on it from any thread and async callers can await it.
//!
//! It owns connecting, retrying and the schema's migrations; the tables' meaning lives in
//! the sibling files (`runs`, `journal`, `queue`).

pub mod jobs;
pub mod journal;
pub mod paths;
pub mod queue;
pub mod runs;
pub mod slots;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row};

use super::db::StoreError;

/// How long a statement keeps retrying while the server is unreachable.
const RECONNECT_FOR: Duration = Duration::from_secs(120);

/// Parameters of one statement.
pub type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// An open PostgreSQL store.
pub struct Pg {
    pub(crate) url: String,
    /// This machine's artifacts folder: paths under it are stored relative (see `paths`).
    pub(crate) artifacts: std::path::PathBuf,
    rt: Option<tokio::runtime::Runtime>,
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
    /// Lease renewals of the runs this process runs itself (`run`, not a worker).
    pub(crate) keepalive: std::sync::Mutex<std::collections::HashMap<String, tokio::task::JoinHandle<()>>>,
}

impl Drop for Pg {
    fn drop(&mut self) {
        // Dropping a runtime may block, which is refused inside another runtime.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Pg {
    /// Connects (retrying while the server starts) and brings the schema up to date.
    pub fn open(url: &str) -> Result<Arc<Pg>, StoreError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("cometflow-pg")
            .enable_all()
            .build()
            .map_err(|e| StoreError(format!("cannot start the PostgreSQL client: {e}")))?;
        let artifacts = super::runs_root(&super::state_dir());
        let client = tokio::sync::Mutex::new(None);
        let keepalive = Default::default();
        let pg = Arc::new(Pg { url: url.to_owned(), artifacts, rt: Some(rt), client, keepalive });
        pg.block(migrations::apply(&pg))?;
        Ok(pg)
    }

    /// The URL without its password, for messages.
    pub fn display(&self) -> String {
        redact(&self.url)
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        // `rt` is `None` only while dropping.
        self.rt.as_ref().map(|rt| rt.handle()).expect("the runtime lives as long as the store")
    }

    /// Runs `f` on the store's runtime (it outlives the caller's task).
    pub fn spawn<F>(&self, f: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle().spawn(f)
    }

    /// Waits for `f` from synchronous code, inside or outside a (multi-thread) runtime.
    pub fn block<F: Future>(&self, f: F) -> F::Output {
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::task::block_in_place(|| self.handle().block_on(f))
        } else {
            self.handle().block_on(f)
        }
    }

    /// A new connection whose driver runs on the store's runtime.
    pub async fn connect(&self) -> Result<Client, tokio_postgres::Error> {
        let url = self.url.clone();
        let handle = self.handle().clone();
        let joined = handle
            .spawn(async move {
                let (client, conn) = tokio_postgres::connect(&url, NoTls).await?;
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!("postgres connection ended: {e}");
                    }
                });
                Ok(client)
            })
            .await;
        joined.expect("connecting does not panic")
    }

    /// The shared connection, connecting with backoff while the server is unreachable.
    async fn client(&self, deadline: Instant) -> Result<Arc<Client>, StoreError> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let mut wait = Duration::from_millis(100);
        loop {
            match self.connect().await {
                Ok(c) => {
                    let c = Arc::new(c);
                    *slot = Some(c.clone());
                    return Ok(c);
                }
                Err(e) if Instant::now() < deadline => {
                    tracing::warn!(
                        "cannot reach PostgreSQL at {} ({e}); retrying in {wait:?}",
                        self.display()
                    );
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(self.explain(&e)),
            }
        }
    }

    /// Runs one statement on the shared connection, reconnecting and retrying when the
    /// connection was lost (every statement cometflow sends is safe to send twice).
    pub async fn with<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: Fn(Arc<Client>) -> Fut,
        Fut: Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let deadline = Instant::now() + RECONNECT_FOR;
        loop {
            let client = self.client(deadline).await?;
            match f(client.clone()).await {
                Ok(v) => return Ok(v),
                Err(e) if retryable(&e) && Instant::now() < deadline => {
                    tracing::warn!("lost the PostgreSQL connection ({e}); reconnecting");
                    let mut slot = self.client.lock().await;
                    if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, &client)) {
                        *slot = None;
                    }
                    drop(slot);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(self.explain(&e)),
            }
        }
    }

    pub async fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64, StoreError> {
        self.with(|c| async move { c.execute(sql, params).await }).await
    }

    pub async fn query(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, StoreError> {
        self.with(|c| async move { c.query(sql, params).await }).await
    }

    pub fn execute_sync(&self, sql: &str, params: Params<'_>) -> Result<u64, StoreError> {
        self.block(self.execute(sql, params))
    }

    pub fn query_sync(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, StoreError> {
        self.block(self.query(sql, params))
    }

    fn explain(&self, e: &tokio_postgres::Error) -> StoreError {
        let detail = e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_owned());
        StoreError(format!(
            "the PostgreSQL store `{}` failed: {detail}; check that the server runs and COMETFLOW_STORE is right",
            self.display()
        ))
    }
}

/// A lost connection or a server shutting down: worth reconnecting for.
fn retryable(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        // Class 57 (operator intervention: shutdown, restart) and 08 (connection exception).
        Some(code) => code.code().starts_with("57") || code.code().starts_with("08"),
        None => std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()),
    }
}

/// `postgres://user:secret@host/db` -> `postgres://user:***@host/db`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    match rest.split_once('@') {
        Some((auth, host)) => match auth.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

mod migrations {
    //! The PostgreSQL schema: the same tables as the SQLite store's migration 1 (in
    //! PostgreSQL's dialect), plus what a fleet needs: the queue and lease columns of `runs`,
    //! `workers`, fleet-wide family slots and the schedulers' lead. `schema_version` holds
    //! how many have been applied; an advisory lock keeps two processes from migrating at once.

    use super::{Pg, StoreError};

    const MIGRATIONS: &[&str] = &[
        r#"
    CREATE TABLE runs (
        id            TEXT PRIMARY KEY,
        seq           BIGSERIAL,
        pipeline      TEXT NOT NULL,
        pipeline_file TEXT NOT NULL,
        status        TEXT NOT NULL,          -- queued, running, succeeded, failed, interrupted, cancelled
        started_at    TEXT NOT NULL,
        finished_at   TEXT,
        inputs        TEXT NOT NULL,
        outputs       TEXT,
        run_dir       TEXT NOT NULL,
        pid           INTEGER,
        resumes       INTEGER NOT NULL DEFAULT 0,
        paid_calls    BIGINT NOT NULL DEFAULT 0,
        pipeline_text TEXT,                   -- a submitted run carries its pipeline
        concurrency   INTEGER,
        lease_owner   TEXT,                   -- the worker holding it
        lease_epoch   BIGINT NOT NULL DEFAULT 0, -- bumped by every claim; fences every write
        lease_until   TIMESTAMPTZ,
        cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
        record        TEXT,                   -- the finished RunRecord (JSON)
        due_key       TEXT UNIQUE,            -- schedulers: pipeline + due time, queued once
        queued_at     TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX runs_by_pipeline ON runs (pipeline, seq);
    CREATE INDEX runs_to_claim ON runs (seq) WHERE status IN ('queued', 'running');
    CREATE TABLE steps (
        run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        seq         BIGSERIAL,
        step        TEXT NOT NULL,
        item        BIGINT NOT NULL,
        kind        TEXT NOT NULL,
        status      TEXT NOT NULL,
        attempts    INTEGER NOT NULL,
        cached      BOOLEAN NOT NULL,
        outputs     TEXT NOT NULL,
        error       TEXT,
        started_at  TEXT,
        finished_at TEXT,
        PRIMARY KEY (run_id, step, item)
    );
    CREATE TABLE attempts (
        run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        step        TEXT NOT NULL,
        item        BIGINT NOT NULL,
        attempt     INTEGER NOT NULL,
        finished_at TEXT NOT NULL,
        error       TEXT,
        PRIMARY KEY (run_id, step, item, attempt)
    );
    CREATE TABLE tasks (
        run_id       TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        seq          BIGSERIAL,
        step         TEXT NOT NULL,
        item         BIGINT NOT NULL,
        family       TEXT NOT NULL,
        task_id      TEXT NOT NULL,
        submitted_at TEXT NOT NULL,
        state        TEXT NOT NULL,
        PRIMARY KEY (run_id, step, item, task_id)
    );
    CREATE TABLE cache (
        key        TEXT PRIMARY KEY,
        kind       TEXT NOT NULL,
        run_id     TEXT NOT NULL,
        step_dir   TEXT NOT NULL,
        outputs    TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE workers (
        name         TEXT PRIMARY KEY,
        host         TEXT NOT NULL,
        pid          INTEGER NOT NULL,
        concurrency  INTEGER NOT NULL,
        lease_ms     BIGINT NOT NULL,
        started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
        heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE TABLE family_slots (
        run_id      TEXT NOT NULL,
        family      TEXT NOT NULL,
        slot        INTEGER NOT NULL,
        lease_until TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (family, slot)
    );
    CREATE TABLE scheduler_lead (
        id          INTEGER PRIMARY KEY,
        holder      TEXT NOT NULL,
        lease_until TIMESTAMPTZ NOT NULL
    );
    "#,
        r#"
    CREATE TABLE submits (
        run_id  TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        step    TEXT NOT NULL,
        item    BIGINT NOT NULL,
        family  TEXT NOT NULL,
        sent_at TEXT NOT NULL,
        PRIMARY KEY (run_id, step, item)
    );
    "#,
        // 3: the step queue. The run's holder walks it and queues each attempt of a step with
        // effects; any worker claims one, runs it under a lease of its own, and writes the
        // result for the holder (or the holder's successor) to collect. `fence` is new at
        // every claim: a worker that lost the job can no longer write for it.
        r#"
    CREATE SEQUENCE step_job_fence;
    CREATE TABLE step_jobs (
        id          BIGSERIAL PRIMARY KEY,
        run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        step        TEXT NOT NULL,
        item        BIGINT NOT NULL,
        attempt     INTEGER NOT NULL,
        kind        TEXT NOT NULL,
        job         TEXT NOT NULL,
        status      TEXT NOT NULL DEFAULT 'queued',   -- queued, running, done
        worker      TEXT,
        fence       BIGINT NOT NULL DEFAULT 0,
        claims      INTEGER NOT NULL DEFAULT 0,
        lease_until TIMESTAMPTZ,
        queued_at   TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
        claimed_at  TIMESTAMPTZ,
        finished_at TIMESTAMPTZ,
        result      TEXT,
        UNIQUE (run_id, step, item, attempt)
    );
    CREATE INDEX step_jobs_open ON step_jobs (status, id) WHERE status <> 'done';
    "#,
        // 4: per pipeline, the last due time any scheduler handled: a scheduler that starts
        // after every scheduler was down catches up from here, on whichever machine.
        r#"
    CREATE TABLE schedule_marks (
        pipeline TEXT PRIMARY KEY,
        last_due TIMESTAMPTZ NOT NULL
    );
    "#,
        // 5: the paid calls a run's holder has counted so far, for the worker that takes the
        // run over to charge to `budget.calls` (tasks are counted from `tasks`; this adds
        // the calls that leave no task, such as chat).
        r#"
    ALTER TABLE runs ADD COLUMN paid_so_far BIGINT NOT NULL DEFAULT 0;
    "#,
    ];

    pub(super) async fn apply(pg: &Pg) -> Result<(), StoreError> {
        let n = MIGRATIONS.len() as i32;
        pg.with(|c| async move {
            // The lock first: processes starting together on a new database would race to
            // create even `schema_version`.
            c.batch_execute(
                "BEGIN; SELECT pg_advisory_xact_lock(7215001);
                 CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);",
            )
            .await?;
            let result = async {
                let row = c.query_opt("SELECT version FROM schema_version", &[]).await?;
                let have: i32 = row.map_or(0, |r| r.get(0));
                if have > n {
                    return Ok(Some(have));
                }
                for (i, sql) in MIGRATIONS.iter().enumerate().skip(have as usize) {
                    c.batch_execute(sql).await?;
                    c.execute("DELETE FROM schema_version", &[]).await?;
                    c.execute("INSERT INTO schema_version VALUES ($1)", &[&(i as i32 + 1)]).await?;
                }
                Ok(None)
            }
            .await;
            match &result {
                Ok(_) => c.batch_execute("COMMIT").await?,
                Err(_) => c.batch_execute("ROLLBACK").await.unwrap_or(()),
            }
            result
        })
        .await?
        .map_or(Ok(()), |v| {
            Err(StoreError(format!(
                "the PostgreSQL store `{}` has schema version {v}, newer than this cometflow knows; upgrade cometflow",
                pg.display()
            )))
        })
    }
}
