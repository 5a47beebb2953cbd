//! Meta webhooks in (WhatsApp Cloud API, Instagram messaging) and the Graph
//! API out (media downloads, replies).
//!
//! - `GET /hooks/meta` answers the verification handshake: with
//!   `hub.mode=subscribe` and the configured `hub.verify_token` it echoes
//!   `hub.challenge` (200, text); a wrong token gets 403
//!   (<https://developers.facebook.com/docs/graph-api/webhooks/getting-started#verification-requests>).
//! - `POST /hooks/meta` checks `X-Hub-Signature-256: sha256=<hex>`, the
//!   HMAC-SHA256 of the raw body under the app secret, in constant time,
//!   before reading anything (401 when missing or wrong); then commits the
//!   raw body and a `meta.process` job, and only then answers 200. A correctly
//!   signed body that concerns no space of ours (an unbound phone number id,
//!   a field we do not handle) is recorded as `ignored` and still answered
//!   200, or Meta would retry it for days.
//! - The job routes WhatsApp `messages` (text, image, video, audio,
//!   document, sticker, location, reaction, button) by
//!   `metadata.phone_number_id` and Instagram `messaging` by the account id
//!   (`entry[].id`) to the bound studio's inbox: the contact is found or
//!   created, the message is added once (its `wamid`/`mid` deduplicates
//!   redeliveries) and media are fetched in a `meta.media` job: media id ->
//!   `GET {graph}/{media-id}` -> URL -> download with the bearer token, into
//!   the vault. `statuses` callbacks move our replies' delivery to `sent`,
//!   `delivered`, `read` or `failed`
//!   (<https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components>).

use std::{collections::HashMap, sync::Arc};

use axum::{
    body::Bytes,
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use hmac::{KeyInit, Mac};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use crate::{
    db::{self, inbox::Channel, jobs::NewJob, spaces::SpaceId},
    error::AppError,
    jobs::JobError,
    notify::SendError,
    App,
};

/// Job kind that applies one stored Meta webhook body (payload `{"event_id"}`).
pub const PROCESS_JOB: &str = "meta.process";
/// Job kind that downloads one attachment (payload `{"message_id", "position", "media_id"?, "url"?}`).
pub const MEDIA_JOB: &str = "meta.media";

/// `GET /hooks/meta`: the verification handshake.
pub async fn verify(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(expected) = &app.config.meta_verify_token else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "Meta webhooks are not configured: set APPLIANCE_META_VERIFY_TOKEN",
        )
            .into_response();
    };
    let mode = q.get("hub.mode").map(String::as_str);
    let token = q.get("hub.verify_token").map(String::as_str).unwrap_or("");
    match (mode, q.get("hub.challenge")) {
        (Some("subscribe"), Some(challenge))
            if bool::from(token.as_bytes().ct_eq(expected.expose().as_bytes())) =>
        {
            (StatusCode::OK, challenge.clone()).into_response()
        }
        (Some("subscribe"), Some(_)) => {
            (StatusCode::FORBIDDEN, "hub.verify_token does not match").into_response()
        }
        _ => (
            StatusCode::BAD_REQUEST,
            "expected hub.mode=subscribe, hub.verify_token and hub.challenge",
        )
            .into_response(),
    }
}

