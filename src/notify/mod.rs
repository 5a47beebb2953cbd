//! Outbound notifications: integrations of a space receive events as a
//! signed webhook ([Standard Webhooks]), a Telegram message, a Discord or
//! Slack incoming-webhook post, or an email.
//!
//! An event is recorded with [`emit`] inside the transaction of the change
//! that caused it: one row of the delivery log and one durable job
//! ([`DELIVER_JOB`]) per subscribed integration. The job retries with
//! backoff; a failing integration only fills its own log, ingestion never
//! waits for it. Outbound calls queue behind a token bucket per target
//! ([`Outbound`]), so bursts wait instead of failing on the API's limits.
//!
//! Event types: `media.added` (batched per space over a minute: "12 new
//! photos from Mamie"), `message.received`, `ingest.failed`,
//! `system.status` (`started`, `stopping`, `disk_low`), `stats.daily`.
//! The body sent to a webhook is `{"type", "timestamp" (RFC 3339), "data"}`;
//! chat targets get `data.text`.
//!
//! [Standard Webhooks]: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md

pub mod events;

use std::{num::NonZeroU32, sync::Arc, time::Duration};

use base64::Engine;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use hmac::{KeyInit, Mac};
use rand::RngCore;
use serde_json::{json, Value};

use crate::{
    db::{self, integrations::Integration, jobs::NewJob, spaces::SpaceId},
    jobs::JobError,
    App,
};

/// Job kind that delivers one row of the delivery log (payload `{"delivery_id"}`).
pub const DELIVER_JOB: &str = "notify.deliver";

/// Attempts before a delivery is marked failed (backoff grows to about an hour).
const MAX_ATTEMPTS: i64 = 12;

/// Timeout of one outbound call.
const TIMEOUT: Duration = Duration::from_secs(15);

/// The HTTP client and the token buckets of outbound calls.
pub struct Outbound {
    /// Shared client (rustls, connection pool).
    pub http: reqwest::Client,
    /// Telegram: about 30 messages a second overall.
    telegram_all: DefaultDirectRateLimiter,
    /// Telegram: 20 messages a minute per chat (groups).
    telegram_chat: DefaultKeyedRateLimiter<String>,
    /// Webhooks, Discord, Slack, Graph API: 5 a second per host, bursts of 10.
    per_host: DefaultKeyedRateLimiter<String>,
}

fn quota_per_second(n: u32) -> Quota {
    Quota::per_second(NonZeroU32::new(n).expect("non-zero"))
}

impl Default for Outbound {
    fn default() -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .connect_timeout(Duration::from_secs(10))
                .user_agent(concat!("appliance/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("the HTTP client builds with static settings"),
            telegram_all: RateLimiter::direct(quota_per_second(30)),
            telegram_chat: RateLimiter::keyed(
                Quota::per_minute(NonZeroU32::new(20).expect("non-zero"))
                    .allow_burst(NonZeroU32::new(3).expect("non-zero")),
            ),
            per_host: RateLimiter::keyed(
                quota_per_second(5).allow_burst(NonZeroU32::new(10).expect("non-zero")),
            ),
        }
    }
}

impl Outbound {
    /// Waits for a Telegram send slot to `chat` (global and per chat).
    pub async fn telegram(&self, chat: i64) {
        self.telegram_all.until_ready().await;
        if chat < 0 {
            // Groups and channels: 20 a minute.
            self.telegram_chat.until_key_ready(&chat.to_string()).await;
        }
    }

    /// Waits for a send slot to the host of `url`.
    pub async fn host(&self, url: &str) {
        let host = url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        self.per_host.until_key_ready(&host).await;
    }
}

/// A new `webhook-id`: `msg_` and 24 random hex digits.
pub fn new_event_id() -> String {
    let mut b = [0u8; 12];
    rand::rng().fill_bytes(&mut b);
    format!("msg_{}", hex::encode(b))
}

/// Records `event_type` for every enabled integration of `space` (`None`:
/// of every space) subscribed to it, and queues their deliveries. Call inside
/// the transaction of the change. `text` is the human line for chat targets.
/// Returns how many deliveries were queued (then wake the job workers).
pub fn emit(
    conn: &rusqlite::Connection,
    space: Option<SpaceId>,
    event_type: &str,
    mut data: Value,
    text: &str,
) -> db::DbResult<usize> {
    let targets = db::integrations::subscribers(conn, space, event_type)?;
    if targets.is_empty() {
        return Ok(0);
    }
    if let Value::Object(m) = &mut data {
        m.insert("text".into(), Value::String(text.to_string()));
    }
    for integration in &targets {
        let body = json!({
            "type": event_type,
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "data": data,
        })
        .to_string();
        let id = db::integrations::add_delivery(
            conn,
            integration.id,
            &new_event_id(),
            event_type,
            &body,
        )?;
        db::jobs::enqueue(
            conn,
            &NewJob {
                kind: DELIVER_JOB,
                payload: json!({ "delivery_id": id }),
                dedup_key: Some(format!("deliver:{id}")),
                space: Some(integration.space_id),
                max_attempts: MAX_ATTEMPTS,
            },
        )?;
    }
    Ok(targets.len())
}

