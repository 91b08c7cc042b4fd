//! Reading a v2 body in place: each chunk's CRC checked the first time it is read, so opening
//! costs the head and the chunk table, and a lookup the few chunks it touches.

use std::ops::Range;
use std::sync::atomic::{AtomicU8, Ordering};

use super::{crc32, key_hash, read_leb, Owner, V2Error, CHUNK, HEAD, RECORD, RESTART, TAG, BODY_VERSION, X_CHAIN, X_DEVICE, X_LINK, X_MAIN, X_MTIME, X_STORED};
use crate::format::header::BLOCK;

const UNCHECKED: u8 = 0;
const GOOD: u8 = 1;

/// What opening a v2 body found: where its parts are, its owners, and which chunks were
/// checked. It holds no bytes: [`Parts::on`] reads through it.
#[derive(Debug)]
pub struct Parts {
    n: usize,
    records: Range<usize>,
    restarts: Range<usize>,
    paths: Range<usize>,
    hash: Range<usize>,
    extras_index: Range<usize>,
    extras: Range<usize>,
    /// Each owner's ids and where its names are.
    owners: Vec<(u64, u64, Range<usize>, Range<usize>)>,
    chunks_end: usize,
    crcs: Range<usize>,
    checked: Vec<AtomicU8>,
    flags: u32,
    /// The member digests part, with body flag [`super::HAS_DIGESTS`].
    digests: Option<Range<usize>>,
}

/// A v2 body read through its [`Parts`].
#[derive(Debug, Clone, Copy)]
pub struct View<'d> {
    p: &'d Parts,
    body: &'d [u8],
}

impl std::ops::Deref for View<'_> {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        self.p
    }
}

/// One record, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Byte offset of the header chain.
    pub position: u64,
    /// Blocks from the position to the data (`u16::MAX`: in the extras).
    pub chain: u16,
    /// Logical size.
    pub size: u64,
    /// Modification time in nanoseconds (`i64::MIN`: in the extras).
    pub mtime_ns: i64,
    /// Mode bits.
    pub mode: u32,
    /// Owner number.
    pub owner: u32,
    /// The main header's checksum.
    pub header_sum: u32,
    /// Effective typeflag.
    pub typeflag: u8,
    /// Record flags.
    pub flags: u8,
    /// The top 16 bits of the path's key hash.
    pub tag: u16,
}

/// What a record cannot hold, with defaults where the member has none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extras<'d> {
    /// Link target (empty: none).
    pub link: &'d [u8],
    /// Stored size, where it is not the logical size.
    pub stored: Option<u64>,
    /// Blocks to the main header, where it is not the last block of the chain.
    pub main: Option<u64>,
    /// Blocks to the data, where the record's field cannot hold it.
    pub chain: Option<u64>,
    /// Seconds and nanoseconds, where the record's field cannot hold them.
    pub mtime: Option<(i64, u32)>,
    /// Device numbers.
    pub device: (u64, u64),
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at.saturating_add(8)).map_or(0, |s| u64::from_le_bytes(s.try_into().expect("8 bytes")))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at.saturating_add(4)).map_or(0, |s| u32::from_le_bytes(s.try_into().expect("4 bytes")))
}

