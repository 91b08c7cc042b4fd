//! gzip seek points, on rapidgzip-core: DEFLATE checkpoints, each with its bit offset and its
//! 32 KiB window, found while decoding in parallel (see `docs/ARCHITECTURE.md` for the choice).
//!
//! - [`GzipPass`] decodes a `.tar.gz` once, front to back, for the scanner, while rapidgzip-core
//!   records checkpoints every `span` bytes of output.
//! - [`Resume`] decodes from those checkpoints, for [`super::Checkpointed`].
//! - An indexed_gzip `GZIDX` index ([`read_gzidx`], [`write_gzidx`]) carries the same
//!   checkpoints, without digests: tarfs exports one and reads through one given to it.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use rapidgzip_core::{DecodeError, Decoder, DeflateIndex, GzipErrorKind, IndexOptions, IndexedReader, IndexingDecoderReader, ReadAt, WindowStorage};

use super::read_digest::{Digesting, ReadDigest};
use super::{Fetch, SeekPointsError, DEFAULT_SPAN, PIECE};
use crate::archive::{ArchiveFile, Reopened};
use crate::error::{Error, IoContext, Result};
use crate::format::seek::{self, PieceHasher};

/// Decoded chunks that may wait for the scanner, and their most bytes: on the path that records
/// checkpoints, at most 64 MiB together. (rapidgzip-core's path for independent gzip members
/// also sizes its queue from this count, with results of up to 16 MiB; a file of 26 concatenated
/// members of 15 MB, indexed, peaked at 97 MB resident, as a single member does.)
///
/// While it records checkpoints, rapidgzip-core hands over one deflate block at a time, 64 KiB
/// or less where the data does not compress. Its default queue (threads + 2 chunks) then held a
/// quarter of a MiB: whenever the scanner fell behind for a moment (hashing digests beside it),
/// the decoder found it full and slept in 1 ms polls, and both cores idled a third of the
/// time. 3.1 GB of incompressible members, gzipped, with digests: 6.3 s with the default, 5.6 s
/// with 16 chunks, 4.3 s with 256.
const IN_FLIGHT: usize = 256;
const IN_FLIGHT_CHUNK: usize = 256 << 10;

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
    read: ReadDigest,
}

impl GzipPass {
    /// Starts decoding `file` on `threads` threads (0: one per core), with a checkpoint every
    /// `span` bytes of output (0: [`DEFAULT_SPAN`]). `reached`, if given, follows how far into
    /// the file the decoder has read.
    pub fn open(file: File, span: u64, threads: usize, reached: Option<Arc<AtomicU64>>) -> io::Result<GzipPass> {
        GzipPass::over(Watched { file, reached }, span, threads)
    }

    /// As [`GzipPass::open`], of what `source` reads (an archive that is not a local file).
    pub fn over(source: impl ReadAt + 'static, span: u64, threads: usize) -> io::Result<GzipPass> {
        let threads = if threads == 0 { crate::chunked::cores() } else { threads };
        let decoder = Decoder::builder().decoder_threads(threads).in_flight_chunks(IN_FLIGHT).decoded_chunk_size(IN_FLIGHT_CHUNK).build().map_err(io::Error::other)?;
        let spacing = std::num::NonZeroU64::new(if span == 0 { DEFAULT_SPAN } else { span }).expect("non-zero");
        let options = IndexOptions { checkpoint_spacing: spacing, window_storage: WindowStorage::Zlib };
        let (source, read) = Digesting::new(source);
        let reader = decoder.reader_with_index(source, options).map_err(io::Error::other)?;
        Ok(GzipPass { reader, hasher: PieceHasher::new(PIECE), read })
    }

    /// The digest of the compressed bytes as the decoder reads them ([`ReadDigest::of`] once
    /// the pass is finished).
    pub fn read_digest(&self) -> ReadDigest {
        self.read.clone()
    }

