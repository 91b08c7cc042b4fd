//! Member digests computed while an index is written (issue #36).
//!
//! Every writer's [`crate::ops::index::EntrySink`] may hold a [`Collector`]: one slot per entry,
//! in entry order. A plain archive's members are noted by where their data lies
//! ([`Place`], cheap, on the scanning thread) and hashed after the scan from the mapping, on
//! every core ([`Collector::hash_mapped`]): the scan itself touches headers only. A stream's
//! (a compressed archive's) members are hashed as their data passes ([`Streaming`]), in the one
//! pass that decodes it.

use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, SyncSender};
use std::sync::Arc;

use rayon::prelude::*;

use crate::digest::Hasher;
use crate::error::{Error, Result};
use crate::format::digests::{MemberDigest, Table};
use crate::format::sparse::Region;
use crate::ops::read::Expander;
use crate::scan::{Entry, ScanOptions};

/// Where a member's logical content lies in a plain archive.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    data_offset: u64,
    stored: u64,
    size: u64,
    /// The data regions `(logical offset, length)`; one region for a member that is not sparse.
    regions: Vec<Region>,
}

impl Place {
    /// The place of `e`'s content; `None` where its sparse map does not decode (its digest is
    /// then an error when computed, as reading it would be).
    pub(crate) fn of(e: &Entry<'_>, opts: &ScanOptions) -> Option<Place> {
        let x = Expander::new(e, opts, Path::new("")).ok()?;
        Some(Place { data_offset: e.data_offset, stored: e.stored_size, size: x.size(), regions: x.regions().to_vec() })
    }

    /// Its digests, from `data` (the archive's bytes).
    fn hash(&self, data: &[u8]) -> Option<MemberDigest> {
        let start = usize::try_from(self.data_offset).ok()?;
        let end = start.checked_add(usize::try_from(self.stored).ok()?)?;
        let bytes = data.get(start..end)?;
        let mut h = Hasher::new(self.size);
        let mut logical = 0u64;
        let mut at = 0usize;
        for &(offset, len) in &self.regions {
            zeros(&mut h, offset.checked_sub(logical)?);
            let n = usize::try_from(len).ok()?;
            h.write_all(bytes.get(at..at.checked_add(n)?)?).ok()?;
            at += n;
            logical = offset.checked_add(len)?;
        }
        zeros(&mut h, self.size.checked_sub(logical)?);
        Some(h.finish())
    }
}

/// The digests of `e`'s content, from `data`, the mapped archive it is in; `None` where its
/// sparse map does not decode or its data is not all there.
pub(crate) fn of_mapped(e: &Entry<'_>, opts: &ScanOptions, data: &[u8]) -> Option<MemberDigest> {
    Place::of(e, opts)?.hash(data)
}

/// Writes `n` zero bytes to `h` (a sparse member's hole).
pub(crate) fn zeros(h: &mut Hasher, mut n: u64) {
    static Z: [u8; 1 << 16] = [0; 1 << 16];
    while n > 0 {
        let k = n.min(Z.len() as u64) as usize;
        h.write_all(&Z[..k]).expect("a hasher never fails");
        n -= k as u64;
    }
}

/// One entry's digests: known, or where to compute them from.
#[derive(Debug)]
enum Slot {
    Done(MemberDigest),
    Mapped(Option<Place>),
    Waiting,
}

/// The digests of an index's entries, collected in entry order.
#[derive(Debug)]
pub(crate) struct Collector {
    path: PathBuf,
    pub(crate) scan: ScanOptions,
    slots: Vec<(u64, Slot)>,
    /// Digests of an older index's entries, kept (a grown archive's re-index).
    kept: Table,
}

impl Collector {
    /// A collector for the archive at `path`.
    pub(crate) fn new(path: &Path, scan: ScanOptions) -> Collector {
        Collector { path: path.to_path_buf(), scan, slots: Vec::new(), kept: Table::default() }
    }

    /// Starts from the digests of an older index's first entries.
    pub(crate) fn keep(&mut self, kept: Table) {
        self.kept = kept;
    }

    /// Notes entry at `position` whose content lies at `place` in the mapped archive.
    pub(crate) fn mapped(&mut self, position: u64, place: Option<Place>) {
        self.slots.push((position, Slot::Mapped(place)));
    }

    /// Notes entry at `position`, whose digests [`Collector::fill`] gives later; returns its slot.
    pub(crate) fn waiting(&mut self, position: u64) -> usize {
        self.slots.push((position, Slot::Waiting));
        self.slots.len() - 1
    }

