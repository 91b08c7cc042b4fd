//! bzip2 seek points: every block, to the bit ([`crate::format::bzip2`]). A bzip2 block
//! decodes on its own, so any bzip2 file of more than one block (all those over 900 kB that
//! `bzip2`, `pbzip2` and `lbzip2` write) can be read from the block that holds a member.
//!
//! [`Bzip2Pass`] is the indexing pass: it follows the file marker by marker, decodes the blocks
//! ahead of the scanner in parallel (each one alone, checked against its CRC, and each stream
//! against its combined CRC), and notes each block's bits and where its output starts. A marker
//! found where none is (the magics can occur by chance inside a block) makes a block that does
//! not decode: it is merged with the next one and decoded again. It looks at the compressed
//! bytes through a [`Window`]: a mapped file's, or an object's read once as a stream (issue
//! #34), held from the block being decoded to as far ahead as the blocks decoded together and
//! their merges can reach.

use std::collections::VecDeque;
use std::io::{self, Read};

use rayon::prelude::*;

use super::window::Window;
use super::{binding_of_archive, Fetch};
use crate::format::bzip2::{self as shape, Marker, BLOCK_MAGIC, END_MAGIC, MARKER_BITS};
use crate::format::seek::{self, PieceHasher};
use crate::archive::ArchiveFile;

/// The most compressed bits a block can have (900 kB of input, at worst slightly expanded).
const MAX_BLOCK_BITS: u64 = 8 * (2 << 20);
/// The most a block can decode to (900 kB of runs expand by at most 255/5).
const MAX_BLOCK_OUT: u64 = 64 << 20;
/// Candidate markers tried past a block that does not decode before giving up on it.
const MAX_MERGES: usize = 64;
/// Bytes of decompressed output per digest: smaller than the usual piece, so that a read of a
/// small member decodes the one block it is in, not every block a 1 MiB piece overlaps (a
/// bzip2 block holds at most 900 kB; decoding one takes about 50 ms).
pub const PIECE_BZIP2: u64 = 64 << 10;

/// The bytes a window must hold from a block's start for a pass decoding `ahead` blocks
/// together: theirs, and as far as the last one's merges reach.
fn reach(ahead: usize) -> usize {
    (ahead + 2).saturating_mul((MAX_BLOCK_BITS / 8) as usize)
}

/// The block whose bits are `[start, end)` of `bytes`, decoded.
fn decode(bytes: &[u8], start: u64, end: u64) -> io::Result<Vec<u8>> {
    let stream = shape::lone_block(bytes, start, end);
    let mut out = Vec::new();
    bzip2::read::BzDecoder::new(&stream[..]).take(MAX_BLOCK_OUT + 1).read_to_end(&mut out)?;
    if out.len() as u64 > MAX_BLOCK_OUT {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "a bzip2 block decodes to more than any block can"));
    }
    Ok(out)
}

/// The block whose bits are `[start, end)` of `file`, decoded: from the bytes that hold them.
fn decode_in(file: &dyn ArchiveFile, start: u64, end: u64) -> io::Result<Vec<u8>> {
    if let Some(bytes) = file.lend() {
        return decode(bytes, start, end);
    }
    let first = start / 8;
    let len = usize::try_from(end.div_ceil(8) - first).map_err(io::Error::other)?;
    let bytes = file.read_at(first, len)?;
    if bytes.len() != len {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file ends inside the block"));
    }
    decode(&bytes, start - first * 8, end - first * 8)
}

/// Where a block is: its first bit, the bit where it ends, and where its output starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// Its first bit (at its magic).
    pub start: u64,
    /// The bit where the next marker starts.
    pub end: u64,
    /// Offset of its output in the decompressed stream.
    pub offset: u64,
}

/// Blocks decoded together, at most, in a pass over a stream (its window holds that many
/// blocks' bits, and one more).
const STREAMED_AHEAD: usize = 8;

/// One pass over a bzip2 file, block by block.
pub struct Bzip2Pass<'a> {
    file: &'a dyn ArchiveFile,
    win: Window<'a>,
    ahead: usize,
    /// The bit where the next marker is expected.
    at: u64,
    /// The combined CRC of the stream's blocks so far.
    crc: u32,
    done: bool,
    ready: VecDeque<Vec<u8>>,
    out: Vec<u8>,
    pos: usize,
    blocks: Vec<Block>,
    produced: u64,
    hasher: PieceHasher,
}

