//! Albums (collections), favourites and share links: who may do what, and a
//! share link that opens one album read-only until it is revoked or expires.

use appliance::db::spaces::Role;

use crate::{
    common::*,
    fake_bot::FakeBot,
    web::{add_member, csrf_of, login},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn albums_favourites_and_share_links() {
    let bot = FakeBot::start().await;
    let jpeg = std::fs::read(fixture("images/Landscape_6.jpg")).unwrap();
    bot.add_file("SAAS", "photos/p.jpg", jpeg.clone());
    let dir = tempdir();
    let server = TestServer::start(config(dir.path(), &bot)).await;
    server.space_with_chats("family", &[11111111]);
    server.space_with_chats("studio", &[]);
    add_member(&server, "alice", "family", Role::Member);
    add_member(&server, "carol", "family", Role::Viewer);
    let bob = add_member(&server, "bob", "studio", Role::Owner);
    assert_eq!(
        server
            .post_update(&renumber(update("photo"), 1).to_string(), Some(SECRET))
            .await,
        200
    );
    server.settle().await;
    let media = server.media("family")[0].id.0;
    let c = client();
    let post = |cookie: &str, path: &str, form: &[(&str, &str)]| {
        let mut form: Vec<(String, String)> = form
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        form.push(("csrf".into(), csrf_of(cookie)));
        c.post(format!("{}{path}", server.url))
            .header("cookie", cookie)
            .form(&form)
            .send()
    };
    let get = |cookie: Option<&str>, path: &str| {
        let mut r = c.get(format!("{}{path}", server.url));
        if let Some(ck) = cookie {
            r = r.header("cookie", ck);
        }
        r.send()
    };

    // Alice (member) makes an album and puts the photo in it.
    let alice_c = login(&server, "alice", "password-of-test").await;
    let r = post(&alice_c, "/s/family/collections", &[("name", "Été 2026")])
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let album_url = r.headers()["location"].to_str().unwrap().to_string();
    let album: i64 = album_url.rsplit('/').next().unwrap().parse().unwrap();
    let r = post(
        &alice_c,
        &format!("/s/family/media/{media}/collect"),
        &[("collection", &album.to_string())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    let page = get(Some(&alice_c), &album_url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Été 2026"), "{page}");
    assert!(page.contains(&format!("/s/family/media/{media}/thumb/360")));

    // Bob, of another space, sees nothing and cannot add to it.
    let bob_c = login(&server, "bob", "password-of-test").await;
    assert_eq!(get(Some(&bob_c), &album_url).await.unwrap().status(), 404);
    let r = post(
        &bob_c,
        &format!("/s/family/media/{media}/collect"),
        &[("collection", &album.to_string())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 404);
    // An album of another space cannot receive this space's photo, even by its owner.
    let bob_album = {
        let conn = server.app.db.conn().unwrap();
        let s = appliance::db::spaces::find(&conn, "studio").unwrap();
        appliance::db::collections::create(
            &conn,
            &appliance::db::spaces::operator_scope(s),
            "Studio",
            bob.id,
        )
        .unwrap()
    };
    let r = post(
        &alice_c,
        &format!("/s/family/media/{media}/collect"),
        &[("collection", &bob_album.to_string())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 404);

    // Carol (viewer) keeps favourites but cannot make albums.
    let carol_c = login(&server, "carol", "password-of-test").await;
    let r = post(&carol_c, "/s/family/collections", &[("name", "Mine")])
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = post(&carol_c, &format!("/s/family/media/{media}/favourite"), &[])
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let favs = get(Some(&carol_c), "/s/family/favourites")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(favs.contains(&format!("/s/family/media/{media}/thumb/360")));
    let alice_favs = get(Some(&alice_c), "/s/family/favourites")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !alice_favs.contains(&format!("/s/family/media/{media}/thumb/360")),
        "favourites are per person"
    );

    // A share link opens the album, read only, without an account.
    let page = post(
        &alice_c,
        &format!("/s/family/collections/{album}/share"),
        &[("days", "7")],
    )
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let link = page
        .split('"')
        .find(|s| s.starts_with("/share/"))
        .expect("the new link")
        .to_string();
    let shared = get(None, &link).await.unwrap();
    assert_eq!(shared.status(), 200);
    assert_eq!(shared.headers()["x-robots-tag"], "noindex, nofollow");
    let html = shared.text().await.unwrap();
    assert!(html.contains("Été 2026"));
    let thumb = get(None, &format!("{link}/media/{media}/thumb/360"))
        .await
        .unwrap();
    assert_eq!(thumb.status(), 200);
    let file = get(None, &format!("{link}/media/{media}/file"))
        .await
        .unwrap();
    assert_eq!(file.bytes().await.unwrap().as_ref(), jpeg.as_slice());
    // Only that album's items: another photo of the space is not reachable.
    bot.add_file(
        "OTHER",
        "photos/o.jpg",
        std::fs::read(fixture("images/hopper.jpg")).unwrap(),
    );
    assert_eq!(
        server
            .post_update(
                &renumber(update("photo"), 2)
                    .to_string()
                    .replace("SAAS", "OTHER"),
                Some(SECRET)
            )
            .await,
        200
    );
    server.settle().await;
    let other = server
        .media("family")
        .iter()
        .map(|m| m.id.0)
        .find(|id| *id != media);
    let other = other.expect("a second photo");
    let r = get(None, &format!("{link}/media/{other}/file"))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(get(None, "/share/not-a-token").await.unwrap().status(), 404);

    // Revoked: the link opens nothing any more.
    let share_id: i64 = server.count("SELECT max(id) FROM share_links");
    let r = post(
        &alice_c,
        &format!("/s/family/collections/{album}/shares/{share_id}/revoke"),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(get(None, &link).await.unwrap().status(), 404);
    assert_eq!(
        get(None, &format!("{link}/media/{media}/file"))
            .await
            .unwrap()
            .status(),
        404
    );

    // Expired: the same.
    let page = post(
        &alice_c,
        &format!("/s/family/collections/{album}/share"),
        &[("days", "1")],
    )
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let link = page
        .split('"')
        .find(|s| s.starts_with("/share/"))
        .unwrap()
        .to_string();
    assert_eq!(get(None, &link).await.unwrap().status(), 200);
    server
        .app
        .db
        .conn()
        .unwrap()
        .execute("UPDATE share_links SET expires_at = 1", [])
        .unwrap();
    assert_eq!(get(None, &link).await.unwrap().status(), 404);
    server.stop().await;
}
