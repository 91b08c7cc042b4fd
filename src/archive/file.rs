//! An archive as the readers see it: a named run of bytes with a length, a stamp and an identity,
//! read at offsets ([`ArchiveFile`]). A local file ([`super::Archive`], mapped) is one; a remote
//! object is another. Everything that judges or reads an archive — the verdict's sample, tail and
//! digest, the locating of embedded and CSV indexes, the decoded stream, the seek points — asks
//! this trait, so a new kind of archive is one file that implements it, plus one arm in
//! [`open_any`].

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Read};
use std::path::Path;

use super::{Archive, Embedded};
use crate::error::Result;
use crate::format::compression::Compression;
use crate::format::header::{round_up, BLOCK};
use crate::format::tarfs;
use crate::scan::{Entry, ScanOptions, Scanner, Step};
use crate::seekpoints::SeekPointsError;

/// An archive's bytes and what identifies them.
pub trait ArchiveFile: Send + Sync + fmt::Debug {
    /// The archive's name, in messages (a path, or a URL).
    fn path(&self) -> &Path;
    /// Its length in bytes, when it was opened.
    fn len(&self) -> u64;
    /// Whether it is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// What identified it when it was opened: the stamp an index records, and the verdict
    /// compares.
    fn stamp(&self) -> tarfs::Stamp;
    /// Its device and inode (or another kind's equivalent), when it was opened.
    fn identity(&self) -> (u64, u64);
    /// The compression its first bytes show.
    fn compression(&self) -> Option<Compression>;
    /// For a decompressed copy: the length of the compressed file it came from.
    fn compressed_len(&self) -> Option<u64> {
        None
    }
    /// `len` bytes at `offset`, borrowed where they are in memory; fewer only at the end.
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>>;
    /// The whole archive, when it is in memory (a mapping): scans then borrow it.
    fn lend(&self) -> Option<&[u8]> {
        None
    }
    /// An error when what was read cannot be trusted any more (a mapped file that shrank).
    fn check_intact(&self) -> Result<()> {
        Ok(())
    }
    /// Whether the stamp names the content itself (an object's ETag), not only the file that
    /// holds it: where it still holds, the verdict reads no sample of headers.
    fn stamp_is_content(&self) -> bool {
        false
    }
    /// Where the archive keeps its own sidecar when that is not a local file beside it (an
    /// object store keeps it as another object); `None`: beside it, as
    /// [`super::sidecar_candidates`] says.
    fn index_store(&self) -> Option<&dyn IndexStore> {
        None
    }
    /// The same bytes again, for a decoding thread that reads them itself; an error when the
    /// name now leads to other bytes.
    fn reopen(&self) -> std::result::Result<Box<dyn Reopened>, SeekPointsError>;
    /// An error when the archive, opened from what was remembered of it without asking its
    /// storage ([`open_any_remembered`]), is not that archive any more; `Ok` once anything read
    /// of it has been answered for. Before what was read is given out, a caller confirms it.
    fn confirm(&self) -> io::Result<()> {
        Ok(())
    }
}

/// A sidecar kept by the archive's own storage (an object beside an object).
pub trait IndexStore: fmt::Debug {
    /// Its name, in messages.
    fn name(&self) -> std::path::PathBuf;
    /// Its bytes, in one read (or from a local copy); `None` when there is none.
    fn load(&self) -> io::Result<Option<Vec<u8>>>;
    /// Its bytes as the store has them now, past any local copy (which a rewrite then
    /// replaces only if nobody else has since).
    fn refresh(&self) -> io::Result<Option<Vec<u8>>>;
    /// Writes `bytes` as the sidecar, unless another writer's got there first since it was
    /// loaded (then `false`, and theirs is kept).
    fn store(&self, bytes: Vec<u8>) -> io::Result<bool>;
}

