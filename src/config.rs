//! Configuration: one typed [`Config`], validated once at start.
//!
//! Precedence, lowest to highest: built-in defaults < the TOML file given with
//! `--config` < `APPLIANCE_*` environment variables < command-line flags.
//! Keys are flat and the same everywhere: `telegram_token` in the file is
//! `APPLIANCE_TELEGRAM_TOKEN` in the environment. Unknown `APPLIANCE_*`
//! variables are reported with a warning, because a typo there would otherwise
//! silently fall back to a default. See `examples/appliance.toml`.

use std::{fmt, net::SocketAddr, path::PathBuf};

use figment::{
    providers::{Env, Format, Serialized, Toml},
    Figment,
};
use serde::{Deserialize, Serialize};

/// How the bot receives updates from the Bot API.
///
/// See <https://core.telegram.org/bots/api#getting-updates>: the two ways are
/// mutually exclusive for one bot token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TelegramMode {
    /// Telegram POSTs each update to `POST /hooks/telegram` (needs a public HTTPS URL).
    Webhook,
    /// We long-poll `getUpdates` (works behind NAT with no public URL).
    Polling,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, coloured when on a terminal.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// A secret string: never printed by `Debug`, never logged.
///
/// Accepts a string or a number in the config (environment values that look
/// like numbers are parsed as numbers by the environment provider).
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself; call only where it is sent or compared.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            I(i64),
            U(u64),
        }
        Ok(Secret(match Raw::deserialize(d)? {
            Raw::S(s) => s,
            Raw::I(i) => i.to_string(),
            Raw::U(u) => u.to_string(),
        }))
    }
}

/// The whole configuration of one appliance.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the database, the vault and the index live. Default `./data`.
    pub data_dir: PathBuf,
    /// Address the HTTP server listens on. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Public base URL (e.g. `https://photos.example.org`), used for the
    /// webhook URL and to mark cookies `Secure` when it is HTTPS.
    pub public_url: Option<String>,
    /// Bot token from @BotFather. No token: Telegram ingestion is off.
    pub telegram_token: Option<Secret>,
    /// `webhook` or `polling`; default polling when a token is set.
    pub telegram_mode: Option<TelegramMode>,
    /// Value Telegram sends in `X-Telegram-Bot-Api-Secret-Token` (1–256 of
    /// `A-Z a-z 0-9 _ -`, see `setWebhook`). Required in webhook mode.
    pub telegram_webhook_secret: Option<Secret>,
    /// Bot API base URL. Default `https://api.telegram.org/`; point it at a
    /// self-hosted Bot API server to lift the 20 MB download limit.
    pub telegram_api_url: String,
    /// Long-poll timeout for `getUpdates`, seconds.
    pub telegram_poll_timeout_s: u32,
    /// Largest file we store, bytes. Default 50 MB.
    pub max_file_bytes: u64,
    /// Largest image we decode, in pixels (width × height). Default 100 MP.
    pub max_image_pixels: u64,
    /// Number of background job workers (default: the number of cores, at
    /// least 2). 0 pauses all background work (updates are still received
    /// and committed). Image decoding is further bounded to one per core.
    pub job_workers: usize,
    /// Log format for `serve`.
    pub log_format: LogFormat,
    /// Slug of the studio whose inbox receives private chats with the bot
    /// that are not bound to a space (each sender becomes a contact).
    pub telegram_inbox_space: Option<String>,
    /// Inbox conversations with no message for this many days are archived.
    pub inbox_archive_after_days: i64,
    /// SMTP server for inbox digests: `smtp://host:25` (plain, a local relay),
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS), `smtps://…:465`. None: no email.
    pub smtp_url: Option<Secret>,
    /// Sender of digests.
    pub smtp_from: String,
    /// Minutes a staff member must be away before a digest, and between two digests.
    pub inbox_email_after_minutes: i64,
    /// Key that seals stored secrets (64 hex digits or base64 of 32 bytes).
    /// None: `DATA_DIR/secret.key`, created on first run.
    pub secret_key: Option<Secret>,
    /// Meta app secret: `POST /hooks/meta` checks `X-Hub-Signature-256` with it.
    /// None: the Meta receiver answers 503.
    pub meta_app_secret: Option<Secret>,
    /// The verify token typed in the Meta app's webhook settings (`GET /hooks/meta`).
    pub meta_verify_token: Option<Secret>,
    /// Graph API base URL (media downloads, WhatsApp/Instagram replies).
    pub meta_graph_url: String,
    /// Access token (system user) for the Graph API.
    pub meta_access_token: Option<Secret>,
    /// Stripe endpoint secret (`whsec_…`): `POST /hooks/stripe` checks `Stripe-Signature`.
    pub stripe_webhook_secret: Option<Secret>,
    /// Oldest `Stripe-Signature` timestamp accepted, seconds (Stripe's default, 300).
    pub stripe_tolerance_s: i64,
    /// Seconds new media are gathered into one `media.added` notification.
    pub notify_batch_seconds: i64,
    /// Bearer token for `GET /metrics` when `listen` is not a loopback address.
    pub metrics_token: Option<Secret>,
    /// Webhook calls accepted per second from one IP address (bursts of twice that).
    pub hook_rate_per_s: u32,
    /// Storage quota of each space, MB of stored media (0: none).
    pub space_quota_mb: u64,
    /// Directory of the nightly backup (none: no scheduled backup).
    pub backup_dir: Option<PathBuf>,
    /// Time of the nightly backup, `HH:MM` UTC.
    pub backup_at: String,
    /// Below this many MB free in the vault, `/readyz` answers 503.
    pub min_free_mb: u64,
    /// S3-compatible bucket that receives the blobs (none: they stay in
    /// `DATA_DIR/vault/blobs`). Thumbnails and the database stay local.
    pub s3_bucket: Option<String>,
    /// Endpoint of an S3-compatible service (`http://127.0.0.1:9000` for a
    /// local MinIO or Garage); none for AWS itself.
    pub s3_endpoint: Option<String>,
    /// Region of the bucket. Default `us-east-1`.
    pub s3_region: String,
    /// Access key id for the bucket.
    pub s3_access_key_id: Option<String>,
    /// Secret access key for the bucket.
    pub s3_secret_access_key: Option<Secret>,
}

