//! Album benchmark at 100,000 items: cold start, idle RSS, and the album
//! page's server time (first page and a page deep in the list).
//!
//! `cargo run --release --example bench_album [-- ITEMS REQUESTS]` (default
//! 100,000 items, 500 requests a page kind). The items are written straight
//! into the database (their files are not needed to render the album); the
//! server runs in a child process (this program with `--serve`) so its RSS
//! is its own, and is measured once the search index has caught up.

use std::time::{Duration, Instant};

#[path = "support/mod.rs"]
mod support;
use support::vm;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve") {
        let config = appliance::Config {
            data_dir: args[2].clone().into(),
            ..appliance::Config::default()
        };
        return support::serve(config, args[3].parse()?).await;
    }
    let items: i64 = args
        .get(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let requests: usize = args.get(2).map(|a| a.parse()).transpose()?.unwrap_or(500);
    let data = std::env::temp_dir().join("appliance-bench-album");
    let _ = std::fs::remove_dir_all(&data);
    let session = {
        let app = appliance::App::open(appliance::Config {
            data_dir: data.clone(),
            ..appliance::Config::default()
        })?;
        let mut c = app.db.conn()?;
        let tx = c.transaction()?;
        let space = appliance::db::spaces::create(&tx, "family", "Family")?;
        let user = appliance::db::users::create(&tx, "bench", "x", false)?;
        appliance::db::spaces::grant(&tx, space.id, user.id, appliance::db::spaces::Role::Member)?;
        let token = appliance::web::auth::random_token();
        appliance::db::users::create_session(
            &tx,
            &appliance::web::auth::token_hash(&token),
            user.id,
            86_400,
        )?;
        {
            let mut blob = tx.prepare(
                "INSERT INTO blobs(sha256, bytes, mime, width, height, has_thumbnail, created_at)
                 VALUES (?1, 2000000, 'image/jpeg', 4000, 3000, 1, ?2)",
            )?;
            let mut media = tx.prepare(
                "INSERT INTO media(space_id, kind, file_id, file_unique_id, caption, sender_name, chat_id,
                                   received_at, sha256, state)
                 VALUES (?1, 'photo', ?2, ?2, ?3, 'Mamie', -100500, ?4, ?5, 'stored')",
            )?;
            for i in 0..items {
                let sha = format!("{:064x}", i + 1);
                let t = 1_600_000_000 + i * 60;
                blob.execute(rusqlite::params![sha, t])?;
                media.execute(rusqlite::params![
                    space.id.0,
                    format!("F{i}"),
                    format!("photo {i} of the summer"),
                    t,
                    sha
                ])?;
            }
        }
        appliance::db::search::mark_all_dirty(&tx, None)?;
        tx.commit()?;
        token
    };

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let started = Instant::now();
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
    let base = format!("http://127.0.0.1:{port}");
    loop {
        if http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the server did not start"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let start_ms = started.elapsed().as_secs_f64() * 1000.0;
    // Let the index catch up (100k documents), then let the process settle.
    let db = rusqlite::Connection::open(data.join("appliance.sqlite"))?;
    db.busy_timeout(Duration::from_secs(10))?;
    let index_start = Instant::now();
    while db.query_row("SELECT count(*) FROM index_queue", [], |r| {
        r.get::<_, i64>(0)
    })? > 0
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let index_s = index_start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss = vm(pid, "VmRSS");

    let cookie = format!("appliance_session={session}");
    let page = |url: String| {
        let (http, cookie) = (http.clone(), cookie.clone());
        async move {
            let t = Instant::now();
            let r = http.get(url).header("cookie", cookie).send().await?;
            anyhow::ensure!(r.status() == 200, "status {}", r.status());
            let body = r.text().await?;
            Ok::<_, anyhow::Error>((t.elapsed().as_secs_f64() * 1000.0, body))
        }
    };
    // A cursor deep in the list: follow "Older" links a few times, then keep that URL.
    let mut deep = format!("{base}/s/family");
    for _ in 0..20 {
        let (_, body) = page(deep.clone()).await?;
        let Some(next) = body
            .split("rel=\"next\" href=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
        else {
            break;
        };
        deep = format!("{base}{}", next.replace("&amp;", "&"));
    }
    let mut results = Vec::new();
    for (name, url) in [
        ("album, first page", format!("{base}/s/family")),
        ("album, a page 20 deep", deep),
    ] {
        let mut lat = Vec::with_capacity(requests);
        for _ in 0..requests {
            lat.push(page(url.clone()).await?.0);
        }
        lat.sort_by(f64::total_cmp);
        let pct = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize];
        results.push((name, pct(0.5), pct(0.99)));
    }
    let peak = vm(pid, "VmHWM");
    let _ = child.kill();
    let _ = child.wait();
    println!("\n| {items} album items | value | target |");
    println!("|---|---:|---:|");
    println!("| start to /readyz 200, ms | {start_ms:.0} | 300 |");
    println!("| search index catch-up after the bulk insert, s | {index_s:.1} | |");
    println!("| idle RSS after the catch-up, MiB | {idle_rss:.1} | 30 |");
    for (name, p50, p99) in results {
        println!("| {name}: p50 / p99, ms | {p50:.2} / {p99:.2} | p99 20 |");
    }
    println!("| peak RSS, MiB | {peak:.1} | |");
    Ok(())
}
