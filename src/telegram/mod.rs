//! Telegram: the Bot API client, the webhook receiver, the long-polling loop,
//! and the reading of an `Update` into the ingest model.
//!
//! Protocol: <https://core.telegram.org/bots/api>. We use teloxide for the
//! Bot API types and requests. Its own webhook listener and dispatcher are not
//! used: we must commit each raw update before acknowledging it (see
//! [`webhook`]) and advance the `getUpdates` offset only after the commit
//! (see [`polling`]). This module never writes to the vault.

pub mod polling;
pub mod webhook;

use std::time::Duration;

use serde::Serialize;
use teloxide::{
    requests::{JsonRequest, Payload, Request},
    types::{Message, MessageOrigin, Update, UpdateKind},
    Bot, RequestError,
};

use crate::{config::Config, db::media::MediaKind};

/// The update types we ask for (`allowed_updates`); see
/// <https://core.telegram.org/bots/api#update>.
pub const ALLOWED_UPDATES: &[&str] = &[
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
];

/// Two Bot API handles sharing one token: `api` for method calls (bounded
/// total timeout, longer than the long-poll timeout) and `files` for file
/// downloads (no total timeout, only connect and read timeouts, so a large
/// file on a slow link is not cut off).
#[derive(Clone)]
pub struct Telegram {
    /// Method calls.
    pub api: Bot,
    /// File downloads.
    pub files: Bot,
}

impl Telegram {
    /// Builds the clients from the configuration; `None` without a token.
    pub fn from_config(config: &Config) -> Option<Self> {
        let token = config.telegram_token.as_ref()?.expose().to_string();
        let url = config.telegram_api_url();
        let api_client = teloxide::net::default_reqwest_settings()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(
                u64::from(config.telegram_poll_timeout_s) + 20,
            ))
            .build()
            .ok()?;
        let files_client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .build()
            .ok()?;
        Some(Self {
            api: Bot::with_client(token.clone(), api_client).set_api_url(url.clone()),
            files: Bot::with_client(token, files_client).set_api_url(url),
        })
    }
}

/// `getUpdates` returning each update as raw JSON, so that we store exactly
/// what Telegram sent (teloxide's typed `GetUpdates` would re-serialise).
/// <https://core.telegram.org/bots/api#getupdates>
#[derive(Debug, Clone, Serialize)]
pub struct GetUpdatesRaw {
    /// First update to return: the last committed `update_id` + 1. Telegram
    /// forgets every update below it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    /// 1–100.
    pub limit: u8,
    /// Long-poll timeout, seconds.
    pub timeout: u32,
    /// Update types to receive.
    pub allowed_updates: &'static [&'static str],
}

impl Payload for GetUpdatesRaw {
    type Output = Vec<serde_json::Value>;
    const NAME: &'static str = "GetUpdates";
}

impl GetUpdatesRaw {
    /// Sends the request with `bot`.
    pub async fn send(self, bot: &Bot) -> Result<Vec<serde_json::Value>, RequestError> {
        JsonRequest::new(bot.clone(), self).send().await
    }
}

/// Explains a Bot API error in words an operator can act on.
pub fn explain(e: &RequestError) -> String {
    match e {
        RequestError::Api(teloxide::ApiError::InvalidToken) => {
            "the Bot API refused the token (check APPLIANCE_TELEGRAM_TOKEN with @BotFather)".into()
        }
        RequestError::Api(api) if api.to_string().contains("file is too big") => {
            "file is larger than the 20 MB the cloud Bot API lets bots download; run a self-hosted \
             Bot API server and set APPLIANCE_TELEGRAM_API_URL to lift the limit"
                .into()
        }
        RequestError::RetryAfter(s) => {
            format!("Telegram asks to wait {} s (rate limit)", s.seconds())
        }
        RequestError::Network(n) if n.is_timeout() => "timed out talking to the Bot API".into(),
        RequestError::Network(n) if n.is_connect() => {
            "cannot connect to the Bot API (network down, DNS, or APPLIANCE_TELEGRAM_API_URL wrong)"
                .into()
        }
        other => crate::redact(&other.to_string()),
    }
}

