//! Secrets at rest: bot tokens, webhook secrets and SMTP URLs stored in the
//! database are sealed with AES-256-GCM ([NIST SP 800-38D]).
//!
//! The 32-byte key comes from `APPLIANCE_SECRET_KEY` (64 hex digits or
//! standard base64), else from `DATA_DIR/secret.key` (64 hex digits, mode
//! 0600, created on first run). A sealed value is the text
//! `v1:` + base64(12-byte random nonce ‖ ciphertext ‖ 16-byte tag). The
//! database keeps a sealed canary (`kv.secret_canary`) so a wrong key is
//! reported at start instead of when a token is first needed.
//!
//! Rotation ([`rotate`]) writes the new key to `secret.key.new`, re-seals
//! every secret and the canary in one transaction, then renames the file
//! over `secret.key`. A crash between the commit and the rename is repaired
//! at the next start: the key that opens the canary wins.
//!
//! [NIST SP 800-38D]: https://csrc.nist.gov/pubs/sp/800/38/d/final

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use aes_gcm::{
    aead::{Aead, KeyInit},
    Aes256Gcm,
};
use base64::Engine;
use rand::RngCore;

use crate::db;

/// Errors of the secret store.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The key is missing, malformed, or does not open the database's secrets.
    #[error("secret key: {0}")]
    Key(String),
    /// A sealed value is damaged or was sealed with another key.
    #[error("a stored secret cannot be opened (damaged, or sealed with another key)")]
    Open,
    /// Reading or writing the key file failed.
    #[error("secret key file: {0}")]
    Io(#[from] std::io::Error),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] db::DbError),
}

const CANARY_KEY: &str = "secret_canary";
const CANARY: &str = "appliance secret canary";

/// The sealing key, loaded once.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(••••)")
    }
}

/// Parses a key given as 64 hex digits or base64 of 32 bytes.
fn parse_key(text: &str) -> Result<[u8; 32], SecretError> {
    let text = text.trim();
    let bytes = hex::decode(text)
        .ok()
        .or_else(|| base64::engine::general_purpose::STANDARD.decode(text).ok())
        .ok_or_else(|| SecretError::Key("expected 64 hex digits or base64 of 32 bytes".into()))?;
    bytes
        .try_into()
        .map_err(|_| SecretError::Key("the key must be 32 bytes (AES-256)".into()))
}

/// A new random key, as 64 hex digits.
pub fn generate_key() -> String {
    let mut k = [0u8; 32];
    rand::rng().fill_bytes(&mut k);
    hex::encode(k)
}

/// Writes `key` to `path` with mode 0600: temp file, fsync, rename.
fn write_key(path: &Path, key: &str) -> Result<(), SecretError> {
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&tmp)?;
    f.write_all(key.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        crate::vault::sync_dir(dir)?;
    }
    Ok(())
}

/// Where the key file lives.
pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("secret.key")
}

impl SecretBox {
    /// A box on a raw 32-byte key.
    pub fn from_key(key: &[u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(key.into()),
        }
    }

    /// Loads the key (`env_key`, else `DATA_DIR/secret.key`, created when
    /// absent), finishes an interrupted rotation, and checks the key against
    /// the database's canary (writing the canary on first run).
    ///
    /// # Errors
    /// [`SecretError::Key`] when the key is malformed or is not the one the
    /// database's secrets were sealed with.
    pub fn load(
        data_dir: &Path,
        env_key: Option<&str>,
        conn: &rusqlite::Connection,
    ) -> Result<Self, SecretError> {
        let canary = db::kv_get(conn, CANARY_KEY)?;
        let opens = |b: &SecretBox| canary.as_deref().is_none_or(|c| b.open(c).is_ok());
        let chosen = if let Some(text) = env_key {
            let b = Self::from_key(&parse_key(text)?);
            if !opens(&b) {
                return Err(SecretError::Key(
                    "APPLIANCE_SECRET_KEY does not open this database's secrets".into(),
                ));
            }
            b
        } else {
            let path = key_path(data_dir);
            let pending = path.with_extension("key.new");
            if pending.exists() {
                let b = Self::from_key(&parse_key(&std::fs::read_to_string(&pending)?)?);
                if opens(&b) {
                    // The rotation committed; finish it.
                    std::fs::rename(&pending, &path)?;
                    tracing::info!("finished an interrupted secret key rotation");
                } else {
                    std::fs::remove_file(&pending)?;
                }
            }
            if !path.exists() {
                if canary.is_some() {
                    return Err(SecretError::Key(format!(
                        "{} is missing but the database holds sealed secrets: restore the key file or set APPLIANCE_SECRET_KEY",
                        path.display()
                    )));
                }
                write_key(&path, &generate_key())?;
                tracing::info!(path = %path.display(), "created a new secret key");
            }
            let b = Self::from_key(&parse_key(&std::fs::read_to_string(&path)?)?);
            if !opens(&b) {
                return Err(SecretError::Key(format!(
                    "{} does not open this database's secrets",
                    path.display()
                )));
            }
            b
        };
        if canary.is_none() {
            db::kv_set(conn, CANARY_KEY, &chosen.seal(CANARY))?;
        }
        Ok(chosen)
    }

