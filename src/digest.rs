//! Member digests (issue #36): SHA-256 of a member's logical content and of each 4 MiB chunk of
//! it ([`crate::format::digests`] is the codec). [`Hasher`] computes them from the content as it
//! is written to it; [`Checker`] passes content on only once the digest of what it passes holds.
//!
//! `sha2` picks its SHA-NI (or AVX2) code at run time (`cpufeatures`). A large member's whole
//! digest and its chunk digests (after the first) are two hashes of the same bytes: they run
//! side by side (`rayon::join`), so that on two cores they cost the time of one; or, split into
//! [`Part`]s, on two threads that a pipeline keeps busy without waiting for each other.

use std::io::{self, Write};
use std::ops::Range;

use sha2::{Digest, Sha256};

use crate::format::digests::{chunks_for, Found, MemberDigest, CHUNK};

/// Below this many bytes a piece is hashed twice in turn rather than side by side.
const JOIN_MIN: usize = 256 << 10;

/// Which of a member's digests a [`Hasher`] computes. A member's whole digest and its chunk
/// digests may be computed by two hashers of the same content, each on its own thread
/// ([`Hasher::part`]), and put together with [`MemberDigest::join_parts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Part {
    /// All of them.
    #[default]
    All,
    /// The whole digest, and the first chunk's (which costs nothing more: see [`Hasher`]).
    Whole,
    /// The chunk digests after the first.
    Rest,
}

/// Computes a member's [`MemberDigest`] from its logical content, written in order.
///
/// The first chunk's digest is the whole digest's state after [`CHUNK`] bytes, finished: both
/// start from SHA-256's initial state and take the same first bytes. So the first chunk is
/// hashed once, and a member's content is hashed twice only from its second chunk on.
#[derive(Clone, Default)]
pub struct Hasher {
    whole: Sha256,
    chunk: Sha256,
    in_chunk: u64,
    total: u64,
    chunks: Vec<[u8; 32]>,
    part: Part,
}

impl Hasher {
    /// A hasher for a member of logical size `size` (only to reserve room, and no more than
    /// 1,024 chunks' worth: the size is what a header says, which a damaged one can make 2^64).
    pub fn new(size: u64) -> Hasher {
        Hasher { chunks: Vec::with_capacity(chunks_for(size).min(1024) as usize), ..Hasher::default() }
    }

