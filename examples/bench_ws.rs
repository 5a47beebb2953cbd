//! Inbox WebSocket fan-out benchmark, beside Socket.IO, in one run.
//!
//! `ulimit -n 65536; cargo run --release --example bench_ws -- [N] [RATE] [DURATION_S]`
//! (defaults 1000 clients, 200 messages/s, 15 s; rooms of 10).
//!
//! The appliance side: N staff users in N/10 studios (a studio is a room of 10),
//! each connected to `GET /api/v1/ws` with a bearer token; a publisher posts
//! RATE messages/s over HTTP (`POST /api/v1/conversations/{id}/messages`: a
//! durable SQLite write, then the event) to random studios; every member
//! receives `message.created`. Latency is publish -> receipt on one clock.
//! The server runs in a child process (this program, re-executed with
//! `--serve`) so its peak RSS (VmHWM) is its own.
//!
//! The reference side: `../shared/bench/ws/server.js` and `client.js` (Socket.IO 4,
//! same N, rate, room size and duration), when Node and `socket.io` are
//! installed in `/tmp/sio` (`../shared/bench/ws_bench.sh` installs them).

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use futures_util::StreamExt;
use rand::Rng;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[path = "support/mod.rs"]
mod support;
use support::vm;

fn micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_micros() as u64
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve") {
        let config = appliance::Config {
            data_dir: args[2].clone().into(),
            job_workers: 1,
            ..appliance::Config::default()
        };
        return support::serve(config, args[3].parse()?).await;
    }
    let n: usize = args.get(1).map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let rate: u64 = args.get(2).map(|a| a.parse()).transpose()?.unwrap_or(200);
    let duration: u64 = args.get(3).map(|a| a.parse()).transpose()?.unwrap_or(15);
    let room = 10usize;
    let rooms = n.div_ceil(room);
    let data = std::env::temp_dir().join("appliance-bench-ws");
    let _ = std::fs::remove_dir_all(&data);

    // Users, studios, conversations and tokens, in one transaction.
    let (tokens, publisher, conversations) = {
        let app = appliance::App::open(appliance::Config {
            data_dir: data.clone(),
            ..appliance::Config::default()
        })?;
        let mut c = app.db.conn()?;
        let tx = c.transaction()?;
        let mut tokens = Vec::with_capacity(n);
        let mut conversations = Vec::with_capacity(rooms);
        let token = |tx: &rusqlite::Transaction<'_>, user: i64| -> anyhow::Result<String> {
            let t = appliance::web::auth::random_token();
            appliance::db::users::create_token(
                tx,
                &appliance::web::auth::token_hash(&t),
                appliance::db::users::UserId(user),
                "bench",
            )?;
            Ok(t)
        };
        let publisher = appliance::db::users::create(&tx, "publisher", "x", false)?;
        for r in 0..rooms {
            let space = appliance::db::spaces::create(&tx, &format!("r{r}"), "room")?;
            appliance::db::spaces::grant(
                &tx,
                space.id,
                publisher.id,
                appliance::db::spaces::Role::Member,
            )?;
            let scope = appliance::db::spaces::operator_scope(space.clone());
            let contact =
                appliance::db::inbox::create_contact(&tx, &scope, "client", None, None, None)?;
            conversations.push(appliance::db::inbox::create_conversation(
                &tx, &scope, contact, None,
            )?);
            for k in 0..room.min(n - r * room) {
                let u =
                    appliance::db::users::create(&tx, &format!("u{}", r * room + k), "x", false)?;
                appliance::db::spaces::grant(
                    &tx,
                    space.id,
                    u.id,
                    appliance::db::spaces::Role::Member,
                )?;
                tokens.push(token(&tx, u.id.0)?);
            }
        }
        let p = token(&tx, publisher.id.0)?;
        tx.commit()?;
        (tokens, p, conversations)
    };

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args([
            "--serve",
            data.to_str().expect("utf-8 path"),
            &port.to_string(),
        ])
        .env("RUST_LOG", "error")
        .spawn()?;
    let pid = child.id();
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Connect everyone, 200 at a time.
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let received = Arc::new(AtomicU64::new(0));
    let measuring = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let t0 = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(200));
    let mut connects = Vec::new();
    for t in tokens {
        let (sem, lat, rec, meas) = (
            sem.clone(),
            latencies.clone(),
            received.clone(),
            measuring.clone(),
        );
        connects.push(tokio::spawn(async move {
            let permit = sem.acquire_owned().await.expect("semaphore");
            let mut req = format!("ws://127.0.0.1:{port}/api/v1/ws")
                .into_client_request()
                .expect("url");
            req.headers_mut().insert(
                "authorization",
                format!("Bearer {t}").parse().expect("header"),
            );
            let (ws, _) = tokio_tungstenite::connect_async(req)
                .await
                .expect("connect");
            drop(permit);
            let (_, mut rx) = ws.split();
            while let Some(Ok(msg)) = rx.next().await {
                let Ok(text) = msg.to_text() else { continue };
                if !text.contains("message.created") {
                    continue;
                }
                if let Some(sent) = text
                    .split("t=")
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    if meas.load(Ordering::Relaxed) {
                        rec.fetch_add(1, Ordering::Relaxed);
                        lat.lock()
                            .expect("lock")
                            .push((micros().saturating_sub(sent)) as f64 / 1000.0);
                    }
                }
            }
        }));
    }
    while sem.available_permits() < 200 || t0.elapsed() < Duration::from_millis(200) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let connect_s = t0.elapsed().as_secs_f64();
    let idle_rss = vm(pid, "VmHWM");

    // Publish RATE messages/s for DURATION s (1 s warm-up not measured).
    let sent = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    let start = Instant::now();
    let total = Duration::from_secs(duration + 1);
    while start.elapsed() < total {
        tick.tick().await;
        if start.elapsed() >= Duration::from_secs(1) && !measuring.load(Ordering::Relaxed) {
            measuring.store(true, Ordering::Relaxed);
        }
        let conv = conversations[rand::rng().random_range(0..conversations.len())];
        let (http, publisher, sent, errors, measured) = (
            http.clone(),
            publisher.clone(),
            sent.clone(),
            errors.clone(),
            measuring.load(Ordering::Relaxed),
        );
        tokio::spawn(async move {
            let r = http
                .post(format!(
                    "http://127.0.0.1:{port}/api/v1/conversations/{conv}/messages"
                ))
                .bearer_auth(publisher)
                .json(&serde_json::json!({ "text": format!("t={}", micros()) }))
                .send()
                .await;
            match r {
                Ok(r) if r.status().is_success() => {
                    if measured {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
                _ => {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    measuring.store(false, Ordering::Relaxed);
    let peak_rss = vm(pid, "VmHWM");
    let _ = child.kill();
    let _ = child.wait();
    let mut lat = latencies.lock().expect("lock").clone();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    let expected = sent.load(Ordering::Relaxed) * room as u64;
    println!(
        "appliance: {n} clients connected in {connect_s:.1} s; {} messages/s for {duration} s: {} of ~{expected} deliveries, \
         latency p50 {:.2} ms p99 {:.2} ms; server RSS idle {idle_rss:.1} MiB, peak {peak_rss:.1} MiB; publish errors {}",
        rate,
        received.load(Ordering::Relaxed),
        pct(0.5),
        pct(0.99),
        errors.load(Ordering::Relaxed)
    );

    // Socket.IO, same shape.
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench/ws");
    let sio = std::path::Path::new("/tmp/sio/node_modules");
    let mut reference = None;
    if shared.exists() && sio.join("socket.io").exists() {
        let sport = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut server = std::process::Command::new("node")
            .arg(shared.join("server.js"))
            .arg(sport.to_string())
            .env("NODE_PATH", sio)
            .stdout(std::process::Stdio::null())
            .spawn()?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let spid = server.id();
        let out = std::process::Command::new("node")
            .arg(shared.join("client.js"))
            .args([
                "--n",
                &n.to_string(),
                "--rate",
                &rate.to_string(),
                "--room",
                "10",
                "--duration",
                &duration.to_string(),
                "--warmup",
                "1",
                "--port",
                &sport.to_string(),
            ])
            .env("NODE_PATH", sio)
            .output()?;
        let peak = vm(spid, "VmHWM");
        let _ = server.kill();
        let _ = server.wait();
        let text = String::from_utf8_lossy(&out.stdout);
        if let Some(line) = text.lines().find(|l| l.starts_with("RESULT ")) {
            let v: serde_json::Value = serde_json::from_str(&line[7..])?;
            reference = Some((
                v["p50ms"].as_f64().unwrap_or(f64::NAN),
                v["p99ms"].as_f64().unwrap_or(f64::NAN),
                peak,
                v["lost"].as_i64().unwrap_or(-1),
            ));
        }
    } else {
        println!("(Socket.IO reference skipped: run ../shared/bench/ws_bench.sh once to install it in /tmp/sio)");
    }
    println!();
    println!("| {n} clients, rooms of 10, {rate} msg/s | appliance | Socket.IO 4 | ratio |");
    println!("|---|---:|---:|---:|");
    if let Some((p50, p99, rss, lost)) = reference {
        println!(
            "| latency p50, ms | {:.2} | {p50:.2} | {:.2} |",
            pct(0.5),
            pct(0.5) / p50
        );
        println!(
            "| latency p99, ms | {:.2} | {p99:.2} | {:.2} |",
            pct(0.99),
            pct(0.99) / p99
        );
        println!(
            "| server peak RSS, MiB | {peak_rss:.1} | {rss:.1} | {:.2} |",
            peak_rss / rss
        );
        println!(
            "| lost deliveries | {} | {lost} | |",
            expected.saturating_sub(received.load(Ordering::Relaxed))
        );
    } else {
        println!("| latency p50, ms | {:.2} | – | |", pct(0.5));
        println!("| latency p99, ms | {:.2} | – | |", pct(0.99));
        println!("| server peak RSS, MiB | {peak_rss:.1} | – | |");
    }
    println!("\nThe appliance's publisher writes every message to SQLite (synchronous=FULL) before the event; Socket.IO's only relays.");
    for c in connects {
        c.abort();
    }
    Ok(())
}
