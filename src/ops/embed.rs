//! Embedding a `.tarfs` index in an archive, in place (DESIGN §2).
//!
//! The index becomes the first member. Take the smallest k such that the first k members (whole
//! header chains and data, with any pax `g` headers between them) cover the index member: its
//! header and `n + 1` index blocks. Those k members are copied, byte for byte, to where the
//! end-of-archive marker was, and a new end marker follows them. The `.tarfs` member then covers
//! the whole head, up to the first member that stays. The gap between the index and that member
//! is covered by growing the `.tarfs` member: its entry list is followed by one zero block, and the
//! old bytes stay where they are. Only the header, the index, that zero block, the displaced
//! copies and the end marker are written, never the whole archive.
//!
//! A Solaris `A` or `E` header is moved with the member after it, which libarchive reads it with.
//!
//! An archive that already has an embedded index is re-indexed: the new index replaces the old
//! one in its space when it fits, and otherwise the same displacement is done again (the old
//! `.tarfs` member's space counts toward covering the new one). An index that is already up to
//! date is left alone unless forced. When the archive only grew (members appended after the old
//! index's end) and the new index fits, the old index answers for the old part and only the
//! appended part is surveyed (`survey_grown`, on [`crate::ops::grown::old_part`]).
//!
//! Moving members is done only where it keeps the archive's meaning (DESIGN §10): every header
//! must be one that all readers read alike ([`HeaderView::disagreement`]), no member may hide
//! behind zero blocks, and the order model ([`crate::ops::order`]) must find that extracting the
//! moved sequence gives the same tree (hard links, names that occur twice). Otherwise `embed`
//! shifts the whole archive forward by the index member's length ([`crate::ops::shift`]), so
//! that no member changes its place in the order; with `--no-shift` (`no_shift`) it refuses
//! instead and points to `--output`, which keeps the order. Either way it refuses to grow an
//! archive by more than `--max-growth` bytes.
//!
//! Crash safety (DESIGN §5) is [`crate::ops::in_place`]'s: under the lock on the archive, a
//! journal; the space reserved; then, each followed by an fsync, the displaced members (but for
//! the copy's first block) and a new end marker past the old end, the copy's first block over the
//! old end marker's first block (until then every tar reader stops at the old end, not in a copy
//! cut short: [`link_last`], as `csv` writes its member), the `.tarfs` header, the index entries (and zero block), and the
//! index's own header block; the result read back through [`Reader`]; the journal removed. Any
//! failure rolls back to the original, byte for byte.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::archive::Archive;
use crate::chunked::{self, ScanMode};
use crate::error::{Error, IoContext, ReadBackIndex, ReadBackProblem, Result};
use crate::format::header::{round_up, Disagreement, HeaderView, UstarFields, BLOCK, BLOCK_U64};
use crate::format::ext::{self, ExtSink};
use crate::format::tarfs::{self, IndexInfo};
use crate::ops::atomic::write_atomic;
use crate::ops::embed_erofs::{self as self_image, Imager};
use crate::ops::in_place::{check_end, first_nonzero, link_last, Change, Phase, Surveyed, Target};
use crate::ops::order::{self, Item};
use crate::ops::grown;
use crate::ops::index::{EntryRec, IndexFormat};
use crate::ops::index_v2;
use crate::ops::shift::{self, Shift};
use crate::ops::read::{ext_entry, Located, Reader};
use crate::scan::{Entry, ScanOptions, Scanner, Warning};
use crate::ops::embed_digests::Digests;
use crate::stream::ColdWindow;

/// The default of [`EmbedOptions::max_growth`]: 1 GiB.
pub const DEFAULT_MAX_GROWTH: u64 = 1 << 30;

/// How to embed.
#[derive(Debug, Clone, Copy)]
pub struct EmbedOptions {
    /// Scanner options.
    pub scan: ScanOptions,
    /// Rewrite an index that is already up to date, from a full survey (without it, an archive
    /// that only grew is surveyed from its old end).
    pub force: bool,
    /// Work out what would be done, and write nothing (no lock, no journal).
    pub dry_run: bool,
    /// Refuse when the archive would grow by more than this many bytes (the displaced members
    /// are copied to the end; a shift grows it by the index member).
    pub max_growth: u64,
    /// Where displacing members would change the archive's meaning, refuse instead of shifting
    /// the whole archive ([`crate::ops::shift`]).
    pub no_shift: bool,
    /// The index version to embed.
    pub format: IndexFormat,
    /// Put an EROFS image of the archive in the `.tarfs` member too (a self-mounting archive,
    /// [`crate::ops::embed_erofs`]). Without it, a rewritten index drops an old image.
    pub erofs: bool,
    /// Record member digests in the index (issue #36): every member's data is read and hashed.
    pub digests: bool,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        EmbedOptions { scan: ScanOptions::default(), force: false, dry_run: false, max_growth: DEFAULT_MAX_GROWTH, no_shift: false, format: IndexFormat::V2, erofs: false, digests: false }
    }
}

/// What embedding did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedReport {
    /// Members indexed.
    pub members: u64,
    /// Members copied to the end.
    pub displaced: u64,
    /// Bytes of members moved: copied to the end ([`EmbedAction::Embedded`]), or shifted
    /// forward ([`EmbedAction::Shifted`]).
    pub moved: u64,
    /// Blocks of the `.tarfs` member beyond its index and zero block (old bytes left in place).
    pub gap_blocks: u64,
    /// Bytes written to the archive (or to the output file).
    pub bytes_written: u64,
    /// Bytes the archive grew by.
    pub growth: u64,
    /// What was done.
    pub action: EmbedAction,
    /// Set when the archive only grew and the old index answered for the old part.
    pub grew: Option<Grew>,
    /// Set when an embedded index was there but could not answer for the old part (and not
    /// `--force`): why the archive was surveyed in full.
    pub in_full: Option<String>,
    /// The embedded EROFS image written (or, for a dry run, to be written): its byte offset in
    /// the archive, which `mount -o fsoffset=` takes, and its length.
    pub erofs: Option<(u64, u64)>,
    /// Members the image leaves out, as the mount does, and why (a name of over 255 bytes).
    pub erofs_left_out: Vec<(Vec<u8>, &'static str)>,
}

/// What [`embed`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedAction {
    /// The index was embedded, displacing members.
    Embedded,
    /// The index was embedded by shifting the whole archive forward: nothing changed order.
    Shifted,
    /// An existing embedded index was replaced in its own space.
    Reindexed,
    /// The embedded index was already up to date.
    UpToDate,
}

