//! Testing aids for crash safety: when the environment variable `TARFS_CRASH_AFTER` names a
//! write step, the process exits with status 86 right after that step, without any cleanup, as
//! a crash would leave things. Tests use it to stop between every two writes. `TARFS_PAUSE_AFTER`
//! instead waits at a step, so that a test can change files under a running command. Both are
//! documented in `docs/ARCHITECTURE.md` and have no effect otherwise.

/// Stops the process here if `TARFS_CRASH_AFTER` is `step`; waits here if `TARFS_PAUSE_AFTER`
/// is (see [`pause_point`]).
pub(crate) fn point(step: &str) {
    if std::env::var_os("TARFS_CRASH_AFTER").is_some_and(|v| v == step) {
        let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("tarfs: TARFS_CRASH_AFTER={step}: stopping here\n").as_bytes());
        std::process::exit(86);
    }
    pause_point(step);
}

/// Waits here when `TARFS_PAUSE_AFTER` is `step`, until the file `TARFS_RESUME` names exists
/// (polled every 10 ms; without `TARFS_RESUME`, for one second). It says so on stderr first, so
/// that a test knows when to change files under the paused process.
pub(crate) fn pause_point(step: &str) {
    if std::env::var_os("TARFS_PAUSE_AFTER").is_none_or(|v| v != step) {
        return;
    }
    let resume = std::env::var_os("TARFS_RESUME").map(std::path::PathBuf::from);
    let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("tarfs: TARFS_PAUSE_AFTER={step}: paused\n").as_bytes());
    match resume {
        Some(r) => {
            while !r.exists() {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        None => std::thread::sleep(std::time::Duration::from_secs(1)),
    }
}

/// Damages the archive before a change is read back, when `TARFS_TAMPER` is `step`: flips the
/// byte at `at`, as a bug or a bad disk might, so that tests can see the read-back catch it and
/// the change rolled back.
pub(crate) fn tamper(step: &str, file: &std::fs::File, at: u64) {
    use std::os::unix::fs::FileExt;
    if std::env::var_os("TARFS_TAMPER").is_some_and(|v| v == step) {
        let mut b = [0u8; 1];
        if file.read_exact_at(&mut b, at).is_ok() {
            let _ = file.write_all_at(&[b[0] ^ 0x20], at);
        }
    }
}
