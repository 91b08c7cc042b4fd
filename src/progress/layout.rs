//! The text of the bars, made to fit a width in columns: an archive's name shortened in the
//! middle (its file name kept), and the overall line's parts dropped, least useful first, where
//! the width is too narrow for all of them. Widths are display columns (`unicode-width`, as
//! indicatif measures them).

use std::time::Duration;

use unicode_width::UnicodeWidthChar;

/// The columns `s` takes.
pub fn columns(s: &str) -> usize {
    s.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// `name` in at most `w` columns: whole if it fits, else its start and its end around `…`, the
/// end (the file name) kept whole where it fits in two thirds of `w`, and as much of it as fits
/// otherwise. Control characters (a newline in a file name would break the bars' lines) are
/// shown as `?`.
pub fn fit_name(name: &str, w: usize) -> String {
    let name: String = name.chars().map(|c| if c.is_control() { '?' } else { c }).collect();
    if columns(&name) <= w {
        return name;
    }
    let Some(room) = w.checked_sub(1) else {
        return String::new();
    };
    let file = name.rsplit('/').next().map_or(0, columns);
    // The file name and its slash, or two thirds of the room, whichever is more; the rest for
    // the start of the path.
    let tail_room = (file + 1).max(room * 2 / 3).min(room);
    let tail = last_columns(&name, tail_room);
    let head = first_columns(&name, room - columns(tail));
    format!("{head}…{tail}")
}

/// The longest start of `s` in at most `w` columns.
fn first_columns(s: &str, w: usize) -> &str {
    let mut used = 0;
    for (i, c) in s.char_indices() {
        used += c.width().unwrap_or(0);
        if used > w {
            return &s[..i];
        }
    }
    s
}

/// The longest end of `s` in at most `w` columns.
fn last_columns(s: &str, w: usize) -> &str {
    let mut used = 0;
    for (i, c) in s.char_indices().rev() {
        used += c.width().unwrap_or(0);
        if used > w {
            return &s[i + c.len_utf8()..];
        }
    }
    s
}

/// A worker's message (after its spinner): how far into its archive, and the archive's name,
/// in at most `w` columns.
pub fn worker(w: usize, how_far: &str, name: &str) -> String {
    let room = w.saturating_sub(columns(how_far) + 1);
    format!("{how_far} {}", fit_name(name, room))
}

/// Where the overall bar is: bytes covered of the batch's bytes, archives finished of its
/// archives, and the time since it began.
#[derive(Debug, Clone, Copy, Default)]
pub struct Overall {
    pub pos: u64,
    pub len: u64,
    pub done: u64,
    pub total: u64,
    pub elapsed: Duration,
}

/// The parts around the overall bar, `(before, after)`, for a line of `w` columns drawn as
/// `BEFORE[BAR] AFTER` (the bar takes what is left): the clock and a space before; after it,
/// the percentage of bytes, the archives finished and the ETA. Where `w` is too narrow for them
/// and a bar of a few columns, `archives` goes first, then the clock, then the ETA.
pub fn overall(w: usize, o: &Overall) -> (String, String) {
    let clock = format!("{} ", precise(o.elapsed));
    let (pct, eta, n) = (percent(o), eta(o), format!("{}/{}", o.done, o.total));
    let forms = [
        (clock.as_str(), format!("{pct:>3}% {n} archives ETA {eta}")),
        (clock.as_str(), format!("{pct:>3}% {n} ETA {eta}")),
        ("", format!("{pct:>3}% {n} ETA {eta}")),
        ("", format!("{pct:>3}% {n}")),
    ];
    let fits = |(before, after): &(&str, String)| around(before, after) + MIN_BAR <= w;
    let (before, after) = forms.iter().find(|f| fits(f)).unwrap_or(&forms[forms.len() - 1]);
    (before.to_string(), after.clone())
}

/// The columns of the overall line but its bar: `BEFORE[`, `] AFTER`.
pub fn around(before: &str, after: &str) -> usize {
    columns(before) + 3 + columns(after)
}

/// The fewest columns of bar worth drawing.
const MIN_BAR: usize = 5;

/// Percent of the bytes covered; 0 before the batch has begun (or when its archives are all
/// empty and not yet done).
fn percent(o: &Overall) -> u64 {
    match (o.pos.min(o.len) * 100).checked_div(o.len) {
        Some(pct) => pct,
        None if o.total > 0 && o.done == o.total => 100,
        None => 0,
    }
}

/// The ETA from the mean rate (bytes) since the start; `--` for the first two seconds and the
/// first percent, when a guess would be noise.
pub fn eta(o: &Overall) -> String {
    let (pos, len, secs) = (o.pos.min(o.len), o.len, o.elapsed.as_secs_f64());
    if secs < 2.0 || pos == 0 || len == 0 || pos * 100 < len {
        "--".into()
    } else {
        clock(secs * (len - pos) as f64 / pos as f64)
    }
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

/// `hh:mm:ss`, as indicatif's `elapsed_precise`.
fn precise(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: &str = "/srv/backups/projects-2026/nightly/host-with-a-long-name/big-archive-of-everything.tar";

    #[test]
    fn a_long_name_is_cut_in_the_middle_and_keeps_its_file_name() {
        for w in [40, 50, 60, 69] {
            let s = fit_name(LONG, w);
            assert!(columns(&s) <= w, "{w}: {s}");
            assert!(s.ends_with("/big-archive-of-everything.tar") && s.starts_with("/srv/") && s.contains('…'), "{w}: {s}");
        }
        assert_eq!(fit_name(LONG, 200), LONG);
        assert_eq!(fit_name("a/b.tar", 7), "a/b.tar");
        // Narrower than the file name: the end of the file name.
        assert_eq!(fit_name(LONG, 12), "…rything.tar");
        assert_eq!(fit_name(LONG, 1), "…");
        assert_eq!(fit_name(LONG, 0), "");
    }

    #[test]
    fn wide_and_control_characters_are_measured_and_tamed() {
        let name = "/data/アーカイブ/とても長い名前のアーカイブ.tar";
        for w in 5..40 {
            assert!(columns(&fit_name(name, w)) <= w, "{w}: {}", fit_name(name, w));
        }
        assert_eq!(fit_name("a\nb.tar", 20), "a?b.tar");
    }

    #[test]
    fn every_line_fits_its_width() {
        let o = Overall { pos: 1 << 30, len: 3 << 30, done: 12, total: 64, elapsed: Duration::from_secs(4000) };
        for w in 20..=200 {
            let msg = worker(w, "100%", LONG);
            assert!(columns(&msg) <= w, "{w}: {msg}");
            let (before, after) = overall(w, &o);
            assert!(around(&before, &after) + MIN_BAR <= w, "{w}: {before}[] {after}");
        }
        assert_eq!(overall(80, &o), ("01:06:40 ".to_string(), " 33% 12/64 archives ETA 2:13:20".to_string()));
        assert_eq!(overall(40, &o), ("01:06:40 ".to_string(), " 33% 12/64 ETA 2:13:20".to_string()));
        assert_eq!(overall(30, &o), ("".to_string(), " 33% 12/64 ETA 2:13:20".to_string()));
    }

    #[test]
    fn percent_and_eta_go_by_bytes() {
        let o = Overall { pos: 90, len: 100, done: 1, total: 64, elapsed: Duration::from_secs(9) };
        assert_eq!(overall(100, &o).1, " 90% 1/64 archives ETA 0:01");
        let before = Overall { pos: 0, len: 0, done: 0, total: 0, elapsed: Duration::ZERO };
        assert_eq!(overall(100, &before).1, "  0% 0/0 archives ETA --");
    }
}