/// One member of the archive being embedded, as the plan needs it.
struct Member<'a> {
    typeflag: u8,
    mode: u32,
    device: (u64, u64),
    position: u64,
    chain_blocks: u64,
    simple: bool,
    end: u64,
    /// The extension record (see [`crate::format::ext`]).
    meta: Option<ext::Meta<'a>>,
    /// The main header: in the archive, or its entry in an old index (whose entry encodes the
    /// same, see [`tarfs::patch_entry`]), so that a grown archive's old headers are not read.
    header: &'a [u8; BLOCK],
    /// The main header's checksum as the scan verified it (a v2 record keeps it; an old v1
    /// entry's own block sums to another).
    header_sum: u32,
}

impl<'a> Member<'a> {
    /// What an index writer needs of this member at `position` (from the base).
    fn rec(&self, position: u64) -> EntryRec<'a> {
        EntryRec { header: self.header, header_sum: self.header_sum, position, chain_blocks: self.chain_blocks, simple: self.simple, selected: true, meta: self.meta, key_hash: 0, mode: self.mode, typeflag: self.typeflag, device: self.device, strings: None, place: None }
    }

    /// A member of an old v2 index (`m`, its position from `base`): its record as the
    /// extension record a v2 writer takes, every string given, so no header is read. Its
    /// header block is none (zeros): only a v1 index would need it, and members are taken from
    /// a v2 index only into a v2 one.
    fn of_v2(path: &Path, m: &crate::format::v2::Member<'a>, base: u64) -> Result<Self> {
        static NO_HEADER: [u8; BLOCK] = [0; BLOCK];
        let position = base.checked_add(m.position).ok_or_else(|| Error::Data { path: path.to_path_buf(), offset: m.position, problem: crate::error::DataProblem::SizePastAnyFile })?;
        let blocks = |b: u64| u32::try_from(b).map_err(|_| Error::Data { path: path.to_path_buf(), offset: position, problem: crate::error::DataProblem::SizePastAnyFile });
        let data_at = m.chain_blocks.checked_mul(BLOCK_U64).and_then(|c| position.checked_add(c));
        let end = round_up(m.stored_size).and_then(|n| data_at?.checked_add(n)).ok_or_else(|| Error::Data { path: path.to_path_buf(), offset: position, problem: crate::error::DataProblem::SizePastAnyFile })?;
        let mut flags = 0;
        for (ext_flag, v2_flag) in index_v2::FLAGS {
            if m.flags & v2_flag != 0 {
                flags |= ext_flag;
            }
        }
        let meta = ext::Meta {
            size: m.size,
            stored_size: m.stored_size,
            mtime: m.mtime.0,
            mtime_nsec: m.mtime.1,
            uid: m.owner.uid,
            gid: m.owner.gid,
            main_blocks: blocks(m.main_blocks)?,
            chain_blocks: blocks(m.chain_blocks)?,
            flags,
            path: Some(m.path),
            link: Some(m.link),
            uname: Some(m.owner.uname),
            gname: Some(m.owner.gname),
        };
        let simple = m.chain_blocks == 1 && m.flags == 0;
        Ok(Member { typeflag: m.typeflag, mode: m.mode, device: m.device, position, chain_blocks: m.chain_blocks, simple, end, meta: Some(meta), header: &NO_HEADER, header_sum: m.header_sum })
    }

    fn of(path: &Path, e: &Entry<'a>) -> Result<Self> {
        let end = round_up(e.stored_size).and_then(|n| e.data_offset.checked_add(n)).ok_or_else(|| Error::Data { path: path.to_path_buf(), offset: e.position, problem: crate::error::DataProblem::SizePastAnyFile })?;
        Ok(Member { typeflag: e.typeflag, mode: e.mode, device: e.device, position: e.position, chain_blocks: e.chain_blocks(), simple: e.is_simple(), end, meta: e.ext_meta(), header: e.header.as_bytes(), header_sum: e.header_sum })
    }
}

/// What a re-index of an archive that grew took from its old index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grew {
    /// Members taken from the old index.
    pub kept: u64,
    /// Archive bytes read outside the old index: the sample of old headers and the appended part.
    pub read: u64,
}

/// The archive's members (without an old `.tarfs`), and where they start.
struct Survey<'a> {
    members: Vec<Member<'a>>,
    /// The members as extraction sees them, for the order model.
    items: Vec<Item>,
    /// Byte offset where the members start: 0, or the end of an old `.tarfs` member.
    start: u64,
    /// Where the archive's members end.
    end_offset: u64,
    /// How the scan ended.
    end: crate::scan::ScanEnd,
    /// Why moving members to the end would change what some reader extracts, found by the
    /// survey (headers readers read differently, members behind zero blocks), if anything is.
    keep_order: Option<Unmovable>,
    /// Bytes after the end of the members that a change from their end would overwrite (an
    /// in-place survey only): displacement is refused, a shift moves them too, a re-index in
    /// the old `.tarfs` member leaves them.
    trailing: Option<Unmovable>,
    /// The members' digests, when the index is to have them ([`EmbedOptions::digests`]).
    digests: Option<Digests>,
}

impl Survey<'_> {
    /// Computes the members' digests where the index is to have them.
    fn hash(&mut self, path: &Path, archive: &Archive, opts: &EmbedOptions) -> Result<()> {
        if opts.digests {
            let positions: Vec<u64> = self.members.iter().map(|m| m.position).collect();
            self.digests = Some(Digests::of(path, archive.bytes(), &positions, opts.scan)?);
        }
        Ok(())
    }
}

/// The first header of the chain from `from` up to the main header at `main` that some readers
/// read differently, with why.
fn chain_disagreement(bytes: &[u8], from: u64, main: u64) -> Option<(u64, Disagreement)> {
    let mut at = from;
    loop {
        let h = HeaderView::from_slice(&bytes[at as usize..])?;
        if let Some(why) = h.disagreement() {
            return Some((at, why));
        }
        if at >= main {
            return None;
        }
        at += BLOCK_U64 + round_up(h.size().ok()?)?;
    }
}

