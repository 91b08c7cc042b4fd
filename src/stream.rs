//! Scanning archives that cannot be mapped: pipes, standard input, tape devices, and compressed
//! streams. The stream is read once, front to back, in large reads (whole records for tapes), and
//! member data is skipped by reading, never by seeking.
//!
//! The same [`Scanner`] decodes the headers: it runs over a window of the stream that starts at a
//! member boundary. When the window ends too early it asks for more bytes
//! ([`crate::scan::Step::NeedData`]), and the driver reads further and tries again. Pax `g` data is kept across windows. Offsets given to the caller are
//! offsets in the (decompressed) stream.
#![deny(clippy::arithmetic_side_effects)]

use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::io::{self, BufReader, Read};
use std::path::Path;

use crate::archive::Archive;
use crate::error::{Error, IoContext, Result};
use crate::format::pax::Globals;
use crate::format::compression::Compression;
use crate::format::header::{round_up, BLOCK};
use crate::read_window::ReadWindow;
use crate::scan::{Entry, ScanEnd, ScanError, ScanErrorKind, ScanOptions, Scanner, Step, Stop, Warning};

/// How a stream scan ended.
#[derive(Debug, Clone, Copy)]
pub struct StreamEnd {
    /// As for a mapped archive; offsets in the stream.
    pub end: ScanEnd,
    /// Total bytes in the stream, trailing padding included.
    pub total_len: u64,
}

/// The largest window a single member's header chain may need: the extension limit, plus room.
fn window_limit(opts: &ScanOptions) -> usize {
    usize::try_from(opts.limits.max_metadata).unwrap_or(usize::MAX).saturating_mul(2).saturating_add(16 << 20)
}

/// Reads into `buf` until it holds `want` bytes or the stream ends. Returns whether it ended.
///
/// Bounded: `buf` grows by at most `chunk` past `want`, both sizes of buffers in memory, and `at`
/// plus a buffer offset is a count of bytes read from the stream.
fn fill(r: &mut dyn Read, buf: &mut ReadWindow, want: usize, chunk: usize, at: u64, path: &Path) -> Result<bool> {
    while buf.len() < want {
        let n = loop {
            match buf.read_from(r, chunk) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(stream_error(path, at.saturating_add(buf.len() as u64), e)),
            }
        };
        if n == 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// An I/O or decompression error, naming the offset in the (decompressed) stream; the error
/// itself stays the source, so that a caller can tell what it was by its type
/// (`seekpoints::is_trailing_data`).
fn stream_error(path: &Path, at: u64, e: io::Error) -> Error {
    Error::Io { path: path.to_path_buf(), source: io::Error::new(e.kind(), AtStreamByte { at, source: e }) }
}

/// An error met at byte `at` of a (decompressed) stream.
#[derive(Debug, thiserror::Error)]
#[error("at byte {at} of the stream: {source}")]
pub struct AtStreamByte {
    /// The offset in the stream.
    pub at: u64,
    /// What went wrong there.
    pub source: io::Error,
}

/// What to do with a member met in a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visit {
    /// Skip its data.
    Skip,
    /// Hand its stored data to the data callback, in order.
    Data,
    /// Stop reading the stream here.
    Stop,
}

