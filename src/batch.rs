//! Running one operation over many archives: in parallel, largest first, one outcome per archive,
//! and no archive's failure stopping the others (unless asked).
//!
//! The runner knows nothing of terminals: it reports through the [`Progress`] trait, which the
//! binary implements with progress bars on a TTY and with nothing under cron.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::discover::Found;
use crate::error::Error;
use crate::ops::atomic::DirSyncs;

mod committer;
pub mod report;
pub mod shard;
use committer::Committer;

/// What happened to one archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// An index was written.
    Indexed,
    /// A dry run: an index would be written.
    WouldIndex,
    /// `embed`: the index was embedded in the archive (or its embedded index rewritten).
    Embedded,
    /// `embed`, a dry run: the index would be embedded.
    WouldEmbed,
    /// `recompress`: the archive was rewritten in frames or blocks, and indexed.
    Recompressed,
    /// `recompress`, a dry run: the archive would be rewritten.
    WouldRecompress,
    /// `recover`: an interrupted change was carried through to its end.
    Finished,
    /// `recover`: an interrupted change was undone; the archive is as it was before it.
    RolledBack,
    /// Nothing needed doing: the index is present and fresh.
    Skipped,
    /// `verify`: the index checked out.
    Verified,
    /// The archive could not be processed.
    Failed,
    /// Another process is changing the archive.
    Busy,
}

/// Where a failure is, for machine-readable reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The whole message.
    pub message: String,
    /// The byte offset in the archive, when the failure has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

/// The outcome of one archive.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The archive.
    pub path: PathBuf,
    /// What happened.
    pub action: Action,
    /// Why (new, stale, forced, fresh, dry run, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Members in the archive, where they were counted (not in a dry run of a compressed
    /// archive, which is not decoded for it, nor in a failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<u64>,
    /// Bytes of archive read.
    pub bytes: u64,
    /// The index written or checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_path: Option<PathBuf>,
    /// Wall-clock seconds spent on it.
    pub seconds: f64,
    /// The failure, for `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
    /// A warning worth showing (a lone zero block, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// What an operation reports for one archive that it handled.
#[derive(Debug, Clone)]
pub struct Done {
    /// What was done (anything but [`Action::Failed`] and [`Action::Busy`]).
    pub action: Action,
    /// Why.
    pub reason: Option<String>,
    /// Members, where they were counted.
    pub members: Option<u64>,
    /// The index path.
    pub index_path: Option<PathBuf>,
    /// A warning.
    pub warning: Option<String>,
}

impl Outcome {
    fn new(path: &Path, bytes: u64, seconds: f64, r: Result<Done, Error>) -> Outcome {
        match r {
            Ok(d) => Outcome {
                path: path.to_path_buf(),
                action: d.action,
                reason: d.reason,
                members: d.members,
                bytes,
                index_path: d.index_path,
                seconds,
                error: None,
                warning: d.warning,
            },
            Err(e) => Outcome {
                path: path.to_path_buf(),
                action: if matches!(e, Error::Busy { .. }) { Action::Busy } else { Action::Failed },
                reason: None,
                members: None,
                bytes,
                index_path: None,
                seconds,
                error: Some(Failure { offset: e.offset(), message: e.to_string() }),
                warning: None,
            },
        }
    }
}

