//! Telegram Desktop "Export chat history" in JSON (`result.json`), streamed.
//!
//! Shapes (Telegram Desktop's exporter; no formal specification):
//! - single chat: `{"name", "type", "id", "messages": [...]}`;
//! - full account: `{"chats": {"list": [{"name", "type", "id", "messages": [...]}, ...]}, ...}`.
//!
//! A message: `id`, `type` (`message` or `service`), `date` (local ISO time)
//! and `date_unixtime` (seconds, as a string; preferred), `from`, `from_id`,
//! `text` (a string, or an array of strings and `{"type", "text"}` entities),
//! `reply_to_message_id`, `forwarded_from`, `edited_unixtime`, and for media
//! `photo` or `file` (a path relative to `result.json`), `media_type`
//! (`video_file`, `voice_message`, `audio_file`, `animation`, `video_message`,
//! `sticker`), `file_name`, `mime_type`.
//!
//! The file is read with serde's streaming visitor: each message is handed to
//! the caller as soon as it is parsed, so a multi-gigabyte export never sits in
//! memory. Chat fields are written before `messages` by Telegram Desktop.

use std::{fmt, io::Read};

use serde::{
    de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor},
    Deserialize, Deserializer,
};

use crate::db::media::MediaKind;

/// The chat a message belongs to.
#[derive(Debug, Clone, Default)]
pub struct ChatInfo {
    /// Chat name.
    pub name: Option<String>,
    /// Chat id in the export.
    pub id: Option<i64>,
}

/// `text` of a message: a string or an array of parts.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Text {
    /// Plain.
    Plain(String),
    /// Entities.
    Parts(Vec<TextPart>),
}

/// One part of a `text` array.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TextPart {
    /// Plain text.
    Plain(String),
    /// An entity (`bold`, `link`, `mention`...), flattened to its text.
    Entity {
        /// The visible text.
        #[serde(default)]
        text: String,
    },
}

impl Text {
    /// The text with entities flattened.
    pub fn flatten(&self) -> String {
        match self {
            Text::Plain(s) => s.clone(),
            Text::Parts(p) => p
                .iter()
                .map(|x| match x {
                    TextPart::Plain(s) => s.as_str(),
                    TextPart::Entity { text } => text.as_str(),
                })
                .collect(),
        }
    }
}

/// An id that may be a number or a string (`"user123"`, `"1544006350"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Flexible {
    /// A number.
    Int(i64),
    /// A string.
    Str(String),
}

impl Flexible {
    /// As an integer, when it is one (or a string of digits).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Flexible::Int(i) => Some(*i),
            Flexible::Str(s) => s.parse().ok(),
        }
    }
}

/// One exported message, as much as we keep of it.
#[derive(Debug, Clone, Deserialize)]
pub struct ExportMessage {
    /// Message id within the chat.
    pub id: Option<i64>,
    /// `message` or `service`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Local time, `2023-08-23T13:11:23`.
    pub date: Option<String>,
    /// Unix seconds, as a string.
    pub date_unixtime: Option<Flexible>,
    /// Sender name.
    pub from: Option<String>,
    /// Sender id (`user123` or a number).
    pub from_id: Option<Flexible>,
    /// Text.
    pub text: Option<Text>,
    /// Replied message id.
    pub reply_to_message_id: Option<i64>,
    /// Original sender of a forward.
    pub forwarded_from: Option<String>,
    /// Unix seconds of the last edit, as a string.
    pub edited_unixtime: Option<Flexible>,
    /// Photo path.
    pub photo: Option<String>,
    /// File path.
    pub file: Option<String>,
    /// Media type of `file`.
    pub media_type: Option<String>,
    /// Original file name.
    pub file_name: Option<String>,
}

impl ExportMessage {
    /// Unix seconds: `date_unixtime`, else `date` read as UTC.
    pub fn unix_time(&self) -> Option<i64> {
        self.date_unixtime
            .as_ref()
            .and_then(Flexible::as_i64)
            .or_else(|| {
                self.date
                    .as_deref()
                    .and_then(|d| {
                        chrono::NaiveDateTime::parse_from_str(d, "%Y-%m-%dT%H:%M:%S").ok()
                    })
                    .map(|d| d.and_utc().timestamp())
            })
    }

