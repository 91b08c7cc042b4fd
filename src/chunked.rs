//! The chunked scan: one archive scanned by several threads, with the same result as the
//! sequential [`Scanner`].
//!
//! # How it works
//!
//! The mapping is cut into chunks of [`CHUNK`] bytes. Worker threads take chunks in order and, in
//! each, *speculate*: they look for the first block that could be a header (the `ustar` magic and
//! a valid checksum), scan the chain from there with an ordinary [`Scanner`], and map each member
//! they meet to a small value `T` (for an index: where its header is and its entry checksum),
//! until the chain leaves the chunk. A speculative scan stops early, without error, at anything
//! that carries state from member to member or that ends an archive: a pax `g` header, zero
//! blocks, a scan error.
//!
//! The calling thread *stitches*: it follows the real chain from byte 0. At a member boundary
//! that falls in chunk *j*, it looks the boundary up among the positions chunk *j*'s worker
//! found. A hit means the worker's scan passed through the very boundary the real chain reached,
//! with the same (initial) state, and a scanner is deterministic: from there on its members are
//! the real ones, so they are taken as they are. A miss — the worker started at a block that only
//! looks like a header, inside member data, and never fell into step with the real chain; or the
//! chain starts with a header without magic — makes the stitcher scan that stretch itself,
//! sequentially, and try again at the next chunk. A block that merely looks like a header is
//! therefore never taken: only the chain from byte 0 decides. Global pax headers, zero blocks and
//! the end of the archive are always handled by a sequential scan, so [`ScanEnd`] and errors are
//! exactly the sequential scanner's.
//!
//! # When it pays
//!
//! Finding the first header of a chunk reads from the chunk's start up to it, which for a chunk
//! inside a large member is member data the sequential walk never touches (and, on a cold cache,
//! reads from disk). [`ScanMode::Auto`] therefore samples the first members and chunks only
//! archives whose members average at most [`AUTO_MAX_SPAN`] bytes; see `docs/ARCHITECTURE.md` for
//! the measurements behind the numbers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use crate::archive::Archive;
use crate::format::header::{HeaderView, BLOCK, BLOCK_U64};
use crate::scan::{Entry, ScanEnd, ScanError, ScanOptions, Scanner, Warning};

/// Bytes per chunk (a whole number of blocks).
pub const CHUNK: u64 = 8 << 20;
/// [`ScanMode::Auto`] chunks archives of at least this many bytes ...
pub const AUTO_MIN_LEN: u64 = 4 * CHUNK;
/// ... whose first members average at most this many bytes each (header chain plus data).
pub const AUTO_MAX_SPAN: u64 = 64 << 10;
/// Members sampled by [`ScanMode::Auto`].
const AUTO_SAMPLE: usize = 256;

/// How to scan an archive held in memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ScanMode {
    /// Chunked when the archive is large and its members small (see [`plan`]), sequential
    /// otherwise.
    #[default]
    Auto,
    /// One thread walks the chain, touching only header pages.
    Sequential,
    /// Worker threads scan chunks; the calling thread stitches (see the module docs).
    Parallel,
}

/// How a scan runs: what [`plan`] makes of a [`ScanMode`] for one archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Worker threads scan chunks of the mapping; this thread stitches.
    Chunked,
    /// One thread walks the chain through the mapping.
    Mapped,
    /// One thread reads the headers with `read` and seeks over member data
    /// ([`crate::stream::scan_file`]); for a file whose members are large, where faulting in
    /// mapped header pages one by one costs more than reading them.
    Reads,
}

/// Mean bytes per member over the first [`AUTO_SAMPLE`] members; `None` when the sample fails
/// (the scan proper reports the error) or finds no member.
fn mean_span(data: &[u8], opts: ScanOptions) -> Option<u64> {
    let mut s = Scanner::new(data, opts);
    let mut n = 0u64;
    for e in s.by_ref().take(AUTO_SAMPLE) {
        e.ok()?;
        n += 1;
    }
    (n > 0).then(|| s.position() / n)
}

