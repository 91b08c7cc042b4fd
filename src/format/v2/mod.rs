//! The `.tarfs` index, version 2.0: a compact body after the v1 header block. Pure encoding and
//! decoding; `docs/FORMAT.md` is the specification, and `tests/v2_reader.py` a second reader
//! written from it.
//!
//! The first block is the header block of version 1.0 ([`super::tarfs::encode_header`]) with
//! `v2.0` in its version field: the same record (lengths, end offset, stamp, digests, flags), with
//! the body's length where v1 keeps the extension's (`[112, 120)`) and no entry blocks. The body
//! follows at byte 512; a compressed archive's seek section follows the body. All integers in the
//! body are little-endian.
//!
//! | body part | content |
//! |---|---|
//! | head, 256 bytes | `TFS2`, the offsets and lengths below, a CRC-32 of itself |
//! | records | [`RECORD`] bytes per member, in archive order (fixed width: entry `i` is at `i * 40`) |
//! | restarts | one `u32` per [`RESTART`] paths: where that group starts in the paths |
//! | paths | each path as its shared prefix with the one before (LEB128, 0 at a group's start), the rest's length (LEB128) and the rest |
//! | hash | `u32` slots, entry number + 1 (0: empty); slot `FNV-1a-64(normalized path) mod slots`, linear probing |
//! | extras index | `(entry u32, offset u32)` for each member with extras, by entry |
//! | extras | per member: `(tag u8, LEB128 length, value)` fields, tag 0 ends |
//! | owners | `u32` count, `u32` offsets, then `(uid u64, gid u64, uname, gname)` with LEB128 lengths |
//! | digests | with body flag [`HAS_DIGESTS`]: the member digests part ([`super::digests`]) |
//! | chunk table | a CRC-32 of each [`CHUNK`] bytes of the body from byte 256 up to the table |
//!
//! Bytes per member, names, extras and owners aside: [`RECORD`] + 4 × 5/4 (hash) + 4/16
//! (restarts) = 45.25.

use super::header::BLOCK;

/// A member's fixed-width record, in bytes.
pub const RECORD: usize = 40;
/// Paths per front-coding group (each group's first path is whole).
pub const RESTART: usize = 16;
/// The piece of the body one chunk CRC covers.
pub const CHUNK: usize = 64 << 10;
/// The body's head, in bytes.
pub const HEAD: usize = 256;
const TAG: &[u8; 4] = b"TFS2";
const BODY_VERSION: u32 = 1;

/// Record flag: the member has extras (see [`Extras`]).
pub const F_EXTRAS: u8 = 1;
/// Record flag: the member is sparse (its data is read through the map in its header chain).
pub const F_SPARSE: u8 = 2;
/// Record flag: the member has extended attributes.
pub const F_XATTRS: u8 = 4;
/// Record flag: pax global headers that set attributes were in force for the member.
pub const F_GLOBALS: u8 = 8;
/// Body flag: the archive has pax global headers.
pub const HAS_GLOBALS: u32 = 1;
/// Body flag: some of them set attributes that members take.
pub const GLOBAL_ATTRIBUTES: u32 = 2;
/// Body flag: the body has a member digests part ([`super::digests`]), its offset and length
/// at head bytes `[168, 176)` and `[176, 184)`.
pub const HAS_DIGESTS: u32 = 4;
/// Body flag: everything after the head is stored as one raw deflate stream (RFC 1951) of the
/// plain body's bytes from 256 on; the head's offsets are the plain body's. Written for the
/// sidecars of compressed archives, whose size counts beside a small compressed archive.
pub const DEFLATED: u32 = 8;
/// Body flags a reader of this version knows ; a body with any
/// other is refused, and the archive scanned, as the specification asks of a newer minor version
/// that needs more than it can read.
pub const KNOWN_FLAGS: u32 = HAS_GLOBALS | GLOBAL_ATTRIBUTES | HAS_DIGESTS | DEFLATED;

