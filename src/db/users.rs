//! Users and login sessions.

use rusqlite::{params, Connection, OptionalExtension};

use super::{now, DbError, DbResult};

/// A user id (`users.id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct UserId(pub i64);

/// A user account.
#[derive(Debug, Clone, serde::Serialize)]
pub struct User {
    /// Row id.
    pub id: UserId,
    /// Login name (unique, case-insensitive).
    pub name: String,
    /// Admins see pending chats and failed jobs of every space.
    pub is_admin: bool,
}

fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: UserId(r.get(0)?),
        name: r.get(1)?,
        is_admin: r.get(2)?,
    })
}

/// Checks a login name: 1–64 characters, letters, digits, `.`, `_`, `-`.
pub fn validate_name(name: &str) -> DbResult<()> {
    let ok = (1..=64).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(DbError::Invalid(format!(
            "user name {name:?}: use 1-64 letters, digits, '.', '_' or '-'"
        )))
    }
}

/// Creates a user with an already computed argon2id PHC hash.
///
/// # Errors
/// [`DbError::Conflict`] when the name is taken.
pub fn create(
    conn: &Connection,
    name: &str,
    password_hash: &str,
    is_admin: bool,
) -> DbResult<User> {
    validate_name(name)?;
    let res = conn.execute(
        "INSERT INTO users(name, password_hash, is_admin, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![name, password_hash, is_admin, now()],
    );
    match res {
        Ok(_) => Ok(User {
            id: UserId(conn.last_insert_rowid()),
            name: name.to_string(),
            is_admin,
        }),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Err(DbError::Conflict(format!("user {name:?} already exists")))
        }
        Err(e) => Err(e.into()),
    }
}

/// Finds a user by name, with the stored password hash.
pub fn find_with_hash(conn: &Connection, name: &str) -> DbResult<Option<(User, String)>> {
    Ok(conn
        .query_row(
            "SELECT id, name, is_admin, password_hash FROM users WHERE name = ?1",
            [name],
            |r| Ok((user_from_row(r)?, r.get(3)?)),
        )
        .optional()?)
}

/// Finds a user by name.
pub fn find(conn: &Connection, name: &str) -> DbResult<User> {
    find_with_hash(conn, name)?
        .map(|(u, _)| u)
        .ok_or(DbError::NotFound)
}

/// Number of users (0 means first run).
pub fn count(conn: &Connection) -> DbResult<i64> {
    Ok(conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?)
}

/// Stores a session whose cookie hashes to `token_hash`, valid for `ttl_s` seconds.
pub fn create_session(
    conn: &Connection,
    token_hash: &[u8],
    user: UserId,
    ttl_s: i64,
) -> DbResult<()> {
    let t = now();
    conn.execute(
        "INSERT INTO sessions(token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![token_hash, user.0, t, t + ttl_s],
    )?;
    Ok(())
}

/// The user of a live session, if any.
pub fn session_user(conn: &Connection, token_hash: &[u8]) -> DbResult<Option<User>> {
    Ok(conn
        .query_row(
            "SELECT u.id, u.name, u.is_admin FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ?1 AND s.expires_at > ?2",
            params![token_hash, now()],
            user_from_row,
        )
        .optional()?)
}

/// Ends a session (logout). Also purges expired sessions.
pub fn delete_session(conn: &Connection, token_hash: &[u8]) -> DbResult<()> {
    conn.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
    conn.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now()])?;
    Ok(())
}

/// Stores an API token (its hash) for a user.
pub fn create_token(
    conn: &Connection,
    token_hash: &[u8],
    user: UserId,
    name: &str,
) -> DbResult<()> {
    conn.execute(
        "INSERT INTO api_tokens(token_hash, user_id, name, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![token_hash, user.0, name, now()],
    )?;
    Ok(())
}

/// The user of an API token, if any.
pub fn token_user(conn: &Connection, token_hash: &[u8]) -> DbResult<Option<User>> {
    Ok(conn
        .prepare_cached(
            "SELECT u.id, u.name, u.is_admin FROM api_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = ?1",
        )?
        .query_row(params![token_hash], user_from_row)
        .optional()?)
}

/// Sets a user's email address and digest preference (only what is given).
pub fn set_email_prefs(
    conn: &Connection,
    user: UserId,
    email: Option<&str>,
    digest: Option<bool>,
) -> DbResult<()> {
    if let Some(e) = email {
        if !e.is_empty() && (!e.contains('@') || e.contains(char::is_whitespace)) {
            return Err(DbError::Invalid(format!("{e:?} is not an email address")));
        }
    }
    conn.execute(
        "UPDATE users SET email = coalesce(nullif(?2, ''), CASE WHEN ?2 = '' THEN NULL ELSE email END),
                          email_digest = coalesce(?3, email_digest) WHERE id = ?1",
        params![user.0, email, digest],
    )?;
    Ok(())
}

/// Records that a user was just seen (a live session opened or closed).
pub fn touch_seen(conn: &Connection, user: UserId, at: i64) -> DbResult<()> {
    conn.execute(
        "UPDATE users SET last_seen_at = ?2 WHERE id = ?1",
        params![user.0, at],
    )?;
    Ok(())
}
