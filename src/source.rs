//! Where an archive's bytes come from: the seam every reader goes through (DESIGN §8).
//!
//! [`ByteSource`] answers one question, *which bytes are at offset X*, and counts what it
//! answers, so that a caller (and a test) can tell how much of an archive a command read.
//!
//! - [`Mapped`]: a memory map (the crate's one mapping, in [`crate::archive`]). It also exposes
//!   the whole slice, which the chunked parallel scan and the mapped reader use directly.
//! - [`Positioned`]: `pread` on an open file, for archives of large members read a few at a time.
//! - [`Decoded`]: a compressed stream, decoded front to back. Reads must move forward; a read
//!   behind the decoder's position starts decoding again from the beginning. A gzip file with
//!   seek points is read through [`crate::seekpoints::Checkpointed`] instead, which resumes
//!   from the nearest checkpoint.
//!
//! A source's [`ByteSource::stamp`] is what freshness compares with an index: the length of the
//! file it reads (for a compressed source, the compressed file's length).

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::archive::Archive;
use crate::error::{Error, IoContext, Result};
use crate::format::compression::Compression;

/// Bytes at offsets.
pub trait ByteSource: Send + Sync {
    /// `len` bytes at `offset`, borrowed where the source can; fewer only at the end of the data.
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>>;
    /// The whole data, when it is in memory (a mapping).
    fn as_slice(&self) -> Option<&[u8]> {
        None
    }
    /// The length of the file the bytes come from, for freshness.
    fn stamp(&self) -> u64;
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

/// A mapped archive.
#[derive(Debug)]
pub struct Mapped<'a> {
    archive: &'a Archive,
    read: AtomicU64,
}

impl<'a> Mapped<'a> {
    /// The source of a mapped archive.
    pub fn new(archive: &'a Archive) -> Mapped<'a> {
        Mapped { archive, read: AtomicU64::new(0) }
    }

}

impl ByteSource for Mapped<'_> {
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>> {
        let data = self.archive.bytes();
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(data.len());
        let end = start.saturating_add(len).min(data.len());
        self.note_read((end - start) as u64);
        Ok(Cow::Borrowed(&data[start..end]))
    }

    fn as_slice(&self) -> Option<&[u8]> {
        Some(self.archive.bytes())
    }

    fn stamp(&self) -> u64 {
        self.archive.compressed_len().unwrap_or(self.archive.len())
    }

    fn counter(&self) -> &AtomicU64 {
        &self.read
    }

    fn path(&self) -> &Path {
        self.archive.path()
    }
}

/// An open file read with `pread`.
#[derive(Debug)]
pub struct Positioned {
    file: File,
    path: PathBuf,
    len: u64,
    read: AtomicU64,
}

impl Positioned {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<Positioned> {
        let file = File::open(path).at(path)?;
        let len = file.metadata().at(path)?.len();
        Ok(Positioned { file, path: path.to_path_buf(), len, read: AtomicU64::new(0) })
    }
}

impl ByteSource for Positioned {
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>> {
        let want = usize::try_from(self.len.saturating_sub(offset)).unwrap_or(usize::MAX).min(len);
        let mut buf = vec![0u8; want];
        let mut got = 0;
        while got < want {
            match self.file.read_at(&mut buf[got..], offset.saturating_add(got as u64)) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(got);
        self.note_read(got as u64);
        Ok(Cow::Owned(buf))
    }

    fn stamp(&self) -> u64 {
        self.len
    }

    fn counter(&self) -> &AtomicU64 {
        &self.read
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

/// The decoder's state: where it is in the decompressed stream.
struct DecodeState<'a> {
    reader: Box<dyn Read + Send + 'a>,
    at: u64,
    /// The last bytes decoded (up to [`BACK`]), which end at `at`: whether handed out or
    /// skipped, so that they are always the stream's bytes `at - recent.len()..at`. A read that
    /// starts a little behind the decoder (a header just after data read with it) is served
    /// from here.
    recent: Vec<u8>,
}

impl DecodeState<'_> {
    /// The offset in the stream of the first byte the decoder still holds.
    fn window_start(&self) -> u64 {
        self.at - self.recent.len() as u64
    }

    /// Notes `fresh`, the bytes just decoded (they end at `at`), in the window.
    fn remember(&mut self, fresh: &[u8]) {
        if fresh.len() >= BACK {
            self.recent.clear();
            self.recent.extend_from_slice(&fresh[fresh.len() - BACK..]);
        } else {
            self.recent.extend_from_slice(fresh);
            let excess = self.recent.len().saturating_sub(BACK);
            self.recent.drain(..excess);
        }
    }

    /// Decodes `n` bytes without handing them out (fewer where the stream ends), keeping the
    /// last of them in the window: a read just behind the new position gets them. How many.
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        let mut chunk = vec![0u8; BACK];
        let mut done = 0;
        while done < n {
            let want = usize::try_from(n - done).unwrap_or(usize::MAX).min(BACK);
            let got = match self.reader.read(&mut chunk[..want]) {
                Ok(0) => break,
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.at += got as u64;
            self.remember(&chunk[..got]);
            done += got as u64;
        }
        Ok(done)
    }

    /// Decodes up to `n` bytes onto `out` (fewer only where the stream ends), keeping them in
    /// the window. How many.
    fn take(&mut self, n: u64, out: &mut Vec<u8>) -> io::Result<u64> {
        let old = out.len();
        let got = (&mut self.reader).take(n).read_to_end(out)?;
        self.at += got as u64;
        self.remember(&out[old..]);
        Ok(got as u64)
    }
}

/// How far behind its position a decoded source can read without decoding again.
const BACK: usize = 64 << 10;

/// A compressed archive, decoded front to back.
pub struct Decoded<'a> {
    archive: &'a Archive,
    compression: Compression,
    state: Mutex<Option<DecodeState<'a>>>,
    read: AtomicU64,
    decoded: AtomicU64,
}

