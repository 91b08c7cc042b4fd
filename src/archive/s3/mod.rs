//! [`ArchiveFile`] over an object in S3-compatible storage (`s3://BUCKET/KEY`), read with range
//! requests through the `object_store` crate (issue #34).
//!
//! - **Opening** is one GET of the object's first [`FIRST_FETCH`] bytes: its answer gives the
//!   length and the ETag, which is pinned. Every later range GET carries `If-Match: ETAG`, so an
//!   object replaced during a read is [`S3Error::Changed`], never a mix of old and new bytes.
//!   Where its index is cached, the object can be opened with no request, as it was remembered
//!   then ([`S3Object::open_remembered`], `pin.rs`): the first answer confirms it, or fails
//!   its `If-Match` ([`S3Error::Stale`]) and the caller opens it afresh.
//! - **The stamp** of an object is its ETag, hashed into [`Stamp::ino`]; `mtime` and `ctime`
//!   are zero (the same bytes uploaded again have a new last-modified time, and the same
//!   ETag). The ETag names the content itself, so where it holds the verdict reads no sample
//!   ([`ArchiveFile::stamp_is_content`]); an object replaced by another of the same length has
//!   another ETag, and its index is judged entry by entry.
//! - **Reads** go through a small cache of fetched ranges with read-ahead: a short read fetches
//!   at least [`MIN_FETCH`] bytes; reads that follow one another (within [`READ_THROUGH`])
//!   double the window (or the read, if larger) up to [`MAX_FETCH`]. A header walk over large members thus fetches a
//!   little around each header and skips the data; over small members, and a sequential read,
//!   it streams in large ranges.
//! - **Retries** are `object_store`'s: 5xx, timeouts and connection failures are retried with
//!   exponential backoff, [`RETRIES`] times within [`RETRY_TIMEOUT`]. What still fails is a
//!   typed [`S3Error`] naming the object and, where the server answered, the HTTP status.
//! - **The sidecar** is the object `KEY.tarfs` ([`ArchiveFile::index_store`]), read in one GET
//!   and kept in the user's cache (`$XDG_CACHE_HOME/tarfs/s3`) under the object's ETag, and
//!   written with a conditional put (create, or update of the ETag it replaces).
//! - **Configuration**: the `AWS_*` environment ([`AmazonS3Builder::from_env`]: credentials,
//!   `AWS_REGION`, `AWS_ENDPOINT_URL`), or `--s3-endpoint` ([`set_endpoint`]). Without
//!   credentials in the environment, the AWS profile (`profile.rs`: keys, region,
//!   `endpoint_url`); without keys there either, requests are unsigned (public buckets). Plain
//!   HTTP is allowed where the endpoint says `http://` (and then no trust store is loaded).
//! - **Counting**: every HTTP request and the bytes of every answer are counted process-wide
//!   ([`totals`]); `-v` prints them.

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::client::{HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService, ReqwestConnector};
use object_store::path::Path as Key;
use object_store::{BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig, UpdateVersion};

use super::file::{ArchiveFile, IndexStore, Reopened};
use crate::format::compression::Compression;
use crate::format::tarfs::Stamp;
use crate::seekpoints::SeekPointsError;

mod pin;
pub mod profile;

/// The bytes fetched when an object is opened: its first range, which also gives its length and
/// ETag, and serves the compression's magic and an embedded index's header.
pub const FIRST_FETCH: u64 = 64 << 10;
/// The least a read fetches: a header and what follows it, without the data of a large member.
pub const MIN_FETCH: u64 = 8 << 10;
/// A read this close past the end of the last one reads on (its window grows) rather than
/// skips: members this small are fetched whole, in large ranges, which costs fewer requests than
/// a small fetch around each header (at 128 KiB a member, 2,000 requests against 40).
pub const READ_THROUGH: u64 = 256 << 10;
/// The most one read-ahead fetches.
pub const MAX_FETCH: u64 = 8 << 20;
/// The fetched bytes kept.
const CACHE_BYTES: u64 = 32 << 20;
/// Retries of a failed request.
pub const RETRIES: usize = 4;
/// How long a request is retried.
pub const RETRY_TIMEOUT: Duration = Duration::from_secs(20);

