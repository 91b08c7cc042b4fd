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
    /// The error the scan stopped at.
    error: Option<ScanError>,
    /// Over a window with more to come: the window length the scan needs to go on.
    need: Option<u64>,
    /// In lenient mode: where the zero blocks just skipped started.
    skipped_zeros_at: Option<u64>,
    /// Stream scanning: more bytes may follow `data`, so running out of them is a need for more
    /// ([`Step::NeedData`]), and member data is not required to be in `data`.
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
    /// running out of bytes is [`Step::NeedData`] (drive such a scanner with [`Scanner::step`]),
    /// and member data may lie past the window (the driver skips it by reading).
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
            error: None,
            need: None,
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

    /// The block at `at`: a need for more bytes when the window may go on, a truncated header
    /// otherwise.
    #[inline]
    fn block(&self, at: u64) -> Result<&'a [u8; BLOCK], Stall> {
        let remaining = self.len().saturating_sub(at);
        if remaining < BLOCK_U64 && self.more {
            return Err(Stall::Need(at.saturating_add(BLOCK_U64)));
        }
        if remaining < BLOCK_U64 {
            return Err(Stall::Bad(ScanError { offset: at, kind: ScanErrorKind::TruncatedHeader(remaining) }));
        }
        let at = at as usize;
        Ok(self.data[at..at.saturating_add(BLOCK)].try_into().expect("one block"))
    }

    /// `len` bytes at `at`, or a past-EOF error naming `what`.
    fn bytes(&self, at: u64, len: u64, what: &'static str, err_at: u64) -> Result<&'a [u8], Stall> {
        let end = at.checked_add(len).filter(|&e| e <= self.len());
        match end {
            Some(end) => Ok(&self.data[at as usize..end as usize]),
            None if self.more => Err(Stall::Need(at.saturating_add(len))),
            None => Err(Stall::Bad(ScanError {
                offset: err_at,
                kind: ScanErrorKind::PastEof { what, size: len, missing: at.saturating_add(len).saturating_sub(self.len()) },
            })),
        }
    }

    /// Ends the scan at `end_offset`.
    fn finish(&mut self, end_offset: u64, stop: Stop) {
        self.end = Some(ScanEnd {
            end_offset,
            stop,
            members: self.members,
            warning: self.warning,
            has_globals: self.has_globals,
            global_attributes: self.global_attributes,
        });
    }

    /// Scans on: the next member, the end of the archive, or a need for more bytes (only over a
    /// window with more to come, see [`Scanner::window`]). A scanner that needs more bytes goes
    /// on asking for them: scan on with a new scanner over a longer window from the same start.
    /// After an error or the end, the same again.
    pub fn step(&mut self) -> Result<Step<'a>, ScanError> {
        if let Some(min_bytes) = self.need {
            return Ok(Step::NeedData { min_bytes });
        }
        if let Some(end) = self.end {
            return Ok(Step::End(end));
        }
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        match self.advance() {
            Ok(Some(e)) => Ok(Step::Entry(e)),
            Ok(None) => Ok(Step::End(self.end.expect("the scan ended"))),
            Err(Stall::Need(min_bytes)) => {
                self.need = Some(min_bytes);
                Ok(Step::NeedData { min_bytes })
            }
            Err(Stall::Bad(e)) => {
                self.error = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Scans on from `pos` to the next member (`None` at the end of the archive).
    #[inline]
    fn advance(&mut self) -> Result<Option<Entry<'a>>, Stall> {
        let mut pending = Pending::default();
        loop {
            let at = self.pos;
            let raw = match self.boundary(at, pending.start.is_some())? {
                Block::Header(raw) => raw,
                Block::Skipped => continue,
                Block::End => return Ok(None),
            };
            let h = HeaderView::new(raw);
            // Parsed before the checksum is checked, to prefetch the next header; a bad size
            // is still reported after a bad checksum.
            let size = h.size();
            if let Some(next) = size.as_ref().ok().and_then(|&s| round_up(s)).and_then(|span| at.checked_add(BLOCK_U64)?.checked_add(span)) {
                prefetch_block(self.data, next);
            }
            let Some(header_sum) = h.verified_sum() else {
                if let Some(zeros) = self.skipped_zeros_at.filter(|_| pending.start.is_none()) {
                    self.warning = Some(Warning::TrailingData { zeros, offset: at });
                    self.finish(zeros, Stop::EndMarker);
                    return Ok(None);
                }
                return Err(Stall::Bad(ScanError { offset: at, kind: ScanErrorKind::BadChecksum }));
            };
            self.skipped_zeros_at = None;
            let size = size.map_err(|e| ScanError { offset: at, kind: ScanErrorKind::Field(e) })?;
            match h.typeflag() {
                b'x' | b'X' | b'L' | b'K' => self.extension(at, h, size, &mut pending)?,
                b'g' => self.global(at, size)?,
                _ => return self.member(at, h, header_sum, size, pending).map(Some),
            }
        }
    }

    /// What is at `at`, where a header should be: a header's block, zero blocks (skipped, or
    /// ending the archive), or the end of the bytes. `in_chain`: extension headers came before.
    #[inline]
    fn boundary(&mut self, at: u64, in_chain: bool) -> Result<Block<'a>, Stall> {
        if self.more && self.len() < at.saturating_add(2 * BLOCK_U64) {
            // Enough to tell a header, an end marker and a lone zero block apart.
            return Err(Stall::Need(at.saturating_add(2 * BLOCK_U64)));
        }
        let orphan = || Stall::Bad(ScanError { offset: at, kind: ScanErrorKind::OrphanExtension });
        if at >= self.len() {
            if in_chain {
                return Err(orphan());
            }
            self.finish(at, Stop::Eof);
            return Ok(Block::End);
        }
        if self.len().saturating_sub(at) < BLOCK_U64 && is_zero_block(&self.data[at as usize..]) && !in_chain {
            // A short all-zero tail is padding, not a header.
            self.finish(at, Stop::Eof);
            return Ok(Block::End);
        }
        let raw = self.block(at)?;
        if !is_zero_block(raw) {
            return Ok(Block::Header(raw));
        }
        if in_chain {
            return Err(orphan());
        }
        match self.zero_block(at)? {
            Some(next) => {
                self.pos = next;
                Ok(Block::Skipped)
            }
            None => Ok(Block::End),
        }
    }

    /// Takes the extension header (`x`, `X`, `L` or `K`) at `at`, with data of `size` bytes, into
    /// the chain `pending`.
    fn extension(&mut self, at: u64, h: HeaderView<'a>, size: u64, pending: &mut Pending<'a>) -> Result<(), Stall> {
        let limits = self.opts.limits;
        let bad = |kind| Stall::Bad(ScanError { offset: at, kind });
        pending.count = pending.count.saturating_add(1);
        if pending.count > limits.max_chain {
            return Err(bad(ScanErrorKind::ChainTooLong(limits.max_chain)));
        }
        pending.metadata = pending.metadata.saturating_add(size);
        if pending.metadata > limits.max_metadata {
            return Err(bad(ScanErrorKind::MetadataTooLarge { size: pending.metadata, limit: limits.max_metadata }));
        }
        let data = self.bytes(at.saturating_add(BLOCK_U64), size, "extension header data", at)?;
        pending.start.get_or_insert(at);
        match h.typeflag() {
            b'x' | b'X' => {
                // Validate now, so the error names this header's offset.
                if let Err(e) = PaxOverrides::parse(data) {
                    return Err(bad(ScanErrorKind::Pax(e)));
                }
                pending.pax = Some(data);
            }
            b'L' => pending.long_name = Some(trim_nuls(data)),
            _ => pending.long_link = Some(trim_nuls(data)),
        }
        // The data was read whole: this is within the bytes plus padding.
        self.pos = at.saturating_add(BLOCK_U64).saturating_add(round_up(size).expect("size fits the file"));
        Ok(())
    }

    /// Applies the pax `g` header at `at`, with data of `size` bytes.
    fn global(&mut self, at: u64, size: u64) -> Result<(), Stall> {
        let limit = self.opts.limits.max_metadata;
        if size > limit {
            return Err(Stall::Bad(ScanError { offset: at, kind: ScanErrorKind::MetadataTooLarge { size, limit } }));
        }
        let data = self.bytes(at.saturating_add(BLOCK_U64), size, "global header data", at)?;
        self.global_ranges.push((at.saturating_add(BLOCK_U64), size));
        let g = PaxOverrides::parse(data).map_err(|e| ScanError { offset: at, kind: ScanErrorKind::Pax(e) })?;
        self.globals.apply_global(&g);
        self.has_globals = true;
        self.global_attributes |= !g.is_empty();
        // The data was read whole: this is within the bytes plus padding.
        self.pos = at.saturating_add(BLOCK_U64).saturating_add(round_up(size).expect("size fits the file"));
        Ok(())
    }

    /// Handles a zero block at `at`: returns where to go on, or ends the scan.
    ///
    /// Offsets here are within the bytes (a slice: under `isize::MAX`), so adding a few blocks
    /// to them cannot overflow a `u64`.
    #[allow(clippy::arithmetic_side_effects)]
    fn zero_block(&mut self, at: u64) -> Result<Option<u64>, Stall> {
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
                return Err(Stall::Need(p + 2 * BLOCK_U64));
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

    /// The member whose main header `h` is at `at`, after the extension headers `pending`.
    fn member(&mut self, at: u64, h: HeaderView<'a>, header_sum: u32, header_size: u64, pending: Pending<'a>) -> Result<Entry<'a>, Stall> {
        let limits = self.opts.limits;
        let err = |offset, kind| Stall::Bad(ScanError { offset, kind });
        let local = match pending.pax {
            Some(d) => PaxOverrides::parse(d).map_err(|e| err(at, ScanErrorKind::Pax(e)))?,
            None => PaxOverrides::default(),
        };
        let pax = local.over(&self.globals);
        let f = MainFields::decode(h, &pax).map_err(|e| err(at, ScanErrorKind::Field(e)))?;
        let typeflag = f.typeflag;
        let mut layout = Layout { data_offset: at.saturating_add(BLOCK_U64), stored: pax.size.unwrap_or(header_size), size: 0, sparse: None };
        layout.size = layout.stored;
        if typeflag == b'S' && h.format() == Format::Gnu {
            self.gnu_sparse(at, h, &mut layout)?;
        } else if let Some(kind) = local.sparse() {
            layout.size = pax.sparse_real_size.unwrap_or(layout.stored);
            layout.sparse = Some(match kind {
                PaxSparse::V00 => SparseSource::Pax00 { pax: pending.pax.unwrap_or_default() },
                PaxSparse::V01 => SparseSource::Pax01 { map: local.sparse_map.unwrap_or_default() },
                PaxSparse::V10 => self.pax_10_map(at, &mut layout)?,
            });
        }
        let Layout { data_offset, mut stored, size, sparse } = layout;
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

    /// Old-GNU sparse (main header `h` at `at`): the extension blocks that follow while the
    /// previous block says so, and the real size.
    fn gnu_sparse(&self, at: u64, h: HeaderView<'a>, layout: &mut Layout<'a>) -> Result<(), Stall> {
        let limits = self.opts.limits;
        let mut extended = h.gnu_is_extended();
        let ext_start = layout.data_offset;
        let max_blocks = (limits.max_sparse_entries / 21).saturating_add(1);
        let mut blocks = 0usize;
        while extended {
            blocks = blocks.saturating_add(1);
            if blocks > max_blocks {
                let kind = ScanErrorKind::Sparse(SparseError::TooManyEntries(limits.max_sparse_entries));
                return Err(Stall::Bad(ScanError { offset: layout.data_offset, kind }));
            }
            let b = self.block(layout.data_offset)?;
            extended = b[504] != 0;
            // The block was read: data_offset + 512 is within the bytes.
            layout.data_offset = layout.data_offset.saturating_add(BLOCK_U64);
        }
        layout.size = h.gnu_real_size().map_err(|e| ScanError { offset: at, kind: ScanErrorKind::Field(e) })?;
        layout.sparse = Some(SparseSource::Gnu { ext: &self.data[ext_start as usize..layout.data_offset as usize] });
        Ok(())
    }

    /// Pax sparse 1.0 (main header at `at`): the map at the start of the stored data, which the
    /// data then starts after.
    fn pax_10_map(&self, at: u64, layout: &mut Layout<'a>) -> Result<SparseSource<'a>, Stall> {
        let (data_offset, stored) = (layout.data_offset, layout.stored);
        let bad = |kind| Stall::Bad(ScanError { offset: data_offset, kind });
        let avail = self.bytes(data_offset, stored.min(self.len().saturating_sub(data_offset)), "", at)?;
        let (_, map_len) = match sparse::decode_pax_10(avail, self.opts.limits.max_sparse_entries) {
            Ok(m) => m,
            // The map may go on past the window: another block of it, at least.
            Err(SparseError::Malformed(_)) if self.more && (avail.len() as u64) < stored => {
                return Err(Stall::Need(self.len().saturating_add(BLOCK_U64).min(data_offset.saturating_add(stored))));
            }
            Err(e) => return Err(bad(ScanErrorKind::Sparse(e))),
        };
        if map_len > stored.max(BLOCK_U64) {
            return Err(bad(ScanErrorKind::Sparse(SparseError::Malformed("map is larger than the member"))));
        }
        // The map's blocks may run past the end of the bytes.
        let map = self.bytes(data_offset, map_len, "sparse map", at)?;
        // The map was read: data_offset + map_len is within the bytes.
        layout.data_offset = data_offset.saturating_add(map_len);
        layout.stored = stored.saturating_sub(map_len);
        Ok(SparseSource::Pax10 { map })
    }
}

/// What one step of a [`Scanner`] found.
// The entry by value, as the iterator gives it: no allocation per member.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    /// The next member.
    Entry(Entry<'a>),
    /// The window ends before the scanner can decide (only over a window with more to come):
    /// it needs at least `min_bytes` bytes from the start of its bytes. Scan on from the same
    /// start with a new scanner over a window that long or longer.
    NeedData {
        /// The least window length that lets the scan get further.
        min_bytes: u64,
    },
    /// The end of the archive.
    End(ScanEnd),
}

/// Why a scan cannot go on: it needs more bytes (this window length, at least), or the archive is
/// unreadable.
enum Stall {
    Need(u64),
    Bad(ScanError),
}

impl From<ScanError> for Stall {
    fn from(e: ScanError) -> Stall {
        Stall::Bad(e)
    }
}

/// What is where a header should be (see [`Scanner::boundary`]).
enum Block<'a> {
    Header(&'a [u8; BLOCK]),
    /// Zero blocks, skipped (lenient): the scan goes on at `pos`.
    Skipped,
    /// The archive ended.
    End,
}

/// Where a member's data is, and what size it has.
struct Layout<'a> {
    data_offset: u64,
    stored: u64,
    size: u64,
    sparse: Option<SparseSource<'a>>,
}

/// Over a whole archive: each member, then `None` at the end (see [`Scanner::end`]) or after an
/// error. Over a window with more to come, use [`Scanner::step`]: here a need for more bytes is
/// read as the end of the bytes, an error.
impl<'a> Iterator for Scanner<'a> {
    type Item = Result<Entry<'a>, ScanError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.end.is_some() || self.error.is_some() || self.need.is_some() {
            return None;
        }
        match self.advance() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => None,
            Err(Stall::Bad(e)) => {
                self.error = Some(e.clone());
                Some(Err(e))
            }
            Err(Stall::Need(min_bytes)) => {
                self.need = Some(min_bytes);
                let missing = min_bytes.saturating_sub(self.len());
                Some(Err(ScanError { offset: self.pos, kind: ScanErrorKind::PastEof { what: "the bytes the scan needs", size: min_bytes, missing } }))
            }
        }
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

/// Asks the CPU to bring the block at `at` of `data` into its cache, if it lies within `data`:
/// the next header, while this one is checked and decoded. A header's first touch is a miss
/// (its page was last read by the disk, or by another core), and a scan touches nothing else of
/// most members; fetched ahead, the miss overlaps the work on the header before it.
#[inline(always)]
fn prefetch_block(data: &[u8], at: u64) {
    #[cfg(target_arch = "x86_64")]
    if let Some(block) = usize::try_from(at).ok().and_then(|a| data.get(a..a.checked_add(BLOCK)?)) {
        for line in block.chunks(64) {
            // SAFETY: `_mm_prefetch` is a hint: it reads nothing into the program, cannot fault
            // and has no effect on memory; the address lies within `data` besides. SSE, which
            // it needs, is part of every x86_64 CPU.
            unsafe { core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(line.as_ptr().cast()) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, at);
}