/// Why a send failed, and whether trying again may help.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Network trouble, a timeout, a 5xx, a rate limit: try again later.
    #[error("{0}")]
    Retry(String),
    /// A bad token, an unknown chat, a 4xx: fix the integration.
    #[error("{0}")]
    Permanent(String),
}

/// Decodes a Standard Webhooks secret (`whsec_` + base64; the prefix is optional).
///
/// # Errors
/// A message saying what is wrong with it.
pub fn webhook_key(secret: &str) -> Result<Vec<u8>, String> {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| "the webhook secret must be whsec_ followed by base64".to_string())?;
    if key.len() < 16 {
        return Err("the webhook secret is too short (at least 16 bytes of key)".into());
    }
    Ok(key)
}

/// A new Standard Webhooks secret: `whsec_` + base64 of 32 random bytes.
pub fn new_webhook_secret() -> String {
    let mut k = [0u8; 32];
    rand::rng().fill_bytes(&mut k);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(k)
    )
}

/// The `webhook-signature` value: `v1,` + base64(HMAC-SHA256(key, `id.timestamp.body`)).
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// Describes a failed HTTP call with its causes (TLS, DNS, refused, timeout).
pub(crate) fn describe(e: &reqwest::Error) -> SendError {
    let mut text = if e.is_timeout() {
        format!("timeout after {} s", TIMEOUT.as_secs())
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    SendError::Retry(crate::redact(&text))
}

/// The response when its status is 2xx, else its status and the start of its body.
pub(crate) async fn check_status(resp: reqwest::Response) -> Result<reqwest::Response, SendError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body: String = resp
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    let text = format!("HTTP {status}: {}", body.trim());
    if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
        Err(SendError::Retry(text))
    } else {
        Err(SendError::Permanent(text))
    }
}

/// Sends one event to one integration. `body` is the JSON of the event.
///
/// # Errors
/// [`SendError`] with the target's own words (status and body, Telegram's
/// description, the SMTP reply, the TLS or connection error).
pub async fn send(
    app: &App,
    integration: &Integration,
    event_id: &str,
    body: &str,
) -> Result<(), SendError> {
    let secret = match &integration.secret_sealed {
        Some(s) => Some(
            app.secrets
                .open(s)
                .map_err(|e| SendError::Permanent(e.to_string()))?,
        ),
        None => None,
    };
    let event: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let text = event["data"]["text"]
        .as_str()
        .unwrap_or("appliance event")
        .to_string();
    let out = &app.outbound;
    match integration.kind.as_str() {
        "webhook" => {
            let key =
                webhook_key(secret.as_deref().unwrap_or_default()).map_err(SendError::Permanent)?;
            let ts = chrono::Utc::now().timestamp();
            out.host(&integration.target).await;
            let resp = out
                .http
                .post(&integration.target)
                .header("content-type", "application/json")
                .header("webhook-id", event_id)
                .header("webhook-timestamp", ts.to_string())
                .header("webhook-signature", sign(&key, event_id, ts, body))
                .body(body.to_string())
                .send()
                .await
                .map_err(|e| describe(&e))?;
            check_status(resp).await.map(drop)
        }
        "discord" | "slack" => {
            let payload = if integration.kind == "discord" {
                json!({ "content": text })
            } else {
                json!({ "text": text })
            };
            out.host(&integration.target).await;
            let resp = out
                .http
                .post(&integration.target)
                .json(&payload)
                .send()
                .await
                .map_err(|e| describe(&e))?;
            check_status(resp).await.map(drop)
        }
        "telegram" => {
            use teloxide::prelude::Requester;
            let token = secret.ok_or_else(|| SendError::Permanent("no bot token".into()))?;
            let chat: i64 = integration.target.trim().parse().map_err(|_| {
                SendError::Permanent(format!("{:?} is not a chat id", integration.target))
            })?;
            let bot = teloxide::Bot::with_client(token, out.http.clone()).set_api_url(
                url::Url::parse(&app.config.telegram_api_url)
                    .map_err(|e| SendError::Permanent(format!("bad telegram_api_url: {e}")))?,
            );
            out.telegram(chat).await;
            match bot.send_message(teloxide::types::ChatId(chat), text).await {
                Ok(_) => Ok(()),
                Err(teloxide::RequestError::RetryAfter(s)) => Err(SendError::Retry(format!(
                    "Telegram asks to wait {} s",
                    s.duration().as_secs()
                ))),
                Err(e @ (teloxide::RequestError::Network(_) | teloxide::RequestError::Io(_))) => {
                    Err(SendError::Retry(crate::telegram::explain(&e)))
                }
                Err(e) => Err(SendError::Permanent(crate::telegram::explain(&e))),
            }
        }
        "email" => {
            let subject = format!("appliance: {}", event["type"].as_str().unwrap_or("event"));
            crate::inbox::email::send_one(
                app,
                secret.as_deref(),
                &integration.target,
                &subject,
                &text,
            )
            .await
        }
        other => Err(SendError::Permanent(format!(
            "unknown integration kind {other}"
        ))),
    }
}

