//! How far the job on this thread has got through its archive, for progress bars.
//!
//! The batch runner gives each job a counter ([`covering`]); the operations that walk a mapped
//! archive note the byte offset they have reached ([`at`]) as they go, and the progress display
//! reads the counter on its own clock. Outside a batch (no counter set, or on a scanning thread
//! of a chunked scan) [`at`] does nothing. Streams and compressed files are counted as they are
//! read instead ([`crate::batch::Counting`]).

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
}
