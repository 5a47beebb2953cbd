//! Messages, media items (the album) and blobs (the vault's index).

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::{now, spaces::SpaceId, spaces::SpaceScope, DbError, DbResult};

/// A media item id (`media.id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct MediaId(pub i64);

/// The kinds of media the Bot API delivers that we keep, named as its fields
/// (<https://core.telegram.org/bots/api#message>).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// `photo` (we keep the largest `PhotoSize`).
    Photo,
    /// `video`
    Video,
    /// `animation` (GIF or silent H.264)
    Animation,
    /// `audio` (music)
    Audio,
    /// `voice` (voice note, OGG/Opus)
    Voice,
    /// `video_note` (round video)
    VideoNote,
    /// `document` (any file)
    Document,
}

impl MediaKind {
    /// The stored and JSON form.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Photo => "photo",
            MediaKind::Video => "video",
            MediaKind::Animation => "animation",
            MediaKind::Audio => "audio",
            MediaKind::Voice => "voice",
            MediaKind::VideoNote => "video_note",
            MediaKind::Document => "document",
        }
    }
    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "photo" => MediaKind::Photo,
            "video" => MediaKind::Video,
            "animation" => MediaKind::Animation,
            "audio" => MediaKind::Audio,
            "voice" => MediaKind::Voice,
            "video_note" => MediaKind::VideoNote,
            "document" => MediaKind::Document,
            _ => return None,
        })
    }
}

/// A chat message to store (insert, or update when edited).
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Space of the chat.
    pub space: SpaceId,
    /// Where it comes from: `telegram`, `telegram_export`, `whatsapp`, `upload`, `dir`.
    pub source: &'static str,
    /// Chat id within the source (Telegram chat id; a hash of the chat for exports).
    pub chat_id: i64,
    /// Chat title, when the source gives one (exports).
    pub chat_title: Option<String>,
    /// Message id, unique within the chat of the source.
    pub message_id: i64,
    /// Sender user id.
    pub sender_id: Option<i64>,
    /// Sender display name.
    pub sender_name: Option<String>,
    /// Unix seconds, when the message was sent.
    pub sent_at: i64,
    /// Unix seconds, when it was last edited.
    pub edited_at: Option<i64>,
    /// Text of a text message.
    pub text: Option<String>,
    /// Caption of a media message.
    pub caption: Option<String>,
    /// Album post grouping.
    pub media_group_id: Option<String>,
    /// Message id replied to.
    pub reply_to_message_id: Option<i64>,
    /// Who the message was forwarded from, as a display string.
    pub forward_origin: Option<String>,
    /// The Telegram update that carried it (bot messages only).
    pub update_id: Option<i64>,
}

/// Inserts a message or, when `(source, chat_id, message_id)` exists, updates
/// it with the newer text/caption (an edit). Returns the row id and whether
/// the message is new.
pub fn upsert_message(conn: &Connection, m: &NewMessage) -> DbResult<(i64, bool)> {
    let existing: Option<i64> = conn
        .query_row(
            "SELECT id FROM messages WHERE source = ?1 AND chat_id = ?2 AND message_id = ?3",
            params![m.source, m.chat_id, m.message_id],
            |r| r.get(0),
        )
        .optional()?;
    let id = match existing {
        Some(id) => {
            conn.execute(
                "UPDATE messages SET text = ?2, caption = ?3, edited_at = coalesce(?4, edited_at),
                                     update_id = coalesce(?5, update_id) WHERE id = ?1",
                params![id, m.text, m.caption, m.edited_at, m.update_id],
            )?;
            id
        }
        None => {
            conn.execute(
                "INSERT INTO messages(space_id, source, chat_id, chat_title, message_id, sender_id, sender_name,
                                      sent_at, edited_at, text, caption, media_group_id, reply_to_message_id,
                                      forward_origin, update_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                params![
                    m.space.0,
                    m.source,
                    m.chat_id,
                    m.chat_title,
                    m.message_id,
                    m.sender_id,
                    m.sender_name,
                    m.sent_at,
                    m.edited_at,
                    m.text,
                    m.caption,
                    m.media_group_id,
                    m.reply_to_message_id,
                    m.forward_origin,
                    m.update_id
                ],
            )?;
            conn.last_insert_rowid()
        }
    };
    super::search::mark_dirty(conn, &[super::search::message_key(id)])?;
    Ok((id, existing.is_none()))
}

