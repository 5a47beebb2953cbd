//! Every route walked as an anonymous visitor and as a member of another
//! space: nothing of the space comes back, nothing changes. Security
//! headers on every response; login attempts are rate-limited.

use serde_json::json;

use crate::{
    common::*,
    fake_bot::FakeBot,
    web::{add_user, login},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_and_anonymous_visitors_get_nothing_from_any_route() {
    let bot = FakeBot::start().await;
    register_fixture_files(&bot);
    let dir = tempdir();
    let server = TestServer::start(config(dir.path(), &bot)).await;
    server.space_with_chats("family", &[11111111]);
    server.space_with_chats("other", &[]);
    let mut photo = update("photo");
    photo["message"]["caption"] = json!("PRIVATE-CAPTION");
    assert_eq!(
        server
            .post_update(&renumber(photo, 1).to_string(), Some(SECRET))
            .await,
        200
    );
    server.settle().await;
    let alice = add_user(&server, "alice", false);
    let bob = add_user(&server, "bob", false);
    let (media, conversation, message, appointment, integration, post) = {
        let c = server.app.db.conn().unwrap();
        let fam = appliance::db::spaces::find(&c, "family").unwrap();
        let other = appliance::db::spaces::find(&c, "other").unwrap();
        appliance::db::spaces::grant(&c, fam.id, alice.id, appliance::db::spaces::Role::Owner)
            .unwrap();
        appliance::db::spaces::grant(&c, other.id, bob.id, appliance::db::spaces::Role::Owner)
            .unwrap();
        let scope = appliance::db::spaces::operator_scope(fam);
        let contact =
            appliance::db::inbox::create_contact(&c, &scope, "PRIVATE-CONTACT", None, None, None)
                .unwrap();
        let (appointment, conversation) =
            appliance::db::inbox::create_appointment(&c, &scope, contact, 1_900_000_000, 30, None)
                .unwrap();
        let (message, _) = appliance::db::inbox::add_message_with(
            &c,
            &scope,
            conversation,
            "staff",
            Some(alice.id),
            "PRIVATE-MESSAGE",
            false,
        )
        .unwrap();
        let integration = appliance::db::integrations::create(
            &c,
            &scope,
            "slack",
            "https://hooks.example/PRIVATE",
            None,
            "media.added",
        )
        .unwrap();
        let post =
            appliance::db::posts::create(&c, &scope, 11111111, "PRIVATE-POST", None, 1_900_000_000)
                .unwrap();
        let album =
            appliance::db::collections::create(&c, &scope, "PRIVATE-ALBUM", alice.id).unwrap();
        appliance::db::collections::create_share(&c, &scope, album, &[7u8; 32], 7, alice.id)
            .unwrap();
        let media: i64 = c
            .query_row("SELECT id FROM media LIMIT 1", [], |r| r.get(0))
            .unwrap();
        (media, conversation, message, appointment, integration, post)
    };
    let before = |s: &TestServer| {
        s.count("SELECT (SELECT count(*) FROM media WHERE state = 'stored') * 1000000 + (SELECT count(*) FROM inbox_messages WHERE deleted_at IS NULL) * 10000 + (SELECT count(*) FROM integrations) * 100 + (SELECT count(*) FROM scheduled_posts WHERE state = 'scheduled') * 10 + (SELECT count(*) FROM conversations) + (SELECT count(*) FROM collections) * 100000000 + (SELECT count(*) FROM share_links WHERE revoked_at IS NULL) * 1000000000 + (SELECT count(*) FROM favourites) * 10000000000 + (SELECT count(*) FROM collection_items) * 100000000000")
    };
    let snapshot = before(&server);
    let routes: Vec<(&str, String)> = vec![
        ("GET", "/s/family".into()),
        ("GET", "/s/family/stats".into()),
        ("GET", "/s/family/events".into()),
        ("GET", "/s/family/collections".into()),
        ("POST", "/s/family/collections".into()),
        ("GET", "/s/family/collections/1".into()),
        ("POST", "/s/family/collections/1/share".into()),
        ("POST", "/s/family/collections/1/shares/1/revoke".into()),
        ("POST", "/s/family/collections/1/delete".into()),
        ("GET", "/s/family/favourites".into()),
        ("POST", format!("/s/family/media/{media}/collect")),
        ("POST", format!("/s/family/media/{media}/favourite")),
        ("GET", format!("/share/{}", "0".repeat(64))),
        (
            "GET",
            format!("/share/{}/media/{media}/file", "0".repeat(64)),
        ),
        ("POST", "/s/family/link-code".into()),
        ("GET", format!("/s/family/media/{media}")),
        ("GET", format!("/s/family/media/{media}/file")),
        ("GET", format!("/s/family/media/{media}/thumb/360")),
        ("POST", format!("/s/family/media/{media}/delete")),
        ("POST", "/s/family/upload".into()),
        ("GET", "/s/family/inbox".into()),
        ("GET", format!("/s/family/inbox/{conversation}")),
        ("POST", format!("/s/family/inbox/{conversation}/send")),
        ("GET", "/s/family/integrations".into()),
        ("POST", "/s/family/integrations".into()),
        ("POST", format!("/s/family/integrations/{integration}/test")),
        (
            "POST",
            format!("/s/family/integrations/{integration}/delete"),
        ),
        ("POST", "/s/family/autoresponder".into()),
        ("GET", "/s/family/posts".into()),
        ("POST", "/s/family/posts".into()),
        ("POST", format!("/s/family/posts/{post}/cancel")),
        ("GET", "/search?q=caption".into()),
        ("GET", "/api/v1/search?q=caption".into()),
        ("POST", "/api/v1/spaces/family/media".into()),
        ("DELETE", format!("/api/v1/spaces/family/media/{media}")),
        ("POST", "/api/v1/spaces/family/contacts".into()),
        ("GET", "/api/v1/spaces/family/appointments".into()),
        ("POST", "/api/v1/spaces/family/appointments".into()),
        ("PATCH", format!("/api/v1/appointments/{appointment}")),
        ("POST", format!("/api/v1/appointments/{appointment}/cancel")),
        ("GET", "/api/v1/spaces/family/conversations".into()),
        ("POST", "/api/v1/spaces/family/conversations".into()),
        ("GET", format!("/api/v1/conversations/{conversation}")),
        ("PATCH", format!("/api/v1/conversations/{conversation}")),
        ("DELETE", format!("/api/v1/conversations/{conversation}")),
        (
            "POST",
            format!("/api/v1/conversations/{conversation}/archive"),
        ),
        ("POST", format!("/api/v1/conversations/{conversation}/read")),
        (
            "GET",
            format!("/api/v1/conversations/{conversation}/messages"),
        ),
        (
            "POST",
            format!("/api/v1/conversations/{conversation}/messages"),
        ),
        ("DELETE", format!("/api/v1/messages/{message}")),
        ("POST", format!("/api/v1/messages/{message}/read")),
        ("POST", format!("/api/v1/messages/{message}/retry")),
        ("GET", format!("/api/v1/messages/{message}/attachments/0")),
        ("GET", "/admin/chats".into()),
        ("GET", "/admin/jobs".into()),
        ("POST", "/admin/chats/11111111/bind".into()),
        // Accounts exist: the first-run pages are closed to everyone.
        ("GET", "/setup?token=guess".into()),
        ("POST", "/setup".into()),
        ("GET", "/setup/telegram".into()),
        ("POST", "/setup/telegram/test".into()),
    ];
    let bob_cookie = login(&server, "bob", "password-of-test").await;
    let csrf = crate::web::csrf_of(&bob_cookie);
    let c = client();
    for (who, cookie) in [("anonymous", None), ("bob", Some(bob_cookie.clone()))] {
        for (method, path) in &routes {
            let url = format!("{}{path}", server.url);
            let mut req = c.request(method.parse().unwrap(), &url);
            if let Some(ck) = &cookie {
                req = req.header("cookie", ck).header("x-csrf-token", &csrf);
            }
            let req = match *method {
                "POST"
                    if path.starts_with("/s/")
                        || path.starts_with("/admin")
                        || path.starts_with("/setup") =>
                {
                    req.form(&[
                    ("csrf", csrf.as_str()),
                    ("text", "x"),
                    ("space", "other"),
                    ("kind", "slack"),
                    ("target", "https://evil.example/"),
                    ("mode", "away"),
                    ("cooldown_hours", "1"),
                    ("tz", "UTC"),
                    ("chat", "11111111"),
                    ("at", "2099-01-01 10:00"),
                    ("token", "guess"),
                    ("name", "mallory"),
                    ("password", "password-of-mallory"),
                    ("password2", "password-of-mallory"),
                    ("space_name", "Mallory"),
                    ("days", "30"),
                    ("collection", "1"),
                ])
                }
                "GET" | "DELETE" => req,
                _ => req.json(&json!({ "text": "x", "name": "x", "contact_id": 1, "starts_at": "2099-01-01T10:00:00Z", "duration_minutes": 30 })),
            };
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap_or_default();
            // Bob may search his own spaces: an answer, but nothing of the family.
            let searching = who == "bob" && path.contains("search?");
            assert!(
                matches!(status, 303 | 401 | 403 | 404) || (searching && status == 200),
                "{who} {method} {path} got {status}: {body}"
            );
            assert!(
                !body.contains("PRIVATE-"),
                "{who} {method} {path} leaked: {body}"
            );
        }
    }
    assert_eq!(before(&server), snapshot, "nothing changed");
    assert_eq!(
        server.count("SELECT count(*) FROM users WHERE name = 'mallory'"),
        0
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_headers_and_login_rate_limit() {
    let bot = FakeBot::start().await;
    let dir = tempdir();
    let server = TestServer::start(config(dir.path(), &bot)).await;
    add_user(&server, "carol", false);
    let c = client();
    let r = c.get(format!("{}/login", server.url)).send().await.unwrap();
    let h = r.headers();
    let csp = h.get("content-security-policy").unwrap().to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
    assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff");
    let cookie = h
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|c| c.starts_with("appliance_csrf="))
        .unwrap();
    let token = cookie.trim_start_matches("appliance_csrf=").to_string();
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let r = c
            .post(format!("{}/login", server.url))
            .header("cookie", &cookie)
            .form(&[
                ("name", "carol"),
                ("password", "wrong-password"),
                ("csrf", token.as_str()),
                ("next", "/"),
            ])
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert!(!statuses[..5].contains(&429), "{statuses:?}");
    assert_eq!(statuses[6], 429, "{statuses:?}");
    server.stop().await;
}
