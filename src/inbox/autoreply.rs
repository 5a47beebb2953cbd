//! The autoresponder: answers a contact's message while the studio is away
//! or busy, at most once per cooldown per contact, never to the contacts on
//! the space's exclusion list. Works on every bridged channel (Telegram
//! private chats, WhatsApp, Instagram): the reply is a system message
//! delivered like a staff reply.

use chrono::{Datelike, TimeZone};

use crate::db::{self, autoreply::Settings, spaces::SpaceId};

/// Default texts when the space has not written its own.
fn default_text(mode: &str, french: bool) -> &'static str {
    match (mode, french) {
        ("busy", true) => "Merci pour votre message ! Nous sommes très occupés en ce moment et vous répondrons dès que possible.",
        ("busy", false) => "Thanks for your message! We are busy right now and will answer as soon as we can.",
        (_, true) => "Merci pour votre message ! Le studio est fermé pour le moment ; nous vous répondrons dès notre retour.",
        (_, false) => "Thanks for your message! The studio is closed right now; we will answer when we are back.",
    }
}

/// The mode in force at `now` (Unix seconds): `off`, `away` or `busy`.
/// `schedule` is `off` inside an opening window (local time of `tz`), else `away`.
pub fn effective_mode(s: &Settings, tz: &str, now: i64) -> &'static str {
    match s.mode.as_str() {
        "away" => "away",
        "busy" => "busy",
        "schedule" => {
            let tz: chrono_tz::Tz = tz.parse().unwrap_or(chrono_tz::UTC);
            let Some(local) = tz.timestamp_opt(now, 0).single() else {
                return "away";
            };
            let day = local.weekday().num_days_from_monday() as u8;
            let time = local.format("%H:%M").to_string();
            let open = s.open.iter().any(|(d, from, to)| {
                *d == day && from.as_str() <= time.as_str() && time.as_str() < to.as_str()
            });
            if open {
                "off"
            } else {
                "away"
            }
        }
        _ => "off",
    }
}

/// Called in the transaction that added a contact's message: adds and
/// queues the automatic reply when one is due. Returns the jobs queued (0 or 1).
pub fn on_contact_message(
    c: &rusqlite::Connection,
    space: SpaceId,
    contact: i64,
    conversation: i64,
) -> db::DbResult<usize> {
    let s = db::autoreply::get(c, space)?;
    if s.mode == "off" || s.never.contains(&contact) {
        return Ok(0);
    }
    let now = db::now();
    let mode = effective_mode(&s, &db::autoreply::time_zone(c, space)?, now);
    if mode == "off" {
        return Ok(0);
    }
    if db::autoreply::last_reply(c, contact)?.is_some_and(|t| now - t < s.cooldown_hours * 3600) {
        return Ok(0);
    }
    let french = db::spaces::language(c, space)? == "fr";
    let own = match (mode, french) {
        ("busy", true) => s.busy_fr.as_ref().or(s.busy_en.as_ref()),
        ("busy", false) => s.busy_en.as_ref().or(s.busy_fr.as_ref()),
        (_, true) => s.away_fr.as_ref().or(s.away_en.as_ref()),
        (_, false) => s.away_en.as_ref().or(s.away_fr.as_ref()),
    };
    let text = own
        .filter(|t| !t.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| default_text(mode, french).to_string());
    let message = db::inbox::add_auto_reply(c, conversation, &text)?;
    db::autoreply::record_reply(c, space, contact, now)?;
    super::enqueue_delivery(c, message, space)?;
    Ok(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_opens_and_closes_in_the_space_time_zone() {
        let s = Settings {
            mode: "schedule".into(),
            open: vec![(0, "09:00".into(), "18:00".into())],
            ..Settings::default()
        };
        // Monday 2026-11-23 08:30 UTC = 09:30 in Paris (open), 08:30 in UTC (closed).
        let t = chrono::Utc
            .with_ymd_and_hms(2026, 11, 23, 8, 30, 0)
            .unwrap()
            .timestamp();
        assert_eq!(effective_mode(&s, "Europe/Paris", t), "off");
        assert_eq!(effective_mode(&s, "UTC", t), "away");
        // Tuesday: no window.
        assert_eq!(effective_mode(&s, "Europe/Paris", t + 86_400), "away");
        let busy = Settings {
            mode: "busy".into(),
            ..Settings::default()
        };
        assert_eq!(effective_mode(&busy, "UTC", t), "busy");
    }
}