/// Why an object cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// The name is not `s3://BUCKET/KEY`.
    #[error("{0}: not an s3://BUCKET/KEY name")]
    BadUrl(String),
    /// The store cannot be set up (a bad endpoint, region or credentials setting).
    #[error("{url}: cannot set up the S3 client: {source}")]
    Setup {
        /// The object.
        url: String,
        /// Why.
        source: object_store::Error,
    },
    /// The AWS profile the environment names cannot be used.
    #[error("{url}: {source}")]
    Profile {
        /// The object.
        url: String,
        /// Why.
        source: profile::ProfileError,
    },
    /// The server answered with an error status (after retries, where it is transient).
    #[error("{url}: {op} failed: HTTP status {status}")]
    Status {
        /// The object.
        url: String,
        /// What was asked.
        op: &'static str,
        /// The HTTP status of the last answer.
        status: u16,
    },
    /// No answer from the server (after retries).
    #[error("{url}: {op} failed, no answer from the server: {source}")]
    Unreachable {
        /// The object.
        url: String,
        /// What was asked.
        op: &'static str,
        /// Why.
        source: object_store::Error,
    },
    /// The object was replaced since it was opened (its ETag no longer matches).
    #[error("{url}: the object changed while it was read (it was opened with ETag {etag})")]
    Changed {
        /// The object.
        url: String,
        /// The ETag it had when opened.
        etag: String,
    },
    /// The object has no ETag, which pins what is read.
    #[error("{0}: the server gave the object no ETag")]
    NoEtag(String),
    /// The object opened from its pin (its identity remembered with its cached index) is no
    /// longer that object: nothing of it was read, and it is to be opened afresh.
    #[error("{url}: the object changed since its index was cached (it had ETag {etag})")]
    Stale {
        /// The object.
        url: String,
        /// The ETag remembered.
        etag: String,
    },
}

/// Whether `e`, or an error under it, is [`S3Error::Stale`]: an object opened from its pin
/// that has changed, which the caller opens again afresh (nothing was read of it).
pub fn is_stale(e: &(dyn std::error::Error + 'static)) -> bool {
    matches!(find(e), Some(S3Error::Stale { .. }))
}

/// The [`S3Error`] that is `e` or under it (inside an `io::Error` too), if any: where an error
/// came from the store.
pub fn find<'e>(e: &'e (dyn std::error::Error + 'static)) -> Option<&'e S3Error> {
    crate::error::find_cause::<S3Error>(e)
}

impl S3Error {
    /// The I/O error kind readers see it as.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            S3Error::Status { status: 404, .. } => io::ErrorKind::NotFound,
            S3Error::Status { status: 401 | 403, .. } => io::ErrorKind::PermissionDenied,
            S3Error::Unreachable { .. } => io::ErrorKind::TimedOut,
            S3Error::BadUrl(_) | S3Error::Setup { .. } | S3Error::Profile { .. } => io::ErrorKind::InvalidInput,
            _ => io::ErrorKind::Other,
        }
    }
}

impl From<S3Error> for io::Error {
    fn from(e: S3Error) -> io::Error {
        io::Error::new(e.kind(), e)
    }
}

/// The endpoint `--s3-endpoint` named, set once at startup.
static ENDPOINT: OnceLock<String> = OnceLock::new();

/// Uses `url` as the S3 endpoint (`--s3-endpoint`), over `AWS_ENDPOINT_URL`.
pub fn set_endpoint(url: &str) {
    let _ = ENDPOINT.set(url.to_string());
}

/// Requests made and bytes answered, by every object of this process.
static REQUESTS: AtomicU64 = AtomicU64::new(0);
static FETCHED: AtomicU64 = AtomicU64::new(0);

