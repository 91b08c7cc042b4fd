//! The `.tarfs` index, version 1.0: pure encoding and decoding.
//!
//! # Layout
//!
//! An index of *n* members is `(n + 1) * 512` bytes (plus, in an embedded index, one zero block
//! and any gap; see `docs/FORMAT.md`):
//!
//! | bytes | content |
//! |---|---|
//! | `[0, 10)` | `.tar-index` |
//! | `10` | NUL |
//! | `[11, 25)` | `v1.0` and 10 spaces |
//! | `[25, 512)` | zeros, except the tarfs extension record at `[64, 512)` |
//! | then | one 512-byte entry per indexed member, in archive order |
//!
//! An **entry** is a copy of the member's main header with `[148, 156)` replaced: `[148, 153)` is
//! the position (the block number of the first block of the member's header chain) as a 40-bit
//! big-endian integer, and `[153, 156)` the checksum as a 24-bit big-endian integer, computed as
//! tar computes it with `[148, 156)` taken as spaces.
//!
//! **tarfs extensions** (a plain v1.0 reader ignores both):
//!
//! - *Header record*, `[64, 512)` of the first block: `TFSX`, a version byte (1), a flags byte
//!   ([`FLAG_SUBSET`], [`FLAG_GLOBALS`], [`FLAG_FILTER`]), then at `[72, 80)` the entry count, at
//!   `[80, 88)` the archive length, at `[88, 96)` the end offset (just past the last member), at
//!   `[96, 104)` a write generation (see [`IndexInfo::generation`]), at `[104, 112)` the length of
//!   a compressed source file (see [`IndexInfo::source_len`]), at `[112, 120)` the length of the
//!   extension data when [`FLAG_EXT`] is set (see [`super::ext`]: it follows the entries and one
//!   zero block), all big-endian `u64`. Record version 2 (written since 2026-12) adds the
//!   archive's [`Stamp`] at `[128, 160)`, the xxh3-64 of a compressed source file at
//!   `[160, 168)`, which of them are present at 168 ([`HAS_STAMP`], [`HAS_SOURCE_DIGEST`],
//!   [`HAS_EROFS`]), an embedded EROFS image's archive offset and length at `[176, 192)`,
//!   the member filter as text (`+GLOB` / `-GLOB` lines, NUL-padded) at `[192, 504)` when
//!   [`FLAG_FILTER`] is set, and at `[504, 512)` the xxh3-64 of `[0, 504)`, so that no bit of
//!   the header changes unseen. Version 1 had the filter at `[128, 512)` and no digest; it is
//!   still read.
//! - *Entry record*, `[500, 512)` of an entry, written only when the member's header has zeros
//!   there (true of ustar, GNU and v7 headers; star keeps a trailer there): `TFS`, version 1, the
//!   number of blocks from the position to the data as a big-endian `u32` at `[504, 508)`, and a
//!   flags byte at 508 ([`ENTRY_SIMPLE`]: the header alone describes the member).

use std::fmt;

use super::header::{is_zero_block, unsigned_checksum, BLOCK};

/// Bytes `[0, 10)` of every index.
pub const MAGIC: &[u8; 10] = b".tar-index";
/// The name of an embedded index member.
pub const MEMBER_NAME: &str = ".tarfs";
/// Largest position a 40-bit field holds, in blocks.
pub const MAX_POSITION: u64 = (1 << 40) - 1;

/// Header flag: the index holds only the members a filter selected.
pub const FLAG_SUBSET: u8 = 1;
/// Header flag: the archive has pax global headers, which entries cannot carry; readers that
/// need full metadata must scan.
pub const FLAG_GLOBALS: u8 = 2;
/// Header flag: the filter text is recorded at `[128, 512)`.
pub const FLAG_FILTER: u8 = 4;
/// Header flag: extension data (see [`super::ext`]) follows the entries and their zero block;
/// its length is at `[112, 120)`.
pub const FLAG_EXT: u8 = 8;
/// Header flag: the data ends with a seek section ([`super::seek`]) of `[120, 128)` bytes, after
/// the entries, a zero block and any extension data (compressed archives' sidecars only).
pub const FLAG_SEEK: u8 = 16;
/// Entry flag: the member's main header alone describes it (no extension headers, not sparse).
pub const ENTRY_SIMPLE: u8 = 1;

