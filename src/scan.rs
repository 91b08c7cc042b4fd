//! The scanner: walks the member chain of an archive held as `&[u8]` (a memory map or a buffer).
//!
//! [`Scanner`] is an iterator of [`Entry`] values. Each entry borrows from the archive bytes, so a
//! scan allocates nothing per member; names are assembled only when asked for. A member is a
//! *header chain* — extension headers (pax `x`/`X`, GNU `L`/`K`), then the main header, then for
//! GNU `S` members their sparse extension blocks and for pax sparse 1.0 members the map at the
//! start of the data — followed by its data. Pax `g` headers update global state and are not
//! members. The archive ends at two zero blocks, or at the end of the bytes.
//!
//! Decisions where other readers disagree are listed in `docs/FORMAT.md`.
#![deny(clippy::arithmetic_side_effects)]

use std::borrow::Cow;
use std::fmt;

use crate::format::header::{is_header_only, is_zero_block, round_up, unsigned_checksum, FieldError, Format, HeaderView, BLOCK, BLOCK_U64};
use crate::format::ext;
use crate::format::pax::{PaxError, PaxOverrides, PaxSparse};
use crate::format::sparse::{self, Region, SparseError};

/// Bounds on what an archive may make the scanner hold, whatever its headers claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of extension data (pax `x` records, GNU long names and links) per member, and of one
    /// pax `g` header. Default 1 MiB, as Go and tar-core use.
    pub max_metadata: u64,
    /// Entries in one sparse map. Default 1,000,000 (16 MB decoded).
    pub max_sparse_entries: usize,
    /// Extension headers before one main header. Default 64.
    pub max_chain: usize,
    /// Bytes in a path or link target. Default 64 KiB.
    pub max_path: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_metadata: 1 << 20, max_sparse_entries: 1_000_000, max_chain: 64, max_path: 1 << 20 }
    }
}

/// How to scan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanOptions {
    /// Skip zero blocks between members, as GNU `tar -i` does, instead of ending the archive at
    /// a lone one. Two zero blocks still end it unless more headers follow them.
    pub lenient: bool,
    /// Resource limits.
    pub limits: Limits,
}

/// What made an archive unreadable, without the archive's path (see [`crate::Error`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanErrorKind {
    /// Fewer than 512 bytes remain where a header should be.
    #[error("truncated header: {0} bytes where a 512-byte header should be")]
    TruncatedHeader(u64),
    /// The block's checksum does not match: not a tar header.
    #[error("header checksum mismatch (not a tar header, or a corrupt one)")]
    BadChecksum,
    /// A numeric field does not parse.
    #[error("bad header: {0}")]
    Field(FieldError),
    /// A pax record is malformed.
    #[error("{0}")]
    Pax(PaxError),
    /// A member's data, or an extension header's, runs past the end of the file.
    #[error("{what} of {size} bytes runs past the end of the file ({missing} bytes missing)")]
    PastEof {
        /// What runs past.
        what: &'static str,
        /// Its claimed size.
        size: u64,
        /// How many bytes are missing.
        missing: u64,
    },
    /// Extension metadata is over the limit.
    #[error("extension headers of {size} bytes exceed the limit of {limit} bytes")]
    MetadataTooLarge {
        /// Claimed size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Too many extension headers in a row.
    #[error("more than {0} extension headers before a member (the limit)")]
    ChainTooLong(usize),
    /// Extension headers with no main header after them.
    #[error("extension header is not followed by a member")]
    OrphanExtension,
    /// A sparse map is bad or over the limit.
    #[error("{0}")]
    Sparse(SparseError),
    /// Stream scanning only: the window of bytes ended before the scanner could decide; the
    /// driver reads more and tries again. Never returned by a scanner over a whole archive.
    #[error("more input needed")]
    NeedMore,
    /// A path or link target is over the limit.
    #[error("path of {len} bytes exceeds the limit of {limit} bytes")]
    PathTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
}

/// A scan error at a byte offset of the archive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at byte {offset}: {kind}")]
pub struct ScanError {
    /// Byte offset of the block where the problem is.
    pub offset: u64,
    /// What the problem is.
    pub kind: ScanErrorKind,
}