/// Scans the archive for a plan. `in_place` is the file being changed in place, whose checks
/// (readers that disagree, zero blocks, the tail) only an in-place change needs.
fn survey<'a>(path: &Path, archive: &'a Archive, opts: ScanOptions, in_place: Option<&std::fs::File>) -> Result<Survey<'a>> {
    let old = archive.embedded();
    let start = old.as_ref().map_or(0, |e| e.base);
    let bytes = archive.bytes();
    // A cold archive of members larger than two readahead windows of the walk: each header
    // faults in its own page and a window ahead of the walk (`MADV_RANDOM`, and
    // `MADV_WILLNEED` where the [`ColdWindow`] says), not the whole readahead window around
    // every header, which reads the member data between (8 MiB where `read_ahead_kb` is 8192).
    // 300 members of 8 MiB, cold: 2.5 GB read in 2.2-2.4 s -> 0.63 GB in 0.9-1.1 s. With
    // smaller members the windows read most of the data anyway, and the kernel's larger
    // read-around is faster (20k members of 0-64 MiB, mean 155 KB: 1.66 s normal, 1.86 s so).
    let planned = chunked::plan_archive(archive, opts, ScanMode::Sequential, 1);
    let mut ahead = (planned.cold && planned.span.is_some_and(|s| s > 2 * crate::stream::COLD_WINDOW)).then(|| {
        archive.advise(memmap2::Advice::Random);
        ColdWindow::new(archive.len())
    });
    let mut members = Vec::new();
    let mut items = Vec::new();
    let mut keep_order = None;
    let mut scanner = Scanner::new(bytes, opts);
    let walk = (|| {
        for e in scanner.by_ref() {
            let e = e.map_err(|source| Error::Scan { path: path.to_path_buf(), source })?;
            crate::watch::at(e.position);
            if let Some(r) = ahead.as_mut().and_then(|w| w.ask(e.position)) {
                archive.advise_range(memmap2::Advice::WillNeed, r);
            }
            if old.as_ref().is_some_and(|o| o.member_position == e.position) {
                continue;
            }
            if in_place.is_some() {
                let (item, why) = check_member(path, &e, bytes)?;
                items.push(item);
                if keep_order.is_none() {
                    keep_order = why;
                }
            }
            members.push(Member::of(path, &e)?);
        }
        Ok(())
    })();
    if ahead.is_some() {
        // What follows (copying members, the read-back) reads runs of bytes.
        archive.advise(memmap2::Advice::Normal);
    }
    // A header that readers read differently is the likelier story of a scan that then fails.
    walk.map_err(|e| match &keep_order {
        Some(u @ Unmovable::ReadDifferently { .. }) => Error::refused(path, u.to_string()),
        _ => e,
    })?;
    let end = scanner.end().expect("scan finished");
    let (behind, trailing) = check_tail(path, in_place, bytes, &end)?;
    let keep_order = keep_order.or(behind);
    Ok(Survey { members, items, start, end_offset: end.end_offset, end, keep_order, trailing, digests: None })
}

/// Why moving leading members to the end would change what some reader extracts: `embed`
/// shifts the archive instead, or with `--no-shift` refuses in these words.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Unmovable {
    /// A header at this offset that tar readers read differently.
    ReadDifferently { at: u64, why: Disagreement },
    /// Zero blocks at this offset with members after them (`--lenient`).
    BehindZeros { offset: u64 },
    /// The member at this offset cannot move behind the others (the order model's reason).
    Order { at: u64, why: String },
    /// Data after the end-of-archive marker, from this offset, which a copy to the end would
    /// overwrite.
    AfterEnd { at: u64 },
    /// Data after a lone zero block at this offset, which a copy to the end would overwrite.
    AfterLoneZero { offset: u64 },
}

impl std::fmt::Display for Unmovable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unmovable::ReadDifferently { at, why } => write!(f, "the member at byte {at} is one that tar readers read differently ({why}), so moving members would change what some of them extract; use `--output` (which keeps the order) or `tarfs index` for a sidecar"),
            Unmovable::BehindZeros { offset } => write!(f, "it has zero blocks at byte {offset} with members after them (--lenient), which plain tar readers stop at: moving members to the end would hide them from those readers; use `--output` or `tarfs index` for a sidecar"),
            Unmovable::Order { at, why } => write!(f, "the member at byte {at} cannot be moved to the end: {why}; use `tarfs embed --output NEW.tar` (which keeps the order) or `tarfs index` for a sidecar"),
            Unmovable::AfterEnd { at } => write!(f, "there is data after the end-of-archive marker (at byte {at}) that would be overwritten"),
            Unmovable::AfterLoneZero { offset } => write!(f, "data follows a lone zero block at byte {offset}; it would be overwritten"),
        }
    }
}

/// The checks of one member that an in-place change needs (see [`survey`]): its order item,
/// and why moving members would change what some reader extracts, if its headers say so.
fn check_member(path: &Path, e: &Entry<'_>, bytes: &[u8]) -> Result<(Item, Option<Unmovable>)> {
    let why = chain_disagreement(bytes, e.position, e.header_offset).map(|(at, why)| Unmovable::ReadDifferently { at, why });
    check_name(path, e)?;
    Ok((Item::new(&e.path(), e.typeflag, e.link()), why))
}

/// Refuses a member whose name the index member would clash with.
fn check_name(path: &Path, e: &Entry<'_>) -> Result<()> {
    let name = e.path();
    if order::normalize(&name).is_some_and(|n| n == tarfs::MEMBER_NAME.as_bytes() || n.starts_with(b".tarfs/")) {
        return Err(Error::refused(path, format!("it already has a member named {} (at byte {}), which the index member would clash with", crate::quote::diag(&name), e.position)));
    }
    Ok(())
}

/// The checks of how the scan ended: for an in-place change (`in_place`), the tail; always, no
/// pax global attributes. Returns why moving members would change what readers extract, if
/// members hide behind zero blocks, and the data after the end of the members, if there is any
/// (after the end marker, or after a lone zero block).
fn check_tail(path: &Path, in_place: Option<&std::fs::File>, bytes: &[u8], end: &crate::scan::ScanEnd) -> Result<(Option<Unmovable>, Option<Unmovable>)> {
    if end.global_attributes {
        return Err(Error::refused(path, "it has pax global headers that set member attributes, which moving members would change; use `tarfs index` for a sidecar"));
    }
    let Some(file) = in_place else { return Ok((None, None)) };
    let len = bytes.len() as u64;
    // Cut short inside the last member's padding: refused below, whatever follows.
    let whole = end.end_offset.is_multiple_of(BLOCK_U64) && end.end_offset <= len;
    let trailing = match end.warning {
        _ if !whole => None,
        Some(Warning::LoneZeroBlock { offset }) => Some(Unmovable::AfterLoneZero { offset }),
        _ => first_nonzero(file, end.end_offset, len).at(path)?.map(|at| Unmovable::AfterEnd { at }),
    };
    if trailing.is_none() {
        check_end(path, file, bytes, end)?;
    }
    let behind = match end.warning {
        Some(Warning::SkippedZeroBlocks { offset, .. } | Warning::TrailingData { zeros: offset, .. }) => Some(Unmovable::BehindZeros { offset }),
        _ => None,
    };
    Ok((behind, trailing))
}

