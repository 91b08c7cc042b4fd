//! One writer per archive. The lock is taken on a separate, stable lock file beside the archive
//! (`.NAME.tarfs-lock`), never on the archive itself, which a rewrite may replace by rename. Lock
//! files are left in place: deleting one would let two processes lock different inodes.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct ArchiveLock {
    _file: File,
    path: PathBuf,
}

impl ArchiveLock {
    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The lock file of `archive`.
pub fn lock_path(archive: &Path) -> PathBuf {
    let name = archive.file_name().unwrap_or_default().to_string_lossy();
    archive.with_file_name(format!(".{name}.tarfs-lock"))
}

/// Takes the lock of `archive` without waiting; [`Error::Busy`] if another process holds it.
pub fn try_lock(archive: &Path) -> Result<ArchiveLock> {
    let path = lock_path(archive);
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path).at(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(ArchiveLock { _file: file, path }),
        Err(TryLockError::WouldBlock) => Err(Error::Busy { path: archive.to_path_buf() }),
        Err(TryLockError::Error(e)) => Err(e).at(&path),
    }
}
