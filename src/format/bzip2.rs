//! The block structure of a bzip2 file: where its blocks start and end, to the bit, so that one
//! block can be decoded on its own.
//!
//! A bzip2 stream is `BZh` and a level digit, then blocks, each starting with the 48-bit magic
//! `0x314159265359` and its CRC32 (32 bits), then the end-of-stream marker `0x177245385090` with
//! the stream's combined CRC (32 bits), padded to a byte. Blocks are not byte-aligned, and their
//! lengths are nowhere recorded: a block ends where the next marker begins. Several streams may
//! follow one another (`pbzip2`, `cat a.bz2 b.bz2`).
//!
//! - [`next_marker`] finds the next block or end-of-stream magic at any bit offset. The magics can
//!   also occur by chance inside a block's Huffman-coded data (once in 2^48 bit positions), so a
//!   marker found this way is a candidate: whoever decodes a block checks its CRC, and merges a
//!   block that does not decode with the next candidate.
//! - [`lone_block`] makes a bzip2 stream of one block: the header, the block's bits shifted to
//!   the start, and an end marker whose combined CRC is the block's own (the combined CRC of a
//!   one-block stream). Any bzip2 decoder decodes it, and checks the block's CRC on the way.
//!
//! Bits count from the high bit of the file's first byte.

/// The block magic (digits of π).
pub const BLOCK_MAGIC: u64 = 0x3141_5926_5359;
/// The end-of-stream magic (digits of √π).
pub const END_MAGIC: u64 = 0x1772_4538_5090;
/// Bits of a marker and the CRC after it.
pub const MARKER_BITS: u64 = 48 + 32;

/// What a marker found by [`next_marker`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// A block's start.
    Block,
    /// A stream's end.
    End,
}

/// The `n` bits (at most 56) of `b` at bit `bit`, as the low bits of the result; zeros past the
/// end of `b`.
pub fn bits(b: &[u8], bit: u64, n: u32) -> u64 {
    assert!(n <= 56, "at most 56 bits at a time");
    let byte = usize::try_from(bit / 8).unwrap_or(usize::MAX);
    let shift = (bit % 8) as u32;
    let mut w = 0u64;
    for i in 0..8 {
        w = (w << 8) | u64::from(byte.checked_add(i).and_then(|k| b.get(k)).copied().unwrap_or(0));
    }
    if n == 0 {
        return 0;
    }
    // Bounded: shift < 8 and 0 < n <= 56, so the n bits are inside the 64 loaded.
    #[allow(clippy::arithmetic_side_effects)]
    let v = (w << shift) >> (64 - n);
    v
}

/// Whether the byte after a marker's first could belong to one: for each marker and each of its
/// 8 bit alignments, the second byte of the file it covers is fixed.
// Bounded: s < 8, so 32 + s < 40 and s + 1 <= 8.
#[allow(clippy::arithmetic_side_effects)]
const fn prefilter() -> [bool; 256] {
    let mut t = [false; 256];
    let mut s = 0;
    while s < 8 {
        // A marker starting at bit s of a byte covers the whole next byte with its bits
        // [8 - s, 16 - s), which are bits 32 + s .. 40 + s counted from its low end.
        t[((BLOCK_MAGIC >> (32 + s)) & 0xff) as usize] = true;
        t[((END_MAGIC >> (32 + s)) & 0xff) as usize] = true;
        s += 1;
    }
    t
}

const MAYBE: [bool; 256] = prefilter();

/// The first block or end-of-stream magic at bit `from` or later, and which it is.
pub fn next_marker(b: &[u8], from: u64) -> Option<(u64, Marker)> {
    let total = (b.len() as u64).checked_mul(8)?;
    let first = usize::try_from(from / 8).ok()?;
    for p in first..b.len() {
        match b.get(p.checked_add(1)?) {
            Some(&next) if MAYBE[next as usize] => {}
            _ => continue,
        }
        let base = (p as u64).checked_mul(8)?;
        for s in 0..8u64 {
            let bit = base.checked_add(s)?;
            if bit < from {
                continue;
            }
            if bit.checked_add(48)? > total {
                return None;
            }
            match bits(b, bit, 48) {
                BLOCK_MAGIC => return Some((bit, Marker::Block)),
                END_MAGIC => return Some((bit, Marker::End)),
                _ => {}
            }
        }
    }
    None
}

