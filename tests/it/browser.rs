//! Real-browser tests: headless Chromium (Debian's `chromium` and
//! `chromium-driver`, installed by `.ci/run`) driven over WebDriver by
//! fantoccini, against the real server. One story walks a person's first
//! hour: first-run setup, the Telegram test, a photo arriving live, the
//! lightbox, an upload, search, French, logging out and in, an inbox reply,
//! and an album shared by link. A screenshot of each step goes to `target/e2e/`.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::{common::*, fake_bot::FakeBot};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver and a WebDriver session; both end with the test.
struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Starts chromedriver and a headless Chromium session in English; `None`
/// (with a notice) when they are not installed, a failure in CI.
async fn browser() -> Option<Browser> {
    if !std::path::Path::new(CHROMIUM).exists() || !std::path::Path::new(CHROMEDRIVER).exists() {
        assert!(
            std::env::var("APPLIANCE_REQUIRE_SHARED_FIXTURES").as_deref() != Ok("1"),
            "Chromium is required in CI (apt-get install chromium chromium-driver)"
        );
        eprintln!("notice: chromium/chromedriver are not installed; skipping the browser test");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let profile = tempfile::tempdir().unwrap();
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                "--lang=en-US", format!("--user-data-dir={}", profile.path().display()),
            ],
            "prefs": { "intl.accept_languages": "en-US,en" }
        }
    });
    let caps = caps.as_object().unwrap().clone();
    let start = Instant::now();
    let client = loop {
        // chromedriver speaks plain HTTP on loopback: no TLS stack needed.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => break c,
            Err(e) => {
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "chromedriver: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    Some(Browser {
        client,
        driver,
        _profile: profile,
    })
}

async fn wait_healthy(url: &str) {
    let start = Instant::now();
    while client().get(format!("{url}/healthz")).send().await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "no server");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Saves a screenshot of the page as `target/e2e/<name>.png`.
