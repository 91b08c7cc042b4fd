//! The batch commands' reports: each archive as it finishes (the bars and stderr messages, then
//! its `--json` record or its line on stdout, flushed at once, so that a long batch can be
//! followed with `| jq` or `| tail -f`), and the summary record.

use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tarfs::batch::{self, Progress, Summary};

use crate::progress::Bars;
use crate::warn;

/// Reports each archive as it finishes. A closed stdout stops the reports, not the work.
pub struct Reporter<'a> {
    pub bars: Bars,
    pub json: bool,
    pub line: Option<&'a (dyn Fn(&batch::Outcome) -> String + Sync)>,
    /// Whether `line` is printed for archives left as they were (`ok`, nothing to recover): on a
    /// terminal or with `-v`. Under cron, a mail then holds what changed, the errors and the
    /// summary.
    pub every_line: bool,
    /// Whether why an archive was passed over ([`Progress::note`]) is said, one line each: on a
    /// terminal, unless `-q` or `-v` (whose line for each archive says it).
    pub notes: bool,
    /// Whether what is said of the whole run ([`Progress::announce`]) is said: unless `-q`.
    pub announce: bool,
    /// The first error writing stdout, other than a closed pipe.
    pub failed: Mutex<Option<io::Error>>,
    pub closed: AtomicBool,
    /// Whether archives without seek points are each named (`-v`, or stderr on a terminal);
    /// otherwise (cron) they are counted for one line after the summary, and with `-q` not at
    /// all.
    pub hints: Hints,
    /// Archives without seek points, counted.
    pub unseekable: AtomicU64,
}

/// How the hint for archives without seek points is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hints {
    /// A line for each archive.
    Each,
    /// One line for the batch.
    Counted,
    /// None (`-q`).
    Quiet,
}

/// A `--json` record: `"type": "archive"` for each archive, as it finishes, and `"type":
/// "summary"` for the totals, last.
#[derive(serde::Serialize)]
pub struct Record<'a, T: serde::Serialize> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(flatten)]
    pub body: &'a T,
}

/// The totals record.
#[derive(serde::Serialize)]
pub struct SummaryRecord<'a> {
    pub command: &'a str,
    pub dry_run: bool,
    #[serde(flatten)]
    pub totals: &'a Summary,
    pub seconds: f64,
}

impl Reporter<'_> {
    /// Writes `f`'s output to stdout and flushes it, unless stdout is closed. If it cannot be
    /// written (other than to a closed pipe), says so on stderr with `said`, what it would have
    /// said, so that what was done to the archive is not lost with it.
    pub fn print(&self, said: &str, f: impl FnOnce(&mut io::StdoutLock<'_>) -> io::Result<()>) {
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        let r = self.bars.suspend(|| {
            let mut out = io::stdout().lock();
            f(&mut out).and_then(|()| out.flush())
        });
        if let Err(e) = r {
            self.closed.store(true, Ordering::SeqCst);
            if e.kind() != io::ErrorKind::BrokenPipe {
                warn(format!("cannot write the report to standard output ({e}); it said: {said}"));
                *self.failed.lock().expect("unpoisoned") = Some(e);
            }
        }
    }
}

impl Progress for Reporter<'_> {
    fn begin(&self, archives: u64, bytes: u64) {
        self.bars.begin(archives, bytes);
    }
    fn started(&self, path: &Path, bytes: u64, covered: &Arc<AtomicU64>) {
        self.bars.started(path, bytes, covered);
    }
    fn read(&self, path: &Path, bytes: u64) {
        self.bars.read(path, bytes);
    }
    fn note(&self, path: &Path, why: &str) {
        if self.notes {
            self.bars.println(&format!("tarfs: {}: {why}", path.display()));
        }
    }
    fn announce(&self, what: &str) {
        if self.announce {
            self.bars.println(&format!("tarfs: {what}"));
        }
    }
    fn not_seekable(&self, path: &Path, why: &tarfs::seekpoints::NoSeekPoints) {
        match self.hints {
            Hints::Each => self.bars.println(&format!("tarfs: {}: {}", path.display(), super::notes::unseekable_hint(why))),
            Hints::Counted => {
                self.unseekable.fetch_add(1, Ordering::Relaxed);
            }
            Hints::Quiet => {}
        }
    }
    fn finished(&self, o: &batch::Outcome) {
        self.bars.finished(o);
        let said = || format!("{}: {}", o.path.display(), o.reason.as_deref().or(o.error.as_ref().map(|e| e.message.as_str())).unwrap_or_default());
        if self.json {
            self.print(&said(), |out| {
                serde_json::to_writer(&mut *out, &Record { kind: "archive", body: &super::pinned::ArchiveRecord::of(o) })?;
                writeln!(out)
            });
        } else if let Some(line) = self.line.filter(|_| o.error.is_none() && (self.every_line || !matches!(o.action, batch::Action::Skipped | batch::Action::Verified))) {
            let text = line(o);
            self.print(&text, |out| writeln!(out, "{text}"));
        }
    }
}