/// Record (version 2) flag: the archive's [`Stamp`] is recorded.
pub const HAS_STAMP: u8 = 1;
/// Record (version 2) flag: the xxh3-64 of the compressed source file is recorded.
pub const HAS_SOURCE_DIGEST: u8 = 2;
/// Record (version 2) flag: an EROFS image lies in the embedded `.tarfs` member (issue #33's
/// self-mounting archive): its archive offset and length are at `[176, 192)`.
pub const HAS_EROFS: u8 = 4;

const EXT_TAG: &[u8; 4] = b"TFSX";
const ENTRY_TAG: &[u8; 3] = b"TFS";
/// The record version this tarfs writes.
const RECORD_VERSION: u8 = 2;
/// Where the filter text starts, in record version 1 and 2.
const FILTER_AT_V1: usize = 128;
const FILTER_AT: usize = 192;
/// Where the header digest starts (record version 2).
const DIGEST_AT: usize = 504;

/// What is wrong with an index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// The data does not start with `.tar-index`.
    #[error("not a .tarfs index (no .tar-index magic)")]
    NoMagic,
    /// No `vMAJOR.MINOR` token in `[10, 35)`.
    #[error("no index version in the header")]
    NoVersion,
    /// A major version other than 1.
    #[error("unsupported index version {0}.{1} (this tarfs reads 1.x and 2.x)")]
    UnsupportedVersion(u32, u32),
    /// A v2.0 index's body is damaged (see [`super::v2`]).
    #[error("{0}")]
    V2(#[from] super::v2::V2Error),
    /// Its member digests do not open (see [`super::digests`]).
    #[error("{0}")]
    Digests(#[from] super::digests::DigestsError),
    /// Not a whole number of blocks.
    #[error("index is {0} bytes, not a whole number of 512-byte blocks")]
    Ragged(usize),
    /// An entry's checksum does not hold.
    #[error("entry {entry} (byte {offset} of the index) has a bad checksum")]
    EntryChecksum {
        /// 0-based entry number.
        entry: u64,
        /// Byte offset of the entry in the index.
        offset: u64,
    },
    /// The header's entry count disagrees with the entries present.
    #[error("index header says {claimed} entries, but {found} are present")]
    Count {
        /// The count in the header record.
        claimed: u64,
        /// Entries found before the data ended.
        found: u64,
    },
    /// The header record's digest does not hold.
    #[error("the index header is damaged (its digest does not hold)")]
    HeaderDigest,
    /// The header promises extension data that is not there, or does not open.
    #[error("the index header promises extension data, which is missing or damaged: {0}")]
    MissingExtension(String),
    /// The extension's digest of a group of entries does not hold.
    #[error("entries {first} to {last} do not match their digest (the index is damaged)")]
    EntryDigest {
        /// First entry of the group.
        first: u64,
        /// Last entry of the group.
        last: u64,
    },
    /// A position does not fit 40 bits.
    #[error("position of {0} blocks does not fit the 40-bit field")]
    PositionTooLarge(u64),
    /// A line of a subset index's filter that is neither `+GLOB` nor `-GLOB`.
    #[error("bad filter line {0:?} in index")]
    FilterLine(String),
    /// Extension data that does not decode where it is read.
    #[error("{0}")]
    Extension(super::ext::ExtError),
    /// The extension's name table lists an entry twice.
    #[error("index extension: the name table lists entry {0} twice")]
    NameTableTwice(u64),
    /// The extension's name table is not sorted.
    #[error("index extension: the name table is out of order at place {0}")]
    NameTableOrder(u64),
    /// A CSV index member that does not decode.
    #[error("{name}: {source}")]
    Csv {
        /// The CSV member's name.
        name: String,
        /// Why.
        source: super::csv::CsvError,
    },
    /// A glob of a subset index's filter that does not parse.
    #[error("{0}")]
    FilterGlob(crate::error::UsageError),
}

impl IndexError {
    /// [`IndexError::EntryDigest`] for the group of entries `bad` (as [`super::ext::Ext`]'s
    /// entry checks give it).
    pub fn entry_digest(bad: std::ops::Range<usize>) -> IndexError {
        IndexError::EntryDigest { first: bad.start as u64, last: bad.end.saturating_sub(1) as u64 }
    }
}

/// What the tarfs header record says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexInfo {
    /// Entries in the index.
    pub entries: u64,
    /// The version of the record read (1 or 2); written as 2 whatever it says.
    pub record: u8,
    /// The file the index was made from, as `stat` saw it (record version 2, sidecars only):
    /// what the freshness verdict compares first.
    pub stamp: Option<Stamp>,
    /// The xxh3-64 of the whole compressed file the index was made from (record version 2,
    /// compressed archives' sidecars): binds the index to that file's content, so that another
    /// file of the same length is never answered for.
    pub source_digest: Option<u64>,
    /// Length in bytes of the archive the index was made from.
    pub archive_len: u64,
    /// Byte offset just past the archive's last member.
    pub end_offset: u64,
    /// [`FLAG_SUBSET`] and [`FLAG_GLOBALS`] (FLAG_FILTER is implied by `filter`).
    pub flags: u8,
    /// The member filter, as `+GLOB`/`-GLOB` lines, when it fits.
    pub filter: Option<String>,
    /// A number that changes each time an index is written in place, so that its header block
    /// never equals an older one (crash recovery looks for it).
    pub generation: u64,
    /// When the index was made from a compressed file: that file's length (positions count in
    /// the decompressed stream, whose length is `archive_len`). 0 otherwise.
    pub source_len: u64,
    /// With [`FLAG_EXT`]: the length in bytes of the extension data.
    pub ext_len: u64,
    /// With [`FLAG_SEEK`]: the length in bytes of the seek section that ends the data.
    pub seek_len: u64,
    /// An embedded index's EROFS image in its `.tarfs` member (record version 2, with
    /// [`HAS_EROFS`]): its byte offset in the archive (4096-aligned) and its length.
    pub erofs: Option<(u64, u64)>,
}