const X_LINK: u8 = 1;
const X_STORED: u8 = 2;
const X_MAIN: u8 = 3;
const X_CHAIN: u8 = 4;
const X_MTIME: u8 = 5;
const X_DEVICE: u8 = 6;

/// Why a v2 body does not open or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum V2Error {
    /// The head is missing, has another tag or version, or its CRC does not hold.
    #[error("the v2 body's head is damaged or missing ({0})")]
    Head(&'static str),
    /// A part lies outside the body, or its size disagrees with the head.
    #[error("the v2 body's {0} lie outside it or have the wrong size")]
    Part(&'static str),
    /// A chunk's CRC does not hold.
    #[error("bytes {start}..{end} of the v2 body are damaged (their CRC-32 does not hold)")]
    Chunk { start: u64, end: u64 },
    /// A record, path, extra or owner does not decode.
    #[error("entry {entry} of the v2 index does not decode: {what}")]
    Entry { entry: u64, what: &'static str },
}

/// One member, as a writer gives it.
#[derive(Debug, Clone, Default)]
pub struct Member<'a> {
    /// Its full path.
    pub path: &'a [u8],
    /// Its link target, or empty.
    pub link: &'a [u8],
    /// Byte offset of its header chain (a multiple of 512).
    pub position: u64,
    /// Blocks from the position to the main header.
    pub main_blocks: u64,
    /// Blocks from the position to the data.
    pub chain_blocks: u64,
    /// Logical size.
    pub size: u64,
    /// Bytes of data stored.
    pub stored_size: u64,
    /// Modification time: seconds and nanoseconds.
    pub mtime: (i64, u32),
    /// Mode bits.
    pub mode: u32,
    /// Owner and group ids and names.
    pub owner: Owner<'a>,
    /// The main header's checksum, as tar computes it.
    pub header_sum: u32,
    /// Effective typeflag.
    pub typeflag: u8,
    /// [`F_SPARSE`], [`F_XATTRS`], [`F_GLOBALS`].
    pub flags: u8,
    /// Device numbers (`3`, `4`).
    pub device: (u64, u64),
}

/// An owner: ids and names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Owner<'a> {
    /// User id.
    pub uid: u64,
    /// Group id.
    pub gid: u64,
    /// User name.
    pub uname: &'a [u8],
    /// Group name.
    pub gname: &'a [u8],
}