/// The survey of an archive whose embedded index `old` describes all but members appended
/// after its old end (`tar -rf`, `tarfs csv`): the old index answers for the old part, as it
/// does for `tarfs index` with a sidecar ([`grown::old_part`]: a sample of old entries must
/// still match the archive), and only the appended part is scanned, with [`survey`]'s checks.
/// `Ok(Err(why))` when the old index cannot answer alone; the caller then surveys in full.
///
/// The survey has no order items for the old part, and its old members were not checked for
/// headers that readers read differently: it serves only a re-index in the old `.tarfs`
/// member's space, which moves no member.
fn survey_grown<'a>(path: &Path, archive: &'a Archive, old: &'a Located, eopts: &EmbedOptions, paths: &'a OldPaths, file: &std::fs::File) -> Result<std::result::Result<(Survey<'a>, Grew), grown::NotGrown>> {
    let opts = eopts.scan;
    let part = match grown::old_part(old, archive, opts) {
        Ok(part) => part,
        Err(why) => return Ok(Err(why)),
    };
    if part.old.format() != eopts.format {
        return Ok(Err(grown::NotGrown::OtherVersion));
    }
    let data = old.slice(archive);
    let mut members = Vec::with_capacity(part.entries);
    match part.old {
        grown::OldIndex::V1(x) => {
            for i in 0..part.entries {
                let e = ext_entry(old, archive, &x, data, i)?;
                check_name(path, &e)?;
                members.push(Member::of(path, &e)?);
            }
        }
        grown::OldIndex::V2(parts, _) => members = old_v2_members(path, old, data, parts, paths)?,
    }
    let bytes = archive.bytes();
    let mut scanner = Scanner::at(bytes, part.end, opts);
    for e in scanner.by_ref() {
        let e = e.map_err(|source| Error::Scan { path: path.to_path_buf(), source })?;
        crate::watch::at(e.position);
        // Nothing moves in a re-index: what would keep the order does not matter.
        check_member(path, &e, bytes)?;
        members.push(Member::of(path, &e)?);
    }
    let mut end = scanner.end().expect("scan finished");
    end.members += part.entries as u64;
    let (_, trailing) = check_tail(path, Some(file), bytes, &end)?;
    let grew = Grew { kept: part.entries as u64, read: part.read + (archive.len() - part.end) };
    Ok(Ok((Survey { members, items: Vec::new(), start: old.base, end_offset: end.end_offset, end, keep_order: None, trailing, digests: None }, grew)))
}

/// An old v2 index's parts and its members' decoded paths (all, and where each ends), kept for
/// as long as the survey that borrows them.
type OldPaths = std::sync::OnceLock<(crate::format::v2::Parts, Vec<u8>, Vec<usize>)>;

/// The members of the old (embedded, so plain) v2 index `old`, whose bytes are `data`, as the
/// survey's members: from their records, their paths decoded into `paths`. Nothing of the
/// archive is read.
fn old_v2_members<'a>(path: &Path, old: &'a Located, data: &'a [u8], parts: crate::format::v2::Parts, paths: &'a OldPaths) -> Result<Vec<Member<'a>>> {
    use crate::format::v2;
    let bad = |e: v2::V2Error| Error::Index { index: path.to_path_buf(), source: e.into() };
    let info = tarfs::decode_header_as(data[..BLOCK].try_into().expect("one block"), 2).ok().and_then(|h| h.info).unwrap_or_default();
    let body = v2::body_of(data, &info).ok_or_else(|| bad(v2::V2Error::Part("body")))?;
    let (mut one, mut all, mut ends) = (Vec::new(), Vec::new(), Vec::with_capacity(parts.len()));
    let view = parts.on(body);
    for i in 0..view.len() {
        view.path_into(i, &mut one).map_err(bad)?;
        all.extend_from_slice(&one);
        ends.push(all.len());
    }
    let (parts, all, ends) = paths.get_or_init(|| (parts, all, ends));
    let view = parts.on(body);
    let mut members = Vec::with_capacity(ends.len());
    for (i, &end) in ends.iter().enumerate() {
        let name = &all[i.checked_sub(1).map_or(0, |k| ends[k])..end];
        if order::normalize(name).is_some_and(|n| n == tarfs::MEMBER_NAME.as_bytes() || n.starts_with(b".tarfs/")) {
            return Err(Error::refused(path, format!("it already has a member named {}, which the index member would clash with", crate::quote::diag(name))));
        }
        let m = view.member(i, name).map_err(bad)?;
        members.push(Member::of_v2(path, &m, old.base)?);
    }
    Ok(members)
}