    /// The media file path and its kind, when the file is in the export.
    /// `Err` carries why a media is missing ("not included" by the export settings).
    pub fn media(&self) -> Option<Result<(String, Option<MediaKind>), String>> {
        let (path, kind) = if let Some(p) = &self.photo {
            (p, Some(MediaKind::Photo))
        } else if let Some(f) = &self.file {
            let kind = match self.media_type.as_deref() {
                Some("video_file") => Some(MediaKind::Video),
                Some("voice_message") => Some(MediaKind::Voice),
                Some("audio_file") => Some(MediaKind::Audio),
                Some("animation") => Some(MediaKind::Animation),
                Some("video_message") => Some(MediaKind::VideoNote),
                Some("sticker") => return Some(Err("sticker".into())),
                _ => None,
            };
            (f, kind)
        } else {
            return None;
        };
        if path.starts_with('(') {
            // "(File not included. Change data exporting settings to download.)"
            return Some(Err(path.clone()));
        }
        Some(Ok((path.clone(), kind)))
    }
}

/// Streams every message of `reader` to `each(chat, message)`; a chat of a
/// full-account export is announced by its fields before its messages.
///
/// # Errors
/// A JSON error (with line and column), or the first error `each` returned.
pub fn read<R: Read>(
    reader: R,
    each: &mut dyn FnMut(&ChatInfo, ExportMessage) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut failure: Option<anyhow::Error> = None;
    let result = ChatSeed {
        each,
        failure: &mut failure,
        top: true,
    }
    .deserialize(&mut de);
    if let Some(e) = failure {
        return Err(e);
    }
    result.map_err(|e| anyhow::anyhow!("result.json: {e}"))?;
    Ok(())
}

/// A chat object (the top level of a single-chat export is one too).
struct ChatSeed<'a, 'b> {
    each: &'a mut dyn FnMut(&ChatInfo, ExportMessage) -> anyhow::Result<()>,
    failure: &'b mut Option<anyhow::Error>,
    top: bool,
}

impl<'de> DeserializeSeed<'de> for ChatSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ChatSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Telegram export object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut chat = ChatInfo::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "name" => chat.name = map.next_value::<Option<String>>()?,
                "id" => {
                    chat.id = map
                        .next_value::<Option<Flexible>>()?
                        .and_then(|f| f.as_i64())
                }
                "messages" => map.next_value_seed(MessagesSeed {
                    chat: &chat,
                    each: self.each,
                    failure: self.failure,
                })?,
                "chats" if self.top => map.next_value_seed(ChatsSeed {
                    each: self.each,
                    failure: self.failure,
                })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// `{"about": ..., "list": [chat, ...]}` of a full-account export.
struct ChatsSeed<'a, 'b> {
    each: &'a mut dyn FnMut(&ChatInfo, ExportMessage) -> anyhow::Result<()>,
    failure: &'b mut Option<anyhow::Error>,
}

impl<'de> DeserializeSeed<'de> for ChatsSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ChatsSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the chats of a full export")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "list" {
                map.next_value_seed(ChatListSeed {
                    each: self.each,
                    failure: self.failure,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct ChatListSeed<'a, 'b> {
    each: &'a mut dyn FnMut(&ChatInfo, ExportMessage) -> anyhow::Result<()>,
    failure: &'b mut Option<anyhow::Error>,
}

impl<'de> DeserializeSeed<'de> for ChatListSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ChatListSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of chats")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(ChatSeed {
                each: self.each,
                failure: self.failure,
                top: false,
            })?
            .is_some()
        {}
        Ok(())
    }
}

struct MessagesSeed<'a, 'b, 'c> {
    chat: &'c ChatInfo,
    each: &'a mut dyn FnMut(&ChatInfo, ExportMessage) -> anyhow::Result<()>,
    failure: &'b mut Option<anyhow::Error>,
}

impl<'de> DeserializeSeed<'de> for MessagesSeed<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for MessagesSeed<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of messages")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(m) = seq.next_element::<ExportMessage>()? {
            if let Err(e) = (self.each)(self.chat, m) {
                *self.failure = Some(e);
                return Err(serde::de::Error::custom("import stopped"));
            }
        }
        Ok(())
    }
}