/// The level digit of a stream header (`BZh1`..`BZh9`) at byte `at`, if there is one.
pub fn stream_header(b: &[u8], at: usize) -> Option<u8> {
    let h = b.get(at..at.checked_add(4)?)?;
    (h[..3] == *b"BZh" && (b'1'..=b'9').contains(&h[3])).then(|| h[3].wrapping_sub(b'0'))
}

/// The CRC stored after the marker at `bit` (a block's CRC, or a stream's combined CRC).
pub fn crc_after(b: &[u8], bit: u64) -> u32 {
    // 32 bits always fit in a u32.
    bits(b, bit.saturating_add(48), 32) as u32
}

/// A stream's combined CRC after one more block with CRC `block`.
pub fn combine(acc: u32, block: u32) -> u32 {
    acc.rotate_left(1) ^ block
}

/// Appends bits to a byte vector, high bit first.
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter {
    /// Appends the low `n` bits of `v` (`n` at most 56).
    // Bounded: self.n < 8 and 0 < n <= 56, so at most 63 bits are held, and the shifts and
    // subtractions stay within 0..64.
    #[allow(clippy::arithmetic_side_effects)]
    fn put(&mut self, v: u64, n: u32) {
        debug_assert!(n <= 56 && self.n < 8);
        if n == 0 {
            return;
        }
        self.acc = (self.acc << n) | (v & ((1u64 << n) - 1));
        self.n += n;
        while self.n >= 8 {
            self.n -= 8;
            self.out.push((self.acc >> self.n) as u8);
        }
        self.acc &= (1u64 << self.n) - 1;
    }

    /// The bytes, the last one padded with zero bits.
    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            let pad = 8u32.saturating_sub(self.n);
            self.put(0, pad);
        }
        self.out
    }
}

/// A bzip2 stream holding only the block whose bits are `[start, end)` of `b` (`start` at its
/// block magic, `end` where the next marker begins).
pub fn lone_block(b: &[u8], start: u64, end: u64) -> Vec<u8> {
    let len = end.saturating_sub(start);
    let bytes = usize::try_from(len / 8).unwrap_or(0).saturating_add(16);
    let mut w = BitWriter { out: Vec::with_capacity(bytes), acc: 0, n: 0 };
    for &c in b"BZh9" {
        w.put(u64::from(c), 8);
    }
    let mut at = start;
    while at < end {
        // end - at > 0, so n is 1..=56.
        let n = end.saturating_sub(at).min(56) as u32;
        w.put(bits(b, at, n), n);
        at = at.saturating_add(u64::from(n));
    }
    w.put(END_MAGIC, 48);
    w.put(u64::from(crc_after(b, start)), 32);
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn compress(data: &[u8], level: u32) -> Vec<u8> {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::new(level));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn blocks_are_found_and_decode_alone() {
        // Level 1: blocks of 100 kB; pseudo-random text so that they do not compress to nothing.
        let mut x = 1u64;
        let data: Vec<u8> = (0..450_000)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                b"abcdefghij klmnop\n"[(x >> 59) as usize % 18]
            })
            .collect();
        let z = compress(&data, 1);
        assert_eq!(stream_header(&z, 0), Some(1));
        let mut at = 32;
        let mut out = Vec::new();
        let mut crc = 0;
        loop {
            let (bit, m) = next_marker(&z, at).unwrap();
            assert_eq!(bit, at, "markers follow one another");
            if m == Marker::End {
                assert_eq!(crc_after(&z, bit), crc);
                break;
            }
            let (end, _) = next_marker(&z, bit + MARKER_BITS).unwrap();
            crc = combine(crc, crc_after(&z, bit));
            bzip2::read::BzDecoder::new(&lone_block(&z, bit, end)[..]).read_to_end(&mut out).unwrap();
            at = end;
        }
        assert_eq!(out, data);
        assert!(next_marker(&z, at + 1).is_none());
    }

    #[test]
    fn bits_read_across_bytes() {
        let b = [0b1010_1010, 0b1111_0000, 0xff];
        assert_eq!(bits(&b, 0, 4), 0b1010);
        assert_eq!(bits(&b, 6, 6), 0b10_1111);
        assert_eq!(bits(&b, 20, 8), 0b1111_0000);
        assert_eq!(bits(&b, 1000, 8), 0);
    }
}
