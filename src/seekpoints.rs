//! Seek points into gzip-compressed archives, on rapidgzip-core (DEFLATE checkpoints, each with
//! its bit offset and 32 KiB window, found while decoding in parallel; see
//! `docs/ARCHITECTURE.md` for the choice).
//!
//! - [`GzipPass`] decodes a `.tar.gz` once, front to back, for the scanner, while rapidgzip-core
//!   records checkpoints every `span` bytes of output and [`PieceHasher`] digests the output. Its
//!   [`GzipPass::finish`] gives the sidecar's seek section ([`crate::format::seek`]).
//! - [`Checkpointed`] is the [`ByteSource`] that reads through those checkpoints: a read
//!   decodes from the checkpoint at or before it, whole pieces at a time, and hands out a piece
//!   only once its digest holds. So `cat` of one member costs about one span of decompression,
//!   and a checkpoint that does not match its archive is an error, never wrong bytes.
//! - An indexed_gzip `GZIDX` index ([`read_gzidx`], [`write_gzidx`]) carries the same
//!   checkpoints, without digests: tarfs exports one and reads through one given to it.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use rapidgzip_core::{Decoder, DeflateIndex, IndexOptions, IndexedReader, IndexingDecoderReader, ReadAt, WindowStorage};
use xxhash_rust::xxh3::xxh3_64;

use crate::archive::Archive;
use crate::error::{Error, IoContext, Result};
use crate::format::seek::{self, PieceHasher, Seek as SeekSection, BINDING_BYTES};
use crate::format::xz;
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

/// The binding of a mapped compressed file.
pub fn binding_of_bytes(b: &[u8]) -> u64 {
    let n = b.len().min(BINDING_BYTES);
    seek::binding(b.len() as u64, &b[..n], &b[b.len() - n..])
}

/// A file read for rapidgzip-core, noting how far into it the reads have got (for progress).
struct Watched {
    file: File,
    reached: Option<Arc<AtomicU64>>,
}

