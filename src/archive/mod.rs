//! Opening an archive file, and finding the indexes it has.
//!
//! An archive is memory-mapped read-only; one of the crate's two `unsafe` sites (the other is `crate::sigbus`). An index is either
//! *embedded* (the first member is `.tarfs` and its data is an index) or a *sidecar*
//! (`ARCHIVE.tarfs` beside the archive, or under an `--index-dir` mirror of the archive's path).

use std::ops::Range;
use std::path::{Path, PathBuf};

mod file;
mod index_dir;
pub mod s3;
mod slice;
mod unmapped;

pub use file::{buffered_from, digest_of, embedded_of, open_any, open_any_remembered, with_member_at, ArchiveFile, IndexStore, RawStream, Reopened};
pub(crate) use file::read_full;
pub use index_dir::{sidecar_candidates, sidecar_path, IndexDir};
pub use slice::{HoldsArchive, Slice};
pub use unmapped::Unmapped;

use memmap2::{Advice, Mmap};

use crate::error::{IoContext, Result};
use crate::format::compression::Compression;
use crate::format::tarfs;

/// An archive file, mapped into memory.
///
/// Also used to map `.tarfs` sidecars: they are only ever replaced by rename, never rewritten in
/// place, so a mapping of one stays valid.
pub struct Archive {
    path: PathBuf,
    map: Option<Mmap>,
    /// The compression its first bytes show, read at open with one `pread`: through the
    /// mapping, that first look would fault in a whole readahead window (8 MiB where
    /// `read_ahead_kb` is 8192), which a re-index that only samples the archive never needs.
    compression: Option<Compression>,
    compressed_len: Option<u64>,
    mode: u32,
    identity: (u64, u64),
    stamp: tarfs::Stamp,
    /// The mapping's slot in [`crate::sigbus`]'s table, when it is protected.
    guard: Option<usize>,
}

impl Drop for Archive {
    fn drop(&mut self) {
        if let Some(slot) = self.guard {
            crate::sigbus::unregister(slot, self.addresses());
        }
    }
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive").field("path", &self.path).field("len", &self.len()).finish()
    }
}

impl Archive {
    /// Opens and maps `path`. An empty file is an empty archive (it cannot be mapped). Anything
    /// but a regular file is refused, without blocking: a FIFO or a device has no length to map
    /// (`tarfs index` reads those as streams).
    pub fn open(path: &Path) -> Result<Archive> {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        let regular = |meta: &std::fs::Metadata| match crate::ops::in_place::not_regular(meta) {
            Some(kind) => Err(crate::Error::Usage { what: crate::error::UsageError::NotRegular { path: path.to_path_buf(), kind } }),
            None => Ok(()),
        };
        // Judge the name first (a socket cannot even be opened), then the file opened.
        if let Ok(meta) = std::fs::metadata(path) {
            regular(&meta)?;
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32 | rustix::fs::OFlags::NOCTTY.bits() as i32)
            .open(path)
            .at(path)?;
        let meta = file.metadata().at(path)?;
        regular(&meta)?;
        let (mode, identity, stamp) = (meta.mode(), (meta.dev(), meta.ino()), tarfs::Stamp::of(&meta));
        let mut head = [0u8; Compression::HEAD];
        let n = std::os::unix::fs::FileExt::read_at(&file, &mut head, 0).at(path)?;
        let compression = Compression::detect(&head[..n]);
        let map = if meta.len() == 0 {
            None
        } else {
            // SAFETY: `Mmap::map` is unsafe because the mapping aliases the file: a write to it
            // (by another process, or by tarfs's own in-place writers through their descriptor)
            // changes what the slice shows, and a truncation makes reads past the new end raise
            // SIGBUS. tarfs treats the bytes as plain `u8` with no invariant a change could
            // break: every header is parsed and checked where it is used, readers compare what
            // they use with the index and the file's stamp, and `crate::sigbus` turns a read
            // past a truncated end into zeros and an error for this archive
            // (`Archive::check_intact`) instead of the end of the process.
            let map = unsafe { Mmap::map(&file) }.at(path)?;
            Some(map)
        };
        Ok(Archive { path: path.to_path_buf(), map, compression, compressed_len: None, mode, identity, stamp, guard: None }.guarded())
    }

    /// Registers the mapping with [`crate::sigbus`], so that a read past the end of a file that
    /// shrank reads zeros instead of killing the process, and [`Archive::check_intact`] says so.
    fn guarded(mut self) -> Archive {
        if !self.is_empty() {
            self.guard = crate::sigbus::register(self.addresses());
        }
        self
    }

    fn addresses(&self) -> Range<usize> {
        let b = self.bytes();
        b.as_ptr() as usize..(b.as_ptr() as usize).saturating_add(b.len())
    }