/// Where a sparse member's map is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SparseSource<'a> {
    /// Old-GNU `S`: slots in the main header, then these extension blocks.
    Gnu {
        /// The extension blocks, whole.
        ext: &'a [u8],
    },
    /// pax 0.0, in the member's local pax data.
    Pax00 {
        /// The local pax data.
        pax: &'a [u8],
    },
    /// pax 0.1, `GNU.sparse.map`.
    Pax01 {
        /// The map text.
        map: &'a [u8],
    },
    /// pax 1.0: the decimal map at the start of the stored data.
    Pax10 {
        /// The map's bytes (whole blocks).
        map: &'a [u8],
    },
}

/// One member, as found by the scanner. Borrows from the archive bytes.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// Byte offset of the first block of the member's header chain.
    pub position: u64,
    /// Byte offset of the main header (the block with the member's own typeflag).
    pub header_offset: u64,
    /// Byte offset of the member's stored data.
    pub data_offset: u64,
    /// Bytes of data stored in the archive from `data_offset` (a sparse member's stored regions).
    pub stored_size: u64,
    /// Logical size: what extraction produces (a sparse member's full size).
    pub size: u64,
    /// The main header.
    pub header: HeaderView<'a>,
    /// The main header's unsigned byte sum (see [`HeaderView::verified_sum`]).
    pub header_sum: u32,
    /// The effective typeflag: the header's, with a v7 regular file whose name ends in `/` read
    /// as a directory (`5`), as Python and Go do.
    pub typeflag: u8,
    /// Permission and type bits.
    pub mode: u32,
    /// Owner id (pax `uid` over the header).
    pub uid: u64,
    /// Group id (pax `gid` over the header).
    pub gid: u64,
    /// Modification time, seconds since the epoch (pax `mtime` over the header).
    pub mtime: i64,
    /// Device numbers, for `3` and `4`.
    pub device: (u64, u64),
    /// Effective pax records (local over global).
    pub pax: PaxOverrides<'a>,
    /// GNU long name (`L`), without trailing NULs.
    pub long_name: Option<&'a [u8]>,
    /// GNU long link (`K`), without trailing NULs.
    pub long_link: Option<&'a [u8]>,
    /// Where the sparse map is, for sparse members.
    pub sparse: Option<SparseSource<'a>>,
    /// Whether pax `g` records that set attributes tarfs reads were in force for this member
    /// (`comment`-only globals, as `git archive` writes, do not count).
    pub has_globals: bool,
}

impl<'a> Entry<'a> {
    /// The full path: pax `GNU.sparse.name`, then pax `path`, then a GNU long name, then the
    /// header's `prefix/name`.
    pub fn path(&self) -> Cow<'a, [u8]> {
        if let Some(p) = self.pax.sparse_name.filter(|_| self.sparse.is_some()).or(self.pax.path) {
            return Cow::Borrowed(p);
        }
        if let Some(p) = self.long_name {
            return Cow::Borrowed(p);
        }
        let (prefix, name) = (self.header.prefix(), self.header.name());
        if prefix.is_empty() {
            Cow::Borrowed(name)
        } else {
            // Both fields are within one 512-byte header.
            let mut p = Vec::with_capacity(prefix.len().saturating_add(name.len()).saturating_add(1));
            p.extend_from_slice(prefix);
            p.push(b'/');
            p.extend_from_slice(name);
            Cow::Owned(p)
        }
    }

    /// The length of [`Entry::path`], without assembling it.
    pub fn path_len(&self) -> usize {
        if let Some(p) = self.pax.sparse_name.filter(|_| self.sparse.is_some()).or(self.pax.path).or(self.long_name) {
            return p.len();
        }
        let prefix = self.header.prefix().len();
        // Both fields are within one 512-byte header.
        self.header.name().len().saturating_add(if prefix > 0 { prefix.saturating_add(1) } else { 0 })
    }

    /// The link target: pax `linkpath`, then a GNU long link, then the header's `linkname`.
    pub fn link(&self) -> &'a [u8] {
        self.pax.linkpath.or(self.long_link).unwrap_or_else(|| self.header.linkname())
    }

    /// Owner name.
    pub fn uname(&self) -> &'a [u8] {
        self.pax.uname.unwrap_or_else(|| self.header.uname())
    }

    /// Group name.
    pub fn gname(&self) -> &'a [u8] {
        self.pax.gname.unwrap_or_else(|| self.header.gname())
    }

    /// Blocks from `position` to `data_offset`: the header chain, sparse blocks and map.
    pub fn chain_blocks(&self) -> u64 {
        // The scanner sets data_offset past position.
        self.data_offset.saturating_sub(self.position) / BLOCK_U64
    }

    /// Whether the main header alone describes the member: no extension headers, no globals,
    /// not sparse. Such a member can be listed from a `.tarfs` entry without reading the archive.
    pub fn is_simple(&self) -> bool {
        self.position == self.header_offset
            && self.header_offset.checked_add(BLOCK_U64) == Some(self.data_offset)
            && self.sparse.is_none()
            && !self.has_globals
            && self.typeflag == self.header.typeflag()
    }

    /// Decodes the sparse map, for sparse members.
    pub fn sparse_map(&self, limits: &Limits) -> Result<Option<Vec<Region>>, SparseError> {
        let max = limits.max_sparse_entries;
        let map = match self.sparse {
            None => return Ok(None),
            Some(SparseSource::Gnu { ext }) => sparse::decode_gnu(self.header.gnu_sparse_slots(), ext, max)?,
            Some(SparseSource::Pax00 { pax }) => sparse::decode_pax_00(pax, max)?,
            Some(SparseSource::Pax01 { map }) => sparse::decode_pax_01(map, max)?,
            Some(SparseSource::Pax10 { map }) => sparse::decode_pax_10(map, max)?.0,
        };
        Ok(Some(map))
    }
}

