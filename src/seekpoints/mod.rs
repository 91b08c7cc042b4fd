//! Seek points into compressed archives: where decoding can start again, recorded while an
//! archive is indexed, in the same pass that feeds the scanner, and kept in the sidecar's seek
//! section ([`crate::format::seek`]).
//!
//! | format | seek points | module |
//! |---|---|---|
//! | gzip | DEFLATE checkpoints (bit offset and 32 KiB window) every span, by rapidgzip-core | [`gzip`] |
//! | bzip2 | every block, to the bit; each decodes alone | [`bzip2`] |
//! | xz | every block of a multi-block file, from the file's own index | [`xz`] |
//! | zstd | frame starts at least a span apart (multi-frame and seekable-format files) | [`zstd`] |
//!
//! Every pass digests the decompressed stream in pieces of [`PIECE`] bytes ([`PieceHasher`]).
//! [`Checkpointed`] is the [`ByteSource`] that reads through a seek section: a read decodes
//! from the seek point at or before it, whole pieces at a time, and hands out a piece only once
//! its digest holds. So `cat` of one member costs about one span (or block, or frame) of
//! decompression, and a seek point that does not match its archive is an error, never wrong
//! bytes.

pub mod bzip2;
pub mod window;
pub mod gzip;
pub mod read_digest;
pub mod xz;
pub mod zstd;

pub use gzip::{is_trailing_data, read_gzidx, write_gzidx, GzipPass};
pub use read_digest::ReadDigest;
pub use bzip2::Bzip2Pass;
pub use xz::XzPass;
pub use zstd::ZstdPass;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rapidgzip_core::DeflateIndex;
use xxhash_rust::xxh3::xxh3_64;

use crate::archive::ArchiveFile;
use crate::format::compression::Compression;
use crate::format::seek::{self, PieceHasher, Seek as SeekSection, BINDING_BYTES};
use crate::source::ByteSource;

/// The default distance between checkpoints, in bytes of decompressed output (see
/// `docs/ARCHITECTURE.md`, "Seek points", for the measurements behind it).
pub const DEFAULT_SPAN: u64 = 4 << 20;
/// Bytes of decompressed output per digest.
pub const PIECE: u64 = 1 << 20;
/// Pieces a [`Checkpointed`] source keeps decoded.
const CACHED_PIECES: usize = 4;

/// The [`seek::binding`] of an open compressed file of `len` bytes.
pub fn binding_of(file: &File, len: u64) -> io::Result<u64> {
    let n = usize::try_from(len).unwrap_or(usize::MAX).min(BINDING_BYTES);
    let mut head = vec![0u8; n];
    file.read_exact_at(&mut head, 0)?;
    let mut tail = vec![0u8; n];
    file.read_exact_at(&mut tail, len - n as u64)?;
    Ok(seek::binding(len, &head, &tail))
}

/// The binding of a compressed archive: its head and tail, read at their offsets.
pub fn binding_of_archive(archive: &dyn ArchiveFile) -> io::Result<u64> {
    if let Some(b) = archive.lend() {
        return Ok(binding_of_bytes(b));
    }
    let len = archive.len();
    let n = usize::try_from(len).unwrap_or(usize::MAX).min(BINDING_BYTES);
    let head = archive.read_at(0, n)?;
    let tail = archive.read_at(len - n as u64, n)?;
    if head.len() != n || tail.len() != n {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the archive ended before its length"));
    }
    Ok(seek::binding(len, &head, &tail))
}

/// The binding of a mapped compressed file.
pub fn binding_of_bytes(b: &[u8]) -> u64 {
    let n = b.len().min(BINDING_BYTES);
    seek::binding(b.len() as u64, &b[..n], &b[b.len() - n..])
}

/// Digests a decompressed stream as it is read.
pub struct Hashing<R> {
    inner: R,
    hasher: PieceHasher,
}

impl<R: Read> Hashing<R> {
    /// Digests what `inner` gives, in pieces of [`PIECE`].
    pub fn new(inner: R) -> Hashing<R> {
        Hashing { inner, hasher: PieceHasher::new(PIECE) }
    }

