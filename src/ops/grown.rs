//! Re-indexing an archive that only grew: members appended (`tar -rf`, or a CSV index member
//! appended by tarfs) after the end its sidecar records.
//!
//! The old sidecar answers for the old part: its entries, with their extension records, become
//! the new index's first entries without reading the archive (as [`crate::ops::read::Reader`]
//! lists through an index), and only the appended part is scanned, from the old end. Before
//! that, the verdict [`crate::verdict::grown`] must say so: every old entry still matches the
//! header at its position (a sample would let an in-place rename of an unsampled member into
//! the new index), and the old end now holds a header. The result is byte-identical to a full
//! re-index (`tests/index_ext.rs` proves it): the index sink is given the same members.
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
use crate::format::tarfs::{self, IndexEntry, FLAG_GLOBALS, FLAG_SEEK, FLAG_SUBSET};
use crate::ops::atomic::Perm;
use crate::ops::index::{write_index_file, EntrySink, IndexFormat, IndexOptions, IndexReport};
use crate::ops::read::{ext_entry, judged, IndexBytes, Located, Source};
use crate::verdict::{self, Corruption, Verdict, Why};
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
pub fn write_sidecar_grown(archive: &Archive, dest: &Path, opts: &IndexOptions) -> Result<std::result::Result<Grown, NotGrown>> {
    let map = match Archive::open(dest) {
        Ok(m) => m,
        Err(e) => return Ok(Err(NotGrown::Unreadable(e))),
    };
    if opts.filter.is_some() {
        return Ok(Err(NotGrown::SubsetAsked));
    }
    let old = Located { source: Source::Sidecar(dest.to_path_buf()), bytes: IndexBytes::Mapped(std::sync::Arc::new(map)), base: 0 };
    let old = &old;
    let data = old.slice(archive);
    let part = match old_part(old, archive, opts.scan) {
        Ok(p) => p,
        Err(why) => return Ok(Err(why)),
    };
    if part.old.format() != opts.format {
        return Ok(Err(NotGrown::OtherVersion));
    }
    // A v2 index gives its old members without their data: digests it lacks cannot be added.
    if opts.digests && matches!(part.old, OldIndex::V2(..)) && kept_digests(data, part.entries).is_none() {
        return Ok(Err(NotGrown::DigestsAsked));
    }
    let (n, at, mut read) = (part.entries, part.end, part.read);
    let bytes = archive.bytes();
    let path = archive.path();
    let ((info, end), (ext_len, ext_names)) = write_index_file(dest, opts.dir_syncs.as_deref(), Perm::NoWiderThan(archive.mode()), |w| {
        // The old members' digests are kept; the appended ones' computed (and all of them where
        // the old index has none but digests are asked for: a v1 index's old members are read
        // again for them; a v2 index without them was not taken, above).
        let kept = kept_digests(data, n);
        let wanted = (opts.digests || kept.is_some()).then_some(opts.scan);
        let mut sink = EntrySink::new(path, w, None)?.bind(crate::ops::index::Binding::of(archive)).format(opts.format).digests(wanted, false);
        let keeping = kept.is_some();
        if let Some(t) = kept {
            sink.keep_digests(t);
        }
        keep_old(&mut sink, &part.old, old, archive, data, n, keeping)?;
        let mut scanner = Scanner::at(bytes, at, opts.scan);
        for e in scanner.by_ref() {
            let e = e.map_err(|source| Error::Scan { path: path.to_path_buf(), source })?;
            crate::watch::at(e.position);
            sink.push(&e)?;
        }
        let mut end = scanner.end().ok_or_else(|| Error::Bug { path: path.to_path_buf(), what: "the scan of the appended members did not end".into() })?;
        end.members += n as u64;
        sink.hash_mapped(bytes)?;
        let info = sink.finish(bytes.len() as u64, 0, &end, None)?;
        Ok((info, end))
    }, |t| &t.0)?;
    read += bytes.len() as u64 - at;
    let report = IndexReport { index_path: dest.to_path_buf(), members: end.members, entries: info.entries, bytes: archive.len(), end, ext_len, ext_names, seek: None };
    Ok(Ok(Grown { report, kept: n as u64, read }))
}

/// Gives `sink` the `n` members of the old index `old` (located at `located`, its bytes `data`).
/// With `keeping`, their digests were kept ([`EntrySink::keep_digests`]).
fn keep_old<W: std::io::Write + std::io::Seek>(sink: &mut EntrySink<'_, W>, old: &OldIndex<'_>, located: &Located, archive: &Archive, data: &[u8], n: usize, keeping: bool) -> Result<()> {
    match old {
        OldIndex::V1(x) => (0..n).try_for_each(|i| {
            let e = ext_entry(located, archive, x, data, i)?;
            if keeping { sink.push_kept(&e) } else { sink.push(&e) }
        }),
        OldIndex::V2(parts, image) => {
            let info = tarfs::decode_header_as(data[..BLOCK].try_into().expect("one block"), 2).ok().and_then(|h| h.info).unwrap_or_default();
            let body = image.as_deref().or_else(|| crate::format::v2::body_of(data, &info)).unwrap_or_default();
            let view = parts.on(body);
            let mut path = Vec::new();
            for i in 0..n {
                let bad = |source: crate::format::v2::V2Error| Error::Index { index: located.path(archive), source: source.into() };
                view.path_into(i, &mut path).map_err(bad)?;
                sink.keep_v2(&view.member(i, &path).map_err(bad)?)?;
            }
            Ok(())
        }
    }
}

