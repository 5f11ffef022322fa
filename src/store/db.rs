//! The state database: `<state dir>/state.db`, one SQLite file in WAL mode so readers never
//! block the writer, with a busy timeout so two cometflow processes on one state dir take
//! turns instead of failing. Opening it applies pending migrations.
//!
//! It owns the connection and turns SQLite's errors into messages that name the file and
//! say what to do; it must not know the engine nor what the tables mean.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::ffi::ErrorCode;
use rusqlite::Connection;

/// Another process may hold the write lock for a moment (a commit); wait this long for it.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A log longer than this is checkpointed and emptied when the database closes: the next
/// process to open it would otherwise read all of it back (about 1.5 ms for 16 MB).
const LOG_KEPT_AT_CLOSE: u64 = 4 * 1024 * 1024;

/// A state database failure, already worded for the user.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// The open state database. Cheap to share; every call takes the one connection in turn.
pub struct Db {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl Db {
    /// Opens (creating if needed) `<state>/state.db` and brings its schema up to date.
    pub fn open(state: &Path) -> Result<Arc<Db>, StoreError> {
        std::fs::create_dir_all(state).map_err(|e| {
            StoreError(format!(
                "cannot create the state directory `{}`: {e}; set COMETFLOW_STATE_DIR to a writable folder",
                state.display()
            ))
        })?;
        let path = state.join("state.db");
        let conn = Connection::open(&path).map_err(|e| explain(&path, &e))?;
        let setup = |conn: &mut Connection| -> rusqlite::Result<()> {
            conn.busy_timeout(BUSY_TIMEOUT)?;
            // The first real read: a file that is not a database fails here.
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))?;
            // NORMAL in WAL mode survives a killed process (only a power cut may lose the
            // last commits), which is the crash `--resume` is for.
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            // Checkpoints (copying the log into the file, with a sync) come every 4,000
            // pages instead of 1,000: a long run commits often, mostly the same pages.
            conn.pragma_update(None, "wal_autocheckpoint", 4000)?;
            // Nor at every close: the last connection of a process would otherwise copy the
            // log into the file, sync twice and delete the log, and the next process create
            // and sync it again: half the cost of a small run. The log stays, checkpointed
            // as it grows.
            conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
            // A log that grew past a checkpoint (a reader held it back) is cut back to 32 MB.
            conn.pragma_update(None, "journal_size_limit", 32 * 1024 * 1024)?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            Ok(())
        };
        let mut conn = conn;
        setup(&mut conn).map_err(|e| explain(&path, &e))?;
        super::migrations::apply(&mut conn).map_err(|e| match e {
            super::migrations::MigrateError::Sql(e) => explain(&path, &e),
            super::migrations::MigrateError::TooNew(v) => StoreError(format!(
                "the state database `{}` has schema version {v}, newer than this cometflow knows; \
                 upgrade cometflow or use another COMETFLOW_STATE_DIR",
                path.display()
            )),
        })?;
        Ok(Arc::new(Db { conn: Mutex::new(conn), path }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with the connection, wording any error.
    pub fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        f(&mut self.lock()).map_err(|e| explain(&self.path, &e))
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection itself usable: SQLite rolls
        // back an unfinished transaction, so a poisoned lock is safe to take over.
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let mut log = self.path.clone().into_os_string();
        log.push("-wal");
        if std::fs::metadata(&log).map_or(true, |m| m.len() <= LOG_KEPT_AT_CLOSE) {
            return;
        }
        // Without waiting: another process reading the log keeps it, and leaving it costs
        // only time at the next open.
        let conn = self.lock();
        let _ = conn.busy_timeout(Duration::ZERO);
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }
}

/// Words a SQLite error for the user, naming the file.
pub(crate) fn explain(path: &Path, e: &rusqlite::Error) -> StoreError {
    let file = path.display();
    let message = match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => format!(
            "the state database `{file}` is not a readable SQLite database ({e}); \
             move it aside (e.g. `mv {file} {file}.broken`) and run again: a new one is created, \
             and the run folders beside it are kept"
        ),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => format!(
            "the state database `{file}` is locked by another process ({e}); \
             wait for the other cometflow to finish, or set COMETFLOW_STATE_DIR to another folder"
        ),
        Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => format!(
            "cannot write the state database `{file}` ({e}); \
             make it writable or set COMETFLOW_STATE_DIR to a writable folder"
        ),
        _ => format!(
            "the state database `{file}` failed: {e}; if this persists, move the file aside and run again"
        ),
    };
    StoreError(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_len(state: &Path) -> u64 {
        std::fs::metadata(state.join("state.db-wal")).map_or(0, |m| m.len())
    }

    #[test]
    fn a_short_log_outlives_the_connection_and_a_long_one_is_emptied() {
        let state = tempfile::tempdir().unwrap();
        let write = |bytes: usize| {
            let db = Db::open(state.path()).unwrap();
            db.with(|c| {
                c.execute_batch("CREATE TABLE IF NOT EXISTS filler (b BLOB)")?;
                c.execute("INSERT INTO filler VALUES (zeroblob(?1))", [bytes as i64]).map(drop)
            })
            .unwrap();
        };
        write(1000);
        let short = log_len(state.path());
        assert!(short > 0 && short <= LOG_KEPT_AT_CLOSE, "{short}");
        write(2 * LOG_KEPT_AT_CLOSE as usize);
        assert_eq!(log_len(state.path()), 0);
        // Nothing is lost either way.
        let db = Db::open(state.path()).unwrap();
        let rows: i64 = db.with(|c| c.query_row("SELECT count(*) FROM filler", [], |r| r.get(0))).unwrap();
        assert_eq!(rows, 2);
    }
}