impl ReadAt for Watched {
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn read_at(&self, offset: u64, buffer: &mut [u8]) -> io::Result<usize> {
        let n = FileExt::read_at(&self.file, buffer, offset)?;
        if let Some(r) = &self.reached {
            r.fetch_max(offset.saturating_add(n as u64), Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// One pass over a gzip file: its decompressed bytes, read in order, with checkpoints and
/// digests collected on the way.
pub struct GzipPass {
    reader: IndexingDecoderReader,
    hasher: PieceHasher,
}

impl GzipPass {
    /// Starts decoding `file` on `threads` threads (0: one per core), with a checkpoint every
    /// `span` bytes of output (0: [`DEFAULT_SPAN`]). `reached`, if given, follows how far into
    /// the file the decoder has read.
    pub fn open(file: File, span: u64, threads: usize, reached: Option<Arc<AtomicU64>>) -> io::Result<GzipPass> {
        let threads = if threads == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { threads };
        let decoder = Decoder::builder().decoder_threads(threads).build().map_err(io::Error::other)?;
        let spacing = std::num::NonZeroU64::new(if span == 0 { DEFAULT_SPAN } else { span }).expect("non-zero");
        let options = IndexOptions { checkpoint_spacing: spacing, window_storage: WindowStorage::Zlib };
        let reader = decoder.reader_with_index(Watched { file, reached }, options).map_err(io::Error::other)?;
        Ok(GzipPass { reader, hasher: PieceHasher::new(PIECE) })
    }

    /// Reads what the scanner left (the end marker's padding), checks the whole stream (every
    /// member's CRC and length), and returns the seek section for a file of `compressed_len`
    /// bytes with binding `binding`, and the checkpoints.
    pub fn finish(mut self, compressed_len: u64, binding: u64) -> io::Result<(Vec<u8>, DeflateIndex)> {
        io::copy(&mut self, &mut io::sink())?;
        let GzipPass { reader, hasher } = self;
        let report = reader.finish().map_err(io::Error::other)?;
        let (digests, total) = hasher.finish();
        let mut payload = Vec::new();
        report.index.write_native(&mut payload).map_err(io::Error::other)?;
        Ok((seek::encode(seek::KIND_GZIP, compressed_len, binding, total, PIECE, &digests, &payload), report.index))
    }
}

impl Read for GzipPass {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.reader.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
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

/// The seek section of a multi-block xz file whose decompressed stream had `digests` and
/// `total` bytes, and its number of blocks; the reason there is none when the file has one
/// block (no block to start from but the first) or its blocks cannot be read.
pub fn xz_section(bytes: &[u8], digests: &[u64], total: u64) -> std::result::Result<(Vec<u8>, u64), String> {
    let blocks = xz::blocks(bytes).map_err(|e| format!("no seek points: {e}"))?;
    if blocks.len() < 2 {
        return Err("no seek points: the xz file is a single block (xz -T0 or --block-size writes several)".into());
    }
    let sum: u64 = blocks.iter().map(|b| b.decompressed_len).sum();
    if sum != total {
        return Err(format!("no seek points: the xz index says {sum} decompressed bytes, the stream gave {total}"));
    }
    let mut payload = Vec::with_capacity(16);
    payload.extend_from_slice(&(blocks.len() as u64).to_be_bytes());
    payload.extend_from_slice(&total.to_be_bytes());
    Ok((seek::encode(seek::KIND_XZ, bytes.len() as u64, binding_of_bytes(bytes), total, PIECE, digests, &payload), blocks.len() as u64))
}

/// Writes `index` as an indexed_gzip GZIDX (version 1) file at `dest`, atomically.
pub fn write_gzidx(index: &DeflateIndex, dest: &Path) -> Result<()> {
    crate::ops::atomic::write_atomic(dest, |w| index.write_gzidx(w).map_err(|e| Error::Io { path: dest.to_path_buf(), source: io::Error::other(e) }))
}

/// Reads an indexed_gzip GZIDX file, for the compressed file `archive`.
pub fn read_gzidx(path: &Path, archive: &Archive) -> Result<DeflateIndex> {
    let mut f = File::open(path).at(path)?;
    let index = DeflateIndex::read_gzidx(&mut f, Some(archive.len())).map_err(|e| Error::Invalid(format!("{}: not a GZIDX index of {}: {e}", path.display(), archive.path().display())))?;
    index.validate().map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    Ok(index)
}

/// A request to the decoding thread: `len` decompressed bytes at `start`, answered on `reply`.
struct Request {
    start: u64,
    len: usize,
    reply: mpsc::Sender<io::Result<Vec<u8>>>,
}

/// The thread that owns an [`IndexedReader`] (which holds a zlib stream, and so cannot move
/// between threads): a [`Checkpointed`] source asks it for pieces over a channel, which keeps the
/// source `Send + Sync` without any `unsafe`. It ends when the source is dropped.
fn spawn_decoder(file: File, index: DeflateIndex) -> std::result::Result<mpsc::Sender<Request>, String> {
    let (tx, rx) = mpsc::channel::<Request>();
    let (ready_tx, ready_rx) = mpsc::channel::<std::result::Result<(), String>>();
    std::thread::Builder::new()
        .name("tarfs-gzip-seek".into())
        .spawn(move || {
            let mut reader = match IndexedReader::new(file, index) {
                Ok(r) => {
                    let _ = ready_tx.send(Ok(()));
                    r
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("the seek points cannot be used: {e}")));
                    return;
                }
            };
            for req in rx {
                let mut buf = vec![0u8; req.len];
                let r = reader.seek(SeekFrom::Start(req.start)).and_then(|_| reader.read_exact(&mut buf)).map(|()| buf);
                let _ = req.reply.send(r);
            }
        })
        .map_err(|e| format!("cannot start the decoding thread: {e}"))?;
    ready_rx.recv().map_err(|_| "the decoding thread stopped".to_string())??;
    Ok(tx)
}

/// Where a [`Checkpointed`] source gets decompressed bytes from.
enum Backend<'a> {
    /// gzip: the decoding thread, resuming from DEFLATE checkpoints. A sidecar's checkpoints
    /// wait in `pending` (the file, and the native index still encoded) until the first read:
    /// decoding them expands every window, which a listing never needs.
    Gzip { decoder: Option<mpsc::Sender<Request>>, pending: Option<(File, Vec<u8>)> },
    /// xz: its blocks, each decodable on its own, and the decoder last used.
    Xz { bytes: &'a [u8], blocks: Vec<xz::Block>, current: Option<XzCursor<'a>> },
}

/// An xz decoder started at a block, and how far it has got.
struct XzCursor<'a> {
    stream_start: u64,
    at: u64,
    decoder: liblzma::read::XzDecoder<io::Chain<io::Cursor<Vec<u8>>, &'a [u8]>>,
}

impl<'a> Backend<'a> {
    /// `len` decompressed bytes at `start`.
    fn fetch(&mut self, start: u64, len: usize) -> io::Result<Vec<u8>> {
        match self {
            Backend::Gzip { decoder, pending } => {
                if decoder.is_none() {
                    let (file, native) = pending.take().ok_or_else(|| io::Error::other("the decoding thread could not be started"))?;
                    let index = DeflateIndex::read_native(&mut &native[..]).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("the seek points do not decode: {e}")))?;
                    *decoder = Some(spawn_decoder(file, index).map_err(io::Error::other)?);
                }
                let decoder = decoder.as_ref().expect("started above");
                let (reply, answer) = mpsc::channel();
                let gone = || io::Error::other("the decoding thread stopped");
                decoder.send(Request { start, len, reply }).map_err(|_| gone())?;
                answer.recv().map_err(|_| gone())?
            }
            Backend::Xz { bytes, blocks, current } => {
                let mut out = Vec::with_capacity(len);
                let end = start.saturating_add(len as u64);
                while (out.len() as u64) < len as u64 {
                    let at = start + out.len() as u64;
                    let i = blocks.partition_point(|b| b.decompressed_offset + b.decompressed_len <= at);
                    let blk = *blocks.get(i).ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "past the last xz block"))?;
                    // The decompressed end of this block's stream: a decoder stops there.
                    let stream_end = blocks[i..].iter().take_while(|b| b.stream_start == blk.stream_start).last().map_or(0, |b| b.decompressed_offset + b.decompressed_len);
                    // Going on from where the last decoder is costs less than starting at this block when it
                    // is already inside it (or is this block's start).
                    let reuse = current.as_ref().is_some_and(|c| c.stream_start == blk.stream_start && c.at <= at && c.at >= blk.decompressed_offset);
                    if !reuse {
                        // A stream of its own: its header, then the file from this block on, up
                        // to the stream's index.
                        let ss = blk.stream_start as usize;
                        let header = bytes[ss..ss + 12].to_vec();
                        let body = &bytes[blk.offset as usize..blk.stream_end as usize];
                        let decoder = liblzma::read::XzDecoder::new(io::Cursor::new(header).chain(body));
                        *current = Some(XzCursor { stream_start: blk.stream_start, at: blk.decompressed_offset, decoder });
                    }
                    let c = current.as_mut().expect("set above");
                    io::copy(&mut (&mut c.decoder).take(at - c.at), &mut io::sink())?;
                    c.at = at;
                    let want = end.min(stream_end) - at;
                    let before = out.len();
                    (&mut c.decoder).take(want).read_to_end(&mut out)?;
                    let got = (out.len() - before) as u64;
                    c.at += got;
                    if got < want {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "an xz block ended early"));
                    }
                }
                Ok(out)
            }
        }
    }
}

