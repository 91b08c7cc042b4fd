//! `tarfs recompress --seekable`: rewrites a zstd or xz archive that cannot be read from the
//! middle (one zstd frame, one xz block) as one that can: the zstd seekable format (zeekstd),
//! or xz in blocks (liblzma's multi-threaded encoder). `tarfs index` then records its frames or
//! blocks as seek points.
//!
//! The archive's meaning, its decompressed bytes, must not change, and the only copy must never
//! be lost:
//! - the file is locked (`flock`, as in-place changes are) and must be a regular file with one
//!   name: replacing a file that has other names (hard links) would leave them with the old one;
//! - the new file is written beside it under a temporary name, then decoded again, and its
//!   decompressed stream compared (its length, and the xxh3-64 of each MiB) with the
//!   original's, hashed as it was read;
//! - right before the rename, the original must still be the file it was when it was opened,
//!   by its name and by its open descriptor (device, inode, length, modification and status
//!   change times): otherwise the new file is removed and the original left as it is;
//! - the new file gets the original's mode, times and (as root) owner, is fsynced, and is renamed
//!   over the original; the directory is fsynced.
//!
//! At any moment the name holds either the original or the verified new file, and both
//! decompress to the same bytes. The sidecar is written after the rename; a crash before it
//! leaves an old sidecar, which no longer matches the file (its length and binding) and is
//! rebuilt by the next `tarfs index`.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::archive::Archive;
use crate::error::{AfterRecompressStep, Error, IoContext, Result};
use crate::format::compression::Compression;
use crate::format::tarfs::Stamp;
use crate::ops::atomic::{write_atomic_guarded, Perm};
use crate::ops::index::{write_compressed_sidecar, IndexOptions, IndexReport};
use crate::seekpoints::NoSeekPoints;
use crate::seekpoints::Hashing;
use crate::stream::PositionedReader;

/// How to recompress.
#[derive(Debug, Clone)]
pub struct RecompressOptions {
    /// Bytes of decompressed data per zstd frame or xz block.
    pub frame: u64,
    /// The compression level (zstd: 1–22, default 3; xz: 0–9, default 6).
    pub level: Option<u32>,
    /// Threads for xz (0: one per core).
    pub threads: usize,
    /// Recompress a file that is already seekable.
    pub force: bool,
    /// Say what would be done; change nothing.
    pub dry_run: bool,
    /// How to index the new file.
    pub index: IndexOptions,
}

/// What happened to one archive.
#[derive(Debug)]
pub enum Recompressed {
    /// It was rewritten, and indexed.
    Done {
        /// Its format.
        format: Compression,
        /// Its length before and after.
        before: u64,
        /// Its length after.
        after: u64,
        /// Bytes of its decompressed stream.
        decompressed: u64,
        /// The index written for it.
        index: IndexReport,
        /// When the index has no seek points, why.
        no_seek: Option<NoSeekPoints>,
    },
    /// It was already seekable, and had no fresh sidecar: it was indexed (why it was not
    /// rewritten, the index, and why it has no seek points, if it has none).
    Indexed(Seekable, IndexReport, Option<NoSeekPoints>),
    /// It needed nothing: already seekable, with a fresh sidecar (or in a dry run).
    Skipped(Seekable),
    /// A dry run: it would be rewritten, as said.
    WouldRewrite(Rewrite),
}

/// Why an archive can already be read from the middle, and is not rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Seekable {
    /// A zstd file in the seekable format.
    #[error("already in the zstd seekable format")]
    ZstdSeekable,
    /// An xz file of this many blocks.
    #[error("already in {0} xz blocks")]
    XzBlocks(usize),
}

/// How a dry run would rewrite an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewrite {
    /// Its format.
    pub format: Compression,
    /// Bytes of decompressed data per zstd frame or xz block.
    pub frame: u64,
}

impl std::fmt::Display for Rewrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = if self.format == Compression::Zstd { "zstd frames" } else { "xz blocks" };
        write!(f, "dry run: would rewrite it in {unit} of {} bytes", self.frame)
    }
}

/// The zstd seekable format's footer magic, in a file's last four bytes.
const SEEKABLE_MAGIC: [u8; 4] = 0x8F92_EAB1u32.to_le_bytes();

/// Why `bytes` (compressed with `c`) can already be read from the middle, if it can.
fn already_seekable(bytes: &[u8], c: Compression) -> Option<Seekable> {
    match c {
        Compression::Zstd if bytes.ends_with(&SEEKABLE_MAGIC) => Some(Seekable::ZstdSeekable),
        Compression::Xz => match crate::format::xz::blocks(bytes) {
            Ok(b) if b.len() > 1 => Some(Seekable::XzBlocks(b.len())),
            _ => None,
        },
        _ => None,
    }
}

