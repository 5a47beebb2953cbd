//! The ingestion pipeline's job bodies: a stored update becomes messages and
//! media items; a media item is downloaded into the vault; a blob gets its
//! metadata and thumbnails.
//!
//! Every body is idempotent (a job interrupted by kill -9 runs again from the
//! start) and does its database writes in one transaction, so a crash leaves
//! either the state before the job or the state after it. Nothing is
//! downloaded from a chat that is not bound to a space.

use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::Value;
use teloxide::{net::Download, prelude::Requester, types::FileId, RequestError};

use crate::{
    db::{
        self,
        jobs::{ClaimedJob, NewJob},
        media::{Attached, MediaId, MediaKind, NewMedia, NewMessage},
    },
    imaging,
    jobs::{kind, JobError},
    telegram::{self, Incoming},
    vault::{Expect, Sha256Hex, ThumbSize, VaultError},
    App,
};

/// Telegram's download limit for bots on the cloud Bot API, bytes.
pub const CLOUD_BOT_API_LIMIT: i64 = 20 * 1024 * 1024;

fn payload_i64(p: &Value, key: &str) -> Result<i64, JobError> {
    p.get(key)
        .and_then(Value::as_i64)
        .ok_or_else(|| JobError::Permanent(format!("job payload has no integer {key:?}")))
}

