//! Long polling with `getUpdates` (<https://core.telegram.org/bots/api#getupdates>).
//!
//! Each batch is committed (raw updates, their jobs, and the next offset) in
//! one transaction before the next request, and only that next request, with
//! `offset = last update_id + 1`, tells Telegram to forget the batch. A crash
//! between the two re-receives the batch, and duplicates are ignored by
//! `update_id`. Errors back off (1 s doubling to 60 s); a 429 waits exactly
//! `retry_after`.

use std::{sync::Arc, time::Duration};

use teloxide::RequestError;
use tokio::sync::watch;

use super::{GetUpdatesRaw, ALLOWED_UPDATES};
use crate::{
    db::{self, telegram::RawUpdate},
    App,
};

const OFFSET_KEY: &str = "telegram.offset";

/// Polls until `shutdown` turns true.
pub async fn run(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let Some(tg) = app.telegram.clone() else {
        return;
    };
    let mut offset: Option<i64> = app
        .db
        .run(|c| db::kv_get(c, OFFSET_KEY))
        .await
        .ok()
        .flatten()
        .and_then(|s| s.parse().ok());
    let mut failures: u32 = 0;
    tracing::info!(?offset, "Telegram long polling started");
    loop {
        if *shutdown.borrow() {
            break;
        }
        let request = GetUpdatesRaw {
            offset,
            limit: 100,
            timeout: app.config.telegram_poll_timeout_s,
            allowed_updates: ALLOWED_UPDATES,
        };
        let result = tokio::select! {
            r = request.send(&tg.api) => r,
            _ = shutdown.changed() => break,
        };
        let wait = match result {
            Ok(values) if values.is_empty() => {
                failures = 0;
                continue;
            }
            Ok(values) => match store(&app, values).await {
                Ok(Some(next)) => {
                    failures = 0;
                    offset = Some(next);
                    continue;
                }
                Ok(None) => {
                    failures = 0;
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot store updates; they will be fetched again");
                    failures += 1;
                    backoff(failures)
                }
            },
            Err(RequestError::RetryAfter(s)) => s.duration(),
            Err(e) => {
                failures += 1;
                let msg = super::explain(&e);
                if msg.contains("webhook") || msg.contains("Conflict") {
                    tracing::error!(
                        error = %msg,
                        "getUpdates refused: a webhook is set for this bot or another instance is polling; \
                         run `appliance telegram delete-webhook` or set APPLIANCE_TELEGRAM_MODE=webhook"
                    );
                } else {
                    tracing::warn!(error = %msg, "getUpdates failed");
                }
                backoff(failures)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => break,
        }
    }
    tracing::info!("Telegram long polling stopped");
}

fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.min(6)).min(Duration::from_secs(60))
}

/// Commits a batch; returns the next offset.
async fn store(app: &Arc<App>, values: Vec<serde_json::Value>) -> Result<Option<i64>, db::DbError> {
    let updates: Vec<RawUpdate> = values
        .iter()
        .filter_map(|v| {
            Some(RawUpdate {
                update_id: v.get("update_id")?.as_i64()?,
                chat_id: super::chat_id_of(v),
                raw: v.to_string(),
            })
        })
        .collect();
    let next = updates.iter().map(|u| u.update_id).max().map(|m| m + 1);
    let new = app
        .db
        .run(move |c| {
            let tx = db::write_tx(c)?;
            let n = db::telegram::store_updates(&tx, &updates, "polling")?;
            if let Some(next) = next {
                db::kv_set(&tx, OFFSET_KEY, &next.to_string())?;
            }
            tx.commit()?;
            Ok(n)
        })
        .await?;
    tracing::debug!(received = values.len(), new, "stored a getUpdates batch");
    metrics::counter!("appliance_updates_received_total", "via" => "polling").increment(new as u64);
    if new > 0 {
        app.jobs_added.notify_waiters();
    }
    Ok(next)
}
