//! A testing aid for crash safety: when the environment variable `TARFS_CRASH_AFTER` names a
//! write step, the process exits with status 86 right after that step, without any cleanup, as
//! a crash would leave things. Tests use it to stop between every two writes; it is documented
//! in `docs/ARCHITECTURE.md` and has no effect otherwise.

/// Stops the process here if `TARFS_CRASH_AFTER` is `step`.
pub(crate) fn point(step: &str) {
    if std::env::var_os("TARFS_CRASH_AFTER").is_some_and(|v| v == step) {
        eprintln!("tarfs: TARFS_CRASH_AFTER={step}: stopping here");
        std::process::exit(86);
    }
}
