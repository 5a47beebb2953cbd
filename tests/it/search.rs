//! Search end to end: the index follows ingestion, edits and deletions; spaces
//! stay private; a rebuild and a crash both converge to the same results.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::Value;

use crate::{common::*, fake_bot::FakeBot};

const CHATS: &[i64] = &[12345, 456, 11111111, 321654, 999999999, 12345678];

/// Waits until the indexer has caught up with the database.
async fn indexed(server: &TestServer) {
    wait_until("the index to catch up", || {
        server.count("SELECT count(*) FROM index_queue") == 0
    })
    .await;
    // The reader reloads right after the commit that emptied the queue.
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Polls the API until `q` has exactly `n` hits (10 s at most).
async fn wait_hits(server: &TestServer, token: &str, q: &str, n: usize) {
    let mut last = Value::Null;
    for _ in 0..200 {
        let (_, v) = api(server, token, &[("q", q), ("limit", "200")]).await;
        if v["hits"].as_array().map(Vec::len) == Some(n) {
            return;
        }
        last = v;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{q}: expected {n} hits, got {last}");
}

fn token_for(
    server: &TestServer,
    user: &str,
    space: Option<(&str, appliance::db::spaces::Role)>,
) -> String {
    let c = server.app.db.conn().unwrap();
    let u = appliance::db::users::create(&c, user, "$argon2id$v=19$m=19456,t=2,p=1$x$y", false)
        .unwrap();
    if let Some((slug, role)) = space {
        let s = appliance::db::spaces::find(&c, slug).unwrap();
        appliance::db::spaces::grant(&c, s.id, u.id, role).unwrap();
    }
    let token = appliance::web::auth::random_token();
    appliance::db::users::create_token(&c, &appliance::web::auth::token_hash(&token), u.id, "test")
        .unwrap();
    token
}

async fn api(server: &TestServer, token: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let r = client()
        .get(format!("{}/api/v1/search", server.url))
        .bearer_auth(token)
        .query(query)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn kinds_and_ids(v: &Value) -> Vec<(String, i64)> {
    v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["kind"].as_str().unwrap().to_string(),
                h["id"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn text_update(id: i64, chat: i64, text: &str) -> Value {
    let mut u = renumber(update("text"), id);
    u["message"]["chat"]["id"] = chat.into();
    u["message"]["text"] = text.into();
    u
}

#[tokio::test(flavor = "multi_thread")]
async fn search_follows_ingestion_edits_and_deletions_within_the_callers_spaces() {
    let bot = FakeBot::start().await;
    register_fixture_files(&bot);
    let dir = tempdir();
    let server = TestServer::start(config(dir.path(), &bot)).await;
    server.space_with_chats("family", CHATS);
    server.space_with_chats("studio", &[777]);
    let alice = token_for(
        &server,
        "alice",
        Some(("family", appliance::db::spaces::Role::Member)),
    );
    let bob = token_for(
        &server,
        "bob",
        Some(("studio", appliance::db::spaces::Role::Owner)),
    );
    for u in all_fixture_updates() {
        assert_eq!(server.post_update(&u.to_string(), Some(SECRET)).await, 200);
    }
    let french = [
        text_update(
            5001,
            12345678,
            "Joyeux anniversaire Mamie ! Rendez-vous à la plage à midi",
        ),
        text_update(5002, 12345678, "Noël chez les grands-parents, il a neigé"),
        text_update(5003, 777, "Anniversaire du studio : tatouage offert"),
    ];
    for u in &french {
        assert_eq!(server.post_update(&u.to_string(), Some(SECRET)).await, 200);
    }
    server.settle().await;
    indexed(&server).await;

    // The fixture photo, by the word being typed in its caption, and by filters.
    let (s, v) = api(&server, &alice, &[("q", "asdasd")]).await;
    assert_eq!(s, 200, "{v}");
    let photo_id = server
        .media("family")
        .iter()
        .find(|m| m.kind == "photo")
        .unwrap()
        .id
        .0;
    assert_eq!(kinds_and_ids(&v), [("photo".to_string(), photo_id)]);
    assert!(
        v["hits"][0]["snippet"].as_str().unwrap().contains("<b>"),
        "{v}"
    );
    let (_, v) = api(&server, &alice, &[("q", "kind:video")]).await;
    assert_eq!(kinds_and_ids(&v).len(), 1);
    let (_, v) = api(
        &server,
        &alice,
        &[("q", "from:mario kind:photo|voice|audio")],
    )
    .await;
    assert_eq!(kinds_and_ids(&v).len(), 3, "{v}");
    let (_, v) = api(&server, &alice, &[("q", "ciao in:mario")]).await;
    assert!(!kinds_and_ids(&v).is_empty(), "{v}");

    // Accents, stems and typos over French messages.
    for q in [
        "anniversaire mamie",
        "ANNIVERSAIRES",
        "noel",
        "anniversiare plage",
        "\"à la plage\"",
    ] {
        let (_, v) = api(&server, &alice, &[("q", q)]).await;
        let hits = kinds_and_ids(&v);
        assert_eq!(hits.len(), 1, "{q}: {v}");
        assert_eq!(hits[0].0, "message");
    }

    // Spaces: each sees only its own; asking for another's is a 404.
    let (_, v) = api(&server, &bob, &[("q", "anniversaire")]).await;
    assert_eq!(v["hits"].as_array().unwrap().len(), 1);
    assert!(v["hits"][0]["snippet"].as_str().unwrap().contains("studio"));
    let (_, v) = api(&server, &bob, &[("q", "asdasd")]).await;
    assert!(v["hits"].as_array().unwrap().is_empty());
    let (s, _) = api(&server, &bob, &[("q", "asdasd"), ("space", "family")]).await;
    assert_eq!(s, 404);
    let (s, _) = api(&server, "not-a-token", &[("q", "asdasd")]).await;
    assert_eq!(s, 401);
    let (s, v) = api(&server, &alice, &[("q", "before:soon")]).await;
    assert_eq!(s, 400);
    assert!(v.is_null(), "HTML error page for a bad query");

    // An edit replaces the text in the index.
    let mut edit = text_update(
        5004,
        12345678,
        "Noël chez Papi et Mamie, il a beaucoup neigé",
    );
    edit["edited_message"] = edit["message"].take();
    edit.as_object_mut().unwrap().remove("message");
    edit["edited_message"]["message_id"] = french[1]["message"]["message_id"].clone();
    edit["edited_message"]["edit_date"] = 1_700_000_000.into();
    assert_eq!(
        server.post_update(&edit.to_string(), Some(SECRET)).await,
        200
    );
    server.settle().await;
    indexed(&server).await;
    let (_, v) = api(&server, &alice, &[("q", "papi")]).await;
    assert_eq!(kinds_and_ids(&v).len(), 1, "{v}");
    let (_, v) = api(&server, &alice, &[("q", "\"grands parents\"")]).await;
    assert!(kinds_and_ids(&v).is_empty(), "the old text is gone: {v}");

    // Deleting the photo removes it from the results.
    let r = client()
        .delete(format!(
            "{}/api/v1/spaces/family/media/{photo_id}",
            server.url
        ))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = client()
        .delete(format!(
            "{}/api/v1/spaces/family/media/{photo_id}",
            server.url
        ))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "not bob's space");
    indexed(&server).await;
    let (_, v) = api(&server, &alice, &[("q", "asdasd")]).await;
    assert!(kinds_and_ids(&v).is_empty(), "{v}");
    assert!(server.media("family").iter().all(|m| m.id.0 != photo_id));

    // The results page of the UI.
    let page = client()
        .get(format!("{}/search", server.url))
        .bearer_auth(&alice)
        .query(&[("q", "kind:video")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("/thumb/360"), "{page}");
    server.stop().await;
}

/// The binary, as a server, on a free port.
fn spawn_server(data: &std::path::Path, bot: &FakeBot) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_appliance"))
        .args(["--data-dir"])
        .arg(data)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("APPLIANCE_TELEGRAM_TOKEN", "123456:TEST-token_abc")
        .env("APPLIANCE_TELEGRAM_MODE", "webhook")
        .env("APPLIANCE_TELEGRAM_WEBHOOK_SECRET", SECRET)
        .env("APPLIANCE_TELEGRAM_API_URL", &bot.url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (child, format!("http://127.0.0.1:{port}"))
}

async fn wait_healthy(url: &str) {
    for _ in 0..300 {
        if let Ok(r) = client().get(format!("{url}/healthz")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server at {url} did not start");
}

fn cli(data: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_appliance"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn queue_len(data: &std::path::Path) -> i64 {
    let c = rusqlite::Connection::open(data.join("appliance.sqlite")).unwrap();
    c.query_row("SELECT count(*) FROM index_queue", [], |r| r.get(0))
        .unwrap()
}

/// Every hit id of a query, through all pages of the API.
async fn all_hits(url: &str, token: &str, q: &str) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut params = vec![("q", q.to_string()), ("limit", "200".to_string())];
        if let Some(c) = &cursor {
            params.push(("cursor", c.clone()));
        }
        let v: Value = client()
            .get(format!("{url}/api/v1/search"))
            .bearer_auth(token)
            .query(&params)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        out.extend(kinds_and_ids(&v));
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_indexing_then_restart_converges_and_reindex_agrees() {
    let bot = FakeBot::start().await;
    let dir = tempdir();
    let data = dir.path();
    cli(data, &["space", "add", "family", "--language", "fr"]);
    cli(
        data,
        &[
            "source",
            "add",
            "telegram",
            "--space",
            "family",
            "--chat-id",
            "12345678",
        ],
    );
    let _ = Command::new(env!("CARGO_BIN_EXE_appliance"))
        .arg("--data-dir")
        .arg(data)
        .args(["user", "add", "alice", "--password-stdin"])
        .stdin(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"long password\n")?;
            c.wait()
        })
        .unwrap();
    cli(data, &["space", "grant", "family", "alice"]);
    let token = cli(data, &["token", "create", "alice"]).trim().to_string();

    let (mut server, url) = spawn_server(data, &bot);
    wait_healthy(&url).await;
    const N: i64 = 400;
    let c = client();
    for i in 0..N {
        let u = text_update(
            10_000 + i,
            12345678,
            &format!("lot commun numéro{i} soirée"),
        );
        let r = c
            .post(format!("{url}/hooks/telegram"))
            .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
            .body(u.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // Acknowledged means committed: kill -9 now, with processing and indexing under way.
    server.kill().unwrap();
    server.wait().unwrap();

    let (mut server, url) = spawn_server(data, &bot);
    wait_healthy(&url).await;
    let start = std::time::Instant::now();
    loop {
        let done = {
            let c = rusqlite::Connection::open(data.join("appliance.sqlite")).unwrap();
            let jobs: i64 = c
                .query_row(
                    "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            jobs == 0 && queue_len(data) == 0
        };
        if done {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no convergence");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let incremental = all_hits(&url, &token, "lot").await;
    assert_eq!(
        incremental.len(),
        N as usize,
        "every acknowledged message is searchable exactly once"
    );
    let one: Value = serde_json::from_str(&cli(data, &["search", "numéro123", "--json"])).unwrap();
    let top = &one.as_array().unwrap()[0];
    assert!(
        top["snippet"]
            .as_str()
            .unwrap()
            .contains("<b>numéro123</b>"),
        "exact match first: {one}"
    );
    assert!(one.as_array().unwrap()[1..]
        .iter()
        .all(|h| h["score"].as_f64() < top["score"].as_f64()));
    let soirees: Value =
        serde_json::from_str(&cli(data, &["search", "soirees", "--limit", "5", "--json"])).unwrap();
    assert_eq!(
        soirees.as_array().unwrap().len(),
        5,
        "French stemming and folding: {soirees}"
    );
    let before: Vec<Value> = ["numero7", "soirée -numéro8", "kind:message"]
        .iter()
        .map(|q| {
            serde_json::from_str(&cli(data, &["search", q, "--limit", "50", "--json"])).unwrap()
        })
        .collect();

    // reindex while the server runs: deferred to the server.
    let out = cli(data, &["reindex"]);
    assert!(out.contains("server is running"), "{out}");
    server.kill().unwrap();
    server.wait().unwrap();
    // reindex with the server stopped: a full rebuild, same results.
    let out = cli(data, &["reindex"]);
    assert!(out.contains(&format!("reindexed {N} documents")), "{out}");
    let after: Vec<Value> = ["numero7", "soirée -numéro8", "kind:message"]
        .iter()
        .map(|q| {
            serde_json::from_str(&cli(data, &["search", q, "--limit", "50", "--json"])).unwrap()
        })
        .collect();
    let ids = |v: &Vec<Value>| -> Vec<Vec<i64>> {
        v.iter()
            .map(|a| {
                a.as_array()
                    .unwrap()
                    .iter()
                    .map(|h| h["id"].as_i64().unwrap())
                    .collect()
            })
            .collect()
    };
    assert_eq!(ids(&before), ids(&after));
    assert_eq!(ids(&after)[1].len(), 50);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_or_foreign_index_is_rebuilt_at_start() {
    let bot = FakeBot::start().await;
    let dir = tempdir();
    let server = TestServer::start(config(dir.path(), &bot)).await;
    server.space_with_chats("family", &[12345678]);
    let token = token_for(
        &server,
        "alice",
        Some(("family", appliance::db::spaces::Role::Member)),
    );
    for i in 0..30 {
        let u = text_update(6000 + i, 12345678, &format!("souvenir de vacances {i}"));
        assert_eq!(server.post_update(&u.to_string(), Some(SECRET)).await, 200);
    }
    server.settle().await;
    indexed(&server).await;
    let (_, v) = api(&server, &token, &[("q", "vacances"), ("limit", "100")]).await;
    assert_eq!(v["hits"].as_array().unwrap().len(), 30);
    server.stop().await;

    // As after restoring a backup: the index is gone.
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    let server = TestServer::start(config(dir.path(), &bot)).await;
    wait_hits(&server, &token, "vacances", 30).await;
    server.stop().await;

    // As after restoring an older database beside a newer index: another generation.
    {
        let c = rusqlite::Connection::open(dir.path().join("appliance.sqlite")).unwrap();
        c.execute(
            "UPDATE kv SET value = 'other' WHERE key = 'search.generation'",
            [],
        )
        .unwrap();
        c.execute(
            "UPDATE messages SET deleted_at = 1 WHERE id IN (SELECT id FROM messages LIMIT 10)",
            [],
        )
        .unwrap();
    }
    let server = TestServer::start(config(dir.path(), &bot)).await;
    wait_hits(&server, &token, "vacances", 20).await;
    server.stop().await;
}
