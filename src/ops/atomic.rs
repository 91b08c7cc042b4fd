//! Atomic file creation: write to a temporary file in the destination's directory, fsync it,
//! rename it over the destination, and fsync the directory. A crash leaves either the old file or
//! the new one under the final name, never a partial one; an error leaves nothing behind. The
//! temporary file has a fixed name and is locked while written, so a run killed while writing
//! leaves at most one, which the next write of the same file takes over.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, IoContext, Result};

/// Directories whose fsync a batch defers to its end: the files in them were fsynced before
/// being renamed into place, so no file is ever half-written under its final name; only the
/// renames' durability waits, and a crash before the directory fsync leaves the old file (or
/// none), which the next run rebuilds. One fsync per directory instead of one per file.
#[derive(Debug, Default)]
pub struct DirSyncs {
    dirs: std::sync::Mutex<std::collections::BTreeSet<std::path::PathBuf>>,
}

impl DirSyncs {
    /// Fsyncs every directory recorded so far.
    pub fn sync_all(&self) -> Result<()> {
        let dirs = std::mem::take(&mut *self.dirs.lock().expect("unpoisoned"));
        for dir in dirs {
            File::open(&dir).and_then(|d| d.sync_all()).at(&dir)?;
        }
        Ok(())
    }
}

/// The permissions of a file tarfs creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    /// As `tar` creates files: `0666` less the umask.
    Default,
    /// As [`Perm::Default`], with no read access that the file at this mode lacks (a sidecar
    /// gets no wider read access than its archive).
    NoWiderThan(u32),
    /// `0600`: journals, which hold archive bytes.
    Private,
    /// This mode, whatever the umask: a file that replaces another keeps its mode.
    Exactly(u32),
}

impl Perm {
    fn mode(self) -> u32 {
        let base = 0o666 & !umask();
        match self {
            Perm::Default => base,
            Perm::NoWiderThan(m) => base & !(0o444 & !m),
            Perm::Private => 0o600,
            Perm::Exactly(m) => m & 0o7777,
        }
    }
}

/// The process's umask, read once (from `/proc/self/status`, else by setting and restoring it
/// before any thread could create a file).
pub fn umask() -> u32 {
    static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UMASK.get_or_init(|| {
        let from_proc = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("Umask:")).and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        });
        from_proc.unwrap_or_else(|| {
            let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
            rustix::process::umask(old);
            old.as_raw_mode()
        })
    })
}

/// Creates `dest` atomically from what `write` puts into the buffered temporary file, with
/// [`Perm::Default`] permissions.
pub(crate) fn write_atomic<T>(dest: &Path, write: impl FnOnce(&mut BufWriter<&File>) -> Result<T>) -> Result<T> {
    write_atomic_deferred(dest, None, Perm::Default, write)
}

/// [`write_atomic`] for a journal: mode `0600`.
pub(crate) fn write_atomic_private<T>(dest: &Path, write: impl FnOnce(&mut BufWriter<&File>) -> Result<T>) -> Result<T> {
    write_atomic_deferred(dest, None, Perm::Private, write)
}

/// The temporary file `dest` is written through: `.NAME.tarfs-tmp` beside it. Its name is
/// fixed, so that a run killed while writing leaves at most one, which the next write to `dest`
/// takes over.
pub fn temp_path(dest: &Path) -> PathBuf {
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    dest.with_file_name(format!(".{name}.tarfs-tmp"))
}

/// Opens and locks the temporary file of `dest`, taking over one that a killed run left.
/// [`Error::Busy`] when another process is writing `dest` right now.
fn open_temp(dest: &Path) -> Result<(File, PathBuf)> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let tmp = temp_path(dest);
    for _ in 0..8 {
        let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(&tmp).at(&tmp)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(Error::Busy { path: dest.to_path_buf() }),
            Err(std::fs::TryLockError::Error(e)) => return Err(e).at(&tmp),
        }
        // The name may have been renamed into place (or removed) by its previous holder between
        // the open and the lock: then this is not the temporary file any more.
        let here = std::fs::symlink_metadata(&tmp).ok();
        let mine = file.metadata().at(&tmp)?;
        if here.is_some_and(|h| h.ino() == mine.ino() && h.dev() == mine.dev()) {
            file.set_len(0).at(&tmp)?;
            return Ok((file, tmp));
        }
    }
    Err(Error::Busy { path: dest.to_path_buf() })
}

/// [`write_atomic`], with the permissions `perm`, recording the directory in `defer` instead of
/// fsyncing it now.
pub(crate) fn write_atomic_deferred<T>(dest: &Path, defer: Option<&DirSyncs>, perm: Perm, write: impl FnOnce(&mut BufWriter<&File>) -> Result<T>) -> Result<T> {
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).at(dir)?;
    // Honour a directory marked read-only even where the file system would let us (root).
    use std::os::unix::fs::PermissionsExt;
    if std::fs::metadata(dir).at(dir)?.permissions().mode() & 0o222 == 0 {
        return Err(Error::Io { path: dir.to_path_buf(), source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, "directory is read-only") });
    }
    let (file, tmp) = open_temp(dest).map_err(|e| match e {
        Error::Io { source, .. } => Error::Io { path: dest.to_path_buf(), source },
        e => e,
    })?;
    let value = (|| {
        let file = &file;
        let done = AtomicBool::new(false);
        let value = std::thread::scope(|scope| {
            let syncer = scope.spawn(|| early_writeback(file, &done));
            let value = (|| {
                let mut w = BufWriter::with_capacity(1 << 20, file);
                let value = write(&mut w)?;
                w.flush().at(&tmp)?;
                Ok(value)
            })();
            done.store(true, Ordering::Release);
            syncer.thread().unpark();
            let synced = syncer.join().unwrap_or(Ok(()));
            value.and_then(|v| synced.map(|()| v).at(&tmp))
        })?;
        file.set_permissions(std::fs::Permissions::from_mode(perm.mode())).at(&tmp)?;
        file.sync_all().at(&tmp)?;
        std::fs::rename(&tmp, dest).at(dest)?;
        Ok(value)
    })();
    let value = match value {
        Ok(v) => v,
        Err(e) => {
            // Still locked by us: nobody else is using it.
            let _ = std::fs::remove_file(&tmp);
            // The temporary file is ours, not the user's: name the file being written.
            return Err(match e {
                Error::Io { path, source } if path == tmp => Error::Io { path: dest.to_path_buf(), source },
                e => e,
            });
        }
    };
    match defer {
        Some(d) => {
            d.dirs.lock().expect("unpoisoned").insert(dir.to_path_buf());
        }
        None => File::open(dir).and_then(|d| d.sync_all()).at(dir)?,
    }
    Ok(value)
}

/// Bytes written between two early flushes.
const WRITEBACK_STEP: u64 = 8 << 20;

/// While a large file is being written, flushes what has been written so far every
/// [`WRITEBACK_STEP`] bytes, so that the disk works while the writer does, and the final fsync
/// waits only for the tail (for a 100 MB index: 57 ms of fsync at the end became about 10).
/// An error is returned, and fails the write: the kernel reports a writeback error to each file
/// description once, so the final fsync would not see it again.
fn early_writeback(file: &File, done: &AtomicBool) -> std::io::Result<()> {
    let mut synced = 0;
    while !done.load(Ordering::Acquire) {
        std::thread::park_timeout(std::time::Duration::from_millis(5));
        let len = file.metadata().map_or(0, |m| m.len());
        if len >= synced + WRITEBACK_STEP && !done.load(Ordering::Acquire) {
            file.sync_data()?;
            synced = len;
        }
    }
    Ok(())
}