/// What `stat` says of a file, as far as it identifies its content: an index records it of its
/// archive, and the file is unchanged since while the stamp is equal. An in-place edit changes
/// the ctime, which `touch -r` cannot restore; a copy has another inode and ctime. The device is
/// left out: it is not stable across mounts (NFS, removable media), where the inode is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stamp {
    /// Inode number.
    pub ino: u64,
    /// Modification time: seconds and nanoseconds.
    pub mtime: (i64, u32),
    /// Status change time: seconds and nanoseconds.
    pub ctime: (i64, u32),
}

impl Stamp {
    /// The stamp of a file's metadata.
    pub fn of(meta: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        let ns = |n: i64| u32::try_from(n).unwrap_or(0);
        Stamp { ino: meta.ino(), mtime: (meta.mtime(), ns(meta.mtime_nsec())), ctime: (meta.ctime(), ns(meta.ctime_nsec())) }
    }
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "inode {}, mtime {}.{:09}, ctime {}.{:09}", self.ino, self.mtime.0, self.mtime.1, self.ctime.0, self.ctime.1)
    }
}

/// A decoded index header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexHeader {
    /// Major and minor version.
    pub version: (u32, u32),
    /// The tarfs extension record, if present.
    pub info: Option<IndexInfo>,
}

/// Encodes the first block of an index (record version 2).
pub fn encode_header(info: &IndexInfo) -> [u8; BLOCK] {
    encode_header_as(info, b"v1.0")
}

