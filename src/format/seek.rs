//! The seek section of a compressed archive's sidecar (`TFSK`, version 1): where decompression can
//! start again, so that reading one member costs one span of decompression, not the whole stream.
//!
//! It is the last `seek_len` bytes of the sidecar ([`super::tarfs::seek_range`]), after the
//! entries, a zero block and the extension data, so a plain v1.0 reader never sees it. Layout
//! (integers big-endian):
//!
//! | bytes | content |
//! |---|---|
//! | `[0, 4)` | `TFSK` |
//! | `4` | version, 1 |
//! | `5` | kind: 1 = gzip (DEFLATE checkpoints), 2 = bzip2 (its blocks), 3 = xz (its blocks), 4 = zstd (its frames) |
//! | `[8, 16)` | length of the compressed file |
//! | `[16, 24)` | xxh3-64 of its first and last 64 KiB ([`binding`]) |
//! | `[24, 32)` | length of the decompressed stream |
//! | `[32, 40)` | piece size `P`: the stream is digested in pieces of `P` bytes |
//! | `[40, 48)` | number of pieces `N` |
//! | `[48, 56)` | length of the checkpoint payload |
//! | `[56, 64)` | xxh3-64 of `[0, 56)` and everything after this header (digests, then payload) |
//! | `[64, 64 + 8N)` | xxh3-64 of each piece of the decompressed stream |
//! | then | the payload. gzip: rapidgzip-core's native index (bit offsets, decompressed offsets, and each checkpoint's 32 KiB window, zlib-compressed). The others: `u64`s ([`words`]). bzip2: the number of blocks `B`, then for each block its first bit (at its magic), the bit where it ends (where the next marker starts), and its offset in the decompressed stream. xz: the number of blocks and their decompressed length (the blocks themselves are read from the file's index). zstd: the number of points `F` and the number of frames, then for each point the offset of a frame in the file and in the decompressed stream (the first is 0, 0) |
//!
//! The binding and the compressed length tie the section to its file: a replaced `.tar.gz` is
//! detected before any checkpoint is used. The piece digests check every byte decoded from a
//! checkpoint before it is handed out, so a checkpoint that does not match its stream is an
//! error, never wrong bytes.

use xxhash_rust::xxh3::Xxh3;
#[cfg(test)]
use xxhash_rust::xxh3::xxh3_64;

/// The section's magic.
pub const MAGIC: &[u8; 4] = b"TFSK";
/// Its version.
pub const VERSION: u8 = 1;
/// Kind: gzip, with DEFLATE checkpoints.
pub const KIND_GZIP: u8 = 1;
/// Kind: bzip2, from its blocks (each decodes on its own): the payload gives each block's bits.
pub const KIND_BZIP2: u8 = 2;
/// Kind: xz with several blocks; the blocks are found from the file's own index, and the
/// payload holds their count and total decompressed length, as checks.
pub const KIND_XZ: u8 = 3;
/// Kind: zstd with several frames (each decodes on its own): the payload gives where frames
/// start, at least a span apart.
pub const KIND_ZSTD: u8 = 4;
/// Bytes of its fixed header.
pub const HEADER: usize = 64;
/// Bytes hashed at each end of the compressed file for [`binding`].
pub const BINDING_BYTES: usize = 64 << 10;

/// Why a seek section cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeekError {
    /// Too short, or not `TFSK`.
    #[error("the seek section is missing or truncated")]
    Missing,
    /// Another version or kind.
    #[error("the seek section has version {0}, kind {1}, which this tarfs does not read")]
    Unsupported(u8, u8),
    /// Its lengths do not add up.
    #[error("the seek section's lengths do not add up")]
    Lengths,
    /// Its checksum does not hold.
    #[error("the seek section's checksum does not hold")]
    Checksum,
}

/// A parsed seek section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seek<'a> {
    /// The kind ([`KIND_GZIP`]).
    pub kind: u8,
    /// The compressed file's length.
    pub compressed_len: u64,
    /// Its [`binding`].
    pub binding: u64,
    /// The decompressed stream's length.
    pub total_len: u64,
    /// The piece size.
    pub piece: u64,
    /// The digest of each piece, as stored (8 bytes each).
    digests: &'a [u8],
    /// The checkpoints (rapidgzip-core's native index).
    pub payload: &'a [u8],
}

impl<'a> Seek<'a> {
    /// Parses and checks a section.
    pub fn parse(b: &'a [u8]) -> Result<Seek<'a>, SeekError> {
        if b.len() < HEADER || &b[..4] != MAGIC {
            return Err(SeekError::Missing);
        }
        if b[4] != VERSION || !matches!(b[5], KIND_GZIP | KIND_BZIP2 | KIND_XZ | KIND_ZSTD) {
            return Err(SeekError::Unsupported(b[4], b[5]));
        }
        let u = |at: usize| be64(b, at).unwrap_or_default();
        let (total_len, piece, n, payload_len) = (u(24), u(32), u(40), u(48));
        let pieces_needed = (piece != 0).then(|| total_len.div_ceil(piece));
        if pieces_needed != Some(n) {
            return Err(SeekError::Lengths);
        }
        let digests_len = usize::try_from(n).ok().and_then(|n| n.checked_mul(8)).ok_or(SeekError::Lengths)?;
        let payload_len = usize::try_from(payload_len).map_err(|_| SeekError::Lengths)?;
        let body_len = digests_len.checked_add(payload_len).ok_or(SeekError::Lengths)?;
        let body = b.get(HEADER..).filter(|r| r.len() >= body_len).ok_or(SeekError::Lengths)?;
        let body = &body[..body_len];
        if checksum(&b[..56], body) != u(56) {
            return Err(SeekError::Checksum);
        }
        let (digests, payload) = body.split_at(digests_len);
        Ok(Seek { kind: b[5], compressed_len: u(8), binding: u(16), total_len, piece, digests, payload })
    }

    /// The digest of piece `k`.
    pub fn digest(&self, k: u64) -> Option<u64> {
        let at = usize::try_from(k).ok()?.checked_mul(8)?;
        be64(self.digests, at)
    }

    /// The number of pieces.
    pub fn pieces(&self) -> u64 {
        (self.digests.len() / 8) as u64
    }
}

/// Encodes a section of `kind`, padded with zeros to whole 512-byte blocks.
pub fn encode(kind: u8, compressed_len: u64, binding: u64, total_len: u64, piece: u64, digests: &[u64], payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(digests.len().saturating_mul(8).saturating_add(payload.len()));
    for d in digests {
        body.extend_from_slice(&d.to_be_bytes());
    }
    body.extend_from_slice(payload);
    let mut out = Vec::with_capacity(body.len().saturating_add(HEADER + 512));
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[VERSION, kind, 0, 0]);
    for v in [compressed_len, binding, total_len, piece, digests.len() as u64, payload.len() as u64] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    let sum = checksum(&out, &body);
    out.extend_from_slice(&sum.to_be_bytes());
    out.extend_from_slice(&body);
    out.resize(out.len().div_ceil(512).saturating_mul(512), 0);
    out
}