/// Scans a stream, handing each member to `f` with offsets in the stream. `chunk` is the read
/// size (a tape's record size). `path` names the stream in errors.
pub fn scan_stream(r: &mut dyn Read, path: &Path, opts: ScanOptions, chunk: usize, mut f: impl FnMut(&Entry<'_>) -> Result<()>) -> Result<StreamEnd> {
    let end = scan_stream_with(r, path, opts, chunk, |e| f(e).map(|()| Visit::Skip), |_| Ok(()))?;
    Ok(end.expect("never stopped"))
}

/// Like [`scan_stream`], but `visit` may ask for a member's stored data, which is then passed to
/// `data` in order, in pieces, or stop the scan (then `None` is returned).
pub fn scan_stream_with(
    r: &mut dyn Read,
    path: &Path,
    opts: ScanOptions,
    chunk: usize,
    visit: impl FnMut(&Entry<'_>) -> Result<Visit>,
    data: impl FnMut(&[u8]) -> Result<()>,
) -> Result<Option<StreamEnd>> {
    scan_reads(r, None, path, opts, chunk, visit, data)
}

/// Scans a regular file by reading its headers, seeking over member data instead of reading it:
/// the fastest way through an archive of large members, warm or cold (see `docs/ARCHITECTURE.md`).
/// Offsets and results are those of [`scan_stream`] and of a scan of the mapped file.
///
/// With `cold` (the file is mostly not in the page cache), the kernel is asked to read ahead of
/// the walk ([`ReadAhead`]).
pub fn scan_file(file: &File, path: &Path, opts: ScanOptions, cold: bool, mut f: impl FnMut(&Entry<'_>) -> Result<()>) -> Result<StreamEnd> {
    let len = file.metadata().at(path)?.len();
    // Reads with pread at a position that skipping moves: one system call per header.
    let pos = AtomicU64::new(0);
    let mut reader = ReadAhead { inner: PositionedReader { file, pos: &pos }, window: cold.then(|| ColdWindow::new(len)) };
    let end = scan_reads(&mut reader, Some(&skipper(&pos, len)), path, opts, SEEKING_READ, |e| f(e).map(|()| Visit::Skip), |_| Ok(()))?;
    Ok(end.expect("never stopped"))
}

/// Skips member data by moving `pos`, a reader's position in a file of `len` bytes, instead of
/// reading it; past the end it declines, so that the error is the reading scanner's.
fn skipper(pos: &AtomicU64, len: u64) -> impl Fn(u64, u64) -> io::Result<bool> + '_ {
    move |from: u64, n: u64| {
        if from.saturating_add(n) > len {
            return Ok(false);
        }
        // Within the file's length, checked just above.
        pos.store(pos.load(Ordering::Relaxed).saturating_add(n), Ordering::Relaxed);
        Ok(true)
    }
}

/// [`scan_file`] of an archive read at offsets ([`ArchiveFile::read_at`]), such as an object
/// in S3-compatible storage: headers are read, member data is skipped, never fetched.
pub fn scan_unlent(file: &dyn crate::archive::ArchiveFile, opts: ScanOptions, mut f: impl FnMut(&Entry<'_>) -> Result<()>) -> Result<StreamEnd> {
    let (len, path) = (file.len(), file.path());
    let pos = AtomicU64::new(0);
    let mut reader = crate::archive::RawStream::at(file, &pos);
    let end = scan_reads(&mut reader, Some(&skipper(&pos, len)), path, opts, SEEKING_READ, |e| f(e).map(|()| Visit::Skip), |_| Ok(()))?;
    Ok(end.expect("never stopped"))
}

/// Reads a file from a position kept outside it, so that a skip is just an addition (an atomic
/// only so that the reader can be sent to a decoder's thread; one thread moves it).
pub(crate) struct PositionedReader<'f> {
    pub(crate) file: &'f File,
    pub(crate) pos: &'f AtomicU64,
}

impl Read for PositionedReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let at = self.pos.load(Ordering::Relaxed);
        let n = self.file.read_at(buf, at)?;
        // A count of bytes read from the file.
        self.pos.store(at.saturating_add(n as u64), Ordering::Relaxed);
        Ok(n)
    }
}

/// How far ahead of a cold walk [`ReadAhead`] asks the kernel to read. 20k members of up to
/// 64 MiB (3.1 GB), cold, index on tmpfs, medians of 5: no window 1.48 s (148 MB read from
/// disk); 128 KiB 1.17 s; 512 KiB 0.72 s; 1 MiB 0.68 s; 2 MiB 0.63 s; 4 MiB 0.88 s; 16 MiB
/// 1.18 s (1,000-1,300 MB read). bsdtar -tf: 1.01 s.
pub(crate) const COLD_WINDOW: u64 = 2 << 20;

/// A [`PositionedReader`] for a header walk that seeks, which keeps the kernel reading ahead of
/// it. Reads a few bytes at a time and skipping look random to the kernel's readahead, so on a
/// cold file each header waits for its own small read: where members are small, thousands of
/// round trips to the disk. Before each read, it asks (`POSIX_FADV_WILLNEED`, which returns at
/// once) for what its [`ColdWindow`] says. No window: plain reads.
struct ReadAhead<'f> {
    inner: PositionedReader<'f>,
    window: Option<ColdWindow>,
}

