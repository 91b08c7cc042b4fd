//! The member digests of a `.tarfs` index (issue #36): pure encoding and decoding of the one
//! *digests part* that both index versions carry (v1 in its extension data, v2 in its body;
//! `docs/FORMAT.md`, "Member digests", is the specification).
//!
//! # Layout (all integers little-endian)
//!
//! | bytes | content |
//! |---|---|
//! | `[0, 4)` | `TFSD` |
//! | `[4, 8)` | `u32` version, 1 |
//! | `[8, 16)` | `u64` `n`, the number of records (one per index entry, in entry order) |
//! | `[16, 24)` | `u64` chunk size, [`CHUNK`] (4 MiB) |
//! | `[24, 32)` | `u64` `c`, the number of chunk digests |
//! | `[32, 32 + 48n)` | records: SHA-256 of the member's logical content (32 bytes), the position of its header chain `u64` (as the entry's), the number of its first chunk digest `u64` |
//! | then `32c` bytes | chunk digests: SHA-256 of each [`CHUNK`] of logical content, for members over [`CHUNK`] bytes, in entry order |
//!
//! A member of logical size `s > CHUNK` has `⌈s / CHUNK⌉` chunk digests, from its record's
//! first to the next record's first (or `c`); a member of at most [`CHUNK`] bytes has none.
#![deny(clippy::arithmetic_side_effects)]

/// The logical bytes one chunk digest covers.
pub const CHUNK: u64 = 4 << 20;
/// A record's size in bytes.
pub const RECORD: usize = 48;
/// The part's fixed head.
pub const HEAD: usize = 32;
const TAG: &[u8; 4] = b"TFSD";
const VERSION: u32 = 1;

/// A SHA-256 digest.
pub type Sha256 = [u8; 32];

/// Why a digests part does not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestsError {
    /// No `TFSD` version 1 head, or another chunk size.
    #[error("the member digests have no TFSD version 1 head")]
    Head,
    /// Sizes disagree with the head, or with the index.
    #[error("the member digests are out of shape: {0}")]
    Shape(&'static str),
    /// The v1 extension that holds them does not open, or their checksum does not hold.
    #[error("the member digests are damaged: {0}")]
    Ext(#[from] super::ext::ExtError),
}

/// Where the member digests part of the index whose data (header block first) is `data` lies
/// in it, if it has one (checked: the chunks that hold it, or its own digest): in the extension
/// data of a v1.0 index, in the body of a v2.0 one.
pub fn of_index(data: &[u8]) -> Result<Option<Where>, super::tarfs::IndexError> {
    use super::header::BLOCK;
    let major = super::tarfs::version_of(data)?.0;
    let header: &[u8; BLOCK] = data.get(..BLOCK).and_then(|h| h.try_into().ok()).ok_or(super::tarfs::IndexError::NoMagic)?;
    let Some(info) = super::tarfs::decode_header_as(header, major)?.info else { return Ok(None) };
    if major == 2 {
        let stored = super::v2::body_of(data, &info).ok_or(super::v2::V2Error::Part("body"))?;
        // A deflated body's part is in the plain body, made in memory.
        if let Some(image) = super::v2::image(stored)? {
            let parts = super::v2::Parts::open(&image, header)?;
            parts.on(&image).digests().transpose()?;
            return Ok(parts.digests_range().and_then(|r| image.get(r)).map(|b| Where::Inflated(b.to_vec())));
        }
        let parts = super::v2::Parts::open(stored, header)?;
        // Their chunks checked through the view; the bytes borrowed from the body.
        parts.on(stored).digests().transpose()?;
        return Ok(parts.digests_range().and_then(|r| Some(r.start.checked_add(BLOCK)?..r.end.checked_add(BLOCK)?)).map(Where::At));
    }
    if info.flags & super::tarfs::FLAG_EXT == 0 {
        return Ok(None);
    }
    let at = info.entries.checked_add(2).and_then(|b| b.checked_mul(BLOCK as u64)).and_then(|a| usize::try_from(a).ok());
    let end = at.zip(usize::try_from(info.ext_len).ok()).and_then(|(a, l)| a.checked_add(l));
    let ext_data = at.zip(end).and_then(|(a, e)| data.get(a..e)).ok_or(DigestsError::Shape("the extension lies outside the index"))?;
    let ext = super::ext::Ext::open(ext_data, header, info.entries).map_err(DigestsError::from)?;
    ext.member_digests().transpose().map_err(DigestsError::from)?;
    let at = at.unwrap_or(0);
    Ok(ext.member_digests_range().and_then(|r| Some(r.start.checked_add(at)?..r.end.checked_add(at)?)).map(Where::At))
}

/// Where an index's member digests part is: a range of its bytes, or (a deflated v2 body's)
/// inflated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Where {
    /// These bytes of the index.
    At(std::ops::Range<usize>),
    /// The part, out of a deflated body.
    Inflated(Vec<u8>),
}

impl Where {
    /// The part's bytes, given the index's bytes `data`.
    pub fn bytes<'d>(&'d self, data: &'d [u8]) -> Option<&'d [u8]> {
        match self {
            Where::At(r) => data.get(r.clone()),
            Where::Inflated(b) => Some(b),
        }
    }
}

/// The digests of one member, as computed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberDigest {
    /// SHA-256 of the whole logical content.
    pub whole: Sha256,
    /// SHA-256 of each [`CHUNK`] of it, when it is over [`CHUNK`] bytes; else empty.
    pub chunks: Vec<Sha256>,
}

/// The number of chunk digests of a member of logical size `size`.
pub fn chunks_for(size: u64) -> u64 {
    if size > CHUNK {
        size.div_ceil(CHUNK)
    } else {
        0
    }
}

