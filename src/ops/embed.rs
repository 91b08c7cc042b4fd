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
//! date is left alone unless forced.
//!
//! Crash safety (DESIGN §5), under the archive's lock:
//! 1. a journal records the original length, the tail bytes that will be overwritten, and where
//!    the head bytes are copied to, with their checksum; fsync;
//! 2. the displaced members and the new end marker are written past the old end; fsync. The
//!    archive now lists its members, then copies of the displaced ones;
//! 3. the `.tarfs` header is written; fsync. The archive now lists `.tarfs`, the members that
//!    stay, and the displaced copies;
//! 4. the index (and its zero block) are written; fsync;
//! 5. the journal is removed.
//!
//! `recover` finishes (when the last index block is in place) or restores the original, byte for
//! byte, from the copy and the journal.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::archive::Archive;
use crate::error::{Error, IoContext, Result};
use crate::format::header::{round_up, UstarFields, BLOCK, BLOCK_U64};
use crate::format::tarfs::{self, IndexInfo};
use crate::ops::in_place::{begin, check_end};
use crate::ops::atomic::write_atomic;
use crate::ops::crash;
use crate::ops::journal::{self, fnv, Journal, Moved};
use crate::scan::{ScanOptions, Scanner};

/// How to embed.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmbedOptions {
    /// Scanner options.
    pub scan: ScanOptions,
    /// Rewrite an index that is already up to date.
    pub force: bool,
    /// Work out what would be done, and write nothing (no lock, no journal).
    pub dry_run: bool,
}

/// What embedding did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedReport {
    /// Members indexed.
    pub members: u64,
    /// Members copied to the end.
    pub displaced: u64,
    /// Blocks of the `.tarfs` member beyond its index and zero block (old bytes left in place).
    pub gap_blocks: u64,
    /// Bytes written to the archive (or to the output file).
    pub bytes_written: u64,
    /// What was done.
    pub action: EmbedAction,
}

/// What [`embed`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedAction {
    /// The index was embedded, displacing members.
    Embedded,
    /// An existing embedded index was replaced in its own space.
    Reindexed,
    /// The embedded index was already up to date.
    UpToDate,
}

/// One member of the archive being embedded, as the plan needs it.
struct Member {
    typeflag: u8,
    position: u64,
    header_offset: u64,
    chain_blocks: u64,
    simple: bool,
    end: u64,
}

/// The archive's members (without an old `.tarfs`), and where they start.
struct Survey {
    members: Vec<Member>,
    /// Byte offset where the members start: 0, or the end of an old `.tarfs` member.
    start: u64,
    /// Where the archive's members end.
    end_offset: u64,
}

fn survey(path: &Path, archive: &Archive, opts: ScanOptions) -> Result<Survey> {
    let old = archive.embedded();
    let start = old.as_ref().map_or(0, |e| e.base);
    let mut members = Vec::new();
    let mut scanner = Scanner::new(archive.bytes(), opts);
    for e in scanner.by_ref() {
        let e = e.map_err(|source| Error::Scan { path: path.to_path_buf(), source })?;
        if old.as_ref().is_some_and(|o| o.member_position == e.position) {
            continue;
        }
        let end = e.data_offset + round_up(e.stored_size).expect("scanned member fits");
        members.push(Member { typeflag: e.typeflag, position: e.position, header_offset: e.header_offset, chain_blocks: e.chain_blocks(), simple: e.is_simple(), end });
    }
    let end = scanner.end().expect("scan finished");
    check_end(path, archive.bytes(), &end, opts.lenient)?;
    if end.global_attributes {
        return Err(Error::Refused {
            path: path.to_path_buf(),
            msg: "it has pax global headers that set member attributes, which moving members would change; use `tarfs index` for a sidecar".into(),
        });
    }
    Ok(Survey { members, start, end_offset: end.end_offset })
}

/// Encodes the index of `members`, whose positions count from `base`, with `moved` members
/// (those at `from..`) relocated to `to`.
fn encode_index(archive: &Archive, order: &[(u64, &Member)], info: &IndexInfo) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity((order.len() + 1) * BLOCK);
    out.extend_from_slice(&tarfs::encode_header(info));
    for (pos, m) in order {
        let h: &[u8; BLOCK] = archive.bytes()[m.header_offset as usize..][..BLOCK].try_into().expect("one block");
        let entry = tarfs::encode_entry(h, pos / BLOCK_U64, m.chain_blocks, m.simple)
            .map_err(|source| Error::Index { index: archive.path().to_path_buf(), source })?;
        out.extend_from_slice(&entry);
    }
    Ok(out)
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

