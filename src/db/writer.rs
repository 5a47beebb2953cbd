//! Group commit: one thread, one connection, one transaction per batch.
//!
//! A write is queued as a [`Job`]; the writer takes the first queued job and
//! every job queued behind it (up to [`MAX_BATCH`]), opens `BEGIN IMMEDIATE`,
//! runs each job between `SAVEPOINT` and `RELEASE` (a failed job is rolled
//! back to its savepoint alone), commits once, and only then answers every
//! caller. While one batch is on disk the next one gathers, so throughput
//! grows with load and an idle system still commits each write at once.

use std::panic::{catch_unwind, AssertUnwindSafe};

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::{DbError, DbResult};

/// Most jobs in one transaction: bounds the time a batch holds the write lock.
const MAX_BATCH: usize = 512;

/// Queued writes waiting for the writer; callers wait (async) beyond this.
const QUEUE: usize = 4096;

/// One queued write, seen by the writer without its result type.
trait Job: Send {
    /// Runs the write; true when it succeeded (its savepoint is kept).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller once the batch's fate is known.
    fn finish(self: Box<Self>, commit: Result<(), String>);
}

struct Pending<T, F> {
    work: Option<F>,
    result: Option<DbResult<T>>,
    done: oneshot::Sender<DbResult<T>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> DbResult<T> + Send + 'static,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let result = catch_unwind(AssertUnwindSafe(|| work(conn)))
            .unwrap_or_else(|_| Err(DbError::Task("a database write panicked".into())));
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), String>) {
        let out = match (self.result, commit) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(v)), Ok(())) => Ok(v),
            (_, Err(e)) => Err(DbError::Busy(format!("the write was not committed: {e}"))),
            (None, Ok(())) => Err(DbError::Task("the write did not run".into())),
        };
        let _ = self.done.send(out);
    }
}

/// Handle to the writer thread; cloning it shares the thread. The thread ends
/// (and gives its connection back to the pool) when the last handle drops.
#[derive(Clone)]
pub(super) struct Writer {
    queue: mpsc::Sender<Box<dyn Job>>,
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub(super) fn start(conn: r2d2::PooledConnection<SqliteConnectionManager>) -> DbResult<Self> {
        let (queue, rx) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("db-writer".into())
            .spawn(move || run(&conn, rx))
            .map_err(|e| DbError::Task(format!("cannot start the database writer: {e}")))?;
        Ok(Self { queue })
    }

    /// Queues `work` and waits for its committed result.
    pub(super) async fn submit<T, F>(&self, work: F) -> DbResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> DbResult<T> + Send + 'static,
    {
        let (done, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Pending {
            work: Some(work),
            result: None,
            done,
        });
        self.queue
            .send(job)
            .await
            .map_err(|_| DbError::Task("the database writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| DbError::Task("the database writer has stopped".into()))?
    }
}

fn run(conn: &Connection, mut rx: mpsc::Receiver<Box<dyn Job>>) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(64);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let outcome = commit_batch(conn, &mut batch);
        for job in batch.drain(..) {
            job.finish(outcome.clone());
        }
    }
}

fn commit_batch(conn: &Connection, batch: &mut [Box<dyn Job>]) -> Result<(), String> {
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| e.to_string())?;
    for job in batch.iter_mut() {
        let step = conn.execute_batch("SAVEPOINT job").and_then(|()| {
            if job.run(conn) {
                conn.execute_batch("RELEASE job")
            } else {
                conn.execute_batch("ROLLBACK TO job; RELEASE job")
            }
        });
        if let Err(e) = step {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e.to_string());
        }
    }
    conn.execute_batch("COMMIT").map_err(|e| {
        let _ = conn.execute_batch("ROLLBACK");
        e.to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::super::Db;
    use super::*;

    fn open() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("db.sqlite")).unwrap();
        (dir, db)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_all_commit_and_a_failure_stays_alone() {
        let (_dir, db) = open();
        let mut tasks = Vec::new();
        for i in 0..200 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                db.write(move |c| {
                    c.execute(
                        "INSERT INTO kv(key, value) VALUES (?1, 'v')",
                        [format!("k{i}")],
                    )?;
                    if i % 50 == 7 {
                        // Written, then refused: must leave nothing behind.
                        return Err(DbError::Invalid(format!("refused {i}")));
                    }
                    Ok(i)
                })
                .await
            }));
        }
        let mut failed = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => {}
                Err(DbError::Invalid(m)) => failed.push(m),
                Err(e) => panic!("unexpected error {e}"),
            }
        }
        assert_eq!(failed.len(), 4, "{failed:?}");
        let c = db.conn().unwrap();
        let n: i64 = c
            .query_row("SELECT count(*) FROM kv WHERE key LIKE 'k%'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 196);
        assert!(super::super::kv_get(&c, "k7").unwrap().is_none());
        assert!(super::super::kv_get(&c, "k8").unwrap().is_some());
    }

    #[tokio::test]
    async fn a_write_that_opens_its_own_transaction_fails_cleanly() {
        let (_dir, db) = open();
        let err = db
            .write(|c| Ok(c.execute_batch("BEGIN")?))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("transaction"), "{err}");
        // The writer survives and commits the next write.
        db.write(|c| super::super::kv_set(c, "after", "1"))
            .await
            .unwrap();
        let c = db.conn().unwrap();
        assert_eq!(
            super::super::kv_get(&c, "after").unwrap().as_deref(),
            Some("1")
        );
    }
}