/// An archive's bytes, owned by a thread that reads them at offsets.
pub trait Reopened: Send + Sync {
    /// The length.
    fn len(&self) -> u64;
    /// Whether it is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Reads into `buf` at `offset`; fewer bytes only at the end.
    fn read_into(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
}

/// The one table of kinds of archive: what a name on the command line opens. A new kind (an
/// object store's URL, say) is one arm here.
pub fn open_any(path: &Path) -> Result<Box<dyn ArchiveFile>> {
    if super::s3::is_url(path) {
        return Ok(Box::new(super::s3::S3Object::open(&path.to_string_lossy()).map_err(crate::Error::S3)?));
    }
    Ok(Box::new(Archive::open(path)?))
}

/// As [`open_any`], but an object whose identity was remembered with its cached index is
/// opened as it was then, with no request ([`super::s3::S3Object::open_remembered`]): its first
/// answer confirms it, or says it changed ([`super::s3::is_stale`]), and it is then opened again
/// with [`open_any`]. What is read of it is given out only once confirmed
/// ([`ArchiveFile::confirm`]).
pub fn open_any_remembered(path: &Path) -> Result<Box<dyn ArchiveFile>> {
    if super::s3::is_url(path) {
        return Ok(Box::new(super::s3::S3Object::open_remembered(&path.to_string_lossy()).map_err(crate::Error::S3)?));
    }
    open_any(path)
}

/// A local file reopened for a decoding thread: `pread` on its own descriptor, never past the
/// length it had.
pub(super) struct LocalFile {
    pub(super) file: std::fs::File,
    pub(super) len: u64,
}

impl Reopened for LocalFile {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_into(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let room = usize::try_from(self.len.saturating_sub(offset)).unwrap_or(usize::MAX).min(buf.len());
        read_full(&self.file, offset, &mut buf[..room])
    }
}

/// `pread` at `offset` until `buf` is full or the file ends; the bytes read.
pub(crate) fn read_full(file: &std::fs::File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match std::os::unix::fs::FileExt::read_at(file, &mut buf[got..], offset.saturating_add(got as u64)) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

impl ArchiveFile for Archive {
    fn path(&self) -> &Path {
        Archive::path(self)
    }

    fn len(&self) -> u64 {
        Archive::len(self)
    }

    fn stamp(&self) -> tarfs::Stamp {
        Archive::stamp(self)
    }

    fn identity(&self) -> (u64, u64) {
        Archive::identity(self)
    }

    fn compression(&self) -> Option<Compression> {
        Archive::compression(self)
    }

    fn compressed_len(&self) -> Option<u64> {
        Archive::compressed_len(self)
    }

    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>> {
        let data = self.bytes();
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(data.len());
        let end = start.saturating_add(len).min(data.len());
        Ok(Cow::Borrowed(&data[start..end]))
    }

    fn lend(&self) -> Option<&[u8]> {
        Some(self.bytes())
    }

    fn check_intact(&self) -> Result<()> {
        Archive::check_intact(self)
    }

    fn reopen(&self) -> std::result::Result<Box<dyn Reopened>, SeekPointsError> {
        let file = self.reopen_file()?;
        Ok(Box::new(LocalFile { file, len: Archive::len(self) }))
    }
}

impl Archive {
    /// The file at the archive's path, opened again, if it is still the one mapped: the same
    /// device, inode and length (a file replaced or grown since is refused).
    pub(crate) fn reopen_file(&self) -> std::result::Result<std::fs::File, SeekPointsError> {
        use std::os::unix::fs::MetadataExt;
        let file = std::fs::File::open(Archive::path(self)).map_err(SeekPointsError::Reopen)?;
        let meta = file.metadata().map_err(SeekPointsError::Inspect)?;
        if (meta.dev(), meta.ino()) != Archive::identity(self) || meta.len() != Archive::len(self) {
            return Err(SeekPointsError::Replaced);
        }
        Ok(file)
    }
}

/// The member whose header chain starts at byte `position` of `file`, given to `f` with the
/// offset its positions count from (0 where the archive is lent whole; else `position`, the
/// member scanned from a window read there), or `None` when no member starts there. A window
/// grows while the chain is longer than it (long pax records), up to 64 MiB.
pub fn with_member_at<R>(file: &dyn ArchiveFile, position: u64, opts: ScanOptions, f: impl FnOnce(Option<(Entry<'_>, u64)>) -> R) -> io::Result<R> {
    if let Some(bytes) = file.lend() {
        return Ok(f(Scanner::at(bytes, position, opts).next().and_then(|r| r.ok()).map(|e| (e, 0))));
    }
    let mut want = 64 * BLOCK;
    loop {
        let head = file.read_at(position, want)?;
        // A window cut short by the end of the archive is all there is.
        let more = head.len() == want;
        let step = Scanner::window(&head, 0, opts, more, &[]).step();
        match step {
            Ok(Step::Entry(e)) => return Ok(f(Some((e, position)))),
            Ok(Step::NeedData { .. }) | Err(_) if more && want < (64 << 20) => want *= 8,
            _ => return Ok(f(None)),
        }
    }
}

/// The embedded index of `file`, if its first member is the regular file `.tarfs`.
pub fn embedded_of(file: &dyn ArchiveFile) -> Option<Embedded> {
    // Compressed bytes hold no tar header: where they are not in memory, looking would read
    // windows of growing size, up to 64 MiB (an object's requests).
    if file.lend().is_none() && file.compression().is_some() {
        return None;
    }
    let found = with_member_at(file, 0, ScanOptions::default(), |found| {
        let (first, base) = found?;
        if first.path().as_ref() != tarfs::MEMBER_NAME.as_bytes() || first.typeflag != b'0' && first.typeflag != 0 {
            return None;
        }
        let start = base + first.data_offset;
        Some(Embedded {
            member_position: base + first.position,
            data: start as usize..(start + first.stored_size) as usize,
            base: start + round_up(first.stored_size)?,
        })
    });
    found.ok().flatten()
}

/// `file` read front to back from `offset`, in pieces of at most 1 MiB.
pub struct RawStream<'a> {
    file: &'a dyn ArchiveFile,
    at: At<'a>,
}

/// Where a [`RawStream`] reads next: its own offset, or one kept outside it (which a header
/// walk moves over member data, [`crate::stream::scan_unlent`]).
enum At<'a> {
    Own(u64),
    Shared(&'a std::sync::atomic::AtomicU64),
}

impl<'a> RawStream<'a> {
    /// The bytes of `file` from `offset` on.
    pub fn new(file: &'a dyn ArchiveFile, offset: u64) -> RawStream<'a> {
        RawStream { file, at: At::Own(offset) }
    }

    /// The bytes of `file` from the offset `at` holds, which the caller may move.
    pub fn at(file: &'a dyn ArchiveFile, at: &'a std::sync::atomic::AtomicU64) -> RawStream<'a> {
        RawStream { file, at: At::Shared(at) }
    }
}

impl Read for RawStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::sync::atomic::Ordering::Relaxed;
        let want = buf.len().min(1 << 20);
        let at = match &self.at {
            At::Own(at) => *at,
            At::Shared(a) => a.load(Relaxed),
        };
        let piece = self.file.read_at(at, want)?;
        buf[..piece.len()].copy_from_slice(&piece);
        match &mut self.at {
            At::Own(at) => *at += piece.len() as u64,
            At::Shared(a) => a.store(at + piece.len() as u64, Relaxed),
        }
        Ok(piece.len())
    }
}

/// The bytes of `file` from `offset` on, buffered: the lent bytes themselves where the archive
/// lends them, else a [`RawStream`] read in pieces of 1 MiB.
pub fn buffered_from(file: &dyn ArchiveFile, offset: u64) -> Box<dyn io::BufRead + Send + '_> {
    match file.lend() {
        Some(bytes) => Box::new(bytes.get(usize::try_from(offset).unwrap_or(usize::MAX)..).unwrap_or_default()),
        None => Box::new(io::BufReader::with_capacity(1 << 20, RawStream::new(file, offset))),
    }
}

/// The xxh3 digest of all of `file` (a compressed file's binding), and the bytes read.
pub fn digest_of(file: &dyn ArchiveFile) -> io::Result<u64> {
    if let Some(bytes) = file.lend() {
        return Ok(xxhash_rust::xxh3::xxh3_64(bytes));
    }
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut at = 0;
    while at < file.len() {
        let piece = file.read_at(at, 1 << 20)?;
        if piece.is_empty() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the archive ended before its length"));
        }
        h.update(&piece);
        at += piece.len() as u64;
    }
    Ok(h.digest())
}
