//! Where an archive's bytes come from: the seam every reader goes through (DESIGN §8).
//!
//! [`ByteSource`] answers one question, *which bytes are at offset X*, and counts what it
//! answers, so that a caller (and a test) can tell how much of an archive a command read.
//!
//! - [`Direct`]: an uncompressed archive's own bytes ([`crate::archive::ArchiveFile`]): lent
//!   whole by a mapping (the crate's one mapping, in [`crate::archive`]), which the chunked
//!   parallel scan and the mapped reader use directly, or read at offsets (a remote object).
//! - [`Positioned`]: `pread` on an open file, for archives of large members read a few at a time.
//! - [`Decoded`]: a compressed stream, decoded front to back. Reads must move forward; a read
//!   behind the decoder's position starts decoding again from the beginning. A gzip file with
//!   seek points is read through [`crate::seekpoints::Checkpointed`] instead, which resumes
//!   from the nearest checkpoint.
//!
//! One file per backend (`direct.rs`, `positioned.rs`, `decoded.rs`; the seek points' source is
//! [`crate::seekpoints::Checkpointed`]); [`source_of`] is the one table that chooses. Whether an
//! index may answer for the bytes is [`crate::verdict`]'s question, not a source's.

mod decoded;
mod direct;
mod positioned;

use std::borrow::Cow;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::archive::ArchiveFile;
use crate::format::compression::Compression;

pub use decoded::{spool, Decoded};
pub use direct::Direct;
pub use positioned::Positioned;

/// Bytes at offsets.
pub trait ByteSource: Send + Sync {
    /// `len` bytes at `offset`, borrowed where the source can; fewer only at the end of the data.
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>>;
    /// The whole data, when it is in memory (a mapping).
    fn as_slice(&self) -> Option<&[u8]> {
        None
    }
    /// The count of bytes handed out by [`ByteSource::read_at`] and noted by
    /// [`ByteSource::note_read`].
    fn counter(&self) -> &AtomicU64;
    /// Bytes handed out by [`ByteSource::read_at`] so far, and those noted by
    /// [`ByteSource::note_read`].
    fn bytes_read(&self) -> u64 {
        self.counter().load(Ordering::Relaxed)
    }
    /// Counts `n` bytes that a caller read through [`ByteSource::as_slice`] directly.
    fn note_read(&self, n: u64) {
        self.counter().fetch_add(n, Ordering::Relaxed);
    }
    /// The file, for messages.
    fn path(&self) -> &Path;
    /// For a compressed source: the bytes decompressed so far (including those decoded only to
    /// reach a read).
    fn decoded(&self) -> Option<u64> {
        None
    }
    /// For a source that reads through seek points: whether each piece is checked against a
    /// digest. `None` for any other source.
    fn seek_points(&self) -> Option<bool> {
        None
    }
}

/// The source for an archive: decoded when it is a compressed stream, else its own bytes.
pub fn source_of(archive: &dyn ArchiveFile) -> Box<dyn ByteSource + '_> {
    match compression_of(archive) {
        Some(c) => Box::new(Decoded::new(archive, c)),
        None => Box::new(Direct::new(archive)),
    }
}

/// The compression of an archive, if it is a compressed stream.
pub fn compression_of(archive: &dyn ArchiveFile) -> Option<Compression> {
    archive.compression()
}

/// A byte source read from its start as a stream (a scan through checked seek points).
pub(crate) struct SourceStream<'s> {
    source: &'s (dyn ByteSource + 's),
    at: u64,
}

impl<'s> SourceStream<'s> {
    /// `source`, from offset 0.
    pub(crate) fn new(source: &'s (dyn ByteSource + 's)) -> SourceStream<'s> {
        SourceStream { source, at: 0 }
    }
}

impl Read for SourceStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min(1 << 20);
        let bytes = self.source.read_at(self.at, want)?;
        let n = bytes.len().min(want);
        buf[..n].copy_from_slice(&bytes[..n]);
        self.at = self.at.saturating_add(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use super::*;
    use crate::archive::Archive;
    use std::io::Write;

    #[test]
    fn every_source_gives_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let plain = dir.path().join("a.bin");
        std::fs::write(&plain, &data).unwrap();
        let gz = dir.path().join("a.bin.gz");
        let mut e = flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
        e.write_all(&data).unwrap();
        e.finish().unwrap();
        let mapped_archive = Archive::open(&plain).unwrap();
        let gz_archive = Archive::open(&gz).unwrap();
        let mapped = Direct::new(&mapped_archive);
        let positioned = Positioned::open(&plain).unwrap();
        let decoded = Decoded::new(&gz_archive, compression_of(&gz_archive).expect("gzip"));
        // Forward, a little behind (the back-window), far behind (decoding again), past the end.
        let reads = [(0u64, 1000usize), (5000, 70_000), (74_000, 2000), (60_000, 100), (10, 10), (299_990, 100), (400_000, 5)];
        for (off, len) in reads {
            let end = (off as usize).saturating_add(len).min(data.len());
            let want = data.get(off as usize..end).unwrap_or_default();
            for s in [&mapped as &dyn ByteSource, &positioned, &decoded] {
                assert_eq!(&*s.read_at(off, len).unwrap(), want, "{} at {off}+{len}", s.path().display());
            }
        }
        let handed: u64 = reads.iter().map(|&(o, l)| ((o as usize).saturating_add(l).min(data.len()).saturating_sub(o as usize)) as u64).sum();
        assert_eq!((mapped.bytes_read(), positioned.bytes_read(), decoded.bytes_read()), (handed, handed, handed));
        assert!(decoded.bytes_decoded() > data.len() as u64, "the far-behind read decoded again");
    }

    /// Issue #37: after a read that skips forward, a read a little behind the decoder must get
    /// the bytes at its offset, not those of the read before the skip.
    #[test]
    fn a_decoded_source_reads_behind_a_forward_skip() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let gz = dir.path().join("a.bin.gz");
        let mut e = flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
        e.write_all(&data).unwrap();
        e.finish().unwrap();
        let archive = Archive::open(&gz).unwrap();
        let decoded = Decoded::new(&archive, compression_of(&archive).expect("gzip"));
        let want = |off: u64, len: usize| data.get(off as usize..(off as usize + len).min(data.len())).unwrap_or_default().to_vec();
        // Skips forward, then reads behind the skip: the window must hold what was skipped.
        for (off, len) in [(0u64, 1000usize), (5000, 100), (4500, 100), (900, 200), (120_000, 10), (119_000, 1500), (60_000, 10)] {
            assert_eq!(&*decoded.read_at(off, len).unwrap(), want(off, len), "at {off}+{len}");
        }
        // A long run of reads, small and large, mostly near the last (a little behind it, or
        // skipping a little forward), sometimes anywhere.
        let (mut x, mut last) = (0x9e37_79b9_7f4a_7c15u64, 0u64);
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let off = if x % 8 == 0 { x % 310_000 } else { (last + (x >> 8) % 160_000).saturating_sub(80_000) };
            let len = [1usize, 511, 4096, 70_000][(x >> 40) as usize % 4];
            assert_eq!(&*decoded.read_at(off, len).unwrap(), want(off, len), "at {off}+{len}");
            last = off + len as u64;
        }
    }
}

