//! [`Hasher`]: a member's digests, computed from its logical content as it is written.

use std::io::{self, Write};

use super::states::{self, BLOCK, IV};
use crate::format::digests::{chunks_for, MemberDigest, CHUNK};

// Both states take the same blocks, and no block is held at a chunk's end, only because a
// chunk is whole blocks.
const _: () = assert!(CHUNK.is_multiple_of(BLOCK as u64));

/// Computes a member's [`MemberDigest`] from its logical content, written in order.
///
/// Two SHA-256 states take the content: the whole digest's, and the current chunk's. Chunks
/// start at multiples of [`CHUNK`], a multiple of the block size, so both states take the same
/// blocks and are compressed together ([`states::pair`]: on SHA-NI, for the cost of one).
///
/// The first chunk's digest is the whole digest's state after [`CHUNK`] bytes, finished: both
/// start from SHA-256's initial state and take the same first bytes. So only the whole state
/// runs in the first chunk.
#[derive(Clone)]
pub struct Hasher {
    whole: [u32; 8],
    chunk: [u32; 8],
    /// The bytes of a block not yet whole.
    block: [u8; BLOCK],
    held: usize,
    in_chunk: u64,
    total: u64,
    chunks: Vec<[u8; 32]>,
}

impl Default for Hasher {
    fn default() -> Hasher {
        Hasher::new(0)
    }
}

impl Hasher {
    /// A hasher for a member of logical size `size` (only to reserve room, and no more than
    /// 1,024 chunks' worth: the size is what a header says, which a damaged one can make 2^64).
    pub fn new(size: u64) -> Hasher {
        let chunks = Vec::with_capacity(chunks_for(size).min(1024) as usize);
        Hasher { whole: IV, chunk: IV, block: [0; BLOCK], held: 0, in_chunk: 0, total: 0, chunks }
    }

    fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = CHUNK - self.in_chunk;
            let k = usize::try_from(room).unwrap_or(usize::MAX).min(data.len());
            let (piece, rest) = data.split_at(k);
            self.hash_piece(piece);
            self.in_chunk += k as u64;
            self.total += k as u64;
            if self.in_chunk == CHUNK {
                self.end_chunk();
            }
            data = rest;
        }
    }

    /// Hashes `piece`, which lies within one chunk: whole blocks at once, the rest held.
    fn hash_piece(&mut self, mut piece: &[u8]) {
        if self.held > 0 {
            let k = (BLOCK - self.held).min(piece.len());
            self.block[self.held..self.held + k].copy_from_slice(&piece[..k]);
            self.held += k;
            piece = &piece[k..];
            if self.held < BLOCK {
                return;
            }
            let block = self.block;
            self.compress(&block);
            self.held = 0;
        }
        let whole = piece.len() / BLOCK * BLOCK;
        self.compress(&piece[..whole]);
        let tail = &piece[whole..];
        self.block[..tail.len()].copy_from_slice(tail);
        self.held = tail.len();
    }

    /// Compresses whole blocks into the whole state, and from the second chunk on into the
    /// chunk's state too.
    fn compress(&mut self, blocks: &[u8]) {
        match self.total < CHUNK {
            true => states::one(&mut self.whole, blocks),
            false => states::pair(&mut self.whole, &mut self.chunk, blocks),
        }
    }

    /// A chunk's last byte was hashed (no block is held: a chunk is whole blocks): its digest
    /// is kept.
    fn end_chunk(&mut self) {
        let state = match self.total == CHUNK {
            true => self.whole,
            false => std::mem::replace(&mut self.chunk, IV),
        };
        self.chunks.push(states::finish(state, &[], CHUNK));
        self.in_chunk = 0;
    }

    /// The digests of what was written.
    pub fn finish(mut self) -> MemberDigest {
        let tail = &self.block[..self.held];
        if self.total <= CHUNK {
            self.chunks.clear();
        } else if self.in_chunk > 0 {
            self.chunks.push(states::finish(self.chunk, tail, self.in_chunk));
        }
        MemberDigest { whole: states::finish(self.whole, tail, self.total), chunks: self.chunks }
    }
}

impl Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::sha256 as reference_sha256;

    /// The digests by definition: SHA-256 of the whole, and of each chunk when over one chunk.
    fn reference(data: &[u8]) -> MemberDigest {
        let chunks = match data.len() as u64 > CHUNK {
            true => data.chunks(CHUNK as usize).map(reference_sha256).collect(),
            false => Vec::new(),
        };
        MemberDigest { whole: reference_sha256(data), chunks }
    }

    fn fed(data: &[u8], piece: usize) -> MemberDigest {
        let mut h = Hasher::new(data.len() as u64);
        for p in data.chunks(piece) {
            h.write_all(p).unwrap();
        }
        h.finish()
    }

    #[test]
    fn digests_equal_the_definition_at_every_boundary() {
        let c = CHUNK as usize;
        let bytes: Vec<u8> = (0..3 * c + 5).map(|i| (i * 31 % 251) as u8).collect();
        for len in [0, 1, 63, 64, 65, c - 1, c, c + 1, c + 64, 2 * c, 2 * c + 7, 3 * c + 5] {
            let data = &bytes[..len];
            let want = reference(data);
            for piece in [63, 1 << 20, 300_001, c + 3] {
                assert_eq!(fed(data, piece), want, "{len} bytes in pieces of {piece}");
            }
        }
        for len in 0..=200 {
            assert_eq!(fed(&bytes[..len], 1), reference(&bytes[..len]), "{len} bytes, byte by byte");
        }
    }
}
