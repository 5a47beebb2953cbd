//! Where committed blobs live: the local filesystem (the default) or an
//! S3-compatible object store (AWS S3, MinIO, Garage, Ceph, moto...).
//!
//! Both sides use the same keys, `blobs/ab/cd/<sha256>`, so a vault can move
//! between them with a plain copy. Blobs are immutable and named by their
//! content, so `put` is idempotent and there is never an overwrite to order.
//!
//! With a remote backend the local `blobs/` directory is a staging area: a
//! blob is committed (fsynced) there first, which is what lets a webhook be
//! acknowledged without waiting for the network; the durable `blob.upload`
//! job then copies it to the bucket, checks its size there, and only then
//! removes the local copy (see [`crate::vault::Vault::offload`]).
//!
//! The S3 side is the [`object_store`] crate (Apache Arrow project): request
//! signing (AWS SigV4), multipart upload and retries are its business, not ours.

use std::{fmt, io, ops::Range, path::Path, path::PathBuf, sync::Arc};

use bytes::Bytes;
use futures_util::{future::BoxFuture, stream::BoxStream, StreamExt, TryStreamExt};
use object_store::{path::Path as ObjectPath, GetOptions, GetRange, ObjectStore, WriteMultipart};
use tokio::io::AsyncReadExt;

use super::Sha256Hex;

/// A stream of a blob's bytes, in chunks.
pub type ByteStream = BoxStream<'static, io::Result<Bytes>>;

/// The part of a blob being read: its total size and the chunks of the range asked for.
pub struct BlobRead {
    /// Size of the whole blob, bytes.
    pub size: u64,
    /// The bytes of the requested range (or of the whole blob).
    pub body: ByteStream,
}

/// A home for committed blobs. Implementations must make `put` durable
/// before returning `Ok` (fsync on a disk; a 200 from the object store).
pub trait BlobBackend: Send + Sync + fmt::Debug {
    /// For logs: `local` or `s3://bucket`.
    fn describe(&self) -> String;

    /// True when blobs live in the local `blobs/` directory itself (nothing to upload).
    fn is_local(&self) -> bool;

    /// Stores the complete local file `src` as blob `sha`. Idempotent: storing
    /// the same blob twice is not an error.
    fn put<'a>(&'a self, sha: &'a Sha256Hex, src: &'a Path) -> BoxFuture<'a, io::Result<()>>;

    /// The blob's size in bytes, or `None` when it is not there.
    fn head<'a>(&'a self, sha: &'a Sha256Hex) -> BoxFuture<'a, io::Result<Option<u64>>>;

    /// Reads the blob, or the byte `range` of it (half-open, bytes).
    ///
    /// # Errors
    /// `io::ErrorKind::NotFound` when the blob is not there.
    fn get<'a>(
        &'a self,
        sha: &'a Sha256Hex,
        range: Option<Range<u64>>,
    ) -> BoxFuture<'a, io::Result<BlobRead>>;

    /// Removes the blob; absent is not an error.
    fn delete<'a>(&'a self, sha: &'a Sha256Hex) -> BoxFuture<'a, io::Result<()>>;

    /// Every blob with its size, bytes. Keys that are not blob names are skipped.
    fn list(&self) -> BoxFuture<'_, io::Result<Vec<(Sha256Hex, u64)>>>;
}

/// The relative key of a blob: `blobs/ab/cd/<sha256>`.
pub fn blob_key(sha: &Sha256Hex) -> String {
    let s = sha.as_str();
    format!("blobs/{}/{}/{s}", &s[0..2], &s[2..4])
}

/// Blobs in a directory on the local filesystem (`DATA_DIR/vault` by default).
#[derive(Debug, Clone)]
pub struct LocalBackend {
    root: PathBuf,
}

impl LocalBackend {
    /// Blobs under `root/blobs/`; temp files go to `root/tmp/`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path(&self, sha: &Sha256Hex) -> PathBuf {
        self.root.join(blob_key(sha))
    }
}

impl BlobBackend for LocalBackend {
    fn describe(&self) -> String {
        "local".into()
    }

    fn is_local(&self) -> bool {
        true
    }

