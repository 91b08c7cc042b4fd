//! Progress on a terminal, as hyperfine does it: an overall bar, and a line per running worker
//! with its archive and how far into it the work has got.
//!
//! - The overall bar counts bytes of the batch's archives covered, moving *within* each archive as
//!   the job walks it (see [`tarfs::watch`]; streams and compressed files as they are read), not
//!   in jumps as archives finish. It shows the archives done, and an ETA from the mean rate since
//!   the start (shown as `--` until there is enough to go on), not a byte rate that a header walk
//!   over a large member makes meaningless.
//! - A ticker redraws every 100 ms, so the clock never freezes while a worker is busy in one
//!   long write.
//! - The bar fits the terminal's width (`wide_bar`, `wide_msg`): nothing wraps at 60 columns.
//! - Drawn on stderr when it is a terminal (`--progress auto`), always (`--progress always`: on
//!   a pipe or file too, with ANSI cursor movement, as wide as `$COLUMNS` or 80), or never (`-q`,
//!   `--progress never`).
//! - Messages (errors, warnings, `-v` lines) go through [`Bars::println`], which suspends the
//!   bars, so they reach stderr whether or not the bars are drawn. [`BarsHandle::clear`] takes
//!   them off the screen before an interrupted run exits.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle, TermLike};
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

/// One archive a worker is on.
struct Running {
    bar: ProgressBar,
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
}

/// The bars of one batch.
pub struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    state: Arc<Mutex<State>>,
    ticker: Mutex<Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>>,
    verbose: bool,
    json: bool,
}

/// `h:mm:ss`, or `m:ss` under an hour.
fn clock(secs: f64) -> String {
    let s = secs.round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// The ETA from the mean rate since the start; `--` for the first two seconds and the first
/// percent, when a guess would be noise.
fn mean_eta(s: &ProgressState, w: &mut dyn std::fmt::Write) {
    let (pos, len, elapsed) = (s.pos(), s.len().unwrap_or(0), s.elapsed().as_secs_f64());
    if elapsed < 2.0 || pos == 0 || len == 0 || pos * 100 < len {
        let _ = w.write_str("--");
    } else {
        let _ = w.write_str(&clock(elapsed * (len.saturating_sub(pos)) as f64 / pos as f64));
    }
}

impl Bars {
    /// Bars that draw according to `when` (and never with `quiet`).
    pub fn new(when: When, quiet: bool, verbose: bool, json: bool) -> Bars {
        let target = match when {
            _ if quiet => ProgressDrawTarget::hidden(),
            When::Never => ProgressDrawTarget::hidden(),
            When::Always => ProgressDrawTarget::term_like_with_hz(Box::new(AnsiStderr::from_env()), 10),
            When::Auto if std::io::stderr().is_terminal() => ProgressDrawTarget::term_like_with_hz(Box::new(AnsiStderr::from_env()), 10),
            When::Auto => ProgressDrawTarget::hidden(),
        };
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{wide_bar:.cyan/blue}] {percent:>3}% {msg} ETA {mean_eta}")
                .expect("valid template")
                .with_key("mean_eta", mean_eta)
                .progress_chars("=> "),
        );
        let state = Arc::new(Mutex::new(State::default()));
        let ticker = (!multi.is_hidden()).then(|| {
            let stop = Arc::new(AtomicBool::new(false));
            let (s, st, bar) = (stop.clone(), state.clone(), overall.clone());
            let handle = std::thread::spawn(move || {
                while !s.load(Ordering::Acquire) {
                    redraw(&st, &bar);
                    std::thread::park_timeout(Duration::from_millis(100));
                }
            });
            (stop, handle)
        });
        Bars { multi, overall, state, ticker: Mutex::new(ticker), verbose, json }
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
        self.overall.finish_and_clear();
        let _ = self.multi.clear();
    }
}

/// Sets the overall position, and each worker's line, from the counters.
fn redraw(state: &Mutex<State>, overall: &ProgressBar) {
    let st = state.lock().expect("unpoisoned");
    let mut pos = st.done_bytes;
    for (path, r) in &st.running {
        let covered = r.covered.load(Ordering::Relaxed).min(r.len);
        pos += covered;
        let mut line = String::new();
        if r.len > 0 {
            let _ = write!(line, "{:>3}% ", covered * 100 / r.len);
        } else {
            let _ = write!(line, "{} read, ", indicatif::BinaryBytes(r.covered.load(Ordering::Relaxed)));
        }
        let _ = write!(line, "{}", path.display());
        r.bar.set_message(line);
        r.bar.tick();
    }
    overall.set_position(pos);
    overall.set_message(format!("{}/{} archives", st.done, st.total));
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
        let mut st = self.state.lock().expect("unpoisoned");
        st.total = archives;
        self.overall.set_message(format!("0/{archives} archives"));
    }

    fn started(&self, path: &Path, bytes: u64, covered: &Arc<AtomicU64>) {
        if self.multi.is_hidden() {
            return;
        }
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(ProgressStyle::with_template("  {spinner} {wide_msg}").expect("valid template"));
        bar.set_message(format!("  0% {}", path.display()));
        let r = Running { bar, covered: covered.clone(), len: bytes };
        self.state.lock().expect("unpoisoned").running.insert(path.to_path_buf(), r);
    }

    fn read(&self, path: &Path, bytes: u64) {
        if let Some(r) = self.state.lock().expect("unpoisoned").running.get(path) {
            r.covered.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    fn finished(&self, o: &Outcome) {
        {
            let mut st = self.state.lock().expect("unpoisoned");
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
                Action::Recompressed => "recompressed",
                Action::WouldRecompress => "would recompress",
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

/// stderr, drawn on with ANSI cursor movement. Lines stop one column short of the terminal's
/// width (read at each draw, so a resize is followed): a line that fills the last column leaves
/// the cursor waiting to wrap, and the `^C` a terminal echoes would then start a new line,
/// putting the bars' redraw one line off and leaving a frozen copy on screen. When stderr is
/// not a terminal (`--progress always`), the width is `$COLUMNS`, or 80.
#[derive(Debug)]
struct AnsiStderr {
    fallback: u16,
}

impl AnsiStderr {
    fn from_env() -> AnsiStderr {
        AnsiStderr { fallback: std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).filter(|&w| w > 0).unwrap_or(80) }
    }

    fn put(&self, s: &str) -> std::io::Result<()> {
        std::io::stderr().write_all(s.as_bytes())
    }

    fn csi(&self, n: usize, code: char) -> std::io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.put(&format!("\x1b[{n}{code}"))
    }
}

impl TermLike for AnsiStderr {
    fn width(&self) -> u16 {
        let cols = rustix::termios::tcgetwinsize(std::io::stderr()).ok().map(|w| w.ws_col).filter(|&c| c > 0).unwrap_or(self.fallback);
        cols.saturating_sub(1).max(20)
    }
    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.csi(n, 'A')
    }
    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.csi(n, 'B')
    }
    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.csi(n, 'C')
    }
    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.csi(n, 'D')
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.put(s)?;
        self.put("\n")
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.put(s)
    }
    fn clear_line(&self) -> std::io::Result<()> {
        self.put("\r\x1b[2K")
    }
    fn flush(&self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
