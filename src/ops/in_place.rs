//! The one mechanism every in-place change of an archive goes through (`embed`, `csv`).
//!
//! An in-place change ends in one of two states, whatever happens: the archive byte-identical to
//! before, or the archive changed as planned and read back through tarfs's own reader. Between
//! the two stands a journal ([`crate::ops::journal`]) that recovery turns into one of them
//! without guessing.
//!
//! - [`Target::open`] opens the archive once, without blocking (a FIFO named as an archive does
//!   not hang), and refuses, before anything is written, what must not be changed in place:
//!   anything but a regular file, a file or directory that is not writable, a compressed stream.
//!   It takes the lock on the open file itself (`flock`), so that every name of the file (hard
//!   links, symlinks) shares one lock and no lock file is left behind. A journal left by an
//!   interrupted change is recovered first, under the lock.
//! - A change is planned as [`Phase`]s of writes. [`Target::apply`] journals them (with the
//!   original bytes each write covers, or where the change copies them), reserves the space the
//!   file will grow by (`fallocate`), so that a full disk stops it before anything changes, then
//!   writes and fsyncs each phase, reads the result back through a check the caller gives, and
//!   removes the journal. Any failure after the journal is written rolls the change back at once;
//!   if even that fails, the error says that the archive needs `tarfs recover`.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::ops::Range;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, FileKind, IoContext, Result};
use crate::format::compression::Compression;
use crate::format::header::{BLOCK, BLOCK_U64};
use crate::format::tarfs::Stamp;
use crate::ops::crash;
use crate::ops::journal::{self, hash, Covered, Journal, Recovery, Source, Written, FINGERPRINT_BLOCKS};
use crate::scan::{ScanEnd, Warning};

/// What kind of file `meta` describes, in words, when it is not a regular file.
pub fn not_regular(meta: &std::fs::Metadata) -> Option<FileKind> {
    let ft = meta.file_type();
    if ft.is_file() {
        None
    } else if ft.is_dir() {
        Some(FileKind::Directory)
    } else if ft.is_block_device() {
        Some(FileKind::BlockDevice)
    } else if ft.is_char_device() {
        Some(FileKind::CharDevice)
    } else if ft.is_fifo() {
        Some(FileKind::Fifo)
    } else if ft.is_socket() {
        Some(FileKind::Socket)
    } else {
        Some(FileKind::Other)
    }
}

/// An archive opened for an in-place change, with its lock held while this lives.
#[derive(Debug)]
pub struct Target {
    /// The path it was reached by.
    pub path: PathBuf,
    /// The open file (read-write, or read-only for a dry run).
    pub file: File,
    /// Its length when opened (after any recovery).
    pub len: u64,
    dev: u64,
    ino: u64,
    nlink: u64,
    /// Where its journal goes ([`journal::journal_path`]).
    journal: PathBuf,
    /// What recovery did before the change, if a journal was pending.
    pub recovered: Option<Recovery>,
}

