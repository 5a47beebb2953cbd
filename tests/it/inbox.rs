//! The studio inbox: API access rules, pagination and unread counts, live
//! WebSocket events, the Telegram bridge both ways, and auto-archival.

use std::time::Duration;

use appliance::db::spaces::Role;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

use crate::{common::*, fake_bot::FakeBot};

struct Studio {
    server: TestServer,
    alice: String,
    carol: String,
    bob: String,
    _dir: tempfile::TempDir,
    bot: FakeBot,
}

/// A studio with members alice and carol, and bob in another studio.
async fn studio(configure: impl FnOnce(&mut appliance::Config)) -> Studio {
    let bot = FakeBot::start().await;
    let dir = tempdir();
    let mut cfg = config(dir.path(), &bot);
    configure(&mut cfg);
    let server = TestServer::start(cfg).await;
    server.space_with_chats("studio", &[]);
    server.space_with_chats("other", &[]);
    let mut tokens = Vec::new();
    {
        let c = server.app.db.conn().unwrap();
        for (name, space) in [("alice", "studio"), ("carol", "studio"), ("bob", "other")] {
            let u = appliance::db::users::create(&c, name, "x", false).unwrap();
            let s = appliance::db::spaces::find(&c, space).unwrap();
            appliance::db::spaces::grant(&c, s.id, u.id, Role::Member).unwrap();
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
    }
    Studio {
        server,
        alice: tokens[0].clone(),
        carol: tokens[1].clone(),
        bob: tokens[2].clone(),
        _dir: dir,
        bot,
    }
}

impl Studio {
    async fn call(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = client()
            .request(method, format!("{}/api/v1{path}", self.server.url))
            .bearer_auth(token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }
    async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, token, path, None).await
    }
    async fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, token, path, Some(body))
            .await
    }
    async fn contact(&self, name: &str, telegram: Option<i64>) -> i64 {
        let (s, v) = self
            .post(
                &self.alice,
                "/spaces/studio/contacts",
                json!({ "name": name, "telegram_user_id": telegram }),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        v["id"].as_i64().unwrap()
    }
    async fn unread(&self, token: &str, conversation: i64) -> i64 {
        let (_, v) = self
            .get(token, &format!("/conversations/{conversation}"))
            .await;
        v["unread_count"].as_i64().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn api_access_rules_pagination_and_unread_counts() {
    let s = studio(|_| {}).await;
    let ink = s.contact("Inès", None).await;
    let (st, v) = s
        .post(&s.alice, "/spaces/studio/appointments", json!({ "contact_id": ink, "starts_at": "2026-12-01T14:30:00+01:00", "duration_minutes": 90 }))
        .await;
    assert_eq!(st, 201, "{v}");
    let conv = v["conversation_id"].as_i64().unwrap();
    let (_, msgs) = s
        .get(&s.alice, &format!("/conversations/{conv}/messages"))
        .await;
    assert_eq!(msgs["items"][0]["author_kind"], "system");
    assert_eq!(
        msgs["items"][0]["text"],
        "Appointment booked for Inès on 2026-12-01 at 13:30 UTC (90 min)."
    );
    assert_eq!(s.unread(&s.alice, conv).await, 1);

    // alice writes three messages: unread for carol, not for alice.
    for i in 0..3 {
        let (st, v) = s
            .post(
                &s.alice,
                &format!("/conversations/{conv}/messages"),
                json!({ "text": format!("Bonjour {i}") }),
            )
            .await;
        assert_eq!(st, 201, "{v}");
    }
    assert_eq!(
        s.unread(&s.alice, conv).await,
        0,
        "writing reads the conversation"
    );
    assert_eq!(s.unread(&s.carol, conv).await, 4);
    let (_, page) = s
        .get(&s.carol, &format!("/conversations/{conv}/messages?limit=2"))
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["items"][0]["text"], "Bonjour 2", "newest first");
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let (_, page2) = s
        .get(
            &s.carol,
            &format!("/conversations/{conv}/messages?limit=2&cursor={cursor}"),
        )
        .await;
    assert_eq!(page2["items"][0]["text"], "Bonjour 0");
    assert_eq!(page2["items"][1]["author_kind"], "system");
    assert!(page2["next_cursor"].is_null(), "{page2}");
    let (st, _) = s
        .post(&s.carol, &format!("/conversations/{conv}/read"), json!({}))
        .await;
    assert_eq!(st, 204);
    assert_eq!(s.unread(&s.carol, conv).await, 0);

    // Another studio's member gets nothing, and our ids are 404 to them.
    assert_eq!(
        s.get(&s.bob, &format!("/conversations/{conv}")).await.0,
        404
    );
    assert_eq!(
        s.get(&s.bob, &format!("/conversations/{conv}/messages"))
            .await
            .0,
        404
    );
    assert_eq!(
        s.post(
            &s.bob,
            &format!("/conversations/{conv}/messages"),
            json!({ "text": "hi" })
        )
        .await
        .0,
        404
    );
    assert_eq!(s.get(&s.bob, "/spaces/studio/conversations").await.0, 404);
    let (_, theirs) = s
        .post(&s.bob, "/spaces/other/contacts", json!({ "name": "Zed" }))
        .await;
    let (st, _) = s
        .post(&s.alice, "/spaces/studio/appointments", json!({ "contact_id": theirs["id"], "starts_at": "2026-12-01T10:00:00Z", "duration_minutes": 30 }))
        .await;
    assert_eq!(st, 404, "a contact of another studio does not exist here");
    let (_, bobs) = s.get(&s.bob, "/spaces/other/conversations").await;
    assert!(bobs["items"].as_array().unwrap().is_empty());
    // Bad input is explained.
    let (st, _) = s
        .post(
            &s.alice,
            "/spaces/studio/appointments",
            json!({ "contact_id": ink, "starts_at": "tomorrow", "duration_minutes": 30 }),
        )
        .await;
    assert_eq!(st, 400);

    // 25 more conversations: pages of 20, most recent first; archived ones apart.
    for i in 0..25 {
        let c = s.contact(&format!("Client {i}"), None).await;
        let (st, _) = s
            .post(
                &s.alice,
                "/spaces/studio/conversations",
                json!({ "contact_id": c }),
            )
            .await;
        assert_eq!(st, 201);
    }
    let (_, p1) = s.get(&s.alice, "/spaces/studio/conversations").await;
    assert_eq!(p1["items"].as_array().unwrap().len(), 20);
    let (_, p2) = s
        .get(
            &s.alice,
            &format!(
                "/spaces/studio/conversations?cursor={}",
                p1["next_cursor"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(
        (
            p2["items"].as_array().unwrap().len(),
            p2["next_cursor"].is_null()
        ),
        (6, true)
    );
    assert_eq!(
        s.post(
            &s.alice,
            &format!("/conversations/{conv}/archive"),
            json!({})
        )
        .await
        .0,
        204
    );
    let (_, all) = s
        .get(&s.alice, "/spaces/studio/conversations?limit=100")
        .await;
    assert!(all["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["id"] != conv));
    let (_, archived) = s
        .get(&s.alice, "/spaces/studio/conversations?archived=true")
        .await;
    assert_eq!(archived["items"][0]["id"], conv);
    assert_eq!(archived["items"][0]["archived"], true);
    // A new message brings it back.
    s.post(
        &s.carol,
        &format!("/conversations/{conv}/messages"),
        json!({ "text": "Re" }),
    )
    .await;
    let (_, c) = s.get(&s.alice, &format!("/conversations/{conv}")).await;
    assert_eq!(c["archived"], false);

    // The system message is in the space's language.
    {
        let c = s.server.app.db.conn().unwrap();
        let sp = appliance::db::spaces::find(&c, "studio").unwrap();
        appliance::db::spaces::set_language(&c, sp.id, appliance::db::spaces::Language::Fr)
            .unwrap();
    }
    let (_, v) = s
        .post(&s.alice, "/spaces/studio/appointments", json!({ "contact_id": ink, "starts_at": "2026-12-02T09:00:00Z", "duration_minutes": 60 }))
        .await;
    let (_, msgs) = s
        .get(
            &s.alice,
            &format!("/conversations/{}/messages", v["conversation_id"]),
        )
        .await;
    assert_eq!(
        msgs["items"][0]["text"],
        "Rendez-vous réservé pour Inès le 02/12/2026 à 09:00 UTC (60 min)."
    );
    s.server.stop().await;
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws(s: &Studio, token: &str) -> Ws {
    let mut req = format!("{}/api/v1/ws", s.server.url.replace("http", "ws"))
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

/// The next event of a given type (others are skipped), within 3 s.
async fn next_event(w: &mut Ws, kind: &str) -> Value {
    tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            if let Some(Ok(Message::Text(t))) = w.next().await {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == kind {
                    return v;
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {kind} event"))
}

/// True when no event of this type arrives within 400 ms.
async fn silent(w: &mut Ws, kind: &str) -> bool {
    tokio::time::timeout(Duration::from_millis(400), next_event(w, kind))
        .await
        .is_err()
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_events_reach_the_studio_and_only_the_studio() {
    let s = studio(|_| {}).await;
    let ink = s.contact("Inès", None).await;
    let (_, v) = s
        .post(
            &s.alice,
            "/spaces/studio/conversations",
            json!({ "contact_id": ink }),
        )
        .await;
    let conv = v["id"].as_i64().unwrap();

    // An invalid token never gets a socket.
    let mut req = format!("{}/api/v1/ws", s.server.url.replace("http", "ws"))
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", "Bearer nope".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_err());

    let (alice_id, carol_id) = {
        let c = s.server.app.db.conn().unwrap();
        let id = |n: &str| json!(appliance::db::users::find(&c, n).unwrap().id.0);
        (id("alice"), id("carol"))
    };
    // alice's first tab hears her own arrival (her second tab is the same
    // presence), then carol's.
    let mut alice1 = ws(&s, &s.alice).await;
    assert_eq!(
        next_event(&mut alice1, "presence.online").await["user_id"],
        alice_id
    );
    let mut alice2 = ws(&s, &s.alice).await;
    let mut bob = ws(&s, &s.bob).await;
    let mut carol = ws(&s, &s.carol).await;
    assert_eq!(
        next_event(&mut alice1, "presence.online").await["user_id"],
        carol_id
    );

    // A message reaches both tabs of alice and carol; not bob.
    let (_, m) = s
        .post(
            &s.carol,
            &format!("/conversations/{conv}/messages"),
            json!({ "text": "On commence à 14h ?" }),
        )
        .await;
    for w in [&mut alice1, &mut alice2, &mut carol] {
        let e = next_event(w, "message.created").await;
        assert_eq!(
            (e["conversation_id"].as_i64(), e["message"]["id"].clone()),
            (Some(conv), m["id"].clone())
        );
        assert_eq!(e["message"]["text"], "On commence à 14h ?");
    }
    assert!(
        silent(&mut bob, "message.created").await,
        "another studio hears nothing"
    );

    // Typing goes to the sessions that joined the conversation.
    for w in [&mut alice1, &mut carol] {
        w.send(Message::Text(
            json!({ "type": "join", "conversation_id": conv })
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    carol
        .send(Message::Text(
            json!({ "type": "typing", "conversation_id": conv })
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    let t = next_event(&mut alice1, "typing.started").await;
    assert_eq!(t["user_id"], carol_id);
    assert!(
        silent(&mut alice2, "typing.started").await,
        "alice's second tab did not join"
    );
    carol
        .send(Message::Text(
            json!({ "type": "typing", "conversation_id": conv, "active": false })
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    next_event(&mut alice1, "typing.stopped").await;

    // A frame the server cannot read is answered with an error, and the session goes on.
    carol
        .send(Message::Text(r#"{"type": "wave"}"#.into()))
        .await
        .unwrap();
    let e = next_event(&mut carol, "error").await;
    assert!(e["message"].as_str().unwrap().contains("wave"), "{e}");

    // Read receipts.
    alice2
        .send(Message::Text(
            json!({ "type": "read", "conversation_id": conv })
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    let r = next_event(&mut carol, "message.read").await;
    assert_eq!(
        (r["conversation_id"].as_i64(), r["message_id"].clone()),
        (Some(conv), m["id"].clone()),
        "{r}"
    );
    let r = next_event(&mut carol, "conversation.read").await;
    assert_eq!(r["conversation_id"], conv);
    assert_eq!(s.unread(&s.alice, conv).await, 0);

    // Deletion.
    let (st, _) = s
        .call(
            reqwest::Method::DELETE,
            &s.alice,
            &format!("/messages/{}", m["id"]),
            None,
        )
        .await;
    assert_eq!(st, 204);
    let d = next_event(&mut carol, "message.deleted").await;
    assert_eq!(d["message_id"], m["id"]);

    // Two tabs are one presence: closing one says nothing, closing the last says offline.
    alice1.close(None).await.unwrap();
    assert!(silent(&mut carol, "presence.offline").await);
    alice2.close(None).await.unwrap();
    let off = next_event(&mut carol, "presence.offline").await;
    assert_eq!(off["user_id"], alice_id);
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn telegram_bridge_both_ways_with_failed_delivery_and_retry() {
    let s = studio(|c| c.telegram_inbox_space = Some("studio".into())).await;
    // A client writes to the bot in a private chat.
    let mut u = renumber(update("text"), 77);
    u["message"]["text"] = "Bonjour, un créneau samedi ?".into();
    u["message"]["from"]["id"] = 4242.into();
    u["message"]["chat"]["id"] = 4242.into();
    assert_eq!(
        s.server.post_update(&u.to_string(), Some(SECRET)).await,
        200
    );
    s.server.settle().await;
    let (_, list) = s.get(&s.alice, "/spaces/studio/conversations").await;
    let conv = list["items"][0]["id"].as_i64().unwrap();
    assert_eq!(list["items"][0]["unread_count"], 1);
    let (_, msgs) = s
        .get(&s.alice, &format!("/conversations/{conv}/messages"))
        .await;
    assert_eq!(
        (
            msgs["items"][0]["author_kind"].as_str(),
            msgs["items"][0]["text"].as_str()
        ),
        (Some("contact"), Some("Bonjour, un créneau samedi ?"))
    );
    let (_, contacts) = s.get(&s.alice, "/spaces/studio/contacts").await;
    assert_eq!(
        (
            contacts["items"][0]["telegram_user_id"].as_i64(),
            contacts["items"][0]["name"].as_str()
        ),
        (Some(4242), Some("Mario Bros"))
    );
    // The same client again: the same conversation.
    let mut again = renumber(update("text"), 78);
    again["message"]["from"]["id"] = 4242.into();
    again["message"]["chat"]["id"] = 4242.into();
    s.server.post_update(&again.to_string(), Some(SECRET)).await;
    s.server.settle().await;
    assert_eq!(
        s.get(&s.alice, "/spaces/studio/conversations").await.1["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The studio answers: sent with sendMessage.
    let (_, m) = s
        .post(
            &s.alice,
            &format!("/conversations/{conv}/messages"),
            json!({ "text": "Oui, 10h ?" }),
        )
        .await;
    s.server.settle().await;
    let sent = s.bot.calls("sendmessage");
    assert_eq!(
        (sent[0]["chat_id"].as_i64(), sent[0]["text"].as_str()),
        (Some(4242), Some("Oui, 10h ?"))
    );
    let (_, msgs) = s
        .get(&s.alice, &format!("/conversations/{conv}/messages"))
        .await;
    assert_eq!(msgs["items"][0]["id"], m["id"]);
    assert_eq!(msgs["items"][0]["delivery"], "sent");

    // A contact who blocked the bot: the failure shows, a retry sends it later.
    let zoe = s.contact("Zoé", Some(999)).await;
    let (_, c) = s
        .post(
            &s.alice,
            "/spaces/studio/conversations",
            json!({ "contact_id": zoe }),
        )
        .await;
    s.bot.state.lock().unwrap().send_errors.insert(
        999,
        vec![(403, json!({ "ok": false, "error_code": 403, "description": "Forbidden: bot was blocked by the user" }))],
    );
    let (_, m) = s
        .post(
            &s.alice,
            &format!("/conversations/{}/messages", c["id"]),
            json!({ "text": "Rappel" }),
        )
        .await;
    s.server.settle().await;
    let (_, msgs) = s
        .get(&s.alice, &format!("/conversations/{}/messages", c["id"]))
        .await;
    assert_eq!(msgs["items"][0]["delivery"], "failed");
    assert!(
        msgs["items"][0]["delivery_error"]
            .as_str()
            .unwrap()
            .contains("blocked"),
        "{msgs}"
    );
    let (st, _) = s
        .post(&s.alice, &format!("/messages/{}/retry", m["id"]), json!({}))
        .await;
    assert_eq!(st, 202);
    s.server.settle().await;
    let (_, msgs) = s
        .get(&s.alice, &format!("/conversations/{}/messages", c["id"]))
        .await;
    assert_eq!(msgs["items"][0]["delivery"], "sent");
    assert_eq!(
        s.post(&s.alice, &format!("/messages/{}/retry", m["id"]), json!({}))
            .await
            .0,
        409
    );
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_conversations_are_archived_and_come_back_with_a_message() {
    let s = studio(|_| {}).await;
    let ink = s.contact("Inès", None).await;
    let (_, v) = s
        .post(
            &s.alice,
            "/spaces/studio/conversations",
            json!({ "contact_id": ink }),
        )
        .await;
    let conv = v["id"].as_i64().unwrap();
    let now = appliance::db::now();
    {
        let c = s.server.app.db.conn().unwrap();
        // The clock 89 days on: nothing; 91 days on: archived.
        assert_eq!(
            appliance::db::inbox::archive_stale(&c, now + 89 * 86_400, 90).unwrap(),
            0
        );
        assert_eq!(
            appliance::db::inbox::archive_stale(&c, now + 91 * 86_400, 90).unwrap(),
            1
        );
    }
    assert_eq!(
        s.get(&s.alice, &format!("/conversations/{conv}")).await.1["archived"],
        true
    );
    s.post(
        &s.alice,
        &format!("/conversations/{conv}/messages"),
        json!({ "text": "Toujours là ?" }),
    )
    .await;
    assert_eq!(
        s.get(&s.alice, &format!("/conversations/{conv}")).await.1["archived"],
        false
    );
    s.server.stop().await;
}

/// A real SMTP server (Python's aiosmtpd) writing to a maildir; `None` (with a
/// notice) when aiosmtpd is not installed, a failure in CI.
/// Kills the SMTP server when the test ends, even on a failure.
struct Smtp(std::process::Child);

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn smtp_server(maildir: &std::path::Path) -> Option<(Smtp, u16)> {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("APPLIANCE_REQUIRE_SHARED_FIXTURES").as_deref() != Ok("1"),
            "aiosmtpd is required in CI (pip install aiosmtpd)"
        );
        eprintln!("notice: python3 aiosmtpd is not installed; skipping the email test");
        return None;
    }
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Smtp(
        std::process::Command::new("python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(maildir)
            .spawn()
            .unwrap(),
    );
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((server, port));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("aiosmtpd did not start");
}

fn mails(maildir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(rd) = std::fs::read_dir(maildir.join(sub)) {
            for e in rd {
                out.push(std::fs::read_to_string(e.unwrap().path()).unwrap());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn staff_who_are_away_get_one_digest_per_window() {
    let maildir = tempdir();
    let Some((_smtp, port)) = smtp_server(maildir.path()) else {
        return;
    };
    let s = studio(|c| {
        c.smtp_url = Some(appliance::config::Secret::new(format!(
            "smtp://127.0.0.1:{port}"
        )));
        c.smtp_from = "Studio <studio@example.org>".into();
        c.inbox_email_after_minutes = 10;
    })
    .await;
    let put = |token: String, body: Value| {
        let url = format!("{}/api/v1/me", s.server.url);
        async move {
            client()
                .put(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        put(s.alice.clone(), json!({ "email": "alice@example.org" })).await,
        204
    );
    assert_eq!(
        put(
            s.carol.clone(),
            json!({ "email": "carol@example.org", "email_digest": false })
        )
        .await,
        204
    );
    assert_eq!(
        put(s.alice.clone(), json!({ "email": "not an address" })).await,
        400
    );
    let ink = s.contact("Inès", None).await;
    let (_, c) = s
        .post(
            &s.alice,
            "/spaces/studio/conversations",
            json!({ "contact_id": ink }),
        )
        .await;
    let conv = c["id"].as_i64().unwrap();
    s.post(
        &s.carol,
        &format!("/conversations/{conv}/messages"),
        json!({ "text": "Inès demande un devis" }),
    )
    .await;
    let now = appliance::db::now();
    let app = s.server.app.clone();
    // alice has never been online and has an unread message: one digest. carol opted out.
    assert_eq!(appliance::inbox::email::scan(&app, now).await.unwrap(), 1);
    s.server.settle().await;
    let m = mails(maildir.path());
    let jobs: Vec<(String, String, Option<String>)> = s
        .server
        .app
        .db
        .conn()
        .unwrap()
        .prepare("SELECT kind, state, last_error FROM jobs WHERE kind = 'inbox.digest'")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(m.len(), 1, "{m:?} {jobs:?}");
    assert!(
        m[0].contains("alice@example.org") && m[0].contains("Studio <studio@example.org>"),
        "{}",
        m[0]
    );
    assert!(
        m[0].contains("In=C3=A8s") || m[0].contains("Inès"),
        "{}",
        m[0]
    );
    // Nothing new: no second email.
    assert_eq!(
        appliance::inbox::email::scan(&app, now + 60).await.unwrap(),
        0
    );
    // Something new, within the window: still one email; after the window: a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    s.post(
        &s.carol,
        &format!("/conversations/{conv}/messages"),
        json!({ "text": "Et un rendez-vous" }),
    )
    .await;
    assert_eq!(
        appliance::inbox::email::scan(&app, appliance::db::now() + 120)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        appliance::inbox::email::scan(&app, now + 11 * 60)
            .await
            .unwrap(),
        1
    );
    s.server.settle().await;
    assert_eq!(mails(maildir.path()).len(), 2);
    // Someone with an open session gets no email.
    let _online = ws(&s, &s.alice).await;
    s.post(
        &s.carol,
        &format!("/conversations/{conv}/messages"),
        json!({ "text": "Encore" }),
    )
    .await;
    assert_eq!(
        appliance::inbox::email::scan(&app, now + 30 * 60)
            .await
            .unwrap(),
        0
    );
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_inbox_pages_list_conversations_and_reply_without_javascript() {
    let s = studio(|_| {}).await;
    let ink = s.contact("Inès", None).await;
    let (_, c) = s
        .post(
            &s.alice,
            "/spaces/studio/conversations",
            json!({ "contact_id": ink }),
        )
        .await;
    let conv = c["id"].as_i64().unwrap();
    s.post(
        &s.carol,
        &format!("/conversations/{conv}/messages"),
        json!({ "text": "Premier <b>message</b>" }),
    )
    .await;
    let page = client()
        .get(format!("{}/s/studio/inbox", s.server.url))
        .bearer_auth(&s.alice)
        .send()
        .await
        .unwrap();
    let csrf = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|c| c.starts_with("appliance_csrf="))
        .unwrap();
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Inès") && html.contains("badge-count") && html.contains(">1<"),
        "{html}"
    );
    let thread = client()
        .get(format!("{}/s/studio/inbox/{conv}", s.server.url))
        .bearer_auth(&s.alice)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        thread.contains("Premier &#60;b&#62;message&#60;/b&#62;"),
        "escaped: {thread}"
    );
    assert_eq!(
        s.unread(&s.alice, conv).await,
        0,
        "opening the conversation reads it"
    );
    let token = csrf.trim_start_matches("appliance_csrf=").to_string();
    let r = client()
        .post(format!("{}/s/studio/inbox/{conv}/send", s.server.url))
        .bearer_auth(&s.alice)
        .header("cookie", &csrf)
        .form(&[("csrf", token.as_str()), ("text", "Réponse du formulaire")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, msgs) = s
        .get(&s.carol, &format!("/conversations/{conv}/messages"))
        .await;
    assert_eq!(msgs["items"][0]["text"], "Réponse du formulaire");
    // Another studio's member cannot see it.
    let r = client()
        .get(format!("{}/s/studio/inbox/{conv}", s.server.url))
        .bearer_auth(&s.bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_carry_up_to_five_images_through_the_vault_and_the_bridge() {
    let s = studio(|_| {}).await;
    let ink = s.contact("Inès", Some(5151)).await;
    let (_, c) = s
        .post(
            &s.alice,
            "/spaces/studio/conversations",
            json!({ "contact_id": ink }),
        )
        .await;
    let conv = c["id"].as_i64().unwrap();
    let jpeg = fixture_bytes("images/hopper.jpg");
    let png = fixture_bytes("images/hopper.png");
    let url = format!("{}/api/v1/conversations/{conv}/messages", s.server.url);
    let form = reqwest::multipart::Form::new()
        .text("text", "Le croquis")
        .part(
            "files",
            reqwest::multipart::Part::bytes(jpeg.clone()).file_name("a.jpg"),
        )
        .part(
            "files",
            reqwest::multipart::Part::bytes(png.clone()).file_name("b.png"),
        );
    let r = client()
        .post(&url)
        .bearer_auth(&s.alice)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let (_, msgs) = s
        .get(&s.carol, &format!("/conversations/{conv}/messages"))
        .await;
    let att = &msgs["items"][0]["attachments"];
    assert_eq!(att.as_array().unwrap().len(), 2, "{msgs}");
    assert_eq!(
        (att[0]["mime"].as_str(), att[1]["mime"].as_str()),
        (Some("image/jpeg"), Some("image/png"))
    );
    let got = client()
        .get(format!(
            "{}{}",
            s.server.url,
            att[1]["url"].as_str().unwrap()
        ))
        .bearer_auth(&s.carol)
        .send()
        .await
        .unwrap();
    assert_eq!(got.headers()["content-type"], "image/png");
    assert_eq!(got.bytes().await.unwrap().as_ref(), png.as_slice());
    let other = client()
        .get(format!(
            "{}/api/v1/messages/{id}/attachments/0",
            s.server.url
        ))
        .bearer_auth(&s.bob)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    // Bridged with sendPhoto, the text as the first caption.
    s.server.settle().await;
    let photos = s.bot.calls("sendphoto");
    assert_eq!(photos.len(), 2);
    assert_eq!(
        (photos[0]["chat_id"].as_i64(), photos[0]["caption"].as_str()),
        (Some(5151), Some("Le croquis"))
    );
    // Refused: a sixth image, a non-image, an image over 10 MB; nothing half-written.
    let mut six = reqwest::multipart::Form::new();
    for i in 0..6 {
        six = six.part(
            "files",
            reqwest::multipart::Part::bytes(jpeg.clone()).file_name(format!("{i}.jpg")),
        );
    }
    assert_eq!(
        client()
            .post(&url)
            .bearer_auth(&s.alice)
            .multipart(six)
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    let pdf = reqwest::multipart::Form::new().part(
        "files",
        reqwest::multipart::Part::bytes(b"%PDF-1.4\n%%EOF\n".to_vec()).file_name("x.pdf"),
    );
    assert_eq!(
        client()
            .post(&url)
            .bearer_auth(&s.alice)
            .multipart(pdf)
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    let mut big = jpeg.clone();
    big.resize(11 * 1024 * 1024, 0);
    let big = reqwest::multipart::Form::new().part(
        "files",
        reqwest::multipart::Part::bytes(big).file_name("big.jpg"),
    );
    assert_eq!(
        client()
            .post(&url)
            .bearer_auth(&s.alice)
            .multipart(big)
            .send()
            .await
            .unwrap()
            .status(),
        413
    );
    let (_, msgs) = s
        .get(&s.carol, &format!("/conversations/{conv}/messages"))
        .await;
    assert_eq!(
        msgs["items"].as_array().unwrap().len(),
        1,
        "no message from a refused upload"
    );
    s.server.stop().await;
}
