//! Integrations of a space (outbound notification targets), their delivery
//! log, raw inbound webhook events (Meta, Stripe) and Meta account bindings.
//!
//! Secrets are stored sealed (see `crate::secrets`); this layer never sees
//! them in clear. Times are Unix seconds.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::{now, spaces::SpaceId, spaces::SpaceScope, DbError, DbResult};

/// Kinds of integration.
pub const KINDS: [&str; 5] = ["webhook", "telegram", "discord", "slack", "email"];

/// Event types an integration can subscribe to.
pub const EVENTS: [&str; 5] = [
    "media.added",
    "message.received",
    "ingest.failed",
    "system.status",
    "stats.daily",
];

/// An integration, as listed (its secret stays sealed).
#[derive(Debug, Clone, Serialize)]
pub struct Integration {
    /// Row id.
    pub id: i64,
    /// Its space.
    #[serde(skip)]
    pub space_id: SpaceId,
    /// `webhook`, `telegram`, `discord`, `slack` or `email`.
    pub kind: String,
    /// URL, chat id or email address.
    pub target: String,
    /// The sealed secret, if any (never serialized).
    #[serde(skip)]
    pub secret_sealed: Option<String>,
    /// Subscribed event types.
    pub events: Vec<String>,
    /// Off when paused.
    pub enabled: bool,
    /// Unix seconds.
    pub created_at: i64,
}

fn integration_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Integration> {
    let events: String = r.get(5)?;
    Ok(Integration {
        id: r.get(0)?,
        space_id: SpaceId(r.get(1)?),
        kind: r.get(2)?,
        target: r.get(3)?,
        secret_sealed: r.get(4)?,
        events: events
            .split(',')
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .collect(),
        enabled: r.get(6)?,
        created_at: r.get(7)?,
    })
}

const COLUMNS: &str = "id, space_id, kind, target, secret_sealed, events, enabled, created_at";

/// Checks a comma-separated event list; returns it normalized.
///
/// # Errors
/// [`DbError::Invalid`] naming an unknown event type.
pub fn parse_events(list: &str) -> DbResult<String> {
    let mut out = Vec::new();
    for e in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if !EVENTS.contains(&e) {
            return Err(DbError::Invalid(format!(
                "unknown event {e:?}: expected some of {}",
                EVENTS.join(", ")
            )));
        }
        if !out.contains(&e) {
            out.push(e);
        }
    }
    if out.is_empty() {
        return Err(DbError::Invalid(format!(
            "subscribe to at least one event: {}",
            EVENTS.join(", ")
        )));
    }
    Ok(out.join(","))
}

/// Adds an integration; returns its id.
///
/// # Errors
/// [`DbError::Invalid`] for an unknown kind or event.
pub fn create(
    conn: &Connection,
    scope: &SpaceScope,
    kind: &str,
    target: &str,
    secret_sealed: Option<&str>,
    events: &str,
) -> DbResult<i64> {
    if !KINDS.contains(&kind) {
        return Err(DbError::Invalid(format!(
            "unknown integration kind {kind:?}: expected one of {}",
            KINDS.join(", ")
        )));
    }
    let events = parse_events(events)?;
    conn.execute(
        "INSERT INTO integrations(space_id, kind, target, secret_sealed, events, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![scope.id().0, kind, target, secret_sealed, events, now()],
    )?;
    Ok(conn.last_insert_rowid())
}

/// The integrations of a space, oldest first.
pub fn list(conn: &Connection, scope: &SpaceScope) -> DbResult<Vec<Integration>> {
    let mut st = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM integrations WHERE space_id = ?1 ORDER BY id"
    ))?;
    let rows = st
        .query_map([scope.id().0], integration_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// One integration of the space.
pub fn get(conn: &Connection, scope: &SpaceScope, id: i64) -> DbResult<Integration> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM integrations WHERE id = ?1 AND space_id = ?2"),
        params![id, scope.id().0],
        integration_from_row,
    )
    .optional()?
    .ok_or(DbError::NotFound)
}