impl Read for ReadAhead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(w) = &mut self.window {
            if let Some(r) = w.ask(self.inner.pos.load(Ordering::Relaxed)) {
                // Only a hint: failure changes nothing but speed.
                let _ = rustix::fs::fadvise(self.inner.file, r.start, std::num::NonZeroU64::new(r.end.saturating_sub(r.start)), rustix::fs::Advice::WillNeed);
            }
        }
        self.inner.read(buf)
    }
}

/// What a header walk over a cold file asks the kernel to read ahead of it ([`ReadAhead`] for
/// reads, `embed`'s survey for the mapping): unless half a window ahead of the walk is already
/// asked for, the bytes up to [`COLD_WINDOW`] ahead of it. A skip past what was asked starts a
/// new window, so a large member's data costs at most one window.
pub(crate) struct ColdWindow {
    /// The file's length: nothing past it is asked for.
    len: u64,
    /// Where the bytes asked for so far end.
    asked: u64,
}

impl ColdWindow {
    /// A window over a file of `len` bytes.
    pub(crate) fn new(len: u64) -> ColdWindow {
        ColdWindow { len, asked: 0 }
    }

    /// The range to ask for now that the walk is at `at`, if any.
    pub(crate) fn ask(&mut self, at: u64) -> Option<std::ops::Range<u64>> {
        let want = at.saturating_add(COLD_WINDOW).min(self.len);
        let from = if at >= self.asked { Some(at) } else if self.asked.saturating_sub(at) < COLD_WINDOW / 2 { Some(self.asked) } else { None };
        let from = from.filter(|&from| want > from)?;
        self.asked = want;
        Some(from..want)
    }
}

/// The read size of [`scan_file`]: a header and the start of what follows it.
const SEEKING_READ: usize = 1024;

/// The scan loop. `seek(from, n)`, when given, skips `n` bytes of unwanted member data starting at
/// stream offset `from` without reading them, or answers `false` to have them read.
fn scan_reads(
    r: &mut dyn Read,
    seek: Option<&dyn Fn(u64, u64) -> io::Result<bool>>,
    path: &Path,
    opts: ScanOptions,
    chunk: usize,
    mut visit: impl FnMut(&Entry<'_>) -> Result<Visit>,
    mut data: impl FnMut(&[u8]) -> Result<()>,
) -> Result<Option<StreamEnd>> {
    let mut reads = Reads::new(r, seek, path, opts, chunk);
    let end = loop {
        reads.top_up()?;
        match reads.next(&mut visit, &mut data)? {
            Next::Member | Next::Again => {}
            Next::Stopped => return Ok(None),
            Next::End(end) => break end,
        }
    };
    reads.finish(end).map(Some)
}

/// A scan over reads: the window of the stream held in `buf`, from a member boundary on, and what
/// the scan carries from member to member.
struct Reads<'a> {
    r: &'a mut dyn Read,
    seek: Option<&'a dyn Fn(u64, u64) -> io::Result<bool>>,
    path: &'a Path,
    opts: ScanOptions,
    /// The read size.
    chunk: usize,
    buf: ReadWindow,
    /// Where the window starts in `buf`.
    cursor: usize,
    /// The stream offset of `buf[cursor]`.
    start: u64,
    /// Whether the stream has ended (everything is in `buf`).
    eof: bool,
    /// The pax `g` data met so far.
    globals: Globals,
    members: u64,
    global_attributes: bool,
    /// Where skipped data is read to: one buffer for the whole scan (a new zeroed one for each
    /// member cost a memset of a read's size per member).
    scratch: Vec<u8>,
}

/// What one step of the scan over reads found.
enum Next {
    /// A member, handed to the caller and passed over.
    Member,
    /// Nothing yet: the window was too short, and more was read.
    Again,
    /// The caller asked to stop.
    Stopped,
    /// The archive's end (offsets in the stream).
    End(ScanEnd),
}

/// Where a member met in the window ends, and whether its data is wanted.
struct Span {
    header_offset: u64,
    stored: u64,
    /// The stream offset where its data ends.
    data_end: u64,
    /// Bytes from the window's start to the next member.
    next_rel: u64,
    want: bool,
}

