//! The studio inbox's live side: the event hub behind `GET /api/v1/ws`,
//! presence, typing, and the Telegram bridge's delivery job.
//!
//! Events go to the members of the studio they concern and to no one else:
//! the hub keeps one broadcast channel per space, and a WebSocket session
//! subscribes only to the spaces of its user (checked at the handshake).
//! Several sessions (tabs) of one user are one presence: `presence.online`
//! when the first opens, `presence.offline` when the last closes.

pub mod autoreply;
pub mod email;
pub mod ws;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use serde::Serialize;
use tokio::sync::broadcast;

use crate::{
    db::{self, inbox::InboxMessage, spaces::SpaceId, users::UserId},
    jobs::JobError,
    App,
};

/// An event, as sent to WebSocket clients (`{"type": "...", ...ids}`).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type")]
pub enum Event {
    /// A message was added.
    #[serde(rename = "message.created")]
    MessageCreated {
        /// Conversation.
        conversation_id: i64,
        /// The message.
        message: InboxMessage,
    },
    /// A message was deleted.
    #[serde(rename = "message.deleted")]
    MessageDeleted {
        /// Conversation.
        conversation_id: i64,
        /// Message.
        message_id: i64,
    },
    /// A user read up to a message.
    #[serde(rename = "message.read")]
    MessageRead {
        /// Conversation.
        conversation_id: i64,
        /// Reader.
        user_id: i64,
        /// Last message read.
        message_id: i64,
    },
    /// A user read a whole conversation.
    #[serde(rename = "conversation.read")]
    ConversationRead {
        /// Conversation.
        conversation_id: i64,
        /// Reader.
        user_id: i64,
    },
    /// A conversation changed (title, archive state, a delivery outcome).
    #[serde(rename = "conversation.updated")]
    ConversationUpdated {
        /// Conversation.
        conversation_id: i64,
    },
    /// Someone started typing.
    #[serde(rename = "typing.started")]
    TypingStarted {
        /// Conversation.
        conversation_id: i64,
        /// Who.
        user_id: i64,
    },
    /// Someone stopped typing.
    #[serde(rename = "typing.stopped")]
    TypingStopped {
        /// Conversation.
        conversation_id: i64,
        /// Who.
        user_id: i64,
    },
    /// A member's first session opened.
    #[serde(rename = "presence.online")]
    PresenceOnline {
        /// Who.
        user_id: i64,
    },
    /// A member's last session closed.
    #[serde(rename = "presence.offline")]
    PresenceOffline {
        /// Who.
        user_id: i64,
    },
    /// A media item was stored in the space's album (not sent on the inbox
    /// WebSocket; the album's event stream carries it).
    #[serde(rename = "media.added")]
    MediaAdded {
        /// The media item.
        media_id: i64,
    },
    /// This session fell more than [`CHANNEL_CAPACITY`] events behind and
    /// missed some: the client reloads what it shows from the REST API.
    #[serde(rename = "resync")]
    Resync,
}

impl Event {
    /// The conversation an event concerns, if any.
    pub fn conversation(&self) -> Option<i64> {
        match self {
            Event::MessageCreated {
                conversation_id, ..
            }
            | Event::MessageDeleted {
                conversation_id, ..
            }
            | Event::MessageRead {
                conversation_id, ..
            }
            | Event::ConversationRead {
                conversation_id, ..
            }
            | Event::ConversationUpdated { conversation_id }
            | Event::TypingStarted {
                conversation_id, ..
            }
            | Event::TypingStopped {
                conversation_id, ..
            } => Some(*conversation_id),
            Event::PresenceOnline { .. }
            | Event::PresenceOffline { .. }
            | Event::MediaAdded { .. }
            | Event::Resync => None,
        }
    }
}

/// An event as published: the event and its JSON text, serialized once for
/// every session that receives it.
#[derive(Debug)]
pub struct Published {
    /// The event.
    pub event: Event,
    /// `serde_json` of [`Published::event`]; cloning it shares the bytes.
    pub json: axum::extract::ws::Utf8Bytes,
}

/// Events a space's channel holds for sessions that have not read them yet.
/// A session further behind skips ahead and is told to reload
/// (`{"type": "resync"}`). The buffer is allocated whole when the channel
/// opens (about 40 bytes a slot), so it stays small: a studio of ten staff
/// produces a few events a second, and thousands of studios share the RAM.
pub const CHANNEL_CAPACITY: usize = 128;