/// The cores this process may use, asked once: `available_parallelism` reads the cgroup's
/// quota files on every call, which a batch of small archives would pay per archive.
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// Resolves `mode` for `data`: [`ScanMode::Parallel`] chunks; [`ScanMode::Auto`] chunks
/// archives of at least [`AUTO_MIN_LEN`] bytes whose first members average at most
/// [`AUTO_MAX_SPAN`] bytes, when `threads` is at least 2. Otherwise one thread walks: by reads
/// when members average more than [`AUTO_MAX_SPAN`] bytes, through the mapping when they are
/// smaller (or the sample fails).
pub fn plan(data: &[u8], opts: ScanOptions, mode: ScanMode, threads: usize) -> Plan {
    if mode == ScanMode::Parallel {
        return Plan::Chunked;
    }
    plan_for(mean_span(data, opts), data, mode, threads)
}

/// [`plan`], given the sample's mean span.
fn plan_for(span: Option<u64>, data: &[u8], mode: ScanMode, threads: usize) -> Plan {
    if mode == ScanMode::Parallel {
        return Plan::Chunked;
    }
    let small = span.is_none_or(|s| s <= AUTO_MAX_SPAN);
    if mode == ScanMode::Auto && small && threads >= 2 && data.len() as u64 >= AUTO_MIN_LEN && span.is_some() {
        Plan::Chunked
    } else if small {
        Plan::Mapped
    } else {
        Plan::Reads
    }
}

/// What [`plan_archive`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    /// The plan.
    pub plan: Plan,
    /// Whether the archive was mostly out of the page cache ([`Archive::is_cold`]).
    pub cold: bool,
    /// The mean span (header chain plus data) of the first members, when the sample found any.
    pub span: Option<u64>,
}

/// [`plan`] for `archive`, and whether the archive is cold (judged first: the plan's sample of
/// headers faults pages in). Cold, the sample reads page by page (`MADV_RANDOM`), with the
/// first [`COLD_WINDOW`](crate::stream::COLD_WINDOW) bytes read ahead at once, where small
/// members' headers all are; otherwise each sampled header of large members pulled in a whole
/// readahead window (300 members of 8 MiB, cold: 2.2 of 2.7 GB read to plan `tarfs index`). The
/// mapping's advice is normal again after.
pub fn plan_archive(archive: &Archive, opts: ScanOptions, mode: ScanMode, threads: usize) -> Planned {
    let cold = archive.is_cold();
    if cold {
        archive.advise_sampling(std::iter::once(0..crate::stream::COLD_WINDOW));
    }
    let span = if mode == ScanMode::Parallel { None } else { mean_span(archive.bytes(), opts) };
    if cold {
        archive.advise(memmap2::Advice::Normal);
    }
    Planned { plan: plan_for(span, archive.bytes(), mode, threads), cold, span }
}

/// What a worker found in one chunk.
struct Chunk<T> {
    /// `(position, mapped value)` of each member whose chain starts in the chunk, from the first
    /// candidate header on.
    items: Vec<(u64, T)>,
    /// The boundary after the last item.
    next: u64,
    /// Whether the scan left the chunk normally (`next` is past its end) rather than stopping
    /// at something the stitcher must scan itself (then `next` is where that starts).
    left: bool,
}

impl<T> Chunk<T> {
    fn new(mut items: Vec<(u64, T)>, next: u64, left: bool) -> Self {
        // Results wait for the stitcher: hold no spare capacity meanwhile.
        items.shrink_to_fit();
        Chunk { items, next, left }
    }
}

/// Whether a block could start a header chain: the POSIX or GNU magic and a valid checksum.
fn candidate(block: &[u8]) -> bool {
    block[257..262] == *b"ustar" && block[0] != 0 && HeaderView::new(block.try_into().expect("one block")).checksum_ok()
}

