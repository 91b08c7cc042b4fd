//! [`super::ByteSource`] over a compressed stream, decoded front to back.

use std::borrow::Cow;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::archive::{buffered_from, Archive, ArchiveFile};
use crate::error::{Error, IoContext, Result};
use crate::format::compression::Compression;

use super::ByteSource;

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

/// A decoder whose stream ends where what follows a complete compressed stream is not another
/// one (trailing garbage, which gzip, bzip2 and a scan pass over too): a read past the end of
/// the archive's data, such as a window at its last member, is then short, not an error. (A
/// scan reads the decoder itself, and warns of such bytes.)
struct EndAtGarbage<R>(R);

impl<R: Read> Read for EndAtGarbage<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read(buf) {
            Err(e) if crate::stream::is_trailing_garbage(&e) => Ok(0),
            r => r,
        }
    }
}

/// How far behind its position a decoded source can read without decoding again.
const BACK: usize = 64 << 10;

/// A compressed archive, decoded front to back.
pub struct Decoded<'a> {
    archive: &'a dyn ArchiveFile,
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
    /// The decompressed stream of the compressed file `archive`.
    pub fn new(archive: &'a dyn ArchiveFile, compression: Compression) -> Decoded<'a> {
        Decoded { archive, compression, state: Mutex::new(None), read: AtomicU64::new(0), decoded: AtomicU64::new(0) }
    }

    /// The compression.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// A fresh decoder from the start of the stream.
    pub fn stream(&self) -> Result<Box<dyn Read + Send + 'a>> {
        crate::stream::decoder(buffered_from(self.archive, 0), Some(self.compression), self.archive.path())
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
            let reader = Box::new(EndAtGarbage(self.stream().map_err(|e| io::Error::other(e.to_string()))?));
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

