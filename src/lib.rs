//! appliance: one binary that keeps everything a family's or a studio's chats
//! bring in. See ARCHITECTURE.md for the map of modules and the invariants.
//!
//! The library exposes [`serve`], which `main.rs` and the integration tests
//! both call; the CLI lives in `main.rs` and [`cli`].

pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod imaging;
pub mod import;
pub mod inbox;
pub mod ingest;
pub mod jobs;
pub mod meta;
pub mod metrics;
pub mod notify;
pub mod ops;
pub mod posts;
pub mod search;
pub mod secrets;
pub mod stripe;
pub mod telegram;
pub mod vault;
pub mod web;

use std::{path::PathBuf, sync::Arc, time::Duration};

use tokio::{net::TcpListener, sync::watch};

pub use config::Config;

/// Everything a request handler or a job needs, shared behind an `Arc`.
pub struct App {
    /// The validated configuration.
    pub config: Config,
    /// The database.
    pub db: db::Db,
    /// The media vault.
    pub vault: vault::Vault,
    /// Bot API clients, when a token is configured.
    pub telegram: Option<telegram::Telegram>,
    /// Wakes job workers when this process adds jobs.
    pub jobs_added: tokio::sync::Notify,
    /// The search index.
    pub search: Arc<search::Search>,
    /// Wakes the indexer when this process queues documents.
    pub index_dirty: tokio::sync::Notify,
    /// Live inbox events.
    pub hub: inbox::Hub,
    /// Seals and opens the secrets stored in the database.
    pub secrets: secrets::SecretBox,
    /// Outbound HTTP client and rate limits, per target.
    pub outbound: notify::Outbound,
    /// Inbound rate limits (login, hooks), per client IP.
    pub rate_limits: web::limits::RateLimits,
    /// Image decodes in flight, one per core: thumbnails never take more
    /// memory or CPU than the machine has, however many workers run.
    pub imaging_slots: tokio::sync::Semaphore,
}

/// Paths inside the data directory.
pub fn db_path(config: &Config) -> PathBuf {
    config.data_dir.join("appliance.sqlite")
}

impl App {
    /// Wakes the job workers and the indexer after this process changed data.
    pub fn changed(&self) {
        self.jobs_added.notify_waiters();
        self.index_dirty.notify_waiters();
    }

    /// Creates the data directory, opens (and migrates) the database and the vault.
    ///
    /// # Errors
    /// When the data directory cannot be created, the database is newer than
    /// this binary, or a migration fails.
    pub fn open(config: Config) -> anyhow::Result<Arc<App>> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot create the data directory {}: {e}",
                config.data_dir.display()
            )
        })?;
        let db = db::Db::open(&db_path(&config))?;
        let mut vault = vault::Vault::open(config.data_dir.join("vault"))?;
        if let Some(s3) = config.s3().map_err(anyhow::Error::msg)? {
            vault = vault.with_backend(Arc::new(s3.connect()?));
        }
        let telegram = telegram::Telegram::from_config(&config);
        let search = Arc::new(search::Search::open(&config.data_dir.join("index"))?);
        let secrets = secrets::SecretBox::load(
            &config.data_dir,
            config.secret_key.as_ref().map(config::Secret::expose),
            &*db.conn()?,
        )?;
        Ok(Arc::new(App {
            secrets,
            outbound: notify::Outbound::default(),
            rate_limits: web::limits::RateLimits::new(config.hook_rate_per_s),
            config,
            db,
            vault,
            telegram,
            jobs_added: tokio::sync::Notify::new(),
            search,
            index_dirty: tokio::sync::Notify::new(),
            hub: inbox::Hub::default(),
            imaging_slots: tokio::sync::Semaphore::new(config::cores()),
        }))
    }
}

/// Runs the server on `listener` until `shutdown` resolves: the HTTP router,
/// the job workers and, per the configuration, the Telegram poller. On
/// shutdown, stops accepting requests, lets workers finish their current job,
/// and returns.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let requeued = app.db.run(|c| db::jobs::requeue_interrupted(c)).await?;
    if requeued > 0 {
        tracing::info!(requeued, "resuming jobs interrupted by the last stop");
    }
    match app.vault.sweep_tmp(Duration::from_secs(3600)) {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "removed stale temp files from the vault"),
        Err(e) => tracing::warn!(error = %e, "cannot sweep the vault's tmp directory"),
    }
    metrics::init();
    if let Some(token) = web::setup::issue_token(&app)
        .await
        .map_err(|e| anyhow::anyhow!("first-run setup: {e}"))?
    {
        let base = match (&app.config.public_url, listener.local_addr()) {
            (Some(url), _) => url.trim_end_matches('/').to_string(),
            (None, Ok(addr)) => format!("http://{addr}"),
            (None, Err(_)) => format!("http://{}", app.config.listen),
        };
        // On the console only, never in the logs: the link is a credential.
        eprintln!("\n  First run: create the administrator at {base}/setup?token={token}\n");
        tracing::info!("first run: no account yet; the one-time setup link is on the console");
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = jobs::spawn_workers(app.clone(), app.config.job_workers, stop_rx.clone());
    tasks.push(tokio::spawn(search::indexer::run(
        app.clone(),
        stop_rx.clone(),
    )));
    tasks.push(tokio::spawn(inbox::housekeeping(
        app.clone(),
        stop_rx.clone(),
    )));
    tasks.push(tokio::spawn(inbox::email::run(
        app.clone(),
        stop_rx.clone(),
    )));
    tasks.push(tokio::spawn(ops::nightly(app.clone(), stop_rx.clone())));
    tasks.push(tokio::spawn(notify::events::run(
        app.clone(),
        stop_rx.clone(),
    )));
    notify::events::system_status(&app, "started", String::new()).await;
    tasks.push(tokio::spawn(db::checkpoint_loop(
        app.db.clone(),
        Duration::from_millis(500),
        stop_rx.clone(),
    )));
    match (app.config.effective_telegram_mode(), &app.telegram) {
        (Some(config::TelegramMode::Polling), Some(_)) => {
            tasks.push(tokio::spawn(telegram::polling::run(
                app.clone(),
                stop_rx.clone(),
            )));
        }
        (Some(config::TelegramMode::Webhook), Some(_)) => {
            tracing::info!("Telegram webhook mode: updates are received at POST /hooks/telegram");
        }
        _ => tracing::info!("no Telegram token configured: the bot is off"),
    }
    let router = web::router(app.clone());
    tracing::info!(addr = %listener.local_addr()?, "listening");
    let mut rx = stop_rx.clone();
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        tokio::select! {
            _ = shutdown => {}
            _ = rx.changed() => {}
        }
    })
    .await?;
    // Recorded before the workers stop: delivered now if quick, else after the next start.
    notify::events::system_status(&app, "stopping", String::new()).await;
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Removes Bot API tokens (`bot<digits>:<secret>`) from a string before it
/// is logged or shown: reqwest errors include the request URL, which holds the token.
pub fn redact(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("bot") {
        out.push_str(&rest[..i + 3]);
        let after = &rest[i + 3..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with(':') {
            let secret = after[digits + 1..]
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
                .count();
            out.push_str("<redacted>");
            rest = &after[digits + 1 + secret..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_redacted() {
        let s = "error sending request for url (https://api.telegram.org/bot123456:AAH-x_y/GetFile): timeout";
        let r = super::redact(s);
        assert!(!r.contains("AAH-x_y"), "{r}");
        assert!(r.contains("/bot<redacted>/GetFile"), "{r}");
        assert_eq!(super::redact("robot lives"), "robot lives");
    }
}
