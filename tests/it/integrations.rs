//! Integrations: outbound notifications (Standard Webhooks, durable and
//! retried), Meta and Stripe webhooks in with the real fixture payloads,
//! the autoresponder, secrets sealed at rest and absent from logs.
//!
//! The fixture payloads reuse one message id (`wamid.xyzxyz`) and one event
//! id (`evt_000…`) across files; tests give each delivery its own id as Meta
//! and Stripe would.

use std::{
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    extract::{Path as AxPath, State},
    http::{HeaderMap, StatusCode},
    routing::{get, post},
    Json, Router,
};
use base64::Engine;
use hmac::{KeyInit, Mac};
use serde_json::{json, Value};

use crate::{common::*, fake_bot::FakeBot};

const META_SECRET: &str = "meta-app-secret-for-tests";
const VERIFY_TOKEN: &str = "verify-me-please";
const STRIPE_SECRET: &str = "whsec_stripe_test_secret";
const GRAPH_TOKEN: &str = "EAAG-graph-token-for-tests";
const HOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// What the fake Graph API and the webhook receiver saw.
#[derive(Default)]
struct Seen {
    /// (headers as name=value lines, body) of each webhook POST.
    hooks: Vec<(HeaderMap, String)>,
    /// Graph API calls: (method path, authorization, body).
    graph: Vec<(String, String, String)>,
}

type Shared = Arc<Mutex<Seen>>;

async fn hook(State(s): State<Shared>, headers: HeaderMap, body: String) -> StatusCode {
    s.lock().unwrap().hooks.push((headers, body));
    StatusCode::NO_CONTENT
}

