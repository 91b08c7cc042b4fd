//! The xxh3-64 of a compressed file's bytes, taken as its decoder reads them.
//!
//! An index of a compressed file is bound to the digest of all its bytes
//! ([`crate::ops::index::Binding`]). Hashed in a pass of its own before decoding, a file that
//! is not in the page cache is read twice (and one larger than memory, twice from the disk);
//! taken from the decoder's own reads, it costs no read at all. rapidgzip-core reads a gzip
//! stream front to back on one thread while it records checkpoints (the archives measured here:
//! one member, and 26 concatenated members); on its other paths (BGZF's block walk ahead of the
//! decoding, parallel decoders) reads come out of order, the digest is not known
//! ([`ReadDigest::of`] is `None`), and the caller hashes the file instead, as before.

use std::io;
use std::sync::{Arc, Mutex};

use rapidgzip_core::ReadAt;

/// The bytes read so far, in order: where the next one is, their digest, and whether a read
/// left a gap.
struct Seen {
    next: u64,
    hash: xxhash_rust::xxh3::Xxh3,
    gap: bool,
}

/// A handle on the digest of what a [`Digesting`] source has read.
#[derive(Clone)]
pub struct ReadDigest(Arc<Mutex<Seen>>);

impl Default for ReadDigest {
    fn default() -> Self {
        ReadDigest(Arc::new(Mutex::new(Seen { next: 0, hash: xxhash_rust::xxh3::Xxh3::new(), gap: false })))
    }
}

impl ReadDigest {
    /// The xxh3-64 of the file's bytes, if its `len` bytes were all read, in order.
    pub fn of(&self, len: u64) -> Option<u64> {
        let s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        (!s.gap && s.next == len).then(|| s.hash.digest())
    }

    /// Notes `bytes`, read at `offset`: what is new of them is hashed (a read again of hashed
    /// bytes adds nothing; one past the next byte leaves a gap).
    fn note(&self, offset: u64, bytes: &[u8]) {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let end = offset.saturating_add(bytes.len() as u64);
        if offset > s.next {
            s.gap = true;
        } else if end > s.next {
            // Within `bytes`: `offset <= next < end`.
            let from = usize::try_from(s.next - offset).unwrap_or(usize::MAX);
            s.hash.update(&bytes[from..]);
            s.next = end;
        }
    }
}

/// A source whose reads are digested on the way ([`ReadDigest`]).
pub struct Digesting<R> {
    inner: R,
    seen: ReadDigest,
}

impl<R> Digesting<R> {
    /// `inner`, and the handle on the digest of what is read from it.
    pub fn new(inner: R) -> (Digesting<R>, ReadDigest) {
        let seen = ReadDigest::default();
        (Digesting { inner, seen: seen.clone() }, seen)
    }
}

impl<R: ReadAt> ReadAt for Digesting<R> {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn read_at(&self, offset: u64, buffer: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read_at(offset, buffer)?;
        self.seen.note(offset, &buffer[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_reads_give_the_files_digest_and_a_gap_gives_none() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let d = ReadDigest::default();
        d.note(0, &data[..40_000]);
        d.note(30_000, &data[30_000..70_000]); // overlaps: only the new part counts
        assert_eq!(d.of(data.len() as u64), None, "not all read yet");
        d.note(70_000, &data[70_000..]);
        assert_eq!(d.of(data.len() as u64), Some(xxhash_rust::xxh3::xxh3_64(&data)));
        let g = ReadDigest::default();
        g.note(0, &data[..10]);
        g.note(20, &data[20..]);
        assert_eq!(g.of(data.len() as u64), None, "a gap");
    }
}