/// Hears about a batch as it runs. Called from worker threads.
pub trait Progress: Sync {
    /// The batch is about to run `archives` archives, `bytes` in all.
    fn begin(&self, archives: u64, bytes: u64);
    /// A worker started on `path` (`bytes` long). `covered` is how far into it the work has got
    /// (see [`crate::watch`]); it grows as the job runs.
    fn started(&self, path: &Path, bytes: u64, covered: &Arc<AtomicU64>);
    /// A worker finished an archive.
    fn finished(&self, outcome: &Outcome);
    /// A worker read `bytes` more of `path` (streams and compressed files, as they are read).
    fn read(&self, _path: &Path, _bytes: u64) {}
    /// Why a worker passed over `path` (a compressed archive that `embed` cannot change), for a
    /// person watching; a cron run counts such archives in its summary instead.
    fn note(&self, _path: &Path, _why: &str) {}
    /// Something about the whole run, said once by whoever found it (that sidecars went to the
    /// user's cache), for cron runs too.
    fn announce(&self, _what: &str) {}
    /// A compressed archive was indexed without seek points (`why`), though it is larger than
    /// one span: every read decodes it from the start.
    fn not_seekable(&self, _path: &Path, _why: &crate::seekpoints::NoSeekPoints) {}
}

/// A reader that tells a [`Progress`] how much it has read.
pub struct Counting<'p, R> {
    inner: R,
    progress: &'p dyn Progress,
    path: PathBuf,
}

impl<'p, R> Counting<'p, R> {
    /// Counts what `inner` reads, as bytes of `path`.
    pub fn new(inner: R, progress: &'p dyn Progress, path: &Path) -> Self {
        Counting { inner, progress, path: path.to_path_buf() }
    }
}

impl<R: std::io::Read> std::io::Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.read(&self.path, n as u64);
        Ok(n)
    }
}

/// A [`Progress`] that shows nothing.
pub struct Silent;

impl Progress for Silent {
    fn begin(&self, _: u64, _: u64) {}
    fn started(&self, _: &Path, _: u64, _: &Arc<AtomicU64>) {}
    fn finished(&self, _: &Outcome) {}
}

/// How to run a batch.
#[derive(Debug, Clone, Default)]
pub struct BatchOptions {
    /// Worker threads; 0 for one per core.
    pub jobs: usize,
    /// Stop starting archives after the first failure.
    pub fail_fast: bool,
    /// Handle each file once, however many of its names (hard links, symlinks) were found: the
    /// others are skipped, naming the one handled. For in-place changes.
    pub once_per_file: bool,
    /// Where the jobs' atomic writes defer their durability (the same [`DirSyncs`] their
    /// operations were given). With two archives or more, their files are staged and committed
    /// in groups ([`DirSyncs::commit`]): an archive's outcome is reported once its file is in
    /// place, and an archive whose commit failed is reported failed.
    pub durability: Option<Arc<DirSyncs>>,
}

/// Runs `job` on every archive. Returns the outcomes in the order of `found` (sorted discovery
/// order), and whether the batch was stopped early (by `stop`, or by `fail_fast`).
///
/// Archives are started largest first, so that a long one does not finish last. When `stop` is
/// set (by a SIGINT handler), workers finish the archive they are on, whose writes are atomic or
/// journaled, and start no other.
pub fn run(
    found: &[Found],
    opts: BatchOptions,
    stop: &AtomicBool,
    progress: &dyn Progress,
    job: impl Fn(&Found, &dyn Progress) -> Result<Done, Error> + Sync,
) -> (Vec<Option<Outcome>>, bool) {
    let plan = Plan::of(found, opts.once_per_file);
    progress.begin(found.len() as u64, plan.sizes.iter().sum());
    let committer = Committer::new(found.len(), progress, opts.durability.as_deref().filter(|_| found.len() > 1));
    let work = || {
        plan.order.par_iter().with_max_len(1).for_each(|&i| {
            if stop.load(Ordering::SeqCst) || (opts.fail_fast && committer.any_failed()) {
                return;
            }
            committer.finished(i, plan.one(found, i, progress, &job));
        })
    };
    // Staged files are committed when enough wait (by the worker that staged the last), and
    // at least every COMMIT_EVERY by a committer thread, so that reports keep streaming while
    // a slow archive holds the batch.
    let all_done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let ticker = committer.durability().map(|d| {
            let (committer, all_done) = (&committer, &all_done);
            scope.spawn(move || {
                while !all_done.load(Ordering::Acquire) {
                    std::thread::park_timeout(COMMIT_EVERY);
                    if d.has_staged() {
                        committer.commit(d);
                    }
                }
            })
        });
        match rayon::ThreadPoolBuilder::new().num_threads(opts.jobs).build() {
            Ok(pool) => pool.install(work),
            Err(_) => work(),
        }
        all_done.store(true, Ordering::Release);
        if let Some(c) = ticker {
            c.thread().unpark();
            let _ = c.join();
        }
    });
    let results = committer.into_results();
    let stopped = results.iter().any(Option::is_none);
    (results, stopped)
}

