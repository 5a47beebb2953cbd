//! Webhook ingest benchmark: updates/s and time-to-200 with the production
//! durability settings (WAL, `synchronous=FULL`, group commit), beside the
//! SQLite floor measured by `../shared/bench/ingest_bench.py` in the same run.
//!
//! `cargo run --release --example bench_ingest [-- N CONCURRENCY]` (default
//! 20,000 text updates, 64 in flight). The server runs in this process on
//! loopback with the job workers paused, so the figure is the acknowledged
//! rate: each 200 is sent after the raw update is durably committed.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::StreamExt;

const SECRET: &str = "bench-secret";

fn update(i: u64) -> String {
    serde_json::json!({
        "update_id": 1_000_000 + i,
        "message": {
            "message_id": 1 + i, "date": 1_700_000_000 + i,
            "chat": { "id": -100500, "type": "group", "title": "Family" },
            "from": { "id": 7, "is_bot": false, "first_name": "Mamie" },
            "text": format!("message number {i}: see you on Sunday at grandma's")
        }
    })
    .to_string()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args
        .get(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(20_000);
    let concurrency: usize = args.get(2).map(|a| a.parse()).transpose()?.unwrap_or(64);
    let data = std::env::temp_dir().join("appliance-bench-ingest");
    let _ = std::fs::remove_dir_all(&data);
    let config = appliance::Config {
        data_dir: data.clone(),
        job_workers: 0,
        telegram_token: Some(appliance::config::Secret::new("123456:BENCH-token")),
        telegram_mode: Some(appliance::config::TelegramMode::Webhook),
        telegram_webhook_secret: Some(appliance::config::Secret::new(SECRET)),
        hook_rate_per_s: 1_000_000,
        ..appliance::Config::default()
    };
    let app = appliance::App::open(config)?;
    {
        let c = app.db.conn()?;
        let s = appliance::db::spaces::create(&c, "family", "Family")?;
        appliance::db::telegram::bind_chat(&c, -100500, s.id)?;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hooks/telegram", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(appliance::serve(app.clone(), listener, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
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
    let secs = start.elapsed().as_secs_f64();
    let _ = stop.send(());
    let _ = server.await;
    let stored: i64 =
        app.db
            .conn()?
            .query_row("SELECT count(*) FROM telegram_updates", [], |r| r.get(0))?;
    let mut lat = latencies.lock().expect("lock").clone();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize];
    let rate = ok as f64 / secs;
    println!(
        "appliance webhook: {ok} of {n} updates acknowledged ({stored} stored) in {secs:.1} s: {rate:.0}/s, time-to-200 p50 {:.2} ms p99 {:.2} ms ({concurrency} in flight)",
        pct(0.5),
        pct(0.99)
    );
    // The SQLite reference, same machine, same run.
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench/ingest_bench.py");
    let mut reference = None;
    if script.exists() {
        let out = std::process::Command::new("python3")
            .arg(&script)
            .args(["--rows", "20000", "--max-seconds", "10"])
            .env("BENCH_QUIET_WAIT", "0")
            .env("BENCH_STEP_WAIT", "0")
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        println!("\n--- ../shared/bench/ingest_bench.py ---\n{text}");
        reference = Some(text);
    }
    println!("\n| webhook ingest, text updates | updates/s | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|");
    println!(
        "| appliance (WAL, synchronous=FULL, group commit, HTTP + JSON + secret check) | {rate:.0} | {:.2} | {:.2} |",
        pct(0.5),
        pct(0.99)
    );
    if reference.is_none() {
        println!("(SQLite reference skipped: ../shared/bench/ingest_bench.py not found)");
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}
