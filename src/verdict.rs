//! The one freshness verdict: whether an index may answer for an archive as it is now.
//!
//! Every caller asks here (readers through [`crate::ops::read::Reader::with_index`], `index`'s
//! keep-or-rebuild, the grown re-index, `embed`, `csv`, `verify` and the mount); nobody else
//! compares lengths, stamps, digests or samples. The answer is a [`Verdict`], and a refusal
//! says why in a typed [`Why`] or [`Corruption`], so that callers decide on values, never on
//! text. The rules are FORMAT.md's "Freshness":
//!
//! - A compressed file's sidecar is bound to that file: its length, then its stamp (inode,
//!   mtime, ctime), and where the stamp differs (a copy, a replacement), the xxh3-64 of the
//!   whole compressed file. Another file of the same length is never answered for; a sidecar
//!   from an older tarfs, with no digest, is stale.
//! - A sidecar records the archive's length.
//! - The archive must still end where the index says (GNU `tar -rf` appends over the end
//!   marker, often without changing the length).
//! - A sidecar that records the archive's stamp: where the stamp still holds, the first, the
//!   last and a fixed sample of [`SAMPLE`] entries between must match the headers at their
//!   positions; where it differs (an in-place edit changes the ctime, which `touch -r` cannot
//!   restore), every entry must. Where the stamp names the content itself (an object's ETag,
//!   [`ArchiveFile::stamp_is_content`]) and holds, nothing is sampled. An embedded index, or a sidecar of an older tarfs, cannot
//!   carry a stamp that holds: the sample is the fallback.

use std::fmt;

use crate::archive::{with_member_at, ArchiveFile};
use crate::format::header::{is_zero_block, BLOCK_U64};
use std::marker::PhantomData;

use crate::format::tarfs::{IndexEntry, IndexError, IndexInfo, Stamp};
use crate::scan::{Entry, ScanOptions};

/// Entries of an index that freshness compares with the archive, besides the first and last.
pub const SAMPLE: usize = 64;

/// Whether an index may answer for its archive.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// It describes the archive as it is; judging it read `read` bytes of the archive.
    Fresh {
        /// Archive bytes read to judge.
        read: u64,
    },
    /// It describes the archive up to byte `from`, where members were appended since.
    Grown {
        /// Where the old part ends and the appended members start.
        from: u64,
    },
    /// It no longer describes the archive.
    Stale(Why),
    /// It is damaged.
    Corrupt(Corruption),
    /// It holds only the members a filter chose (`entries` of them): it cannot answer for the
    /// archive's others.
    Subset {
        /// Entries in the index.
        entries: u64,
    },
    /// An interrupted in-place change left a journal: the archive is neither the old one nor
    /// the new one until `tarfs recover` has run.
    Interrupted,
}

impl Verdict {
    /// Whether the index may answer.
    pub fn is_fresh(&self) -> bool {
        matches!(self, Verdict::Fresh { .. })
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Fresh { .. } => write!(f, "is fresh"),
            Verdict::Grown { from } => write!(f, "describes the archive up to byte {from}, which grew since"),
            Verdict::Stale(why) => write!(f, "is stale: {why}"),
            Verdict::Corrupt(c) => write!(f, "{c}"),
            Verdict::Subset { entries } => write!(f, "is a subset index ({entries} entries), which cannot answer for the members it leaves out"),
            Verdict::Interrupted => write!(f, "belongs to an archive that an interrupted change left half changed"),
        }
    }
}