/// [`encode_header`] with `version` (`v1.0`, `v2.0`) in the version field.
pub fn encode_header_as(info: &IndexInfo, version: &[u8; 4]) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    b[..10].copy_from_slice(MAGIC);
    b[11..25].copy_from_slice(b"v1.0          ");
    b[11..15].copy_from_slice(version);
    b[64..68].copy_from_slice(EXT_TAG);
    b[68] = RECORD_VERSION;
    let mut flags = info.flags & (FLAG_SUBSET | FLAG_GLOBALS | FLAG_EXT | FLAG_SEEK);
    if let Some(f) = info.filter.as_deref().filter(|f| f.len() <= DIGEST_AT - FILTER_AT && !f.contains('\0')) {
        b[FILTER_AT..FILTER_AT.saturating_add(f.len())].copy_from_slice(f.as_bytes());
        flags |= FLAG_FILTER;
    }
    b[69] = flags;
    let fields: [(usize, u64); 7] = [(72, info.entries), (80, info.archive_len), (88, info.end_offset), (96, info.generation), (104, info.source_len), (112, info.ext_len), (120, info.seek_len)];
    for (at, v) in fields {
        b[at..at.saturating_add(8)].copy_from_slice(&v.to_be_bytes());
    }
    let mut present = 0;
    if let Some(st) = info.stamp {
        b[128..136].copy_from_slice(&st.ino.to_be_bytes());
        b[136..144].copy_from_slice(&st.mtime.0.to_be_bytes());
        b[144..148].copy_from_slice(&st.mtime.1.to_be_bytes());
        b[148..156].copy_from_slice(&st.ctime.0.to_be_bytes());
        b[156..160].copy_from_slice(&st.ctime.1.to_be_bytes());
        present |= HAS_STAMP;
    }
    if let Some(d) = info.source_digest {
        b[160..168].copy_from_slice(&d.to_be_bytes());
        present |= HAS_SOURCE_DIGEST;
    }
    if let Some((at, len)) = info.erofs {
        b[176..184].copy_from_slice(&at.to_be_bytes());
        b[184..192].copy_from_slice(&len.to_be_bytes());
        present |= HAS_EROFS;
    }
    b[168] = present;
    let digest = xxhash_rust::xxh3::xxh3_64(&b[..DIGEST_AT]);
    b[DIGEST_AT..].copy_from_slice(&digest.to_be_bytes());
    b
}

/// The version of the index whose bytes are `data` (`(major, minor)`), read as
/// [`decode_header`] reads it: what a reader chooses the index's form by.
pub fn version_of(data: &[u8]) -> Result<(u32, u32), IndexError> {
    let b = data.get(..BLOCK).ok_or(IndexError::NoMagic)?;
    if &b[..10] != MAGIC {
        return Err(IndexError::NoMagic);
    }
    parse_version(&b[10..35]).ok_or(IndexError::NoVersion)
}

/// Decodes the first block of an index, tolerantly: the version token may sit anywhere in
/// `[10, 35)`, and any 1.x is accepted. A version 2 record whose digest does not hold is an
/// error: one flipped bit there could change the entry count or the flags.
pub fn decode_header(b: &[u8; BLOCK]) -> Result<IndexHeader, IndexError> {
    decode_header_as(b, 1)
}

