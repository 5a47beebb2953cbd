//! Email digests to staff who are away.
//!
//! When a staff member has had no open session for `inbox_email_after_minutes`
//! and conversations of their studios received messages they have not read
//! since their last digest, one email lists those conversations. At most one
//! digest per window per person (no email storm); a per-user preference turns
//! it off. Sending is a durable job (`inbox.digest`) with retries; SMTP goes
//! through lettre (`smtp://` plain for a local relay, `smtp://…?tls=required`
//! for STARTTLS, `smtps://` for TLS; rustls).

use std::sync::Arc;

use lettre::{
    message::header::ContentType, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use rusqlite::params;

use crate::{
    db::{self, jobs::NewJob, users::UserId},
    jobs::JobError,
    notify::SendError,
    App,
};

/// Job kind that sends one digest (payload `{"user_id", "at"}`).
pub const DIGEST_JOB: &str = "inbox.digest";

/// Queues a digest for every staff member who is away and has news. `now` is
/// Unix seconds (a parameter, so tests can move the clock). Returns how many.
pub async fn scan(app: &Arc<App>, now: i64) -> Result<usize, db::DbError> {
    if app.config.smtp_url.is_none() {
        return Ok(0);
    }
    let window = app.config.inbox_email_after_minutes * 60;
    let candidates: Vec<i64> = app
        .db
        .run(move |c| {
            let mut st = c.prepare(
                "SELECT u.id FROM users u
                 WHERE u.email IS NOT NULL AND u.email_digest = 1
                   AND coalesce(u.last_seen_at, 0) <= ?1 - ?2
                   AND coalesce(u.last_digest_at, 0) <= ?1 - ?2
                   AND EXISTS (
                     SELECT 1 FROM inbox_messages m JOIN conversations cv ON cv.id = m.conversation_id
                     JOIN memberships ms ON ms.space_id = cv.space_id AND ms.user_id = u.id
                     WHERE m.deleted_at IS NULL AND m.created_at > coalesce(u.last_digest_at, 0)
                       AND m.created_at <= ?1
                       AND NOT (m.author_kind = 'staff' AND m.author_user_id = u.id)
                       AND m.id > coalesce((SELECT last_read_id FROM conversation_reads r
                                            WHERE r.conversation_id = cv.id AND r.user_id = u.id), 0))",
            )?;
            let rows = st.query_map(params![now, window], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await?;
    let mut n = 0;
    for user in candidates {
        if app.hub.is_online(UserId(user)) {
            continue;
        }
        let queued = app
            .db
            .run(move |c| {
                db::jobs::enqueue(
                    c,
                    &NewJob {
                        kind: DIGEST_JOB,
                        payload: serde_json::json!({ "user_id": user, "at": now }),
                        dedup_key: Some(format!("digest:{user}:{now}")),
                        space: None,
                        max_attempts: 5,
                    },
                )
            })
            .await?;
        n += usize::from(queued.is_some());
    }
    if n > 0 {
        app.jobs_added.notify_waiters();
    }
    Ok(n)
}

/// Job `inbox.digest`: composes and sends one digest, then records it.
pub async fn send(app: &Arc<App>, payload: &serde_json::Value) -> Result<(), JobError> {
    let user = payload
        .get("user_id")
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| JobError::Permanent("no user_id".into()))?;
    let at = payload
        .get("at")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or_else(db::now);
    let url = app
        .config
        .smtp_url
        .as_ref()
        .map(|s| s.expose().to_string())
        .ok_or_else(|| JobError::Permanent("smtp_url is not configured".into()))?;
    let (email, lines, since) = app
        .db
        .run(move |c| {
            let (email, since): (Option<String>, Option<i64>) =
                c.query_row("SELECT email, last_digest_at FROM users WHERE id = ?1", [user], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let mut st = c.prepare(
                "SELECT s.name, ct.name, count(m.id),
                        (SELECT text FROM inbox_messages l WHERE l.conversation_id = cv.id AND l.deleted_at IS NULL ORDER BY l.id DESC LIMIT 1)
                 FROM conversations cv JOIN spaces s ON s.id = cv.space_id JOIN contacts ct ON ct.id = cv.contact_id
                 JOIN memberships ms ON ms.space_id = cv.space_id AND ms.user_id = ?1
                 JOIN inbox_messages m ON m.conversation_id = cv.id AND m.deleted_at IS NULL
                   AND NOT (m.author_kind = 'staff' AND m.author_user_id = ?1)
                   AND m.id > coalesce((SELECT last_read_id FROM conversation_reads r WHERE r.conversation_id = cv.id AND r.user_id = ?1), 0)
                 GROUP BY cv.id HAVING max(m.created_at) > coalesce(?2, 0)
                 ORDER BY max(m.created_at) DESC LIMIT 50",
            )?;
            let lines: Vec<(String, String, i64, String)> = st
                .query_map(params![user, since], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, Option<String>>(3)?.unwrap_or_default())))?
                .collect::<Result<_, _>>()?;
            Ok((email, lines, since))
        })
        .await?;
    let Some(email) = email else { return Ok(()) };
    if lines.is_empty() || since.is_some_and(|s| s >= at) {
        return Ok(());
    }
    let total: i64 = lines.iter().map(|l| l.2).sum();
    let mut body = format!(
        "You have {total} unread message(s) in {} conversation(s):\n\n",
        lines.len()
    );
    for (space, contact, unread, last) in &lines {
        let excerpt: String = last.chars().take(120).collect();
        body.push_str(&format!(
            "- {contact} ({space}): {unread} unread; last: \"{excerpt}\"\n"
        ));
    }
    if let Some(u) = &app.config.public_url {
        body.push_str(&format!("\nOpen the inbox: {u}\n"));
    }
    send_one(
        app,
        Some(&url),
        &email,
        &format!("{} unread conversation(s)", lines.len()),
        &body,
    )
    .await
    .map_err(|e| match e {
        SendError::Permanent(m) => JobError::Permanent(m),
        SendError::Retry(m) => JobError::retry(m),
    })?;
    app.db
        .run(move |c| {
            c.execute(
                "UPDATE users SET last_digest_at = ?2 WHERE id = ?1",
                params![user, at],
            )?;
            Ok(())
        })
        .await?;
    Ok(())
}

/// Sends one plain-text email through `smtp_url` (else the configured
/// `smtp_url`), from `smtp_from`.
///
/// # Errors
/// [`SendError::Permanent`] for a bad address or URL or an SMTP 5xx reply;
/// [`SendError::Retry`] for a connection, TLS or 4xx problem.
pub async fn send_one(
    app: &App,
    smtp_url: Option<&str>,
    to: &str,
    subject: &str,
    body: &str,
) -> Result<(), SendError> {
    let url = smtp_url
        .map(str::to_string)
        .or_else(|| app.config.smtp_url.as_ref().map(|s| s.expose().to_string()))
        .ok_or_else(|| SendError::Permanent("no SMTP server: set smtp_url".into()))?;
    let from = app.config.smtp_from.clone();
    let message = Message::builder()
        .from(
            from.parse()
                .map_err(|e| SendError::Permanent(format!("smtp_from {from:?}: {e}")))?,
        )
        .to(to
            .parse()
            .map_err(|e| SendError::Permanent(format!("address {to:?}: {e}")))?)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(body.to_string())
        .map_err(|e| SendError::Permanent(e.to_string()))?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
        .map_err(|e| SendError::Permanent(crate::redact(&format!("SMTP URL: {e}"))))?
        .timeout(Some(std::time::Duration::from_secs(20)))
        .build();
    transport.send(message).await.map(|_| ()).map_err(|e| {
        let text = crate::redact(&format!("SMTP: {e}"));
        if e.is_permanent() {
            SendError::Permanent(text)
        } else {
            SendError::Retry(text)
        }
    })
}

/// Scans for digests every 30 s until shutdown.
pub async fn run(app: Arc<App>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    if app.config.smtp_url.is_none() {
        return;
    }
    loop {
        if let Err(e) = scan(&app, db::now()).await {
            tracing::warn!(error = %e, "digest scan failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(30)) => {}
            _ = shutdown.changed() => break,
        }
    }
}