/// A payload of `u64`s (the bzip2, xz and zstd kinds).
pub fn encode_words(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_be_bytes()).collect()
}

/// The `u64`s of a payload, if it is a whole number of them.
pub fn words(payload: &[u8]) -> Option<Vec<u64>> {
    payload.len().is_multiple_of(8).then(|| payload.chunks_exact(8).map(|c| u64::from_be_bytes(c.try_into().expect("eight bytes"))).collect())
}

/// A payload of `head` words, the first of them a count `n`, then `n` records of `width` words
/// each (the bzip2 and zstd kinds): the records' words, and `n`, if `n` is positive and the
/// lengths agree.
pub fn records(payload: &[u8], head: usize, width: usize) -> Option<(Vec<u64>, usize)> {
    let w = words(payload)?;
    let n = usize::try_from(*w.first()?).ok().filter(|&n| n > 0)?;
    if w.len() != n.checked_mul(width)?.checked_add(head)? {
        return None;
    }
    Some((w.get(head..)?.to_vec(), n))
}

/// The big-endian `u64` at `at`, if the bytes are there.
fn be64(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at.checked_add(8)?).map(|d| u64::from_be_bytes(d.try_into().expect("eight bytes")))
}

/// The section's checksum: its first 56 bytes, then its body.
fn checksum(head: &[u8], body: &[u8]) -> u64 {
    let mut h = Xxh3::new();
    h.update(head);
    h.update(body);
    h.digest()
}

/// The binding of a compressed file to its seek section: xxh3-64 over its length and its
/// first and last [`BINDING_BYTES`] (which overlap in a small file), as `head` and `tail`.
pub fn binding(len: u64, head: &[u8], tail: &[u8]) -> u64 {
    let mut h = Xxh3::new();
    h.update(&len.to_be_bytes());
    h.update(head);
    h.update(tail);
    h.digest()
}

/// Digests a stream in pieces of a fixed size, as it goes by.
#[derive(Clone)]
pub struct PieceHasher {
    piece: u64,
    filled: u64,
    hasher: Xxh3,
    digests: Vec<u64>,
    total: u64,
}

impl PieceHasher {
    /// Pieces of `piece` bytes (positive).
    pub fn new(piece: u64) -> PieceHasher {
        assert!(piece > 0, "pieces have a size");
        PieceHasher { piece, filled: 0, hasher: Xxh3::new(), digests: Vec::new(), total: 0 }
    }

    /// Takes the next bytes of the stream.
    pub fn update(&mut self, mut data: &[u8]) {
        self.total = self.total.saturating_add(data.len() as u64);
        while !data.is_empty() {
            let room = usize::try_from(self.piece.saturating_sub(self.filled)).unwrap_or(usize::MAX).min(data.len());
            self.hasher.update(&data[..room]);
            self.filled = self.filled.saturating_add(room as u64);
            data = &data[room..];
            if self.filled == self.piece {
                self.digests.push(self.hasher.digest());
                self.hasher.reset();
                self.filled = 0;
            }
        }
    }

    /// The digests (the last piece may be short), and the stream's length.
    pub fn finish(mut self) -> (Vec<u64>, u64) {
        if self.filled > 0 {
            self.digests.push(self.hasher.digest());
        }
        (self.digests, self.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_damage_is_caught() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut h = PieceHasher::new(4096);
        for c in data.chunks(777) {
            h.update(c);
        }
        let (digests, total) = h.finish();
        assert_eq!((digests.len(), total), (3, 10_000));
        assert_eq!(digests[2], xxh3_64(&data[8192..]));
        let enc = encode(KIND_GZIP, 1234, 99, total, 4096, &digests, b"checkpoints");
        assert_eq!(enc.len() % 512, 0);
        let s = Seek::parse(&enc).unwrap();
        assert_eq!((s.compressed_len, s.binding, s.total_len, s.piece, s.pieces(), s.payload), (1234, 99, 10_000, 4096, 3, &b"checkpoints"[..]));
        assert_eq!(s.digest(1), Some(xxh3_64(&data[4096..8192])));
        assert_eq!(s.digest(3), None);
        let used = HEADER + 3 * 8 + 11;
        for i in 0..used {
            let mut bad = enc.clone();
            bad[i] ^= 0x10;
            assert!(Seek::parse(&bad).is_err(), "byte {i} changed unnoticed");
        }
        assert_eq!(Seek::parse(&enc[..40]), Err(SeekError::Missing));
    }
}