/// Why an index no longer describes its archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// The compressed file has another length than the one indexed.
    CompressedLength {
        /// The length recorded.
        recorded: u64,
        /// The file's length now.
        now: u64,
    },
    /// Another compressed file of the same length: its digest differs.
    CompressedDigest,
    /// A compressed file's sidecar from an older tarfs: nothing binds it to the file's content.
    Unbound,
    /// The archive has another length than the one indexed.
    Length {
        /// The length recorded.
        recorded: u64,
        /// The archive's length now.
        now: u64,
    },
    /// The archive no longer ends where the index says.
    End {
        /// The end recorded.
        at: u64,
    },
    /// An entry no longer matches the header at its position.
    Entry {
        /// The entry's number.
        entry: usize,
        /// Whether it is the index's last.
        last: bool,
        /// Its position in the archive.
        at: u64,
    },
    /// The archive's stamp changed since it was indexed, though every entry still matches:
    /// readers may answer, and `index` rebuilds the sidecar so that the sample suffices again.
    Stamp {
        /// The stamp recorded, if any.
        then: Option<Stamp>,
        /// The archive's stamp now.
        now: Stamp,
    },
    /// Made with another member filter than the one asked for.
    Filter,
    /// Made by another tool: no tarfs record to check freshness against.
    NoRecord,
    /// Made by an older tarfs, without extension data.
    NoExtension,
    /// Member digests are asked for, and it has none.
    NoDigests,
    /// Made by an older tarfs, without the archive's stamp and the index's digests.
    OldRecord,
    /// It cannot carry the archive's pax global headers.
    Globals,
    /// Its seek points were made for another file (length, or first and last 64 KiB).
    SeekBinding,
    /// The full check (`tarfs verify`) failed, with this message.
    Unverified(String),
    /// The archive could not be read where the check looked.
    Unread {
        /// Where.
        at: u64,
        /// What went wrong.
        kind: std::io::ErrorKind,
    },
    /// For a grown re-index: it cannot answer alone (a subset, no extension data, pax global
    /// headers or seek points).
    NotAlone,
    /// For a grown re-index: the archive did not grow past the index's end.
    NotGrown,
    /// For a grown re-index: no member starts where the old part ended.
    NoMemberAtOldEnd {
        /// The old end.
        at: u64,
    },
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::CompressedLength { recorded, now } => write!(f, "it was made for a compressed file of {recorded} bytes, the file is {now} bytes"),
            Why::CompressedDigest => write!(f, "it was made for another compressed file of the same length (the file's digest differs)"),
            Why::Unbound => write!(f, "it was made by an older tarfs and records nothing that binds it to the compressed file's content"),
            Why::Length { recorded, now } => write!(f, "it was made for an archive of {recorded} bytes, the archive is {now} bytes"),
            Why::End { at } => write!(f, "the archive no longer ends at byte {at}"),
            Why::Entry { entry, last, at } => write!(f, "{} no longer matches the archive at byte {at}", entry_words(*entry, *last)),
            Why::Stamp { then, now } => write!(f, "the archive changed since it was indexed (then {}; now {now})", then.map_or("unknown".into(), |s| s.to_string())),
            Why::Filter => write!(f, "made with another member filter"),
            Why::NoRecord => write!(f, "made by another tool (no tarfs record to check freshness against)"),
            Why::NoExtension => write!(f, "made by an older tarfs, without extension data (listings through it read the archive)"),
            Why::NoDigests => write!(f, "it has no member digests, which --digests asks for"),
            Why::OldRecord => write!(f, "made by an older tarfs, without the archive's stamp and the index's digests"),
            Why::Globals => write!(f, "it cannot carry the archive's pax global headers"),
            Why::SeekBinding => write!(f, "its seek points were made for another file (its length or its first and last 64 KiB differ)"),
            Why::Unverified(e) => write!(f, "{e}"),
            Why::Unread { at, kind } => write!(f, "the archive could not be read at byte {at} ({kind})"),
            Why::NotAlone => write!(f, "it cannot answer alone (a subset, no extension data, globals or seek points)"),
            Why::NotGrown => write!(f, "the archive did not grow"),
            Why::NoMemberAtOldEnd { at } => write!(f, "no member starts at the old end (byte {at})"),
        }
    }
}

/// How an index is damaged.
#[derive(Debug, Clone)]
pub enum Corruption {
    /// It does not decode.
    Decode(IndexError),
    /// Its extension data, or a digest over it, is damaged.
    Extension(IndexError),
    /// An entry has a bad checksum, or does not match its group's digest.
    Entry {
        /// The entry's number.
        entry: usize,
        /// Whether it is the index's last.
        last: bool,
    },
    /// Its seek section is damaged (shared: the error is not `Clone`).
    Seek(std::sync::Arc<crate::seekpoints::SeekPointsError>),
    /// It cannot be read.
    Unreadable(String),
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::Decode(e) => write!(f, "does not decode: {e}"),
            Corruption::Extension(e) => write!(f, "is corrupt: {e}"),
            Corruption::Entry { entry, last } => write!(f, "is corrupt: {} has a bad checksum or does not match its group's digest", entry_words(*entry, *last)),
            Corruption::Seek(why) => write!(f, "is corrupt: its seek section: {why}"),
            Corruption::Unreadable(why) => write!(f, "cannot be read ({why})"),
        }
    }
}

/// "its last entry" or "its entry N".
fn entry_words(entry: usize, last: bool) -> String {
    if last {
        "its last entry".to_string()
    } else {
        format!("its entry {entry}")
    }
}