/// Encodes the index of `order` (each member with its position relative to the base): the header
/// block, the entries and, when it can be represented, the zero block and the extension data.
fn encode_index(archive: &Archive, order: &[(u64, &Member<'_>)], info: &IndexInfo, s: &Survey<'_>, format: IndexFormat) -> Result<Vec<u8>> {
    let (end, digests) = (&s.end, s.digests.as_ref().map(|d| d.part(order.iter().map(|(pos, m)| (*pos, m.position)))));
    if format == IndexFormat::V2 {
        return index_v2::encode(order.iter().map(|(pos, m)| m.rec(*pos)), info.clone(), end, digests, archive.path());
    }
    let mut info = info.clone();
    let mut out = Vec::with_capacity((order.len() + 1) * BLOCK);
    out.extend_from_slice(&[0u8; BLOCK]);
    let mut ext = ExtSink::default();
    ext.globals(end.has_globals, end.global_attributes);
    ext.digests(digests);
    for (pos, m) in order {
        let entry = tarfs::encode_entry(m.header, pos / BLOCK_U64, m.chain_blocks, m.simple)
            .map_err(|source| Error::Index { index: archive.path().to_path_buf(), source })?;
        ext.push(&entry, m.meta.as_ref());
        out.extend_from_slice(&entry);
    }
    ext.plan(&mut info);
    let header = tarfs::encode_header(&info);
    out[..BLOCK].copy_from_slice(&header);
    out.extend_from_slice(&ext.finish(&header));
    Ok(out)
}

/// Blocks the index of `members` (in the order the index lists them) takes, with its extension
/// data (whose length does not depend on positions), and whether that ends with the zero block
/// after the entries. A v2 index's length depends on the order (its paths are front-coded).
fn index_blocks<'m, 'a: 'm>(members: impl Iterator<Item = &'m Member<'a>> + Clone, format: IndexFormat, digests: Option<&Digests>) -> (u64, bool) {
    let digests_len = digests.map_or(0, Digests::part_len);
    if format == IndexFormat::V2 {
        return (1 + index_v2::body_len(members.map(|m| m.rec(0)), digests_len) / BLOCK_U64, false);
    }
    let mut size = ext::Sizer::default();
    for m in members.clone() {
        size.add(m.meta.as_ref());
    }
    let n = members.count() as u64;
    match size.encoded_len_with(digests_len) {
        None => (1 + n, false),
        Some(len) => (1 + n + 1 + len as u64 / BLOCK_U64, true),
    }
}

/// Whether the old index bytes `current` say what the new `index` says: equal but for the
/// header block and the extension's header block (both carry the write generation).
fn same_index(current: &[u8], index: &[u8], entries: u64, format: IndexFormat) -> bool {
    if format == IndexFormat::V2 {
        return index_v2::same(current, index);
    }
    let ext_at = (entries as usize + 2) * BLOCK;
    if current.len() < index.len() {
        return false;
    }
    if index.len() <= ext_at {
        return current[BLOCK..index.len()] == index[BLOCK..];
    }
    current[BLOCK..ext_at] == index[BLOCK..ext_at] && current[ext_at + BLOCK..index.len()] == index[ext_at + BLOCK..]
}

fn now() -> std::time::Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// A write generation for the index header: the time in nanoseconds, mixed with the process id.
fn generation() -> u64 {
    (now().as_nanos() as u64) ^ (u64::from(std::process::id()) << 48)
}

fn tarfs_header(index_len_with_gap: u64) -> [u8; BLOCK] {
    let mtime = now().as_secs() as i64;
    UstarFields { path: tarfs::MEMBER_NAME.as_bytes(), mode: 0o644, size: index_len_with_gap, mtime, typeflag: b'0', ..Default::default() }.encode()
}

static ZEROS: [u8; 2 * BLOCK] = [0; 2 * BLOCK];

/// Reads the archive at `path` back after a change: the embedded index is found at `base`,
/// decodes, is fresh, and lists exactly the members at `positions` (absolute byte offsets, in
/// index order); a sample of entries is checked against the headers at their positions.
fn read_back(path: &Path, opts: ScanOptions, base: u64, positions: &[u64]) -> Result<()> {
    let bad = |problem| Error::ReadBack { path: path.to_path_buf(), what: ReadBackIndex::Embedded, problem };
    let archive = Archive::open(path)?;
    let located = Located::embedded(&archive).ok_or_else(|| bad(ReadBackProblem::NotFound("no `.tarfs` first member")))?;
    // The index is read whole, the members it is checked against as a sample.
    if let crate::ops::read::IndexBytes::InArchive(r) = &located.bytes {
        archive.advise_sampling(std::iter::once(r.start as u64..r.end as u64));
    }
    if located.base != base {
        return Err(bad(ReadBackProblem::EndsAt { at: located.base, want: base }));
    }
    let reader = Reader::with_index(&archive, located, opts).map_err(|r| bad(ReadBackProblem::Refused(r)))?;
    let mut i = 0usize;
    let step = (positions.len() / 64).max(1);
    reader.for_each(|entry| {
        if positions.get(i) != Some(&entry.position) {
            return Err(bad(ReadBackProblem::Position { entry: i, at: entry.position, want: positions.get(i).copied() }));
        }
        if i.is_multiple_of(step) || i + 1 == positions.len() {
            reader.checked(entry)?;
        }
        i += 1;
        Ok(())
    })?;
    if i != positions.len() {
        return Err(bad(ReadBackProblem::Count { found: i, want: positions.len() }));
    }
    Ok(())
}

/// Embeds an index in the archive at `path`, in place. Every error says what state the archive
/// is in: not changed, rolled back, or (only when rolling back failed too) needing `tarfs
/// recover`.
pub fn embed(path: &Path, opts: EmbedOptions) -> Result<EmbedReport> {
    embed_in_place(path, opts).map_err(Error::unchanged)
}

fn embed_in_place(path: &Path, opts: EmbedOptions) -> Result<EmbedReport> {
    let target = Target::open(path, "embed", opts.dry_run)?;
    let archive = target.map()?;
    // An archive that only grew, whose new index still fits in the old `.tarfs` member: the
    // old index answers for the old part (not with --force, which surveys in full).
    let old = if opts.force { None } else { Located::embedded(&archive) };
    // The paths of an old v2 index's members, decoded (its records front-code them).
    let paths = std::sync::OnceLock::new();
    // The image's length is asked for first: the `.tarfs` member must have room for it.
    let im = if opts.erofs { Some(Imager::open(path, opts.scan)?) } else { None };
    let need = need_blocks(im.as_ref());
    let basis = survey_in_place(path, &target, &archive, old.as_ref(), &paths, &opts, &need)?;
    // Re-index in place when an old .tarfs member has room for the new index (and image).
    let plan = match archive.embedded().filter(|_| basis.s.start >= need(1 + basis.blocks) * BLOCK_U64) {
        Some(old) => plan_reindex(&archive, &old, basis, &opts, im.as_ref())?,
        None => plan_displace(path, &archive, basis, &opts, im.as_ref())?,
    };
    let mut report = match plan {
        Plan::Report(report) => report,
        Plan::Write(w) => apply(path, &target, &archive, *w, opts.scan)?,
        Plan::Shift(w) => {
            shift::apply(&target, &w.shift, &w.surveyed, || read_back(path, opts.scan, w.base, &w.positions).and_then(|()| bind(&target, w.mtime)))?;
            w.report
        }
    };
    if let Some(im) = im.as_ref().filter(|_| report.erofs.is_some()) {
        report.erofs_left_out = im.left_out().to_vec();
    }
    Ok(report)
}

/// What an in-place embed is planned on: the survey, and the size of the index it needs.
struct Basis<'a> {
    s: Survey<'a>,
    /// Set when the old index answered for the old part.
    grew: Option<Grew>,
    /// Blocks of the index, without its header block.
    blocks: u64,
    /// Whether the index's last block is a zero block already.
    ends_with_zero: bool,
    /// Why an old embedded index did not answer for the old part, if one was there.
    in_full: Option<String>,
}

/// Surveys the archive for an in-place embed: the old part from `old`, the archive's old
/// embedded index, where it answers for it and the new index fits in its `.tarfs` member; the
/// whole archive otherwise.
fn survey_in_place<'a>(path: &Path, target: &Target, archive: &'a Archive, old: Option<&'a Located>, paths: &'a OldPaths, opts: &EmbedOptions, need: &dyn Fn(u64) -> u64) -> Result<Basis<'a>> {
    let mut in_full = None;
    // The old part is taken from an old index of the version asked for (a v2 record needs the
    // member's own header checksum, which a v1 entry does not keep; a v1 entry needs the
    // header a v2 record does not keep).
    if let Some(old) = old {
        match survey_grown(path, archive, old, opts, paths, &target.file)? {
            Ok((mut s, g)) => {
                s.hash(path, archive, opts)?;
                let (blocks, ends_with_zero) = index_blocks(s.members.iter(), opts.format, s.digests.as_ref());
                if s.start >= need(1 + blocks) * BLOCK_U64 {
                    return Ok(Basis { s, grew: Some(g), blocks, ends_with_zero, in_full });
                }
                in_full = Some("the new index does not fit in the old .tarfs member".to_string());
            }
            Err(why) => in_full = Some(why.to_string()),
        }
    }
    archive.advise(memmap2::Advice::Normal);
    let mut s = survey(path, archive, opts.scan, Some(&target.file))?;
    s.hash(path, archive, opts)?;
    let (blocks, ends_with_zero) = index_blocks(s.members.iter(), opts.format, s.digests.as_ref());
    Ok(Basis { s, grew: None, blocks, ends_with_zero, in_full })
}

