//! The command line: `appliance [--data-dir DIR] [--config FILE] COMMAND`.
//!
//! Raw arguments are parsed by clap here; [`Config::load`] merges them with the
//! file and the environment. Every command except `serve` works directly on
//! the data directory and may run while the server runs (SQLite WAL allows it;
//! jobs it queues are picked up by the server within 2 s).

use std::{io::BufRead, net::SocketAddr, path::PathBuf};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use teloxide::{payloads::SetWebhookSetters, prelude::Requester, types::AllowedUpdate};

use crate::{
    config::{Config, LogFormat, Overrides},
    db::{
        self,
        spaces::{Language, Role},
    },
    import,
    web::auth,
    App,
};

/// One binary that keeps everything your chats bring in.
#[derive(Debug, Parser)]
#[command(name = "appliance", version, about)]
pub struct Cli {
    /// Data directory (database, vault, index).
    #[arg(long, env = "APPLIANCE_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// TOML configuration file (see examples/appliance.toml).
    #[arg(long, env = "APPLIANCE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_enum, global = true)]
    pub log_format: Option<LogFormat>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: web UI, webhooks, Telegram polling, background jobs.
    Serve {
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long, env = "APPLIANCE_LISTEN")]
        listen: Option<SocketAddr>,
    },
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage spaces (a family or a studio) and their members.
    #[command(subcommand)]
    Space(SpaceCommand),
    /// Bind chats to spaces.
    #[command(subcommand)]
    Source(SourceCommand),
    /// Inspect the album.
    #[command(subcommand)]
    Media(MediaCommand),
    /// Talk to the Bot API with the configured token.
    #[command(subcommand)]
    Telegram(TelegramCommand),
    /// Search messages and media.
    Search {
        /// The query: words, "phrases", -word, kind:, from:, in:, before:, after:, has:caption.
        query: String,
        /// Only this space.
        #[arg(long)]
        space: Option<String>,
        /// Number of hits.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print one JSON array of hits.
        #[arg(long)]
        json: bool,
    },
    /// Rebuild the search index from the database.
    Reindex {
        /// Only this space.
        #[arg(long)]
        space: Option<String>,
    },
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Import history from other apps (idempotent: a second run imports nothing).
    #[command(subcommand)]
    Import(ImportCommand),
    /// Outbound notifications of a space (webhook, Telegram, Discord, Slack, email).
    #[command(subcommand)]
    Integration(integrations::IntegrationCommand),
    /// Secrets stored in the database.
    #[command(subcommand)]
    Secrets(integrations::SecretsCommand),
    /// WhatsApp Cloud and Instagram accounts that deliver to a space.
    #[command(subcommand)]
    Meta(integrations::MetaCommand),
    /// Posts scheduled to a bound Telegram chat.
    #[command(subcommand)]
    Post(integrations::PostCommand),
    /// Copies a consistent snapshot of the database and the vault into DEST
    /// (safe while the server runs; incremental when DEST holds an earlier backup).
    Backup {
        /// Backup directory.
        dest: std::path::PathBuf,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Restores a backup into an empty data directory (`--data-dir`).
    Restore {
        /// Backup directory.
        src: std::path::PathBuf,
    },
    /// Checks the database, the vault and the index; exits 1 when something is wrong.
    Check {
        /// Fix what can be fixed: re-queue thumbnails, move orphans to lost+found, reindex.
        #[arg(long)]
        repair: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Writes, reads (whole and by range), lists and deletes a probe blob in
    /// the configured blob backend (the S3 bucket when `s3_bucket` is set);
    /// exits 1 with the failing step.
    VaultProbe,
}

/// `appliance import ...`
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// A Telegram Desktop "Export chat history" in JSON: its folder, its result.json, or a zip.
    TelegramExport(ImportArgs),
    /// A WhatsApp "Export chat": the .zip, or the chat .txt with its media beside it.
    Whatsapp(ImportArgs),
    /// A folder tree of photos and videos.
    Dir(ImportArgs),
}

/// Arguments of every import.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The export (folder, file or zip).
    pub path: std::path::PathBuf,
    /// The space to import into.
    #[arg(long)]
    pub space: String,
    /// Print the summary as one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
}

