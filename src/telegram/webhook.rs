//! `POST /hooks/telegram`: the webhook receiver.
//!
//! Contract (<https://core.telegram.org/bots/api#setwebhook>): Telegram sends
//! one `Update` per request with the header `X-Telegram-Bot-Api-Secret-Token`
//! we gave to `setWebhook`, and retries until it gets a 2xx. We answer:
//! - 401 when the header is missing or wrong (constant-time comparison);
//! - 400 when the body is not a JSON `Update`;
//! - 200 only after the raw update is committed (WAL, `synchronous=FULL`), so
//!   a power cut after the 200 loses nothing; processing happens later in a job;
//! - 503 when the commit failed, so Telegram retries.
//!
//! A well-formed update of a kind we do not ingest is stored and acknowledged,
//! never refused, or Telegram would retry it forever.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use subtle::ConstantTimeEq;

use crate::{
    db::{self, telegram::RawUpdate},
    error::AppError,
    App,
};

/// The header Telegram sets on webhook requests.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// Receives one update; see the module documentation for the statuses.
pub async fn receive(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, AppError> {
    let expected = app
        .config
        .telegram_webhook_secret
        .as_ref()
        .ok_or(AppError::Unauthorized)?;
    let given = headers
        .get(SECRET_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !bool::from(given.ct_eq(expected.expose().as_bytes())) {
        return Err(AppError::Unauthorized);
    }
    let raw = std::str::from_utf8(&body)
        .map_err(|_| AppError::BadRequest("body is not UTF-8 JSON".into()))?
        .to_string();
    let (update_id, _) = super::parse_update(&raw).map_err(AppError::BadRequest)?;
    let value: serde_json::Value = serde_json::from_str(&raw)
        .map_err(|e| AppError::BadRequest(format!("body is not JSON: {e}")))?;
    let update = RawUpdate {
        update_id,
        chat_id: super::chat_id_of(&value),
        raw,
    };
    // Group commit: concurrent updates share one durable transaction.
    let new = app
        .db
        .write(move |c| db::telegram::store_updates(c, std::slice::from_ref(&update), "webhook"))
        .await
        .map_err(|e| AppError::Unavailable(format!("update not stored, retry: {e}")))?;
    if new > 0 {
        metrics::counter!("appliance_updates_received_total", "via" => "webhook")
            .increment(new as u64);
        app.jobs_added.notify_waiters();
    } else {
        tracing::debug!(update_id, "duplicate update acknowledged");
    }
    Ok(StatusCode::OK)
}
