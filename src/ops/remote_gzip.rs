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

use std::path::Path;

use crate::archive::ArchiveFile;
use crate::error::{Error, IoContext, Result};
use crate::ops::index::{write_gzip_pass, Binding, IndexOptions, IndexReport};
use crate::seekpoints::gzip::Reread;
use crate::seekpoints::{binding_of_archive, GzipPass};

/// Indexes the gzip-compressed object `archive` into the local file `dest`, with seek points.
pub fn write_remote_gzip(archive: &dyn ArchiveFile, dest: &Path, opts: &IndexOptions) -> Result<IndexReport> {
    let path = archive.path();
    let len = archive.len();
    let binding = binding_of_archive(archive).at(path)?;
    let file = archive.reopen().map_err(|source| Error::SeekPoints { path: path.to_path_buf(), source })?;
    // One decoding thread: the object is read front to back, in growing ranges (parallel
    // decoders would read it at several places, each fetching ahead).
    let pass = GzipPass::over(Reread(file), opts.span, 1).at(path)?;
    let read = pass.read_digest();
    write_gzip_pass(path, pass, (len, binding), dest, opts, || Binding::of_unlent(archive, read.of(len)))
}
