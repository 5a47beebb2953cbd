//! Operations: backup while serving, restore into an empty directory, check
//! and repair, metrics and readiness.

use serde_json::Value;

use crate::{common::*, fake_bot::FakeBot, integrations::appliance_cli};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_serving_restore_check_and_repair() {
    let bot = FakeBot::start().await;
    let files = register_fixture_files(&bot);
    let dir = tempdir();
    let server = TestServer::start(config(dir.path(), &bot)).await;
    server.space_with_chats("family", crate::telegram::FIXTURE_CHATS);
    for u in all_fixture_updates() {
        let body = u.to_string();
        assert_eq!(server.post_update(&body, Some(SECRET)).await, 200);
    }
    server.settle().await;
    let album = server.media("family");
    assert!(album.len() >= 5, "{}", album.len());

    // Backup while the server runs, then again: the second copies no blob.
    let backup = tempdir();
    let b = backup.path().join("nightly");
    let (ok, out, err) = appliance_cli(dir.path(), &["backup", b.to_str().unwrap(), "--json"], &[]);
    assert!(ok, "{err}");
    let first: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(first["blobs_copied"], first["blobs"]);
    assert!(first["blobs"].as_u64().unwrap() >= files.len() as u64 - 1);
    let (ok, out, err) = appliance_cli(dir.path(), &["backup", b.to_str().unwrap(), "--json"], &[]);
    assert!(ok, "{err}");
    let second: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(second["blobs_copied"], 0, "incremental");
    server.stop().await;

    // Restore refuses a directory in use, then fills an empty one.
    let (ok, _, err) = appliance_cli(dir.path(), &["restore", b.to_str().unwrap()], &[]);
    assert!(!ok && err.contains("empty data directory"), "{err}");
    let restored = tempdir();
    let (ok, _, err) = appliance_cli(restored.path(), &["restore", b.to_str().unwrap()], &[]);
    assert!(ok, "{err}");
    let server = TestServer::start(config(restored.path(), &bot)).await;
    server.settle().await;
    let again = server.media("family");
    let shas = |m: &[appliance::db::media::MediaItem]| {
        let mut v: Vec<_> = m.iter().map(|i| (i.id.0, i.sha256.clone())).collect();
        v.sort();
        v
    };
    assert_eq!(shas(&again), shas(&album), "same album after restore");
    wait_until("the index to be rebuilt", || {
        let _ = server.app.search.reload();
        server.app.search.num_docs() > 0 && server.count("SELECT count(*) FROM index_queue") == 0
    })
    .await;
    server.stop().await;
    let (ok, out, err) = appliance_cli(restored.path(), &["check", "--json"], &[]);
    assert!(ok, "a fresh restore is consistent: {out}{err}");

    // Damage: a lost original, an orphan, a lost thumbnail, a stale temp file.
    let d = restored.path();
    let vault = appliance::vault::Vault::open(d.join("vault")).unwrap();
    let with_thumb = again
        .iter()
        .find(|m| m.has_thumbnail && m.kind == "photo")
        .expect("a rendered photo");
    let sha = appliance::vault::Sha256Hex::parse(with_thumb.sha256.as_deref().unwrap()).unwrap();
    std::fs::remove_file(vault.thumb_path(&sha, appliance::vault::ThumbSize::Thumb)).unwrap();
    let lost = again
        .iter()
        .find(|m| m.sha256 != with_thumb.sha256)
        .unwrap();
    let lost_sha = lost.sha256.clone().unwrap();
    std::fs::remove_file(vault.blob_path(&appliance::vault::Sha256Hex::parse(&lost_sha).unwrap()))
        .unwrap();
    let orphan = d
        .join("vault/blobs/00/00/0000000000000000000000000000000000000000000000000000000000000000");
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::write(&orphan, b"stray").unwrap();
    std::fs::write(d.join("vault/tmp/blob-leftover"), b"half").unwrap();

    let (ok, out, _) = appliance_cli(d, &["check", "--json"], &[]);
    assert!(!ok, "problems make the exit code 1");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["missing_blobs"], serde_json::json!([lost_sha]));
    assert_eq!(report["missing_thumbnails"].as_array().unwrap().len(), 1);
    assert_eq!(report["orphan_blobs"].as_array().unwrap().len(), 1);
    assert_eq!(report["temp_files"].as_array().unwrap().len(), 1);

    let (ok, out, _) = appliance_cli(d, &["check", "--repair", "--json"], &[]);
    assert!(!ok, "a lost original cannot be repaired");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["repaired"].as_array().unwrap().len(), 3, "{report}");
    assert!(d
        .join("lost+found")
        .join(orphan.file_name().unwrap())
        .exists());
    assert!(!orphan.exists());
    // The server renders the missing thumbnail again.
    let server = TestServer::start(config(d, &bot)).await;
    server.settle().await;
    assert!(vault
        .thumb_path(&sha, appliance::vault::ThumbSize::Thumb)
        .exists());
    server.stop().await;
    let (_, out, _) = appliance_cli(d, &["check", "--json"], &[]);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["missing_thumbnails"].as_array().unwrap().len(), 0);
    assert_eq!(report["orphan_blobs"].as_array().unwrap().len(), 0);
    assert_eq!(report["missing_blobs"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_readiness() {
    let bot = FakeBot::start().await;
    register_fixture_files(&bot);
    let dir = tempdir();
    let server = TestServer::start(config(dir.path(), &bot)).await;
    server.space_with_chats("family", &[11111111]);
    let body = renumber(update("photo"), 77).to_string();
    assert_eq!(server.post_update(&body, Some(SECRET)).await, 200);
    server.settle().await;
    let r = client()
        .get(format!("{}/readyz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = client()
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "appliance_updates_received_total{via=\"webhook\"}",
        "appliance_download_bytes_total",
        "appliance_http_request_duration_seconds_bucket",
        "route=\"/hooks/telegram\"",
        "appliance_jobs{state=\"done\"}",
        "appliance_vault_bytes",
        "appliance_index_docs",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    server.stop().await;
    // Beyond loopback, /metrics needs the token.
    let dir = tempdir();
    let mut cfg = config(dir.path(), &bot);
    cfg.listen = "0.0.0.0:0".parse().unwrap();
    cfg.metrics_token = Some(appliance::config::Secret::new("scrape-me"));
    let server = TestServer::start(cfg).await;
    let url = format!("{}/metrics", server.url);
    assert_eq!(client().get(&url).send().await.unwrap().status(), 401);
    let r = client()
        .get(&url)
        .bearer_auth("scrape-me")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_quota_media_are_refused_with_a_reason_the_text_kept_and_owners_told_once() {
    let bot = FakeBot::start().await;
    register_fixture_files(&bot);
    bot.add_file(
        "SBBS",
        "photos/second.jpg",
        fixture_bytes("images/hopper.jpg"),
    );
    let dir = tempdir();
    let mut cfg = config(dir.path(), &bot);
    cfg.space_quota_mb = 1;
    let server = TestServer::start(cfg).await;
    server.space_with_chats("family", &[11111111]);
    {
        // 2 MB already stored, and a Slack-like integration to hear about it.
        let c = server.app.db.conn().unwrap();
        let s = appliance::db::spaces::find(&c, "family").unwrap();
        c.execute(
            "INSERT INTO blobs(sha256, bytes, mime, created_at) VALUES (?1, 2000000, 'video/mp4', 0)",
            ["ab".repeat(32)],
        )
        .unwrap();
        c.execute(
            "INSERT INTO media(space_id, kind, file_id, file_unique_id, received_at, sha256, state)
             VALUES (?1, 'video', 'big', 'big', 0, ?2, 'stored')",
            rusqlite::params![s.id.0, "ab".repeat(32)],
        )
        .unwrap();
        appliance::db::integrations::create(
            &c,
            &appliance::db::spaces::operator_scope(s),
            "slack",
            "http://127.0.0.1:9/never",
            None,
            "system.status",
        )
        .unwrap();
    }
    let mut second = update("photo");
    second["message"]["photo"] = serde_json::json!([{ "file_id": "SBBS", "file_unique_id": "SBBS", "width": 10, "height": 10 }]);
    for (i, mut u) in [update("photo"), second].into_iter().enumerate() {
        u["message"]["caption"] = serde_json::json!(format!("caption {i}"));
        let body = renumber(u, 300 + i as i64).to_string();
        assert_eq!(server.post_update(&body, Some(SECRET)).await, 200);
    }
    wait_until("both refusals", || {
        server.count("SELECT count(*) FROM media WHERE state = 'failed' AND error LIKE '%quota%'")
            == 2
    })
    .await;
    assert_eq!(
        server.count("SELECT count(*) FROM messages WHERE caption LIKE 'caption %'"),
        2,
        "the messages stay"
    );
    assert_eq!(
        server.count("SELECT count(*) FROM deliveries WHERE payload LIKE '%quota_exceeded%'"),
        1,
        "told once"
    );
    assert!(
        bot.calls("getfile").is_empty(),
        "nothing downloaded over quota"
    );
    server.stop().await;
}