    /// Reads what the scanner left (the end marker's padding), checks the whole stream (every
    /// member's CRC and length), and returns the seek section for a file of `compressed_len`
    /// bytes with binding `binding`, and the checkpoints.
    pub fn finish(mut self, compressed_len: u64, binding: u64) -> io::Result<(Vec<u8>, DeflateIndex)> {
        io::copy(&mut self, &mut io::sink())?;
        let GzipPass { reader, hasher, .. } = self;
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

/// Whether `e` is, or was caused by, rapidgzip-core's refusal of what follows the last gzip
/// member (gzip and tarfs's stream decoder pass over such bytes, with a warning).
pub fn is_trailing_data(e: &(dyn std::error::Error + 'static)) -> bool {
    matches!(crate::error::find_cause::<DecodeError>(e), Some(DecodeError::InvalidGzip { reason: GzipErrorKind::TrailingGarbage, .. }))
}

/// Writes `index` as an indexed_gzip GZIDX (version 1) file at `dest`, atomically.
pub fn write_gzidx(index: &DeflateIndex, dest: &Path) -> Result<()> {
    crate::ops::atomic::write_atomic(dest, |w| index.write_gzidx(w).map_err(|e| Error::Io { path: dest.to_path_buf(), source: io::Error::other(e) }))
}

/// Reads an indexed_gzip GZIDX file, for the compressed file `archive`.
pub fn read_gzidx(path: &Path, archive: &dyn ArchiveFile) -> Result<DeflateIndex> {
    let mut f = File::open(path).at(path)?;
    let bad = |source| Error::SeekPoints { path: path.to_path_buf(), source };
    let index = DeflateIndex::read_gzidx(&mut f, Some(archive.len())).map_err(|reason| bad(SeekPointsError::NotGzidx { archive: archive.path().to_path_buf(), reason }))?;
    index.validate().map_err(|e| bad(SeekPointsError::BadGzidx(e)))?;
    Ok(index)
}

/// An archive reopened for the decoding thread, as rapidgzip-core reads it.
pub(crate) struct Reread(pub(crate) Box<dyn Reopened>);

impl ReadAt for Reread {
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.len())
    }

    fn read_at(&self, offset: u64, buffer: &mut [u8]) -> io::Result<usize> {
        self.0.read_into(offset, buffer)
    }
}

/// A request to the decoding thread: `len` decompressed bytes at `start`, answered on `reply`.
struct Request {
    start: u64,
    len: usize,
    reply: mpsc::Sender<io::Result<Vec<u8>>>,
}

/// The thread that owns an [`IndexedReader`] (which holds a zlib stream, and so cannot move
/// between threads): [`Resume`] asks it for pieces over a channel, which keeps the source
/// `Send + Sync` without any `unsafe`. It ends when the source is dropped.
fn spawn_decoder(file: Box<dyn Reopened>, index: DeflateIndex) -> std::result::Result<mpsc::Sender<Request>, SeekPointsError> {
    let (tx, rx) = mpsc::channel::<Request>();
    let (ready_tx, ready_rx) = mpsc::channel::<std::result::Result<(), SeekPointsError>>();
    std::thread::Builder::new()
        .name("tarfs-gzip-seek".into())
        .spawn(move || {
            let mut reader = match IndexedReader::new(Reread(file), index) {
                Ok(r) => {
                    let _ = ready_tx.send(Ok(()));
                    r
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(SeekPointsError::Unusable(e)));
                    return;
                }
            };
            for req in rx {
                let mut buf = vec![0u8; req.len];
                let r = reader.seek(SeekFrom::Start(req.start)).and_then(|_| reader.read_exact(&mut buf)).map(|()| buf);
                let _ = req.reply.send(r);
            }
        })
        .map_err(SeekPointsError::Thread)?;
    ready_rx.recv().map_err(|_| SeekPointsError::ThreadStopped)??;
    Ok(tx)
}

/// Decoding from DEFLATE checkpoints, on the decoding thread. A sidecar's checkpoints wait in
/// `pending` (the file, and the native index still encoded) until the first read: decoding
/// them expands every window, which a listing never needs.
pub struct Resume {
    decoder: Option<mpsc::Sender<Request>>,
    pending: Option<(Box<dyn Reopened>, Vec<u8>)>,
}

impl Resume {
    /// From a seek section's payload (rapidgzip-core's native index), decoded at the first read.
    pub fn lazy(file: Box<dyn Reopened>, native: Vec<u8>) -> Resume {
        Resume { decoder: None, pending: Some((file, native)) }
    }

    /// From `index` (an imported GZIDX), started now: an index the user gave that cannot be
    /// used is an error at once.
    pub fn now(file: Box<dyn Reopened>, index: DeflateIndex) -> std::result::Result<Resume, SeekPointsError> {
        Ok(Resume { decoder: Some(spawn_decoder(file, index)?), pending: None })
    }
}

impl Fetch for Resume {
    fn fetch(&mut self, start: u64, len: usize) -> io::Result<Vec<u8>> {
        if self.decoder.is_none() {
            let (file, native) = self.pending.take().ok_or_else(|| io::Error::other("the decoding thread could not be started"))?;
            let index = DeflateIndex::read_native(&mut &native[..]).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("the seek points do not decode: {e}")))?;
            self.decoder = Some(spawn_decoder(file, index).map_err(io::Error::other)?);
        }
        let decoder = self.decoder.as_ref().expect("started above");
        let (reply, answer) = mpsc::channel();
        let gone = || io::Error::other("the decoding thread stopped");
        decoder.send(Request { start, len, reply }).map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
    }
}