    /// Reads the rest, and gives the digests and the stream's length.
    pub fn finish(mut self) -> io::Result<(Vec<u64>, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok(self.hasher.finish())
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Why a seek section cannot be used to read a compressed archive.
#[derive(Debug, thiserror::Error)]
pub enum SeekPointsError {
    /// The section does not parse.
    #[error("{0}")]
    Section(#[from] seek::SeekError),
    /// The section's binding (length, first and last bytes) is another file's.
    #[error("the seek points were made for another file (its length or its first and last 64 KiB differ)")]
    OtherFile,
    /// The section is for another compression format.
    #[error("the seek points are of another format than the file's ({})", .0.name())]
    OtherFormat(Compression),
    /// The archive cannot be opened again for the decoding thread.
    #[error("cannot open it again to seek: {0}")]
    Reopen(io::Error),
    /// The archive opened again cannot be inspected.
    #[error("{0}")]
    Inspect(io::Error),
    /// The archive's name leads to another file than the one mapped.
    #[error("the file was replaced while being read")]
    Replaced,
    /// A GZIDX index that does not record the decompressed length.
    #[error("the index does not record the decompressed length")]
    NoLength,
    /// A GZIDX index for a decompressed stream of another length than the sidecar's.
    #[error("the GZIDX index describes {index} decompressed bytes, the sidecar {sidecar}")]
    Length {
        /// The GZIDX's length.
        index: u64,
        /// The sidecar's.
        sidecar: u64,
    },
    /// A file that is not a GZIDX index of the archive.
    #[error("not a GZIDX index of {}: {reason}", archive.display())]
    NotGzidx {
        /// The archive.
        archive: std::path::PathBuf,
        /// Why.
        reason: rapidgzip_core::IndexError,
    },
    /// A GZIDX index whose checkpoints do not hold together.
    #[error("{0}")]
    BadGzidx(rapidgzip_core::IndexError),
    /// The DEFLATE checkpoints cannot be decoded from.
    #[error("the seek points cannot be used: {0}")]
    Unusable(rapidgzip_core::IndexedReaderError),
    /// The decoding thread could not be started.
    #[error("cannot start the decoding thread: {0}")]
    Thread(io::Error),
    /// The decoding thread stopped before it answered.
    #[error("the decoding thread stopped")]
    ThreadStopped,
    /// The xz file's block structure cannot be read.
    #[error("{0}")]
    XzStructure(crate::format::xz::XzError),
    /// The xz file's blocks are not those the section records.
    #[error("the xz file's blocks are not the ones the seek points were made for")]
    XzBlocks,
    /// The bzip2 blocks the section records do not fit the file.
    #[error("the bzip2 seek points do not fit the file")]
    Bzip2Blocks,
    /// The zstd frames the section records do not fit the file.
    #[error("the zstd seek points do not fit the file")]
    ZstdFrames,
}

/// Why an indexing pass recorded no seek points (the file is still indexed, and read from its
/// start).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoSeekPoints {
    /// The xz file's block structure cannot be read.
    #[error("no seek points: {0}")]
    XzStructure(crate::format::xz::XzError),
    /// An xz file of one block.
    #[error("no seek points: the xz file is a single block (xz -T0 or --block-size writes several)")]
    XzSingleBlock,
    /// An xz file whose index disagrees with its stream.
    #[error("no seek points: the xz index says {index} decompressed bytes, the stream gave {stream}")]
    XzLength {
        /// The xz index's sum.
        index: u64,
        /// The stream's length.
        stream: u64,
    },
    /// A bzip2 file of one block.
    #[error("no seek points: the bzip2 file is a single block")]
    Bzip2SingleBlock,
    /// A zstd file of one frame.
    #[error("no seek points: the zstd file is a single frame (pzstd and writers of the zstd seekable format write several)")]
    ZstdSingleFrame,
    /// A zstd file whose frames all start within the first span.
    #[error("no seek points: its {frames} zstd frames all start within the first span ({span} bytes)")]
    ZstdFramesClose {
        /// The frames.
        frames: u64,
        /// The span.
        span: u64,
    },
    /// A gzip file with data that is not gzip after its last member (which rapidgzip refuses).
    #[error("no seek points: data that is not gzip follows the last gzip member")]
    GzipTrailing,
    /// A compression whose seek points tarfs does not record.
    #[error("no seek points: tarfs does not record them for {} files; reads decompress from the start", .0.name())]
    NotRecorded(crate::format::compression::Compression),
}

impl NoSeekPoints {
    /// Whether `tarfs recompress --seekable` rewrites such a file with seek points (zstd and
    /// xz).
    pub fn recompress_helps(&self) -> bool {
        !matches!(self, NoSeekPoints::Bzip2SingleBlock | NoSeekPoints::GzipTrailing | NoSeekPoints::NotRecorded(_))
    }
}

/// An indexing pass over a compressed file that records seek points as it decodes: the
/// scanner reads it, then [`SeekPass::finish`] gives the seek section.
pub trait SeekPass: Read {
    /// Reads the rest (checking the stream to its end), and gives the seek section, or why the
    /// file has none, and the number of seek points.
    fn finish(self) -> io::Result<(std::result::Result<Vec<u8>, NoSeekPoints>, u64)>;
}

/// Where a [`Checkpointed`] source gets decompressed bytes from: a decoder that can start at
/// a seek point.
pub trait Fetch: Send {
    /// `len` decompressed bytes at `start` (all of them: fewer is an error).
    fn fetch(&mut self, start: u64, len: usize) -> io::Result<Vec<u8>>;
}

/// Pieces decoded, most recently used last.
type Cache = VecDeque<(u64, Arc<Vec<u8>>)>;

/// A compressed archive read through its seek points.
pub struct Checkpointed<'a> {
    archive: &'a dyn ArchiveFile,
    total: u64,
    piece: u64,
    /// The digest of each piece (the sidecar's, for an imported GZIDX, which has none).
    digests: Vec<u64>,
    decoder: Mutex<(Box<dyn Fetch + 'a>, Cache)>,
    read: AtomicU64,
    decoded: AtomicU64,
}

impl std::fmt::Debug for Checkpointed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointed").field("path", &self.archive.path()).field("total", &self.total).finish()
    }
}