fn auth(headers: &HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

async fn graph_media(
    State(s): State<Shared>,
    AxPath(id): AxPath<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, StatusCode> {
    s.lock()
        .unwrap()
        .graph
        .push((format!("GET /{id}"), auth(&headers), String::new()));
    if auth(&headers) != format!("Bearer {GRAPH_TOKEN}") {
        return Err(StatusCode::UNAUTHORIZED);
    }
    let port = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    Ok(Json(json!({
        "id": id, "mime_type": "image/jpeg",
        "url": format!("http://{port}/download/{id}")
    })))
}

async fn graph_download(
    State(s): State<Shared>,
    AxPath(id): AxPath<String>,
    headers: HeaderMap,
) -> Result<Vec<u8>, StatusCode> {
    s.lock()
        .unwrap()
        .graph
        .push((format!("GET /download/{id}"), auth(&headers), String::new()));
    if auth(&headers) != format!("Bearer {GRAPH_TOKEN}") {
        return Err(StatusCode::UNAUTHORIZED);
    }
    Ok(fixture_bytes("images/Canon_40D.jpg"))
}

async fn graph_send(
    State(s): State<Shared>,
    AxPath(account): AxPath<String>,
    headers: HeaderMap,
    body: String,
) -> Json<Value> {
    s.lock()
        .unwrap()
        .graph
        .push((format!("POST /{account}/messages"), auth(&headers), body));
    Json(json!({ "messaging_product": "whatsapp", "messages": [{ "id": "wamid.reply-1" }] }))
}

/// Starts the fake Graph API and webhook receiver on `port` (0: any).
async fn fake_world(port: u16, seen: Shared) -> (String, tokio::task::JoinHandle<()>) {
    let router = Router::new()
        .route("/hook", post(hook))
        .route("/download/{id}", get(graph_download))
        .route("/{account}/messages", post(graph_send))
        .route("/{id}", get(graph_media))
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, task)
}

fn meta_config(cfg: &mut appliance::Config, graph: &str) {
    cfg.meta_app_secret = Some(appliance::config::Secret::new(META_SECRET));
    cfg.meta_verify_token = Some(appliance::config::Secret::new(VERIFY_TOKEN));
    cfg.meta_access_token = Some(appliance::config::Secret::new(GRAPH_TOKEN));
    cfg.meta_graph_url = graph.to_string();
    cfg.stripe_webhook_secret = Some(appliance::config::Secret::new(STRIPE_SECRET));
    cfg.telegram_inbox_space = Some("studio".into());
}

fn meta_signature(body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(META_SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn stripe_signature(body: &[u8], t: i64) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(STRIPE_SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

async fn post_meta(server: &TestServer, body: &[u8], signature: Option<String>) -> u16 {
    let mut req = client()
        .post(format!("{}/hooks/meta", server.url))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(s) = signature {
        req = req.header("X-Hub-Signature-256", s);
    }
    req.send().await.unwrap().status().as_u16()
}

async fn post_stripe(server: &TestServer, body: &[u8], signature: Option<String>) -> u16 {
    let mut req = client()
        .post(format!("{}/hooks/stripe", server.url))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(s) = signature {
        req = req.header("Stripe-Signature", s);
    }
    req.send().await.unwrap().status().as_u16()
}

/// A WhatsApp fixture with its own message id (and optionally another phone number id).
fn whatsapp(name: &str, message_id: &str) -> Value {
    let mut v: Value =
        serde_json::from_slice(&fixture_bytes(&format!("meta-webhooks/{name}.json"))).unwrap();
    let value = &mut v["entry"][0]["changes"][0]["value"];
    if let Some(m) = value["messages"].get_mut(0) {
        m["id"] = json!(message_id);
    }
    if let Some(s) = value["statuses"].get_mut(0) {
        s["id"] = json!(message_id);
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meta_webhooks_verify_sign_route_deduplicate_fetch_media_and_track_replies() {
    let seen = Shared::default();
    let (graph, _g) = fake_world(0, seen.clone()).await;
    let bot = FakeBot::start().await;
    let dir = tempdir();
    let mut cfg = config(dir.path(), &bot);
    meta_config(&mut cfg, &graph);
    let server = TestServer::start(cfg).await;
    server.space_with_chats("studio", &[]);

    // The verification handshake.
    let verify = |token: &str| {
        format!(
            "{}/hooks/meta?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444",
            server.url
        )
    };
    let r = client().get(verify(VERIFY_TOKEN)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "1158201444");
    let r = client().get(verify("wrong")).send().await.unwrap();
    assert_eq!(r.status(), 403);

    // Signatures: missing, wrong, and a body changed after signing.
    let text = serde_json::to_vec(&whatsapp("message.text", "wamid.text-1")).unwrap();
    assert_eq!(post_meta(&server, &text, None).await, 401);
    assert_eq!(
        post_meta(&server, &text, Some(format!("sha256={}", "00".repeat(32)))).await,
        401
    );
    let mut tampered = text.clone();
    tampered.extend_from_slice(b" ");
    assert_eq!(
        post_meta(&server, &tampered, Some(meta_signature(&text))).await,
        401
    );
    assert_eq!(server.count("SELECT count(*) FROM webhook_events"), 0);

    // Signed, but the phone number id is bound to no space: 200, recorded as ignored.
    assert_eq!(
        post_meta(&server, &text, Some(meta_signature(&text))).await,
        200
    );
    server.settle().await;
    assert_eq!(
        server.count("SELECT count(*) FROM webhook_events WHERE state = 'ignored' AND note LIKE '%1122334455667%'"),
        1
    );
    assert_eq!(server.count("SELECT count(*) FROM inbox_messages"), 0);

    // Bound: the text lands in the contact's conversation, once even when redelivered.
    {
        let c = server.app.db.conn().unwrap();
        let s = appliance::db::spaces::find(&c, "studio").unwrap();
        appliance::db::integrations::bind_meta_account(
            &c,
            &appliance::db::spaces::operator_scope(s),
            "whatsapp",
            "1122334455667",
        )
        .unwrap();
    }
    for _ in 0..2 {
        assert_eq!(
            post_meta(&server, &text, Some(meta_signature(&text))).await,
            200
        );
    }
    server.settle().await;
    assert_eq!(
        server.count("SELECT count(*) FROM inbox_messages WHERE text = 'Body Text' AND author_kind = 'contact'"),
        1
    );
    assert_eq!(
        server.count("SELECT count(*) FROM contacts WHERE whatsapp_id = '972987654321' AND name = 'Test Name'"),
        1
    );

    // An image: media id -> URL -> download with the bearer token -> vault -> attachment.
    let image = serde_json::to_vec(&whatsapp("message.image", "wamid.image-1")).unwrap();
    assert_eq!(
        post_meta(&server, &image, Some(meta_signature(&image))).await,
        200
    );
    server.settle().await;
    let jpeg = fixture_bytes("images/Canon_40D.jpg");
    let c = server.app.db.conn().unwrap();
    let sha: String = c
        .query_row(
            "SELECT a.sha256 FROM inbox_attachments a JOIN inbox_messages m ON m.id = a.message_id
             WHERE m.external_id = 'wamid.image-1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(sha, sha256(&jpeg));
    {
        let g = seen.lock().unwrap();
        assert!(g
            .graph
            .iter()
            .any(|(p, a, _)| p == "GET /65463453" && a == &format!("Bearer {GRAPH_TOKEN}")));
        assert!(g
            .graph
            .iter()
            .any(|(p, _, _)| p == "GET /download/65463453"));
    }

    // A staff reply goes out through the Graph API; status callbacks move its delivery.
    let conversation: i64 = c
        .query_row(
            "SELECT conversation_id FROM inbox_messages WHERE external_id = 'wamid.text-1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let staff = {
        let u = appliance::db::users::create(&c, "ines", "x", false).unwrap();
        let s = appliance::db::spaces::find(&c, "studio").unwrap();
        appliance::db::spaces::grant(&c, s.id, u.id, appliance::db::spaces::Role::Member).unwrap();
        let t = appliance::web::auth::random_token();
        appliance::db::users::create_token(&c, &appliance::web::auth::token_hash(&t), u.id, "t")
            .unwrap();
        t
    };
    let r = client()
        .post(format!(
            "{}/api/v1/conversations/{conversation}/messages",
            server.url
        ))
        .bearer_auth(&staff)
        .json(&json!({ "text": "See you Tuesday" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    server.settle().await;
    {
        let g = seen.lock().unwrap();
        let (_, a, body) = g
            .graph
            .iter()
            .find(|(p, _, _)| p == "POST /1122334455667/messages")
            .expect("the reply went to the Graph API");
        assert_eq!(a, &format!("Bearer {GRAPH_TOKEN}"));
        let b: Value = serde_json::from_str(body).unwrap();
        assert_eq!(b["to"], "972987654321");
        assert_eq!(b["text"]["body"], "See you Tuesday");
    }
    let delivery = |c: &rusqlite::Connection| -> String {
        c.query_row(
            "SELECT delivery FROM inbox_messages WHERE external_id = 'wamid.reply-1'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(delivery(&c), "sent");
    let read = serde_json::to_vec(&whatsapp("message_status.read", "wamid.reply-1")).unwrap();
    assert_eq!(
        post_meta(&server, &read, Some(meta_signature(&read))).await,
        200
    );
    server.settle().await;
    assert_eq!(delivery(&c), "read");

    // A field we do not handle is acknowledged and recorded.
    let other = fixture_bytes("meta-webhooks/template_status_update.approved.json");
    assert_eq!(
        post_meta(&server, &other, Some(meta_signature(&other))).await,
        200
    );
    server.settle().await;
    assert!(
        server.count("SELECT count(*) FROM webhook_events WHERE note LIKE '%not handled%'") >= 1
    );
    drop(c);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_deposits_signatures_replays_and_stale_timestamps() {
    let bot = FakeBot::start().await;
    let dir = tempdir();
    let mut cfg = config(dir.path(), &bot);
    meta_config(&mut cfg, "http://127.0.0.1:9");
    let server = TestServer::start(cfg).await;
    server.space_with_chats("studio", &[]);
    let (appointment, conversation) = {
        let c = server.app.db.conn().unwrap();
        let s = appliance::db::spaces::find(&c, "studio").unwrap();
        appliance::db::spaces::set_language(&c, s.id, appliance::db::spaces::Language::Fr).unwrap();
        let scope = appliance::db::spaces::operator_scope(s);
        let contact =
            appliance::db::inbox::create_contact(&c, &scope, "Léa", None, None, None).unwrap();
        appliance::db::inbox::create_appointment(&c, &scope, contact, 1_900_000_000, 60, None)
            .unwrap()
    };
    let event = |file: &str, id: &str| -> Vec<u8> {
        let mut v: Value =
            serde_json::from_slice(&fixture_bytes(&format!("stripe-events/{file}.json"))).unwrap();
        v["id"] = json!(id);
        v["data"]["object"]["metadata"] = json!({ "appointment_id": appointment.to_string() });
        serde_json::to_vec(&v).unwrap()
    };
    let now = chrono::Utc::now().timestamp();
    let paid = event("checkout.session.completed", "evt_paid_1");

    assert_eq!(post_stripe(&server, &paid, None).await, 401);
    let mut wrong = stripe_signature(&paid, now);
    wrong.replace_range(wrong.len() - 4.., "0000");
    assert_eq!(post_stripe(&server, &paid, Some(wrong)).await, 401);
    assert_eq!(
        post_stripe(&server, &paid, Some(stripe_signature(&paid, now - 600))).await,
        400,
        "a timestamp older than 5 minutes is refused"
    );
    assert_eq!(server.count("SELECT count(*) FROM webhook_events"), 0);

    for _ in 0..2 {
        assert_eq!(
            post_stripe(&server, &paid, Some(stripe_signature(&paid, now))).await,
            200
        );
    }
    assert_eq!(
        server.count(&format!(
            "SELECT count(*) FROM appointments WHERE id = {appointment} AND deposit_paid_at IS NOT NULL"
        )),
        1
    );
    assert_eq!(
        server.count(&format!(
            "SELECT count(*) FROM inbox_messages WHERE conversation_id = {conversation} AND text = 'Acompte reçu : 30,00 USD'"
        )),
        1,
        "one system message, in the studio's language, despite the replay"
    );
    assert_eq!(
        server.count("SELECT count(*) FROM webhook_events WHERE source = 'stripe'"),
        1
    );

    // Types we do not handle are recorded and acknowledged.
    let charge = event("charge.succeeded", "evt_charge_1");
    assert_eq!(
        post_stripe(&server, &charge, Some(stripe_signature(&charge, now))).await,
        200
    );
    assert_eq!(
        server.count("SELECT count(*) FROM webhook_events WHERE external_id = 'evt_charge_1' AND state = 'ignored'"),
        1
    );
    server.stop().await;
}

fn verify_standard_webhook(headers: &HeaderMap, body: &str) -> bool {
    let h = |n: &str| headers.get(n).unwrap().to_str().unwrap().to_string();
    let key = base64::engine::general_purpose::STANDARD
        .decode(HOOK_SECRET.trim_start_matches("whsec_"))
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", h("webhook-id"), h("webhook-timestamp"), body).as_bytes());
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    h("webhook-signature").split(' ').any(|s| s == expected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_receiver_down_then_up_gets_the_event_once_signed_and_autoreplies_go_out() {
    // A port with nobody listening yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bot = FakeBot::start().await;
    let dir = tempdir();
    let mut cfg = config(dir.path(), &bot);
    meta_config(&mut cfg, "http://127.0.0.1:9");
    let server = TestServer::start(cfg).await;
    server.space_with_chats("studio", &[]);
    let integration = {
        let c = server.app.db.conn().unwrap();
        let s = appliance::db::spaces::find(&c, "studio").unwrap();
        let scope = appliance::db::spaces::operator_scope(s.clone());
        appliance::db::autoreply::set(
            &c,
            &scope,
            &appliance::db::autoreply::Settings {
                mode: "away".into(),
                away_en: Some("Back on Monday!".into()),
                ..Default::default()
            },
        )
        .unwrap();
        appliance::db::integrations::create(
            &c,
            &scope,
            "webhook",
            &format!("http://127.0.0.1:{port}/hook"),
            Some(&server.app.secrets.seal(HOOK_SECRET)),
            "message.received",
        )
        .unwrap()
    };
    // The secret is sealed in the database.
    let stored: String = server
        .app
        .db
        .conn()
        .unwrap()
        .query_row("SELECT secret_sealed FROM integrations", [], |r| r.get(0))
        .unwrap();
    assert!(stored.starts_with("v1:") && !stored.contains("MfKQ9r8"));

    // A client writes to the bot in a private chat twice: two events, one auto-reply (cooldown).
    let mut u = update("message");
    u["message"]["chat"] = json!({ "id": 4242, "type": "private", "first_name": "Zoé" });
    u["message"]["from"] = json!({ "id": 4242, "is_bot": false, "first_name": "Zoé" });
    u["message"]["text"] = json!("Hello, are you open?");
    assert_eq!(
        server
            .post_update(&renumber(u.clone(), 900).to_string(), Some(SECRET))
            .await,
        200
    );
    u["message"]["text"] = json!("Anyone?");
    assert_eq!(
        server
            .post_update(&renumber(u, 901).to_string(), Some(SECRET))
            .await,
        200
    );
    wait_until("two deliveries to be tried", || {
        server.count("SELECT count(*) FROM deliveries WHERE attempts >= 1") == 2
    })
    .await;
    assert_eq!(
        server.count("SELECT count(*) FROM deliveries WHERE state = 'pending' AND last_error LIKE '%connect%'"),
        2,
        "the receiver is down: the deliveries wait for a retry"
    );
    wait_until("the auto-reply to reach Telegram", || {
        bot.calls("sendmessage")
            .iter()
            .any(|c| c["text"] == "Back on Monday!")
    })
    .await;
    assert_eq!(
        bot.calls("sendmessage")
            .iter()
            .filter(|c| c["text"] == "Back on Monday!")
            .count(),
        1,
        "one auto-reply per cooldown"
    );
    assert_eq!(server.count("SELECT count(*) FROM auto_replies"), 1);

    // The receiver comes up: each event arrives once, signed per Standard Webhooks.
    let seen = Shared::default();
    let (_, _receiver) = fake_world(port, seen.clone()).await;
    wait_until("both deliveries", || {
        server.count("SELECT count(*) FROM deliveries WHERE state = 'delivered'") == 2
    })
    .await;
    server.settle().await;
    let hooks = std::mem::take(&mut *seen.lock().unwrap());
    assert_eq!(hooks.hooks.len(), 2, "delivered once each");
    for (headers, body) in &hooks.hooks {
        assert!(
            verify_standard_webhook(headers, body),
            "signature of {body}"
        );
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["type"], "message.received");
        assert_eq!(v["data"]["channel"], "telegram");
    }
    let ids: std::collections::HashSet<_> = hooks
        .hooks
        .iter()
        .map(|(h, _)| h.get("webhook-id").unwrap().clone())
        .collect();
    assert_eq!(ids.len(), 2);
    let _ = integration;
    server.stop().await;
}

pub(crate) fn appliance_cli(
    data: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_appliance"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("RUST_LOG", "debug")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integrations_from_the_command_line_with_send_test_rotation_and_no_secret_in_logs() {
    let seen = Shared::default();
    let (url, _w) = fake_world(0, seen.clone()).await;
    let dir = tempdir();
    let d = dir.path();
    let (ok, _, err) = appliance_cli(d, &["space", "add", "family", "--name", "Family"], &[]);
    assert!(ok, "{err}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join("secret.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let hook = format!("{url}/hook");
    let (ok, out, err) = appliance_cli(
        d,
        &[
            "integration",
            "add",
            "webhook",
            "--space",
            "family",
            "--url",
            &hook,
            "--secret",
            HOOK_SECRET,
            "--events",
            "media.added,message.received",
        ],
        &[],
    );
    assert!(ok, "{err}");
    let id: i64 = out.trim().parse().expect("prints the id");

    let (ok, out, err) = appliance_cli(
        d,
        &["integration", "list", "--space", "family", "--json"],
        &[],
    );
    assert!(ok, "{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[0]["id"], id);
    assert_eq!(
        list[0]["events"],
        json!(["media.added", "message.received"])
    );
    assert_eq!(list[0]["secret"], "••••LaSw");
    assert!(!out.contains("MfKQ9r8"));

    let (ok, out, err) = appliance_cli(d, &["integration", "test", &id.to_string()], &[]);
    assert!(ok, "{out}{err}");
    {
        let s = seen.lock().unwrap();
        assert_eq!(s.hooks.len(), 1);
        assert!(verify_standard_webhook(&s.hooks[0].0, &s.hooks[0].1));
    }

    // Discord and Slack get their incoming-webhook shapes.
    for (kind, key) in [("discord", "content"), ("slack", "text")] {
        let (ok, out, err) = appliance_cli(
            d,
            &[
                "integration",
                "add",
                kind,
                "--space",
                "family",
                "--url",
                &hook,
                "--events",
                "ingest.failed",
            ],
            &[],
        );
        assert!(ok, "{err}");
        let (ok, _, err) = appliance_cli(d, &["integration", "test", out.trim()], &[]);
        assert!(ok, "{err}");
        let body: Value =
            serde_json::from_str(&seen.lock().unwrap().hooks.last().unwrap().1).unwrap();
        assert!(
            body[key].as_str().unwrap().contains("Test from appliance"),
            "{body}"
        );
    }

    // Unknown events and bad secrets are refused with what to fix.
    let (ok, _, err) = appliance_cli(
        d,
        &[
            "integration",
            "add",
            "webhook",
            "--space",
            "family",
            "--url",
            &hook,
            "--events",
            "media.deleted",
        ],
        &[],
    );
    assert!(!ok && err.contains("media.deleted"), "{err}");

    // A dead target and a bad bot token: non-zero, the exact error, and no secret in the logs.
    let token = "987654:SECRET-bot-token_never_logged";
    let (ok, out, err) = appliance_cli(
        d,
        &[
            "integration",
            "add",
            "telegram",
            "--space",
            "family",
            "--chat",
            "-100123",
            "--token",
            token,
            "--events",
            "stats.daily",
        ],
        &[],
    );
    assert!(ok, "{err}");
    let tg_id = out.trim().to_string();
    let bot = FakeBot::start().await;
    let (ok, _, err) = appliance_cli(
        d,
        &["integration", "test", &tg_id],
        &[("APPLIANCE_TELEGRAM_API_URL", &bot.url)],
    );
    assert!(ok, "{err}");
    assert_eq!(bot.calls("sendmessage").len(), 1);
    let (ok, _, err) = appliance_cli(
        d,
        &["integration", "test", &tg_id],
        &[("APPLIANCE_TELEGRAM_API_URL", "http://127.0.0.1:9/")],
    );
    assert!(!ok);
    assert!(err.contains("delivery failed"), "{err}");
    assert!(!err.contains("SECRET-bot-token"), "the token leaked: {err}");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (ok, out, _) = appliance_cli(
        d,
        &[
            "integration",
            "add",
            "webhook",
            "--space",
            "family",
            "--url",
            &format!("http://127.0.0.1:{port}/down"),
            "--secret",
            HOOK_SECRET,
            "--events",
            "system.status",
        ],
        &[],
    );
    assert!(ok);
    let (ok, _, err) = appliance_cli(d, &["integration", "test", out.trim()], &[]);
    assert!(!ok);
    assert!(err.contains("cannot connect"), "{err}");
    assert!(!err.contains("MfKQ9r8"), "the webhook secret leaked: {err}");

    // Rotation: a new key file, secrets still usable, the old key no longer opens them.
    let old_key = std::fs::read_to_string(d.join("secret.key")).unwrap();
    let (ok, out, err) = appliance_cli(d, &["secrets", "rotate"], &[]);
    assert!(ok, "{err}");
    assert!(out.contains("re-encrypted 3 secret"), "{out}");
    assert_ne!(
        std::fs::read_to_string(d.join("secret.key")).unwrap(),
        old_key
    );
    let (ok, out, err) = appliance_cli(d, &["integration", "test", &id.to_string()], &[]);
    assert!(ok, "{out}{err}");
    assert_eq!(seen.lock().unwrap().hooks.len(), 4);
    let (ok, _, err) = appliance_cli(
        d,
        &["integration", "list", "--space", "family"],
        &[("APPLIANCE_SECRET_KEY", old_key.trim())],
    );
    assert!(!ok && err.contains("does not open"), "{err}");
    assert!(!err.contains(old_key.trim()), "the key leaked: {err}");
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_manage_integrations_and_members_schedule_posts_in_the_browser_forms() {
    use crate::web::{add_user, login};
    let seen = Shared::default();
    let (url, _w) = fake_world(0, seen.clone()).await;
    let bot = FakeBot::start().await;
    let dir = tempdir();
    let server = TestServer::start(config(dir.path(), &bot)).await;
    server.space_with_chats("family", &[-100777]);
    let owner = add_user(&server, "olga", false);
    let member = add_user(&server, "max", false);
    {
        let c = server.app.db.conn().unwrap();
        let s = appliance::db::spaces::find(&c, "family").unwrap();
        appliance::db::spaces::grant(&c, s.id, owner.id, appliance::db::spaces::Role::Owner)
            .unwrap();
        appliance::db::spaces::grant(&c, s.id, member.id, appliance::db::spaces::Role::Member)
            .unwrap();
        // The chat has a title once the bot has seen it.
        c.execute(
            "INSERT INTO telegram_chats(chat_id, type, title, space_id, first_seen_at, last_seen_at)
             VALUES (-100777, 'group', 'Family chat', ?1, 0, 0)
             ON CONFLICT(chat_id) DO UPDATE SET title = 'Family chat'",
            [s.id.0],
        )
        .unwrap();
    }
    let olga = login(&server, "olga", "password-of-test").await;
    let max = login(&server, "max", "password-of-test").await;
    let token = crate::web::csrf_of;
    let c = client();
    let page = |cookie: String, path: &str| {
        let req = c
            .get(format!("{}{path}", server.url))
            .header("cookie", cookie);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(page(max.clone(), "/s/family/integrations").await.0, 403);
    let (status, html) = page(olga.clone(), "/s/family/integrations").await;
    assert_eq!(status, 200);
    assert!(html.contains("Add an integration"));

    // Add a webhook from the form (secret generated, shown once), then Send test.
    let r = c
        .post(format!("{}/s/family/integrations", server.url))
        .header("cookie", &olga)
        .form(&[
            ("csrf", token(&olga).as_str()),
            ("kind", "webhook"),
            ("target", &format!("{url}/hook")),
            ("secret", ""),
            ("media.added", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    let generated = html
        .split("signing secret (shown once): ")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .expect("the generated secret is shown once")
        .trim()
        .to_string();
    assert!(generated.starts_with("whsec_"), "{generated}");
    let id = server.count("SELECT max(id) FROM integrations");
    let r = c
        .post(format!("{}/s/family/integrations/{id}/test", server.url))
        .header("cookie", &olga)
        .form(&[("csrf", token(&olga).as_str())])
        .send()
        .await
        .unwrap();
    let html = r.text().await.unwrap();
    assert!(html.contains("Test delivered"), "{html}");
    assert_eq!(seen.lock().unwrap().hooks.len(), 1);
    assert!(
        html.contains("integration.test"),
        "the delivery log shows it"
    );
    assert!(
        !html.contains(&generated),
        "the secret is masked after creation"
    );

    // Schedule two posts (RFC 3339 or local time), cancel one; the other is sent on time.
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339();
    for (at, text) in [
        (soon.as_str(), "Dinner at 8!"),
        ("2099-01-01 10:00", "Happy 2099"),
    ] {
        let r = c
            .post(format!("{}/s/family/posts", server.url))
            .header("cookie", &max)
            .form(&[
                ("csrf", token(&max).as_str()),
                ("chat", "-100777"),
                ("at", at),
                ("text", text),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    }
    let later = server.count("SELECT id FROM scheduled_posts WHERE text = 'Happy 2099'");
    let r = c
        .post(format!("{}/s/family/posts/{later}/cancel", server.url))
        .header("cookie", &max)
        .form(&[("csrf", token(&max).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    wait_until("the post to be sent", || {
        bot.calls("sendmessage")
            .iter()
            .any(|m| m["text"] == "Dinner at 8!" && m["chat_id"] == -100777)
    })
    .await;
    // The job records the outcome just after the Bot API answers.
    wait_until("the post to be marked sent", || {
        server.count("SELECT count(*) FROM scheduled_posts WHERE state = 'sent'") > 0
    })
    .await;
    assert_eq!(
        server.count("SELECT count(*) FROM scheduled_posts WHERE state = 'sent'"),
        1
    );
    let (_, html) = page(max.clone(), "/s/family/posts").await;
    assert!(
        html.contains("cancelled") && html.contains("Dinner at 8!"),
        "{html}"
    );
    // A chat of another space is refused with a reason.
    let r = c
        .post(format!("{}/s/family/posts", server.url))
        .header("cookie", &max)
        .form(&[
            ("csrf", token(&max).as_str()),
            ("chat", "-999"),
            ("at", "2099-01-01 10:00"),
            ("text", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("not bound"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_arrive_as_one_batched_media_added_and_status_and_daily_stats_go_out() {
    let seen = Shared::default();
    let (url, _w) = fake_world(0, seen.clone()).await;
    let bot = FakeBot::start().await;
    register_fixture_files(&bot);
    bot.add_file(
        "SBBS",
        "photos/second.jpg",
        fixture_bytes("images/hopper.jpg"),
    );
    let dir = tempdir();
    let mut cfg = config(dir.path(), &bot);
    cfg.notify_batch_seconds = 1;
    // An integration added before the server starts hears `system.status: started`.
    {
        let app = appliance::App::open(cfg.clone()).unwrap();
        let c = app.db.conn().unwrap();
        let s = appliance::db::spaces::create(&c, "family", "Family").unwrap();
        appliance::db::telegram::bind_chat(&c, 11111111, s.id).unwrap();
        appliance::db::integrations::create(
            &c,
            &appliance::db::spaces::operator_scope(s),
            "webhook",
            &format!("{url}/hook"),
            Some(&app.secrets.seal(HOOK_SECRET)),
            "media.added,system.status,stats.daily",
        )
        .unwrap();
    }
    let server = TestServer::start(cfg).await;
    // Two photos from Mario within the window.
    let mut second = update("photo");
    second["message"]["photo"] =
        json!([{ "file_id": "SBBS", "file_unique_id": "SBBS", "width": 10, "height": 10 }]);
    let now = chrono::Utc::now().timestamp();
    for (i, mut u) in [update("photo"), second].into_iter().enumerate() {
        u["message"]["date"] = json!(now);
        let body = renumber(u, 500 + i as i64).to_string();
        assert_eq!(server.post_update(&body, Some(SECRET)).await, 200);
    }
    wait_until("media.added", || {
        seen.lock()
            .unwrap()
            .hooks
            .iter()
            .any(|(_, b)| b.contains("media.added"))
    })
    .await;
    server.settle().await;
    // A photo after that batch starts the next one.
    bot.add_file(
        "SCCS",
        "photos/third.jpg",
        fixture_bytes("images/Portrait_6.jpg"),
    );
    let mut third = update("photo");
    third["message"]["date"] = json!(now);
    third["message"]["photo"] =
        json!([{ "file_id": "SCCS", "file_unique_id": "SCCS", "width": 10, "height": 10 }]);
    assert_eq!(
        server
            .post_update(&renumber(third, 502).to_string(), Some(SECRET))
            .await,
        200
    );
    wait_until("a second media.added", || {
        seen.lock()
            .unwrap()
            .hooks
            .iter()
            .filter(|(_, b)| b.contains("media.added"))
            .count()
            == 2
    })
    .await;
    server.settle().await;
    // Daily statistics: none on the first day, then once per day however often the loop wakes.
    let app = server.app.clone();
    assert_eq!(
        appliance::notify::events::daily_stats(&app, now)
            .await
            .unwrap(),
        0
    );
    let tomorrow = (now / 86_400 + 1) * 86_400 + 1;
    assert_eq!(
        appliance::notify::events::daily_stats(&app, tomorrow)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        appliance::notify::events::daily_stats(&app, tomorrow)
            .await
            .unwrap(),
        0
    );
    server.settle().await;
    let hooks = std::mem::take(&mut *seen.lock().unwrap());
    let events: Vec<Value> = hooks
        .hooks
        .iter()
        .map(|(h, b)| {
            assert!(verify_standard_webhook(h, b));
            serde_json::from_str(b).unwrap()
        })
        .collect();
    let media: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "media.added")
        .collect();
    assert_eq!(media.len(), 2, "two batches: {events:?}");
    assert_eq!(media[0]["data"]["count"], 2);
    assert_eq!(media[0]["data"]["text"], "2 new photos from Mario");
    assert_eq!(media[1]["data"]["text"], "1 new photo from Mario");
    assert!(events
        .iter()
        .any(|e| e["type"] == "system.status" && e["data"]["status"] == "started"));
    let daily: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "stats.daily")
        .collect();
    assert_eq!(daily.len(), 1);
    assert_eq!(daily[0]["data"]["media"], 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instagram_messages_land_in_the_inbox_and_echoes_are_skipped() {
    let seen = Shared::default();
    let (graph, _g) = fake_world(0, seen.clone()).await;
    let bot = FakeBot::start().await;
    let dir = tempdir();
    let mut cfg = config(dir.path(), &bot);
    meta_config(&mut cfg, &graph);
    let server = TestServer::start(cfg).await;
    server.space_with_chats("studio", &[]);
    {
        let c = server.app.db.conn().unwrap();
        let s = appliance::db::spaces::find(&c, "studio").unwrap();
        appliance::db::integrations::bind_meta_account(
            &c,
            &appliance::db::spaces::operator_scope(s),
            "instagram",
            "17841400000000000",
        )
        .unwrap();
    }
    // The shape of Meta's Instagram messaging webhook
    // (developers.facebook.com/docs/instagram-platform/webhooks/examples): no fixture exists for it.
    let body = serde_json::to_vec(&json!({
        "object": "instagram",
        "entry": [{
            "id": "17841400000000000", "time": 1700000000,
            "messaging": [
                { "sender": { "id": "5550001" }, "recipient": { "id": "17841400000000000" },
                  "timestamp": 1700000000, "message": { "mid": "aWdfZAG1mid1", "text": "Is Friday free?" } },
                { "sender": { "id": "17841400000000000" }, "recipient": { "id": "5550001" },
                  "timestamp": 1700000001, "message": { "mid": "aWdfZAG1mid2", "text": "echo", "is_echo": true } },
                { "sender": { "id": "5550001" }, "recipient": { "id": "17841400000000000" },
                  "timestamp": 1700000002, "message": { "mid": "aWdfZAG1mid3",
                    "attachments": [{ "type": "image", "payload": { "url": format!("{graph}/download/ig1") } }] } }
            ]
        }]
    }))
    .unwrap();
    assert_eq!(
        post_meta(&server, &body, Some(meta_signature(&body))).await,
        200
    );
    server.settle().await;
    assert_eq!(
        server.count("SELECT count(*) FROM inbox_messages WHERE author_kind = 'contact'"),
        2,
        "the echo of our own message is skipped"
    );
    assert_eq!(
        server.count("SELECT count(*) FROM contacts WHERE instagram_id = '5550001'"),
        1
    );
    // Instagram's attachment URLs are signed CDN URLs, fetched without the Graph token; this
    // fake wants the token, so the download fails for good with its status, visibly.
    assert_eq!(
        server.count("SELECT count(*) FROM jobs WHERE kind = 'meta.media' AND state = 'failed' AND last_error LIKE '%401%'"),
        1
    );
    server.stop().await;
}
