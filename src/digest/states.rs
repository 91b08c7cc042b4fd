//! SHA-256 as states and blocks, for [`super::Hasher`], which feeds one member's bytes to two
//! states at once (its whole digest's and its current chunk's).
//!
//! The `sha2` crate hashes one message per hasher and keeps its state to itself; here a state
//! is its eight words, compressed by [`one`] or, two states over the same blocks, by [`pair`],
//! and finished by [`finish`]. On a CPU with SHA-NI both run `shani`'s code; elsewhere, `sha2`'s
//! own compression (`compress256`, which picks its fastest code at run time), once per state.

use sha2::digest::generic_array::GenericArray;

/// SHA-256's initial state.
pub(crate) const IV: [u32; 8] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/// Bytes in a block.
pub(crate) const BLOCK: usize = 64;

/// Compresses `blocks`, whole blocks, into `state`.
pub(crate) fn one(state: &mut [u32; 8], blocks: &[u8]) {
    debug_assert_eq!(blocks.len() % BLOCK, 0);
    #[cfg(target_arch = "x86_64")]
    if super::shani::available() {
        // SAFETY: `available` found the instructions `one` is compiled for.
        return unsafe { super::shani::one(state, blocks) };
    }
    soft(state, blocks);
}

/// Compresses `blocks`, whole blocks, into both `a` and `b`: what [`one`] does to each, in the
/// time it takes for one where the CPU has SHA-NI.
pub(crate) fn pair(a: &mut [u32; 8], b: &mut [u32; 8], blocks: &[u8]) {
    debug_assert_eq!(blocks.len() % BLOCK, 0);
    #[cfg(target_arch = "x86_64")]
    if super::shani::available() {
        // SAFETY: `available` found the instructions `two` is compiled for.
        return unsafe { super::shani::two(a, b, blocks) };
    }
    soft(a, blocks);
    soft(b, blocks);
}

/// `sha2`'s compression, block by block.
fn soft(state: &mut [u32; 8], blocks: &[u8]) {
    for block in blocks.chunks_exact(BLOCK) {
        sha2::compress256(state, std::slice::from_ref(GenericArray::from_slice(block)));
    }
}

/// The digest of a message of `len` bytes whose whole blocks made `state` and whose last
/// `len % 64` bytes are `tail`: SHA-256's padding (a one bit, zeros, the length in bits) is
/// compressed, and the state's words written big-endian.
pub(crate) fn finish(mut state: [u32; 8], tail: &[u8], len: u64) -> [u8; 32] {
    debug_assert_eq!(tail.len() as u64, len % BLOCK as u64);
    let mut last = [0u8; 2 * BLOCK];
    last[..tail.len()].copy_from_slice(tail);
    last[tail.len()] = 0x80;
    let blocks = if tail.len() + 9 <= BLOCK { BLOCK } else { 2 * BLOCK };
    last[blocks - 8..blocks].copy_from_slice(&len.wrapping_mul(8).to_be_bytes());
    one(&mut state, &last[..blocks]);
    let mut out = [0u8; 32];
    for (o, w) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn digest_with(data: &[u8], compress: impl Fn(&mut [u32; 8], &[u8])) -> [u8; 32] {
        let whole = data.len() / BLOCK * BLOCK;
        let mut s = IV;
        compress(&mut s, &data[..whole]);
        finish(s, &data[whole..], data.len() as u64)
    }

    fn bytes(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect()
    }

    #[test]
    fn one_and_finish_equal_sha2_at_every_padding_edge() {
        let data = bytes(1000);
        for len in (0..=200).chain([447, 448, 511, 512, 999, 1000]) {
            let want: [u8; 32] = Sha256::digest(&data[..len]).into();
            assert_eq!(digest_with(&data[..len], one), want, "{len} bytes");
            assert_eq!(digest_with(&data[..len], soft), want, "{len} bytes, software");
        }
    }

    #[test]
    fn pair_equals_one_on_each_state() {
        let data = bytes(64 * 37);
        let (a0, b0) = (IV, [1, 2, 3, 4, 5, 6, 7, 0xffff_ffff]);
        for blocks in [0, 1, 2, 37] {
            let d = &data[..blocks * BLOCK];
            let (mut a, mut b) = (a0, b0);
            pair(&mut a, &mut b, d);
            let (mut a1, mut b1) = (a0, b0);
            soft(&mut a1, d);
            soft(&mut b1, d);
            assert_eq!((a, b), (a1, b1), "{blocks} blocks");
        }
    }
}
