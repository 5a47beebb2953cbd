//! The durable job runner: workers that claim jobs from SQLite and run them.
//!
//! Owns scheduling only (claim, run, finish, retry with exponential backoff,
//! give up); what a job does lives in [`crate::ingest`]. Workers sleep until
//! the next job is due, a [`tokio::sync::Notify`] wakes them when a job is
//! added by this process, and they look again at least every 2 s for jobs
//! added by another process (the CLI). No busy loop.

use std::{sync::Arc, time::Duration};

use rand::Rng;
use tokio::sync::watch;

use crate::{
    db::{self, jobs::ClaimedJob},
    App,
};

/// The kinds of jobs, by their stored name.
pub mod kind {
    /// Parse a stored Telegram update into messages and media (payload `{"update_id"}`).
    pub const TELEGRAM_UPDATE: &str = crate::db::telegram::UPDATE_JOB;
    /// Download one media item into the vault (payload `{"media_id"}`).
    pub const DOWNLOAD: &str = "media.download";
    /// Read metadata and render thumbnails of one blob (payload `{"sha256"}`).
    pub const THUMBNAIL: &str = "blob.thumbnail";
    /// Move one blob to the remote backend (payload `{"sha256"}`); only with `s3_bucket`.
    pub const UPLOAD: &str = "blob.upload";
}

/// How a job attempt ended badly.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth trying again later; `after` overrides the backoff (e.g. Telegram's `retry_after`).
    #[error("{error}")]
    Retry {
        /// What went wrong.
        error: String,
        /// Wait at least this long.
        after: Option<Duration>,
    },
    /// Will never succeed (oversize file, rejected content): fail now.
    #[error("{0}")]
    Permanent(String),
    /// Blocked by the machine, not by the job (the disk is full): try again
    /// after `after` without spending an attempt, however long it lasts.
    #[error("{error}")]
    Wait {
        /// What blocks it.
        error: String,
        /// When to look again.
        after: Duration,
    },
}

impl JobError {
    /// A retryable error with the default backoff.
    pub fn retry(e: impl std::fmt::Display) -> Self {
        JobError::Retry {
            error: e.to_string(),
            after: None,
        }
    }
}

impl From<db::DbError> for JobError {
    fn from(e: db::DbError) -> Self {
        JobError::retry(e)
    }
}

/// Delay before attempt `attempt + 1`: 2 s doubling per attempt, at most one hour, plus up to 25 % jitter.
pub fn backoff(attempt: i64) -> Duration {
    let base = 2_000u64.saturating_mul(1 << attempt.clamp(1, 12).saturating_sub(1) as u32);
    let base = base.min(3_600_000);
    let jitter = rand::rng().random_range(0..=base / 4);
    Duration::from_millis(base + jitter)
}

/// Starts `n` workers; they stop when `shutdown` turns true, after finishing their current job.
pub fn spawn_workers(
    app: Arc<App>,
    n: usize,
    shutdown: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..n)
        .map(|i| tokio::spawn(worker(app.clone(), i, shutdown.clone())))
        .collect()
}

async fn worker(app: Arc<App>, index: usize, mut shutdown: watch::Receiver<bool>) {
    tracing::debug!(worker = index, "job worker started");
    loop {
        if *shutdown.borrow() {
            break;
        }
        match app.db.run(|c| db::jobs::claim_next(c)).await {
            Ok(Some(job)) => run_one(&app, job).await,
            Ok(None) => {
                let due = app
                    .db
                    .run(|c| db::jobs::next_due_in_ms(c))
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or(i64::MAX);
                let wait = Duration::from_millis(due.clamp(10, 2_000) as u64);
                tokio::select! {
                    _ = app.jobs_added.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim a job; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    tracing::debug!(worker = index, "job worker stopped");
}

/// Runs every due job of one kind in this process, until none is left
/// (used by imports to make thumbnails before they return). Returns how many ran.
pub async fn drain(app: &Arc<App>, kind: &'static str) -> usize {
    let mut n = 0;
    while let Ok(Some(job)) = app
        .db
        .run(move |c| db::jobs::claim_next_of_kind(c, kind))
        .await
    {
        run_one(app, job).await;
        n += 1;
    }
    n
}

async fn run_one(app: &Arc<App>, job: ClaimedJob) {
    let span = tracing::info_span!("job", id = job.id.0, kind = %job.kind, attempt = job.attempt);
    let _enter = span.enter();
    let result = match job.kind.as_str() {
        kind::TELEGRAM_UPDATE => crate::ingest::process_update(app, &job.payload).await,
        kind::DOWNLOAD => crate::ingest::download(app, &job.payload).await,
        kind::THUMBNAIL => crate::ingest::thumbnail(app, &job.payload).await,
        kind::UPLOAD => crate::ingest::upload(app, &job.payload).await,
        crate::inbox::DELIVER_JOB => crate::inbox::deliver(app, &job.payload).await,
        crate::inbox::email::DIGEST_JOB => crate::inbox::email::send(app, &job.payload).await,
        crate::meta::PROCESS_JOB => crate::meta::process(app, &job.payload).await,
        crate::meta::MEDIA_JOB => crate::meta::download(app, &job.payload).await,
        crate::posts::SEND_JOB => crate::posts::send(app, &job.payload).await,
        crate::notify::DELIVER_JOB => crate::notify::deliver(app, &job.payload).await,
        crate::notify::events::MEDIA_BATCH_JOB => {
            crate::notify::events::media_batch(app, &job.payload).await
        }
        other => Err(JobError::Permanent(format!("unknown job kind {other:?}"))),
    };
    let id = job.id;
    let finish = match result {
        Ok(()) => app.db.run(move |c| db::jobs::complete(c, id)).await,
        Err(JobError::Wait { error, after }) => {
            tracing::warn!(%error, "job waits");
            app.db
                .run(move |c| db::jobs::defer(c, id, after.as_millis() as i64, &error))
                .await
        }
        Err(JobError::Retry { error, after }) if job.attempt < job.max_attempts => {
            let delay =
                after.map_or_else(|| backoff(job.attempt), |a| a + Duration::from_millis(250));
            tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "job failed, will retry");
            app.db
                .run(move |c| db::jobs::retry_later(c, id, delay.as_millis() as i64, &error))
                .await
        }
        Err(e) => {
            let error = e.to_string();
            tracing::error!(%error, "job failed for good");
            crate::ingest::give_up(app, &job, &error).await;
            app.db.run(move |c| db::jobs::fail(c, id, &error)).await
        }
    };
    if let Err(e) = finish {
        // The job stays 'running' and is re-queued at next start: it runs again (jobs are idempotent).
        tracing::error!(error = %e, "cannot record the job's outcome");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let a = backoff(1).as_millis();
        let b = backoff(4).as_millis();
        assert!((2_000..=2_500).contains(&a), "{a}");
        assert!((16_000..=20_000).contains(&b), "{b}");
        assert!(backoff(40).as_millis() <= 4_500_000);
    }
}