/// The hash of a lookup key (a path normalized by [`super::ext::normalize_name`]: trailing
/// slashes and one leading `./` removed): 64-bit FNV-1a.
pub fn key_hash(key: &[u8]) -> u64 {
    key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

fn leb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// Reads a LEB128 number at `*at` of `b`, moving `*at` past it.
fn read_leb(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at)?;
        *at = at.checked_add(1)?;
        v |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Builds a v2 body from members given in archive order; everything is held until
/// [`Builder::finish`], which needs every path for the hash table.
#[derive(Debug, Default)]
pub struct Builder {
    records: Vec<u8>,
    restarts: Vec<u8>,
    paths: Vec<u8>,
    hashes: Vec<u64>,
    extras_index: Vec<u8>,
    extras: Vec<u8>,
    owners: Vec<(u64, u64, Vec<u8>, Vec<u8>)>,
    owner_ids: std::collections::HashMap<(u64, u64, Vec<u8>, Vec<u8>), u32>,
    last_path: Vec<u8>,
    /// The owner of the member before, and its number.
    #[allow(clippy::type_complexity)]
    last_owner: Option<(u32, (u64, u64, Vec<u8>, Vec<u8>))>,
    flags: u32,
    /// The member digests part ([`super::digests`]), when there is one.
    digests: Option<Vec<u8>>,
}

impl Builder {
    /// Members so far.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Bytes of names so far (paths, link targets and owner names, with their lengths).
    pub fn names_len(&self) -> usize {
        self.paths.len().saturating_add(self.extras.len())
    }

    /// Adds member `m`.
    pub fn push(&mut self, m: &Member<'_>) -> Result<(), V2Error> {
        self.push_hashed(m, key_hash(super::ext::normalize_name(m.path)))
    }

    /// Adds member `m`, whose path's [`key_hash`] (of its normalized form) is `h`, computed
    /// where the path was at hand (a scanning thread).
    pub fn push_hashed(&mut self, m: &Member<'_>, h: u64) -> Result<(), V2Error> {
        debug_assert_eq!(h, key_hash(super::ext::normalize_name(m.path)), "the key hash of {:?}", String::from_utf8_lossy(m.path));
        let i = self.hashes.len();
        let too_big = V2Error::Entry { entry: i as u64, what: "its position or entry number does not fit" };
        let entry = u32::try_from(i).map_err(|_| too_big.clone())?;
        let blocks = m.position.checked_div(BLOCK as u64).unwrap_or(0);
        if blocks >= 1 << 48 || !m.position.is_multiple_of(BLOCK as u64) {
            return Err(too_big);
        }
        let extras = self.extras_of(m);
        let mut flags = m.flags & (F_SPARSE | F_XATTRS | F_GLOBALS);
        if !extras.is_empty() {
            flags |= F_EXTRAS;
            let at = u32::try_from(self.extras.len()).map_err(|_| V2Error::Entry { entry: i as u64, what: "the extras exceed 4 GiB" })?;
            self.extras_index.extend_from_slice(&entry.to_le_bytes());
            self.extras_index.extend_from_slice(&at.to_le_bytes());
            self.extras.extend_from_slice(&extras);
        }
        let owner = self.owner_id(&m.owner);
        let mtime = m.mtime.0.checked_mul(1_000_000_000).and_then(|s| s.checked_add(i64::from(m.mtime.1))).unwrap_or(i64::MIN);
        let chain = u16::try_from(m.chain_blocks).ok().filter(|&c| c != u16::MAX).unwrap_or(u16::MAX);
        let r = &mut self.records;
        r.extend_from_slice(&blocks.to_le_bytes()[..6]);
        r.extend_from_slice(&chain.to_le_bytes());
        r.extend_from_slice(&m.size.to_le_bytes());
        r.extend_from_slice(&mtime.to_le_bytes());
        r.extend_from_slice(&m.mode.to_le_bytes());
        r.extend_from_slice(&owner.to_le_bytes());
        r.extend_from_slice(&m.header_sum.to_le_bytes());
        r.push(m.typeflag);
        r.push(flags);
        r.extend_from_slice(&((h >> 48) as u16).to_le_bytes());
        self.push_path(i, m.path);
        self.hashes.push(h);
        Ok(())
    }

    /// Records that the archive has pax global headers (`any`), and that some set attributes.
    pub fn globals(&mut self, any: bool, attributes: bool) {
        if any {
            self.flags |= HAS_GLOBALS;
        }
        if attributes {
            self.flags |= GLOBAL_ATTRIBUTES;
        }
    }

    /// Adds the member digests part `d` ([`super::digests`]), or none.
    pub fn digests(&mut self, d: Option<Vec<u8>>) {
        match &d {
            Some(_) => self.flags |= HAS_DIGESTS,
            None => self.flags &= !HAS_DIGESTS,
        }
        self.digests = d;
    }

    fn push_path(&mut self, i: usize, path: &[u8]) {
        let shared = if i.is_multiple_of(RESTART) {
            let at = u32::try_from(self.paths.len()).unwrap_or(u32::MAX);
            self.restarts.extend_from_slice(&at.to_le_bytes());
            0
        } else {
            self.last_path.iter().zip(path).take_while(|(a, b)| a == b).count()
        };
        leb(&mut self.paths, shared as u64);
        leb(&mut self.paths, path.len().saturating_sub(shared) as u64);
        self.paths.extend_from_slice(&path[shared..]);
        self.last_path.clear();
        self.last_path.extend_from_slice(path);
    }

    fn owner_id(&mut self, o: &Owner<'_>) -> u32 {
        // Members of one owner come in runs: the last one's, without building a key.
        if let Some(&(id, ref k)) = self.last_owner.as_ref() {
            if (k.0, k.1, &k.2[..], &k.3[..]) == (o.uid, o.gid, o.uname, o.gname) {
                return id;
            }
        }
        let id = self.owner_id_slow(o);
        self.last_owner = Some((id, (o.uid, o.gid, o.uname.to_vec(), o.gname.to_vec())));
        id
    }

    fn owner_id_slow(&mut self, o: &Owner<'_>) -> u32 {
        let key = (o.uid, o.gid, o.uname.to_vec(), o.gname.to_vec());
        if let Some(&id) = self.owner_ids.get(&key) {
            return id;
        }
        let id = u32::try_from(self.owners.len()).unwrap_or(u32::MAX);
        self.owners.push(key.clone());
        self.owner_ids.insert(key, id);
        id
    }

    /// The extras of `m`: what its record cannot hold.
    fn extras_of(&self, m: &Member<'_>) -> Vec<u8> {
        let mut x = Vec::new();
        let mut field = |tag: u8, value: &[u8]| {
            x.push(tag);
            leb(&mut x, value.len() as u64);
            x.extend_from_slice(value);
        };
        if !m.link.is_empty() {
            field(X_LINK, m.link);
        }
        if m.stored_size != m.size {
            field(X_STORED, &m.stored_size.to_le_bytes());
        }
        if m.main_blocks.checked_add(1) != Some(m.chain_blocks) {
            field(X_MAIN, &m.main_blocks.to_le_bytes());
        }
        if m.chain_blocks >= u64::from(u16::MAX) {
            field(X_CHAIN, &m.chain_blocks.to_le_bytes());
        }
        if m.mtime.0.checked_mul(1_000_000_000).and_then(|s| s.checked_add(i64::from(m.mtime.1))).is_none_or(|ns| ns == i64::MIN) {
            field(X_MTIME, &[m.mtime.0.to_le_bytes().as_slice(), &m.mtime.1.to_le_bytes()].concat());
        }
        if m.device != (0, 0) {
            field(X_DEVICE, &[m.device.0.to_le_bytes(), m.device.1.to_le_bytes()].concat());
        }
        if !x.is_empty() {
            x.push(0);
        }
        x
    }

    /// The body laid out and encoded, its parts deflated with `deflate`; the caller sets the
    /// header's body length from [`Sealed::len`], then binds the body with [`Sealed::finish`].
    pub fn seal(self, deflate: bool) -> Sealed {
        encode::seal(self, deflate)
    }

    /// The length of the plain (not deflated) body [`Builder::seal`] will lay out.
    pub fn body_len(&self) -> u64 {
        encode::layout(self).total as u64
    }
}

mod deflate;
mod encode;
mod inflate;
mod view;

pub use encode::Sealed;
pub use inflate::image;
pub use view::{Extras, Parts, Record, View};

/// The byte range of the seek section of a v2 index whose data is `data` and header record
/// `info`: after the body.
pub fn seek_range(data: &[u8], info: &super::tarfs::IndexInfo) -> Option<std::ops::Range<usize>> {
    if info.flags & super::tarfs::FLAG_SEEK == 0 || info.seek_len == 0 {
        return None;
    }
    let start = BLOCK.checked_add(usize::try_from(info.ext_len).ok()?)?;
    let end = start.checked_add(usize::try_from(info.seek_len).ok()?)?;
    (end <= data.len()).then_some(start..end)
}

/// The body of a v2 index whose data is `data` and header record `info`.
pub fn body_of<'d>(data: &'d [u8], info: &super::tarfs::IndexInfo) -> Option<&'d [u8]> {
    data.get(BLOCK..BLOCK.checked_add(usize::try_from(info.ext_len).ok()?)?)
}

/// The CRC-32 (IEEE, as zlib's `crc32`) of `b`.
pub fn crc32(b: &[u8]) -> u32 {
    crc32fast::hash(b)
}