/// Job `notify.deliver`: sends one delivery and records the attempt.
pub async fn deliver(app: &Arc<App>, payload: &Value) -> Result<(), JobError> {
    let id = payload
        .get("delivery_id")
        .and_then(Value::as_i64)
        .ok_or_else(|| JobError::Permanent("job payload has no delivery_id".into()))?;
    let found = app
        .db
        .run(move |c| {
            let d = db::integrations::delivery(c, id)?;
            let i = db::integrations::get_unscoped(c, d.integration_id)?;
            Ok((d, i))
        })
        .await;
    let (delivery, integration) = match found {
        Ok(x) => x,
        // The integration was deleted with its log: nothing to do.
        Err(db::DbError::NotFound) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if delivery.state != "pending" {
        return Ok(());
    }
    if !integration.enabled {
        return Err(JobError::Retry {
            error: "the integration is paused".into(),
            after: Some(Duration::from_secs(600)),
        });
    }
    let result = send(app, &integration, &delivery.event_id, &delivery.payload).await;
    let (state, error) = match &result {
        Ok(()) => ("delivered", None),
        Err(SendError::Retry(e)) => ("pending", Some(e.clone())),
        Err(SendError::Permanent(e)) => ("failed", Some(e.clone())),
    };
    app.db
        .run(move |c| db::integrations::record_attempt(c, id, state, error.as_deref()))
        .await?;
    match result {
        Ok(()) => Ok(()),
        Err(SendError::Retry(e)) => Err(JobError::retry(e)),
        Err(SendError::Permanent(e)) => Err(JobError::Permanent(e)),
    }
}

/// Marks a delivery failed when its job gives up.
pub async fn delivery_failed(app: &Arc<App>, payload: &Value) {
    if let Some(id) = payload.get("delivery_id").and_then(Value::as_i64) {
        let _ = app
            .db
            .run(move |c| db::integrations::give_up_delivery(c, id))
            .await;
    }
}

/// Sends a test event to an integration now (the **Send test** button and
/// `appliance integration test`), and records it in the delivery log.
///
/// # Errors
/// The target's exact error.
pub async fn test(app: &Arc<App>, integration: Integration) -> Result<(), String> {
    let event_id = new_event_id();
    let body = json!({
        "type": "integration.test",
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "data": { "text": "Test from appliance: this integration works.", "integration_id": integration.id },
    })
    .to_string();
    let result = send(app, &integration, &event_id, &body).await;
    let error = result.as_ref().err().map(ToString::to_string);
    let iid = integration.id;
    let _ = app
        .db
        .run(move |c| {
            let d = db::integrations::add_delivery(c, iid, &event_id, "integration.test", &body)?;
            db::integrations::record_attempt(
                c,
                d,
                if error.is_none() {
                    "delivered"
                } else {
                    "failed"
                },
                error.as_deref(),
            )
        })
        .await;
    result.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks spec's reference libraries
    /// (standard-webhooks `libraries/javascript/src/index.test.ts`).
    #[test]
    fn signature_matches_the_reference_example() {
        let key = webhook_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn bad_secrets_are_explained() {
        assert!(webhook_key("whsec_!!!").unwrap_err().contains("base64"));
        assert!(webhook_key("whsec_c2hvcnQ=").unwrap_err().contains("short"));
        assert!(webhook_key(&new_webhook_secret()).is_ok());
    }
}