impl Parts {
    /// Members indexed.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The body's flags ([`super::HAS_GLOBALS`], [`super::GLOBAL_ATTRIBUTES`]).
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Where the member digests part lies in the body, if it has one (unchecked: read it
    /// through [`View::digests`]).
    pub fn digests_range(&self) -> Option<Range<usize>> {
        self.digests.clone()
    }

    /// The body `body` read through these parts (the body they were opened on).
    pub fn on<'d>(&'d self, body: &'d [u8]) -> View<'d> {
        View { p: self, body }
    }

    /// Opens the body in `body` (the index data from byte 512, without any seek section),
    /// bound to the index's `header` block: its head, part bounds and chunk table checked, and
    /// the owners decoded.
    pub fn open(body: &[u8], header: &[u8; BLOCK]) -> Result<Parts, V2Error> {
        let head = body.get(..HEAD).ok_or(V2Error::Head("too short"))?;
        if &head[..4] != TAG || u32_at(head, 4) != BODY_VERSION {
            return Err(V2Error::Head("no TFS2 tag of version 1"));
        }
        if crc32(&head[..252]) != u32_at(head, 252) {
            return Err(V2Error::Head("its CRC-32 does not hold"));
        }
        if crc32(header) != u32_at(head, 144) {
            return Err(V2Error::Head("it belongs to another index header"));
        }
        if u32_at(head, 16) as usize != RECORD || u32_at(head, 20) as usize != RESTART || u32_at(head, 120) as usize != CHUNK {
            return Err(V2Error::Head("unknown record, group or chunk size"));
        }
        if u32_at(head, 124) & !super::KNOWN_FLAGS != 0 {
            return Err(V2Error::Head("it has flags this reader does not know"));
        }
        let n = usize::try_from(u64_at(head, 8)).map_err(|_| V2Error::Part("records"))?;
        let part = |at: usize, len: u64, what| -> Result<Range<usize>, V2Error> {
            let start = usize::try_from(u64_at(head, at)).map_err(|_| V2Error::Part(what))?;
            let end = usize::try_from(len).ok().and_then(|l| start.checked_add(l)).ok_or(V2Error::Part(what))?;
            (start >= HEAD && end <= body.len()).then_some(start..end).ok_or(V2Error::Part(what))
        };
        let times = |k: usize, size: usize| k.checked_mul(size).map(|v| v as u64).unwrap_or(u64::MAX);
        let records = part(24, times(n, RECORD), "records")?;
        let restarts = part(32, times(n.div_ceil(RESTART), 4), "restarts")?;
        let paths = part(40, u64_at(head, 48), "paths")?;
        let slots = usize::try_from(u64_at(head, 64)).map_err(|_| V2Error::Part("hash slots"))?;
        if slots <= n {
            return Err(V2Error::Part("hash slots"));
        }
        let hash = part(56, times(slots, 4), "hash slots")?;
        let extras_index = part(72, times(usize::try_from(u64_at(head, 80)).unwrap_or(usize::MAX), 8), "extras index")?;
        let extras = part(88, u64_at(head, 96), "extras")?;
        let owners_part = part(104, u64_at(head, 112), "owners")?;
        let count = usize::try_from(u64_at(head, 136)).map_err(|_| V2Error::Part("chunk table"))?;
        let crc_range = part(128, times(count, 4), "chunk table")?;
        let chunks_end = crc_range.start;
        if chunks_end.saturating_sub(HEAD).div_ceil(CHUNK) != count {
            return Err(V2Error::Part("chunk table"));
        }
        let checked = (0..count).map(|_| AtomicU8::new(UNCHECKED)).collect();
        let digests = match u32_at(head, 124) & super::HAS_DIGESTS {
            0 => None,
            _ => Some(part(168, u64_at(head, 176), "member digests").and_then(|r| if r.end <= chunks_end { Ok(r) } else { Err(V2Error::Part("member digests")) })?),
        };
        let mut p = Parts { n, records, restarts, paths, hash, extras_index, extras, owners: Vec::new(), chunks_end, crcs: crc_range, checked, flags: u32_at(head, 124), digests };
        p.owners = p.on(body).decode_owners(owners_part)?;
        Ok(p)
    }

}

impl<'d> View<'d> {
    /// Owner number `k`.
    pub fn owner(&self, k: u32) -> Option<Owner<'d>> {
        let (uid, gid, u, g) = self.p.owners.get(k as usize)?;
        Some(Owner { uid: *uid, gid: *gid, uname: self.body.get(u.clone())?, gname: self.body.get(g.clone())? })
    }

    /// The bytes `range` of the body, each chunk they touch checked against its CRC once.
    fn bytes(&self, range: Range<usize>) -> Result<&'d [u8], V2Error> {
        if range.start < HEAD || range.end > self.chunks_end || range.start > range.end {
            return Err(V2Error::Part("read"));
        }
        let first = range.start.saturating_sub(HEAD).checked_div(CHUNK).unwrap_or(0);
        let last = range.end.saturating_sub(1).max(range.start).saturating_sub(HEAD).checked_div(CHUNK).unwrap_or(0);
        for c in first..=last.min(self.checked.len().saturating_sub(1)) {
            self.check_chunk(c)?;
        }
        Ok(&self.body[range])
    }

    fn check_chunk(&self, c: usize) -> Result<(), V2Error> {
        if self.checked[c].load(Ordering::Relaxed) == GOOD {
            return Ok(());
        }
        let start = HEAD.saturating_add(c.saturating_mul(CHUNK));
        let end = start.saturating_add(CHUNK).min(self.chunks_end);
        if crc32(&self.body[start..end]) != u32_at(&self.body[self.crcs.clone()], c.saturating_mul(4)) {
            return Err(V2Error::Chunk { start: start as u64, end: end as u64 });
        }
        self.checked[c].store(GOOD, Ordering::Relaxed);
        Ok(())
    }

    /// The member digests part ([`crate::format::digests`]), its chunks checked, if the body
    /// has one.
    pub fn digests(&self) -> Option<Result<&'d [u8], V2Error>> {
        self.p.digests.clone().map(|r| self.bytes(r))
    }

    /// Checks every chunk (for `verify`, and a listing that reads all anyway).
    pub fn check_all(&self) -> Result<(), V2Error> {
        (0..self.checked.len()).try_for_each(|c| self.check_chunk(c))
    }

    /// Record `i`.
    pub fn record(&self, i: usize) -> Result<Record, V2Error> {
        if i >= self.n {
            return Err(V2Error::Entry { entry: i as u64, what: "no such entry" });
        }
        let at = self.records.start.saturating_add(i.saturating_mul(RECORD));
        let r = self.bytes(at..at.saturating_add(RECORD))?;
        let mut pos = [0u8; 8];
        pos[..6].copy_from_slice(&r[..6]);
        Ok(Record {
            position: u64::from_le_bytes(pos).saturating_mul(BLOCK as u64),
            chain: u16::from_le_bytes([r[6], r[7]]),
            size: u64_at(r, 8),
            mtime_ns: u64_at(r, 16) as i64,
            mode: u32_at(r, 24),
            owner: u32_at(r, 28),
            header_sum: u32_at(r, 32),
            typeflag: r[36],
            flags: r[37],
            tag: u16::from_le_bytes([r[38], r[39]]),
        })
    }
}

mod member;
mod names;