    /// Seals `plain`: `v1:` + base64(nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, plain: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(&nonce.into(), plain.as_bytes())
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!(
            "v1:{}",
            base64::engine::general_purpose::STANDARD.encode(out)
        )
    }

    /// Opens a value made by [`SecretBox::seal`].
    ///
    /// # Errors
    /// [`SecretError::Open`] when it is damaged or sealed under another key.
    pub fn open(&self, sealed: &str) -> Result<String, SecretError> {
        let raw = sealed
            .strip_prefix("v1:")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .filter(|r| r.len() > 12)
            .ok_or(SecretError::Open)?;
        let (nonce, body) = raw.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| SecretError::Open)?;
        let plain = self
            .cipher
            .decrypt(&nonce.into(), body)
            .map_err(|_| SecretError::Open)?;
        String::from_utf8(plain).map_err(|_| SecretError::Open)
    }
}

/// How a secret is shown: `••••` and its last four characters (`••••1234`).
pub fn mask(plain: &str) -> String {
    let tail: String = plain
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if plain.chars().count() <= 8 {
        "••••".into()
    } else {
        format!("••••{tail}")
    }
}

/// Re-seals every stored secret under a new key; returns how many.
///
/// With the key in `DATA_DIR/secret.key` the new key replaces it (see the
/// module docs for crash safety). With `APPLIANCE_SECRET_KEY`, pass the new
/// key as `new_key`; the operator then updates the environment.
///
/// # Errors
/// A secret that the current key cannot open aborts the rotation unchanged.
pub fn rotate(
    data_dir: &Path,
    current: &SecretBox,
    new_key: Option<&str>,
    conn: &mut rusqlite::Connection,
) -> Result<usize, SecretError> {
    let from_file = new_key.is_none();
    let key_text = match new_key {
        Some(k) => k.to_string(),
        None => generate_key(),
    };
    let next = SecretBox::from_key(&parse_key(&key_text)?);
    let path = key_path(data_dir);
    let pending = path.with_extension("key.new");
    if from_file {
        write_key(&pending, &key_text)?;
    }
    let tx = db::write_tx(conn)?;
    let rows = db::integrations::sealed_secrets(&tx)?;
    let mut n = 0;
    for (id, sealed) in rows {
        let plain = current.open(&sealed)?;
        db::integrations::set_sealed_secret(&tx, id, &next.seal(&plain))?;
        n += 1;
    }
    db::kv_set(&tx, CANARY_KEY, &next.seal(CANARY))?;
    tx.commit().map_err(db::DbError::from)?;
    if from_file {
        std::fs::rename(&pending, &path)?;
        if let Some(dir) = path.parent() {
            crate::vault::sync_dir(dir)?;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let b = SecretBox::from_key(&[7u8; 32]);
        let s = b.seal("123456:ABC-token");
        assert!(s.starts_with("v1:"));
        assert!(!s.contains("ABC"));
        assert_ne!(s, b.seal("123456:ABC-token"), "a fresh nonce each time");
        assert_eq!(b.open(&s).unwrap(), "123456:ABC-token");
        let other = SecretBox::from_key(&[8u8; 32]);
        assert!(matches!(other.open(&s), Err(SecretError::Open)));
        let mut bad = s.clone();
        bad.replace_range(10..11, if &s[10..11] == "A" { "B" } else { "A" });
        assert!(b.open(&bad).is_err());
    }

    #[test]
    fn keys_parse_from_hex_or_base64_and_are_masked() {
        assert!(parse_key(&"ab".repeat(32)).is_ok());
        assert!(parse_key(&base64::engine::general_purpose::STANDARD.encode([1u8; 32])).is_ok());
        assert!(parse_key("short").is_err());
        assert_eq!(mask("123456:ABCDEFGH1234"), "••••1234");
        assert_eq!(mask("abc"), "••••");
    }
}