/// Job `telegram.update`: reads one stored update. A message from a bound
/// chat is stored and its media queued for download; a message from an
/// unbound chat marks the chat pending and the update `deferred`; `/link CODE`
/// binds the chat; other update kinds are kept raw and marked `ignored`.
pub async fn process_update(app: &Arc<App>, payload: &Value) -> Result<(), JobError> {
    let update_id = payload_i64(payload, "update_id")?;
    let raw = app
        .db
        .run(move |c| db::telegram::update_raw(c, update_id))
        .await?
        .ok_or_else(|| JobError::Permanent(format!("update {update_id} is not stored")))?;
    let incoming = match telegram::parse_update(&raw) {
        Ok((_, i)) => i,
        Err(e) => {
            app.db
                .run(move |c| {
                    db::telegram::set_update_state(c, update_id, "ignored", None, Some(&e))
                })
                .await?;
            return Ok(());
        }
    };
    let m = match incoming {
        Incoming::Message(m) => m,
        Incoming::Other(kind) => {
            let note = format!("{kind}: not ingested");
            app.db
                .run(move |c| {
                    db::telegram::set_update_state(c, update_id, "ignored", None, Some(&note))
                })
                .await?;
            return Ok(());
        }
    };
    let link_code = m.text.as_deref().and_then(link_code);
    let inbox_slug = app.config.telegram_inbox_space.clone();
    let chat_id = m.chat.id;
    let (queued, linked, inbox) = app
        .db
        .run(move |c| {
            let tx = db::write_tx(c)?;
            let mut space = db::telegram::touch_chat(&tx, m.chat.id, m.chat.kind, &m.chat.title)?;
            let mut linked = None;
            if let Some(code) = link_code {
                if let Some(s) = db::telegram::take_link_code(&tx, &code)? {
                    db::telegram::bind_chat(&tx, m.chat.id, s)?;
                    space = Some(s);
                    linked = Some(s);
                }
            }
            // A private chat with the bot, not bound to a space: a client writing to the studio.
            if let (None, "private", Some(slug)) = (space, m.chat.kind, inbox_slug.as_deref()) {
                if let Ok(studio) = db::spaces::find(&tx, slug) {
                    let name = m
                        .sender_name
                        .clone()
                        .unwrap_or_else(|| m.chat.title.clone());
                    let contact = db::inbox::contact_for_telegram(
                        &tx,
                        studio.id,
                        m.sender_id.unwrap_or(m.chat.id),
                        &name,
                    )?;
                    let conversation =
                        db::inbox::open_conversation(&tx, studio.id, contact, &name)?;
                    let text = match (&m.text, &m.caption, &m.attachment) {
                        (Some(t), _, _) => t.clone(),
                        (None, Some(c), Some(a)) => format!("[{}] {c}", a.kind.as_str()),
                        (None, None, Some(a)) => format!("[{}]", a.kind.as_str()),
                        (None, Some(c), None) => c.clone(),
                        (None, None, None) => String::new(),
                    };
                    let mut queued = 0;
                    if !text.is_empty() {
                        let message =
                            db::inbox::add_contact_message(&tx, conversation, &text)?;
                        queued += crate::notify::emit(
                            &tx,
                            Some(studio.id),
                            "message.received",
                            serde_json::json!({ "space_id": studio.id.0, "conversation_id": conversation,
                                                "message_id": message, "channel": "telegram", "from": name }),
                            &format!("{name} (telegram): {text}"),
                        )?;
                        queued += crate::inbox::autoreply::on_contact_message(
                            &tx,
                            studio.id,
                            contact,
                            conversation,
                        )?;
                    }
                    db::telegram::set_update_state(
                        &tx,
                        update_id,
                        "processed",
                        Some(m.chat.id),
                        Some("inbox"),
                    )?;
                    tx.commit()?;
                    return Ok((queued, None, Some((studio.id, conversation))));
                }
            }
            let Some(space) = space else {
                db::telegram::set_update_state(
                    &tx,
                    update_id,
                    "deferred",
                    Some(m.chat.id),
                    Some("chat not bound to a space"),
                )?;
                tx.commit()?;
                return Ok((0, None, None));
            };
            let row = db::media::upsert_message(
                &tx,
                &NewMessage {
                    space,
                    source: "telegram",
                    chat_id: m.chat.id,
                    chat_title: None,
                    message_id: m.message_id,
                    sender_id: m.sender_id,
                    sender_name: m.sender_name.clone(),
                    sent_at: m.date,
                    edited_at: m.edit_date,
                    text: m.text.clone(),
                    caption: m.caption.clone(),
                    media_group_id: m.media_group_id.clone(),
                    reply_to_message_id: m.reply_to_message_id,
                    forward_origin: m.forward_origin.clone(),
                    update_id: Some(update_id),
                },
            )?
            .0;
            let mut queued = 0;
            if let Some(a) = &m.attachment {
                let new = db::media::insert_media(
                    &tx,
                    &NewMedia {
                        space,
                        message_row: Some(row),
                        kind: a.kind,
                        file_id: a.file_id.clone(),
                        file_unique_id: a.file_unique_id.clone(),
                        file_name: a.file_name.clone(),
                        declared_mime: a.mime.clone(),
                        declared_bytes: a.size,
                        duration_s: a.duration_s,
                        thumbnail_file_id: a.thumbnail_file_id.clone(),
                        caption: m.caption.clone(),
                        sender_name: m.sender_name.clone(),
                        chat_id: m.chat.id,
                        media_group_id: m.media_group_id.clone(),
                        received_at: m.date,
                    },
                )?;
                if let Some(id) = new {
                    db::jobs::enqueue(
                        &tx,
                        &NewJob {
                            kind: kind::DOWNLOAD,
                            payload: serde_json::json!({ "media_id": id.0 }),
                            dedup_key: Some(format!("download:{}", id.0)),
                            space: Some(space),
                            max_attempts: 8,
                        },
                    )?;
                    queued += 1;
                }
            }
            db::telegram::set_update_state(&tx, update_id, "processed", Some(m.chat.id), None)?;
            tx.commit()?;
            Ok((queued, linked, None))
        })
        .await?;
    if let Some((space, conversation)) = inbox {
        if queued > 0 {
            app.jobs_added.notify_waiters();
        }
        crate::inbox::publish_latest(app, space, conversation).await;
        return Ok(());
    }
    if queued > 0 || linked.is_some() {
        app.jobs_added.notify_waiters();
    }
    app.index_dirty.notify_waiters();
    if linked.is_some() {
        if let Some(tg) = &app.telegram {
            // Best effort: the binding is already committed.
            let _ = tg
                .api
                .send_message(
                    teloxide::types::ChatId(chat_id),
                    "This chat is now linked: its photos and files will appear in the album.",
                )
                .await;
        }
    }
    Ok(())
}