impl Target {
    /// Opens `path` for the in-place change `what`: refusals, the lock, and recovery of an
    /// interrupted change. A dry run opens read-only, takes no lock, and refuses while a change
    /// is pending. Nothing is written by a refusal.
    pub fn open(path: &Path, what: &str, dry_run: bool) -> Result<Target> {
        let meta = std::fs::metadata(path).at(path)?;
        if let Some(kind) = not_regular(&meta) {
            return Err(Error::refused(path, format!("it is {kind}; {what} changes only regular files (use `tarfs index` for a sidecar)")));
        }
        if meta.permissions().mode() & 0o222 == 0 {
            return Err(Error::refused(path, format!("the file is read-only; {what} changes archives in place (use `tarfs index` for a sidecar)")));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(!dry_run)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32 | rustix::fs::OFlags::NOCTTY.bits() as i32)
            .open(path)
            .map_err(|e| match e.kind() {
                ErrorKind::PermissionDenied => Error::refused(path, format!("it is not writable by this user ({e}); {what} changes archives in place (use `tarfs index` for a sidecar)")),
                ErrorKind::ReadOnlyFilesystem => Error::refused(path, format!("it is on a read-only file system; {what} changes archives in place (use `tarfs index` for a sidecar)")),
                _ => Error::Io { path: path.to_path_buf(), source: e },
            })?;
        // The file opened may not be the one stat'ed (replaced in between): judge the open one.
        let meta = file.metadata().at(path)?;
        if let Some(kind) = not_regular(&meta) {
            return Err(Error::refused(path, format!("it is {kind}; {what} changes only regular files")));
        }
        let journal = journal::journal_path(path, meta.dev(), meta.ino());
        let dir = journal.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        let dir_meta = std::fs::metadata(&dir).at(&dir)?;
        if dir_meta.permissions().mode() & 0o222 == 0 || rustix::fs::access(&dir, rustix::fs::Access::WRITE_OK).is_err() {
            return Err(Error::refused(
                path,
                format!("its directory {} is not writable, and {what} keeps a journal there while it works (use `tarfs index --index-dir` for a sidecar)", dir.display()),
            ));
        }
        let mut head = [0u8; Compression::HEAD];
        let n = file.read_at(&mut head, 0).at(path)?;
        if let Some(c) = Compression::detect(&head[..n]) {
            return Err(Error::refused(path, format!("it is {}-compressed, and {what} needs an uncompressed tar; use `tarfs index` to write a sidecar index instead", c.name())));
        }
        let mut t = Target { path: path.to_path_buf(), len: meta.len(), dev: meta.dev(), ino: meta.ino(), nlink: meta.nlink(), journal, file, recovered: None };
        if dry_run {
            if let Some(jp) = journal::find(&t.journal, &t.file) {
                return Err(Error::refused_for_now(path, format!("an interrupted change is pending (journal {}); run `tarfs recover` first", jp.display())));
            }
            return Ok(t);
        }
        match rustix::fs::flock(&t.file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => return Err(Error::Busy { path: path.to_path_buf() }),
            Err(e) => return Err(Error::Io { path: path.to_path_buf(), source: e.into() }),
        }
        t.recovered = t.recover()?;
        t.len = t.file.metadata().at(path)?.len();
        Ok(t)
    }

    /// The archive mapped for planning the change: the same file, of the same length, as the
    /// one opened and locked (not another put in its place since).
    pub fn map(&self) -> Result<crate::archive::Archive> {
        let archive = crate::archive::Archive::open(&self.path)?;
        if archive.identity() != (self.dev, self.ino) || archive.len() != self.len {
            return Err(Error::refused_for_now(&self.path, "the file was replaced while it was being opened; try again"));
        }
        Ok(archive)
    }

    /// Opens `path` for `tarfs recover`: the same refusals and lock, and the recovery. An error
    /// that stops it before recovery starts says that the archive was not touched.
    pub fn recover_only(path: &Path) -> Result<Option<Recovery>> {
        Target::open(path, "recover", false).map(|t| t.recovered).map_err(|e| match e {
            e @ (Error::Recovery { .. } | Error::Busy { .. } | Error::Refused { .. }) => e,
            e => Error::Unchanged { cause: Box::new(Error::NotRecovered { path: path.to_path_buf(), cause: Box::new(e) }) },
        })
    }

    /// Finishes or undoes a pending change, if there is one.
    fn recover(&self) -> Result<Option<Recovery>> {
        let Some(jp) = journal::find(&self.journal, &self.file) else { return Ok(None) };
        match journal::recover_with(&jp, &self.path, &self.file, true) {
            Ok(r) => Ok(Some(r)),
            Err(e @ Error::Recovery { .. }) => Err(e),
            Err(e) => Err(Error::Recovery { path: self.path.clone(), journal: jp, msg: format!("recovery stopped: {e}; the journal was kept") }),
        }
    }

    /// Journals and applies `change` (see the module docs); `original` is the archive's content
    /// as planned from (its mapping), and `check` reads the result back. Returns the bytes
    /// written.
    ///
    /// The archive is checked against what the survey read ([`Change::surveyed`]) before the
    /// journal is written and again right before the first write to the archive: a writer that
    /// takes no lock (`tar -rf`) may have appended meanwhile, and the change would overwrite its
    /// member. The change is then refused, nothing written.
    pub fn apply(&self, original: &[u8], change: &Change<'_>, check: impl FnOnce() -> Result<()>) -> Result<u64> {
        let path = &self.path;
        crash::point(&format!("{}-surveyed", change.prefix));
        if original.len() as u64 != self.len {
            return Err(Error::refused_for_now(path, "the file changed while it was being read"));
        }
        self.unchanged_since(&change.surveyed, self.len, true)?;
        let j = self.journal(original, change);
        let jp = &self.journal;
        self.write_journal(&j.encode())?;
        let prefix = change.prefix;
        crash::point(&format!("{prefix}-journal-written"));
        // The journal's extended attribute changed the ctime: the rest of the stamp still holds.
        if let Err(e) = self.unchanged_since(&change.surveyed, self.len, false) {
            return Err(self.take_back(e));
        }
        if let Err(e) = self.reserve(j.final_len) {
            return Err(self.undo(jp, self.no_room(e, j.final_len)));
        }
        let result = self.write_phases(change).and_then(|written| check().map(|()| written));
        let written = match result {
            Ok(w) => w,
            Err(e) => return Err(self.undo(jp, e)),
        };
        journal::remove(jp, &self.file).map_err(|e| Error::JournalLeft { path: path.clone(), cause: Box::new(e) })?;
        Ok(written)
    }