/// How the scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Two zero blocks.
    EndMarker,
    /// The end of the bytes, with no end marker (accepted, as every reader does).
    Eof,
    /// One zero block followed by more data (or by the end of the bytes): the archive ends there.
    LoneZeroBlock,
}

/// Something worth telling the user that does not make the archive unreadable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warning {
    /// A single zero block at `offset`, with non-zero data after it that was not read.
    LoneZeroBlock {
        /// Its byte offset.
        offset: u64,
    },
    /// Lenient mode found zero blocks at `zeros`, then a block at `offset` that is not a header:
    /// the archive ends at the zero blocks, and what follows is not read.
    TrailingData {
        /// Where the zero blocks start (the end of the archive).
        zeros: u64,
        /// The first non-header block after them.
        offset: u64,
    },
    /// Lenient mode skipped `count` zero blocks at `offset`.
    SkippedZeroBlocks {
        /// Byte offset of the first.
        offset: u64,
        /// How many.
        count: u64,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::LoneZeroBlock { offset } => write!(
                f,
                "a lone zero block at byte {offset} ends the archive; the data after it is not read (use --lenient to read on)"
            ),
            Warning::TrailingData { zeros, offset } => write!(
                f,
                "zero blocks at byte {zeros} are followed by data that is not a tar header (at byte {offset}); the archive ends at the zero blocks"
            ),
            Warning::SkippedZeroBlocks { offset, count } => {
                write!(f, "skipped {count} zero block(s) at byte {offset} (--lenient)")
            }
        }
    }
}

/// The end of a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanEnd {
    /// Byte offset just past the last member (where the end marker starts, if there is one).
    pub end_offset: u64,
    /// Why the scan stopped.
    pub stop: Stop,
    /// Members found.
    pub members: u64,
    /// The last warning, if any (a scan has at most a few; the lone-zero one ends it).
    pub warning: Option<Warning>,
    /// Whether pax `g` headers were seen.
    pub has_globals: bool,
    /// Whether a pax `g` header set an attribute tarfs reads (path, size, ids, names, mtime);
    /// `comment`-only globals, as `git archive` writes, do not.
    pub global_attributes: bool,
}

/// Iterates the members of an archive held in memory.
pub struct Scanner<'a> {
    data: &'a [u8],
    pos: u64,
    opts: ScanOptions,
    globals: PaxOverrides<'a>,
    has_globals: bool,
    global_attributes: bool,
    members: u64,
    warning: Option<Warning>,
    end: Option<ScanEnd>,
    failed: bool,
    /// In lenient mode: where the zero blocks just skipped started.
    skipped_zeros_at: Option<u64>,
    /// Stream scanning: more bytes may follow `data`, so running out of them is `NeedMore`, and
    /// member data is not required to be in `data`.
    more: bool,
    /// Byte ranges of the pax `g` data met, for a stream driver to keep.
    global_ranges: Vec<(u64, u64)>,
}

