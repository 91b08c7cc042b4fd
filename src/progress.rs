//! Progress on a terminal, as hyperfine does it: an overall bar of bytes and archives done, with
//! rate and ETA, and a line per running worker naming its archive. Nothing is drawn when stderr
//! is not a terminal (cron), with `--quiet`, or with `--progress=never`. Messages (errors,
//! warnings, `-v` lines) go through [`Bars::println`], which suspends the bars, so they reach
//! stderr whether or not the bars are drawn.

use std::io::Write;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tarfs::batch::{Action, Outcome, Progress};

/// When to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum When {
    /// On a terminal only.
    Auto,
    /// Always (to stderr).
    Always,
    /// Never.
    Never,
}

/// The bars of one batch.
pub struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    workers: Mutex<HashMap<PathBuf, ProgressBar>>,
    streamed: Mutex<HashMap<PathBuf, u64>>,
    done: Mutex<(u64, u64)>,
    verbose: bool,
    json: bool,
}

impl Bars {
    /// Bars that draw according to `when` (and never with `quiet`).
    pub fn new(when: When, quiet: bool, verbose: bool, json: bool) -> Bars {
        let draw = !quiet && (when == When::Always || when == When::Auto && std::io::stderr().is_terminal());
        let target = if draw { ProgressDrawTarget::stderr_with_hz(10) } else { ProgressDrawTarget::hidden() };
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30.cyan/blue}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        Bars { multi, overall, workers: Mutex::new(HashMap::new()), streamed: Mutex::new(HashMap::new()), done: Mutex::new((0, 0)), verbose, json }
    }

    /// Prints a line to stderr without tearing the bars.
    pub fn println(&self, line: &str) {
        self.multi.suspend(|| {
            let _ = writeln!(std::io::stderr(), "{line}");
        });
    }

    /// A handle for a signal handler: it can print and clear.
    pub fn handle(&self) -> BarsHandle {
        BarsHandle { multi: self.multi.clone() }
    }

    /// Runs `f` (which writes to the terminal) with the bars out of the way.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.multi.suspend(f)
    }

    /// Removes the bars.
    pub fn finish(&self) {
        self.overall.finish_and_clear();
        let _ = self.multi.clear();
    }
}

/// What a signal handler may do with the bars.
pub struct BarsHandle {
    multi: MultiProgress,
}

impl BarsHandle {
    /// Prints a line to stderr without tearing the bars.
    pub fn println(&self, line: &str) {
        self.multi.suspend(|| {
            let _ = writeln!(std::io::stderr(), "{line}");
        });
    }

    /// Takes the bars off the screen.
    pub fn clear(&self) {
        let _ = self.multi.clear();
    }
}

impl Progress for Bars {
    fn begin(&self, archives: u64, bytes: u64) {
        self.overall.set_length(bytes);
        self.overall.set_message(format!("0/{archives} archives"));
        *self.done.lock().expect("unpoisoned") = (0, archives);
    }

    fn started(&self, path: &Path, _bytes: u64) {
        if self.multi.is_hidden() {
            return;
        }
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(ProgressStyle::with_template("  {spinner} {wide_msg}").expect("valid template"));
        bar.set_message(path.display().to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        self.workers.lock().expect("unpoisoned").insert(path.to_path_buf(), bar);
    }

    fn read(&self, path: &Path, bytes: u64) {
        *self.streamed.lock().expect("unpoisoned").entry(path.to_path_buf()).or_default() += bytes;
        self.overall.inc(bytes);
    }

    fn finished(&self, o: &Outcome) {
        if let Some(bar) = self.workers.lock().expect("unpoisoned").remove(&o.path) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        let (done, total) = {
            let mut d = self.done.lock().expect("unpoisoned");
            d.0 += 1;
            *d
        };
        let streamed = self.streamed.lock().expect("unpoisoned").remove(&o.path).unwrap_or(0);
        self.overall.inc(o.bytes.saturating_sub(streamed));
        self.overall.set_message(format!("{done}/{total} archives"));
        if let Some(e) = &o.error {
            self.println(&format!("tarfs: {}", e.message));
        }
        if let Some(w) = &o.warning {
            self.println(&format!("tarfs: {}: warning: {w}", o.path.display()));
        }
        if self.verbose && !self.json && o.error.is_none() {
            let what = match o.action {
                Action::Indexed => "indexed",
                Action::WouldIndex => "would index",
                Action::Finished => "finished",
                Action::RolledBack => "rolled back",
                Action::Skipped => "skipped",
                Action::Verified => "ok",
                Action::Failed | Action::Busy => "failed",
            };
            let why = o.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
            self.println(&format!("{}: {what}{why}; {}", o.path.display(), tarfs::batch::count(o.members, "member", "members")));
        }
    }
}