/// The digests of a sidecar's seek section: one per piece of the decompressed stream.
#[derive(Debug, Clone)]
pub struct Digests {
    pieces: Vec<u64>,
    piece: u64,
    total: u64,
}

impl Digests {
    /// The digests of the seek section `section`, if it is intact and belongs to `archive`.
    pub fn of(archive: &dyn ArchiveFile, section: &[u8]) -> std::result::Result<Digests, SeekPointsError> {
        let s = SeekSection::parse(section)?;
        Digests::of_parsed(archive, &s)
    }

    fn of_parsed(archive: &dyn ArchiveFile, s: &SeekSection<'_>) -> std::result::Result<Digests, SeekPointsError> {
        if s.compressed_len != archive.len() || binding_of_archive(archive).map_err(SeekPointsError::Reopen)? != s.binding {
            return Err(SeekPointsError::OtherFile);
        }
        let pieces = (0..s.pieces()).map(|k| s.digest(k).expect("k < pieces")).collect();
        Ok(Digests { pieces, piece: s.piece, total: s.total_len })
    }
}

impl<'a> Checkpointed<'a> {
    /// Reads `archive` through the seek section `section` of its sidecar, if the section is
    /// intact and belongs to this file; else why not.
    pub fn open(archive: &'a dyn ArchiveFile, compression: Compression, section: &[u8]) -> std::result::Result<Checkpointed<'a>, SeekPointsError> {
        let s = SeekSection::parse(section)?;
        let kind = match compression {
            Compression::Gzip => seek::KIND_GZIP,
            Compression::Bzip2 => seek::KIND_BZIP2,
            Compression::Xz => seek::KIND_XZ,
            Compression::Zstd => seek::KIND_ZSTD,
            _ => 0,
        };
        if s.kind != kind {
            return Err(SeekPointsError::OtherFormat(compression));
        }
        let digests = Digests::of_parsed(archive, &s)?.pieces;
        let backend: Box<dyn Fetch + 'a> = match s.kind {
            seek::KIND_XZ => Box::new(xz::Blocks::open(archive, s.payload, s.total_len)?),
            seek::KIND_ZSTD => Box::new(zstd::Frames::open(archive, s.payload, s.total_len)?),
            seek::KIND_BZIP2 => Box::new(bzip2::Blocks::open(archive, s.payload, s.total_len)?),
            _ => Box::new(gzip::Resume::lazy(archive.reopen()?, s.payload.to_vec())),
        };
        Ok(Checkpointed::with_backend(archive, backend, s.total_len, s.piece, digests))
    }

