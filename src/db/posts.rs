//! Scheduled posts: a text or an album item sent to a bound chat at a time.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::{now, spaces::SpaceId, spaces::SpaceScope, DbError, DbResult};

/// A scheduled post.
#[derive(Debug, Clone, Serialize)]
pub struct Post {
    /// Row id.
    pub id: i64,
    /// Its space.
    #[serde(skip)]
    pub space_id: SpaceId,
    /// Telegram chat, bound to the space.
    pub chat_id: i64,
    /// Text, or the photo's caption.
    pub text: String,
    /// Album item to send, if any.
    pub media_id: Option<i64>,
    /// When, Unix seconds (UTC).
    pub run_at: i64,
    /// `scheduled`, `sent`, `cancelled` or `failed`.
    pub state: String,
    /// Why it failed.
    pub error: Option<String>,
}

fn post_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Post> {
    Ok(Post {
        id: r.get(0)?,
        space_id: SpaceId(r.get(1)?),
        chat_id: r.get(2)?,
        text: r.get(3)?,
        media_id: r.get(4)?,
        run_at: r.get(5)?,
        state: r.get(6)?,
        error: r.get(7)?,
    })
}

const COLUMNS: &str = "id, space_id, chat_id, text, media_id, run_at, state, error";

/// Schedules a post; returns its id.
///
/// # Errors
/// [`DbError::Invalid`] when the chat is not bound to this space, the item is
/// not a stored photo of this space, or there is nothing to send.
pub fn create(
    conn: &Connection,
    scope: &SpaceScope,
    chat_id: i64,
    text: &str,
    media_id: Option<i64>,
    run_at: i64,
) -> DbResult<i64> {
    let bound: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM telegram_chats WHERE chat_id = ?1 AND space_id = ?2",
            params![chat_id, scope.id().0],
            |r| r.get(0),
        )
        .optional()?;
    if bound.is_none() {
        return Err(DbError::Invalid(format!(
            "chat {chat_id} is not bound to this space"
        )));
    }
    if let Some(m) = media_id {
        let ok: Option<i64> = conn
            .query_row(
                "SELECT 1 FROM media WHERE id = ?1 AND space_id = ?2 AND state = 'stored' AND kind = 'photo'",
                params![m, scope.id().0],
                |r| r.get(0),
            )
            .optional()?;
        if ok.is_none() {
            return Err(DbError::Invalid(format!(
                "item {m} is not a photo of this space's album"
            )));
        }
    }
    if text.trim().is_empty() && media_id.is_none() {
        return Err(DbError::Invalid("a post needs a text or a photo".into()));
    }
    if text.len() > 4096 {
        return Err(DbError::Invalid(
            "a post is at most 4096 bytes (Telegram's limit)".into(),
        ));
    }
    conn.execute(
        "INSERT INTO scheduled_posts(space_id, chat_id, text, media_id, run_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![scope.id().0, chat_id, text, media_id, run_at, now()],
    )?;
    Ok(conn.last_insert_rowid())
}

/// The posts of a space, soonest first.
pub fn list(conn: &Connection, scope: &SpaceScope) -> DbResult<Vec<Post>> {
    let mut st = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM scheduled_posts WHERE space_id = ?1 ORDER BY run_at, id"
    ))?;
    let rows = st
        .query_map([scope.id().0], post_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// One post (the job reads it; the system acts).
pub fn get_unscoped(conn: &Connection, id: i64) -> DbResult<Post> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM scheduled_posts WHERE id = ?1"),
        [id],
        post_from_row,
    )
    .optional()?
    .ok_or(DbError::NotFound)
}

/// The space of a post (for the CLI).
pub fn space_of(conn: &Connection, id: i64) -> DbResult<SpaceId> {
    Ok(get_unscoped(conn, id)?.space_id)
}

/// Cancels a post that has not been sent.
///
/// # Errors
/// [`DbError::Conflict`] when it was already sent or cancelled.
pub fn cancel(conn: &Connection, scope: &SpaceScope, id: i64) -> DbResult<()> {
    let n = conn.execute(
        "UPDATE scheduled_posts SET state = 'cancelled' WHERE id = ?1 AND space_id = ?2 AND state = 'scheduled'",
        params![id, scope.id().0],
    )?;
    if n == 0 {
        let exists: Option<String> = conn
            .query_row(
                "SELECT state FROM scheduled_posts WHERE id = ?1 AND space_id = ?2",
                params![id, scope.id().0],
                |r| r.get(0),
            )
            .optional()?;
        return match exists {
            Some(state) => Err(DbError::Conflict(format!("the post is already {state}"))),
            None => Err(DbError::NotFound),
        };
    }
    Ok(())
}

/// Records the outcome of a post.
pub fn set_state(conn: &Connection, id: i64, state: &str, error: Option<&str>) -> DbResult<()> {
    conn.execute(
        "UPDATE scheduled_posts SET state = ?2, error = ?3 WHERE id = ?1",
        params![id, state, error],
    )?;
    Ok(())
}
