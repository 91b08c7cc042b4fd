//! Indexing a gzip-compressed object (issue #34) in one pass that also records its seek points,
//! as a local `.tar.gz` is indexed ([`crate::ops::index::write_gzip_sidecar`]): rapidgzip-core
//! decodes the object read once, front to back, through [`ArchiveFile::reopen`] (range GETs
//! that grow while they follow one another), the scanner reads the decoded stream, and the
//! checkpoints go into the sidecar's seek section. `cat` then decodes from the checkpoint
//! before a member, not from the start ([`crate::seekpoints::Checkpointed`] reads the object
//! the same way).
//!
//! The index is bound to the object's stamp (its ETag) and to the xxh3 of its bytes, digested
//! as the decoder reads them; where it reads them out of order (it does not, on one thread),
//! the digest is left out, and a later stamp that differs makes the index stale.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rapidgzip_core::ReadAt;

use crate::archive::{ArchiveFile, Reopened};
use crate::error::{Error, IoContext, Result};
use crate::ops::index::{write_gzip_pass, Binding, IndexOptions, IndexReport};
use crate::seekpoints::{binding_of_archive, GzipPass};

/// The bytes read so far, in order: where the next one is, their digest, and whether a read
/// left a gap (then there is no digest).
struct Seen {
    next: u64,
    hash: xxhash_rust::xxh3::Xxh3,
    gap: bool,
}

/// The object as the decoder reads it, digested on the way.
struct Digesting {
    file: Box<dyn Reopened>,
    seen: Arc<Mutex<Seen>>,
}

impl ReadAt for Digesting {
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.len())
    }

    fn read_at(&self, offset: u64, buffer: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_into(offset, buffer)?;
        let mut s = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let end = offset + n as u64;
        if offset > s.next {
            s.gap = true;
        } else if end > s.next {
            // What is new of this read (a read again of digested bytes adds nothing).
            let from = (s.next - offset) as usize;
            s.hash.update(&buffer[from..n]);
            s.next = end;
        }
        Ok(n)
    }
}

/// Indexes the gzip-compressed object `archive` into the local file `dest`, with seek points.
pub fn write_remote_gzip(archive: &dyn ArchiveFile, dest: &Path, opts: &IndexOptions) -> Result<IndexReport> {
    let path = archive.path();
    let len = archive.len();
    let binding = binding_of_archive(archive).at(path)?;
    let seen = Arc::new(Mutex::new(Seen { next: 0, hash: xxhash_rust::xxh3::Xxh3::new(), gap: false }));
    let file = archive.reopen().map_err(|source| Error::SeekPoints { path: path.to_path_buf(), source })?;
    // One decoding thread: the object is read front to back, in growing ranges (parallel
    // decoders would read it at several places, each fetching ahead).
    let pass = GzipPass::over(Digesting { file, seen: seen.clone() }, opts.span, 1).at(path)?;
    // `dest` is a file of a temporary directory, which is gone by the time a deferred
    // directory sync would come.
    let opts = &IndexOptions { dir_syncs: None, ..opts.clone() };
    write_gzip_pass(path, pass, (len, binding), dest, opts, || {
        let s = seen.lock().unwrap_or_else(|p| p.into_inner());
        Binding::of_unlent(archive, (!s.gap && s.next == len).then(|| s.hash.digest()))
    })
}
