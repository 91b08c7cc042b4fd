//! The tarfs extension data of a `.tarfs` index, version 1: pure encoding and decoding.
//!
//! A v1.0 entry is a copy of a member's main header, so it cannot hold a long name, pax
//! attributes or the fact that a member is sparse. The extension data holds them, with a sorted
//! table of names for lookup, so that an index alone answers a listing and a lookup by name.
//!
//! # Where it is
//!
//! Right after the entries and the one all-zero block that ends them (a plain v1.0 reader stops
//! there, DESIGN §2), at byte `(n + 2) * 512` of the index data; the index header's extension
//! record gives its length at `[112, 120)` and sets flag 8 ([`super::tarfs::FLAG_EXT`]). In an
//! embedded index it is part of the `.tarfs` member, before the gap.
//!
//! # Layout (all integers big-endian)
//!
//! Block 0, the header: `TFSE`, version 1 at byte 4; at `[8, 16)` the entry count; `[16, 24)`
//! the extension's length in bytes (whole blocks); `[24, 32)` the xxh3-64 of the index's header
//! block (binding the extension to its index, whose header binds it to the archive: lengths, end
//! offset and write generation); then `u64` offsets from the extension's start and lengths of the
//! sections: records `[32, 40)`, order `[40, 48)`, strings `[48, 56)` and `[56, 64)`, chunk table
//! `[80, 88)` and its count `[88, 96)`; the chunk size `u32` at `[96, 100)`, the record size `u32`
//! at `[100, 104)`, the xxh3-64 of the chunk table at `[104, 112)`, header flags at 112
//! ([`HAS_GLOBALS`], [`GLOBAL_ATTRIBUTES`]); and at `[504, 512)` the xxh3-64 of `[0, 504)`.
//!
//! - **Records**: one of [`RECORD`] bytes per entry, in entry order: logical size `u64`, stored
//!   size `u64`, mtime seconds `i64`, mtime nanoseconds `u32`, uid `u64`, gid `u64`, blocks from
//!   the position to the main header `u32`, blocks from the position to the data `u32`, flags
//!   (`PATH`, `LINK`, `UNAME`, `GNAME`, `SPARSE`, `XATTRS`, `GLOBALS`), a copy of the entry's
//!   24-bit checksum (binding the record to its entry), and the record's offset in the strings.
//! - **Order**: the entry numbers as `u32`, sorted by the xxh3-64 of the normalized path
//!   (trailing slashes and a leading `./` removed; see [`key_hash`]), then by entry number. A
//!   lookup is a binary search on the hash that compares the names it meets.
//! - **Strings**: for each record with any of `PATH`, `LINK`, `UNAME`, `GNAME`, those values in
//!   that order, each as a LEB128 length and its bytes: the full path, link target and names
//!   where the main header alone does not give them.
//! - **Entry digests** (version 2, 8-aligned after the strings): the xxh3-64 of each group of
//!   [`ENTRY_GROUP`] entry blocks of the index, as written, so that every field of every entry
//!   (its position too, which the 24-bit byte sum of v1.0 hardly protects) is bound; offset and
//!   count at `[120, 128)` and `[128, 136)` of the header. A reader checks a group when it first
//!   uses one of its entries.
//! - **Chunk table**: the xxh3-64 of each [`CHUNK`]-byte piece of the extension from byte 512 up
//!   to the table. A reader checks a piece the first time it reads from it, so opening costs the
//!   header and the table (8 bytes per 32 KiB), and a lookup the few pieces it touches.
//!
//! Bytes per member, names aside: [`RECORD`] + 4.
#![deny(clippy::arithmetic_side_effects)]

use std::ops::Range;
use std::sync::atomic::{AtomicU8, Ordering};

use xxhash_rust::xxh3::xxh3_64;

use super::header::BLOCK;

/// The record of one member, in bytes.
pub const RECORD: usize = 60;
/// The piece of the extension one chunk hash covers.
pub const CHUNK: usize = 32 << 10;
/// Extension bytes per member, not counting names.
pub const BYTES_PER_MEMBER: usize = RECORD + 4;

/// Entries whose blocks one entry digest covers (32 KiB of entries).
pub const ENTRY_GROUP: usize = 64;

const TAG: &[u8; 4] = b"TFSE";
/// The version written. Version 2 adds the entry digests; version 1 is still read.
const VERSION: u8 = 2;

/// Record flag: the full path is in the strings.
pub const PATH: u8 = 1;
/// Record flag: the link target is in the strings.
pub const LINK: u8 = 2;
/// Record flag: the owner name is in the strings.
pub const UNAME: u8 = 4;
/// Record flag: the group name is in the strings.
pub const GNAME: u8 = 8;
/// Record flag: the member is sparse (its data is read through the map in its header chain).
pub const SPARSE: u8 = 16;
/// Record flag: the member has extended attributes (pax `SCHILY.xattr.*`).
pub const XATTRS: u8 = 32;
/// Record flag: pax globals that set attributes were in force for the member.
pub const GLOBALS: u8 = 64;

