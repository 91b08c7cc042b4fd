//! The committer of a batch: it records each archive's outcome as the archive finishes and tells
//! the [`Progress`], holding back, when the batch stages its writes, the outcomes of archives whose
//! files still wait for a group commit ([`DirSyncs::commit`]) until that commit has settled them.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::{Action, Outcome, Progress};
use crate::error::Error;
use crate::ops::atomic::DirSyncs;

/// Records the outcomes of a batch, in the order of its archives, as they come.
pub(super) struct Committer<'a> {
    progress: &'a dyn Progress,
    /// Where the batch's writes are staged, when they are (two archives or more).
    durability: Option<&'a DirSyncs>,
    results: Mutex<Vec<Option<Outcome>>>,
    failed: AtomicBool,
    /// Outcomes whose files wait for a commit; the files being committed; and commit results
    /// whose outcomes are not yet held (a worker committed a file before its job had returned).
    /// Files are taken out for a commit under this lock, so that a worker that finds its file
    /// neither staged nor here knows it was not staged.
    held: Mutex<Held>,
}

/// What a batch holds back while files wait for a commit.
#[derive(Default)]
struct Held {
    outcomes: HashMap<PathBuf, (usize, Outcome)>,
    committing: HashSet<PathBuf>,
    results: HashMap<PathBuf, Result<(), Error>>,
}

impl<'a> Committer<'a> {
    /// A committer for `archives` archives; staging the writes in `durability` from now on.
    pub(super) fn new(archives: usize, progress: &'a dyn Progress, durability: Option<&'a DirSyncs>) -> Self {
        if let Some(d) = durability {
            d.staging();
        }
        Committer { progress, durability, results: Mutex::new(vec![None; archives]), failed: AtomicBool::new(false), held: Mutex::default() }
    }

    /// Where the writes are staged, if they are.
    pub(super) fn durability(&self) -> Option<&'a DirSyncs> {
        self.durability
    }

    /// Whether an archive has failed so far.
    pub(super) fn any_failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    /// Takes the outcome of archive `i` as its job returns: reported now, or held until its file
    /// is committed (and then reported failed if the commit failed). Commits when enough wait.
    pub(super) fn finished(&self, i: usize, outcome: Outcome) {
        let (Some(d), Some(dest)) = (self.durability, outcome.index_path.clone()) else {
            return self.report(i, outcome);
        };
        if outcome.action == Action::Failed {
            return self.report(i, outcome);
        }
        let now = {
            let mut h = self.held.lock().expect("unpoisoned");
            if let Some(r) = h.results.remove(&dest) {
                Some((outcome, Some(r)))
            } else if h.committing.contains(&dest) || d.is_staged(&dest) {
                h.outcomes.insert(dest, (i, outcome));
                None
            } else {
                Some((outcome, None))
            }
        };
        match now {
            Some((o, Some(r))) => self.settle(i, o, r),
            Some((o, None)) => self.report(i, o),
            None => {}
        }
        if d.due() {
            self.commit(d);
        }
    }

    /// Commits the files staged in `d`, and reports the outcomes that waited for them.
    pub(super) fn commit(&self, d: &DirSyncs) {
        let files = {
            let mut h = self.held.lock().expect("unpoisoned");
            let files = d.take();
            h.committing.extend(files.iter().map(|f| f.dest().to_path_buf()));
            files
        };
        for (dest, r) in d.commit_files(files) {
            let waiting = {
                let mut h = self.held.lock().expect("unpoisoned");
                h.committing.remove(&dest);
                match h.outcomes.remove(&dest) {
                    Some(w) => Some((w, r)),
                    None => {
                        h.results.insert(dest, r);
                        None
                    }
                }
            };
            if let Some(((i, o), r)) = waiting {
                self.settle(i, o, r);
            }
        }
    }

    /// Commits what is left, and gives the outcomes (`None` for archives never started).
    pub(super) fn into_results(self) -> Vec<Option<Outcome>> {
        if let Some(d) = self.durability {
            self.commit(d);
        }
        self.results.into_inner().expect("workers are done")
    }

    /// Reports `outcome`, or the failure of the commit of its file.
    fn settle(&self, i: usize, outcome: Outcome, r: Result<(), Error>) {
        match r {
            Ok(()) => self.report(i, outcome),
            Err(e) => self.report(i, Outcome::new(&outcome.path, outcome.bytes, outcome.seconds, Err(e))),
        }
    }

    fn report(&self, i: usize, outcome: Outcome) {
        if outcome.action == Action::Failed {
            self.failed.store(true, Ordering::SeqCst);
        }
        self.progress.finished(&outcome);
        self.results.lock().expect("no worker panics while holding it")[i] = Some(outcome);
    }
}
