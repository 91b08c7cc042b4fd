//! The progress display as a user sees it: `tarfs index` and `tarfs verify` run in a real
//! terminal (tmux: 60 columns; 80×24 and 120×40 with four workers), looked at with
//! `capture-pane` in the middle of the archives, interrupted with Ctrl-C, and run to their end.
//! The workers are held in the middle of their archives with the testing aid
//! `TARFS_STALL_AT=OFFSET:FILE` (each job that reaches OFFSET waits there while FILE exists), so
//! nothing depends on timing.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::ok;

const COLUMNS: usize = 60;

/// A tmux server of our own, with one window running a plain shell.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// A 60-column window.
    fn new() -> Tmux {
        Tmux::sized(COLUMNS, 20)
    }

    fn sized(cols: usize, rows: usize) -> Tmux {
        static SERVERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SERVERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let socket = format!("tarfs-progress-{}-{n}", std::process::id());
        ok(Command::new("tmux").args(["-L", &socket, "new-session", "-d", "-x", &cols.to_string(), "-y", &rows.to_string(), "bash --norc --noprofile"]));
        Tmux { socket }
    }

    fn send(&self, keys: &[&str]) {
        ok(Command::new("tmux").args(["-L", &self.socket, "send-keys", "-t", "0"]).args(keys));
    }

    fn screen(&self) -> String {
        String::from_utf8(ok(Command::new("tmux").args(["-L", &self.socket, "capture-pane", "-p", "-t", "0"])).stdout).unwrap()
    }

    /// The screen with the rows of each line the terminal wrapped joined into one (`-J`), so
    /// that a line that wrapped is longer than the window is wide.
    fn joined_screen(&self) -> String {
        String::from_utf8(ok(Command::new("tmux").args(["-L", &self.socket, "capture-pane", "-p", "-J", "-t", "0"])).stdout).unwrap()
    }

    /// The screen once `pred` holds of it.
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.wait_until(what, Tmux::screen, pred)
    }

    /// What `capture` gives once `pred` holds of it. Not a timing test: the limit (60 s) only
    /// keeps a broken run from hanging the test.
    fn wait_until(&self, what: &str, capture: impl Fn(&Tmux) -> String, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = capture(self);
            if pred(&s) {
                return s;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "waited 60 s for {what}; the screen:\n{s}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["-L", &self.socket, "kill-server"]).status();
    }
}

fn archive(path: &Path, members: usize) {
    let script = "import io,sys,tarfile\nwith tarfile.open(sys.argv[1],'w') as t:\n for i in range(int(sys.argv[2])):\n  ti=tarfile.TarInfo('dir/member-%06d.txt'%i); ti.size=100; t.addfile(ti,io.BytesIO(b'x'*100))\n";
    ok(Command::new("python3").arg("-c").arg(script).arg(path).arg(members.to_string()));
}

/// The lines of the bars on `screen`: the overall bar and the worker lines.
fn bar_lines(screen: &str) -> Vec<&str> {
    screen.lines().filter(|l| l.contains("archives ETA") || l.contains(".tar")).filter(|l| !l.contains("tarfs index") && !l.starts_with("tarfs:")).collect()
}

