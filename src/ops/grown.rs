//! Re-indexing an archive that only grew: members appended (`tar -rf`, or a CSV index member
//! appended by tarfs) after the end its sidecar records.
//!
//! The old sidecar answers for the old part: its entries, with their extension records, become
//! the new index's first entries without reading the archive (as [`crate::ops::read::Reader`]
//! lists through an index), and only the appended part is scanned, from the old end. Before
//! that, every old entry must still match the header at its position
//! ([`crate::ops::read::entries_unchanged`]; a sample would let an in-place rename of an
//! unsampled member into the new index), and the old end must now hold a header. The result is byte-identical to
//! a full re-index (`tests/index_ext.rs` proves it): the index sink is given the same members.
//!
//! `tarfs embed` takes the old part from an embedded index the same way ([`old_part`]; see
//! [`crate::ops::embed`]).
//!
//! The sidecar is not re-indexed this way (the caller does a full re-index) when it cannot
//! answer alone: a subset index, one with no extension data, one with pax global headers in
//! the old part (their state would have to carry over), one with seek points, or a compressed
//! archive.

use std::path::Path;

use crate::archive::Archive;
use crate::error::{Error, Result};
use crate::format::ext;
use crate::format::header::BLOCK;
use crate::format::tarfs::{self, IndexEntry, FLAG_EXT, FLAG_GLOBALS, FLAG_SEEK, FLAG_SUBSET};
use crate::ops::atomic::Perm;
use crate::ops::index::{write_index_file, EntrySink, IndexOptions, IndexReport};
use crate::ops::read::{ext_entry, extension_of, entries_unchanged, IndexBytes, Located, Source};
use crate::scan::{ScanOptions, Scanner};

/// What [`write_sidecar_grown`] did.
#[derive(Debug)]
pub struct Grown {
    /// The new index's report.
    pub report: IndexReport,
    /// Members taken from the old index.
    pub kept: u64,
    /// Archive bytes read: the sample of old headers and the appended part.
    pub read: u64,
}

/// Re-indexes `archive` into `dest` from the old sidecar there when the archive only grew;
/// `Ok(Err(why))`, with nothing written, when it cannot be done this way.
pub fn write_sidecar_grown(archive: &Archive, dest: &Path, opts: &IndexOptions) -> Result<std::result::Result<Grown, String>> {
    let map = match Archive::open(dest) {
        Ok(m) => m,
        Err(e) => return Ok(Err(format!("the old index cannot be read: {e}"))),
    };
    if opts.filter.is_some() {
        return Ok(Err("a subset index is asked for".into()));
    }
    let old = Located { source: Source::Sidecar(dest.to_path_buf()), bytes: IndexBytes::Mapped(std::sync::Arc::new(map)), base: 0 };
    let old = &old;
    let data = old.slice(archive);
    let part = match old_part(old, archive, opts.scan) {
        Ok(p) => p,
        Err(why) => return Ok(Err(why)),
    };
    let (n, x, at, mut read) = (part.entries, part.ext, part.end, part.read);
    let bytes = archive.bytes();
    let path = archive.path();
    let ((info, end), (ext_len, ext_names)) = write_index_file(dest, opts.dir_syncs.as_deref(), Perm::NoWiderThan(archive.mode()), |w| {
        let mut sink = EntrySink::new(path, w, None)?.bind(crate::ops::index::Binding::of(archive));
        for i in 0..n {
            sink.push(&ext_entry(old, archive, &x, data, i)?)?;
        }
        let mut scanner = Scanner::at(bytes, at, opts.scan);
        for e in scanner.by_ref() {
            let e = e.map_err(|source| Error::Scan { path: path.to_path_buf(), source })?;
            crate::watch::at(e.position);
            sink.push(&e)?;
        }
        let mut end = scanner.end().ok_or_else(|| Error::Invalid(format!("{}: the scan of the appended members did not end", path.display())))?;
        end.members += n as u64;
        let info = sink.finish(bytes.len() as u64, 0, &end, None)?;
        Ok((info, end))
    }, |t| &t.0)?;
    read += bytes.len() as u64 - at;
    let report = IndexReport { index_path: dest.to_path_buf(), members: end.members, entries: info.entries, bytes: archive.len(), end, ext_len, ext_names, seek: None };
    Ok(Ok(Grown { report, kept: n as u64, read }))
}