/// Builds a digests part, one member at a time, in entry order.
#[derive(Debug, Clone, Default)]
pub struct Table {
    records: Vec<u8>,
    chunks: Vec<u8>,
    n: u64,
    c: u64,
}

impl Table {
    /// Adds the member at `position` with digests `d`.
    pub fn push(&mut self, position: u64, d: &MemberDigest) {
        self.records.extend_from_slice(&d.whole);
        self.records.extend_from_slice(&position.to_le_bytes());
        self.records.extend_from_slice(&self.c.to_le_bytes());
        for c in &d.chunks {
            self.chunks.extend_from_slice(c);
        }
        self.n = self.n.saturating_add(1);
        self.c = self.c.saturating_add(d.chunks.len() as u64);
    }

    /// Members so far.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The encoded part.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEAD.saturating_add(self.records.len()).saturating_add(self.chunks.len()));
        out.extend_from_slice(TAG);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&self.n.to_le_bytes());
        out.extend_from_slice(&CHUNK.to_le_bytes());
        out.extend_from_slice(&self.c.to_le_bytes());
        out.extend_from_slice(&self.records);
        out.extend_from_slice(&self.chunks);
        out
    }

    /// The table of an encoded part (to carry an old index's digests into a new one).
    pub fn from_view(v: &View<'_>) -> Table {
        let records_end = HEAD.saturating_add(v.n.saturating_mul(RECORD));
        Table { records: v.data[HEAD..records_end].to_vec(), chunks: v.data[records_end..].to_vec(), n: v.n as u64, c: v.c as u64 }
    }
}

/// An encoded digests part, its shape checked.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    data: &'a [u8],
    n: usize,
    c: usize,
}

/// One member's digests, as an index holds them.
#[derive(Debug, Clone, Copy)]
pub struct Found<'a> {
    /// Its entry number.
    pub entry: usize,
    /// SHA-256 of the whole logical content.
    pub whole: &'a [u8],
    /// Its chunk digests, 32 bytes each.
    pub chunks: &'a [u8],
}

impl Found<'_> {
    /// Chunk digest `k`.
    pub fn chunk(&self, k: u64) -> Option<&[u8]> {
        let at = usize::try_from(k).ok()?.checked_mul(32)?;
        self.chunks.get(at..at.checked_add(32)?)
    }

    /// The number of chunk digests.
    pub fn chunk_count(&self) -> u64 {
        (self.chunks.len() / 32) as u64
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at.saturating_add(8)].try_into().expect("8 bytes"))
}

impl<'a> View<'a> {
    /// Opens the part `data` of an index of `entries` entries.
    pub fn open(data: &'a [u8], entries: u64) -> Result<View<'a>, DigestsError> {
        let head = data.get(..HEAD).ok_or(DigestsError::Head)?;
        if &head[..4] != TAG || u32::from_le_bytes(head[4..8].try_into().expect("4 bytes")) != VERSION || u64_at(head, 16) != CHUNK {
            return Err(DigestsError::Head);
        }
        if u64_at(head, 8) != entries {
            return Err(DigestsError::Shape("another number of entries than the index"));
        }
        let n = usize::try_from(entries).map_err(|_| DigestsError::Shape("too many entries"))?;
        let c = usize::try_from(u64_at(head, 24)).map_err(|_| DigestsError::Shape("too many chunks"))?;
        let len = n.checked_mul(RECORD).and_then(|r| c.checked_mul(32).and_then(|k| r.checked_add(k))).and_then(|b| b.checked_add(HEAD));
        if len != Some(data.len()) {
            return Err(DigestsError::Shape("its length disagrees with its head"));
        }
        Ok(View { data, n, c })
    }

    /// Records.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The record of entry `i`: (whole digest, position, first chunk).
    fn record(&self, i: usize) -> (&'a [u8], u64, u64) {
        let at = HEAD.saturating_add(i.saturating_mul(RECORD));
        let r = &self.data[at..at.saturating_add(RECORD)];
        (&r[..32], u64_at(r, 32), u64_at(r, 40))
    }

    /// The digests of entry `i`, or `None` where its chunk numbers are out of shape.
    pub fn get(&self, i: usize) -> Option<Found<'a>> {
        if i >= self.n {
            return None;
        }
        let (whole, _, first) = self.record(i);
        let next = match i.checked_add(1).filter(|&j| j < self.n) {
            Some(j) => self.record(j).2,
            None => self.c as u64,
        };
        let chunks_at = HEAD.checked_add(self.n.checked_mul(RECORD)?)?;
        let from = chunks_at.checked_add(usize::try_from(first).ok()?.checked_mul(32)?)?;
        let to = chunks_at.checked_add(usize::try_from(next).ok()?.checked_mul(32)?)?;
        let chunks = self.data.get(from..to)?;
        Some(Found { entry: i, whole, chunks })
    }

    /// The position recorded for entry `i`.
    pub fn position(&self, i: usize) -> Option<u64> {
        (i < self.n).then(|| self.record(i).1)
    }

    /// The digests of the member whose header chain is at `position` (records are in archive
    /// order, so by binary search).
    pub fn find(&self, position: u64) -> Option<Found<'a>> {
        let (mut lo, mut hi) = (0usize, self.n);
        while lo < hi {
            let mid = lo.saturating_add(hi.saturating_sub(lo) / 2);
            match self.record(mid).1.cmp(&position) {
                std::cmp::Ordering::Less => lo = mid.saturating_add(1),
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return self.get(mid),
            }
        }
        None
    }
}