/// Header flag: the archive has pax global headers.
pub const HAS_GLOBALS: u8 = 1;
/// Header flag: some of them set member attributes.
pub const GLOBAL_ATTRIBUTES: u8 = 2;
/// Header flag: member digests ([`super::digests`]) follow the chunk table; offset from the
/// extension's start `[136, 144)`, length `[144, 152)`, their xxh3-64 `[152, 160)`.
pub const HAS_DIGESTS: u8 = 4;

/// What is wrong with extension data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtError {
    /// Not extension data of a version this tarfs reads.
    #[error("index extension: no TFSE version 1 header")]
    NoHeader,
    /// A checksum does not hold.
    #[error("index extension: {0} has a bad checksum")]
    Checksum(&'static str),
    /// It belongs to another index.
    #[error("index extension: it was written for another index (header hash differs)")]
    Unbound,
    /// A section lies outside the data, or a value is out of range.
    #[error("index extension: {0}")]
    Malformed(String),
    /// A record does not belong to its entry.
    #[error("index extension: record {0} does not belong to entry {0} (checksum copy differs)")]
    Record(u64),
}

/// One member's extension record, decoded; strings borrow from the extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Meta<'a> {
    /// Logical size.
    pub size: u64,
    /// Bytes of data stored.
    pub stored_size: u64,
    /// Modification time, whole seconds (rounded down).
    pub mtime: i64,
    /// Nanoseconds past `mtime`.
    pub mtime_nsec: u32,
    /// Owner id.
    pub uid: u64,
    /// Group id.
    pub gid: u64,
    /// Blocks from the position to the main header.
    pub main_blocks: u32,
    /// Blocks from the position to the data.
    pub chain_blocks: u32,
    /// `SPARSE`, `XATTRS`, `GLOBALS` (the string flags follow from the fields below).
    pub flags: u8,
    /// The full path, when the main header does not give it.
    pub path: Option<&'a [u8]>,
    /// The link target, when the main header does not give it.
    pub link: Option<&'a [u8]>,
    /// The owner name, when the main header does not give it.
    pub uname: Option<&'a [u8]>,
    /// The group name, when the main header does not give it.
    pub gname: Option<&'a [u8]>,
}

impl Meta<'_> {
    fn string_flags(&self) -> u8 {
        let f = |o: Option<&[u8]>, bit: u8| if o.is_some() { bit } else { 0 };
        f(self.path, PATH) | f(self.link, LINK) | f(self.uname, UNAME) | f(self.gname, GNAME)
    }

    fn strings(&self) -> impl Iterator<Item = &[u8]> {
        [self.path, self.link, self.uname, self.gname].into_iter().flatten()
    }

    /// Bytes the record's strings take in the strings section, lengths included.
    fn strings_len(&self) -> usize {
        self.strings().map(|s| leb128_len(s.len()).saturating_add(s.len())).fold(0, usize::saturating_add)
    }
}

/// What the extension's length depends on: how many members and how many bytes of strings. It
/// also decides whether the extension can be represented (at most 2^32 - 1 members, each
/// record's strings starting within 4 GiB, no member without a record). [`Builder`] keeps one,
/// and a writer that must know the length before it knows the positions (embed) uses one alone.
#[derive(Debug, Default, Clone)]
pub struct Sizer {
    members: usize,
    strings: usize,
    overflow: bool,
}

impl Sizer {
    /// Counts the next member, whose record is `meta` (`None`: it has none, and the index gets
    /// no extension). Returns the offset of its strings, or `None` once the extension cannot be.
    pub fn add(&mut self, meta: Option<&Meta<'_>>) -> Option<u32> {
        let offset = u32::try_from(self.strings).ok().filter(|_| !self.overflow && self.members < u32::MAX as usize);
        match (meta, offset) {
            (Some(m), Some(offset)) => {
                self.members = self.members.saturating_add(1);
                self.strings = self.strings.saturating_add(m.strings_len());
                Some(offset)
            }
            _ => {
                self.overflow = true;
                None
            }
        }
    }

    /// The extension's length in bytes, or `None` when it cannot be represented.
    pub fn encoded_len(&self) -> Option<usize> {
        self.encoded_len_with(0)
    }

    /// The extension's length in bytes with a member digests part of `digests` bytes after its
    /// chunk table, or `None` when it cannot be represented.
    pub fn encoded_len_with(&self, digests: usize) -> Option<usize> {
        self.table_end()?.checked_add(digests)?.div_ceil(BLOCK).checked_mul(BLOCK)
    }

    /// Where the chunk table ends (where member digests go, when there are any).
    fn table_end(&self) -> Option<usize> {
        if self.overflow {
            return None;
        }
        let body = BLOCK.checked_add(self.members.checked_mul(RECORD.checked_add(4)?)?)?.checked_add(self.strings)?;
        let digests = self.members.div_ceil(ENTRY_GROUP).checked_mul(8)?;
        let table_at = (body.checked_add(7)? & !7).checked_add(digests)?;
        let chunks = table_at.saturating_sub(BLOCK).div_ceil(CHUNK);
        table_at.checked_add(chunks.checked_mul(8)?)
    }
}

