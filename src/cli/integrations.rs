//! `appliance integration …`, `appliance secrets rotate`, `appliance meta bind`.

use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Subcommand, ValueEnum};

use super::named_space;
use crate::{db, notify, App};

/// Integration kinds on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    /// A URL that receives Standard Webhooks (signed JSON).
    Webhook,
    /// A Telegram chat, through a bot of yours.
    Telegram,
    /// A Discord incoming webhook.
    Discord,
    /// A Slack incoming webhook.
    Slack,
    /// An email address (SMTP).
    Email,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Webhook => "webhook",
            Kind::Telegram => "telegram",
            Kind::Discord => "discord",
            Kind::Slack => "slack",
            Kind::Email => "email",
        }
    }
}

/// `appliance integration …`
#[derive(Debug, Subcommand)]
pub enum IntegrationCommand {
    /// Adds an integration; prints its id.
    Add {
        /// webhook, telegram, discord, slack or email.
        kind: Kind,
        /// The space whose events it receives.
        #[arg(long)]
        space: String,
        /// webhook, discord, slack: the URL to POST to.
        #[arg(long)]
        url: Option<String>,
        /// webhook: the signing secret (`whsec_` + base64); generated when absent.
        #[arg(long)]
        secret: Option<String>,
        /// telegram: the chat id to post to (groups are negative).
        #[arg(long, allow_hyphen_values = true)]
        chat: Option<i64>,
        /// telegram: the bot token (from @BotFather).
        #[arg(long)]
        token: Option<String>,
        /// email: the recipient.
        #[arg(long)]
        to: Option<String>,
        /// email: an SMTP URL of its own (default: the server's smtp_url).
        #[arg(long)]
        smtp_url: Option<String>,
        /// Comma-separated events: media.added, message.received, ingest.failed, system.status, stats.daily.
        #[arg(long)]
        events: String,
        /// Print `{"id", "secret"?}` as JSON (the generated webhook secret is shown once).
        #[arg(long)]
        json: bool,
    },
    /// Lists the integrations of a space (secrets masked).
    List {
        /// The space.
        #[arg(long)]
        space: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Sends a test event now; exits non-zero with the target's error.
    Test {
        /// Integration id.
        id: i64,
    },
    /// Shows the latest deliveries of an integration.
    Log {
        /// Integration id.
        id: i64,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Deletes an integration and its delivery log.
    Delete {
        /// Integration id.
        id: i64,
    },
}

/// `appliance secrets …`
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Re-encrypts every stored secret under a new key. With the key in
    /// DATA_DIR/secret.key, a new file replaces it; with APPLIANCE_SECRET_KEY,
    /// give the new key with --new-key and update the environment after.
    Rotate {
        /// The new key (64 hex digits), required when the key comes from the environment.
        #[arg(long)]
        new_key: Option<String>,
    },
}

/// `appliance meta …`
#[derive(Debug, Subcommand)]
pub enum MetaCommand {
    /// Routes a WhatsApp phone number id or an Instagram account id to a studio's inbox.
    Bind {
        /// The studio.
        #[arg(long)]
        space: String,
        /// WhatsApp Cloud API phone number id (`metadata.phone_number_id`).
        #[arg(long, conflicts_with = "instagram")]
        whatsapp: Option<String>,
        /// Instagram account id (the webhook's `entry[].id`).
        #[arg(long)]
        instagram: Option<String>,
    },
}

/// `appliance post …`
#[derive(Debug, Subcommand)]
pub enum PostCommand {
    /// Schedules a text or an album photo; prints the post's id.
    Schedule {
        /// The space.
        #[arg(long)]
        space: String,
        /// A Telegram chat bound to the space.
        #[arg(long, allow_hyphen_values = true)]
        chat: i64,
        /// When: `YYYY-MM-DD HH:MM` in the space's time zone, or RFC 3339.
        #[arg(long)]
        at: String,
        /// The text (the photo's caption when --media is given).
        #[arg(long, default_value = "")]
        text: String,
        /// An album photo's id (`appliance media list`).
        #[arg(long)]
        media: Option<i64>,
    },
    /// Lists a space's posts.
    List {
        /// The space.
        #[arg(long)]
        space: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Cancels a post not yet sent.
    Cancel {
        /// Post id.
        id: i64,
    },
    /// Sets the space's time zone (IANA name, e.g. Europe/Paris).
    TimeZone {
        /// The space.
        #[arg(long)]
        space: String,
        /// IANA time zone name.
        tz: String,
    },
}

/// Runs `appliance post …`.
pub async fn post(app: &Arc<App>, cmd: PostCommand) -> anyhow::Result<()> {
    match cmd {
        PostCommand::Schedule {
            space,
            chat,
            at,
            text,
            media,
        } => {
            let (scope, tz) = app
                .db
                .run(move |c| {
                    let scope = db::spaces::operator_scope(named_space(c, &space)?);
                    let tz = db::autoreply::time_zone(c, scope.id())?;
                    Ok((scope, tz))
                })
                .await?;
            let run_at = crate::posts::parse_time(&at, &tz).map_err(anyhow::Error::msg)?;
            let id = crate::posts::schedule(app, scope, chat, text, media, run_at).await?;
            println!("{id}");
        }
        PostCommand::List { space, json } => {
            let posts = app
                .db
                .run(move |c| {
                    let scope = db::spaces::operator_scope(named_space(c, &space)?);
                    db::posts::list(c, &scope)
                })
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&posts)?);
            } else {
                for p in posts {
                    let when = chrono::DateTime::from_timestamp(p.run_at, 0)
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_default();
                    println!("{}	{when}	{}	{}	{}", p.id, p.chat_id, p.state, p.text);
                }
            }
        }
        PostCommand::Cancel { id } => {
            app.db
                .run(move |c| {
                    let space = db::posts::space_of(c, id)?;
                    let scope = db::spaces::operator_scope(db::spaces::get(c, space)?);
                    db::posts::cancel(c, &scope, id)
                })
                .await?;
            println!("cancelled");
        }
        PostCommand::TimeZone { space, tz } => {
            app.db
                .run(move |c| {
                    let scope = db::spaces::operator_scope(named_space(c, &space)?);
                    db::autoreply::set_time_zone(c, &scope, &tz)
                })
                .await?;
            println!("time zone set");
        }
    }
    Ok(())
}