/// The HTTP requests this process made to object stores, and the bytes of their answers.
pub fn totals() -> (u64, u64) {
    (REQUESTS.load(Ordering::Relaxed), FETCHED.load(Ordering::Relaxed))
}

/// Whether `path` names an object (`s3://...`).
pub fn is_url(path: &Path) -> bool {
    path.as_os_str().as_encoded_bytes().starts_with(b"s3://")
}

/// `s3://BUCKET/KEY` split.
fn split(url: &str) -> Result<(&str, &str), S3Error> {
    let rest = url.strip_prefix("s3://").ok_or_else(|| S3Error::BadUrl(url.into()))?;
    match rest.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok((bucket, key)),
        _ => Err(S3Error::BadUrl(url.into())),
    }
}

/// The HTTP client under `object_store`'s, which counts every request (retries too) and keeps
/// the status of the last answer, so that an error can name it.
#[derive(Debug)]
struct Counting {
    inner: HttpClient,
    last_status: Arc<AtomicU16>,
}

#[async_trait::async_trait]
impl HttpService for Counting {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        REQUESTS.fetch_add(1, Ordering::Relaxed);
        self.last_status.store(0, Ordering::Relaxed);
        let resp = self.inner.execute(req).await?;
        self.last_status.store(resp.status().as_u16(), Ordering::Relaxed);
        let len = resp.headers().get("content-length").and_then(|v| v.to_str().ok()?.parse::<u64>().ok()).unwrap_or(0);
        FETCHED.fetch_add(len, Ordering::Relaxed);
        Ok(resp)
    }
}

/// Connects [`Counting`] clients.
#[derive(Debug)]
struct CountingConnector(Arc<AtomicU16>);

impl HttpConnector for CountingConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(Counting { inner, last_status: self.0.clone() }))
    }
}

/// The store for `bucket`, configured the AWS way.
fn store(url: &str, bucket: &str, last_status: Arc<AtomicU16>) -> Result<AmazonS3, S3Error> {
    let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
    let env = std::env::var_os("AWS_ACCESS_KEY_ID").is_some() || std::env::var_os("AWS_WEB_IDENTITY_TOKEN_FILE").is_some() || std::env::var_os("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some();
    // A profile where the environment has no credentials, as the AWS CLI reads it.
    let profile = if env { None } else { profile::load().map_err(|source| S3Error::Profile { url: url.into(), source })? };
    if let Some(p) = &profile {
        b = with_profile(b, p);
    }
    if let Some(e) = ENDPOINT.get() {
        b = b.with_endpoint(e);
    }
    if b.get_config_value(&AmazonS3ConfigKey::Region).is_none() && b.get_config_value(&AmazonS3ConfigKey::DefaultRegion).is_none() {
        b = b.with_region("us-east-1");
    }
    let http = b.get_config_value(&AmazonS3ConfigKey::Endpoint).is_some_and(|e| e.starts_with("http://"));
    let signed = env || profile.is_some_and(|p| p.keys.is_some());
    let backoff = BackoffConfig { init_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(2), base: 2.0 };
    let retry = RetryConfig { backoff, max_retries: RETRIES, retry_timeout: RETRY_TIMEOUT };
    // A plain-HTTP endpoint needs no trust store: loading the system's (hundreds of files) was
    // most of the time a `cat` spent before its request.
    let client = ClientOptions::new().with_connect_timeout(Duration::from_secs(5)).with_timeout(Duration::from_secs(60)).with_allow_http(http).with_no_system_certificates(http);
    b.with_client_options(client)
        .with_retry(retry)
        .with_skip_signature(!signed)
        .with_http_connector(CountingConnector(last_status))
        .build()
        .map_err(|source| S3Error::Setup { url: url.into(), source })
}

/// `b` with what profile `p` sets: its keys and token, and its region and endpoint where the
/// environment sets none.
fn with_profile(mut b: AmazonS3Builder, p: &profile::Profile) -> AmazonS3Builder {
    if let Some((id, secret)) = &p.keys {
        b = b.with_access_key_id(id).with_secret_access_key(secret);
    }
    if let Some(t) = &p.token {
        b = b.with_token(t);
    }
    let unset = |b: &AmazonS3Builder, keys: &[AmazonS3ConfigKey]| keys.iter().all(|k| b.get_config_value(k).is_none());
    if let Some(r) = p.region.as_ref().filter(|_| unset(&b, &[AmazonS3ConfigKey::Region, AmazonS3ConfigKey::DefaultRegion])) {
        b = b.with_region(r);
    }
    if let Some(e) = p.endpoint.as_ref().filter(|_| unset(&b, &[AmazonS3ConfigKey::Endpoint, AmazonS3ConfigKey::S3Endpoint])) {
        b = b.with_endpoint(e);
    }
    b
}

/// The part of an object shared with decoding threads ([`ArchiveFile::reopen`]).
struct Remote {
    url: String,
    key: Key,
    store: AmazonS3,
    runtime: tokio::runtime::Runtime,
    last_status: Arc<AtomicU16>,
    etag: String,
    len: u64,
    /// The first bytes (up to [`FIRST_FETCH`]): what a pin remembers.
    head: Arc<[u8]>,
    /// Whether the server has answered for `etag` and `len` since the object was opened (not
    /// yet where it was opened from its pin).
    confirmed: AtomicBool,
    cache: Mutex<Fetched>,
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote").field("url", &self.url).field("etag", &self.etag).field("len", &self.len).finish()
    }
}