/// The longest a staged file waits for its commit, and its archive for its report.
const COMMIT_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// What a batch knows of its archives before it starts: their sizes, which are the same file as
/// one found before them (with `once_per_file`), and the order to start them in.
struct Plan {
    sizes: Vec<u64>,
    same_as: Vec<Option<usize>>,
    order: Vec<usize>,
}

impl Plan {
    fn of(found: &[Found], once_per_file: bool) -> Plan {
        use std::os::unix::fs::MetadataExt;
        let metas: Vec<Option<std::fs::Metadata>> = found.iter().map(|f| std::fs::metadata(&f.path).ok()).collect();
        let sizes: Vec<u64> = metas.iter().map(|m| m.as_ref().map_or(0, |m| m.len())).collect();
        // The first name found of each file; the others are the same file again.
        let mut first_name = HashMap::new();
        let same_as: Vec<Option<usize>> = metas
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let m = m.as_ref().filter(|m| once_per_file && m.is_file())?;
                let first = *first_name.entry((m.dev(), m.ino())).or_insert(i);
                (first != i).then_some(first)
            })
            .collect();
        let mut order: Vec<usize> = (0..found.len()).collect();
        order.sort_by(|&a, &b| sizes[b].cmp(&sizes[a]).then(a.cmp(&b)));
        Plan { sizes, same_as, order }
    }

    /// Runs `job` on archive `i` (or skips it, another name of a file handled), timed.
    fn one(&self, found: &[Found], i: usize, progress: &dyn Progress, job: &(impl Fn(&Found, &dyn Progress) -> Result<Done, Error> + Sync)) -> Outcome {
        let f = &found[i];
        let covered = Arc::new(AtomicU64::new(0));
        progress.started(&f.path, self.sizes[i], &covered);
        let t = Instant::now();
        let result = match self.same_as[i] {
            Some(first) => Ok(Done {
                action: Action::Skipped,
                reason: Some(format!("the same file as {}, which this run handles", found[first].path.display())),
                members: None,
                index_path: None,
                warning: None,
            }),
            None => crate::watch::covering(covered, || isolated(f, progress, job)),
        };
        let outcome = Outcome::new(&f.path, self.sizes[i], 0.0, result);
        Outcome { seconds: t.elapsed().as_secs_f64(), ..outcome }
    }
}

/// Runs `job` on one archive, turning a panic (a bug in tarfs) into that archive's failure, so
/// that the batch goes on and reports.
fn isolated(f: &Found, progress: &dyn Progress, job: &(impl Fn(&Found, &dyn Progress) -> Result<Done, Error> + Sync)) -> Result<Done, Error> {
    use std::os::unix::fs::MetadataExt;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // Testing aid: a bug, simulated on the archive named by `TARFS_PANIC_ON`.
        if std::env::var_os("TARFS_PANIC_ON").is_some_and(|n| Some(n.as_os_str()) == f.path.file_name()) {
            panic!("TARFS_PANIC_ON");
        }
        stall(&f.path);
        job(f, progress)
    }))
    .unwrap_or_else(|payload| {
        let what = payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned()).unwrap_or_default();
        let pending = std::fs::metadata(&f.path).is_ok_and(|m| crate::ops::journal::pending(&f.path, (m.dev(), m.ino())));
        let state = if pending { format!("; an in-place change was interrupted: run `tarfs recover {}`", f.path.display()) } else { String::new() };
        Err(Error::Bug { path: f.path.clone(), what: format!("{what}{state}") })
    })
}