async fn shot(c: &Client, name: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/e2e");
    std::fs::create_dir_all(&dir).unwrap();
    let png = c.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// Waits up to 20 s for an element matching `css`.
async fn find(c: &Client, css: &str) -> fantoccini::elements::Element {
    match c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
    {
        Ok(e) => e,
        Err(e) => {
            let url = c
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let html = c.source().await.unwrap_or_default();
            panic!("no {css} at {url}: {e}\n{html}")
        }
    }
}

/// Waits up to 20 s until `cond` holds for the page's HTML.
async fn wait_html(c: &Client, what: &str, cond: impl Fn(&str) -> bool) {
    let start = Instant::now();
    loop {
        let html = c.source().await.unwrap();
        if cond(&html) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}; page: {html}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every image of the page has loaded (lazy ones included).
async fn images_loaded(c: &Client) {
    let js = "return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)";
    let start = Instant::now();
    while c.execute(js, vec![]).await.unwrap() != serde_json::Value::Bool(true) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "images did not load: {}",
            c.source().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn click(c: &Client, css: &str) {
    find(c, css).await.click().await.unwrap();
}

async fn fill(c: &Client, css: &str, text: &str) {
    let e = find(c, css).await;
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_hour_in_a_real_browser() {
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let bot = FakeBot::start().await;
    let jpeg = std::fs::read(fixture("images/Landscape_6.jpg")).unwrap();
    bot.add_file("SAAS", "photos/p.jpg", jpeg);
    let dir = tempdir();
    let server = TestServer::start(config(dir.path(), &bot)).await;
    let url = server.url.clone();

    // 1. First run: the one-time link, the administrator and the first space.
    // The server printed its own link before answering; a new one replaces it.
    wait_healthy(&url).await;
    let token = appliance::web::setup::issue_token(&server.app)
        .await
        .unwrap()
        .expect("no account yet");
    c.goto(&format!("{url}/setup?token={token}")).await.unwrap();
    fill(c, "#name", "admin").await;
    fill(c, "#password", "correct-horse-battery").await;
    fill(c, "#password2", "correct-horse-battery").await;
    fill(c, "#space_name", "Famille Dupré").await;
    shot(c, "01-first-run-setup").await;
    click(c, "form[action='/setup'] button[type=submit]").await;
    find(c, "form.test").await;
    assert!(c.current_url().await.unwrap().path() == "/setup/telegram");

    // 2. The Telegram step: Test connection calls getMe on the (fake) Bot API.
    fill(c, "#token", "123456:TEST-token_abc").await;
    click(c, "form.test button").await;
    let ok = find(c, "p.ok").await.text().await.unwrap();
    assert!(ok.contains("@family_album_bot"), "{ok}");
    shot(c, "02-telegram-test").await;
    fill(c, "#token", "123456:wrong").await;
    click(c, "form.test button").await;
    let refused = find(c, "p.error").await.text().await.unwrap();
    assert!(refused.contains("refused the token"), "{refused}");
    {
        let conn = server.app.db.conn().unwrap();
        let s = appliance::db::spaces::find(&conn, "famille-dupre").unwrap();
        appliance::db::telegram::bind_chat(&conn, 11111111, s.id).unwrap();
    }
    click(c, "a.button[href='/s/famille-dupre']").await;
    find(c, "form.upload").await;

    // 3. A photo sent to the family chat appears without a reload (once the
    // page's event stream is open: events are not replayed).
    find(c, "p.live[data-connected]").await;
    assert_eq!(
        server
            .post_update(&renumber(update("photo"), 1).to_string(), Some(SECRET))
            .await,
        200
    );
    let live = find(c, "p.live").await;
    let start = Instant::now();
    while !live.is_displayed().await.unwrap() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the live notice did not show"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shot(c, "03-photo-arrives-live").await;
    server.settle().await;
    click(c, "p.live a").await;
    find(c, ".grid a[data-preview]").await;

    // 4. The lightbox: opens on a click, moves with the keyboard, closes with Escape.
    click(c, ".grid a[data-preview]").await;
    find(c, "dialog.lightbox[open] .stage img").await;
    shot(c, "04-lightbox").await;
    find(c, "dialog.lightbox [data-go='1']")
        .await
        .send_keys("\u{e014}")
        .await
        .unwrap();
    find(c, "dialog.lightbox [data-go='1']")
        .await
        .send_keys("\u{e00c}")
        .await
        .unwrap();
    wait_html(c, "the lightbox to close", |h| {
        !h.contains("class=\"lightbox\" open") && !h.contains("open=\"\" class=\"lightbox\"")
    })
    .await;

    // 5. Upload a file and see it in the album.
    let upload = fixture("images/hopper.jpg");
    find(c, "#files")
        .await
        .send_keys(upload.to_str().unwrap())
        .await
        .unwrap();
    click(c, "form.upload button[type=submit]").await;
    let start = Instant::now();
    while c
        .find_all(Locator::Css(".grid a[data-preview]"))
        .await
        .unwrap()
        .len()
        < 2
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the upload did not appear"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.settle().await;
    c.refresh().await.unwrap();
    images_loaded(c).await;
    shot(c, "05-upload").await;

    // 6. Search from the top bar finds the photo by its caption.
    let start = Instant::now();
    loop {
        fill(c, "#q", "asdasdasdasdasdasd\u{e007}").await;
        find(c, "form.searchpage").await;
        if !c
            .find_all(Locator::Css(".hits li"))
            .await
            .unwrap()
            .is_empty()
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "search found nothing"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    shot(c, "06-search").await;

    // 7. Switch to French: the choice sticks across pages.
    click(c, "footer a[hreflang='fr']").await;
    find(c, "html[lang='fr']").await;
    c.goto(&format!("{url}/s/famille-dupre")).await.unwrap();
    find(c, "html[lang='fr']").await;
    let label = find(c, "label[for='files']").await.text().await.unwrap();
    assert_eq!(label, "Ajouter des photos et des vidéos");
    shot(c, "07-french").await;

    // 8. Log out, and back in through the form.
    click(c, "form[action='/logout'] button").await;
    find(c, "form[action='/login']").await;
    fill(c, "#name", "admin").await;
    fill(c, "#password", "correct-horse-battery").await;
    shot(c, "08-login").await;
    click(c, "form[action='/login'] button").await;
    find(c, "ul.spaces").await;

    // 9. An inbox conversation with a client, and a reply.
    let conversation = {
        let conn = server.app.db.conn().unwrap();
        let s = appliance::db::spaces::find(&conn, "famille-dupre").unwrap();
        let scope = appliance::db::spaces::operator_scope(s);
        let contact =
            appliance::db::inbox::create_contact(&conn, &scope, "Léa Martin", None, None, None)
                .unwrap();
        let id = appliance::db::inbox::create_conversation(&conn, &scope, contact, None).unwrap();
        appliance::db::inbox::add_contact_message(&conn, id, "Bonjour, une place samedi ?")
            .unwrap();
        id
    };
    c.goto(&format!("{url}/s/famille-dupre/inbox/{conversation}"))
        .await
        .unwrap();
    find(c, "#thread").await;
    fill(c, "#text", "Oui, samedi à 10 h.").await;
    click(c, "#reply button[type=submit]").await;
    wait_html(c, "the reply in the thread", |h| {
        h.contains("Oui, samedi à 10 h.")
    })
    .await;
    shot(c, "09-inbox-reply").await;
    assert_eq!(
        server.count("SELECT count(*) FROM inbox_messages WHERE text = 'Oui, samedi à 10 h.'"),
        1
    );

    // 10. An album, a favourite, and a share link opened without an account.
    c.goto(&format!("{url}/s/famille-dupre/collections"))
        .await
        .unwrap();
    fill(c, "#album-name", "Été 2026").await;
    click(c, "form[action='/s/famille-dupre/collections'] button").await;
    find(c, "form[action$='/share']").await;
    let album_url = c.current_url().await.unwrap();
    let media = server.media("famille-dupre")[0].id.0;
    c.goto(&format!("{url}/s/famille-dupre/media/{media}"))
        .await
        .unwrap();
    click(c, "form.favourite button").await;
    // The form posts and the page reloads: read the new page, not the old button.
    wait_html(c, "the favourite to be pressed", |h| {
        h.contains("aria-pressed=\"true\"")
    })
    .await;
    click(c, "form[action$='/collect'] button").await;
    wait_until("the photo to be in the album", || {
        server.count("SELECT count(*) FROM collection_items") == 1
    })
    .await;
    c.goto(album_url.as_str()).await.unwrap();
    click(c, "form[action$='/share'] button").await;
    let link = find(c, "a.new-link")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    click(c, "form[action='/logout'] button").await;
    find(c, "form[action='/login']").await;
    server.settle().await;
    c.goto(&format!("{url}{link}")).await.unwrap();
    find(c, ".grid a[data-preview]").await;
    let thumb = client()
        .get(format!("{url}{link}/media/{media}/thumb/360"))
        .send()
        .await
        .unwrap();
    assert_eq!(thumb.headers()["content-type"], "image/jpeg");
    images_loaded(c).await;
    shot(c, "10-shared-album").await;

    let _ = b.client.clone().close().await;
    server.stop().await;
}