    /// Writes the journal `data` (encoded), refusing (with the journal taken back) a file of
    /// several names that cannot be marked with the journal's place.
    pub(crate) fn write_journal(&self, data: &[u8]) -> Result<()> {
        let (path, jp) = (&self.path, &self.journal);
        let marked = match journal::write_bytes(data, jp, &self.file) {
            Ok(m) => m,
            Err(e) => {
                // The journal is tarfs's file, beside the archive: name the archive, and the
                // directory that could not take it.
                let dir = jp.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
                let e = match e {
                    Error::Io { source, .. } | Error::Unwritable { source, .. } => Error::Io {
                        path: path.clone(),
                        source: std::io::Error::new(source.kind(), format!("cannot write the journal of this change in {}: {source}", dir.display())),
                    },
                    e => e,
                };
                // Nothing was written to the archive: take back a journal that did reach its name.
                return Err(if jp.exists() { self.take_back(e) } else { e });
            }
        };
        if !marked && self.nlink > 1 {
            journal::remove(jp, &self.file)?;
            return Err(Error::refused(
                path,
                format!("the file has {} names (hard links), and this file system cannot mark it with the place of its journal, which another name would not find", self.nlink),
            ));
        }
        Ok(())
    }

    /// Removes the journal of a change stopped by `cause` before it wrote anything to the
    /// archive; returns `cause`, or the error that says the journal could not be removed.
    pub(crate) fn take_back(&self, cause: Error) -> Error {
        let jp = &self.journal;
        match journal::remove(jp, &self.file) {
            Ok(()) => cause,
            Err(also) => Error::Recovery {
                path: self.path.clone(),
                journal: jp.clone(),
                msg: format!("{cause}, and the journal could not be removed ({also}); the archive itself was not written"),
            },
        }
    }

    /// Writes and fsyncs each phase of `change`, with its crash points; the last phase only
    /// after checking that the archive still holds what the earlier ones wrote (see
    /// [`Target::still_ours`]). Returns the bytes written.
    fn write_phases(&self, change: &Change<'_>) -> Result<u64> {
        let (path, prefix) = (&self.path, change.prefix);
        let mut written = 0u64;
        // The first and last block of each write, as written: a write's bytes may be the
        // archive's own mapping, which later writes change (the displaced members).
        let mut ends: Vec<(u64, Vec<u8>)> = Vec::new();
        for (n, phase) in change.phases.iter().enumerate() {
            if n > 0 && n + 1 == change.phases.len() {
                self.still_ours(&ends)?;
            }
            for (at, data) in &phase.writes {
                for (i, chunk) in data.chunks(journal::CHUNK).enumerate() {
                    self.file.write_all_at(chunk, at + (i * journal::CHUNK) as u64).at(path)?;
                    if i == 0 && data.len() > journal::CHUNK {
                        crash::point(&format!("{prefix}-{}-piece-written", phase.step));
                    }
                }
                let last = data.len().saturating_sub(BLOCK);
                ends.push((*at, data[..data.len().min(BLOCK)].to_vec()));
                ends.push((at + last as u64, data[last..].to_vec()));
                written += data.len() as u64;
            }
            crash::point(&format!("{prefix}-{}-written", phase.step));
            self.file.sync_all().at(path)?;
            crash::point(&format!("{prefix}-{}-synced", phase.step));
        }
        if let Some((at, _)) = change.phases.last().and_then(|p| p.writes.last()) {
            crash::tamper(&format!("{prefix}-check"), &self.file, *at);
        }
        Ok(written)
    }