impl std::fmt::Debug for Decoded<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoded").field("path", &self.archive.path()).field("compression", &self.compression).finish()
    }
}

impl<'a> Decoded<'a> {
    /// The decompressed stream of the mapped compressed file `archive`.
    pub fn new(archive: &'a Archive, compression: Compression) -> Decoded<'a> {
        Decoded { archive, compression, state: Mutex::new(None), read: AtomicU64::new(0), decoded: AtomicU64::new(0) }
    }

    /// The compression.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// A fresh decoder from the start of the stream.
    pub fn stream(&self) -> Result<Box<dyn Read + Send + 'a>> {
        crate::stream::decoder(io::Cursor::new(self.archive.bytes()), Some(self.compression), self.archive.path())
    }

    /// Bytes decompressed so far (including those skipped to reach a read).
    pub fn bytes_decoded(&self) -> u64 {
        self.decoded.load(Ordering::Relaxed)
    }

    /// Decompresses the whole stream into an anonymous temporary file beside the archive (or in
    /// the temporary directory) and maps it, for work that needs the whole archive at once.
    pub fn materialize(&self) -> Result<Archive> {
        let path = self.archive.path();
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let (opened, n) = spool(&mut self.stream()?, path, dir)?;
        self.decoded.fetch_add(n, Ordering::Relaxed);
        Ok(opened.decompressed_from(path, self.archive.len()))
    }
}

/// Copies what `r` (the bytes of `path`) gives into an unlinked temporary file in `dir` (or the
/// temporary directory), and maps it: the mapping, and the bytes copied.
pub fn spool(r: &mut dyn Read, path: &Path, dir: &Path) -> Result<(Archive, u64)> {
    let mut tmp = tempfile::NamedTempFile::new_in(dir).or_else(|_| tempfile::NamedTempFile::new()).at(dir)?;
    let n = io::copy(r, tmp.as_file_mut()).map_err(|e| Error::Io { path: path.to_path_buf(), source: e })?;
    let opened = Archive::open(tmp.path())?;
    drop(tmp); // unlinked; the map keeps the data
    Ok((opened, n))
}

impl<'a> Decoded<'a> {
    /// [`ByteSource::read_at`] on the decoder's state `slot` (none: not started, or failed).
    /// The bytes from the window where they are still there, the rest decoded onward; a read
    /// that starts before the window decodes again from the start.
    fn read_in(&self, slot: &mut Option<DecodeState<'a>>, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        if slot.as_ref().is_none_or(|s| s.window_start() > offset) {
            let reader = self.stream().map_err(|e| io::Error::other(e.to_string()))?;
            *slot = Some(DecodeState { reader, at: 0, recent: Vec::new() });
        }
        let s = slot.as_mut().expect("set above");
        let mut buf = Vec::with_capacity(len.min(1 << 24));
        if offset < s.at {
            let from = (offset - s.window_start()) as usize;
            let k = (s.recent.len() - from).min(len);
            buf.extend_from_slice(&s.recent[from..from + k]);
        } else {
            let skipped = s.skip(offset - s.at)?;
            self.decoded.fetch_add(skipped, Ordering::Relaxed);
        }
        let got = s.take((len - buf.len()) as u64, &mut buf)?;
        self.decoded.fetch_add(got, Ordering::Relaxed);
        Ok(buf)
    }
}

impl ByteSource for Decoded<'_> {
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>> {
        let mut guard = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let read = self.read_in(&mut guard, offset, len);
        match read {
            Ok(buf) => {
                self.note_read(buf.len() as u64);
                Ok(Cow::Owned(buf))
            }
            Err(e) => {
                // Where the decoder stopped inside the failed read is not known: the next read
                // starts again from the beginning.
                *guard = None;
                Err(e)
            }
        }
    }

    fn stamp(&self) -> u64 {
        self.archive.len()
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
}

/// The source for a mapped file: decoded when it is a compressed stream, else the mapping.
pub fn source_of(archive: &Archive) -> Box<dyn ByteSource + '_> {
    match compression_of(archive) {
        Some(c) => Box::new(Decoded::new(archive, c)),
        None => Box::new(Mapped::new(archive)),
    }
}

/// The compression of a mapped file, if it is a compressed stream.
pub fn compression_of(archive: &Archive) -> Option<Compression> {
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
    use super::*;
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
        let mapped = Mapped::new(&mapped_archive);
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
        assert_eq!(decoded.stamp(), gz_archive.len());
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
