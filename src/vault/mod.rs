//! The media vault: content-addressed blobs and their thumbnails on the local filesystem.
//!
//! Layout under `DATA_DIR/vault`:
//! - `blobs/ab/cd/<sha256>`: the original bytes, named by their SHA-256 (lowercase hex);
//! - `thumbs/ab/<sha256>-360.jpg` and `-1280.jpg`: the thumbnail and the preview;
//! - `tmp/`: files being written; anything here is incomplete by definition.
//!
//! Invariants: a file appears under `blobs/` or `thumbs/` only complete and
//! fsynced (written in `tmp/`, fsynced, renamed, directory fsynced); blobs are
//! immutable; no path is ever built from user input, only from a validated
//! [`Sha256Hex`]. The vault enforces the size limit while streaming and an
//! allow-list of content types sniffed from the magic bytes, never trusting the
//! declared MIME type or file name.

pub mod backend;

use std::{
    fs::{self, File},
    io::{self, Write},
    ops::Range,
    path::{Path, PathBuf},
    sync::Arc,
};

use sha2::{Digest, Sha256};

pub use backend::{BlobBackend, BlobRead, LocalBackend, ObjectBackend, S3Settings};

/// A validated SHA-256 in lowercase hex (64 characters): safe to use in paths.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sha256Hex(String);

impl Sha256Hex {
    /// Validates `s` (exactly 64 lowercase hex digits).
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| Sha256Hex(s.to_string()))
    }
    /// The hex string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The two rendered sizes of an image, by their longest edge in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThumbSize {
    /// About 360 px: the album grid.
    Thumb,
    /// About 1280 px: the media page.
    Preview,
}

impl ThumbSize {
    /// Longest edge, pixels.
    pub fn edge(self) -> u32 {
        match self {
            ThumbSize::Thumb => 360,
            ThumbSize::Preview => 1280,
        }
    }
}

/// Errors of the vault.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The content is larger than the configured limit.
    #[error("file is larger than the limit of {limit} bytes (max_file_bytes)")]
    TooLarge {
        /// The limit, bytes.
        limit: u64,
    },
    /// The content type is not on the allow-list or does not match the kind.
    #[error("{0}")]
    Rejected(String),
    /// Filesystem error (disk full, permissions...).
    #[error("vault I/O: {0}")]
    Io(#[from] io::Error),
}

/// What the caller declares about a file, checked against its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Must be an image (photos).
    Image,
    /// Must be a video (or a GIF, which Telegram also calls an animation).
    Video,
    /// Must be audio.
    Audio,
    /// Anything on the allow-list.
    Any,
}

/// The vault rooted at `DATA_DIR/vault`, with the backend where committed
/// blobs end up (the same directory by default; an S3 bucket when configured).
#[derive(Debug, Clone)]
pub struct Vault {
    root: PathBuf,
    local: LocalBackend,
    backend: Arc<dyn BlobBackend>,
}

/// A blob available as a local file: the vault's own copy, or a temp copy
/// fetched from the remote backend (deleted when dropped).
#[derive(Debug)]
pub enum LocalCopy {
    /// The blob in `blobs/`.
    Vault(PathBuf),
    /// A copy in `tmp/` fetched from the backend.
    Fetched(tempfile::TempPath),
}

impl LocalCopy {
    /// Where to read it.
    pub fn path(&self) -> &Path {
        match self {
            LocalCopy::Vault(p) => p,
            LocalCopy::Fetched(t) => t,
        }
    }
}

/// A blob committed to the vault.
#[derive(Debug, Clone)]
pub struct StoredBlob {
    /// Its hash (and name).
    pub sha256: Sha256Hex,
    /// Size, bytes.
    pub bytes: u64,
    /// MIME type sniffed from the content.
    pub mime: String,
}