    /// The digests of slot `slot`.
    pub(crate) fn fill(&mut self, slot: usize, d: MemberDigest) {
        self.slots[slot].1 = Slot::Done(d);
    }

    /// Computes the mapped entries' digests from `data`, the archive's bytes, on every core.
    pub(crate) fn hash_mapped(&mut self, data: &[u8]) -> Result<()> {
        let path = &self.path;
        self.slots.par_iter_mut().with_max_len(1).try_for_each(|(position, slot)| {
            if let Slot::Mapped(place) = slot {
                let d = place.as_ref().and_then(|p| p.hash(data));
                *slot = Slot::Done(d.ok_or_else(|| unreadable(path, *position))?);
            }
            Ok(())
        })
    }

    /// The digests part, once every slot is done.
    pub(crate) fn finish(self) -> Result<Vec<u8>> {
        let mut t = self.kept;
        for (position, slot) in self.slots {
            match slot {
                Slot::Done(d) => t.push(position, &d),
                _ => return Err(unreadable(&self.path, position)),
            }
        }
        Ok(t.encode())
    }
}

fn unreadable(path: &Path, offset: u64) -> Error {
    Error::Data { path: path.to_path_buf(), offset, problem: crate::error::DataProblem::EndsInData }
}

/// What a lane does with a batch: members start, and ranges of the batch's bytes are their
/// stored data, in order.
enum Item {
    /// A member starts: its slot and its expander.
    Start(usize, Expander),
    /// A range of the batch: the passing member's stored data.
    Data(Range<usize>),
}

/// What the scanning thread sends a lane: up to [`BATCH`] bytes of stored data, shared by the
/// lanes, and what this lane does with them. Many small members go in one batch: a message
/// each would fill a lane's queue with a few of them and keep the scanner waiting.
struct Job {
    data: Arc<Vec<u8>>,
    items: Vec<Item>,
}

/// A hashing thread, its queue, and the items of the batch being filled for it.
struct Lane {
    tx: SyncSender<Job>,
    worker: std::thread::JoinHandle<Vec<(usize, MemberDigest)>>,
    items: Vec<Item>,
    /// Bytes of content given to it so far (to give the next member to the less busy lane).
    load: u64,
}

/// How much lower a lane's priority is than the scanner's and the decoder's (a nice value).
///
/// On two cores, a compressed archive's decoder, the scanner and two lanes share the CPU. The
/// decoder is the one the others wait for; at equal priority, each batch handed to a lane woke
/// it and it took the decoder's core, and the decoder fell behind while the lanes ran out of
/// work (a third of both cores idle). Below the decoder, the lanes hash what is queued while it
/// decodes more. 3.1 GB of incompressible members, gzipped, with digests / without, medians:
/// equal priority 4.2 s / 3.3 s; nice 5, 3.8 s; nice 10, 3.8 s.
const LANE_NICE: i32 = 5;

/// Lowers the calling thread's priority by [`LANE_NICE`] (Linux sets a nice value per thread).
/// Where that is refused, the lane runs at the scanner's priority, only slower.
fn yield_to_decoding() {
    let me = rustix::thread::gettid();
    if let Ok(now) = rustix::process::getpriority_process(Some(me)) {
        let _ = rustix::process::setpriority_process(Some(me), now.saturating_add(LANE_NICE).min(19));
    }
}

/// Batches queued for a lane: with [`BATCH`], at most 32 MiB of a stream waiting per lane.
const QUEUED: usize = 8;

impl Lane {
    /// A lane that gives each batch back through `spare` once done with it, if it was the last
    /// to be.
    fn spawn(spare: Sender<Vec<u8>>) -> Lane {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(QUEUED);
        let worker = std::thread::spawn(move || {
            yield_to_decoding();
            let mut done = Vec::new();
            let mut current: Option<Passing> = None;
            for job in rx {
                for item in job.items {
                    match item {
                        Item::Start(slot, x) => {
                            done.extend(current.take().map(finish));
                            let h = Hasher::new(x.size());
                            current = Some((slot, x, h));
                        }
                        Item::Data(r) => {
                            if let Some((_, x, h)) = current.as_mut() {
                                x.feed(&job.data[r], h).expect("a hasher never fails");
                            }
                        }
                    }
                }
                // The last lane done with the batch gives it back (`into_inner` hands it to
                // exactly one of them, where `try_unwrap` could fail for both).
                if let Some(batch) = Arc::into_inner(job.data) {
                    let _ = spare.send(batch);
                }
            }
            done.extend(current.take().map(finish));
            done
        });
        Lane { tx, worker, items: Vec::new(), load: 0 }
    }
}