fn required(v: Option<String>, what: &str, kind: Kind) -> anyhow::Result<String> {
    v.with_context(|| format!("a {} integration needs --{what}", kind.as_str()))
}

fn check_url(url: &str) -> anyhow::Result<()> {
    let u = url::Url::parse(url).with_context(|| format!("{url:?} is not a URL"))?;
    if !matches!(u.scheme(), "http" | "https") {
        bail!("the URL must be http:// or https://");
    }
    Ok(())
}

/// Runs `appliance integration …`.
pub async fn integration(app: &Arc<App>, cmd: IntegrationCommand) -> anyhow::Result<()> {
    match cmd {
        IntegrationCommand::Add {
            kind,
            space,
            url,
            secret,
            chat,
            token,
            to,
            smtp_url,
            events,
            json,
        } => {
            let mut shown_secret = None;
            let (target, secret) = match kind {
                Kind::Webhook => {
                    let url = required(url, "url", kind)?;
                    check_url(&url)?;
                    let secret = match secret {
                        Some(s) => s,
                        None => {
                            let s = notify::new_webhook_secret();
                            shown_secret = Some(s.clone());
                            s
                        }
                    };
                    notify::webhook_key(&secret).map_err(anyhow::Error::msg)?;
                    (url, Some(secret))
                }
                Kind::Discord | Kind::Slack => {
                    let url = required(url, "url", kind)?;
                    check_url(&url)?;
                    (url, None)
                }
                Kind::Telegram => {
                    let chat = chat.context("a telegram integration needs --chat")?;
                    (chat.to_string(), Some(required(token, "token", kind)?))
                }
                Kind::Email => (required(to, "to", kind)?, smtp_url),
            };
            let sealed = secret.map(|s| app.secrets.seal(&s));
            let id = app
                .db
                .run(move |c| {
                    let scope = db::spaces::operator_scope(named_space(c, &space)?);
                    db::integrations::create(
                        c,
                        &scope,
                        kind.as_str(),
                        &target,
                        sealed.as_deref(),
                        &events,
                    )
                })
                .await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "id": id, "secret": shown_secret })
                );
            } else {
                println!("{id}");
                if let Some(s) = shown_secret {
                    eprintln!("signing secret (shown once): {s}");
                }
            }
        }
        IntegrationCommand::List { space, json } => {
            let list = app
                .db
                .run(move |c| {
                    let scope = db::spaces::operator_scope(named_space(c, &space)?);
                    db::integrations::list(c, &scope)
                })
                .await?;
            let rows: Vec<serde_json::Value> = list
                .iter()
                .map(|i| {
                    let mut v = serde_json::to_value(i).expect("serializable");
                    v["secret"] = match &i.secret_sealed {
                        Some(s) => app
                            .secrets
                            .open(s)
                            .map_or_else(|_| "(unreadable)".into(), |p| crate::secrets::mask(&p))
                            .into(),
                        None => serde_json::Value::Null,
                    };
                    v
                })
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for (i, v) in list.iter().zip(&rows) {
                    println!(
                        "{}\t{}\t{}\t{}\t{}{}",
                        i.id,
                        i.kind,
                        i.target,
                        i.events.join(","),
                        v["secret"].as_str().unwrap_or("-"),
                        if i.enabled { "" } else { "\tpaused" }
                    );
                }
            }
        }
        IntegrationCommand::Test { id } => {
            let integration = app
                .db
                .run(move |c| db::integrations::get_unscoped(c, id))
                .await
                .map_err(|_| anyhow::anyhow!("no integration {id}"))?;
            notify::test(app, integration)
                .await
                .map_err(|e| anyhow::anyhow!("delivery failed: {e}"))?;
            println!("delivered");
        }
        IntegrationCommand::Log { id, limit } => {
            let rows = app
                .db
                .run(move |c| {
                    let space = db::integrations::space_of(c, id)?;
                    let scope = db::spaces::operator_scope(db::spaces::get(c, space)?);
                    db::integrations::deliveries(c, &scope, id, limit)
                })
                .await?;
            for d in rows {
                println!(
                    "{}\t{}\t{}\t{} attempt(s)\t{}",
                    d.event_id,
                    d.event_type,
                    d.state,
                    d.attempts,
                    d.last_error.unwrap_or_default()
                );
            }
        }
        IntegrationCommand::Delete { id } => {
            app.db
                .run(move |c| {
                    let space = db::integrations::space_of(c, id)?;
                    let scope = db::spaces::operator_scope(db::spaces::get(c, space)?);
                    db::integrations::delete(c, &scope, id)
                })
                .await?;
            println!("deleted");
        }
    }
    Ok(())
}