/// Imports a Telegram Desktop export (folder or zip, single chat or full account).
///
/// # Errors
/// When no `result.json` is found, it is not valid JSON, or the database or disk fails.
pub fn import(
    importer: &mut super::Importer,
    export: &mut super::source::Export,
) -> anyhow::Result<()> {
    let files = export.files()?;
    let json = files
        .iter()
        .filter(|f| f.ends_with("result.json"))
        .min_by_key(|f| f.matches('/').count())
        .cloned()
        .ok_or_else(|| {
            anyhow::anyhow!("no result.json in the export (choose JSON, not HTML, when exporting)")
        })?;
    let base = json
        .rsplit_once('/')
        .map(|(d, _)| format!("{d}/"))
        .unwrap_or_default();
    let reader = export.stream(&json)?;
    let mut index = 0i64;
    read(reader, &mut |chat, m| {
        index += 1;
        if m.kind != "message" {
            importer.skip();
            return Ok(());
        }
        let Some(sent_at) = m.unix_time() else {
            importer.skip();
            return Ok(());
        };
        let chat_title = chat.name.clone();
        let chat_id = chat.id.unwrap_or_else(|| {
            super::stable_id(&["telegram", chat_title.as_deref().unwrap_or("")])
        });
        let text = m.text.as_ref().map(Text::flatten).filter(|t| !t.is_empty());
        let msg = super::Message {
            source: "telegram_export",
            chat_id,
            chat_title,
            message_id: m.id.unwrap_or(index),
            sender: m.from.clone(),
            sent_at,
            edited_at: m.edited_unixtime.as_ref().and_then(Flexible::as_i64),
            text,
            reply_to: m.reply_to_message_id,
            forwarded_from: m.forwarded_from.clone(),
        };
        match m.media() {
            None => importer.message(&msg, None),
            Some(Err(_)) => {
                importer.skip();
                importer.message(&msg, None)
            }
            Some(Ok((path, kind))) => {
                let full = format!("{base}{path}");
                match export.open_file(&full) {
                    Ok(mut reader) => importer.message(
                        &msg,
                        Some(super::Attachment {
                            reader: &mut reader,
                            name: m.file_name.clone().unwrap_or(path),
                            kind,
                        }),
                    ),
                    Err(e) => {
                        tracing::warn!(file = %full, error = %e, "media of the export not imported");
                        importer.summary.errors += 1;
                        importer.message(&msg, None)
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_full_account_shapes_stream() {
        let single = r#"{"name":"Fam","type":"private_group","id":42,"messages":[
            {"id":1,"type":"message","date":"2023-08-23T13:11:23","date_unixtime":"1692821483","from":"Léa","text":"hi"},
            {"id":2,"type":"service","date_unixtime":"1692821484","actor":"Léa","text":""},
            {"id":3,"type":"message","date_unixtime":"1692821485","from":"Paul","text":[{"type":"bold","text":"Link:"},"x",{"type":"link","text":"https://t.me"}],
             "photo":"photos/photo_1@23-08-2023_13-11-25.jpg","width":1,"height":1}]}"#;
        let mut seen = Vec::new();
        read(single.as_bytes(), &mut |c, m| {
            seen.push((
                c.id,
                c.name.clone(),
                m.id,
                m.kind.clone(),
                m.text.as_ref().map(Text::flatten),
                m.unix_time(),
            ));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[2].4.as_deref(), Some("Link:xhttps://t.me"));
        assert_eq!(
            seen[0],
            (
                Some(42),
                Some("Fam".into()),
                Some(1),
                "message".into(),
                Some("hi".into()),
                Some(1692821483)
            )
        );
        let full = r#"{"about":"x","personal_information":{"a":1},"chats":{"about":"y","list":[
            {"name":"A","id":1,"messages":[{"id":1,"type":"message","date":"2020-01-01T00:00:02","from":"H","text":"x"}]},
            {"name":"B","id":2,"messages":[{"id":1,"type":"message","date":"2020-01-01T00:00:03","from":"G","text":"y"}]}]}}"#;
        let mut chats = Vec::new();
        read(full.as_bytes(), &mut |c, m| {
            chats.push((c.name.clone().unwrap(), m.unix_time().unwrap()));
            Ok(())
        })
        .unwrap();
        assert_eq!(chats, [("A".into(), 1577836802), ("B".into(), 1577836803)]);
        assert!(read("{\"messages\": [".as_bytes(), &mut |_, _| Ok(())).is_err());
    }
}
