//! What the search index is built from: the queue of documents to rewrite,
//! and the documents themselves, read from messages and media.
//!
//! Document keys: `m:<messages.id>` for a message, `f:<media.id>` for a media item.

use rusqlite::{params, Connection, OptionalExtension};

use super::{spaces::SpaceId, DbResult};

/// Marks documents as needing a rewrite in the index, in the caller's transaction.
pub fn mark_dirty(conn: &Connection, keys: &[String]) -> DbResult<()> {
    let mut st = conn.prepare_cached(
        "INSERT INTO index_queue(doc_key, seq)
         VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM index_queue))
         ON CONFLICT(doc_key) DO UPDATE SET seq = excluded.seq",
    )?;
    for k in keys {
        st.execute([k])?;
    }
    Ok(())
}

/// The key of a message document.
pub fn message_key(id: i64) -> String {
    format!("m:{id}")
}

/// The key of a media document.
pub fn media_key(id: i64) -> String {
    format!("f:{id}")
}

/// Marks every document (of one space, or all) dirty. Returns how many.
pub fn mark_all_dirty(conn: &Connection, space: Option<SpaceId>) -> DbResult<usize> {
    let mut n = 0;
    // Table names are constants; each batch gets sequence numbers above the queue's.
    for (prefix, table) in [("m", "messages"), ("f", "media")] {
        let base: i64 =
            conn.query_row("SELECT coalesce(max(seq), 0) FROM index_queue", [], |r| {
                r.get(0)
            })?;
        n += conn.execute(
            &format!(
                "INSERT INTO index_queue(doc_key, seq) SELECT '{prefix}:' || id, ?2 + id FROM {table}
                 WHERE ?1 IS NULL OR space_id = ?1
                 ON CONFLICT(doc_key) DO UPDATE SET seq = excluded.seq"
            ),
            params![space.map(|s| s.0), base],
        )?;
    }
    Ok(n)
}