/// Builds extension data, one member at a time.
#[derive(Debug)]
pub struct Builder {
    /// The header block's room, then the records: the start of the output, never copied.
    records: Vec<u8>,
    strings: Vec<u8>,
    /// The xxh3-64 of each member's lookup key.
    hashes: Vec<u64>,
    flags: u8,
    /// Whether a value does not fit the format (see [`Sizer`]): then [`Builder::finish`] gives
    /// nothing, and the index has no extension.
    size: Sizer,
    /// The entry blocks of the group being hashed, and the digests of the groups done.
    group: Vec<u8>,
    entry_digests: Vec<u64>,
    /// The member digests part ([`super::digests`]), written after the chunk table.
    digests: Option<Vec<u8>>,
}

/// The length of `n` in LEB128.
fn leb128_len(n: usize) -> usize {
    (usize::BITS.saturating_sub(n.leading_zeros()) as usize).div_ceil(7).max(1)
}

fn leb128(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

impl Default for Builder {
    fn default() -> Builder {
        Builder { records: vec![0; BLOCK], strings: Vec::new(), hashes: Vec::new(), flags: 0, size: Sizer::default(), group: Vec::new(), entry_digests: Vec::new(), digests: None }
    }
}

impl Builder {
    /// A builder.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Records the archive's global headers: seen, and whether they set attributes.
    pub fn globals(&mut self, seen: bool, attributes: bool) {
        if seen {
            self.flags |= HAS_GLOBALS;
        }
        if attributes {
            self.flags |= GLOBAL_ATTRIBUTES;
        }
    }

    /// Adds the next member: its metadata, its entry's 24-bit checksum, and its lookup key (the
    /// normalized path).
    pub fn push(&mut self, m: &Meta<'_>, entry_checksum: u32, key: &[u8]) {
        self.push_hashed(m, entry_checksum, key_hash(key));
    }

    /// [`Builder::push`], given the key's [`key_hash`] (computed on another thread, say).
    pub fn push_hashed(&mut self, m: &Meta<'_>, entry_checksum: u32, hash: u64) {
        // Once the extension cannot be, nothing more is kept.
        let Some(offset) = self.size.add(Some(m)) else { return };
        let mut r = [0u8; RECORD];
        r[0..8].copy_from_slice(&m.size.to_be_bytes());
        r[8..16].copy_from_slice(&m.stored_size.to_be_bytes());
        r[16..24].copy_from_slice(&m.mtime.to_be_bytes());
        r[24..28].copy_from_slice(&m.mtime_nsec.to_be_bytes());
        r[28..36].copy_from_slice(&m.uid.to_be_bytes());
        r[36..44].copy_from_slice(&m.gid.to_be_bytes());
        r[44..48].copy_from_slice(&m.main_blocks.to_be_bytes());
        r[48..52].copy_from_slice(&m.chain_blocks.to_be_bytes());
        r[52] = (m.flags & (SPARSE | XATTRS | GLOBALS)) | m.string_flags();
        r[53..56].copy_from_slice(&entry_checksum.to_be_bytes()[1..]);
        r[56..60].copy_from_slice(&offset.to_be_bytes());
        self.records.extend_from_slice(&r);
        for s in m.strings() {
            leb128(&mut self.strings, s.len());
            self.strings.extend_from_slice(s);
        }
        self.hashes.push(hash);
    }

    /// Adds the next entry block of the index, as written, to the entry digests.
    pub fn entry(&mut self, block: &[u8; BLOCK]) {
        self.group.extend_from_slice(block);
        if self.group.len() == ENTRY_GROUP.saturating_mul(BLOCK) {
            self.entry_digests.push(xxh3_64(&self.group));
            self.group.clear();
        }
    }

    /// Marks the data as not representable (a member without a record).
    pub fn overflow(&mut self) {
        self.size.add(None);
    }

    /// Members pushed.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether none were.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The length [`Builder::finish`] will give, or `None` when a value did not fit: the index
    /// header records it, and the extension records the header's hash.
    pub fn encoded_len(&self) -> Option<usize> {
        let digests = self.digests.as_ref().map_or(0, Vec::len);
        self.size.table_end()?.checked_add(digests)?.div_ceil(BLOCK).checked_mul(BLOCK)
    }

    /// Adds the member digests part `d` ([`super::digests`]).
    pub fn digests(&mut self, d: Option<Vec<u8>>) {
        self.digests = d;
    }

    /// The extension data for the index whose header block is `index_header`, or `None` when a
    /// value did not fit.
    pub fn finish(self, index_header: &[u8; BLOCK]) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(self.encoded_len()?);
        let written = self.finish_into(index_header, &mut |b: &[u8]| {
            out.extend_from_slice(b);
            Ok(())
        });
        matches!(written, Ok(true)).then_some(out)
    }

    /// [`Builder::finish`], written piece by piece to `write` (no copy of the whole). Returns
    /// whether anything was written (nothing when a value did not fit).
    pub fn finish_into(self, index_header: &[u8; BLOCK], write: &mut dyn FnMut(&[u8]) -> std::io::Result<()>) -> std::io::Result<bool> {
        use rayon::prelude::*;
        let Some(expected) = self.encoded_len() else { return Ok(false) };
        let n = self.hashes.len();
        let Ok(n32) = u32::try_from(n) else { return Ok(false) };
        // By key hash, then entry number (so equal paths keep entry order): sorting numbers, not
        // names, whatever prefixes the names share.
        let mut sorting: Vec<(u64, u32)> = self.hashes.iter().zip(0..n32).map(|(&h, i)| (h, i)).collect();
        sorting.par_sort_unstable();
        let order: Vec<u8> = sorting.iter().flat_map(|(_, i)| i.to_be_bytes()).collect();
        drop(sorting);
        let records_at = BLOCK;
        let order_at = self.records.len();
        let strings_at = order_at.saturating_add(order.len());
        let body_end = strings_at.saturating_add(self.strings.len());
        let digests_at = body_end.saturating_add(7) & !7;
        let pad = vec![0u8; digests_at.saturating_sub(body_end)];
        let mut entry_digests = self.entry_digests;
        if !self.group.is_empty() {
            entry_digests.push(xxh3_64(&self.group));
        }
        // One digest per group of entries fed (none when the caller fed no entries).
        entry_digests.resize(n.div_ceil(ENTRY_GROUP), 0);
        let digests: Vec<u8> = entry_digests.iter().flat_map(|d| d.to_be_bytes()).collect();
        let table_at = digests_at.saturating_add(digests.len());
        // The chunk hashes of the body, [BLOCK, table_at), across its sections.
        let sections: [&[u8]; 5] = [&self.records[BLOCK..], &order, &self.strings, &pad, &digests];
        let mut chunks = Vec::with_capacity(table_at.saturating_sub(BLOCK).div_ceil(CHUNK));
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        let mut in_chunk = 0usize;
        for mut sec in sections {
            while !sec.is_empty() {
                let k = (CHUNK.saturating_sub(in_chunk)).min(sec.len());
                hasher.update(&sec[..k]);
                in_chunk = in_chunk.saturating_add(k);
                sec = &sec[k..];
                if in_chunk == CHUNK {
                    chunks.push(hasher.digest());
                    hasher.reset();
                    in_chunk = 0;
                }
            }
        }
        if in_chunk > 0 {
            chunks.push(hasher.digest());
        }
        let table: Vec<u8> = chunks.iter().flat_map(|h| h.to_be_bytes()).collect();
        let total = expected;
        let mut h = [0u8; BLOCK];
        h[0..4].copy_from_slice(TAG);
        h[4] = VERSION;
        let put = |h: &mut [u8], at: usize, v: u64| h[at..at.saturating_add(8)].copy_from_slice(&v.to_be_bytes());
        put(&mut h, 8, n as u64);
        put(&mut h, 16, total as u64);
        put(&mut h, 24, xxh3_64(index_header));
        put(&mut h, 32, records_at as u64);
        put(&mut h, 40, order_at as u64);
        put(&mut h, 48, strings_at as u64);
        put(&mut h, 56, self.strings.len() as u64);
        put(&mut h, 80, table_at as u64);
        put(&mut h, 88, chunks.len() as u64);
        h[96..100].copy_from_slice(&(CHUNK as u32).to_be_bytes());
        h[100..104].copy_from_slice(&(RECORD as u32).to_be_bytes());
        put(&mut h, 104, xxh3_64(&table));
        let (table_end, member_digests) = (table_at.saturating_add(table.len()), self.digests.unwrap_or_default());
        h[112] = self.flags;
        place_member_digests(&mut h, table_end, &member_digests);
        put(&mut h, 120, digests_at as u64);
        put(&mut h, 128, entry_digests.len() as u64);
        let hh = xxh3_64(&h[..504]);
        put(&mut h, 504, hh);
        write(&h)?;
        for sec in sections {
            write(sec)?;
        }
        write(&table)?;
        write(&member_digests)?;
        write(&vec![0u8; total.saturating_sub(table_end.saturating_add(member_digests.len()))])?;
        Ok(true)
    }
}