    fn put<'a>(&'a self, sha: &'a Sha256Hex, src: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            let dest = self.path(sha);
            if dest == src || tokio::fs::try_exists(&dest).await? {
                return Ok(());
            }
            let (src, root) = (src.to_path_buf(), self.root.clone());
            tokio::task::spawn_blocking(move || {
                let tmp_dir = root.join("tmp");
                std::fs::create_dir_all(&tmp_dir)?;
                let mut tmp = tempfile::Builder::new()
                    .prefix("put-")
                    .tempfile_in(tmp_dir)?;
                io::copy(&mut std::fs::File::open(&src)?, &mut tmp)?;
                tmp.as_file().sync_all()?;
                let dir = dest.parent().expect("blob paths have a parent");
                std::fs::create_dir_all(dir)?;
                tmp.persist(&dest).map_err(|e| e.error)?;
                super::sync_dir(dir)
            })
            .await
            .map_err(io::Error::other)?
        })
    }

    fn head<'a>(&'a self, sha: &'a Sha256Hex) -> BoxFuture<'a, io::Result<Option<u64>>> {
        Box::pin(async move {
            match tokio::fs::metadata(self.path(sha)).await {
                Ok(m) => Ok(Some(m.len())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    fn get<'a>(
        &'a self,
        sha: &'a Sha256Hex,
        range: Option<Range<u64>>,
    ) -> BoxFuture<'a, io::Result<BlobRead>> {
        Box::pin(async move {
            use tokio::io::AsyncSeekExt;
            let mut file = tokio::fs::File::open(self.path(sha)).await?;
            let size = file.metadata().await?.len();
            let range = range.unwrap_or(0..size);
            if range.start > range.end || range.end > size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("range {range:?} is outside a blob of {size} bytes"),
                ));
            }
            file.seek(io::SeekFrom::Start(range.start)).await?;
            let reader = file.take(range.end - range.start);
            let body = tokio_util::io::ReaderStream::new(reader).boxed();
            Ok(BlobRead { size, body })
        })
    }

    fn delete<'a>(&'a self, sha: &'a Sha256Hex) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            match tokio::fs::remove_file(self.path(sha)).await {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        })
    }

    fn list(&self) -> BoxFuture<'_, io::Result<Vec<(Sha256Hex, u64)>>> {
        let dir = self.root.join("blobs");
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut out = Vec::new();
                for e in walkdir::WalkDir::new(&dir).min_depth(3).max_depth(3) {
                    let e = e.map_err(io::Error::other)?;
                    let name = e.file_name().to_string_lossy();
                    if let Some(sha) = Sha256Hex::parse(&name) {
                        out.push((sha, e.metadata().map_err(io::Error::other)?.len()));
                    }
                }
                Ok(out)
            })
            .await
            .map_err(io::Error::other)?
        })
    }
}

/// Multipart part size for uploads, bytes (S3's minimum is 5 MiB). Memory
/// held by one upload is about two parts.
pub const PART_BYTES: usize = 5 << 20;

/// Blobs in any [`ObjectStore`]: S3 through [`S3Settings::connect`], or an
/// in-memory store in tests.
#[derive(Debug, Clone)]
pub struct ObjectBackend {
    store: Arc<dyn ObjectStore>,
    name: String,
}

/// How to reach an S3-compatible bucket (configuration keys `s3_*`).
#[derive(Clone)]
pub struct S3Settings {
    /// Bucket name; must exist.
    pub bucket: String,
    /// Endpoint URL for S3-compatible services (`http://127.0.0.1:9000` for
    /// MinIO); `None` for AWS itself. `http://` endpoints are allowed.
    pub endpoint: Option<String>,
    /// Region (`us-east-1` when the service does not care).
    pub region: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
}

impl fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Settings")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"••••")
            .finish()
    }
}

impl S3Settings {
    /// Builds the client (no request is made yet).
    ///
    /// # Errors
    /// When the settings are invalid (an endpoint that is not a URL...).
    pub fn connect(&self) -> io::Result<ObjectBackend> {
        let mut b = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&self.bucket)
            .with_region(&self.region)
            .with_access_key_id(&self.access_key_id)
            .with_secret_access_key(&self.secret_access_key);
        if let Some(endpoint) = &self.endpoint {
            b = b
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        let store = b
            .build()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        Ok(ObjectBackend::new(
            Arc::new(store),
            format!("s3://{}", self.bucket),
        ))
    }
}

fn io_err(e: object_store::Error) -> io::Error {
    match e {
        object_store::Error::NotFound { .. } => {
            io::Error::new(io::ErrorKind::NotFound, e.to_string())
        }
        e => io::Error::other(e.to_string()),
    }
}

impl ObjectBackend {
    /// Wraps `store`; `name` is what logs show.
    pub fn new(store: Arc<dyn ObjectStore>, name: String) -> Self {
        Self { store, name }
    }

    fn key(sha: &Sha256Hex) -> ObjectPath {
        ObjectPath::from(blob_key(sha))
    }
}

impl BlobBackend for ObjectBackend {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn is_local(&self) -> bool {
        false
    }