/// The mapped file `archive`, opened again for the decoding thread, which reads it itself; an
/// error if the name now leads to another file.
fn reopen(archive: &Archive) -> std::result::Result<File, String> {
    use std::os::unix::fs::MetadataExt;
    let file = File::open(archive.path()).map_err(|e| format!("cannot open it again to seek: {e}"))?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if (meta.dev(), meta.ino()) != archive.identity() || meta.len() != archive.len() {
        return Err("the file was replaced while being read".into());
    }
    Ok(file)
}

/// A compressed archive read through checkpoints (gzip) or blocks (xz).
pub struct Checkpointed<'a> {
    archive: &'a Archive,
    total: u64,
    piece: u64,
    /// The digest of each piece (none for an imported GZIDX, which has no digests).
    digests: Option<Vec<u64>>,
    decoder: Mutex<(Backend<'a>, VecDeque<(u64, Arc<Vec<u8>>)>)>,
    read: AtomicU64,
    decoded: AtomicU64,
}

impl std::fmt::Debug for Checkpointed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointed").field("path", &self.archive.path()).field("total", &self.total).finish()
    }
}

impl<'a> Checkpointed<'a> {
    /// Reads `archive` through the seek section `section` of its sidecar, if the section is
    /// intact and belongs to this file; else why not.
    pub fn open(archive: &'a Archive, section: &[u8]) -> std::result::Result<Checkpointed<'a>, String> {
        let s = SeekSection::parse(section).map_err(|e| e.to_string())?;
        if s.compressed_len != archive.len() || s.binding != binding_of_bytes(archive.bytes()) {
            return Err("the seek points were made for another file (its length or its first and last 64 KiB differ)".into());
        }
        let digests = (0..s.pieces()).map(|k| s.digest(k).expect("k < pieces")).collect();
        if s.kind == seek::KIND_XZ {
            let blocks = xz::blocks(archive.bytes()).map_err(|e| e.to_string())?;
            let total: u64 = blocks.iter().map(|b| b.decompressed_len).sum();
            let want = s.payload.get(..16).map(|p| (u64::from_be_bytes(p[..8].try_into().expect("8")), u64::from_be_bytes(p[8..16].try_into().expect("8"))));
            if want != Some((blocks.len() as u64, total)) || total != s.total_len {
                return Err("the xz file's blocks are not the ones the seek points were made for".into());
            }
            let backend = Backend::Xz { bytes: archive.bytes(), blocks, current: None };
            return Ok(Checkpointed::with_backend(archive, backend, s.total_len, s.piece, Some(digests)));
        }
        let file = reopen(archive)?;
        let backend = Backend::Gzip { decoder: None, pending: Some((file, s.payload.to_vec())) };
        Ok(Checkpointed::with_backend(archive, backend, s.total_len, s.piece, Some(digests)))
    }

    fn with_backend(archive: &'a Archive, backend: Backend<'a>, total: u64, piece: u64, digests: Option<Vec<u64>>) -> Checkpointed<'a> {
        Checkpointed { archive, total, piece, digests, decoder: Mutex::new((backend, VecDeque::new())), read: AtomicU64::new(0), decoded: AtomicU64::new(0) }
    }