/// One integration, for the delivery job (the system acts; no scope).
pub fn get_unscoped(conn: &Connection, id: i64) -> DbResult<Integration> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM integrations WHERE id = ?1"),
        [id],
        integration_from_row,
    )
    .optional()?
    .ok_or(DbError::NotFound)
}

/// The space of an integration (for the CLI, which then takes an operator scope).
pub fn space_of(conn: &Connection, id: i64) -> DbResult<SpaceId> {
    conn.query_row(
        "SELECT space_id FROM integrations WHERE id = ?1",
        [id],
        |r| Ok(SpaceId(r.get(0)?)),
    )
    .optional()?
    .ok_or(DbError::NotFound)
}

/// Deletes an integration and its delivery log.
pub fn delete(conn: &Connection, scope: &SpaceScope, id: i64) -> DbResult<()> {
    let n = conn.execute(
        "DELETE FROM integrations WHERE id = ?1 AND space_id = ?2",
        params![id, scope.id().0],
    )?;
    if n == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// Pauses or resumes an integration.
pub fn set_enabled(conn: &Connection, scope: &SpaceScope, id: i64, on: bool) -> DbResult<()> {
    let n = conn.execute(
        "UPDATE integrations SET enabled = ?3 WHERE id = ?1 AND space_id = ?2",
        params![id, scope.id().0, on],
    )?;
    if n == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// Enabled integrations subscribed to `event` in `space` (`None`: every space).
pub fn subscribers(
    conn: &Connection,
    space: Option<SpaceId>,
    event: &str,
) -> DbResult<Vec<Integration>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM integrations
         WHERE enabled = 1 AND (?1 IS NULL OR space_id = ?1) AND (',' || events || ',') LIKE '%,' || ?2 || ',%'"
    ))?;
    let rows = st
        .query_map(params![space.map(|s| s.0), event], integration_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Every sealed secret (integration id, sealed text), for key rotation.
pub fn sealed_secrets(conn: &Connection) -> DbResult<Vec<(i64, String)>> {
    let mut st = conn.prepare(
        "SELECT id, secret_sealed FROM integrations WHERE secret_sealed IS NOT NULL ORDER BY id",
    )?;
    let rows = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Replaces an integration's sealed secret.
pub fn set_sealed_secret(conn: &Connection, id: i64, sealed: &str) -> DbResult<()> {
    conn.execute(
        "UPDATE integrations SET secret_sealed = ?2 WHERE id = ?1",
        params![id, sealed],
    )?;
    Ok(())
}

/// A row of the delivery log.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    /// Row id.
    pub id: i64,
    /// Its integration.
    pub integration_id: i64,
    /// `webhook-id` (`msg_…`), the same on every attempt.
    pub event_id: String,
    /// Event type.
    pub event_type: String,
    /// JSON body sent.
    pub payload: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    /// Attempts made.
    pub attempts: i64,
    /// The last error, as the target reported it.
    pub last_error: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

fn delivery_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        id: r.get(0)?,
        integration_id: r.get(1)?,
        event_id: r.get(2)?,
        event_type: r.get(3)?,
        payload: r.get(4)?,
        state: r.get(5)?,
        attempts: r.get(6)?,
        last_error: r.get(7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
    })
}

const DELIVERY_COLUMNS: &str =
    "id, integration_id, event_id, event_type, payload, state, attempts, last_error, created_at, updated_at";

/// Records a delivery to make; returns its id.
pub fn add_delivery(
    conn: &Connection,
    integration: i64,
    event_id: &str,
    event_type: &str,
    payload: &str,
) -> DbResult<i64> {
    let t = now();
    conn.execute(
        "INSERT INTO deliveries(integration_id, event_id, event_type, payload, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![integration, event_id, event_type, payload, t],
    )?;
    Ok(conn.last_insert_rowid())
}

/// One delivery (the job reads it).
pub fn delivery(conn: &Connection, id: i64) -> DbResult<Delivery> {
    conn.query_row(
        &format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?1"),
        [id],
        delivery_from_row,
    )
    .optional()?
    .ok_or(DbError::NotFound)
}