fn speculate<'d, T>(data: &'d [u8], opts: ScanOptions, j: u64, chunk: u64, map: &impl Fn(&Entry<'d>) -> T, spare: &Spare<T>) -> Chunk<T> {
    let len = data.len() as u64;
    let (start, end) = (j * chunk, ((j + 1) * chunk).min(len));
    let mut at = start;
    while at + BLOCK_U64 <= end && !candidate(&data[at as usize..at as usize + BLOCK]) {
        at += BLOCK_U64;
    }
    let mut items = spare.take();
    if at + BLOCK_U64 > end {
        return Chunk { items, next: start, left: false };
    }
    let mut scanner = Scanner::at(data, at, opts);
    loop {
        let before = scanner.position();
        if before >= end {
            return Chunk::new(items, before, true);
        }
        match scanner.next() {
            Some(Ok(e)) if scanner.is_fresh() && scanner.warning().is_none() && e.position == before => items.push((before, map(&e))),
            _ => return Chunk::new(items, before, false),
        }
    }
}

/// Scans `data` as [`Scanner`] would, calling `map` on each member (on any thread) and `sink` on
/// each result in archive order (on the calling thread). `threads` workers scan chunks in
/// parallel for `Parallel`, and for `Auto` when [`plan`] says [`Plan::Chunked`]; otherwise this
/// is a plain sequential scan of the mapping. Stops at the first scan error, or the first error from `sink`.
pub fn scan_map<'d, T, E>(
    data: &'d [u8],
    opts: ScanOptions,
    mode: ScanMode,
    threads: usize,
    map: impl Fn(&Entry<'d>) -> T + Sync,
    mut sink: impl FnMut(T) -> Result<(), E>,
    scan_error: impl Fn(ScanError) -> E,
) -> Result<ScanEnd, E>
where
    T: Send,
{
    let chunked = match mode {
        ScanMode::Parallel => true,
        ScanMode::Sequential => false,
        ScanMode::Auto => plan(data, opts, mode, threads) == Plan::Chunked,
    };
    if !chunked {
        let mut s = Scanner::new(data, opts);
        for e in s.by_ref() {
            sink(map(&e.map_err(&scan_error)?))?;
        }
        return Ok(s.end().expect("scan finished"));
    }
    scan_chunked(data, opts, CHUNK, threads, map, sink, scan_error).map(|(end, _)| end)
}

/// How a chunked scan's members were found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stitched {
    /// Members taken from the workers' speculative scans.
    pub speculative: u64,
    /// Members the stitcher scanned itself.
    pub sequential: u64,
}

/// The chunked scan itself, with chunks of `chunk` bytes (a positive multiple of 512; tests use
/// small ones to put chunk boundaries everywhere). Same contract as [`scan_map`]; also says how
/// many members came from the workers.
pub fn scan_chunked<'d, T, E>(
    data: &'d [u8],
    opts: ScanOptions,
    chunk: u64,
    threads: usize,
    map: impl Fn(&Entry<'d>) -> T + Sync,
    mut sink: impl FnMut(T) -> Result<(), E>,
    scan_error: impl Fn(ScanError) -> E,
) -> Result<(ScanEnd, Stitched), E>
where
    T: Send,
{
    assert!(chunk > 0 && chunk.is_multiple_of(BLOCK_U64), "chunks are whole blocks");
    let chunks = (data.len() as u64).div_ceil(chunk);
    let next_chunk = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let spare = Spare(std::sync::Mutex::new(Vec::new()));
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<(u64, Chunk<T>)>();
        for _ in 0..threads.max(1) {
            let (tx, next_chunk, stop, map, spare) = (tx.clone(), &next_chunk, &stop, &map, &spare);
            scope.spawn(move || loop {
                let j = next_chunk.fetch_add(1, Ordering::Relaxed) as u64;
                if j >= chunks || stop.load(Ordering::Relaxed) {
                    return;
                }
                if tx.send((j, speculate(data, opts, j, chunk, map, spare))).is_err() {
                    return;
                }
            });
        }
        drop(tx);
        let mut st = Stitch { data, opts, chunk, rx, done: BTreeMap::new(), members: 0, speculative: 0, warning: None, spare: &spare };
        let r = st.run(&map, &mut sink, &scan_error);
        stop.store(true, Ordering::Relaxed);
        let stitched = Stitched { speculative: st.speculative, sequential: st.members - st.speculative };
        r.map(|end| (end, stitched))
    })
}

