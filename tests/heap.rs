//! Heap growth while indexing stays within 64 bytes per member plus the index's extension data
//! (built in memory, at most doubled by growth) plus a constant, sequential or chunked: entries
//! are streamed to the sink, and the chunked scan holds small per-member records (where a header
//! is and its checksum), never copies of headers.
//!
//! This binary counts every allocation with a wrapping global allocator; its one test runs alone
//! so that nothing else allocates meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use tarfs::builder::{Builder, MemberOptions};
use tarfs::chunked::ScanMode;
use tarfs::ops::index::{write_index, IndexOptions};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method passes its arguments to the system allocator unchanged (the caller's
// contract is `GlobalAlloc`'s, which `System` upholds); the counting touches only atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        PEAK.fetch_max(live, Ordering::SeqCst);
        // SAFETY: `layout` is the caller's, as `GlobalAlloc::alloc` requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: `ptr` came from this allocator (that is, from `System`) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let live = LIVE.fetch_add(new_size - layout.size(), Ordering::SeqCst) + new_size - layout.size();
            PEAK.fetch_max(live, Ordering::SeqCst);
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::SeqCst);
        }
        // SAFETY: `ptr` came from `System` with `layout`; `new_size` is the caller's, checked by
        // its contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// A sink that keeps nothing: what is measured is the indexer's memory, not the index's.
struct Discard(u64);

impl Write for Discard {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Seek for Discard {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        if let SeekFrom::Start(p) = to {
            self.0 = p;
        }
        Ok(self.0)
    }
}

#[test]
fn indexing_holds_at_most_64_bytes_per_member() {
    const MEMBERS: usize = 120_000;
    let mut b = Builder::new(Vec::with_capacity(MEMBERS * 1100));
    for i in 0..MEMBERS {
        let data = vec![(i % 251) as u8; i * 7 % 1000];
        let name = if i % 10 == 0 { format!("long/{}/{i}", "n".repeat(120)) } else { format!("d{}/f{i}", i / 1000) };
        b.add_with(name, &data, &MemberOptions::default()).unwrap();
    }
    let tar = b.finish().unwrap();
    assert!(tar.len() as u64 > 4 * tarfs::chunked::CHUNK, "large enough to be chunked");
    // 64 bytes per member for the scan, and the index's extension data, built in memory: its 64
    // bytes per member and each member's lookup key (its path, with 8 bytes of bookkeeping), at
    // most doubled by vector growth.
    let keys: usize = (0..MEMBERS).map(|i| if i % 10 == 0 { format!("long/{}/{i}", "n".repeat(120)).len() } else { format!("d{}/f{i}", i / 1000).len() }).sum();
    let budget = 64 * MEMBERS + 2 * (tarfs::format::ext::BYTES_PER_MEMBER * MEMBERS + keys + 8 * MEMBERS) + (4 << 20);
    for mode in [ScanMode::Sequential, ScanMode::Parallel] {
        let opts = IndexOptions { mode, threads: 2, ..IndexOptions::default() };
        let mut out = Discard(0);
        let before = LIVE.load(Ordering::SeqCst);
        PEAK.store(before, Ordering::SeqCst);
        let (info, end) = write_index(Path::new("mem.tar"), &tar, &opts, &mut out).unwrap();
        let growth = PEAK.load(Ordering::SeqCst) - before;
        assert_eq!((info.entries, end.members), (MEMBERS as u64, MEMBERS as u64));
        eprintln!("{mode:?}: peak heap growth {growth} bytes for {MEMBERS} members ({:.1} per member)", growth as f64 / MEMBERS as f64);
        assert!(growth <= budget, "{mode:?}: heap grew by {growth} bytes, over {budget}");
    }
}