    fn put<'a>(&'a self, sha: &'a Sha256Hex, src: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            let mut file = tokio::fs::File::open(src).await?;
            let size = file.metadata().await?.len();
            if self.head(sha).await? == Some(size) {
                return Ok(());
            }
            let key = Self::key(sha);
            if size <= PART_BYTES as u64 {
                let mut buf = Vec::with_capacity(size as usize);
                file.read_to_end(&mut buf).await?;
                self.store
                    .put(&key, Bytes::from(buf).into())
                    .await
                    .map_err(io_err)?;
                return Ok(());
            }
            // Streamed: at most two parts in memory at a time.
            let upload = self.store.put_multipart(&key).await.map_err(io_err)?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
            let mut chunk = vec![0u8; 256 << 10];
            loop {
                let n = file.read(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                writer.wait_for_capacity(1).await.map_err(io_err)?;
                writer.write(&chunk[..n]);
            }
            writer.finish().await.map_err(io_err)?;
            Ok(())
        })
    }

    fn head<'a>(&'a self, sha: &'a Sha256Hex) -> BoxFuture<'a, io::Result<Option<u64>>> {
        Box::pin(async move {
            match self.store.head(&Self::key(sha)).await {
                Ok(m) => Ok(Some(m.size)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(io_err(e)),
            }
        })
    }

    fn get<'a>(
        &'a self,
        sha: &'a Sha256Hex,
        range: Option<Range<u64>>,
    ) -> BoxFuture<'a, io::Result<BlobRead>> {
        Box::pin(async move {
            let opts = GetOptions {
                range: range.map(GetRange::Bounded),
                ..GetOptions::default()
            };
            let r = self
                .store
                .get_opts(&Self::key(sha), opts)
                .await
                .map_err(io_err)?;
            let size = r.meta.size;
            let body = r.into_stream().map_err(io_err).boxed();
            Ok(BlobRead { size, body })
        })
    }

    fn delete<'a>(&'a self, sha: &'a Sha256Hex) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            match self.store.delete(&Self::key(sha)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(io_err(e)),
            }
        })
    }

    fn list(&self) -> BoxFuture<'_, io::Result<Vec<(Sha256Hex, u64)>>> {
        Box::pin(async move {
            let prefix = ObjectPath::from("blobs");
            let mut items = self.store.list(Some(&prefix));
            let mut out = Vec::new();
            while let Some(m) = items.next().await {
                let m = m.map_err(io_err)?;
                if let Some(sha) = m.location.filename().and_then(Sha256Hex::parse) {
                    out.push((sha, m.size));
                }
            }
            Ok(out)
        })
    }
}

/// Exercises a backend end to end with a probe blob of `bytes` bytes
/// (pseudo-random, staged in `scratch`): put twice, head, whole and ranged
/// reads, list, delete. `appliance vault probe` runs it against the
/// configured bucket; tests run it against every backend.
///
/// # Errors
/// The first step that failed, with what was expected.
pub async fn probe(b: &dyn BlobBackend, scratch: &Path, bytes: usize) -> io::Result<()> {
    fn wrong(what: String) -> io::Error {
        io::Error::other(what)
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = seed | 1;
    let data: Vec<u8> = (0..bytes)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let sha = Sha256Hex::parse(&hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&data)))
        .expect("a digest is valid hex");
    let src = tempfile::Builder::new()
        .prefix("probe-")
        .tempfile_in(scratch)?;
    std::fs::write(src.path(), &data)?;
    if b.head(&sha).await?.is_some() {
        return Err(wrong(
            "a blob that was never written is reported present".into(),
        ));
    }
    match b.get(&sha, None).await {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
        Ok(_) => return Err(wrong("a blob that was never written can be read".into())),
    }
    b.put(&sha, src.path()).await?;
    b.put(&sha, src.path()).await?;
    let head = b.head(&sha).await?;
    if head != Some(bytes as u64) {
        return Err(wrong(format!("size after put is {head:?}, not {bytes}")));
    }
    let sha = &sha;
    let read = |r: Option<Range<u64>>| async move {
        let got = b.get(sha, r).await?;
        let chunks: Vec<Bytes> = got.body.try_collect().await?;
        io::Result::Ok((got.size, chunks.concat()))
    };
    if read(None).await? != (bytes as u64, data.clone()) {
        return Err(wrong(
            "the blob read back differs from what was written".into(),
        ));
    }
    let (mid, end) = (bytes / 2, (bytes / 2 + 10).min(bytes));
    let part = read(Some(mid as u64..end as u64)).await?;
    if part.1 != data[mid..end] {
        return Err(wrong("a ranged read returned the wrong bytes".into()));
    }
    if !b.list().await?.contains(&(sha.clone(), bytes as u64)) {
        return Err(wrong("the blob is missing from the listing".into()));
    }
    b.delete(sha).await?;
    b.delete(sha).await?;
    if b.head(sha).await?.is_some() {
        return Err(wrong("the blob is still there after delete".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_backend_keeps_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("vault"));
        probe(&b, dir.path(), PART_BYTES + 70_000).await.unwrap();
    }

    #[tokio::test]
    async fn object_backend_keeps_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(object_store::memory::InMemory::new());
        let b = ObjectBackend::new(store, "memory".into());
        probe(&b, dir.path(), PART_BYTES + 70_000).await.unwrap();
        probe(&b, dir.path(), 1000).await.unwrap();
    }
}