/// Up to `limit` queued keys with their sequence numbers, oldest first.
pub fn dirty_batch(conn: &Connection, limit: i64) -> DbResult<Vec<(String, i64)>> {
    let mut st =
        conn.prepare_cached("SELECT doc_key, seq FROM index_queue ORDER BY seq LIMIT ?1")?;
    let rows = st.query_map([limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Removes keys the index now reflects; a key re-queued since (higher seq) stays.
pub fn clear_done(conn: &Connection, done: &[(String, i64)]) -> DbResult<()> {
    let mut st = conn.prepare_cached("DELETE FROM index_queue WHERE doc_key = ?1 AND seq = ?2")?;
    for (k, s) in done {
        st.execute(params![k, s])?;
    }
    Ok(())
}

/// Number of queued keys.
pub fn queue_len(conn: &Connection) -> DbResult<i64> {
    Ok(conn.query_row("SELECT count(*) FROM index_queue", [], |r| r.get(0))?)
}

/// A document to index, read from the database.
#[derive(Debug, Clone)]
pub struct IndexDoc {
    /// `m:<id>` or `f:<id>`.
    pub key: String,
    /// Space id.
    pub space: SpaceId,
    /// `message`, or the media kind.
    pub kind: String,
    /// Unix seconds: when the message was sent.
    pub date: i64,
    /// The text a person reads: message text, or caption.
    pub text: String,
    /// File name of a media item.
    pub file_name: Option<String>,
    /// Sender display name.
    pub sender: String,
    /// Chat title.
    pub chat: String,
    /// Camera make and model.
    pub camera: Option<String>,
    /// MIME type.
    pub mime: Option<String>,
    /// The message has a caption.
    pub has_caption: bool,
    /// Stemming: `fr`, `en` or `both` (the space's language).
    pub language: String,
}

/// Loads the document of `key`, or `None` when it must not be in the index
/// (deleted, not stored yet, nothing to search). A caption is searched on
/// its media item; on the message only while the item is not stored (pending,
/// failed, or a duplicate of another item), and never once the item was deleted.
pub fn load_doc(conn: &Connection, key: &str) -> DbResult<Option<IndexDoc>> {
    let Some((prefix, id)) = key.split_once(':') else {
        return Ok(None);
    };
    let Ok(id) = id.parse::<i64>() else {
        return Ok(None);
    };
    match prefix {
        "m" => Ok(conn
            .query_row(
                "SELECT m.id, m.space_id, m.sent_at, coalesce(nullif(m.text, ''), m.caption, ''),
                        coalesce(m.sender_name, ''), coalesce(m.chat_title, c.title, ''), m.caption IS NOT NULL, s.language
                 FROM messages m JOIN spaces s ON s.id = m.space_id
                 LEFT JOIN telegram_chats c ON c.chat_id = m.chat_id AND m.source = 'telegram'
                 WHERE m.id = ?1 AND m.deleted_at IS NULL
                   AND (coalesce(m.text, '') <> '' OR (coalesce(m.caption, '') <> ''
                        AND NOT EXISTS (SELECT 1 FROM media f WHERE f.message_id = m.id
                                        AND f.state IN ('stored', 'deleted'))))",
                [id],
                |r| {
                    Ok(IndexDoc {
                        key: key.to_string(),
                        space: SpaceId(r.get(1)?),
                        kind: "message".into(),
                        date: r.get(2)?,
                        text: r.get(3)?,
                        file_name: None,
                        sender: r.get(4)?,
                        chat: r.get(5)?,
                        camera: None,
                        mime: None,
                        has_caption: r.get(6)?,
                        language: r.get(7)?,
                    })
                },
            )
            .optional()?),
        "f" => Ok(conn
            .query_row(
                "SELECT f.space_id, f.kind, f.received_at, coalesce(f.caption, ''), f.file_name,
                        coalesce(f.sender_name, ''), coalesce(msg.chat_title, c.title, ''), b.camera, b.mime,
                        s.language
                 FROM media f JOIN spaces s ON s.id = f.space_id
                 LEFT JOIN blobs b ON b.sha256 = f.sha256
                 LEFT JOIN messages msg ON msg.id = f.message_id
                 LEFT JOIN telegram_chats c ON c.chat_id = f.chat_id AND coalesce(msg.source, 'telegram') = 'telegram'
                 WHERE f.id = ?1 AND f.state = 'stored'",
                [id],
                |r| {
                    let caption: String = r.get(3)?;
                    Ok(IndexDoc {
                        key: key.to_string(),
                        space: SpaceId(r.get(0)?),
                        kind: r.get(1)?,
                        date: r.get(2)?,
                        has_caption: !caption.is_empty(),
                        text: caption,
                        file_name: r.get(4)?,
                        sender: r.get(5)?,
                        chat: r.get(6)?,
                        camera: r.get(7)?,
                        mime: r.get(8)?,
                        language: r.get(9)?,
                    })
                },
            )
            .optional()?),
        _ => Ok(None),
    }
}

/// Keys of every document that may be indexed (of one space, or all), in
/// pages: `after` is the last key of the previous page (ordering is by key).
pub fn keys_page(
    conn: &Connection,
    space: Option<SpaceId>,
    after: &str,
    limit: i64,
) -> DbResult<Vec<String>> {
    let mut st = conn.prepare_cached(
        "SELECT k FROM (
             SELECT 'm:' || id AS k FROM messages WHERE (?1 IS NULL OR space_id = ?1) AND deleted_at IS NULL
             UNION ALL
             SELECT 'f:' || id FROM media WHERE (?1 IS NULL OR space_id = ?1) AND state = 'stored'
         ) WHERE k > ?2 ORDER BY k LIMIT ?3",
    )?;
    let rows = st.query_map(params![space.map(|s| s.0), after, limit], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Number of documents that belong in the index (to detect an index that is behind).
pub fn indexable_count(conn: &Connection) -> DbResult<i64> {
    Ok(conn.query_row(
        "SELECT (SELECT count(*) FROM media WHERE state = 'stored')
              + (SELECT count(*) FROM messages m WHERE m.deleted_at IS NULL
                 AND (coalesce(m.text, '') <> '' OR (coalesce(m.caption, '') <> ''
                      AND NOT EXISTS (SELECT 1 FROM media f WHERE f.message_id = m.id
                                      AND f.state IN ('stored', 'deleted')))))",
        [],
        |r| r.get(0),
    )?)
}

/// Slugs of spaces by id, for presenting hits.
pub fn space_slugs(conn: &Connection) -> DbResult<std::collections::HashMap<i64, String>> {
    let mut st = conn.prepare_cached("SELECT id, slug FROM spaces")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