/// Ranges fetched, newest last, and where the last read ended (for read-ahead).
#[derive(Default)]
struct Fetched {
    ranges: Vec<(u64, Arc<[u8]>)>,
    next: u64,
    window: u64,
}

impl Fetched {
    /// `len` bytes at `offset` if a fetched range holds them all.
    fn find(&mut self, offset: u64, len: u64) -> Option<Vec<u8>> {
        let i = self.ranges.iter().rposition(|(at, b)| *at <= offset && offset + len <= at + b.len() as u64)?;
        let (at, bytes) = self.ranges.remove(i);
        let s = (offset - at) as usize;
        let out = bytes[s..s + len as usize].to_vec();
        self.ranges.push((at, bytes));
        Some(out)
    }

    /// Keeps `bytes` fetched at `at`, dropping the oldest beyond [`CACHE_BYTES`].
    fn keep(&mut self, at: u64, bytes: Arc<[u8]>) {
        self.ranges.push((at, bytes));
        while self.ranges.iter().map(|(_, b)| b.len() as u64).sum::<u64>() > CACHE_BYTES && self.ranges.len() > 1 {
            self.ranges.remove(0);
        }
    }

    /// How much to fetch for a read of `len` at `offset`: at least [`MIN_FETCH`]; where the
    /// read follows the last one (at most [`READ_THROUGH`] past its end), twice the last window
    /// or twice the read, up to [`MAX_FETCH`] (a decoder's reads of 128 KiB thus fetch 256 KiB,
    /// then 512 KiB...).
    fn window(&mut self, offset: u64, len: u64) -> u64 {
        let follows = offset >= self.next && offset - self.next <= READ_THROUGH;
        self.window = if follows && self.window > 0 { (self.window.max(len) * 2).min(MAX_FETCH) } else { MIN_FETCH };
        self.window.max(len)
    }
}