/// [`decode_header`] of an index of major version `major` (the header block of a v2.0 index
/// is v1.0's, see [`super::v2`]).
pub fn decode_header_as(b: &[u8; BLOCK], major: u32) -> Result<IndexHeader, IndexError> {
    if &b[..10] != MAGIC {
        return Err(IndexError::NoMagic);
    }
    let version = parse_version(&b[10..35]).ok_or(IndexError::NoVersion)?;
    if version.0 != major {
        return Err(IndexError::UnsupportedVersion(version.0, version.1));
    }
    if &b[64..68] != EXT_TAG || !(1..=RECORD_VERSION).contains(&b[68]) {
        return Ok(IndexHeader { version, info: None });
    }
    let record = b[68];
    if record >= 2 && b[DIGEST_AT..] != xxhash_rust::xxh3::xxh3_64(&b[..DIGEST_AT]).to_be_bytes() {
        return Err(IndexError::HeaderDigest);
    }
    let u = |r: std::ops::Range<usize>| u64::from_be_bytes(b[r].try_into().expect("8 bytes"));
    let flags = b[69];
    let filter = (flags & FLAG_FILTER != 0).then(|| {
        let t = if record >= 2 { &b[FILTER_AT..DIGEST_AT] } else { &b[FILTER_AT_V1..] };
        let end = t.iter().position(|&c| c == 0).unwrap_or(t.len());
        String::from_utf8_lossy(&t[..end]).into_owned()
    });
    let present = if record >= 2 { b[168] } else { 0 };
    let u32_at = |at: usize| u32::from_be_bytes(b[at..at.saturating_add(4)].try_into().expect("4 bytes"));
    let stamp = (present & HAS_STAMP != 0).then(|| Stamp { ino: u(128..136), mtime: (u(136..144) as i64, u32_at(144)), ctime: (u(148..156) as i64, u32_at(156)) });
    let source_digest = (present & HAS_SOURCE_DIGEST != 0).then(|| u(160..168));
    let erofs = (present & HAS_EROFS != 0).then(|| (u(176..184), u(184..192)));
    let info = IndexInfo {
        entries: u(72..80),
        record,
        stamp,
        source_digest,
        archive_len: u(80..88),
        end_offset: u(88..96),
        flags: flags & !FLAG_FILTER,
        filter,
        generation: u(96..104),
        source_len: u(104..112),
        ext_len: u(112..120),
        seek_len: u(120..128),
        erofs,
    };
    Ok(IndexHeader { version, info: Some(info) })
}

fn parse_version(field: &[u8]) -> Option<(u32, u32)> {
    let text: Vec<u8> = field.iter().copied().filter(|&c| c != 0 && c != b' ').collect();
    let v = text.iter().position(|&c| c == b'v')?;
    let rest = std::str::from_utf8(&text[v.saturating_add(1)..]).ok()?;
    let (major, minor) = rest.split_once('.')?;
    let minor: String = minor.chars().take_while(char::is_ascii_digit).collect();
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The entry checksum: tar's unsigned byte sum with `[148, 156)` as spaces, in 24 bits.
pub fn entry_checksum(block: &[u8; BLOCK]) -> u32 {
    unsigned_checksum(block) & 0x00ff_ffff
}

/// Encodes one entry from a member's main header.
///
/// `position` is in blocks; `chain_blocks` is the number of blocks from the position to the
/// member's data; `simple` says that the main header alone describes the member.
pub fn encode_entry(main_header: &[u8; BLOCK], position: u64, chain_blocks: u64, simple: bool) -> Result<[u8; BLOCK], IndexError> {
    let mut b = [0u8; BLOCK];
    encode_entry_into(&mut b, main_header, unsigned_checksum(main_header), position, chain_blocks, simple)?;
    Ok(b)
}

/// [`encode_entry`] into `out`, given the header's unsigned byte sum (as
/// [`super::header::HeaderView::verified_sum`] gives it), so the block is not summed again: the
/// entry's checksum is that sum plus the bytes of the entry record, which replaces zeros.
pub fn encode_entry_into(out: &mut [u8; BLOCK], main_header: &[u8; BLOCK], header_sum: u32, position: u64, chain_blocks: u64, simple: bool) -> Result<(), IndexError> {
    out.copy_from_slice(main_header);
    patch_entry(out, header_sum, position, chain_blocks, simple)
}

/// Turns a copy of a main header, in place, into its entry (see [`encode_entry_into`]).
pub fn patch_entry(out: &mut [u8; BLOCK], header_sum: u32, position: u64, chain_blocks: u64, simple: bool) -> Result<(), IndexError> {
    if position > MAX_POSITION {
        return Err(IndexError::PositionTooLarge(position));
    }
    let mut sum = header_sum;
    if out[500..].iter().all(|&c| c == 0) {
        if let Ok(chain) = u32::try_from(chain_blocks) {
            let mut record = [0u8; 12];
            record[..3].copy_from_slice(ENTRY_TAG);
            record[3] = 1;
            record[4..8].copy_from_slice(&chain.to_be_bytes());
            record[8] = if simple { ENTRY_SIMPLE } else { 0 };
            // Bounded: a block's checksum is under 2^17, and 12 more bytes add under 2^12.
            sum = sum.saturating_add(record.iter().map(|&c| u32::from(c)).sum::<u32>());
            out[500..].copy_from_slice(&record);
        }
    }
    out[148..153].copy_from_slice(&position.to_be_bytes()[3..]);
    out[153..156].copy_from_slice(&(sum & 0x00ff_ffff).to_be_bytes()[1..]);
    Ok(())
}

/// Where the extension data of an index with this header lies in its data `data`: after the
/// entries and one all-zero block. `None` without [`FLAG_EXT`], or when the data does not hold it.
pub fn ext_range(data: &[u8], info: &IndexInfo) -> Option<std::ops::Range<usize>> {
    if info.flags & FLAG_EXT == 0 || info.ext_len == 0 {
        return None;
    }
    let zero = usize::try_from(info.entries).ok()?.checked_add(1)?.checked_mul(BLOCK)?;
    let start = zero.checked_add(BLOCK)?;
    let end = start.checked_add(usize::try_from(info.ext_len).ok()?)?;
    (end <= data.len() && is_zero_block(&data[zero..start])).then_some(start..end)
}

/// Where the seek section is in an index's data: its last `seek_len` bytes, when [`FLAG_SEEK`]
/// is set and they lie past the entries and their zero block.
pub fn seek_range(data: &[u8], info: &IndexInfo) -> Option<std::ops::Range<usize>> {
    if info.flags & FLAG_SEEK == 0 || info.seek_len == 0 {
        return None;
    }
    let after_zero = usize::try_from(info.entries).ok()?.checked_add(2)?.checked_mul(BLOCK)?;
    let start = data.len().checked_sub(usize::try_from(info.seek_len).ok()?)?;
    (start >= after_zero).then_some(start..data.len())
}

/// One entry of a decoded index: a view over its block.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry<'a> {
    block: &'a [u8; BLOCK],
}

