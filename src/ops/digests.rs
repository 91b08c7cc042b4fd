//! Member digests computed while an index is written (issue #36).
//!
//! Every writer's [`crate::ops::index::EntrySink`] may hold a [`Collector`]: one slot per entry,
//! in entry order. A plain archive's members are noted by where their data lies
//! ([`Place`], cheap, on the scanning thread) and hashed after the scan from the mapping, on
//! every core ([`Collector::hash_mapped`]): the scan itself touches headers only. A stream's
//! (a compressed archive's) members are hashed as their data passes ([`Streaming`]), in the one
//! pass that decodes it.

use std::io::Write;
use std::path::{Path, PathBuf};

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

/// What the scanning thread sends the hashing thread.
enum Msg {
    /// A member starts: its slot and its expander.
    Start(usize, Expander),
    /// A piece of its stored data.
    Data(Vec<u8>),
}

/// Members of a stream hashed as their data passes, on a thread of their own, so that hashing
/// overlaps decoding and scanning (a compressed archive's one pass costs little more with
/// digests than without).
pub(crate) struct StreamHasher {
    tx: std::sync::mpsc::SyncSender<Msg>,
    worker: std::thread::JoinHandle<Vec<(usize, MemberDigest)>>,
    /// The passing member's data not sent yet: pieces are sent in batches of [`BATCH`] bytes,
    /// since a decoder's reads are small (tens of KiB) and a message each costs the hashing
    /// thread a wake-up each.
    pending: Vec<u8>,
}

/// Bytes of a member's data sent to the hashing thread at once.
const BATCH: usize = 4 << 20;

impl StreamHasher {
    /// Starts the hashing thread.
    pub(crate) fn new() -> StreamHasher {
        // Up to 16 batches (of 4 MiB, see `BATCH`) in flight.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(16);
        let worker = std::thread::spawn(move || {
            let mut done: Vec<(usize, MemberDigest)> = Vec::new();
            let mut current: Option<Passing> = None;
            for m in rx {
                match m {
                    Msg::Start(slot, x) => {
                        done.extend(current.take().map(finish));
                        let h = Hasher::new(x.size());
                        current = Some((slot, x, h));
                    }
                    Msg::Data(d) => {
                        if let Some((_, x, h)) = current.as_mut() {
                            x.feed(&d, h).expect("a hasher never fails");
                        }
                    }
                }
            }
            done.extend(current.take().map(finish));
            done
        });
        StreamHasher { tx, worker, pending: Vec::new() }
    }

    /// Starts hashing `e`'s content, for slot `slot`.
    pub(crate) fn start(&mut self, e: &Entry<'_>, slot: usize, opts: &ScanOptions, path: &Path) -> Result<()> {
        let x = Expander::new(e, opts, path)?;
        self.flush(path)?;
        self.send(Msg::Start(slot, x), path)
    }

    /// A piece of the passing member's stored data, in order.
    pub(crate) fn feed(&mut self, data: &[u8], path: &Path) -> Result<()> {
        self.pending.extend_from_slice(data);
        if self.pending.len() >= BATCH {
            self.flush(path)?;
        }
        Ok(())
    }

    /// Sends what is pending.
    fn flush(&mut self, path: &Path) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
        self.send(Msg::Data(batch), path)
    }

    fn send(&self, m: Msg, path: &Path) -> Result<()> {
        self.tx.send(m).map_err(|_| Error::Bug { path: path.to_path_buf(), what: "the hashing thread ended early".into() })
    }

    /// Each member's slot and digests, once the thread has hashed all.
    pub(crate) fn finish(mut self, path: &Path) -> Result<Vec<(usize, MemberDigest)>> {
        self.flush(path)?;
        drop(self.tx);
        self.worker.join().map_err(|_| Error::Bug { path: path.to_path_buf(), what: "the hashing thread panicked".into() })
    }
}

/// The member being hashed: its slot, its expander and its hasher.
type Passing = (usize, Expander, Hasher);

/// A member's slot and digests, its data all fed.
fn finish((slot, mut x, mut h): Passing) -> (usize, MemberDigest) {
    x.finish(&mut h).expect("a hasher never fails");
    (slot, h.finish())
}
