//! Indexing an xz-, zstd- or bzip2-compressed object (issue #34) with seek points, as a local file is
//! indexed ([`crate::ops::index::write_compressed_sidecar`]), in one streaming read of the
//! object: [`RawStream`] reads it front to back (range GETs that grow while they follow one
//! another), the pass decodes it for the scanner and notes its seek points, and the bytes are
//! digested as they pass.
//!
//! - zstd: [`ZstdPass`] notes frame starts as the decoder meets them (multi-frame files and the
//!   seekable format, whose seek table is one more, skippable, frame).
//! - xz: the stream is decoded; [`XzPass`] then reads the blocks from the file's own index, at
//!   its end, by a few reads at offsets (the last bytes read are still in the object's cache).
//! - bzip2: [`Bzip2Pass`] finds the blocks to the bit in a window sliding over the stream,
//!   decoding a few ahead of the scanner in parallel.
//!
//! The index is bound to the object's stamp (its ETag) and to the xxh3 of all its bytes. `cat`
//! then decodes from the frame or block before a member ([`crate::seekpoints::Checkpointed`]).

use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::archive::{ArchiveFile, RawStream};
use crate::error::{IoContext, Result};
use crate::format::compression::Compression;
use crate::ops::index::{write_pass_bound, zstd_gap, Binding, IndexOptions, IndexReport};
use crate::seekpoints::{Bzip2Pass, NoSeekPoints, XzPass, ZstdPass};

/// The bytes read so far, in order: how many, and their digest.
struct Seen {
    len: u64,
    hash: xxhash_rust::xxh3::Xxh3,
}

/// The object front to back, digested on the way.
struct Tee<'a> {
    inner: RawStream<'a>,
    seen: Arc<Mutex<Seen>>,
}

impl Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut s = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        s.len += n as u64;
        s.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// Indexes `archive`, compressed with `c` (xz, zstd or bzip2), into the local file `dest`, with seek
/// points where it has them; returns the report and, when there are none, why. `None` for
/// another compression.
pub fn write_remote_pass(archive: &dyn ArchiveFile, c: Compression, dest: &Path, opts: &IndexOptions) -> Result<Option<(IndexReport, Option<NoSeekPoints>)>> {
    let path = archive.path();
    let seen = Arc::new(Mutex::new(Seen { len: 0, hash: xxhash_rust::xxh3::Xxh3::new() }));
    let input = BufReader::with_capacity(1 << 20, Tee { inner: RawStream::new(archive, 0), seen: seen.clone() });
    let bound = || bound_to(archive, &seen);
    Ok(Some(match c {
        Compression::Zstd => write_pass_bound(archive, ZstdPass::new(archive, Box::new(input), zstd_gap(opts)).at(path)?, dest, opts, bound)?,
        Compression::Bzip2 => write_pass_bound(archive, Bzip2Pass::new(archive, Some(Box::new(input)), opts.threads()).at(path)?, dest, opts, bound)?,
        Compression::Xz => {
            let decoded = crate::stream::decoder(input, Some(c), path)?;
            write_pass_bound(archive, XzPass::new(archive, decoded), dest, opts, bound)?
        }
        _ => return Ok(None),
    }))
}

/// The binding of `archive` once the pass has read it: its stamp, and the digest of all its
/// bytes (those after where the decoder stopped, if any, read and digested here).
fn bound_to(archive: &dyn ArchiveFile, seen: &Mutex<Seen>) -> Result<Binding> {
    let mut s = seen.lock().unwrap_or_else(|p| p.into_inner());
    let mut rest = RawStream::new(archive, s.len);
    let mut buf = vec![0u8; 1 << 20];
    while s.len < archive.len() {
        let n = rest.read(&mut buf).at(archive.path())?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the archive ended before its length")).at(archive.path());
        }
        s.len += n as u64;
        s.hash.update(&buf[..n]);
    }
    Ok(Binding::of_unlent(archive, Some(s.hash.digest())))
}
