//! Albums (collections) of a space's media, favourites, and share links.
//!
//! Every function of a space's albums takes its [`SpaceScope`]. A share link
//! is a capability of its own: [`resolve_share`] turns a token's hash into a
//! [`ShareScope`], which reads one album's stored items and nothing else.

use rusqlite::{params, Connection, OptionalExtension};

use super::{
    media::{MediaId, MediaItem},
    now,
    spaces::SpaceScope,
    users::UserId,
    DbError, DbResult,
};

/// An album of a space.
#[derive(Debug, Clone)]
pub struct Collection {
    /// Id.
    pub id: i64,
    /// Name as typed.
    pub name: String,
    /// Stored items in it.
    pub items: i64,
}

/// A share link of an album (its token is shown once, at creation).
#[derive(Debug, Clone)]
pub struct ShareLink {
    /// Id.
    pub id: i64,
    /// Creation, Unix seconds.
    pub created_at: i64,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
    /// Revocation, Unix seconds.
    pub revoked_at: Option<i64>,
}

impl ShareLink {
    /// True when it still opens the album at `now_s`.
    pub fn active(&self, now_s: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at > now_s
    }
}

/// Creates an album named `name` (1–200 characters after trimming).
///
/// # Errors
/// [`DbError::Invalid`] for an empty or overlong name.
pub fn create(conn: &Connection, scope: &SpaceScope, name: &str, by: UserId) -> DbResult<i64> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(DbError::Invalid(
            "an album needs a name of 1 to 200 characters".into(),
        ));
    }
    conn.execute(
        "INSERT INTO collections(space_id, name, created_by, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![scope.id().0, name, by.0, now()],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Columns of a [`Collection`], with its count of stored items.
const COLUMNS: &str = "c.id, c.name,
    (SELECT count(*) FROM collection_items ci JOIN media m ON m.id = ci.media_id
     WHERE ci.collection_id = c.id AND m.state = 'stored')";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Collection> {
    Ok(Collection {
        id: r.get(0)?,
        name: r.get(1)?,
        items: r.get(2)?,
    })
}