/// Records in the extension header `h` where the member digests part `d` lies (`at`, after the
/// chunk table), its length and its xxh3-64, and sets [`HAS_DIGESTS`]; nothing for no part.
fn place_member_digests(h: &mut [u8; BLOCK], at: usize, d: &[u8]) {
    if d.is_empty() {
        return;
    }
    h[112] |= HAS_DIGESTS;
    h[136..144].copy_from_slice(&(at as u64).to_be_bytes());
    h[144..152].copy_from_slice(&(d.len() as u64).to_be_bytes());
    h[152..160].copy_from_slice(&xxh3_64(d).to_be_bytes());
}

/// Strips trailing slashes, and a leading `./`, so that `dir`, `dir/` and `./dir` name the same
/// member: the lookup key.
pub fn normalize_name(n: &[u8]) -> &[u8] {
    let mut n = n;
    while n.len() > 1 && n.ends_with(b"/") {
        n = &n[..n.len().saturating_sub(1)];
    }
    n.strip_prefix(b"./").filter(|r| !r.is_empty()).unwrap_or(n)
}

/// Collects the extension data of an index as its entries are written (see
/// [`crate::format::ext`]), for every writer of `.tarfs` indexes.
#[derive(Debug, Default)]
pub struct ExtSink {
    builder: Builder,
}