/// What an in-place embed will do, decided from reads only.
enum Plan {
    /// Nothing to write (the index is up to date, or a dry run): the report.
    Report(EmbedReport),
    /// Writes to make, then the report.
    Write(Box<Writes>),
    /// The whole archive to shift forward, then the report.
    Shift(Box<Shifting>),
}

/// A shift to make ([`crate::ops::shift`]), and what to check after it.
struct Shifting {
    report: EmbedReport,
    shift: Shift,
    surveyed: Surveyed,
    /// Where the members start after the shift, and their positions then, for the read-back.
    base: u64,
    positions: Vec<u64>,
    /// With an embedded image: the modification time its binding gives the archive.
    mtime: Option<i64>,
}

/// The writes of an in-place embed, and what to check before and after them.
struct Writes {
    report: EmbedReport,
    /// The change's name in the journal: `reindex` or `embed`.
    prefix: &'static str,
    header: [u8; BLOCK],
    /// The index (its header block, its entries) and the zero block after it, if it needs one.
    body: Vec<u8>,
    /// Members displaced: the region they are copied from, and where their copy starts.
    moved: Option<(std::ops::Range<u64>, u64)>,
    surveyed: Surveyed,
    /// Where the members start after the change, and their positions then, for the read-back.
    base: u64,
    positions: Vec<u64>,
    /// With an embedded image: the modification time its binding gives the archive.
    mtime: Option<i64>,
}

/// The blocks a `.tarfs` member needs for a header and index of `blocks`, with `im`'s image
/// after them if there is one.
fn need_blocks(im: Option<&Imager>) -> impl Fn(u64) -> u64 + '_ {
    move |blocks| im.map_or(blocks, |im| self_image::blocks_with_image(blocks, im.len()))
}

/// Gives the archive the modification time its new embedded image is bound to, if it has one:
/// the last step before the journal goes (a crash before it leaves an image that is stale, which
/// is never mounted).
fn bind(target: &Target, mtime: Option<i64>) -> Result<()> {
    mtime.map_or(Ok(()), |t| self_image::set_mtime(&target.file, &target.path, t))
}

/// The `.tarfs` header of an index member that ends at `base`, its body (`index`, with a zero
/// block after it where the member has room and the index does not end with one), and the
/// blocks of the member beyond the index and zero block.
fn head(index: Vec<u8>, base: u64, index_blocks: u64, ends_with_zero: bool) -> ([u8; BLOCK], Vec<u8>, u64) {
    let gap_blocks = base / BLOCK_U64 - index_blocks;
    let mut body = index;
    if gap_blocks > 0 && !ends_with_zero {
        body.extend_from_slice(&[0u8; BLOCK]);
    }
    (tarfs_header(base - BLOCK_U64), body, gap_blocks)
}

/// Plans a re-index in the space of the old `.tarfs` member `old`, which has room for the new
/// index: nothing moves.
fn plan_reindex(archive: &Archive, old: &crate::archive::Embedded, b: Basis<'_>, opts: &EmbedOptions, im: Option<&Imager>) -> Result<Plan> {
    let s = &b.s;
    let n = s.members.len() as u64;
    let base = s.start;
    let order: Vec<(u64, &Member)> = s.members.iter().map(|m| (m.position - base, m)).collect();
    let mut info = IndexInfo { entries: n, archive_len: archive.len(), end_offset: s.end_offset - base, flags: 0, filter: None, generation: generation(), source_len: 0, ext_len: 0, seek_len: 0, ..IndexInfo::default() };
    // Nothing moves: the image's chunks are where the data is now.
    let image = im.map(|im| im.build(&|p| p, archive.len(), info.generation)).transpose()?;
    info.erofs = image.as_ref().map(|i| (self_image::image_at(1 + b.blocks), i.len() as u64));
    let index = encode_index(archive, &order, &info, s, opts.format)?;
    let current = &archive.bytes()[old.data.clone()];
    let current_info = tarfs::decode_header_as(current[..BLOCK].try_into().expect("one block"), opts.format.major()).ok().and_then(|h| h.info);
    let fresh = same_index(current, &index, n, opts.format) && current_info.as_ref().is_some_and(|i| i.entries == n && i.end_offset == info.end_offset);
    // Asked for an image, an index is up to date only with a fresh one; without, it keeps one
    // while nothing is written.
    let found = self_image::find(archive, archive.len(), archive.stamp().mtime);
    let image_fresh = matches!(found, self_image::Found::Fresh { .. });
    let report = |gap_blocks, bytes_written, action, erofs| EmbedReport { members: n, displaced: 0, moved: 0, gap_blocks, bytes_written, growth: 0, action, grew: b.grew, in_full: b.in_full.clone(), erofs, erofs_left_out: Vec::new() };
    if fresh && !opts.force && (im.is_none() || image_fresh) {
        let kept = match found {
            self_image::Found::Fresh { at, len } => Some((at, len)),
            _ => None,
        };
        return Ok(Plan::Report(report(0, 0, EmbedAction::UpToDate, kept)));
    }
    let (header, mut body, gap_blocks) = head(index, base, 1 + b.blocks, b.ends_with_zero);
    if let Some(i) = &image {
        self_image::place(&mut body, 1 + b.blocks, i);
    }
    let report = report(gap_blocks, (BLOCK + body.len()) as u64, EmbedAction::Reindexed, info.erofs);
    if opts.dry_run {
        return Ok(Plan::Report(report));
    }
    let positions: Vec<u64> = s.members.iter().map(|m| m.position).collect();
    // A re-index writes only in the old `.tarfs` member: data after the members (which a shift
    // moved with them) stays as it is, and must still be there.
    let end = if s.trailing.is_some() { archive.len() } else { s.end_offset };
    let surveyed = Surveyed { stamp: archive.stamp(), end };
    Ok(Plan::Write(Box::new(Writes { report, prefix: "reindex", header, body, moved: None, surveyed, base, positions, mtime: im.map(Imager::mtime) })))
}

