//! The SQLite store: connection pool, migrations, and typed queries.
//!
//! All SQL of the application lives under this module, as typed functions
//! taking a `&Connection` (or `&Transaction`). The database is opened in WAL
//! mode with `synchronous=FULL`, so a transaction that has committed survives
//! a power cut: this is what lets a webhook answer 200 right after a commit.
//! Blocking calls are moved off the async runtime in one place, [`Db::run`]
//! (at most as many at once as the pool has connections, so a burst of
//! requests never grows tokio's blocking pool). Hot-path writes go through
//! [`Db::write`], a group commit: one writer thread runs every write queued
//! while the previous commit was on disk in one transaction, each in its own
//! savepoint, so 1,000 writes need a handful of fsyncs instead of 1,000.
//!
//! Space isolation is enforced with [`spaces::SpaceScope`]: every query that
//! reads a space's content takes a scope, and a scope can only be obtained by
//! checking membership (or by the local operator through the CLI).

pub mod autoreply;
pub mod collections;
pub mod inbox;
pub mod integrations;
pub mod jobs;
pub mod media;
pub mod posts;
pub mod search;
pub mod spaces;
pub mod telegram;
pub mod users;

mod writer;

use std::{path::Path, sync::Arc, time::Duration};

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OptionalExtension};
use rusqlite_migration::{Migrations, M};

/// The pool type used everywhere.
pub type Pool = r2d2::Pool<SqliteConnectionManager>;

/// Errors of the database layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The row asked for does not exist (or is outside the caller's scope).
    #[error("not found")]
    NotFound,
    /// A uniqueness or state conflict the caller can fix.
    #[error("{0}")]
    Conflict(String),
    /// The caller is a member but their role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// Input rejected by a check (bad slug, unknown role...).
    #[error("{0}")]
    Invalid(String),
    /// The database is locked or the pool exhausted for too long.
    #[error("database busy: {0}")]
    Busy(String),
    /// Any other SQLite error.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Schema migration failed, or the database is newer than this binary.
    #[error("database schema: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    /// The blocking task panicked or was cancelled.
    #[error("database task: {0}")]
    Task(String),
}

impl From<r2d2::Error> for DbError {
    fn from(e: r2d2::Error) -> Self {
        DbError::Busy(e.to_string())
    }
}

/// Result alias of the database layer.
pub type DbResult<T> = Result<T, DbError>;

/// The migrations, embedded from `migrations/NNNN_name.sql`, applied in order.
fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../../migrations/0001_init.sql")),
        M::up(include_str!("../../migrations/0002_integrations.sql")),
        M::up(include_str!("../../migrations/0003_album_index.sql")),
        M::up(include_str!("../../migrations/0004_collections.sql")),
    ])
}

/// Handle to the database: a cloneable pool plus the blocking-call helper.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    permits: Arc<tokio::sync::Semaphore>,
    writer: writer::Writer,
}

/// Connections of the pool for [`Db::run`] and [`Db::conn`]; the group-commit
/// writer holds one more of its own.
const POOL_SIZE: u32 = 6;

impl Db {
    /// Opens (creating if needed) `path`, sets the durability pragmas on every
    /// connection and applies pending migrations in one transaction each.
    ///
    /// # Errors
    /// [`DbError::Migration`] when the database was written by a newer binary
    /// (migrations only run forward) or a migration fails.
    pub fn open(path: &Path) -> DbResult<Self> {
        let manager = SqliteConnectionManager::file(path).with_init(|c| {
            // Room for the hot paths' statements (rusqlite keeps 16 by default).
            c.set_prepared_statement_cache_capacity(64);
            c.execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = FULL;
                 PRAGMA foreign_keys = ON;
                 PRAGMA busy_timeout = 10000;",
            )
        });
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE + 1)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(15))
            .build(manager)?;
        let mut conn = pool.get()?;
        migrations().to_latest(&mut conn)?;
        Ok(Self {
            writer: writer::Writer::start(conn)?,
            pool,
            permits: Arc::new(tokio::sync::Semaphore::new(POOL_SIZE as usize)),
        })
    }

    /// A pooled connection, for blocking code (CLI, jobs already on a blocking thread).
    pub fn conn(&self) -> DbResult<r2d2::PooledConnection<SqliteConnectionManager>> {
        Ok(self.pool.get()?)
    }

    /// Runs `f` with a connection on tokio's blocking pool.
    pub async fn run<T, F>(&self, f: F) -> DbResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> DbResult<T> + Send + 'static,
    {
        let pool = self.pool.clone();
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| DbError::Task(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            f(&mut conn)
        })
        .await
        .map_err(|e| DbError::Task(e.to_string()))?
    }
}

impl Db {
    /// Runs `f` inside the next group commit and returns its result once that
    /// transaction is durable (committed with `synchronous=FULL`).
    ///
    /// `f` runs on the writer thread, inside a transaction already open: it
    /// must not begin or commit one itself. When `f` fails, only its own
    /// changes are rolled back (a savepoint) and the others of the batch
    /// commit. Keep `f` short: it delays the writes queued behind it.
    ///
    /// # Errors
    /// `f`'s own error; [`DbError::Busy`] when the batch could not commit
    /// (its changes are then all rolled back); [`DbError::Task`] when the
    /// writer has stopped.
    pub async fn write<T, F>(&self, f: F) -> DbResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> DbResult<T> + Send + 'static,
    {
        self.writer.submit(f).await
    }
}

/// Starts a write transaction (`BEGIN IMMEDIATE`): it takes the write lock
/// at once, waiting up to the busy timeout, instead of failing later when a
/// read snapshot cannot be upgraded.
pub fn write_tx(conn: &mut Connection) -> DbResult<rusqlite::Transaction<'_>> {
    Ok(conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?)
}

/// Checkpoints the WAL into the database file every `every`, off the request
/// path, until shutdown. SQLite would otherwise checkpoint inside whichever
/// commit crosses 1,000 WAL pages, a latency spike for that request. PASSIVE
/// never blocks writers; durability is the WAL's either way.
pub async fn checkpoint_loop(
    db: Db,
    every: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => break,
        }
        if let Err(e) = db
            .run(|c| Ok(c.execute_batch("PRAGMA wal_checkpoint(PASSIVE)")?))
            .await
        {
            tracing::debug!(error = %e, "background checkpoint skipped");
        }
    }
}

/// Current time in Unix seconds.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Current time in Unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Reads a value of the `kv` table.
pub fn kv_get(conn: &Connection, key: &str) -> DbResult<Option<String>> {
    Ok(conn
        .query_row("SELECT value FROM kv WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

/// Writes a value of the `kv` table.
pub fn kv_set(conn: &Connection, key: &str, value: &str) -> DbResult<()> {
    conn.execute(
        "INSERT INTO kv(key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [key, value],
    )?;
    Ok(())
}

/// Removes a value of the `kv` table.
pub fn kv_delete(conn: &Connection, key: &str) -> DbResult<()> {
    conn.execute("DELETE FROM kv WHERE key = ?1", [key])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        migrations().validate().unwrap();
    }

    #[test]
    fn refuses_a_database_newer_than_the_binary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        Db::open(&path).unwrap();
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        let err = Db::open(&path).err().expect("must refuse").to_string();
        assert!(err.contains("schema"), "{err}");
    }
}