/// The code of a `/link CODE` (or `/link@bot CODE`) command.
fn link_code(text: &str) -> Option<String> {
    let mut words = text.split_whitespace();
    let cmd = words.next()?;
    if cmd == "/link" || cmd.starts_with("/link@") {
        words.next().map(str::to_string)
    } else {
        None
    }
}

fn expect_for(kind: MediaKind) -> Expect {
    match kind {
        MediaKind::Photo => Expect::Image,
        MediaKind::Video | MediaKind::VideoNote | MediaKind::Animation => Expect::Video,
        MediaKind::Audio | MediaKind::Voice => Expect::Audio,
        MediaKind::Document => Expect::Any,
    }
}

fn too_large(bytes: i64, limit: u64) -> String {
    let mb = |b: f64| b / 1_048_576.0;
    let mut msg = format!(
        "file is {:.1} MB, above the limit of {:.1} MB (max_file_bytes)",
        mb(bytes as f64),
        mb(limit as f64)
    );
    if bytes > CLOUD_BOT_API_LIMIT {
        msg.push_str("; the cloud Bot API also refuses files over 20 MB to bots, a self-hosted Bot API server (APPLIANCE_TELEGRAM_API_URL) does not");
    }
    msg
}

fn bot_error(e: RequestError) -> JobError {
    let message = telegram::explain(&e);
    match e {
        RequestError::RetryAfter(s) => JobError::Retry {
            error: message,
            after: Some(s.duration()),
        },
        RequestError::Api(_)
        | RequestError::InvalidJson { .. }
        | RequestError::MigrateToChatId(_) => JobError::Permanent(message),
        RequestError::Network(_) | RequestError::Io(_) => JobError::retry(message),
    }
}

/// Job `media.download`: `getFile`, then streams the file into the vault
/// (size limit enforced while streaming, content sniffed, fsynced, renamed to
/// its hash), then attaches it to the media item, or marks the item a
/// duplicate of the album item with the same content in the same space.
pub async fn download(app: &Arc<App>, payload: &Value) -> Result<(), JobError> {
    let id = MediaId(payload_i64(payload, "media_id")?);
    let target = app
        .db
        .run(move |c| db::media::download_target(c, id))
        .await?;
    if target.state == "stored" || target.state == "duplicate" {
        return Ok(());
    }
    let limit = app.config.max_file_bytes;
    if let Some(b) = target.declared_bytes.filter(|b| *b as u64 > limit) {
        return Err(JobError::Permanent(too_large(b, limit)));
    }
    check_quota(app, target.space, target.declared_bytes.unwrap_or(0)).await?;
    let tg = app.telegram.as_ref().ok_or_else(|| {
        JobError::retry("no Telegram token is configured (APPLIANCE_TELEGRAM_TOKEN)")
    })?;
    let file = tg
        .api
        .get_file(FileId(target.file_id.clone()))
        .await
        .map_err(bot_error)?;
    if file.meta.size != u32::MAX && u64::from(file.meta.size) > limit {
        return Err(JobError::Permanent(too_large(
            i64::from(file.meta.size),
            limit,
        )));
    }
    let writer = fetch(app, tg, &file.path, limit).await?;
    let declared_mime = target.declared_mime.clone();
    let blob = tokio::task::block_in_place(move || {
        writer.commit(expect_for(target.kind), declared_mime.as_deref(), None)
    })
    .map_err(vault_error)?;
    let sha = blob.sha256.as_str().to_string();
    let space = target.space;
    let poster = target.thumbnail_file_id.clone();
    let batch_s = app.config.notify_batch_seconds;
    let attached = app
        .db
        .run(move |c| {
            let tx = db::write_tx(c)?;
            let new_blob = db::media::insert_blob(&tx, &sha, blob.bytes as i64, &blob.mime)?;
            let attached = db::media::attach_blob(&tx, id, space, &sha)?;
            crate::notify::events::media_added(&tx, space, batch_s)?;
            // A new blob needs its renderings; a known one without any may get
            // them from this item's Telegram preview.
            let dedup_key = if new_blob {
                Some(format!("thumb:{sha}"))
            } else if poster.is_some() && !db::media::blob_has_thumbnail(&tx, &sha)? {
                Some(format!("poster:{}", id.0))
            } else {
                None
            };
            if dedup_key.is_some() {
                db::jobs::enqueue(
                    &tx,
                    &NewJob {
                        kind: kind::THUMBNAIL,
                        payload: serde_json::json!({ "sha256": sha, "poster_file_id": poster }),
                        dedup_key,
                        space: Some(space),
                        max_attempts: 3,
                    },
                )?;
            }
            tx.commit()?;
            Ok(attached)
        })
        .await?;
    if matches!(attached, Attached::Stored) {
        app.hub
            .publish(space, crate::inbox::Event::MediaAdded { media_id: id.0 });
    }
    if let Attached::Duplicate(first) = attached {
        tracing::info!(
            media = id.0,
            first = first.0,
            "same content already in the album"
        );
    }
    app.changed();
    Ok(())
}

