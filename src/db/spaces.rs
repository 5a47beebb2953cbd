//! Spaces (a family or a studio), memberships, and the [`SpaceScope`] proof.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::{now, users::UserId, DbError, DbResult};

/// A space id (`spaces.id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct SpaceId(pub i64);

/// A space: the unit of ownership and isolation of data.
#[derive(Debug, Clone, Serialize)]
pub struct Space {
    /// Row id.
    pub id: SpaceId,
    /// URL-safe short name, unique (`[a-z0-9-]{1,40}`).
    pub slug: String,
    /// Display name.
    pub name: String,
}

/// A member's role in a space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read only.
    Viewer,
    /// Reads and adds content.
    Member,
    /// Manages the space (bindings, members).
    Owner,
}

impl Role {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Owner => "owner",
        }
    }
    fn parse(s: &str) -> Role {
        match s {
            "owner" => Role::Owner,
            "member" => Role::Member,
            _ => Role::Viewer,
        }
    }
}

/// Proof that the holder may read one space.
///
/// The only constructors are [`authorize`] (a user's membership, checked in
/// the database) and [`operator_scope`] (the local operator on the CLI, who
/// owns the data directory anyway). Every query that reads a space's content
/// takes a `&SpaceScope` and filters on [`SpaceScope::id`], so a handler cannot
/// forget the membership check: without a scope it cannot call the query.
#[derive(Debug, Clone)]
pub struct SpaceScope {
    space: Space,
    role: Role,
}

impl SpaceScope {
    /// The space this scope grants.
    pub fn space(&self) -> &Space {
        &self.space
    }
    /// Its id, for SQL filters.
    pub fn id(&self) -> SpaceId {
        self.space.id
    }
    /// The holder's role.
    pub fn role(&self) -> Role {
        self.role
    }
}

/// Checks a slug: 1–40 characters of `a-z`, `0-9`, `-`, not starting with `-`.
pub fn validate_slug(slug: &str) -> DbResult<()> {
    let ok = (1..=40).contains(&slug.len())
        && !slug.starts_with('-')
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(DbError::Invalid(format!(
            "space slug {slug:?}: use 1-40 characters of a-z, 0-9 and '-'"
        )))
    }
}

fn space_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Space> {
    Ok(Space {
        id: SpaceId(r.get(0)?),
        slug: r.get(1)?,
        name: r.get(2)?,
    })
}

/// Creates a space.
///
/// # Errors
/// [`DbError::Invalid`] for a bad slug, [`DbError::Conflict`] when it exists.
pub fn create(conn: &Connection, slug: &str, name: &str) -> DbResult<Space> {
    validate_slug(slug)?;
    let exists: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM spaces WHERE slug = ?1)",
        [slug],
        |r| r.get(0),
    )?;
    if exists {
        return Err(DbError::Conflict(format!("space {slug:?} already exists")));
    }
    conn.execute(
        "INSERT INTO spaces(slug, name, created_at) VALUES (?1, ?2, ?3)",
        params![slug, name, now()],
    )?;
    Ok(Space {
        id: SpaceId(conn.last_insert_rowid()),
        slug: slug.into(),
        name: name.into(),
    })
}

/// Language of a space's texts, for stemming in the search index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// French stemming only.
    Fr,
    /// English stemming only.
    En,
    /// Both (the default).
    Both,
}

impl Language {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Fr => "fr",
            Language::En => "en",
            Language::Both => "both",
        }
    }
}

/// Sets the language of a space and queues its documents for re-indexing.
pub fn set_language(conn: &Connection, space: SpaceId, language: Language) -> DbResult<()> {
    conn.execute(
        "UPDATE spaces SET language = ?2 WHERE id = ?1",
        params![space.0, language.as_str()],
    )?;
    super::search::mark_all_dirty(conn, Some(space))?;
    Ok(())
}