#[test]
fn the_bar_in_a_terminal_moves_within_an_archive_fits_and_leaves_a_clean_screen() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    std::fs::create_dir(&store).unwrap();
    archive(&store.join("big.tar"), 8000); // started first: the largest
    archive(&store.join("s1.tar"), 1000);
    archive(&store.join("s2.tar"), 1000);
    let half = std::fs::metadata(store.join("big.tar")).unwrap().len() / 2;
    let hold = d.path().join("hold");
    let tmux = Tmux::new();
    let run = || {
        std::fs::write(&hold, b"").unwrap();
        tmux.send(&["clear", "Enter"]);
        let cmd = format!("TARFS_STALL_AT={half}:{} {} index --force -j 1 --scan sequential {}; echo rc=$?", hold.display(), env!("CARGO_BIN_EXE_tarfs"), store.display());
        tmux.send(&[&cmd, "Enter"]);
    };

    // Held in the middle of big.tar: the worker line shows how far into it the scan is, and the
    // overall bar has moved although no archive has finished.
    run();
    let exited = |s: &str| s.lines().any(|l| l.starts_with("rc="));
    let pct = |l: &str| -> u64 {
        let i = l.find('%').unwrap();
        l[..i].rsplit(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
    };
    // Drawn once the scan is held: a line drawn on its way there (13% under load) is not yet it.
    let worker_drawn = |s: &str| s.lines().any(|l| l.contains("big.tar") && l.contains("% ") && pct(l) >= 40);
    let screen = tmux.wait_for("the bars, mid-archive", |s| s.contains("0/3 archives") && worker_drawn(s));
    let bars = bar_lines(&screen);
    assert_eq!(bars.len(), 2, "an overall bar and one worker line:\n{screen}");
    for l in &bars {
        assert!(l.chars().count() < COLUMNS, "a bar line fills the width (it would wrap):\n{screen}");
    }
    let worker = bars.iter().find(|l| l.contains("big.tar")).unwrap_or_else(|| panic!("no worker line:\n{screen}"));
    assert!((40..=60).contains(&pct(worker)), "held at half of big.tar: {worker}");
    let overall = bars.iter().find(|l| l.contains("archives ETA")).unwrap();
    assert!((1..100).contains(&pct(overall)), "the overall bar moves within the archive: {overall}");

    // Ctrl-C: the message is printed without tearing the bars; a second Ctrl-C quits at once
    // with status 130 and takes the bars off the screen.
    tmux.send(&["C-c"]);
    tmux.wait_for("the interrupt message", |s| s.contains("interrupted"));
    tmux.send(&["C-c"]);
    let screen = tmux.wait_for("the exit", exited);
    assert!(screen.contains("rc=130"), "{screen}");
    assert!(bar_lines(&screen).is_empty(), "bars were left on the screen:\n{screen}");

    // Run to its end: only the summary line remains.
    run();
    tmux.wait_for("the bars, mid-archive", worker_drawn);
    std::fs::remove_file(&hold).unwrap();
    let screen = tmux.wait_for("the exit", exited);
    assert!(screen.contains("rc=0") && screen.contains("index: 3 indexed, 0 failed; 10000 members"), "{screen}");
    assert!(bar_lines(&screen).is_empty(), "bars were left on the screen:\n{screen}");
}

/// `--progress always` draws even when stderr is not a terminal; `auto` does not; `-q` never.
#[test]
fn progress_always_draws_off_a_terminal() {
    let d = tempfile::tempdir().unwrap();
    archive(&d.path().join("a.tar"), 3000);
    let hold = d.path().join("hold");
    let half = std::fs::metadata(d.path().join("a.tar")).unwrap().len() / 2;
    for (flags, drawn) in [(&["--progress", "always"][..], true), (&[][..], false), (&["--progress", "always", "-q"][..], false)] {
        std::fs::write(&hold, b"").unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tarfs"))
            .args(["index", "--force"])
            .args(flags)
            .arg(d.path())
            .env("TARFS_STALL_AT", format!("{half}:{}", hold.display()))
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Held mid-archive for a few ticks of the bar (100 ms each), then let go.
        std::thread::sleep(Duration::from_millis(600));
        std::fs::remove_file(&hold).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.contains("archives ETA") && err.contains("\x1b["), drawn, "{flags:?}: {err:?}");
    }
}

/// A directory three levels deep with names long enough that an archive's path does not fit a
/// worker's line at 120 columns.
fn deep_store(d: &Path) -> PathBuf {
    let store = d.join("a-rather-long-directory-for-the-nightly-backups").join("of-the-build-hosts-in-the-second-data-centre").join("2026-12-06");
    std::fs::create_dir_all(&store).unwrap();
    store
}

/// The bars on a screen: the overall line's percentage and archives finished, and each worker's
/// percentage, archive (its file name) and line.
#[derive(Debug)]
struct Frame {
    overall: u64,
    done: u64,
    workers: Vec<(u64, String, String)>,
}