impl Remote {
    /// The typed error of a failed `op` on `key`.
    fn error(&self, op: &'static str, key_url: &str, e: object_store::Error) -> S3Error {
        let status = self.last_status.load(Ordering::Relaxed);
        match e {
            object_store::Error::Precondition { .. } if !self.confirmed.load(Ordering::Relaxed) => S3Error::Stale { url: key_url.into(), etag: self.etag.clone() },
            object_store::Error::Precondition { .. } => S3Error::Changed { url: key_url.into(), etag: self.etag.clone() },
            object_store::Error::NotFound { .. } => S3Error::Status { url: key_url.into(), op, status: 404 },
            _ if status >= 300 => S3Error::Status { url: key_url.into(), op, status },
            source => S3Error::Unreachable { url: key_url.into(), op, source },
        }
    }

    /// Bytes `range` of the object, as it was opened.
    fn get(&self, range: std::ops::Range<u64>) -> Result<Arc<[u8]>, S3Error> {
        let opts = GetOptions { if_match: Some(self.etag.clone()), range: Some(GetRange::Bounded(range)), ..Default::default() };
        let got = self.runtime.block_on(async {
            let r = self.store.get_opts(&self.key, opts).await?;
            let meta = r.meta.clone();
            Ok::<_, object_store::Error>((meta, r.bytes().await?))
        });
        let (meta, bytes) = got.map_err(|e| self.error("GET", &self.url, e))?;
        self.answered(&meta)?;
        // One copy, into what the cache keeps.
        Ok(Arc::from(&bytes[..]))
    }

    /// Confirms the object from an answer's ETag and length (the total of its `Content-Range`),
    /// where it was opened from its pin: another object (of the same ETag but another length,
    /// or a server that ignored `If-Match`) is [`S3Error::Stale`].
    fn answered(&self, meta: &object_store::ObjectMeta) -> Result<(), S3Error> {
        if self.confirmed.load(Ordering::Relaxed) {
            return Ok(());
        }
        if meta.e_tag.as_deref() != Some(self.etag.as_str()) || meta.size != self.len {
            return Err(S3Error::Stale { url: self.url.clone(), etag: self.etag.clone() });
        }
        self.confirmed.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Confirms an object opened from its pin, where no answer has yet: one HEAD with
    /// `If-Match`.
    fn confirm(&self) -> Result<(), S3Error> {
        if self.confirmed.load(Ordering::Relaxed) {
            return Ok(());
        }
        let opts = GetOptions { if_match: Some(self.etag.clone()), head: true, ..Default::default() };
        let meta = self.runtime.block_on(async { Ok::<_, object_store::Error>(self.store.get_opts(&self.key, opts).await?.meta) });
        self.answered(&meta.map_err(|e| self.error("HEAD", &self.url, e))?)
    }

    /// `len` bytes at `offset` (fewer only at the end), from the fetched ranges or fetched now
    /// with read-ahead.
    fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>, S3Error> {
        let len = (len as u64).min(self.len.saturating_sub(offset));
        if len == 0 {
            return Ok(Vec::new());
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(hit) = cache.find(offset, len) {
            cache.next = offset + len;
            return Ok(hit);
        }
        let want = cache.window(offset, len).min(self.len - offset);
        cache.next = offset + len;
        drop(cache);
        let bytes = self.get(offset..offset + want)?;
        if (bytes.len() as u64) < len {
            return Err(S3Error::Changed { url: self.url.clone(), etag: self.etag.clone() });
        }
        let out = bytes[..len as usize].to_vec();
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).keep(offset, bytes);
        Ok(out)
    }
}

impl Reopened for Arc<Remote> {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_into(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let got = self.read(offset, buf.len())?;
        buf[..got.len()].copy_from_slice(&got);
        Ok(got.len())
    }
}

/// An object in S3-compatible storage, read by range requests.
#[derive(Debug)]
pub struct S3Object {
    path: PathBuf,
    remote: Arc<Remote>,
    stamp: Stamp,
    compression: Option<Compression>,
    sidecar: Sidecar,
}

impl S3Object {
    /// Opens `s3://BUCKET/KEY`: one GET of its first bytes, which pins its ETag.
    pub fn open(url: &str) -> Result<S3Object, S3Error> {
        S3Object::open_as(url, false)
    }