/// The smallest number of leading members that, moved with the old `.tarfs` space, make room
/// for an index member of `need` bytes; or, where moving them to the end would change what a
/// reader extracts, why (the words of a refusal).
/// How many leading members to displace, and the blocks of the `.tarfs` member (its header and
/// the index) and whether the index ends with a zero block, for the index in the order the
/// displacement gives, starting from `blocks` for the survey's order. Displacing more members can
/// lengthen a v2 index (its paths are front-coded in the new order), which can ask for more.
fn displacement(s: &Survey<'_>, mut blocks: u64, format: IndexFormat, need: &dyn Fn(u64) -> u64) -> std::result::Result<(usize, u64, bool), Unmovable> {
    loop {
        let k = displaced_count(s, need(blocks) * BLOCK_U64)?;
        let (now, ends_with_zero) = index_blocks(s.members[k..].iter().chain(&s.members[..k]), format, s.digests.as_ref());
        if now < blocks {
            return Ok((k, blocks, ends_with_zero));
        }
        blocks = 1 + now;
    }
}

fn displaced_count(s: &Survey<'_>, need: u64) -> std::result::Result<usize, Unmovable> {
    if let Some(why) = s.trailing.as_ref().or(s.keep_order.as_ref()) {
        return Err(why.clone());
    }
    let mut k = s.members.iter().position(|m| m.end >= need).map_or(s.members.len(), |i| i + 1);
    // Solaris `A` (ACL) and `E` (extended attribute) headers are members to Python and Go, but
    // libarchive attaches them to the member that follows: never separate the two.
    while k < s.members.len() && matches!(s.members[k - 1].typeflag, b'A' | b'E') {
        k += 1;
    }
    // Moving the first k members to the end must not change what any reader extracts.
    let count = s.items.len();
    if let Err(u) = order::same_meaning(&s.items, (k..count).chain(0..k)) {
        let at = s.members.get(u.member).map_or(0, |m| m.position);
        return Err(Unmovable::Order { at, why: u.why.to_string() });
    }
    Ok(k)
}

/// Plans displacement: the leading members that make room for the index are copied to the end.
fn plan_displace(path: &Path, archive: &Archive, b: Basis<'_>, opts: &EmbedOptions, im: Option<&Imager>) -> Result<Plan> {
    // (A grown survey, which lacks what moving needs, was only taken where the index fits.)
    assert!(b.grew.is_none(), "a grown survey reached displacement");
    let (s, len) = (&b.s, archive.len());
    let n = s.members.len() as u64;
    let need = need_blocks(im);
    let (k, index_blocks, ends_with_zero) = match displacement(s, 1 + b.blocks, opts.format, &need) {
        Ok(planned) => planned,
        // libarchive judges whether a file is a tar by its first header: one that readers read
        // differently must stay first, which neither displacement nor a shift keeps.
        // A typeflag some readers do not know is read the same way after the index as first:
        // a shift, which keeps the order, changes nothing any reader extracts (GNU tar, bsdtar
        // and Python agree on GNU `D` and `V` first members after it, `tests/embed.rs`).
        Err(why @ Unmovable::ReadDifferently { at, why: w }) if at == s.start && w != Disagreement::UnknownType => {
            return Err(Error::refused(path, format!("{why}; it is the first header, which some readers (libarchive) judge the whole archive by, so no member may go before it")));
        }
        Err(why) if opts.no_shift => return Err(Error::refused(path, format!("{why} (without --no-shift, embed shifts the whole archive instead)"))),
        Err(_) => return plan_shift(path, archive, b, opts, im),
    };
    let region = s.start..s.members[..k].last().map_or(s.start, |m| m.end);
    let tarfs_end = region.end.max(need(index_blocks) * BLOCK_U64); // the first block after the new .tarfs member: the base
    let copy_at = s.end_offset.max(tarfs_end);
    let base = tarfs_end;
    let region_len = region.end - region.start;
    let new_end = copy_at + region_len;
    let order: Vec<(u64, &Member)> = s.members[k..]
        .iter()
        .map(|m| (m.position - base, m))
        .chain(s.members[..k].iter().map(|m| (copy_at + (m.position - region.start) - base, m)))
        .collect();
    let archive_len = (new_end + 2 * BLOCK_U64).max(len);
    let mut info = IndexInfo { entries: n, archive_len, end_offset: new_end - base, flags: 0, filter: None, generation: generation(), source_len: 0, ext_len: 0, seek_len: 0, ..IndexInfo::default() };
    // The displaced members' data is read where their copies will be.
    let relocate = |p: u64| if region.contains(&p) { copy_at + (p - region.start) } else { p };
    let image = im.map(|im| im.build(&relocate, archive_len, info.generation)).transpose()?;
    info.erofs = image.as_ref().map(|i| (self_image::image_at(index_blocks), i.len() as u64));
    let index = encode_index(archive, &order, &info, s, opts.format)?;
    let (header, mut body, gap_blocks) = head(index, base, index_blocks, ends_with_zero);
    if let Some(i) = &image {
        self_image::place(&mut body, index_blocks, i);
    }
    // The displaced members are copied straight from the mapping: the copy lands at or after
    // the old end, never over the bytes it copies.
    let tail_len = region_len + 2 * BLOCK_U64;
    let growth = (copy_at + tail_len).saturating_sub(len);
    let bytes_written = tail_len + (BLOCK + body.len()) as u64;
    let report = EmbedReport { members: n, displaced: k as u64, moved: region_len, gap_blocks, bytes_written, growth, action: EmbedAction::Embedded, grew: None, in_full: b.in_full.clone(), erofs: info.erofs, erofs_left_out: Vec::new() };
    if growth > opts.max_growth {
        return Err(Error::refused(
            path,
            format!(
                "embedding would copy {region_len} bytes of leading members to the end and grow the archive by {growth} bytes, over the limit of {} (--max-growth); use `tarfs index` for a sidecar, or `tarfs embed --output NEW.tar`",
                opts.max_growth
            ),
        ));
    }
    if opts.dry_run {
        return Ok(Plan::Report(report));
    }
    let positions: Vec<u64> = order.iter().map(|(p, _)| base + p).collect();
    let surveyed = Surveyed { stamp: archive.stamp(), end: s.end_offset };
    Ok(Plan::Write(Box::new(Writes { report, prefix: "embed", header, body, moved: Some((region, copy_at)), surveyed, base, positions, mtime: im.map(Imager::mtime) })))
}

