//! `POST /hooks/stripe`: Stripe webhook events (deposits of appointments).
//!
//! Verification follows <https://docs.stripe.com/webhooks#verify-manually>:
//! the `Stripe-Signature` header is `t=<unix seconds>,v1=<hex>[,v1=<hex>…]`
//! (other schemes ignored); a `v1` must equal HMAC-SHA256 of `t.payload`
//! under the endpoint secret (compared in constant time; several `v1` are
//! allowed during a secret roll); `t` must be within `stripe_tolerance_s`
//! (300 s) of now. Answers: 503 when no secret is configured; 401 for a
//! missing or wrong signature; 400 for a stale timestamp or a body that is
//! not an event; 200 once the raw event is committed, also for a replay of an
//! event id already received (processed once) and for event types we do not
//! handle (recorded as `ignored`).
//!
//! `checkout.session.completed` and `payment_intent.succeeded` whose
//! `data.object.metadata.appointment_id` names an appointment mark its deposit
//! paid and post a system message in its conversation.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use hmac::{KeyInit, Mac};
use serde_json::Value;

use crate::{db, error::AppError, App};

/// Why a signature was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Missing header, no `t=`/`v1=`, or no `v1` matches: 401.
    #[error("no valid Stripe-Signature")]
    Invalid,
    /// Signed, but `t` is further than the tolerance from now: 400.
    #[error("the Stripe-Signature timestamp is {0} s away from now (tolerance exceeded)")]
    Stale(i64),
}

/// Checks `header` for `payload` at `now` (Unix seconds).
///
/// # Errors
/// [`SignatureError`].
pub fn verify(
    secret: &str,
    header: Option<&str>,
    payload: &[u8],
    now: i64,
    tolerance_s: i64,
) -> Result<i64, SignatureError> {
    let header = header.ok_or(SignatureError::Invalid)?;
    let mut t = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => {
                if let Ok(sig) = hex::decode(v) {
                    signatures.push(sig);
                }
            }
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Invalid)?;
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    let valid = signatures
        .iter()
        .any(|sig| mac.clone().verify_slice(sig).is_ok());
    if !valid {
        return Err(SignatureError::Invalid);
    }
    if (now - t).abs() > tolerance_s {
        return Err(SignatureError::Stale(now - t));
    }
    Ok(t)
}

/// The appointment id in an event's `data.object.metadata`, as a number or a string.
fn appointment_of(event: &Value) -> Option<i64> {
    let v = &event["data"]["object"]["metadata"]["appointment_id"];
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

/// Receives one event; see the module documentation for the statuses.
pub async fn receive(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, AppError> {
    let secret = app.config.stripe_webhook_secret.as_ref().ok_or_else(|| {
        AppError::Unavailable(
            "Stripe webhooks are not configured: set APPLIANCE_STRIPE_WEBHOOK_SECRET".into(),
        )
    })?;
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    match verify(
        secret.expose(),
        header,
        &body,
        db::now(),
        app.config.stripe_tolerance_s,
    ) {
        Ok(_) => {}
        Err(SignatureError::Invalid) => return Err(AppError::Unauthorized),
        Err(e @ SignatureError::Stale(_)) => return Err(AppError::BadRequest(e.to_string())),
    }
    let event: Value = serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest(format!("body is not JSON: {e}")))?;
    let id = event["id"]
        .as_str()
        .ok_or_else(|| AppError::BadRequest("the event has no id".into()))?
        .to_string();
    let kind = event["type"].as_str().unwrap_or("").to_string();
    let body = body.to_vec();
    let touched = app
        .db
        .write(move |c| {
            let Some(row) = db::integrations::store_webhook_event(c, "stripe", Some(&id), &body)?
            else {
                return Ok(None); // a replay: already recorded and processed
            };
            let handled = matches!(
                kind.as_str(),
                "checkout.session.completed" | "payment_intent.succeeded"
            );
            let Some(appointment) = appointment_of(&event).filter(|_| handled) else {
                let note = if handled {
                    "no metadata.appointment_id".to_string()
                } else {
                    format!("event type {kind} not handled")
                };
                db::integrations::set_webhook_state(c, row, "ignored", Some(&note))?;
                return Ok(None);
            };
            let object = &event["data"]["object"];
            let amount = object["amount_total"]
                .as_i64()
                .or(object["amount_received"].as_i64())
                .or(object["amount"].as_i64());
            let done = db::inbox::mark_deposit_paid(
                c,
                appointment,
                amount,
                object["currency"].as_str(),
                db::now(),
            )?;
            let (state, note) = match &done {
                Some(_) => ("processed", None),
                None => (
                    "ignored",
                    Some(format!(
                        "appointment {appointment} unknown or its deposit already recorded"
                    )),
                ),
            };
            db::integrations::set_webhook_state(c, row, state, note.as_deref())?;
            Ok(done)
        })
        .await
        .map_err(|e| AppError::Unavailable(format!("event not stored, retry: {e}")))?;
    if let Some((space, Some(conversation))) = touched {
        crate::inbox::publish_latest(&app, space, conversation).await;
    }
    Ok(StatusCode::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(secret: &str, t: i64, payload: &[u8]) -> String {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(payload);
        format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn signatures_timestamps_and_rolled_secrets() {
        let p = br#"{"id":"evt_1"}"#;
        let h = header("whsec_a", 1000, p);
        assert_eq!(verify("whsec_a", Some(&h), p, 1100, 300), Ok(1000));
        assert_eq!(
            verify("whsec_b", Some(&h), p, 1100, 300),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            verify("whsec_a", Some(&h), b"{}", 1100, 300),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            verify("whsec_a", Some(&h), p, 1400, 300),
            Err(SignatureError::Stale(400))
        );
        assert_eq!(
            verify("whsec_a", None, p, 1000, 300),
            Err(SignatureError::Invalid)
        );
        // Several v1 (a secret roll): any match is enough.
        let other = header("whsec_old", 1000, p);
        let both = format!("{h},{},v0=ignored", other.split(',').nth(1).unwrap());
        assert_eq!(verify("whsec_old", Some(&both), p, 1000, 300), Ok(1000));
    }
}
