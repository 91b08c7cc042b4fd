//! Writing a v2 body: where each part goes, and the bytes.

use super::{crc32, leb, Builder, CHUNK, HEAD, RESTART, TAG, BODY_VERSION};
use crate::format::header::BLOCK;

/// Where each part of a body goes (offsets from the body's start).
pub(super) struct Layout {
    records: usize,
    restarts: usize,
    paths: usize,
    hash: usize,
    slots: usize,
    extras_index: usize,
    extras: usize,
    owners: usize,
    owners_len: usize,
    digests: usize,
    chunks: usize,
    chunk_count: usize,
    pub(super) total: usize,
}

/// Rounds `n` up to a multiple of 8.
fn align8(n: usize) -> usize {
    n.saturating_add(7) & !7
}

/// The owners part: count, offsets, then each owner.
fn owners_bytes(b: &Builder) -> Vec<u8> {
    let mut body = Vec::new();
    let mut offsets = Vec::with_capacity(b.owners.len());
    let head = 4usize.saturating_add(b.owners.len().saturating_mul(4));
    for (uid, gid, uname, gname) in &b.owners {
        offsets.push(u32::try_from(head.saturating_add(body.len())).unwrap_or(u32::MAX));
        body.extend_from_slice(&uid.to_le_bytes());
        body.extend_from_slice(&gid.to_le_bytes());
        for name in [uname, gname] {
            leb(&mut body, name.len() as u64);
            body.extend_from_slice(name);
        }
    }
    let mut out = (b.owners.len() as u32).to_le_bytes().to_vec();
    offsets.iter().for_each(|o| out.extend_from_slice(&o.to_le_bytes()));
    out.extend_from_slice(&body);
    out
}

/// Hash slots for `n` members: a quarter more than members, and at least one empty.
pub(super) fn slots_for(n: usize) -> usize {
    n.saturating_add(n / 4).saturating_add(1)
}

pub(super) fn layout(b: &Builder) -> Layout {
    let n = b.len();
    let records = HEAD;
    let restarts = align8(records.saturating_add(b.records.len()));
    let paths = align8(restarts.saturating_add(b.restarts.len()));
    let hash = align8(paths.saturating_add(b.paths.len()));
    let slots = slots_for(n);
    let extras_index = align8(hash.saturating_add(slots.saturating_mul(4)));
    let extras = align8(extras_index.saturating_add(b.extras_index.len()));
    let owners = align8(extras.saturating_add(b.extras.len()));
    let owners_len = owners_bytes(b).len();
    let digests = align8(owners.saturating_add(owners_len));
    let chunks = align8(digests.saturating_add(b.digests.as_ref().map_or(0, Vec::len)));
    let chunk_count = chunks.saturating_sub(HEAD).div_ceil(CHUNK);
    let total = chunks.saturating_add(chunk_count.saturating_mul(4)).next_multiple_of(BLOCK);
    Layout { records, restarts, paths, hash, slots, extras_index, extras, owners, owners_len, digests, chunks, chunk_count, total }
}

/// The hash part: entry number + 1 at each path's slot, by linear probing.
fn hash_slots(hashes: &[u64], slots: usize) -> Vec<u32> {
    let mut t = vec![0u32; slots];
    for (i, &h) in hashes.iter().enumerate() {
        let mut s = h.checked_rem(slots as u64).unwrap_or(0) as usize;
        while t[s] != 0 {
            s = s.saturating_add(1).checked_rem(slots).unwrap_or(0);
        }
        t[s] = u32::try_from(i.saturating_add(1)).unwrap_or(u32::MAX);
    }
    t
}

/// A body whose parts are laid out and encoded, waiting only for the header block it is bound
/// to ([`Sealed::finish`]); its length ([`Sealed::len`]) is known before that header is.
pub struct Sealed {
    /// The plain body: every part and the chunk table, the head left zero.
    image: Vec<u8>,
    /// With [`super::DEFLATED`]: the raw-deflate of `image[HEAD..]`, stored in its place.
    deflated: Option<Vec<u8>>,
    head: [u8; HEAD],
}

impl Sealed {
    /// The body's length as stored (a multiple of 512).
    pub fn len(&self) -> u64 {
        self.stored_len() as u64
    }

    /// Whether the body is empty (it never is: the head alone is 256 bytes).
    pub fn is_empty(&self) -> bool {
        false
    }

