//! Testing aids for crash safety: when the environment variable `TARFS_CRASH_AFTER` names a
//! write step, the process exits with status 86 right after that step, without any cleanup, as
//! a crash would leave things. Tests use it to stop between every two writes; it is documented
//! in `docs/ARCHITECTURE.md` and has no effect otherwise.

/// Stops the process here if `TARFS_CRASH_AFTER` is `step`.
pub(crate) fn point(step: &str) {
    if std::env::var_os("TARFS_CRASH_AFTER").is_some_and(|v| v == step) {
        let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("tarfs: TARFS_CRASH_AFTER={step}: stopping here\n").as_bytes());
        std::process::exit(86);
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