    /// Opens `s3://BUCKET/KEY` as it was when its index was last cached, with no request, where
    /// that is remembered (its pin, `pin.rs`); else as [`S3Object::open`] does. Such an object
    /// is confirmed by its first answer, or by [`ArchiveFile::confirm`]; until then, what is
    /// read of it (its index, its first bytes) may be of an object since replaced, and an
    /// answer that says so is [`S3Error::Stale`] (see [`is_stale`]).
    pub fn open_remembered(url: &str) -> Result<S3Object, S3Error> {
        S3Object::open_as(url, true)
    }

    fn open_as(url: &str, remembered: bool) -> Result<S3Object, S3Error> {
        let (bucket, name) = split(url)?;
        let last_status = Arc::new(AtomicU16::new(0));
        let store = store(url, bucket, last_status.clone())?;
        let runtime = runtime(url)?;
        let key = Key::from(name);
        let pinned = if remembered { pin::recall(url) } else { None };
        let confirmed = AtomicBool::new(pinned.is_none());
        let mut remote = Remote { url: url.into(), key, store, runtime, last_status, etag: String::new(), len: 0, head: Arc::from(&[][..]), confirmed, cache: Mutex::default() };
        let first = match pinned {
            Some(p) => {
                (remote.etag, remote.len) = (p.etag, p.len);
                p.head
            }
            None => {
                let (meta, first) = first_range(&remote)?;
                remote.etag = meta.e_tag.clone().ok_or_else(|| S3Error::NoEtag(url.into()))?;
                remote.len = meta.size;
                first
            }
        };
        // The ETag alone: the same bytes uploaded again (a new last-modified time) are the same.
        let stamp = Stamp { ino: xxhash_rust::xxh3::xxh3_64(remote.etag.as_bytes()), mtime: (0, 0), ctime: (0, 0) };
        let compression = Compression::detect(&first[..first.len().min(Compression::HEAD)]);
        remote.head = first.into();
        if !remote.head.is_empty() {
            remote.cache.get_mut().unwrap_or_else(|p| p.into_inner()).keep(0, remote.head.clone());
        }
        let remote = Arc::new(remote);
        let sidecar = Sidecar { url: format!("{url}.tarfs"), key: Key::from(format!("{name}.tarfs")), remote: remote.clone(), seen: Mutex::new(None) };
        Ok(S3Object { path: PathBuf::from(url), remote, stamp, compression, sidecar })
    }

    /// The ETag the object was opened with.
    pub fn etag(&self) -> &str {
        &self.remote.etag
    }
}

/// The object's metadata and first [`FIRST_FETCH`] bytes, in one GET (an empty object, which
/// has no first range, in a HEAD).
fn first_range(r: &Remote) -> Result<(object_store::ObjectMeta, Vec<u8>), S3Error> {
    let opts = GetOptions { range: Some(GetRange::Bounded(0..FIRST_FETCH)), ..Default::default() };
    let got = r.runtime.block_on(async {
        let g = r.store.get_opts(&r.key, opts).await?;
        let meta = g.meta.clone();
        Ok::<_, object_store::Error>((meta, g.bytes().await?.to_vec()))
    });
    match got {
        Ok(x) => Ok(x),
        // 416: the range is not satisfiable, the object is empty.
        Err(_) if r.last_status.load(Ordering::Relaxed) == 416 => {
            let meta = r.runtime.block_on(r.store.head(&r.key)).map_err(|e| r.error("HEAD", &r.url, e))?;
            Ok((meta, Vec::new()))
        }
        Err(e) => Err(r.error("GET", &r.url, e)),
    }
}

impl ArchiveFile for S3Object {
    fn path(&self) -> &Path {
        &self.path
    }

    fn len(&self) -> u64 {
        self.remote.len
    }

    fn stamp(&self) -> Stamp {
        self.stamp
    }

    fn identity(&self) -> (u64, u64) {
        (0, self.stamp.ino)
    }

