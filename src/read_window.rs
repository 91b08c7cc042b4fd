//! A read buffer whose bytes are zeroed once, when it first grows, not before every read.
//!
//! `Read::read` takes an initialized `&mut [u8]`. A `Vec` resized before each read and
//! truncated after it zeroes a read's worth of bytes every time: a memset of everything a scan
//! reads, on the scanning thread (2% of a compressed archive's indexing, measured). A
//! [`ReadWindow`] keeps its bytes past what it holds, so a read reuses them as they are.

use std::io::{self, Read};
use std::ops::Deref;

/// Bytes read from a stream, held from the front: the slice it derefs to. Its storage stays
/// initialized (and allocated) up to the most it has ever held plus one read.
#[derive(Debug, Default)]
pub(crate) struct ReadWindow {
    bytes: Vec<u8>,
    len: usize,
}

impl ReadWindow {
    /// An empty window with room for `n` bytes reserved.
    pub(crate) fn with_capacity(n: usize) -> ReadWindow {
        ReadWindow { bytes: Vec::with_capacity(n), len: 0 }
    }

    /// Drops the first `n` bytes held (at most all of them), moving the rest to the front.
    pub(crate) fn drain_front(&mut self, n: usize) {
        let n = n.min(self.len);
        self.bytes.copy_within(n..self.len, 0);
        self.len -= n;
    }

    /// Holds nothing.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// Reads up to `chunk` bytes from `r` after what is held; returns how many (0 at the end).
    pub(crate) fn read_from(&mut self, r: &mut dyn Read, chunk: usize) -> io::Result<usize> {
        let end = self.len.saturating_add(chunk);
        if self.bytes.len() < end {
            self.bytes.resize(end, 0);
        }
        // A reader that claims more than it was given room for held no more than that room.
        let n = r.read(&mut self.bytes[self.len..end])?.min(chunk);
        self.len += n;
        Ok(n)
    }
}

impl Deref for ReadWindow {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_what_was_read_across_drains() {
        let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        let mut src = &data[..];
        let mut w = ReadWindow::with_capacity(16);
        let mut seen = Vec::new();
        while w.read_from(&mut src, 700).unwrap() > 0 {
            let k = w.len() / 2;
            seen.extend_from_slice(&w[..k]);
            w.drain_front(k);
        }
        seen.extend_from_slice(&w);
        assert_eq!(seen, data);
        w.clear();
        assert!(w.is_empty());
    }
}