/// Extension headers collected before a main header.
#[derive(Default, Clone, Copy)]
struct Pending<'a> {
    start: Option<u64>,
    count: usize,
    metadata: u64,
    pax: Option<&'a [u8]>,
    long_name: Option<&'a [u8]>,
    long_link: Option<&'a [u8]>,
}

impl<'a> Scanner<'a> {
    /// A scanner over a whole archive.
    pub fn new(data: &'a [u8], opts: ScanOptions) -> Self {
        Scanner::at(data, 0, opts)
    }

    /// A scanner starting at byte `offset` (a member's position), with no global pax state.
    pub fn at(data: &'a [u8], offset: u64, opts: ScanOptions) -> Self {
        Scanner::window(data, offset, opts, false, &[])
    }

    /// A scanner over a window of a stream: `data` holds the bytes from a member boundary on,
    /// `more` says whether the stream goes on past them, and `globals` are the data of the pax
    /// `g` headers met before the window, in order. Offsets are relative to `data`. With `more`,
    /// running out of bytes is [`ScanErrorKind::NeedMore`], and member data may lie past the
    /// window (the driver skips it by reading).
    pub fn window(data: &'a [u8], offset: u64, opts: ScanOptions, more: bool, globals: &'a [Vec<u8>]) -> Self {
        let mut s = Scanner {
            data,
            pos: offset,
            opts,
            globals: PaxOverrides::default(),
            has_globals: false,
            global_attributes: false,
            members: 0,
            warning: None,
            end: None,
            failed: false,
            skipped_zeros_at: None,
            more,
            global_ranges: Vec::new(),
        };
        for g in globals {
            if let Ok(o) = PaxOverrides::parse(g) {
                s.globals.apply_global(&o);
                s.has_globals = true;
                s.global_attributes |= !o.is_empty();
            }
        }
        s
    }

    /// The `(offset, length)` of each pax `g` header's data this scanner met.
    pub fn global_ranges(&self) -> &[(u64, u64)] {
        &self.global_ranges
    }

    fn need_more(&self, at: u64) -> ScanError {
        ScanError { offset: at, kind: ScanErrorKind::NeedMore }
    }

    /// Byte offset where the next step starts: between members, a member boundary.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Whether the state a scan carries from member to member is still the initial one: no pax
    /// `g` header met and no zero blocks being skipped. From such a state, scanning on from
    /// [`Scanner::position`] gives the same members as a fresh [`Scanner::at`] there, which is what
    /// lets the chunked scan (`crate::chunked`) splice independent scans together.
    pub fn is_fresh(&self) -> bool {
        !self.has_globals && self.skipped_zeros_at.is_none()
    }

    /// The last warning so far.
    pub fn warning(&self) -> Option<Warning> {
        self.warning
    }

    /// How the scan ended; `None` until the iterator has returned `None`, or after an error.
    pub fn end(&self) -> Option<ScanEnd> {
        self.end
    }

    fn len(&self) -> u64 {
        self.data.len() as u64
    }