    /// A hasher of `part` of a member's digests, of logical size `size`.
    pub fn part(size: u64, part: Part) -> Hasher {
        Hasher { part, ..Hasher::new(size) }
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

    /// Hashes `piece`, which lies within one chunk, into what this hasher computes.
    fn hash_piece(&mut self, piece: &[u8]) {
        let first = self.total < CHUNK;
        let whole = self.part != Part::Rest;
        let chunk = !first && self.part != Part::Whole;
        let (w, c) = (&mut self.whole, &mut self.chunk);
        match (whole, chunk) {
            (true, true) if piece.len() >= JOIN_MIN => {
                rayon::join(|| w.update(piece), || c.update(piece));
            }
            (true, true) => {
                w.update(piece);
                c.update(piece);
            }
            (true, false) => w.update(piece),
            (false, true) => c.update(piece),
            (false, false) => {}
        }
    }

    /// A chunk's last byte was hashed: its digest is kept.
    fn end_chunk(&mut self) {
        if self.total == CHUNK {
            if self.part != Part::Rest {
                self.chunks.push(self.whole.clone().finalize().into());
            }
        } else if self.part != Part::Whole {
            self.chunks.push(std::mem::take(&mut self.chunk).finalize().into());
        }
        self.in_chunk = 0;
    }

    /// The digests of what was written (of a [`Part::Rest`] hasher, the whole digest is not
    /// one: see [`MemberDigest::join_parts`]).
    pub fn finish(mut self) -> MemberDigest {
        if self.total <= CHUNK {
            self.chunks.clear();
        } else if self.in_chunk > 0 && self.part != Part::Whole {
            self.chunks.push(self.chunk.finalize().into());
        }
        MemberDigest { whole: self.whole.finalize().into(), chunks: self.chunks }
    }
}

impl MemberDigest {
    /// A member's digests from the digests of its [`Part::Whole`] and its [`Part::Rest`].
    pub fn join_parts(whole: MemberDigest, rest: MemberDigest) -> MemberDigest {
        let mut chunks = whole.chunks;
        chunks.extend(rest.chunks);
        MemberDigest { whole: whole.whole, chunks }
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

/// SHA-256 of `data`, as hex.
pub fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Content whose digest did not hold: the logical byte range of the member that differs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bytes {}..{} of the member differ from the index's digest", range.start, range.end)]
pub struct Mismatch {
    /// The logical bytes whose digest did not hold.
    pub range: Range<u64>,
}

impl Mismatch {
    /// The mismatch carried by an I/O error from a [`Checker`], if it is one.
    pub fn of_io(e: &io::Error) -> Option<Mismatch> {
        e.get_ref().and_then(|inner| inner.downcast_ref::<Mismatch>()).cloned()
    }
}

/// Writes a member's logical content to `out` once its digest holds: a member with no chunk
/// digests (at most [`CHUNK`] bytes) whole, a larger one chunk by chunk. A mismatch is an I/O
/// error carrying a [`Mismatch`] ([`Mismatch::of_io`]), and the bytes it covers are never
/// written.
pub struct Checker<'a, 'o> {
    expected: Found<'a>,
    out: &'o mut dyn Write,
    buf: Vec<u8>,
    at: u64,
}

impl<'a, 'o> Checker<'a, 'o> {
    /// A checker of a member whose digests are `expected`, writing to `out`.
    pub fn new(expected: Found<'a>, out: &'o mut dyn Write) -> Checker<'a, 'o> {
        Checker { expected, out, buf: Vec::new(), at: 0 }
    }

    fn chunked(&self) -> bool {
        self.expected.chunk_count() > 0
    }

    /// Checks and writes what is held (a whole chunk, or the member's last bytes).
    fn release(&mut self) -> io::Result<()> {
        let start = self.at;
        let end = start + self.buf.len() as u64;
        let good = match self.chunked() {
            false => sha256(&self.buf)[..] == *self.expected.whole,
            true => self.expected.chunk(start / CHUNK).is_some_and(|c| sha256(&self.buf)[..] == *c),
        };
        if !good {
            return Err(io::Error::other(Mismatch { range: start..end }));
        }
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.at = end;
        Ok(())
    }

    /// Checks and writes the rest; a mismatch too if the content had another length than the
    /// digests describe.
    pub fn finish(mut self) -> io::Result<()> {
        let got = self.at + self.buf.len() as u64;
        if chunks_for(got) != self.expected.chunk_count() {
            return Err(io::Error::other(Mismatch { range: self.at..got }));
        }
        if !self.buf.is_empty() || got == 0 {
            self.release()?;
        }
        Ok(())
    }
}

impl Write for Checker<'_, '_> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let n = data.len();
        while !data.is_empty() {
            let k = match self.chunked() {
                true => usize::try_from(CHUNK - self.buf.len() as u64).unwrap_or(usize::MAX).min(data.len()),
                false => data.len(),
            };
            self.buf.extend_from_slice(&data[..k]);
            data = &data[k..];
            if self.chunked() && self.buf.len() as u64 == CHUNK {
                self.release()?;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Checks the file `f`, just written, against `expected`: `Ok(Err(_))` names the bytes that
/// differ.
pub fn check_file(f: &std::fs::File, expected: Found<'_>) -> io::Result<Result<(), Mismatch>> {
    use std::os::unix::fs::FileExt;
    let len = f.metadata()?.len();
    let mut sink = io::sink();
    let mut c = Checker::new(expected, &mut sink);
    let mut buf = vec![0u8; usize::try_from(CHUNK.min(len)).unwrap_or(0)];
    let mut at = 0u64;
    while at < len {
        let n = usize::try_from((len - at).min(CHUNK)).unwrap_or(0);
        f.read_exact_at(&mut buf[..n], at)?;
        if let Err(e) = c.write_all(&buf[..n]) {
            return Mismatch::of_io(&e).map(Err).ok_or(e);
        }
        at += n as u64;
    }
    match c.finish() {
        Ok(()) => Ok(Ok(())),
        Err(e) => Mismatch::of_io(&e).map(Err).ok_or(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digests by definition: SHA-256 of the whole, and of each chunk when over one chunk.
    fn reference(data: &[u8]) -> MemberDigest {
        let chunks = if data.len() as u64 > CHUNK { data.chunks(CHUNK as usize).map(sha256).collect() } else { Vec::new() };
        MemberDigest { whole: sha256(data), chunks }
    }

    fn fed(data: &[u8], part: Part, piece: usize) -> MemberDigest {
        let mut h = Hasher::part(data.len() as u64, part);
        for p in data.chunks(piece) {
            h.write_all(p).unwrap();
        }
        h.finish()
    }

    #[test]
    fn parts_and_all_equal_the_definition_at_every_boundary() {
        let c = CHUNK as usize;
        let bytes: Vec<u8> = (0..3 * c + 5).map(|i| (i * 31 % 251) as u8).collect();
        for len in [0, 1, c - 1, c, c + 1, 2 * c, 2 * c + 7, 3 * c + 5] {
            let data = &bytes[..len];
            let want = reference(data);
            for piece in [1 << 20, 300_001, c + 3] {
                assert_eq!(fed(data, Part::All, piece), want, "all, {len} bytes in pieces of {piece}");
                let joined = MemberDigest::join_parts(fed(data, Part::Whole, piece), fed(data, Part::Rest, piece));
                assert_eq!(joined, want, "parts, {len} bytes in pieces of {piece}");
            }
        }
    }
}
