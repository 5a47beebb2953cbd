//! Autoresponder settings of a space and the log of automatic replies.

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::{spaces::SpaceId, spaces::SpaceScope, DbError, DbResult};

/// One opening window of the weekly schedule: weekday (0 = Monday), from, to (`HH:MM`, local time).
pub type Window = (u8, String, String);

/// A space's autoresponder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Settings {
    /// `off`, `away`, `busy`, or `schedule` (away outside the opening windows).
    pub mode: String,
    /// Opening windows, for `schedule`.
    #[serde(default)]
    pub open: Vec<Window>,
    /// Away message, English.
    #[serde(default)]
    pub away_en: Option<String>,
    /// Away message, French.
    #[serde(default)]
    pub away_fr: Option<String>,
    /// Busy message, English.
    #[serde(default)]
    pub busy_en: Option<String>,
    /// Busy message, French.
    #[serde(default)]
    pub busy_fr: Option<String>,
    /// Hours before the same contact is auto-answered again.
    pub cooldown_hours: i64,
    /// Contacts never auto-answered.
    #[serde(default)]
    pub never: Vec<i64>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            mode: "off".into(),
            open: Vec::new(),
            away_en: None,
            away_fr: None,
            busy_en: None,
            busy_fr: None,
            cooldown_hours: 12,
            never: Vec::new(),
        }
    }
}

/// The autoresponder of a space (defaults when never set).
pub fn get(conn: &Connection, space: SpaceId) -> DbResult<Settings> {
    Ok(conn
        .query_row(
            "SELECT mode, schedule, away_en, away_fr, busy_en, busy_fr, cooldown_hours, never
             FROM autoresponders WHERE space_id = ?1",
            [space.0],
            |r| {
                let schedule: Option<String> = r.get(1)?;
                let never: String = r.get(7)?;
                Ok(Settings {
                    mode: r.get(0)?,
                    open: schedule
                        .and_then(|s| serde_json::from_str(&s).ok())
                        .unwrap_or_default(),
                    away_en: r.get(2)?,
                    away_fr: r.get(3)?,
                    busy_en: r.get(4)?,
                    busy_fr: r.get(5)?,
                    cooldown_hours: r.get(6)?,
                    never: never
                        .split(',')
                        .filter_map(|n| n.trim().parse().ok())
                        .collect(),
                })
            },
        )
        .optional()?
        .unwrap_or_default())
}

/// Saves the autoresponder of a space.
///
/// # Errors
/// [`DbError::Invalid`] for an unknown mode, a bad window or a negative cooldown.
pub fn set(conn: &Connection, scope: &SpaceScope, s: &Settings) -> DbResult<()> {
    if !matches!(s.mode.as_str(), "off" | "away" | "busy" | "schedule") {
        return Err(DbError::Invalid(
            "the mode is off, away, busy or schedule".into(),
        ));
    }
    if s.cooldown_hours < 0 {
        return Err(DbError::Invalid("the cooldown is 0 hours or more".into()));
    }
    for (day, from, to) in &s.open {
        let ok = |t: &str| chrono::NaiveTime::parse_from_str(t, "%H:%M").is_ok();
        if *day > 6 || !ok(from) || !ok(to) {
            return Err(DbError::Invalid(format!(
                "bad opening window ({day}, {from}, {to}): weekday 0–6 (Monday = 0), times HH:MM"
            )));
        }
    }
    let never: Vec<String> = s.never.iter().map(ToString::to_string).collect();
    conn.execute(
        "INSERT INTO autoresponders(space_id, mode, schedule, away_en, away_fr, busy_en, busy_fr, cooldown_hours, never)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT(space_id) DO UPDATE SET mode = excluded.mode, schedule = excluded.schedule,
           away_en = excluded.away_en, away_fr = excluded.away_fr, busy_en = excluded.busy_en,
           busy_fr = excluded.busy_fr, cooldown_hours = excluded.cooldown_hours, never = excluded.never",
        params![
            scope.id().0,
            s.mode,
            serde_json::to_string(&s.open).expect("serializable"),
            s.away_en,
            s.away_fr,
            s.busy_en,
            s.busy_fr,
            s.cooldown_hours,
            never.join(",")
        ],
    )?;
    Ok(())
}

/// When the contact was last auto-answered (Unix seconds).
pub fn last_reply(conn: &Connection, contact: i64) -> DbResult<Option<i64>> {
    Ok(conn.query_row(
        "SELECT max(sent_at) FROM auto_replies WHERE contact_id = ?1",
        [contact],
        |r| r.get(0),
    )?)
}

/// Logs an automatic reply.
pub fn record_reply(conn: &Connection, space: SpaceId, contact: i64, at: i64) -> DbResult<()> {
    conn.execute(
        "INSERT INTO auto_replies(space_id, contact_id, sent_at) VALUES (?1, ?2, ?3)",
        params![space.0, contact, at],
    )?;
    Ok(())
}

/// Automatic replies sent by a space.
pub fn count(conn: &Connection, space: SpaceId) -> DbResult<i64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM auto_replies WHERE space_id = ?1",
        [space.0],
        |r| r.get(0),
    )?)
}

/// The IANA time zone of a space (`UTC` by default).
pub fn time_zone(conn: &Connection, space: SpaceId) -> DbResult<String> {
    Ok(conn.query_row(
        "SELECT time_zone FROM spaces WHERE id = ?1",
        [space.0],
        |r| r.get(0),
    )?)
}

/// Sets the IANA time zone of a space.
///
/// # Errors
/// [`DbError::Invalid`] for a name that is not in the time zone database.
pub fn set_time_zone(conn: &Connection, scope: &SpaceScope, tz: &str) -> DbResult<()> {
    if tz.parse::<chrono_tz::Tz>().is_err() {
        return Err(DbError::Invalid(format!(
            "{tz:?} is not a time zone name (e.g. Europe/Paris)"
        )));
    }
    conn.execute(
        "UPDATE spaces SET time_zone = ?2 WHERE id = ?1",
        params![scope.id().0, tz],
    )?;
    Ok(())
}
