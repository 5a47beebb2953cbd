//! The web UI: login, CSRF, membership, file serving.

use appliance::web::auth::hash_password;

use crate::{common::*, fake_bot::FakeBot};

/// Logs in through the form; returns the cookie header to send afterwards.
pub(crate) async fn login(server: &TestServer, name: &str, password: &str) -> String {
    let c = client();
    let page = c.get(format!("{}/login", server.url)).send().await.unwrap();
    let csrf_cookie = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|c| c.starts_with("appliance_csrf="))
        .expect("a CSRF cookie");
    let html = page.text().await.unwrap();
    let token = csrf_cookie.trim_start_matches("appliance_csrf=");
    assert!(html.contains(token), "the form carries the token");
    let resp = c
        .post(format!("{}/login", server.url))
        .header("cookie", &csrf_cookie)
        .form(&[
            ("name", name),
            ("password", password),
            ("csrf", token),
            ("next", "/spaces"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "login of {name}");
    let session = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("appliance_session="))
        .expect("a session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );
    format!("{}; {csrf_cookie}", session.split(';').next().unwrap())
}

/// The CSRF token in a cookie header made by [`login`].
pub(crate) fn csrf_of(cookie: &str) -> String {
    cookie
        .split("; ")
        .find_map(|c| c.strip_prefix("appliance_csrf="))
        .expect("a CSRF cookie")
        .to_string()
}

/// Adds a user (password `password-of-test`) with `role` in space `slug`.
pub(crate) fn add_member(
    server: &TestServer,
    name: &str,
    slug: &str,
    role: appliance::db::spaces::Role,
) -> appliance::db::users::User {
    let user = add_user(server, name, false);
    let c = server.app.db.conn().unwrap();
    let space = appliance::db::spaces::find(&c, slug).unwrap();
    appliance::db::spaces::grant(&c, space.id, user.id, role).unwrap();
    user
}

pub(crate) fn add_user(server: &TestServer, name: &str, admin: bool) -> appliance::db::users::User {
    let c = server.app.db.conn().unwrap();
    appliance::db::users::create(&c, name, &hash_password("password-of-test").unwrap(), admin)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn members_see_the_album_and_files_others_get_404() {
    let bot = FakeBot::start().await;
    let jpeg = std::fs::read(fixture("images/Landscape_6.jpg")).unwrap();
    bot.add_file("SAAS", "photos/p.jpg", jpeg.clone());
    let dir = tempdir();
    let server = TestServer::start(config(dir.path(), &bot)).await;
    server.space_with_chats("family", &[11111111]);
    server.space_with_chats("studio", &[]);
    let alice = add_user(&server, "alice", false);
    let bob = add_user(&server, "bob", false);
    {
        let c = server.app.db.conn().unwrap();
        let fam = appliance::db::spaces::find(&c, "family").unwrap();
        let studio = appliance::db::spaces::find(&c, "studio").unwrap();
        appliance::db::spaces::grant(&c, fam.id, alice.id, appliance::db::spaces::Role::Member)
            .unwrap();
        appliance::db::spaces::grant(&c, studio.id, bob.id, appliance::db::spaces::Role::Owner)
            .unwrap();
    }
    assert_eq!(
        server
            .post_update(&renumber(update("photo"), 1).to_string(), Some(SECRET))
            .await,
        200
    );
    server.settle().await;
    let id = server.media("family")[0].id.0;
    let c = client();
    let get = |path: String, cookie: Option<String>| {
        let mut r = c.get(format!("{}{path}", server.url));
        if let Some(ck) = cookie {
            r = r.header("cookie", ck);
        }
        r.send()
    };

    // Anonymous: sent to the login page.
    let r = get(format!("/s/family/media/{id}/file"), None)
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login?next="));

    let alice_cookie = login(&server, "alice", "password-of-test").await;
    let album = get("/s/family".into(), Some(alice_cookie.clone()))
        .await
        .unwrap();
    assert_eq!(album.status(), 200);
    let html = album.text().await.unwrap();
    assert!(
        html.contains(&format!("/s/family/media/{id}/thumb/360")),
        "{html}"
    );
    let page = get(format!("/s/family/media/{id}"), Some(alice_cookie.clone()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("asdasdasdasdasdasd") && page.contains("1,800 × 1,200"),
        "{page}"
    );

    let file = get(
        format!("/s/family/media/{id}/file"),
        Some(alice_cookie.clone()),
    )
    .await
    .unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(file.headers()["content-type"], "image/jpeg");
    assert_eq!(file.headers()["x-content-type-options"], "nosniff");
    assert_eq!(file.bytes().await.unwrap().as_ref(), jpeg.as_slice());
    let range = c
        .get(format!("{}/s/family/media/{id}/file", server.url))
        .header("cookie", &alice_cookie)
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(range.status(), 206);
    assert_eq!(range.bytes().await.unwrap().as_ref(), &jpeg[..100]);
    let thumb = get(
        format!("/s/family/media/{id}/thumb/360"),
        Some(alice_cookie.clone()),
    )
    .await
    .unwrap();
    assert_eq!(thumb.headers()["content-type"], "image/jpeg");
    let img = image::load_from_memory(&thumb.bytes().await.unwrap()).unwrap();
    assert_eq!(
        (img.width(), img.height()),
        (360, 240),
        "upright, 360 px on the long edge"
    );

    // Bob is not a member of the family: everything is 404, as if it did not exist.
    let bob_cookie = login(&server, "bob", "password-of-test").await;
    for path in [
        "/s/family".to_string(),
        format!("/s/family/media/{id}"),
        format!("/s/family/media/{id}/file"),
        format!("/s/family/media/{id}/thumb/360"),
        "/s/family/stats".to_string(),
        format!("/s/studio/media/{id}/file"),
        "/s/nowhere".to_string(),
        "/admin/chats".to_string(),
    ] {
        let r = get(path.clone(), Some(bob_cookie.clone())).await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    // His own space works, and does not show the family's photo.
    let studio = get("/s/studio".into(), Some(bob_cookie))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!studio.contains(&format!("/media/{id}/")));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn login_and_forms_need_the_csrf_token() {
    let bot = FakeBot::start().await;
    let dir = tempdir();
    let server = TestServer::start(config(dir.path(), &bot)).await;
    add_user(&server, "carol", true);
    let c = client();
    // No token: refused.
    let r = c
        .post(format!("{}/login", server.url))
        .form(&[
            ("name", "carol"),
            ("password", "password-of-test"),
            ("csrf", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Wrong password: 401 and no session.
    let page = c.get(format!("{}/login", server.url)).send().await.unwrap();
    let ck = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let token = ck.trim_start_matches("appliance_csrf=").to_string();
    let r = c
        .post(format!("{}/login", server.url))
        .header("cookie", &ck)
        .form(&[
            ("name", "carol"),
            ("password", "nope-nope"),
            ("csrf", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(!r
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap().starts_with("appliance_session")));
    // An admin sees the chats page; binding without the token is refused.
    let cookie = login(&server, "carol", "password-of-test").await;
    let r = c
        .get(format!("{}/admin/chats", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .post(format!("{}/admin/chats/5/bind", server.url))
        .header("cookie", &cookie)
        .form(&[("space", "x"), ("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // With the token, a pending chat is bound from the chats page.
    server.space_with_chats("family", &[]);
    assert_eq!(
        server
            .post_update(&renumber(update("text"), 9).to_string(), Some(SECRET))
            .await,
        200
    );
    server.settle().await;
    let page = c
        .get(format!("{}/admin/chats", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    assert!(
        html.contains("pending") && html.contains("12345678"),
        "{html}"
    );
    let csrf = cookie.split("appliance_csrf=").nth(1).unwrap().to_string();
    let r = c
        .post(format!("{}/admin/chats/12345678/bind", server.url))
        .header("cookie", &cookie)
        .form(&[("space", "family"), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    server.settle().await;
    assert_eq!(
        server.count("SELECT count(*) FROM messages WHERE chat_id = 12345678"),
        1
    );
    let health = c
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn assets_are_light_hashed_and_cached_for_a_year() {
    use std::io::Write;
    let bot = FakeBot::start().await;
    let dir = tempdir();
    let server = TestServer::start(config(dir.path(), &bot)).await;
    let c = client();
    let login = c
        .get(format!("{}/login", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let css = login
        .split('"')
        .find(|s| s.starts_with("/static/v/") && s.ends_with("/app.css"))
        .expect("a hashed stylesheet URL")
        .to_string();
    let r = c.get(format!("{}{css}", server.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    // A stale hash is served (an old page still works) but not pinned.
    let stale = "/static/v/000000000000/app.css";
    let r = c
        .get(format!("{}{stale}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "public, max-age=60");
    // Every script and stylesheet, gzipped, under the 50 KB budget.
    let mut total = 0;
    for name in ["app.css", "album.js", "upload.js", "inbox.js", "page.js"] {
        let body = c
            .get(format!("{}/static/{name}", server.url))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(!body.is_empty(), "{name}");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&body).unwrap();
        total += gz.finish().unwrap().len();
    }
    assert!(total < 50 * 1024, "{total} bytes of JS and CSS, gzipped");
    server.stop().await;
}