/// Checks `sha256=<hex>` against HMAC-SHA256(`secret`, `body`) in constant time.
pub fn signature_ok(secret: &[u8], header: Option<&str>, body: &[u8]) -> bool {
    let Some(sig) = header
        .and_then(|h| h.trim().strip_prefix("sha256="))
        .and_then(|h| hex::decode(h).ok())
    else {
        return false;
    };
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// `POST /hooks/meta`: see the module documentation for the statuses.
pub async fn receive(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, AppError> {
    let secret = app.config.meta_app_secret.as_ref().ok_or_else(|| {
        AppError::Unavailable(
            "Meta webhooks are not configured: set APPLIANCE_META_APP_SECRET".into(),
        )
    })?;
    let header = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    if !signature_ok(secret.expose().as_bytes(), header, &body) {
        return Err(AppError::Unauthorized);
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(&body)
        .map_err(|e| AppError::BadRequest(format!("body is not JSON: {e}")))?;
    let body = body.to_vec();
    app.db
        .write(move |c| {
            let id = db::integrations::store_webhook_event(c, "meta", None, &body)?
                .ok_or_else(|| db::DbError::Conflict("duplicate".into()))?;
            db::jobs::enqueue(
                c,
                &NewJob {
                    kind: PROCESS_JOB,
                    payload: json!({ "event_id": id }),
                    dedup_key: None,
                    space: None,
                    max_attempts: 5,
                },
            )
        })
        .await
        .map_err(|e| AppError::Unavailable(format!("not stored, retry: {e}")))?;
    app.jobs_added.notify_waiters();
    Ok(StatusCode::OK)
}

/// What applying one body did.
#[derive(Default)]
struct Outcome {
    /// New messages: (space, conversation).
    created: Vec<(SpaceId, i64)>,
    /// Delivery changes: (space, conversation).
    updated: Vec<(SpaceId, i64)>,
    /// Why parts were ignored.
    notes: Vec<String>,
    /// Jobs queued.
    jobs: usize,
}

fn media_text(kind: &str, m: &Value) -> (String, Option<String>) {
    let part = &m[kind];
    let caption = part["caption"].as_str().unwrap_or("").trim().to_string();
    let label = match kind {
        "document" => format!(
            "[document: {}]",
            part["filename"].as_str().unwrap_or("file")
        ),
        other => format!("[{other}]"),
    };
    let text = if caption.is_empty() { label } else { caption };
    (text, part["id"].as_str().map(str::to_string))
}

/// The text of a WhatsApp message and the media id it carries, if any.
fn whatsapp_text(m: &Value) -> (String, Option<String>) {
    let kind = m["type"].as_str().unwrap_or("unknown");
    match kind {
        "text" => (m["text"]["body"].as_str().unwrap_or("").to_string(), None),
        "image" | "video" | "audio" | "voice" | "document" | "sticker" => media_text(kind, m),
        "location" => {
            let l = &m["location"];
            (
                format!(
                    "[location] {} {} {}",
                    l["latitude"],
                    l["longitude"],
                    l["name"].as_str().unwrap_or("")
                )
                .trim()
                .to_string(),
                None,
            )
        }
        "reaction" => (
            format!(
                "[reaction] {}",
                m["reaction"]["emoji"].as_str().unwrap_or("")
            ),
            None,
        ),
        "button" => (
            m["button"]["text"]
                .as_str()
                .unwrap_or("[button]")
                .to_string(),
            None,
        ),
        "interactive" => {
            let i = &m["interactive"];
            let title = i["button_reply"]["title"]
                .as_str()
                .or(i["list_reply"]["title"].as_str())
                .unwrap_or("[interactive]");
            (title.to_string(), None)
        }
        "contacts" => ("[contact card]".into(), None),
        other => (format!("[{other}]"), None),
    }
}

/// Adds one contact message (deduplicated by its channel id), with its
/// `message.received` event and a media job when it carries a file.
#[allow(clippy::too_many_arguments)]
fn land(
    c: &rusqlite::Connection,
    out: &mut Outcome,
    space: SpaceId,
    channel: &str,
    from: &str,
    name: &str,
    external_id: &str,
    text: &str,
    media: Vec<Value>,
) -> db::DbResult<()> {
    let contact = db::inbox::contact_for_channel(c, space, channel, from, name)?;
    let conversation = db::inbox::open_conversation(c, space, contact, name)?;
    let Some(message) = db::inbox::add_external_message(c, conversation, text, external_id)? else {
        out.notes.push(format!("{external_id} already received"));
        return Ok(());
    };
    out.created.push((space, conversation));
    out.jobs += crate::notify::emit(
        c,
        Some(space),
        "message.received",
        json!({ "space_id": space.0, "conversation_id": conversation, "message_id": message, "channel": channel, "from": name }),
        &format!("{name} ({channel}): {text}"),
    )?;
    for (position, m) in media.into_iter().take(5).enumerate() {
        let mut payload = m;
        payload["message_id"] = json!(message);
        payload["position"] = json!(position);
        db::jobs::enqueue(
            c,
            &NewJob {
                kind: MEDIA_JOB,
                payload,
                dedup_key: Some(format!("meta-media:{message}:{position}")),
                space: Some(space),
                max_attempts: 8,
            },
        )?;
        out.jobs += 1;
    }
    out.jobs += crate::inbox::autoreply::on_contact_message(c, space, contact, conversation)?;
    Ok(())
}

fn apply_whatsapp(c: &rusqlite::Connection, v: &Value, out: &mut Outcome) -> db::DbResult<()> {
    for entry in v["entry"].as_array().into_iter().flatten() {
        for change in entry["changes"].as_array().into_iter().flatten() {
            let field = change["field"].as_str().unwrap_or("");
            if field != "messages" {
                out.notes.push(format!("field {field:?} not handled"));
                continue;
            }
            let value = &change["value"];
            let phone = value["metadata"]["phone_number_id"].as_str().unwrap_or("");
            let Some(space) = db::integrations::meta_account_space(c, phone)? else {
                out.notes
                    .push(format!("phone number id {phone:?} is not bound to a space"));
                continue;
            };
            let names: HashMap<&str, &str> = value["contacts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|k| Some((k["wa_id"].as_str()?, k["profile"]["name"].as_str()?)))
                .collect();
            for m in value["messages"].as_array().into_iter().flatten() {
                let (Some(from), Some(id)) = (m["from"].as_str(), m["id"].as_str()) else {
                    continue;
                };
                let (text, media_id) = whatsapp_text(m);
                let name = names.get(from).copied().unwrap_or(from);
                let media = media_id
                    .map(|mid| vec![json!({ "media_id": mid })])
                    .unwrap_or_default();
                land(c, out, space, "whatsapp", from, name, id, &text, media)?;
            }
            for s in value["statuses"].as_array().into_iter().flatten() {
                let (Some(id), Some(status)) = (s["id"].as_str(), s["status"].as_str()) else {
                    continue;
                };
                let state = match status {
                    "sent" | "delivered" | "read" | "failed" => status,
                    _ => continue,
                };
                let error = s["errors"][0]["title"]
                    .as_str()
                    .or(s["errors"][0]["message"].as_str());
                match db::inbox::set_delivery_by_external(c, id, state, error)? {
                    Some((_, conversation, space)) => out.updated.push((space, conversation)),
                    None => out.notes.push(format!("status for unknown message {id}")),
                }
            }
        }
    }
    Ok(())
}

fn apply_instagram(c: &rusqlite::Connection, v: &Value, out: &mut Outcome) -> db::DbResult<()> {
    for entry in v["entry"].as_array().into_iter().flatten() {
        let account = entry["id"].as_str().unwrap_or("");
        let Some(space) = db::integrations::meta_account_space(c, account)? else {
            out.notes.push(format!(
                "Instagram account {account:?} is not bound to a space"
            ));
            continue;
        };
        if entry.get("changes").is_some() {
            out.notes
                .push("Instagram changes (comments, mentions) not handled".into());
        }
        for ev in entry["messaging"].as_array().into_iter().flatten() {
            let message = &ev["message"];
            if message.is_null() || message["is_echo"].as_bool() == Some(true) {
                continue;
            }
            let (Some(from), Some(mid)) = (ev["sender"]["id"].as_str(), message["mid"].as_str())
            else {
                continue;
            };
            let attachments: Vec<&Value> = message["attachments"]
                .as_array()
                .into_iter()
                .flatten()
                .collect();
            let text = message["text"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| {
                    attachments
                        .first()
                        .map(|a| format!("[{}]", a["type"].as_str().unwrap_or("attachment")))
                        .unwrap_or_else(|| "[message]".into())
                });
            let media = attachments
                .iter()
                .filter_map(|a| a["payload"]["url"].as_str())
                .map(|u| json!({ "url": u }))
                .collect();
            let name = format!("Instagram {from}");
            land(c, out, space, "instagram", from, &name, mid, &text, media)?;
        }
    }
    Ok(())
}

/// Job `meta.process`: applies one stored body; records `processed` or
/// `ignored` with the reasons.
pub async fn process(app: &Arc<App>, payload: &Value) -> Result<(), JobError> {
    let id = payload
        .get("event_id")
        .and_then(Value::as_i64)
        .ok_or_else(|| JobError::Permanent("job payload has no event_id".into()))?;
    let outcome = app
        .db
        .write(move |c| {
            let body = db::integrations::webhook_event(c, id)?;
            let mut out = Outcome::default();
            let v: Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => {
                    db::integrations::set_webhook_state(c, id, "failed", Some(&e.to_string()))?;
                    return Ok(out);
                }
            };
            match v["object"].as_str() {
                Some("whatsapp_business_account") => apply_whatsapp(c, &v, &mut out)?,
                Some("instagram") | Some("page") => apply_instagram(c, &v, &mut out)?,
                other => out.notes.push(format!("object {other:?} not handled")),
            }
            let state = if out.created.is_empty() && out.updated.is_empty() {
                "ignored"
            } else {
                "processed"
            };
            let note = (!out.notes.is_empty()).then(|| out.notes.join("; "));
            db::integrations::set_webhook_state(c, id, state, note.as_deref())?;
            Ok(out)
        })
        .await?;
    if outcome.jobs > 0 {
        app.jobs_added.notify_waiters();
    }
    for (space, conversation) in outcome.created {
        crate::inbox::publish_latest(app, space, conversation).await;
    }
    for (space, conversation_id) in outcome.updated {
        app.hub.publish(
            space,
            crate::inbox::Event::ConversationUpdated { conversation_id },
        );
    }
    Ok(())
}

/// `{graph}/{path}`.
pub fn graph_url(app: &App, path: &str) -> String {
    format!(
        "{}/{}",
        app.config.meta_graph_url.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

fn token(app: &App) -> Result<String, SendError> {
    app.config
        .meta_access_token
        .as_ref()
        .map(|t| t.expose().to_string())
        .ok_or_else(|| {
            SendError::Permanent("no Graph API token: set APPLIANCE_META_ACCESS_TOKEN".into())
        })
}

/// Sends a text reply on WhatsApp or Instagram; returns the channel's message id.
///
/// # Errors
/// [`SendError`] with the Graph API's own message.
pub async fn send_text(app: &App, channel: &Channel, text: &str) -> Result<String, SendError> {
    let token = token(app)?;
    let (url, body) = match channel {
        Channel::WhatsApp { to, account } => (
            graph_url(app, &format!("{account}/messages")),
            json!({ "messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
                    "type": "text", "text": { "body": text } }),
        ),
        Channel::Instagram { to, account } => (
            graph_url(app, &format!("{account}/messages")),
            json!({ "recipient": { "id": to }, "message": { "text": text } }),
        ),
        Channel::Telegram(_) => {
            return Err(SendError::Permanent("not a Meta channel".into()));
        }
    };
    app.outbound.host(&url).await;
    let resp = app
        .outbound
        .http
        .post(&url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .map_err(|e| crate::notify::describe(&e))?;
    let resp = crate::notify::check_status(resp).await?;
    let v: Value = resp
        .json()
        .await
        .map_err(|e| SendError::Retry(format!("Graph API answer unreadable: {e}")))?;
    v["messages"][0]["id"]
        .as_str()
        .or(v["message_id"].as_str())
        .map(str::to_string)
        .ok_or_else(|| SendError::Permanent(format!("Graph API answer without a message id: {v}")))
}

fn job_error(e: SendError) -> JobError {
    match e {
        SendError::Retry(m) => JobError::retry(m),
        SendError::Permanent(m) => JobError::Permanent(m),
    }
}

/// Job `meta.media`: downloads one attachment into the vault and attaches it.
pub async fn download(app: &Arc<App>, payload: &Value) -> Result<(), JobError> {
    let message = payload["message_id"]
        .as_i64()
        .ok_or_else(|| JobError::Permanent("job payload has no message_id".into()))?;
    let position = payload["position"].as_i64().unwrap_or(0);
    let (url, bearer) = if let Some(media_id) = payload["media_id"].as_str() {
        // WhatsApp: the media id gives a short-lived URL that needs the token too.
        let token = token(app).map_err(job_error)?;
        let meta_url = graph_url(app, media_id);
        app.outbound.host(&meta_url).await;
        let resp = app
            .outbound
            .http
            .get(&meta_url)
            .bearer_auth(&token)
            .send()
            .await
            .map_err(|e| job_error(crate::notify::describe(&e)))?;
        let resp = crate::notify::check_status(resp).await.map_err(job_error)?;
        let v: Value = resp
            .json()
            .await
            .map_err(|e| JobError::retry(format!("Graph API answer unreadable: {e}")))?;
        let url = v["url"]
            .as_str()
            .ok_or_else(|| JobError::Permanent(format!("no url for media {media_id}: {v}")))?
            .to_string();
        (url, Some(token))
    } else {
        let url = payload["url"]
            .as_str()
            .ok_or_else(|| JobError::Permanent("job payload has no media_id or url".into()))?
            .to_string();
        (url, None)
    };
    let mut req = app.outbound.http.get(&url);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let mut resp = crate::notify::check_status(
        req.send()
            .await
            .map_err(|e| job_error(crate::notify::describe(&e)))?,
    )
    .await
    .map_err(job_error)?;
    let limit = app.config.max_file_bytes;
    let mut writer = app
        .vault
        .writer(limit)
        .map_err(|e| JobError::retry(format!("vault: {e}")))?;
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| job_error(crate::notify::describe(&e)))?
    {
        tokio::task::block_in_place(|| writer.write(&chunk)).map_err(|e| match e {
            crate::vault::VaultError::Io(e) => JobError::retry(e),
            other => JobError::Permanent(other.to_string()),
        })?;
    }
    let blob = tokio::task::block_in_place(|| writer.commit(crate::vault::Expect::Any, None, None))
        .map_err(|e| match e {
            crate::vault::VaultError::Io(e) => JobError::retry(e),
            other => JobError::Permanent(other.to_string()),
        })?;
    let sha = blob.sha256.as_str().to_string();
    let (conversation_id, space) = app
        .db
        .write(move |c| {
            if db::media::insert_blob(c, &sha, blob.bytes as i64, &blob.mime)?
                && blob.mime.starts_with("image/")
            {
                db::jobs::enqueue(
                    c,
                    &NewJob {
                        kind: crate::jobs::kind::THUMBNAIL,
                        payload: json!({ "sha256": sha }),
                        dedup_key: Some(format!("thumb:{sha}")),
                        space: None,
                        max_attempts: 3,
                    },
                )?;
            }
            db::inbox::add_attachment(c, message, position, &sha)?;
            db::inbox::message_conversation(c, message)
        })
        .await?;
    app.jobs_added.notify_waiters();
    app.hub.publish(
        space,
        crate::inbox::Event::ConversationUpdated { conversation_id },
    );
    Ok(())
}