    fn block(&self, at: u64) -> Result<&'a [u8; BLOCK], ScanError> {
        let remaining = self.len().saturating_sub(at);
        if remaining < BLOCK_U64 && self.more {
            return Err(self.need_more(at));
        }
        if remaining < BLOCK_U64 {
            return Err(ScanError { offset: at, kind: ScanErrorKind::TruncatedHeader(remaining) });
        }
        let at = at as usize;
        Ok(self.data[at..at.saturating_add(BLOCK)].try_into().expect("one block"))
    }

    /// `len` bytes at `at`, or a past-EOF error naming `what`.
    fn bytes(&self, at: u64, len: u64, what: &'static str, err_at: u64) -> Result<&'a [u8], ScanError> {
        let end = at.checked_add(len).filter(|&e| e <= self.len());
        match end {
            Some(end) => Ok(&self.data[at as usize..end as usize]),
            None if self.more => Err(self.need_more(at)),
            None => Err(ScanError {
                offset: err_at,
                kind: ScanErrorKind::PastEof { what, size: len, missing: at.saturating_add(len).saturating_sub(self.len()) },
            }),
        }
    }

    fn finish(&mut self, end_offset: u64, stop: Stop) -> Option<Result<Entry<'a>, ScanError>> {
        self.end = Some(ScanEnd {
            end_offset,
            stop,
            members: self.members,
            warning: self.warning,
            has_globals: self.has_globals,
            global_attributes: self.global_attributes,
        });
        None
    }

    fn step(&mut self) -> Option<Result<Entry<'a>, ScanError>> {
        let mut pending = Pending::default();
        let limits = self.opts.limits;
        loop {
            let at = self.pos;
            if self.more && self.len() < at.saturating_add(2 * BLOCK_U64) {
                // Enough to tell a header, an end marker and a lone zero block apart.
                return Some(Err(self.need_more(at)));
            }
            if at >= self.len() {
                if pending.start.is_some() {
                    return Some(Err(ScanError { offset: at, kind: ScanErrorKind::OrphanExtension }));
                }
                return self.finish(at, Stop::Eof);
            }
            if self.len().saturating_sub(at) < BLOCK_U64 && is_zero_block(&self.data[at as usize..]) && pending.start.is_none() {
                // A short all-zero tail is padding, not a header.
                return self.finish(at, Stop::Eof);
            }
            let raw = match self.block(at) {
                Ok(b) => b,
                Err(e) => return Some(Err(e)),
            };
            if is_zero_block(raw) {
                if pending.start.is_some() {
                    return Some(Err(ScanError { offset: at, kind: ScanErrorKind::OrphanExtension }));
                }
                match self.zero_block(at) {
                    Ok(Some(next)) => {
                        self.pos = next;
                        continue;
                    }
                    Ok(None) => return None,
                    Err(e) => return Some(Err(e)),
                }
            }
            let h = HeaderView::new(raw);
            let Some(header_sum) = h.verified_sum() else {
                if let Some(zeros) = self.skipped_zeros_at.filter(|_| pending.start.is_none()) {
                    self.warning = Some(Warning::TrailingData { zeros, offset: at });
                    return self.finish(zeros, Stop::EndMarker);
                }
                return Some(Err(ScanError { offset: at, kind: ScanErrorKind::BadChecksum }));
            };
            self.skipped_zeros_at = None;
            let size = match h.size() {
                Ok(s) => s,
                Err(e) => return Some(Err(ScanError { offset: at, kind: ScanErrorKind::Field(e) })),
            };
            match h.typeflag() {
                b'x' | b'X' | b'L' | b'K' => {
                    pending.count = pending.count.saturating_add(1);
                    if pending.count > limits.max_chain {
                        return Some(Err(ScanError { offset: at, kind: ScanErrorKind::ChainTooLong(limits.max_chain) }));
                    }
                    pending.metadata = pending.metadata.saturating_add(size);
                    if pending.metadata > limits.max_metadata {
                        let kind = ScanErrorKind::MetadataTooLarge { size: pending.metadata, limit: limits.max_metadata };
                        return Some(Err(ScanError { offset: at, kind }));
                    }
                    let data = match self.bytes(at.saturating_add(BLOCK_U64), size, "extension header data", at) {
                        Ok(d) => d,
                        Err(e) => return Some(Err(e)),
                    };
                    pending.start.get_or_insert(at);
                    match h.typeflag() {
                        b'x' | b'X' => {
                            // Validate now, so the error names this header's offset.
                            if let Err(e) = PaxOverrides::parse(data) {
                                return Some(Err(ScanError { offset: at, kind: ScanErrorKind::Pax(e) }));
                            }
                            pending.pax = Some(data);
                        }
                        b'L' => pending.long_name = Some(trim_nuls(data)),
                        _ => pending.long_link = Some(trim_nuls(data)),
                    }
                    // The data was read whole: this is within the bytes plus padding.
                    self.pos = at.saturating_add(BLOCK_U64).saturating_add(round_up(size).expect("size fits the file"));
                }
                b'g' => {
                    if size > limits.max_metadata {
                        let kind = ScanErrorKind::MetadataTooLarge { size, limit: limits.max_metadata };
                        return Some(Err(ScanError { offset: at, kind }));
                    }
                    let data = match self.bytes(at.saturating_add(BLOCK_U64), size, "global header data", at) {
                        Ok(d) => d,
                        Err(e) => return Some(Err(e)),
                    };
                    self.global_ranges.push((at.saturating_add(BLOCK_U64), size));
                    match PaxOverrides::parse(data) {
                        Ok(g) => {
                            self.globals.apply_global(&g);
                            self.has_globals = true;
                            self.global_attributes |= !g.is_empty();
                        }
                        Err(e) => return Some(Err(ScanError { offset: at, kind: ScanErrorKind::Pax(e) })),
                    }
                    // The data was read whole: this is within the bytes plus padding.
                    self.pos = at.saturating_add(BLOCK_U64).saturating_add(round_up(size).expect("size fits the file"));
                }
                _ => return Some(self.member(at, h, header_sum, size, pending)),
            }
        }
    }

    /// Handles a zero block at `at`: returns where to go on, or ends the scan.
    ///
    /// Offsets here are within the bytes (a slice: under `isize::MAX`), so adding a few blocks
    /// to them cannot overflow a `u64`.
    #[allow(clippy::arithmetic_side_effects)]
    fn zero_block(&mut self, at: u64) -> Result<Option<u64>, ScanError> {
        let next = at + BLOCK_U64;
        let second_zero = self.data.get(next as usize..(next as usize + BLOCK)).is_some_and(is_zero_block);
        if self.opts.lenient {
            // Skip every zero block; end only if nothing but zeros follows.
            let mut p = at;
            while let Some(b) = self.data.get(p as usize..p as usize + BLOCK) {
                if !is_zero_block(b) {
                    break;
                }
                p += BLOCK_U64;
            }
            if self.more && p + 2 * BLOCK_U64 > self.len() {
                return Err(self.need_more(at));
            }
            if p + BLOCK_U64 > self.len() {
                self.finish(at, if second_zero { Stop::EndMarker } else { Stop::Eof });
                return Ok(None);
            }
            self.warning = Some(Warning::SkippedZeroBlocks { offset: at, count: (p - at) / BLOCK_U64 });
            self.skipped_zeros_at.get_or_insert(at);
            return Ok(Some(p));
        }
        if second_zero {
            self.finish(at, Stop::EndMarker);
            return Ok(None);
        }
        // (A stream driver decides this warning itself, once it has read the rest.)
        let rest = self.data.get(next as usize..).unwrap_or_default();
        if !rest.iter().all(|&b| b == 0) {
            self.warning = Some(Warning::LoneZeroBlock { offset: at });
        }
        self.finish(at, Stop::LoneZeroBlock);
        Ok(None)
    }

    fn member(&mut self, at: u64, h: HeaderView<'a>, header_sum: u32, header_size: u64, pending: Pending<'a>) -> Result<Entry<'a>, ScanError> {
        let limits = self.opts.limits;
        let err = |offset, kind| ScanError { offset, kind };
        let local = match pending.pax {
            Some(d) => PaxOverrides::parse(d).map_err(|e| err(at, ScanErrorKind::Pax(e)))?,
            None => PaxOverrides::default(),
        };
        let pax = local.over(&self.globals);
        let f = MainFields::decode(h, &pax).map_err(|e| err(at, ScanErrorKind::Field(e)))?;
        let typeflag = f.typeflag;
        let mut data_offset = at.saturating_add(BLOCK_U64);
        let mut stored = pax.size.unwrap_or(header_size);
        let mut size = stored;
        let mut sparse = None;

        if typeflag == b'S' && h.format() == Format::Gnu {
            // Old-GNU sparse: extension blocks follow while the previous block says so.
            let mut extended = h.gnu_is_extended();
            let ext_start = data_offset;
            let max_blocks = (limits.max_sparse_entries / 21).saturating_add(1);
            let mut blocks = 0usize;
            while extended {
                blocks = blocks.saturating_add(1);
                if blocks > max_blocks {
                    return Err(err(data_offset, ScanErrorKind::Sparse(SparseError::TooManyEntries(limits.max_sparse_entries))));
                }
                let b = self.block(data_offset)?;
                extended = b[504] != 0;
                // The block was read: data_offset + 512 is within the bytes.
                data_offset = data_offset.saturating_add(BLOCK_U64);
            }
            size = h.gnu_real_size().map_err(|e| err(at, ScanErrorKind::Field(e)))?;
            sparse = Some(SparseSource::Gnu { ext: &self.data[ext_start as usize..data_offset as usize] });
        } else if let Some(kind) = local.sparse() {
            size = pax.sparse_real_size.unwrap_or(stored);
            sparse = Some(match kind {
                PaxSparse::V00 => SparseSource::Pax00 { pax: pending.pax.unwrap_or_default() },
                PaxSparse::V01 => SparseSource::Pax01 { map: local.sparse_map.unwrap_or_default() },
                PaxSparse::V10 => {
                    let avail = self.bytes(data_offset, stored.min(self.len().saturating_sub(data_offset)), "", at)?;
                    let (_, map_len) = match sparse::decode_pax_10(avail, limits.max_sparse_entries) {
                        Ok(m) => m,
                        // The map may go on past the window.
                        Err(SparseError::Malformed(_)) if self.more && (avail.len() as u64) < stored => return Err(self.need_more(at)),
                        Err(e) => return Err(err(data_offset, ScanErrorKind::Sparse(e))),
                    };
                    if map_len > stored.max(BLOCK_U64) {
                        return Err(err(data_offset, ScanErrorKind::Sparse(SparseError::Malformed("map is larger than the member"))));
                    }
                    // The map's blocks may run past the end of the bytes.
                    let map = self.bytes(data_offset, map_len, "sparse map", at)?;
                    // The map was read: data_offset + map_len is within the bytes.
                    data_offset = data_offset.saturating_add(map_len);
                    stored = stored.saturating_sub(map_len);
                    SparseSource::Pax10 { map }
                }
            });
        }

        if is_header_only(typeflag) {
            stored = 0;
        }
        // The member's end must be a representable offset, even in a stream whose length is
        // not known yet (a pax size near 2^64 would otherwise wrap around).
        let next = round_up(stored).and_then(|span| data_offset.checked_add(span));
        let data_end = data_offset.checked_add(stored).filter(|&e| e <= self.len() || self.more);
        let (Some(next), Some(data_end)) = (next, data_end) else {
            let missing = data_offset.saturating_add(stored).saturating_sub(self.len());
            return Err(err(at, ScanErrorKind::PastEof { what: "member data", size: stored, missing }));
        };
        let entry = Entry {
            position: pending.start.unwrap_or(at),
            header_offset: at,
            data_offset,
            stored_size: stored,
            size,
            header: h,
            header_sum,
            typeflag,
            mode: f.mode,
            uid: f.uid,
            gid: f.gid,
            mtime: f.mtime,
            device: f.device,
            pax,
            long_name: pending.long_name,
            long_link: pending.long_link,
            sparse,
            has_globals: self.global_attributes,
        };
        let path_len = entry.path_len().max(entry.link().len());
        if path_len > limits.max_path {
            return Err(err(at, ScanErrorKind::PathTooLong { len: path_len, limit: limits.max_path }));
        }
        // Padding after the last member's data may be cut off; the next step sees the end.
        self.pos = if self.more { next } else { next.min(self.len().max(data_end)) };
        self.members = self.members.saturating_add(1);
        Ok(entry)
    }
}