/// Embeds an index in the archive at `path`, in place.
pub fn embed(path: &Path, opts: EmbedOptions) -> Result<EmbedReport> {
    let _lock = begin(path, "embed", opts.dry_run)?;
    let archive = Archive::open(path)?;
    let s = survey(path, &archive, opts.scan)?;
    let n = s.members.len() as u64;
    let index_blocks = 1 + (n + 1); // the .tarfs header, then the index
    let len = archive.len();

    // Re-index in place when an old .tarfs member has room for the new index.
    if let Some(old) = archive.embedded().filter(|_| s.start >= index_blocks * BLOCK_U64) {
        let base = s.start;
        let order: Vec<(u64, &Member)> = s.members.iter().map(|m| (m.position - base, m)).collect();
        let info = IndexInfo { entries: n, archive_len: len, end_offset: s.end_offset - base, flags: 0, filter: None, generation: generation(), source_len: 0 };
        let index = encode_index(&archive, &order, &info)?;
        let current = &archive.bytes()[old.data.clone()];
        let fresh = current.get(BLOCK..index.len()) == Some(&index[BLOCK..])
            && tarfs::decode_header(current[..BLOCK].try_into().expect("one block")).ok().and_then(|h| h.info).is_some_and(|i| i.entries == n && i.end_offset == info.end_offset);
        if fresh && !opts.force {
            return Ok(EmbedReport { members: n, displaced: 0, gap_blocks: 0, bytes_written: 0, action: EmbedAction::UpToDate });
        }
        let gap_blocks = base / BLOCK_U64 - index_blocks;
        let mut body = index;
        if gap_blocks > 0 {
            body.extend_from_slice(&[0u8; BLOCK]);
        }
        let header = tarfs_header(base - BLOCK_U64);
        if opts.dry_run {
            return Ok(EmbedReport { members: n, displaced: 0, gap_blocks, bytes_written: (BLOCK + body.len()) as u64, action: EmbedAction::Reindexed });
        }
        let saved = archive.bytes()[..BLOCK + body.len()].to_vec();
        drop(archive);
        let written = write_head(path, len, &header, &body, vec![(0, saved)], Vec::new(), None, "reindex")?;
        return Ok(EmbedReport { members: n, displaced: 0, gap_blocks, bytes_written: written, action: EmbedAction::Reindexed });
    }

    // Displacement: the smallest k leading members that, with the old .tarfs space, cover the
    // index member.
    let need = index_blocks * BLOCK_U64;
    let mut k = s.members.iter().position(|m| m.end >= need).map_or(s.members.len(), |i| i + 1);
    // Solaris `A` (ACL) and `E` (extended attribute) headers are members to Python and Go, but
    // libarchive attaches them to the member that follows: never separate the two.
    while k < s.members.len() && matches!(s.members[k - 1].typeflag, b'A' | b'E') {
        k += 1;
    }
    let region = s.start..s.members[..k].last().map_or(s.start, |m| m.end);
    let tarfs_end = region.end.max(need); // the first block after the new .tarfs member: the base
    let copy_at = s.end_offset.max(tarfs_end);
    let base = tarfs_end;
    let region_len = region.end - region.start;
    let new_end = copy_at + region_len;
    let order: Vec<(u64, &Member)> = s.members[k..]
        .iter()
        .map(|m| (m.position - base, m))
        .chain(s.members[..k].iter().map(|m| (copy_at + (m.position - region.start) - base, m)))
        .collect();
    let info = IndexInfo {
        entries: n,
        archive_len: (new_end + 2 * BLOCK_U64).max(len),
        end_offset: new_end - base,
        flags: 0,
        filter: None,
        generation: generation(),
        source_len: 0,
    };
    let index = encode_index(&archive, &order, &info)?;
    let gap_blocks = base / BLOCK_U64 - index_blocks;
    let header = tarfs_header(base - BLOCK_U64);
    let mut body = index;
    if gap_blocks > 0 {
        body.extend_from_slice(&[0u8; BLOCK]);
    }
    // The displaced members are copied straight from the mapping: the copy lands at or after
    // the old end, never over the bytes it copies.
    let displaced = &archive.bytes()[region.start as usize..region.end as usize];
    let tail_len = displaced.len() as u64 + 2 * BLOCK_U64;

    if opts.dry_run {
        let bytes_written = tail_len + (BLOCK + body.len()) as u64;
        return Ok(EmbedReport { members: n, displaced: k as u64, gap_blocks, bytes_written, action: EmbedAction::Embedded });
    }
    // Refuse when the file system cannot take the copy.
    let grow = (copy_at + tail_len).saturating_sub(len);
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if let Ok(st) = rustix::fs::statvfs(dir) {
        let free = st.f_bavail.saturating_mul(st.f_frsize);
        if grow > free {
            return Err(Error::Refused { path: path.to_path_buf(), msg: format!("not enough free space: the displaced copy needs {grow} more bytes, {free} are free") });
        }
    }

    // The journal: tail bytes that the copy overwrites are saved; the head's bytes are in the copy.
    let saved_tail_end = (copy_at + tail_len).min(len);
    let saved_tail = archive.bytes()[s.end_offset.min(len) as usize..saved_tail_end.max(s.end_offset.min(len)) as usize].to_vec();
    let head_len = (BLOCK + body.len()) as u64;
    let mut moved = Vec::new();
    if region_len > 0 {
        moved.push(Moved { to: region.start, copy_at, len: region_len, checksum: fnv(&archive.bytes()[region.start as usize..region.end as usize]) });
    }
    // Bytes of the head outside the displaced region: an old .tarfs member's, and the old end
    // marker's when the index is larger than every member together.
    let mut saved = vec![(s.end_offset.min(len), saved_tail)];
    if region.start > 0 {
        saved.push((0, archive.bytes()[..(region.start.min(head_len)) as usize].to_vec()));
    }
    if head_len > region.end && region.end < len {
        saved.push((region.end, archive.bytes()[region.end as usize..head_len.min(len) as usize].to_vec()));
    }
    let bytes_written = write_head(path, len, &header, &body, saved, moved, Some((copy_at, displaced)), "embed")?;
    drop(archive);
    Ok(EmbedReport {
        members: n,
        displaced: k as u64,
        gap_blocks,
        bytes_written,
        action: EmbedAction::Embedded,
    })
}

