//! Photo ingest benchmark: webhook acknowledgements for photo updates, the
//! end-to-end rate (getFile, download, hash, fsync, thumbnail and preview),
//! and the server's RSS idle, after ingesting, and at its peak.
//!
//! `cargo run --release --example bench_photos [-- N CONCURRENCY]` (default
//! 10,000 photos, 64 in flight). A fake Bot API runs in this process and
//! serves 1280 × 960 JPEGs, the size Telegram delivers for a photo sent
//! compressed; each is a different blob (a counter after the JPEG's end), so
//! nothing is deduplicated. The server runs in a child process (this program
//! with `--serve`) with the production settings (WAL, `synchronous=FULL`,
//! job workers = cores), so its RSS is its own.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    extract::{Path, State},
    routing::{get, post},
    Json, Router,
};
use futures_util::StreamExt;
use serde_json::{json, Value};

#[path = "support/mod.rs"]
mod support;
use support::vm;

const SECRET: &str = "bench-secret";
const TOKEN: &str = "123456:BENCH-token";

/// A 1280 × 960 JPEG (quality 85) of smooth gradients with some texture.
fn photo() -> Vec<u8> {
    let img = image::RgbImage::from_fn(1280, 960, |x, y| {
        let t = (x * 7 + y * 13) % 17;
        image::Rgb([(x / 5) as u8, (y / 4) as u8, ((x + y) / 9) as u8 ^ t as u8])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&img)
        .expect("encode");
    out
}

fn update(i: u64) -> String {
    json!({
        "update_id": 2_000_000 + i,
        "message": {
            "message_id": 1 + i, "date": 1_700_000_000 + i,
            "chat": { "id": -100500, "type": "group", "title": "Family" },
            "from": { "id": 7, "is_bot": false, "first_name": "Mamie" },
            "photo": [{ "file_id": format!("F{i}"), "file_unique_id": format!("U{i}"),
                        "width": 1280, "height": 960 }]
        }
    })
    .to_string()
}

/// The Bot API methods ingestion calls: `getFile`, and file downloads.
async fn fake_bot(base: Arc<Vec<u8>>) -> anyhow::Result<String> {
    async fn method(Path((_, m)): Path<(String, String)>, body: Json<Value>) -> Json<Value> {
        if m.eq_ignore_ascii_case("getFile") {
            let id = body["file_id"].as_str().unwrap_or_default();
            let n = id.trim_start_matches('F');
            Json(json!({ "ok": true, "result": {
                "file_id": id, "file_unique_id": format!("U{n}"), "file_path": format!("photos/{n}.jpg")
            }}))
        } else {
            Json(json!({ "ok": true, "result": true }))
        }
    }
    async fn file(
        State(base): State<Arc<Vec<u8>>>,
        Path((_, path)): Path<(String, String)>,
    ) -> Vec<u8> {
        let n = path.trim_start_matches("photos/").trim_end_matches(".jpg");
        let mut bytes = base.as_ref().clone();
        bytes.extend_from_slice(n.as_bytes());
        bytes
    }
    let router = Router::new()
        .route("/{bot}/{method}", post(method))
        .route("/file/{bot}/{*path}", get(file))
        .with_state(base);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(url)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve") {
        let config = appliance::Config {
            data_dir: args[2].clone().into(),
            telegram_token: Some(appliance::config::Secret::new(TOKEN)),
            telegram_mode: Some(appliance::config::TelegramMode::Webhook),
            telegram_webhook_secret: Some(appliance::config::Secret::new(SECRET)),
            telegram_api_url: args[4].clone(),
            hook_rate_per_s: 1_000_000,
            ..appliance::Config::default()
        };
        return support::serve(config, args[3].parse()?).await;
    }
    let n: u64 = args
        .get(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000);
    let concurrency: usize = args.get(2).map(|a| a.parse()).transpose()?.unwrap_or(64);
    let base = Arc::new(photo());
    let bot = fake_bot(base.clone()).await?;
    let data = std::env::temp_dir().join("appliance-bench-photos");
    let _ = std::fs::remove_dir_all(&data);
    {
        let app = appliance::App::open(appliance::Config {
            data_dir: data.clone(),
            ..appliance::Config::default()
        })?;
        let c = app.db.conn()?;
        let s = appliance::db::spaces::create(&c, "family", "Family")?;
        appliance::db::telegram::bind_chat(&c, -100500, s.id)?;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args([
            "--serve",
            data.to_str().expect("utf-8 path"),
            &port.to_string(),
            &bot,
        ])
        .env("RUST_LOG", "error")
        .spawn()?;
    let pid = child.id();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let base_url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while !http
        .get(format!("{base_url}/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(60), "no server");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = vm(pid, "VmRSS");

    let url = format!("{base_url}/hooks/telegram");
    let latencies = Arc::new(std::sync::Mutex::new(Vec::with_capacity(n as usize)));
    let start = Instant::now();
    let ok = futures_util::stream::iter(0..n)
        .map(|i| {
            let (http, url, lat) = (http.clone(), url.clone(), latencies.clone());
            async move {
                let t = Instant::now();
                let r = http
                    .post(&url)
                    .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
                    .header("content-type", "application/json")
                    .body(update(i))
                    .send()
                    .await;
                lat.lock()
                    .expect("lock")
                    .push(t.elapsed().as_secs_f64() * 1000.0);
                matches!(r, Ok(r) if r.status() == 200)
            }
        })
        .buffer_unordered(concurrency)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    let ack_s = start.elapsed().as_secs_f64();
    let db = rusqlite::Connection::open(data.join("appliance.sqlite"))?;
    db.busy_timeout(Duration::from_secs(10))?;
    let count = |sql: &str| db.query_row(sql, [], |r| r.get::<_, i64>(0));
    while count("SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')")? > 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all_s = start.elapsed().as_secs_f64();
    let stored = count("SELECT count(*) FROM media WHERE state = 'stored'")?;
    let thumbs = count("SELECT count(*) FROM blobs WHERE has_thumbnail = 1")?;
    let failed = count("SELECT count(*) FROM jobs WHERE state = 'failed'")?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_rss = vm(pid, "VmRSS");
    let peak_rss = vm(pid, "VmHWM");
    let _ = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let _ = child.wait();

    let mut lat = latencies.lock().expect("lock").clone();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize];
    println!(
        "{ok} of {n} photo updates acknowledged in {ack_s:.1} s; {stored} stored, {thumbs} with thumbnails, {failed} failed jobs, all done in {all_s:.1} s; photo {} KiB",
        base.len() / 1024
    );
    println!("\n| photo updates ({n}, 1280 × 960 JPEG, {concurrency} in flight) | value |");
    println!("|---|---:|");
    println!("| acknowledged, updates/s | {:.0} |", ok as f64 / ack_s);
    println!(
        "| time-to-200 p50 / p99, ms | {:.2} / {:.2} |",
        pct(0.5),
        pct(0.99)
    );
    println!(
        "| end to end (getFile, download, SHA-256, fsync, 360 + 1280 px renderings), photos/s | {:.0} |",
        stored as f64 / all_s
    );
    println!(
        "| server RSS idle / after / peak, MiB | {idle_rss:.1} / {after_rss:.1} / {peak_rss:.1} |"
    );
    Ok(())
}
