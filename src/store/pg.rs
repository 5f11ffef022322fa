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

    /// Waits for `f` from synchronous code, inside or outside a runtime.
    pub fn block<F>(&self, f: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        use tokio::runtime::{Handle, RuntimeFlavor};
        match Handle::try_current().map(|h| h.runtime_flavor()) {
            Err(_) => self.handle().block_on(f),
            Ok(RuntimeFlavor::CurrentThread) => {
                // A current-thread runtime cannot hand its only thread over: wait on another.
                std::thread::scope(|s| s.spawn(|| self.handle().block_on(f)).join())
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            }
            Ok(_) => tokio::task::block_in_place(|| self.handle().block_on(f)),
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
    //! Applies the store's migrations (`store::migrations`, PostgreSQL's dialect).
    //! `schema_version` holds how many have been applied; an advisory lock keeps two
    //! processes from migrating at once.

    use super::{Pg, StoreError};

    use crate::store::migrations::MIGRATIONS;

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
                for (i, m) in MIGRATIONS.iter().enumerate().skip(have as usize) {
                    c.batch_execute(m.postgres).await?;
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