/// Cores available to this process (1 when unknown).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

impl Config {
    /// The S3 settings when a bucket is configured.
    ///
    /// # Errors
    /// A bucket without credentials.
    pub fn s3(&self) -> Result<Option<crate::vault::S3Settings>, String> {
        let Some(bucket) = &self.s3_bucket else {
            return Ok(None);
        };
        let (Some(id), Some(secret)) = (&self.s3_access_key_id, &self.s3_secret_access_key) else {
            return Err(format!(
                "s3_bucket = {bucket:?} needs s3_access_key_id and s3_secret_access_key"
            ));
        };
        Ok(Some(crate::vault::S3Settings {
            bucket: bucket.clone(),
            endpoint: self.s3_endpoint.clone(),
            region: self.s3_region.clone(),
            access_key_id: id.clone(),
            secret_access_key: secret.expose().to_string(),
        }))
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            telegram_token: None,
            telegram_mode: None,
            telegram_webhook_secret: None,
            telegram_api_url: "https://api.telegram.org/".into(),
            telegram_poll_timeout_s: 25,
            max_file_bytes: 50 * 1024 * 1024,
            max_image_pixels: 100_000_000,
            job_workers: cores().max(2),
            log_format: LogFormat::Pretty,
            telegram_inbox_space: None,
            inbox_archive_after_days: 90,
            smtp_url: None,
            smtp_from: "appliance <appliance@localhost>".into(),
            inbox_email_after_minutes: 15,
            secret_key: None,
            meta_app_secret: None,
            meta_verify_token: None,
            meta_graph_url: "https://graph.facebook.com/v21.0/".into(),
            meta_access_token: None,
            stripe_webhook_secret: None,
            stripe_tolerance_s: 300,
            notify_batch_seconds: 60,
            metrics_token: None,
            hook_rate_per_s: 2000,
            space_quota_mb: 0,
            backup_dir: None,
            backup_at: "03:30".into(),
            min_free_mb: 50,
            s3_bucket: None,
            s3_endpoint: None,
            s3_region: "us-east-1".into(),
            s3_access_key_id: None,
            s3_secret_access_key: None,
        }
    }
}