/// Finds a space by slug.
pub fn find(conn: &Connection, slug: &str) -> DbResult<Space> {
    conn.query_row(
        "SELECT id, slug, name FROM spaces WHERE slug = ?1",
        [slug],
        space_from_row,
    )
    .optional()?
    .ok_or(DbError::NotFound)
}

/// A space by id.
pub fn get(conn: &Connection, id: SpaceId) -> DbResult<Space> {
    conn.query_row(
        "SELECT id, slug, name FROM spaces WHERE id = ?1",
        [id.0],
        space_from_row,
    )
    .optional()?
    .ok_or(DbError::NotFound)
}

/// Every space, by slug.
pub fn list_all(conn: &Connection) -> DbResult<Vec<Space>> {
    let mut st = conn.prepare("SELECT id, slug, name FROM spaces ORDER BY slug")?;
    let rows = st.query_map([], space_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Grants (or changes) a user's role in a space.
pub fn grant(conn: &Connection, space: SpaceId, user: UserId, role: Role) -> DbResult<()> {
    conn.execute(
        "INSERT INTO memberships(space_id, user_id, role) VALUES (?1, ?2, ?3)
         ON CONFLICT(space_id, user_id) DO UPDATE SET role = excluded.role",
        params![space.0, user.0, role.as_str()],
    )?;
    Ok(())
}

/// The spaces a user is a member of, with the role.
pub fn list_for_user(conn: &Connection, user: UserId) -> DbResult<Vec<SpaceScope>> {
    let mut st = conn.prepare(
        "SELECT s.id, s.slug, s.name, m.role FROM spaces s
         JOIN memberships m ON m.space_id = s.id WHERE m.user_id = ?1 ORDER BY s.name",
    )?;
    let rows = st.query_map([user.0], |r| {
        Ok(SpaceScope {
            space: space_from_row(r)?,
            role: Role::parse(&r.get::<_, String>(3)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The scope of `user` in the space `slug`.
///
/// # Errors
/// [`DbError::NotFound`] when the space does not exist *or* the user is not a
/// member: callers answer 404 either way, never revealing which.
pub fn authorize(conn: &Connection, user: UserId, slug: &str) -> DbResult<SpaceScope> {
    membership(conn, "s.slug = ?1", &slug, user)
}

fn membership(
    conn: &Connection,
    filter: &str,
    space: &dyn rusqlite::ToSql,
    user: UserId,
) -> DbResult<SpaceScope> {
    conn.prepare_cached(&format!(
        "SELECT s.id, s.slug, s.name, m.role FROM spaces s
             JOIN memberships m ON m.space_id = s.id WHERE {filter} AND m.user_id = ?2"
    ))?
    .query_row(params![space, user.0], |r| {
        Ok(SpaceScope {
            space: space_from_row(r)?,
            role: Role::parse(&r.get::<_, String>(3)?),
        })
    })
    .optional()?
    .ok_or(DbError::NotFound)
}

/// The scope of `user` in the space with this id (for routes named by a
/// conversation or a message rather than a space).
///
/// # Errors
/// [`DbError::NotFound`] when the user is not a member.
pub fn authorize_id(conn: &Connection, user: UserId, space: SpaceId) -> DbResult<SpaceScope> {
    membership(conn, "s.id = ?1", &space.0, user)
}

/// The language of a space (`fr`, `en` or `both`).
pub fn language(conn: &Connection, space: SpaceId) -> DbResult<String> {
    Ok(conn.query_row(
        "SELECT language FROM spaces WHERE id = ?1",
        [space.0],
        |r| r.get(0),
    )?)
}

/// Ids of the members of a space.
pub fn member_ids(conn: &Connection, space: SpaceId) -> DbResult<Vec<UserId>> {
    let mut st = conn.prepare_cached("SELECT user_id FROM memberships WHERE space_id = ?1")?;
    let rows = st.query_map([space.0], |r| Ok(UserId(r.get(0)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A scope for the local operator (CLI): full access to one space.
pub fn operator_scope(space: Space) -> SpaceScope {
    SpaceScope {
        space,
        role: Role::Owner,
    }
}