/// A chat as seen in a message.
#[derive(Debug, Clone)]
pub struct ChatInfo {
    /// Telegram chat id.
    pub id: i64,
    /// `private`, `group`, `supergroup` or `channel`.
    pub kind: &'static str,
    /// Group/channel title, or the person's name.
    pub title: String,
}

/// A file attached to a message, as declared by Telegram.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// Kind, named as the `Message` field it came from.
    pub kind: MediaKind,
    /// Identifier to download the file (`getFile`).
    pub file_id: String,
    /// Identifier stable across bots and time: our first dedup key.
    pub file_unique_id: String,
    /// Original file name.
    pub file_name: Option<String>,
    /// Declared MIME type.
    pub mime: Option<String>,
    /// Declared size, bytes.
    pub size: Option<i64>,
    /// Duration, seconds.
    pub duration_s: Option<i64>,
    /// `file_id` of the small JPEG preview Telegram attaches to videos,
    /// animations, round videos, audio (cover) and some documents.
    pub thumbnail_file_id: Option<String>,
}

/// A message or channel post, reduced to what we keep.
#[derive(Debug, Clone)]
pub struct ChatMessage {
    /// The chat.
    pub chat: ChatInfo,
    /// Message id within the chat.
    pub message_id: i64,
    /// Sender user id (absent for channel posts).
    pub sender_id: Option<i64>,
    /// Sender display name (user, sender chat, or channel signature).
    pub sender_name: Option<String>,
    /// Unix seconds.
    pub date: i64,
    /// Unix seconds, for edits.
    pub edit_date: Option<i64>,
    /// Text (text messages).
    pub text: Option<String>,
    /// Caption (media messages).
    pub caption: Option<String>,
    /// Album post grouping.
    pub media_group_id: Option<String>,
    /// Message replied to.
    pub reply_to_message_id: Option<i64>,
    /// Who it was forwarded from.
    pub forward_origin: Option<String>,
    /// The media, if any.
    pub attachment: Option<Attachment>,
}

/// What an update is, for ingestion.
#[derive(Debug, Clone)]
pub enum Incoming {
    /// A message, an edited message, a channel post or an edited channel post.
    Message(Box<ChatMessage>),
    /// Any other kind (kept raw, nothing to ingest); the name says which.
    Other(String),
}

/// Parses a raw update.
///
/// # Errors
/// A message saying why the JSON is not a Bot API `Update`.
pub fn parse_update(raw: &str) -> Result<(i64, Incoming), String> {
    let update: Update =
        serde_json::from_str(raw).map_err(|e| format!("not a Telegram Update: {e}"))?;
    let id = i64::from(update.id.0);
    let incoming = match update.kind {
        UpdateKind::Message(m)
        | UpdateKind::EditedMessage(m)
        | UpdateKind::ChannelPost(m)
        | UpdateKind::EditedChannelPost(m) => {
            let mut msg = read_message(&m);
            if let Some(a) = msg
                .attachment
                .as_mut()
                .filter(|a| a.thumbnail_file_id.is_none())
            {
                a.thumbnail_file_id = legacy_thumb(raw, a.kind);
            }
            Incoming::Message(Box::new(msg))
        }
        UpdateKind::Error(v) => Incoming::Other(
            v.as_object()
                .and_then(|o| o.keys().find(|k| *k != "update_id").cloned())
                .unwrap_or_else(|| "unknown".into()),
        ),
        other => Incoming::Other(
            format!("{other:?}")
                .split(['(', ' '])
                .next()
                .unwrap_or("other")
                .to_string(),
        ),
    };
    Ok((id, incoming))
}

/// `thumb.file_id` of the attachment: the field's name before Bot API 6.6
/// (now `thumbnail`), still sent by older self-hosted Bot API servers.
fn legacy_thumb(raw: &str, kind: MediaKind) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(raw).ok()?;
    let message = ALLOWED_UPDATES.iter().find_map(|k| v.get(k))?;
    let id = message
        .get(kind.as_str())?
        .get("thumb")?
        .get("file_id")?
        .as_str()?;
    Some(id.to_string())
}

