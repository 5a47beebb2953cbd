//! `appliance import dir`: a folder tree of photos and videos.
//!
//! Every file is sniffed; photos, videos and audio are imported (capture time
//! from EXIF, else the file's modification time), anything else is skipped.
//! Symbolic links are not followed.

use std::time::UNIX_EPOCH;

/// Imports every media file under `root`.
///
/// # Errors
/// When the folder cannot be read, or the database or disk fails.
pub fn import(importer: &mut super::Importer, root: &std::path::Path) -> anyhow::Result<()> {
    for entry in walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read");
                importer.summary.errors += 1;
                continue;
            }
        };
        if !entry.file_type().is_file() {
            if entry.file_type().is_symlink() {
                importer.skip();
            }
            continue;
        }
        let path = entry.path();
        let mut head = [0u8; 8192];
        let n = {
            use std::io::Read;
            let mut f = std::fs::File::open(path)?;
            let mut n = 0;
            while n < head.len() {
                match f.read(&mut head[n..])? {
                    0 => break,
                    k => n += k,
                }
            }
            n
        };
        let media = infer::get(&head[..n]).is_some_and(|t| {
            matches!(
                t.matcher_type(),
                infer::MatcherType::Image | infer::MatcherType::Video | infer::MatcherType::Audio
            )
        });
        if !media {
            importer.skip();
            continue;
        }
        let mtime = entry
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or_else(crate::db::now, |d| d.as_secs() as i64);
        let name = path
            .strip_prefix(root)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned();
        let mut file = std::fs::File::open(path)?;
        let exif = crate::imaging::capture_time(path);
        importer.file(
            super::Attachment {
                reader: &mut file,
                name,
                kind: None,
            },
            exif.unwrap_or(mtime),
            None,
            "dir",
        )?;
    }
    Ok(())
}