/// Plans a shift of the whole archive forward by the index member's length, where displacing
/// members would change its meaning: every member keeps its place in the order, and the index
/// gives the positions they will have.
fn plan_shift(path: &Path, archive: &Archive, b: Basis<'_>, opts: &EmbedOptions, im: Option<&Imager>) -> Result<Plan> {
    assert!(b.grew.is_none(), "a grown survey reached a shift");
    let (s, len) = (&b.s, archive.len());
    let n = s.members.len() as u64;
    // The `.tarfs` member (its header and the index) ends where the members will start.
    let base = need_blocks(im)(1 + b.blocks) * BLOCK_U64;
    let distance = base - s.start;
    // Data after the members (after the end marker, or a lone zero block) moves with them.
    let end = if s.trailing.is_some() { len } else { s.end_offset };
    let final_len = Shift::final_len(len, end, distance);
    let order: Vec<(u64, &Member)> = s.members.iter().map(|m| (m.position - s.start, m)).collect();
    let mut info = IndexInfo { entries: n, archive_len: final_len, end_offset: s.end_offset - s.start, flags: 0, filter: None, generation: generation(), source_len: 0, ext_len: 0, seek_len: 0, ..IndexInfo::default() };
    let image = im.map(|im| im.build(&|p| p + distance, final_len, info.generation)).transpose()?;
    info.erofs = image.as_ref().map(|i| (self_image::image_at(1 + b.blocks), i.len() as u64));
    let index = encode_index(archive, &order, &info, s, opts.format)?;
    let (header, mut body, _) = head(index, base, 1 + b.blocks, b.ends_with_zero);
    if let Some(i) = &image {
        self_image::place(&mut body, 1 + b.blocks, i);
        // The member ends on a block, where the members start.
        body.resize(body.len().next_multiple_of(BLOCK), 0);
    }
    let mut bytes = header.to_vec();
    bytes.extend_from_slice(&body);
    debug_assert_eq!(bytes.len() as u64, base);
    let mut shift = Shift::plan(len, s.start, end, bytes);
    let growth = final_len - len;
    let report = EmbedReport { members: n, displaced: 0, moved: shift.moved(), gap_blocks: 0, bytes_written: shift.bytes_written(), growth, action: EmbedAction::Shifted, grew: None, in_full: b.in_full.clone(), erofs: info.erofs, erofs_left_out: Vec::new() };
    if growth > opts.max_growth {
        return Err(Error::refused(
            path,
            format!("embedding would shift the whole archive ({} bytes moved) and grow it by {growth} bytes, over the limit of {} (--max-growth); use `tarfs index` for a sidecar, or `tarfs embed --output NEW.tar`", shift.moved(), opts.max_growth),
        ));
    }
    if opts.dry_run {
        return Ok(Plan::Report(report));
    }
    shift.hash_bands(archive.bytes());
    let positions: Vec<u64> = s.members.iter().map(|m| m.position + distance).collect();
    let surveyed = Surveyed { stamp: archive.stamp(), end };
    Ok(Plan::Shift(Box::new(Shifting { report, shift, surveyed, base, positions, mtime: im.map(Imager::mtime) })))
}

/// Makes the writes of a plan, journaled, and reads the archive back before it reports.
fn apply(path: &Path, target: &Target, archive: &Archive, w: Writes, scan: ScanOptions) -> Result<EmbedReport> {
    let mut change = head_change(w.prefix, &w.header, &w.body, w.moved.clone(), w.surveyed);
    if let Some((region, copy_at)) = &w.moved {
        let displaced = &archive.bytes()[region.start as usize..region.end as usize];
        // The copy's first block last: until it is written, readers stop at the old end marker.
        let copy = link_last("copy", "copy-head", vec![(*copy_at, displaced), (copy_at + displaced.len() as u64, &ZEROS)]);
        change.phases.splice(0..0, copy);
    }
    target.apply(archive.bytes(), &change, || read_back(path, scan, w.base, &w.positions).and_then(|()| bind(target, w.mtime)))?;
    Ok(w.report)
}

/// The writes of a new head, in the crash-safe order: the `.tarfs` header, the index entries
/// (and zero block), then the index's own header block last.
fn head_change<'a>(prefix: &'static str, header: &'a [u8; BLOCK], body: &'a [u8], moved: Option<(std::ops::Range<u64>, u64)>, surveyed: Surveyed) -> Change<'a> {
    Change {
        prefix,
        phases: vec![
            Phase { step: "header", writes: vec![(0, header.as_slice())] },
            Phase { step: "entries", writes: vec![(2 * BLOCK_U64, &body[BLOCK..])] },
            Phase { step: "index", writes: vec![(BLOCK_U64, &body[..BLOCK])] },
        ],
        moved,
        surveyed,
    }
}

/// Writes a new archive to `out`: `.tarfs` first, then every member of `input` in its original
/// order. Nothing is displaced, and `input` is not touched.
pub fn embed_to(input: &Path, out: &Path, opts: EmbedOptions) -> Result<EmbedReport> {
    let archive = Archive::open(input)?;
    if let Some(c) = crate::source::compression_of(&archive) {
        return Err(Error::refused(input, format!("it is {}-compressed, and embed needs an uncompressed tar; decompress it first, or use `tarfs index` to write a sidecar index", c.name())));
    }
    let mut s = survey(input, &archive, opts.scan, None)?;
    s.hash(input, &archive, &opts)?;
    let n = s.members.len() as u64;
    let base = s.start;
    let order: Vec<(u64, &Member)> = s.members.iter().map(|m| (m.position - base, m)).collect();
    let body_len = s.end_offset - base;
    let info = IndexInfo { entries: n, archive_len: body_len + 2 * BLOCK_U64, end_offset: body_len, flags: 0, filter: None, generation: 0, source_len: 0, ext_len: 0, seek_len: 0, ..IndexInfo::default() };
    let index = encode_index(&archive, &order, &info, &s, opts.format)?;
    let header = tarfs_header(index.len() as u64);
    let body = &archive.bytes()[base as usize..s.end_offset.min(archive.len()) as usize];
    // An archive cut inside its last member's padding gets the padding back.
    let pad = round_up(body.len() as u64).expect("within the file") as usize - body.len();
    write_atomic(out, |w| {
        use std::io::Write;
        w.write_all(&header).at(out)?;
        w.write_all(&index).at(out)?;
        w.write_all(body).at(out)?;
        w.write_all(&ZEROS[..pad]).at(out)?;
        w.write_all(&[0u8; 2 * BLOCK]).at(out)
    })?;
    Ok(EmbedReport {
        members: n,
        displaced: 0,
        moved: 0,
        gap_blocks: 0,
        bytes_written: (BLOCK + index.len() + body.len() + 2 * BLOCK) as u64,
        growth: 0,
        action: EmbedAction::Embedded,
        grew: None,
        in_full: None,
        erofs: None,
        erofs_left_out: Vec::new(),
    })
}
