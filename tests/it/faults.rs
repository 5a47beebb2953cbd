//! Faults survived: a Bot API outage (429 and 500 for a while), and a
//! `kill -9` of the server in the middle of ingesting thousands of updates.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{json, Value};

use crate::{common::*, fake_bot::FakeBot, telegram::FIXTURE_CHATS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_api_outage_of_429s_and_500s_loses_nothing() {
    let bot = FakeBot::start().await;
    let expected = register_fixture_files(&bot);
    let updates = all_fixture_updates();
    bot.push_updates(updates.clone());
    // The Bot API is down (429 with retry_after, and 500) for the first 4 seconds.
    bot.state.lock().unwrap().outage_until = Some(Instant::now() + Duration::from_secs(4));
    let dir = tempdir();
    let mut cfg = config(dir.path(), &bot);
    cfg.telegram_mode = Some(appliance::config::TelegramMode::Polling);
    let server = TestServer::start(cfg).await;
    server.space_with_chats("family", FIXTURE_CHATS);
    wait_until("all updates stored", || {
        server.count("SELECT count(*) FROM telegram_updates") == updates.len() as i64
    })
    .await;
    wait_until("every download", || {
        server.count("SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')") == 0
    })
    .await;
    assert!(bot.state.lock().unwrap().refused > 0, "the outage happened");
    assert_eq!(
        server.count("SELECT count(*) FROM jobs WHERE state = 'failed'"),
        0
    );
    crate::telegram::assert_album_complete(&server, &expected);
    server.stop().await;
}

/// A small PNG, different for every `i`.
fn png(i: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(4, 4, |x, y| {
        image::Rgb([(i % 256) as u8, ((i / 256) % 256) as u8, (x * 16 + y) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn photo_update(i: u32) -> Value {
    json!({
        "update_id": 10_000 + i,
        "message": {
            "message_id": 1 + i, "date": 1_700_000_000 + i,
            "chat": { "id": -100500, "type": "group", "title": "Family" },
            "from": { "id": 7, "is_bot": false, "first_name": "Mamie" },
            "photo": [{ "file_id": format!("F{i}"), "file_unique_id": format!("U{i}"), "width": 4, "height": 4 }]
        }
    })
}

fn spawn_server(data: &std::path::Path, port: u16, bot: &FakeBot) -> Child {
    Command::new(env!("CARGO_BIN_EXE_appliance"))
        .args(["--data-dir", data.to_str().unwrap(), "serve"])
        .env("APPLIANCE_LISTEN", format!("127.0.0.1:{port}"))
        .env("APPLIANCE_TELEGRAM_TOKEN", "123456:TEST-token_abc")
        .env("APPLIANCE_TELEGRAM_MODE", "webhook")
        .env("APPLIANCE_TELEGRAM_WEBHOOK_SECRET", SECRET)
        .env("APPLIANCE_TELEGRAM_API_URL", &bot.url)
        .env("APPLIANCE_JOB_WORKERS", "2")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_healthy(url: &str) {
    let start = Instant::now();
    while client().get(format!("{url}/readyz")).send().await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Posts updates (16 at a time) until all are acknowledged or the server goes away;
/// returns the acknowledged update ids.
async fn post_all(url: &str, updates: &[Value]) -> Vec<i64> {
    use futures_util::StreamExt;
    let c = client();
    futures_util::stream::iter(updates.iter().cloned())
        .map(|u| {
            let c = c.clone();
            async move {
                let r = c
                    .post(format!("{url}/hooks/telegram"))
                    .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
                    .header("content-type", "application/json")
                    .body(u.to_string())
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => u["update_id"].as_i64(),
                    _ => None,
                }
            }
        })
        .buffer_unordered(16)
        .filter_map(|x| async move { x })
        .collect()
        .await
}

fn count(data: &std::path::Path, sql: &str) -> i64 {
    let c = rusqlite::Connection::open(data.join("appliance.sqlite")).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_ingesting_5000_photos_then_restart_and_everything_is_there_once() {
    const N: u32 = 5000;
    let bot = FakeBot::start().await;
    for i in 0..N {
        bot.add_file(&format!("F{i}"), &format!("photos/{i}.png"), png(i));
    }
    let dir = tempdir();
    let data = dir.path();
    // Create the space and bind the chat before the server runs.
    {
        let app = appliance::App::open(appliance::Config {
            data_dir: data.to_path_buf(),
            ..appliance::Config::default()
        })
        .unwrap();
        let c = app.db.conn().unwrap();
        let s = appliance::db::spaces::create(&c, "family", "Family").unwrap();
        appliance::db::telegram::bind_chat(&c, -100500, s.id).unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let updates: Vec<Value> = (0..N).map(photo_update).collect();

    let mut child = spawn_server(data, port, &bot);
    wait_healthy(&url).await;
    // A first third goes in whole; once its downloads are under way, the rest is
    // posted while the server is killed. The kill does not depend on how fast the
    // machine is: it happens after the first stored photo and before the last.
    let (first, rest) = updates.split_at((N / 3) as usize);
    let mut acked = post_all(&url, first).await;
    assert_eq!(acked.len(), first.len());
    let start = Instant::now();
    while count(data, "SELECT count(*) FROM media WHERE state = 'stored'") == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no download started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let posting = tokio::spawn({
        let url = url.clone();
        let rest = rest.to_vec();
        async move { post_all(&url, &rest).await }
    });
    let base = acked.len() as i64;
    let start = Instant::now();
    while count(data, "SELECT count(*) FROM telegram_updates") < base + 100
        && start.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status();
    let _ = child.wait();
    acked.extend(posting.await.unwrap());
    // The kill interrupted ingestion: downloads were still pending.
    let pending = count(
        data,
        "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')",
    );
    assert!(pending > 0, "the kill came after ingestion had finished");
    // Every acknowledged update survived the kill.
    let stored = count(data, "SELECT count(*) FROM telegram_updates");
    assert!(
        stored >= acked.len() as i64,
        "{stored} stored < {} acknowledged",
        acked.len()
    );

    // Restart; Telegram redelivers what was not acknowledged (and, to be sure, everything).
    let mut child = spawn_server(data, port, &bot);
    wait_healthy(&url).await;
    let acked = post_all(&url, &updates).await;
    assert_eq!(acked.len() as u32, N);
    let start = Instant::now();
    while count(
        data,
        "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')",
    ) > 0
    {
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "ingestion did not finish"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert_eq!(
        count(data, "SELECT count(*) FROM telegram_updates"),
        i64::from(N)
    );
    assert_eq!(count(data, "SELECT count(*) FROM messages"), i64::from(N));
    assert_eq!(
        count(data, "SELECT count(*) FROM media WHERE state = 'stored'"),
        i64::from(N)
    );
    assert_eq!(count(data, "SELECT count(*) FROM blobs"), i64::from(N));
    assert_eq!(
        count(data, "SELECT count(*) FROM jobs WHERE state = 'failed'"),
        0
    );
    // Every blob is in the vault, whole, once; no temp file is left.
    let (ok, out, err) = crate::integrations::appliance_cli(data, &["check", "--json"], &[]);
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}{err}"));
    assert_eq!(report["missing_blobs"], json!([]), "{report}");
    assert_eq!(report["damaged_blobs"], json!([]), "{report}");
    assert_eq!(report["orphan_blobs"], json!([]), "{report}");
    let _ = ok;
}

/// A PNG of noise (incompressible): about `side * side * 3` bytes.
fn noise_png(seed: u32, side: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let img = image::RgbImage::from_fn(side, side, |_, _| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        image::Rgb([x as u8, (x >> 8) as u8, (x >> 16) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// Unmounts on drop, even when the test fails.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_reported_reads_go_on_and_downloads_resume_when_space_returns() {
    let dir = tempdir();
    let vault = dir.path().join("vault");
    std::fs::create_dir_all(&vault).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&vault)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("NOTICE: cannot mount a tmpfs here (not root?): the disk-full test is skipped");
        return;
    }
    let _guard = Mount(vault.clone());
    let bot = FakeBot::start().await;
    let n = 8u32;
    for i in 0..n {
        bot.add_file(
            &format!("N{i}"),
            &format!("photos/n{i}.png"),
            noise_png(i, 370),
        );
    }
    let mut cfg = config(dir.path(), &bot);
    cfg.min_free_mb = 1;
    cfg.job_workers = 1;
    let server = TestServer::start(cfg).await;
    server.space_with_chats("family", &[-100600]);
    crate::web::add_user(&server, "dora", false);
    {
        let c = server.app.db.conn().unwrap();
        let s = appliance::db::spaces::find(&c, "family").unwrap();
        let u = appliance::db::users::find(&c, "dora").unwrap();
        appliance::db::spaces::grant(&c, s.id, u.id, appliance::db::spaces::Role::Member).unwrap();
    }
    let ready = |s: &TestServer| {
        let url = format!("{}/readyz", s.url);
        async move { client().get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(ready(&server).await, 200);
    for i in 0..n {
        let u = json!({
            "update_id": 700 + i,
            "message": {
                "message_id": 1 + i, "date": 1_700_000_000 + i,
                "chat": { "id": -100600, "type": "group", "title": "Family" },
                "from": { "id": 7, "is_bot": false, "first_name": "Mamie" },
                "caption": format!("photo {i}"),
                "photo": [{ "file_id": format!("N{i}"), "file_unique_id": format!("NU{i}"), "width": 370, "height": 370 }]
            }
        });
        assert_eq!(server.post_update(&u.to_string(), Some(SECRET)).await, 200);
    }
    wait_until("the disk to fill", || {
        server.count("SELECT count(*) FROM jobs WHERE last_error LIKE 'disk full%'") > 0
    })
    .await;
    // Reported, reads still served, nothing given up.
    assert_eq!(ready(&server).await, 503);
    let cookie = crate::web::login(&server, "dora", "password-of-test").await;
    let r = client()
        .get(format!("{}/s/family", server.url))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let stored = server.count("SELECT count(*) FROM media WHERE state = 'stored'");
    assert!(stored < i64::from(n), "{stored} stored on a 2 MB disk");
    assert_eq!(
        server.count("SELECT count(*) FROM media WHERE state = 'failed'"),
        0
    );
    assert_eq!(
        server.count("SELECT count(*) FROM messages"),
        i64::from(n),
        "the texts are all in"
    );

    // Space returns: every download completes.
    let grown = Command::new("mount")
        .args(["-o", "remount,size=64m"])
        .arg(&vault)
        .status()
        .unwrap();
    assert!(grown.success());
    wait_until("every photo stored", || {
        server.count("SELECT count(*) FROM media WHERE state = 'stored'") == i64::from(n)
    })
    .await;
    assert_eq!(ready(&server).await, 200);
    server.stop().await;
}
