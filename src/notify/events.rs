//! The events that do not come from a single change: `media.added` batched
//! per space, `stats.daily`, and `system.status`.

use std::sync::Arc;

use serde_json::{json, Value};

use super::emit;
use crate::{
    db::{self, jobs::NewJob, spaces::SpaceId},
    jobs::JobError,
    App,
};

/// Job kind that sends one `media.added` for what a space received in the
/// last minute (payload `{"space_id"}`).
pub const MEDIA_BATCH_JOB: &str = "notify.media_batch";

/// Call in the transaction that stored a media item of `space`: queues the
/// space's batch (one per `window_s` seconds) when an integration listens.
pub fn media_added(conn: &rusqlite::Connection, space: SpaceId, window_s: i64) -> db::DbResult<()> {
    if db::integrations::subscribers(conn, Some(space), "media.added")?.is_empty() {
        return Ok(());
    }
    db::jobs::enqueue_again(
        conn,
        &NewJob {
            kind: MEDIA_BATCH_JOB,
            payload: json!({ "space_id": space.0 }),
            dedup_key: Some(format!("media-batch:{}", space.0)),
            space: Some(space),
            max_attempts: 5,
        },
        db::now_ms() + window_s * 1000,
    )?;
    Ok(())
}

fn plural(n: i64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Job `notify.media_batch`: one `media.added` for the media stored since the last one.
pub async fn media_batch(app: &Arc<App>, payload: &Value) -> Result<(), JobError> {
    let space = payload
        .get("space_id")
        .and_then(Value::as_i64)
        .map(SpaceId)
        .ok_or_else(|| JobError::Permanent("job payload has no space_id".into()))?;
    let queued = app
        .db
        .write(move |c| {
            let key = format!("media_batch_last:{}", space.0);
            let last: i64 = db::kv_get(c, &key)?
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let batch = db::media::stored_since(c, space, last)?;
            let Some(max_id) = batch.iter().map(|m| m.0).max() else {
                return Ok(0);
            };
            db::kv_set(c, &key, &max_id.to_string())?;
            let photos = batch.iter().filter(|m| m.1 == "photo").count() as i64;
            let total = batch.len() as i64;
            let mut senders: Vec<String> = Vec::new();
            for (_, _, sender) in &batch {
                if let Some(s) = sender {
                    if !senders.contains(s) {
                        senders.push(s.clone());
                    }
                }
            }
            let what = if photos == total {
                plural(total, "new photo", "new photos")
            } else {
                plural(total, "new item", "new items")
            };
            let text = match senders.as_slice() {
                [] => what,
                [one] => format!("{what} from {one}"),
                many => format!("{what} from {}", many.join(", ")),
            };
            let ids: Vec<i64> = batch.iter().map(|m| m.0).collect();
            emit(
                c,
                Some(space),
                "media.added",
                json!({ "space_id": space.0, "count": total, "photos": photos, "from": senders, "media_ids": ids }),
                &text,
            )
        })
        .await?;
    if queued > 0 {
        app.jobs_added.notify_waiters();
    }
    Ok(())
}

/// Records `system.status` (`started`, `stopping`, `disk_low`) for every
/// subscribed integration.
pub async fn system_status(app: &Arc<App>, status: &'static str, detail: String) {
    let text = match status {
        "started" => "appliance started".to_string(),
        "stopping" => "appliance is stopping".to_string(),
        _ => format!("appliance: {detail}"),
    };
    match app
        .db
        .write(move |c| {
            emit(
                c,
                None,
                "system.status",
                json!({ "status": status, "detail": detail }),
                &text,
            )
        })
        .await
    {
        Ok(n) if n > 0 => app.jobs_added.notify_waiters(),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot record system.status"),
    }
}

/// Free space on the data directory's file system below which `disk_low` is sent, bytes.
pub const DISK_LOW_BYTES: u64 = 1 << 30;

/// Free bytes on the file system holding `path`.
pub fn free_bytes(path: &std::path::Path) -> Option<u64> {
    let s = rustix::fs::statvfs(path).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

/// Once an hour: `disk_low` when free space falls under [`DISK_LOW_BYTES`]
/// (once until it recovers), and `stats.daily` once per UTC day.
pub async fn run(app: Arc<App>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut low = false;
    loop {
        if let Some(free) = free_bytes(&app.config.data_dir) {
            if free < DISK_LOW_BYTES && !low {
                system_status(
                    &app,
                    "disk_low",
                    format!(
                        "disk almost full: {} MB free in the data directory",
                        free / 1_000_000
                    ),
                )
                .await;
            }
            low = free < DISK_LOW_BYTES;
        }
        if let Err(e) = daily_stats(&app, db::now()).await {
            tracing::warn!(error = %e, "cannot record stats.daily");
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
            _ = shutdown.changed() => break,
        }
    }
}

/// Records `stats.daily` for every space with a subscriber, once per UTC day
/// from the day after the first start
/// (`now`, Unix seconds, is a parameter for tests). Returns the deliveries queued.
pub async fn daily_stats(app: &Arc<App>, now: i64) -> Result<usize, db::DbError> {
    let day = now.div_euclid(86_400);
    let queued = app
        .db
        .write(move |c| {
            let last: i64 = db::kv_get(c, "stats_daily_day")?
                .and_then(|v| v.parse().ok())
                .unwrap_or(-1);
            if last >= day {
                return Ok(0);
            }
            db::kv_set(c, "stats_daily_day", &day.to_string())?;
            if last < 0 {
                // First start: the first report covers a whole day, tomorrow.
                return Ok(0);
            }
            let mut n = 0;
            for (space, name, media, messages) in db::media::daily_counts(c, now - 86_400)? {
                let text = format!(
                    "{name}: {} and {} in the last 24 hours",
                    plural(media, "new media item", "new media items"),
                    plural(messages, "message", "messages")
                );
                n += emit(
                    c,
                    Some(space),
                    "stats.daily",
                    json!({ "space_id": space.0, "media": media, "messages": messages }),
                    &text,
                )?;
            }
            Ok(n)
        })
        .await?;
    if queued > 0 {
        app.jobs_added.notify_waiters();
    }
    Ok(queued)
}