impl ExtSink {
    /// Adds the member whose entry block (as written) is `entry` and whose extension record is
    /// `meta` (`None`: the index gets no extension data).
    pub fn push(&mut self, entry: &[u8; 512], meta: Option<&Meta<'_>>) {
        let hash = meta.map_or(0, |m| member_key_hash(&super::header::HeaderView::new(entry), m.path));
        self.push_hashed(entry, meta, hash);
    }

    /// [`ExtSink::push`], given the hash of the member's lookup key (see [`member_key_hash`]).
    pub fn push_hashed(&mut self, entry: &[u8; 512], meta: Option<&Meta<'_>>, hash: u64) {
        let Some(m) = meta else {
            self.builder.overflow();
            return;
        };
        self.builder.entry(entry);
        self.builder.push_hashed(m, super::tarfs::IndexEntry::new(entry).stored_checksum(), hash);
    }

    /// Records what the scan found of pax global headers: any, and any that set attributes.
    pub fn globals(&mut self, seen: bool, attributes: bool) {
        self.builder.globals(seen, attributes);
    }

    /// Adds the member digests part `d` ([`super::digests`]).
    pub fn digests(&mut self, d: Option<Vec<u8>>) {
        self.builder.digests(d);
    }

    /// Sets the extension's place in `info` (flag and length), or leaves it out when it cannot
    /// be represented.
    pub fn plan(&self, info: &mut super::tarfs::IndexInfo) {
        match self.builder.encoded_len() {
            Some(len) => {
                info.flags |= super::tarfs::FLAG_EXT;
                info.ext_len = len as u64;
            }
            None => {
                info.flags &= !super::tarfs::FLAG_EXT;
                info.ext_len = 0;
            }
        }
    }

    /// The bytes that follow the entries: one zero block, then the extension data bound to
    /// `header` (the index's header block, encoded from the `info` that [`ExtSink::plan`] set).
    /// Empty when the extension is left out.
    pub fn finish_into(self, header: &[u8; 512], write: &mut dyn FnMut(&[u8]) -> std::io::Result<()>) -> std::io::Result<()> {
        if self.builder.encoded_len().is_some() {
            write(&[0u8; BLOCK])?;
            self.builder.finish_into(header, write)?;
        }
        Ok(())
    }

    /// [`ExtSink::finish_into`], collected.
    pub fn finish(self, header: &[u8; 512]) -> Vec<u8> {
        match self.builder.finish(header) {
            Some(data) => {
                let mut out = vec![0u8; BLOCK];
                out.extend_from_slice(&data);
                out
            }
            None => Vec::new(),
        }
    }
}

/// The length of the strings section that an extension header block records, if it is one.
pub fn strings_len(header: &[u8; BLOCK]) -> Option<u64> {
    (&header[..4] == TAG && (1..=VERSION).contains(&header[4])).then(|| u64::from_be_bytes(header[56..64].try_into().expect("8 bytes")))
}

/// The [`key_hash`] of a member whose main header is `header` and whose extension record
/// gives `path` (when the header does not hold it): what [`ExtSink::push`] computes.
pub fn member_key_hash(header: &super::header::HeaderView<'_>, path: Option<&[u8]>) -> u64 {
    if let Some(p) = path {
        return key_hash(normalize_name(p));
    }
    let (prefix, name) = (header.prefix(), header.name());
    if prefix.is_empty() {
        return key_hash(normalize_name(name));
    }
    let mut full = Vec::with_capacity(prefix.len().saturating_add(name.len()).saturating_add(1));
    full.extend_from_slice(prefix);
    full.push(b'/');
    full.extend_from_slice(name);
    key_hash(normalize_name(&full))
}

/// The hash the name order is sorted by: xxh3-64 of the lookup key ([`normalize_name`]).
pub fn key_hash(key: &[u8]) -> u64 {
    xxh3_64(key)
}

/// A view of extension data. Pieces are checked against the chunk table as they are first read.
#[derive(Debug)]
pub struct Ext<'a> {
    data: &'a [u8],
    n: usize,
    records: usize,
    order: usize,
    strings: Range<usize>,
    table: &'a [u8],
    body_end: usize,
    flags: u8,
    /// Per chunk: 0 not checked, 1 good, 2 bad.
    checked: Vec<AtomicU8>,
    /// Where the entry digests are (version 2); `None` in a version 1 extension.
    entry_digests: Option<usize>,
    /// Per group of entries: 0 not checked, 1 good, 2 bad.
    groups: Vec<AtomicU8>,
    /// The member digests part and its xxh3-64, with whether it held when first checked.
    member_digests: Option<(Range<usize>, u64)>,
    digests_good: std::sync::OnceLock<bool>,
}