/// Runs `appliance secrets …`.
pub async fn secrets(app: &Arc<App>, cmd: SecretsCommand) -> anyhow::Result<()> {
    match cmd {
        SecretsCommand::Rotate { new_key } => {
            if app.config.secret_key.is_some() && new_key.is_none() {
                bail!("the key comes from APPLIANCE_SECRET_KEY: give the new one with --new-key (64 hex digits), then update the environment");
            }
            let data_dir = app.config.data_dir.clone();
            let current = app.secrets.clone();
            let db = app.db.clone();
            let n = tokio::task::spawn_blocking(move || {
                let mut c = db.conn()?;
                crate::secrets::rotate(&data_dir, &current, new_key.as_deref(), &mut c)
                    .map_err(anyhow::Error::from)
            })
            .await??;
            println!("re-encrypted {n} secret(s) under the new key");
        }
    }
    Ok(())
}

/// Runs `appliance meta …`.
pub async fn meta(app: &Arc<App>, cmd: MetaCommand) -> anyhow::Result<()> {
    match cmd {
        MetaCommand::Bind {
            space,
            whatsapp,
            instagram,
        } => {
            let (kind, account) = match (whatsapp, instagram) {
                (Some(w), None) => ("whatsapp", w),
                (None, Some(i)) => ("instagram", i),
                _ => bail!("give --whatsapp PHONE_NUMBER_ID or --instagram ACCOUNT_ID"),
            };
            let shown = account.clone();
            app.db
                .run(move |c| {
                    let scope = db::spaces::operator_scope(named_space(c, &space)?);
                    db::integrations::bind_meta_account(c, &scope, kind, &account)
                })
                .await?;
            println!("{kind} account {shown} now delivers to this space's inbox");
        }
    }
    Ok(())
}
