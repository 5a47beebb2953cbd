//! Scheduled posts: a text or an album photo sent to a bound Telegram chat at
//! a date and time given in the space's time zone. Each post is a row and a
//! durable job due at its time (`post.send`), so it survives restarts; a
//! cancelled post's job finds it cancelled and does nothing.

use std::sync::Arc;

use chrono::TimeZone;
use serde_json::{json, Value};

use crate::{
    db::{self, jobs::NewJob, spaces::SpaceScope},
    jobs::JobError,
    App,
};

/// Job kind that sends one post (payload `{"post_id"}`).
pub const SEND_JOB: &str = "post.send";

/// Reads `at` as RFC 3339 (`2026-12-01T09:00:00+01:00`) or as a local time
/// of `tz` (`2026-12-01 09:00`, `2026-12-01T09:00`, as an HTML
/// `datetime-local` field sends it). Returns Unix seconds.
///
/// # Errors
/// A message naming the accepted forms, or a local time that does not exist
/// (skipped by a daylight-saving change).
pub fn parse_time(at: &str, tz: &str) -> Result<i64, String> {
    let at = at.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(at) {
        return Ok(t.timestamp());
    }
    let tz: chrono_tz::Tz = tz
        .parse()
        .map_err(|_| format!("the space's time zone {tz:?} is unknown"))?;
    let naive = [
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
    ]
    .iter()
    .find_map(|f| chrono::NaiveDateTime::parse_from_str(at, f).ok())
    .ok_or_else(|| {
        format!("{at:?}: expected YYYY-MM-DD HH:MM (the space's time zone) or RFC 3339")
    })?;
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.timestamp())
        .ok_or_else(|| format!("{at} does not exist in {tz} (a daylight-saving change)"))
}

/// Schedules a post; returns its id.
///
/// # Errors
/// [`db::DbError::Invalid`] for an unbound chat, an item that is not a photo
/// of the space, nothing to send, or a time in the past.
pub async fn schedule(
    app: &Arc<App>,
    scope: SpaceScope,
    chat_id: i64,
    text: String,
    media_id: Option<i64>,
    run_at: i64,
) -> Result<i64, db::DbError> {
    if run_at < db::now() - 60 {
        return Err(db::DbError::Invalid("that time is in the past".into()));
    }
    let space = scope.id();
    let id = app
        .db
        .write(move |c| {
            let id = db::posts::create(c, &scope, chat_id, &text, media_id, run_at)?;
            db::jobs::enqueue_at(
                c,
                &NewJob {
                    kind: SEND_JOB,
                    payload: json!({ "post_id": id }),
                    dedup_key: Some(format!("post:{id}")),
                    space: Some(space),
                    max_attempts: 6,
                },
                run_at * 1000,
            )?;
            Ok(id)
        })
        .await?;
    app.jobs_added.notify_waiters();
    Ok(id)
}

/// Job `post.send`.
pub async fn send(app: &Arc<App>, payload: &Value) -> Result<(), JobError> {
    use teloxide::{payloads::SendPhotoSetters, prelude::Requester};
    let id = payload["post_id"]
        .as_i64()
        .ok_or_else(|| JobError::Permanent("job payload has no post_id".into()))?;
    let (post, sha) = app
        .db
        .run(move |c| {
            let post = db::posts::get_unscoped(c, id)?;
            let sha = match post.media_id {
                Some(m) => {
                    let scope = db::spaces::operator_scope(db::spaces::get(c, post.space_id)?);
                    db::media::get(c, &scope, db::media::MediaId(m))
                        .ok()
                        .and_then(|i| i.sha256)
                }
                None => None,
            };
            Ok((post, sha))
        })
        .await?;
    if post.state != "scheduled" {
        return Ok(());
    }
    let tg = app.telegram.as_ref().ok_or_else(|| {
        JobError::Permanent("no Telegram token is configured (APPLIANCE_TELEGRAM_TOKEN)".into())
    })?;
    app.outbound.telegram(post.chat_id).await;
    let chat = teloxide::types::ChatId(post.chat_id);
    let sent = match sha.as_deref().and_then(crate::vault::Sha256Hex::parse) {
        Some(sha) => {
            let copy = app
                .vault
                .local_copy(&sha)
                .await
                .map_err(|e| JobError::retry(format!("reading the photo: {e}")))?;
            let mut req = tg.api.send_photo(
                chat,
                teloxide::types::InputFile::file(copy.path().to_path_buf()),
            );
            if !post.text.is_empty() {
                req = req.caption(post.text.clone());
            }
            let sent = req.await.map(drop);
            drop(copy);
            sent
        }
        None if post.media_id.is_some() => {
            let error = "the photo was deleted from the album".to_string();
            app.db
                .run(move |c| db::posts::set_state(c, id, "failed", Some(&error)))
                .await?;
            return Err(JobError::Permanent("the photo was deleted".into()));
        }
        None => tg.api.send_message(chat, post.text.clone()).await.map(drop),
    };
    match sent {
        Ok(()) => {
            app.db
                .run(move |c| db::posts::set_state(c, id, "sent", None))
                .await?;
            Ok(())
        }
        Err(teloxide::RequestError::RetryAfter(s)) => Err(JobError::Retry {
            error: "Telegram asks to wait (rate limit)".into(),
            after: Some(s.duration()),
        }),
        Err(e @ (teloxide::RequestError::Network(_) | teloxide::RequestError::Io(_))) => {
            Err(JobError::retry(crate::telegram::explain(&e)))
        }
        Err(e) => {
            let error = crate::telegram::explain(&e);
            let stored = error.clone();
            app.db
                .run(move |c| db::posts::set_state(c, id, "failed", Some(&stored)))
                .await?;
            Err(JobError::Permanent(error))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_follow_the_space_time_zone() {
        let utc = parse_time("2026-12-01 09:00", "UTC").unwrap();
        let paris = parse_time("2026-12-01T09:00", "Europe/Paris").unwrap();
        assert_eq!(utc - paris, 3600, "Paris is UTC+1 in December");
        assert_eq!(
            parse_time("2026-12-01T09:00:00+01:00", "UTC").unwrap(),
            paris
        );
        assert!(parse_time("2026-03-29 02:30", "Europe/Paris")
            .unwrap_err()
            .contains("daylight"));
        assert!(parse_time("tomorrow", "UTC").unwrap_err().contains("YYYY"));
    }
}