fn vault_error(e: VaultError) -> JobError {
    match e {
        VaultError::TooLarge { .. } | VaultError::Rejected(_) => JobError::Permanent(e.to_string()),
        VaultError::Io(ref io) if io.kind() == std::io::ErrorKind::StorageFull => {
            metrics::counter!("appliance_disk_full_total").increment(1);
            tracing::warn!(
                "the disk holding the vault is full: downloads wait until space returns"
            );
            JobError::Wait {
                error: "disk full: the download waits until space returns".into(),
                after: std::time::Duration::from_secs(15),
            }
        }
        VaultError::Io(_) => JobError::retry(e),
    }
}

/// Job `blob.thumbnail`: reads dimensions, EXIF capture time and camera, and
/// writes the 360 px thumbnail and 1280 px preview of an image blob.
pub async fn thumbnail(app: &Arc<App>, payload: &Value) -> Result<(), JobError> {
    let sha = payload
        .get("sha256")
        .and_then(Value::as_str)
        .and_then(Sha256Hex::parse)
        .ok_or_else(|| JobError::Permanent("job payload has no valid sha256".into()))?;
    let key = sha.as_str().to_string();
    let mime = app
        .db
        .run(move |c| db::media::blob_mime(c, &key))
        .await?
        .ok_or_else(|| JobError::Permanent(format!("blob {} is not known", sha.as_str())))?;
    let poster_file_id = payload
        .get("poster_file_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    let max_pixels = app.config.max_image_pixels;
    let copy = app.vault.local_copy(&sha).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            JobError::Permanent(format!("blob {} is missing from the vault", sha.as_str()))
        } else {
            JobError::retry(format!("reading blob {}: {e}", sha.as_str()))
        }
    })?;
    let slot = app
        .imaging_slots
        .acquire()
        .await
        .map_err(|e| JobError::retry(format!("thumbnail slots: {e}")))?;
    let mut analysis = tokio::task::spawn_blocking(move || {
        let a = imaging::analyse(copy.path(), &mime, max_pixels);
        drop(copy);
        a
    })
    .await
    .map_err(|e| JobError::retry(format!("thumbnail task: {e}")))?;
    drop(slot);
    if analysis.renderings.is_none() {
        if let (Some(file_id), Some(tg)) = (poster_file_id, &app.telegram) {
            match poster(app, tg, &file_id).await {
                Ok(r) => {
                    analysis.renderings = Some(r);
                    analysis.meta.has_thumbnail = true;
                    analysis.meta.thumb_note = Some("preview from Telegram's thumbnail".into());
                }
                Err(JobError::Permanent(e)) => {
                    tracing::info!(error = %e, "no usable Telegram thumbnail")
                }
                Err(e) => return Err(e),
            }
        }
    }
    if let Some(r) = analysis.renderings.take() {
        let (vault, sha) = (app.vault.clone(), sha.clone());
        tokio::task::spawn_blocking(move || {
            vault
                .write_atomic(&vault.thumb_path(&sha, ThumbSize::Preview), &r.preview)
                .and_then(|_| {
                    vault.write_atomic(&vault.thumb_path(&sha, ThumbSize::Thumb), &r.thumb)
                })
        })
        .await
        .map_err(|e| JobError::retry(format!("thumbnail task: {e}")))?
        .map_err(JobError::retry)?;
    }
    let meta = analysis.meta;
    let key = sha.as_str().to_string();
    let remote = app.vault.is_remote();
    app.db
        .run(move |c| {
            let tx = c.transaction()?;
            db::media::set_blob_meta(&tx, &key, &meta)?;
            if remote {
                // Renderings are made from the local copy; now it may leave.
                db::jobs::enqueue(
                    &tx,
                    &NewJob {
                        kind: kind::UPLOAD,
                        payload: serde_json::json!({ "sha256": key }),
                        dedup_key: Some(format!("upload:{key}")),
                        space: None,
                        max_attempts: 20,
                    },
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await?;
    app.changed();
    Ok(())
}

/// Job `blob.upload`: moves a blob to the remote backend (`s3_bucket`),
/// then removes the local copy ([`crate::vault::Vault::offload`]). Network
/// errors are retried with backoff; the local copy stays until the bucket
/// holds the whole blob.
pub async fn upload(app: &Arc<App>, payload: &Value) -> Result<(), JobError> {
    let sha = payload
        .get("sha256")
        .and_then(Value::as_str)
        .and_then(Sha256Hex::parse)
        .ok_or_else(|| JobError::Permanent("job payload has no valid sha256".into()))?;
    app.vault.offload(&sha).await.map_err(|e| {
        JobError::retry(format!(
            "uploading blob {} to {}: {e}",
            sha.as_str(),
            app.vault.backend().describe()
        ))
    })
}

/// Streams a Bot API file (`file_path` from `getFile`) into a new vault
/// writer of at most `limit` bytes.
async fn fetch(
    app: &Arc<App>,
    tg: &telegram::Telegram,
    path: &str,
    limit: u64,
) -> Result<crate::vault::BlobWriter, JobError> {
    let mut writer = app.vault.writer(limit).map_err(JobError::retry)?;
    let mut stream = tg.files.download_file_stream(path);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            metrics::counter!("appliance_download_errors_total").increment(1);
            JobError::retry(format!(
                "download interrupted: {}",
                crate::redact(&e.to_string())
            ))
        })?;
        metrics::counter!("appliance_download_bytes_total").increment(chunk.len() as u64);
        tokio::task::block_in_place(|| writer.write(&chunk)).map_err(vault_error)?;
    }
    Ok(writer)
}