    /// Refuses the change when the archive is no longer what its survey read: another length,
    /// inode or mtime (and ctime, with `ctime`) than `surveyed.stamp`, or a byte that is not
    /// zero after the end of its members. `len` is the length the survey read.
    pub(crate) fn unchanged_since(&self, surveyed: &Surveyed, len: u64, ctime: bool) -> Result<()> {
        let meta = self.file.metadata().at(&self.path)?;
        let (now, then) = (Stamp::of(&meta), surveyed.stamp);
        let why = if meta.len() != len {
            Some(format!("it is {} bytes long, not {len}", meta.len()))
        } else if now.ino != then.ino || now.mtime != then.mtime || (ctime && now.ctime != then.ctime) {
            Some(format!("then {then}; now {now}"))
        } else {
            first_nonzero(&self.file, surveyed.end, len).at(&self.path)?.map(|at| format!("byte {at}, after the end of its members, is no longer zero"))
        };
        match why {
            Some(why) => Err(Error::refused_for_now(
                &self.path,
                format!("the archive changed while it was surveyed ({why}), perhaps by a writer that takes no lock, such as `tar -rf`; run again"),
            )),
            None => Ok(()),
        }
    }

    /// Before the last phase of a change: the archive is as long as the writes so far made it,
    /// and the first and last block of each (`ends`: offset and bytes as written) still read
    /// as written. A writer that takes no lock (`tar -rf`) and appended meanwhile would
    /// otherwise be overwritten, or linked in, by the last writes; the change is rolled back
    /// instead.
    fn still_ours(&self, ends: &[(u64, Vec<u8>)]) -> Result<()> {
        let expect = ends.iter().map(|(at, d)| at + d.len() as u64).fold(self.len, u64::max);
        let len = self.file.metadata().at(&self.path)?.len();
        let mut why = (len != expect).then(|| format!("it is {len} bytes long, not {expect}"));
        let mut buf = [0u8; BLOCK];
        for (at, want) in ends {
            if why.is_some() {
                break;
            }
            self.file.read_exact_at(&mut buf[..want.len()], *at).at(&self.path)?;
            if buf[..want.len()] != want[..] {
                why = Some(format!("the bytes written at {at} were overwritten"));
            }
        }
        match why {
            Some(why) => Err(Error::refused_for_now(&self.path, format!("the archive changed while it was being changed ({why}), by a writer that takes no lock, such as `tar -rf`"))),
            None => Ok(()),
        }
    }

    /// Rolls back after `cause` (even a change whose every write is in place: it failed after
    /// them, or did not read back), and says what state the archive is in.
    fn undo(&self, jp: &Path, cause: Error) -> Error {
        match journal::recover_with(jp, &self.path, &self.file, false) {
            Ok(_) => Error::RolledBack { path: self.path.clone(), cause: Box::new(cause) },
            Err(also) => Error::NeedsRecover { path: self.path.clone(), cause: Box::new(cause), also: Box::new(also) },
        }
    }

    /// The error of a failed [`Target::reserve`] for a file to be `final_len` bytes long: a full
    /// disk or quota is a refusal for the moment, in words.
    pub(crate) fn no_room(&self, e: Error, final_len: u64) -> Error {
        let full = |code: Option<i32>| code == Some(rustix::io::Errno::NOSPC.raw_os_error()) || code == Some(rustix::io::Errno::DQUOT.raw_os_error());
        match e {
            Error::Io { source, .. } if full(source.raw_os_error()) => {
                Error::refused_for_now(&self.path, format!("there is no room for the {} bytes the archive would grow by", final_len.saturating_sub(self.len)))
            }
            e => e,
        }
    }

    /// The file's identity: device and inode.
    pub(crate) fn identity(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }

    /// Where the journal of a change of this file goes.
    pub(crate) fn journal_path(&self) -> &Path {
        &self.journal
    }

    /// Allocates the blocks the file will grow into, keeping its length, so that running out of
    /// space happens now. Where the file system cannot, checks the free space instead.
    pub(crate) fn reserve(&self, final_len: u64) -> Result<()> {
        let grow = final_len.saturating_sub(self.len);
        if grow == 0 {
            return Ok(());
        }
        match rustix::fs::fallocate(&self.file, rustix::fs::FallocateFlags::KEEP_SIZE, self.len, grow) {
            Ok(()) => Ok(()),
            Err(e) if e == rustix::io::Errno::OPNOTSUPP || e == rustix::io::Errno::NOSYS => {
                // The journal's directory is the archive's own (symlinks resolved).
                let dir = self.journal.parent().unwrap_or(Path::new("."));
                let st = rustix::fs::statvfs(dir).map_err(|e| Error::Io { path: dir.to_path_buf(), source: e.into() })?;
                if grow > st.f_bavail.saturating_mul(st.f_frsize) {
                    return Err(Error::Io { path: self.path.clone(), source: rustix::io::Errno::NOSPC.into() });
                }
                Ok(())
            }
            Err(e) => Err(Error::Io { path: self.path.clone(), source: e.into() }),
        }
    }