/// Arithmetic here is bounded by what was read, with one exception that is checked: `start` and
/// `total` count bytes read from (or sought over within) the stream, so they stay far below
/// 2^64; `cursor` and the other buffer offsets are within `buf`; offsets of an entry are its
/// window offsets (within `buf`) plus `start`. The one value from the input that moves a
/// position without reading, a member's span (`next_rel`), is checked against overflow, and a
/// member whose end would pass 2^64 is an error at its header.
#[allow(clippy::arithmetic_side_effects)]
impl<'a> Reads<'a> {
    fn new(r: &'a mut dyn Read, seek: Option<&'a dyn Fn(u64, u64) -> io::Result<bool>>, path: &'a Path, opts: ScanOptions, chunk: usize) -> Self {
        let chunk = chunk.max(BLOCK);
        let buf = ReadWindow::with_capacity(chunk * 2);
        Reads { r, seek, path, opts, chunk, buf, cursor: 0, start: 0, eof: false, globals: Globals::default(), members: 0, global_attributes: false, scratch: Vec::new() }
    }

    fn scan_err(&self, source: ScanError, base: u64) -> Error {
        Error::Scan { path: self.path.to_path_buf(), source: ScanError { offset: source.offset + base, ..source } }
    }

    /// Reads until the window holds two blocks, enough for the scanner to tell a header, an end
    /// marker and a lone zero block apart, unless the stream ends first.
    fn top_up(&mut self) -> Result<()> {
        if !self.eof && self.buf.len() - self.cursor < 2 * BLOCK {
            if self.cursor > 0 {
                self.buf.drain_front(self.cursor);
                self.cursor = 0;
            }
            self.eof = fill(self.r, &mut self.buf, 2 * BLOCK, self.chunk, self.start, self.path)?;
        }
        Ok(())
    }

