//! Indexing a stream that may be compressed: standard input, a FIFO, a tape.
//!
//! A plain tar stream is indexed as it passes ([`crate::ops::index::write_stream_sidecar`]). A
//! compressed one (gzip, bzip2, xz, zstd: its first bytes say which) is decoded, and its index
//! records the decoded stream, as a sidecar of the compressed file would, bound to the
//! compressed bytes read by their length and xxh3-64 digest: the file they came from is then
//! answered through it (`tarfs ls FILE --index INDEX`), and any other file is not. The whole
//! input is read, up to its end, so that the digest is the file's.

use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::Mutex;

use crate::error::{IoContext, Result};
use crate::ops::index::{perm_like, write_index_file, write_stream_sidecar, Binding, EntrySink, IndexOptions, IndexReport};
use crate::stream::{decoder, peek_compression};

/// The raw bytes read so far: how many, and their running digest.
struct Seen {
    len: u64,
    hash: xxhash_rust::xxh3::Xxh3,
}

/// A reader that feeds what it reads to a [`Seen`].
struct Tee<'r> {
    inner: &'r mut (dyn Read + Send),
    seen: &'r Mutex<Seen>,
}

impl Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut s = self.seen.lock().expect("unpoisoned");
        s.len += n as u64;
        s.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// Indexes the stream `raw` (named `path`) into the sidecar `dest`, reading it in `chunk`-byte
/// reads: plain, as it passes; compressed, decoded, and bound to the compressed bytes (see the
/// module's documentation).
pub fn write_any_stream_sidecar(path: &Path, raw: &mut (dyn Read + Send), chunk: usize, dest: &Path, opts: &IndexOptions) -> Result<IndexReport> {
    write_any_stream_sidecar_stamped(path, raw, chunk, dest, opts, None)
}

/// [`write_any_stream_sidecar`] of the bytes of a file with `stamp`, which the index records
/// beside the digest of a compressed one (an object read once as a stream).
pub fn write_any_stream_sidecar_stamped(path: &Path, raw: &mut (dyn Read + Send), chunk: usize, dest: &Path, opts: &IndexOptions, stamp: Option<crate::format::tarfs::Stamp>) -> Result<IndexReport> {
    let seen = Mutex::new(Seen { len: 0, hash: xxhash_rust::xxh3::Xxh3::new() });
    let mut input = BufReader::with_capacity(1 << 20, Tee { inner: raw, seen: &seen });
    let Some(c) = peek_compression(&mut input, path)? else {
        return write_stream_sidecar(path, &mut input, chunk, 0, dest, opts);
    };
    let ((info, end), ext) = write_index_file(dest, opts.dir_syncs.as_deref(), perm_like(path), |w| {
        let mut sink = EntrySink::new(path, w, opts.filter.as_ref())?.format(opts.format).digests(opts.stream_digests(true), true);
        let mut decoded = decoder(&mut input, Some(c), path)?;
        let end = crate::ops::index::scan_into(&mut decoded, path, opts.scan, chunk, &mut sink)?;
        drop(decoded);
        // What follows the archive in the compressed input (the rest of its last frame, padding
        // a tape adds) is the file's too. (What the buffer holds was counted as it was read.)
        std::io::copy(input.get_mut(), &mut std::io::sink()).at(path)?;
        let s = seen.lock().expect("unpoisoned");
        let info = sink.bind(Binding::of_stream(s.hash.digest()).stamped(stamp)).finish(end.total_len, s.len, &end.end, None)?;
        Ok((info, end))
    }, |t| &t.0)?;
    Ok(IndexReport::of_stream(dest, &info, end, ext))
}