    fn compression(&self) -> Option<Compression> {
        self.compression
    }

    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>> {
        Ok(Cow::Owned(self.remote.read(offset, len)?))
    }

    fn stamp_is_content(&self) -> bool {
        true
    }

    fn index_store(&self) -> Option<&dyn IndexStore> {
        Some(&self.sidecar)
    }

    fn reopen(&self) -> std::result::Result<Box<dyn Reopened>, SeekPointsError> {
        Ok(Box::new(self.remote.clone()))
    }

    fn confirm(&self) -> io::Result<()> {
        Ok(self.remote.confirm()?)
    }
}

/// The sidecar object `KEY.tarfs`, and the user's cache of it under the archive's ETag.
#[derive(Debug)]
struct Sidecar {
    url: String,
    key: Key,
    remote: Arc<Remote>,
    /// The ETag of the sidecar object when it was loaded: a rewrite replaces only that one.
    seen: Mutex<Option<String>>,
}

impl Sidecar {
    /// The cached copy of the sidecar of the archive as it was opened.
    fn cached(&self) -> Option<PathBuf> {
        pin::sidecar_path(&self.remote.url, &self.remote.etag)
    }

    /// Keeps `bytes` in the cache, and the archive's pin beside it.
    fn cache(&self, bytes: &[u8]) {
        pin::write(self.cached(), bytes);
        self.remember();
    }

    /// Remembers the archive's identity with its cached index (`pin.rs`), where the server
    /// gave it (an object opened from its pin has one already).
    fn remember(&self) {
        let r = &self.remote;
        if r.confirmed.load(Ordering::Relaxed) {
            pin::remember(&r.url, &pin::Pin { etag: r.etag.clone(), len: r.len, head: r.head.to_vec() });
        }
    }
}

impl IndexStore for Sidecar {
    fn name(&self) -> PathBuf {
        PathBuf::from(&self.url)
    }

    fn load(&self) -> io::Result<Option<Vec<u8>>> {
        match self.cached().and_then(|p| std::fs::read(p).ok()) {
            Some(bytes) => {
                // (Not for an object opened from its pin, which is not confirmed yet.)
                self.remember();
                Ok(Some(bytes))
            }
            None => self.refresh(),
        }
    }

