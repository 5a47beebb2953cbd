//! The studio inbox: contacts, appointments, conversations, messages, read state.
//!
//! Every function takes the caller's [`SpaceScope`] and filters on it: an id
//! from another space is "not found". Times are Unix seconds.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::{now, spaces::SpaceId, spaces::SpaceScope, users::UserId, DbError, DbResult};

/// A client of the studio.
#[derive(Debug, Clone, Serialize)]
pub struct Contact {
    /// Row id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Telegram user id, when the contact writes through the bot.
    pub telegram_user_id: Option<i64>,
    /// Email.
    pub email: Option<String>,
    /// Phone.
    pub phone: Option<String>,
}

fn contact_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Contact> {
    Ok(Contact {
        id: r.get(0)?,
        name: r.get(1)?,
        telegram_user_id: r.get(2)?,
        email: r.get(3)?,
        phone: r.get(4)?,
    })
}

/// Creates a contact.
///
/// # Errors
/// [`DbError::Conflict`] when another contact of the space has the same Telegram user id.
pub fn create_contact(
    conn: &Connection,
    scope: &SpaceScope,
    name: &str,
    telegram_user_id: Option<i64>,
    email: Option<&str>,
    phone: Option<&str>,
) -> DbResult<i64> {
    if name.trim().is_empty() {
        return Err(DbError::Invalid("a contact needs a name".into()));
    }
    match conn.execute(
        "INSERT INTO contacts(space_id, name, telegram_user_id, email, phone, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![scope.id().0, name.trim(), telegram_user_id, email, phone, now()],
    ) {
        Ok(_) => Ok(conn.last_insert_rowid()),
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
            Err(DbError::Conflict("a contact with this Telegram user id already exists".into()))
        }
        Err(e) => Err(e.into()),
    }
}

/// A contact of this space.
pub fn contact(conn: &Connection, scope: &SpaceScope, id: i64) -> DbResult<Contact> {
    conn.query_row(
        "SELECT id, name, telegram_user_id, email, phone FROM contacts WHERE id = ?1 AND space_id = ?2",
        params![id, scope.id().0],
        contact_from_row,
    )
    .optional()?
    .ok_or(DbError::NotFound)
}

