//! Progress on a terminal, as hyperfine does it: an overall bar, and a line per running worker
//! with its archive and how far into it the work has got.
//!
//! - The overall bar counts bytes of the batch's archives covered, moving *within* each archive as
//!   the job walks it (see [`tarfs::watch`]; streams and compressed files as they are read), not
//!   in jumps as archives finish. Its percentage and ETA are of those bytes; it shows the
//!   archives done beside them. The ETA comes from the mean rate since the start (shown as `--`
//!   until there is enough to go on), not a byte rate that a header walk over a large member
//!   makes meaningless.
//! - A ticker redraws every 100 ms, so the clock never freezes while a worker is busy in one
//!   long write.
//! - Every line fits the terminal, two columns short of its width (see [`term::usable`]), read
//!   again at each tick, so a resize is followed: an archive's name is cut in the middle, its
//!   file name kept ([`layout::fit_name`]), and the overall line drops its least useful parts
//!   where the terminal is narrow. Each line starts on a line of its own ([`term::AnsiStderr`]).
//! - Drawn on stderr when it is a terminal (`--progress auto`), always (`--progress always`: on
//!   a pipe or file too, with ANSI cursor movement, as wide as `$COLUMNS` or 80), or never (`-q`,
//!   `--progress never`).
//! - Messages (errors, warnings, `-v` lines) go through [`Bars::println`], which suspends the
//!   bars, so they reach stderr whether or not the bars are drawn. [`BarsHandle::clear`] takes
//!   them off the screen before an interrupted run exits.

mod layout;
mod term;

use std::collections::HashMap;
use std::io::{IsTerminal, Write};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use tarfs::batch::{Action, Outcome, Progress};

/// When to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum When {
    /// On a terminal only.
    Auto,
    /// Always (to stderr, even when it is not a terminal).
    Always,
    /// Never.
    Never,
}

/// Text laid out at a tick and read by indicatif when it draws (a template key), so that all
/// the lines of a frame show one moment, whichever call happened to draw it: set one at a time
/// through indicatif, the overall line could show a percentage older than its workers' lines.
#[derive(Clone, Default)]
struct Shown(Arc<Mutex<String>>);

impl Shown {
    fn set(&self, text: String) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = text;
    }

    /// A template key that writes the text.
    fn key(&self) -> impl Fn(&ProgressState, &mut dyn std::fmt::Write) + Send + Sync + Clone + 'static {
        let text = self.0.clone();
        move |_, w| {
            let _ = w.write_str(&text.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        }
    }
}

/// One archive a worker is on.
struct Running {
    bar: ProgressBar,
    line: Shown,
    /// How far into it the job has got (from [`tarfs::watch`]), or bytes read of a stream.
    covered: Arc<AtomicU64>,
    len: u64,
}

#[derive(Default)]
struct State {
    running: HashMap<PathBuf, Running>,
    /// Bytes of the archives finished.
    done_bytes: u64,
    done: u64,
    total: u64,
    /// Bytes of all the batch's archives.
    bytes: u64,
    /// Whether the batch has begun (`Progress::begin`): until then the overall line is empty.
    begun: bool,
}

/// The bars of one batch.
pub struct Bars {
    multi: MultiProgress,
    d: Drawing,
    ticker: Mutex<Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>>,
    verbose: bool,
    json: bool,
}

/// The shared state, the overall bar and its text, and how wide the terminal is off a
/// terminal: what the ticker redraws from.
#[derive(Clone)]
struct Drawing {
    state: Arc<Mutex<State>>,
    overall: ProgressBar,
    /// The overall line's clock (before the bar) and the rest (after it).
    before: Shown,
    after: Shown,
    fallback: u16,
}

impl Bars {
    /// Bars that draw according to `when` (and never with `quiet`).
    pub fn new(when: When, quiet: bool, verbose: bool, json: bool) -> Bars {
        let fallback = term::columns_from_env();
        let drawn = !quiet && (when == When::Always || (when == When::Auto && std::io::stderr().is_terminal()));
        let target = match drawn {
            true => ProgressDrawTarget::term_like_with_hz(Box::new(term::AnsiStderr::new(fallback)), 10),
            false => ProgressDrawTarget::hidden(),
        };
        let multi = MultiProgress::with_draw_target(target);
        // Drawn from when the batch begins (`begin` adds it), so that no frame shows a bar of
        // nothing. The clock before the bar and the rest after it are made to fit the width at
        // each tick (`redraw`).
        let overall = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
        let (before, after) = (Shown::default(), Shown::default());
        let style = ProgressStyle::with_template("{before}[{wide_bar:.cyan/blue}] {after}").expect("valid template");
        overall.set_style(style.with_key("before", before.key()).with_key("after", after.key()).progress_chars("=> "));
        let d = Drawing { state: Arc::new(Mutex::new(State::default())), overall, before, after, fallback };
        let ticker = (!multi.is_hidden()).then(|| {
            let stop = Arc::new(AtomicBool::new(false));
            let (s, d) = (stop.clone(), d.clone());
            let handle = std::thread::spawn(move || {
                while !s.load(Ordering::Acquire) {
                    d.redraw();
                    std::thread::park_timeout(Duration::from_millis(100));
                }
            });
            (stop, handle)
        });
        Bars { multi, d, ticker: Mutex::new(ticker), verbose, json }
    }