    fn refresh(&self) -> io::Result<Option<Vec<u8>>> {
        let r = &self.remote;
        let got = r.runtime.block_on(async {
            let g = r.store.get_opts(&self.key, GetOptions::default()).await?;
            let etag = g.meta.e_tag.clone();
            Ok::<_, object_store::Error>((etag, g.bytes().await?.to_vec()))
        });
        match got {
            Ok((etag, bytes)) => {
                *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = etag;
                self.cache(&bytes);
                Ok(Some(bytes))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(r.error("GET", &self.url, e).into()),
        }
    }

    fn store(&self, bytes: Vec<u8>) -> io::Result<bool> {
        let r = &self.remote;
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mode = match seen {
            Some(e_tag) => PutMode::Update(UpdateVersion { e_tag: Some(e_tag), version: None }),
            None => PutMode::Create,
        };
        let opts = PutOptions { mode, ..Default::default() };
        let put = r.runtime.block_on(r.store.put_opts(&self.key, PutPayload::from(bytes.clone()), opts));
        match put {
            Ok(put) => {
                *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = put.e_tag;
                self.cache(&bytes);
                Ok(true)
            }
            // Another writer's index got there first: theirs is kept.
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => Ok(false),
            Err(e) => Err(r.error("PUT", &self.url, e).into()),
        }
    }
}

/// The objects under `s3://BUCKET/PREFIX/` (a name that ends with `/`), by name, in order: what
/// a batch takes as its archives.
pub fn list(url: &str) -> Result<Vec<PathBuf>, S3Error> {
    let rest = url.strip_prefix("s3://").ok_or_else(|| S3Error::BadUrl(url.into()))?;
    let (bucket, prefix) = rest.split_once('/').filter(|(b, _)| !b.is_empty()).ok_or_else(|| S3Error::BadUrl(url.into()))?;
    let last_status = Arc::new(AtomicU16::new(0));
    let store = store(url, bucket, last_status.clone())?;
    let runtime = runtime(url)?;
    let failed = |e: object_store::Error| match last_status.load(Ordering::Relaxed) {
        status if status >= 300 => S3Error::Status { url: url.into(), op: "LIST", status },
        _ => S3Error::Unreachable { url: url.into(), op: "LIST", source: e },
    };
    // Level by level (the listing with a delimiter), so that no stream adapter is needed.
    let mut found = Vec::new();
    let mut todo = vec![Key::from(prefix)];
    while let Some(dir) = todo.pop() {
        let level = runtime.block_on(store.list_with_delimiter(Some(&dir))).map_err(failed)?;
        found.extend(level.objects.into_iter().map(|o| PathBuf::from(format!("s3://{bucket}/{}", o.location))));
        todo.extend(level.common_prefixes);
    }
    found.sort();
    Ok(found)
}

/// The runtime an object's requests run on: on the thread that waits for them (no worker
/// thread to start; a decoding thread's requests wait for the main thread's, and go on).
fn runtime(url: &str) -> Result<tokio::runtime::Runtime, S3Error> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| S3Error::Setup { url: url.into(), source: object_store::Error::Generic { store: "S3", source: Box::new(e) } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(split("s3://b/k/x.tar").unwrap(), ("b", "k/x.tar"));
        for bad in ["s3://b", "s3://b/", "s3:///k", "http://b/k"] {
            assert!(matches!(split(bad), Err(S3Error::BadUrl(_))), "{bad}");
        }
        assert!(is_url(Path::new("s3://b/k")) && !is_url(Path::new("./s3://b")));
    }

    #[test]
    fn read_ahead_skips_large_gaps_and_grows_on_small_ones() {
        let mut f = Fetched::default();
        assert_eq!(f.window(0, 512), MIN_FETCH);
        f.next = 1024;
        // A header 1 MiB on: a small fetch again.
        assert_eq!(f.window(1 << 20, 512), MIN_FETCH);
        f.next = (1 << 20) + 1024;
        // The next read close behind: the window doubles, up to the most.
        assert_eq!(f.window((1 << 20) + 1024 + 128 * 1024, 512), 2 * MIN_FETCH);
        for _ in 0..20 {
            let w = f.window(f.next, 512);
            assert!(w <= MAX_FETCH);
        }
        assert_eq!(f.window(f.next, 512), MAX_FETCH);
        // A read larger than the window is fetched whole.
        assert_eq!(f.window(0, 20 << 20), 20 << 20);
    }

    #[test]
    fn the_cache_answers_what_it_holds_and_drops_the_oldest() {
        let mut f = Fetched::default();
        f.keep(100, Arc::from(&[7u8; 50][..]));
        assert_eq!(f.find(110, 10), Some(vec![7; 10]));
        assert_eq!(f.find(140, 20), None, "past what was fetched");
        f.keep(1000, Arc::from(vec![1u8; CACHE_BYTES as usize]));
        assert_eq!(f.find(110, 10), None, "dropped beyond the cache's size");
        assert_eq!(f.find(1000, 4), Some(vec![1; 4]));
    }

    #[test]
    fn errors_say_what_readers_see() {
        let e = S3Error::Status { url: "s3://b/k".into(), op: "GET", status: 404 };
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert_eq!(e.to_string(), "s3://b/k: GET failed: HTTP status 404");
        let io: io::Error = S3Error::Changed { url: "s3://b/k".into(), etag: "\"e\"".into() }.into();
        assert!(matches!(io.get_ref().and_then(|e| e.downcast_ref::<S3Error>()), Some(S3Error::Changed { .. })));
    }
}