/// The number just before the first `%` of `l`.
fn percent_in(l: &str) -> Option<u64> {
    let i = l.find('%')?;
    l[..i].rsplit(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// The bars on `screen`, if they are all drawn (`workers` worker lines).
fn frame(screen: &str, workers: usize) -> Option<Frame> {
    let overall = screen.lines().find(|l| l.contains(" archives ETA "))?;
    let done = overall.split(" archives").next()?.rsplit(' ').next()?.split('/').next()?.parse().ok()?;
    let lines: Vec<&str> = screen.lines().map(str::trim_end).filter(|l| l.starts_with("  ") && (l.ends_with(".tar") || l.ends_with(".tar.gz"))).collect();
    let workers_seen: Vec<(u64, String, String)> = lines.iter().filter_map(|l| Some((percent_in(l)?, l.rsplit('/').next()?.to_string(), l.to_string()))).collect();
    let overall = percent_in(overall)?;
    (workers_seen.len() == workers).then_some(Frame { overall, done, workers: workers_seen })
}

/// Checks one screen of a run with four workers held in the middle of their archives, in a
/// window `cols` wide: no line wrapped (tmux joins a wrapped line's rows with `-J`, so it would
/// be wider than the window) and none reaches the last column; each worker's line keeps its
/// archive's file name, the path cut in the middle; and the overall percentage is of the
/// bytes covered (from each worker's percentage of its archive's size), not of the archives
/// finished.
fn check_frame(joined: &str, cols: usize, sizes: &HashMap<String, u64>) {
    for l in joined.lines() {
        assert!(l.trim_end().chars().count() < cols, "a line wrapped or reached the last column ({cols} columns):\n{joined}");
    }
    let f = frame(joined, 4).unwrap_or_else(|| panic!("four worker lines:\n{joined}"));
    let total: u64 = sizes.values().sum();
    let (mut lo, mut hi) = (0, 0);
    for (pct, name, line) in &f.workers {
        let size = sizes.get(name).unwrap_or_else(|| panic!("the whole file name {name:?} ends a worker's line:\n{joined}"));
        assert!(line.contains('…'), "the path is cut in the middle: {line}");
        (lo, hi) = (lo + pct * size / 100, hi + (pct + 1) * size / 100);
    }
    assert_eq!(f.done, 0, "held, none finished:\n{joined}");
    let (lo, hi) = (lo * 100 / total, (hi * 100).div_ceil(total));
    assert!((lo..=hi).contains(&f.overall) && f.overall > 0, "overall {}%, bytes covered make {lo}-{hi}% (0 archives finished):\n{joined}", f.overall);
}

/// Runs `tarfs ARGS STORE` in a window `cols`×`rows` with every job held at byte `hold_at` of
/// its archive; checks several screens while four workers are held ([`check_frame`]), then
/// interrupts (`interrupt`) or lets the run go to its end, and checks that the bars are gone.
fn four_workers_held(cols: usize, rows: usize, d: &Path, args: &str, hold_at: u64, sizes: &HashMap<String, u64>, interrupt: bool) {
    let store = deep_store(d);
    let hold = d.join("hold");
    std::fs::write(&hold, b"").unwrap();
    // stdout (verify's line per archive) out of the way: the screen is the bars and messages.
    let script = format!("TARFS_STALL_AT={hold_at}:{} {} {args} {} >/dev/null; echo rc=$?\n", hold.display(), env!("CARGO_BIN_EXE_tarfs"), store.display());
    std::fs::write(d.join("run"), script).unwrap();
    let tmux = Tmux::sized(cols, rows);
    // A short command line, so that only the bars are wider than a few columns (sourced, so that
    // the interactive shell, which a Ctrl-C does not stop, says the exit status).
    tmux.send(&[&format!("cd {} && clear && . ./run", d.display()), "Enter"]);
    let exited = |s: &str| s.lines().any(|l| l.starts_with("rc="));
    // Four workers drawn mid-archive, or (to be told at once) a wrapped overall line.
    let wrapped = |s: &str| s.lines().any(|l| l.contains(" archives ETA ") && l.trim_end().chars().count() >= cols);
    let held = |s: &str| exited(s) || wrapped(s) || frame(s, 4).is_some_and(|f| f.workers.iter().all(|(pct, ..)| *pct > 0));
    for _ in 0..5 {
        let joined = tmux.wait_until("four workers held mid-archive", Tmux::joined_screen, held);
        assert!(!exited(&joined), "the run ended before four workers were seen in the middle of their archives:\n{joined}");
        check_frame(&joined, cols, sizes);
        std::thread::sleep(Duration::from_millis(150)); // another frame (the spinner and the clock move)
    }
    if interrupt {
        // The message comes above the bars, and the bars are drawn once, not left behind.
        tmux.send(&["C-c"]);
        let joined = tmux.wait_until("the interrupt message", Tmux::joined_screen, |s| s.contains("interrupted") && frame(s, 4).is_some());
        check_frame(&joined, cols, sizes);
        assert_eq!(joined.lines().filter(|l| l.contains(" archives ETA ")).count(), 1, "{joined}");
    }
    std::fs::remove_file(&hold).unwrap();
    let screen = tmux.wait_for("the exit", exited);
    assert!(screen.contains(if interrupt { "rc=130" } else { "rc=0" }), "{screen}");
    assert!(bar_lines(&screen).is_empty(), "bars were left on the screen:\n{screen}");
}

/// issue #30, item 8: four workers, at 80×24 and at 120×40. Each worker's line fits (the path
/// cut in the middle, its file name kept), no line wraps, and the overall bar goes by bytes.
#[test]
fn four_workers_at_80x24_and_120x40_fit_without_wrapping_and_the_bar_counts_bytes() {
    for (cols, rows, interrupt) in [(80, 24, true), (120, 40, false)] {
        let d = tempfile::tempdir().unwrap();
        let store = deep_store(d.path());
        // Six archives of different sizes, all longer than where the jobs are held: four are
        // held, two wait.
        let mut sizes = HashMap::new();
        for (i, members) in [3000, 3400, 3800, 4200, 4600, 5000].into_iter().enumerate() {
            let name = format!("archive-{i}.tar");
            archive(&store.join(&name), members);
            sizes.insert(name.clone(), std::fs::metadata(store.join(&name)).unwrap().len());
        }
        four_workers_held(cols, rows, d.path(), "index --force -j 4 --scan sequential", 1_500_000, &sizes, interrupt);
    }
}

/// issue #30, item 8: `verify` of compressed archives moves within each archive, by its
/// compressed bytes (the bytes the batch's total counts), not in jumps as archives finish.
#[test]
fn verify_of_compressed_archives_moves_by_their_bytes() {
    let d = tempfile::tempdir().unwrap();
    let store = deep_store(d.path());
    // Half random, so that the compressed size is most of the data.
    let script = "import io,os,sys,tarfile\nwith tarfile.open(sys.argv[1],'w:gz',compresslevel=1) as t:\n for i in range(int(sys.argv[2])):\n  ti=tarfile.TarInfo('dir/member-%05d.bin'%i); ti.size=16384; t.addfile(ti,io.BytesIO(os.urandom(8192)+bytes(8192)))\n";
    let mut sizes = HashMap::new();
    for (i, members) in [300, 360, 420, 480, 540, 600].into_iter().enumerate() {
        let name = format!("archive-{i}.tar.gz");
        ok(Command::new("python3").arg("-c").arg(script).arg(store.join(&name)).arg(members.to_string()));
        sizes.insert(name.clone(), std::fs::metadata(store.join(&name)).unwrap().len());
    }
    ok(Command::new(env!("CARGO_BIN_EXE_tarfs")).args(["index", "-q"]).arg(&store));
    four_workers_held(80, 24, d.path(), "verify -j 4", 2_000_000, &sizes, false);
}
