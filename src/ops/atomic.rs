//! Atomic file creation: write to a temporary file in the destination's directory, fsync it,
//! rename it over the destination, and fsync the directory. A crash leaves either the old file or
//! the new one under the final name, never a partial one; an error leaves nothing behind.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use tempfile::NamedTempFile;

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

/// Creates `dest` atomically from what `write` puts into the buffered temporary file.
pub(crate) fn write_atomic<T>(dest: &Path, write: impl FnOnce(&mut BufWriter<&File>) -> Result<T>) -> Result<T> {
    write_atomic_deferred(dest, None, write)
}

/// [`write_atomic`], recording the directory in `defer` instead of fsyncing it now.
pub(crate) fn write_atomic_deferred<T>(dest: &Path, defer: Option<&DirSyncs>, write: impl FnOnce(&mut BufWriter<&File>) -> Result<T>) -> Result<T> {
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
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    let tmp = tempfile::Builder::new().prefix(&format!(".{name}.")).suffix(".tmp").tempfile_in(dir).at(dir)?;
    let file = tmp.as_file();
    let done = AtomicBool::new(false);
    let value = std::thread::scope(|scope| {
        let syncer = scope.spawn(|| early_writeback(file, &done));
        let value = (|| {
            let mut w = BufWriter::with_capacity(1 << 20, file);
            let value = write(&mut w)?;
            w.flush().at(tmp.path())?;
            Ok(value)
        })();
        done.store(true, Ordering::Release);
        syncer.thread().unpark();
        value
    })?;
    file.sync_all().at(tmp.path())?;
    persist(tmp, dest)?;
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
/// Errors are left for the final fsync to report.
fn early_writeback(file: &File, done: &AtomicBool) {
    let mut synced = 0;
    while !done.load(Ordering::Acquire) {
        std::thread::park_timeout(std::time::Duration::from_millis(5));
        let len = file.metadata().map_or(0, |m| m.len());
        if len >= synced + WRITEBACK_STEP && !done.load(Ordering::Acquire) {
            if file.sync_data().is_err() {
                return;
            }
            synced = len;
        }
    }
}

fn persist(tmp: NamedTempFile, dest: &Path) -> Result<()> {
    tmp.persist(dest).map(drop).map_err(|e| Error::Io { path: dest.to_path_buf(), source: e.error })
}
