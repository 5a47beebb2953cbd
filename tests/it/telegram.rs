//! Telegram ingestion end to end.

use std::collections::{HashMap, HashSet};

use serde_json::json;

use crate::{common::*, fake_bot::FakeBot};

/// Chats that appear in the media fixtures.
pub(crate) const FIXTURE_CHATS: &[i64] = &[12345, 456, 11111111];

pub(crate) fn assert_album_complete(server: &TestServer, expected: &[(&str, String)]) {
    let items = server.media("family");
    let by_sha: HashMap<String, &appliance::db::media::MediaItem> = items
        .iter()
        .map(|m| (m.sha256.clone().unwrap(), m))
        .collect();
    assert_eq!(by_sha.len(), items.len(), "each content once in the album");
    let distinct: HashSet<&String> = expected.iter().map(|(_, s)| s).collect();
    assert_eq!(items.len(), distinct.len(), "album: {items:#?}");
    for (file_id, sha) in expected {
        let item = by_sha
            .get(sha)
            .unwrap_or_else(|| panic!("{file_id} missing from the album"));
        let blob = server
            .app
            .vault
            .blob_path(&appliance::vault::Sha256Hex::parse(sha).unwrap());
        assert_eq!(
            &sha256(&std::fs::read(blob).unwrap()),
            sha,
            "stored bytes of {file_id}"
        );
        // Photos and GIFs from their own pixels; video and audio from Telegram's preview.
        let expect_thumb = ["photo", "animation", "video", "audio"].contains(&item.kind.as_str());
        assert_eq!(
            item.has_thumbnail, expect_thumb,
            "thumbnail of the {}",
            item.kind
        );
    }
    let kinds: HashSet<&str> = items.iter().map(|m| m.kind.as_str()).collect();
    for k in ["photo", "video", "animation", "audio", "voice", "document"] {
        assert!(kinds.contains(k), "{k} in {kinds:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_replay_fills_the_album_exactly_once() {
    let bot = FakeBot::start().await;
    let expected = register_fixture_files(&bot);
    let dir = tempdir();
    let server = TestServer::start(config(dir.path(), &bot)).await;
    server.space_with_chats("family", FIXTURE_CHATS);
    let updates = all_fixture_updates();
    for u in &updates {
        assert_eq!(
            server.post_update(&u.to_string(), Some(SECRET)).await,
            200,
            "{u}"
        );
    }
    server.settle().await;
    assert_album_complete(&server, &expected);

    // The photo: orientation applied, EXIF read, caption and sender kept.
    let items = server.media("family");
    let photo = items.iter().find(|m| m.kind == "photo").unwrap();
    assert_eq!((photo.width, photo.height), (Some(1800), Some(1200)));
    assert_eq!(photo.caption.as_deref(), Some("asdasdasdasdasdasd"));
    assert_eq!(photo.sender.as_deref(), Some("Mario"));
    assert_eq!(photo.chat_id, Some(11111111));
    assert_eq!(photo.received_at, "2021-02-28T23:35:05Z");
    // The round video has the same bytes as the video: one album item.
    assert_eq!(
        server.count("SELECT count(*) FROM media WHERE state = 'duplicate'"),
        1
    );
    // Every update stored raw; non-message kinds kept but ignored.
    assert_eq!(
        server.count("SELECT count(*) FROM telegram_updates"),
        updates.len() as i64
    );
    assert!(server.count("SELECT count(*) FROM telegram_updates WHERE state = 'ignored'") >= 5);

    // Replaying everything again changes nothing and downloads nothing.
    let downloads_before: usize = bot.state.lock().unwrap().downloads.values().sum();
    for u in &updates {
        assert_eq!(server.post_update(&u.to_string(), Some(SECRET)).await, 200);
    }
    server.settle().await;
    assert_eq!(
        server.count("SELECT count(*) FROM telegram_updates"),
        updates.len() as i64
    );
    assert_eq!(server.media("family").len(), items.len());
    assert_eq!(
        bot.state.lock().unwrap().downloads.values().sum::<usize>(),
        downloads_before
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn polling_fills_the_album_and_advances_the_offset_after_commit() {
    let bot = FakeBot::start().await;
    let expected = register_fixture_files(&bot);
    let updates = all_fixture_updates();
    let last = updates.last().unwrap()["update_id"].as_i64().unwrap();
    bot.push_updates(updates.clone());
    let dir = tempdir();
    let mut cfg = config(dir.path(), &bot);
    cfg.telegram_mode = Some(appliance::config::TelegramMode::Polling);
    let server = TestServer::start(cfg).await;
    server.space_with_chats("family", FIXTURE_CHATS);
    wait_until("all updates stored", || {
        server.count("SELECT count(*) FROM telegram_updates") == updates.len() as i64
    })
    .await;
    wait_until("the offset to pass the last update", || {
        bot.calls("getupdates")
            .iter()
            .any(|p| p["offset"].as_i64() == Some(last + 1))
    })
    .await;
    server.settle().await;
    assert_album_complete(&server, &expected);
    let first = &bot.calls("getupdates")[0];
    assert_eq!(
        first["allowed_updates"],
        json!([
            "message",
            "edited_message",
            "channel_post",
            "edited_channel_post"
        ])
    );
    server.stop().await;

    // After a restart, polling resumes from the committed offset.
    bot.state.lock().unwrap().calls.clear();
    let mut cfg = config(dir.path(), &bot);
    cfg.telegram_mode = Some(appliance::config::TelegramMode::Polling);
    let server = TestServer::start(cfg).await;
    wait_until("a poll after restart", || {
        !bot.calls("getupdates").is_empty()
    })
    .await;
    assert_eq!(
        bot.calls("getupdates")[0]["offset"].as_i64(),
        Some(last + 1)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_refuses_wrong_secret_and_malformed_bodies() {
    let bot = FakeBot::start().await;
    let dir = tempdir();
    let server = TestServer::start(config(dir.path(), &bot)).await;
    let body = update("photo").to_string();
    assert_eq!(server.post_update(&body, None).await, 401);
    assert_eq!(server.post_update(&body, Some("wrong")).await, 401);
    assert_eq!(
        server.post_update(&body, Some(&format!("{SECRET}x"))).await,
        401
    );
    assert_eq!(server.post_update("{not json", Some(SECRET)).await, 400);
    assert_eq!(
        server.post_update("{\"hello\": 1}", Some(SECRET)).await,
        400
    );
    assert_eq!(server.post_update("[1,2]", Some(SECRET)).await, 400);
    assert_eq!(server.count("SELECT count(*) FROM telegram_updates"), 0);
    // A well-formed update of a kind we do not ingest is acknowledged.
    assert_eq!(
        server
            .post_update(&update("callback_query").to_string(), Some(SECRET))
            .await,
        200
    );
    assert_eq!(server.count("SELECT count(*) FROM telegram_updates"), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_update_and_same_photo_twice_are_stored_once() {
    let bot = FakeBot::start().await;
    let jpeg = fixture_bytes("images/Canon_40D.jpg");
    bot.add_file("SAAS", "photos/a.jpg", jpeg.clone());
    bot.add_file("OTHER-ID", "photos/b.jpg", jpeg.clone());
    let dir = tempdir();
    let server = TestServer::start(config(dir.path(), &bot)).await;
    server.space_with_chats("family", &[11111111]);
    let first = renumber(update("photo"), 1);
    assert_eq!(
        server.post_update(&first.to_string(), Some(SECRET)).await,
        200
    );
    assert_eq!(
        server.post_update(&first.to_string(), Some(SECRET)).await,
        200
    );
    // The same file forwarded again: same file_unique_id.
    let again = renumber(update("photo"), 2);
    assert_eq!(
        server.post_update(&again.to_string(), Some(SECRET)).await,
        200
    );
    // The same picture uploaded anew: another file_unique_id, same bytes.
    let mut reupload = renumber(update("photo"), 3);
    reupload["message"]["photo"] = json!([{ "file_id": "OTHER-ID", "file_unique_id": "OTHER-U", "file_size": jpeg.len(), "width": 100, "height": 68 }]);
    assert_eq!(
        server
            .post_update(&reupload.to_string(), Some(SECRET))
            .await,
        200
    );
    server.settle().await;
    assert_eq!(server.count("SELECT count(*) FROM telegram_updates"), 3);
    assert_eq!(server.count("SELECT count(*) FROM messages"), 3);
    let items = server.media("family");
    assert_eq!(items.len(), 1, "{items:#?}");
    assert_eq!(items[0].sha256.as_deref(), Some(sha256(&jpeg).as_str()));
    assert_eq!(items[0].camera.as_deref(), Some("Canon EOS 40D"));
    assert_eq!(items[0].taken_at.as_deref(), Some("2008-05-30T15:56:01"));
    assert_eq!(
        server.count("SELECT count(*) FROM media WHERE state = 'duplicate'"),
        1
    );
    assert_eq!(server.count("SELECT count(*) FROM blobs"), 1);
    assert_eq!(
        bot.calls("getfile").len(),
        2,
        "the forwarded copy is not downloaded again"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oversize_and_disguised_files_fail_with_a_clear_reason() {
    let bot = FakeBot::start().await;
    // Declared too large in the update (photo fixture's file_size is 84913).
    bot.add_file(
        "SAAS",
        "photos/big.jpg",
        fixture_bytes("images/Landscape_6.jpg"),
    );
    // Not declared in the update nor by getFile, too large when streamed.
    let mut doc_file = fixture_bytes("images/Portrait_6.jpg");
    doc_file.truncate(70_000);
    bot.add_file("a1b2c34d5e6f7g8h9i", "documents/big.pdf", doc_file);
    bot.state
        .lock()
        .unwrap()
        .files
        .get_mut("a1b2c34d5e6f7g8h9i")
        .unwrap()
        .reported_size = None;
    // A "video" that is an executable.
    let mut elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0".to_vec();
    elf.resize(4096, 0);
    bot.add_file("sdfsdfsdfsfsdfdsfdsfs", "videos/evil.mp4", elf);
    let dir = tempdir();
    let mut cfg = config(dir.path(), &bot);
    cfg.max_file_bytes = 60_000;
    let server = TestServer::start(cfg).await;
    server.space_with_chats("family", FIXTURE_CHATS);
    let mut doc = renumber(update("document"), 2);
    doc["message"]["document"]
        .as_object_mut()
        .unwrap()
        .remove("file_size");
    let mut video = renumber(update("video"), 3);
    video["message"]["video"]
        .as_object_mut()
        .unwrap()
        .remove("file_size");
    for u in [renumber(update("photo"), 1), doc, video] {
        assert_eq!(server.post_update(&u.to_string(), Some(SECRET)).await, 200);
    }
    server.settle().await;
    let failed: HashMap<String, String> = server
        .app
        .db
        .conn()
        .unwrap()
        .prepare("SELECT kind, error FROM media WHERE state = 'failed'")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(failed["photo"].contains("above the limit"), "{failed:?}");
    assert!(
        failed["document"].contains("larger than the limit"),
        "{failed:?}"
    );
    assert!(
        failed["video"].contains("application/x-executable"),
        "{failed:?}"
    );
    assert!(server.media("family").is_empty());
    assert_eq!(
        bot.calls("getfile").len(),
        2,
        "the oversize photo is refused before getFile"
    );
    let blobs = std::fs::read_dir(dir.path().join("vault/blobs"))
        .unwrap()
        .count();
    let tmp = std::fs::read_dir(dir.path().join("vault/tmp"))
        .unwrap()
        .count();
    assert_eq!((blobs, tmp), (0, 0), "nothing half-written");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unbound_chat_is_pending_until_bound() {
    let bot = FakeBot::start().await;
    let jpeg = fixture_bytes("images/hopper.jpg");
    bot.add_file("SAAS", "photos/p.jpg", jpeg.clone());
    let dir = tempdir();
    let server = TestServer::start(config(dir.path(), &bot)).await;
    {
        let c = server.app.db.conn().unwrap();
        appliance::db::spaces::create(&c, "family", "Family").unwrap();
    }
    assert_eq!(
        server
            .post_update(&renumber(update("photo"), 7).to_string(), Some(SECRET))
            .await,
        200
    );
    server.settle().await;
    assert!(
        bot.calls("getfile").is_empty(),
        "nothing downloaded from an unbound chat"
    );
    let chats = appliance::db::telegram::list_chats(&server.app.db.conn().unwrap()).unwrap();
    assert_eq!(chats.len(), 1);
    assert_eq!(
        (
            chats[0].chat_id,
            chats[0].space.clone(),
            chats[0].deferred_updates
        ),
        (11111111, None, 1)
    );
    assert_eq!(chats[0].title, "Mario");
    // An admin binds it: the waiting update is processed.
    {
        let c = server.app.db.conn().unwrap();
        let s = appliance::db::spaces::find(&c, "family").unwrap();
        assert_eq!(
            appliance::db::telegram::bind_chat(&c, 11111111, s.id).unwrap(),
            1
        );
    }
    wait_until("the photo after binding", || {
        server.media("family").len() == 1
    })
    .await;
    assert_eq!(
        server.media("family")[0].sha256.as_deref(),
        Some(sha256(&jpeg).as_str())
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn link_command_binds_the_chat() {
    let bot = FakeBot::start().await;
    let dir = tempdir();
    let server = TestServer::start(config(dir.path(), &bot)).await;
    {
        let c = server.app.db.conn().unwrap();
        let s = appliance::db::spaces::create(&c, "family", "Family").unwrap();
        appliance::db::telegram::create_link_code(&c, s.id, "abc123def0", 3600).unwrap();
    }
    let mut u = renumber(update("text"), 5);
    u["message"]["text"] = json!("/link abc123def0");
    assert_eq!(server.post_update(&u.to_string(), Some(SECRET)).await, 200);
    server.settle().await;
    let chats = appliance::db::telegram::list_chats(&server.app.db.conn().unwrap()).unwrap();
    assert_eq!(chats[0].space.as_deref(), Some("family"));
    wait_until("the confirmation message", || {
        !bot.calls("sendmessage").is_empty()
    })
    .await;
    // A code works once.
    assert_eq!(server.count("SELECT count(*) FROM link_codes"), 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_pending_at_a_stop_resume_after_restart() {
    let bot = FakeBot::start().await;
    let expected = register_fixture_files(&bot);
    let dir = tempdir();
    // Background work paused: updates are committed, jobs wait.
    let mut cfg = config(dir.path(), &bot);
    cfg.job_workers = 0;
    let server = TestServer::start(cfg).await;
    server.space_with_chats("family", FIXTURE_CHATS);
    for u in all_fixture_updates() {
        assert_eq!(server.post_update(&u.to_string(), Some(SECRET)).await, 200);
    }
    assert!(server.count("SELECT count(*) FROM jobs WHERE state = 'queued'") > 0);
    server.stop().await;
    // As if killed in the middle of a job.
    {
        let c = rusqlite::Connection::open(dir.path().join("appliance.sqlite")).unwrap();
        c.execute(
            "UPDATE jobs SET state = 'running', attempts = 1 WHERE id = (SELECT min(id) FROM jobs)",
            [],
        )
        .unwrap();
    }
    let server = TestServer::start(config(dir.path(), &bot)).await;
    server.settle().await;
    assert_album_complete(&server, &expected);
    assert_eq!(
        server.count("SELECT count(*) FROM jobs WHERE state = 'failed'"),
        0
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limited_get_file_is_retried_after_retry_after() {
    let bot = FakeBot::start().await;
    let jpeg = fixture_bytes("images/hopper.jpg");
    bot.add_file("SAAS", "photos/p.jpg", jpeg.clone());
    bot.state.lock().unwrap().get_file_errors.insert(
        "SAAS".into(),
        vec![(429, json!({ "ok": false, "error_code": 429, "description": "Too Many Requests: retry after 1", "parameters": { "retry_after": 1 } }))],
    );
    let dir = tempdir();
    let server = TestServer::start(config(dir.path(), &bot)).await;
    server.space_with_chats("family", &[11111111]);
    assert_eq!(
        server
            .post_update(&renumber(update("photo"), 1).to_string(), Some(SECRET))
            .await,
        200
    );
    wait_until("the photo after the rate limit", || {
        server.media("family").len() == 1
    })
    .await;
    assert_eq!(bot.calls("getfile").len(), 2);
    assert_eq!(
        server.count("SELECT attempts FROM jobs WHERE kind = 'media.download'"),
        2
    );
    server.stop().await;
}