    /// Reads `archive` through `index` (an imported GZIDX: no digests, so the reader's header
    /// checks are what guard the bytes).
    pub fn with_index(archive: &'a Archive, index: DeflateIndex) -> std::result::Result<Checkpointed<'a>, String> {
        let total = index.uncompressed_size().ok_or("the index does not record the decompressed length")?;
        // Started now: an index the user gave that cannot be used is an error at once.
        let decoder = spawn_decoder(reopen(archive)?, index)?;
        Ok(Checkpointed::with_backend(archive, Backend::Gzip { decoder: Some(decoder), pending: None }, total, PIECE, None))
    }

    /// Bytes decompressed so far.
    pub fn bytes_decoded(&self) -> u64 {
        self.decoded.load(Ordering::Relaxed)
    }

    /// Whether each piece is checked against a digest (false for an imported GZIDX).
    pub fn verified(&self) -> bool {
        self.digests.is_some()
    }

    /// Piece `k`, decoded (from the cache, or from its checkpoint) and checked.
    fn piece(&self, d: &mut (Backend<'a>, VecDeque<(u64, Arc<Vec<u8>>)>), k: u64) -> io::Result<Arc<Vec<u8>>> {
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
        if let Some(want) = self.digests.as_ref().map(|d| d[k as usize]) {
            if xxh3_64(&buf) != want {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("decompressed bytes {start}..{} do not match the index's digest: the seek points do not match the archive", start + len as u64),
                ));
            }
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

    fn seek_points(&self) -> Option<bool> {
        Some(self.verified())
    }
}