    /// Scans the window for its first member: hands it to `visit` and passes over it.
    fn next(&mut self, visit: &mut impl FnMut(&Entry<'_>) -> Result<Visit>, data: &mut impl FnMut(&[u8]) -> Result<()>) -> Result<Next> {
        let (cursor, start) = (self.cursor, self.start);
        let mut sc = Scanner::window(&self.buf[cursor..], 0, self.opts, !self.eof, self.globals.as_slice());
        let step = sc.step();
        let new_globals: Vec<Vec<u8>> = sc.global_ranges().iter().map(|&(s, l)| self.buf[cursor + s as usize..cursor + (s + l) as usize].to_vec()).collect();
        let mut e = match step {
            Ok(Step::Entry(e)) => e,
            Ok(Step::NeedData { min_bytes }) => {
                self.grow(min_bytes)?;
                return Ok(Next::Again);
            }
            Err(e) => return Err(self.scan_err(e, start)),
            Ok(Step::End(mut end)) => {
                end.end_offset += start;
                end.members = self.members;
                end.global_attributes |= self.global_attributes;
                return Ok(Next::End(end));
            }
        };
        e.position += start;
        e.header_offset += start;
        e.data_offset += start;
        let want = match visit(&e)? {
            Visit::Stop => return Ok(Next::Stopped),
            Visit::Data => true,
            Visit::Skip => false,
        };
        self.members += 1;
        self.global_attributes |= sc.end().is_some_and(|x| x.global_attributes);
        // Offsets in a stream of unknown length: checked, so that no size wraps around.
        let next_rel = round_up(e.stored_size)
            .and_then(|span| (e.data_offset - start).checked_add(span))
            .filter(|n| start.checked_add(*n).is_some())
            .ok_or_else(|| stream_error(self.path, e.header_offset, io::Error::new(io::ErrorKind::InvalidData, format!("member data of {} bytes runs past any possible end", e.stored_size))))?;
        let span = Span { header_offset: e.header_offset, stored: e.stored_size, data_end: e.data_offset + e.stored_size, next_rel, want };
        for g in &new_globals {
            let bad = |e| Error::Scan { path: self.path.to_path_buf(), source: ScanError { offset: span.header_offset, kind: ScanErrorKind::Pax(e) } };
            self.globals.add(g, self.opts.limits.max_metadata).map_err(bad)?;
        }
        self.pass(&span, data)?;
        Ok(Next::Member)
    }

    /// The window ended before the scanner could decide: reads until it holds `min_bytes` at
    /// least, doubling it, up to what one member's header chain may need (past that, the chain
    /// that starts the window is too long).
    fn grow(&mut self, min_bytes: u64) -> Result<()> {
        let have = self.buf.len() - self.cursor;
        if have >= window_limit(&self.opts) {
            return Err(self.scan_err(ScanError { offset: 0, kind: ScanErrorKind::ChainTooLong(self.opts.limits.max_chain) }, self.start));
        }
        if self.cursor > 0 {
            self.buf.drain_front(self.cursor);
            self.cursor = 0;
        }
        let want = usize::try_from(min_bytes).unwrap_or(usize::MAX).max(have + have.max(self.chunk));
        self.eof = fill(self.r, &mut self.buf, want, self.chunk, self.start, self.path)?;
        Ok(())
    }

    /// Passes over the member at the window's start: hands the part of its data in the window
    /// to `data` if wanted, then moves the window to the next member, skipping the rest.
    fn pass(&mut self, m: &Span, data: &mut impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let have = (self.buf.len() - self.cursor) as u64;
        let data_rel = (m.data_end - m.stored) - self.start;
        if m.want {
            // The part of the data already in the window.
            let from = (self.cursor as u64 + data_rel).min(self.buf.len() as u64) as usize;
            let to = (self.cursor as u64 + data_rel + m.stored).min(self.buf.len() as u64) as usize;
            data(&self.buf[from..to])?;
        }
        if m.next_rel <= have {
            self.cursor += m.next_rel as usize;
            self.start += m.next_rel;
            return Ok(());
        }
        let mut skip = m.next_rel - have;
        self.start += have;
        self.buf.clear();
        self.cursor = 0;
        if let Some(seek) = self.seek.filter(|_| !m.want) {
            if seek(self.start, skip).map_err(|e| stream_error(self.path, self.start, e))? {
                self.start += skip;
                skip = 0;
            }
        }
        self.skip(skip, m, data)
    }

    /// Skips `skip` bytes of the member `m` by reading them (handing its data to `data` if
    /// wanted).
    fn skip(&mut self, skip: u64, m: &Span, data: &mut impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
        if skip > 0 && self.scratch.is_empty() {
            self.scratch = vec![0u8; self.chunk.max(64 << 10)];
        }
        let mut sink = std::mem::take(&mut self.scratch);
        let skipped = self.skip_into(&mut sink, skip, m, data);
        self.scratch = sink;
        skipped
    }

    /// [`Reads::skip`], reading into `sink`.
    fn skip_into(&mut self, sink: &mut [u8], mut skip: u64, m: &Span, data: &mut impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
        while skip > 0 {
            let len = skip.min(sink.len() as u64) as usize;
            let n = match self.r.read(&mut sink[..len]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(stream_error(self.path, self.start, e)),
            };
            if m.want && self.start < m.data_end {
                let upto = ((m.data_end - self.start) as usize).min(n);
                data(&sink[..upto])?;
            }
            if n == 0 {
                self.eof = true;
                if self.start < m.data_end {
                    let kind = ScanErrorKind::PastEof { what: "member data", size: m.stored, missing: m.data_end - self.start };
                    return Err(self.scan_err(ScanError { offset: m.header_offset, kind }, 0));
                }
                break; // only the padding of the last member is missing
            }
            skip -= n as u64;
            self.start += n as u64;
        }
        Ok(())
    }

    /// Reads the rest, to know the stream's length and whether anything but zeros follows the
    /// archive's end.
    fn finish(self, mut end: ScanEnd) -> Result<StreamEnd> {
        let mut total = self.start + (self.buf.len() - self.cursor) as u64;
        let mut nonzero_after = self.buf[self.cursor..].iter().skip((end.end_offset - self.start) as usize + BLOCK).any(|&b| b != 0);
        let mut sink = vec![0u8; self.chunk.max(64 << 10)];
        let mut trailing_error = None;
        loop {
            let n = match self.r.read(&mut sink) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_trailing_garbage(&e) => {
                    // Past the archive's end, bytes that do not start another compressed stream:
                    // gzip and bzip2 ignore such trailing garbage too. The archive is complete.
                    trailing_error = Some(Warning::TrailingData { zeros: end.end_offset, offset: total });
                    break;
                }
                // Anything else (a checksum failure above all) means the data is corrupt.
                Err(e) => return Err(stream_error(self.path, total, e)),
            };
            if n == 0 {
                break;
            }
            nonzero_after |= sink[..n].iter().any(|&b| b != 0);
            total += n as u64;
        }
        if end.stop == Stop::LoneZeroBlock {
            end.warning = nonzero_after.then_some(Warning::LoneZeroBlock { offset: end.end_offset });
        }
        if trailing_error.is_some() {
            end.warning = trailing_error;
        }
        Ok(StreamEnd { end, total_len: total })
    }
}