impl<'a> Iterator for Scanner<'a> {
    type Item = Result<Entry<'a>, ScanError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.end.is_some() || self.failed {
            return None;
        }
        let r = self.step();
        if matches!(r, Some(Err(_))) {
            self.failed = true;
        }
        r
    }
}

/// The numeric fields of a main header, with pax overrides applied.
struct MainFields {
    typeflag: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: i64,
    device: (u64, u64),
}

impl MainFields {
    fn decode(h: HeaderView<'_>, pax: &PaxOverrides<'_>) -> Result<MainFields, FieldError> {
        let mut typeflag = h.typeflag();
        if typeflag == 0 && h.name().ends_with(b"/") {
            typeflag = b'5';
        }
        Ok(MainFields {
            typeflag,
            mode: h.mode()?,
            uid: pax.uid.map_or_else(|| h.uid(), Ok)?,
            gid: pax.gid.map_or_else(|| h.gid(), Ok)?,
            mtime: pax.mtime.map_or_else(|| h.mtime(), Ok)?,
            device: if matches!(typeflag, b'3' | b'4') { h.device()? } else { (0, 0) },
        })
    }
}

impl<'a> Entry<'a> {
    /// Builds the entry of a *simple* member (see [`Entry::is_simple`]) from its main header alone,
    /// as a `.tarfs` index entry holds it: `position` is the byte offset of that header. The
    /// header's checksum field is not looked at.
    pub fn from_simple_header(h: HeaderView<'a>, position: u64) -> Result<Entry<'a>, ScanError> {
        let pax = PaxOverrides::default();
        let err = |e| ScanError { offset: position, kind: ScanErrorKind::Field(e) };
        let f = MainFields::decode(h, &pax).map_err(err)?;
        let size = h.size().map_err(err)?;
        Ok(Entry {
            position,
            header_offset: position,
            data_offset: position.saturating_add(BLOCK_U64),
            stored_size: if is_header_only(f.typeflag) { 0 } else { size },
            size,
            header: h,
            header_sum: unsigned_checksum(h.as_bytes()),
            typeflag: f.typeflag,
            mode: f.mode,
            uid: f.uid,
            gid: f.gid,
            mtime: f.mtime,
            device: f.device,
            pax,
            long_name: None,
            long_link: None,
            sparse: None,
            has_globals: false,
        })
    }
}

impl<'a> Entry<'a> {
    /// The member's extension record (see [`crate::format::ext`]): what its `.tarfs` entry
    /// cannot hold. `None` when a block count does not fit 32 bits.
    pub fn ext_meta(&self) -> Option<ext::Meta<'a>> {
        let blocks = |from: u64, to: u64| u32::try_from(to.checked_sub(from)? / BLOCK_U64).ok();
        let path = match (self.pax.sparse_name.filter(|_| self.sparse.is_some()).or(self.pax.path), self.long_name) {
            (Some(p), _) | (None, Some(p)) => Some(p),
            (None, None) => None,
        };
        let mut flags = 0;
        if self.sparse.is_some() {
            flags |= ext::SPARSE;
        }
        if self.pax.xattrs {
            flags |= ext::XATTRS;
        }
        if self.has_globals {
            flags |= ext::GLOBALS;
        }
        Some(ext::Meta {
            size: self.size,
            stored_size: self.stored_size,
            mtime: self.mtime,
            mtime_nsec: self.pax.mtime_nsec.unwrap_or(0),
            uid: self.uid,
            gid: self.gid,
            main_blocks: blocks(self.position, self.header_offset)?,
            chain_blocks: blocks(self.position, self.data_offset)?,
            flags,
            path,
            link: self.pax.linkpath.or(self.long_link),
            uname: self.pax.uname,
            gname: self.pax.gname,
        })
    }