/// Members of a stream hashed as their data passes, on two threads of their own ("lanes"), so
/// that hashing overlaps decoding and scanning: a compressed archive's one pass costs little
/// more with digests than without. Each member is hashed on the less busy lane (its whole and
/// chunk digests together: see [`Hasher`]). Each lane goes at its own pace: neither waits for
/// the other's batch.
pub(crate) struct StreamHasher {
    lanes: [Lane; 2],
    /// The lane hashing the passing member (none before the first).
    passing: Option<usize>,
    /// The batch being filled: stored data of the members passing since the last one was sent.
    /// A decoder's reads are small (tens of KiB), and a message each would cost a lane a
    /// wake-up each.
    pending: Vec<u8>,
    /// Batches the lanes are done with, to be filled again (a fresh 4 MiB allocation each
    /// time cost page faults on the scanning thread).
    spare: Receiver<Vec<u8>>,
}

/// Bytes of stored data sent to the lanes at once.
const BATCH: usize = 4 << 20;

impl StreamHasher {
    /// Starts the lanes.
    pub(crate) fn new() -> StreamHasher {
        let (back, spare) = std::sync::mpsc::channel();
        StreamHasher { lanes: [Lane::spawn(back.clone()), Lane::spawn(back)], passing: None, pending: Vec::new(), spare }
    }

    /// Starts hashing `e`'s content, for slot `slot`.
    pub(crate) fn start(&mut self, e: &Entry<'_>, slot: usize, opts: &ScanOptions, path: &Path) -> Result<()> {
        let x = Expander::new(e, opts, path)?;
        let size = x.size();
        let less_busy = usize::from(self.lanes[1].load < self.lanes[0].load);
        self.passing = Some(less_busy);
        let lane = &mut self.lanes[less_busy];
        lane.load = lane.load.saturating_add(size);
        lane.items.push(Item::Start(slot, x));
        Ok(())
    }

    /// A piece of the passing member's stored data, in order.
    pub(crate) fn feed(&mut self, mut data: &[u8], path: &Path) -> Result<()> {
        while !data.is_empty() {
            if self.pending.capacity() == 0 {
                self.pending = self.spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(BATCH));
                self.pending.clear();
            }
            let at = self.pending.len();
            let k = (BATCH - at.min(BATCH)).min(data.len());
            self.pending.extend_from_slice(&data[..k]);
            if let Some(lane) = self.passing.map(|k| &mut self.lanes[k]) {
                match lane.items.last_mut() {
                    Some(Item::Data(r)) if r.end == at => r.end += k,
                    _ => lane.items.push(Item::Data(at..at + k)),
                }
            }
            data = &data[k..];
            if self.pending.len() >= BATCH {
                self.flush(path)?;
            }
        }
        Ok(())
    }

    /// Sends the batch to the lanes that have anything to do with it.
    fn flush(&mut self, path: &Path) -> Result<()> {
        let mut data = Some(Arc::new(std::mem::take(&mut self.pending)));
        let busy = self.lanes.iter().filter(|l| !l.items.is_empty()).count();
        for (k, lane) in self.lanes.iter_mut().filter(|l| !l.items.is_empty()).enumerate() {
            let items = std::mem::take(&mut lane.items);
            // The last send moves the batch, so that no reference stays here to keep a lane
            // from giving it back.
            let data = if k + 1 == busy { data.take() } else { data.clone() }.expect("a batch for each busy lane");
            send(&lane.tx, Job { data, items }, path)?;
        }
        Ok(())
    }

    /// Each member's slot and digests, once the lanes have hashed all.
    pub(crate) fn finish(mut self, path: &Path) -> Result<Vec<(usize, MemberDigest)>> {
        self.flush(path)?;
        let mut digests = Vec::new();
        for Lane { tx, worker, .. } in self.lanes {
            drop(tx);
            digests.extend(worker.join().map_err(|_| Error::Bug { path: path.to_path_buf(), what: "a hashing thread panicked".into() })?);
        }
        Ok(digests)
    }
}

fn send(tx: &SyncSender<Job>, m: Job, path: &Path) -> Result<()> {
    tx.send(m).map_err(|_| Error::Bug { path: path.to_path_buf(), what: "a hashing thread ended early".into() })
}

/// The member being hashed on a lane: its slot, its expander and its hasher.
type Passing = (usize, Expander, Hasher);

/// A member's slot and digests, its data all fed.
fn finish((slot, mut x, mut h): Passing) -> (usize, MemberDigest) {
    x.finish(&mut h).expect("a hasher never fails");
    (slot, h.finish())
}