impl Vault {
    /// Opens the vault, creating its directories.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        for d in ["blobs", "thumbs", "tmp"] {
            fs::create_dir_all(root.join(d))?;
        }
        let local = LocalBackend::new(&root);
        Ok(Self {
            backend: Arc::new(local.clone()),
            local,
            root,
        })
    }

    /// The same vault with committed blobs moved on to `backend` by the
    /// `blob.upload` job ([`Vault::offload`]).
    pub fn with_backend(mut self, backend: Arc<dyn BlobBackend>) -> Self {
        self.backend = backend;
        self
    }

    /// Where committed blobs end up.
    pub fn backend(&self) -> &Arc<dyn BlobBackend> {
        &self.backend
    }

    /// True when blobs are moved on to a remote backend after commit.
    pub fn is_remote(&self) -> bool {
        !self.backend.is_local()
    }

    /// True when the blob is in the local `blobs/` directory.
    pub fn has_local(&self, sha: &Sha256Hex) -> bool {
        self.blob_path(sha).exists()
    }

    /// The blob as a local file: the vault's copy when it is here, otherwise
    /// a temp copy streamed from the backend (bounded memory).
    ///
    /// # Errors
    /// `NotFound` when the blob is nowhere; I/O or network errors.
    pub async fn local_copy(&self, sha: &Sha256Hex) -> io::Result<LocalCopy> {
        use futures_util::StreamExt;
        use tokio::io::AsyncWriteExt;
        let path = self.blob_path(sha);
        if tokio::fs::try_exists(&path).await? || !self.is_remote() {
            return Ok(LocalCopy::Vault(path));
        }
        let tmp = tempfile::Builder::new()
            .prefix("fetch-")
            .tempfile_in(self.root.join("tmp"))?;
        let (file, tmp_path) = tmp.into_parts();
        let mut file = tokio::fs::File::from_std(file);
        let mut body = self.backend.get(sha, None).await?.body;
        while let Some(chunk) = body.next().await {
            file.write_all(&chunk?).await?;
        }
        file.flush().await?;
        Ok(LocalCopy::Fetched(tmp_path))
    }

    /// Reads the blob (or the byte `range` of it) from wherever it is.
    ///
    /// # Errors
    /// `NotFound` when the blob is nowhere; `InvalidInput` for a range
    /// outside the blob; I/O or network errors.
    pub async fn read(&self, sha: &Sha256Hex, range: Option<Range<u64>>) -> io::Result<BlobRead> {
        match self.local.get(sha, range.clone()).await {
            Err(e) if e.kind() == io::ErrorKind::NotFound && self.is_remote() => {
                self.backend.get(sha, range).await
            }
            r => r,
        }
    }

    /// Size of the blob wherever it is, bytes; `None` when it is nowhere.
    ///
    /// # Errors
    /// I/O or network errors.
    pub async fn size(&self, sha: &Sha256Hex) -> io::Result<Option<u64>> {
        match self.local.head(sha).await? {
            None if self.is_remote() => self.backend.head(sha).await,
            size => Ok(size),
        }
    }

    /// Moves a committed blob to the remote backend: upload, check the size
    /// there, then remove the local copy. Does nothing with the local backend
    /// or when the blob has already left.
    ///
    /// # Errors
    /// I/O or network errors, or a size mismatch after upload; the local copy
    /// is kept in every error case.
    pub async fn offload(&self, sha: &Sha256Hex) -> io::Result<()> {
        if !self.is_remote() {
            return Ok(());
        }
        let Some(size) = self.local.head(sha).await? else {
            return Ok(());
        };
        self.backend.put(sha, &self.blob_path(sha)).await?;
        match self.backend.head(sha).await? {
            Some(there) if there == size => self.local.delete(sha).await,
            there => Err(io::Error::other(format!(
                "after upload {} holds {there:?} bytes of blob {}, not {size}",
                self.backend.describe(),
                sha.as_str()
            ))),
        }
    }

    /// The vault's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with this hash lives.
    pub fn blob_path(&self, sha: &Sha256Hex) -> PathBuf {
        let s = sha.as_str();
        self.root
            .join("blobs")
            .join(&s[0..2])
            .join(&s[2..4])
            .join(s)
    }

    /// Where the rendering of this blob at `size` lives.
    pub fn thumb_path(&self, sha: &Sha256Hex, size: ThumbSize) -> PathBuf {
        let s = sha.as_str();
        self.root
            .join("thumbs")
            .join(&s[0..2])
            .join(format!("{s}-{}.jpg", size.edge()))
    }

    /// Starts writing a new blob of at most `limit` bytes.
    pub fn writer(&self, limit: u64) -> io::Result<BlobWriter> {
        Ok(BlobWriter {
            file: tempfile::Builder::new()
                .prefix("blob-")
                .tempfile_in(self.root.join("tmp"))?,
            hasher: Sha256::new(),
            bytes: 0,
            limit,
            head: Vec::with_capacity(HEAD_LEN),
            vault: self.clone(),
        })
    }

    /// Writes `data` to `dest` atomically: temp file in `tmp/`, fsync, rename, fsync directory.
    pub fn write_atomic(&self, dest: &Path, data: &[u8]) -> io::Result<()> {
        let mut tmp = tempfile::Builder::new()
            .prefix("write-")
            .tempfile_in(self.root.join("tmp"))?;
        tmp.write_all(data)?;
        tmp.as_file().sync_all()?;
        let dir = dest.parent().expect("vault paths have a parent");
        fs::create_dir_all(dir)?;
        tmp.persist(dest).map_err(|e| e.error)?;
        sync_dir(dir)
    }

    /// Removes files in `tmp/` older than `max_age`: leftovers of a crash.
    pub fn sweep_tmp(&self, max_age: std::time::Duration) -> io::Result<usize> {
        let mut n = 0;
        for e in fs::read_dir(self.root.join("tmp"))? {
            let e = e?;
            let old = e
                .metadata()?
                .modified()?
                .elapsed()
                .is_ok_and(|age| age > max_age);
            if old {
                fs::remove_file(e.path())?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// Fsyncs a directory, so a rename inside it survives a power cut.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

const HEAD_LEN: usize = 8192;

/// A blob being streamed into the vault: hashes and counts as it writes, and
/// refuses to grow past its limit. Dropping it without [`BlobWriter::commit`]
/// deletes the temp file.
pub struct BlobWriter {
    file: tempfile::NamedTempFile,
    hasher: Sha256,
    bytes: u64,
    limit: u64,
    head: Vec<u8>,
    vault: Vault,
}

impl BlobWriter {
    /// Appends a chunk.
    ///
    /// # Errors
    /// [`VaultError::TooLarge`] as soon as the total passes the limit.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), VaultError> {
        self.bytes += chunk.len() as u64;
        if self.bytes > self.limit {
            return Err(VaultError::TooLarge { limit: self.limit });
        }
        if self.head.len() < HEAD_LEN {
            let take = (HEAD_LEN - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.hasher.update(chunk);
        self.file.write_all(chunk)?;
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.bytes
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// Checks the content type and keeps the bytes as a scratch file in
    /// `tmp/` (deleted when dropped), for content that is not kept as a blob.
    pub fn into_scratch(self, expect: Expect) -> Result<tempfile::NamedTempFile, VaultError> {
        let mime = sniff(&self.head, None, None)?;
        check_expect(&mime, expect)?;
        let mut file = self.file;
        file.flush()?;
        Ok(file)
    }

    /// Checks the content type against the allow-list and `expect`, then
    /// fsyncs and moves the file to its content address. When a blob with the
    /// same hash exists, the new copy is discarded (same content, same name).
    ///
    /// `declared_mime` and `file_name` only help for types without magic
    /// bytes (plain text).
    pub fn commit(
        mut self,
        expect: Expect,
        declared_mime: Option<&str>,
        file_name: Option<&str>,
    ) -> Result<StoredBlob, VaultError> {
        if self.bytes == 0 {
            return Err(VaultError::Rejected("the file is empty".into()));
        }
        let mime = sniff(&self.head, declared_mime, file_name)?;
        check_expect(&mime, expect)?;
        let sha = Sha256Hex(hex::encode(self.hasher.finalize()));
        let dest = self.vault.blob_path(&sha);
        if !dest.exists() {
            self.file.flush()?;
            self.file.as_file().sync_all()?;
            let dir = dest.parent().expect("blob paths have a parent");
            fs::create_dir_all(dir)?;
            self.file.persist(&dest).map_err(|e| e.error)?;
            sync_dir(dir)?;
        }
        Ok(StoredBlob {
            sha256: sha,
            bytes: self.bytes,
            mime,
        })
    }
}

/// MIME types we accept, as sniffed by `infer` from the magic bytes.
const ALLOWED: &[&str] = &[
    // images
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/tiff",
    "image/bmp",
    "image/heif",
    "image/avif",
    "image/jxl",
    // video
    "video/mp4",
    "video/x-m4v",
    "video/quicktime",
    "video/webm",
    "video/x-matroska",
    "video/mpeg",
    "video/x-msvideo",
    // audio
    "audio/mpeg",
    "audio/m4a",
    "audio/ogg",
    "audio/opus",
    "audio/x-flac",
    "audio/x-wav",
    "audio/amr",
    "audio/aac",
    "audio/x-aiff",
    // documents
    "application/pdf",
    "application/rtf",
    "application/epub+zip",
    "application/zip",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
];

/// Decides the MIME type of content from its first bytes.
///
/// # Errors
/// [`VaultError::Rejected`] with a message naming what was found, when the
/// type is not on the allow-list.
pub fn sniff(
    head: &[u8],
    declared_mime: Option<&str>,
    file_name: Option<&str>,
) -> Result<String, VaultError> {
    if let Some(t) = infer::get(head) {
        let mime = t.mime_type();
        return if ALLOWED.contains(&mime) {
            Ok(mime.to_string())
        } else {
            Err(VaultError::Rejected(format!(
                "content is {mime}, which is not an accepted type (photos, videos, audio, PDF and office documents are)"
            )))
        };
    }
    let texty = declared_mime.is_some_and(|m| m.starts_with("text/"))
        || file_name.is_some_and(|n| {
            let n = n.to_ascii_lowercase();
            [".txt", ".csv", ".md", ".vcf", ".ics"]
                .iter()
                .any(|e| n.ends_with(e))
        });
    let looks_text = !head.contains(&0) && utf8_prefix_ok(head);
    if texty && looks_text {
        return Ok("text/plain".into());
    }
    Err(VaultError::Rejected(format!(
        "unrecognised content{}: its first bytes match no accepted type",
        declared_mime
            .map(|m| format!(" (declared {m})"))
            .unwrap_or_default()
    )))
}

/// UTF-8 check that tolerates a multi-byte character cut at the end of the head.
fn utf8_prefix_ok(head: &[u8]) -> bool {
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && head.len() - e.valid_up_to() < 4,
    }
}

fn check_expect(mime: &str, expect: Expect) -> Result<(), VaultError> {
    let ok = match expect {
        Expect::Any => true,
        Expect::Image => mime.starts_with("image/"),
        Expect::Video => mime.starts_with("video/") || mime == "image/gif",
        Expect::Audio => mime.starts_with("audio/") || mime == "video/mp4",
    };
    if ok {
        Ok(())
    } else {
        let want = match expect {
            Expect::Image => "an image",
            Expect::Video => "a video",
            Expect::Audio => "audio",
            Expect::Any => "an accepted type",
        };
        Err(VaultError::Rejected(format!(
            "content is {mime}, not {want} as declared"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_by_content_and_deduplicates() {
        let dir = tempfile::tempdir().unwrap();
        let v = Vault::open(dir.path()).unwrap();
        let jpeg = include_bytes!("../../tests/fixtures/images/hopper.jpg");
        let mut a = v.writer(1 << 20).unwrap();
        for c in jpeg.chunks(1000) {
            a.write(c).unwrap();
        }
        let a = a.commit(Expect::Image, None, None).unwrap();
        assert_eq!(a.mime, "image/jpeg");
        assert_eq!(a.sha256.as_str(), hex::encode(Sha256::digest(jpeg)));
        assert_eq!(fs::read(v.blob_path(&a.sha256)).unwrap(), jpeg);
        let mut b = v.writer(1 << 20).unwrap();
        b.write(jpeg).unwrap();
        let b = b.commit(Expect::Any, None, None).unwrap();
        assert_eq!(a.sha256, b.sha256);
        assert_eq!(
            fs::read_dir(v.root().join("tmp")).unwrap().count(),
            0,
            "no temp file left"
        );
    }

    #[test]
    fn refuses_oversize_and_disguised_content() {
        let dir = tempfile::tempdir().unwrap();
        let v = Vault::open(dir.path()).unwrap();
        let mut w = v.writer(10).unwrap();
        assert!(matches!(
            w.write(&[0u8; 11]),
            Err(VaultError::TooLarge { limit: 10 })
        ));
        drop(w);
        let mut w = v.writer(1 << 20).unwrap();
        let mut elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0".to_vec();
        elf.resize(128, 0);
        w.write(&elf).unwrap();
        let err = w
            .commit(Expect::Image, Some("image/jpeg"), Some("cat.jpg"))
            .unwrap_err();
        assert!(
            err.to_string().contains("application/x-executable"),
            "{err}"
        );
        let mut w = v.writer(1 << 20).unwrap();
        w.write(include_bytes!("../../tests/fixtures/images/hopper.png"))
            .unwrap();
        let err = w.commit(Expect::Video, None, None).unwrap_err();
        assert!(err.to_string().contains("not a video"), "{err}");
        assert_eq!(fs::read_dir(v.root().join("tmp")).unwrap().count(), 0);
        assert!(Sha256Hex::parse("../../etc/passwd").is_none());
    }

    #[test]
    fn plain_text_only_when_declared_and_clean() {
        assert_eq!(
            sniff(b"hello, world\n", Some("text/plain"), None).unwrap(),
            "text/plain"
        );
        assert!(sniff(b"hello\0world", Some("text/plain"), None).is_err());
        assert!(sniff(b"hello", None, Some("notes.bin")).is_err());
    }
}
