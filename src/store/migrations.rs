//! The store's schema, as one ordered list of migrations for both backends, each written in
//! SQLite's and PostgreSQL's dialect: a version means the same tables on either. In SQLite,
//! `PRAGMA user_version` holds how many have been applied; opening the database applies the
//! rest, each in its own transaction (PostgreSQL's are applied by `pg`). Never edit a
//! released migration: append a new one.
//!
//! It owns the table layout; it must not know who reads or writes the tables.

use rusqlite::Connection;

/// One step of the schema, in each backend's dialect. A step a backend does not need (the
/// queue of a fleet, in SQLite) is empty there, so versions mean the same on both.
pub(crate) struct Migration {
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// Migration `i` brings the schema from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[Migration] = &[
    // 1: runs, their steps and attempts, provider tasks, file hashes, the step cache; on
    // PostgreSQL also the queue and lease columns of `runs`, `workers`, fleet-wide family slots
    // and the schedulers' lead
    Migration {
        sqlite: r#"
        CREATE TABLE runs (
            id            TEXT PRIMARY KEY,
            pipeline      TEXT NOT NULL,
            pipeline_file TEXT NOT NULL,
            status        TEXT NOT NULL,          -- running, succeeded, failed, interrupted
            started_at    TEXT NOT NULL,
            finished_at   TEXT,
            inputs        TEXT NOT NULL,          -- JSON object
            outputs       TEXT,                   -- JSON object
            run_dir       TEXT NOT NULL,
            pid           INTEGER,                -- the process running it, while `running`
            resumes       INTEGER NOT NULL DEFAULT 0,
            paid_calls    INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX runs_by_pipeline ON runs (pipeline, started_at);
        CREATE TABLE steps (
            run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            step        TEXT NOT NULL,
            item        INTEGER NOT NULL,         -- -1: the whole step; n: `for_each` item n
            kind        TEXT NOT NULL,
            status      TEXT NOT NULL,
            attempts    INTEGER NOT NULL,
            cached      INTEGER NOT NULL,
            outputs     TEXT NOT NULL,            -- JSON
            error       TEXT,
            started_at  TEXT,
            finished_at TEXT,
            PRIMARY KEY (run_id, step, item)
        );
        CREATE TABLE attempts (
            run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            step        TEXT NOT NULL,
            item        INTEGER NOT NULL,
            attempt     INTEGER NOT NULL,
            finished_at TEXT NOT NULL,
            error       TEXT,
            PRIMARY KEY (run_id, step, item, attempt)
        );
        CREATE TABLE tasks (
            run_id       TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            step         TEXT NOT NULL,
            item         INTEGER NOT NULL,
            family       TEXT NOT NULL,
            task_id      TEXT NOT NULL,
            submitted_at TEXT NOT NULL,
            state        TEXT NOT NULL,           -- submitted, succeeded, failed
            PRIMARY KEY (run_id, step, item, task_id)
        );
        CREATE TABLE artifacts (
            path      TEXT PRIMARY KEY,
            size      INTEGER NOT NULL,
            mtime_ns  INTEGER NOT NULL,
            sha256    TEXT NOT NULL,
            hashed_at TEXT NOT NULL
        );
        CREATE TABLE cache (
            key        TEXT PRIMARY KEY,
            kind       TEXT NOT NULL,
            run_id     TEXT NOT NULL,
            step_dir   TEXT NOT NULL,             -- where the outputs' files live
            outputs    TEXT NOT NULL,             -- JSON
            created_at TEXT NOT NULL
        );
    "#,
        postgres: r#"
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
    },
    // 2: submits sent whose answer (a task id, or a refusal) is not yet recorded. A row left
    // behind by a crash is a task that may exist and be charged: resume does not resend it
    // unless told to (`--resubmit-unknown`).
    Migration {
        sqlite: r#"
        CREATE TABLE submits (
            run_id  TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            step    TEXT NOT NULL,
            item    INTEGER NOT NULL,
            family  TEXT NOT NULL,
            sent_at TEXT NOT NULL,
            PRIMARY KEY (run_id, step, item)
        );
    "#,
        postgres: r#"
        CREATE TABLE submits (
            run_id  TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            step    TEXT NOT NULL,
            item    BIGINT NOT NULL,
            family  TEXT NOT NULL,
            sent_at TEXT NOT NULL,
            PRIMARY KEY (run_id, step, item)
        );
    "#,
    },
    // 3: the step queue. The run's holder walks it and queues each attempt of a step with
    // effects; any worker claims one, runs it under a lease of its own, and writes the result
    // for the holder (or the holder's successor) to collect. `fence` is new at every claim: a
    // worker that lost the job can no longer write for it.
    Migration {
        sqlite: "",
        postgres: r#"
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
    },
    // 4: per pipeline, the last due time any scheduler handled: a scheduler that starts after
    // every scheduler was down catches up from here, on whichever machine.
    Migration {
        sqlite: "",
        postgres: r#"
        CREATE TABLE schedule_marks (
            pipeline TEXT PRIMARY KEY,
            last_due TIMESTAMPTZ NOT NULL
        );
    "#,
    },
    // 5: paid calls of a run that left no provider task (a chat answer), added when their
    // step's result is written, for the worker taking the run over to charge to
    // `budget.calls` (tasks are counted from `tasks`).
    Migration {
        sqlite: "",
        postgres: r#"
        ALTER TABLE runs ADD COLUMN paid_so_far BIGINT NOT NULL DEFAULT 0;
    "#,
    },
];

pub(crate) enum MigrateError {
    Sql(rusqlite::Error),
    /// The file was written by a newer cometflow.
    TooNew(u32),
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> Self {
        MigrateError::Sql(e)
    }
}

/// Applies every migration the database has not seen yet.
pub(crate) fn apply(conn: &mut Connection) -> Result<(), MigrateError> {
    let version: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version as usize > MIGRATIONS.len() {
        return Err(MigrateError::TooNew(version));
    }
    for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        // IMMEDIATE: two processes opening a fresh database must not both migrate it.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now: u32 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if now as usize > i {
            continue;
        }
        tx.execute_batch(m.sqlite)?;
        tx.pragma_update(None, "user_version", (i + 1) as u32)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_changes_nothing() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert!(apply(&mut conn).is_ok());
        assert!(apply(&mut conn).is_ok());
        let v: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(v as usize, MIGRATIONS.len());
    }
}