/// A media attachment to record before it is downloaded.
#[derive(Debug, Clone)]
pub struct NewMedia {
    /// Space it belongs to.
    pub space: SpaceId,
    /// `messages.id` of the carrying message (none for a file imported alone).
    pub message_row: Option<i64>,
    /// Kind.
    pub kind: MediaKind,
    /// Bot API `file_id` (to download).
    pub file_id: String,
    /// Bot API `file_unique_id` (stable across bots; our first dedup key).
    pub file_unique_id: String,
    /// Original file name, when the kind has one.
    pub file_name: Option<String>,
    /// MIME type Telegram declares (not trusted: we sniff).
    pub declared_mime: Option<String>,
    /// Size Telegram declares, bytes.
    pub declared_bytes: Option<i64>,
    /// Duration, seconds (audio/video).
    pub duration_s: Option<i64>,
    /// Telegram's preview of the file (video poster, audio cover), if any.
    pub thumbnail_file_id: Option<String>,
    /// Caption of the message.
    pub caption: Option<String>,
    /// Sender display name.
    pub sender_name: Option<String>,
    /// Telegram chat id.
    pub chat_id: i64,
    /// Album post grouping.
    pub media_group_id: Option<String>,
    /// Unix seconds (the message's `date`).
    pub received_at: i64,
}

/// Records a media item; `None` when the same `file_unique_id` is already in
/// the space (the same file sent again), in which case only its caption is
/// refreshed.
pub fn insert_media(conn: &Connection, m: &NewMedia) -> DbResult<Option<MediaId>> {
    let n = conn.execute(
        "INSERT INTO media(space_id, message_id, kind, file_id, file_unique_id, file_name, declared_mime,
                           declared_bytes, duration_s, caption, sender_name, chat_id, media_group_id, received_at,
                           thumbnail_file_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
         ON CONFLICT(space_id, file_unique_id) DO NOTHING",
        params![
            m.space.0,
            m.message_row,
            m.kind.as_str(),
            m.file_id,
            m.file_unique_id,
            m.file_name,
            m.declared_mime,
            m.declared_bytes,
            m.duration_s,
            m.caption,
            m.sender_name,
            m.chat_id,
            m.media_group_id,
            m.received_at,
            m.thumbnail_file_id
        ],
    )?;
    if n == 1 {
        return Ok(Some(MediaId(conn.last_insert_rowid())));
    }
    if m.caption.is_some() {
        let id: Option<i64> = conn
            .query_row(
                "UPDATE media SET caption = ?3 WHERE space_id = ?1 AND file_unique_id = ?2 RETURNING id",
                params![m.space.0, m.file_unique_id, m.caption],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = id {
            super::search::mark_dirty(conn, &[super::search::media_key(id)])?;
        }
    }
    Ok(None)
}

/// What a download job needs to know about a media item.
#[derive(Debug, Clone)]
pub struct DownloadTarget {
    /// Item id.
    pub id: MediaId,
    /// Its space.
    pub space: SpaceId,
    /// Kind.
    pub kind: MediaKind,
    /// Bot API `file_id`.
    pub file_id: String,
    /// Declared size, bytes.
    pub declared_bytes: Option<i64>,
    /// Declared MIME type.
    pub declared_mime: Option<String>,
    /// Current state (`pending`, `stored`, `duplicate`, `failed`).
    pub state: String,
    /// Telegram's preview of the file, if any.
    pub thumbnail_file_id: Option<String>,
}

/// Loads a media item for the download job (internal; no scope: jobs act for the system).
pub fn download_target(conn: &Connection, id: MediaId) -> DbResult<DownloadTarget> {
    conn.query_row(
        "SELECT id, space_id, kind, file_id, declared_bytes, declared_mime, state, thumbnail_file_id FROM media WHERE id = ?1",
        [id.0],
        |r| {
            Ok(DownloadTarget {
                id: MediaId(r.get(0)?),
                space: SpaceId(r.get(1)?),
                kind: MediaKind::parse(&r.get::<_, String>(2)?).unwrap_or(MediaKind::Document),
                file_id: r.get(3)?,
                declared_bytes: r.get(4)?,
                declared_mime: r.get(5)?,
                state: r.get(6)?,
                thumbnail_file_id: r.get(7)?,
            })
        },
    )
    .optional()?
    .ok_or(DbError::NotFound)
}

/// Records a blob in the vault index (no-op when it is already known).
/// Returns true when it was new (and needs thumbnails and metadata).
pub fn insert_blob(conn: &Connection, sha256: &str, bytes: i64, mime: &str) -> DbResult<bool> {
    Ok(conn.execute(
        "INSERT INTO blobs(sha256, bytes, mime, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(sha256) DO NOTHING",
        params![sha256, bytes, mime, now()],
    )? == 1)
}

/// Outcome of attaching downloaded content to a media item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attached {
    /// The item is now an album item.
    Stored,
    /// The same content is already an album item of the space (that one).
    Duplicate(MediaId),
}