impl fmt::Debug for IndexEntry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IndexEntry")
            .field("position", &self.position())
            .field("chain_blocks", &self.chain_blocks())
            .finish()
    }
}

impl<'a> IndexEntry<'a> {
    /// Views a block as an entry (no checks).
    pub fn new(block: &'a [u8; BLOCK]) -> Self {
        IndexEntry { block }
    }

    /// The raw block.
    pub fn as_bytes(&self) -> &'a [u8; BLOCK] {
        self.block
    }

    /// Position of the member's header chain, in blocks.
    pub fn position(&self) -> u64 {
        let mut p = [0u8; 8];
        p[3..].copy_from_slice(&self.block[148..153]);
        u64::from_be_bytes(p)
    }

    /// The stored checksum.
    pub fn stored_checksum(&self) -> u32 {
        u32::from_be_bytes([0, self.block[153], self.block[154], self.block[155]])
    }

    /// Whether the stored checksum holds.
    pub fn checksum_ok(&self) -> bool {
        self.stored_checksum() == entry_checksum(self.block)
    }

    fn has_record(&self) -> bool {
        &self.block[500..503] == ENTRY_TAG && self.block[503] == 1
    }

    /// Blocks from the position to the data, when the entry record holds it.
    pub fn chain_blocks(&self) -> Option<u64> {
        self.has_record().then(|| u64::from(u32::from_be_bytes(self.block[504..508].try_into().expect("4 bytes"))))
    }

    /// Whether the entry record says the header alone describes the member.
    pub fn is_simple(&self) -> bool {
        self.has_record() && self.block[508] & ENTRY_SIMPLE != 0
    }

    /// Whether `header` (a main header read from the archive) is the header this entry copies:
    /// equal outside the checksum field and, when the entry record is present, `[500, 512)`.
    pub fn matches_header(&self, header: &[u8; BLOCK]) -> bool {
        let end = if self.has_record() { 500 } else { BLOCK };
        self.block[..148] == header[..148] && self.block[156..end] == header[156..end]
    }

    /// The entry as a tar header block: the checksum field restored as tar writes it, and the
    /// entry record cleared, so that header accessors and checksum checks work on it.
    pub fn to_header(&self) -> [u8; BLOCK] {
        let mut b = *self.block;
        if self.has_record() {
            b[500..].fill(0);
        }
        b[148..156].fill(b' ');
        crate::format::header::set_checksum(&mut b);
        b
    }
}