/// Channels per space and session counts per user.
#[derive(Default)]
pub struct Hub {
    spaces: Mutex<HashMap<SpaceId, broadcast::Sender<Arc<Published>>>>,
    sessions: Mutex<HashMap<UserId, usize>>,
}

impl Hub {
    fn channel(&self, space: SpaceId) -> broadcast::Sender<Arc<Published>> {
        self.spaces
            .lock()
            .expect("hub lock")
            .entry(space)
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .clone()
    }

    /// Sends an event to the members of `space` connected now. The JSON is
    /// written here, once; nothing is serialized when nobody listens.
    pub fn publish(&self, space: SpaceId, event: Event) {
        let Some(channel) = self.spaces.lock().expect("hub lock").get(&space).cloned() else {
            return;
        };
        if channel.receiver_count() == 0 {
            return;
        }
        match serde_json::to_string(&event) {
            Ok(json) => {
                let _ = channel.send(Arc::new(Published {
                    event,
                    json: json.into(),
                }));
            }
            Err(e) => tracing::error!(error = %e, "cannot serialize an inbox event"),
        }
    }

    /// The `resync` event, for a session that lagged.
    pub fn resync() -> Arc<Published> {
        Arc::new(Published {
            event: Event::Resync,
            json: r#"{"type":"resync"}"#.into(),
        })
    }

    /// Receives the events of `space`.
    pub fn subscribe(&self, space: SpaceId) -> broadcast::Receiver<Arc<Published>> {
        self.channel(space).subscribe()
    }

    /// Counts a new session; true when it is the user's first.
    pub fn connect(&self, user: UserId) -> bool {
        let mut s = self.sessions.lock().expect("hub lock");
        let n = s.entry(user).or_default();
        *n += 1;
        *n == 1
    }

    /// Counts a closed session; true when it was the user's last.
    pub fn disconnect(&self, user: UserId) -> bool {
        let mut s = self.sessions.lock().expect("hub lock");
        match s.get_mut(&user) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            Some(_) => {
                s.remove(&user);
                true
            }
            None => false,
        }
    }

    /// True when the user has an open session.
    pub fn is_online(&self, user: UserId) -> bool {
        self.sessions.lock().expect("hub lock").contains_key(&user)
    }
}

/// Publishes `message.created` for the latest message of a conversation
/// (after a write that did not return it: a system or contact message).
pub async fn publish_latest(app: &Arc<App>, space: SpaceId, conversation: i64) {
    let scope = db::spaces::operator_scope(db::spaces::Space {
        id: space,
        slug: String::new(),
        name: String::new(),
    });
    if let Ok((items, _)) = app
        .db
        .run(move |c| db::inbox::list_messages(c, &scope, conversation, None, 1))
        .await
    {
        if let Some(message) = items.into_iter().next() {
            publish_message(app, space, message);
        }
    }
}

/// Publishes `message.created` for a message just written.
pub fn publish_message(app: &App, space: SpaceId, message: InboxMessage) {
    app.hub.publish(
        space,
        Event::MessageCreated {
            conversation_id: message.conversation_id,
            message,
        },
    );
}

/// Job kind that sends a staff message to the contact's Telegram chat (payload `{"message_id"}`).
pub const DELIVER_JOB: &str = "inbox.deliver";

/// Queues the delivery of a message to its contact's channel (call in the message's transaction).
pub fn enqueue_delivery(
    conn: &rusqlite::Connection,
    message: i64,
    space: SpaceId,
) -> db::DbResult<()> {
    db::jobs::enqueue(
        conn,
        &db::jobs::NewJob {
            kind: DELIVER_JOB,
            payload: serde_json::json!({ "message_id": message }),
            dedup_key: None,
            space: Some(space),
            max_attempts: 5,
        },
    )?;
    Ok(())
}

