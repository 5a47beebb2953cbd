//! Where an export is read from: a folder or a zip, with every path checked.
//!
//! Paths named inside an export (a `photo` field of `result.json`, an
//! attachment name in `_chat.txt`) are never joined blindly: absolute paths,
//! `..` and symlinks that leave the export are refused. A zip is checked
//! whole before anything is imported: an entry whose name escapes the
//! export (zip-slip), a symlink entry, or a zip bomb (an entry or a total
//! that would inflate beyond the limits, or an absurd compression ratio)
//! makes the whole zip refused.

use std::{
    fs::File,
    io::{BufReader, Read},
    path::{Component, Path, PathBuf},
};

use anyhow::{anyhow, bail, Context};

/// Total uncompressed size of a zip we accept, bytes.
pub const MAX_ZIP_TOTAL: u64 = 64 << 30;
/// Compression ratio above which an entry larger than 1 MiB is taken for a bomb.
pub const MAX_RATIO: u64 = 250;

/// An export to read files from.
pub enum Export {
    /// A folder (an extracted export).
    Dir {
        /// Its canonical path.
        root: PathBuf,
    },
    /// A zip file, opened twice: one reader streams the chat file, the other serves media.
    Zip {
        /// The zip's path.
        path: PathBuf,
        /// For media lookups.
        archive: zip::ZipArchive<BufReader<File>>,
    },
}

/// A relative path named by an export, checked: no root, no `..`, no drive.
pub fn safe_relative(name: &str) -> anyhow::Result<PathBuf> {
    let p = Path::new(name);
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir => {}
            _ => bail!("refused path {name:?}: it leaves the export"),
        }
    }
    if out.as_os_str().is_empty() {
        bail!("empty path");
    }
    Ok(out)
}

impl Export {
    /// Opens a folder or a `.zip`; checks a zip whole.
    ///
    /// # Errors
    /// When the path does not exist, or a zip is hostile or broken.
    pub fn open(path: &Path) -> anyhow::Result<Export> {
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if meta.is_dir() {
            return Ok(Export::Dir {
                root: path.canonicalize()?,
            });
        }
        let archive =
            zip::ZipArchive::new(BufReader::new(File::open(path)?)).with_context(|| {
                format!("{} is neither a folder nor a readable zip", path.display())
            })?;
        let mut archive = archive;
        let mut total = 0u64;
        for i in 0..archive.len() {
            let f = archive.by_index_raw(i)?;
            let name = f.name().to_string();
            if f.enclosed_name().is_none() {
                bail!("refused zip: entry {name:?} would be written outside the export (zip-slip)");
            }
            if f.unix_mode().is_some_and(|m| m & 0o170000 == 0o120000) {
                bail!("refused zip: entry {name:?} is a symbolic link");
            }
            total = total.saturating_add(f.size());
            if f.size() > 1 << 20 && f.size() / f.compressed_size().max(1) > MAX_RATIO {
                bail!(
                    "refused zip: entry {name:?} inflates {}x (zip bomb?)",
                    f.size() / f.compressed_size().max(1)
                );
            }
        }
        if total > MAX_ZIP_TOTAL {
            bail!("refused zip: it would inflate to {total} bytes, more than {MAX_ZIP_TOTAL}");
        }
        Ok(Export::Zip {
            path: path.to_path_buf(),
            archive,
        })
    }

    /// Every file of the export, as relative paths with `/`.
    pub fn files(&mut self) -> anyhow::Result<Vec<String>> {
        match self {
            Export::Dir { root } => {
                let mut out = Vec::new();
                for e in walkdir::WalkDir::new(&*root).follow_links(false) {
                    let e = e?;
                    if e.file_type().is_file() {
                        let rel = e.path().strip_prefix(&*root)?;
                        out.push(rel.to_string_lossy().replace('\\', "/"));
                    }
                }
                out.sort();
                Ok(out)
            }
            Export::Zip { archive, .. } => {
                let mut out: Vec<String> = archive
                    .file_names()
                    .filter(|n| !n.ends_with('/'))
                    .map(str::to_string)
                    .collect();
                out.sort();
                Ok(out)
            }
        }
    }

    /// Opens a file of the export by its relative path.
    ///
    /// # Errors
    /// When the path leaves the export (see the module doc) or is missing.
    pub fn open_file(&mut self, name: &str) -> anyhow::Result<Box<dyn Read + '_>> {
        let rel = safe_relative(name)?;
        match self {
            Export::Dir { root } => {
                let full = root.join(&rel);
                let meta = std::fs::symlink_metadata(&full)
                    .with_context(|| format!("{name} is not in the export"))?;
                if meta.file_type().is_symlink() {
                    let target = full.canonicalize()?;
                    if !target.starts_with(&*root) {
                        bail!("refused {name:?}: a symbolic link leaving the export");
                    }
                }
                Ok(Box::new(File::open(&full)?))
            }
            Export::Zip { archive, .. } => {
                let key = rel.to_string_lossy().replace('\\', "/");
                let f = archive
                    .by_name(&key)
                    .map_err(|_| anyhow!("{name} is not in the export"))?;
                Ok(Box::new(f))
            }
        }
    }

    /// A second, independent reader of one file, for streaming a chat file
    /// while media are read with [`Export::open_file`]. From a zip, the entry
    /// is first inflated into an anonymous temp file (disk, not memory).
    pub fn stream(&self, name: &str) -> anyhow::Result<Box<dyn Read + Send>> {
        let rel = safe_relative(name)?;
        match self {
            Export::Dir { root } => Ok(Box::new(BufReader::new(File::open(root.join(rel))?))),
            Export::Zip { path, .. } => {
                let mut archive = zip::ZipArchive::new(BufReader::new(File::open(path)?))?;
                let key = rel.to_string_lossy().replace('\\', "/");
                let mut entry = archive
                    .by_name(&key)
                    .map_err(|_| anyhow!("{name} is not in the export"))?;
                let mut tmp = tempfile::tempfile()?;
                std::io::copy(&mut entry, &mut tmp)?;
                use std::io::Seek;
                tmp.seek(std::io::SeekFrom::Start(0))?;
                Ok(Box::new(BufReader::new(tmp)))
            }
        }
    }
}