/// The member digests of the old index `data` of `n` entries, if it has them (and they open).
fn kept_digests(data: &[u8], n: usize) -> Option<crate::format::digests::Table> {
    let part = crate::format::digests::of_index(data).ok()??;
    let view = crate::format::digests::View::open(part.bytes(data)?, n as u64).ok()?;
    Some(crate::format::digests::Table::from_view(&view))
}

/// The old part of an archive that grew, as its old index `old` describes it.
pub(crate) struct OldPart<'i> {
    /// Entries in the old index.
    pub entries: usize,
    /// The old index, by its version.
    pub old: OldIndex<'i>,
    /// Where the old part ends (absolute): the first appended member starts here.
    pub end: u64,
    /// Archive bytes read to check it.
    pub read: u64,
}

/// The old index of an archive that grew, by its version: what its members are read from.
pub(crate) enum OldIndex<'i> {
    /// v1.0: its extension (with its entries, the copies of the members' headers).
    V1(ext::Ext<'i>),
    /// v2.0: its body's parts, and its plain body where it stores it deflated.
    V2(crate::format::v2::Parts, Option<Vec<u8>>),
}

impl OldIndex<'_> {
    /// The index version that reads it.
    pub(crate) fn format(&self) -> IndexFormat {
        match self {
            OldIndex::V1(_) => IndexFormat::V1,
            OldIndex::V2(..) => IndexFormat::V2,
        }
    }
}

/// Why an old index cannot answer for the old part of an archive that grew.
#[derive(Debug)]
pub enum NotGrown {
    /// The old index cannot be read.
    Unreadable(Error),
    /// A subset index is asked for.
    SubsetAsked,
    /// The new index is of another version than the old one.
    OtherVersion,
    /// Member digests are asked for, and the old v2 index has none.
    DigestsAsked,
    /// The verdict on the old index ([`crate::verdict::grown`]).
    Verdict(Verdict),
}

impl std::fmt::Display for NotGrown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotGrown::Unreadable(e) => write!(f, "the old index cannot be read: {e}"),
            NotGrown::SubsetAsked => write!(f, "a subset index is asked for"),
            NotGrown::OtherVersion => write!(f, "the old index is of another version than the one asked for"),
            NotGrown::DigestsAsked => write!(f, "member digests are asked for, and the old index has none"),
            NotGrown::Verdict(Verdict::Stale(why)) => write!(f, "{why}"),
            NotGrown::Verdict(v) => write!(f, "the old index {v}"),
        }
    }
}

/// Whether the index `old` can answer for the old part of `archive`, which grew: the verdict
/// [`crate::verdict::grown`] on it. `Err(why)` otherwise.
///
/// It reads the archive as a sample (see [`Archive::advise_sampling`]): an embedded old index
/// and the appended part whole, the old headers one page each. When it declines, the
/// mapping's advice is back to normal.
pub(crate) fn old_part<'i>(old: &'i Located, archive: &'i Archive, scan: ScanOptions) -> std::result::Result<OldPart<'i>, NotGrown> {
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

fn sampled_old_part<'i>(old: &'i Located, archive: &'i Archive, scan: ScanOptions) -> std::result::Result<OldPart<'i>, NotGrown> {
    let data = old.slice(archive);
    let corrupt = |e| NotGrown::Verdict(Verdict::Corrupt(e));
    if matches!(tarfs::version_of(data), Ok((2, _))) {
        let mut read = 0;
        let g = crate::ops::read::grown_v2(archive, old, scan, &mut read).map_err(corrupt)?;
        return match g.verdict {
            Verdict::Grown { from } => Ok(OldPart { entries: g.entries, old: OldIndex::V2(g.parts, g.image), end: from, read }),
            v => Err(NotGrown::Verdict(v)),
        };
    }
    let header = data.get(..BLOCK).and_then(|b| <&[u8; BLOCK]>::try_from(b).ok()).ok_or_else(|| corrupt(Corruption::Decode(tarfs::IndexError::NoMagic)))?;
    let info = tarfs::decode_header(header).map_err(|e| corrupt(Corruption::Decode(e)))?.info.ok_or(NotGrown::Verdict(Verdict::Stale(Why::NoRecord)))?;
    let x = crate::ops::read::opened_extension(data, header, &info).map_err(|e| corrupt(Corruption::Extension(e)))?;
    let n = usize::try_from(info.entries).map_err(|_| NotGrown::Verdict(Verdict::Stale(Why::NotAlone)))?;
    let globals = x.as_ref().is_some_and(|x| x.flags() & (ext::HAS_GLOBALS | ext::GLOBAL_ATTRIBUTES) != 0);
    let alone = info.flags & (FLAG_SUBSET | FLAG_GLOBALS | FLAG_SEEK) == 0 && x.is_some() && !globals;
    let block = |i: usize| {
        x.as_ref()?.check_entry(&data[BLOCK..], i).ok()?;
        data.get((i + 1) * BLOCK..(i + 2) * BLOCK).and_then(|b| <&[u8; BLOCK]>::try_from(b).ok()).map(IndexEntry::new)
    };
    let mut read = 0;
    match verdict::grown(&judged(&info, n, block, old), alone, archive, scan, &mut read) {
        Verdict::Grown { from } => Ok(OldPart { entries: n, old: OldIndex::V1(x.expect("alone")), end: from, read }),
        v => Err(NotGrown::Verdict(v)),
    }
}