/// The entries of an index that [`decode`] has already accepted, without checking them again.
/// `entries` is the count it found.
pub fn decoded_entries(data: &[u8], entries: usize) -> impl Iterator<Item = IndexEntry<'_>> {
    data[BLOCK..BLOCK.saturating_mul(entries.saturating_add(1))].chunks_exact(BLOCK).map(|b| IndexEntry::new(b.try_into().expect("one block")))
}

/// A decoded index: its header and its entries.
#[derive(Debug, Clone)]
pub struct Index<'a> {
    /// The header.
    pub header: IndexHeader,
    /// The entries, in archive order.
    pub entries: Vec<IndexEntry<'a>>,
}

/// Decodes an index from its bytes (a sidecar's content, or an embedded member's data).
///
/// Entries end at the entry count of the extension record when there is one, otherwise at the
/// first all-zero block or the end of the data. Every entry's checksum is checked.
pub fn decode<'a>(data: &'a [u8]) -> Result<Index<'a>, IndexError> {
    let index = decode_layout(data)?;
    check_entries(&index.entries, 0)?;
    Ok(index)
}

/// [`decode`] without the entry checksums, which the caller checks with [`check_entries`]
/// (perhaps on several threads, a slice each).
pub fn decode_layout<'a>(data: &'a [u8]) -> Result<Index<'a>, IndexError> {
    let first: &[u8; BLOCK] = data.get(..BLOCK).ok_or(IndexError::NoMagic)?.try_into().expect("one block");
    let header = decode_header(first)?;
    let body = &data[BLOCK..];
    let claimed = header.info.as_ref().map(|i| i.entries);
    let mut entries = Vec::new();
    for chunk in body.chunks(BLOCK) {
        if Some(entries.len() as u64) == claimed {
            break;
        }
        let block: &[u8; BLOCK] = chunk.try_into().map_err(|_| IndexError::Ragged(data.len()))?;
        if claimed.is_none() && is_zero_block(block) {
            break;
        }
        entries.push(IndexEntry::new(block));
    }
    if let Some(c) = claimed {
        if c != entries.len() as u64 {
            return Err(IndexError::Count { claimed: c, found: entries.len() as u64 });
        }
    }
    Ok(Index { header, entries })
}