    fn stored_len(&self) -> usize {
        self.deflated.as_ref().map_or(self.image.len(), |d| HEAD.saturating_add(d.len()).next_multiple_of(BLOCK))
    }

    /// The body as stored, bound to the index's `header` block (whose record must give
    /// [`Sealed::len`] as the body's length).
    pub fn finish(self, header: &[u8; BLOCK]) -> Vec<u8> {
        let total = self.stored_len();
        let mut head = self.head;
        head[160..168].copy_from_slice(&(total as u64).to_le_bytes());
        head[144..148].copy_from_slice(&crc32(header).to_le_bytes());
        let mut out = match self.deflated {
            None => self.image,
            Some(d) => {
                head[184..192].copy_from_slice(&(self.image.len() as u64).to_le_bytes());
                head[192..200].copy_from_slice(&(d.len() as u64).to_le_bytes());
                head[200..204].copy_from_slice(&crc32(&d).to_le_bytes());
                let mut out = vec![0u8; total];
                out[HEAD..HEAD.saturating_add(d.len())].copy_from_slice(&d);
                out
            }
        };
        let own = crc32(&head[..252]);
        head[252..].copy_from_slice(&own.to_le_bytes());
        out[..HEAD].copy_from_slice(&head);
        out
    }
}

/// Lays out and encodes the body of `b`; with `deflate`, its parts are stored deflated.
pub(super) fn seal(b: Builder, deflate: bool) -> Sealed {
    let l = layout(&b);
    let mut out = vec![0u8; l.total];
    let put = |out: &mut Vec<u8>, at: usize, bytes: &[u8]| out[at..at.saturating_add(bytes.len())].copy_from_slice(bytes);
    put(&mut out, l.records, &b.records);
    put(&mut out, l.restarts, &b.restarts);
    put(&mut out, l.paths, &b.paths);
    let slots: Vec<u8> = hash_slots(&b.hashes, l.slots).iter().flat_map(|s| s.to_le_bytes()).collect();
    put(&mut out, l.hash, &slots);
    put(&mut out, l.extras_index, &b.extras_index);
    put(&mut out, l.extras, &b.extras);
    put(&mut out, l.owners, &owners_bytes(&b));
    if let Some(d) = &b.digests {
        put(&mut out, l.digests, d);
    }
    let crcs: Vec<u8> = out[HEAD..l.chunks].chunks(CHUNK).flat_map(|c| crc32(c).to_le_bytes()).collect();
    put(&mut out, l.chunks, &crcs);
    let mut head = head_bytes(&b, &l);
    let deflated = deflate.then(|| {
        head[124..128].copy_from_slice(&(b.flags | super::DEFLATED).to_le_bytes());
        let digests = l.digests.saturating_sub(HEAD)..l.chunks.saturating_sub(HEAD);
        super::deflate::deflate(&out[HEAD..], digests)
    });
    Sealed { image: out, deflated, head }
}

/// The head: tag, version, counts and where each part is; [`Sealed::finish`] adds the length
/// stored, the binding to the header and the head's own CRC.
fn head_bytes(b: &Builder, l: &Layout) -> [u8; HEAD] {
    let mut h = [0u8; HEAD];
    h[..4].copy_from_slice(TAG);
    h[4..8].copy_from_slice(&BODY_VERSION.to_le_bytes());
    let (digests, digests_len) = b.digests.as_ref().map_or((0, 0), |d| (l.digests, d.len()));
    let u64s: [(usize, usize); 17] = [
        (8, b.len()),
        (24, l.records),
        (32, l.restarts),
        (40, l.paths),
        (48, b.paths.len()),
        (56, l.hash),
        (64, l.slots),
        (72, l.extras_index),
        (80, b.extras_index.len() / 8),
        (88, l.extras),
        (96, b.extras.len()),
        (104, l.owners),
        (112, l.owners_len),
        (128, l.chunks),
        (136, l.chunk_count),
        (168, digests),
        (176, digests_len),
    ];
    for (at, v) in u64s {
        h[at..at.saturating_add(8)].copy_from_slice(&(v as u64).to_le_bytes());
    }
    h[16..20].copy_from_slice(&(super::RECORD as u32).to_le_bytes());
    h[20..24].copy_from_slice(&(RESTART as u32).to_le_bytes());
    h[120..124].copy_from_slice(&(CHUNK as u32).to_le_bytes());
    h[124..128].copy_from_slice(&b.flags.to_le_bytes());
    h
}
