//! The durable job queue's table: enqueue, claim, finish, retry.
//!
//! A job is a row; its state moves `queued -> running -> done`, or back to
//! `queued` with a later `run_at_ms` after a retryable failure, or to `failed`
//! after its last attempt. A job left `running` by a crash (kill -9, power cut)
//! is put back to `queued` by [`requeue_interrupted`] at start, so every job
//! runs to completion at least once; job bodies are idempotent.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::{now, now_ms, spaces::SpaceId, DbResult};

/// A job id (`jobs.id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct JobId(pub i64);

/// A job to add to the queue.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    /// Job kind, e.g. `telegram.update` (see `crate::jobs::Kind`).
    pub kind: &'a str,
    /// JSON payload the job body reads.
    pub payload: serde_json::Value,
    /// When set, a second job with the same key is not added while the first exists.
    pub dedup_key: Option<String>,
    /// Space the job works for (for per-space statistics), if any.
    pub space: Option<SpaceId>,
    /// Attempts before the job is marked failed.
    pub max_attempts: i64,
}

/// A claimed job, ready to run.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    /// Row id.
    pub id: JobId,
    /// Kind string.
    pub kind: String,
    /// JSON payload.
    pub payload: serde_json::Value,
    /// This attempt's number, starting at 1.
    pub attempt: i64,
    /// Last attempt allowed.
    pub max_attempts: i64,
}

/// Adds a job; returns `None` when a job with the same dedup key already exists.
pub fn enqueue(conn: &Connection, job: &NewJob<'_>) -> DbResult<Option<JobId>> {
    enqueue_at(conn, job, now_ms())
}

/// Adds a job that runs no earlier than `run_at_ms` (Unix milliseconds).
pub fn enqueue_at(conn: &Connection, job: &NewJob<'_>, run_at_ms: i64) -> DbResult<Option<JobId>> {
    let t = now();
    let n = conn.execute(
        "INSERT INTO jobs(kind, payload, dedup_key, space_id, max_attempts, run_at_ms, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
         ON CONFLICT(dedup_key) DO NOTHING",
        params![
            job.kind,
            job.payload.to_string(),
            job.dedup_key,
            job.space.map(|s| s.0),
            job.max_attempts,
            run_at_ms,
            t
        ],
    )?;
    Ok((n == 1).then(|| JobId(conn.last_insert_rowid())))
}

/// Like [`enqueue_at`], but a finished job (`done` or `failed`) with the same
/// dedup key is queued again (a new window of a recurring job, a repair).
/// A queued or running one is left alone. Returns true when a job is now queued.
pub fn enqueue_again(conn: &Connection, job: &NewJob<'_>, run_at_ms: i64) -> DbResult<bool> {
    let t = now();
    let n = conn.execute(
        "INSERT INTO jobs(kind, payload, dedup_key, space_id, max_attempts, run_at_ms, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
         ON CONFLICT(dedup_key) DO UPDATE SET state = 'queued', attempts = 0, payload = excluded.payload,
           run_at_ms = excluded.run_at_ms, last_error = NULL, updated_at = excluded.updated_at
         WHERE jobs.state IN ('done', 'failed')",
        params![
            job.kind,
            job.payload.to_string(),
            job.dedup_key,
            job.space.map(|s| s.0),
            job.max_attempts,
            run_at_ms,
            t
        ],
    )?;
    Ok(n == 1)
}

/// Claims the next due job, marking it `running` and counting the attempt.
pub fn claim_next(conn: &Connection) -> DbResult<Option<ClaimedJob>> {
    claim(conn, None)
}

/// Claims the next due job of one kind (see [`claim_next`]).
pub fn claim_next_of_kind(conn: &Connection, kind: &str) -> DbResult<Option<ClaimedJob>> {
    claim(conn, Some(kind))
}

fn claim(conn: &Connection, kind: Option<&str>) -> DbResult<Option<ClaimedJob>> {
    Ok(conn
        .query_row(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, updated_at = ?2
             WHERE id = (SELECT id FROM jobs WHERE state = 'queued' AND run_at_ms <= ?1
                         AND (?3 IS NULL OR kind = ?3) ORDER BY run_at_ms, id LIMIT 1)
             RETURNING id, kind, payload, attempts, max_attempts",
            params![now_ms(), now(), kind],
            |r| {
                let payload: String = r.get(2)?;
                Ok(ClaimedJob {
                    id: JobId(r.get(0)?),
                    kind: r.get(1)?,
                    payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
                    attempt: r.get(3)?,
                    max_attempts: r.get(4)?,
                })
            },
        )
        .optional()?)
}

/// Milliseconds until the next queued job is due (0 if one is due now), or
/// `None` when the queue is empty.
pub fn next_due_in_ms(conn: &Connection) -> DbResult<Option<i64>> {
    let at: Option<i64> = conn.query_row(
        "SELECT min(run_at_ms) FROM jobs WHERE state = 'queued'",
        [],
        |r| r.get(0),
    )?;
    Ok(at.map(|at| (at - now_ms()).max(0)))
}