    fn with_backend(archive: &'a dyn ArchiveFile, backend: Box<dyn Fetch + 'a>, total: u64, piece: u64, digests: Vec<u64>) -> Checkpointed<'a> {
        Checkpointed { archive, total, piece, digests, decoder: Mutex::new((backend, VecDeque::new())), read: AtomicU64::new(0), decoded: AtomicU64::new(0) }
    }

    /// Reads `archive` through `index` (an imported GZIDX, which has no digests of its own),
    /// checking each piece against `digests` (those of the archive's sidecar): a damaged window
    /// in a GZIDX then gives an error, never wrong bytes.
    pub fn with_index(archive: &'a dyn ArchiveFile, index: DeflateIndex, digests: Digests) -> std::result::Result<Checkpointed<'a>, SeekPointsError> {
        let total = index.uncompressed_size().ok_or(SeekPointsError::NoLength)?;
        if digests.total != total {
            return Err(SeekPointsError::Length { index: total, sidecar: digests.total });
        }
        // Started now: an index the user gave that cannot be used is an error at once.
        let backend = gzip::Resume::now(archive.reopen()?, index)?;
        Ok(Checkpointed::with_backend(archive, Box::new(backend), total, digests.piece, digests.pieces))
    }

    /// Bytes decompressed so far.
    pub fn bytes_decoded(&self) -> u64 {
        self.decoded.load(Ordering::Relaxed)
    }

    /// Piece `k`, decoded (from the cache, or from its checkpoint) and checked.
    fn piece(&self, d: &mut (Box<dyn Fetch + 'a>, Cache), k: u64) -> io::Result<Arc<Vec<u8>>> {
        let (backend, cache) = d;
        if let Some(i) = cache.iter().position(|(n, _)| *n == k) {
            let hit = cache.remove(i).expect("found");
            cache.push_back(hit.clone());
            return Ok(hit.1);
        }
        let start = k * self.piece;
        let len = usize::try_from(self.piece.min(self.total - start)).unwrap_or(usize::MAX);
        let buf = backend.fetch(start, len).map_err(|e| io::Error::new(e.kind(), format!("decompressing bytes {start}..{} through the seek points: {e}", start + len as u64)))?;
        self.decoded.fetch_add(len as u64, Ordering::Relaxed);
        if xxh3_64(&buf) != self.digests[k as usize] {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("decompressed bytes {start}..{} do not match the index's digest: the seek points do not match the archive", start + len as u64),
            ));
        }
        let piece = Arc::new(buf);
        if cache.len() == CACHED_PIECES {
            cache.pop_front();
        }
        cache.push_back((k, piece.clone()));
        Ok(piece)
    }
}

impl<'a> ByteSource for Checkpointed<'a> {
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>> {
        let end = offset.saturating_add(len as u64).min(self.total);
        if offset >= end {
            return Ok(Cow::Owned(Vec::new()));
        }
        let mut p = self.decoder.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = Vec::with_capacity((end - offset) as usize);
        let mut at = offset;
        while at < end {
            let k = at / self.piece;
            let piece = self.piece(&mut p, k)?;
            let from = (at - k * self.piece) as usize;
            let to = ((end - k * self.piece) as usize).min(Vec::len(&piece));
            out.extend_from_slice(&piece[from..to]);
            at += (to - from) as u64;
        }
        self.note_read(out.len() as u64);
        Ok(Cow::Owned(out))
    }


    fn counter(&self) -> &AtomicU64 {
        &self.read
    }

    fn path(&self) -> &Path {
        self.archive.path()
    }

    fn decoded(&self) -> Option<u64> {
        Some(self.bytes_decoded())
    }

    fn seek_points(&self) -> Option<bool> {
        Some(true)
    }
}