/// Records one attempt's outcome: `delivered`, `failed` (for good), or still `pending`.
pub fn record_attempt(
    conn: &Connection,
    id: i64,
    state: &str,
    error: Option<&str>,
) -> DbResult<()> {
    conn.execute(
        "UPDATE deliveries SET state = ?2, attempts = attempts + 1, last_error = ?3, updated_at = ?4 WHERE id = ?1",
        params![id, state, error, now()],
    )?;
    Ok(())
}

/// Marks a delivery failed for good without counting an attempt (its job gave up).
pub fn give_up_delivery(conn: &Connection, id: i64) -> DbResult<()> {
    conn.execute(
        "UPDATE deliveries SET state = 'failed', updated_at = ?2 WHERE id = ?1 AND state = 'pending'",
        params![id, now()],
    )?;
    Ok(())
}

/// The latest deliveries of an integration, newest first.
pub fn deliveries(
    conn: &Connection,
    scope: &SpaceScope,
    integration: i64,
    limit: i64,
) -> DbResult<Vec<Delivery>> {
    get(conn, scope, integration)?;
    let mut st = conn.prepare(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE integration_id = ?1 ORDER BY id DESC LIMIT ?2"
    ))?;
    let rows = st
        .query_map(params![integration, limit], delivery_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Stores a raw inbound webhook body. Returns its row id, or `None` when an
/// event with the same `external_id` from this source was already stored.
pub fn store_webhook_event(
    conn: &Connection,
    source: &str,
    external_id: Option<&str>,
    body: &[u8],
) -> DbResult<Option<i64>> {
    let n = conn.execute(
        "INSERT INTO webhook_events(source, external_id, body, received_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(source, external_id) DO NOTHING",
        params![source, external_id, body, now()],
    )?;
    Ok((n == 1).then(|| conn.last_insert_rowid()))
}

/// A stored webhook body.
pub fn webhook_event(conn: &Connection, id: i64) -> DbResult<Vec<u8>> {
    conn.query_row("SELECT body FROM webhook_events WHERE id = ?1", [id], |r| {
        r.get(0)
    })
    .optional()?
    .ok_or(DbError::NotFound)
}

/// Records what became of a webhook event (`processed`, `ignored`, `failed`) and why.
pub fn set_webhook_state(
    conn: &Connection,
    id: i64,
    state: &str,
    note: Option<&str>,
) -> DbResult<()> {
    conn.execute(
        "UPDATE webhook_events SET state = ?2, note = ?3 WHERE id = ?1",
        params![id, state, note],
    )?;
    Ok(())
}

/// Counts webhook events by source and state, for the stats page and tests.
pub fn webhook_counts(conn: &Connection) -> DbResult<Vec<(String, String, i64)>> {
    let mut st = conn.prepare(
        "SELECT source, state, count(*) FROM webhook_events GROUP BY source, state ORDER BY source, state",
    )?;
    let rows = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Binds a WhatsApp phone number id or an Instagram account id to a space.
pub fn bind_meta_account(
    conn: &Connection,
    scope: &SpaceScope,
    kind: &str,
    account_id: &str,
) -> DbResult<()> {
    if !matches!(kind, "whatsapp" | "instagram") {
        return Err(DbError::Invalid(
            "the account kind is whatsapp or instagram".into(),
        ));
    }
    if account_id.trim().is_empty() {
        return Err(DbError::Invalid("the account id is empty".into()));
    }
    conn.execute(
        "INSERT INTO meta_accounts(account_id, kind, space_id) VALUES (?1, ?2, ?3)
         ON CONFLICT(account_id) DO UPDATE SET kind = excluded.kind, space_id = excluded.space_id",
        params![account_id.trim(), kind, scope.id().0],
    )?;
    Ok(())
}

/// The space a Meta account id is bound to.
pub fn meta_account_space(conn: &Connection, account_id: &str) -> DbResult<Option<SpaceId>> {
    Ok(conn
        .query_row(
            "SELECT space_id FROM meta_accounts WHERE account_id = ?1",
            [account_id],
            |r| Ok(SpaceId(r.get(0)?)),
        )
        .optional()?)
}