/// Whether a decoder's error says that what follows a complete stream is not another stream (as
/// opposed to a corrupt stream). The decoders give no error kinds for this; their messages do.
pub(crate) fn is_trailing_garbage(e: &io::Error) -> bool {
    let m = e.to_string().to_ascii_lowercase();
    ["invalid gzip header", "bz2 header missing", "unknown frame descriptor", "format not recognized"].iter().any(|k| m.contains(k))
}

/// Opens `path` for streaming: a decompressor when its first bytes are a compressed format's,
/// the file itself otherwise. `wrap` sees the file's own (compressed) bytes, for progress.
/// Returns the reader and the compression found.
pub fn open_stream<'a>(path: &Path, wrap: impl FnOnce(File) -> Box<dyn Read + Send + 'a>) -> Result<(Box<dyn Read + Send + 'a>, Option<Compression>)> {
    let mut file = File::open(path).at(path)?;
    let mut head = [0u8; Compression::HEAD];
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..]).at(path)? {
            0 => break,
            k => n = n.saturating_add(k),
        }
    }
    let file = BufReader::with_capacity(1 << 20, wrap(File::open(path).at(path)?));
    let c = Compression::detect(&head[..n]);
    Ok((decoder(file, c, path)?, c))
}

/// Wraps `input` in the decompressor for `c` (the stream itself for `None`).
/// Standard input as a tar stream, decompressed when its first bytes say it is compressed.
pub fn open_stdin() -> Result<Box<dyn Read + Send + 'static>> {
    let path = Path::new("-");
    let mut input = BufReader::with_capacity(1 << 20, io::stdin());
    let c = peek_compression(&mut input, path)?;
    decoder(input, c, path)
}

/// The compression the first bytes of `input` (named `path`) show, peeked at without
/// consuming them: a pipe cannot be read twice.
pub(crate) fn peek_compression(input: &mut impl io::BufRead, path: &Path) -> Result<Option<Compression>> {
    loop {
        match input.fill_buf() {
            Ok(head) => return Ok(Compression::detect(&head[..head.len().min(Compression::HEAD)])),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Io { path: path.to_path_buf(), source: e }),
        }
    }
}

/// Standard input, decompressed if it is compressed, copied into an unlinked temporary file in
/// `dir` (or the temporary directory) and mapped, named `-`: for work that needs the whole
/// archive at once, such as `extract -`. Its only index can be an embedded one.
pub fn spool_stdin(dir: &Path) -> Result<Archive> {
    let stdin = Path::new("-");
    let (opened, _) = crate::source::spool(&mut open_stdin()?, stdin, dir)?;
    Ok(opened.named(stdin))
}

pub fn decoder<'a, R: io::BufRead + Send + 'a>(input: R, c: Option<Compression>, path: &Path) -> Result<Box<dyn Read + Send + 'a>> {
    Ok(match c {
        None => Box::new(input),
        Some(Compression::Gzip) => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Some(Compression::Bzip2) => Box::new(bzip2::bufread::MultiBzDecoder::new(input)),
        Some(Compression::Xz) => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(input)),
        Some(Compression::LzmaAlone) => {
            let stream = liblzma::stream::Stream::new_lzma_decoder(u64::MAX).map_err(|e| Error::Io { path: path.to_path_buf(), source: e.into() })?;
            Box::new(liblzma::bufread::XzDecoder::new_stream(input, stream))
        }
        Some(Compression::Zstd) => Box::new(zstd::stream::read::Decoder::with_buffer(input).at(path)?),
        Some(other) => {
            return Err(Error::Usage { what: crate::error::UsageError::Unsupported { path: path.to_path_buf(), compression: other.name() } })
        }
    })
}