/// What the verdict needs of the index being judged.
pub struct Judged<'e, E: Recorded, F: Fn(usize) -> Option<E>> {
    /// Its header record.
    pub info: &'e IndexInfo,
    /// Its number of entries.
    pub entries: usize,
    /// Entry `i`, or `None` where it is corrupt (a bad checksum, a group digest that fails).
    pub entry: F,
    /// Whether it is a sidecar (a file of its own, which can record the archive's stamp).
    pub sidecar: bool,
    /// The byte offset in the archive that its positions count from.
    pub base: u64,
    /// The kind of entry `entry` gives.
    pub kind: PhantomData<fn() -> E>,
}

/// What the verdict asks of one entry of an index, whatever its form: where its member is, and
/// whether the member found there is the one it records.
pub trait Recorded {
    /// Whether the entry is intact (its checksum, or its group's digest, holds).
    fn intact(&self) -> bool;
    /// Its member's position, in blocks from the index's base.
    fn position(&self) -> u64;
    /// Whether `found`, the member scanned at that position, is the one it records.
    fn matches(&self, found: &Entry<'_>) -> bool;
}

/// A `.tarfs` v1 entry: a copy of its member's main header, and the length of its chain.
impl Recorded for IndexEntry<'_> {
    fn intact(&self) -> bool {
        self.checksum_ok()
    }

    fn position(&self) -> u64 {
        IndexEntry::position(self)
    }

    fn matches(&self, found: &Entry<'_>) -> bool {
        self.matches_header(found.header.as_bytes()) && self.chain_blocks().is_none_or(|c| c == found.chain_blocks())
    }
}

/// The verdict on an index for `archive`: [`Verdict::Fresh`] with the bytes read, or why not.
/// (A stamp that differs while every entry still matches is fresh here: readers may answer.
/// [`keep_sidecar`] is stricter.) The journal is [`pending`]'s question, asked first by
/// every reader and by `index`; a writer reading back its own change, under its own journal,
/// asks only this one.
pub fn judge<'e, E: Recorded, F: Fn(usize) -> Option<E>>(ix: &Judged<'e, E, F>, archive: &dyn ArchiveFile) -> Verdict {
    match freshness(ix, archive) {
        Ok(read) => Verdict::Fresh { read },
        Err(v) => v,
    }
}

/// [`judge`] for `index`'s keep-or-rebuild: a sidecar is kept only when it is fresh and still
/// records the archive's stamp, so that the next cheap check needs only the sample.
pub fn keep_sidecar<'e, E: Recorded, F: Fn(usize) -> Option<E>>(ix: &Judged<'e, E, F>, archive: &dyn ArchiveFile) -> Verdict {
    match judge(ix, archive) {
        Verdict::Fresh { .. } if ix.info.stamp != Some(archive.stamp()) => Verdict::Stale(Why::Stamp { then: ix.info.stamp, now: archive.stamp() }),
        v => v,
    }
}

/// [`Verdict::Interrupted`] when an interrupted in-place change of `archive` left its journal:
/// no index answers for a half-changed archive, nor is one made of it, until `tarfs recover`.
pub fn pending(archive: &dyn ArchiveFile) -> Option<Verdict> {
    crate::ops::journal::pending(archive.path(), archive.identity()).then_some(Verdict::Interrupted)
}

/// The verdict on an index for `archive`, which may have grown by appended members since:
/// [`Verdict::Grown`] when the index is a full one with extension data (`alone`: no pax global
/// headers, no seek points), of an uncompressed archive; every one of its entries still
/// matches the header at its position (every one, not a sample: an unsampled member renamed in
/// place, the same length and its checksum fixed, would otherwise be carried into the new
/// index, which every cheap check would then call fresh for good); and a member now starts at
/// its old end (`tar -rf` writes its first new header over the old end marker, `tarfs csv`
/// too, often within the old length). The bytes read are added to `read`.
pub fn grown<'e, E: Recorded, F: Fn(usize) -> Option<E>>(ix: &Judged<'e, E, F>, alone: bool, archive: &dyn ArchiveFile, scan: ScanOptions, read: &mut u64) -> Verdict {
    let info = ix.info;
    if !alone {
        return Verdict::Stale(Why::NotAlone);
    }
    let end = ix.base.saturating_add(info.end_offset);
    if info.source_len != 0 || archive.compressed_len().is_some() || info.archive_len > archive.len() || end >= archive.len() {
        return Verdict::Stale(Why::NotGrown);
    }
    match entries_unchanged(ix, 0..ix.entries, archive) {
        Ok(n) => *read += n,
        Err(v) => return v,
    }
    match with_member_at(archive, end, scan, |found| found.is_some_and(|(e, base)| base + e.position == end)) {
        Ok(true) => Verdict::Grown { from: end },
        Ok(false) => Verdict::Stale(Why::NoMemberAtOldEnd { at: end }),
        Err(e) => Verdict::Stale(Why::Unread { at: end, kind: e.kind() }),
    }
}

