//! Atomic file creation: write to a temporary file in the destination's directory, fsync it,
//! rename it over the destination, and fsync the directory. A crash leaves either the old file or
//! the new one under the final name, never a partial one; an error leaves nothing behind. The
//! temporary file has a fixed name and is locked while written, so a run killed while writing
//! leaves at most one, which the next write of the same file takes over, and which `tarfs recover`
//! removes ([`remove_stale_temp`]) when no live process holds its lock. In a batch, files are
//! staged and made durable together, with one barrier ([`DirSyncs`]).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, IoContext, Result};

/// What a batch defers: the durability of the files it writes, and the fsync of their
/// directories.
///
/// Alone, a file is written as [`write_atomic`] says: fsynced, renamed, its directory fsynced.
/// In a batch that [stages](DirSyncs::staging) files, each is written to its locked temporary
/// file and left there; when [`STAGED_FILES`] (or [`STAGED_BYTES`]) are waiting, every 50 ms
/// (the batch runner's committer, so that reports keep streaming), and at the end,
/// [`DirSyncs::commit`] makes them all durable with one `syncfs` per file system, then renames
/// each into place (git's `core.fsyncMethod=batch`: one barrier for many files; `syncfs` is the
/// barrier Linux guarantees for every file on a file system). No file is renamed into place
/// before the barrier, so a crash at any point leaves each name with its old file (or none) or
/// its complete new one. Directories are fsynced once each, at the end ([`DirSyncs::sync_all`]):
/// a crash before that may lose a rename, leaving the old file, which the next run rebuilds.
#[derive(Debug, Default)]
pub struct DirSyncs {
    dirs: std::sync::Mutex<std::collections::BTreeSet<std::path::PathBuf>>,
    stage: AtomicBool,
    staged: std::sync::Mutex<Staged>,
}

/// Files written but not yet durable nor renamed into place.
#[derive(Debug, Default)]
struct Staged {
    files: Vec<StagedFile>,
    bytes: u64,
}

/// A file written to its locked temporary file, waiting for a batch's commit.
#[derive(Debug)]
pub struct StagedFile {
    file: File,
    tmp: PathBuf,
    dest: PathBuf,
}

impl StagedFile {
    /// Where it goes.
    pub fn dest(&self) -> &Path {
        &self.dest
    }
}

/// Staged files that make a batch commit: bounded, because each holds a descriptor and a lock.
pub const STAGED_FILES: usize = 256;
/// Staged bytes that make a batch commit.
pub const STAGED_BYTES: u64 = 256 << 20;

impl DirSyncs {
    /// Fsyncs every directory recorded so far.
    pub fn sync_all(&self) -> Result<()> {
        let dirs = std::mem::take(&mut *self.dirs.lock().expect("unpoisoned"));
        for dir in dirs {
            File::open(&dir).and_then(|d| d.sync_all()).at(&dir)?;
        }
        Ok(())
    }

    /// From now on, files are staged for [`DirSyncs::commit`] instead of being made durable
    /// one by one.
    pub fn staging(&self) {
        self.stage.store(true, Ordering::Relaxed);
    }

    /// Whether `dest` was written and waits for [`DirSyncs::commit`].
    pub fn is_staged(&self, dest: &Path) -> bool {
        self.staged.lock().expect("unpoisoned").files.iter().any(|f| f.dest == dest)
    }

    /// Whether any file is staged.
    pub fn has_staged(&self) -> bool {
        !self.staged.lock().expect("unpoisoned").files.is_empty()
    }

    /// Whether enough is staged for a commit to be due.
    pub fn due(&self) -> bool {
        let s = self.staged.lock().expect("unpoisoned");
        s.files.len() >= STAGED_FILES || s.bytes >= STAGED_BYTES
    }

    /// Makes every staged file durable (one `syncfs` per file system), renames each into
    /// place, and records its directory for [`DirSyncs::sync_all`]. Returns each file's
    /// destination and what became of it; a file that failed is removed, and its destination
    /// keeps its old file.
    pub fn commit(&self) -> Vec<(PathBuf, Result<()>)> {
        self.commit_files(self.take())
    }

    /// Takes the staged files out, for [`DirSyncs::commit_files`].
    pub fn take(&self) -> Vec<StagedFile> {
        std::mem::take(&mut *self.staged.lock().expect("unpoisoned")).files
    }

    /// [`DirSyncs::commit`] of `files`, taken out before.
    pub fn commit_files(&self, files: Vec<StagedFile>) -> Vec<(PathBuf, Result<()>)> {
        use std::os::unix::fs::MetadataExt;
        let mut barrier: std::collections::HashMap<u64, rustix::io::Result<()>> = std::collections::HashMap::new();
        let mut out = Vec::with_capacity(files.len());
        for StagedFile { file, tmp, dest } in files {
            let dev = file.metadata().map_or(0, |m| m.dev());
            let synced = *barrier.entry(dev).or_insert_with(|| rustix::fs::syncfs(&file));
            let r = match synced {
                Ok(()) => std::fs::rename(&tmp, &dest).at(&dest),
                Err(e) => {
                    let e = std::io::Error::from(e);
                    Err(Error::Io { path: dest.clone(), source: std::io::Error::new(e.kind(), format!("making it durable (syncfs): {e}")) })
                }
            };
            match &r {
                Ok(()) => {
                    self.dirs.lock().expect("unpoisoned").insert(parent_of(&dest).to_path_buf());
                }
                Err(_) => {
                    // Still locked by us: nobody else is using it.
                    let _ = std::fs::remove_file(&tmp);
                }
            }
            drop(file);
            out.push((dest, r));
        }
        out
    }
}

