//! Imports: Telegram Desktop exports, WhatsApp exports, folders of photos,
//! and the web upload, all through the same vault and deduplication as the bot.
//!
//! Every message is stored in its own transaction together with its media
//! item, after the media's bytes are in the vault: an import stopped at any
//! point (Ctrl-C, kill) leaves whole messages only, and running it again
//! completes it, because messages are identified by `(source, chat, message
//! id)` and media by their content. Files are streamed from the export to the
//! vault, never held in memory. Thumbnails are durable jobs, run before the
//! command returns (and by the server otherwise).

pub mod dir;
pub mod source;
pub mod telegram_export;
pub mod whatsapp;

use std::{io::Read, sync::Arc};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{
    db::{
        self,
        jobs::NewJob,
        media::{Attached, MediaKind, NewMedia, NewMessage},
        spaces::SpaceScope,
    },
    jobs::kind,
    vault::{Expect, StoredBlob, VaultError},
    App,
};

/// What an import did, printed at the end (one JSON object with `--json`).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    /// Messages new to the space.
    pub messages: u64,
    /// Album items new to the space.
    pub media: u64,
    /// Media whose content the space already had.
    pub duplicates: u64,
    /// Things deliberately not imported: system lines, service messages,
    /// media the export left out, unsupported files.
    pub skipped: u64,
    /// Files that could not be imported (too large, refused type, unreadable).
    pub errors: u64,
    /// Lines of a chat text that are neither a message nor its continuation.
    pub unparsed_lines: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} new messages, {} new media, {} duplicates, {} skipped, {} errors, {} unparsed lines",
            self.messages, self.media, self.duplicates, self.skipped, self.errors, self.unparsed_lines
        )
    }
}

/// A message to import.
#[derive(Debug, Clone)]
pub struct Message {
    /// `telegram_export`, `whatsapp`, `upload` or `dir`.
    pub source: &'static str,
    /// Chat identity within the source.
    pub chat_id: i64,
    /// Chat title.
    pub chat_title: Option<String>,
    /// Message id within the chat.
    pub message_id: i64,
    /// Sender name.
    pub sender: Option<String>,
    /// Unix seconds.
    pub sent_at: i64,
    /// Unix seconds of the last edit.
    pub edited_at: Option<i64>,
    /// Text (or caption when there is an attachment).
    pub text: Option<String>,
    /// Replied message id.
    pub reply_to: Option<i64>,
    /// Original sender of a forward.
    pub forwarded_from: Option<String>,
}

/// A file to attach to a message or to import alone.
pub struct Attachment<'r> {
    /// The bytes.
    pub reader: &'r mut dyn Read,
    /// Its name (for the file name and type hints).
    pub name: String,
    /// Kind declared by the export, if any.
    pub kind: Option<MediaKind>,
}

/// A stable 63-bit id from parts (for sources without ids).
pub fn stable_id(parts: &[&str]) -> i64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let d = h.finalize();
    i64::from_be_bytes(d[..8].try_into().expect("8 bytes")) & i64::MAX
}

/// Stores messages and files of one import into one space.
pub struct Importer {
    app: Arc<App>,
    scope: SpaceScope,
    /// Counts so far.
    pub summary: Summary,
    progress: indicatif::ProgressBar,
}