/// Compresses `input` into `out` as `c` in frames (zstd) or blocks (xz) of `opts.frame` bytes.
fn encode(c: Compression, input: &mut dyn Read, out: &mut dyn Write, opts: &RecompressOptions) -> io::Result<()> {
    match c {
        Compression::Zstd => {
            let frame = u32::try_from(opts.frame).ok().filter(|&f| f > 0 && f as usize <= zeekstd::SEEKABLE_MAX_FRAME_SIZE).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "a zstd frame holds 1 byte to 1 GiB"))?;
            let level = i32::try_from(opts.level.unwrap_or(3)).map_err(io::Error::other)?;
            let mut enc = zeekstd::EncodeOptions::new()
                .compression_level(level)
                .checksum_flag(true)
                .frame_size_policy(zeekstd::FrameSizePolicy::Uncompressed(frame))
                .into_encoder(out)
                .map_err(io::Error::other)?;
            io::copy(input, &mut enc)?;
            enc.finish().map_err(io::Error::other)?;
        }
        _ => {
            let threads = if opts.threads == 0 { crate::chunked::cores() } else { opts.threads };
            let stream = liblzma::stream::MtStreamBuilder::new()
                .threads(u32::try_from(threads).unwrap_or(1))
                .block_size(opts.frame)
                .preset(opts.level.unwrap_or(6))
                .check(liblzma::stream::Check::Crc64)
                .encoder()
                .map_err(io::Error::other)?;
            let mut enc = liblzma::write::XzEncoder::new_stream(out, stream);
            io::copy(input, &mut enc)?;
            enc.finish()?;
        }
    }
    Ok(())
}

/// Rewrites the archive at `path` (a `.tar.zst` or `.tar.xz`) in frames or blocks, then writes
/// its sidecar at `sidecar` (a function of the file's final path). See the module's docs for
/// what protects the data.
pub fn recompress(path: &Path, opts: &RecompressOptions, sidecar: impl Fn(&Path) -> PathBuf) -> Result<Recompressed> {
    let unchanged = |e| match e {
        e @ (Error::Refused { .. } | Error::Busy { .. } | Error::Unchanged { .. }) => e,
        e => Error::Unchanged { cause: Box::new(e) },
    };
    let (path, c, before, decompressed) = match replace(path, opts, &sidecar).map_err(unchanged)? {
        Replaced::Not(r) => return Ok(r),
        Replaced::Yes { path, c, before, decompressed } => (path, c, before, decompressed),
    };
    let failed = |step, cause| Error::AfterRecompress { path: path.clone(), step, cause: Box::new(cause) };
    let after = Archive::open(&path).map_err(|e| failed(AfterRecompressStep::Reopen, e))?;
    let dest = sidecar(&path);
    let stream = || crate::stream::decoder(BufReader::new(after.bytes()), Some(c), &path);
    let (index, no_seek) = write_compressed_sidecar(&after, c, &dest, &opts.index, stream)
        .map_err(|e| failed(AfterRecompressStep::Index, e))?;
    Ok(Recompressed::Done { format: c, before, after: after.len(), decompressed, index, no_seek })
}

/// What [`replace`] did.
enum Replaced {
    /// Nothing to the archive (see the answer).
    Not(Recompressed),
    /// It replaced the archive at `path` (compressed with `c`, `before` bytes long) by a new
    /// file of `decompressed` bytes decompressed.
    Yes { path: PathBuf, c: Compression, before: u64, decompressed: u64 },
}