/// The directory `dest` is in.
fn parent_of(dest: &Path) -> &Path {
    match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
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

/// Removes the temporary file of `dest` ([`temp_path`]) that a killed run left behind, unless
/// a live process holds its lock (is writing `dest` right now) or it is not a regular file.
/// Returns its path when one was removed.
///
/// The removal takes the lock first and checks that the name still names the locked file, as
/// [`open_temp`] does: a writer that opened the same file meanwhile finds it renamed away when
/// it gets the lock, and starts a new one.
pub fn remove_stale_temp(dest: &Path) -> Result<Option<PathBuf>> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let tmp = temp_path(dest);
    match std::fs::symlink_metadata(&tmp) {
        Ok(m) if m.is_file() => {}
        _ => return Ok(None),
    }
    let flags = rustix::fs::OFlags::NOFOLLOW.bits() | rustix::fs::OFlags::NONBLOCK.bits();
    let file = match std::fs::OpenOptions::new().read(true).custom_flags(flags as i32).open(&tmp) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).at(&tmp),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
        Err(std::fs::TryLockError::Error(e)) => return Err(e).at(&tmp),
    }
    let here = std::fs::symlink_metadata(&tmp).ok();
    let mine = file.metadata().at(&tmp)?;
    if !here.is_some_and(|h| h.ino() == mine.ino() && h.dev() == mine.dev()) {
        return Ok(None);
    }
    match std::fs::remove_file(&tmp) {
        Ok(()) => Ok(Some(tmp)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).at(&tmp),
    }
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
            // Only a file a killed run left needs emptying: truncating a new one also makes
            // ext4 start writing it back when it is closed (its "replace by truncate" guard).
            if mine.len() > 0 {
                file.set_len(0).at(&tmp)?;
            }
            return Ok((file, tmp));
        }
    }
    Err(Error::Busy { path: dest.to_path_buf() })
}

/// [`write_atomic`], with the permissions `perm`, recording the directory in `defer` instead of
/// fsyncing it now.
pub(crate) fn write_atomic_deferred<T>(dest: &Path, defer: Option<&DirSyncs>, perm: Perm, write: impl FnOnce(&mut BufWriter<&File>) -> Result<T>) -> Result<T> {
    write_atomic_guarded(dest, defer, perm, write, &|| Ok(()))
}

/// [`write_atomic_deferred`], calling `guard` after the temporary file is written and fsynced,
/// right before it is renamed over `dest` (when staged for a batch, right before it is staged):
/// an error of `guard` removes the temporary file and leaves `dest` as it was. A file that
/// replaces another checks there that the other did not change meanwhile.
pub(crate) fn write_atomic_guarded<T>(dest: &Path, defer: Option<&DirSyncs>, perm: Perm, write: impl FnOnce(&mut BufWriter<&File>) -> Result<T>, guard: &dyn Fn() -> Result<()>) -> Result<T> {
    let dir = parent_of(dest);
    std::fs::create_dir_all(dir).map_err(|source| refusing(dir, source))?;
    // Honour a directory marked read-only even where the file system would let us (root).
    use std::os::unix::fs::PermissionsExt;
    if std::fs::metadata(dir).at(dir)?.permissions().mode() & 0o222 == 0 {
        return Err(Error::Unwritable { path: dir.to_path_buf(), source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, "directory is read-only") });
    }
    let (file, tmp) = open_temp(dest).map_err(|e| match e {
        Error::Io { source, .. } => refusing(dest, source),
        e => e,
    })?;
    let staging = defer.is_some_and(|d| d.stage.load(Ordering::Relaxed));
    let value = (|| {
        let file = &file;
        if staging {
            // Written now, made durable by the batch's commit (no early writeback: its
            // barrier writes everything back at once).
            let mut w = BufWriter::with_capacity(1 << 20, file);
            let value = write(&mut w)?;
            w.flush().at(&tmp)?;
            file.set_permissions(std::fs::Permissions::from_mode(perm.mode())).at(&tmp)?;
            guard()?;
            return Ok(value);
        }
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
        guard()?;
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
        Some(d) if staging => {
            let mut st = d.staged.lock().expect("unpoisoned");
            st.bytes += file.metadata().map_or(0, |m| m.len());
            st.files.push(StagedFile { file, tmp, dest: dest.to_path_buf() });
        }
        Some(d) => {
            d.dirs.lock().expect("unpoisoned").insert(dir.to_path_buf());
        }
        None => File::open(dir).and_then(|d| d.sync_all()).at(dir)?,
    }
    Ok(value)
}

/// The error of creating `path` (a file, or its directory): [`Error::Unwritable`] where the
/// directory refuses new files (read-only, no permission), else [`Error::Io`].
fn refusing(path: &Path, source: std::io::Error) -> Error {
    match crate::error::refuses_files(&source) {
        true => Error::Unwritable { path: path.to_path_buf(), source },
        false => Error::Io { path: path.to_path_buf(), source },
    }
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
