//! How far the job on this thread has got through its archive, for progress bars.
//!
//! The batch runner gives each job a counter ([`covering`]); the operations that walk a mapped
//! archive note the byte offset they have reached ([`at`]) as they go, and the progress display
//! reads the counter on its own clock. Outside a batch (no counter set, or on a scanning thread
//! of a chunked scan) [`at`] does nothing. Streams and compressed files are counted as they are
//! read instead ([`crate::batch::Counting`]), or as their decoder consumes the mapping
//! ([`Noting`]).

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

thread_local! {
    static COVERED: RefCell<Option<Arc<AtomicU64>>> = const { RefCell::new(None) };
}

/// Runs `f` with `counter` as this thread's counter, and clears it after.
pub fn covering<R>(counter: Arc<AtomicU64>, f: impl FnOnce() -> R) -> R {
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            COVERED.with(|c| *c.borrow_mut() = None);
        }
    }
    COVERED.with(|c| *c.borrow_mut() = Some(counter));
    let _clear = Clear;
    f()
}

/// This thread's counter, for work the job hands to other threads (a parallel decoder).
pub fn current() -> Option<Arc<AtomicU64>> {
    COVERED.with(|c| c.borrow().clone())
}

/// Notes that the job has reached byte `offset` of its archive (the counter only grows).
pub fn at(offset: u64) {
    COVERED.with(|c| {
        if let Some(counter) = c.borrow().as_ref() {
            let before = counter.fetch_max(offset, Ordering::Relaxed);
            stall(before, offset);
        }
    });
}

/// A buffered reader over an archive's bytes that notes ([`at`]) how far into them its reader
/// has consumed: for a decoder of a compressed archive, so that the progress of work on its
/// decompressed stream is counted in the archive's own bytes, which the batch's total counts.
pub struct Noting<R> {
    inner: R,
    consumed: u64,
}

impl<R> Noting<R> {
    /// `inner`, read from the start of the archive.
    pub fn new(inner: R) -> Noting<R> {
        Noting { inner, consumed: 0 }
    }

    fn advance(&mut self, n: usize) {
        self.consumed += n as u64;
        at(self.consumed);
    }
}

impl<R: std::io::Read> std::io::Read for Noting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.advance(n);
        Ok(n)
    }
}

impl<R: std::io::BufRead> std::io::BufRead for Noting<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.inner.consume(n);
        self.advance(n);
    }
}

/// Testing aid: with `TARFS_STALL_AT=N:FILE`, each job that reaches byte `N` of its archive
/// waits there (once) while `FILE` exists, so that a test can look at the progress display (or
/// interrupt the run) with its workers in the middle of their archives. A job whose archive is
/// shorter than `N` is not held.
fn stall(before: u64, offset: u64) {
    static AT: std::sync::OnceLock<Option<(u64, std::path::PathBuf)>> = std::sync::OnceLock::new();
    let Some((n, file)) = AT.get_or_init(|| {
        let v = std::env::var("TARFS_STALL_AT").ok()?;
        let (n, file) = v.split_once(':')?;
        Some((n.parse().ok()?, file.into()))
    }) else {
        return;
    };
    if before < *n && offset >= *n {
        while file.exists() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_only_inside_covering_and_only_forward() {
        at(5); // no counter: nothing happens
        let c = Arc::new(AtomicU64::new(0));
        covering(c.clone(), || {
            at(10);
            at(7);
        });
        at(99);
        assert_eq!(c.load(Ordering::Relaxed), 10);
    }

    #[test]
    fn a_noting_reader_notes_what_its_reader_consumed() {
        use std::io::{BufRead, Read};
        let c = Arc::new(AtomicU64::new(0));
        covering(c.clone(), || {
            let mut r = Noting::new(std::io::Cursor::new(vec![7u8; 100]));
            assert_eq!(r.fill_buf().unwrap().len(), 100);
            assert_eq!(c.load(Ordering::Relaxed), 0, "filled, not consumed");
            r.consume(30);
            r.read_exact(&mut [0u8; 20]).unwrap();
        });
        assert_eq!(c.load(Ordering::Relaxed), 50);
    }
}