/// Testing aid: a job that hangs (on a stuck file server, say) on the archive named by
/// `TARFS_STALL_ON`, for as long as a file of its name and `.stall` is beside it, so that a test
/// can kill a task in mid-run (tests/slurm.rs).
fn stall(path: &Path) {
    if std::env::var_os("TARFS_STALL_ON").is_some_and(|n| Some(n.as_os_str()) == path.file_name()) {
        let mut marker = path.as_os_str().to_owned();
        marker.push(".stall");
        while Path::new(&marker).exists() {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

/// `n` and the noun, singular or plural as `n` asks: `count(1, "member", "members")` is
/// "1 member".
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Totals of a batch, for the summary line and the last `--json` record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Archives indexed.
    pub indexed: u64,
    /// Archives a dry run would index.
    pub would_index: u64,
    /// Archives whose index was embedded.
    pub embedded: u64,
    /// Archives a dry run would embed an index in.
    pub would_embed: u64,
    /// Archives recompressed.
    pub recompressed: u64,
    /// Archives a dry run would recompress.
    pub would_recompress: u64,
    /// Interrupted changes finished.
    pub finished: u64,
    /// Interrupted changes rolled back.
    pub rolled_back: u64,
    /// Archives verified.
    pub verified: u64,
    /// Archives skipped as fresh.
    pub skipped: u64,
    /// Archives that failed.
    pub failed: u64,
    /// Archives another process held.
    pub busy: u64,
    /// Archives not started (interrupted, or --fail-fast).
    pub not_started: u64,
    /// Members in the archives handled, where they were counted.
    pub members: u64,
    /// Archives handled whose members were not counted (a dry run of a compressed archive).
    pub uncounted: u64,
    /// Bytes of the archives handled.
    pub bytes: u64,
}

impl Summary {
    /// Adds `other`'s counts to these (the shards of a run, merged).
    pub fn add(&mut self, other: &Summary) {
        let Summary { indexed, would_index, embedded, would_embed, recompressed, would_recompress, finished, rolled_back, verified, skipped, failed, busy, not_started, members, uncounted, bytes } = *other;
        self.indexed += indexed;
        self.would_index += would_index;
        self.embedded += embedded;
        self.would_embed += would_embed;
        self.recompressed += recompressed;
        self.would_recompress += would_recompress;
        self.finished += finished;
        self.rolled_back += rolled_back;
        self.verified += verified;
        self.skipped += skipped;
        self.failed += failed;
        self.busy += busy;
        self.not_started += not_started;
        self.members += members;
        self.uncounted += uncounted;
        self.bytes += bytes;
    }

    /// Adds up outcomes.
    pub fn of(outcomes: &[Option<Outcome>]) -> Summary {
        let mut s = Summary::default();
        for o in outcomes {
            let Some(o) = o else {
                s.not_started += 1;
                continue;
            };
            match o.action {
                Action::Indexed => s.indexed += 1,
                Action::WouldIndex => s.would_index += 1,
                Action::Embedded => s.embedded += 1,
                Action::WouldEmbed => s.would_embed += 1,
                Action::Recompressed => s.recompressed += 1,
                Action::WouldRecompress => s.would_recompress += 1,
                Action::Finished => s.finished += 1,
                Action::RolledBack => s.rolled_back += 1,
                Action::Verified => s.verified += 1,
                Action::Skipped => s.skipped += 1,
                Action::Failed => s.failed += 1,
                Action::Busy => s.busy += 1,
            }
            match o.members {
                Some(n) => s.members += n,
                None if !matches!(o.action, Action::Failed | Action::Busy) => s.uncounted += 1,
                None => {}
            }
            s.bytes += o.bytes;
        }
        s
    }
}
