//! Deflating a v2 body ([`super::DEFLATED`]) in pieces, on every core.
//!
//! The body is cut into pieces of at most [`PIECE`] bytes, each deflated on its own and ended
//! with a sync flush (an empty stored block, which leaves the stream at a byte boundary), the
//! last with the final block. Joined, they are one raw deflate stream (RFC 1951) that any
//! inflater reads: no piece refers back into another. Where the pieces fall depends only on
//! the body, so the bytes do not depend on how many threads deflated them.
//!
//! The digests part is mostly SHA-256 digests, which do not compress; its pieces take a fast
//! level, the rest zlib's default. Measured on the sidecar of a `.tar.gz` of 201k small
//! members (a 20.5 MB body, 9.6 MB of it digests):
//! - one stream at level 9, one thread: 634 ms of deflating, 13.87 MB of sidecar; at level 6,
//!   312 ms for the same size;
//! - in pieces, on two cores, digests at level 1, 2 or 4: the whole `index` 1.59, 1.62 or
//!   1.63 s (it was 2.13 s), for 14.35, 13.85 or 13.85 MB. Level 2 it is.

use std::ops::Range;

use flate2::{Compress, Compression, FlushCompress, Status};
use rayon::prelude::*;

/// Bytes of body deflated as one piece: large enough that a piece's fresh dictionary costs
/// little, small enough to share out among cores.
const PIECE: usize = 1 << 20;

/// The level of the pieces outside `fast` (zlib's default: level 9 took twice as long for a
/// smaller gain than its cost).
const LEVEL: u32 = 6;

/// The level of the pieces inside `fast` (the digests part).
const FAST_LEVEL: u32 = 2;

/// `bytes` as a raw deflate stream, deflated in pieces, those within `fast` at a faster level.
pub(super) fn deflate(bytes: &[u8], fast: Range<usize>) -> Vec<u8> {
    let pieces = pieces(bytes.len(), fast);
    let last = pieces.len().saturating_sub(1);
    let out: Vec<Vec<u8>> = pieces.into_par_iter().enumerate().map(|(k, (r, level))| piece(&bytes[r], level, k == last)).collect();
    out.concat()
}

/// Where the pieces fall and their levels: cut every [`PIECE`] bytes and at `fast`'s ends.
/// Never empty (an empty body is one empty piece).
fn pieces(len: usize, fast: Range<usize>) -> Vec<(Range<usize>, u32)> {
    let fast = fast.start.min(len)..fast.end.min(len).max(fast.start.min(len));
    let spans = [(0..fast.start, LEVEL), (fast.clone(), FAST_LEVEL), (fast.end..len, LEVEL)];
    let mut out: Vec<(Range<usize>, u32)> = Vec::new();
    for (span, level) in spans {
        let mut at = span.start;
        while at < span.end {
            let end = at.saturating_add(PIECE).min(span.end);
            out.push((at..end, level));
            at = end;
        }
    }
    if out.is_empty() {
        out.push((0..0, LEVEL));
    }
    out
}

/// One piece deflated with a fresh dictionary: ended by a sync flush, or, the last, by the
/// final block.
fn piece(bytes: &[u8], level: u32, last: bool) -> Vec<u8> {
    let mut c = Compress::new(Compression::new(level), false);
    let flush = if last { FlushCompress::Finish } else { FlushCompress::Sync };
    let mut out = Vec::with_capacity((bytes.len() / 2).saturating_add(64));
    loop {
        let fed = usize::try_from(c.total_in()).unwrap_or(bytes.len()).min(bytes.len());
        let status = c.compress_vec(&bytes[fed..], &mut out, flush).expect("deflating in memory");
        let all_in = c.total_in() == bytes.len() as u64;
        // zlib's rule: a flush is complete once a call leaves room in the output.
        let done = match flush {
            FlushCompress::Finish => status == Status::StreamEnd,
            _ => all_in && out.len() < out.capacity(),
        };
        if done {
            return out;
        }
        out.reserve(out.capacity().max(64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn inflate(d: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::DeflateDecoder::new(d).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn pieces_join_into_one_stream_that_inflates_to_the_body() {
        let body: Vec<u8> = (0..3 * PIECE + 17).map(|i| if i % 3 == 0 { (i * 7 % 251) as u8 } else { (i / 100) as u8 }).collect();
        for len in [0, 1, 100, PIECE - 1, PIECE, PIECE + 1, 3 * PIECE + 17] {
            for fast in [0..0, 10..50, 0..len, PIECE / 2..PIECE + 3, len..len + 10] {
                let d = deflate(&body[..len], fast.clone());
                assert!(inflate(&d) == body[..len], "{len} bytes, fast {fast:?}");
            }
        }
    }

    #[test]
    fn pieces_cover_the_body_in_order_at_their_levels() {
        let p = pieces(3 * PIECE, 100..PIECE + 200);
        let ends: Vec<(usize, usize, u32)> = p.iter().map(|(r, l)| (r.start, r.end, *l)).collect();
        assert_eq!(ends, vec![(0, 100, LEVEL), (100, PIECE + 100, FAST_LEVEL), (PIECE + 100, PIECE + 200, FAST_LEVEL), (PIECE + 200, 2 * PIECE + 200, LEVEL), (2 * PIECE + 200, 3 * PIECE, LEVEL)]);
        assert_eq!(pieces(0, 0..0), vec![(0..0, LEVEL)]);
    }
}