impl<'a> Bzip2Pass<'a> {
    /// Decodes the bzip2 file `file`, `threads` blocks at a time (0: one per core): its lent
    /// bytes, else those `input` gives from its start; an error if it does not start with a
    /// bzip2 header.
    pub fn new(file: &'a dyn ArchiveFile, input: Option<Box<dyn Read + Send + 'a>>, threads: usize) -> io::Result<Bzip2Pass<'a>> {
        let threads = if threads == 0 { rayon::current_num_threads() } else { threads };
        let mut ahead = threads.max(1) * 4;
        let mut win = match (file.lend(), input) {
            (Some(bytes), _) => Window::lent(bytes),
            (None, Some(input)) => {
                ahead = ahead.min(STREAMED_AHEAD);
                Window::streamed(input)
            }
            (None, None) => return Err(io::Error::other("a bzip2 file neither lent nor streamed")),
        };
        win.hold(0, reach(ahead))?;
        if shape::stream_header(win.bytes(), 0).is_none() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "byte 0 of the file: not a bzip2 stream header"));
        }
        Ok(Bzip2Pass { file, win, ahead, at: 32, crc: 0, done: false, ready: VecDeque::new(), out: Vec::new(), pos: 0, blocks: Vec::new(), produced: 0, hasher: PieceHasher::new(PIECE_BZIP2) })
    }


    /// Decodes the block at `start`, which did not decode when cut at `end` (`first` said why),
    /// by extending it to later markers.
    fn merge(&self, start: u64, mut end: u64, first: io::Error) -> io::Result<(u64, Vec<u8>)> {
        let (b, o) = (self.win.bytes(), self.win.base_bits());
        for _ in 0..MAX_MERGES {
            let Some((next, _)) = shape::next_marker(b, end + 1 - o).map(|(n, k)| (n + o, k)) else { break };
            if next - start > MAX_BLOCK_BITS {
                break;
            }
            if let Ok(data) = decode(b, start - o, next - o) {
                return Ok((next, data));
            }
            end = next;
        }
        Err(io::Error::new(first.kind(), format!("the bzip2 block at byte {} (bit {}) of the file: {first}", start / 8, start % 8)))
    }

    /// Decodes the next blocks into `ready`; false at the end of the last stream.
    fn refill(&mut self) -> io::Result<bool> {
        while self.ready.is_empty() {
            if self.done {
                return Ok(false);
            }
            let at = self.at;
            self.win.hold(at / 8, reach(self.ahead))?;
            let (b, o) = (self.win.bytes(), self.win.base_bits());
            match shape::bits(b, at - o, 48) {
                END_MAGIC => {
                    let stored = shape::crc_after(b, at - o);
                    if stored != self.crc {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("byte {} of the bzip2 file: the stream's CRC {stored:08x} is not that of its blocks ({:08x})", at / 8, self.crc)));
                    }
                    let next = (at + MARKER_BITS).div_ceil(8);
                    if shape::stream_header(b, usize::try_from(next - o / 8).map_err(io::Error::other)?).is_some() {
                        // Another stream follows (pbzip2, or files concatenated).
                        self.at = (next + 4) * 8;
                        self.crc = 0;
                    } else {
                        // What follows the last stream is ignored, as bzip2 -d does.
                        self.done = true;
                    }
                    continue;
                }
                BLOCK_MAGIC => {}
                _ => return Err(io::Error::new(io::ErrorKind::InvalidData, format!("byte {} (bit {}) of the bzip2 file: neither a block nor the end of a stream", at / 8, at % 8))),
            }
            // The next blocks, each up to the marker after it, decoded together.
            let mut cands = Vec::new();
            let mut s = at;
            while cands.len() < self.ahead {
                let Some((e, kind)) = shape::next_marker(b, s - o + MARKER_BITS).map(|(e, k)| (e + o, k)) else { break };
                cands.push((s, e));
                if kind == Marker::End {
                    break;
                }
                s = e;
            }
            if cands.is_empty() {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("byte {} of the bzip2 file: it ends inside a block", at / 8)));
            }
            let decoded: Vec<io::Result<Vec<u8>>> = cands.par_iter().map(|&(s, e)| decode(b, s - o, e - o)).collect();
            for (&(s, e), r) in cands.iter().zip(decoded) {
                let (end, data, merged) = match r {
                    Ok(data) => (e, data, false),
                    Err(first) => {
                        let (end, data) = self.merge(s, e, first)?;
                        (end, data, true)
                    }
                };
                self.blocks.push(Block { start: s, end, offset: self.produced });
                self.crc = shape::combine(self.crc, shape::crc_after(b, s - o));
                self.produced += data.len() as u64;
                self.ready.push_back(data);
                self.at = end;
                if merged {
                    // The candidates after it started inside it.
                    break;
                }
            }
            crate::watch::at(self.at / 8);
        }
        Ok(true)
    }
}