impl<'a> Ext<'a> {
    /// Opens the extension `data` of the index whose header block is `index_header` and which
    /// has `entries` entries. Checks the header, the binding and the chunk table, not the body.
    pub fn open(data: &'a [u8], index_header: &[u8; BLOCK], entries: u64) -> Result<Ext<'a>, ExtError> {
        let h = data.get(..BLOCK).ok_or(ExtError::NoHeader)?;
        if &h[..4] != TAG || !(1..=VERSION).contains(&h[4]) {
            return Err(ExtError::NoHeader);
        }
        let version = h[4];
        let u = |at: usize| u64::from_be_bytes(h[at..at.saturating_add(8)].try_into().expect("8 bytes"));
        if u(504) != xxh3_64(&h[..504]) {
            return Err(ExtError::Checksum("its header"));
        }
        if u(24) != xxh3_64(index_header) {
            return Err(ExtError::Unbound);
        }
        let bad = |what: &str| ExtError::Malformed(what.to_string());
        let size = |at: usize| usize::try_from(u(at)).map_err(|_| bad("an offset is out of range"));
        let n = size(8)?;
        if n as u64 != entries {
            return Err(ExtError::Malformed(format!("it describes {n} entries, the index has {entries}")));
        }
        let chunk = u32::from_be_bytes(h[96..100].try_into().expect("4 bytes")) as usize;
        let record = u32::from_be_bytes(h[100..104].try_into().expect("4 bytes")) as usize;
        if chunk != CHUNK || record != RECORD || size(16)? != data.len() {
            return Err(bad("unexpected chunk size, record size or length"));
        }
        let (records, order, strings_at, strings_len, table_at, chunks) = (size(32)?, size(40)?, size(48)?, size(56)?, size(80)?, size(88)?);
        let ends = |at: usize, len: Option<usize>| len.and_then(|l| at.checked_add(l));
        let groups = n.div_ceil(ENTRY_GROUP);
        let digests = (version >= 2).then(|| (size(120), size(128)));
        let body_to = match digests {
            Some((Ok(at), Ok(count))) if count == groups && ends(at, count.checked_mul(8)) == Some(table_at) && at % 8 == 0 => at,
            Some(_) => return Err(bad("its entry digests are out of place")),
            None => table_at,
        };
        let in_order = records == BLOCK
            && ends(records, n.checked_mul(RECORD)) == Some(order)
            && ends(order, n.checked_mul(4)) == Some(strings_at)
            && ends(strings_at, Some(strings_len)).is_some_and(|e| e <= body_to)
            && ends(table_at, chunks.checked_mul(8)).is_some_and(|e| e <= data.len())
            && table_at.saturating_sub(BLOCK).div_ceil(CHUNK) == chunks;
        if !in_order {
            return Err(bad("its sections are out of place"));
        }
        let table = &data[table_at..table_at.saturating_add(chunks.saturating_mul(8))];
        if xxh3_64(table) != u(104) {
            return Err(ExtError::Checksum("its chunk table"));
        }
        let checked = (0..chunks).map(|_| AtomicU8::new(0)).collect();
        let entry_digests = (version >= 2).then_some(body_to);
        let groups = (0..if entry_digests.is_some() { groups } else { 0 }).map(|_| AtomicU8::new(0)).collect();
        let member_digests = match h[112] & HAS_DIGESTS {
            0 => None,
            _ => {
                let (at, len) = (size(136)?, size(144)?);
                let end = at.checked_add(len).filter(|&e| e <= data.len() && at >= table_at.saturating_add(chunks.saturating_mul(8)));
                Some((at..end.ok_or_else(|| bad("its member digests are out of place"))?, u(152)))
            }
        };
        Ok(Ext { data, n, records, order, strings: strings_at..strings_at.saturating_add(strings_len), table, body_end: table_at, flags: h[112], checked, entry_digests, groups, member_digests, digests_good: std::sync::OnceLock::new() })
    }

    /// Where the member digests part lies in the extension data, if it has one (unchecked:
    /// read it through [`Ext::member_digests`]).
    pub fn member_digests_range(&self) -> Option<Range<usize>> {
        self.member_digests.as_ref().map(|(r, _)| r.clone())
    }

    /// The member digests part ([`super::digests`]), if the extension has one, checked against
    /// its xxh3-64 the first time it is asked for.
    pub fn member_digests(&self) -> Option<Result<&'a [u8], ExtError>> {
        let (range, hash) = self.member_digests.clone()?;
        let bytes = &self.data[range];
        match *self.digests_good.get_or_init(|| xxh3_64(bytes) == hash) {
            true => Some(Ok(bytes)),
            false => Some(Err(ExtError::Checksum("its member digests"))),
        }
    }