/// Refuses a download that would take `space` over `space_quota_mb`. The
/// first refusal of an exceedance tells the space's integrations
/// (`system.status`, `quota_exceeded`); the message's text stays in the
/// archive either way.
async fn check_quota(
    app: &Arc<App>,
    space: db::spaces::SpaceId,
    incoming: i64,
) -> Result<(), JobError> {
    let quota_mb = app.config.space_quota_mb;
    if quota_mb == 0 {
        return Ok(());
    }
    let quota = (quota_mb as i64).saturating_mul(1_000_000);
    let refused = app
        .db
        .write(move |c| {
            let used = db::media::space_bytes(c, space)?;
            let key = format!("quota_warned:{}", space.0);
            let warned = db::kv_get(c, &key)?.is_some();
            if used + incoming <= quota {
                if warned {
                    db::kv_delete(c, &key)?;
                }
                return Ok(None);
            }
            let reason = format!(
                "the space is over its storage quota ({} MB used of {} MB): delete media or raise space_quota_mb",
                used / 1_000_000,
                quota / 1_000_000
            );
            let mut queued = 0;
            if !warned {
                db::kv_set(c, &key, "1")?;
                queued = crate::notify::emit(
                    c,
                    Some(space),
                    "system.status",
                    serde_json::json!({ "status": "quota_exceeded", "detail": reason, "space_id": space.0 }),
                    &format!("appliance: {reason}"),
                )?;
            }
            Ok(Some((reason, queued, !warned)))
        })
        .await?;
    match refused {
        None => Ok(()),
        Some((reason, queued, first)) => {
            if first {
                tracing::warn!(space = space.0, %reason, "storage quota reached");
            }
            if queued > 0 {
                app.jobs_added.notify_waiters();
            }
            Err(JobError::Permanent(reason))
        }
    }
}