/// `appliance token ...`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a bearer token for a user (printed once; only its hash is kept).
    Create {
        /// User name.
        user: String,
        /// What the token is for.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Print `{"token": "..."}`.
        #[arg(long)]
        json: bool,
    },
}

/// `appliance user ...`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from the first line of standard input.
    Add {
        /// Login name.
        name: String,
        /// Make the user an admin (sees pending chats and all jobs).
        #[arg(long)]
        admin: bool,
        /// Read the password from standard input (required: never on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Change a user's email address (for inbox digests) and digest preference.
    Set {
        /// Login name.
        name: String,
        /// Email address ("" removes it).
        #[arg(long)]
        email: Option<String>,
        /// Digests when away: on or off.
        #[arg(long, value_parser = clap::builder::BoolishValueParser::new())]
        digest: Option<bool>,
    },
}

/// `appliance space ...`
#[derive(Debug, Subcommand)]
pub enum SpaceCommand {
    /// Create a space.
    Add {
        /// Short name used in URLs: a-z, 0-9, '-'.
        slug: String,
        /// Display name (default: the slug).
        #[arg(long)]
        name: Option<String>,
        /// Language of its messages, for search stemming.
        #[arg(long, value_enum, default_value_t = Language::Both)]
        language: Language,
    },
    /// Give a user a role in a space.
    Grant {
        /// Space slug.
        slug: String,
        /// User name.
        user: String,
        /// Role.
        #[arg(long, value_enum, default_value_t = Role::Member)]
        role: Role,
    },
    /// List spaces.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `appliance source ...`
#[derive(Debug, Subcommand)]
pub enum SourceCommand {
    /// Bind a chat to a space.
    Add {
        /// Kind of source.
        #[arg(value_enum)]
        kind: SourceKind,
        /// Space slug.
        #[arg(long)]
        space: String,
        /// Telegram chat id (negative for groups; see `appliance source list`).
        #[arg(long, allow_hyphen_values = true)]
        chat_id: i64,
    },
    /// List the chats the bot has heard from, pending ones first.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Kinds of sources.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SourceKind {
    /// A Telegram chat.
    Telegram,
}

/// `appliance media ...`
#[derive(Debug, Subcommand)]
pub enum MediaCommand {
    /// List album items, newest first.
    List {
        /// Only this space.
        #[arg(long)]
        space: Option<String>,
        /// Print one JSON array.
        #[arg(long)]
        json: bool,
    },
}

/// `appliance telegram ...`
#[derive(Debug, Subcommand)]
pub enum TelegramCommand {
    /// Show the bot (`getMe`).
    Me,
    /// Register URL as the webhook (`setWebhook`) with the configured secret.
    SetWebhook {
        /// Public HTTPS URL ending in /hooks/telegram.
        url: url::Url,
    },
    /// Remove the webhook (`deleteWebhook`), e.g. to switch to polling.
    DeleteWebhook,
}

impl Cli {
    /// Loads the configuration with this command line's overrides.
    pub fn load_config(&self) -> anyhow::Result<Config> {
        let listen = match &self.command {
            Command::Serve { listen } => *listen,
            _ => None,
        };
        Ok(Config::load(
            self.config.as_deref(),
            &Overrides {
                data_dir: self.data_dir.clone(),
                listen,
                log_format: self.log_format,
            },
        )?)
    }
}

mod integrations;

/// The space named on the command line, or an error naming it.
fn named_space(c: &rusqlite::Connection, slug: &str) -> db::DbResult<db::spaces::Space> {
    db::spaces::find(c, slug).map_err(|_| db::DbError::Invalid(format!("no space {slug:?}")))
}

/// The user named on the command line, or an error naming them.
fn named_user(c: &rusqlite::Connection, name: &str) -> db::DbResult<db::users::User> {
    db::users::find(c, name).map_err(|_| db::DbError::Invalid(format!("no user {name:?}")))
}

/// Runs a command other than `serve`.
pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    if let Command::Restore { src } = &command {
        // Before App::open, which would create a database in the data directory.
        let s = crate::ops::restore(src, &config.data_dir, config.s3_bucket.is_some())?;
        println!(
            "restored {} blob(s) ({} bytes) and the database into {}; the search index is rebuilt at the next start",
            s.blobs_copied,
            s.bytes_copied,
            config.data_dir.display()
        );
        return Ok(());
    }
    let app = App::open(config)?;
    match command {
        Command::Serve { .. } => unreachable!("serve is handled by main"),
        Command::User(UserCommand::Add { name, admin, .. }) => {
            let mut password = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut password)
                .context("reading the password from stdin")?;
            let password = password.trim_end_matches(['\n', '\r']).to_string();
            if password.chars().count() < 8 {
                bail!("the password must have at least 8 characters");
            }
            let hash =
                tokio::task::spawn_blocking(move || auth::hash_password(&password)).await??;
            let user = app
                .db
                .run(move |c| db::users::create(c, &name, &hash, admin))
                .await?;
            println!(
                "created user {}{}",
                user.name,
                if admin { " (admin)" } else { "" }
            );
        }
        Command::User(UserCommand::Set {
            name,
            email,
            digest,
        }) => {
            app.db
                .run(move |c| {
                    let u = named_user(c, &name)?;
                    db::users::set_email_prefs(c, u.id, email.as_deref(), digest)
                })
                .await?;
            println!("saved");
        }
        Command::Space(SpaceCommand::Add {
            slug,
            name,
            language,
        }) => {
            let name = name.unwrap_or_else(|| slug.clone());
            let s = app
                .db
                .run(move |c| {
                    let s = db::spaces::create(c, &slug, &name)?;
                    db::spaces::set_language(c, s.id, language)?;
                    Ok(s)
                })
                .await?;
            println!("created space {} ({})", s.slug, s.name);
        }
        Command::Space(SpaceCommand::Grant { slug, user, role }) => {
            let (s, u) = (slug.clone(), user.clone());
            app.db
                .run(move |c| {
                    let space = named_space(c, &s)?;
                    let user = named_user(c, &u)?;
                    db::spaces::grant(c, space.id, user.id, role)
                })
                .await?;
            println!("{user} is now {} of {slug}", role.as_str());
        }
        Command::Space(SpaceCommand::List { json }) => {
            let spaces = app.db.run(|c| db::spaces::list_all(c)).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&spaces)?);
            } else {
                for s in spaces {
                    println!("{}\t{}", s.slug, s.name);
                }
            }
        }
        Command::Source(SourceCommand::Add {
            kind: SourceKind::Telegram,
            space,
            chat_id,
        }) => {
            let s = space.clone();
            let requeued = app
                .db
                .run(move |c| {
                    let space = named_space(c, &s)?;
                    let tx = db::write_tx(c)?;
                    let n = db::telegram::bind_chat(&tx, chat_id, space.id)?;
                    tx.commit()?;
                    Ok(n)
                })
                .await?;
            println!(
                "Telegram chat {chat_id} is bound to {space}; {requeued} waiting update(s) queued"
            );
        }
        Command::Source(SourceCommand::List { json }) => {
            let chats = app.db.run(|c| db::telegram::list_chats(c)).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&chats)?);
            } else {
                for c in chats {
                    println!(
                        "{}\t{}\t{}\t{}",
                        c.chat_id,
                        c.kind,
                        c.space.as_deref().unwrap_or("(pending)"),
                        c.title
                    );
                }
            }
        }
        Command::Media(MediaCommand::List { space, json }) => {
            let items = app
                .db
                .run(move |c| {
                    let spaces = match &space {
                        Some(s) => vec![named_space(c, s)?],
                        None => db::spaces::list_all(c)?,
                    };
                    let mut all = Vec::new();
                    for s in spaces {
                        all.extend(db::media::list_all(c, &db::spaces::operator_scope(s))?);
                    }
                    Ok(all)
                })
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&items)?);
            } else {
                for m in items {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        m.id.0,
                        m.space,
                        m.kind,
                        m.received_at,
                        m.caption.as_deref().unwrap_or("")
                    );
                }
            }
        }
        Command::Search {
            query,
            space,
            limit,
            json,
        } => {
            let scopes = app
                .db
                .run(move |c| {
                    let spaces = match &space {
                        Some(s) => vec![named_space(c, s)?],
                        None => db::spaces::list_all(c)?,
                    };
                    Ok(spaces
                        .into_iter()
                        .map(db::spaces::operator_scope)
                        .collect::<Vec<_>>())
                })
                .await?;
            let page = app.search.search(&scopes, &query, limit, None)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&page.hits)?);
            } else {
                for h in page.hits {
                    println!(
                        "{:.2}\t{}\t{}\t{}\t{}",
                        h.score, h.space, h.kind, h.received_at, h.snippet
                    );
                }
            }
        }
        Command::Reindex { space } => {
            let space_id = match space {
                Some(s) => Some(app.db.run(move |c| named_space(c, &s)).await?.id),
                None => None,
            };
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} documents ({per_sec}, {eta} left)",
                )
                .expect("constant template"),
            );
            let app2 = app.clone();
            let b = bar.clone();
            let result = tokio::task::spawn_blocking(move || {
                crate::search::indexer::rebuild(&app2, space_id, |done, total| {
                    b.set_length(total);
                    b.set_position(done);
                })
            })
            .await?;
            bar.finish_and_clear();
            match result {
                Ok(n) => println!("reindexed {n} documents"),
                Err(e) if matches!(e.downcast_ref(), Some(crate::search::SearchError::Locked)) => {
                    // The running server holds the index: let it do the work.
                    let n = app
                        .db
                        .run(move |c| {
                            let tx = db::write_tx(c)?;
                            let n = db::search::mark_all_dirty(&tx, space_id)?;
                            tx.commit()?;
                            Ok(n)
                        })
                        .await?;
                    println!(
                        "the server is running: it will reindex {n} documents in the background"
                    );
                }
                Err(e) => return Err(e),
            }
        }
        Command::Import(cmd) => {
            let (what, args) = match &cmd {
                ImportCommand::TelegramExport(a) => ("telegram export", a),
                ImportCommand::Whatsapp(a) => ("whatsapp export", a),
                ImportCommand::Dir(a) => ("folder", a),
            };
            let scope = import::scope(&app, &args.space)?;
            let path = args.path.clone();
            let json = args.json;
            let app2 = app.clone();
            let summary =
                tokio::task::spawn_blocking(move || -> anyhow::Result<import::Summary> {
                    let mut importer = import::Importer::new(app2, scope, what);
                    let result = match cmd {
                        ImportCommand::Dir(_) => {
                            anyhow::ensure!(path.is_dir(), "{} is not a folder", path.display());
                            import::dir::import(&mut importer, &path)
                        }
                        ImportCommand::TelegramExport(_) => {
                            let root = if path.is_file()
                                && path.extension().is_some_and(|e| e == "json")
                            {
                                path.parent()
                                    .map(std::path::Path::to_path_buf)
                                    .unwrap_or_default()
                            } else {
                                path.clone()
                            };
                            let mut export = import::source::Export::open(&root)?;
                            import::telegram_export::import(&mut importer, &mut export)
                        }
                        ImportCommand::Whatsapp(_) => {
                            let is_txt = path
                                .extension()
                                .is_some_and(|e| e.eq_ignore_ascii_case("txt"));
                            if is_txt {
                                let dir = path
                                    .parent()
                                    .filter(|p| !p.as_os_str().is_empty())
                                    .unwrap_or(std::path::Path::new("."));
                                let name =
                                    path.file_name().map(|n| n.to_string_lossy().into_owned());
                                let mut export = import::source::Export::open(dir)?;
                                import::whatsapp::import(
                                    &mut importer,
                                    &mut export,
                                    name.as_deref(),
                                )
                            } else {
                                let mut export = import::source::Export::open(&path)?;
                                import::whatsapp::import(&mut importer, &mut export, None)
                            }
                        }
                    };
                    let summary = importer.finish();
                    result.map(|_| summary)
                })
                .await??;
            let thumbs = crate::jobs::drain(&app, crate::jobs::kind::THUMBNAIL).await;
            tracing::debug!(thumbs, "thumbnails made");
            if json {
                println!("{}", serde_json::to_string(&summary)?);
            } else {
                println!("{summary}");
                if summary.messages == 0 && summary.media == 0 {
                    println!("nothing new: everything in this export was already imported");
                }
            }
        }
        Command::Token(TokenCommand::Create { user, name, json }) => {
            let token = auth::random_token();
            let hash = auth::token_hash(&token);
            app.db
                .run(move |c| {
                    let u = named_user(c, &user)?;
                    db::users::create_token(c, &hash, u.id, &name)
                })
                .await?;
            if json {
                println!("{}", serde_json::json!({ "token": token }));
            } else {
                println!("{token}");
            }
        }
        Command::Telegram(cmd) => {
            let tg = app.telegram.as_ref().context(
                "no bot token: set APPLIANCE_TELEGRAM_TOKEN (or telegram_token in the config)",
            )?;
            let explain = |e: teloxide::RequestError| anyhow::anyhow!(crate::telegram::explain(&e));
            match cmd {
                TelegramCommand::Me => {
                    let me = tg.api.get_me().await.map_err(explain)?;
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&serde_json::json!({
                            "id": me.user.id.0,
                            "username": me.user.username,
                            "first_name": me.user.first_name,
                            "can_join_groups": me.can_join_groups,
                            "can_read_all_group_messages": me.can_read_all_group_messages,
                        }))?
                    );
                    if !me.can_read_all_group_messages {
                        eprintln!("note: privacy mode is on, so in groups the bot only sees commands and replies; \
                                   turn it off with @BotFather (/setprivacy) to keep every photo");
                    }
                }
                TelegramCommand::SetWebhook { url } => {
                    let secret = app
                        .config
                        .telegram_webhook_secret
                        .as_ref()
                        .context("set APPLIANCE_TELEGRAM_WEBHOOK_SECRET first: the webhook is refused without it")?;
                    tg.api
                        .set_webhook(url.clone())
                        .secret_token(secret.expose().to_string())
                        .allowed_updates(vec![
                            AllowedUpdate::Message,
                            AllowedUpdate::EditedMessage,
                            AllowedUpdate::ChannelPost,
                            AllowedUpdate::EditedChannelPost,
                        ])
                        .await
                        .map_err(explain)?;
                    println!(
                        "webhook set to {url}; run the server with APPLIANCE_TELEGRAM_MODE=webhook"
                    );
                }
                TelegramCommand::DeleteWebhook => {
                    tg.api.delete_webhook().await.map_err(explain)?;
                    println!("webhook deleted; the server can now poll (APPLIANCE_TELEGRAM_MODE=polling)");
                }
            }
        }
        Command::Integration(cmd) => integrations::integration(&app, cmd).await?,
        Command::Secrets(cmd) => integrations::secrets(&app, cmd).await?,
        Command::Meta(cmd) => integrations::meta(&app, cmd).await?,
        Command::Post(cmd) => integrations::post(&app, cmd).await?,
        Command::Restore { .. } => unreachable!("handled above"),
        Command::Backup { dest, json } => {
            let a = app.clone();
            let s = tokio::task::spawn_blocking(move || crate::ops::backup(&a, &dest)).await??;
            if json {
                println!("{}", serde_json::to_string(&s)?);
            } else {
                println!(
                    "backup done: database {} bytes; {} of {} blob(s) copied ({} bytes), {} thumbnail(s), {} in the bucket",
                    s.database_bytes, s.blobs_copied, s.blobs, s.bytes_copied, s.thumbnails_copied, s.blobs_in_bucket
                );
            }
        }
        Command::VaultProbe => {
            let backend = app.vault.backend();
            crate::vault::backend::probe(
                backend.as_ref(),
                &app.vault.root().join("tmp"),
                crate::vault::backend::PART_BYTES + 1024,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", backend.describe()))?;
            println!(
                "{}: write, read, range, list and delete work",
                backend.describe()
            );
        }
        Command::Check { repair, json } => {
            let a = app.clone();
            let r = tokio::task::spawn_blocking(move || crate::ops::check(&a, repair)).await??;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                for (what, items) in [
                    ("database", &r.database),
                    ("missing blobs", &r.missing_blobs),
                    ("damaged blobs", &r.damaged_blobs),
                    ("orphan files", &r.orphan_blobs),
                    ("temp files", &r.temp_files),
                    ("missing thumbnails", &r.missing_thumbnails),
                ] {
                    println!("{what}: {}", items.len());
                    for i in items.iter().take(20) {
                        println!("  {i}");
                    }
                }
                println!("index behind by: {}", r.index_behind);
                for done in &r.repaired {
                    println!("repaired: {done}");
                }
            }
            let remaining = if repair {
                r.unrepairable()
            } else {
                r.problems()
            };
            if remaining > 0 {
                std::process::exit(1);
            }
        }
    }
    Ok(())
}
