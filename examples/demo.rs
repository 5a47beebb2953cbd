//! See a populated album without a bot: `cargo run --example demo`.
//!
//! Starts the fake Telegram Bot API used by the tests, loaded with the real
//! fixture updates (photo, video, animation, audio, voice, round video,
//! document) and their files, then runs the appliance in polling mode against
//! it with a fresh data directory in `./demo-data`. Log in at the printed URL
//! as `demo` / `demo-password`.

#[path = "../tests/it/common.rs"]
mod common;
#[path = "../tests/it/fake_bot.rs"]
mod fake_bot;

use appliance::{config::TelegramMode, db, web::auth::hash_password, App};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let bot = fake_bot::FakeBot::start().await;
    common::register_fixture_files(&bot);
    bot.push_updates(common::all_fixture_updates());

    let data_dir = std::path::PathBuf::from("demo-data");
    let _ = std::fs::remove_dir_all(&data_dir);
    let mut config = common::config(&data_dir, &bot);
    config.telegram_mode = Some(TelegramMode::Polling);
    config.listen = std::env::var("APPLIANCE_LISTEN")
        .ok()
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| "127.0.0.1:8080".parse().expect("constant address"));
    let listen = config.listen;
    let app = App::open(config)?;
    {
        let c = app.db.conn()?;
        let user = db::users::create(&c, "demo", &hash_password("demo-password")?, true)?;
        let space = db::spaces::create(&c, "family", "The family")?;
        db::spaces::grant(&c, space.id, user.id, db::spaces::Role::Owner)?;
        for chat in [12345, 456, 11111111] {
            db::telegram::bind_chat(&c, chat, space.id)?;
        }
    }
    let listener = tokio::net::TcpListener::bind(listen).await?;
    eprintln!("demo: open http://{listen}/ and log in as demo / demo-password (Ctrl-C to stop)");
    appliance::serve(app, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
