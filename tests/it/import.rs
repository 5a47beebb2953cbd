//! Imports end to end, through the built binary: real exports, idempotence,
//! hostile zips, folders and the web upload.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;

use crate::common::*;

/// Runs `appliance --data-dir DATA ARGS`; returns (success, stdout, stderr).
fn run(data: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_appliance"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("APPLIANCE_TELEGRAM_TOKEN")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An import with `--json`: the summary from the last line of standard output.
fn import(data: &Path, kind: &str, path: &Path) -> Value {
    let (ok, out, err) = run(
        data,
        &[
            "import",
            kind,
            path.to_str().unwrap(),
            "--space",
            "family",
            "--json",
        ],
    );
    assert!(ok, "import {kind} {}: {err}", path.display());
    serde_json::from_str(out.lines().last().unwrap()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn data_dir() -> tempfile::TempDir {
    let d = tempdir();
    assert!(run(d.path(), &["space", "add", "family"]).0);
    d
}

/// Messages of the family space: (sender, sent_at as UTC text, text or caption), by time.
fn messages(data: &Path, source: &str) -> Vec<(String, String, String)> {
    let c = rusqlite::Connection::open(data.join("appliance.sqlite")).unwrap();
    let mut st = c
        .prepare(
            "SELECT coalesce(sender_name, ''), datetime(sent_at, 'unixepoch'), coalesce(text, caption, '')
             FROM messages WHERE source = ?1 ORDER BY sent_at, id",
        )
        .unwrap();
    st.query_map([source], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// A copyleft fixture from `../shared/fixtures`: `None` (with a notice) when absent,
/// a failure when APPLIANCE_REQUIRE_SHARED_FIXTURES=1.
fn shared(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures")
        .join(rel);
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var("APPLIANCE_REQUIRE_SHARED_FIXTURES").as_deref() != Ok("1"),
        "{} is required (APPLIANCE_REQUIRE_SHARED_FIXTURES=1) but missing",
        p.display()
    );
    eprintln!(
        "notice: {} is absent (copyleft fixtures live in ../shared); skipping",
        p.display()
    );
    None
}

fn summary(
    messages: u64,
    media: u64,
    duplicates: u64,
    skipped: u64,
    errors: u64,
    unparsed: u64,
) -> Value {
    serde_json::json!({ "messages": messages, "media": media, "duplicates": duplicates, "skipped": skipped,
                        "errors": errors, "unparsed_lines": unparsed })
}

#[test]
fn whatsapp_exports_match_chat_miners_expected_parse_and_import_once() {
    let target: Vec<Value> =
        serde_json::from_slice(&fixture_bytes("whatsapp-export/target.json")).unwrap();
    let mut expected: Vec<(String, String, String)> = target
        .iter()
        .map(|m| {
            (
                m["author"].as_str().unwrap().to_string(),
                m["timestamp"].as_str().unwrap().replace('T', " "),
                m["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    expected.sort_by(|a, b| a.1.cmp(&b.1));
    for name in [
        "test_ddmmyy_24hrs.txt",
        "test_mmddyy_24hrs.txt",
        "test_[mmddyy]_24hrs.txt",
        "test_mmddyyyy_12hrs.txt",
    ] {
        let d = data_dir();
        let path = fixture(&format!("whatsapp-export/{name}"));
        // 6 messages; "John Doe:." and two system lines are skipped.
        assert_eq!(
            import(d.path(), "whatsapp", &path),
            summary(6, 0, 0, 3, 0, 0),
            "{name}"
        );
        let got: Vec<(String, String, String)> = messages(d.path(), "whatsapp")
            .into_iter()
            .map(|(s, t, x)| (s, t, x.split_whitespace().collect::<Vec<_>>().join(" ")))
            .collect();
        assert_eq!(got, expected, "{name}");
        assert_eq!(
            import(d.path(), "whatsapp", &path),
            summary(0, 0, 0, 3, 0, 0),
            "{name}: second run"
        );
    }
}

#[test]
fn whatsapp_ios_android_and_mixed_styles() {
    let d = data_dir();
    // iOS with direction marks: 12 headers, the encryption notice and 3 omitted images.
    assert_eq!(
        import(
            d.path(),
            "whatsapp",
            &fixture("whatsapp-export/whatsapp_chat_ios.txt")
        ),
        summary(11, 0, 0, 4, 0, 0)
    );
    let ios = messages(d.path(), "whatsapp");
    assert_eq!(ios[0], ("Dr. Feather".into(), "2023-08-15 09:12:43".into(), "I spotted a rare Hyacinth Macaw yesterday in the Amazon Rainforest. Such a magnificent creature!".into()));
    // One export, both styles, each with its own date order: all of 15 December 2025.
    assert_eq!(
        import(d.path(), "whatsapp", &fixture("whatsapp-export/sample.txt")).get("messages"),
        Some(&4.into())
    );
    let mixed: Vec<_> = messages(d.path(), "whatsapp")
        .into_iter()
        .filter(|m| m.1.starts_with("2025-12-15"))
        .collect();
    assert_eq!(mixed.len(), 4, "{mixed:?}");
    assert_eq!(
        mixed[1].2,
        "Hi John! This is another Android message.\nIt has multiple lines\nto test grouping."
    );
    // One line per header variant; the one it cannot place is reported, not dropped silently.
    let v = import(
        d.path(),
        "whatsapp",
        &fixture("whatsapp-export/whatsapp_chat_mixed_formats.txt"),
    );
    assert_eq!(
        (v["messages"].as_u64(), v["unparsed_lines"].as_u64()),
        (Some(9), Some(1))
    );

    // Real exports in several languages (GPL fixtures, read from ../shared).
    let Some(ios_dir) = shared("whatsapp-export/whats_json/ios") else {
        return;
    };
    let en = import(
        d.path(),
        "whatsapp",
        &ios_dir.join("WhatsApp Chat - Elon Musk (EN).txt"),
    );
    // 25 headers: 19 messages (12 of them media the export left out) and 6 notices.
    assert_eq!(en["messages"], 19, "{en}");
    // Every language: the same 19 messages out of 25 headers (21 of 28 in the longer exports).
    for (file, expected) in [
        ("WhatsApp Chat - Elon Musk (EN+Media).txt", 19),
        ("WhatsApp Chat - Elon Musk (FR).txt", 19),
        ("WhatsApp Chat - Elon Musk (German).txt", 19),
        ("WhatsApp Chat - Elon Musk (Arabic).txt", 19),
        ("WhatsApp Chat - Elon Musk (RU).txt", 19),
        ("WhatsApp Chat - Elon Musk (Spanish).txt", 19),
        ("WhatsApp Chat - Elon Musk (IT).txt", 19),
        ("iOS Indonesian.txt", 21),
        ("iOS Vietnamese.txt", 21),
    ] {
        let dd = data_dir();
        let v = import(dd.path(), "whatsapp", &ios_dir.join(file));
        let msgs = messages(dd.path(), "whatsapp");
        assert_eq!(
            (v["messages"].as_u64(), v["unparsed_lines"].as_u64()),
            (Some(expected), Some(0)),
            "{file}: {v}"
        );
        let hello = msgs
            .iter()
            .find(|m| m.2 == "Hello World")
            .unwrap_or_else(|| panic!("{file}: {msgs:?}"));
        assert_eq!(
            (hello.0.as_str(), hello.1.as_str()),
            ("Dmitry S", "2022-03-27 21:41:35"),
            "{file}"
        );
        let last = msgs.last().unwrap();
        assert!(
            last.1.starts_with("2022-03-27") || last.1.starts_with("2023-"),
            "{file}: {last:?}"
        );
    }
    let android = shared("whatsapp-export/whats_json/android").unwrap();
    // The Czech file's name is in decomposed Unicode: find it rather than spell it.
    let czech = std::fs::read_dir(&android)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .contains("CZ Android")
        })
        .unwrap();
    for path in [
        android.join("WhatsApp Chat with Dmitry S EN Android.txt"),
        czech,
    ] {
        let file = path.display().to_string();
        let dd = data_dir();
        let v = import(dd.path(), "whatsapp", &path);
        assert_eq!(
            (v["messages"].as_u64(), v["unparsed_lines"].as_u64()),
            (Some(59), Some(0)),
            "{file}: {v}"
        );
        let first = &messages(dd.path(), "whatsapp")[0];
        assert_eq!(
            (first.0.as_str(), first.1.as_str(), first.2.as_str()),
            ("Dmitry S", "2022-03-18 14:56:00", "Hello"),
            "{file}"
        );
    }
    // A zipped Android export (AGPL fixture).
    let zip = shared("whatsapp-export/chat-analytics/4A_11M.zip").unwrap();
    let dd = data_dir();
    let v = import(dd.path(), "whatsapp", &zip);
    assert_eq!(
        (v["messages"].as_u64(), v["unparsed_lines"].as_u64()),
        (Some(11), Some(0)),
        "{v}"
    );
    assert_eq!(import(dd.path(), "whatsapp", &zip)["messages"], 0);
}

fn export_dir(json: &[u8]) -> tempfile::TempDir {
    let d = tempdir();
    std::fs::write(d.path().join("result.json"), json).unwrap();
    d
}

#[test]
fn telegram_desktop_exports_every_shape() {
    let d = data_dir();
    // Newer single chat (date_unixtime, text entities).
    let e = export_dir(&fixture_bytes("telegram-export/langchain_result.json"));
    assert_eq!(
        import(d.path(), "telegram-export", e.path()),
        summary(4, 0, 0, 0, 0, 0)
    );
    let m = messages(d.path(), "telegram_export");
    assert_eq!(
        m[0],
        (
            "Jimmeny Marvelton".into(),
            "2023-08-23 20:11:23".into(),
            "i refuse to converse with you".into()
        )
    );
    assert_eq!(m[1].0, "Batman & Robin");
    // The same export given as its result.json: nothing new.
    assert_eq!(
        import(d.path(), "telegram-export", &e.path().join("result.json"))["messages"],
        0
    );
    // Older format (no date_unixtime, numeric from_id).
    let e = export_dir(&fixture_bytes("telegram-export/langchain_telegram.json"));
    assert_eq!(import(d.path(), "telegram-export", e.path())["messages"], 3);
    // Entities flattened; the service message skipped.
    let e = export_dir(&fixture_bytes("telegram-export/personal_chat.json"));
    assert_eq!(
        import(d.path(), "telegram-export", e.path()),
        summary(4, 0, 0, 1, 0, 0)
    );
    assert!(messages(d.path(), "telegram_export")
        .iter()
        .any(|m| m.2 == "Check this important message"));
    // Full-account export (chats.list), minimal messages without ids.
    let e = export_dir(&fixture_bytes("telegram-export/test_batch_export.json"));
    assert_eq!(import(d.path(), "telegram-export", e.path())["messages"], 2);
    assert!(messages(d.path(), "telegram_export")
        .iter()
        .any(|m| m.2 == "Link:https://telegram.org/"));
    assert_eq!(
        import(d.path(), "telegram-export", e.path())["messages"],
        0,
        "idempotent without ids too"
    );
}

fn zip_of(files: &[(&str, &[u8])]) -> tempfile::NamedTempFile {
    let f = tempfile::Builder::new().suffix(".zip").tempfile().unwrap();
    let mut z = zip::ZipWriter::new(f.reopen().unwrap());
    for (name, bytes) in files {
        z.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap();
    f
}

#[test]
fn telegram_export_with_media_from_a_folder_and_from_a_zip() {
    let d = data_dir();
    let photo = fixture_bytes("images/Canon_40D.jpg");
    let json = br#"{"name":"Famille","type":"private_group","id":77,"messages":[
      {"id":1,"type":"message","date_unixtime":"1700000000","from":"Mamie","text":"Regardez !","photo":"photos/photo_1.jpg"},
      {"id":2,"type":"message","date_unixtime":"1700000100","from":"Papi","text":"","file":"video_files/clip.mp4","media_type":"video_file","mime_type":"video/mp4"},
      {"id":3,"type":"message","date_unixtime":"1700000200","from":"Papi","text":"","file":"(File not included. Change data exporting settings to download.)","media_type":"video_file"},
      {"id":4,"type":"message","date_unixtime":"1700000300","from":"Lea","text":"","photo":"../../etc/passwd"}]}"#;
    let e = export_dir(json);
    std::fs::create_dir_all(e.path().join("photos")).unwrap();
    std::fs::create_dir_all(e.path().join("video_files")).unwrap();
    std::fs::write(e.path().join("photos/photo_1.jpg"), &photo).unwrap();
    std::fs::write(
        e.path().join("video_files/clip.mp4"),
        fixture_bytes("video/sample.mp4"),
    )
    .unwrap();
    // 4 messages, 2 media; the file left out is skipped; the path leaving the export is an error.
    assert_eq!(
        import(d.path(), "telegram-export", e.path()),
        summary(4, 2, 0, 1, 1, 0)
    );
    let (_, out, _) = run(d.path(), &["media", "list", "--json"]);
    let items: Vec<Value> = serde_json::from_str(&out).unwrap();
    let p = items.iter().find(|i| i["kind"] == "photo").unwrap();
    assert_eq!(p["sha256"], sha256(&photo));
    assert_eq!(
        (p["caption"].as_str(), p["sender"].as_str()),
        (Some("Regardez !"), Some("Mamie"))
    );
    assert_eq!(
        p["has_thumbnail"], true,
        "thumbnails are made before the import returns"
    );
    assert_eq!(p["taken_at"], "2008-05-30T15:56:01");
    assert_eq!(
        items.iter().find(|i| i["kind"] == "video").unwrap()["received_at"],
        "2023-11-14T22:15:00Z"
    );
    // The same export zipped, inside a folder as Telegram Desktop makes it: nothing new.
    let z = zip_of(&[
        ("ChatExport_2023-11-14/result.json", json),
        ("ChatExport_2023-11-14/photos/photo_1.jpg", &photo),
    ]);
    let v = import(d.path(), "telegram-export", z.path());
    assert_eq!(
        (
            v["messages"].as_u64(),
            v["media"].as_u64(),
            v["duplicates"].as_u64()
        ),
        (Some(0), Some(0), Some(1)),
        "{v}"
    );
    // It appears in search with its original sender.
    let (_, out, _) = run(d.path(), &["reindex"]);
    assert!(out.contains("reindexed"));
    let (_, out, _) = run(d.path(), &["search", "regardez from:mamie", "--json"]);
    let hits: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(hits.len(), 1, "{out}");
    assert_eq!(hits[0]["received_at"], "2023-11-14T22:13:20Z");
}

#[test]
fn hostile_zips_are_refused_whole() {
    let d = data_dir();
    let chat = b"12/31/20, 11:59 PM - Ann: hi\n";
    let slip = zip_of(&[("_chat.txt", chat), ("../../evil.txt", b"x")]);
    let (ok, _, err) = run(
        d.path(),
        &[
            "import",
            "whatsapp",
            slip.path().to_str().unwrap(),
            "--space",
            "family",
        ],
    );
    assert!(!ok && err.contains("zip-slip"), "{err}");
    let abs = zip_of(&[("_chat.txt", chat), ("/etc/cron.d/evil", b"x")]);
    let (ok, _, err) = run(
        d.path(),
        &[
            "import",
            "whatsapp",
            abs.path().to_str().unwrap(),
            "--space",
            "family",
        ],
    );
    assert!(!ok && err.contains("outside the export"), "{err}");
    // A symbolic link entry.
    let f = tempfile::Builder::new().suffix(".zip").tempfile().unwrap();
    {
        let mut z = zip::ZipWriter::new(f.reopen().unwrap());
        z.start_file("_chat.txt", zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(chat).unwrap();
        z.add_symlink(
            "photo.jpg",
            "/etc/passwd",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        z.finish().unwrap();
    }
    let (ok, _, err) = run(
        d.path(),
        &[
            "import",
            "whatsapp",
            f.path().to_str().unwrap(),
            "--space",
            "family",
        ],
    );
    assert!(!ok && err.contains("symbolic link"), "{err}");
    // A bomb: 50 MB of zeros in a few kilobytes.
    let f = tempfile::Builder::new().suffix(".zip").tempfile().unwrap();
    {
        let mut z = zip::ZipWriter::new(f.reopen().unwrap());
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        z.start_file("_chat.txt", opts).unwrap();
        z.write_all(chat).unwrap();
        z.start_file("IMG-0001.jpg", opts).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..50 {
            z.write_all(&zeros).unwrap();
        }
        z.finish().unwrap();
    }
    let (ok, _, err) = run(
        d.path(),
        &[
            "import",
            "whatsapp",
            f.path().to_str().unwrap(),
            "--space",
            "family",
        ],
    );
    assert!(!ok && err.contains("zip bomb"), "{err}");
    assert!(
        messages(d.path(), "whatsapp").is_empty(),
        "nothing imported from a refused zip"
    );
    // A symlink leaving an export folder.
    let e = export_dir(br#"{"name":"x","id":1,"messages":[{"id":1,"type":"message","date_unixtime":"1","from":"A","text":"","photo":"photos/p.jpg"}]}"#);
    std::fs::create_dir_all(e.path().join("photos")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", e.path().join("photos/p.jpg")).unwrap();
    let v = import(d.path(), "telegram-export", e.path());
    assert_eq!(
        (v["media"].as_u64(), v["errors"].as_u64()),
        (Some(0), Some(1)),
        "{v}"
    );
}

#[test]
fn folders_of_photos_import_once_with_their_capture_time() {
    let d = data_dir();
    let src = tempdir();
    std::fs::create_dir_all(src.path().join("2008/canon")).unwrap();
    std::fs::write(
        src.path().join("2008/canon/Canon_40D.jpg"),
        fixture_bytes("images/Canon_40D.jpg"),
    )
    .unwrap();
    std::fs::write(
        src.path().join("hopper.png"),
        fixture_bytes("images/hopper.png"),
    )
    .unwrap();
    std::fs::write(
        src.path().join("copy-of-hopper.png"),
        fixture_bytes("images/hopper.png"),
    )
    .unwrap();
    std::fs::write(
        src.path().join("clip.mp4"),
        fixture_bytes("video/sample.mp4"),
    )
    .unwrap();
    std::fs::write(src.path().join("notes.txt"), b"not a photo").unwrap();
    assert_eq!(
        import(d.path(), "dir", src.path()),
        summary(0, 3, 1, 1, 0, 0)
    );
    assert_eq!(
        import(d.path(), "dir", src.path()),
        summary(0, 0, 4, 1, 0, 0),
        "a second run adds nothing"
    );
    let (_, out, _) = run(d.path(), &["media", "list", "--json"]);
    let items: Vec<Value> = serde_json::from_str(&out).unwrap();
    let canon = items
        .iter()
        .find(|i| i["file_name"] == "Canon_40D.jpg")
        .unwrap();
    assert_eq!(
        canon["received_at"], "2008-05-30T15:56:01Z",
        "EXIF capture time orders the album"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn web_upload_streams_files_into_the_album() {
    let bot = crate::fake_bot::FakeBot::start().await;
    let dir = tempdir();
    let server = TestServer::start(config(dir.path(), &bot)).await;
    server.space_with_chats("family", &[]);
    let (token, viewer) = {
        let c = server.app.db.conn().unwrap();
        let s = appliance::db::spaces::find(&c, "family").unwrap();
        let mut tokens = Vec::new();
        for (name, role) in [
            ("alice", appliance::db::spaces::Role::Member),
            ("vic", appliance::db::spaces::Role::Viewer),
        ] {
            let u = appliance::db::users::create(&c, name, "x", false).unwrap();
            appliance::db::spaces::grant(&c, s.id, u.id, role).unwrap();
            let t = appliance::web::auth::random_token();
            appliance::db::users::create_token(
                &c,
                &appliance::web::auth::token_hash(&t),
                u.id,
                "t",
            )
            .unwrap();
            tokens.push(t);
        }
        (tokens[0].clone(), tokens[1].clone())
    };
    let jpeg = fixture_bytes("images/Landscape_6.jpg");
    let form = || {
        reqwest::multipart::Form::new()
            .part(
                "files",
                reqwest::multipart::Part::bytes(jpeg.clone()).file_name("beach.jpg"),
            )
            .part(
                "files",
                reqwest::multipart::Part::bytes(b"\x7fELF\x02\x01\x01\0".repeat(32))
                    .file_name("cat.jpg"),
            )
    };
    let url = format!("{}/api/v1/spaces/family/media", server.url);
    let r = client()
        .post(&url)
        .bearer_auth(&token)
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["files"][0]["status"], "added", "{v}");
    assert_eq!(v["files"][1]["status"], "refused", "{v}");
    let items = server.media("family");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].sha256.as_deref(), Some(sha256(&jpeg).as_str()));
    assert_eq!(items[0].sender.as_deref(), Some("alice"));
    server.settle().await;
    assert!(server.media("family")[0].has_thumbnail);
    // Again: a duplicate, not a second item.
    let v: Value = client()
        .post(&url)
        .bearer_auth(&token)
        .multipart(form())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["files"][0]["status"], "duplicate", "{v}");
    assert_eq!(server.media("family").len(), 1);
    // Viewers cannot add; outsiders do not see the space.
    let r = client()
        .post(&url)
        .bearer_auth(&viewer)
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client()
        .post(&url)
        .bearer_auth("nope")
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Over the size limit: refused while streaming.
    server.stop().await;
    let mut cfg = config(dir.path(), &bot);
    cfg.max_file_bytes = 10_000;
    let server = TestServer::start(cfg).await;
    let url = format!("{}/api/v1/spaces/family/media", server.url);
    let r = client()
        .post(&url)
        .bearer_auth(&token)
        .multipart(
            reqwest::multipart::Form::new().part(
                "files",
                reqwest::multipart::Part::bytes(fixture_bytes("images/Portrait_6.jpg"))
                    .file_name("big.jpg"),
            ),
        )
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, 422, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["files"][0]["error"].as_str().unwrap().contains("limit"),
        "{v}"
    );
    server.stop().await;
}

#[test]
fn whatsapp_zip_with_attachments_in_french() {
    let d = data_dir();
    let photo = fixture_bytes("images/hopper.jpg");
    let chat = "31/12/2020, 23:58 - Mamie: Bonne année !\n\
                31/12/2020, 23:59 - Mamie: \u{200e}IMG-20201231-WA0001.jpg (fichier joint)\n\
                Le feu d'artifice\n\
                01/01/2021, 00:01 - Papi: <Médias omis>\n\
                01/01/2021, 00:02 - Papi: VID-20210101-WA0002.mp4 (fichier joint)\n";
    let z = zip_of(&[
        ("WhatsApp Chat with Famille.txt", chat.as_bytes()),
        ("IMG-20201231-WA0001.jpg", &photo),
    ]);
    // 4 messages; one medium imported; the omitted one and the missing video are skipped.
    assert_eq!(
        import(d.path(), "whatsapp", z.path()),
        summary(4, 1, 0, 2, 0, 0)
    );
    let (_, out, _) = run(d.path(), &["media", "list", "--json"]);
    let items: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["caption"], "Le feu d'artifice");
    assert_eq!(items[0]["sender"], "Mamie");
    assert_eq!(items[0]["received_at"], "2020-12-31T23:59:00Z");
    assert_eq!(items[0]["sha256"], sha256(&photo));
    assert_eq!(
        import(d.path(), "whatsapp", z.path()),
        summary(0, 0, 1, 2, 0, 0)
    );
}