/// Largest Telegram thumbnail we fetch, bytes (they are 320 px JPEGs of a few kB).
const POSTER_LIMIT: u64 = 1024 * 1024;

/// Fetches Telegram's preview of a file (a small JPEG) into a scratch file of
/// the vault and renders it like a photo.
async fn poster(
    app: &Arc<App>,
    tg: &telegram::Telegram,
    file_id: &str,
) -> Result<imaging::Renderings, JobError> {
    let file = tg
        .api
        .get_file(FileId(file_id.to_string()))
        .await
        .map_err(bot_error)?;
    let writer = fetch(app, tg, &file.path, POSTER_LIMIT).await?;
    let max_pixels = app.config.max_image_pixels;
    tokio::task::spawn_blocking(move || {
        let scratch = writer.into_scratch(Expect::Image).map_err(vault_error)?;
        imaging::render_file(scratch.path(), max_pixels).map_err(JobError::Permanent)
    })
    .await
    .map_err(|e| JobError::retry(format!("poster task: {e}")))?
}

/// Called once when a job fails for good: records the reason where the user looks.
pub async fn give_up(app: &Arc<App>, job: &ClaimedJob, error: &str) {
    if job.kind == crate::notify::DELIVER_JOB {
        crate::notify::delivery_failed(app, &job.payload).await;
    }
    if job.kind == crate::posts::SEND_JOB {
        if let Some(id) = job.payload.get("post_id").and_then(Value::as_i64) {
            let error = error.to_string();
            let _ = app
                .db
                .run(move |c| db::posts::set_state(c, id, "failed", Some(&error)))
                .await;
        }
    }
    if job.kind == crate::inbox::DELIVER_JOB {
        crate::inbox::delivery_failed(app, &job.payload, error).await;
    }
    if job.kind == kind::DOWNLOAD {
        if let Some(id) = job.payload.get("media_id").and_then(Value::as_i64) {
            let error = error.to_string();
            match app
                .db
                .write(move |c| {
                    db::media::mark_failed(c, MediaId(id), &error)?;
                    let (space, name) = db::media::media_space(c, MediaId(id))?;
                    let file = name.unwrap_or_else(|| format!("item {id}"));
                    crate::notify::emit(
                        c,
                        Some(space),
                        "ingest.failed",
                        serde_json::json!({ "media_id": id, "error": error }),
                        &format!("could not store {file}: {error}"),
                    )
                })
                .await
            {
                Ok(n) if n > 0 => app.jobs_added.notify_waiters(),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "cannot mark the media item failed"),
            }
        }
    }
}
