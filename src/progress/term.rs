//! stderr as indicatif draws on it, with ANSI cursor movement.
//!
//! indicatif writes the bars' lines one after another with no newline between them: it pads
//! each to the width it was told and counts on the terminal wrapping to the next line. The bars
//! are laid out narrower than the terminal (see [`usable`]), so that wrap never comes and each
//! line would start where the one before it ended, one column further right each line (issue
//! #30, item 8). [`AnsiStderr`] therefore follows the column its own writes reach, and starts a
//! new line itself when a line begins where the one before filled the width. It also holds a
//! frame's writes until indicatif flushes at the end of each draw, so that a frame reaches the
//! terminal in one write, not in the pieces of its lines and cursor moves.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use indicatif::TermLike;

use super::layout::columns;

/// The columns the bars use on a terminal `cols` wide: two fewer. A line that fills the last
/// column leaves the cursor waiting to wrap, and the column before it is where the `^C` a
/// terminal echoes goes: "^C" echoed after a line that reached the last column but one would
/// wrap just the same, start a new line, put the bars' redraw one line off and leave a frozen
/// copy on the screen.
pub fn usable(cols: u16) -> u16 {
    cols.saturating_sub(2).max(20)
}

/// The width of stderr's terminal in columns, read now (so a resize is followed); `fallback`
/// when stderr is not a terminal (`--progress always`: `$COLUMNS`, or 80).
pub fn terminal_columns(fallback: u16) -> u16 {
    rustix::termios::tcgetwinsize(std::io::stderr()).ok().map(|w| w.ws_col).filter(|&c| c > 0).unwrap_or(fallback)
}

/// `$COLUMNS`, or 80.
pub fn columns_from_env() -> u16 {
    std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).filter(|&w| w > 0).unwrap_or(80)
}

/// stderr for indicatif, laid out [`usable`] columns wide, starting each line on a line of its
/// own.
#[derive(Debug)]
pub struct AnsiStderr {
    fallback: u16,
    /// The width given for the draw under way.
    width: AtomicUsize,
    /// The column the cursor has reached, as far as the bars' writes tell.
    col: AtomicUsize,
    /// What the draw under way has written, until it flushes.
    frame: Mutex<Vec<u8>>,
}

impl AnsiStderr {
    pub fn new(fallback: u16) -> AnsiStderr {
        AnsiStderr { fallback, width: AtomicUsize::new(usize::MAX), col: AtomicUsize::new(0), frame: Mutex::default() }
    }

    fn put(&self, s: &str) -> std::io::Result<()> {
        self.frame.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(s.as_bytes());
        Ok(())
    }

    fn csi(&self, n: usize, code: char) -> std::io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.put(&format!("\x1b[{n}{code}"))
    }

    /// Where the cursor is after `s` is written from column `col`.
    fn after(col: usize, s: &str) -> usize {
        match s.rfind(['\r', '\n']) {
            Some(i) => columns(&strip_csi(&s[i + 1..])),
            None => col + columns(&strip_csi(s)),
        }
    }
}

/// `s` without its ANSI escape sequences (the colours of the bar).
fn strip_csi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // ESC [ parameters, then a final byte in @..~.
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl TermLike for AnsiStderr {
    fn width(&self) -> u16 {
        let w = usable(terminal_columns(self.fallback));
        self.width.store(usize::from(w), Ordering::Relaxed);
        w
    }
    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.csi(n, 'A')
    }
    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.csi(n, 'B')
    }
    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.col.fetch_add(n, Ordering::Relaxed);
        self.csi(n, 'C')
    }
    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        let _ = self.col.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| Some(c.saturating_sub(n)));
        self.csi(n, 'D')
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.write_str(s)?;
        self.col.store(0, Ordering::Relaxed);
        self.put("\n")
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        if s.is_empty() {
            return Ok(());
        }
        let mut col = self.col.load(Ordering::Relaxed);
        // The line before filled the width: this one starts on the next line.
        if col >= self.width.load(Ordering::Relaxed) && !s.starts_with(['\r', '\n']) {
            self.put("\r\n")?;
            col = 0;
        }
        self.col.store(Self::after(col, s), Ordering::Relaxed);
        self.put(s)
    }
    fn clear_line(&self) -> std::io::Result<()> {
        self.col.store(0, Ordering::Relaxed);
        self.put("\r\x1b[2K")
    }
    fn flush(&self) -> std::io::Result<()> {
        let frame = std::mem::take(&mut *self.frame.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let mut err = std::io::stderr().lock();
        err.write_all(&frame)?;
        err.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_is_followed_through_text_colours_and_returns() {
        assert_eq!(AnsiStderr::after(3, "ab"), 5);
        assert_eq!(AnsiStderr::after(3, "\x1b[36m==>\x1b[0m  "), 8);
        assert_eq!(AnsiStderr::after(40, "x\ryz"), 2);
        assert_eq!(AnsiStderr::after(40, "x\n"), 0);
        assert_eq!(AnsiStderr::after(0, "⠁ アー"), 6);
        assert_eq!(usable(80), 78);
        assert_eq!(usable(10), 20);
    }
}