    /// The journal of `change` over `original`.
    fn journal(&self, original: &[u8], change: &Change<'_>) -> Journal {
        let orig = original.len() as u64;
        let mut writes = Vec::new();
        let mut covered = Vec::new();
        let mut final_len = orig;
        for (at, data) in change.phases.iter().flat_map(|p| p.writes.iter()) {
            let end = at + data.len() as u64;
            final_len = final_len.max(end);
            writes.push(Written { at: *at, len: data.len() as u64, hash: hash(data) });
            // The original bytes this write covers, piece by piece: inside the moved region they
            // are in the copy; elsewhere saved (or known to be zeros).
            let mut pieces: Vec<(Range<u64>, Option<u64>)> = Vec::new();
            let span = *at..end.min(orig);
            if span.start < span.end {
                match &change.moved {
                    Some((region, copy_at)) => {
                        let inside = span.start.max(region.start)..span.end.min(region.end);
                        if inside.start < inside.end {
                            if span.start < inside.start {
                                pieces.push((span.start..inside.start, None));
                            }
                            pieces.push((inside.clone(), Some(copy_at + (inside.start - region.start))));
                            if inside.end < span.end {
                                pieces.push((inside.end..span.end, None));
                            }
                        } else {
                            pieces.push((span, None));
                        }
                    }
                    None => pieces.push((span, None)),
                }
            }
            for (r, copy) in pieces {
                let bytes = &original[r.start as usize..r.end as usize];
                let source = match copy {
                    Some(c) => Source::Copy(c),
                    None if crate::format::header::is_zero_block(bytes) => Source::Zeros,
                    None => Source::Saved(bytes.to_vec()),
                };
                covered.push(Covered { at: r.start, len: r.end - r.start, hash: hash(bytes), source });
            }
        }
        // The fingerprint: blocks spread over the original that no write touches.
        let step = (orig / BLOCK_U64 / FINGERPRINT_BLOCKS).max(1) * BLOCK_U64;
        let untouched = |b: u64| writes.iter().all(|w| b + BLOCK_U64 <= w.at || b >= w.at + w.len);
        let mut fingerprint: Vec<(u64, u64)> = (0..FINGERPRINT_BLOCKS)
            .map(|k| k * step)
            .chain(std::iter::once(orig.saturating_sub(BLOCK_U64) / BLOCK_U64 * BLOCK_U64))
            .filter(|&b| b < orig && untouched(b))
            .map(|b| (b, hash(&original[b as usize..(b + BLOCK_U64).min(orig) as usize])))
            .collect();
        fingerprint.dedup();
        Journal { op: change.prefix.to_string(), dev: self.dev, ino: self.ino, original_len: orig, final_len, fingerprint, writes, covered }
    }
}

/// Removes the temporary files that killed runs left for the archive at `path`: the one of
/// the archive itself (`recompress` rewrites it through one), of its sidecar at `sidecar`, and
/// of its journal. A temporary file that a live process holds (is writing now) is left alone.
/// Returns the paths removed.
pub fn remove_stale_temps(path: &Path, sidecar: &Path) -> Result<Vec<PathBuf>> {
    let mut dests = vec![path.to_path_buf(), sidecar.to_path_buf()];
    // `recompress` writes beside the file a symbolic link names.
    if let Ok(real) = std::fs::canonicalize(path) {
        dests.push(real);
    }
    if let Ok(meta) = std::fs::metadata(path) {
        dests.push(journal::journal_path(path, meta.dev(), meta.ino()));
    }
    let mut removed = Vec::new();
    for (i, dest) in dests.iter().enumerate() {
        if dests[..i].contains(dest) {
            continue;
        }
        if let Some(tmp) = crate::ops::atomic::remove_stale_temp(dest)? {
            removed.push(tmp);
        }
    }
    Ok(removed)
}