fn freshness<'e, E: Recorded, F: Fn(usize) -> Option<E>>(ix: &Judged<'e, E, F>, archive: &dyn ArchiveFile) -> Result<u64, Verdict> {
    let info = ix.info;
    if info.source_len != 0 {
        let compressed = archive.compressed_len().unwrap_or(archive.len());
        if info.source_len != compressed {
            return Err(Verdict::Stale(Why::CompressedLength { recorded: info.source_len, now: compressed }));
        }
        if archive.compressed_len().is_none() {
            return compressed_binding(ix, archive);
        }
        // A decompressed copy: the checks below apply to it.
    }
    if ix.sidecar && info.archive_len != archive.len() {
        return Err(Verdict::Stale(Why::Length { recorded: info.archive_len, now: archive.len() }));
    }
    if ix.sidecar && archive.stamp_is_content() && info.stamp == Some(archive.stamp()) {
        // The stamp is the content's own name (an object's ETag): the same bytes, nothing to
        // sample (each read is a request).
        return Ok(0);
    }
    let end = ix.base + info.end_offset;
    let tail = archive.read_at(end, crate::format::header::BLOCK).map_err(|e| Verdict::Stale(Why::Unread { at: end, kind: e.kind() }))?;
    if end > archive.len() || !is_zero_block(&tail) {
        return Err(Verdict::Stale(Why::End { at: end }));
    }
    let changed = ix.sidecar && info.stamp.is_some_and(|s| s != archive.stamp());
    let n = ix.entries;
    let checked = if changed { entries_unchanged(ix, 0..n, archive) } else { sample_unchanged(ix, archive) };
    Ok(BLOCK_U64 + checked?)
}

/// The binding of a compressed file's sidecar: its stamp, else its digest. Returns the bytes
/// read.
fn compressed_binding<'e, E: Recorded, F: Fn(usize) -> Option<E>>(ix: &Judged<'e, E, F>, archive: &dyn ArchiveFile) -> Result<u64, Verdict> {
    if ix.sidecar && ix.info.stamp == Some(archive.stamp()) {
        return Ok(0);
    }
    match ix.info.source_digest {
        Some(d) => match crate::archive::digest_of(archive) {
            Ok(now) if now == d => Ok(archive.len()),
            Ok(_) => Err(Verdict::Stale(Why::CompressedDigest)),
            Err(e) => Err(Verdict::Stale(Why::Unread { at: 0, kind: e.kind() })),
        },
        None => Err(Verdict::Stale(Why::Unbound)),
    }
}

/// The sample: the first, the last and [`SAMPLE`] entries between each still match the header
/// at its position. Returns the archive bytes read.
fn sample_unchanged<'e, E: Recorded, F: Fn(usize) -> Option<E>>(ix: &Judged<'e, E, F>, archive: &dyn ArchiveFile) -> Result<u64, Verdict> {
    let n = ix.entries;
    let step = (n / SAMPLE).max(1);
    entries_unchanged(ix, (0..n).step_by(step).chain(n.checked_sub(1)), archive)
}

/// Whether each of the entries `which` still matches the header at its position. Returns the
/// archive bytes read.
pub fn entries_unchanged<'e, E: Recorded, F: Fn(usize) -> Option<E>>(ix: &Judged<'e, E, F>, which: impl Iterator<Item = usize>, archive: &dyn ArchiveFile) -> Result<u64, Verdict> {
    let mut read = 0;
    for i in which {
        let last = i + 1 == ix.entries;
        let Some(entry) = (ix.entry)(i).filter(Recorded::intact) else {
            return Err(Verdict::Corrupt(Corruption::Entry { entry: i, last }));
        };
        // The position is the first block of the header chain; the entry copies the main header.
        let pos = ix.base + entry.position() * BLOCK_U64;
        let here = with_member_at(archive, pos, ScanOptions::default(), |found| {
            let (n, same) = found.map_or((BLOCK_U64, false), |(e, base)| (e.header_offset + BLOCK_U64 - e.position, base + e.position == pos && entry.matches(&e)));
            read += n;
            same
        });
        match here {
            Ok(true) => {}
            Ok(false) => return Err(Verdict::Stale(Why::Entry { entry: i, last, at: pos })),
            Err(e) => return Err(Verdict::Stale(Why::Unread { at: pos, kind: e.kind() })),
        }
    }
    Ok(read)
}
