//! Surviving an archive that shrinks while it is mapped (#29 finding 13).
//!
//! Archives are memory-mapped read-only. When another process truncates a mapped file, a read
//! of a page past the new end raises `SIGBUS`, which kills the process: a batch of a thousand
//! archives, or a mount of a directory of them, dies with the one that was truncated.
//!
//! [`install`] sets a `SIGBUS` handler. For a fault inside a mapping that [`register`] recorded,
//! it maps one page of zeros over the faulting page (so the read that faulted returns zeros and
//! the program goes on) and records the page. The owner of the mapping then asks [`faulted`]
//! before it trusts what it read, and fails that one archive: `Archive::check_intact` turns it
//! into an error that names the archive. A fault outside any registered mapping is not ours:
//! the handler restores the default action, and the fault, raised again, ends the process as
//! before.
//!
//! The handler calls only `mmap` and `signal` and touches only atomics (the page size is read
//! once, at install); the tables are fixed arrays, so it never allocates or locks.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

/// Mappings that may be registered at once; past that, a mapping is not protected.
const MAPPINGS: usize = 4096;
/// Faulted pages remembered; past that, the oldest are overwritten (their mappings are long
/// reported by then, or the owner sees a later one).
const FAULTS: usize = 256;

static STARTS: [AtomicUsize; MAPPINGS] = [const { AtomicUsize::new(0) }; MAPPINGS];
static ENDS: [AtomicUsize; MAPPINGS] = [const { AtomicUsize::new(0) }; MAPPINGS];
static FAULTED: [AtomicUsize; FAULTS] = [const { AtomicUsize::new(0) }; FAULTS];
static NEXT_FAULT: AtomicUsize = AtomicUsize::new(0);
static PAGE: AtomicUsize = AtomicUsize::new(4096);
static INSTALL: Once = Once::new();

/// The page size, asked of the system: at install, since `sysconf` is not one of the calls a
/// signal handler may make.
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions; it only reads a system value.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(p).ok().filter(|&p| p > 0).unwrap_or(4096)
}

/// Installs the handler, once per process.
pub fn install() {
    INSTALL.call_once(|| {
        PAGE.store(page_size(), Ordering::Relaxed);
        // SAFETY: a zeroed sigaction is a valid value of the C struct (empty mask, no flags);
        // `on_sigbus` has the signature SA_SIGINFO requires and is async-signal-safe (see the
        // module doc). A failure leaves the default action, as before.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigbus as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut());
        }
    });
}

extern "C" fn on_sigbus(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for a handler installed with SA_SIGINFO.
    let addr = unsafe { (*info).si_addr() } as usize;
    let size = PAGE.load(Ordering::Relaxed);
    let page = addr & !(size.wrapping_sub(1));
    let ours = (0..MAPPINGS).any(|i| {
        let start = STARTS[i].load(Ordering::Acquire);
        start != 0 && start <= addr && addr < ENDS[i].load(Ordering::Acquire)
    });
    // SAFETY: `page` is a page of a read-only file mapping that this process registered and
    // still holds (it is unregistered before it is unmapped); replacing it with a private page
    // of zeros changes what later reads of that page see, which is what the owner is told of
    // through `faulted`. For any other address the default action is restored, so that the
    // fault, raised again when the handler returns, ends the process as it would have.
    unsafe {
        let zeros = ours.then(|| libc::mmap(page as *mut libc::c_void, size, libc::PROT_READ, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED, -1, 0));
        if !matches!(zeros, Some(p) if p != libc::MAP_FAILED) {
            libc::signal(libc::SIGBUS, libc::SIG_DFL);
            return;
        }
    }
    let slot = NEXT_FAULT.fetch_add(1, Ordering::AcqRel) % FAULTS;
    FAULTED[slot].store(page.max(1), Ordering::Release);
}

/// Records the mapping `range` (addresses) as one whose faults are survived; returns its slot
/// for [`unregister`], or `None` when the table is full (the mapping is then unprotected).
pub fn register(range: Range<usize>) -> Option<usize> {
    for i in 0..MAPPINGS {
        if STARTS[i].compare_exchange(0, usize::MAX, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            ENDS[i].store(range.end, Ordering::Release);
            STARTS[i].store(range.start.max(1), Ordering::Release);
            return Some(i);
        }
    }
    None
}

/// Forgets the mapping in `slot` (before it is unmapped), and the faults recorded in it.
pub fn unregister(slot: usize, range: Range<usize>) {
    for f in &FAULTED {
        let page = f.load(Ordering::Acquire);
        if range.contains(&page) {
            let _ = f.compare_exchange(page, 0, Ordering::AcqRel, Ordering::Acquire);
        }
    }
    ENDS[slot].store(0, Ordering::Release);
    STARTS[slot].store(0, Ordering::Release);
}

/// The first faulted page inside `range`, if a read there raised `SIGBUS` (the file shrank).
pub fn faulted(range: Range<usize>) -> Option<usize> {
    FAULTED.iter().map(|f| f.load(Ordering::Acquire)).filter(|p| range.contains(p)).min()
}
