//! `tarfs scrub` (issue #36): every member of an archive read and compared with the digests
//! its index recorded, so that damage since it was indexed (rot on a tape, in cold storage) is
//! found and named, with the bytes of each member that differ. Reading may be held to a rate
//! ([`RateLimit`]) so that a nightly scrub does not starve the machine.

use std::io::{self, Write};
use std::ops::Range;

use crate::digest::Hasher;
use crate::error::{Error, Result};
use crate::format::digests::{chunks_for, Found, MemberDigest, CHUNK};
use crate::ops::read::Reader;
use crate::scan::Entry;

mod rate;

pub use rate::RateLimit;

/// A damaged member: its name and the logical bytes whose digests did not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The member's name (quoted for messages).
    pub name: String,
    /// From the first to the end of the last chunk whose digest did not hold (the whole
    /// member for one of at most 4 MiB).
    pub range: Range<u64>,
}

/// What a scrub of one archive found.
#[derive(Debug, Clone, Default)]
pub struct ScrubReport {
    /// Whether its index has member digests (without them nothing is checked).
    pub has_digests: bool,
    /// Members whose content was checked.
    pub checked: u64,
    /// Bytes of logical content read.
    pub bytes: u64,
    /// The damaged members, in archive order.
    pub damaged: Vec<Damage>,
}

/// Whether `e` is a file whose content `scrub` reads (regular, contiguous or sparse).
pub fn is_file(e: &Entry<'_>) -> bool {
    matches!(e.typeflag, b'0' | b'\0' | b'7' | b'S')
}

/// Reads every file of `reader`'s archive and compares it with its digests, at most at
/// `limit`'s rate. An archive whose index has no digests is reported so, with nothing read.
pub fn scrub(reader: &Reader<'_>, limit: Option<&RateLimit>) -> Result<ScrubReport> {
    let Some(view) = reader.digests()? else { return Ok(ScrubReport::default()) };
    let mut report = ScrubReport { has_digests: true, ..ScrubReport::default() };
    reader.for_each(|e| {
        let Some(found) = reader.digest_of(&view, e).filter(|_| is_file(e)) else { return Ok(()) };
        let mut hasher = Hasher::default();
        let mut w = Throttled { inner: &mut hasher, limit, bytes: 0 };
        reader.write_unchecked(e, &mut w)?;
        report.bytes += w.bytes;
        report.checked += 1;
        let size = w.bytes;
        if let Some(range) = differs(&hasher.finish(), &found, size) {
            report.damaged.push(Damage { name: crate::quote::diag(&e.path()), range });
        }
        Ok(())
    })?;
    Ok(report)
}

/// Where `got` (the digests of `size` bytes read) differs from `want`: from the first chunk
/// that differs to the end of the last; `None` where all hold.
pub fn differs(got: &MemberDigest, want: &Found<'_>, size: u64) -> Option<Range<u64>> {
    if want.chunk_count() != chunks_for(size) || got.chunks.len() as u64 != want.chunk_count() {
        return Some(0..size);
    }
    if want.chunk_count() == 0 {
        return (got.whole[..] != *want.whole).then_some(0..size);
    }
    let bad: Vec<u64> = (0..want.chunk_count()).filter(|&k| want.chunk(k).is_none_or(|c| got.chunks[k as usize][..] != *c)).collect();
    match (bad.first(), bad.last()) {
        (Some(&first), Some(&last)) => Some(first * CHUNK..((last + 1) * CHUNK).min(size)),
        _ => (got.whole[..] != *want.whole).then_some(0..size),
    }
}

/// The error of an archive with damaged members: each named with its bytes.
pub fn damaged_error(reader: &Reader<'_>, damaged: Vec<Damage>) -> Error {
    Error::DamagedMembers { path: reader.archive().path().to_path_buf(), members: damaged.into_iter().map(|d| (d.name, d.range)).collect() }
}

/// A writer that counts what passes and holds it to a rate, in pieces of at most 1 MiB.
struct Throttled<'a, 'w> {
    inner: &'w mut dyn Write,
    limit: Option<&'a RateLimit>,
    bytes: u64,
}

impl Write for Throttled<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for piece in buf.chunks(1 << 20) {
            if let Some(l) = self.limit {
                l.take(piece.len() as u64);
            }
            self.inner.write_all(piece)?;
            self.bytes += piece.len() as u64;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