/// Writes made together, then fsynced, named for the crash points around them.
#[derive(Debug)]
pub struct Phase<'a> {
    /// `copy`, `header`, `entries`, ...: the crash points are `PREFIX-STEP-written` and
    /// `PREFIX-STEP-synced`.
    pub step: &'static str,
    /// `(offset, bytes)`.
    pub writes: Vec<(u64, &'a [u8])>,
}

/// The two phases that write `writes` with the first block of the first write last: `rest` (the
/// rest of that write and every other one), then `link` (that one block). The block links the
/// writes into the archive (a member's header over the old end marker's first zero block):
/// until it is written every tar reader stops at the old end marker, so a crash while `rest` is
/// written leaves the archive reading as before, not as a member cut short. Recovery counts a
/// change complete only when every write is in place, the link included.
pub fn link_last<'a>(rest: &'static str, link: &'static str, mut writes: Vec<(u64, &'a [u8])>) -> [Phase<'a>; 2] {
    let (at, data) = writes[0];
    let (first, tail) = data.split_at(BLOCK.min(data.len()));
    writes[0] = (at + first.len() as u64, tail);
    writes.retain(|(_, d)| !d.is_empty());
    [Phase { step: rest, writes }, Phase { step: link, writes: vec![(at, first)] }]
}

/// A planned in-place change.
#[derive(Debug)]
pub struct Change<'a> {
    /// The operation, as crash points and the journal name it (`embed`, `reindex`, `csv`).
    pub prefix: &'static str,
    /// The phases, in order.
    pub phases: Vec<Phase<'a>>,
    /// A region of the original that the change copies, before overwriting it, to an offset:
    /// recovery restores it from there.
    pub moved: Option<(Range<u64>, u64)>,
    /// What the survey the change was planned from read.
    pub surveyed: Surveyed,
}

/// What the survey of an in-place change read, to be checked again before anything is written.
#[derive(Debug, Clone, Copy)]
pub struct Surveyed {
    /// The archive's stamp when it was mapped for the survey ([`crate::archive::Archive::stamp`]).
    pub stamp: Stamp,
    /// Where its members end: from there to the end of the file, the survey read zeros.
    pub end: u64,
}

/// Refuses a change that would overwrite data the scan did not read, or that would make an
/// archive readers stop early: data after a lone zero block, non-zero bytes after the end of the
/// archive, and an archive cut short inside its last member's padding.
///
/// The bytes after the end are read only where the file has data (`SEEK_DATA`): a sparse file of
/// zeros a terabyte long is judged at once.
pub fn check_end(path: &Path, file: &File, bytes: &[u8], end: &ScanEnd) -> Result<()> {
    if let Some(Warning::LoneZeroBlock { offset }) = end.warning {
        return Err(Error::refused(path, format!("data follows a lone zero block at byte {offset}; it would be overwritten")));
    }
    if !end.end_offset.is_multiple_of(BLOCK_U64) || end.end_offset > bytes.len() as u64 {
        return Err(Error::refused(path, format!("the archive is cut short at byte {}, inside its last member's padding; in-place changes need a whole archive", bytes.len())));
    }
    if let Some(at) = first_nonzero(file, end.end_offset, bytes.len() as u64).at(path)? {
        return Err(Error::refused(path, format!("there is data after the end-of-archive marker (at byte {at}) that would be overwritten")));
    }
    Ok(())
}

/// The offset of the first non-zero byte of `file` in `from..len`, reading only the regions the
/// file system says hold data (`SEEK_DATA`), with `pread`: the file may have changed since it
/// was mapped.
pub(crate) fn first_nonzero(file: &File, from: u64, len: u64) -> std::io::Result<Option<u64>> {
    use rustix::fs::{seek, SeekFrom};
    let mut buf = vec![0u8; 1 << 16];
    let mut at = from;
    while at < len {
        // Without SEEK_DATA support, the rest is one data region.
        let data = match seek(file, SeekFrom::Data(at)) {
            Ok(d) => d,
            Err(rustix::io::Errno::NXIO) => return Ok(None),
            Err(_) => at,
        };
        let hole = seek(file, SeekFrom::Hole(data)).unwrap_or(len).min(len);
        let mut pos = data.min(len);
        while pos < hole {
            let n = buf.len().min(usize::try_from(hole - pos).unwrap_or(usize::MAX));
            file.read_exact_at(&mut buf[..n], pos)?;
            if let Some(i) = buf[..n].iter().position(|&b| b != 0) {
                return Ok(Some(pos + i as u64));
            }
            pos += n as u64;
        }
        at = hole.max(at + 1);
    }
    Ok(None)
}