/// The stitcher's state.
struct Stitch<'d, 's, T> {
    data: &'d [u8],
    opts: ScanOptions,
    chunk: u64,
    rx: mpsc::Receiver<(u64, Chunk<T>)>,
    /// Chunks received and not yet passed.
    done: BTreeMap<u64, Chunk<T>>,
    members: u64,
    speculative: u64,
    warning: Option<Warning>,
    spare: &'s Spare<T>,
}

/// Item lists the stitcher has emptied, for the workers to fill again: a new one for each
/// chunk was an allocation of about a MiB (3,000 members' records), mapped, faulted in page by
/// page, grown by copying, and unmapped, 70 times for 201,000 small members.
struct Spare<T>(std::sync::Mutex<Vec<Vec<(u64, T)>>>);

impl<T> Spare<T> {
    fn take(&self) -> Vec<(u64, T)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).pop().unwrap_or_default()
    }

    fn give(&self, mut items: Vec<(u64, T)>) {
        items.clear();
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(items);
    }
}

impl<'d, T> Stitch<'d, '_, T> {
    /// Chunk `j`'s result, waiting for it; chunks before `j` are dropped.
    fn chunk(&mut self, j: u64) -> Option<&mut Chunk<T>> {
        while !self.done.contains_key(&j) {
            match self.rx.recv() {
                Ok((k, c)) if k >= j => {
                    self.done.insert(k, c);
                }
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        self.done.retain(|&k, _| k >= j);
        self.done.get_mut(&j)
    }

    fn run<E>(
        &mut self,
        map: &impl Fn(&Entry<'d>) -> T,
        sink: &mut impl FnMut(T) -> Result<(), E>,
        scan_error: &impl Fn(ScanError) -> E,
    ) -> Result<ScanEnd, E> {
        let len = self.data.len() as u64;
        let mut pos = 0u64;
        loop {
            // Take a worker's members if it passed through `pos`.
            if pos < len {
                let j = pos / self.chunk;
                if let Some(c) = self.chunk(j) {
                    if let Ok(i) = c.items.binary_search_by_key(&pos, |&(p, _)| p) {
                        let (next, left, mut items) = (c.next, c.left, std::mem::take(&mut c.items));
                        self.members += (items.len() - i) as u64;
                        self.speculative += (items.len() - i) as u64;
                        for (_, t) in items.drain(..).skip(i) {
                            sink(t)?;
                        }
                        self.spare.give(items);
                        pos = next;
                        if left {
                            continue;
                        }
                    }
                }
            }
            // Scan on from `pos` until the chain enters a later chunk with the initial state.
            let mut s = Scanner::at(self.data, pos, self.opts);
            let chunk = pos / self.chunk;
            loop {
                match s.next() {
                    Some(Ok(e)) => {
                        self.members += 1;
                        sink(map(&e))?;
                        self.warning = s.warning().or(self.warning);
                        if s.is_fresh() && s.position() / self.chunk > chunk {
                            pos = s.position();
                            break;
                        }
                    }
                    Some(Err(e)) => return Err(scan_error(e)),
                    None => {
                        let end = s.end().expect("scan finished");
                        return Ok(ScanEnd { members: self.members, warning: end.warning.or(self.warning), ..end });
                    }
                }
            }
        }
    }
}