/// The chat id of a raw update, when it is one of the kinds we ingest.
pub fn chat_id_of(raw: &serde_json::Value) -> Option<i64> {
    ALLOWED_UPDATES
        .iter()
        .find_map(|k| raw.get(k))
        .and_then(|m| m.get("chat"))
        .and_then(|c| c.get("id"))
        .and_then(serde_json::Value::as_i64)
}

fn chat_info(m: &Message) -> ChatInfo {
    let c = &m.chat;
    let kind = if c.is_private() {
        "private"
    } else if c.is_supergroup() {
        "supergroup"
    } else if c.is_group() {
        "group"
    } else {
        "channel"
    };
    let title = c.title().map(str::to_string).unwrap_or_else(|| {
        [c.first_name(), c.last_name()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ")
    });
    ChatInfo {
        id: c.id.0,
        kind,
        title,
    }
}

fn origin_name(o: &MessageOrigin) -> String {
    match o {
        MessageOrigin::User { sender_user, .. } => sender_user.full_name(),
        MessageOrigin::HiddenUser {
            sender_user_name, ..
        } => sender_user_name.clone(),
        MessageOrigin::Chat { sender_chat, .. } => {
            sender_chat.title().unwrap_or("a chat").to_string()
        }
        MessageOrigin::Channel { chat, .. } => chat.title().unwrap_or("a channel").to_string(),
    }
}

fn size(s: u32) -> Option<i64> {
    // teloxide fills a missing `file_size` with u32::MAX.
    (s != u32::MAX).then_some(i64::from(s))
}

fn thumb_id(t: &Option<teloxide::types::PhotoSize>) -> Option<String> {
    t.as_ref().map(|p| p.file.id.0.clone())
}

fn read_attachment(m: &Message) -> Option<Attachment> {
    let mime = |t: &Option<mime_guess::mime::Mime>| t.as_ref().map(|m| m.essence_str().to_string());
    if let Some(sizes) = m.photo() {
        let best = sizes
            .iter()
            .max_by_key(|p| (u64::from(p.width) * u64::from(p.height), p.file.size))?;
        return Some(Attachment {
            kind: MediaKind::Photo,
            file_id: best.file.id.0.clone(),
            file_unique_id: best.file.unique_id.0.clone(),
            file_name: None,
            mime: Some("image/jpeg".into()),
            size: size(best.file.size),
            duration_s: None,
            thumbnail_file_id: None,
        });
    }
    if let Some(a) = m.animation() {
        return Some(Attachment {
            kind: MediaKind::Animation,
            file_id: a.file.id.0.clone(),
            file_unique_id: a.file.unique_id.0.clone(),
            file_name: a.file_name.clone(),
            mime: mime(&a.mime_type),
            size: size(a.file.size),
            duration_s: Some(i64::from(a.duration.seconds())),
            thumbnail_file_id: thumb_id(&a.thumbnail),
        });
    }
    if let Some(v) = m.video() {
        return Some(Attachment {
            kind: MediaKind::Video,
            file_id: v.file.id.0.clone(),
            file_unique_id: v.file.unique_id.0.clone(),
            file_name: v.file_name.clone(),
            mime: mime(&v.mime_type),
            size: size(v.file.size),
            duration_s: Some(i64::from(v.duration.seconds())),
            thumbnail_file_id: thumb_id(&v.thumbnail),
        });
    }
    if let Some(a) = m.audio() {
        return Some(Attachment {
            kind: MediaKind::Audio,
            file_id: a.file.id.0.clone(),
            file_unique_id: a.file.unique_id.0.clone(),
            file_name: a.file_name.clone(),
            mime: mime(&a.mime_type),
            size: size(a.file.size),
            duration_s: Some(i64::from(a.duration.seconds())),
            thumbnail_file_id: thumb_id(&a.thumbnail),
        });
    }
    if let Some(v) = m.voice() {
        return Some(Attachment {
            kind: MediaKind::Voice,
            file_id: v.file.id.0.clone(),
            file_unique_id: v.file.unique_id.0.clone(),
            file_name: None,
            mime: mime(&v.mime_type),
            size: size(v.file.size),
            duration_s: Some(i64::from(v.duration.seconds())),
            thumbnail_file_id: None,
        });
    }
    if let Some(v) = m.video_note() {
        return Some(Attachment {
            kind: MediaKind::VideoNote,
            file_id: v.file.id.0.clone(),
            file_unique_id: v.file.unique_id.0.clone(),
            file_name: None,
            mime: Some("video/mp4".into()),
            size: size(v.file.size),
            duration_s: Some(i64::from(v.duration.seconds())),
            thumbnail_file_id: thumb_id(&v.thumbnail),
        });
    }
    if let Some(d) = m.document() {
        return Some(Attachment {
            kind: MediaKind::Document,
            file_id: d.file.id.0.clone(),
            file_unique_id: d.file.unique_id.0.clone(),
            file_name: d.file_name.clone(),
            mime: mime(&d.mime_type),
            size: size(d.file.size),
            duration_s: None,
            thumbnail_file_id: thumb_id(&d.thumbnail),
        });
    }
    None
}

fn read_message(m: &Message) -> ChatMessage {
    let sender_name = m
        .from
        .as_ref()
        .map(|u| u.full_name())
        .or_else(|| {
            m.sender_chat
                .as_ref()
                .and_then(|c| c.title().map(str::to_string))
        })
        .or_else(|| m.author_signature().map(str::to_string));
    ChatMessage {
        chat: chat_info(m),
        message_id: i64::from(m.id.0),
        sender_id: m.from.as_ref().map(|u| u.id.0 as i64),
        sender_name,
        date: m.date.timestamp(),
        edit_date: m.edit_date().map(|d| d.timestamp()),
        text: m.text().map(str::to_string),
        caption: m.caption().map(str::to_string),
        media_group_id: m.media_group_id().map(|g| g.0.clone()),
        reply_to_message_id: m.reply_to_message().map(|r| i64::from(r.id.0)),
        forward_origin: m.forward_origin().map(origin_name),
        attachment: read_attachment(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/telegram-updates")
                .join(name),
        )
        .unwrap()
    }

    #[test]
    fn every_fixture_update_parses() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/telegram-updates");
        for e in std::fs::read_dir(dir).unwrap() {
            let raw = std::fs::read_to_string(e.unwrap().path()).unwrap();
            parse_update(&raw).unwrap();
        }
    }

    #[test]
    fn photo_takes_the_largest_size() {
        let (id, inc) = parse_update(&fixture("photo.json")).unwrap();
        assert_eq!(id, 144011148);
        let Incoming::Message(m) = inc else {
            panic!("a message")
        };
        let a = m.attachment.unwrap();
        assert_eq!(a.kind, MediaKind::Photo);
        assert_eq!(a.file_id, "SAAS");
        assert_eq!(m.caption.as_deref(), Some("asdasdasdasdasdasd"));
        assert_eq!(m.sender_name.as_deref(), Some("Mario"));
        assert_eq!(m.chat.id, 11111111);
        assert_eq!(a.thumbnail_file_id, None);
        let (_, Incoming::Message(v)) = parse_update(&fixture("video.json")).unwrap() else {
            panic!("video")
        };
        assert_eq!(
            v.attachment.unwrap().thumbnail_file_id.as_deref(),
            Some("sdfsdfdsfsdfdsf")
        );
    }

    #[test]
    fn kinds_are_recognised() {
        for (f, k) in [
            ("video.json", MediaKind::Video),
            ("animation.json", MediaKind::Animation),
            ("audio.json", MediaKind::Audio),
            ("voice.json", MediaKind::Voice),
            ("video_note.json", MediaKind::VideoNote),
            ("document.json", MediaKind::Document),
        ] {
            let (_, Incoming::Message(m)) = parse_update(&fixture(f)).unwrap() else {
                panic!("{f}")
            };
            assert_eq!(m.attachment.map(|a| a.kind), Some(k), "{f}");
        }
        let (_, inc) = parse_update(&fixture("callback_query.json")).unwrap();
        assert!(matches!(inc, Incoming::Other(_)));
        assert!(parse_update("{\"foo\":1}").is_err());
    }
}
