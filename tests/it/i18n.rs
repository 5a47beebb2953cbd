//! The UI's languages: the browser's `Accept-Language` picks French, the
//! `appliance_lang` cookie (set by `GET /lang/{code}`) wins over it.

use appliance::web::i18n::{EN, FR};

use crate::{
    common::*,
    fake_bot::FakeBot,
    web::{add_user, login},
};

#[tokio::test(flavor = "multi_thread")]
async fn pages_follow_accept_language_and_the_cookie_wins() {
    let bot = FakeBot::start().await;
    let dir = tempdir();
    let server = TestServer::start(config(dir.path(), &bot)).await;
    server.space_with_chats("family", &[]);
    let alice = add_user(&server, "alice", false);
    {
        let c = server.app.db.conn().unwrap();
        let fam = appliance::db::spaces::find(&c, "family").unwrap();
        appliance::db::spaces::grant(&c, fam.id, alice.id, appliance::db::spaces::Role::Owner)
            .unwrap();
    }
    let cookie = login(&server, "alice", "password-of-test").await;
    let c = client();
    let get = |path: &str, cookie: String| {
        let req = c
            .get(format!("{}{path}", server.url))
            .header("cookie", cookie)
            .header("accept-language", "fr-FR,fr;q=0.9");
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200);
            let vary = r.headers()["vary"].to_str().unwrap().to_string();
            assert!(vary.contains("Accept-Language"), "{vary}");
            r.text().await.unwrap()
        }
    };
    // (page, a string it shows in French, the same in English)
    let pages = [
        ("/s/family/stats", FR.last_7_days, EN.last_7_days),
        ("/s/family/stats", FR.get_link_code, EN.get_link_code),
        ("/s/family/inbox", FR.archived, EN.archived),
    ];

    // French, from the browser's Accept-Language.
    for (path, fr, en) in pages {
        let html = get(path, cookie.clone()).await;
        assert!(html.contains(r#"<html lang="fr">"#), "{path}: {html}");
        assert!(html.contains(fr) && !html.contains(en), "{path}: {html}");
    }

    // The chosen language (the cookie) wins over Accept-Language.
    let chosen = format!("{cookie}; appliance_lang=en");
    for (path, fr, en) in pages {
        let html = get(path, chosen.clone()).await;
        assert!(html.contains(r#"<html lang="en">"#), "{path}: {html}");
        assert!(html.contains(en) && !html.contains(fr), "{path}: {html}");
    }

    // The footer's switch remembers the choice and goes back to the page.
    let r = c
        .get(format!("{}/lang/fr", server.url))
        .header("referer", "http://x/s/family/stats")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/s/family/stats");
    let set = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("appliance_lang="))
        .expect("the language cookie");
    assert!(set.starts_with("appliance_lang=fr;"), "{set}");
    server.stop().await;
}
