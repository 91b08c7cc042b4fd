//! The mount's check of member content against the index's digests (issue #36): the first read
//! that touches a chunk (4 MiB of a large member, or the whole of a small one) reads and hashes
//! that chunk; a chunk whose digest does not hold fails every read that touches it (EIO), so a
//! range read checks only the chunks it touches and damaged bytes are never handed out.

use std::sync::atomic::{AtomicU8, Ordering};

use crate::digest::sha256;
use crate::format::digests::{Found, CHUNK};
use crate::ops::read::{Layout, Reader};

const UNCHECKED: u8 = 0;
const GOOD: u8 = 1;
const BAD: u8 = 2;

/// One open member's digests (copied: they outlive no index borrow), and which chunks held.
#[derive(Debug)]
pub struct Expected {
    whole: [u8; 32],
    chunks: Vec<[u8; 32]>,
    state: Vec<AtomicU8>,
}

/// A chunk whose digest did not hold: the logical bytes it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bad(pub std::ops::Range<u64>);

impl Expected {
    /// The digests `found`, for a member of logical size `size`.
    pub fn new(found: Found<'_>) -> Expected {
        let mut whole = [0u8; 32];
        whole.copy_from_slice(found.whole);
        let chunks: Vec<[u8; 32]> = found.chunks.chunks_exact(32).map(|c| c.try_into().expect("32 bytes")).collect();
        let state = (0..chunks.len().max(1)).map(|_| AtomicU8::new(UNCHECKED)).collect();
        Expected { whole, chunks, state }
    }

    /// The logical range chunk `k` covers in a member of `size` bytes.
    fn range(&self, k: usize, size: u64) -> std::ops::Range<u64> {
        match self.chunks.is_empty() {
            true => 0..size,
            false => (k as u64 * CHUNK)..((k as u64 + 1) * CHUNK).min(size),
        }
    }

    /// Checks every chunk that `[offset, end)` of the member `layout` touches, reading through
    /// `reader`.
    pub fn check(&self, reader: &Reader<'_>, layout: &Layout, offset: u64, end: u64) -> Result<(), CheckError> {
        let (first, last) = match self.chunks.is_empty() {
            true => (0, 0),
            false => ((offset / CHUNK) as usize, (end.saturating_sub(1).max(offset) / CHUNK) as usize),
        };
        for k in first..=last.min(self.state.len() - 1) {
            let r = self.range(k, layout.size);
            match self.state[k].load(Ordering::Relaxed) {
                GOOD => continue,
                BAD => return Err(CheckError::Bad(Bad(r))),
                _ => {}
            }
            let data = layout.read(reader, r.start, (r.end - r.start) as usize).map_err(CheckError::Io)?;
            let want = self.chunks.get(k).unwrap_or(&self.whole);
            let good = sha256(&data) == *want && data.len() as u64 == r.end - r.start;
            self.state[k].store(if good { GOOD } else { BAD }, Ordering::Relaxed);
            if !good {
                return Err(CheckError::Bad(Bad(r)));
            }
        }
        Ok(())
    }
}

/// Why a read is refused.
#[derive(Debug)]
pub enum CheckError {
    /// The bytes could not be read.
    Io(std::io::Error),
    /// A chunk's digest did not hold.
    Bad(Bad),
}