/// Marks a job done.
pub fn complete(conn: &Connection, id: JobId) -> DbResult<()> {
    conn.execute(
        "UPDATE jobs SET state = 'done', last_error = NULL, updated_at = ?2 WHERE id = ?1",
        params![id.0, now()],
    )?;
    Ok(())
}

/// Puts a job back in the queue to run again in `delay_ms` without counting
/// the attempt just made (the machine, not the job, was the problem).
pub fn defer(conn: &Connection, id: JobId, delay_ms: i64, error: &str) -> DbResult<()> {
    conn.execute(
        "UPDATE jobs SET state = 'queued', attempts = max(attempts - 1, 0), run_at_ms = ?2, last_error = ?3, updated_at = ?4 WHERE id = ?1",
        params![id.0, now_ms() + delay_ms, error, now()],
    )?;
    Ok(())
}

/// Puts a job back in the queue to run again in `delay_ms`, recording the error.
pub fn retry_later(conn: &Connection, id: JobId, delay_ms: i64, error: &str) -> DbResult<()> {
    conn.execute(
        "UPDATE jobs SET state = 'queued', run_at_ms = ?2, last_error = ?3, updated_at = ?4 WHERE id = ?1",
        params![id.0, now_ms() + delay_ms, error, now()],
    )?;
    Ok(())
}

/// Marks a job finally failed with its error; it stays visible in the UI.
pub fn fail(conn: &Connection, id: JobId, error: &str) -> DbResult<()> {
    conn.execute(
        "UPDATE jobs SET state = 'failed', last_error = ?2, updated_at = ?3 WHERE id = ?1",
        params![id.0, error, now()],
    )?;
    Ok(())
}

/// Returns jobs interrupted while running (crash, kill -9) to the queue.
/// Their attempt is not counted against them. Returns how many.
pub fn requeue_interrupted(conn: &Connection) -> DbResult<usize> {
    Ok(conn.execute(
        "UPDATE jobs SET state = 'queued', attempts = max(attempts - 1, 0), updated_at = ?1
         WHERE state = 'running'",
        [now()],
    )?)
}

/// Puts a failed job back in the queue with fresh attempts (the UI's "retry").
pub fn retry_failed(conn: &Connection, id: JobId) -> DbResult<bool> {
    Ok(conn.execute(
        "UPDATE jobs SET state = 'queued', attempts = 0, run_at_ms = ?2, updated_at = ?3
         WHERE id = ?1 AND state = 'failed'",
        params![id.0, now_ms(), now()],
    )? == 1)
}

/// Job counts by state.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JobCounts {
    /// Waiting (including retries scheduled later).
    pub queued: i64,
    /// Being run now.
    pub running: i64,
    /// Finished.
    pub done: i64,
    /// Gave up after their last attempt.
    pub failed: i64,
}

/// Counts jobs by state, for one space or (with `None`) all.
pub fn counts(conn: &Connection, space: Option<SpaceId>) -> DbResult<JobCounts> {
    let mut st = conn.prepare(
        "SELECT state, count(*) FROM jobs WHERE (?1 IS NULL OR space_id = ?1) GROUP BY state",
    )?;
    let mut c = JobCounts::default();
    let mut rows = st.query([space.map(|s| s.0)])?;
    while let Some(r) = rows.next()? {
        let n: i64 = r.get(1)?;
        match r.get::<_, String>(0)?.as_str() {
            "queued" => c.queued = n,
            "running" => c.running = n,
            "done" => c.done = n,
            _ => c.failed = n,
        }
    }
    Ok(c)
}

/// A failed job as shown in the UI.
#[derive(Debug, Clone, Serialize)]
pub struct FailedJob {
    /// Row id.
    pub id: JobId,
    /// Kind string.
    pub kind: String,
    /// Attempts made.
    pub attempts: i64,
    /// The last error message.
    pub error: String,
    /// Unix seconds of the last attempt.
    pub updated_at: i64,
}

/// The most recent failed jobs of one space (or all), newest first.
pub fn list_failed(
    conn: &Connection,
    space: Option<SpaceId>,
    limit: i64,
) -> DbResult<Vec<FailedJob>> {
    let mut st = conn.prepare(
        "SELECT id, kind, attempts, coalesce(last_error, ''), updated_at FROM jobs
         WHERE state = 'failed' AND (?1 IS NULL OR space_id = ?1) ORDER BY updated_at DESC, id DESC LIMIT ?2",
    )?;
    let rows = st.query_map(params![space.map(|s| s.0), limit], |r| {
        Ok(FailedJob {
            id: JobId(r.get(0)?),
            kind: r.get(1)?,
            attempts: r.get(2)?,
            error: r.get(3)?,
            updated_at: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