    /// Entries described.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Header flags ([`HAS_GLOBALS`], [`GLOBAL_ATTRIBUTES`]).
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// The bytes `range` of the extension, after checking the chunks they lie in.
    fn bytes(&self, range: Range<usize>) -> Result<&'a [u8], ExtError> {
        if range.end > self.body_end || range.start < BLOCK {
            return Err(ExtError::Malformed("a read falls outside the body".into()));
        }
        if range.start < range.end {
            // Both ends are past BLOCK (checked above), and the range is not empty.
            let first = range.start.saturating_sub(BLOCK) / CHUNK;
            let last = range.end.saturating_sub(BLOCK + 1) / CHUNK;
            for c in first..=last {
                self.check_chunk(c)?;
            }
        }
        Ok(&self.data[range])
    }

    fn check_chunk(&self, c: usize) -> Result<(), ExtError> {
        match self.checked[c].load(Ordering::Relaxed) {
            1 => return Ok(()),
            2 => return Err(ExtError::Checksum("a chunk of its body")),
            _ => {}
        }
        let start = BLOCK.saturating_add(c.saturating_mul(CHUNK));
        let piece = &self.data[start..start.saturating_add(CHUNK).min(self.body_end)];
        let want = u64::from_be_bytes(self.table[c.saturating_mul(8)..c.saturating_mul(8).saturating_add(8)].try_into().expect("8 bytes"));
        let ok = xxh3_64(piece) == want;
        self.checked[c].store(if ok { 1 } else { 2 }, Ordering::Relaxed);
        if ok {
            Ok(())
        } else {
            Err(ExtError::Checksum("a chunk of its body"))
        }
    }

    /// Whether the extension has entry digests (version 2).
    pub fn has_entry_digests(&self) -> bool {
        self.entry_digests.is_some()
    }

    /// Checks the digest of the group of entries that holds entry `i`; `entries` are the index's
    /// entry blocks (its data from byte 512 on, at least up to the last entry). An extension
    /// without entry digests checks nothing. Returns the range of entries of the bad group.
    pub fn check_entry(&self, entries: &[u8], i: usize) -> Result<(), Range<usize>> {
        let Some(at) = self.entry_digests else { return Ok(()) };
        let g = i / ENTRY_GROUP;
        let first = g.saturating_mul(ENTRY_GROUP);
        let last = first.saturating_add(ENTRY_GROUP).min(self.n);
        let bad = first..last;
        let Some(state) = self.groups.get(g) else { return Err(bad) };
        match state.load(Ordering::Relaxed) {
            1 => return Ok(()),
            2 => return Err(bad),
            _ => {}
        }
        let blocks = entries.get(first.saturating_mul(BLOCK)..last.saturating_mul(BLOCK));
        let want = self.bytes(at.saturating_add(g.saturating_mul(8))..at.saturating_add(g.saturating_mul(8)).saturating_add(8)).ok();
        let ok = matches!((blocks, want), (Some(b), Some(w)) if xxh3_64(b).to_be_bytes() == w);
        state.store(if ok { 1 } else { 2 }, Ordering::Relaxed);
        if ok {
            Ok(())
        } else {
            Err(bad)
        }
    }

    /// Checks every group of entries (see [`Ext::check_entry`]); returns the first bad group.
    pub fn check_all_entries(&self, entries: &[u8]) -> Result<(), Range<usize>> {
        use rayon::prelude::*;
        let groups = self.groups.len();
        match (0..groups).into_par_iter().filter_map(|g| self.check_entry(entries, g.saturating_mul(ENTRY_GROUP)).err()).min_by_key(|r| r.start) {
            Some(bad) => Err(bad),
            None => Ok(()),
        }
    }

    /// Checks every chunk (for `verify`).
    pub fn check_all(&self) -> Result<(), ExtError> {
        use rayon::prelude::*;
        (0..self.checked.len()).into_par_iter().try_for_each(|c| self.check_chunk(c))
    }

    /// The record of entry `i`, whose stored 24-bit checksum is `entry_checksum`.
    pub fn meta(&self, i: usize, entry_checksum: u32) -> Result<Meta<'a>, ExtError> {
        if i >= self.n {
            return Err(ExtError::Malformed(format!("no record {i}")));
        }
        let at = self.records.saturating_add(i.saturating_mul(RECORD));
        let r = self.bytes(at..at.saturating_add(RECORD))?;
        let u64_at = |a: usize| u64::from_be_bytes(r[a..a.saturating_add(8)].try_into().expect("8 bytes"));
        let u32_at = |a: usize| u32::from_be_bytes(r[a..a.saturating_add(4)].try_into().expect("4 bytes"));
        if r[53..56] != entry_checksum.to_be_bytes()[1..] {
            return Err(ExtError::Record(i as u64));
        }
        let flags = r[52];
        let mut m = Meta {
            size: u64_at(0),
            stored_size: u64_at(8),
            mtime: i64::from_be_bytes(r[16..24].try_into().expect("8 bytes")),
            mtime_nsec: u32_at(24),
            uid: u64_at(28),
            gid: u64_at(36),
            main_blocks: u32_at(44),
            chain_blocks: u32_at(48),
            flags: flags & (SPARSE | XATTRS | GLOBALS),
            ..Meta::default()
        };
        if flags & (PATH | LINK | UNAME | GNAME) != 0 {
            let mut at = self.strings.start.saturating_add(u32_at(56) as usize);
            let mut next = || -> Result<&'a [u8], ExtError> {
                let mut len: usize = 0;
                let mut shift = 0u32;
                loop {
                    let b = *self.bytes(at..at.saturating_add(1))?.first().expect("one byte");
                    at = at.saturating_add(1);
                    len |= usize::from(b & 0x7f).checked_shl(shift).ok_or_else(|| ExtError::Malformed("a string length is too long".into()))?;
                    shift = shift.saturating_add(7);
                    if b & 0x80 == 0 {
                        break;
                    }
                }
                let end = at.checked_add(len).filter(|&e| e <= self.strings.end).ok_or_else(|| ExtError::Malformed("a string runs past the strings".into()))?;
                let s = self.bytes(at..end)?;
                at = end;
                Ok(s)
            };
            for (bit, slot) in [(PATH, &mut m.path), (LINK, &mut m.link), (UNAME, &mut m.uname), (GNAME, &mut m.gname)] {
                if flags & bit != 0 {
                    *slot = Some(next()?);
                }
            }
        }
        Ok(m)
    }

    /// The entry number at place `k` of the name order.
    pub fn ordered(&self, k: usize) -> Result<usize, ExtError> {
        let at = self.order.saturating_add(k.saturating_mul(4));
        let b = self.bytes(at..at.saturating_add(4))?;
        let i = u32::from_be_bytes(b.try_into().expect("4 bytes")) as usize;
        if i >= self.n {
            return Err(ExtError::Malformed(format!("the name order names entry {i} of {}", self.n)));
        }
        Ok(i)
    }

    /// The entries whose key equals `key`, in entry order, found by binary search of the name
    /// order on the key's hash; `key_of(i)` gives entry `i`'s key, and `wrap` turns this view's
    /// errors into the caller's. About 2·log₂ n keys are read.
    pub fn find<E>(&self, key: &[u8], mut key_of: impl FnMut(usize) -> Result<Vec<u8>, E>, wrap: impl Fn(ExtError) -> E) -> Result<Vec<usize>, E> {
        let want = key_hash(key);
        // The first place whose hash is not below `want`.
        let (mut lo, mut hi) = (0usize, self.n);
        while lo < hi {
            let mid = lo.saturating_add(hi.saturating_sub(lo) / 2);
            if key_hash(&key_of(self.ordered(mid).map_err(&wrap)?)?) < want {
                lo = mid.saturating_add(1);
            } else {
                hi = mid;
            }
        }
        let mut found = Vec::new();
        for k in lo..self.n {
            let i = self.ordered(k).map_err(&wrap)?;
            let other = key_of(i)?;
            if key_hash(&other) != want {
                break;
            }
            // Another name with the same hash is passed over.
            if other == key {
                found.push(i);
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(path: Option<&[u8]>) -> Meta<'_> {
        Meta { size: 5, stored_size: 5, mtime: -3, mtime_nsec: 7, uid: 1 << 40, gid: 2, main_blocks: 2, chain_blocks: 3, flags: XATTRS, path, link: Some(b"t"), uname: None, gname: Some(b"g") }
    }

    #[test]
    fn round_trip_and_lookup() {
        let header = [9u8; BLOCK];
        let mut b = Builder::new();
        let long = vec![b'L'; 300];
        let names: [&[u8]; 5] = [b"b", b"a", b"c/d", b"a", &long];
        for (i, n) in names.iter().enumerate() {
            b.push(&meta(Some(n)), i as u32 * 3, n);
        }
        let len = b.encoded_len();
        let data = b.finish(&header).unwrap();
        assert_eq!(Some(data.len()), len);
        assert_eq!(data.len() % BLOCK, 0);
        let e = Ext::open(&data, &header, 5).unwrap();
        for (i, n) in names.iter().enumerate() {
            assert_eq!(e.meta(i, i as u32 * 3).unwrap(), meta(Some(n)));
        }
        assert_eq!(e.meta(1, 4), Err(ExtError::Record(1)));
        let key_of = |i: usize| Ok::<_, ExtError>(names[i].to_vec());
        assert_eq!(e.find(b"a", key_of, |e| e).unwrap(), vec![1, 3]);
        assert_eq!(e.find(b"c/d", key_of, |e| e).unwrap(), vec![2]);
        assert!(e.find(b"bb", key_of, |e| e).unwrap().is_empty());
        assert_eq!(Ext::open(&data, &[8u8; BLOCK], 5).err(), Some(ExtError::Unbound));
        assert!(Ext::open(&data, &header, 4).is_err());
        assert_eq!(e.find(&long, key_of, |e| e).unwrap(), vec![4]);
    }

    #[test]
    fn damage_is_found_where_it_is_read() {
        let header = [1u8; BLOCK];
        let mut b = Builder::new();
        for i in 0..2000u32 {
            b.push(&meta(None), i, format!("f{i}").as_bytes());
        }
        let mut data = b.finish(&header).unwrap();
        let at = BLOCK + 1500 * RECORD;
        data[at] ^= 1;
        let e = Ext::open(&data, &header, 2000).unwrap();
        assert!(e.meta(0, 0).is_ok());
        assert_eq!(e.meta(1500, 1500), Err(ExtError::Checksum("a chunk of its body")));
        assert!(e.check_all().is_err());
        data[5] ^= 1;
        assert_eq!(Ext::open(&data, &header, 2000).err(), Some(ExtError::Checksum("its header")));
    }
}
