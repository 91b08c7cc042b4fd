//! The progress display as a user sees it: `tarfs index` run in a real terminal (tmux, 60
//! columns), looked at with `capture-pane` in the middle of an archive, interrupted with Ctrl-C,
//! and run to its end. The run is held in the middle of its first archive with the testing aid
//! `TARFS_STALL_AT=OFFSET:FILE` (it waits there while FILE exists), so nothing depends on timing.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::ok;

const COLUMNS: usize = 60;

/// A tmux server of our own, with one 60-column window running a plain shell.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new() -> Tmux {
        let socket = format!("tarfs-progress-{}", std::process::id());
        ok(Command::new("tmux").args(["-L", &socket, "new-session", "-d", "-x", &COLUMNS.to_string(), "-y", "20", "bash --norc --noprofile"]));
        Tmux { socket }
    }

    fn send(&self, keys: &[&str]) {
        ok(Command::new("tmux").args(["-L", &self.socket, "send-keys", "-t", "0"]).args(keys));
    }

    fn screen(&self) -> String {
        String::from_utf8(ok(Command::new("tmux").args(["-L", &self.socket, "capture-pane", "-p", "-t", "0"])).stdout).unwrap()
    }

    /// The screen once `pred` holds of it (within 20 s).
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "waited 20 s for {what}; the screen:\n{s}");
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
    let worker_drawn = |s: &str| s.lines().any(|l| l.contains("big.tar") && l.contains("% ") && !l.contains(" 0% "));
    let screen = tmux.wait_for("the bars, mid-archive", |s| s.contains("0/3 archives") && worker_drawn(s));
    let bars = bar_lines(&screen);
    assert_eq!(bars.len(), 2, "an overall bar and one worker line:\n{screen}");
    for l in &bars {
        assert!(l.chars().count() < COLUMNS, "a bar line fills the width (it would wrap):\n{screen}");
    }
    let pct = |l: &str| -> u64 {
        let i = l.find('%').unwrap();
        l[..i].rsplit(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
    };
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