/// Everything up to the rename: any error leaves the archive as it was.
fn replace(path: &Path, opts: &RecompressOptions, sidecar: &dyn Fn(&Path) -> PathBuf) -> Result<Replaced> {
    // Through a symbolic link, the file it names is replaced, not the link.
    let path = std::fs::canonicalize(path).at(path)?;
    let meta = std::fs::metadata(&path).at(&path)?;
    if !meta.is_file() {
        return Err(Error::refused(&path, "it is not a regular file"));
    }
    if meta.nlink() > 1 {
        return Err(Error::refused(&path, format!("it has {} names (hard links); a new file in its place would leave the others with the old one", meta.nlink())));
    }
    let archive = Archive::open(&path)?;
    let c = crate::source::compression_of(&archive);
    let c = match c {
        Some(c @ (Compression::Zstd | Compression::Xz)) => c,
        Some(c @ (Compression::Gzip | Compression::Bzip2)) => {
            return Err(Error::refused(&path, format!("{} files need no recompressing: `tarfs index` records seek points in them as they are", c.name())));
        }
        Some(c) => return Err(Error::refused(&path, format!("it is {}-compressed; recompress rewrites zstd and xz files", c.name()))),
        None => return Err(Error::refused(&path, "it is not compressed; `tarfs index` gives it an index as it is")),
    };
    if let Some(why) = already_seekable(archive.bytes(), c).filter(|_| !opts.force) {
        // It may have been rewritten by a run that stopped before its index was written.
        let dest = sidecar(&path);
        if matches!(crate::ops::index::sidecar_freshness(&archive, &dest, None), crate::ops::index::Freshness::Fresh { .. }) || opts.dry_run {
            return Ok(Replaced::Not(Recompressed::Skipped(why)));
        }
        let stream = || crate::stream::decoder(BufReader::new(archive.bytes()), Some(c), &path);
        let (index, no_seek) = write_compressed_sidecar(&archive, c, &dest, &opts.index, stream)?;
        return Ok(Replaced::Not(Recompressed::Indexed(why, index, no_seek)));
    }
    if opts.dry_run {
        return Ok(Replaced::Not(Recompressed::WouldRewrite(Rewrite { format: c, frame: opts.frame })));
    }
    let file = File::open(&path).at(&path)?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => return Err(Error::Busy { path }),
        Err(e) => return Err(Error::Io { path, source: e.into() }),
    }
    let before = file.metadata().at(&path)?;
    if (before.dev(), before.ino()) != archive.identity() || before.len() != archive.len() || Stamp::of(&before) != archive.stamp() {
        return Err(Error::refused_for_now(&path, "the file was replaced while it was being opened; try again"));
    }
    let guard = || still_the_same(&path, &file, &archive);
    let decompressed = write_atomic_guarded(&path, None, Perm::Exactly(before.mode()), |w| {
        let mut original = Hashing::new(crate::stream::decoder(BufReader::new(archive.bytes()), Some(c), &path)?);
        encode(c, &mut original, w, opts).at(&path)?;
        let (digests, len) = original.finish().at(&path)?;
        w.flush().at(&path)?;
        let new: &File = w.get_ref();
        let at = std::sync::atomic::AtomicU64::new(0);
        let copy = Hashing::new(crate::stream::decoder(BufReader::with_capacity(1 << 20, PositionedReader { file: new, pos: &at }), Some(c), &path)?);
        let (copy_digests, copy_len) = copy.finish().map_err(|e| Error::refused(&path, format!("the new file does not decode ({e}); the archive was not changed")))?;
        if (copy_len, &copy_digests) != (len, &digests) {
            return Err(Error::refused(&path, format!("the new file decodes to other bytes ({copy_len} against {len}); the archive was not changed")));
        }
        let times = std::fs::FileTimes::new().set_accessed(before.accessed().at(&path)?).set_modified(before.modified().at(&path)?);
        new.set_times(times).at(&path)?;
        if rustix::process::geteuid().is_root() {
            rustix::fs::fchown(new, Some(rustix::process::Uid::from_raw(before.uid())), Some(rustix::process::Gid::from_raw(before.gid()))).map_err(|e| Error::Io { path: path.clone(), source: e.into() })?;
        }
        crate::ops::crash::pause_point("recompress-verified");
        Ok(len)
    }, &guard)?;
    Ok(Replaced::Yes { path, c, before: before.len(), decompressed })
}

/// Fails with [`Error::Refused`] unless the file at `path`, open as `file`, is still the one
/// `archive` mapped when it was opened, by its name and by its descriptor: the same device and
/// inode, length, modification and status change times. An overwrite with content of the same
/// length whose mtime is then restored (`touch -r`) still changes the ctime, which nothing but
/// the kernel sets.
fn still_the_same(path: &Path, file: &File, archive: &Archive) -> Result<()> {
    let was = (archive.identity(), archive.len(), archive.stamp());
    for meta in [std::fs::metadata(path).at(path)?, file.metadata().at(path)?] {
        let now = ((meta.dev(), meta.ino()), meta.len(), Stamp::of(&meta));
        if now != was {
            let msg = format!("the file changed while it was being recompressed ({} bytes, {} before; {} bytes, {} now): it was left as it is, and the recompressed copy removed", was.1, was.2, now.1, now.2);
            return Err(Error::refused_for_now(path, msg));
        }
    }
    Ok(())
}