    /// Prints a line to stderr without tearing the bars.
    pub fn println(&self, line: &str) {
        self.handle().println(line);
    }

    /// A handle for a signal handler: it can print and clear.
    pub fn handle(&self) -> BarsHandle {
        BarsHandle { multi: self.multi.clone() }
    }

    /// Runs `f` (which writes to the terminal) with the bars out of the way.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.multi.suspend(f)
    }

    /// Stops the ticker and removes the bars.
    pub fn finish(&self) {
        if let Some((stop, handle)) = self.ticker.lock().expect("unpoisoned").take() {
            stop.store(true, Ordering::Release);
            handle.thread().unpark();
            let _ = handle.join();
        }
        self.d.overall.finish_and_clear();
        let _ = self.multi.clear();
    }
}

impl Drawing {
    /// Sets the overall position, and each worker's line, from the counters, laid out for the
    /// terminal's width now.
    fn redraw(&self) {
        let st = self.state.lock().expect("unpoisoned");
        if st.begun {
            self.lay_out(&st);
        }
    }

    /// [`Drawing::redraw`] of `st`: all the text first, then the calls that may draw.
    fn lay_out(&self, st: &State) {
        let w = self.width();
        let mut pos = st.done_bytes;
        for (path, r) in &st.running {
            let covered = r.covered.load(Ordering::Relaxed);
            pos += covered.min(r.len);
            r.line.set(worker_message(w, path, covered, r.len));
        }
        let o = layout::Overall { pos, len: st.bytes, done: st.done, total: st.total, elapsed: self.overall.elapsed() };
        let (before, after) = layout::overall(w, &o);
        self.before.set(before);
        self.after.set(after);
        self.overall.set_position(pos.min(st.bytes));
        for r in st.running.values() {
            r.bar.tick();
        }
    }

    /// The columns the lines may take now.
    fn width(&self) -> usize {
        usize::from(term::usable(term::terminal_columns(self.fallback)))
    }
}

/// A worker's line, after its spinner, for `w` columns: how far into `path`, `len` bytes long,
/// the job has got (`covered`).
fn worker_message(w: usize, path: &Path, covered: u64, len: u64) -> String {
    let how_far = match len {
        0 => format!("{} read,", indicatif::BinaryBytes(covered)),
        len => format!("{:>3}%", covered.min(len) * 100 / len),
    };
    // "  ⠁ ": the spinner and its margins.
    layout::worker(w.saturating_sub(4), &how_far, &path.display().to_string())
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
        let mut st = self.d.state.lock().expect("unpoisoned");
        (st.total, st.bytes, st.begun) = (archives, bytes, true);
        self.d.overall.set_length(bytes);
        self.d.lay_out(&st);
        self.multi.insert(0, self.d.overall.clone());
        // The first frame now, not at the next tick: a batch shorter than a tick is shown too.
        self.d.overall.tick();
    }

    fn started(&self, path: &Path, bytes: u64, covered: &Arc<AtomicU64>) {
        if self.multi.is_hidden() {
            return;
        }
        let line = Shown::default();
        line.set(worker_message(self.d.width(), path, 0, bytes));
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        bar.set_style(ProgressStyle::with_template("  {spinner} {line}").expect("valid template").with_key("line", line.key()));
        let r = Running { bar: self.multi.add(bar), line, covered: covered.clone(), len: bytes };
        self.d.state.lock().expect("unpoisoned").running.insert(path.to_path_buf(), r);
    }

    fn read(&self, path: &Path, bytes: u64) {
        if let Some(r) = self.d.state.lock().expect("unpoisoned").running.get(path) {
            r.covered.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    fn finished(&self, o: &Outcome) {
        {
            let mut st = self.d.state.lock().expect("unpoisoned");
            if let Some(r) = st.running.remove(&o.path) {
                r.bar.finish_and_clear();
                self.multi.remove(&r.bar);
            }
            st.done += 1;
            st.done_bytes += o.bytes;
        }
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
                Action::Embedded => "embedded",
                Action::WouldEmbed => "would embed",
                Action::Recompressed => "recompressed",
                Action::WouldRecompress => "would recompress",
                Action::Finished => "finished",
                Action::RolledBack => "rolled back",
                Action::Skipped => "skipped",
                Action::Verified => "ok",
                Action::Failed | Action::Busy => "failed",
            };
            let why = o.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
            let members = o.members.map(|n| format!("; {}", tarfs::batch::count(n, "member", "members"))).unwrap_or_default();
            self.println(&format!("{}: {what}{why}{members}", o.path.display()));
        }
    }
}