/// Checks the checksums of `entries`, the first of which is entry number `first` of its index.
pub fn check_entries(entries: &[IndexEntry<'_>], first: u64) -> Result<(), IndexError> {
    match entries.iter().position(|e| !e.checksum_ok()) {
        Some(i) => {
            let entry = first.saturating_add(i as u64);
            Err(IndexError::EntryChecksum { entry, offset: entry.saturating_add(1).saturating_mul(BLOCK as u64) })
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_entry_checksum_equals_a_full_sum() {
        // Headers with and without room for the entry record, with high bytes, at odd positions.
        for (i, trailer) in [[0u8; 12], *b"tar\0\0\0\0\0\0\0\0\0", [0xff; 12]].iter().enumerate() {
            let mut h = ustar_header("caf\u{e9}-\u{2603}");
            h[345..350].copy_from_slice(&[0xe9, 0x80, 0xff, 0x01, 0x7f]);
            h[500..].copy_from_slice(trailer);
            for (pos, chain, simple) in [(0, 1, true), (MAX_POSITION, 3, false), (12345 + i as u64, u64::from(u32::MAX) + 1, true)] {
                let b = encode_entry(&h, pos, chain, simple).unwrap();
                let stored = u32::from_be_bytes([0, b[153], b[154], b[155]]);
                assert_eq!(stored, entry_checksum(&b), "trailer {i}, position {pos}, chain {chain}");
                assert_eq!(IndexEntry::new(&b).position(), pos);
            }
        }
    }

    fn ustar_header(name: &str) -> [u8; BLOCK] {
        let mut h = [0u8; BLOCK];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..108].copy_from_slice(b"0000644\0");
        h[124..136].copy_from_slice(b"00000000012\0");
        h[156] = b'0';
        h[257..265].copy_from_slice(b"ustar\x0000");
        h
    }

    #[test]
    fn header_layout() {
        let b = encode_header(&IndexInfo { entries: 3, ..Default::default() });
        assert_eq!(&b[..10], b".tar-index");
        assert_eq!(b[10], 0);
        assert_eq!(&b[11..25], b"v1.0          ");
        assert!(b[25..64].iter().all(|&c| c == 0));
        let h = decode_header(&b).unwrap();
        assert_eq!(h.version, (1, 0));
        assert_eq!(h.info.unwrap().erofs, None);
        // An embedded EROFS image: its offset and length at [176, 192), flag 4 at 168.
        let b = encode_header(&IndexInfo { entries: 3, erofs: Some((8192, 4096)), ..Default::default() });
        assert_eq!(b[168], HAS_EROFS);
        assert_eq!(&b[176..184], &8192u64.to_be_bytes());
        let info = decode_header(&b).unwrap().info.unwrap();
        assert_eq!((info.entries, info.erofs), (3, Some((8192, 4096))));
    }

    #[test]
    fn tolerant_version() {
        let mut b = [0u8; BLOCK];
        b[..10].copy_from_slice(MAGIC);
        b[14..18].copy_from_slice(b"v1.7");
        assert_eq!(decode_header(&b).unwrap().version, (1, 7));
        b[14..18].copy_from_slice(b"v2.0");
        assert_eq!(decode_header(&b), Err(IndexError::UnsupportedVersion(2, 0)));
        b[14..18].fill(b' ');
        assert_eq!(decode_header(&b), Err(IndexError::NoVersion));
    }

    #[test]
    fn entry_fields() {
        let h = ustar_header("a.txt");
        let e = encode_entry(&h, 0x12_3456_789a, 3, true).unwrap();
        assert_eq!(&e[148..153], &[0x12, 0x34, 0x56, 0x78, 0x9a]);
        let v = IndexEntry::new(&e);
        assert_eq!(v.position(), 0x12_3456_789a);
        assert!(v.checksum_ok());
        assert_eq!(v.chain_blocks(), Some(3));
        assert!(v.is_simple());
        assert!(v.matches_header(&h));
        assert!(encode_entry(&h, 1 << 40, 1, true).is_err());
    }

    #[test]
    fn corrupt_entry_rejected() {
        let mut data = encode_header(&IndexInfo { entries: 1, ..Default::default() }).to_vec();
        let mut e = encode_entry(&ustar_header("x"), 5, 1, true).unwrap();
        e[0] ^= 1;
        data.extend_from_slice(&e);
        assert!(matches!(decode(&data), Err(IndexError::EntryChecksum { entry: 0, offset: 512 })));
    }

    #[test]
    fn plain_reader_stops_at_zero_block() {
        let mut data = [0u8; BLOCK].to_vec();
        data[..10].copy_from_slice(MAGIC);
        data[11..25].copy_from_slice(b"v1.0          ");
        data.extend_from_slice(&encode_entry(&ustar_header("x"), 5, 1, true).unwrap());
        data.extend_from_slice(&[0u8; BLOCK]);
        data.extend_from_slice(&[7u8; BLOCK]); // gap bytes, never read
        let idx = decode(&data).unwrap();
        assert_eq!(idx.entries.len(), 1);
        assert_eq!(idx.entries[0].position(), 5);
    }
}