/// Values given on the command line; `None` means "not given".
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--data-dir`
    pub data_dir: Option<PathBuf>,
    /// `--listen`
    pub listen: Option<SocketAddr>,
    /// `--log-format`
    pub log_format: Option<LogFormat>,
}

/// Errors while loading or validating the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or environment could not be parsed into [`Config`].
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    /// A value parsed but makes no sense.
    #[error("configuration: {0}")]
    Invalid(String),
}

const ENV_PREFIX: &str = "APPLIANCE_";

/// Environment variables with our prefix that are not configuration keys but
/// are read elsewhere (CLI, tests).
const ENV_NOT_CONFIG: &[&str] = &["config", "require_shared_fixtures"];

impl Config {
    /// Loads defaults, then `file` (if any), then the environment, then `overrides`,
    /// and validates the result.
    ///
    /// # Errors
    /// [`ConfigError::Load`] for an unreadable file or a value of the wrong type
    /// (the message names the key and its source), [`ConfigError::Invalid`] for
    /// inconsistent values.
    pub fn load(
        file: Option<&std::path::Path>,
        overrides: &Overrides,
    ) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Invalid(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            fig = fig.merge(Toml::file_exact(path));
        }
        fig = fig.merge(Env::prefixed(ENV_PREFIX).ignore(ENV_NOT_CONFIG));
        let mut config: Config = fig.extract().map_err(Box::new)?;
        if let Some(d) = &overrides.data_dir {
            config.data_dir = d.clone();
        }
        if let Some(l) = overrides.listen {
            config.listen = l;
        }
        if let Some(f) = overrides.log_format {
            config.log_format = f;
        }
        config.validate()?;
        Ok(config)
    }

    /// Names of `APPLIANCE_*` variables in the environment that are not known keys.
    pub fn unknown_env_keys() -> Vec<String> {
        let known = serde_json::to_value(Config::default())
            .ok()
            .and_then(|v| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()))
            .unwrap_or_default();
        std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .filter_map(|k| k.strip_prefix(ENV_PREFIX).map(str::to_ascii_lowercase))
            .filter(|k| !known.contains(k) && !ENV_NOT_CONFIG.contains(&k.as_str()))
            .map(|k| format!("{ENV_PREFIX}{}", k.to_ascii_uppercase()))
            .collect()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        url::Url::parse(&self.telegram_api_url).map_err(|e| {
            ConfigError::Invalid(format!("telegram_api_url {:?}: {e}", self.telegram_api_url))
        })?;
        if self.effective_telegram_mode() == Some(TelegramMode::Webhook) {
            match &self.telegram_webhook_secret {
                None => {
                    return Err(ConfigError::Invalid(
                        "telegram_mode = webhook needs telegram_webhook_secret \
                         (APPLIANCE_TELEGRAM_WEBHOOK_SECRET): every webhook request is checked"
                            .into(),
                    ))
                }
                Some(s) if !valid_webhook_secret(s.expose()) => return Err(ConfigError::Invalid(
                    "telegram_webhook_secret must be 1-256 characters of A-Z, a-z, 0-9, _ and -"
                        .into(),
                )),
                _ => {}
            }
        }
        if self.telegram_poll_timeout_s > 50 {
            return Err(ConfigError::Invalid(
                "telegram_poll_timeout_s must be at most 50 seconds".into(),
            ));
        }
        if self.max_file_bytes == 0 || self.max_image_pixels == 0 {
            return Err(ConfigError::Invalid(
                "max_file_bytes and max_image_pixels must be positive".into(),
            ));
        }
        Ok(())
    }

    /// The mode in effect: the configured one, or polling when a token is set.
    pub fn effective_telegram_mode(&self) -> Option<TelegramMode> {
        self.telegram_token
            .as_ref()
            .map(|_| self.telegram_mode.unwrap_or(TelegramMode::Polling))
    }

    /// The Bot API base URL, parsed (validated in [`Config::load`]).
    pub fn telegram_api_url(&self) -> url::Url {
        url::Url::parse(&self.telegram_api_url).unwrap_or_else(|_| {
            url::Url::parse("https://api.telegram.org/").expect("constant URL parses")
        })
    }

    /// True when cookies must carry `Secure` (the public URL is HTTPS).
    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }
}

fn valid_webhook_secret(s: &str) -> bool {
    (1..=256).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
// figment::Jail's closures return figment's own (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn precedence_file_then_env_then_flags() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "a.toml",
                "listen = \"0.0.0.0:9000\"\nmax_file_bytes = 10\njob_workers = 3\n",
            )?;
            jail.set_env("APPLIANCE_MAX_FILE_BYTES", "20");
            jail.set_env("APPLIANCE_TELEGRAM_TOKEN", "123:abc");
            let c = Config::load(
                Some(std::path::Path::new("a.toml")),
                &Overrides {
                    listen: Some("127.0.0.1:1".parse().unwrap()),
                    ..Default::default()
                },
            )
            .map_err(|e| e.to_string())?;
            assert_eq!(c.listen.port(), 1, "flag beats file");
            assert_eq!(c.max_file_bytes, 20, "env beats file");
            assert_eq!(c.job_workers, 3, "file beats default");
            assert_eq!(c.effective_telegram_mode(), Some(TelegramMode::Polling));
            assert_eq!(format!("{:?}", c.telegram_token), "Some(Secret(***))");
            Ok(())
        });
    }

    #[test]
    fn webhook_mode_requires_a_valid_secret() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("APPLIANCE_TELEGRAM_TOKEN", "123:abc");
            jail.set_env("APPLIANCE_TELEGRAM_MODE", "webhook");
            let e = Config::load(None, &Overrides::default()).unwrap_err();
            assert!(e.to_string().contains("telegram_webhook_secret"), "{e}");
            jail.set_env("APPLIANCE_TELEGRAM_WEBHOOK_SECRET", "bad secret!");
            assert!(Config::load(None, &Overrides::default()).is_err());
            jail.set_env("APPLIANCE_TELEGRAM_WEBHOOK_SECRET", "12345");
            let c = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(c.telegram_webhook_secret.unwrap().expose(), "12345");
            Ok(())
        });
    }
}
