//! The command-line contract, through the built binary.

use std::{
    io::Write,
    process::{Command, Stdio},
};

use serde_json::Value;

use crate::{common::*, fake_bot::FakeBot};

fn appliance(data: &std::path::Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_appliance"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("APPLIANCE_TELEGRAM_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn users_spaces_and_sources_from_the_command_line() {
    let dir = tempdir();
    let d = dir.path();
    let (ok, _, err) = appliance(
        d,
        &["user", "add", "mamie", "--admin", "--password-stdin"],
        Some("tarte aux pommes\n"),
    );
    assert!(ok, "{err}");
    let (ok, _, err) = appliance(
        d,
        &["user", "add", "mamie", "--password-stdin"],
        Some("tarte aux pommes\n"),
    );
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = appliance(
        d,
        &["user", "add", "short", "--password-stdin"],
        Some("abc\n"),
    );
    assert!(!ok && err.contains("at least 8"), "{err}");
    let (ok, _, err) = appliance(
        d,
        &["space", "add", "famille", "--name", "La famille"],
        None,
    );
    assert!(ok, "{err}");
    let (ok, _, err) = appliance(d, &["space", "add", "Bad Slug"], None);
    assert!(!ok && err.contains("slug"), "{err}");
    let (ok, out, err) = appliance(
        d,
        &["space", "grant", "famille", "mamie", "--role", "owner"],
        None,
    );
    assert!(ok && out.contains("owner"), "{err}");
    let (ok, out, err) = appliance(
        d,
        &[
            "source",
            "add",
            "telegram",
            "--space",
            "famille",
            "--chat-id",
            "-100123",
        ],
        None,
    );
    assert!(ok && out.contains("-100123"), "{err}");
    let (ok, out, _) = appliance(d, &["source", "list", "--json"], None);
    assert!(ok);
    let chats: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(chats[0]["chat_id"], -100123);
    assert_eq!(chats[0]["space"], "famille");
    let (ok, out, _) = appliance(d, &["media", "list", "--json"], None);
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        Value::Array(vec![])
    );
    // The password is stored as argon2id, never in clear.
    let c = rusqlite::Connection::open(d.join("appliance.sqlite")).unwrap();
    let hash: String = c
        .query_row("SELECT password_hash FROM users", [], |r| r.get(0))
        .unwrap();
    assert!(hash.starts_with("$argon2id$") && !hash.contains("pommes"));
}

#[tokio::test(flavor = "multi_thread")]
async fn media_list_json_has_the_contract_fields() {
    let bot = FakeBot::start().await;
    let expected = register_fixture_files(&bot);
    let dir = tempdir();
    let server = TestServer::start(config(dir.path(), &bot)).await;
    server.space_with_chats("family", &[12345, 456, 11111111]);
    for u in all_fixture_updates() {
        assert_eq!(server.post_update(&u.to_string(), Some(SECRET)).await, 200);
    }
    server.settle().await;
    // The CLI reads the same data dir while the server runs.
    let (ok, out, err) = appliance(
        dir.path(),
        &["media", "list", "--space", "family", "--json"],
        None,
    );
    assert!(ok, "{err}");
    let items: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(items.len(), 6);
    for item in &items {
        for key in [
            "id",
            "space",
            "kind",
            "mime",
            "bytes",
            "sha256",
            "width",
            "height",
            "taken_at",
            "caption",
            "sender",
            "chat_id",
            "received_at",
            "has_thumbnail",
        ] {
            assert!(item.get(key).is_some(), "{key} in {item}");
        }
        assert_eq!(item["space"], "family");
        assert!(expected
            .iter()
            .any(|(_, sha)| item["sha256"] == sha.as_str()));
    }
    let voice = items.iter().find(|i| i["kind"] == "voice").unwrap();
    assert_eq!(voice["mime"], "audio/opus");
    assert_eq!(voice["has_thumbnail"], false);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn telegram_commands_talk_to_the_bot_api() {
    let bot = FakeBot::start().await;
    let dir = tempdir();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_appliance"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(args)
            .env("APPLIANCE_TELEGRAM_TOKEN", "123456:TEST-token_abc")
            .env("APPLIANCE_TELEGRAM_API_URL", &bot.url)
            .env("APPLIANCE_TELEGRAM_WEBHOOK_SECRET", SECRET)
            .output()
            .unwrap()
    };
    let me = run(&["telegram", "me"]);
    assert!(
        me.status.success(),
        "{}",
        String::from_utf8_lossy(&me.stderr)
    );
    let v: Value = serde_json::from_slice(&me.stdout).unwrap();
    assert_eq!(v["username"], "family_album_bot");
    let set = run(&[
        "telegram",
        "set-webhook",
        "https://photos.example.org/hooks/telegram",
    ]);
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let calls = bot.calls("setwebhook");
    assert_eq!(calls[0]["url"], "https://photos.example.org/hooks/telegram");
    assert_eq!(calls[0]["secret_token"], SECRET);
    let del = run(&["telegram", "delete-webhook"]);
    assert!(del.status.success());
    assert_eq!(bot.calls("deletewebhook").len(), 1);
}