impl super::SeekPass for Bzip2Pass<'_> {
    fn finish(mut self) -> io::Result<(std::result::Result<Vec<u8>, super::NoSeekPoints>, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        let Bzip2Pass { file, blocks, hasher, .. } = self;
        let (digests, total) = hasher.finish();
        if blocks.len() < 2 {
            return Ok((Err(super::NoSeekPoints::Bzip2SingleBlock), 0));
        }
        let mut words = vec![blocks.len() as u64];
        words.extend(blocks.iter().flat_map(|b| [b.start, b.end, b.offset]));
        let section = seek::encode(seek::KIND_BZIP2, file.len(), binding_of_archive(file)?, total, PIECE_BZIP2, &digests, &seek::encode_words(&words));
        Ok((Ok(section), blocks.len() as u64))
    }
}

impl Read for Bzip2Pass<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.out.len() {
            if !self.refill()? {
                return Ok(0);
            }
            self.out = self.ready.pop_front().expect("refilled");
            self.pos = 0;
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Decoding from a bzip2 file's blocks, keeping the block last decoded.
pub struct Blocks<'a> {
    file: &'a dyn ArchiveFile,
    blocks: Vec<Block>,
    total: u64,
    current: Option<(usize, Vec<u8>)>,
}

impl<'a> Blocks<'a> {
    /// The blocks of the seek section `payload`, for the bzip2 file `file`, whose stream has
    /// `total` bytes; why not, when they do not fit it.
    pub fn open(file: &'a dyn ArchiveFile, payload: &[u8], total: u64) -> std::result::Result<Blocks<'a>, super::SeekPointsError> {
        let bad = || super::SeekPointsError::Bzip2Blocks;
        let (w, n) = seek::records(payload, 1, 3).ok_or_else(bad)?;
        let blocks: Vec<Block> = w.chunks_exact(3).map(|b| Block { start: b[0], end: b[1], offset: b[2] }).collect();
        let bits = file.len().saturating_mul(8);
        let each = blocks.iter().all(|b| b.start < b.end && b.end - b.start <= MAX_BLOCK_BITS && b.end <= bits && b.offset < total);
        let ordered = blocks.windows(2).all(|p| p[0].end <= p[1].start && p[0].offset < p[1].offset && p[1].offset - p[0].offset <= MAX_BLOCK_OUT);
        if blocks[0].offset != 0 || !each || !ordered || total - blocks[n - 1].offset > MAX_BLOCK_OUT {
            return Err(bad());
        }
        Ok(Blocks { file, blocks, total, current: None })
    }
}

impl Fetch for Blocks<'_> {
    fn fetch(&mut self, start: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(len);
        let end = start.saturating_add(len as u64);
        while (out.len() as u64) < len as u64 {
            let at = start + out.len() as u64;
            let i = self.blocks.partition_point(|b| b.offset <= at).saturating_sub(1);
            let b = self.blocks[i];
            let size = self.blocks.get(i + 1).map_or(self.total, |n| n.offset) - b.offset;
            if self.current.as_ref().is_none_or(|(k, _)| *k != i) {
                let data = decode_in(self.file, b.start, b.end).map_err(|e| io::Error::new(e.kind(), format!("the bzip2 block at byte {} of the file: {e}", b.start / 8)))?;
                if data.len() as u64 != size {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, format!("the bzip2 block at byte {} of the file decodes to {} bytes, not {size}", b.start / 8, data.len())));
                }
                self.current = Some((i, data));
            }
            let data = &self.current.as_ref().expect("set above").1;
            let from = (at - b.offset) as usize;
            let to = (end - b.offset).min(size) as usize;
            out.extend_from_slice(&data[from..to]);
        }
        Ok(out)
    }
}
