//! The test harness: a real server on an ephemeral port with a temp data
//! dir, wired to a [`FakeBot`], plus fixture helpers.

#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use appliance::{config::Secret, App, Config};
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;

use crate::fake_bot::FakeBot;

/// The webhook secret used by tests.
pub const SECRET: &str = "test-secret_123";

/// Path of a fixture in `tests/fixtures`.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// Bytes of a fixture.
pub fn fixture_bytes(rel: &str) -> Vec<u8> {
    std::fs::read(fixture(rel)).unwrap_or_else(|e| panic!("fixture {rel}: {e}"))
}

/// SHA-256 hex of bytes.
pub fn sha256(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// A fixture update as JSON.
pub fn update(name: &str) -> Value {
    serde_json::from_slice(&fixture_bytes(&format!("telegram-updates/{name}.json"))).unwrap()
}

/// Gives an update a unique `update_id` and message id, as a real bot would
/// see them (the fixtures, from several test suites, reuse ids).
pub fn renumber(mut u: Value, update_id: i64) -> Value {
    u["update_id"] = update_id.into();
    for k in [
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
    ] {
        if let Some(m) = u.get_mut(k) {
            m["message_id"] = (update_id % 1_000_000).into();
        }
    }
    u
}

/// Every fixture update, renumbered 1000, 1001, ... in file-name order.
pub fn all_fixture_updates() -> Vec<Value> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(fixture("telegram-updates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    names
        .iter()
        .enumerate()
        .map(|(i, p)| {
            renumber(
                serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap(),
                1000 + i as i64,
            )
        })
        .collect()
}

/// A 0.1 s silent 8 kHz mono WAV (RIFF), for the audio fixture's file.
pub fn wav() -> Vec<u8> {
    let data = vec![0u8; 800];
    let mut v = b"RIFF".to_vec();
    v.extend(((36 + data.len()) as u32).to_le_bytes());
    v.extend(b"WAVEfmt ");
    v.extend(16u32.to_le_bytes());
    v.extend(1u16.to_le_bytes()); // PCM
    v.extend(1u16.to_le_bytes()); // mono
    v.extend(8000u32.to_le_bytes());
    v.extend(8000u32.to_le_bytes());
    v.extend(1u16.to_le_bytes());
    v.extend(8u16.to_le_bytes());
    v.extend(b"data");
    v.extend((data.len() as u32).to_le_bytes());
    v.extend(data);
    v
}

/// An Ogg page header carrying an `OpusHead`, the start of a Telegram voice note.
pub fn ogg_opus() -> Vec<u8> {
    let mut v = b"OggS\0\x02".to_vec();
    v.extend([0u8; 20]);
    v.extend([1u8, 19]);
    v.extend(b"OpusHead\x01\x01\x38\x01\x80\xbb\0\0\0\0\0");
    v.extend(vec![0u8; 200]);
    v
}

/// A minimal one-page PDF.
pub fn pdf() -> Vec<u8> {
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj \
3 0 obj<</Type/Page/MediaBox[0 0 3 3]/Parent 2 0 R>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
        .to_vec()
}

/// Registers, in the fake, the file of every media fixture update: real
/// images and video from `tests/fixtures`, generated audio and PDF where the
/// fixtures have none. Returns file_id -> expected sha256.
pub fn register_fixture_files(bot: &FakeBot) -> Vec<(&'static str, String)> {
    let files: Vec<(&'static str, &'static str, Vec<u8>)> = vec![
        (
            "SAAS",
            "photos/file_1.jpg",
            fixture_bytes("images/Landscape_6.jpg"),
        ),
        (
            "sdfsdfsdfsfsdfdsfdsfs",
            "videos/file_2.mp4",
            fixture_bytes("video/sample.mp4"),
        ),
        (
            "sdaafsghhjhgkkygrssgdfghgfdgh",
            "animations/file_3.gif",
            fixture_bytes("images/iss634.gif"),
        ),
        ("dfhhdfhgdfghdf", "music/file_4.wav", wav()),
        ("dfghjjghdjhgd", "voice/file_5.oga", ogg_opus()),
        (
            "dfgfdgdfgdfggdfgdf",
            "video_notes/file_6.mp4",
            fixture_bytes("video/sample.mp4"),
        ),
        ("a1b2c34d5e6f7g8h9i", "documents/file_7.pdf", pdf()),
    ];
    // Telegram's own previews (the fixtures' legacy `thumb` fields): the video's poster, the audio's cover.
    bot.add_file(
        "sdfsdfdsfsdfdsf",
        "thumbnails/file_8.jpg",
        fixture_bytes("images/hopper.jpg"),
    );
    bot.add_file(
        "gdfsgdfgd",
        "thumbnails/file_9.png",
        fixture_bytes("images/hopper.png"),
    );
    files
        .into_iter()
        .map(|(id, path, bytes)| {
            let sha = sha256(&bytes);
            bot.add_file(id, path, bytes);
            (id, sha)
        })
        .collect()
}

/// A running server.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// The app (database, vault) for assertions.
    pub app: Arc<App>,
    /// The data directory (kept alive by the test).
    pub data_dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The configuration tests start from: webhook mode against `bot`.
pub fn config(data_dir: &Path, bot: &FakeBot) -> Config {
    Config {
        data_dir: data_dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        telegram_token: Some(Secret::new("123456:TEST-token_abc")),
        telegram_mode: Some(appliance::config::TelegramMode::Webhook),
        telegram_webhook_secret: Some(Secret::new(SECRET)),
        telegram_api_url: bot.url.clone(),
        telegram_poll_timeout_s: 1,
        ..Config::default()
    }
}

impl TestServer {
    /// Starts a server with `config`.
    pub async fn start(config: Config) -> TestServer {
        let data_dir = config.data_dir.clone();
        let app = App::open(config).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let a = app.clone();
        let task = tokio::spawn(async move {
            appliance::serve(a, listener, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        TestServer {
            url,
            app,
            data_dir,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .unwrap()
                .unwrap();
        }
    }

    /// Runs SQL returning one i64.
    pub fn count(&self, sql: &str) -> i64 {
        self.app
            .db
            .conn()
            .unwrap()
            .query_row(sql, [], |r| r.get(0))
            .unwrap()
    }

    /// POSTs an update to the webhook with `secret` (None: no header).
    pub async fn post_update(&self, body: &str, secret: Option<&str>) -> reqwest::StatusCode {
        let mut req = client()
            .post(format!("{}/hooks/telegram", self.url))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(s) = secret {
            req = req.header("X-Telegram-Bot-Api-Secret-Token", s);
        }
        req.send().await.unwrap().status()
    }

    /// Creates a space and binds chats to it, directly in the database.
    pub fn space_with_chats(&self, slug: &str, chats: &[i64]) {
        let c = self.app.db.conn().unwrap();
        let s = appliance::db::spaces::create(&c, slug, slug).unwrap();
        for chat in chats {
            appliance::db::telegram::bind_chat(&c, *chat, s.id).unwrap();
        }
    }

    /// Waits until no job is queued or running (30 s at most).
    pub async fn settle(&self) {
        wait_until("jobs to finish", || {
            self.count("SELECT count(*) FROM jobs WHERE state IN ('queued','running')") == 0
        })
        .await;
    }

    /// The album of a space as the CLI prints it.
    pub fn media(&self, slug: &str) -> Vec<appliance::db::media::MediaItem> {
        let c = self.app.db.conn().unwrap();
        let s = appliance::db::spaces::find(&c, slug).unwrap();
        appliance::db::media::list_all(&c, &appliance::db::spaces::operator_scope(s)).unwrap()
    }
}

/// An HTTP client that does not follow redirects.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Polls `cond` every 50 ms for up to 30 s.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A temp data dir.
pub fn tempdir() -> TempDir {
    tempfile::tempdir().unwrap()
}