/// The contacts of a space, by name.
pub fn list_contacts(conn: &Connection, scope: &SpaceScope) -> DbResult<Vec<Contact>> {
    let mut st = conn.prepare(
        "SELECT id, name, telegram_user_id, email, phone FROM contacts WHERE space_id = ?1 ORDER BY name, id",
    )?;
    let rows = st.query_map([scope.id().0], contact_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The contact with this Telegram user id, created (named `name`) if new.
pub fn contact_for_telegram(
    conn: &Connection,
    space: SpaceId,
    user_id: i64,
    name: &str,
) -> DbResult<i64> {
    if let Some(id) = conn
        .query_row(
            "SELECT id FROM contacts WHERE space_id = ?1 AND telegram_user_id = ?2",
            params![space.0, user_id],
            |r| r.get(0),
        )
        .optional()?
    {
        return Ok(id);
    }
    conn.execute(
        "INSERT INTO contacts(space_id, name, telegram_user_id, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![space.0, name, user_id, now()],
    )?;
    Ok(conn.last_insert_rowid())
}

/// An appointment.
#[derive(Debug, Clone, Serialize)]
pub struct Appointment {
    /// Row id.
    pub id: i64,
    /// The client.
    pub contact_id: i64,
    /// Start, RFC 3339 (UTC).
    pub starts_at: String,
    /// Length, minutes.
    pub duration_minutes: i64,
    /// `booked`, `cancelled` or `done`.
    pub status: String,
    /// Free notes.
    pub notes: Option<String>,
    /// Its conversation.
    pub conversation_id: Option<i64>,
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Books an appointment and opens its conversation with a system message in
/// the space's language. Returns `(appointment id, conversation id)`.
///
/// # Errors
/// [`DbError::NotFound`] for a contact of another space; [`DbError::Invalid`] for a bad duration.
pub fn create_appointment(
    conn: &Connection,
    scope: &SpaceScope,
    contact_id: i64,
    starts_at: i64,
    duration_minutes: i64,
    notes: Option<&str>,
) -> DbResult<(i64, i64)> {
    let c = contact(conn, scope, contact_id)?;
    if !(1..=24 * 60).contains(&duration_minutes) {
        return Err(DbError::Invalid(
            "duration_minutes must be between 1 and 1440".into(),
        ));
    }
    conn.execute(
        "INSERT INTO appointments(space_id, contact_id, starts_at, duration_minutes, notes, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![scope.id().0, c.id, starts_at, duration_minutes, notes, now()],
    )?;
    let appointment = conn.last_insert_rowid();
    let conversation = insert_conversation(conn, scope.id(), c.id, Some(appointment), &c.name)?;
    let when = chrono::DateTime::from_timestamp(starts_at, 0).unwrap_or_default();
    let text = if super::spaces::language(conn, scope.id())? == "fr" {
        format!(
            "Rendez-vous réservé pour {} le {} à {} UTC ({} min).",
            c.name,
            when.format("%d/%m/%Y"),
            when.format("%H:%M"),
            duration_minutes
        )
    } else {
        format!(
            "Appointment booked for {} on {} at {} UTC ({} min).",
            c.name,
            when.format("%Y-%m-%d"),
            when.format("%H:%M"),
            duration_minutes
        )
    };
    insert_message(conn, conversation, "system", None, &text, None)?;
    Ok((appointment, conversation))
}

/// The appointments of a space, soonest first.
pub fn list_appointments(conn: &Connection, scope: &SpaceScope) -> DbResult<Vec<Appointment>> {
    let mut st = conn.prepare(
        "SELECT a.id, a.contact_id, a.starts_at, a.duration_minutes, a.status, a.notes, c.id
         FROM appointments a LEFT JOIN conversations c ON c.appointment_id = a.id
         WHERE a.space_id = ?1 ORDER BY a.starts_at, a.id",
    )?;
    let rows = st.query_map([scope.id().0], |r| {
        Ok(Appointment {
            id: r.get(0)?,
            contact_id: r.get(1)?,
            starts_at: rfc3339(r.get(2)?),
            duration_minutes: r.get(3)?,
            status: r.get(4)?,
            notes: r.get(5)?,
            conversation_id: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Changes an appointment (only the fields given). Returns its conversation.
pub fn update_appointment(
    conn: &Connection,
    scope: &SpaceScope,
    id: i64,
    starts_at: Option<i64>,
    duration_minutes: Option<i64>,
    status: Option<&str>,
    notes: Option<&str>,
) -> DbResult<Option<i64>> {
    if let Some(s) = status {
        if !["booked", "cancelled", "done"].contains(&s) {
            return Err(DbError::Invalid(
                "status is booked, cancelled or done".into(),
            ));
        }
    }
    let n = conn.execute(
        "UPDATE appointments SET starts_at = coalesce(?3, starts_at), duration_minutes = coalesce(?4, duration_minutes),
                                 status = coalesce(?5, status), notes = coalesce(?6, notes)
         WHERE id = ?1 AND space_id = ?2",
        params![id, scope.id().0, starts_at, duration_minutes, status, notes],
    )?;
    if n == 0 {
        return Err(DbError::NotFound);
    }
    Ok(conn
        .query_row(
            "SELECT id FROM conversations WHERE appointment_id = ?1",
            [id],
            |r| r.get(0),
        )
        .optional()?)
}

/// A conversation as listed, for one user (unread count is per user).
#[derive(Debug, Clone, Serialize)]
pub struct Conversation {
    /// Row id.
    pub id: i64,
    /// The client.
    pub contact_id: i64,
    /// The client's name.
    pub contact_name: String,
    /// Title.
    pub title: Option<String>,
    /// Its appointment, if any.
    pub appointment_id: Option<i64>,
    /// Messages this user has not read (written by others).
    pub unread_count: i64,
    /// Archived.
    pub archived: bool,
    /// RFC 3339 time of the last message.
    pub last_message_at: String,
    #[serde(skip)]
    last_message_ts: i64,
}

const CONVERSATION_COLUMNS: &str = "c.id, c.contact_id, ct.name, c.title, c.appointment_id,
    (SELECT count(*) FROM inbox_messages m WHERE m.conversation_id = c.id AND m.deleted_at IS NULL
       AND m.id > coalesce((SELECT last_read_id FROM conversation_reads r WHERE r.conversation_id = c.id AND r.user_id = ?2), 0)
       AND NOT (m.author_kind = 'staff' AND m.author_user_id IS ?2)),
    c.archived, c.last_message_at";

fn conversation_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Conversation> {
    let t: i64 = r.get(7)?;
    Ok(Conversation {
        id: r.get(0)?,
        contact_id: r.get(1)?,
        contact_name: r.get(2)?,
        title: r.get(3)?,
        appointment_id: r.get(4)?,
        unread_count: r.get(5)?,
        archived: r.get(6)?,
        last_message_at: rfc3339(t),
        last_message_ts: t,
    })
}

/// Opens a conversation with a contact of the space.
pub fn create_conversation(
    conn: &Connection,
    scope: &SpaceScope,
    contact_id: i64,
    title: Option<&str>,
) -> DbResult<i64> {
    let c = contact(conn, scope, contact_id)?;
    insert_conversation(conn, scope.id(), c.id, None, title.unwrap_or(&c.name))
}

/// Ok when the conversation belongs to the scope's space, else not found.
fn in_scope(conn: &Connection, scope: &SpaceScope, conversation: i64) -> DbResult<()> {
    if conversation_space(conn, conversation)? == scope.id() {
        Ok(())
    } else {
        Err(DbError::NotFound)
    }
}

/// Inserts a conversation; returns its id.
fn insert_conversation(
    conn: &Connection,
    space: SpaceId,
    contact: i64,
    appointment: Option<i64>,
    title: &str,
) -> DbResult<i64> {
    let t = now();
    conn.execute(
        "INSERT INTO conversations(space_id, contact_id, appointment_id, title, last_message_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![space.0, contact, appointment, title, t],
    )?;
    Ok(conn.last_insert_rowid())
}

/// The space of a conversation (to authorize routes named by conversation).
pub fn conversation_space(conn: &Connection, id: i64) -> DbResult<SpaceId> {
    conn.prepare_cached("SELECT space_id FROM conversations WHERE id = ?1")?
        .query_row([id], |r| Ok(SpaceId(r.get(0)?)))
        .optional()?
        .ok_or(DbError::NotFound)
}

/// The conversation of a message and its space.
pub fn message_conversation(conn: &Connection, message: i64) -> DbResult<(i64, SpaceId)> {
    conn.query_row(
        "SELECT c.id, c.space_id FROM inbox_messages m JOIN conversations c ON c.id = m.conversation_id WHERE m.id = ?1",
        [message],
        |r| Ok((r.get(0)?, SpaceId(r.get(1)?))),
    )
    .optional()?
    .ok_or(DbError::NotFound)
}

/// One page of conversations (20 by default), most recent activity first.
/// The cursor is `"<last_message_at>-<id>"` of the last item.
pub fn list_conversations(
    conn: &Connection,
    scope: &SpaceScope,
    user: UserId,
    archived: bool,
    cursor: Option<(i64, i64)>,
    limit: i64,
) -> DbResult<(Vec<Conversation>, Option<String>)> {
    let (at, id) = cursor.unwrap_or((i64::MAX, i64::MAX));
    let sql = format!(
        "SELECT {CONVERSATION_COLUMNS} FROM conversations c JOIN contacts ct ON ct.id = c.contact_id
         WHERE c.space_id = ?1 AND c.archived = ?3 AND (c.last_message_at, c.id) < (?4, ?5)
         ORDER BY c.last_message_at DESC, c.id DESC LIMIT ?6"
    );
    let mut st = conn.prepare(&sql)?;
    let items: Vec<Conversation> = st
        .query_map(
            params![scope.id().0, user.0, archived, at, id, limit + 1],
            conversation_from_row,
        )?
        .collect::<Result<_, _>>()?;
    let mut items = items;
    let next = (items.len() as i64 > limit).then(|| {
        items.truncate(limit as usize);
        let last = items.last().expect("non-empty");
        format!("{}-{}", last.last_message_ts, last.id)
    });
    Ok((items, next))
}

/// One conversation for one user.
pub fn conversation(
    conn: &Connection,
    scope: &SpaceScope,
    user: UserId,
    id: i64,
) -> DbResult<Conversation> {
    let sql = format!(
        "SELECT {CONVERSATION_COLUMNS} FROM conversations c JOIN contacts ct ON ct.id = c.contact_id
         WHERE c.space_id = ?1 AND c.id = ?3"
    );
    conn.query_row(
        &sql,
        params![scope.id().0, user.0, id],
        conversation_from_row,
    )
    .optional()?
    .ok_or(DbError::NotFound)
}

/// Renames, archives or unarchives a conversation.
pub fn update_conversation(
    conn: &Connection,
    scope: &SpaceScope,
    id: i64,
    title: Option<&str>,
    archived: Option<bool>,
) -> DbResult<()> {
    let n = conn.execute(
        "UPDATE conversations SET title = coalesce(?3, title), archived = coalesce(?4, archived) WHERE id = ?1 AND space_id = ?2",
        params![id, scope.id().0, title, archived],
    )?;
    if n == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// Deletes a conversation and its messages.
pub fn delete_conversation(conn: &Connection, scope: &SpaceScope, id: i64) -> DbResult<()> {
    let n = conn.execute(
        "DELETE FROM conversations WHERE id = ?1 AND space_id = ?2",
        params![id, scope.id().0],
    )?;
    if n == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// A message of a conversation.
#[derive(Debug, Clone, Serialize)]
pub struct InboxMessage {
    /// Row id.
    pub id: i64,
    /// Its conversation.
    pub conversation_id: i64,
    /// `staff`, `contact` or `system`.
    pub author_kind: String,
    /// The staff member who wrote it.
    pub author_user_id: Option<i64>,
    /// Text.
    pub text: String,
    /// RFC 3339.
    pub created_at: String,
    /// Telegram delivery of a staff message: `pending`, `sent`, `failed`, or none.
    pub delivery: Option<String>,
    /// Why the delivery failed.
    pub delivery_error: Option<String>,
    /// Images attached (in the vault), in order.
    pub attachments: Vec<MessageAttachment>,
}

/// An image attached to an inbox message.
#[derive(Debug, Clone, Serialize)]
pub struct MessageAttachment {
    /// Position, from 0.
    pub position: i64,
    /// Sniffed type.
    pub mime: String,
    /// Size, bytes.
    pub bytes: i64,
    /// Where to fetch it (members only).
    pub url: String,
}

/// Attaches a stored blob to a message at `position` (0–4).
pub fn add_attachment(
    conn: &Connection,
    message: i64,
    position: i64,
    sha256: &str,
) -> DbResult<()> {
    conn.execute(
        "INSERT INTO inbox_attachments(message_id, position, sha256) VALUES (?1, ?2, ?3)
         ON CONFLICT(message_id, position) DO UPDATE SET sha256 = excluded.sha256",
        params![message, position, sha256],
    )?;
    Ok(())
}

/// The attachments of a message: `(sha256, mime)` in order (system use: delivery).
pub fn attachment_blobs(conn: &Connection, message: i64) -> DbResult<Vec<(String, String)>> {
    let mut st = conn.prepare_cached(
        "SELECT a.sha256, b.mime FROM inbox_attachments a JOIN blobs b ON b.sha256 = a.sha256
         WHERE a.message_id = ?1 ORDER BY a.position",
    )?;
    let rows = st.query_map([message], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One attachment of a message of the space: `(sha256, mime)`.
pub fn attachment(
    conn: &Connection,
    scope: &SpaceScope,
    message: i64,
    position: i64,
) -> DbResult<(String, String)> {
    conn.query_row(
        "SELECT a.sha256, b.mime FROM inbox_attachments a JOIN blobs b ON b.sha256 = a.sha256
         JOIN inbox_messages m ON m.id = a.message_id JOIN conversations c ON c.id = m.conversation_id
         WHERE a.message_id = ?1 AND a.position = ?2 AND c.space_id = ?3 AND m.deleted_at IS NULL",
        params![message, position, scope.id().0],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()?
    .ok_or(DbError::NotFound)
}

fn fill_attachments(conn: &Connection, messages: &mut [InboxMessage]) -> DbResult<()> {
    let mut st = conn.prepare_cached(
        "SELECT a.position, b.mime, b.bytes FROM inbox_attachments a JOIN blobs b ON b.sha256 = a.sha256
         WHERE a.message_id = ?1 ORDER BY a.position",
    )?;
    for m in messages {
        let id = m.id;
        m.attachments = st
            .query_map([id], |r| {
                let position: i64 = r.get(0)?;
                Ok(MessageAttachment {
                    position,
                    mime: r.get(1)?,
                    bytes: r.get(2)?,
                    url: format!("/api/v1/messages/{id}/attachments/{position}"),
                })
            })?
            .collect::<Result<_, _>>()?;
    }
    Ok(())
}

impl InboxMessage {
    /// True when this staff member wrote it.
    pub fn by(&self, user: &i64) -> bool {
        self.author_user_id == Some(*user)
    }
}

fn insert_message(
    conn: &Connection,
    conversation: i64,
    author: &str,
    user: Option<UserId>,
    text: &str,
    delivery: Option<&str>,
) -> DbResult<i64> {
    let t = now();
    conn.prepare_cached(
        "INSERT INTO inbox_messages(conversation_id, author_kind, author_user_id, text, created_at, delivery)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![conversation, author, user.map(|u| u.0), text, t, delivery])?;
    let id = conn.last_insert_rowid();
    // A new message brings an archived conversation back.
    conn.prepare_cached(
        "UPDATE conversations SET last_message_at = ?2, archived = 0 WHERE id = ?1",
    )?
    .execute(params![conversation, t])?;
    Ok(id)
}

/// Adds a message to a conversation of the space. A staff message to a
/// contact reachable on Telegram starts with delivery `pending`.
pub fn add_message(
    conn: &Connection,
    scope: &SpaceScope,
    conversation: i64,
    author: &str,
    user: Option<UserId>,
    text: &str,
) -> DbResult<(i64, bool)> {
    add_message_with(conn, scope, conversation, author, user, text, false)
}

/// [`add_message`], allowing an empty text when `has_attachments`.
pub fn add_message_with(
    conn: &Connection,
    scope: &SpaceScope,
    conversation: i64,
    author: &str,
    user: Option<UserId>,
    text: &str,
    has_attachments: bool,
) -> DbResult<(i64, bool)> {
    if text.trim().is_empty() && !has_attachments {
        return Err(DbError::Invalid("a message needs text or an image".into()));
    }
    if text.len() > 4096 {
        return Err(DbError::Invalid(
            "a message is at most 4096 bytes (Telegram's limit)".into(),
        ));
    }
    // Reachable: on Telegram, WhatsApp or Instagram.
    let reachable: Option<bool> = conn
        .prepare_cached(
            "SELECT ct.telegram_user_id IS NOT NULL OR ct.whatsapp_id IS NOT NULL OR ct.instagram_id IS NOT NULL
             FROM conversations c JOIN contacts ct ON ct.id = c.contact_id
             WHERE c.id = ?1 AND c.space_id = ?2",
        )?
        .query_row(
            params![conversation, scope.id().0],
            |r| r.get(0),
        )
        .optional()?;
    let Some(reachable) = reachable else {
        return Err(DbError::NotFound);
    };
    let bridged = author == "staff" && reachable;
    let id = insert_message(
        conn,
        conversation,
        author,
        user,
        text,
        bridged.then_some("pending"),
    )?;
    Ok((id, bridged))
}

/// An automatic reply: a system message delivered to the contact like a staff reply.
pub fn add_auto_reply(conn: &Connection, conversation: i64, text: &str) -> DbResult<i64> {
    insert_message(conn, conversation, "system", None, text, Some("pending"))
}

/// A message arriving from a contact (the Telegram bridge): no scope, the system acts.
pub fn add_contact_message(conn: &Connection, conversation: i64, text: &str) -> DbResult<i64> {
    insert_message(conn, conversation, "contact", None, text, None)
}

/// The open conversation of a contact (most recent, unarchived), created if none.
pub fn open_conversation(
    conn: &Connection,
    space: SpaceId,
    contact: i64,
    title: &str,
) -> DbResult<i64> {
    if let Some(id) = conn
        .query_row(
            "SELECT id FROM conversations WHERE space_id = ?1 AND contact_id = ?2 AND archived = 0
             ORDER BY last_message_at DESC LIMIT 1",
            params![space.0, contact],
            |r| r.get(0),
        )
        .optional()?
    {
        return Ok(id);
    }
    insert_conversation(conn, space, contact, None, title)
}

fn message_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<InboxMessage> {
    Ok(InboxMessage {
        id: r.get(0)?,
        conversation_id: r.get(1)?,
        author_kind: r.get(2)?,
        author_user_id: r.get(3)?,
        text: r.get(4)?,
        created_at: rfc3339(r.get(5)?),
        delivery: r.get(6)?,
        delivery_error: r.get(7)?,
        attachments: Vec::new(),
    })
}

/// One page of messages (50 by default), newest first; the cursor is the last id shown.
pub fn list_messages(
    conn: &Connection,
    scope: &SpaceScope,
    conversation: i64,
    before: Option<i64>,
    limit: i64,
) -> DbResult<(Vec<InboxMessage>, Option<String>)> {
    in_scope(conn, scope, conversation)?;
    let mut st = conn.prepare(
        "SELECT id, conversation_id, author_kind, author_user_id, text, created_at, delivery, delivery_error
         FROM inbox_messages WHERE conversation_id = ?1 AND deleted_at IS NULL AND id < ?2 ORDER BY id DESC LIMIT ?3",
    )?;
    let mut items: Vec<InboxMessage> = st
        .query_map(
            params![conversation, before.unwrap_or(i64::MAX), limit + 1],
            message_from_row,
        )?
        .collect::<Result<_, _>>()?;
    let next = (items.len() as i64 > limit).then(|| {
        items.truncate(limit as usize);
        items.last().expect("non-empty").id.to_string()
    });
    fill_attachments(conn, &mut items)?;
    Ok((items, next))
}

/// One message of the space, with its attachments.
pub fn message(conn: &Connection, scope: &SpaceScope, id: i64) -> DbResult<InboxMessage> {
    let mut m = conn.prepare_cached(
        "SELECT m.id, m.conversation_id, m.author_kind, m.author_user_id, m.text, m.created_at, m.delivery, m.delivery_error
         FROM inbox_messages m JOIN conversations c ON c.id = m.conversation_id
         WHERE m.id = ?1 AND c.space_id = ?2 AND m.deleted_at IS NULL",
    )?
    .query_row(
        params![id, scope.id().0],
        message_from_row,
    )
    .optional()?
    .ok_or(DbError::NotFound)?;
    fill_attachments(conn, std::slice::from_mut(&mut m))?;
    Ok(m)
}

/// Marks a conversation read by a user up to a message (default: the latest). Returns that message id.
pub fn mark_read(
    conn: &Connection,
    scope: &SpaceScope,
    conversation: i64,
    user: UserId,
    up_to: Option<i64>,
) -> DbResult<i64> {
    in_scope(conn, scope, conversation)?;
    let last: i64 = conn
        .prepare_cached(
            "SELECT coalesce(max(id), 0) FROM inbox_messages WHERE conversation_id = ?1 AND id <= ?2",
        )?
        .query_row(params![conversation, up_to.unwrap_or(i64::MAX)], |r| r.get(0))?;
    conn.prepare_cached(
        "INSERT INTO conversation_reads(conversation_id, user_id, last_read_id) VALUES (?1, ?2, ?3)
         ON CONFLICT(conversation_id, user_id) DO UPDATE SET last_read_id = max(last_read_id, excluded.last_read_id)",
    )?
    .execute(params![conversation, user.0, last])?;
    Ok(last)
}

/// Deletes a message of the space; returns its conversation.
pub fn delete_message(conn: &Connection, scope: &SpaceScope, id: i64) -> DbResult<i64> {
    let m = message(conn, scope, id)?;
    conn.execute(
        "UPDATE inbox_messages SET deleted_at = ?2 WHERE id = ?1",
        params![id, now()],
    )?;
    Ok(m.conversation_id)
}

/// What the Telegram bridge needs to deliver a staff message: `(text, chat id)`.
pub fn delivery_target(conn: &Connection, message: i64) -> DbResult<(String, Channel, String)> {
    let (text, telegram, whatsapp, instagram, space, state): (
        String,
        Option<i64>,
        Option<String>,
        Option<String>,
        i64,
        String,
    ) = conn
        .query_row(
            "SELECT m.text, ct.telegram_user_id, ct.whatsapp_id, ct.instagram_id, c.space_id, coalesce(m.delivery, '')
             FROM inbox_messages m
             JOIN conversations c ON c.id = m.conversation_id JOIN contacts ct ON ct.id = c.contact_id
             WHERE m.id = ?1 AND m.deleted_at IS NULL",
            [message],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )
        .optional()?
        .ok_or(DbError::NotFound)?;
    let account = |kind: &str| -> DbResult<String> {
        conn.query_row(
            "SELECT account_id FROM meta_accounts WHERE space_id = ?1 AND kind = ?2 ORDER BY account_id LIMIT 1",
            params![space, kind],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| DbError::Invalid(format!("no {kind} account is bound to this studio")))
    };
    let channel = if let Some(chat) = telegram {
        Channel::Telegram(chat)
    } else if let Some(to) = whatsapp {
        Channel::WhatsApp {
            to,
            account: account("whatsapp")?,
        }
    } else if let Some(to) = instagram {
        Channel::Instagram {
            to,
            account: account("instagram")?,
        }
    } else {
        return Err(DbError::NotFound);
    };
    Ok((text, channel, state))
}

/// Where a staff message to a contact goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    /// A Telegram private chat (the user id is the chat id).
    Telegram(i64),
    /// WhatsApp Cloud API: the contact's `wa_id`, sent from our phone number id.
    WhatsApp {
        /// Recipient `wa_id`.
        to: String,
        /// Our phone number id.
        account: String,
    },
    /// Instagram messaging: the contact's scoped id, from our account id.
    Instagram {
        /// Recipient id.
        to: String,
        /// Our Instagram account id.
        account: String,
    },
}

/// The contact reachable at `external` on a Meta channel (`whatsapp`: the
/// `wa_id`, also kept as the phone; `instagram`: the scoped user id),
/// created (named `name`) if new.
pub fn contact_for_channel(
    conn: &Connection,
    space: SpaceId,
    channel: &str,
    external: &str,
    name: &str,
) -> DbResult<i64> {
    let column = match channel {
        "whatsapp" => "whatsapp_id",
        "instagram" => "instagram_id",
        other => return Err(DbError::Invalid(format!("unknown channel {other}"))),
    };
    if let Some(id) = conn
        .query_row(
            &format!("SELECT id FROM contacts WHERE space_id = ?1 AND {column} = ?2"),
            params![space.0, external],
            |r| r.get(0),
        )
        .optional()?
    {
        return Ok(id);
    }
    let phone = (channel == "whatsapp").then(|| format!("+{external}"));
    conn.execute(
        &format!(
            "INSERT INTO contacts(space_id, name, {column}, phone, created_at) VALUES (?1, ?2, ?3, ?4, ?5)"
        ),
        params![space.0, name, external, phone, now()],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Adds a contact's message that arrived with the channel's own id
/// (`wamid…`, Instagram `mid`). `None` when that id was already recorded
/// (the channel redelivered the webhook).
pub fn add_external_message(
    conn: &Connection,
    conversation: i64,
    text: &str,
    external_id: &str,
) -> DbResult<Option<i64>> {
    let known: Option<i64> = conn
        .query_row(
            "SELECT id FROM inbox_messages WHERE external_id = ?1",
            [external_id],
            |r| r.get(0),
        )
        .optional()?;
    if known.is_some() {
        return Ok(None);
    }
    let id = insert_message(conn, conversation, "contact", None, text, None)?;
    set_external_id(conn, id, external_id)?;
    Ok(Some(id))
}

/// Records the channel's id of a message we sent.
pub fn set_external_id(conn: &Connection, message: i64, external_id: &str) -> DbResult<()> {
    conn.execute(
        "UPDATE inbox_messages SET external_id = ?2 WHERE id = ?1",
        params![message, external_id],
    )?;
    Ok(())
}

/// A status callback: sets the delivery of the message with this channel id.
/// Returns (message, conversation, space) when it is one of ours.
pub fn set_delivery_by_external(
    conn: &Connection,
    external_id: &str,
    state: &str,
    error: Option<&str>,
) -> DbResult<Option<(i64, i64, SpaceId)>> {
    let found: Option<(i64, i64, i64)> = conn
        .query_row(
            "SELECT m.id, m.conversation_id, c.space_id FROM inbox_messages m
             JOIN conversations c ON c.id = m.conversation_id WHERE m.external_id = ?1",
            [external_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((m, conversation, space)) = found else {
        return Ok(None);
    };
    set_delivery(conn, m, state, error)?;
    Ok(Some((m, conversation, SpaceId(space))))
}

/// Records a delivery outcome.
pub fn set_delivery(
    conn: &Connection,
    message: i64,
    state: &str,
    error: Option<&str>,
) -> DbResult<()> {
    conn.execute(
        "UPDATE inbox_messages SET delivery = ?2, delivery_error = ?3 WHERE id = ?1",
        params![message, state, error],
    )?;
    Ok(())
}

/// Archives conversations of every space with no message since `days` days
/// before `now` (Unix seconds). Returns how many.
pub fn archive_stale(conn: &Connection, now: i64, days: i64) -> DbResult<usize> {
    Ok(conn.execute(
        "UPDATE conversations SET archived = 1 WHERE archived = 0 AND last_message_at < ?1",
        [now - days * 86_400],
    )?)
}

/// Marks an appointment's deposit paid (Stripe) and posts a system message
/// in its conversation, in the space's language. `amount` is in the
/// currency's minor unit. Returns (space, conversation) when the deposit was
/// not already recorded; `None` for an unknown appointment or a repeat.
pub fn mark_deposit_paid(
    conn: &Connection,
    appointment: i64,
    amount: Option<i64>,
    currency: Option<&str>,
    at: i64,
) -> DbResult<Option<(SpaceId, Option<i64>)>> {
    let found: Option<(i64, Option<i64>)> = conn
        .query_row(
            "SELECT a.space_id, (SELECT id FROM conversations c WHERE c.appointment_id = a.id)
             FROM appointments a WHERE a.id = ?1 AND a.deposit_paid_at IS NULL",
            [appointment],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((space, conversation)) = found else {
        return Ok(None);
    };
    conn.execute(
        "UPDATE appointments SET deposit_paid_at = ?2 WHERE id = ?1",
        params![appointment, at],
    )?;
    if let Some(conversation) = conversation {
        let space = SpaceId(space);
        let french = super::spaces::language(conn, space)? == "fr";
        let money = amount.map(|a| {
            let cur = currency.unwrap_or("").to_uppercase();
            if french {
                format!(" : {},{:02} {cur}", a / 100, a % 100)
            } else {
                format!(": {}.{:02} {cur}", a / 100, a % 100)
            }
        });
        let text = if french {
            format!("Acompte reçu{}", money.unwrap_or_default())
        } else {
            format!("Deposit received{}", money.unwrap_or_default())
        };
        insert_message(conn, conversation, "system", None, text.trim(), None)?;
    }
    Ok(Some((SpaceId(space), conversation)))
}
