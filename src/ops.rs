//! Operations: `backup`, `restore` and `check`.
//!
//! A backup directory holds `appliance.sqlite` (a consistent snapshot made
//! with SQLite's online backup API while the server runs), `vault/blobs/…`
//! and `vault/thumbs/…` for the blobs that snapshot references (blobs are
//! immutable and named by their SHA-256, so a second backup into the same
//! directory copies only new ones), `secret.key`, and `backup.json` (what
//! was copied, when). The search index is not backed up: it is rebuilt from
//! the database at the first start after a restore. Every file is written to
//! a temp name, fsynced, then renamed, so an interrupted backup leaves the
//! previous one intact.

use std::{
    fs,
    io::{self, Read, Write},
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{
    db,
    vault::{sync_dir, Sha256Hex, ThumbSize, Vault},
    App,
};

/// The database file name inside a data or backup directory.
const DB_FILE: &str = "appliance.sqlite";

/// What a backup or a restore copied.
#[derive(Debug, Default, Serialize)]
pub struct CopySummary {
    /// Blobs referenced by the database.
    pub blobs: u64,
    /// Blobs copied now (the others were already there).
    pub blobs_copied: u64,
    /// Bytes of blobs copied now.
    pub bytes_copied: u64,
    /// Thumbnails copied now.
    pub thumbnails_copied: u64,
    /// Size of the database snapshot, bytes.
    pub database_bytes: u64,
    /// Blobs not copied because they live in the S3 bucket (`s3_bucket`),
    /// which keeps them; a restore with the same bucket configured finds them there.
    pub blobs_in_bucket: u64,
}

/// Copies `from` to `to` through a temp file, fsync and rename; returns the bytes copied.
fn copy_atomic(from: &Path, to: &Path) -> io::Result<u64> {
    let dir = to.parent().expect("destination paths have a parent");
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new().prefix(".copy-").tempfile_in(dir)?;
    let n = io::copy(&mut fs::File::open(from)?, tmp.as_file_mut())?;
    tmp.as_file().sync_all()?;
    tmp.persist(to).map_err(|e| e.error)?;
    sync_dir(dir)?;
    Ok(n)
}

/// SHA-256 of a file, hex, read in 64 KiB chunks.
pub fn hash_file(path: &Path) -> io::Result<String> {
    let mut f = fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Copies the blobs (and their renderings) listed in the database at `db_path`
/// from `from` to `to`, skipping those already present with the right size.
/// With `verify`, every copied blob's SHA-256 is checked against its name.
/// With `bucket`, a blob missing from `from` is taken to be in the S3 bucket
/// (counted, not copied) instead of being an error.
fn copy_vault(
    db_path: &Path,
    from: &Vault,
    to: &Vault,
    verify: bool,
    bucket: bool,
    summary: &mut CopySummary,
) -> anyhow::Result<()> {
    let c =
        rusqlite::Connection::open_with_flags(db_path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let blobs = db::media::all_blobs(&c)?;
    for (sha, bytes) in blobs {
        let Some(sha) = Sha256Hex::parse(&sha) else {
            continue;
        };
        summary.blobs += 1;
        let (src, dst) = (from.blob_path(&sha), to.blob_path(&sha));
        let present = fs::metadata(&dst)
            .map(|m| m.len() == bytes as u64)
            .unwrap_or(false);
        if !present && bucket && !src.exists() {
            summary.blobs_in_bucket += 1;
        } else if !present {
            if !src.exists() {
                anyhow::bail!(
                    "blob {} is referenced but missing from the vault: run `appliance check`",
                    sha.as_str()
                );
            }
            summary.bytes_copied += copy_atomic(&src, &dst)?;
            summary.blobs_copied += 1;
            if verify && hash_file(&dst)? != sha.as_str() {
                fs::remove_file(&dst)?;
                anyhow::bail!("blob {} is damaged in the source", sha.as_str());
            }
        }
        for size in [ThumbSize::Thumb, ThumbSize::Preview] {
            let (s, d) = (from.thumb_path(&sha, size), to.thumb_path(&sha, size));
            if s.exists() && !d.exists() {
                copy_atomic(&s, &d)?;
                summary.thumbnails_copied += 1;
            }
        }
    }
    Ok(())
}

/// `appliance backup DEST`: see the module documentation. Safe while the server runs.
///
/// # Errors
/// I/O errors, or a blob referenced by the database but missing from the vault.
pub fn backup(app: &App, dest: &Path) -> anyhow::Result<CopySummary> {
    fs::create_dir_all(dest)?;
    let mut summary = CopySummary::default();
    // 1. The database, through the online backup API, into a temp file.
    let tmp_db = dest.join(format!("{DB_FILE}.partial"));
    let _ = fs::remove_file(&tmp_db);
    {
        let src = app.db.conn()?;
        let mut dst = rusqlite::Connection::open(&tmp_db)?;
        let backup = rusqlite::backup::Backup::new(&src, &mut dst)?;
        // 1,000 pages (4 MB) a step, with a pause so the server's writers get the lock in between.
        backup.run_to_completion(1000, Duration::from_millis(5), None)?;
    }
    fs::File::open(&tmp_db)?.sync_all()?;
    summary.database_bytes = fs::metadata(&tmp_db)?.len();
    // 2. The blobs it references (before the snapshot replaces the previous one).
    let to = Vault::open(dest.join("vault"))?;
    copy_vault(
        &tmp_db,
        &app.vault,
        &to,
        false,
        app.vault.is_remote(),
        &mut summary,
    )?;
    fs::rename(&tmp_db, dest.join(DB_FILE))?;
    // 3. The key of the sealed secrets.
    let key = crate::secrets::key_path(&app.config.data_dir);
    if key.exists() {
        copy_atomic(&key, &dest.join("secret.key"))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dest.join("secret.key"), fs::Permissions::from_mode(0o600))?;
        }
    }
    let manifest = serde_json::json!({
        "created_at": chrono::Utc::now().to_rfc3339(),
        "version": env!("CARGO_PKG_VERSION"),
        "summary": &summary,
    });
    let mut f = tempfile::Builder::new()
        .prefix(".manifest-")
        .tempfile_in(dest)?;
    f.write_all(serde_json::to_string_pretty(&manifest)?.as_bytes())?;
    f.as_file().sync_all()?;
    f.persist(dest.join("backup.json")).map_err(|e| e.error)?;
    sync_dir(dest)?;
    Ok(summary)
}

/// `appliance restore SRC` into `data_dir`, which must not hold a database.
/// Blobs are verified against their SHA-256 as they are copied; the database
/// must pass `PRAGMA integrity_check`. The index is rebuilt at the next start.
/// With `bucket` (an `s3_bucket` is configured), blobs absent from the backup
/// are left to the bucket.
///
/// # Errors
/// A data directory already in use, a damaged backup.
pub fn restore(src: &Path, data_dir: &Path, bucket: bool) -> anyhow::Result<CopySummary> {
    let db_src = src.join(DB_FILE);
    if !db_src.exists() {
        anyhow::bail!("{} holds no backup ({DB_FILE} is missing)", src.display());
    }
    if data_dir.join(DB_FILE).exists() {
        anyhow::bail!(
            "{} already holds a database: restore into an empty data directory",
            data_dir.display()
        );
    }
    {
        let c = rusqlite::Connection::open_with_flags(
            &db_src,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if ok != "ok" {
            anyhow::bail!("the backup's database is damaged: {ok}");
        }
    }
    fs::create_dir_all(data_dir)?;
    let mut summary = CopySummary::default();
    let from = Vault::open(src.join("vault"))?;
    let to = Vault::open(data_dir.join("vault"))?;
    copy_vault(&db_src, &from, &to, true, bucket, &mut summary)?;
    if src.join("secret.key").exists() {
        copy_atomic(&src.join("secret.key"), &crate::secrets::key_path(data_dir))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(
                crate::secrets::key_path(data_dir),
                fs::Permissions::from_mode(0o600),
            )?;
        }
    }
    // The database last: until it is in place the directory is not a data directory.
    summary.database_bytes = copy_atomic(&db_src, &data_dir.join(DB_FILE))?;
    Ok(summary)
}

/// What `appliance check` found, by kind.
#[derive(Debug, Default, Serialize)]
pub struct CheckReport {
    /// `PRAGMA integrity_check` lines other than `ok`.
    pub database: Vec<String>,
    /// Blobs in the database whose file is missing.
    pub missing_blobs: Vec<String>,
    /// Blobs whose file has the wrong size or hash.
    pub damaged_blobs: Vec<String>,
    /// Files in the vault that no row references.
    pub orphan_blobs: Vec<String>,
    /// Objects in the S3 bucket that no row references (reported, never
    /// deleted: the bucket may be shared; not counted as a problem).
    pub orphan_bucket_blobs: Vec<String>,
    /// Leftover temp files in `vault/tmp`.
    pub temp_files: Vec<String>,
    /// Blobs marked as rendered whose thumbnail file is missing.
    pub missing_thumbnails: Vec<String>,
    /// Documents the index is behind the database by (queued, or a count mismatch).
    pub index_behind: i64,
    /// What `--repair` did.
    pub repaired: Vec<String>,
}

impl CheckReport {
    /// Problems found (before any repair).
    pub fn problems(&self) -> usize {
        self.database.len()
            + self.missing_blobs.len()
            + self.damaged_blobs.len()
            + self.orphan_blobs.len()
            + self.temp_files.len()
            + self.missing_thumbnails.len()
            + usize::from(self.index_behind != 0)
    }

    /// Problems `--repair` cannot fix (lost or damaged originals, a damaged database).
    pub fn unrepairable(&self) -> usize {
        self.database.len() + self.missing_blobs.len() + self.damaged_blobs.len()
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect()
}

/// `appliance check [--repair]`: see [`CheckReport`]. With `repair`,
/// missing thumbnails are re-queued, orphans move to `DATA_DIR/lost+found`,
/// temp files are removed and the index is queued for a rebuild.
///
/// # Errors
/// Database or I/O errors while checking.
pub fn check(app: &App, repair: bool) -> anyhow::Result<CheckReport> {
    let mut r = CheckReport::default();
    let c = app.db.conn()?;
    let mut st = c.prepare("PRAGMA integrity_check")?;
    for line in st.query_map([], |row| row.get::<_, String>(0))? {
        let line = line?;
        if line != "ok" {
            r.database.push(line);
        }
    }
    drop(st);
    let blobs = db::media::all_blobs(&c)?;
    let known: std::collections::HashSet<&str> = blobs.iter().map(|(s, _)| s.as_str()).collect();
    // With a bucket, one listing of it (check runs on a blocking thread).
    let remote: Option<std::collections::HashMap<String, u64>> = if app.vault.is_remote() {
        let list = tokio::runtime::Handle::current()
            .block_on(app.vault.backend().list())
            .map_err(|e| anyhow::anyhow!("listing {}: {e}", app.vault.backend().describe()))?;
        Some(
            list.into_iter()
                .map(|(sha, size)| (sha.as_str().to_string(), size))
                .collect(),
        )
    } else {
        None
    };
    let mut not_uploaded = Vec::new();
    for (sha, bytes) in &blobs {
        let Some(h) = Sha256Hex::parse(sha) else {
            r.damaged_blobs.push(sha.clone());
            continue;
        };
        let path = app.vault.blob_path(&h);
        match fs::metadata(&path) {
            // Moved to the bucket: checked by size there (the object store
            // verifies content with its own checksums on upload).
            Err(_) if remote.is_some() => match remote.as_ref().and_then(|m| m.get(sha)) {
                None => r.missing_blobs.push(sha.clone()),
                Some(size) if *size != *bytes as u64 => r.damaged_blobs.push(sha.clone()),
                Some(_) => {}
            },
            Err(_) => r.missing_blobs.push(sha.clone()),
            Ok(m) if m.len() != *bytes as u64 => r.damaged_blobs.push(sha.clone()),
            Ok(_) => {
                if hash_file(&path)? != *sha {
                    r.damaged_blobs.push(sha.clone());
                }
            }
        }
    }
    for path in files_under(&app.vault.root().join("blobs")) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !known.contains(name) {
            r.orphan_blobs.push(path.display().to_string());
        } else if remote.is_some() {
            not_uploaded.push(name.to_string());
        }
    }
    if let Some(remote) = &remote {
        let name = app.vault.backend().describe();
        for sha in remote.keys().filter(|k| !known.contains(k.as_str())) {
            r.orphan_bucket_blobs.push(format!("{name}/blobs/{sha}"));
        }
    }
    for path in files_under(&app.vault.root().join("tmp")) {
        r.temp_files.push(path.display().to_string());
    }
    for sha in db::media::rendered_blobs(&c)? {
        if let Some(h) = Sha256Hex::parse(&sha) {
            if !app.vault.thumb_path(&h, ThumbSize::Thumb).exists() {
                r.missing_thumbnails.push(sha);
            }
        }
    }
    let queued = db::search::queue_len(&c)?;
    let expected = db::search::indexable_count(&c)?;
    let _ = app.search.reload();
    let docs = app.search.num_docs() as i64;
    r.index_behind = if queued > 0 {
        queued
    } else {
        (expected - docs).abs()
    };
    if !repair {
        return Ok(r);
    }
    if !r.missing_thumbnails.is_empty() {
        let mut conn = app.db.conn()?;
        let tx = db::write_tx(&mut conn)?;
        for sha in &r.missing_thumbnails {
            db::media::requeue_thumbnail(&tx, sha)?;
        }
        tx.commit()?;
        r.repaired.push(format!(
            "{} thumbnail(s) queued",
            r.missing_thumbnails.len()
        ));
    }
    if !not_uploaded.is_empty() {
        let mut conn = app.db.conn()?;
        let tx = db::write_tx(&mut conn)?;
        for sha in &not_uploaded {
            db::jobs::enqueue_again(
                &tx,
                &db::jobs::NewJob {
                    kind: crate::jobs::kind::UPLOAD,
                    payload: serde_json::json!({ "sha256": sha }),
                    dedup_key: Some(format!("upload:{sha}")),
                    space: None,
                    max_attempts: 20,
                },
                db::now_ms(),
            )?;
        }
        tx.commit()?;
        r.repaired.push(format!(
            "{} blob(s) still on this disk queued for upload to the bucket",
            not_uploaded.len()
        ));
    }
    if !r.orphan_blobs.is_empty() {
        let lost = app.config.data_dir.join("lost+found");
        fs::create_dir_all(&lost)?;
        for p in &r.orphan_blobs {
            let p = Path::new(p);
            if let Some(name) = p.file_name() {
                fs::rename(p, lost.join(name))?;
            }
        }
        r.repaired.push(format!(
            "{} orphan file(s) moved to {}",
            r.orphan_blobs.len(),
            lost.display()
        ));
    }
    if !r.temp_files.is_empty() {
        for p in &r.temp_files {
            let _ = fs::remove_file(p);
        }
        r.repaired
            .push(format!("{} temp file(s) removed", r.temp_files.len()));
    }
    if r.index_behind != 0 {
        let mut conn = app.db.conn()?;
        let tx = db::write_tx(&mut conn)?;
        db::search::mark_all_dirty(&tx, None)?;
        tx.commit()?;
        r.repaired
            .push("every document queued for the indexer (the server reindexes them)".into());
    }
    Ok(r)
}

/// Seconds from `now` (Unix seconds) to the next `HH:MM` UTC.
///
/// # Errors
/// A time that is not `HH:MM`.
pub fn seconds_until(at: &str, now: i64) -> Result<i64, String> {
    let t = chrono::NaiveTime::parse_from_str(at.trim(), "%H:%M")
        .map_err(|_| format!("backup_at {at:?}: expected HH:MM (UTC)"))?;
    let target = i64::from(chrono::Timelike::num_seconds_from_midnight(&t));
    let today = now.rem_euclid(86_400);
    Ok(if target > today {
        target - today
    } else {
        86_400 - today + target
    })
}

/// The nightly backup into `backup_dir` at `backup_at`, until shutdown. A
/// failure is logged and sent to integrations (`system.status`, `backup_failed`).
pub async fn nightly(app: std::sync::Arc<App>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let Some(dest) = app.config.backup_dir.clone() else {
        return;
    };
    loop {
        let wait = match seconds_until(&app.config.backup_at, db::now()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "nightly backup disabled");
                return;
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(wait as u64)) => {}
            _ = shutdown.changed() => return,
        }
        let (a, d) = (app.clone(), dest.clone());
        match tokio::task::spawn_blocking(move || backup(&a, &d)).await {
            Ok(Ok(s)) => tracing::info!(
                blobs_copied = s.blobs_copied,
                bytes = s.bytes_copied,
                dest = %dest.display(),
                "nightly backup done"
            ),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "nightly backup failed");
                crate::notify::events::system_status(
                    &app,
                    "backup_failed",
                    format!("nightly backup failed: {e}"),
                )
                .await;
            }
            Err(e) => tracing::error!(error = %e, "nightly backup task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_backup_time_is_today_or_tomorrow() {
        let midnight = 1_800_000_000 - 1_800_000_000 % 86_400;
        assert_eq!(seconds_until("03:30", midnight).unwrap(), 3 * 3600 + 1800);
        assert_eq!(
            seconds_until("03:30", midnight + 4 * 3600).unwrap(),
            86_400 - 1800
        );
        assert!(seconds_until("3h", midnight).is_err());
    }
}