/// The space's albums by name, with their item counts.
pub fn list(conn: &Connection, scope: &SpaceScope) -> DbResult<Vec<Collection>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM collections c WHERE c.space_id = ?1
         ORDER BY c.name COLLATE NOCASE, c.id"
    );
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st
        .query_map([scope.id().0], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// One album of the space.
///
/// # Errors
/// [`DbError::NotFound`] when it is not an album of *this* space.
pub fn get(conn: &Connection, scope: &SpaceScope, id: i64) -> DbResult<Collection> {
    let sql = format!("SELECT {COLUMNS} FROM collections c WHERE c.id = ?1 AND c.space_id = ?2");
    conn.query_row(&sql, params![id, scope.id().0], from_row)
        .optional()?
        .ok_or(DbError::NotFound)
}

/// Deletes an album (its items stay in the space's media; its share links die).
///
/// # Errors
/// [`DbError::NotFound`] when it is not an album of this space.
pub fn delete(conn: &Connection, scope: &SpaceScope, id: i64) -> DbResult<()> {
    let n = conn.execute(
        "DELETE FROM collections WHERE id = ?1 AND space_id = ?2",
        params![id, scope.id().0],
    )?;
    if n == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// Puts a stored item of the space in one of its albums (no-op when it is there).
///
/// # Errors
/// [`DbError::NotFound`] when the album or the item is not of this space.
pub fn add_item(conn: &Connection, scope: &SpaceScope, id: i64, media: MediaId) -> DbResult<()> {
    get(conn, scope, id)?;
    super::media::get(conn, scope, media)?;
    conn.execute(
        "INSERT OR IGNORE INTO collection_items(collection_id, media_id, added_at) VALUES (?1, ?2, ?3)",
        params![id, media.0, now()],
    )?;
    Ok(())
}

/// Takes an item out of an album.
///
/// # Errors
/// [`DbError::NotFound`] when the album is not of this space.
pub fn remove_item(conn: &Connection, scope: &SpaceScope, id: i64, media: MediaId) -> DbResult<()> {
    get(conn, scope, id)?;
    conn.execute(
        "DELETE FROM collection_items WHERE collection_id = ?1 AND media_id = ?2",
        params![id, media.0],
    )?;
    Ok(())
}

/// The stored items of an album, newest first.
///
/// # Errors
/// [`DbError::NotFound`] when it is not an album of this space.
pub fn items(conn: &Connection, scope: &SpaceScope, id: i64) -> DbResult<Vec<MediaItem>> {
    get(conn, scope, id)?;
    super::media::in_collection(conn, id, None)
}

/// Marks or unmarks an item of the space as one of `user`'s favourites;
/// returns whether it is one now.
///
/// # Errors
/// [`DbError::NotFound`] when the item is not of this space.
pub fn toggle_favourite(
    conn: &Connection,
    scope: &SpaceScope,
    user: UserId,
    media: MediaId,
) -> DbResult<bool> {
    super::media::get(conn, scope, media)?;
    let removed = conn.execute(
        "DELETE FROM favourites WHERE user_id = ?1 AND media_id = ?2",
        params![user.0, media.0],
    )?;
    if removed > 0 {
        return Ok(false);
    }
    conn.execute(
        "INSERT INTO favourites(user_id, media_id, created_at) VALUES (?1, ?2, ?3)",
        params![user.0, media.0, now()],
    )?;
    Ok(true)
}

/// True when the item is one of `user`'s favourites.
pub fn is_favourite(conn: &Connection, user: UserId, media: MediaId) -> DbResult<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM favourites WHERE user_id = ?1 AND media_id = ?2",
            params![user.0, media.0],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// `user`'s favourite stored items of the space, newest first.
pub fn favourites(conn: &Connection, scope: &SpaceScope, user: UserId) -> DbResult<Vec<MediaItem>> {
    super::media::favourites_of(conn, scope.id(), user)
}

/// Records a share link of an album, by the SHA-256 of its token, valid
/// `days` days (1–365).
///
/// # Errors
/// [`DbError::NotFound`] when it is not an album of this space;
/// [`DbError::Invalid`] for a validity out of range.
pub fn create_share(
    conn: &Connection,
    scope: &SpaceScope,
    id: i64,
    token_hash: &[u8],
    days: i64,
    by: UserId,
) -> DbResult<ShareLink> {
    get(conn, scope, id)?;
    if !(1..=365).contains(&days) {
        return Err(DbError::Invalid("a share link lasts 1 to 365 days".into()));
    }
    let t = now();
    conn.execute(
        "INSERT INTO share_links(token_hash, collection_id, created_by, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![token_hash, id, by.0, t, t + days * 86_400],
    )?;
    Ok(ShareLink {
        id: conn.last_insert_rowid(),
        created_at: t,
        expires_at: t + days * 86_400,
        revoked_at: None,
    })
}

/// The share links of an album, newest first.
///
/// # Errors
/// [`DbError::NotFound`] when it is not an album of this space.
pub fn shares(conn: &Connection, scope: &SpaceScope, id: i64) -> DbResult<Vec<ShareLink>> {
    get(conn, scope, id)?;
    let mut st = conn.prepare_cached(
        "SELECT id, created_at, expires_at, revoked_at FROM share_links
         WHERE collection_id = ?1 ORDER BY id DESC",
    )?;
    let rows = st
        .query_map([id], |r| {
            Ok(ShareLink {
                id: r.get(0)?,
                created_at: r.get(1)?,
                expires_at: r.get(2)?,
                revoked_at: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Revokes a share link of an album of this space.
///
/// # Errors
/// [`DbError::NotFound`] when the link is not of an album of this space.
pub fn revoke_share(conn: &Connection, scope: &SpaceScope, share: i64) -> DbResult<()> {
    let n = conn.execute(
        "UPDATE share_links SET revoked_at = coalesce(revoked_at, ?1)
         WHERE id = ?2 AND collection_id IN (SELECT id FROM collections WHERE space_id = ?3)",
        params![now(), share, scope.id().0],
    )?;
    if n == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// Read-only access to one album, granted by a valid share link: made only
/// by [`resolve_share`].
#[derive(Debug, Clone)]
pub struct ShareScope {
    collection: i64,
    /// The album's name.
    pub name: String,
    /// The link's expiry, Unix seconds.
    pub expires_at: i64,
}

/// The album a share token opens, when the link exists, is not revoked and
/// has not expired at `now_s`.
pub fn resolve_share(
    conn: &Connection,
    token_hash: &[u8],
    now_s: i64,
) -> DbResult<Option<ShareScope>> {
    Ok(conn
        .query_row(
            "SELECT c.id, c.name, l.expires_at FROM share_links l
             JOIN collections c ON c.id = l.collection_id
             WHERE l.token_hash = ?1 AND l.revoked_at IS NULL AND l.expires_at > ?2",
            params![token_hash, now_s],
            |r| {
                Ok(ShareScope {
                    collection: r.get(0)?,
                    name: r.get(1)?,
                    expires_at: r.get(2)?,
                })
            },
        )
        .optional()?)
}

/// The shared album's stored items, newest first.
pub fn shared_items(conn: &Connection, share: &ShareScope) -> DbResult<Vec<MediaItem>> {
    super::media::in_collection(conn, share.collection, None)
}

/// One stored item of the shared album.
///
/// # Errors
/// [`DbError::NotFound`] when it is not in the shared album.
pub fn shared_item(conn: &Connection, share: &ShareScope, media: MediaId) -> DbResult<MediaItem> {
    super::media::in_collection(conn, share.collection, Some(media))?
        .pop()
        .ok_or(DbError::NotFound)
}