/// Journals and writes an in-place index, in the crash-safe order:
/// 1. the journal (with `saved` bytes and `moved` ranges); fsync;
/// 2. the displaced copy (straight from the archive's mapping) and new end marker, if any; fsync;
/// 3. the `.tarfs` header; fsync;
/// 4. the index entries and zero block; fsync;
/// 5. the index's own header block, the proof of completion; fsync;
/// 6. the journal's removal.
///
/// Returns the bytes written to the archive.
#[allow(clippy::too_many_arguments)]
fn write_head(path: &Path, original_len: u64, header: &[u8; BLOCK], body: &[u8], saved: Vec<(u64, Vec<u8>)>, moved: Vec<Moved>, copy: Option<(u64, &[u8])>, step: &str) -> Result<u64> {
    let proof: [u8; BLOCK] = body[..BLOCK].try_into().expect("the index header block");
    Journal { op: "embed".into(), original_len, proof_at: BLOCK_U64, proof, saved, moved }.write(path)?;
    crash::point(&format!("{step}-journal-written"));
    let file = OpenOptions::new().write(true).open(path).at(path)?;
    let mut written = 0u64;
    if let Some((at, displaced)) = copy {
        for (i, chunk) in displaced.chunks(8 << 20).enumerate() {
            file.write_all_at(chunk, at + (i * (8 << 20)) as u64).at(path)?;
        }
        file.write_all_at(&[0u8; 2 * BLOCK], at + displaced.len() as u64).at(path)?;
        crash::point(&format!("{step}-copy-written"));
        file.sync_all().at(path)?;
        crash::point(&format!("{step}-copy-synced"));
        written += (displaced.len() + 2 * BLOCK) as u64;
    }
    file.write_all_at(header, 0).at(path)?;
    crash::point(&format!("{step}-header-written"));
    file.sync_all().at(path)?;
    crash::point(&format!("{step}-header-synced"));
    file.write_all_at(&body[BLOCK..], 2 * BLOCK_U64).at(path)?;
    crash::point(&format!("{step}-entries-written"));
    file.sync_all().at(path)?;
    crash::point(&format!("{step}-entries-synced"));
    file.write_all_at(&proof, BLOCK_U64).at(path)?;
    crash::point(&format!("{step}-index-written"));
    file.sync_all().at(path)?;
    crash::point(&format!("{step}-index-synced"));
    journal::remove(path)?;
    Ok(written + (BLOCK + body.len()) as u64)
}

/// Writes a new archive to `out`: `.tarfs` first, then every member of `input` in its original
/// order. Nothing is displaced, and `input` is not touched.
pub fn embed_to(input: &Path, out: &Path, opts: EmbedOptions) -> Result<EmbedReport> {
    let archive = Archive::open(input)?;
    let s = survey(input, &archive, opts.scan)?;
    let n = s.members.len() as u64;
    let base = s.start;
    let order: Vec<(u64, &Member)> = s.members.iter().map(|m| (m.position - base, m)).collect();
    let body_len = s.end_offset - base;
    let info = IndexInfo { entries: n, archive_len: body_len + 2 * BLOCK_U64, end_offset: body_len, flags: 0, filter: None, generation: 0, source_len: 0 };
    let index = encode_index(&archive, &order, &info)?;
    let header = tarfs_header(index.len() as u64);
    let body = &archive.bytes()[base as usize..s.end_offset as usize];
    write_atomic(out, |w| {
        w.write_all(&header).at(out)?;
        w.write_all(&index).at(out)?;
        w.write_all(body).at(out)?;
        w.write_all(&[0u8; 2 * BLOCK]).at(out)
    })?;
    Ok(EmbedReport {
        members: n,
        displaced: 0,
        gap_blocks: 0,
        bytes_written: (BLOCK + index.len() + body.len() + 2 * BLOCK) as u64,
        action: EmbedAction::Embedded,
    })
}