/// Job `inbox.deliver`: `sendMessage` to the contact; records `sent`, or the error.
pub async fn deliver(app: &Arc<App>, payload: &serde_json::Value) -> Result<(), JobError> {
    use teloxide::prelude::Requester;
    let id = payload
        .get("message_id")
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| JobError::Permanent("job payload has no message_id".into()))?;
    let (text, channel, state) = app
        .db
        .run(move |c| db::inbox::delivery_target(c, id))
        .await?;
    if matches!(state.as_str(), "sent" | "delivered" | "read") {
        return Ok(());
    }
    let chat = match channel {
        db::inbox::Channel::Telegram(chat) => chat,
        meta_channel => {
            // WhatsApp / Instagram: text through the Graph API; the status
            // callbacks then move the delivery to delivered / read / failed.
            return match crate::meta::send_text(app, &meta_channel, &text).await {
                Ok(external) => {
                    app.db
                        .run(move |c| {
                            db::inbox::set_external_id(c, id, &external)?;
                            db::inbox::set_delivery(c, id, "sent", None)
                        })
                        .await?;
                    notify_delivery(app, id).await;
                    Ok(())
                }
                Err(crate::notify::SendError::Retry(e)) => Err(JobError::retry(e)),
                Err(crate::notify::SendError::Permanent(e)) => Err(JobError::Permanent(e)),
            };
        }
    };
    app.outbound.telegram(chat).await;
    let tg = app.telegram.as_ref().ok_or_else(|| {
        JobError::Permanent("no Telegram token is configured (APPLIANCE_TELEGRAM_TOKEN)".into())
    })?;
    let images = app
        .db
        .run(move |c| db::inbox::attachment_blobs(c, id))
        .await?;
    let sent = if images.is_empty() {
        tg.api
            .send_message(teloxide::types::ChatId(chat), text)
            .await
            .map(|_| ())
    } else {
        // One sendPhoto per image, the text as the first one's caption.
        use teloxide::payloads::SendPhotoSetters;
        let mut result = Ok(());
        for (i, (sha, _)) in images.iter().enumerate() {
            let Some(sha) = crate::vault::Sha256Hex::parse(sha) else {
                continue;
            };
            let copy = match app.vault.local_copy(&sha).await {
                Ok(copy) => copy,
                Err(e) => return Err(JobError::retry(format!("reading an attachment: {e}"))),
            };
            let photo = teloxide::types::InputFile::file(copy.path().to_path_buf());
            let mut req = tg.api.send_photo(teloxide::types::ChatId(chat), photo);
            if i == 0 && !text.is_empty() {
                req = req.caption(text.clone());
            }
            let sent = req.await;
            drop(copy);
            if let Err(e) = sent {
                result = Err(e);
                break;
            }
        }
        result
    };
    match sent {
        Ok(_) => {
            app.db
                .run(move |c| db::inbox::set_delivery(c, id, "sent", None))
                .await?;
            notify_delivery(app, id).await;
            Ok(())
        }
        Err(teloxide::RequestError::RetryAfter(s)) => Err(JobError::Retry {
            error: "Telegram asks to wait (rate limit)".into(),
            after: Some(s.duration()),
        }),
        Err(e @ (teloxide::RequestError::Network(_) | teloxide::RequestError::Io(_))) => {
            Err(JobError::retry(crate::telegram::explain(&e)))
        }
        Err(e) => Err(JobError::Permanent(crate::telegram::explain(&e))),
    }
}

/// Marks a delivery failed for good (called when its job gives up) and tells the studio.
pub async fn delivery_failed(app: &Arc<App>, payload: &serde_json::Value, error: &str) {
    if let Some(id) = payload
        .get("message_id")
        .and_then(serde_json::Value::as_i64)
    {
        let error = error.to_string();
        if app
            .db
            .run(move |c| db::inbox::set_delivery(c, id, "failed", Some(&error)))
            .await
            .is_ok()
        {
            notify_delivery(app, id).await;
        }
    }
}

async fn notify_delivery(app: &Arc<App>, message: i64) {
    if let Ok((conversation_id, space)) = app
        .db
        .run(move |c| db::inbox::message_conversation(c, message))
        .await
    {
        app.hub
            .publish(space, Event::ConversationUpdated { conversation_id });
    }
}

/// Archives conversations idle for `inbox_archive_after_days`, once an hour, until shutdown.
pub async fn housekeeping(app: Arc<App>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    loop {
        let days = app.config.inbox_archive_after_days;
        match app
            .db
            .run(move |c| db::inbox::archive_stale(c, db::now(), days))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(archived = n, "archived idle conversations"),
            Err(e) => tracing::warn!(error = %e, "housekeeping failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
            _ = shutdown.changed() => break,
        }
    }
}