/// The old part of an archive that grew, as its old index `old` describes it.
pub(crate) struct OldPart<'i> {
    /// Entries in the old index.
    pub entries: usize,
    /// The old index's extension.
    pub ext: ext::Ext<'i>,
    /// Where the old part ends (absolute): the first appended member starts here.
    pub end: u64,
    /// Archive bytes read to check it.
    pub read: u64,
}

/// Whether the index `old` can answer for the old part of `archive`, which grew: it is a full
/// index with extension data, no pax global headers and no seek points, of an uncompressed
/// archive; every one of its entries still matches the header at its position
/// ([`crate::ops::read::entries_unchanged`]); and a member now starts at its old end. `Err(why)`
/// otherwise.
///
/// It reads the archive as a sample (see [`Archive::advise_sampling`]): an embedded old index
/// and the appended part whole, the old headers one page each. When it declines, the
/// mapping's advice is back to normal.
pub(crate) fn old_part<'i>(old: &'i Located, archive: &'i Archive, scan: ScanOptions) -> std::result::Result<OldPart<'i>, String> {
    // An embedded old index is read whole.
    let whole = match &old.bytes {
        IndexBytes::InArchive(r) => Some(r.start as u64..r.end as u64),
        _ => None,
    };
    archive.advise_sampling(whole);
    let part = sampled_old_part(old, archive, scan);
    match &part {
        Ok(p) => archive.advise_range(memmap2::Advice::WillNeed, p.end..archive.len()),
        Err(_) => archive.advise(memmap2::Advice::Normal),
    }
    part
}

fn sampled_old_part<'i>(old: &'i Located, archive: &'i Archive, scan: ScanOptions) -> std::result::Result<OldPart<'i>, String> {
    let data = old.slice(archive);
    let Some(header) = data.get(..BLOCK).and_then(|b| <&[u8; BLOCK]>::try_from(b).ok()) else { return Err("the old index is too short".into()) };
    let Some(info) = tarfs::decode_header(header).ok().and_then(|h| h.info) else { return Err("the old index does not decode".into()) };
    if info.flags & (FLAG_SUBSET | FLAG_GLOBALS | FLAG_SEEK) != 0 || info.flags & FLAG_EXT == 0 {
        return Err("the old index cannot answer alone (a subset, no extension data, globals or seek points)".into());
    }
    let end = old.base.saturating_add(info.end_offset);
    if info.source_len != 0 || archive.compressed_len().is_some() || info.archive_len > archive.len() || end >= archive.len() {
        return Err("the archive did not grow".into());
    }
    let n = usize::try_from(info.entries).map_err(|_| "the old index is too large".to_string())?;
    let Some(Ok(x)) = extension_of(old, archive) else { return Err("the old index's extension does not open".into()) };
    if x.flags() & (ext::HAS_GLOBALS | ext::GLOBAL_ATTRIBUTES) != 0 {
        return Err("the old part has pax global headers".into());
    }
    let block = |i: usize| {
        x.check_entry(&data[BLOCK..], i).ok()?;
        data.get((i + 1) * BLOCK..(i + 2) * BLOCK).and_then(|b| <&[u8; BLOCK]>::try_from(b).ok())
    };
    // Every old entry, not a sample: an unsampled member renamed in place (the same length, its
    // checksum fixed) would otherwise be carried into the new index, which every cheap check
    // would then call fresh for good.
    let read = entries_unchanged(n, 0..n, &|i| block(i).map(IndexEntry::new), old, archive)?;
    // `tar -rf` writes its first new header over the old end marker (`tarfs csv` too, often
    // within the old length).
    match Scanner::at(archive.bytes(), end, scan).next() {
        Some(Ok(e)) if e.position == end => {}
        _ => return Err(format!("no member starts at the old end (byte {end})")),
    }
    Ok(OldPart { entries: n, ext: x, end, read })
}
