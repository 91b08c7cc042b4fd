//! The `tarfs mount` daemon: the command started again in the background (its own process
//! group, stdin closed), which tells its parent "ready" once the mount is in place and then
//! writes its messages to the log, or nowhere.

use std::io::{self, BufRead, Write};
use std::path::PathBuf;

use anyhow::Result;

/// Set in the daemon's environment.
const CHILD: &str = "TARFS_MOUNT_DAEMON";

/// Whether this process is the daemon.
pub fn is_daemon() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// Starts this command again as the daemon and waits for its "ready" (true), or its end.
pub fn start() -> Result<bool> {
    use std::os::unix::process::CommandExt;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(std::env::args_os().skip(1))
        .env(CHILD, "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .process_group(0)
        .spawn()?;
    let mut line = String::new();
    let mut out = io::BufReader::new(child.stdout.take().expect("piped"));
    out.read_line(&mut line)?;
    if line.trim() == "ready" {
        return Ok(true);
    }
    Ok(child.wait()?.success())
}

/// Detaches the daemon from the caller's output, which it may be waiting on (`$(tarfs mount
/// ...)`, cron): later messages go to the log, or nowhere. Then the parent is told, and returns.
pub fn detach(log: Option<&PathBuf>) {
    let log = log.and_then(|l| std::fs::OpenOptions::new().create(true).append(true).open(l).ok());
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null");
    if let Some(f) = log.as_ref().or(null.as_ref().ok()) {
        let _ = rustix::stdio::dup2_stderr(f);
    }
    let mut out = io::stdout();
    let _ = writeln!(out, "ready");
    let _ = out.flush();
    if let Ok(n) = &null {
        let _ = rustix::stdio::dup2_stdout(n);
    }
}