    /// An error when a read of the mapping raised `SIGBUS` (the file shrank while it was read):
    /// what was read from there were zeros, not the archive, so no answer may rest on it.
    pub fn check_intact(&self) -> Result<()> {
        match crate::sigbus::faulted(self.addresses()) {
            Some(page) => {
                let at = page.saturating_sub(self.addresses().start);
                let why = format!("the archive shrank while it was read: byte {at} is no longer there (another process truncated or rewrote it)");
                Err(crate::Error::Io { path: self.path.clone(), source: std::io::Error::new(std::io::ErrorKind::UnexpectedEof, why) })
            }
            None => Ok(()),
        }
    }

    /// The file's mode when it was opened.
    pub fn mode(&self) -> u32 {
        self.mode
    }

    /// The file's device and inode when it was opened.
    pub fn identity(&self) -> (u64, u64) {
        self.identity
    }

    /// What `stat` said of the file when it was opened (and mapped): the stamp an index
    /// records, and the freshness verdict compares.
    pub fn stamp(&self) -> tarfs::Stamp {
        self.stamp
    }

    /// The same mapping, named `path` in messages (a spooled copy of standard input is `-`).
    pub fn named(mut self, path: &Path) -> Archive {
        self.path = path.to_path_buf();
        self
    }

    /// The same mapping, named `path` in messages: a temporary decompressed copy of the
    /// compressed file at `path`, which is `compressed_len` bytes long.
    pub fn decompressed_from(mut self, path: &Path, compressed_len: u64) -> Archive {
        self.path = path.to_path_buf();
        self.compressed_len = Some(compressed_len);
        self
    }

    /// The compression of the file, if it is a compressed stream (its first bytes, at open).
    pub fn compression(&self) -> Option<Compression> {
        self.compression
    }

    /// For a decompressed copy: the length of the compressed file it came from.
    pub fn compressed_len(&self) -> Option<u64> {
        self.compressed_len
    }

    /// The archive's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The archive's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or_default()
    }

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.bytes().len() as u64
    }

    /// Whether the archive is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes().is_empty()
    }

    /// Whether most of the archive is out of the page cache: one byte is read at each of 16
    /// places spread over it with `RWF_NOWAIT`, which the kernel answers only from the page
    /// cache. A hint for choosing how to scan; when it cannot tell (an error, a file system
    /// without `RWF_NOWAIT`), the archive counts as cached.
    pub fn is_cold(&self) -> bool {
        let len = self.len();
        if len < 16 {
            return false;
        }
        let Ok(file) = std::fs::File::open(&self.path) else { return false };
        let mut misses = 0;
        for i in 0..16 {
            let mut b = [0u8; 1];
            let at = len / 16 * i + len / 32;
            let r = rustix::io::preadv2(&file, &mut [std::io::IoSliceMut::new(&mut b)], at, rustix::io::ReadWriteFlags::NOWAIT);
            if r == Err(rustix::io::Errno::AGAIN) {
                misses += 1;
            }
        }
        misses >= 8
    }

    /// Hints the kernel about the coming access pattern. Failure is harmless and ignored.
    pub fn advise(&self, advice: Advice) {
        if let Some(m) = &self.map {
            let _ = m.advise(advice);
        }
    }

    /// Hints the kernel about the coming access to the bytes `range` (memmap2 widens it to whole
    /// pages). Failure is harmless and ignored.
    pub fn advise_range(&self, advice: Advice, range: Range<u64>) {
        if let Some(m) = &self.map {
            let end = range.end.min(m.len() as u64);
            if end > range.start {
                let _ = m.advise_range(advice, range.start as usize, (end - range.start) as usize);
            }
        }
    }

    /// Prepares the mapping for reading a sample of headers spread over the archive, then the
    /// byte ranges `whole`: each page fault reads only its page (`MADV_RANDOM`; without it the
    /// kernel reads the whole readahead window around every fault, 8 MiB where `read_ahead_kb`
    /// is 8192), and `whole` is read ahead at once (`MADV_WILLNEED`). Undone by
    /// [`Archive::advise`] with [`Advice::Normal`].
    pub fn advise_sampling(&self, whole: impl IntoIterator<Item = Range<u64>>) {
        self.advise(Advice::Random);
        for r in whole {
            self.advise_range(Advice::WillNeed, r);
        }
    }

    /// The embedded index, if the first member is the regular file `.tarfs`. Its data need not
    /// decode: a damaged embedded index is still the index member (hidden from listings and
    /// extraction, as when it is whole), and readers that cannot decode it say so and scan.
    pub fn embedded(&self) -> Option<Embedded> {
        file::embedded_of(self)
    }
}

/// Where an embedded index is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Embedded {
    /// Byte offset of the `.tarfs` member's header.
    pub member_position: u64,
    /// Byte range of the index data within the archive.
    pub data: Range<usize>,
    /// Byte offset that positions count from: the first block after the `.tarfs` member.
    pub base: u64,
}

