//! What every in-place change of an archive does before it reads it: refuse what must not be
//! changed, take the archive's lock, and finish or undo an earlier change a crash interrupted.

use std::path::Path;

use crate::error::{Error, IoContext, Result};
use crate::format::compression::Compression;
use crate::ops::journal;
use crate::ops::lock::{try_lock, ArchiveLock};
use crate::scan::{ScanEnd, Warning};

/// Refuses, with a clear reason, to change an archive that cannot or must not be changed in
/// place: read-only files, read-only directories (the journal and lock live beside the archive),
/// compressed streams. Nothing is modified. Runs before the lock is taken.
pub fn check_rewritable(path: &Path, what: &str) -> Result<()> {
    let meta = std::fs::metadata(path).at(path)?;
    if meta.permissions().readonly() {
        return Err(Error::Refused { path: path.to_path_buf(), msg: format!("the file is read-only; {what} changes archives in place (use `tarfs index` for a sidecar)") });
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if std::fs::metadata(dir).at(dir)?.permissions().readonly() {
        return Err(Error::Refused {
            path: path.to_path_buf(),
            msg: format!("its directory is read-only, and {what} keeps a journal and a lock beside the archive (use `tarfs index --index-dir` for a sidecar)"),
        });
    }
    let mut head = [0u8; Compression::HEAD];
    let n = std::io::Read::read(&mut std::fs::File::open(path).at(path)?, &mut head).at(path)?;
    if let Some(c) = Compression::detect(&head[..n]) {
        return Err(Error::Refused {
            path: path.to_path_buf(),
            msg: format!("it is {}-compressed, and {what} needs an uncompressed tar; use `tarfs index` to write a sidecar index instead", c.name()),
        });
    }
    Ok(())
}

/// Prepares an in-place change named `what`: refusals, then the lock and recovery. A dry run
/// takes no lock and changes nothing; it refuses while an interrupted change is pending.
pub fn begin(path: &Path, what: &str, dry_run: bool) -> Result<Option<ArchiveLock>> {
    check_rewritable(path, what)?;
    if dry_run {
        journal::refuse_pending(path)?;
        return Ok(None);
    }
    let lock = try_lock(path)?;
    journal::recover(path)?;
    Ok(Some(lock))
}

/// Refuses a change that would overwrite data the scan did not read: data after a lone zero
/// block, or (unless `lenient`) non-zero bytes after the end of the archive.
pub fn check_end(path: &Path, bytes: &[u8], end: &ScanEnd, lenient: bool) -> Result<()> {
    if let Some(Warning::LoneZeroBlock { offset }) = end.warning {
        return Err(Error::Refused {
            path: path.to_path_buf(),
            msg: format!("data follows a lone zero block at byte {offset} and would be overwritten; use --lenient to read past it"),
        });
    }
    let tail_start = (end.end_offset as usize).min(bytes.len());
    match bytes[tail_start..].iter().position(|&b| b != 0) {
        Some(i) if !lenient => Err(Error::Refused {
            path: path.to_path_buf(),
            msg: format!("there is data after the end-of-archive marker (at byte {}) that would be overwritten; use --lenient to allow it", tail_start + i),
        }),
        _ => Ok(()),
    }
}