impl Importer {
    /// An importer into `scope`'s space, with a progress spinner on standard error
    /// (hidden when it is not a terminal).
    pub fn new(app: Arc<App>, scope: SpaceScope, what: &str) -> Self {
        let progress = indicatif::ProgressBar::new_spinner();
        progress.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {prefix}: {pos} messages/files {msg}",
            )
            .expect("constant template"),
        );
        progress.set_prefix(what.to_string());
        progress.enable_steady_tick(std::time::Duration::from_millis(200));
        Importer {
            app,
            scope,
            summary: Summary::default(),
            progress,
        }
    }

    /// A quiet importer (web upload).
    pub fn quiet(app: Arc<App>, scope: SpaceScope) -> Self {
        Importer {
            app,
            scope,
            summary: Summary::default(),
            progress: indicatif::ProgressBar::hidden(),
        }
    }

    /// Ends the progress display and returns the summary.
    pub fn finish(self) -> Summary {
        self.progress.finish_and_clear();
        self.summary
    }

    fn note(&self, what: &str, e: &dyn std::fmt::Display) {
        self.progress
            .suspend(|| tracing::warn!(%what, error = %e, "not imported"));
    }

    /// Counts something deliberately not imported.
    pub fn skip(&mut self) {
        self.summary.skipped += 1;
    }

    /// Streams a file into the vault. Errors that concern this file only
    /// (too large, refused type) are counted and give `None`.
    fn blob(&mut self, a: &mut Attachment<'_>) -> anyhow::Result<Option<StoredBlob>> {
        let mut writer = self.app.vault.writer(self.app.config.max_file_bytes)?;
        let mut buf = vec![0u8; 64 * 1024];
        let result = loop {
            match a.reader.read(&mut buf) {
                Ok(0) => break writer.commit(Expect::Any, None, Some(&a.name)),
                Ok(n) => {
                    if let Err(e) = writer.write(&buf[..n]) {
                        break Err(e);
                    }
                }
                Err(e) => break Err(VaultError::Io(e)),
            }
        };
        match result {
            Ok(b) => Ok(Some(b)),
            Err(e @ (VaultError::TooLarge { .. } | VaultError::Rejected(_))) => {
                self.note(&a.name, &e);
                self.summary.errors += 1;
                Ok(None)
            }
            Err(VaultError::Io(e)) if e.kind() == std::io::ErrorKind::StorageFull => Err(e.into()),
            Err(VaultError::Io(e)) => {
                self.note(&a.name, &e);
                self.summary.errors += 1;
                Ok(None)
            }
        }
    }

    /// Imports one message and its optional attachment, in one transaction.
    ///
    /// # Errors
    /// Database or disk errors that stop the import (a re-run continues it).
    pub fn message(
        &mut self,
        m: &Message,
        attachment: Option<Attachment<'_>>,
    ) -> anyhow::Result<()> {
        let blob = match attachment {
            Some(mut a) => self.blob(&mut a)?.map(|b| (b, a.kind, a.name)),
            None => None,
        };
        let mut conn = self.app.db.conn()?;
        let tx = db::write_tx(&mut conn)?;
        let (row, new) = db::media::upsert_message(
            &tx,
            &NewMessage {
                space: self.scope.id(),
                source: m.source,
                chat_id: m.chat_id,
                chat_title: m.chat_title.clone(),
                message_id: m.message_id,
                sender_id: None,
                sender_name: m.sender.clone(),
                sent_at: m.sent_at,
                edited_at: m.edited_at,
                text: if blob.is_some() { None } else { m.text.clone() },
                caption: if blob.is_some() { m.text.clone() } else { None },
                media_group_id: None,
                reply_to_message_id: m.reply_to,
                forward_origin: m.forwarded_from.clone(),
                update_id: None,
            },
        )?;
        if new {
            self.summary.messages += 1;
        }
        if let Some((blob, kind, name)) = blob {
            self.attach(&tx, Some(row), m, blob, kind, &name)?;
        }
        tx.commit()?;
        self.progress.inc(1);
        self.app.changed();
        Ok(())
    }

    /// Imports a file without a message (a folder of photos, a web upload).
    /// `sent_at` orders it in the album; `sender` names who added it.
    pub fn file(
        &mut self,
        mut a: Attachment<'_>,
        sent_at: i64,
        sender: Option<&str>,
        source: &'static str,
    ) -> anyhow::Result<Option<i64>> {
        let Some(blob) = self.blob(&mut a)? else {
            return Ok(None);
        };
        let m = Message {
            source,
            chat_id: 0,
            chat_title: None,
            message_id: 0,
            sender: sender.map(str::to_string),
            sent_at,
            edited_at: None,
            text: None,
            reply_to: None,
            forwarded_from: None,
        };
        let mut conn = self.app.db.conn()?;
        let tx = db::write_tx(&mut conn)?;
        let id = self.attach(&tx, None, &m, blob, a.kind, &a.name)?;
        tx.commit()?;
        self.progress.inc(1);
        self.app.changed();
        Ok(id)
    }

    /// Records a stored blob as a media item of the space (or counts it a duplicate).
    fn attach(
        &mut self,
        tx: &rusqlite::Transaction<'_>,
        message_row: Option<i64>,
        m: &Message,
        blob: StoredBlob,
        kind: Option<MediaKind>,
        name: &str,
    ) -> anyhow::Result<Option<i64>> {
        let sha = blob.sha256.as_str().to_string();
        let new_blob = db::media::insert_blob(tx, &sha, blob.bytes as i64, &blob.mime)?;
        let kind = kind.unwrap_or_else(|| kind_of(&blob.mime, name));
        let file_name = std::path::Path::new(name)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        let inserted = db::media::insert_media(
            tx,
            &NewMedia {
                space: self.scope.id(),
                message_row,
                kind,
                file_id: format!("{}:{}", m.source, file_name.as_deref().unwrap_or("")),
                file_unique_id: format!("sha256:{sha}"),
                file_name,
                declared_mime: None,
                declared_bytes: Some(blob.bytes as i64),
                duration_s: None,
                thumbnail_file_id: None,
                caption: m.text.clone(),
                sender_name: m.sender.clone(),
                chat_id: m.chat_id,
                media_group_id: None,
                received_at: m.sent_at,
            },
        )?;
        let id = match inserted {
            None => {
                self.summary.duplicates += 1;
                return Ok(None);
            }
            Some(id) => id,
        };
        match db::media::attach_blob(tx, id, self.scope.id(), &sha)? {
            Attached::Stored => self.summary.media += 1,
            Attached::Duplicate(_) => self.summary.duplicates += 1,
        }
        if new_blob {
            db::jobs::enqueue(
                tx,
                &NewJob {
                    kind: kind::THUMBNAIL,
                    payload: serde_json::json!({ "sha256": sha }),
                    dedup_key: Some(format!("thumb:{sha}")),
                    space: Some(self.scope.id()),
                    max_attempts: 3,
                },
            )?;
        }
        Ok(Some(id.0))
    }
}

/// The album kind of a file from its sniffed type.
pub fn kind_of(mime: &str, name: &str) -> MediaKind {
    let lower = name.to_ascii_lowercase();
    match mime {
        "image/gif" => MediaKind::Animation,
        m if m.starts_with("image/") => MediaKind::Photo,
        m if m.starts_with("video/") => MediaKind::Video,
        "audio/opus" | "audio/ogg"
            if lower.contains("ptt") || lower.ends_with(".opus") || lower.contains("voice") =>
        {
            MediaKind::Voice
        }
        m if m.starts_with("audio/") => MediaKind::Audio,
        _ => MediaKind::Document,
    }
}

/// Resolves a space for an import.
pub fn scope(app: &App, slug: &str) -> anyhow::Result<SpaceScope> {
    let c = app.db.conn()?;
    let space = db::spaces::find(&c, slug)
        .map_err(|_| anyhow::anyhow!("no space {slug:?} (create it with `appliance space add`)"))?;
    Ok(db::spaces::operator_scope(space))
}