/// Order of arrival of a media item: its message's date, then the update
/// that brought it, then its id. The earliest one of equal content is the album item.
fn arrival(conn: &Connection, id: i64) -> DbResult<(i64, i64, i64)> {
    Ok(conn.query_row(
        "SELECT m.received_at, coalesce(msg.update_id, 0), m.id FROM media m
         LEFT JOIN messages msg ON msg.id = m.message_id WHERE m.id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?)
}

/// Attaches a stored blob to a media item. When the space already has an album
/// item with the same content, the one that arrived first in the chat stays the
/// album item (whichever download finished first) and the other becomes its
/// `duplicate`.
pub fn attach_blob(
    conn: &Connection,
    id: MediaId,
    space: SpaceId,
    sha256: &str,
) -> DbResult<Attached> {
    let existing: Option<i64> = conn
        .query_row(
            "SELECT id FROM media WHERE space_id = ?1 AND sha256 = ?2 AND state = 'stored' AND id <> ?3",
            params![space.0, sha256, id.0],
            |r| r.get(0),
        )
        .optional()?;
    mark_media_dirty(conn, &[Some(id.0), existing])?;
    let existing_first = match existing {
        Some(other) => arrival(conn, other)? < arrival(conn, id.0)?,
        None => false,
    };
    match existing {
        Some(first) if existing_first => {
            conn.execute(
                "UPDATE media SET sha256 = ?2, state = 'duplicate', duplicate_of = ?3, error = NULL WHERE id = ?1",
                params![id.0, sha256, first],
            )?;
            Ok(Attached::Duplicate(MediaId(first)))
        }
        later => {
            if let Some(later) = later {
                conn.execute(
                    "UPDATE media SET state = 'duplicate', duplicate_of = ?2 WHERE id = ?1",
                    params![later, id.0],
                )?;
                conn.execute(
                    "UPDATE media SET duplicate_of = ?2 WHERE duplicate_of = ?1",
                    params![later, id.0],
                )?;
            }
            conn.execute(
                "UPDATE media SET sha256 = ?2, state = 'stored', duplicate_of = NULL, error = NULL WHERE id = ?1",
                params![id.0, sha256],
            )?;
            Ok(Attached::Stored)
        }
    }
}

/// Queues the search documents of media items and of their messages (a
/// caption is searched on the media item when it is stored, else on the message).
fn mark_media_dirty(conn: &Connection, ids: &[Option<i64>]) -> DbResult<()> {
    for id in ids.iter().flatten() {
        let message: Option<i64> = conn
            .query_row("SELECT message_id FROM media WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?
            .flatten();
        let mut keys = vec![super::search::media_key(*id)];
        keys.extend(message.map(super::search::message_key));
        super::search::mark_dirty(conn, &keys)?;
    }
    Ok(())
}

/// Marks a media item failed with a message saying why (shown in the UI).
pub fn mark_failed(conn: &Connection, id: MediaId, error: &str) -> DbResult<()> {
    conn.execute(
        "UPDATE media SET state = 'failed', error = ?2 WHERE id = ?1 AND state <> 'stored'",
        params![id.0, error],
    )?;
    mark_media_dirty(conn, &[Some(id.0)])
}

/// Deletes an album item of a space: it leaves the album and the search
/// results. The blob stays in the vault (other items may share it).
///
/// # Errors
/// [`DbError::NotFound`] when the item is not a stored item of this space.
pub fn delete(conn: &Connection, scope: &SpaceScope, id: MediaId) -> DbResult<()> {
    let n = conn.execute(
        "UPDATE media SET state = 'deleted' WHERE id = ?1 AND space_id = ?2 AND state = 'stored'",
        params![id.0, scope.id().0],
    )?;
    if n == 0 {
        return Err(DbError::NotFound);
    }
    // Copies of the same content that pointed at it go with it.
    conn.execute(
        "UPDATE media SET state = 'deleted' WHERE duplicate_of = ?1 AND space_id = ?2",
        params![id.0, scope.id().0],
    )?;
    mark_media_dirty(conn, &[Some(id.0)])
}

/// Deletes a message of a space (it leaves the search results).
///
/// # Errors
/// [`DbError::NotFound`] when the message is not in this space.
pub fn delete_message(conn: &Connection, scope: &SpaceScope, id: i64) -> DbResult<()> {
    let n = conn.execute(
        "UPDATE messages SET deleted_at = ?3 WHERE id = ?1 AND space_id = ?2 AND deleted_at IS NULL",
        params![id, scope.id().0, now()],
    )?;
    if n == 0 {
        return Err(DbError::NotFound);
    }
    super::search::mark_dirty(conn, &[super::search::message_key(id)])
}

/// Metadata read from a blob's content.
#[derive(Debug, Clone, Default)]
pub struct BlobMeta {
    /// Pixels, after EXIF orientation.
    pub width: Option<i64>,
    /// Pixels, after EXIF orientation.
    pub height: Option<i64>,
    /// EXIF `DateTimeOriginal`, ISO 8601 without zone (camera local time).
    pub taken_at: Option<String>,
    /// EXIF `Make` + `Model`.
    pub camera: Option<String>,
    /// Thumbnails were written.
    pub has_thumbnail: bool,
    /// Why there is no thumbnail, if there is none.
    pub thumb_note: Option<String>,
}

/// Stores what the thumbnail job learned about a blob. Never forgets a
/// thumbnail that another run already made.
pub fn set_blob_meta(conn: &Connection, sha256: &str, m: &BlobMeta) -> DbResult<()> {
    conn.execute(
        "UPDATE blobs SET width = coalesce(?2, width), height = coalesce(?3, height),
                          taken_at = coalesce(?4, taken_at), camera = coalesce(?5, camera),
                          thumb_note = CASE WHEN ?6 OR NOT has_thumbnail THEN ?7 ELSE thumb_note END,
                          has_thumbnail = max(has_thumbnail, ?6)
         WHERE sha256 = ?1",
        params![
            sha256,
            m.width,
            m.height,
            m.taken_at,
            m.camera,
            m.has_thumbnail,
            m.thumb_note
        ],
    )?;
    let ids: Vec<i64> = conn
        .prepare_cached("SELECT id FROM media WHERE sha256 = ?1 AND state = 'stored'")?
        .query_map([sha256], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let keys: Vec<String> = ids.into_iter().map(super::search::media_key).collect();
    super::search::mark_dirty(conn, &keys)
}

/// True when the blob's thumbnails exist.
pub fn blob_has_thumbnail(conn: &Connection, sha256: &str) -> DbResult<bool> {
    Ok(conn
        .query_row(
            "SELECT has_thumbnail FROM blobs WHERE sha256 = ?1",
            [sha256],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(false))
}

/// Mime type of a known blob.
pub fn blob_mime(conn: &Connection, sha256: &str) -> DbResult<Option<String>> {
    Ok(conn
        .query_row("SELECT mime FROM blobs WHERE sha256 = ?1", [sha256], |r| {
            r.get(0)
        })
        .optional()?)
}

/// One album item as shown in the UI and printed by `appliance media list --json`.
#[derive(Debug, Clone, Serialize)]
pub struct MediaItem {
    /// Item id.
    pub id: MediaId,
    /// Space slug.
    pub space: String,
    /// Kind.
    pub kind: String,
    /// Sniffed MIME type.
    pub mime: Option<String>,
    /// Size, bytes.
    pub bytes: Option<i64>,
    /// Content hash, lowercase hex.
    pub sha256: Option<String>,
    /// Pixels.
    pub width: Option<i64>,
    /// Pixels.
    pub height: Option<i64>,
    /// EXIF capture time (camera local time, ISO 8601, no zone).
    pub taken_at: Option<String>,
    /// Camera make and model.
    pub camera: Option<String>,
    /// Message caption.
    pub caption: Option<String>,
    /// Sender display name.
    pub sender: Option<String>,
    /// Telegram chat id.
    pub chat_id: Option<i64>,
    /// When the message was sent to the chat (RFC 3339, UTC).
    pub received_at: String,
    /// A thumbnail exists.
    pub has_thumbnail: bool,
    /// Original file name.
    pub file_name: Option<String>,
    /// Duration, seconds.
    pub duration_s: Option<i64>,
    /// Album post grouping.
    pub media_group_id: Option<String>,
}

const ITEM_COLUMNS: &str =
    "m.id, s.slug, m.kind, b.mime, b.bytes, m.sha256, b.width, b.height, b.taken_at,
    b.camera, m.caption, m.sender_name, m.chat_id, m.received_at, coalesce(b.has_thumbnail, 0),
    m.file_name, m.duration_s, m.media_group_id";

fn item_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MediaItem> {
    let received: i64 = r.get(13)?;
    Ok(MediaItem {
        id: MediaId(r.get(0)?),
        space: r.get(1)?,
        kind: r.get(2)?,
        mime: r.get(3)?,
        bytes: r.get(4)?,
        sha256: r.get(5)?,
        width: r.get(6)?,
        height: r.get(7)?,
        taken_at: r.get(8)?,
        camera: r.get(9)?,
        caption: r.get(10)?,
        sender: r.get(11)?,
        chat_id: r.get(12)?,
        received_at: chrono::DateTime::from_timestamp(received, 0)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        has_thumbnail: r.get(14)?,
        file_name: r.get(15)?,
        duration_s: r.get(16)?,
        media_group_id: r.get(17)?,
    })
}

/// A position in the album, newest first: `(received_at, id)` of the last item shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Unix seconds.
    pub received_at: i64,
    /// Item id.
    pub id: i64,
}

impl Cursor {
    /// `"<received_at>-<id>"`, the form used in URLs.
    pub fn encode(&self) -> String {
        format!("{}-{}", self.received_at, self.id)
    }
    /// Parses [`Cursor::encode`]'s form.
    pub fn decode(s: &str) -> Option<Self> {
        let (a, b) = s.split_once('-')?;
        Some(Cursor {
            received_at: a.parse().ok()?,
            id: b.parse().ok()?,
        })
    }
}

/// One page of the album of a space: stored items, newest first, after `cursor`.
/// Returns the items and the cursor of the next page (if there may be one).
pub fn album_page(
    conn: &Connection,
    scope: &SpaceScope,
    cursor: Option<Cursor>,
    limit: i64,
) -> DbResult<(Vec<MediaItem>, Option<Cursor>)> {
    let (at, id) = cursor.map_or((i64::MAX, i64::MAX), |c| (c.received_at, c.id));
    let sql = format!(
        "SELECT {ITEM_COLUMNS} FROM media m JOIN spaces s ON s.id = m.space_id
         LEFT JOIN blobs b ON b.sha256 = m.sha256
         WHERE m.space_id = ?1 AND m.state = 'stored' AND (m.received_at, m.id) < (?2, ?3)
         ORDER BY m.received_at DESC, m.id DESC LIMIT ?4"
    );
    let mut st = conn.prepare_cached(&sql)?;
    let items: Vec<MediaItem> = st
        .query_map(params![scope.id().0, at, id, limit], item_from_row)?
        .collect::<Result<_, _>>()?;
    let next = (items.len() as i64 == limit).then(|| {
        let last = items.last().expect("non-empty page");
        Cursor {
            received_at: chrono::DateTime::parse_from_rfc3339(&last.received_at)
                .map(|d| d.timestamp())
                .unwrap_or(0),
            id: last.id.0,
        }
    });
    Ok((items, next))
}

/// The stored items of album (collection) `collection` (only item `only`
/// when given), newest first. The caller has checked access
/// ([`super::collections`]).
pub(crate) fn in_collection(
    conn: &Connection,
    collection: i64,
    only: Option<MediaId>,
) -> DbResult<Vec<MediaItem>> {
    let sql = format!(
        "SELECT {ITEM_COLUMNS} FROM collection_items ci JOIN media m ON m.id = ci.media_id
         JOIN spaces s ON s.id = m.space_id LEFT JOIN blobs b ON b.sha256 = m.sha256
         WHERE ci.collection_id = ?1 AND m.state = 'stored' AND (?2 IS NULL OR m.id = ?2)
         ORDER BY m.received_at DESC, m.id DESC"
    );
    let mut st = conn.prepare_cached(&sql)?;
    let items = st
        .query_map(params![collection, only.map(|m| m.0)], item_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(items)
}

/// `user`'s favourite stored items of space `space`, newest first.
pub(crate) fn favourites_of(
    conn: &Connection,
    space: super::spaces::SpaceId,
    user: super::users::UserId,
) -> DbResult<Vec<MediaItem>> {
    let sql = format!(
        "SELECT {ITEM_COLUMNS} FROM favourites f JOIN media m ON m.id = f.media_id
         JOIN spaces s ON s.id = m.space_id LEFT JOIN blobs b ON b.sha256 = m.sha256
         WHERE f.user_id = ?1 AND m.space_id = ?2 AND m.state = 'stored'
         ORDER BY m.received_at DESC, m.id DESC"
    );
    let mut st = conn.prepare_cached(&sql)?;
    let items = st
        .query_map(params![user.0, space.0], item_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(items)
}

/// Every stored album item of a space, newest first.
pub fn list_all(conn: &Connection, scope: &SpaceScope) -> DbResult<Vec<MediaItem>> {
    album_page(conn, scope, None, i64::MAX).map(|(items, _)| items)
}

/// One album item of a space.
///
/// # Errors
/// [`DbError::NotFound`] when it does not exist in *this* space.
pub fn get(conn: &Connection, scope: &SpaceScope, id: MediaId) -> DbResult<MediaItem> {
    let sql = format!(
        "SELECT {ITEM_COLUMNS} FROM media m JOIN spaces s ON s.id = m.space_id
         LEFT JOIN blobs b ON b.sha256 = m.sha256
         WHERE m.space_id = ?1 AND m.id = ?2 AND m.state = 'stored'"
    );
    conn.query_row(&sql, params![scope.id().0, id.0], item_from_row)
        .optional()?
        .ok_or(DbError::NotFound)
}

/// Media that could not be stored, newest first (for the statistics page).
#[derive(Debug, Clone, Serialize)]
pub struct FailedMedia {
    /// Item id.
    pub id: MediaId,
    /// Kind.
    pub kind: String,
    /// File name, when known.
    pub file_name: Option<String>,
    /// Why it failed.
    pub error: String,
}

/// Statistics of one space.
#[derive(Debug, Clone, Serialize, Default)]
pub struct SpaceStats {
    /// Album items.
    pub total: i64,
    /// Album items by kind.
    pub by_kind: Vec<(String, i64)>,
    /// Album items received per day over the last 7 days, oldest first (`YYYY-MM-DD`, count).
    pub last_7_days: Vec<(String, i64)>,
    /// Bytes of the album items.
    pub bytes: i64,
    /// Downloads attempted and finished (stored or duplicate).
    pub downloads_ok: i64,
    /// Downloads given up.
    pub downloads_failed: i64,
    /// Downloads not finished yet.
    pub downloads_pending: i64,
    /// Same content sent again (kept once).
    pub duplicates: i64,
    /// Recently failed media with the reason.
    pub failed: Vec<FailedMedia>,
}

impl SpaceStats {
    /// Share of finished downloads that succeeded, in percent (100 when none).
    pub fn success_rate(&self) -> f64 {
        let done = self.downloads_ok + self.downloads_failed;
        if done == 0 {
            100.0
        } else {
            self.downloads_ok as f64 * 100.0 / done as f64
        }
    }
}

/// Computes the statistics of a space.
pub fn stats(conn: &Connection, scope: &SpaceScope) -> DbResult<SpaceStats> {
    let sid = scope.id().0;
    let mut s = SpaceStats::default();
    let mut st =
        conn.prepare("SELECT state, count(*) FROM media WHERE space_id = ?1 GROUP BY state")?;
    let mut rows = st.query([sid])?;
    while let Some(r) = rows.next()? {
        let n: i64 = r.get(1)?;
        match r.get::<_, String>(0)?.as_str() {
            "stored" => {
                s.total = n;
                s.downloads_ok += n;
            }
            "duplicate" => {
                s.duplicates = n;
                s.downloads_ok += n;
            }
            "failed" => s.downloads_failed = n,
            _ => s.downloads_pending = n,
        }
    }
    s.by_kind = conn
        .prepare("SELECT kind, count(*) FROM media WHERE space_id = ?1 AND state = 'stored' GROUP BY kind ORDER BY 2 DESC")?
        .query_map([sid], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    s.bytes = conn.query_row(
        "SELECT coalesce(sum(b.bytes), 0) FROM media m JOIN blobs b ON b.sha256 = m.sha256
         WHERE m.space_id = ?1 AND m.state = 'stored'",
        [sid],
        |r| r.get(0),
    )?;
    let today = chrono::Utc::now().date_naive();
    for back in (0..7).rev() {
        let day = today - chrono::Days::new(back);
        let start = day
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
            .timestamp();
        let n: i64 = conn.query_row(
            "SELECT count(*) FROM media WHERE space_id = ?1 AND state = 'stored'
             AND received_at >= ?2 AND received_at < ?3",
            params![sid, start, start + 86_400],
            |r| r.get(0),
        )?;
        s.last_7_days.push((day.format("%Y-%m-%d").to_string(), n));
    }
    s.failed = conn
        .prepare("SELECT id, kind, file_name, coalesce(error, '') FROM media WHERE space_id = ?1 AND state = 'failed' ORDER BY id DESC LIMIT 50")?
        .query_map([sid], |r| {
            Ok(FailedMedia {
                id: MediaId(r.get(0)?),
                kind: r.get(1)?,
                file_name: r.get(2)?,
                error: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(s)
}

/// Media of `space` stored after row id `after`: (id, kind, sender name), oldest first, at most 1,000.
pub fn stored_since(
    conn: &Connection,
    space: SpaceId,
    after: i64,
) -> DbResult<Vec<(i64, String, Option<String>)>> {
    let mut st = conn.prepare_cached(
        "SELECT id, kind, sender_name FROM media WHERE space_id = ?1 AND state = 'stored' AND id > ?2
         ORDER BY id LIMIT 1000",
    )?;
    let rows = st
        .query_map(params![space.0, after], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Per space: (space, name, media stored, messages received) since `since` (Unix seconds).
pub fn daily_counts(conn: &Connection, since: i64) -> DbResult<Vec<(SpaceId, String, i64, i64)>> {
    let mut st = conn.prepare(
        "SELECT s.id, s.name,
                (SELECT count(*) FROM media m WHERE m.space_id = s.id AND m.state = 'stored' AND m.received_at >= ?1),
                (SELECT count(*) FROM messages g WHERE g.space_id = s.id AND g.sent_at >= ?1)
         FROM spaces s ORDER BY s.id",
    )?;
    let rows = st
        .query_map([since], |r| {
            Ok((SpaceId(r.get(0)?), r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The space of a media item and its file name.
pub fn media_space(conn: &Connection, id: MediaId) -> DbResult<(SpaceId, Option<String>)> {
    conn.query_row(
        "SELECT space_id, file_name FROM media WHERE id = ?1",
        [id.0],
        |r| Ok((SpaceId(r.get(0)?), r.get(1)?)),
    )
    .optional()?
    .ok_or(DbError::NotFound)
}

/// Every blob the database references: (sha256, bytes).
pub fn all_blobs(conn: &Connection) -> DbResult<Vec<(String, i64)>> {
    let mut st = conn.prepare("SELECT sha256, bytes FROM blobs ORDER BY sha256")?;
    let rows = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Blobs marked as having renderings.
pub fn rendered_blobs(conn: &Connection) -> DbResult<Vec<String>> {
    let mut st =
        conn.prepare("SELECT sha256 FROM blobs WHERE has_thumbnail = 1 ORDER BY sha256")?;
    let rows = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Marks a blob's renderings missing and queues the thumbnail job again.
pub fn requeue_thumbnail(conn: &Connection, sha256: &str) -> DbResult<()> {
    conn.execute(
        "UPDATE blobs SET has_thumbnail = 0 WHERE sha256 = ?1",
        [sha256],
    )?;
    super::jobs::enqueue_again(
        conn,
        &super::jobs::NewJob {
            kind: crate::jobs::kind::THUMBNAIL,
            payload: serde_json::json!({ "sha256": sha256 }),
            dedup_key: Some(format!("thumb:{sha256}")),
            space: None,
            max_attempts: 3,
        },
        super::now_ms(),
    )?;
    Ok(())
}

/// Vault bytes referenced by the database, and media items by state.
pub fn totals(conn: &Connection) -> DbResult<(i64, Vec<(String, i64)>)> {
    let bytes: i64 = conn.query_row("SELECT coalesce(sum(bytes), 0) FROM blobs", [], |r| {
        r.get(0)
    })?;
    let mut st = conn.prepare("SELECT state, count(*) FROM media GROUP BY state ORDER BY state")?;
    let rows = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok((bytes, rows))
}

/// Bytes of the media a space has stored (its quota usage).
pub fn space_bytes(conn: &Connection, space: SpaceId) -> DbResult<i64> {
    Ok(conn.query_row(
        "SELECT coalesce(sum(b.bytes), 0) FROM media m JOIN blobs b ON b.sha256 = m.sha256
         WHERE m.space_id = ?1 AND m.state = 'stored'",
        [space.0],
        |r| r.get(0),
    )?)
}
