//! Telegram chats (bound to a space, or pending) and raw updates.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::{
    jobs::{self, NewJob},
    now, now_ms,
    spaces::SpaceId,
    DbResult,
};

/// Job kind that processes one stored update (see `crate::telegram::process`).
pub const UPDATE_JOB: &str = "telegram.update";

/// A raw update to store: its `update_id`, the exact JSON, and the chat it concerns.
#[derive(Debug, Clone)]
pub struct RawUpdate {
    /// `Update.update_id` (unique per bot).
    pub update_id: i64,
    /// The JSON exactly as received.
    pub raw: String,
    /// The chat of its message/post, when it has one.
    pub chat_id: Option<i64>,
}

/// Stores raw updates and queues a processing job for each new one, in the
/// caller's transaction. An update already stored (same `update_id`) is
/// ignored. Returns how many were new.
pub fn store_updates(tx: &Connection, updates: &[RawUpdate], source: &str) -> DbResult<usize> {
    let mut new = 0;
    let t = now();
    let mut ins = tx.prepare_cached(
        "INSERT INTO telegram_updates(update_id, raw, source, received_at, chat_id)
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(update_id) DO NOTHING",
    )?;
    for u in updates {
        if ins.execute(params![u.update_id, u.raw, source, t, u.chat_id])? == 1 {
            new += 1;
            jobs::enqueue(
                tx,
                &NewJob {
                    kind: UPDATE_JOB,
                    payload: serde_json::json!({ "update_id": u.update_id }),
                    dedup_key: Some(format!("tg-update:{}", u.update_id)),
                    space: None,
                    max_attempts: 5,
                },
            )?;
        }
    }
    Ok(new)
}

/// The raw JSON of a stored update.
pub fn update_raw(conn: &Connection, update_id: i64) -> DbResult<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT raw FROM telegram_updates WHERE update_id = ?1",
            [update_id],
            |r| r.get(0),
        )
        .optional()?)
}

/// Records what processing did with an update: `processed`, `deferred`
/// (chat not bound yet) or `ignored` (nothing we keep), with a note.
pub fn set_update_state(
    conn: &Connection,
    update_id: i64,
    state: &str,
    chat_id: Option<i64>,
    note: Option<&str>,
) -> DbResult<()> {
    conn.execute(
        "UPDATE telegram_updates SET state = ?2, chat_id = coalesce(?3, chat_id), note = ?4
         WHERE update_id = ?1",
        params![update_id, state, chat_id, note],
    )?;
    Ok(())
}

/// A chat the bot has heard from.
#[derive(Debug, Clone, Serialize)]
pub struct Chat {
    /// Telegram chat id (negative for groups and channels).
    pub chat_id: i64,
    /// `private`, `group`, `supergroup`, `channel` (or `unknown` before first contact).
    pub kind: String,
    /// Title, or the person's name for private chats.
    pub title: String,
    /// Bound space slug; `None` = pending.
    pub space: Option<String>,
    /// Updates waiting for the binding.
    pub deferred_updates: i64,
    /// Unix seconds of the last update seen.
    pub last_seen_at: i64,
}

/// Records that a chat was seen; returns the space it is bound to, if any.
pub fn touch_chat(
    conn: &Connection,
    chat_id: i64,
    kind: &str,
    title: &str,
) -> DbResult<Option<SpaceId>> {
    let t = now();
    conn.execute(
        "INSERT INTO telegram_chats(chat_id, type, title, first_seen_at, last_seen_at)
         VALUES (?1, ?2, ?3, ?4, ?4)
         ON CONFLICT(chat_id) DO UPDATE SET type = excluded.type, title = excluded.title,
             last_seen_at = excluded.last_seen_at",
        params![chat_id, kind, title, t],
    )?;
    Ok(conn
        .query_row(
            "SELECT space_id FROM telegram_chats WHERE chat_id = ?1",
            [chat_id],
            |r| r.get::<_, Option<i64>>(0),
        )?
        .map(SpaceId))
}

/// Binds a chat to a space (creating the chat row if the bot has not seen it
/// yet) and re-queues the updates that waited for it. Returns how many.
/// Call it inside a write transaction.
pub fn bind_chat(conn: &Connection, chat_id: i64, space: SpaceId) -> DbResult<usize> {
    let t = now();
    conn.execute(
        "INSERT INTO telegram_chats(chat_id, type, title, space_id, first_seen_at, last_seen_at)
         VALUES (?1, 'unknown', '', ?2, ?3, ?3)
         ON CONFLICT(chat_id) DO UPDATE SET space_id = excluded.space_id",
        params![chat_id, space.0, t],
    )?;
    let ids: Vec<i64> = conn
        .prepare("SELECT update_id FROM telegram_updates WHERE chat_id = ?1 AND state = 'deferred' ORDER BY update_id")?
        .query_map([chat_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in &ids {
        conn.execute(
            "UPDATE telegram_updates SET state = 'received', note = NULL WHERE update_id = ?1",
            [id],
        )?;
        // A fresh job: the first one for this update is done (it deferred).
        conn.execute(
            "INSERT INTO jobs(kind, payload, dedup_key, space_id, max_attempts, run_at_ms, created_at, updated_at)
             VALUES (?1, ?2, NULL, ?3, 5, ?4, ?5, ?5)",
            params![
                UPDATE_JOB,
                serde_json::json!({ "update_id": id }).to_string(),
                space.0,
                now_ms(),
                t
            ],
        )?;
    }
    Ok(ids.len())
}

/// The title of one chat, if the bot has seen it.
pub fn chat_title(conn: &Connection, chat_id: i64) -> DbResult<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT title FROM telegram_chats WHERE chat_id = ?1",
            [chat_id],
            |r| r.get(0),
        )
        .optional()?)
}

/// Every chat, pending ones first.
pub fn list_chats(conn: &Connection) -> DbResult<Vec<Chat>> {
    let mut st = conn.prepare(
        "SELECT c.chat_id, c.type, c.title, s.slug, c.last_seen_at,
                (SELECT count(*) FROM telegram_updates u WHERE u.chat_id = c.chat_id AND u.state = 'deferred')
         FROM telegram_chats c LEFT JOIN spaces s ON s.id = c.space_id
         ORDER BY c.space_id IS NOT NULL, c.last_seen_at DESC",
    )?;
    let rows = st.query_map([], |r| {
        Ok(Chat {
            chat_id: r.get(0)?,
            kind: r.get(1)?,
            title: r.get(2)?,
            space: r.get(3)?,
            last_seen_at: r.get(4)?,
            deferred_updates: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Creates a one-time code that binds the chat it is sent in to `space`
/// (`/link CODE`), valid for `ttl_s` seconds.
pub fn create_link_code(conn: &Connection, space: SpaceId, code: &str, ttl_s: i64) -> DbResult<()> {
    conn.execute("DELETE FROM link_codes WHERE expires_at <= ?1", [now()])?;
    conn.execute(
        "INSERT INTO link_codes(code, space_id, expires_at) VALUES (?1, ?2, ?3)",
        params![code, space.0, now() + ttl_s],
    )?;
    Ok(())
}

/// Consumes a link code; returns its space when it was valid.
pub fn take_link_code(conn: &Connection, code: &str) -> DbResult<Option<SpaceId>> {
    let space: Option<i64> = conn
        .query_row(
            "DELETE FROM link_codes WHERE code = ?1 AND expires_at > ?2 RETURNING space_id",
            params![code, now()],
            |r| r.get(0),
        )
        .optional()?;
    Ok(space.map(SpaceId))
}
