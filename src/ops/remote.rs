//! Indexing an archive that is not a local file: an object in S3-compatible storage (issue
//! #34), read through [`ArchiveFile`] and never lent whole.
//!
//! - A plain tar is indexed by a header walk ([`crate::stream::scan_unlent`]): a little is
//!   fetched around each header, member data is skipped.
//! - A gzip-compressed one is read once, front to back, and decoded while its seek points are
//!   recorded ([`super::remote_gzip`]): a member is then read by decoding from the checkpoint
//!   before it. An xz-, zstd- or bzip2-compressed one is read once too, and its blocks or
//!   frames are its seek points ([`super::remote_pass`]). Where the gzip pass cannot index it
//!   (what follows the last gzip member, which rapidgzip-core refuses), it is decoded as a
//!   stream without seek points: a member is read by decoding from the start. Either way its index is bound to its stamp (the ETag)
//!   and the digest of its bytes.
//! - The index goes to the local file `local` where one is named (`--output`, `--index-dir`),
//!   else to the archive's own [`IndexStore`] (the object `KEY.tarfs`, written with a
//!   conditional put).

use std::path::{Path, PathBuf};

use crate::archive::{ArchiveFile, IndexStore, RawStream};
use crate::error::{Error, IoContext, Result};
use crate::ops::index::{judge_sidecar, write_index_file, Binding, EntrySink, Freshness, IndexOptions, IndexReport};
use crate::ops::index_stream::write_any_stream_sidecar_stamped;
use crate::seekpoints::NoSeekPoints;

/// Where an index written for a remote archive went.
#[derive(Debug)]
pub struct RemoteIndexed {
    /// What was written.
    pub report: IndexReport,
    /// `false` when another writer's sidecar got there first (the conditional put lost) and is
    /// kept.
    pub stored: bool,
    /// For a compressed archive indexed without seek points, why (where the pass says).
    pub no_seek: Option<NoSeekPoints>,
}

/// The keep-or-rebuild of the sidecar of `archive`: the local file `local` where one is named,
/// else the one its store keeps (the verdict of [`judge_sidecar`]); with its name.
pub fn remote_freshness(archive: &dyn ArchiveFile, local: Option<&Path>, opts: &IndexOptions) -> (PathBuf, Freshness) {
    let filter = opts.filter.as_ref();
    if let Some(dest) = local {
        return match std::fs::read(dest) {
            Ok(bytes) => (dest.to_path_buf(), judge_sidecar(archive, &bytes, dest, filter)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (dest.to_path_buf(), Freshness::Missing),
            Err(e) => (dest.to_path_buf(), Freshness::Corrupt(crate::verdict::Corruption::Unreadable(e.to_string()))),
        };
    }
    let Some(store) = archive.index_store() else { return (PathBuf::new(), Freshness::Missing) };
    let name = store.name();
    let judge = |got: std::io::Result<Option<Vec<u8>>>| match got {
        Ok(Some(bytes)) => judge_sidecar(archive, &bytes, &name, filter),
        Ok(None) => Freshness::Missing,
        Err(e) => Freshness::Corrupt(crate::verdict::Corruption::Unreadable(e.to_string())),
    };
    // A local copy that will not do: the store's own, which a rewrite then replaces.
    let f = match judge(store.load()) {
        Freshness::Fresh { entries } => Freshness::Fresh { entries },
        _ => judge(store.refresh()),
    };
    (name, f)
}

/// Indexes `archive` into `local`, or into its store where no local file is named.
pub fn write_remote_sidecar(archive: &dyn ArchiveFile, local: Option<&Path>, opts: &IndexOptions) -> Result<RemoteIndexed> {
    if let Some(dest) = local {
        let (report, no_seek) = index_into(archive, dest, opts)?;
        return Ok(RemoteIndexed { report, stored: true, no_seek });
    }
    let store: &dyn IndexStore = archive.index_store().ok_or_else(|| Error::Io { path: archive.path().to_path_buf(), source: std::io::Error::other("no place for its index: name one with --index-dir or --output") })?;
    let dir = tempfile::TempDir::new().at(Path::new("/tmp"))?;
    let tmp = dir.path().join("index.tarfs");
    // The directory is gone by the time a batch's deferred directory sync would come: every
    // way `index_into` takes writes it without one.
    let (mut report, no_seek) = index_into(archive, &tmp, &IndexOptions { dir_syncs: None, ..opts.clone() })?;
    let bytes = std::fs::read(&tmp).at(&tmp)?;
    let name = store.name();
    let stored = store.store(bytes).at(&name)?;
    report.index_path = name;
    Ok(RemoteIndexed { report, stored, no_seek })
}

/// Indexes `archive` into the local file `dest`, atomically; for a compressed one without seek
/// points, why where the pass says.
fn index_into(archive: &dyn ArchiveFile, dest: &Path, opts: &IndexOptions) -> Result<(IndexReport, Option<NoSeekPoints>)> {
    let path = archive.path();
    let perm = crate::ops::atomic::Perm::Default;
    // Why a gzip object is read as a plain stream, where the pass says.
    let mut why = None;
    if archive.compression() == Some(crate::format::compression::Compression::Gzip) {
        match super::remote_gzip::write_remote_gzip(archive, dest, opts) {
            // The store failed: so would the stream.
            Err(e) if crate::archive::s3::find(&e).is_some() => return Err(e),
            Err(e) => why = crate::seekpoints::is_trailing_data(&e).then_some(NoSeekPoints::GzipTrailing),
            done => return done.map(|r| (r, None)),
        }
    }
    if let Some(c) = archive.compression() {
        if let Some(done) = super::remote_pass::write_remote_pass(archive, c, dest, opts)? {
            return Ok(done);
        }
        let mut raw = RawStream::new(archive, 0);
        return write_any_stream_sidecar_stamped(path, &mut raw, 1 << 20, dest, opts, Some(archive.stamp())).map(|r| (r, why));
    }
    let ((info, end), (ext_len, ext_names)) = write_index_file(dest, opts.dir_syncs.as_deref(), perm, |w| {
        let mut sink = EntrySink::new(path, w, opts.filter.as_ref())?.bind(Binding::of_unlent(archive, None)).format(opts.format);
        let end = crate::stream::scan_unlent(archive, opts.scan, |e| sink.push(e))?;
        let info = sink.finish(end.total_len, 0, &end.end, None)?;
        Ok((info, end.end))
    }, |t| &t.0)?;
    Ok((IndexReport { index_path: dest.to_path_buf(), members: end.members, entries: info.entries, bytes: archive.len(), end, ext_len, ext_names, seek: None }, None))
}
