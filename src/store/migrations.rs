//! The state database's schema, as an ordered list of migrations. `PRAGMA user_version`
//! holds how many have been applied; opening the database applies the rest, each in its
//! own transaction. Never edit a released migration: append a new one.
//!
//! It owns the table layout; it must not know who reads or writes the tables.

use rusqlite::Connection;

/// Migration `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: runs, their steps and attempts, provider tasks, file hashes, the step cache.
    r#"
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
    // 2: submits sent whose answer (a task id, or a refusal) is not yet recorded. A row left
    // behind by a crash is a task that may exist and be charged: resume does not resend it
    // unless told to (`--resubmit-unknown`).
    r#"
    CREATE TABLE submits (
        run_id  TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        step    TEXT NOT NULL,
        item    INTEGER NOT NULL,
        family  TEXT NOT NULL,
        sent_at TEXT NOT NULL,
        PRIMARY KEY (run_id, step, item)
    );
    "#,
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
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        // IMMEDIATE: two processes opening a fresh database must not both migrate it.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now: u32 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if now as usize > i {
            continue;
        }
        tx.execute_batch(sql)?;
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
