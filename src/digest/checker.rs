//! [`Checker`]: a member's content passed on only once its digests hold.

use std::io::{self, Write};
use std::ops::Range;

use super::sha256;
use crate::format::digests::{chunks_for, Found, CHUNK};

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
