//! Blobs in an S3-compatible bucket: moto's S3 server (from PyPI, installed by
//! `.ci/run`) stands in for AWS, MinIO or Garage.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use appliance::{config::Secret, vault::Sha256Hex};

use crate::{common::*, fake_bot::FakeBot, web::login};

/// moto's server, killed when the test ends.
struct Moto(Child, u16);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts moto's S3 server with bucket `media`; `None` (with a notice) when
/// moto is not installed, a failure in CI.
async fn moto() -> Option<Moto> {
    let ok = Command::new("python3")
        .args(["-c", "import moto.server"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("APPLIANCE_REQUIRE_SHARED_FIXTURES").as_deref() != Ok("1"),
            "moto is required in CI (pip install 'moto[server]')"
        );
        eprintln!("notice: python3 moto is not installed; skipping the S3 test");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("python3")
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let moto = Moto(child, port);
    let c = client();
    let url = format!("http://127.0.0.1:{port}/media");
    for _ in 0..200 {
        if let Ok(r) = c.put(&url).send().await {
            assert!(
                r.status().is_success(),
                "creating the bucket: {}",
                r.status()
            );
            return Some(moto);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("moto did not start");
}

fn settings(port: u16) -> appliance::vault::S3Settings {
    appliance::vault::S3Settings {
        bucket: "media".into(),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        region: "us-east-1".into(),
        access_key_id: "testing".into(),
        secret_access_key: "testing".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bucket_keeps_the_backend_contract() {
    let Some(moto) = moto().await else { return };
    let backend = settings(moto.1).connect().unwrap();
    let dir = tempdir();
    // Above the 5 MiB part size: a multipart upload.
    let big = appliance::vault::backend::PART_BYTES + 100_000;
    appliance::vault::backend::probe(&backend, dir.path(), big)
        .await
        .unwrap();
    appliance::vault::backend::probe(&backend, dir.path(), 3)
        .await
        .unwrap();

    // The same through the command line, with the documented environment.
    let port = moto.1.to_string();
    let endpoint = format!("http://127.0.0.1:{port}");
    let env = [
        ("APPLIANCE_S3_BUCKET", "media"),
        ("APPLIANCE_S3_ENDPOINT", endpoint.as_str()),
        ("APPLIANCE_S3_ACCESS_KEY_ID", "testing"),
        ("APPLIANCE_S3_SECRET_ACCESS_KEY", "testing"),
    ];
    let (ok, out, err) = crate::integrations::appliance_cli(dir.path(), &["vault-probe"], &env);
    assert!(ok, "{out}{err}");
    assert!(out.contains("s3://media"), "{out}");
    let (ok, _, err) = crate::integrations::appliance_cli(
        dir.path(),
        &["vault-probe"],
        &[
            ("APPLIANCE_S3_BUCKET", "no-such-bucket"),
            ("APPLIANCE_S3_ENDPOINT", endpoint.as_str()),
            ("APPLIANCE_S3_ACCESS_KEY_ID", "testing"),
            ("APPLIANCE_S3_SECRET_ACCESS_KEY", "testing"),
        ],
    );
    assert!(!ok, "a missing bucket is an error");
    assert!(err.contains("no-such-bucket"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_move_to_the_bucket_and_are_still_served_with_ranges() {
    let Some(moto) = moto().await else { return };
    let bot = FakeBot::start().await;
    let jpeg = std::fs::read(fixture("images/Landscape_6.jpg")).unwrap();
    bot.add_file("SAAS", "photos/p.jpg", jpeg.clone());
    let dir = tempdir();
    let mut cfg = config(dir.path(), &bot);
    cfg.s3_bucket = Some("media".into());
    cfg.s3_endpoint = Some(format!("http://127.0.0.1:{}", moto.1));
    cfg.s3_access_key_id = Some("testing".into());
    cfg.s3_secret_access_key = Some(Secret::new("testing"));
    let server = TestServer::start(cfg).await;
    server.space_with_chats("family", &[11111111]);
    let alice = crate::web::add_user(&server, "alice", false);
    {
        let c = server.app.db.conn().unwrap();
        let fam = appliance::db::spaces::find(&c, "family").unwrap();
        appliance::db::spaces::grant(&c, fam.id, alice.id, appliance::db::spaces::Role::Member)
            .unwrap();
    }
    assert_eq!(
        server
            .post_update(&renumber(update("photo"), 1).to_string(), Some(SECRET))
            .await,
        200
    );
    server.settle().await;
    let item = &server.media("family")[0];
    let sha = Sha256Hex::parse(item.sha256.as_deref().unwrap()).unwrap();
    assert_eq!(sha.as_str(), sha256(&jpeg));

    // The blob left this disk for the bucket; its thumbnail stayed here.
    assert!(!server.app.vault.has_local(&sha), "the local copy is gone");
    let backend = settings(moto.1).connect().unwrap();
    use appliance::vault::BlobBackend;
    assert_eq!(backend.head(&sha).await.unwrap(), Some(jpeg.len() as u64));
    assert_eq!(
        server.count("SELECT count(*) FROM jobs WHERE kind = 'blob.upload' AND state = 'done'"),
        1
    );
    assert!(server
        .app
        .vault
        .thumb_path(&sha, appliance::vault::ThumbSize::Thumb)
        .exists());

    // Served from the bucket: whole, by range, and 416 past the end.
    let cookie = login(&server, "alice", "password-of-test").await;
    let url = format!("{}/s/family/media/{}/file", server.url, item.id.0);
    let c = client();
    let whole = c.get(&url).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["content-type"], "image/jpeg");
    assert_eq!(whole.bytes().await.unwrap().as_ref(), jpeg.as_slice());
    let part = c
        .get(&url)
        .header("cookie", &cookie)
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 100-199/{}", jpeg.len()).as_str()
    );
    assert_eq!(part.bytes().await.unwrap().as_ref(), &jpeg[100..200]);
    let past = c
        .get(&url)
        .header("cookie", &cookie)
        .header("range", format!("bytes={}-", jpeg.len() + 10))
        .send()
        .await
        .unwrap();
    assert_eq!(past.status(), 416);

    // check finds the blob in the bucket, by size.
    let report = tokio::task::spawn_blocking({
        let app = server.app.clone();
        move || appliance::ops::check(&app, false).unwrap()
    })
    .await
    .unwrap();
    assert!(report.missing_blobs.is_empty(), "{report:?}");
    assert!(report.damaged_blobs.is_empty(), "{report:?}");

    // A blob removed from the bucket behind our back is reported missing.
    backend.delete(&sha).await.unwrap();
    let report = tokio::task::spawn_blocking({
        let app = server.app.clone();
        move || appliance::ops::check(&app, false).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(report.missing_blobs, vec![sha.as_str().to_string()]);
    let gone = c.get(&url).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(gone.status(), 404);
    server.stop().await;
}