    /// The entry a `.tarfs` index with extension data describes: the main header `h` (the
    /// entry's block), the chain's `position` in bytes, and the member's extension record. It
    /// equals the scanner's entry in every field a listing shows; the header chain is not read,
    /// so nothing of the sparse map is known but that there is one.
    pub fn from_index(h: HeaderView<'a>, position: u64, m: &ext::Meta<'a>) -> Result<Entry<'a>, ScanError> {
        let pax = PaxOverrides {
            path: m.path,
            linkpath: m.link,
            uname: m.uname,
            gname: m.gname,
            uid: Some(m.uid),
            gid: Some(m.gid),
            mtime: Some(m.mtime),
            mtime_nsec: Some(m.mtime_nsec),
            xattrs: m.flags & ext::XATTRS != 0,
            ..PaxOverrides::default()
        };
        let err = |e| ScanError { offset: position, kind: ScanErrorKind::Field(e) };
        let f = MainFields::decode(h, &pax).map_err(err)?;
        let at = |blocks: u32| position.checked_add(u64::from(blocks).saturating_mul(BLOCK_U64)).ok_or(ScanError { offset: position, kind: ScanErrorKind::PastEof { what: "an indexed header chain", size: u64::from(blocks), missing: 0 } });
        Ok(Entry {
            position,
            header_offset: at(m.main_blocks)?,
            data_offset: at(m.chain_blocks)?,
            stored_size: m.stored_size,
            size: m.size,
            header: h,
            header_sum: unsigned_checksum(h.as_bytes()),
            typeflag: f.typeflag,
            mode: f.mode,
            uid: m.uid,
            gid: m.gid,
            mtime: m.mtime,
            device: f.device,
            pax,
            long_name: None,
            long_link: None,
            sparse: None,
            has_globals: m.flags & ext::GLOBALS != 0,
        })
    }
}

/// GNU long names and links end at their first NUL.
fn trim_nuls(d: &[u8]) -> &[u8] {
    let end = d.iter().position(|&b| b == 0).unwrap_or(d.len());
    &d[..end]
}
